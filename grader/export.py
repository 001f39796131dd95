"""Grades out to where TAs need them: a generic CSV, a JSON document of every record, a Canvas
gradebook import, Gradescope results.json.

An incomplete grade is never written as a number: the generic CSV marks it (empty final,
`grade_status` incomplete and the reason); the LMS files leave its grade out (the CLI
refuses to write them at all unless the TA passes --allow-incomplete).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from grader import atomic
from grader.errors import GraderError
from grader.findings import Severity
from grader.layout import gradescope_file
from grader.metrics.kinds.table import column_values, metric_columns, metrics_of
from grader.results import RunInfo, StudentResult

# The grade columns; each rubric metric's columns (named by its key, in rubric order) come
# between max_points and findings.
GRADE_COLUMNS = ["student_id", "raw_points", "late_days", "late_deduction", "final", "max_points"]
RECORD_COLUMNS = ["findings", "status", "grade_status", "incomplete_reason", "present", "ta_override"]


def _fmt(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _cell(value: float | str | None, digits: int) -> str:
    return value if isinstance(value, str) else _fmt(value, digits)


def _failing(result: StudentResult) -> int:
    return sum(f.severity is Severity.ERROR for f in result.findings)


def not_computed(result: StudentResult) -> str:
    """Why the grade or a metric is not complete: the grade's missing lines, then any metric
    without a value that they do not already name (a report-only metric, say)."""
    reasons = list(result.grade.incomplete) if result.grade else [result.incomplete_reason]
    for m in result.metrics:
        if m.value is None and not any(m.name in why for why in reasons):
            reasons.append(f"{m.name}: {m.skipped or 'not computed'}")
    return "; ".join(reasons)


def generic_csv(results: list[StudentResult], rubric=None) -> str:
    """One row per student: the grade, one column (or a kind's few) per rubric metric, and
    the record's state; an uncomputed metric is empty, with its reason in incomplete_reason."""
    metrics = metrics_of(results, rubric)
    kinds = {name: kind for name, kind, _ in metrics}
    columns = metric_columns(metrics)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(GRADE_COLUMNS + [c.key for c in columns] + RECORD_COLUMNS)
    for r in results:
        g = r.grade
        writer.writerow([
            r.student_id,
            _fmt(g.raw if g else None), g.late_days if g else "", _fmt(g.late_deduction if g else None),
            _fmt(g.final if g else None), _fmt(g.max_points if g else None),
            *(_cell(v, c.digits) for v, c in zip(column_values(columns, r, kinds), columns)),
            _failing(r), r.status, r.grade_status, not_computed(r),
            "yes" if r.present else "no (not in the latest run)", _overrides(r),
        ])
    return out.getvalue()


def json_export(results: list[StudentResult], run: RunInfo | None) -> str:
    """Every student's full record (metrics with provenance, grade lines, findings) and the
    run that graded them, as one document for tools; records load back with
    `StudentResult.model_validate`."""
    document = {
        "format": "grader-results",
        "version": 1,
        "run": run.model_dump(mode="json") if run else None,
        "students": [
            {**r.model_dump(mode="json", exclude={"traceback"}), "grade_status": r.grade_status}
            for r in results
        ],
    }
    return json.dumps(document, indent=1, sort_keys=False) + "\n"


def _overrides(result: StudentResult) -> str:
    lines = [line for line in result.grade.lines if line.override] if result.grade else []
    return "; ".join(f"{line.label} ({line.points:+g}): {line.detail}" for line in lines)


def incomplete_students(results: list[StudentResult]) -> list[StudentResult]:
    """Students whose grade is not a number yet (incomplete lines, or grading crashed)."""
    return [r for r in results if r.grade_status == "incomplete"]


CANVAS_ROSTER_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


@dataclass
class CanvasExport:
    csv_text: str
    unmatched_results: list[str] = field(default_factory=list)  # graded, not on the roster
    ungraded_students: list[str] = field(default_factory=list)  # on the roster, no result
    ambiguous: list[str] = field(default_factory=list)  # one result id matching several roster rows
    incomplete: list[str] = field(default_factory=list)  # on the roster, grade incomplete: cell left empty


def _read_roster(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = [c for c in ("Student", "ID", "SIS User ID") if c not in (reader.fieldnames or [])]
            if missing:
                raise GraderError(f"{path}: not a Canvas gradebook export (missing column(s) {', '.join(missing)})")
            # Canvas exports put a "Points Possible" row (and sometimes a muted row) under the header.
            return [row for row in reader if (row.get("Student") or "").strip() not in ("", "Points Possible")
                    and not (row.get("Student") or "").strip().startswith("Student, Test")]
    except FileNotFoundError:
        raise GraderError(f"Canvas roster not found: {path}") from None


def canvas_csv(results: list[StudentResult], roster_path: Path, assignment: str, max_points: float) -> CanvasExport:
    """Canvas gradebook import: roster columns + one assignment column, joined by SIS User ID
    (or the Canvas user ID when a student id is that), with a Points Possible row."""
    roster = _read_roster(roster_path)
    by_key: dict[str, list[int]] = {}
    for i, row in enumerate(roster):
        for key in {row.get("SIS User ID", "").strip(), row.get("ID", "").strip()} - {""}:
            by_key.setdefault(key.lower(), []).append(i)
    grades: dict[int, float] = {}
    incomplete_rows: set[int] = set()
    export = CanvasExport(csv_text="")
    for r in results:
        rows = sorted(set(by_key.get(r.student_id.lower(), [])))
        if not rows:
            export.unmatched_results.append(r.student_id)
        elif len(rows) > 1:
            export.ambiguous.append(r.student_id)
        elif r.grade_status == "incomplete":
            export.incomplete.append(r.student_id)  # an empty cell: Canvas keeps it ungraded, never 0
            incomplete_rows.add(rows[0])
        elif r.grade is not None:
            grades[rows[0]] = r.grade.final
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CANVAS_ROSTER_COLUMNS + [assignment])
    writer.writerow(["Points Possible", "", "", "", ""] + [f"{max_points:g}"])
    for i, row in enumerate(roster):
        writer.writerow([row.get(c, "") for c in CANVAS_ROSTER_COLUMNS] + [_fmt(grades.get(i))])
        if i not in grades and i not in incomplete_rows:
            export.ungraded_students.append(row.get("SIS User ID") or row.get("ID") or row.get("Student", ""))
    export.csv_text = out.getvalue()
    return export


def gradescope_results(result: StudentResult) -> dict:
    """Gradescope autograder results.json for one student.

    Gradescope takes the top-level `score`, or, when it is absent, the sum of the tests'
    scores. So an incomplete grade carries no number anywhere: no top-level score and no
    score on any test (not even 0/0 finding entries), only the output saying it is
    incomplete and why. Whatever Gradescope then shows, it is never a 0 or a partial sum
    passed off as the grade; the TA enters the grade once it is resolved.
    """
    g = result.grade
    complete = result.grade_status == "complete"
    tests = []
    for line in g.lines if g else []:
        entry = {"name": line.label, "output": line.detail, "visibility": "visible"}
        if complete:
            entry["score"] = round(line.points, 4)
            if line.max_points is not None:
                entry["max_score"] = round(line.max_points, 4)
        elif line.incomplete:
            entry["output"] = f"not computed: {line.detail}"
        tests.append(entry)
    for f in result.findings:
        if f.severity is Severity.INFO:
            continue
        text = f"{f.message}\nHow to fix: {f.fix}"
        entry = {"name": f"[{f.severity.value}] {f.code}" + (f" ({f.artifact})" if f.artifact else ""),
                 "output": text, "visibility": "visible"}
        if complete:
            entry.update(score=0, max_score=0)
        tests.append(entry)
    if not complete:
        output = f"Grade incomplete (no score yet; the teaching team will complete it): {result.incomplete_reason}"
        return {"output": output, "tests": tests, "visibility": "visible"}
    return {"score": round(g.final, 4), "output": f"Final grade {g.final:.2f} / {g.max_points:g}", "tests": tests,
            "visibility": "visible"}


def write_gradescope(results: list[StudentResult], out_dir: Path) -> list[Path]:
    written = []
    for r in results:
        path = gradescope_file(out_dir, r.student_id)
        atomic.write_text(path, json.dumps(gradescope_results(r), indent=2) + "\n")
        written.append(path)
    return written
