"""Safe extraction: real zips built here, hostile ones crafted byte by byte where zipfile
cannot write them. Every test also checks that nothing appeared outside `dest`."""

from __future__ import annotations

import io
import os
import signal
import stat
import struct
import sys
import tracemalloc
import warnings
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from grader.errors import GraderError
from grader.findings import Severity
from grader.intake.unpack import UnpackResult, scan_folder, unpack_zip, zip_member_names
from grader.rubric import UnpackLimits

MIB = 1 << 20


# ---------------------------------------------------------------- helpers


def png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8), "RGB").save(buf, "PNG")
    return buf.getvalue()


def snapshot(top: Path) -> dict[str, tuple]:
    """Every path under top (links not followed) with its type, size and mtime."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[p.relative_to(top).as_posix()] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns)
    return out


def codes(result: UnpackResult) -> list[str]:
    return [f.code for f in result.findings]


def finding(result: UnpackResult, code: str):
    found = [f for f in result.findings if f.code == code]
    assert len(found) == 1, f"expected one {code}, got {codes(result)}"
    return found[0]


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class Box:
    """A zip source folder and a deep `dest`, so that '../' escapes stay inside tmp_path
    where a snapshot sees them."""

    def __init__(self, top: Path):
        self.top = top
        self.src = top / "in"
        self.src.mkdir()
        self.dest = top / "a" / "b" / "c" / "dest"

    def zip(self, entries, name="sub.zip", method=zipfile.ZIP_DEFLATED) -> Path:
        path = self.src / name
        with zipfile.ZipFile(path, "w", method) as zf, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # zipfile warns on duplicate names
            for entry, data in entries:
                zf.writestr(entry, data)
        return path

    def unpack(self, path: Path, limits: UnpackLimits | None = None, **kw) -> UnpackResult:
        before = snapshot(self.top)
        result = unpack_zip(path, self.dest, limits or UnpackLimits(), **kw)
        after = snapshot(self.top)
        allowed = {"a", "a/b", "a/b/c", "a/b/c/dest"}
        outside = [p for p in after if p not in before and p not in allowed
                   and not p.startswith("a/b/c/dest/")]
        changed = [p for p in before if after.get(p) != before[p]]
        assert not outside, f"written outside dest: {outside}"
        assert not changed, f"changed outside dest: {changed}"
        links = [p for p in self.dest.rglob("*") if p.is_symlink()]
        assert not links, f"links created: {links}"
        if not result.fatal:
            assert result.root.is_dir()
            assert sorted(result.files) == result.files
            for rel in result.files:
                assert (result.root / rel).is_file()
        return result


@pytest.fixture
def box(tmp_path) -> Box:
    return Box(tmp_path)


def set_flag_bits(path: Path, name: str, bits: int) -> None:
    """Set general-purpose flag bits of one entry in its local and central headers."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        local = zf.getinfo(name).header_offset
    struct.pack_into("<H", data, local + 6, struct.unpack_from("<H", data, local + 6)[0] | bits)
    i = data.find(b"PK\x01\x02")
    while i >= 0:
        (name_len,) = struct.unpack_from("<H", data, i + 28)
        if data[i + 46:i + 46 + name_len] == name.encode():
            struct.pack_into("<H", data, i + 8, struct.unpack_from("<H", data, i + 8)[0] | bits)
        i = data.find(b"PK\x01\x02", i + 1)
    path.write_bytes(bytes(data))


