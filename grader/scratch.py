"""Where unpacked submissions live while they are checked.

Unpacking 10,000 small PNGs costs seconds of file-system time on a disk and a fraction of a
second in memory, so scratch space goes to a RAM-backed folder when one has room for the
largest unpack the rubric's limits allow; otherwise to the system temp folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

RAM_FOLDERS = (Path("/dev/shm"),)


def scratch_root(needed_bytes: int) -> Path | None:
    """A RAM-backed folder with room for needed_bytes (plus headroom), or None for the default."""
    if os.environ.get("GRADER_SCRATCH"):
        return Path(os.environ["GRADER_SCRATCH"])
    for folder in RAM_FOLDERS:
        try:
            if folder.is_dir() and os.access(folder, os.W_OK) and shutil.disk_usage(folder).free > 2 * needed_bytes:
                return folder
        except OSError:
            continue
    return None


def scratch_dir(needed_bytes: int, prefix: str) -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix=prefix, dir=scratch_root(needed_bytes))
