"""Scoring from the rubric: bands, deductions with caps, bounds, late policies."""

from datetime import datetime, timedelta

import pytest

from grader.findings import error, warning
from grader.results import MetricResult
from grader.rubric import parse_rubric
from grader.scoring import band_points, late_days, score

BASE = """
name: t
artifacts:
  images: {kind: image_set}
metrics:
  fid: {kind: fid, artifact: images, stats: s.npz}
scoring:
  max_points: 100
  bands:
    - {metric: fid, points: [[40, 100], [100, 0]]}
  deductions:
    - {code: "images.*", points: 10, cap: 25}
    - {code: zip.junk, points: 5}
"""


def fid(value):
    return [MetricResult(name="fid", kind="fid", artifact="images", value=value)]


@pytest.mark.parametrize("value,points", [(0, 100), (39.99, 100), (40, 100), (55, 75), (70, 50), (100, 0), (250, 0)])
def test_hw3_band(value, points):
    rubric = parse_rubric(BASE)
    assert band_points(rubric.scoring.bands[0], value) == pytest.approx(points)
    assert score(rubric, fid(value), []).final == pytest.approx(points)


def test_higher_is_better_band():
    rubric = parse_rubric(BASE.replace("[[40, 100], [100, 0]]", "[[0.5, 0], [0.9, 100]]"))
    assert score(rubric, fid(0.7), []).final == pytest.approx(50)
    assert score(rubric, fid(0.95), []).final == pytest.approx(100)


SKIPPED = [MetricResult(name="fid", kind="fid", artifact="images", skipped="stats absent")]


def test_missing_metric_makes_the_grade_incomplete_never_zero():
    grade = score(parse_rubric(BASE), SKIPPED, [error("zip.junk", "j")])
    assert grade.status == "incomplete" and grade.final is None and grade.raw is None
    assert grade.incomplete == ["fid: fid stats absent"]
    assert grade.lines[0].incomplete and "stats absent" in grade.lines[0].detail
    assert score(parse_rubric(BASE), [], []).incomplete == ["fid: fid not computed"]  # no record at all


def skipped(why: str, cause: str | None) -> list[MetricResult]:
    return [MetricResult(name="fid", kind="fid", artifact="images", skipped=why, skipped_cause=cause)]


NO_IMAGES = skipped("no readable images to measure", "submission")
MISSING_30 = BASE.replace("[[40, 100], [100, 0]]}", "[[40, 100], [100, 0]], missing: 30}")


def test_missing_points_set_by_the_rubric_are_a_real_grade():
    rubric = parse_rubric(MISSING_30)
    grade = score(rubric, NO_IMAGES, [error("zip.junk", "j")])
    assert grade.status == "complete" and grade.final == pytest.approx(25)
    assert "no readable images" in grade.lines[0].detail and "30 points set by the rubric" in grade.lines[0].detail
    zero = parse_rubric(BASE.replace("[[40, 100], [100, 0]]}", "[[40, 100], [100, 0]], missing: 0}"))
    assert score(zero, NO_IMAGES, []).final == 0 and score(zero, NO_IMAGES, []).status == "complete"
    # A record stored before skips had a cause keeps the grade it was given.
    assert score(rubric, SKIPPED, []).final == pytest.approx(30)


@pytest.mark.parametrize(
    "metrics",
    [
        skipped("the TA's s.npz is not on this machine: the TA computes it", "not_here"),
        skipped("metrics were turned off for this run (--no-metrics)", "grading"),
        skipped("failed: RuntimeError: out of memory", "grading"),
        [],  # no record at all
    ],
)
def test_missing_points_never_stand_in_for_what_the_grader_could_not_compute(metrics):
    grade = score(parse_rubric(MISSING_30), metrics, [error("zip.junk", "j")])
    assert grade.status == "incomplete" and grade.final is None
    assert grade.lines[0].incomplete and grade.lines[0].metric == "fid"


def test_zero_if_and_a_hard_deadline_complete_an_incomplete_grade_with_zero():
    rubric = parse_rubric(BASE + "  zero_if: [submission.missing_artifact]\n")
    grade = score(rubric, SKIPPED, [error("submission.missing_artifact", "no images")])
    assert grade.status == "complete" and grade.final == 0 and not grade.incomplete
    assert score(rubric, SKIPPED, []).status == "incomplete"  # no zero_if finding: still incomplete
    hard = parse_rubric(BASE + 'late:\n  due: "2026-10-07T23:59:00+08:00"\n  hard: true\n')
    late = hard.late.due + timedelta(days=1)
    assert score(hard, SKIPPED, [], submitted_at=late).final == 0
    assert score(hard, SKIPPED, [], submitted_at=hard.late.due).status == "incomplete"


