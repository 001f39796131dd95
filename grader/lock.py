"""One writer per results folder: `grader run` and `grader override` hold an exclusive
lock on RESULTS/.grader.lock while they change the store and the pages.

The lock is an fcntl (flock) lock, so the kernel drops it when its holder dies, even by
kill -9: a lock file left by a dead process is simply taken over. The file also says who
holds the lock (pid, host, command, start time), for the refusal message.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from grader.errors import GraderError

LOCK_NAME = ".grader.lock"


class ResultsBusy(GraderError):
    """Another grader process is writing to this results folder (exit 2)."""


def _holder_text(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another grader process (it has not written its details yet)"
    return (f"`{info.get('command') or 'grader'}` (pid {info.get('pid', '?')} on {info.get('host', '?')}, "
            f"started {info.get('started_at', '?')})")


@contextlib.contextmanager
def results_lock(results_dir: Path | str, command: str = "") -> Iterator[Path]:
    """Hold the results folder's lock, or raise ResultsBusy naming the holder."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ResultsBusy(
                f"{results_dir} is in use by {_holder_text(path)}; wait for it to finish "
                "(or stop it) and try again"
            ) from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # released: the next reader must not name a finished process
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
