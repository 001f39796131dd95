"""Safe extraction of untrusted zips, and the same rules for a submission given as a folder.

Every problem in a student's archive is a Finding; nothing here raises for a student's
mistake. The safety argument, in short:

- Entry names are checked as text (no '..', no absolute or drive-letter path, no NUL) before
  anything is written, and `dest` starts empty and only ever receives plain folders and files
  created here (never a link), so no write can be redirected out of it: no per-entry
  ``resolve()`` is needed. Files are opened with O_EXCL | O_NOFOLLOW: nothing is overwritten.
- Declared sizes (entry count, per entry, total, compression ratio) are checked before
  anything is inflated; then the inflater is driven with a bounded output size and every
  byte is counted, so a header that lies about its size is caught as soon as the data
  outgrows it. Memory stays at about two CHUNKs whatever the entry size.
"""

from __future__ import annotations

import errno
import os
import stat
import string
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import GraderError
from grader.files import format_bytes, junk_kind
from grader.findings import Finding, Severity
from grader.intake.zip_messages import MAKE_ZIP_HINT, NOT_ZIP_MAGIC, Report
from grader.schema import UnpackLimits

CHUNK = 1 << 20  # bytes read, or inflated, per step

_FLAG_ENCRYPTED = 0x1
_FLAG_UTF8 = 0x800
_DOS_DIRECTORY = 0x10
_UNICODE_PATH_EXTRA = 0x7075  # Info-ZIP: UTF-8 name beside a legacy-encoded one
_LOCAL_HEADER_SIZE = 30
_EOCD_SIZE = 22
_METHOD_NAMES = {9: "Deflate64", 6: "Implode", 98: "PPMd", 99: "AES encryption", 93: "Zstandard"}
_READABLE_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_WRITE_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)
# Errors from a name this file system cannot hold: the student's problem, not the TA's.
_NAME_ERRNOS = {errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL, errno.ENOTDIR, errno.EISDIR}

@dataclass
class UnpackResult:
    root: Path  # folder holding the content; the wrapping folder when there is exactly one
    files: list[str] = field(default_factory=list)  # sorted POSIX paths under root
    findings: list[Finding] = field(default_factory=list)
    fatal: bool = False  # nothing usable came out


class _CorruptData(Exception):
    """An entry's stored data ends early or its header is broken."""


# ---------------------------------------------------------------- public API


def unpack_zip(zip_path: Path, dest: Path, limits: UnpackLimits, *, artifact: str | None = None,
               flat: bool = True, forbid_junk: bool = True) -> UnpackResult:
    """Extract the safe, useful entries of an untrusted zip into `dest` (new or empty).

    Refused entries are skipped with a Finding and the others still extract; `fatal` is set
    when nothing usable came out. GraderError only for the caller's problems: a missing zip,
    a `dest` that is not empty, a disk that cannot be written.
    """
    zip_path, dest = Path(zip_path), Path(dest)
    _prepare_dest(dest)
    report = Report("zip", artifact, flat, forbid_junk, limits)
    zf = _open_zip(zip_path, limits, report)
    if zf is None:
        return UnpackResult(root=dest, findings=report.findings(), fatal=True)
    with zf:
        plan = _plan(zf, zip_path.stat().st_size, limits, report)
        written = _extract(zf, zip_path, plan, dest, limits, report) if plan else []
    if plan is None:
        return UnpackResult(root=dest, findings=report.findings(), fatal=True)
    return _finish(dest, written, report)


def scan_folder(folder: Path, *, artifact: str | None = None, flat: bool = True,
                forbid_junk: bool = True) -> UnpackResult:
    """Apply the zip rules to a submitted folder without changing it: junk, links (never
    followed) and special files are reported and left out of `files`, not deleted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GraderError(f"{folder} is not a folder")
    report = Report("folder", artifact, flat, forbid_junk)
    files: list[str] = []
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            with os.scandir(os.path.join(folder, rel) if rel else folder) as it:
                entries = list(it)
        except OSError:
            report.add("zip.unreadable", (rel or ".") + "/")
            continue
        for entry in entries:
            path = f"{rel}/{entry.name}" if rel else entry.name
            try:
                if entry.is_symlink():
                    report.add("zip.symlink", path)
                elif entry.is_dir(follow_symlinks=False):
                    if entry.name == "__MACOSX":
                        report.add_junk("macosx", path + "/")
                    else:
                        stack.append(path)
                elif not entry.is_file(follow_symlinks=False):
                    report.add("zip.special_file", path)
                elif kind := junk_kind([entry.name]):
                    report.add_junk(kind, path)
                else:
                    files.append(path)
            except OSError:
                report.add("zip.unreadable", path)
    files.sort()
    kept, keys = [], {}
    for path in files:
        key = _fold(path)
        if key in keys:
            report.add("zip.case_collision", path, f"{path} (clashes with {keys[key]})")
        else:
            keys[key] = path
            kept.append(path)
    return _finish(folder, kept, report)


def zip_member_names(zip_path: Path) -> list[str] | None:
    """Entry names as unpack_zip reads them ('/'-separated, folders end with '/'), junk left
    out; None when the file is not a readable zip. Reads only the central directory."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError,
            struct.error, UnicodeDecodeError):
        return None
    names = []
    for info in infos:
        name = _decode_name(info)[0].replace("\\", "/")
        if junk_kind(name.split("/")) is None:
            names.append(name)
    return names


