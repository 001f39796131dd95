"""HTML pages from result records: one page per student and a class overview.

Layout of a results folder::

    index.html                          class page
    students/<student_dir_name(id)>/index.html
    students/<student_dir_name(id)>/assets/...   previews written at grading time

A student page only references files inside its own folder (relative paths) and embeds
its CSS, so the folder can be zipped and mailed alone. Everything that came from a
submission is escaped by Jinja's autoescape. Output is a pure function of the records
(and the preview files present): no render-time clock, stable ordering.

Student pages never show the grading machine's absolute paths (file names and sha256s
identify everything) nor, unless asked (`show_tracebacks`), the grader's own tracebacks.
Pages are written atomically: a reader or a crash never sees half a page.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from PIL import Image

from grader import atomic
from grader.artifacts import describe as describe_artifact
from grader.codes import lookup
from grader.errors import GraderError
from grader.findings import Severity
from grader.layout import PAGE, STUDENTS_DIR, student_dir_name, student_href
from grader.metrics.kinds import handler_of
from grader.metrics.kinds.table import column_values, metric_columns, metrics_of
from grader.report import charts
from grader.results import ArtifactResult, HistoryEntry, MetricResult, RunInfo, StudentResult
from grader.rubric import Rubric

# Captions for the preview files write_previews produces (name: tiles, grid side) and for
# the copies kept of single pictures; other previews show their file name.
PREVIEW_GRIDS = {"grid16.png": (16, 4), "grid64.png": (64, 8)}
PREVIEW_CAPTIONS = {"process.png": "the process image as submitted"}

EMBEDDABLE = {"image/png", "image/jpeg", "image/gif", "image/webp"}
SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
LOG_HEAD_CHARS, LOG_TAIL_CHARS = 4_000, 16_000  # the tail of a log says what went wrong
PREVIEW_DISPLAY_WIDTH = 512  # CSS px; small grids are scaled up by whole factors

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# An absolute path of two or more parts (POSIX or Windows), not part of a URL or a relative
# path: on a student page it becomes its last part (the grading machine's layout is private).
_ABS_PATH = re.compile(
    r"(?<![\w.~:/\\-])(?:/(?:[^\s/'\"<>:;,()\[\]]+/)+|[A-Za-z]:\\(?:[^\s\\'\"<>]+\\)+)"
    r"(?P<last>[^\s/\\'\"<>:;,()\[\]]*)"
)


# ---------------------------------------------------------------- public API


def explain(code: str) -> str:
    """What a finding code means, in a student's terms (from the catalogue)."""
    return lookup(code).explanation



def render_student_page(
    result: StudentResult,
    student_dir: Path,
    *,
    run: RunInfo | None = None,
    rubric: Rubric | None = None,
    embed_images: bool = False,
    history: Sequence[HistoryEntry] = (),
    show_tracebacks: bool = False,
) -> Path:
    """Write `student_dir/index.html` for one student and return its path.

    Previews are referenced by relative path (the folder is the unit to share), or with
    `embed_images` written into the page as data URIs, for a page that travels alone.
    `history` lists the changes of the stored grade; the grader's traceback of a crash is
    shown only with `show_tracebacks` (it is always kept in the store for the TA).
    """
    student_dir = Path(student_dir)
    context = _student_context(public_result(result), student_dir, run, rubric, embed_images)
    context.update(
        history=[public_history(h) for h in history],
        traceback=_clean_log(result.traceback) if result.traceback and show_tracebacks else None,
        crashed=bool(result.traceback),
    )
    html = _environment().get_template("student.html.j2").render(**context)
    return _write(student_dir / PAGE, html)


def render_class_page(results: Sequence[StudentResult], run: RunInfo, out_dir: Path) -> Path:
    """Write `out_dir/index.html`, the class overview linking to every student page."""
    html = _environment().get_template("class.html.j2").render(**_class_context(results, run))
    return _write(Path(out_dir) / PAGE, html)


