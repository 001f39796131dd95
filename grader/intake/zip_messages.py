"""How the zip reader speaks: one Finding per kind of problem, in a student's words.

The hardened reader (unpack.py) records what it refused or noticed with ``Report.add`` and
friends; this module turns those records into messages and fix hints. Wording lives here so
the reader stays about bytes and paths.
"""

from __future__ import annotations

from grader.files import format_bytes
from grader.findings import Finding, Severity, compact_list
from grader.schema import UnpackLimits

NOT_ZIP_MAGIC = [
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x1f\x8b", "a gzip file (.gz or .tar.gz)"),
    (b"BZh", "a bzip2 file"),
    (b"\xfd7zXZ\x00", "an xz file"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"%PDF", "a PDF document"),
]
MAKE_ZIP_HINT = (
    "make a real .zip: Windows: right-click > Send to > Compressed (zipped) folder; "
    "macOS: right-click > Compress; Linux: zip -r submission.zip files..."
)
_MAC_HINT = (
    "on macOS zip from Terminal without them: cd your_folder && "
    "zip -r -X ../submission.zip . -x '.*' -x '__MACOSX/*'"
)
_WINDOWS_HINT = "delete these hidden Windows files (Thumbs.db, desktop.ini) before zipping"

# kind -> (singular, plural, hint); one finding per kind, code zip.junk
_JUNK = {
    "macosx": ("macOS junk entry", "macOS junk entries", _MAC_HINT),
    "ds_store": ("macOS .DS_Store file", "macOS .DS_Store files", _MAC_HINT),
    "appledouble": ("macOS '._' resource file", "macOS '._' resource files", _MAC_HINT),
    "thumbs_db": ("Windows Thumbs.db file", "Windows Thumbs.db files", _WINDOWS_HINT),
    "desktop_ini": ("Windows desktop.ini file", "Windows desktop.ini files", _WINDOWS_HINT),
}

# code -> (severity, singular, plural, tail, hint); one finding per code, listing the entries.
# The message reads "the zip contains <n> <singular|plural><tail>"; {names} lists them,
# {itwas} is "it was"/"they were", {where} is "zip"/"folder".
_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO
_ENTRY_PROBLEMS = {
    "zip.path_traversal": (
        _E, "entry whose path leads outside the zip", "entries whose paths lead outside the zip",
        " ('..', an absolute path or a drive letter): {names}; {itwas} not extracted",
        ("zip the files from inside their folder so that every path is relative and has no "
         "'..', e.g. cd my_folder && zip -r ../submission.zip ."),
    ),
    "zip.bad_name": (
        _E, "entry whose name cannot be a file name", "entries whose names cannot be file names",
        " (empty, too long, or holding a NUL byte): {names}; {itwas} not extracted",
        "give the files short, plain names and zip them again",
    ),
    "zip.symlink": (
        _E, "symbolic link", "symbolic links",
        ": {names}; links are never followed, so {itwas} ignored",
        "put the files themselves in the {where}, not links to them (zip without -y/--symlinks)",
    ),
    "zip.special_file": (
        _E, "special file (device, FIFO or socket)", "special files (device, FIFO or socket)",
        ": {names}; {itwas} ignored",
        "include only regular files",
    ),
    "zip.encrypted": (
        _E, "password-protected entry", "password-protected entries",
        ": {names}; {itwas} not extracted because the grader cannot read encrypted files",
        "zip the files again without a password",
    ),
    "zip.unsupported_compression": (
        _E, "entry compressed with a method the grader cannot read",
        "entries compressed with a method the grader cannot read",
        ": {names}; {itwas} not extracted",
        ("zip again with the standard Deflate method (the default of zip, of Windows' "
         "Compressed (zipped) folder and of macOS' Compress)"),
    ),
    "zip.entry_too_large": (
        _E, "entry larger than the limit of {entry_limit}",
        "entries larger than the limit of {entry_limit}",
        ": {names}; {itwas} not extracted",
        "leave data sets, model weights and other large files out of the zip",
    ),
    "zip.bomb": (
        _E, "entry compressed more than {ratio}:1, the way zip bombs are",
        "entries compressed more than {ratio}:1, the way zip bombs are",
        ": {names}; {itwas} not extracted",
        ("leave out files of repeated data (blank images, zero-filled arrays); ask the TA if "
         "you really need them"),
    ),
    "zip.size_mismatch": (
        _E, "entry whose data does not match the size its header declares",
        "entries whose data does not match the sizes their headers declare",
        (": {names}; extraction stopped there and {itwas} dropped (headers that lie about "
         "sizes are how zip bombs work)"),
        "zip the files again with a standard tool",
    ),
    "zip.bad_crc": (
        _E, "damaged entry (its checksum does not match)",
        "damaged entries (their checksums do not match)",
        ": {names}; {itwas} not extracted",
        "zip the files again and check that the upload completed",
    ),
    "zip.corrupt_entry": (
        _E, "damaged entry that cannot be decompressed",
        "damaged entries that cannot be decompressed",
        ": {names}; {itwas} not extracted",
        "zip the files again and check that the upload completed",
    ),
    "zip.duplicate_name": (
        _W, "entry whose name appears earlier in the zip",
        "entries whose names appear earlier in the zip",
        ": {names}; only the first copy was kept",
        "add each file once (updating a zip again and again can leave several copies)",
    ),
    "zip.case_collision": (
        _W, "name that differs from another only in upper/lower case",
        "names that differ from others only in upper/lower case",
        ": {names}; only the first was kept, since such names clash on Windows and macOS",
        "give every file a name that is unique whatever its case",
    ),
    "zip.path_conflict": (
        _W, "entry that is both a file and a folder", "entries that are both files and folders",
        ": {names}; only the first was kept",
        "give files and folders different names",
    ),
    "zip.unreadable": (
        _E, "item that could not be read", "items that could not be read",
        ": {names}; {itwas} ignored",
        "make the files readable (check their permissions) and submit again",
    ),
    "zip.nested_zip": (
        _W, "zip file", "zip files",
        ": {names}; zips inside a {where} are not unpacked",
        "put the files themselves in one zip, not a zip of zips",
    ),
    "zip.name_encoding": (
        _I, "entry name not marked as UTF-8", "entry names not marked as UTF-8",
        "; {itwas} read as: {names}",
        ("if a name looks wrong, zip with a tool that stores UTF-8 names (7-Zip, macOS "
         "Compress, zip on Linux)"),
    ),
}