def test_deductions_count_errors_only_with_caps_and_floor():
    rubric = parse_rubric(BASE)
    findings = [error("images.count", "x"), error("images.mode", "y"), error("images.size", "z"),
                warning("metric.warning", "w"), error("zip.junk", "j")]
    grade = score(rubric, fid(20), findings)
    # 3 image errors x 10 capped at 25, one junk x 5; the warning costs nothing.
    assert grade.final == pytest.approx(100 - 25 - 5)
    assert any("capped at 25" in line.detail for line in grade.lines)
    assert score(rubric, fid(99), findings).final == 0  # bounded below by min_total


def test_zero_if():
    rubric = parse_rubric(BASE + "  zero_if: [submission.missing_artifact]\n")
    assert score(rubric, fid(10), [error("submission.missing_artifact", "m")]).final == 0


LATE = BASE + """
late:
  due: "2026-10-07T23:59:00+08:00"
  per_day: 10
  max_days: 5
"""


def test_late_days_are_started_days():
    rubric = parse_rubric(LATE)
    due = rubric.late.due
    assert late_days(due, rubric.late) == 0
    assert late_days(due + timedelta(minutes=1), rubric.late) == 1
    assert late_days(due + timedelta(days=1), rubric.late) == 1
    assert late_days(due + timedelta(days=1, seconds=1), rubric.late) == 2


@pytest.mark.parametrize("days_late,final", [(0, 100), (1, 90), (3, 70), (5, 50), (6, 0)])
def test_hw9_late_policy(days_late, final):
    rubric = parse_rubric(LATE)
    when = rubric.late.due + timedelta(days=days_late) - timedelta(hours=1) if days_late else rubric.late.due
    grade = score(rubric, fid(10), [], submitted_at=when, submitted_at_source="TA times CSV")
    assert grade.late_days == days_late and grade.final == pytest.approx(final)


def test_hard_deadline_and_time_zones():
    rubric = parse_rubric(BASE + 'late:\n  due: "2026-10-07T23:59:00+08:00"\n  hard: true\n')
    # 16:00 UTC is 00:00 the next day at +08:00: one minute late.
    late = datetime.fromisoformat("2026-10-07T16:00:00+00:00")
    grade = score(rubric, fid(10), [], submitted_at=late, submitted_at_source="file modification times")
    assert grade.final == 0 and grade.raw == 100 and "hard deadline" in grade.lines[-1].label.lower()
    on_time = datetime.fromisoformat("2026-10-07T15:58:00+00:00")
    assert score(rubric, fid(10), [], submitted_at=on_time).final == 100


def test_overrides_are_lines_applied_in_order():
    from grader.results import Override
    from grader.scoring import apply_overrides

    rubric = parse_rubric(BASE)
    findings = [error("images.count", "x"), error("zip.junk", "j")]
    grade = score(rubric, fid(55), findings)  # 75 - 10 - 5
    assert grade.final == pytest.approx(60)
    cleared = apply_overrides(grade, [Override(kind="clear", code="images.*", reason="false flag")],
                              rubric=rubric, metrics=fid(55), findings=findings)
    assert cleared.final == pytest.approx(70) and cleared.computed == pytest.approx(60)
    line = cleared.lines[-1]
    assert line.override and line.points == pytest.approx(10) and line.detail == "false flag"
    both = apply_overrides(grade, [Override(kind="points", points=88, reason="regrade request"),
                                   Override(kind="adjust", points=-2, reason="typo in report")])
    assert both.final == 88 and [x.label for x in both.lines if x.override] == [
        "TA override: adjustment", "TA override: grade set"]
    incomplete = score(rubric, SKIPPED, [])
    done = apply_overrides(incomplete, [Override(kind="points", points=71, reason="FID by hand")])
    assert done.status == "complete" and done.final == 71 and "incomplete" in done.lines[-1].detail
    assert apply_overrides(incomplete, [Override(kind="adjust", points=5, reason="r")]).final is None
    assert grade.final == pytest.approx(60) and not any(x.override for x in grade.lines)  # not mutated
