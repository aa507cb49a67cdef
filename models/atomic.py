"""Directories written atomically: a crash never leaves a half model or half adapter under its final name.

The temp dir is `.<final name>.tmp-<writer pid>-<random>` beside the final one. A process killed while writing
(out of memory, a server restart) leaves it behind: nothing that lists models may take it for one (`is_temp_name`),
and `clean_stale_temp_dirs` removes it at the next app start once its writer is gone.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_MARK = ".tmp-"
# ".NAME.tmp-<pid>-<random>" (this version) or ".NAME.tmp-<random>" (written before the pid was recorded)
_TEMP_RE = re.compile(r"^\..+\.tmp-(?:(\d+)-)?[A-Za-z0-9_]+$")
STALE_AFTER_S = 300.0  # a temp dir whose writer is unknown is taken as abandoned after this long
# A live pid may be another process that got the dead writer's number (pids are reused): a dir that has not changed
# for this long is abandoned whoever holds the pid (writing files into a directory updates its mtime).
ABANDONED_AFTER_S = 24 * 3600.0


@contextmanager
def atomic_dir(final: Path, replace: bool = False) -> Iterator[Path]:
    """Yield a temp dir beside `final` to fill; on success it is renamed to `final`, on error it is removed.

    `replace` removes an existing `final` first (a cache being rebuilt); otherwise an existing one makes the rename
    fail rather than be overwritten.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}{TEMP_MARK}{os.getpid()}-", dir=final.parent))
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp makes it private; models and adapters are read by whoever runs the app
        if replace and final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def is_temp_name(name: str) -> bool:
    """True for a directory name atomic_dir uses while writing (never a model, adapter or job of its own).

    Any hidden name counts: a dot-name is never one that atomic_dir's final names or job ids produce."""
    return name.startswith(".")


def _writer_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        return True
    try:  # a zombie has exited: it writes nothing more
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True  # no /proc (not Linux): the signal said it exists


def clean_stale_temp_dirs(parent: Path, stale_after_s: float = STALE_AFTER_S, now: float | None = None) -> list[Path]:
    """Remove the temp dirs atomic_dir left in `parent`: those whose writer process is gone, and those of an unknown
    writer untouched for `stale_after_s`. Returns what was removed. A live writer's dir is left alone."""
    parent, now = Path(parent), time.time() if now is None else now
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for path in parent.iterdir():
        match = _TEMP_RE.match(path.name)
        if match is None or not path.is_dir() or path.is_symlink():
            continue
        pid = int(match.group(1)) if match.group(1) else None
        try:
            age = now - path.stat().st_mtime
        except OSError:
            continue
        if pid == os.getpid():
            continue  # this process is writing it now
        if pid is None:
            stale = age > stale_after_s
        else:
            stale = age > ABANDONED_AFTER_S or not _writer_alive(pid)
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