# ---------------------------------------------------------------- opening


def _prepare_dest(dest: Path) -> None:
    if dest.exists():
        if not dest.is_dir():
            raise GraderError(f"extraction folder {dest} exists and is not a folder")
        with os.scandir(dest) as it:
            if next(it, None) is not None:
                raise GraderError(f"extraction folder {dest} must be new or empty")
    else:
        dest.mkdir(parents=True)


def _open_zip(path: Path, limits: UnpackLimits, report: Report) -> zipfile.ZipFile | None:
    try:
        size = path.stat().st_size
        head, declared = _sniff(path, size)
    except OSError as e:
        raise GraderError(f"cannot read {path}: {e}") from e
    if size == 0:
        report.archive("zip.not_a_zip", "the uploaded file is empty (0 bytes), not a zip",
                       MAKE_ZIP_HINT)
        return None
    if declared is None:
        if head.startswith(b"PK\x03\x04"):
            report.archive(
                "zip.truncated",
                "the zip is incomplete: its end (the table of contents) is missing, as after "
                "an interrupted upload or download, so nothing can be extracted",
                "zip the files again and check that the file you upload has its full size",
            )
        else:
            looks = next((what for magic, what in NOT_ZIP_MAGIC if head.startswith(magic)), None)
            if looks is None and head[257:262] == b"ustar":
                looks = "a tar archive"
            report.archive(
                "zip.not_a_zip",
                "the uploaded file is not a zip" + (f" (it looks like {looks})" if looks else ""),
                MAKE_ZIP_HINT,
            )
        return None
    if declared > limits.max_entries:
        _too_many(report, declared, limits)
        return None
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError,
            struct.error, UnicodeDecodeError) as e:
        report.archive("zip.corrupt", f"the zip is damaged and cannot be read ({e})",
                       "zip the files again with a standard tool and upload the new zip")
        return None


def _sniff(path: Path, size: int) -> tuple[bytes, int | None]:
    """(first bytes, entry count declared by the end record or None when there is none).

    Reading the count first refuses a zip with millions of entries before zipfile parses
    (and holds in memory) its whole central directory."""
    with open(path, "rb") as f:
        head = f.read(264)
        tail_len = min(size, _EOCD_SIZE + 0xFFFF + 20)  # end record, longest comment, zip64 locator
        f.seek(size - tail_len)
        tail = f.read(tail_len)
        i = tail.rfind(b"PK\x05\x06")
        while i >= 0 and len(tail) - i < _EOCD_SIZE:
            i = tail.rfind(b"PK\x05\x06", 0, i)
        if i < 0:
            return head, None
        (count,) = struct.unpack_from("<H", tail, i + 10)
        if count == 0xFFFF and i >= 20 and tail[i - 20:i - 16] == b"PK\x06\x07":
            (offset,) = struct.unpack_from("<Q", tail, i - 12)
            f.seek(offset)
            record = f.read(56)
            if len(record) == 56 and record[:4] == b"PK\x06\x06":
                (count,) = struct.unpack_from("<Q", record, 32)
        return head, count


def _too_many(report: Report, n: int, limits: UnpackLimits) -> None:
    report.archive(
        "zip.too_many_entries",
        f"the zip has {n:,} entries, more than the limit of {limits.max_entries:,}; "
        "nothing was extracted",
        "zip only the files the assignment asks for",
    )


# ---------------------------------------------------------------- planning


