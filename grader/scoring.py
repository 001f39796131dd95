"""Rubric + metrics + findings -> points, with a line-by-line breakdown a student can follow.

Nothing here is course-specific: bands, deductions, caps, bounds and the late policy all
come from the rubric.
"""

from __future__ import annotations

import fnmatch
import math
from datetime import datetime, timedelta
from itertools import pairwise

import numpy as np

from grader.findings import Finding, Severity
from grader.metrics.kinds import handler_for as metric_handler
from grader.results import Grade, GradeLine, MetricResult, Override, StudentResult
from grader.rubric import Band, Deduction, LatePolicy, Rubric


def band_points(band: Band, value: float) -> float:
    """Piecewise-linear through the band's points, clamped to the end values outside them."""
    xs = [x for x, _ in band.points]
    ys = [y for _, y in band.points]
    return float(np.interp(value, xs, ys))


def describe_band(band: Band) -> str:
    pts = band.points
    if len(pts) == 1:
        return f"{pts[0][1]:g} points"
    parts = [f"< {pts[0][0]:g} -> {pts[0][1]:g}"]
    for (x0, y0), (x1, y1) in pairwise(pts):
        parts.append(f"{x0:g}..{x1:g} linear {y0:g} -> {y1:g}")
    parts.append(f"> {pts[-1][0]:g} -> {pts[-1][1]:g}")
    return "; ".join(parts)


def late_days(submitted_at: datetime, policy: LatePolicy) -> int:
    """Started days late, after the grace period (0 when on time)."""
    late_by = submitted_at - policy.due - timedelta(minutes=policy.grace_minutes)
    if late_by <= timedelta(0):
        return 0
    return math.ceil(late_by / timedelta(days=1))


