"""Check a submitted image set: count, names, layout, format, size, mode, decoding, duplicates.

Each file is read once: its bytes are hashed and decoded by Pillow from memory. Formats are
judged by content, never by extension. Only a small record per file is kept, and each kind
of problem becomes ONE Finding with a count and the first few file names, so the same
mistake across 10,000 files reads as one sentence a student can act on.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import stat
import struct
import sys
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image
from tqdm import tqdm

from grader.errors import GraderError
from grader.files import format_bytes, junk_kind
from grader.findings import Finding, compact_list, error, runs

if TYPE_CHECKING:
    from grader.artifacts import ImageSetArtifact

EXAMPLES = 5  # file names shown per problem

# Statuses of one file.
OK, EMPTY, NOT_IMAGE, CORRUPT, BOMB, TOO_BIG, SPECIAL, UNREADABLE = (
    "ok",
    "empty",
    "not_image",
    "corrupt",
    "bomb",
    "too_big",
    "special",
    "unreadable",
)

# Pillow is asked to open only these (and the rubric's own formats): some plugins run
# external programs on hostile input (EPS runs Ghostscript), which a homework image never needs.
SAFE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Signatures of formats Pillow reads, to tell a damaged image from a file that is no image.
MAGIC = [
    (PNG_SIGNATURE, "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
]

MODE_WORDS = {
    "1": "1-bit black and white",
    "L": "grayscale",
    "LA": "grayscale with alpha",
    "I;16": "16-bit grayscale",
    "I;16B": "16-bit grayscale",
    "I": "32-bit integer",
    "F": "32-bit float",
    "P": "palette",
    "PA": "palette with alpha",
    "RGB": "RGB",
    "RGBA": "RGB with alpha",
    "RGB;16": "16-bit RGB",
    "RGBA;16": "16-bit RGB with alpha",
    "CMYK": "CMYK",
    "YCbCr": "YCbCr",
}


# ---------------------------------------------------------------- one file


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What one file is; small, so 10,000 of them cost next to nothing."""

    status: str
    format: str | None = None  # set when the content is an image (or looks like one)
    mode: str | None = None  # Pillow's mode; ";16" added for 16-bit RGB(A) PNGs
    size: tuple[int, int] | None = None  # (width, height) from the header
    digest: bytes | None = None  # blake2b of the bytes
    detail: str = ""  # a short reason for the student


def max_file_bytes(max_pixels: int) -> int:
    # Uncompressed 16-bit RGBA is 8 bytes a pixel; 1 MiB more for headers and metadata.
    # Nothing larger can be an allowed image, so such a file is never read into memory.
    return 8 * max_pixels + 1024**2


def open_formats(wanted: Iterable[str]) -> tuple[str, ...]:
    """Pillow format names to try, the rubric's first; names Pillow lacks are dropped."""
    Image.init()
    names = dict.fromkeys(f.upper() for f in [*wanted, *SAFE_FORMATS])
    return tuple(f for f in names if f in Image.OPEN)


def inspect_file(path: str, max_pixels: int, formats: tuple[str, ...] = SAFE_FORMATS) -> FileInfo:
    """Read a file once, hash it, decode it from memory; never raises for bad content."""
    try:
        # O_NOFOLLOW: a link is reported, not followed; O_NONBLOCK: a FIFO cannot hang us.
        fd = os.open(
            path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        )
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return FileInfo(SPECIAL, detail="a symbolic link")
        return FileInfo(UNREADABLE, detail=exc.strerror or type(exc).__name__)
    with open(fd, "rb", closefd=True) as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return FileInfo(SPECIAL, detail="not a regular file")
        if st.st_size == 0:
            return FileInfo(EMPTY)
        if st.st_size > max_file_bytes(max_pixels):
            return FileInfo(TOO_BIG, format=_magic_format(f.read(16)), detail=format_bytes(st.st_size))
        data = f.read()
    if not data:
        return FileInfo(EMPTY)
    return inspect_bytes(data, max_pixels, formats)


