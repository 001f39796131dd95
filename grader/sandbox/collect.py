"""Copy a sampler's output out of its sandbox: a tar stream in, plain files out.

Both backends hand over the sandbox's /output as a tar stream (written by a trusted tar
after every sampler process is dead). Only regular files and folders are written, with
names checked and files opened O_EXCL|O_NOFOLLOW into a folder we created: a symbolic link
is recorded and never created (so never followed), a FIFO, device or socket likewise, and
the file count and byte total are capped again here, whatever the sandbox's own caps did.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

_COPY_CHUNK = 1 << 20


@dataclass
class Collected:
    files: int = 0  # regular files written
    entries: int = 0  # files and folders seen
    bytes: int = 0
    symlinks: list[str] = field(default_factory=list)  # "name -> target"
    special: list[str] = field(default_factory=list)  # "name (fifo)"
    unsafe_names: list[str] = field(default_factory=list)
    over_files: bool = False
    over_bytes: bool = False
    error: str | None = None  # the stream itself was unreadable

    @property
    def over_limit(self) -> bool:
        return self.over_files or self.over_bytes


class ChunkReader:
    """A read(n) file object over an iterator of byte chunks (a docker exec stream)."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buf = bytearray()
        self._done = False

    def read(self, n: int = -1) -> bytes:
        while not self._done and (n < 0 or len(self._buf) < n):
            try:
                self._buf += next(self._chunks)
            except StopIteration:
                self._done = True
        if n < 0:
            n = len(self._buf)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out


def _safe_parts(name: str) -> tuple[str, ...] | None:
    if "\x00" in name or name.startswith("/"):
        return None
    parts = tuple(p for p in PurePosixPath(name).parts if p not in ("", "."))
    if any(p == ".." for p in parts):
        return None
    return parts


def _kind(member: tarfile.TarInfo) -> str:
    if member.ischr():
        return "character device"
    if member.isblk():
        return "block device"
    if member.isfifo():
        return "fifo"
    if member.islnk():
        return "hard link"
    return f"tar type {member.type!r}"


def clear_folder(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def extract_output(stream: BinaryIO, dest: Path, max_files: int, max_bytes: int) -> Collected:
    """Write the regular files and folders of a tar stream into the empty folder ``dest``.

    Over ``max_files`` entries or ``max_bytes`` the rest of the stream is drained unwritten
    and ``dest`` is emptied: an output over its cap is never kept in part.
    """
    got = Collected()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                parts = _safe_parts(member.name)
                if parts is None:
                    got.unsafe_names.append(member.name)
                    continue
                if not parts:  # the output folder itself
                    continue
                name = "/".join(parts)
                if member.issym():
                    got.symlinks.append(f"{name} -> {member.linkname}")
                    continue
                if not (member.isreg() or member.isdir()):
                    got.special.append(f"{name} ({_kind(member)})")
                    continue
                got.entries += 1
                if member.isreg():
                    got.files += 1
                    got.bytes += member.size
                if got.entries > max_files:
                    got.over_files = True
                if got.bytes > max_bytes:
                    got.over_bytes = True
                if got.over_limit:
                    continue  # tarfile skips the member's data when we move on
                target = dest.joinpath(*parts)
                if member.isdir():
                    target.mkdir(mode=0o755, parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                src = tar.extractfile(member)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                with os.fdopen(fd, "wb") as out:
                    while chunk := src.read(_COPY_CHUNK):
                        out.write(chunk)
    except (tarfile.TarError, OSError, EOFError) as exc:
        got.error = f"{type(exc).__name__}: {exc}"
    if got.over_limit:
        clear_folder(dest)
    got.symlinks.sort()
    got.special.sort()
    return got
