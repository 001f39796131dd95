"""TA files loaded once per content: a small least-recently-used table keyed by sha256, shared
by the threads that grade students."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from grader.files import sha256_file

T = TypeVar("T")


class LoadedByContent(Generic[T]):
    def __init__(self, kept: int):
        self._kept = kept
        self._items: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path, load: Callable[[Path, str], T]) -> T:
        """What `load(path, sha256)` made of a file with this content, made once."""
        sha = sha256_file(path)
        with self._lock:
            if sha in self._items:
                self._items.move_to_end(sha)
                return self._items[sha]
        value = load(path, sha)
        with self._lock:
            self._items[sha] = value
            while len(self._items) > self._kept:
                self._items.popitem(last=False)
        return value