def inspect_bytes(
    data: bytes, max_pixels: int, formats: tuple[str, ...] = SAFE_FORMATS
) -> FileInfo:
    digest = hashlib.blake2b(data, digest_size=16).digest()
    png = _png_header(data)
    if png is not None and png[0] * png[1] > max_pixels:
        # Refused from the IHDR alone: Pillow never sees it, nothing is allocated.
        return FileInfo(BOMB, "PNG", size=(png[0], png[1]), digest=digest)
    try:
        im = Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError:
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        fmt = _magic_format(data)
        return FileInfo(BOMB, fmt, digest=digest, detail=f"over {limit:,} pixels")
    except Exception as exc:  # noqa: BLE001 - a hostile header may raise anything; it is a finding
        fmt = _magic_format(data)
        if fmt is None:
            return FileInfo(NOT_IMAGE, digest=digest)
        return FileInfo(CORRUPT, fmt, digest=digest, detail=_reason(exc))
    with im:
        fmt, size = im.format, im.size
        mode = im.mode
        if png is not None and png[2] == 16 and mode in ("RGB", "RGBA"):
            mode += ";16"  # Pillow reads 16-bit colour PNGs as 8-bit RGB(A)
        if size[0] * size[1] > max_pixels:
            return FileInfo(BOMB, fmt, mode, size, digest)
        try:
            im.load()  # a full decode: the only way to find truncated or corrupt data
        except Exception as exc:  # noqa: BLE001 - decoders raise many types on hostile data
            return FileInfo(CORRUPT, fmt, mode, size, digest, _reason(exc))
    return FileInfo(OK, fmt, mode, size, digest)


def _png_header(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, bit depth) from a PNG's IHDR, read without Pillow."""
    if len(data) >= 26 and data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR":
        width, height, depth = struct.unpack(">IIB", data[16:25])
        return width, height, depth
    return None


def _magic_format(head: bytes) -> str | None:
    for signature, fmt in MAGIC:
        if head.startswith(signature):
            return fmt
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def _reason(exc: Exception) -> str:
    text = re.sub(r"<[^>]*>", "", str(exc)).strip()  # drop object reprs (memory addresses)
    if "truncated" in text.lower():
        return "truncated"
    if not text or text.startswith("cannot identify image file"):
        return "unreadable header"
    return text[:80]



# ---------------------------------------------------------------- many files


def inspect_files(
    paths: Iterable[str], max_pixels: int, formats: tuple[str, ...] = SAFE_FORMATS
) -> Iterator[FileInfo]:
    """FileInfo for each path, in order, one file in memory at a time.

    In-process on purpose: measured on 10,000 28x28 PNGs with 2 cores, a process pool was
    no faster with fork and twice as slow with forkserver; decoding such files is cheaper
    than shipping them between processes.
    """
    with warnings.catch_warnings():
        # Pillow warns between its own limit and twice it; our max_pixels rules instead.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        for path in paths:
            yield inspect_file(path, max_pixels, formats)