def deflated_zeros(mib: int) -> bytes:
    """A raw deflate stream of `mib` MiB of zeros, built without compressing them all: a
    full flush resets the compressor, so each 1 MiB block encodes to the same bytes."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(MIB)) + c.flush(zlib.Z_FULL_FLUSH)
    return block * mib + zlib.compressobj(9, zlib.DEFLATED, -15).flush()


def raw_zip(path: Path, name: str, payload: bytes, *, size: int, crc: int,
            aliases: tuple[str, ...] = ()) -> Path:
    """A one-entry deflated zip whose headers declare `size`, whatever `payload` inflates
    to (zip64 fields when size needs them); `aliases` add central records for the same data."""
    zip64 = size >= 0xFFFFFFFF
    version = 45 if zip64 else 20
    usize, csize = (0xFFFFFFFF, 0xFFFFFFFF) if zip64 else (size, len(payload))
    extra = struct.pack("<HHQQ", 1, 16, size, len(payload)) if zip64 else b""
    raw_name = name.encode()
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", version, 0, 8, 0, 0x21, crc, csize, usize,
                        len(raw_name), len(extra)) + raw_name + extra
    central = b""
    for each in (name, *aliases):
        nb = each.encode()
        central += struct.pack("<4s6H3L5HLL", b"PK\x01\x02", 0x0300 | version, version, 0, 8, 0,
                               0x21, crc, csize, usize, len(nb), len(extra), 0, 0, 0,
                               (stat.S_IFREG | 0o644) << 16, 0) + nb + extra
    n = 1 + len(aliases)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, n, n, len(central),
                      len(local) + len(payload), 0)
    path.write_bytes(local + payload + central + end)
    return path


@contextmanager
def file_size_limit(nbytes: int):
    """Writing past nbytes fails (EFBIG) instead of filling the disk: proof that an
    extraction stopped early rather than cleaned up after writing everything."""
    resource = pytest.importorskip("resource")
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)
        signal.signal(signal.SIGXFSZ, handler)


def special(name: str, kind: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (kind | 0o644) << 16
    return info


# ---------------------------------------------------------------- clean input


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED,
                                    zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_clean_zip_extracts_every_file_byte_for_byte(box, method):
    content = {f"{i:05d}.png": png(i) for i in range(1, 4)} | {"notes/readme.txt": b"hello\n"}
    path = box.zip([("notes/", b""), *content.items()], method=method)
    result = box.unpack(path)
    assert not result.fatal and result.findings == []
    assert result.root == box.dest
    assert result.files == sorted(content)
    for rel, data in content.items():
        assert (box.dest / rel).read_bytes() == data


def test_dest_must_be_new_or_empty(box):
    path = box.zip([("a.png", png(1))])
    box.dest.mkdir(parents=True)
    (box.dest / "left_over").write_text("x")
    with pytest.raises(GraderError, match="new or empty"):
        unpack_zip(path, box.dest, UnpackLimits())


# ---------------------------------------------------------------- hostile names and types


def test_zip_slip_is_refused(box):
    path = box.zip([("ok.png", png(1)), ("../evil.png", b"x"), ("../../../../evil2.png", b"x"),
                    ("sub/../../evil3.png", b"x")])
    result = box.unpack(path)
    f = finding(result, "zip.path_traversal")
    assert f.severity is Severity.ERROR and "3 entries" in f.message and "../evil.png" in f.message
    assert result.files == ["ok.png"] and not result.fatal


def test_absolute_paths_are_refused(box):
    target = box.top / "abs_evil.png"  # an absolute name pointing into tmp_path
    path = box.zip([("ok.png", png(1)), (target.as_posix(), b"x"), ("//server/share/x.png", b"x")])
    result = box.unpack(path)
    assert "2 entries" in finding(result, "zip.path_traversal").message
    assert not target.exists() and result.files == ["ok.png"]


def test_drive_letters_are_refused(box):
    path = box.zip([("ok.png", png(1)), ("C:\\evil.png", b"x"), ("C:/evil2.png", b"x"),
                    ("d:evil3.png", b"x")])
    result = box.unpack(path)
    assert "3 entries" in finding(result, "zip.path_traversal").message
    assert result.files == ["ok.png"]


def test_backslash_traversal_is_refused_and_backslash_folders_are_kept(box):
    path = box.zip([("..\\evil.png", b"x"), ("ok\\..\\..\\evil2.png", b"x"),
                    ("folder\\inner.png", png(2)), ("ok.png", png(1))])
    result = box.unpack(path)
    assert "2 entries" in finding(result, "zip.path_traversal").message
    assert result.files == ["folder/inner.png", "ok.png"]


def test_symlink_entries_are_never_created(box):
    secret = box.top / "secret.txt"
    secret.write_text("TA only")
    path = box.zip([("ok.png", png(1)), (special("link.png", stat.S_IFLNK), str(secret)),
                    (special("rel.png", stat.S_IFLNK), "../../../../secret.txt")])
    result = box.unpack(path)
    f = finding(result, "zip.symlink")
    assert "2 symbolic links" in f.message and "link.png" in f.message
    assert result.files == ["ok.png"]
    assert not (box.dest / "link.png").exists() and not (box.dest / "link.png").is_symlink()


@pytest.mark.parametrize("kind", [stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK])
def test_device_and_fifo_entries_are_refused(box, kind):
    path = box.zip([("ok.png", png(1)), (special("dev", kind), b"")])
    result = box.unpack(path)
    assert "dev" in finding(result, "zip.special_file").message
    assert result.files == ["ok.png"] and not (box.dest / "dev").exists()


def test_encrypted_entry_is_skipped_and_the_rest_extracts(box):
    path = box.zip([("plain.png", png(1)), ("secret.png", png(2))])
    set_flag_bits(path, "secret.png", 0x1)
    result = box.unpack(path)
    assert "secret.png" in finding(result, "zip.encrypted").message
    assert result.files == ["plain.png"] and not result.fatal


def test_encrypted_only_zip_is_fatal(box):
    path = box.zip([("a.png", png(1)), ("b.png", png(2))])
    for name in ("a.png", "b.png"):
        set_flag_bits(path, name, 0x1)
    result = box.unpack(path)
    assert "2 password-protected entries" in finding(result, "zip.encrypted").message
    assert result.fatal and "zip.empty" in codes(result) and result.files == []


# ---------------------------------------------------------------- bombs and limits


def test_zip_bomb_is_refused_before_inflating(box):
    gib = 2.5
    payload = deflated_zeros(int(gib * 1024))
    # The CRC is checked only once everything is inflated, so a bomb needs no valid one.
    path = raw_zip(box.src / "bomb.zip", "00001.png", payload, size=int(gib * 1024) * MIB, crc=0)
    with zipfile.ZipFile(path) as zf, zf.open("00001.png") as f:
        assert f.read(MIB) == bytes(MIB)  # a real deflate stream, 1,000:1 and 2.5 GiB long
    assert path.stat().st_size < 3 * MIB
    with file_size_limit(8 * MIB):
        result = box.unpack(path)
    f = finding(result, "zip.bomb")
    assert "2.5 GiB" in f.message and "00001.png" in f.message
    assert result.fatal and tree_bytes(box.dest) == 0


def test_lying_header_bomb_is_stopped_while_streaming(box):
    payload = deflated_zeros(64)
    assert len(zlib.decompress(payload, -15)) == 64 * MIB  # what it really inflates to
    # The headers claim 1 MiB with the CRC of 1 MiB of zeros: every check before inflating
    # passes (16:1), so only counting while streaming can catch it.
    path = raw_zip(box.src / "liar.zip", "liar.png", payload, size=MIB, crc=zlib.crc32(bytes(MIB)))
    with file_size_limit(8 * MIB):
        result = box.unpack(path)
    assert "liar.png" in finding(result, "zip.size_mismatch").message
    assert result.fatal and tree_bytes(box.dest) == 0


def test_overlapping_entries_bomb_is_refused(box):
    # 2,000 central records share one entry's data: each entry alone looks honest (1:1).
    data = np.random.default_rng(0).bytes(64 * 1024)
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    payload = c.compress(data) + c.flush()
    aliases = tuple(f"{i:05d}.png" for i in range(2, 2001))
    path = raw_zip(box.src / "overlap.zip", "00001.png", payload, size=len(data),
                   crc=zlib.crc32(data), aliases=aliases)
    result = box.unpack(path)
    assert "overlap" in finding(result, "zip.bomb").message
    assert result.fatal and tree_bytes(box.dest) == 0


def test_total_size_over_the_limit_is_refused(box):
    rng = np.random.default_rng(0)
    path = box.zip([(f"{i}.bin", rng.bytes(400 * 1024)) for i in range(3)])
    result = box.unpack(path, UnpackLimits(max_total_bytes=MIB))
    assert "1 MiB" in finding(result, "zip.too_large").message
    assert result.fatal and tree_bytes(box.dest) == 0


def test_entry_over_the_limit_is_skipped(box):
    rng = np.random.default_rng(0)
    path = box.zip([("weights.pt", rng.bytes(200 * 1024)), ("ok.png", png(1))])
    result = box.unpack(path, UnpackLimits(max_entry_bytes=100 * 1024))
    assert "weights.pt (200 KiB)" in finding(result, "zip.entry_too_large").message
    assert result.files == ["ok.png"]


def test_too_many_entries_is_refused(box):
    path = box.zip([(f"{i:05d}.png", b"x") for i in range(11)])
    result = box.unpack(path, UnpackLimits(max_entries=10))
    assert "11 entries" in finding(result, "zip.too_many_entries").message
    assert result.fatal and tree_bytes(box.dest) == 0


def test_memory_stays_flat_for_a_large_entry(box):
    data = bytes(range(256)) * (32 * MIB // 256)
    path = box.zip([("big.bin", data)])
    tracemalloc.start()
    result = box.unpack(path, UnpackLimits(max_ratio=1000))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.files == ["big.bin"] and (box.dest / "big.bin").stat().st_size == len(data)
    assert peak < 6 * MIB, f"peak {peak / MIB:.1f} MiB while extracting a 32 MiB entry"


# ---------------------------------------------------------------- broken archives


@pytest.mark.parametrize("content, looks", [
    (png(1), "PNG image"),
    (b"Rar!\x1a\x07\x01\x00" + bytes(100), "RAR archive"),
    (b"just some text, not an archive\n", None),
    (b"", "empty"),
])
def test_not_a_zip(box, content, looks):
    path = box.src / "sub.zip"
    path.write_bytes(content)
    result = box.unpack(path)
    f = finding(result, "zip.not_a_zip")
    assert result.fatal and result.files == [] and tree_bytes(box.dest) == 0
    if looks:
        assert looks in f.message


def test_truncated_zip(box):
    path = box.zip([(f"{i:05d}.png", png(i)) for i in range(1, 6)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    result = box.unpack(path)
    assert "incomplete" in finding(result, "zip.truncated").message
    assert result.fatal and tree_bytes(box.dest) == 0


def test_bad_crc_entry_is_dropped(box):
    good, bad = png(1), png(2)
    path = box.zip([("good.png", good), ("bad.png", bad)], method=zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    at = data.find(bad) + len(bad) // 2
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    result = box.unpack(path)
    assert "bad.png" in finding(result, "zip.bad_crc").message
    assert result.files == ["good.png"] and not (box.dest / "bad.png").exists()


def test_damaged_deflate_data_is_dropped(box):
    data = np.random.default_rng(0).bytes(256 * 1024)
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    stream = c.compress(data) + c.flush()
    half = stream[: len(stream) // 2]  # the stream stops mid-way, headers agree with the cut
    path = raw_zip(box.src / "cut.zip", "a.png", half, size=len(data), crc=zlib.crc32(data))
    result = box.unpack(path)
    assert "a.png" in finding(result, "zip.corrupt_entry").message
    assert result.fatal and tree_bytes(box.dest) == 0


def test_empty_zip(box):
    path = box.zip([])
    result = box.unpack(path)
    assert "empty" in finding(result, "zip.empty").message
    assert result.fatal and result.files == []


# ---------------------------------------------------------------- junk and layout


def test_macos_and_windows_junk_is_ignored_one_finding_per_kind(box):
    path = box.zip([
        ("00001.png", png(1)), ("00002.png", png(2)),
        ("__MACOSX/", b""), ("__MACOSX/._00001.png", b"j"), ("__MACOSX/._00002.png", b"j"),
        (".DS_Store", b"j"), ("._00003.png", b"j"), ("Thumbs.db", b"j"), ("desktop.ini", b"j"),
    ])
    result = box.unpack(path)
    junk = [f for f in result.findings if f.code == "zip.junk"]
    assert len(junk) == 5 and all(f.severity is Severity.ERROR for f in junk)
    assert any("3 macOS junk entries (__MACOSX/" in f.message for f in junk)
    assert result.files == ["00001.png", "00002.png"]
    assert sorted(p.name for p in box.dest.iterdir()) == ["00001.png", "00002.png"]
    relaxed = unpack_zip(path, box.top / "relaxed", UnpackLimits(), forbid_junk=False)
    assert {f.severity for f in relaxed.findings if f.code == "zip.junk"} == {Severity.INFO}


def test_wrapping_folder_becomes_root(box):
    path = box.zip([("hw3/", b""), ("hw3/00001.png", png(1)), ("hw3/00002.png", png(2)),
                    ("__MACOSX/hw3/._00001.png", b"j")])
    result = box.unpack(path)
    f = finding(result, "zip.wrapping_folder")
    assert f.severity is Severity.ERROR and "'hw3/'" in f.message and "top level" in f.message
    assert result.root == box.dest / "hw3" and result.files == ["00001.png", "00002.png"]
    relaxed = unpack_zip(path, box.top / "relaxed", UnpackLimits(), flat=False)
    assert finding(relaxed, "zip.wrapping_folder").severity is Severity.INFO


def test_no_wrapping_folder_when_a_file_is_at_the_top(box):
    path = box.zip([("hw3/00001.png", png(1)), ("readme.txt", b"hi")])
    result = box.unpack(path)
    assert "zip.wrapping_folder" not in codes(result) and result.root == box.dest


def test_nested_zip_is_reported_not_extracted(box):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("inside.png", png(1))
    path = box.zip([("a.png", png(2)), ("inner.zip", inner.getvalue())])
    result = box.unpack(path)
    f = finding(result, "zip.nested_zip")
    assert f.severity is Severity.WARNING and "inner.zip" in f.message
    assert result.files == ["a.png", "inner.zip"] and not list(box.dest.rglob("inside.png"))


# ---------------------------------------------------------------- names


def test_non_utf8_names_are_decoded(box):
    mac = "résumé.png".encode()  # macOS Archive Utility: UTF-8 bytes, flag not set
    dos = "Ü.png".encode("cp437")  # a DOS code page name: not valid UTF-8
    big5 = "報告.txt".encode("cp950")  # 7-Zip: legacy bytes plus the Info-ZIP UTF-8 field
    field = b"\x01" + struct.pack("<I", zlib.crc32(big5)) + "報告.txt".encode()
    unicode_info = zipfile.ZipInfo("C" * len(big5))
    unicode_info.extra = struct.pack("<HH", 0x7075, len(field)) + field
    path = box.zip([("A" * len(mac), png(1)), ("B" * len(dos), png(2)), (unicode_info, b"r")])
    data = path.read_bytes()
    for placeholder, raw in ((b"A" * len(mac), mac), (b"B" * len(dos), dos),
                             (b"C" * len(big5), big5)):
        assert data.count(placeholder) == 2  # local and central header
        data = data.replace(placeholder, raw)
    path.write_bytes(data)
    result = box.unpack(path)
    assert result.files == sorted(["résumé.png", "Ü.png", "報告.txt"])
    f = finding(result, "zip.name_encoding")
    assert f.severity is Severity.INFO and "2 entry names" in f.message
    assert (box.dest / "résumé.png").read_bytes() == png(1)
    assert "報告.txt" in zip_member_names(path)


def test_duplicate_names_keep_the_first_copy(box):
    path = box.zip([("a.png", png(1)), ("a.png", png(2))])
    result = box.unpack(path)
    assert "a.png" in finding(result, "zip.duplicate_name").message
    assert result.files == ["a.png"] and (box.dest / "a.png").read_bytes() == png(1)


def test_case_collisions_keep_the_first_copy(box):
    path = box.zip([("a.png", png(1)), ("A.png", png(2)), ("Dir/x.png", png(3)),
                    ("dir/X.PNG", png(4))])
    result = box.unpack(path)
    f = finding(result, "zip.case_collision")
    assert "A.png (clashes with a.png)" in f.message and "dir/X.PNG" in f.message
    assert result.files == ["Dir/x.png", "a.png"]
    assert (box.dest / "a.png").read_bytes() == png(1)


def test_file_and_folder_with_one_name_keep_the_first(box):
    path = box.zip([("model", b"file"), ("model/weights.txt", b"x"), ("ok.png", png(1))])
    result = box.unpack(path)
    assert "model/weights.txt" in finding(result, "zip.path_conflict").message
    assert result.files == ["model", "ok.png"]


def test_zip_member_names_lists_without_junk(box):
    path = box.zip([("hw3/", b""), ("hw3/00001.png", png(1)), ("__MACOSX/hw3/._00001.png", b"j"),
                    ("hw3/.DS_Store", b"j")])
    assert zip_member_names(path) == ["hw3/", "hw3/00001.png"]
    not_zip = box.src / "x.zip"
    not_zip.write_bytes(png(1))
    assert zip_member_names(not_zip) is None


# ---------------------------------------------------------------- submitted folders


def scan_unchanged(top: Path, folder: Path, **kw) -> UnpackResult:
    before = snapshot(top)
    result = scan_folder(folder, **kw)
    assert snapshot(top) == before, "scan_folder changed something"
    return result


def test_folder_junk_is_reported_and_left_in_place(tmp_path):
    folder = tmp_path / "submission"
    (folder / "__MACOSX").mkdir(parents=True)
    (folder / "__MACOSX" / "._00001.png").write_bytes(b"j")
    (folder / "00001.png").write_bytes(png(1))
    (folder / ".DS_Store").write_bytes(b"j")
    (folder / "Thumbs.db").write_bytes(b"j")
    result = scan_unchanged(tmp_path, folder)
    junk = [f for f in result.findings if f.code == "zip.junk"]
    assert len(junk) == 3 and all("left out of grading" in f.message for f in junk)
    assert result.files == ["00001.png"] and result.root == folder
    assert (folder / ".DS_Store").exists()


def test_folder_symlinks_are_reported_and_never_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(png(9))
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "00001.png").write_bytes(png(1))
    (folder / "link.png").symlink_to(outside / "secret.png")
    (folder / "linkdir").symlink_to(outside, target_is_directory=True)
    result = scan_unchanged(tmp_path, folder)
    assert "2 symbolic links" in finding(result, "zip.symlink").message
    assert result.files == ["00001.png"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_folder_fifo_is_reported(tmp_path):
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "00001.png").write_bytes(png(1))
    os.mkfifo(folder / "pipe")
    result = scan_unchanged(tmp_path, folder)
    assert "pipe" in finding(result, "zip.special_file").message
    assert result.files == ["00001.png"]


def test_folder_wrapping_folder_becomes_root(tmp_path):
    folder = tmp_path / "submission"
    (folder / "hw3").mkdir(parents=True)
    for i in (1, 2):
        (folder / "hw3" / f"{i:05d}.png").write_bytes(png(i))
    result = scan_unchanged(tmp_path, folder, flat=True)
    assert "'hw3/'" in finding(result, "zip.wrapping_folder").message
    assert result.root == folder / "hw3" and result.files == ["00001.png", "00002.png"]


@pytest.mark.skipif(sys.platform == "darwin", reason="case-insensitive file system")
def test_folder_case_collision_keeps_one(tmp_path):
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "a.png").write_bytes(png(1))
    (folder / "A.png").write_bytes(png(2))
    result = scan_unchanged(tmp_path, folder)
    assert "a.png (clashes with A.png)" in finding(result, "zip.case_collision").message
    assert result.files == ["A.png"]
