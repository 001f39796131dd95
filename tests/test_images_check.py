"""check_image_set on real PNG sets written by the tests: one test per bad input."""

from __future__ import annotations

import os
import resource
import shutil
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from grader.checks.images import check_image_set
from grader.errors import GraderError
from grader.rubric import ImageSetArtifact

N = 20


def make_spec(**kw) -> ImageSetArtifact:
    fields = {
        "kind": "image_set",
        "count": N,
        "names": "{index:05d}.png",
        "size": (28, 28),
        "modes": ["RGB"],
    }
    return ImageSetArtifact(**(fields | kw))


def pixels(seed: int, size=(28, 28), channels: int = 3) -> np.ndarray:
    shape = (size[1], size[0], channels) if channels > 1 else (size[1], size[0])
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def save(path: Path, seed: int, mode: str = "RGB", size=(28, 28), fmt: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(pixels(seed, size))
    if mode == "P":
        im = im.quantize(16)
    elif mode == "I;16":
        im = Image.fromarray(pixels(seed, size, 1).astype(np.uint16) * 257)
        assert im.mode == "I;16"
    elif mode != "RGB":
        im = im.convert(mode)
    im.save(path, fmt)
    return path


def make_set(folder: Path, indices=range(1, N + 1), pattern: str = "{:05d}.png") -> Path:
    for i in indices:
        save(folder / pattern.format(i), seed=i)
    return folder


def png_bytes(width: int, height: int, depth: int, color_type: int, raw: bytes) -> bytes:
    """A PNG written chunk by chunk, with valid CRCs, for what Pillow cannot save."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw, 1))
        + chunk(b"IEND", b"")
    )


def by_code(report) -> dict:
    codes = [f.code for f in report.findings]
    assert len(codes) == len(set(codes)), f"one finding per kind, got {codes}"
    return {f.code: f for f in report.findings}


# ---------------------------------------------------------------- good sets


def test_clean_set_has_no_findings(tmp_path):
    make_set(tmp_path)
    report = check_image_set(tmp_path, make_spec(), artifact="generated")
    assert report.findings == []
    assert report.count == N
    assert report.images == [tmp_path / f"{i:05d}.png" for i in range(1, N + 1)]


def test_progress_bar_goes_to_stderr(tmp_path, capsys):
    make_set(tmp_path)
    assert check_image_set(tmp_path, make_spec(), artifact="generated", progress=True).count == N
    out, err = capsys.readouterr()
    assert out == "" and "generated" in err


def test_free_names_check_only_the_count(tmp_path):
    make_set(tmp_path, range(N), pattern="fake_image_{}.png")
    spec = make_spec(names=None)
    assert check_image_set(tmp_path, spec).findings == []
    (tmp_path / "fake_image_3.png").unlink()
    report = check_image_set(tmp_path, spec)
    assert list(by_code(report)) == ["images.count"]
    assert report.findings[0].message == "found 19 images; expected 20"


def test_os_junk_is_skipped_silently(tmp_path):
    make_set(tmp_path)
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    save(tmp_path / "__MACOSX" / "._00001.png", seed=99)
    report = check_image_set(tmp_path, make_spec())
    assert report.findings == []
    assert report.count == N


def test_files_argument_limits_the_check(tmp_path):
    make_set(tmp_path)
    files = [f"{i:05d}.png" for i in range(N, 0, -1) if i != 7]  # any order; sorted inside
    report = check_image_set(tmp_path, make_spec(), files=files)
    assert report.count == N - 1
    assert report.images == sorted(tmp_path / f for f in files)
    assert by_code(report)["images.missing"].message == "1 expected image missing: 00007.png"


def test_missing_folder_is_a_caller_error(tmp_path):
    with pytest.raises(GraderError, match="not found"):
        check_image_set(tmp_path / "absent", make_spec())


# ---------------------------------------------------------------- count and names


def test_one_image_too_few(tmp_path):
    make_set(tmp_path, [i for i in range(1, N + 1) if i != 17])
    found = by_code(check_image_set(tmp_path, make_spec(), artifact="generated"))
    assert set(found) == {"images.count", "images.missing"}
    assert found["images.count"].message == "found 19 images; expected 20"
    assert found["images.count"].artifact == "generated"
    assert found["images.missing"].message == "1 expected image missing: 00017.png"


def test_one_image_too_many(tmp_path):
    make_set(tmp_path, range(1, N + 2))
    found = by_code(check_image_set(tmp_path, make_spec()))
    assert set(found) == {"images.count", "images.unexpected"}
    assert found["images.count"].message == "found 21 images; expected 20"
    assert found["images.unexpected"].message == "unexpected: 00021.png"


def test_gaps_in_the_names_are_listed_as_ranges(tmp_path):
    make_set(tmp_path, [i for i in range(1, N + 1) if i not in (3, 10, 11, 12)])
    found = by_code(check_image_set(tmp_path, make_spec()))
    assert (
        found["images.missing"].message == "4 expected images missing: 00003.png, 00010-00012.png"
    )
    assert found["images.count"].message == "found 16 images; expected 20"


def test_ranges_for_a_pattern_with_a_prefix(tmp_path):
    make_set(tmp_path, [1, 2, 6], pattern="img_{}.png")
    found = by_code(check_image_set(tmp_path, make_spec(count=6, names="img_{index}.png")))
    assert found["images.missing"].message == "3 expected images missing: img_3-5.png"


def test_unpadded_names_get_one_finding_naming_the_pattern(tmp_path):
    make_set(tmp_path, range(1, N + 1), pattern="{}.png")
    found = by_code(check_image_set(tmp_path, make_spec()))
    assert list(found) == ["images.names"]  # not also 20 missing and 20 unexpected
    names = found["images.names"]
    assert names.message.startswith(
        "20 images are named without zero padding: 1.png should be 00001.png, "
        "10.png should be 00010.png"
    )
    assert names.message.endswith("and 15 more")
    assert (
        "f'{i:05d}.png'" in names.hint and "00001.png" in names.hint and "00020.png" in names.hint
    )


def test_numbering_from_zero_is_explained(tmp_path):
    make_set(tmp_path, range(N))
    found = by_code(check_image_set(tmp_path, make_spec()))
    assert found["images.missing"].message == "1 expected image missing: 00020.png"
    assert found["images.unexpected"].message == "unexpected: 00000.png"
    assert "numbering starts at 00001.png, not 00000.png" in found["images.unexpected"].hint


def test_many_unexpected_names_are_compact(tmp_path):
    make_set(tmp_path, range(101, 101 + N), pattern="sample{}.png")
    found = by_code(check_image_set(tmp_path, make_spec()))
    assert found["images.unexpected"].message == (
        "unexpected: sample101.png, sample102.png, sample103.png, sample104.png, sample105.png "
        "and 15 more"
    )
    assert found["images.missing"].message == "20 expected images missing: 00001-00020.png"


def test_images_in_a_subfolder(tmp_path):
    make_set(tmp_path / "out")
    found = by_code(check_image_set(tmp_path, make_spec()))
    assert list(found) == ["images.subdirectory"]  # the names themselves are right
    assert found["images.subdirectory"].message == (
        "the images are inside the folder 'out/'; put them at the top level"
    )


def test_some_files_in_subfolders(tmp_path):
    make_set(tmp_path, range(1, 18))
    make_set(tmp_path / "extra", range(18, N))
    make_set(tmp_path / "more", [N])
    found = by_code(check_image_set(tmp_path, make_spec()))
    assert list(found) == ["images.subdirectory"]
    assert found["images.subdirectory"].message == (
        "3 files are inside subfolders 'extra/' (2 files), 'more/' (1 file); "
        "put them at the top level"
    )


def test_subfolders_allowed_when_not_flat(tmp_path):
    make_set(tmp_path / "a", range(1, 11))
    make_set(tmp_path / "b", range(11, 21))
    report = check_image_set(tmp_path, make_spec(names=None, flat=False))
    assert report.findings == []
    assert report.images[0] == tmp_path / "a" / "00001.png"


# ---------------------------------------------------------------- image rules


def test_mixed_sizes_make_one_finding(tmp_path):
    make_set(tmp_path)
    save(tmp_path / "00001.png", seed=1, size=(64, 64))
    save(tmp_path / "00002.png", seed=2, size=(32, 32))
    save(tmp_path / "00003.png", seed=3, size=(32, 32))
    found = by_code(check_image_set(tmp_path, make_spec()))
    assert found["images.size"].message == (
        "3 images are not 28x28 pixels: 2 at 32x32: 00002.png, 00003.png; 1 at 64x64: 00001.png"
    )


def test_wrong_size(tmp_path):
    make_set(tmp_path)
    for i in (2, 5, 9):
        save(tmp_path / f"{i:05d}.png", seed=i, size=(32, 32))
    found = by_code(check_image_set(tmp_path, make_spec()))
    assert list(found) == ["images.size"]
    assert found["images.size"].message == (
        "3 images are 32x32 pixels, not 28x28: 00002.png, 00005.png, 00009.png"
    )


def test_grayscale_images(tmp_path):
    make_set(tmp_path)
    for i in range(1, 13):
        save(tmp_path / f"{i:05d}.png", seed=i, mode="L")
    found = by_code(check_image_set(tmp_path, make_spec()))
    assert list(found) == ["images.mode"]
    assert found["images.mode"].message == (
        "12 images are grayscale (L): 00001.png, 00002.png, 00003.png, 00004.png, 00005.png "
        "and 7 more; save them as RGB"
    )
    assert "convert('RGB')" in found["images.mode"].hint


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("RGBA", "RGB with alpha (RGBA)"),
        ("P", "palette (P)"),
        ("LA", "grayscale with alpha (LA)"),
        ("1", "1-bit black and white (1)"),
        ("I;16", "16-bit grayscale (I;16)"),
    ],
)
def test_other_modes(tmp_path, mode, words):
    make_set(tmp_path)
    save(tmp_path / "00004.png", seed=4, mode=mode)
    found = by_code(check_image_set(tmp_path, make_spec()))
    assert found["images.mode"].message == f"1 image is {words}: 00004.png; save them as RGB"
    assert found["images.mode"].path == "00004.png"


def test_16_bit_rgb_png(tmp_path):
    # Pillow reads 16-bit colour PNGs as 8-bit "RGB"; the bit depth comes from the IHDR.
    make_set(tmp_path)
    raw = b"".join(b"\x00" + pixels(6, (28, 28), 6)[y].tobytes() for y in range(28))
    (tmp_path / "00006.png").write_bytes(png_bytes(28, 28, 16, 2, raw))
    found = by_code(check_image_set(tmp_path, make_spec()))
    assert list(found) == ["images.mode"]  # a valid file, only the depth is wrong
    assert (
        found["images.mode"].message
        == "1 image is 16-bit RGB (RGB;16): 00006.png; save them as RGB"
    )


def test_mixed_modes_make_one_finding(tmp_path):
    make_set(tmp_path)
    for i in (1, 2, 3):
        save(tmp_path / f"{i:05d}.png", seed=i, mode="L")
    save(tmp_path / "00004.png", seed=4, mode="RGBA")
    found = by_code(check_image_set(tmp_path, make_spec()))
    assert found["images.mode"].message == (
        "4 images are not RGB: 3 grayscale (L): 00001.png, 00002.png, 00003.png; "
        "1 RGB with alpha (RGBA): 00004.png; save them as RGB"
    )


def test_jpeg_named_png(tmp_path):
    make_set(tmp_path)
    save(tmp_path / "00003.png", seed=3, fmt="JPEG")
    report = check_image_set(tmp_path, make_spec())
    found = by_code(report)
    assert list(found) == ["images.format"]
    assert found["images.format"].message.startswith("1 image is JPEG, not PNG: 00003.png")
    assert found["images.format"].path == "00003.png"
    assert report.count == N and len(report.images) == N  # still an image, still decodable


def test_truncated_png(tmp_path):
    make_set(tmp_path)
    data = (tmp_path / "00004.png").read_bytes()
    (tmp_path / "00004.png").write_bytes(data[: len(data) // 2])
    report = check_image_set(tmp_path, make_spec())
    found = by_code(report)
    assert list(found) == ["images.corrupt"]
    assert found["images.corrupt"].message == (
        "1 image is truncated or corrupt and cannot be decoded: 00004.png (truncated)"
    )
    assert report.count == N  # an image, but a broken one
    assert tmp_path / "00004.png" not in report.images and len(report.images) == N - 1


def test_png_cut_inside_its_header_is_corrupt_not_foreign(tmp_path):
    make_set(tmp_path)
    data = (tmp_path / "00004.png").read_bytes()
    (tmp_path / "00004.png").write_bytes(data[:40])  # signature and IHDR, no IDAT
    found = by_code(check_image_set(tmp_path, make_spec()))
    assert "00004.png" in found["images.corrupt"].message


def test_corrupt_image_data(tmp_path):
    make_set(tmp_path)
    data = bytearray((tmp_path / "00008.png").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "00008.png").write_bytes(bytes(data))
    found = by_code(check_image_set(tmp_path, make_spec()))
    assert found["images.corrupt"].message.startswith(
        "1 image is truncated or corrupt and cannot be decoded: 00008.png ("
    )


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("pillow_guard", [True, False])
def test_decompression_bomb_is_refused_from_the_header(tmp_path, monkeypatch, pillow_guard):
    if not pillow_guard:  # our refusal must not depend on Pillow's own limit
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    make_set(tmp_path)
    (tmp_path / "00005.png").write_bytes(png_bytes(100_000, 100_000, 8, 2, b"\x00" * 300_001))
    rss, start = _rss_mb(), time.perf_counter()
    report = check_image_set(tmp_path, make_spec())
    assert time.perf_counter() - start < 2  # 30 GB were never decoded
    assert _rss_mb() - rss < 100
    found = by_code(report)
    assert list(found) == ["images.decompression_bomb"]
    assert found["images.decompression_bomb"].message == (
        "1 image declares more than 16,777,216 pixels and was not decoded: "
        "00005.png (100,000x100,000)"
    )
    assert report.count == N and len(report.images) == N - 1


def test_oversized_non_png_is_refused_before_decoding(tmp_path):
    make_set(tmp_path)
    save(tmp_path / "00002.png", seed=2, size=(64, 64), fmt="JPEG")
    found = by_code(check_image_set(tmp_path, make_spec(formats=["PNG", "JPEG"], max_pixels=1000)))
    assert found["images.decompression_bomb"].message.endswith("00002.png (64x64)")
    assert "images.size" not in found  # one problem, one finding


def test_duplicates_are_grouped(tmp_path):
    make_set(tmp_path)
    for copy, original in ((2, 1), (3, 1), (11, 10)):
        shutil.copy(tmp_path / f"{original:05d}.png", tmp_path / f"{copy:05d}.png")
    found = by_code(check_image_set(tmp_path, make_spec()))
    assert list(found) == ["images.duplicates"]
    assert found["images.duplicates"].message == (
        "2 groups of byte-identical images (5 files in all): "
        "00001.png = 00002.png = 00003.png; 00010.png = 00011.png"
    )
    assert check_image_set(tmp_path, make_spec(allow_duplicates=True)).findings == []


def test_empty_file(tmp_path):
    make_set(tmp_path)
    (tmp_path / "00007.png").write_bytes(b"")
    report = check_image_set(tmp_path, make_spec())
    found = by_code(report)
    assert set(found) == {"images.count", "images.empty"}
    assert found["images.empty"].message == "1 file is empty (0 bytes): 00007.png"
    assert (
        found["images.count"].message == "found 19 images; expected 20 (not counting 1 other file)"
    )
    assert report.count == N - 1


def test_non_image_files(tmp_path):
    make_set(tmp_path)
    (tmp_path / "notes.txt").write_text("my FID was 12\n")
    (tmp_path / "00009.png").write_bytes(b"PK\x03\x04 not a picture")
    found = by_code(check_image_set(tmp_path, make_spec()))
    assert set(found) == {"images.count", "images.not_image"}
    assert found["images.not_image"].message == "2 files are not an image: 00009.png, notes.txt"
    assert (
        found["images.count"].message == "found 19 images; expected 20 (not counting 2 other files)"
    )


def test_formats_outside_the_safe_list_are_never_opened(tmp_path):
    # Pillow would hand an EPS file to Ghostscript on load(); it is no homework image.
    make_set(tmp_path)
    (tmp_path / "00005.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n")
    found = by_code(check_image_set(tmp_path, make_spec()))
    assert found["images.not_image"].message == "1 file is not an image: 00005.png"


def test_oversized_file_is_not_read(tmp_path):
    make_set(tmp_path)
    big = tmp_path / "00006.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * (2 * 1024**2))
    found = by_code(check_image_set(tmp_path, make_spec(max_pixels=1000)))
    assert found["images.file_too_large"].message == (
        "1 file is too large to be an allowed image and was not read: 00006.png (2 MiB)"
    )
    assert found["images.file_too_large"].path == "00006.png"


def test_fifo_does_not_hang_the_check(tmp_path):
    make_set(tmp_path)
    os.mkfifo(tmp_path / "00020.png.part")
    found = by_code(check_image_set(tmp_path, make_spec()))
    assert found["images.not_regular"].message == (
        "1 entry is not a regular file and not read: 00020.png.part (not a regular file)"
    )


def test_symbolic_link_is_not_followed(tmp_path):
    make_set(tmp_path)
    secret = tmp_path.parent / "secret.png"
    save(secret, seed=1000)
    (tmp_path / "00003.png").unlink()
    os.symlink(secret, tmp_path / "00003.png")
    found = by_code(check_image_set(tmp_path, make_spec()))
    assert found["images.not_regular"].message == (
        "1 entry is not a regular file and not read: 00003.png (a symbolic link)"
    )


# ---------------------------------------------------------------- a full-size set


@pytest.fixture(scope="module")
def ten_thousand(tmp_path_factory) -> Path:
    """10,000 distinct 28x28 RGB PNGs, encoded directly (Pillow's encoder is the slow part)."""
    folder = tmp_path_factory.mktemp("ten_thousand")
    rows = np.zeros((28, 1 + 28 * 3), np.uint8)  # each row: filter byte 0, then RGB
    rows[:, 1:] = pixels(0).reshape(28, 28 * 3)
    for i in range(1, 10_001):
        rows[0, 1:4] = (i & 255, i >> 8, 7)  # distinct bytes: no duplicates
        (folder / f"{i:05d}.png").write_bytes(png_bytes(28, 28, 8, 2, rows.tobytes()))
    return folder


def test_ten_thousand_images(ten_thousand):
    names = sorted(os.listdir(ten_thousand))
    gone = {"00017.png"} | {f"{i:05d}.png" for i in range(4512, 4521)}
    files = [n for n in names if n not in gone]
    report = check_image_set(ten_thousand, make_spec(count=10_000), files=files)
    found = by_code(report)
    assert set(found) == {"images.count", "images.missing"}  # nothing wrong with the 9,990 others
    assert found["images.count"].message == "found 9,990 images; expected 10,000"
    assert (
        found["images.missing"].message == "10 expected images missing: 00017.png, 04512-04520.png"
    )
    assert report.count == 9_990
    assert report.images == [ten_thousand / n for n in files]