def walk_files(root: Path) -> list[str]:
    """Relative POSIX paths of the files under root, sorted; OS junk is skipped silently."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and not junk_kind([d])]
        rel = os.path.relpath(folder, root)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        found += [prefix + f for f in files if not f.startswith(".") and not junk_kind([f])]
        # os.walk does not descend into links to folders; report them as entries.
        found += [prefix + d for d in dirs if os.path.islink(os.path.join(folder, d))]
    return sorted(found)


# ---------------------------------------------------------------- tallies


@dataclass
class Group:
    """A count of files with one problem and the first few of their names."""

    count: int = 0
    names: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    def add(self, name: str, detail: str = "") -> None:
        self.count += 1
        if len(self.names) < EXAMPLES:
            self.names.append(name)
            self.details.append(detail)

    def listing(self, sep: str = ", ") -> str:
        shown = [f"{n} ({d})" if d else n for n, d in zip(self.names, self.details)]
        more = self.count - len(shown)
        return sep.join(shown) + (f" and {more:,} more" if more else "")


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def _are(n: int, one: str, many: str | None = None) -> str:
    """'1 file is' / '3 files are'."""
    return f"{_plural(n, one, many)} {'is' if n == 1 else 'are'}"


def _grouped(groups: dict, label: Callable[[object], str], first: int = 3) -> str:
    """'412 grayscale (L): a.png, ...; 3 palette (P): ...' — biggest groups first."""
    ordered = sorted(groups.items(), key=lambda kv: (-kv[1].count, str(kv[0])))
    parts = [f"{g.count:,} {label(k)}: {g.listing()}" for k, g in ordered[:first]]
    if len(ordered) > first:
        parts.append(f"and {len(ordered) - first} more kinds")
    return "; ".join(parts)


# ---------------------------------------------------------------- the check


@dataclass
class ImageSetReport:
    findings: list[Finding]
    images: list[Path]  # the decodable image files, sorted by relative name (what FID consumes)
    count: int  # number of image-like files found (by content)


def check_image_set(
    root: Path,
    spec: ImageSetArtifact,
    *,
    artifact: str | None = None,
    files: list[str] | None = None,
    progress: bool = False,
) -> ImageSetReport:
    """Check the image set under ``root`` against ``spec``.

    ``files`` are relative POSIX paths under root (junk already removed by the unpacker);
    None walks root. ``progress`` shows a progress bar on stderr.
    """
    root = Path(root)
    if not root.is_dir():
        raise GraderError(f"image set folder not found: {root}")
    names = sorted(files) if files is not None else walk_files(root)
    root_str = str(root)
    mark = _Marker(artifact)

    problems: dict[str, Group] = defaultdict(Group)  # status -> files
    formats: dict[str, Group] = defaultdict(Group)
    sizes: dict[tuple[int, int], Group] = defaultdict(Group)
    modes: dict[str, Group] = defaultdict(Group)
    first_seen: dict[bytes, int] = {}  # digest -> index of the first file with these bytes
    duplicates: dict[bytes, Group] = {}
    image_names: list[str] = []  # files whose content is an image, even a broken one
    images: list[Path] = []
    allowed_formats = {f.upper() for f in spec.formats}
    allowed_modes = set(spec.modes) if spec.modes is not None else None

    paths = (os.path.join(root_str, n) for n in names)
    infos = inspect_files(paths, spec.max_pixels, open_formats(spec.formats))
    bar = tqdm(
        infos,
        total=len(names),
        desc=artifact or "images",
        unit="img",
        disable=not progress,
        file=sys.stderr,
        leave=False,
    )
    for i, (name, info) in enumerate(zip(names, bar)):
        if info.status != OK:
            problems[info.status].add(name, _problem_detail(info))
        else:
            images.append(root / name)
        if info.format is None:
            continue
        image_names.append(name)
        if info.format.upper() not in allowed_formats:
            formats[info.format].add(name)
        if info.size is not None and info.status != BOMB:
            if spec.size is not None and tuple(info.size) != tuple(spec.size):
                sizes[info.size].add(name)
            if allowed_modes is not None and info.mode not in allowed_modes:
                modes[info.mode].add(name)
        if info.digest is not None and not spec.allow_duplicates:
            j = first_seen.setdefault(info.digest, i)
            if j != i:
                if info.digest not in duplicates:
                    duplicates[info.digest] = Group()
                    duplicates[info.digest].add(names[j])
                duplicates[info.digest].add(name)
    bar.close()

    findings: list[Finding] = []
    findings += _layout_findings(names, spec, mark)
    findings += _count_findings(len(image_names), len(names), spec, mark)
    findings += _name_findings(names, image_names, spec, mark)
    findings += _file_findings(problems, spec, mark)
    findings += _image_findings(formats, sizes, modes, spec, mark)
    findings += _duplicate_findings(duplicates, mark)
    return ImageSetReport(findings=findings, images=images, count=len(image_names))


class _Marker:
    """Makes the Findings of one artifact; a Finding about one file carries its path."""

    def __init__(self, artifact: str | None):
        self.artifact = artifact

    def __call__(
        self, code: str, message: str, hint: str | None = None, group: Group | None = None
    ) -> Finding:
        path = None
        if group is not None and group.count == 1:
            path = group.names[0]
        return error(f"images.{code}", message, artifact=self.artifact, path=path, hint=hint)


def _key(name: str, flat: bool) -> str:
    """The name matched against the rubric's pattern (folders are reported on their own)."""
    return name.rsplit("/", 1)[-1] if flat else name