class Report:
    """Collects problems per code and renders one Finding per code (or junk kind)."""

    def __init__(self, where: str, artifact: str | None, flat: bool, forbid_junk: bool,
                 limits: UnpackLimits | None = None):
        self.where, self.artifact, self.flat, self.forbid_junk = where, artifact, flat, forbid_junk
        self.limits = limits or UnpackLimits()
        self.head: list[Finding] = []
        self.tail: list[Finding] = []
        self.entries: dict[str, list[tuple[str, str]]] = {}
        self.junk: dict[str, list[str]] = {}

    def add(self, code: str, path: str, shown: str | None = None) -> None:
        self.entries.setdefault(code, []).append((path, shown or path))

    def add_junk(self, kind: str, path: str) -> None:
        self.junk.setdefault(kind, []).append(path)

    def archive(self, code: str, message: str, hint: str, severity: Severity = _E) -> None:
        self.head.append(Finding(code=code, severity=severity, message=message,
                                 artifact=self.artifact, hint=hint))

    def note(self, code: str, message: str, hint: str, severity: Severity, path: str | None = None):
        self.tail.append(Finding(code=code, severity=severity, message=message,
                                 artifact=self.artifact, path=path, hint=hint))

    @property
    def rejected(self) -> bool:
        """Some entry was refused (not merely noted)."""
        return bool(self.head) or any(
            code not in ("zip.name_encoding", "zip.nested_zip") for code in self.entries
        )

    def findings(self) -> list[Finding]:
        out = list(self.head)
        noun = ("entry", "entries") if self.where == "zip" else ("item", "items")
        fields = {
            "where": self.where,
            "entry_limit": format_bytes(self.limits.max_entry_bytes),
            "ratio": f"{self.limits.max_ratio:g}",
        }
        for code, (severity, one, many, tail, hint) in _ENTRY_PROBLEMS.items():
            items = self.entries.get(code)
            if not items:
                continue
            n = len(items)
            what = (one if n == 1 else many).format(**fields)
            if self.where != "zip":
                what = what.replace("entries", noun[1]).replace("entry", noun[0])
            text = tail.format(names=compact_list([s for _, s in items]),
                               itwas="it was" if n == 1 else "they were", **fields)
            out.append(Finding(
                code=code, severity=severity, artifact=self.artifact,
                message=f"the {self.where} contains {n:,} {what}{text}",
                path=items[0][0] if n == 1 else None, hint=hint.format(**fields),
            ))
        severity = _E if self.forbid_junk else _I
        verb = "zip" if self.where == "zip" else "submit"
        for kind, (one, many, hint) in _JUNK.items():
            paths = self.junk.get(kind)
            if not paths:
                continue
            n = len(paths)
            ignored = "it was" if n == 1 else "they were"
            ignored += " ignored" if self.where == "zip" else " left out of grading"
            out.append(Finding(
                code="zip.junk", severity=severity, artifact=self.artifact,
                message=(f"the {self.where} contains {n:,} {one if n == 1 else many} "
                         f"({compact_list(paths)}): {ignored}; {verb} the files without them"),
                path=paths[0] if n == 1 else None, hint=hint,
            ))
        return out + self.tail
