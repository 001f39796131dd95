"""`remembered_sha256`: a TA file read once per student is hashed once per run, and a file that
changes is hashed again, even a same-size rewrite within the file system's clock tick."""

from __future__ import annotations

import os

from grader import files


def _counting(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = files.sha256_file

    def counted(path, *args):
        calls.append(str(path))
        return real(path, *args)

    monkeypatch.setattr(files, "sha256_file", counted)
    monkeypatch.setattr(files, "_REMEMBERED", {})
    return calls


def _settle(path, seconds_ago: float = 60) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - int(seconds_ago * 1e9)))


def test_a_settled_file_is_read_once(tmp_path, monkeypatch):
    calls = _counting(monkeypatch)
    path = tmp_path / "stats.npz"
    path.write_bytes(b"a" * 4096)
    _settle(path)
    first = files.remembered_sha256(path)
    assert files.remembered_sha256(path) == files.remembered_sha256(tmp_path / "." / "stats.npz") == first
    assert first == files.sha256_file(path)
    assert len(calls) == 2  # the first lookup and the direct call above


def test_a_changed_file_is_hashed_again(tmp_path, monkeypatch):
    _counting(monkeypatch)
    path = tmp_path / "stats.npz"
    path.write_bytes(b"a" * 4096)
    _settle(path)
    before = files.remembered_sha256(path)
    path.write_bytes(b"b" * 4096)  # same size, new mtime
    _settle(path, 30)
    assert files.remembered_sha256(path) != before
    path.write_bytes(b"c" * 10)  # another size
    assert files.remembered_sha256(path) == files.sha256_file(path)


def test_a_file_written_just_now_is_not_remembered(tmp_path, monkeypatch):
    """Two writes of the same size in one clock tick leave (size, mtime) equal: a file younger
    than the settling time is hashed on every lookup."""
    calls = _counting(monkeypatch)
    path = tmp_path / "labels.json"
    path.write_bytes(b"x" * 100)
    first = files.remembered_sha256(path)
    stat = path.stat()
    path.write_bytes(b"y" * 100)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the same tick
    assert files.remembered_sha256(path) != first
    assert len(calls) == 2
