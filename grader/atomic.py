"""Files that a crash can never leave half-written: write a temporary file in the same
folder, flush it to disk, then rename it over the target (atomic on POSIX and Windows).

A reader sees the old file or the new one, never a mix; a kill mid-write leaves at most a
hidden temporary file beside the target, which the next write of that target removes.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_bytes(path: Path | str, data: bytes) -> Path:
    return write_with(path, lambda f: f.write(data))


def write_with(path: Path | str, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(f)`` on a binary temporary file beside ``path``, then rename it into place
    (for writers that stream, such as ``np.savez(f, ...)``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path)
    # A unique name per writer: two processes writing the same page never share a temp file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def write_text(path: Path | str, text: str, encoding: str = "utf-8") -> Path:
    return write_bytes(path, text.encode(encoding))


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_stale(path: Path, older_than_s: float = 3600.0) -> None:
    """Temporary files of `path` left by a killed writer (an hour old: never a live writer's)."""
    import time

    now = time.time()
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if now - stale.stat().st_mtime > older_than_s:
                stale.unlink()
