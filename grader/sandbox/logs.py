"""A bounded capture of a sampler's stdout+stderr: streamed in, never buffered whole.

A sampler may print a gigabyte; the record keeps the first and the last half of
``max_bytes`` (the start shows the set-up, the end shows the traceback) and counts the rest.
"""

from __future__ import annotations

from collections.abc import Iterable


class LogCapture:
    def __init__(self, max_bytes: int):
        self.max_bytes = max(2, int(max_bytes))
        self._head = bytearray()
        self._tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.total += len(chunk)
        half = self.max_bytes // 2
        room = half - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            keep = self.max_bytes - half
            if len(chunk) >= keep:
                self._tail = bytearray(chunk[-keep:])
            else:
                self._tail += chunk
                del self._tail[: max(0, len(self._tail) - keep)]

    def drain(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self.feed(chunk)

    @property
    def truncated(self) -> bool:
        return self.total > len(self._head) + len(self._tail)

    def text(self) -> str:
        head = bytes(self._head).decode("utf-8", errors="replace")
        tail = bytes(self._tail).decode("utf-8", errors="replace")
        if not self.truncated:
            return head + tail
        omitted = self.total - len(self._head) - len(self._tail)
        return f"{head}\n[... {omitted:,} bytes of output not kept ...]\n{tail}"

    def last_line(self, limit: int = 200) -> str:
        """The last non-empty line, for a finding's message."""
        lines = [
            ln.strip()
            for ln in bytes(self._tail or self._head).decode("utf-8", errors="replace").splitlines()
            if ln.strip()
        ]
        if not lines:
            return ""
        line = lines[-1]
        return line if len(line) <= limit else line[: limit - 3] + "..."
