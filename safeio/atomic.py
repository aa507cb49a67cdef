"""Files written atomically: a reader (another user's page, a job polling a report, a crash and a restart) sees the
old file or the new one, never half of one. The one write-to-temp-then-rename of the project; directories (models,
adapters) have finetune.atomic.atomic_dir, which names its temp dirs the same way.

The temp file is `.<name>.<random>.tmp` beside the target (a rename is atomic only within one file system), made
by mkstemp so that two writers of one target (two users finishing the same evaluation) never share a temp file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def write_bytes(path: str | Path, data: bytes, mode: int | None = 0o644, durable: bool = False) -> None:
    """`data` as the whole of `path`. `mode` None keeps mkstemp's owner-only 0600 (a file of password hashes);
    `durable` fsyncs before the rename, for files whose loss after a power cut would matter (the users file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        if mode is not None:
            os.chmod(tmp, mode)  # mkstemp makes it private; reports and predictions are read by whoever runs the app
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str, mode: int | None = 0o644, durable: bool = False) -> None:
    """`text` as UTF-8 (see write_bytes)."""
    write_bytes(path, text.encode("utf-8"), mode, durable)


def copy_file(source: str | Path, target: str | Path) -> None:
    """A copy of `source` at `target`, which never holds a partial copy."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