def _matches(code: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(code, pattern)


def score(
    rubric: Rubric,
    metrics: list[MetricResult],
    findings: list[Finding],
    *,
    submitted_at: datetime | None = None,
    submitted_at_source: str | None = None,
) -> Grade:
    s = rubric.scoring
    lines: list[GradeLine] = []
    missing: list[str] = []  # lines that could not be computed: "label: why"
    by_name = {m.name: m for m in metrics}

    total = s.base_points if s.base_points is not None else (0.0 if s.bands else s.max_points)
    if not s.bands or s.base_points:
        lines.append(GradeLine(label="Base points", points=total, max_points=total))

    for band in s.bands:
        name, _, component = band.metric.partition(".")  # NAME or NAME.COMPONENT
        metric = by_name.get(name)
        value = None if metric is None else metric.components.get(component) if component else metric.value
        label = band.title or band.metric
        best = max(y for _, y in band.points)
        if metric is None or metric.value is None or value is None:
            why = (metric.skipped if metric else None) or "not computed"
            fallback = missing_points(band, metric)
            if fallback is None:
                lines.append(
                    GradeLine(
                        label=label,
                        points=0.0,
                        max_points=best,
                        incomplete=True,
                        detail=f"{band.metric} {why}",
                        metric=band.metric,
                    )
                )
                missing.append(f"{label}: {band.metric} {why}")
                continue
            lines.append(
                GradeLine(
                    label=label,
                    points=fallback,
                    max_points=best,
                    detail=f"{band.metric} {why}; {fallback:g} points set by the rubric (missing)",
                    metric=band.metric,
                )
            )
            total += fallback
            continue
        pts = band_points(band, value)
        lines.append(
            GradeLine(
                label=label,
                points=pts,
                max_points=best,
                detail=f"{band.metric} = {value:.4f} ({describe_band(band)})",
                metric=band.metric,
            )
        )
        total += pts

    deductions, zero_if = _rules(rubric)
    failing = [f for f in findings if f.severity is Severity.ERROR]
    counted: set[int] = set()
    for rule in deductions:
        hits = [
            i for i, f in enumerate(failing) if i not in counted and _matches(f.code, rule.code)
        ]
        if not hits:
            continue
        counted.update(hits)
        amount = rule.points * len(hits)
        capped = rule.cap is not None and amount > rule.cap
        amount = min(amount, rule.cap) if rule.cap is not None else amount
        detail = f"{len(hits)} x {rule.points:g}" + (f", capped at {rule.cap:g}" if capped else "")
        codes = sorted({failing[i].code for i in hits})
        lines.append(GradeLine(label=rule.title or ", ".join(codes), points=-amount, detail=detail))
        total -= amount

    zeroed = False
    for pattern in zero_if:
        hit = next((f for f in failing if _matches(f.code, pattern)), None)
        if hit is not None:
            # Zero whatever the missing lines would have given: a real grade, not an incomplete one.
            lines.append(
                GradeLine(
                    label="Grade set to zero", points=-total, detail=f"{hit.code}: {hit.message}"
                )
            )
            total, zeroed = 0.0, True
            break

    if missing and not zeroed:
        grade = Grade(
            max_points=s.max_points,
            raw=None,
            final=None,
            lines=lines,
            status="incomplete",
            incomplete=missing,
            submitted_at=submitted_at,
            submitted_at_source=submitted_at_source,
        )
        _apply_late_policy_incomplete(grade, rubric.late)
        return grade

    raw = min(max(total, s.min_total), s.max_points)
    if raw != total:
        lines.append(
            GradeLine(
                label="Bounded",
                points=raw - total,
                detail=f"total kept within [{s.min_total:g}, {s.max_points:g}]",
            )
        )

    grade = Grade(
        max_points=s.max_points,
        raw=raw,
        final=raw,
        lines=lines,
        submitted_at=submitted_at,
        submitted_at_source=submitted_at_source,
    )
    _apply_late_policy(grade, rubric.late, s.min_total)
    return grade


def _rules(rubric: Rubric) -> tuple[list[Deduction], list[str]]:
    """The rubric's deductions and zero_if, then those its metric kinds add (integrity...)."""
    deductions, zero_if = list(rubric.scoring.deductions), list(rubric.scoring.zero_if)
    for name, spec in rubric.metrics.items():
        extra = metric_handler(spec).scoring_rules(name, spec)
        deductions += [Deduction(code=c, points=p, title=t) for c, p, t in extra.deductions]
        zero_if += extra.zero_if
    return deductions, zero_if


def missing_points(band: Band, metric: MetricResult | None) -> float | None:
    """Points for a band whose metric has no value: what the rubric sets explicitly
    (`missing:`), and only when the student's own work is why (no images, too few, not
    matching the label file); otherwise None, and the grade is incomplete. A metric this
    machine could not compute (a TA file absent, metrics off, a crash) is never a number."""
    if metric is None or metric.skipped_cause in ("not_here", "grading"):
        return None
    return band.missing


def _zeroes_any_grade(policy: LatePolicy, days: int) -> bool:
    return days > 0 and (policy.hard or (policy.max_days is not None and days > policy.max_days))


def _apply_late_policy_incomplete(grade: Grade, policy: LatePolicy | None) -> None:
    """An incomplete grade stays incomplete unless the late policy zeroes any grade."""
    if policy is None or grade.submitted_at is None:
        return
    grade.late_days = days = late_days(grade.submitted_at, policy)
    if not _zeroes_any_grade(policy, days):
        return
    when = f"submitted {grade.submitted_at.isoformat()} ({grade.submitted_at_source or 'unknown source'})"
    label = "Late: hard deadline" if policy.hard else "Late beyond the limit"
    grade.lines.append(
        GradeLine(
            label=label,
            points=0.0,
            detail=f"{days} day(s) late, zero whatever the other lines; {when}",
        )
    )
    grade.raw, grade.final, grade.status = None, 0.0, "complete"
    grade.incomplete = []


def _without(findings: list[Finding], patterns: list[str]) -> list[Finding]:
    return [f for f in findings if not any(_matches(f.code, p) for p in patterns)]


def apply_overrides(
    grade: Grade | None,
    overrides: list[Override],
    *,
    rubric: Rubric | None = None,
    metrics: list[MetricResult] = (),
    findings: list[Finding] = (),
) -> Grade | None:
    """The computed grade with the TA's overrides as lines of their own, in a fixed order:
    cleared findings (a re-score without them; needs the rubric), then adjustments, then a
    final set by the TA (which also completes an incomplete grade)."""
    if grade is None or not overrides:
        return grade
    grade = grade.model_copy(deep=True)
    grade.computed = grade.final
    cleared: list[str] = []
    for o in (o for o in overrides if o.kind == "clear"):
        if rubric is None:
            raise ValueError("clearing a finding needs the rubric the grade was computed with")
        cleared.append(o.code or "")
        again = score(
            rubric,
            list(metrics),
            _without(list(findings), cleared),
            submitted_at=grade.submitted_at,
            submitted_at_source=grade.submitted_at_source,
        )
        delta = (
            (again.final - grade.final)
            if again.final is not None and grade.final is not None
            else 0.0
        )
        grade.lines.append(
            GradeLine(
                label=f"TA override: {o.code} does not count",
                points=delta,
                override=True,
                detail=o.reason,
            )
        )
        grade.raw, grade.final, grade.late_days, grade.late_deduction = (
            again.raw,
            again.final,
            again.late_days,
            again.late_deduction,
        )
        grade.status, grade.incomplete = again.status, again.incomplete
    for o in (o for o in overrides if o.kind == "adjust"):
        grade.lines.append(
            GradeLine(
                label="TA override: adjustment",
                points=o.points or 0.0,
                override=True,
                detail=o.reason,
            )
        )
        if grade.final is not None:
            grade.final += o.points or 0.0
    for o in (o for o in overrides if o.kind == "points"):
        before = grade.final
        was = (
            ""
            if before is not None
            else f" (the computed grade was incomplete: {'; '.join(grade.incomplete)})"
        )
        grade.lines.append(
            GradeLine(
                label="TA override: grade set",
                points=o.points - (before or 0.0),
                override=True,
                detail=f"set to {o.points:g}: {o.reason}{was}",
            )
        )
        grade.final, grade.status, grade.incomplete = o.points, "complete", []
    return grade


def regrade(
    result: StudentResult,
    rubric: Rubric,
    overrides: list[Override],
    *,
    submitted: tuple[datetime | None, str | None] | None = None,
) -> StudentResult:
    """The one re-score path: a copy of the record whose grade is computed again from its
    stored metrics and findings under `rubric` (nothing is re-checked), with the TA's
    overrides applied. `submitted` (time, source) replaces the stored submission time."""
    result = result.model_copy(deep=True)
    if result.grade is None:  # grading never got as far as a grade: nothing to score
        return result
    when, source = submitted if submitted is not None else (
        result.grade.submitted_at, result.grade.submitted_at_source)
    grade = score(rubric, result.metrics, result.findings, submitted_at=when, submitted_at_source=source)
    result.grade = apply_overrides(grade, overrides, rubric=rubric, metrics=result.metrics,
                                   findings=result.findings)
    result.rubric_hash = rubric.content_hash or result.rubric_hash
    return result


def _apply_late_policy(grade: Grade, policy: LatePolicy | None, min_total: float) -> None:
    if policy is None or grade.submitted_at is None:
        return
    days = late_days(grade.submitted_at, policy)
    grade.late_days = days
    if days == 0 or grade.raw is None:
        return
    source = grade.submitted_at_source or "unknown source"
    when = f"submitted {grade.submitted_at.isoformat()} ({source}), due {policy.due.isoformat()}"
    if policy.hard:
        grade.late_deduction = grade.raw
        grade.lines.append(
            GradeLine(
                label="Late: hard deadline", points=-grade.raw, detail=f"{days} day(s) late; {when}"
            )
        )
    elif policy.max_days is not None and days > policy.max_days:
        grade.late_deduction = grade.raw
        grade.lines.append(
            GradeLine(
                label="Late beyond the limit",
                points=-grade.raw,
                detail=f"{days} days late, more than {policy.max_days} allowed; {when}",
            )
        )
    else:
        grade.late_deduction = min(policy.per_day * days, max(grade.raw - min_total, 0.0))
        grade.lines.append(
            GradeLine(
                label="Late penalty",
                points=-grade.late_deduction,
                detail=f"{days} day(s) x {policy.per_day:g}; {when}",
            )
        )
    grade.final = grade.raw - grade.late_deduction
