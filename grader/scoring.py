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
from grader.results import Grade, GradeLine, MetricResult
from grader.rubric import Band, LatePolicy, Rubric


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
    by_name = {m.name: m for m in metrics}

    total = s.base_points if s.base_points is not None else (0.0 if s.bands else s.max_points)
    if not s.bands or s.base_points:
        lines.append(GradeLine(label="Base points", points=total, max_points=total))

    for band in s.bands:
        metric = by_name.get(band.metric)
        label = band.title or band.metric
        best = max(y for _, y in band.points)
        if metric is None or metric.value is None:
            why = (metric.skipped if metric else None) or "not computed"
            lines.append(GradeLine(label=label, points=band.missing, max_points=best, detail=f"{band.metric} {why}"))
            total += band.missing
            continue
        pts = band_points(band, metric.value)
        lines.append(
            GradeLine(label=label, points=pts, max_points=best,
                      detail=f"{band.metric} = {metric.value:.4f} ({describe_band(band)})")
        )
        total += pts

    failing = [f for f in findings if f.severity is Severity.ERROR]
    counted: set[int] = set()
    for rule in s.deductions:
        hits = [i for i, f in enumerate(failing) if i not in counted and _matches(f.code, rule.code)]
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

    for pattern in s.zero_if:
        hit = next((f for f in failing if _matches(f.code, pattern)), None)
        if hit is not None:
            lines.append(GradeLine(label="Grade set to zero", points=-total, detail=f"{hit.code}: {hit.message}"))
            total = 0.0
            break

    raw = min(max(total, s.min_total), s.max_points)
    if raw != total:
        lines.append(GradeLine(label="Bounded", points=raw - total, detail=f"total kept within [{s.min_total:g}, {s.max_points:g}]"))

    grade = Grade(max_points=s.max_points, raw=raw, final=raw, lines=lines,
                  submitted_at=submitted_at, submitted_at_source=submitted_at_source)
    _apply_late_policy(grade, rubric.late, s.min_total)
    return grade


def _apply_late_policy(grade: Grade, policy: LatePolicy | None, min_total: float) -> None:
    if policy is None or grade.submitted_at is None:
        return
    days = late_days(grade.submitted_at, policy)
    grade.late_days = days
    if days == 0:
        return
    when = f"submitted {grade.submitted_at.isoformat()} ({grade.submitted_at_source or 'unknown source'}), due {policy.due.isoformat()}"
    if policy.hard:
        grade.late_deduction = grade.raw
        grade.lines.append(GradeLine(label="Late: hard deadline", points=-grade.raw, detail=f"{days} day(s) late; {when}"))
    elif policy.max_days is not None and days > policy.max_days:
        grade.late_deduction = grade.raw
        grade.lines.append(
            GradeLine(label="Late beyond the limit", points=-grade.raw,
                      detail=f"{days} days late, more than {policy.max_days} allowed; {when}")
        )
    else:
        grade.late_deduction = min(policy.per_day * days, max(grade.raw - min_total, 0.0))
        grade.lines.append(
            GradeLine(label="Late penalty", points=-grade.late_deduction,
                      detail=f"{days} day(s) x {policy.per_day:g}; {when}")
        )
    grade.final = grade.raw - grade.late_deduction
