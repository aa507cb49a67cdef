"""Folders for files a handler hands to the browser (downloads: reports, predictions, the votes CSV).

gradio copies every file a handler returns into its own cache (which `Blocks(delete_cache=...)` cleans), so these
folders are needed only until the reply is sent. A long-running shared server makes one per click; folders older
than an hour are removed whenever a new one is made, so that they do not pile up on disk.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

MAX_AGE_S = 3600


def scratch_root() -> Path:
    """One folder per OS user: several app processes on one machine must not share (or lock out) each other's."""
    return Path(tempfile.gettempdir()) / f"medtune-downloads-{os.getuid()}"


def prune(root: Path, max_age_s: float = MAX_AGE_S, now: float | None = None) -> int:
    """Remove the folders under `root` last changed more than `max_age_s` ago; returns how many went."""
    cutoff = (time.time() if now is None else now) - max_age_s
    removed = 0
    for child in root.iterdir() if root.is_dir() else []:
        try:
            if child.is_dir() and child.stat().st_mtime < cutoff:
                shutil.rmtree(child, ignore_errors=True)
                removed += 1
        except FileNotFoundError:  # another request pruned it first
            continue
    return removed


def download_dir(prefix: str) -> Path:
    """A fresh private folder for one reply's files (older ones pruned first)."""
    root = scratch_root()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    prune(root)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))