def _problem_detail(info: FileInfo) -> str:
    if info.status == BOMB and info.size is not None:
        return f"{info.size[0]:,}x{info.size[1]:,}"
    return info.detail


def _layout_findings(names: list[str], spec: ImageSetArtifact, mark: _Marker) -> list[Finding]:
    if not spec.flat:
        return []
    folders: dict[str, int] = defaultdict(int)
    for name in names:
        if "/" in name:
            folders[name.split("/", 1)[0] + "/"] += 1
    if not folders:
        return []
    hint = "zip or copy the image files themselves, not the folder that holds them"
    inside = sum(folders.values())
    if len(folders) == 1:
        (folder,) = folders
        if inside == len(names):
            msg = f"the images are inside the folder '{folder}'; put them at the top level"
        else:
            msg = f"{_are(inside, 'file')} inside the folder '{folder}'; put them at the top level"
    else:
        listed = compact_list(
            [f"'{d}' ({_plural(n, 'file')})" for d, n in sorted(folders.items())], 3
        )
        msg = f"{_are(inside, 'file')} inside subfolders {listed}; put them at the top level"
    return [mark("subdirectory", msg, hint)]


def _count_findings(
    count: int, total_files: int, spec: ImageSetArtifact, mark: _Marker
) -> list[Finding]:
    if spec.count is None:
        if count:
            return []
        return [mark("count", "found no images")]
    if count == spec.count:
        return []
    others = total_files - count
    note = f" (not counting {_plural(others, 'other file')})" if others else ""
    return [
        mark(
            "count",
            f"found {count:,} images; expected {spec.count:,}{note}",
            f"the set must hold exactly {spec.count:,} images",
        )
    ]


