"""Every change of a stored grade is on record, and a TA's override is a line of the grade that
survives re-scores and regrades and reaches the exports: real `grader` processes on the example
class, the real SQLite store, the real export files."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml
from cli import grader

ROOT = Path(__file__).resolve().parents[1]
IMAGES = 16



@pytest.fixture()
def env(tmp_path):
    return {**os.environ, "GRADER_CACHE_DIR": str(tmp_path / "cache"), "NO_COLOR": "1"}


def set_base(rubric: Path, points: float) -> None:
    """The TA's decision: no FID in this grade, `points` before deductions (so grades graded
    without metrics are complete; a later call is a scoring edit)."""
    data = yaml.safe_load(rubric.read_text())
    data.pop("metrics", None)
    data["scoring"]["bands"] = []
    data["scoring"]["base_points"] = points
    rubric.write_text(yaml.safe_dump(data, sort_keys=False))


def finals(out: Path, env) -> dict[str, str]:
    rows = csv.DictReader(io.StringIO(grader("export", out, "--format", "csv", env=env).stdout))
    return {r["student_id"]: r["final"] for r in rows}


def history(out: Path, student: str) -> list[tuple]:
    with sqlite3.connect(out / "grader.db") as con:
        return con.execute(
            "SELECT why, old_final, new_final, run_id FROM history WHERE student_id = ? ORDER BY id",
            (student,),
        ).fetchall()


def test_history_and_overrides_through_edits_regrades_and_exports(tmp_path, env):
    root = tmp_path / "class"
    grader(
        "example",
        "class",
        root,
        "--images",
        IMAGES,
        "--rubric",
        ROOT / "rubrics" / "hw3.yaml",
        env=env,
    )
    rubric, subs, out = root / "rubric.yaml", root / "submissions", tmp_path / "results"
    set_base(rubric, 50)

    def run(*extra, check=0):
        return grader(
            "run",
            subs,
            "--rubric",
            rubric,
            "--times",
            root / "times.csv",
            "--out",
            out,
            "-q",
            "--no-metrics",
            *extra,
            env=env,
            check=check,
        )

    run()
    grades = finals(out, env)
    assert grades["A0000001"] == "50.00" and grades["A0000004"] == "40.00"  # two zip.junk x 5
    assert history(out, "A0000001") == [("first grading", None, 50.0, 1)]

    # Overrides: a false flag cleared, a grade set by hand; each a recorded line of the grade.
    res = grader(
        "override",
        out,
        "A0000004",
        "--clear",
        "zip.*",
        "--reason",
        "macOS zip tool, allowed",
        env=env,
    )
    assert "40.00 -> 50.00" in res.stdout
    grader(
        "override", out, "A0000001", "--points", "95", "--reason", "FID checked by hand", env=env
    )
    assert finals(out, env)["A0000001"] == "95.00"
    grader("override", out, "A0000002", "--points", "80", env=env, check=2)  # a reason is required
    page = (out / "students" / "A0000001" / "index.html").read_text(encoding="utf-8")
    assert (
        "TA override: grade set" in page
        and "FID checked by hand" in page
        and 'id="history"' in page
    )
    assert ">95<" in (out / "index.html").read_text(
        encoding="utf-8"
    )  # the class page was written again

    # A scoring edit re-scores everyone; the overrides are applied again.
    set_base(rubric, 60)
    res = run()
    assert "8 re-scored" in res.stdout
    grades = finals(out, env)
    assert (
        grades["A0000001"] == "95.00"
        and grades["A0000004"] == "60.00"
        and grades["A0000002"] == "60.00"
    )
    assert history(out, "A0000002")[-1] == ("rubric edit", 50.0, 60.0, 2)
    assert (
        history(out, "A0000001")[-1][0] == "override: grade set to 95"
    )  # unchanged: nothing logged

    # --force regrades from scratch: overrides survive that too.
    set_base(rubric, 50)
    res = run("--force")
    assert "8 graded" in res.stdout
    assert finals(out, env)["A0000001"] == "95.00" and finals(out, env)["A0000004"] == "50.00"
    assert history(out, "A0000002")[-1] == ("regrade (--force)", 60.0, 50.0, 3)

    # A new submission, and a new submission time, are named as such.
    shutil.copyfile(
        subs / "A0000003" / "A0000003.zip", subs / "A0000002" / "A0000002.zip"
    )  # wrong count
    times = (root / "times.csv").read_text().replace("A0000005,2026-11-30", "A0000005,2026-12-05")
    (root / "times.csv").write_text(times)
    run()
    why, old, new, _ = history(out, "A0000002")[-1]
    assert why == "new submission" and old == 50 and new < 50
    assert history(out, "A0000005")[-1][:3] == ("submission time change", 45.0, 0.0)

    # Exports carry the overrides.
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "Student,ID,SIS User ID,SIS Login ID,Section\n    Points Possible,,,,\n"
        '"One, A",11,A0000001,a1,S1\n"Four, A",14,A0000004,a4,S1\n'
    )
    canvas = grader(
        "export", out, "--format", "canvas", "--roster", roster, "--assignment", "HW3", env=env
    ).stdout
    assert [row[-1] for row in csv.reader(io.StringIO(canvas))][2:] == ["95.00", "50.00"]
    rows = {
        r["student_id"]: r
        for r in csv.DictReader(
            io.StringIO(grader("export", out, "--format", "csv", env=env).stdout)
        )
    }
    assert "FID checked by hand" in rows["A0000001"]["ta_override"]
    assert (
        "macOS zip tool" in rows["A0000004"]["ta_override"]
        and rows["A0000002"]["ta_override"] == ""
    )
    grader("export", out, "--format", "gradescope", "-o", tmp_path / "gs", env=env)
    gs = json.loads((tmp_path / "gs" / "A0000001" / "results.json").read_text())
    assert gs["score"] == 95 and any(t["name"] == "TA override: grade set" for t in gs["tests"])

    # Taking an override back re-scores from the stored rubric; all of it on record.
    res = grader(
        "override", out, "A0000001", "--remove", "--reason", "regrade request withdrawn", env=env
    )
    assert "95.00 -> 50.00" in res.stdout
    text = grader("history", out, "A0000001", env=env).stdout
    for expected in (
        "first grading",
        "override: grade set to 95",
        "FID checked by hand",
        "override removed (all)",
        "now: 50.00 (complete)",
    ):
        assert expected in text, text
    assert "active override" not in text
    grader("override", out, "A0000001", "--remove", env=env, check=2)  # nothing left to remove
    grader("history", out, "NOBODY", env=env, check=2)