def _plan(zf: zipfile.ZipFile, archive_size: int, limits: UnpackLimits,
          report: Report) -> list[tuple[zipfile.ZipInfo, str]] | None:
    """The entries to extract, each checked by name, type and declared size; None = refuse."""
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        _too_many(report, len(infos), limits)
        return None
    if not infos:
        report.archive("zip.empty", "the zip is empty: it holds no files",
                       "zip the files the assignment asks for and upload that zip")
        return None
    keep: list[tuple[zipfile.ZipInfo, str]] = []
    exact: set[str] = set()
    keys: dict[str, str] = {}  # folded path -> first path kept
    dir_keys: set[str] = set()  # folded folders that kept files live in
    total = compressed = 0
    for info in infos:
        compressed += info.compress_size
        name, legacy = _decode_name(info)
        path, is_dir, problem = _check_name(name)
        if problem:
            report.add(problem, name)
            continue
        if not path:
            continue
        parts = path.split("/")
        kind = junk_kind(parts)
        if kind:
            report.add_junk(kind, name)
            continue
        if legacy:
            report.add("zip.name_encoding", name)
        # Unix mode in the high 16 bits: set by Unix tools and by Python on every system.
        ftype = stat.S_IFMT(info.external_attr >> 16)
        if is_dir or ftype == stat.S_IFDIR or (not ftype and info.external_attr & _DOS_DIRECTORY):
            continue
        if ftype == stat.S_IFLNK:
            report.add("zip.symlink", path)
        elif ftype and ftype != stat.S_IFREG:
            report.add("zip.special_file", path)
        elif info.flag_bits & _FLAG_ENCRYPTED:
            report.add("zip.encrypted", path)
        elif info.compress_type not in _READABLE_METHODS:
            method = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
            report.add("zip.unsupported_compression", path, f"{path} ({method})")
        elif (info.file_size >= limits.ratio_min_bytes
              and info.file_size > limits.max_ratio * max(info.compress_size, 1)):
            ratio = info.file_size / max(info.compress_size, 1)
            report.add("zip.bomb", path, f"{path} ({format_bytes(info.file_size)} from "
                       f"{format_bytes(info.compress_size)}, {ratio:,.0f}:1)")
        elif info.file_size > limits.max_entry_bytes:
            report.add("zip.entry_too_large", path, f"{path} ({format_bytes(info.file_size)})")
        elif path in exact:
            report.add("zip.duplicate_name", path)
        elif (key := _fold(path)) in keys:
            report.add("zip.case_collision", path, f"{path} (clashes with {keys[key]})")
        elif key in dir_keys or _parent_is_file(key, keys):
            report.add("zip.path_conflict", path)
        else:
            exact.add(path)
            keys[key] = path
            if len(parts) > 1:
                folded = key.split("/")
                dir_keys.update("/".join(folded[:i]) for i in range(1, len(folded)))
            total += info.file_size
            keep.append((info, path))
    if compressed > archive_size:
        # Entries sharing the same compressed bytes (the "overlapping" bomb): no honest zip
        # claims more compressed data than the whole file holds.
        report.archive(
            "zip.bomb",
            f"the zip's entries claim {format_bytes(compressed)} of compressed data in a file of "
            f"{format_bytes(archive_size)}: they overlap, as in a zip bomb; nothing was extracted",
            "zip the files again with a standard tool",
        )
        return None
    if total > limits.max_total_bytes:
        report.archive(
            "zip.too_large",
            f"the files in the zip would take {format_bytes(total)} once extracted, more than the "
            f"limit of {format_bytes(limits.max_total_bytes)}; nothing was extracted",
            "leave data sets, model weights and other large files out of the zip",
        )
        return None
    return keep


def _decode_name(info: zipfile.ZipInfo) -> tuple[str, bool]:
    """(name, True when non-ASCII and not marked UTF-8). zipfile decodes such names as
    cp437; macOS Archive Utility writes UTF-8 without the flag, so UTF-8 is tried first."""
    name = info.orig_filename  # before zipfile cuts it at a NUL byte
    if info.flag_bits & _FLAG_UTF8 or name.isascii():
        return name, False
    raw = name.encode("cp437")
    unicode_name = _unicode_path_extra(info.extra, raw)
    if unicode_name is not None:
        return unicode_name, False
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return name, True


