"""HW9's progress-report rule through `grader run` (real processes, format checks only): the
final work is not graded without the earlier hand-in, named by a CSV or by a folder of reports."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import cli
import hw9class
import numpy as np
import pytest
import yaml

from grader.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]
WITH, WITHOUT, LATE_REPORT = "0920001", "0920002", "0920003"



def grader(*args, check=0):
    return cli.grader(*args, env={**os.environ, "NO_COLOR": "1"}, check=check)


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    root = tmp_path_factory.mktemp("hw9req")
    rng = np.random.default_rng(0)
    sets = {
        k: rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
        for k in ("gan", "diffusion", "finetuned")
    }
    for sid in (WITH, WITHOUT, LATE_REPORT):
        hw9class.write_hw9_submission(root / "submissions" / sid, sets)
    hw9class.write_times(root / "times.csv", {WITH: -1, WITHOUT: -1, LATE_REPORT: -1})
    reports = root / "reports"  # the progress-report assignment as the LMS hands it out
    reports.mkdir()
    for sid in (WITH, LATE_REPORT):
        (reports / f"{sid}_progress.pdf").write_bytes(b"%PDF-1.4 progress report\n")
    return root


def rubric(root: Path, requires: dict, name: str) -> Path:
    base = ROOT / "rubrics" / "hw9.yaml"
    path = hw9class.write_test_rubric(
        base,
        root / name,
        count=2,
        stats=root / "absent.npz",
        training=root / "celeba64",  # the metrics are removed below: never read
        handed_in=root,
        band=[[50, 10], [150, 0]],
    )
    data = yaml.safe_load(path.read_text())
    data["requires"] = [requires]
    # Format checks only: no metrics, so the 30 FID points are not part of this test's grade.
    data["metrics"] = {}
    data["scoring"]["bands"] = []
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run(root: Path, rubric_path: Path, out: str, check=0):
    return grader(
        "run",
        root / "submissions",
        "--rubric",
        rubric_path,
        "--times",
        root / "times.csv",
        "--out",
        root / out,
        "-q",
        check=check,
    )


def graded(root: Path, out: str) -> dict:
    with ResultStore(root / out) as store:
        return {r.student_id: r for r in store.all()}


def test_folder_of_reports(klass):
    path = rubric(
        klass, {"title": "Progress report", "handed_in": str(klass / "reports")}, "folder.yaml"
    )
    run(klass, path, "out_folder")
    results = graded(klass, "out_folder")
    assert results[WITH].grade.final == 70 and results[LATE_REPORT].grade.final == 70
    r = results[WITHOUT]
    assert r.grade.final == 0 and r.grade.lines[-1].label == "Grade set to zero"
    assert r.grade.lines[-1].detail == (
        "prerequisite.missing: Progress report was not handed in (not in reports): this work is not graded"
    )


def test_csv_with_due_time_and_regrade_when_it_changes(klass):
    reports = klass / "progress.csv"
    due = hw9class.DUE.replace(day=4)
    reports.write_text(
        "student_id,submitted_at\n"
        f"{WITH},{due.replace(hour=20).isoformat()}\n"
        f"{LATE_REPORT},{due.replace(day=5).isoformat()}\n"
    )
    path = rubric(
        klass,
        {"title": "Progress report", "handed_in": str(reports), "due": due.isoformat()},
        "csv.yaml",
    )
    run(klass, path, "out_csv")
    results = graded(klass, "out_csv")
    assert results[WITH].grade.final == 70
    assert results[WITHOUT].grade.final == 0 and results[LATE_REPORT].grade.final == 0
    late = next(f for f in results[LATE_REPORT].findings if f.code == "prerequisite.missing")
    assert "after its due time" in late.message
    # The TA adds a report that came by e-mail: that student is regraded, the others are not.
    with reports.open("a") as f:
        f.write(f"{WITHOUT},{due.isoformat()}\n")
    res = run(klass, path, "out_csv")
    assert "3 graded" in res.stdout  # the list is part of every student's grading key
    assert graded(klass, "out_csv")[WITHOUT].grade.final == 70
    rows = grader("export", klass / "out_csv", "--format", "csv").stdout
    finals = {row["student_id"]: float(row["final"]) for row in csv.DictReader(io.StringIO(rows))}
    assert finals == {WITH: 70, WITHOUT: 70, LATE_REPORT: 0}


def test_missing_list_stops_before_grading(klass):
    path = rubric(
        klass, {"title": "Progress report", "handed_in": str(klass / "nope.csv")}, "missing.yaml"
    )
    res = run(klass, path, "out_missing", check=None)
    assert res.returncode == 2 and "nope.csv not found" in res.stderr, res.stderr
    assert not (klass / "out_missing" / "grader.db").exists()
    path = rubric(
        klass,
        {"title": "Progress report", "handed_in": str(klass / "times.csv"), "column": "sid"},
        "badcol.yaml",
    )
    res = run(klass, path, "out_badcol", check=None)
    assert res.returncode == 2 and "missing column(s) sid" in res.stderr, res.stderr