def _name_findings(
    names: list[str], image_names: list[str], spec: ImageSetArtifact, mark: _Marker
) -> list[Finding]:
    expected = spec.expected_names()
    if expected is None:
        return []
    present = {_key(n, spec.flat) for n in names}  # any file, even a broken one, is not missing
    expected_set = set(expected)
    missing = {name: spec.first_index + k for k, name in enumerate(expected) if name not in present}
    unexpected = [n for n in image_names if _key(n, spec.flat) not in expected_set]

    # A file whose number names a missing image is misnamed, not extra: 1.png for 00001.png.
    renames: list[tuple[str, str]] = []
    for name in unexpected:
        digits = re.findall(r"\d+", _key(name, spec.flat))
        if digits:
            target = spec.names.format(index=int(digits[-1]))
            if target in missing:
                renames.append((name, target))
                del missing[target]
    renamed = {old for old, _ in renames}
    unexpected = [n for n in unexpected if n not in renamed]

    first, last = expected[0], expected[-1]
    python = "f'" + spec.names.replace("{index", "{i") + "'"
    pattern_hint = (
        f"name image i as {python}: {first}, {spec.names.format(index=spec.first_index + 1)}, "
        f"..., {last}"
        if len(expected) > 1
        else f"name the image {first}"
    )
    findings = []
    if renames:
        unpadded = all(_unpadded(new) == old for old, new in renames)
        shown = compact_list([f"{old} should be {new}" for old, new in renames[:EXAMPLES]])
        if len(renames) > EXAMPLES:
            shown += f" and {len(renames) - EXAMPLES:,} more"
        kind = "are named without zero padding" if unpadded else "have the wrong name"
        findings.append(
            mark("names", f"{_plural(len(renames), 'image')} {kind}: {shown}", pattern_hint)
        )
    if missing:
        findings.append(
            mark(
                "missing",
                f"{_plural(len(missing), 'expected image')} missing: "
                f"{_name_ranges(sorted(missing.values()), spec.names)}",
                f"the set must hold every name from {first} to {last}",
            )
        )
    if unexpected:
        hint = (
            f"only {first} ... {last} are expected"
            if len(expected) > 1
            else f"only {first} is expected"
        )
        before = spec.names.format(index=spec.first_index - 1)
        if any(_key(n, spec.flat) == before for n in unexpected):
            hint += f"; numbering starts at {first}, not {before}"
        shown = compact_list(unexpected[:EXAMPLES])
        if len(unexpected) > EXAMPLES:
            shown += f" and {len(unexpected) - EXAMPLES:,} more"
        findings.append(mark("unexpected", f"unexpected: {shown}", hint))
    return findings


def _unpadded(name: str) -> str:
    return re.sub(r"(?<!\d)0+(?=\d)", "", name)


def _name_ranges(indices: list[int], pattern: str) -> str:
    """Sorted indices as names with ranges: '00017.png, 04512-04520.png'."""
    return compact_list([_span(pattern, a, b) for a, b in runs(indices)])


def _span(pattern: str, a: int, b: int) -> str:
    """'00017.png' for one name; '04512-04520.png' and 'img_3-5.png' for a range."""
    first, last = pattern.format(index=a), pattern.format(index=b)
    if a == b:
        return first
    start = pattern.index("{index")
    prefix, suffix = pattern[:start], pattern[pattern.index("}", start) + 1 :]
    return f"{first[: len(first) - len(suffix)]}-{last[len(prefix) :]}"


def _file_findings(
    problems: dict[str, Group], spec: ImageSetArtifact, mark: _Marker
) -> list[Finding]:
    findings = []
    if g := problems.get(SPECIAL):
        findings.append(
            mark(
                "not_regular",
                f"{_are(g.count, 'entry', 'entries')} not a regular file and not read: "
                f"{g.listing()}",
                "submit plain image files, not links or special files",
                g,
            )
        )
    if g := problems.get(UNREADABLE):
        findings.append(
            mark(
                "unreadable",
                f"{_plural(g.count, 'file')} could not be read: {g.listing()}",
                None,
                g,
            )
        )
    if g := problems.get(EMPTY):
        findings.append(
            mark(
                "empty",
                f"{_are(g.count, 'file')} empty (0 bytes): {g.listing()}",
                "save these images again; an empty file usually means the program stopped while "
                "writing it",
                g,
            )
        )
    if g := problems.get(NOT_IMAGE):
        findings.append(
            mark(
                "not_image",
                f"{_are(g.count, 'file')} not an image: {g.listing()}",
                f"the set must hold only {' or '.join(spec.formats)} images; "
                "remove every other file",
                g,
            )
        )
    if g := problems.get(TOO_BIG):
        findings.append(
            mark(
                "file_too_large",
                f"{_are(g.count, 'file')} too large to be an allowed image and "
                f"{'was' if g.count == 1 else 'were'} not read: {g.listing()}",
                _size_hint(spec),
                g,
            )
        )
    if g := problems.get(BOMB):
        findings.append(
            mark(
                "decompression_bomb",
                f"{_plural(g.count, 'image')} {'declares' if g.count == 1 else 'declare'} "
                f"more than {spec.max_pixels:,} pixels and {'was' if g.count == 1 else 'were'} "
                "not decoded: "
                f"{g.listing()}",
                _size_hint(spec),
                g,
            )
        )
    if g := problems.get(CORRUPT):
        findings.append(
            mark(
                "corrupt",
                f"{_are(g.count, 'image')} truncated or corrupt and cannot be decoded: "
                f"{g.listing()}",
                "save these images again and check that they open",
                g,
            )
        )
    return findings