def _unicode_path_extra(extra: bytes, raw_name: bytes) -> str | None:
    """The Info-ZIP Unicode Path field (7-Zip, WinZip), when it matches the legacy name."""
    i = 0
    while i + 4 <= len(extra):
        kind, size = struct.unpack_from("<HH", extra, i)
        body = extra[i + 4:i + 4 + size]
        if (kind == _UNICODE_PATH_EXTRA and len(body) > 5 and body[0] == 1
                and struct.unpack_from("<I", body, 1)[0] == zlib.crc32(raw_name)):
            try:
                return body[5:].decode("utf-8")
            except UnicodeDecodeError:
                return None
        i += 4 + size
    return None


def _check_name(name: str) -> tuple[str, bool, str | None]:
    """(clean relative path, is a folder, problem code). Backslashes count as separators,
    as Windows tools (old PowerShell Compress-Archive) wrote them, so '..\\x' is caught."""
    n = name.replace("\\", "/")
    if not n or "\x00" in n:
        return "", False, "zip.bad_name"
    if n[0] == "/" or (len(n) > 1 and n[1] == ":" and n[0] in string.ascii_letters):
        return "", False, "zip.path_traversal"
    parts = [p for p in n.split("/") if p and p != "."]
    if ".." in parts:
        return "", False, "zip.path_traversal"
    return "/".join(parts), n.endswith("/"), None



def _fold(path: str) -> str:
    """The key under which two names are the same file on Windows or macOS."""
    if path.isascii():
        return path.lower()
    return unicodedata.normalize("NFC", path).casefold()


def _parent_is_file(key: str, keys: dict[str, str]) -> bool:
    i = key.find("/")
    while i >= 0:
        if key[:i] in keys:
            return True
        i = key.find("/", i + 1)
    return False


# ---------------------------------------------------------------- extraction


def _extract(zf: zipfile.ZipFile, zip_path: Path, plan: list[tuple[zipfile.ZipInfo, str]],
             dest: Path, limits: UnpackLimits, report: Report) -> list[str]:
    base = os.fspath(dest) + os.sep
    made: set[str] = set()
    written: list[str] = []
    budget = limits.max_total_bytes
    plan.sort(key=lambda item: item[0].header_offset)  # read the archive front to back
    with open(zip_path, "rb") as raw:
        archive_size = os.fstat(raw.fileno()).st_size
        for info, path in plan:
            target = base + path  # path is checked: relative, no '..', no NUL
            try:
                parent = path.rpartition("/")[0]
                if parent and parent not in made:
                    os.makedirs(base + parent, exist_ok=True)
                    made.add(parent)
                fd = os.open(target, _WRITE_FLAGS, 0o644)
            except FileExistsError:  # names equal on this file system though not in the zip
                report.add("zip.case_collision", path)
                continue
            except OSError as e:
                if e.errno not in _NAME_ERRNOS:
                    raise GraderError(f"cannot write into {dest}: {e}") from e
                report.add("zip.bad_name", path)
                continue
            try:
                cap = min(info.file_size, limits.max_entry_bytes, budget)
                problem, n = _copy_entry(zf, raw, archive_size, info, fd, cap)
            except OSError as e:
                os.close(fd)
                os.unlink(target)
                raise GraderError(f"cannot write into {dest}: {e}") from e
            os.close(fd)
            if problem:
                os.unlink(target)
                report.add(problem, path)
                continue
            budget -= n
            written.append(path)
    return written


def _copy_entry(zf: zipfile.ZipFile, raw, archive_size: int, info: zipfile.ZipInfo, fd: int,
                cap: int) -> tuple[str | None, int]:
    """Stream one entry into fd; (problem code or None, bytes written). Never writes past cap."""
    n = crc = 0
    chunks = _entry_chunks(zf, raw, archive_size, info)
    try:
        for chunk in chunks:
            n += len(chunk)
            if n > cap:  # the data outgrows its declared size: stop before writing more
                return "zip.size_mismatch", n - len(chunk)
            crc = zlib.crc32(chunk, crc)
            _write_all(fd, chunk)
    except (_CorruptData, zlib.error, EOFError, zipfile.BadZipFile) as e:
        return ("zip.bad_crc" if "CRC" in str(e) else "zip.corrupt_entry"), n
    finally:
        chunks.close()
    if n != info.file_size:
        return "zip.size_mismatch", n
    if crc != info.CRC:
        return "zip.bad_crc", n
    return None, n


