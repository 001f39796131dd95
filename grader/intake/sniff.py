"""What a submitted item holds, judged from names only (no decoding): the evidence the
assignment of items to artifacts works from."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from grader.files import IMAGE_EXTENSIONS
from grader.intake.unpack import zip_member_names

CODE_EXTENSIONS = frozenset({".py", ".ipynb"})
MAX_NAMES = 100_000  # a folder listing stops here; enough to tell what it is


@dataclass
class Contents:
    is_zip: bool = False
    is_dir: bool = False
    names: list[str] = field(default_factory=list)  # member / file names, relative

    @property
    def is_bundle(self) -> bool:
        return self.is_zip or self.is_dir

    @property
    def images(self) -> int:
        return sum(PurePosixPath(n).suffix.lower() in IMAGE_EXTENSIONS for n in self.names)

    @property
    def code(self) -> int:
        return sum(PurePosixPath(n).suffix.lower() in CODE_EXTENSIONS for n in self.names)


def sniff(item: Path) -> Contents:
    if item.is_dir():
        names: list[str] = []
        for dirpath, _dirs, filenames in os.walk(item):
            rel = os.path.relpath(dirpath, item)
            names.extend(f if rel == "." else f"{rel}/{f}" for f in filenames)
            if len(names) > MAX_NAMES:
                break
        return Contents(is_dir=True, names=names)
    members = zip_member_names(item) if item.suffix.lower() == ".zip" or _looks_like_zip(item) else None
    if members is not None:
        return Contents(is_zip=True, names=[m for m in members if not m.endswith("/")])
    return Contents(names=[item.name])


def _looks_like_zip(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False
