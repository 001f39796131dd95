"""`grader run` end to end on the example class: real zips, real MNIST digits, the real
InceptionV3, the real CLI in real processes (including a SIGKILL mid-run)."""

from __future__ import annotations

import csv
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import kept
import numpy as np
import pytest
import yaml

from grader.examples import CLASS

ROOT = Path(__file__).resolve().parents[1]
IMAGES = 24  # per student: small, the Inception forward pass is ~6 images/s on a CPU


def grader(*args, env, check=True, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "grader", *map(str, args)], capture_output=True, text=True,
                         env=env, check=False, **kw)
    if check:
        assert res.returncode == 0, res.stdout + res.stderr
    return res


@pytest.fixture(scope="module")
def env(inception_weights):
    return {**os.environ, "GRADER_CACHE_DIR": str(kept.features()), "GRADER_INCEPTION_WEIGHTS": str(inception_weights),
            "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def example(tmp_path_factory, mnist_dir, env):
    """The example class, its rubric with bands widened so these small-N FIDs land on the slope,
    and MNIST-train statistics of 300 digits."""
    root = tmp_path_factory.mktemp("class")
    grader("example", "class", root, "--images", IMAGES, "--mnist", mnist_dir,
           "--rubric", ROOT / "rubrics" / "hw3.yaml", env=env)
    rubric = yaml.safe_load((root / "rubric.yaml").read_text())
    rubric["scoring"]["bands"][0]["points"] = [[100, 100], [400, 0]]
    (root / "rubric.yaml").write_text(yaml.safe_dump(rubric, sort_keys=False))
    grader("stats", mnist_dir, "--limit", 300, "-o", root / "mnist.npz", env=env)
    return root


def run_class(example, out, env, *extra, check=True):
    return grader("run", example / "submissions", "--rubric", example / "rubric.yaml", "--times",
                  example / "times.csv", "--out", out, "-q", *extra, env=env, check=check)


def export_rows(out, env) -> dict[str, dict]:
    res = grader("export", out, "--format", "csv", env=env)
    return {row["student_id"]: row for row in csv.DictReader(io.StringIO(res.stdout))}


@pytest.fixture(scope="module")
def graded(example, env, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    res = run_class(example, out, env)
    assert "8 graded" in res.stdout
    return out


# Hand-computed from rubrics/hw3.yaml: images.* 10 each (cap 30), zip.* 5 each (cap 10),
# submission.missing_artifact 20, a hard deadline (any lateness -> 0).
EXPECTED_DEDUCTIONS = {
    "A0000001": 0,
    "A0000002": 0,
    "A0000003": 20,  # images.count + images.missing
    "A0000004": 10,  # zip.junk for __MACOSX/ and for .DS_Store
    "A0000005": 5,   # zip.wrapping_folder
    "A0000006": 10,  # images.corrupt
    "A0000007": 0,   # on format; late
    "A0000008": 20,  # submission.missing_artifact (no process grid)
}


def band(fid: float) -> float:
    return float(np.clip(100 - (fid - 100) * 100 / 300, 0, 100))


def test_class_grades_match_hand_computed(graded, env):
    rows = export_rows(graded, env)
    assert sorted(rows) == [s.student_id for s in CLASS]
    for sid, deduction in EXPECTED_DEDUCTIONS.items():
        row = rows[sid]
        fid = float(row["fid"])
        assert 0 < fid < 400, (sid, fid)
        raw = max(band(fid) - deduction, 0)
        assert float(row["raw_points"]) == pytest.approx(raw, abs=0.006), sid
        if sid == "A0000007":
            assert row["late_days"] == "2" and float(row["final"]) == 0, row
        else:
            assert row["late_days"] == "0" and float(row["final"]) == pytest.approx(raw, abs=0.006), sid
        assert row["status"] == ("clean" if deduction == 0 else "problems"), sid
    # Blurry, noisy digits must score a worse FID than clean ones.
    assert float(rows["A0000002"]["fid"]) > float(rows["A0000001"]["fid"]) + 20


def test_reports_and_exports_exist(graded, env, tmp_path):
    assert (graded / "index.html").is_file()
    for s in CLASS:
        assert (graded / "students" / s.student_id / "index.html").is_file()
    grader("export", graded, "--format", "gradescope", "--out", tmp_path / "gs", env=env)
    assert len(list((tmp_path / "gs").glob("*/results.json"))) == len(CLASS)


def _gradings(db: Path) -> list[tuple[str, int]]:
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute("SELECT student_id, run_id FROM gradings").fetchall()
    except sqlite3.Error:
        return []


def test_sigkill_midway_then_rerun_equals_uninterrupted(example, graded, env, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "grader", "run", str(example / "submissions"), "--rubric",
           str(example / "rubric.yaml"), "--times", str(example / "times.csv"), "--out", str(out), "-q"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if len(_gradings(out / "grader.db")) >= 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    done_before = {sid for sid, _ in _gradings(out / "grader.db")}
    assert 2 <= len(done_before) < len(CLASS)

    res = run_class(example, out, env)
    assert f"{len(done_before)} unchanged" in res.stdout
    graded_log = [sid for sid, _ in _gradings(out / "grader.db")]
    assert sorted(graded_log) == sorted(s.student_id for s in CLASS)  # everyone exactly once
    assert export_rows(out, env) == export_rows(graded, env)


def _regrade(example, graded, env, tmp_path, edit):
    """Copy the graded results, edit the rubric, grade again in-process; returns the summary,
    the engine (if one was made) and the before/after CSV rows."""
    import shutil

    from grader.batch import run_batch
    from grader.intake.discover import read_times_csv
    from grader.pipeline import GradingContext
    from grader.rubric import load_rubric

    out = tmp_path / "edited"
    shutil.copytree(graded, out)
    original = (example / "rubric.yaml").read_text()
    text = edit(original)
    assert text != original
    # Beside the original: the rubric's TA files (mnist.npz, the mnist/ training digits) are relative.
    edited = example / f"rubric-{tmp_path.name}.yaml"
    edited.write_text(text)
    ctx = GradingContext(rubric=load_rubric(edited), work_root=out / "work", assets_root=out / "students",
                         cache_dir=Path(env["GRADER_CACHE_DIR"]), weights=Path(env["GRADER_INCEPTION_WEIGHTS"]))
    times = read_times_csv(example / "times.csv")
    summary = run_batch(example / "submissions", ctx, out, times=times)
    again = run_batch(example / "submissions", ctx, out, times=times)
    assert not again.graded and not again.rescored and len(again.reused) == len(CLASS)
    return summary, ctx._engines.get("pytorch-gan-metrics"), export_rows(graded, env), export_rows(out, env)


def test_scoring_edit_rescores_without_checking_again(example, graded, env, tmp_path):
    summary, engine, before, after = _regrade(example, graded, env, tmp_path,
                                              lambda t: t.replace("cap: 10\n", "cap: 7\n", 1))
    assert sorted(summary.rescored) == sorted(s.student_id for s in CLASS)
    assert not summary.graded and engine is None  # nothing unpacked, checked or measured
    assert after["A0000001"]["fid"] == before["A0000001"]["fid"]
    # Junk: two zip.junk findings x 5 capped at 7 now (was 10).
    assert float(after["A0000004"]["raw_points"]) == pytest.approx(float(before["A0000004"]["raw_points"]) + 3,
                                                                    abs=0.011)


def test_check_edit_regrades_with_cached_features(example, graded, env, tmp_path):
    def allow_duplicates(text):
        data = yaml.safe_load(text)
        data["artifacts"]["images"]["allow_duplicates"] = True
        return yaml.safe_dump(data, sort_keys=False)

    summary, engine, before, after = _regrade(example, graded, env, tmp_path, allow_duplicates)
    assert sorted(summary.graded) == sorted(s.student_id for s in CLASS)
    assert engine is not None and not engine.model_loaded, "features must all come from the cache"
    assert after == before


def test_student_check_shows_the_fid_the_ta_computed(example, graded, env):
    """The course's rule: the FID a student computes is identical to the TA's."""
    import json

    res = grader("check", example / "submissions" / "A0000001", "--rubric", example / "rubric.yaml", "--json",
                 env=env, check=False)
    data = json.loads(res.stdout)
    fid = data["metrics"][0]
    assert fid["value"] is not None, fid
    assert f"{fid['value']:.4f}" == export_rows(graded, env)["A0000001"]["fid"]
    assert fid["provenance"]["backend"] == "pytorch-gan-metrics" and fid["provenance"]["n"] == IMAGES
    assert res.returncode == 0  # perfect submission: no problems (small-N FID is a warning only)