def _entry_chunks(zf: zipfile.ZipFile, raw, archive_size: int,
                  info: zipfile.ZipInfo) -> Iterator[bytes]:
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        # bzip2 / lzma: rare in homework; zipfile stops at the declared size and checks CRC.
        try:
            with zf.open(info) as src:
                while chunk := src.read(CHUNK):
                    yield chunk
        except (NotImplementedError, RuntimeError) as e:
            raise _CorruptData(str(e)) from e
        return
    raw.seek(info.header_offset)
    header = raw.read(_LOCAL_HEADER_SIZE)
    if len(header) != _LOCAL_HEADER_SIZE or header[:4] != b"PK\x03\x04":
        raise _CorruptData("bad local header")
    name_len, extra_len = struct.unpack_from("<HH", header, 26)
    start = info.header_offset + _LOCAL_HEADER_SIZE + name_len + extra_len
    if start + info.compress_size > archive_size:
        raise _CorruptData("data runs past the end of the file")
    raw.seek(start)
    if info.compress_type == zipfile.ZIP_STORED:
        yield from _stored_chunks(raw, info.compress_size)
    else:
        yield from _inflated_chunks(raw, info.compress_size)


def _stored_chunks(raw, size: int) -> Iterator[bytes]:
    left = size
    while left:
        data = raw.read(min(CHUNK, left))
        if not data:
            raise _CorruptData("data ends early")
        left -= len(data)
        yield data


def _inflated_chunks(raw, size: int) -> Iterator[bytes]:
    """Raw deflate, at most CHUNK bytes of output per step, whatever the input claims."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    left = size
    while not inflater.eof:
        data = inflater.unconsumed_tail
        if not data and left:
            data = raw.read(min(CHUNK, left))
            if not data:
                raise _CorruptData("data ends early")
            left -= len(data)
        out = inflater.decompress(data, CHUNK)
        if out:
            yield out
        elif not inflater.eof and len(inflater.unconsumed_tail) >= len(data):
            raise _CorruptData("deflate stream ends early")  # no input left, no progress


def _write_all(fd: int, data: bytes) -> None:
    done = os.write(fd, data)
    if done < len(data):
        view = memoryview(data)
        while done < len(data):
            done += os.write(fd, view[done:])


# ---------------------------------------------------------------- result


def _finish(base: Path, paths: list[str], report: Report) -> UnpackResult:
    paths.sort()
    where = report.where
    if not paths:
        if report.rejected:
            message = f"nothing usable is left in the {where}: every entry was rejected"
        elif report.junk:
            message = f"the {where} holds only system junk, no files"
        else:
            message = f"the {where} holds no files"
        report.note("zip.empty", message, "include the files the assignment asks for", Severity.ERROR)
        return UnpackResult(root=base, findings=report.findings(), fatal=True)
    wrapper = _wrapping_folder(paths)
    if wrapper:
        paths = [p[len(wrapper) + 1:] for p in paths]
        if where == "zip":
            message = (f"all files in the zip are inside the folder '{wrapper}/'; the files must "
                       "be at the top level of the zip, with no folder around them")
            hint = ("select the files themselves (not their folder) and compress them, e.g. "
                    f"cd {wrapper} && zip -r ../submission.zip .")
        else:
            message = (f"all files in the submitted folder are inside its subfolder '{wrapper}/'; "
                       "the files must be at the top level, with no folder around them")
            hint = f"move the files out of '{wrapper}/' to the top level of what you submit"
        report.note("zip.wrapping_folder", message, hint, Severity.ERROR if report.flat else Severity.INFO,
                    path=wrapper + "/")
    for p in paths:
        if p.lower().endswith(".zip"):
            report.add("zip.nested_zip", p)
    return UnpackResult(root=base / wrapper if wrapper else base, files=paths,
                        findings=report.findings())


def _wrapping_folder(paths: list[str]) -> str:
    """The folder chain every path lies in ('hw3' or 'hw3/images'); '' when there is none."""
    prefix = ""
    while True:
        first = paths[0][len(prefix):]
        if "/" not in first:
            return prefix.rstrip("/")
        candidate = prefix + first.split("/", 1)[0] + "/"
        if not all(p.startswith(candidate) for p in paths):
            return prefix.rstrip("/")
        prefix = candidate


def open_container(request, *, flat: bool, forbid_junk: bool) -> UnpackResult:
    """A submitted zip extracted under the request's work folder, or a submitted folder
    scanned in place: the same rules either way. `request` is an artifacts.CheckRequest."""
    if request.item.is_dir():
        return scan_folder(request.item, artifact=request.name, flat=flat, forbid_junk=forbid_junk)
    return unpack_zip(request.item, request.work / request.name, request.limits,
                      artifact=request.name, flat=flat, forbid_junk=forbid_junk)
