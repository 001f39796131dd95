"""Find each student's submission in a folder, whatever the LMS export looks like.

Layouts (see submissions/README.md):
- plain: one folder or one or more files per student, the student id taken from the name by
  the rubric's ``submission.id_pattern``;
- Moodle: ``Full Name_12345_assignsubmission_file_/`` folders;
- Canvas: flat files ``name_userid_subid_original.ext`` (``name_LATE_userid_...`` when late);
- Gradescope: ``submission_metadata.yml`` beside ``submission_NNN/`` folders.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import yaml

from grader.errors import GraderError

JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini", "__macosx"}

MOODLE_DIR = re.compile(r"^(?P<name>.+?)_(?P<lms_id>\d+)_assign(?:submission|feedback)_[a-z]+_?$")
CANVAS_FILE = re.compile(r"^(?P<name>[a-z0-9]+?)_(?P<late>late_)?(?P<lms_id>\d+)_(?P<sub_id>\d+)_(?P<original>.+)$")


@dataclass
class Submission:
    student_id: str
    items: list[Path]  # the files and folders the student handed in
    layout: str = "plain"
    name: str = ""  # display name from the LMS, when known
    lms_id: str = ""  # the LMS's own user id (Canvas user id, Moodle participant id)
    submitted_at: datetime | None = None
    submitted_at_source: str | None = None
    flagged_late: bool = False  # the LMS itself marked it late (Canvas _LATE_)
    item_names: dict[Path, str] = field(default_factory=dict)  # LMS-mangled path -> original name

    def display_name(self, item: Path) -> str:
        return self.item_names.get(item, item.name)


def _visible(path: Path) -> bool:
    return not path.name.startswith(".") and path.name.lower() not in JUNK_NAMES


def _children(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if _visible(p)), key=lambda p: p.name)


def student_id_from_name(name: str, id_pattern: str) -> str | None:
    match = re.search(id_pattern, name)
    return match.group("id") if match else None


class _TolerantLoader(yaml.SafeLoader):
    """Gradescope metadata may carry Ruby tags; read their values, ignore the tags."""


def _construct_any(loader, tag_suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_TolerantLoader.add_multi_constructor("!", _construct_any)


def _as_aware(value) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str):
        try:
            return _as_aware(datetime.fromisoformat(value.strip()))
        except ValueError:
            return None
    return None


def _strip_colons(data):
    if isinstance(data, dict):
        return {str(k).lstrip(":"): _strip_colons(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_strip_colons(v) for v in data]
    return data


def _discover_gradescope(root: Path, id_pattern: str) -> list[Submission]:
    meta_path = root / "submission_metadata.yml"
    try:
        meta = _strip_colons(yaml.load(meta_path.read_text(encoding="utf-8"), Loader=_TolerantLoader))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise GraderError(f"{meta_path}: cannot read Gradescope metadata: {exc}") from None
    if not isinstance(meta, dict):
        raise GraderError(f"{meta_path}: expected a mapping of submission folders")
    subs = []
    for folder_name, info in sorted(meta.items()):
        folder = root / folder_name
        if not folder.is_dir():
            continue
        submitters = (info or {}).get("submitters") or [{}]
        first = submitters[0] or {}
        sid = str(first.get("sid") or first.get("email") or "").strip() or folder_name
        subs.append(
            Submission(
                student_id=sid,
                items=_children(folder),
                layout="gradescope",
                name=str(first.get("name") or ""),
                lms_id=folder_name,
                submitted_at=_as_aware((info or {}).get("created_at")),
                submitted_at_source="Gradescope metadata",
            )
        )
    return subs


def _discover_canvas(files: list[Path], id_pattern: str) -> list[Submission]:
    by_user: dict[str, Submission] = {}
    for path in files:
        m = CANVAS_FILE.match(path.name.lower())
        assert m
        original = path.name[len(path.name) - len(m.group("original")):]
        # Canvas appends -1, -2 ... to resubmitted files' names: hw3-1.zip
        original = re.sub(r"-\d+(\.[^.]+)$", r"\1", original)
        lms_id = m.group("lms_id")
        sub = by_user.setdefault(
            lms_id, Submission(student_id="", items=[], layout="canvas", name=m.group("name"), lms_id=lms_id)
        )
        sub.items.append(path)
        sub.item_names[path] = original
        sub.flagged_late |= bool(m.group("late"))
    for sub in by_user.values():
        ids = [student_id_from_name(sub.item_names[p], id_pattern) for p in sub.items]
        sub.student_id = next((i for i in ids if i), sub.lms_id)
    return list(by_user.values())


def _discover_moodle(folders: list[Path], id_pattern: str) -> list[Submission]:
    subs = []
    for folder in folders:
        m = MOODLE_DIR.match(folder.name)
        assert m
        items = _children(folder)
        ids = [student_id_from_name(p.name, id_pattern) for p in items]
        subs.append(
            Submission(
                student_id=next((i for i in ids if i), m.group("lms_id")),
                items=items,
                layout="moodle",
                name=m.group("name").replace("_", " "),
                lms_id=m.group("lms_id"),
            )
        )
    return subs


def _discover_plain(entries: list[Path], id_pattern: str) -> list[Submission]:
    by_id: dict[str, Submission] = {}
    for entry in entries:
        sid = student_id_from_name(entry.stem if entry.is_file() else entry.name, id_pattern)
        sid = sid or (entry.stem if entry.is_file() else entry.name)
        sub = by_id.setdefault(sid, Submission(student_id=sid, items=[], layout="plain"))
        if entry.is_dir() and len(by_id[sid].items) == 0 and _is_student_folder(entry):
            sub.items.extend(_children(entry))
        else:
            sub.items.append(entry)
    return list(by_id.values())


def _is_student_folder(folder: Path) -> bool:
    """A folder of a student's artifacts (zips, PNGs), not itself an image set."""
    children = _children(folder)
    return 0 < len(children) <= 50


