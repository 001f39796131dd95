"""TA files loaded once per content: a small least-recently-used table keyed by sha256, shared
by the threads that grade students. Where memory is short, `keep_only` lets the pipeline drop
what no metric still to be measured reads."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from grader.files import remembered_sha256

T = TypeVar("T")

_TABLES: weakref.WeakSet[LoadedByContent] = weakref.WeakSet()


class LoadedByContent(Generic[T]):
    def __init__(self, kept: int):
        self._kept = kept
        self._items: OrderedDict[str, T] = OrderedDict()
        self._paths: dict[str, set[Path]] = {}  # sha -> the files it was read from
        self._lock = threading.Lock()
        _TABLES.add(self)

    def get(self, path: Path, load: Callable[[Path, str], T]) -> T:
        """What `load(path, sha256)` made of a file with this content, made once."""
        sha = remembered_sha256(path)
        with self._lock:
            self._paths.setdefault(sha, set()).add(Path(path).resolve())
            if sha in self._items:
                self._items.move_to_end(sha)
                return self._items[sha]
        value = load(path, sha)
        with self._lock:
            self._items[sha] = value
            while len(self._items) > self._kept:
                self._paths.pop(self._items.popitem(last=False)[0], None)
        return value

    def keep_only(self, paths: set[Path]) -> None:
        with self._lock:
            for sha in [sha for sha in self._items if not self._paths.get(sha, set()) & paths]:
                del self._items[sha]
                self._paths.pop(sha, None)


def keep_only(paths: list[Path]) -> None:
    """Drop, from every table, what was loaded from files other than these."""
    resolved = {Path(path).resolve() for path in paths}
    for table in list(_TABLES):
        table.keep_only(resolved)
