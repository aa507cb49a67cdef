"""Directories written atomically: a crash never leaves a half model or half adapter under its final name."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_dir(final: Path, replace: bool = False) -> Iterator[Path]:
    """Yield a temp dir beside `final` to fill; on success it is renamed to `final`, on error it is removed.

    `replace` removes an existing `final` first (a cache being rebuilt); otherwise an existing one makes the rename
    fail rather than be overwritten.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp makes it private; models and adapters are read by whoever runs the app
        if replace and final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