def discover(root: Path | str, id_pattern: str) -> list[Submission]:
    """All submissions under root, sorted by student id, in whichever layout root uses."""
    root = Path(root)
    if not root.is_dir():
        raise GraderError(f"submissions folder not found: {root}")
    if (root / "submission_metadata.yml").is_file():
        subs = _discover_gradescope(root, id_pattern)
    else:
        entries = _children(root)
        moodle = [p for p in entries if p.is_dir() and MOODLE_DIR.match(p.name)]
        canvas = [p for p in entries if p.is_file() and CANVAS_FILE.match(p.name.lower())]
        rest = [p for p in entries if p not in moodle and p not in canvas and p.name.lower() != "readme.md"]
        subs = _discover_moodle(moodle, id_pattern) + _discover_canvas(canvas, id_pattern)
        subs += _discover_plain(rest, id_pattern)
    _merge_duplicate_ids(subs)
    return sorted(subs, key=lambda s: s.student_id)


def _merge_duplicate_ids(subs: list[Submission]) -> None:
    seen: dict[str, Submission] = {}
    for sub in list(subs):
        if sub.student_id in seen:
            seen[sub.student_id].items.extend(sub.items)
            seen[sub.student_id].item_names.update(sub.item_names)
            subs.remove(sub)
        else:
            seen[sub.student_id] = sub


def read_times_csv(path: Path | str) -> dict[str, datetime]:
    """A TA-supplied CSV of submission times: columns student_id, submitted_at (ISO 8601 with zone)."""
    path = Path(path)
    times: dict[str, datetime] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = {"student_id", "submitted_at"} - set(reader.fieldnames or [])
            if missing:
                raise GraderError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
            for line, row in enumerate(reader, start=2):
                when = _as_aware(row["submitted_at"])
                if when is None:
                    raise GraderError(f"{path}:{line}: cannot read time {row['submitted_at']!r} (use ISO 8601)")
                times[row["student_id"].strip()] = when
    except FileNotFoundError:
        raise GraderError(f"times CSV not found: {path}") from None
    return times


def apply_submission_times(subs: list[Submission], times: dict[str, datetime] | None) -> None:
    """LMS metadata wins; then the TA's CSV; then the newest file time, said as such."""
    for sub in subs:
        if sub.submitted_at is not None:
            continue
        if times and sub.student_id in times:
            sub.submitted_at, sub.submitted_at_source = times[sub.student_id], "TA times CSV"
        elif sub.items:
            newest = max(p.stat().st_mtime for p in sub.items)
            sub.submitted_at = datetime.fromtimestamp(newest, tz=timezone.utc)
            sub.submitted_at_source = "file modification times"
