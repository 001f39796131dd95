"""Grades a TA can upload without fear, checked with real `grader` processes on the example
class, a real SQLite store and the real export files: incomplete is never 0, nothing is
deleted unless asked, one run per results folder, kill -9 at any moment is harmless, and
student pages keep the grading machine private."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli import grader

from grader.examples import CLASS

ROOT = Path(__file__).resolve().parents[1]
IMAGES = 16  # per student: format checks only (--no-metrics) except in the privacy test
LATE_HARD = "A0000007"  # late under the hard deadline: 0 whatever the FID, a real grade
IDS = sorted(s.student_id for s in CLASS)



@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return {
        **os.environ,
        "GRADER_CACHE_DIR": str(tmp_path_factory.mktemp("cache")),
        "NO_COLOR": "1",
    }


@pytest.fixture(scope="module")
def klass(tmp_path_factory, env) -> Path:
    root = tmp_path_factory.mktemp("class")
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
    return root


def submissions_copy(klass: Path, dest: Path) -> Path:
    shutil.copytree(klass / "submissions", dest)
    return dest


def run_cmd(subs: Path, klass: Path, out: Path, *extra) -> list[str]:
    return [
        sys.executable,
        "-m",
        "grader",
        "run",
        str(subs),
        "--rubric",
        str(klass / "rubric.yaml"),
        "--times",
        str(klass / "times.csv"),
        "--out",
        str(out),
        "-q",
        "--no-metrics",
        *map(str, extra),
    ]


def run_class(subs: Path, klass: Path, out: Path, env, *extra, check: int | None = 3):
    res = subprocess.run(
        run_cmd(subs, klass, out, *extra), capture_output=True, text=True, env=env, check=False
    )
    if check is not None:
        assert res.returncode == check, res.stdout + res.stderr
    return res


def csv_rows(text: str) -> dict[str, dict]:
    return {row["student_id"]: row for row in csv.DictReader(io.StringIO(text))}


def export_rows(out: Path, env) -> dict[str, dict]:
    return csv_rows(grader("export", out, "--format", "csv", env=env).stdout)


@pytest.fixture(scope="module")
def graded(klass, env, tmp_path_factory) -> Path:
    """The example class graded without metrics: every band is missing."""
    out = tmp_path_factory.mktemp("results")
    res = run_class(klass / "submissions", klass, out, env)
    assert "8 graded" in res.stdout
    return out


def write_roster(path: Path, ids: list[str]) -> Path:
    lines = ["Student,ID,SIS User ID,SIS Login ID,Section,HW3 (7)", "    Points Possible,,,,,100"]
    lines += [f'"Student, {sid}",{1000 + i},{sid},s{i},Sec 1,' for i, sid in enumerate(ids)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------- incomplete is never zero


def test_no_metrics_gives_incomplete_grades_not_zeros(graded, env):
    rows = export_rows(graded, env)
    assert sorted(rows) == IDS
    for sid, row in rows.items():
        if sid == LATE_HARD:
            assert row["grade_status"] == "complete" and row["final"] == "0.00", row
            continue
        assert (
            row["grade_status"] == "incomplete" and row["final"] == "" and row["raw_points"] == ""
        ), row
        assert (
            "--no-metrics" in row["incomplete_reason"] and "FID score" in row["incomplete_reason"]
        )
    page = (graded / "students" / "A0000001" / "index.html").read_text(encoding="utf-8")
    assert 'id="final-grade">Incomplete<' in page and "never counted as zero" in page
    assert "not computed" in page and "--no-metrics" in page
    index = (graded / "index.html").read_text(encoding="utf-8")
    assert 'id="incomplete-count"' in index and "7 grades incomplete" in index
    assert index.count('data-codes="') == len(IDS) and index.count(' incomplete"') >= 7


def test_grader_run_exit_codes_are_documented(env):
    text = grader("run", "--help", env=env).stdout
    assert (
        "3  no crash, but some grades are incomplete" in text
        and "2  usage or configuration error" in text
    )


def test_canvas_file_refused_with_incomplete_then_empty_cells(graded, env, tmp_path):
    roster = write_roster(tmp_path / "roster.csv", IDS)
    out = tmp_path / "canvas.csv"
    refused = grader(
        "export",
        graded,
        "--format",
        "canvas",
        "--roster",
        roster,
        "--assignment",
        "HW3 (7)",
        "-o",
        out,
        env=env,
        check=2,
    )
    assert "7 grade(s) are incomplete" in refused.stderr and "A0000001: FID score" in refused.stderr
    assert not out.exists()
    allowed = grader(
        "export",
        graded,
        "--format",
        "canvas",
        "--roster",
        roster,
        "--assignment",
        "HW3 (7)",
        "-o",
        out,
        "--allow-incomplete",
        env=env,
    )
    assert "incomplete grade(s) left empty" in allowed.stderr
    with out.open(newline="", encoding="utf-8") as f:
        table = list(csv.reader(f))
    assert table[0][-1] == "HW3 (7)" and table[1][0] == "Points Possible"
    cells = {row[2]: row[-1] for row in table[2:]}
    assert cells == {sid: ("0.00" if sid == LATE_HARD else "") for sid in IDS}


def test_gradescope_incomplete_has_no_score_anywhere(graded, env, tmp_path):
    grader("export", graded, "--format", "gradescope", "-o", tmp_path / "gs", env=env, check=2)
    assert not (tmp_path / "gs").exists()
    grader(
        "export",
        graded,
        "--format",
        "gradescope",
        "-o",
        tmp_path / "gs",
        "--allow-incomplete",
        env=env,
    )
    data = json.loads((tmp_path / "gs" / "A0000001" / "results.json").read_text())
    assert "score" not in data and all("score" not in t for t in data["tests"])
    assert data["output"].startswith("Grade incomplete") and "--no-metrics" in data["output"]
    late = json.loads((tmp_path / "gs" / LATE_HARD / "results.json").read_text())
    assert late["score"] == 0


# ---------------------------------------------------------------- nothing deleted


def test_missing_student_is_kept_and_only_prune_removes_it(klass, env, tmp_path):
    subs, out = submissions_copy(klass, tmp_path / "subs"), tmp_path / "results"
    run_class(subs, klass, out, env)
    shutil.move(subs / "A0000003", tmp_path / "A0000003")  # a partial re-download of the LMS export
    res = run_class(subs, klass, out, env)
    assert (
        "kept 1 record(s)" in res.stdout
        and "A0000003" in res.stdout
        and "removed" not in res.stdout
    )
    rows = export_rows(out, env)
    assert sorted(rows) == IDS and rows["A0000003"]["present"].startswith("no")
    page = (out / "students" / "A0000003" / "index.html").read_text(encoding="utf-8")
    assert "not in the submissions folder in the latest grading run" in page
    assert "not-present" in (out / "index.html").read_text(encoding="utf-8")
    history = grader("history", out, "A0000003", env=env).stdout
    assert "not in the submissions folder (record kept)" in history

    pruned = run_class(subs, klass, out, env, "--prune")
    assert "pruned 1 record(s)" in pruned.stdout and "A0000003" in pruned.stdout
    assert "A0000003" not in export_rows(out, env)
    assert not (out / "students" / "A0000003").exists()
    assert (
        "removed (--prune)" in grader("history", out, "A0000003", env=env).stdout
    )  # the history stays

    shutil.move(tmp_path / "A0000003", subs / "A0000003")
    back = run_class(subs, klass, out, env)
    assert "1 graded" in back.stdout and export_rows(out, env)["A0000003"]["present"] == "yes"


# ---------------------------------------------------------------- one writer at a time


def _lock_holder(out: Path) -> dict:
    try:
        return json.loads((out / ".grader.lock").read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _gradings(db: Path, run_id: int | None = None) -> list[tuple[str, int]]:
    try:
        with sqlite3.connect(db, timeout=5) as con:
            rows = con.execute("SELECT student_id, run_id FROM gradings").fetchall()
    except sqlite3.Error:
        return []
    return [r for r in rows if run_id is None or r[1] == run_id]


def _wait(predicate, proc: subprocess.Popen, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_second_run_is_refused_and_report_shows_committed_state(klass, env, tmp_path):
    subs, out = submissions_copy(klass, tmp_path / "subs"), tmp_path / "results"
    run_class(subs, klass, out, env)
    first = subprocess.Popen(
        run_cmd(subs, klass, out, "--force"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Freeze the first run in the middle of its grading, lock held, two students committed.
        _wait(
            lambda: len(_gradings(out / "grader.db", 2)) >= 2,
            first,
            "two gradings of the second run",
        )
        first.send_signal(signal.SIGSTOP)
        holder = _lock_holder(out)
        assert holder["pid"] == first.pid

        second = run_class(subs, klass, out, env, check=2)
        assert f"pid {first.pid}" in second.stderr and holder["host"] in second.stderr
        assert holder["started_at"] in second.stderr and "is in use by" in second.stderr
        override = grader(
            "override", out, "A0000001", "--points", "90", "--reason", "r", env=env, check=2
        )
        assert f"pid {first.pid}" in override.stderr

        # Reading works meanwhile, on the last committed state, and writes whole pages.
        report = grader("report", out, env=env)
        assert f"{len(IDS) + 1} pages" in report.stdout
        assert export_rows(out, env).keys() == set(IDS)
        for page in [out / "index.html", *out.glob("students/*/index.html")]:
            assert page.read_text(encoding="utf-8").endswith("</html>\n"), page
    finally:
        first.send_signal(signal.SIGCONT)
        stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 3, stdout + stderr
    graded_twice = sorted(sid for sid, _ in _gradings(out / "grader.db", 2))
    assert graded_twice == IDS  # every student once in the forced run, nobody twice


def test_lock_of_a_killed_run_is_taken_over(klass, env, tmp_path):
    subs, out = submissions_copy(klass, tmp_path / "subs"), tmp_path / "results"
    proc = subprocess.Popen(
        run_cmd(subs, klass, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _wait(lambda: _lock_holder(out).get("pid") == proc.pid, proc, "the lock")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _lock_holder(out)["pid"] == proc.pid  # the file still names the dead process
    res = run_class(subs, klass, out, env)
    assert "8 students" in res.stdout
    assert _lock_holder(out) == {}  # released at the end


# ---------------------------------------------------------------- crash safety


def _store_state(out: Path) -> dict:
    """What a grade depends on, without clocks and run numbers."""
    with sqlite3.connect(out / "grader.db") as con:
        results = {}
        for sid, gkey, skey, status, final, record, present in con.execute(
            "SELECT student_id, grading_key, score_key, status, final, record, present FROM results"
        ):
            data = json.loads(record)
            for key in ("started_at", "finished_at"):
                data.pop(key, None)
            results[sid] = (gkey, skey, status, final, present, json.dumps(data, sort_keys=True))
        history = sorted(
            con.execute(
                "SELECT student_id, why, old_final, new_final, old_status, new_status FROM history"
            ).fetchall(),
            key=repr,
        )
        graded = sorted(r[0] for r in con.execute("SELECT student_id FROM gradings"))
    return {"results": results, "history": history, "gradings": graded}


def _pages_whole(out: Path) -> None:
    for page in [out / "index.html", *out.glob("students/*/index.html")]:
        if page.exists():
            assert page.read_text(encoding="utf-8").endswith("</html>\n"), f"truncated: {page}"


def test_kill_9_ten_times_then_resume_equals_uninterrupted(klass, env, tmp_path):
    subs = submissions_copy(klass, tmp_path / "subs")
    clean = tmp_path / "clean"
    started = time.monotonic()
    run_class(subs, klass, clean, env)
    duration = time.monotonic() - started

    out, rng, killed = tmp_path / "killed", random.Random(20261202), 0
    for _ in range(10):
        proc = subprocess.Popen(
            run_cmd(subs, klass, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.3, 1.0) * duration)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
        _pages_whole(out)
    assert killed >= 5, f"only {killed} of 10 runs were still going when killed"
    res = run_class(subs, klass, out, env)
    assert "8 students" in res.stdout
    _pages_whole(out)
    assert not list(out.rglob("*.tmp")) or all(p.name.startswith(".") for p in out.rglob("*.tmp"))
    assert export_rows(out, env) == export_rows(clean, env)
    state, expected = _store_state(out), _store_state(clean)
    assert state["results"] == expected["results"]
    assert state["gradings"] == IDS  # nobody graded twice, nobody lost
    assert state["history"] == expected["history"]


# ---------------------------------------------------------------- privacy of pages


def test_student_pages_hide_machine_paths_and_tracebacks(
    klass, graded, env, tmp_path, inception_weights
):
    """A real FID (tiny) puts the weights' and statistics' absolute paths in the record; the page
    shows file names and sha256s only. A stored traceback shows only with --show-tracebacks."""
    stats = tmp_path / "private" / "ta-only" / "mnist.npz"
    stats.parent.mkdir(parents=True)
    grader(
        "stats",
        klass / "submissions" / "A0000002" / "A0000002.zip",
        "--limit",
        IMAGES,
        "-o",
        stats,
        "--inception-weights",
        inception_weights,
        env=env,
    )
    out = tmp_path / "results"
    res = grader(
        "run",
        klass / "submissions",
        "--rubric",
        klass / "rubric.yaml",
        "--times",
        klass / "times.csv",
        "--out",
        out,
        "-q",
        "--student",
        "A0000001",
        "--stats",
        f"fid={stats}",
        "--inception-weights",
        inception_weights,
        env=env,
        check=0,
    )
    assert "1 graded" in res.stdout
    with sqlite3.connect(out / "grader.db") as con:
        record = json.loads(con.execute("SELECT record FROM results").fetchone()[0])
    provenance = record["metrics"][0]["provenance"]
    assert provenance["stats"] == str(stats)  # the store keeps everything for the TA
    page = (out / "students" / "A0000001" / "index.html").read_text(encoding="utf-8")
    assert provenance["stats_sha256"] in page and provenance["weights_sha256"] in page
    assert str(tmp_path) not in page and str(inception_weights.parent) not in page
    assert "mnist.npz" in page

    # A crash's traceback: kept in the store, on the page only when the TA asks.
    crashed = tmp_path / "crashed"
    shutil.copytree(graded, crashed)
    secret = f'File "{tmp_path}/grader/pipeline.py", line 1\nMemoryError: decoding'
    with sqlite3.connect(crashed / "grader.db") as con:
        row = json.loads(
            con.execute("SELECT record FROM results WHERE student_id = 'A0000005'").fetchone()[0]
        )
        row.update(traceback=secret, status="error")
        con.execute(
            "UPDATE results SET record = ? WHERE student_id = 'A0000005'", (json.dumps(row),)
        )
    grader("report", crashed, env=env)
    page = (crashed / "students" / "A0000005" / "index.html").read_text(encoding="utf-8")
    assert (
        "The grader could not finish" in page
        and "MemoryError" not in page
        and str(tmp_path) not in page
    )
    grader("report", crashed, "--show-tracebacks", env=env)
    assert "MemoryError: decoding" in (crashed / "students" / "A0000005" / "index.html").read_text(
        encoding="utf-8"
    )