def _size_hint(spec: ImageSetArtifact) -> str:
    if spec.size is not None:
        return f"save the images at {spec.size[0]}x{spec.size[1]} pixels"
    return f"save smaller images (at most {spec.max_pixels:,} pixels)"


def _image_findings(
    formats: dict, sizes: dict, modes: dict, spec: ImageSetArtifact, mark: _Marker
) -> list[Finding]:
    findings = []
    wanted = " or ".join(spec.formats)
    if formats:
        total = sum(g.count for g in formats.values())
        if len(formats) == 1:
            ((fmt, g),) = formats.items()
            msg = f"{_are(total, 'image')} {fmt}, not {wanted}: {g.listing()}"
        else:
            msg = f"{_are(total, 'image')} not {wanted}: " + _grouped(formats, str)
        findings.append(
            mark(
                "format",
                msg + "; the file name does not change the format",
                f"save them as {wanted} (e.g. Pillow img.save(path, format='{spec.formats[0]}'))",
                next(iter(formats.values())) if total == 1 else None,
            )
        )
    if sizes:
        want = f"{spec.size[0]}x{spec.size[1]}"
        total = sum(g.count for g in sizes.values())
        if len(sizes) == 1:
            (((w, h), g),) = sizes.items()
            msg = f"{_are(total, 'image')} {w}x{h} pixels, not {want}: {g.listing()}"
        else:
            msg = f"{_are(total, 'image')} not {want} pixels: " + _grouped(
                sizes, lambda s: f"at {s[0]}x{s[1]}"
            )
        findings.append(
            mark("size", msg, _size_hint(spec), next(iter(sizes.values())) if total == 1 else None)
        )
    if modes:
        want = " or ".join(spec.modes)
        total = sum(g.count for g in modes.values())
        if len(modes) == 1:
            ((mode, g),) = modes.items()
            msg = f"{_are(total, 'image')} {_mode_words(mode)}: {g.listing()}; save them as {want}"
        else:
            msg = (
                f"{_are(total, 'image')} not {want}: "
                + _grouped(modes, _mode_words)
                + f"; save them as {want}"
            )
        findings.append(
            mark(
                "mode",
                msg,
                _mode_hint(spec.modes),
                next(iter(modes.values())) if total == 1 else None,
            )
        )
    return findings


def _mode_words(mode: str) -> str:
    words = MODE_WORDS.get(mode, mode)
    return words if words == mode else f"{words} ({mode})"


def _mode_hint(modes: list[str]) -> str:
    if modes == ["RGB"]:
        return (
            "convert before saving: img.convert('RGB'); with torchvision, save 3-channel "
            "8-bit tensors (x.repeat(1, 3, 1, 1) for one channel)"
        )
    return f"convert before saving, e.g. img.convert('{modes[0]}')"


def _duplicate_findings(duplicates: dict[bytes, Group], mark: _Marker) -> list[Finding]:
    if not duplicates:
        return []
    groups = list(duplicates.values())
    files = sum(g.count for g in groups)
    shown = "; ".join(g.listing(sep=" = ") for g in groups[:3])
    if len(groups) > 3:
        shown += f"; and {len(groups) - 3:,} more groups"
    return [
        mark(
            "duplicates",
            f"{_plural(len(groups), 'group')} of byte-identical images "
            f"({files:,} files in all): {shown}",
            "every image must be a separate sample; check that each one gets new noise",
        )
    ]