def render_all(
    results: Sequence[StudentResult],
    run: RunInfo,
    out_dir: Path,
    *,
    rubric: Rubric | None = None,
    histories: dict[str, list[HistoryEntry]] | None = None,
    show_tracebacks: bool = False,
) -> list[Path]:
    """Every student page (sorted by id), then the class page."""
    out_dir = Path(out_dir)
    ordered = sorted(results, key=lambda r: r.student_id)
    folders = Counter(student_dir_name(r.student_id) for r in ordered)
    clashes = sorted(name for name, n in folders.items() if n > 1)
    if clashes:
        raise GraderError(f"several results share a student folder: {', '.join(clashes)}")
    pages = [
        render_student_page(
            r, out_dir / STUDENTS_DIR / student_dir_name(r.student_id), run=run, rubric=rubric,
            history=(histories or {}).get(r.student_id, ()), show_tracebacks=show_tracebacks,
        )
        for r in ordered
    ]
    pages.append(render_class_page(ordered, run, out_dir))
    return pages


# ---------------------------------------------------------------- environment


@functools.cache
def _environment() -> Environment:
    # autoescape=True explicitly: the templates end in .j2, which select_autoescape's
    # extension test would not recognise as HTML.
    env = Environment(
        # The pages' templates, then each metric kind's own section.
        loader=ChoiceLoader([PackageLoader("grader.report", "templates"),
                             PackageLoader("grader.metrics.kinds", "templates")]),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = format_number
    env.filters["when"] = format_when
    env.filters["url"] = lambda path: quote(str(path), safe="/")
    env.globals["static"] = _static
    return env


@functools.cache
def _static(name: str) -> Markup:
    """Our own CSS/JS, embedded inline (trusted: it ships with the package)."""
    text = resources.files("grader.report").joinpath("static", name).read_text(encoding="utf-8")
    return Markup(text)


def _script_source(script: str) -> str:
    """The CSP script-src that allows exactly this inline script and nothing else."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    return f"'sha256-{digest}'"


def _write(path: Path, html: str) -> Path:
    return atomic.write_text(path, html)  # a reader never sees half a page


def public_text(text: str | None) -> str | None:
    """Text for a student page: absolute paths of the grading machine cut to their last part."""
    if not text:
        return text
    return _ABS_PATH.sub(lambda m: m.group("last") or "…", text)


def _public_value(value: Any) -> Any:
    if isinstance(value, str):
        return public_text(value)
    if isinstance(value, dict):
        # Preview paths are checked (inside the student folder) when shown; never rewritten.
        return {k: v if k == "previews" else _public_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_public_value(v) for v in value]
    return value


def public_result(result: StudentResult) -> StudentResult:
    """A copy of the record as a student may see it: no absolute paths in any text (the
    traceback is left out; it is added back only on request)."""
    data = result.model_dump(mode="json", exclude={"traceback"})
    data = {k: v if k in ("student_id", "rubric_hash", "versions") else _public_value(v)
            for k, v in data.items()}
    public = StudentResult.model_validate(data)
    public.present = result.present
    return public


def public_history(entry: HistoryEntry) -> HistoryEntry:
    return entry.model_copy(update={"why": public_text(entry.why), "detail": public_text(entry.detail)})


def format_number(value: float | None, digits: int = 2) -> str:
    """12.3456 -> '12.35', 100.0 -> '100', None -> '–'."""
    if value is None:
        return "–"
    text = f"{value:,.{digits}f}"
    if text.lstrip("-").strip("0.,") == "":
        text = text.lstrip("-")  # no "-0" for a deduction of nothing
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_when(value: datetime | None) -> str:
    return value.isoformat(sep=" ", timespec="seconds") if value else "–"


# ---------------------------------------------------------------- student page


def _student_context(
    result: StudentResult,
    student_dir: Path,
    run: RunInfo | None,
    rubric: Rubric | None,
    embed_images: bool,
) -> dict[str, Any]:
    findings = sorted(result.findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 3))
    codes = sorted({f.code for f in findings})
    counts = Counter(f.severity for f in findings)
    max_points = (
        result.grade.max_points if result.grade
        else rubric.scoring.max_points if rubric
        else run.max_points if run
        else None
    )
    return {
        "script_src": "'none'",
        "result": result,
        "run": run,
        "rubric_name": run.rubric_name if run else rubric.name if rubric else "",
        "rubric_hash": result.rubric_hash or (run.rubric_hash if run else ""),
        "max_points": max_points,
        "findings": findings,
        "finding_counts": {s.value: counts.get(s, 0) for s in Severity},
        "explanations": {c: explain(c) for c in codes},
        "notices": _notices(result, rubric),
        "artifacts": [_artifact_view(a, student_dir, rubric, embed_images)
                      for a in result.artifacts],
        "metrics": [_metric_view(m, rubric, student_dir, embed_images) for m in result.metrics],
        "late_policy": _late_policy_text(rubric),
        "late_row": _needs_late_row(result),
        "sandbox_log": _clean_log(result.sandbox.log) if result.sandbox else None,
        "traceback": None,
        "crashed": False,
        "history": [],
        "versions": sorted((result.versions or (run.versions if run else {})).items()),
    }


def _notices(result: StudentResult, rubric: Rubric | None) -> list[str]:
    """Things a student should know that are not findings: lateness, metric caveats."""
    notes = []
    grade = result.grade
    if not result.present:
        notes.append("This submission was not in the submissions folder in the latest grading run; "
                     "the grade shown is the one stored before.")
    if grade and grade.late_days:
        days = f"{grade.late_days} day{'s' if grade.late_days != 1 else ''}"
        note = f"Submitted {days} late"
        if grade.late_deduction:
            note += f": {format_number(grade.late_deduction)} points deducted"
        if grade.submitted_at:
            note += f" (submitted {format_when(grade.submitted_at)}"
            note += f", from {grade.submitted_at_source})" if grade.submitted_at_source else ")"
        notes.append(note + ".")
    for metric in result.metrics:
        for text in metric.warnings:
            notes.append(f"{metric.title or metric.name}: {text}")
        if metric.skipped:
            notes.append(f"{metric.title or metric.name} was not computed: {metric.skipped}")
    if result.sandbox and result.sandbox.timed_out:
        notes.append(f"Your sampler was stopped after {format_number(result.sandbox.seconds, 0)} s "
                     "(time limit).")
    return notes


def _artifact_view(
    artifact: ArtifactResult, student_dir: Path, rubric: Rubric | None, embed: bool
) -> dict[str, Any]:
    spec = rubric.artifacts.get(artifact.name) if rubric else None
    details = dict(artifact.details)
    noise = charts.heat_table(details.pop("noise", None))
    layout = details.pop("layout", None)
    previews = artifact.previews
    return {
        "record": artifact,
        "title": artifact.title or (spec.title if spec else "") or artifact.name,
        "expected": describe_artifact(spec) if spec else "",
        "note": spec.description if spec else "",
        "previews": [_preview_view(p, student_dir, artifact.count, embed) for p in previews],
        "noise": noise,
        "layout": _flat_items(layout),
        "details": _flat_items(details),
    }


def _preview_view(
    relative: str, student_dir: Path, count: int | None, embed: bool
) -> dict[str, Any]:
    """An <img> for a preview inside the student's folder, or why it cannot be shown."""
    name = PurePosixPath(relative).name
    view = {"name": name, "caption": _caption(name, count), "src": None}
    path = PurePosixPath(relative)
    # Only plain relative paths inside the student's folder: a page must never point at
    # another student's files or outside the folder that is shared.
    if "\\" in relative or ":" in relative or path.is_absolute() or ".." in path.parts:
        view["problem"] = "not inside the student folder"
        return view
    file = student_dir / Path(*path.parts)
    try:
        with Image.open(file) as im:
            width, height = im.size
            mime = Image.MIME.get(im.format or "")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        view["problem"] = "missing or unreadable"
        return view
    if mime not in EMBEDDABLE:
        view["problem"] = "not an image a browser shows"
        return view
    if embed:
        src = f"data:{mime};base64,{base64.b64encode(file.read_bytes()).decode('ascii')}"
    else:
        src = quote(path.as_posix(), safe="/")
    scale = max(1, min(4, PREVIEW_DISPLAY_WIDTH // max(width, 1)))
    view.update(src=src, width=width * scale, height=height * scale, pixelated=scale > 1)
    return view


def _caption(name: str, count: int | None) -> str:
    if name not in PREVIEW_GRIDS:
        return PREVIEW_CAPTIONS.get(name, name)
    tiles, side = PREVIEW_GRIDS[name]
    if count is not None and count <= tiles:
        return f"all {count:,} image{'s' if count != 1 else ''} ({side} x {side} grid)"
    return f"{tiles} of the images, picked at random ({side} x {side})"


def _flat_items(value: Any) -> list[tuple[str, str]]:
    if value is None or value == {}:
        return []
    if isinstance(value, dict):
        return [(str(k), _short(v)) for k, v in value.items()]
    return [("", _short(value))]


def _short(value: Any, limit: int = 300) -> str:
    text = format_number(value, 4) if isinstance(value, float) else str(value)
    return text if len(text) <= limit else text[:limit] + " …"


def _metric_view(metric: MetricResult, rubric: Rubric | None, student_dir: Path,
                 embed: bool) -> dict[str, Any]:
    handler = handler_of(metric.kind)
    view = handler.view(metric)
    chart = view.get("share_chart")
    return {
        "pictures": {key: _preview_view(path, student_dir, None, embed)
                     for key, path in (view.get("pictures") or {}).items()},
        "record": metric,
        "title": metric.title or metric.name,
        "template": handler.template,
        "view": view,
        "chart": charts.share_chart(*chart) if chart else None,
        "provenance": [(label, _short(v, 1000)) for label, v in handler.provenance(metric)],
        "band": _band_text(metric, rubric),
    }


def _band_text(metric: MetricResult, rubric: Rubric | None) -> str:
    if rubric is None:
        return ""
    band = next((b for b in rubric.scoring.bands if b.metric.split(".")[0] == metric.name), None)
    if band is None:
        return ""
    name = metric.title or metric.name
    (x0, y0), (x1, y1) = band.points[0], band.points[-1]
    if len(band.points) == 1:
        return f"{format_number(y0)} points whatever the {name}."
    return (f"{name} up to {format_number(x0)}: {format_number(y0)} points; "
            f"{format_number(x1)} and above: {format_number(y1)} points; "
            "linear in between.")


def _needs_late_row(result: StudentResult) -> bool:
    """Whether the late deduction is missing from the grade lines (scoring usually adds one)."""
    grade = result.grade
    if grade is None or not (grade.late_days or grade.late_deduction):
        return False
    if grade.final is None or grade.raw is None:
        return False
    total = sum(line.points for line in grade.lines)
    return abs(total - grade.final) > 1e-6 and abs(total - grade.raw) <= 1e-6


def _late_policy_text(rubric: Rubric | None) -> str:
    late = rubric.late if rubric else None
    if late is None:
        return ""
    text = f"Due {format_when(late.due)}."
    if late.hard:
        return text + " Hard deadline: late work gets no points."
    if late.per_day:
        text += f" {format_number(late.per_day)} points off per late day"
        text += f", no points after {late.max_days} days." if late.max_days is not None else "."
    return text


def _clean_log(text: str) -> dict[str, Any]:
    """Terminal output made readable (no colour codes or control bytes) and cut to size."""
    text = _ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("\ufffd", text)
    if len(text) <= LOG_HEAD_CHARS + LOG_TAIL_CHARS:
        return {"text": text, "omitted": 0}
    omitted = len(text) - LOG_HEAD_CHARS - LOG_TAIL_CHARS
    head, tail = text[:LOG_HEAD_CHARS], text[-LOG_TAIL_CHARS:]
    return {"text": f"{head}\n… {omitted:,} characters omitted …\n{tail}", "omitted": omitted}


# ---------------------------------------------------------------- class page


def _class_context(results: Sequence[StudentResult], run: RunInfo) -> dict[str, Any]:
    ordered = sorted(results, key=lambda r: r.student_id)
    metrics = metrics_of(ordered)
    kinds = {name: kind for name, kind, _ in metrics}
    columns = metric_columns(metrics)
    values = {r.student_id: column_values(columns, r, kinds) for r in ordered}
    numeric = [all(not isinstance(values[r.student_id][i], str) for r in ordered)
               for i in range(len(columns))]
    rows = [_class_row(r, values[r.student_id]) for r in ordered]
    grades = [r.grade.final for r in ordered if r.grade is not None and r.grade.final is not None]
    histograms = [("Grade", f"out of {format_number(run.max_points)}", len(ordered) - len(grades),
                   charts.grade_histogram(grades, run.max_points))]
    for i, column in enumerate(columns):
        if numeric[i]:
            present = [values[r.student_id][i] for r in ordered if values[r.student_id][i] is not None]
            histograms.append((column.title, "", len(ordered) - len(present),
                               charts.metric_histogram(present)))
    titles = {name: title for name, _, title in metrics}
    class_views = [
        {"name": name, "title": titles.get(name, name), "template": handler.class_template,
         **handler.class_view(name, view)}
        for name, view in run.class_views.items()
        if (handler := handler_of(kinds.get(name, ""))).class_template
    ]
    script = _static("class-table.js")
    return {
        "script": script,
        "script_src": _script_source(script),
        "run": run,
        "rows": rows,
        "columns": [(c.title, "number" if numeric[i] else "text") for i, c in enumerate(columns)],
        "statuses": Counter(r.status for r in ordered),
        "incomplete": sum(r.grade_status == "incomplete" for r in ordered),
        "absent": sum(not r.present for r in ordered),
        "histograms": histograms,
        "class_views": class_views,
        "finding_codes": _finding_table(ordered),
        "versions": sorted(run.versions.items()),
        "machine": sorted(run.machine.items()),
        "grade_summary": _summary(grades),
        "href": student_href,
    }


def _class_row(result: StudentResult, metric_values: list[float | str | None]) -> dict[str, Any]:
    errors = sum(1 for f in result.findings if f.severity is Severity.ERROR)
    # The text filter searches these words too: "incomplete" and "not-present" find those rows.
    marks = [w for w, on in (("incomplete", result.grade_status == "incomplete"),
                             ("not-present", not result.present)) if on]
    return {
        "id": result.student_id,
        "href": student_href(result.student_id),
        "status": result.status,
        "grade": result.grade.final if result.grade else None,
        "metrics": metric_values,
        "findings": len(result.findings),
        "errors": errors,
        "codes": " ".join(sorted({f.code for f in result.findings}) + marks),
        "marks": " ".join(marks),
        "grade_status": result.grade_status,
        "incomplete_reason": result.incomplete_reason if result.grade_status == "incomplete" else "",
        "present": result.present,
        "late_days": result.grade.late_days if result.grade else None,
    }


def _finding_table(results: Sequence[StudentResult]) -> list[dict[str, Any]]:
    total: Counter[str] = Counter()
    students: Counter[str] = Counter()
    worst: dict[str, Severity] = {}
    for r in results:
        for code in {f.code for f in r.findings}:
            students[code] += 1
        for f in r.findings:
            total[f.code] += 1
            worst[f.code] = min(worst.get(f.code, f.severity), f.severity,
                                key=SEVERITY_ORDER.__getitem__)
    return [
        {"code": code, "students": students[code], "total": total[code],
         "severity": worst[code].value, "explanation": explain(code)}
        for code in sorted(total, key=lambda c: (-students[c], c))
    ]


def _summary(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return {"mean": sum(ordered) / len(ordered), "median": median,
            "min": ordered[0], "max": ordered[-1]}

