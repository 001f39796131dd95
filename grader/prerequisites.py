"""Earlier hand-ins a grade depends on (HW9: the final is not graded without the progress report).

A rubric's ``requires:`` lists them; each names who handed it in, as a CSV with a student id
column (the LMS export of that assignment) or as the folder of those hand-ins (any layout
``grader run`` reads), and what happens without it. ``not_graded``: a ``prerequisite.missing``
finding, which sets the grade to zero with the reason on the line (the rubric adds the code to
``scoring.zero_if``).
"""

from __future__ import annotations

import csv
import hashlib
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from grader.errors import GraderError
from grader.findings import Finding, error
from grader.schema import Strict

if TYPE_CHECKING:
    from grader.rubric import Rubric

MISSING_CODE = "prerequisite.missing"


class Prerequisite(Strict):
    title: str = "Earlier hand-in"  # e.g. "Progress report"
    handed_in: (
        Path  # CSV of who handed it in, or the folder of those hand-ins; relative to the rubric
    )
    column: str = "student_id"  # the CSV's student id column
    # Hand-ins after this time do not count (the CSV's `submitted_at` column, ISO 8601 with a
    # zone, or the folder's LMS times); None: any hand-in counts.
    due: datetime | None = None
    missing: Literal["not_graded"] = "not_graded"


def _from_csv(req: Prerequisite, path: Path) -> dict[str, datetime | None]:
    from grader.intake.discover import _as_aware

    found: dict[str, datetime | None] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            needed = {req.column} | ({"submitted_at"} if req.due else set())
            absent = needed - set(reader.fieldnames or [])
            if absent:
                raise GraderError(
                    f"{path}: missing column(s) {', '.join(sorted(absent))} "
                    f"(found {', '.join(reader.fieldnames or []) or 'none'})"
                )
            for line, row in enumerate(reader, start=2):
                sid = (row[req.column] or "").strip()
                if not sid:
                    continue
                when = None
                if req.due is not None:
                    when = _as_aware(row["submitted_at"])
                    if when is None:
                        raise GraderError(
                            f"{path}:{line}: cannot read time {row['submitted_at']!r} (use ISO 8601)"
                        )
                found[sid] = when
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise GraderError(f"cannot read {path}: {exc}") from None
    return found


def _from_folder(path: Path, id_pattern: str) -> dict[str, datetime | None]:
    from grader.intake.discover import apply_submission_times, discover

    subs = discover(path, id_pattern)
    apply_submission_times(subs, None)
    return {s.student_id: s.submitted_at for s in subs}


def handed_in(req: Prerequisite, rubric: Rubric) -> dict[str, datetime | None]:
    """Student id -> when it was handed in (None: time not known or not needed)."""
    path = rubric.resolve(req.handed_in)
    if path.is_dir():
        return _from_folder(path, rubric.submission.id_pattern)
    if path.is_file():
        return _from_csv(req, path)
    raise GraderError(
        f"requires ({req.title}): {path} not found (a CSV of who handed it in, or their hand-ins)"
    )


def prerequisite_problems(rubric: Rubric) -> list[str]:
    """Configuration problems, checked once before grading."""
    problems = []
    for req in rubric.requires:
        try:
            handed_in(req, rubric)
        except GraderError as exc:
            problems.append(str(exc))
    return problems


def prerequisite_digest(rubric: Rubric) -> str:
    """What the prerequisites depend on, for the grading key: who handed in what, and when."""
    h = hashlib.sha256()
    for req in rubric.requires:
        try:
            ids = handed_in(req, rubric)
        except GraderError as exc:
            h.update(f"error:{exc}".encode())
            continue
        for sid, when in sorted(ids.items()):
            h.update(f"{sid}|{when.isoformat() if when else ''}\n".encode())
    return h.hexdigest()


def prerequisite_findings(rubric: Rubric, student_id: str) -> list[Finding]:
    """A `prerequisite.missing` finding for each earlier hand-in this student lacks. A list
    that is not there (a student's own `grader check`) says nothing; `grader run` refuses to
    start without it (prerequisite_problems)."""
    findings = []
    for req in rubric.requires:
        try:
            ids = handed_in(req, rubric)
        except GraderError:
            continue
        source = rubric.resolve(req.handed_in).name
        if student_id not in ids:
            why = f"{req.title} was not handed in (not in {source})"
        elif req.due is not None and ids[student_id] is not None and ids[student_id] > req.due:
            why = f"{req.title} was handed in {ids[student_id].isoformat()}, after its due time {req.due.isoformat()}"
        else:
            continue
        findings.append(
            error(
                MISSING_CODE,
                f"{why}: this work is not graded",
                hint=f"hand in the {req.title.lower()} on time; talk to the TA if you did",
            )
        )
    return findings
