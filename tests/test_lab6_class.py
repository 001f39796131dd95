"""Lab6 end to end: a class graded by `grader run` in a real process with an evaluator trained
here on rendered scenes; the CSV against points computed by hand from rubrics/lab6.yaml with the
course's recipe written out plainly."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
from pathlib import Path

import iclevr
import numpy as np
import pytest
import yaml
from cli import grader
from test_report_browser import assert_results_folder_works

from grader.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]
GOOD, WEAK, SHORT, NO_GRID = "0810001", "0810002", "0810003", "0810004"



@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return {
        **os.environ,
        "GRADER_CACHE_DIR": str(tmp_path_factory.mktemp("cache")),
        "NO_COLOR": "1",
    }


def write_rubric(root: Path, weights: Path) -> Path:
    """rubrics/lab6.yaml beside the TA's label files, with these evaluator weights."""
    rubric = yaml.safe_load((ROOT / "rubrics" / "lab6.yaml").read_text())
    for metric in rubric["metrics"].values():
        metric["weights"] = str(weights)
    (root / "rubric.yaml").write_text(yaml.safe_dump(rubric, sort_keys=False))
    return root / "rubric.yaml"


@pytest.fixture(scope="module")
def lab6(tmp_path_factory, evaluator_checkpoint):
    root = tmp_path_factory.mktemp("lab6")
    labels = iclevr.write_label_files(root, n=32, seed=800)
    write_rubric(root, evaluator_checkpoint)
    test, new = labels["test"], labels["new_test"]
    subs = root / "submissions"
    good = iclevr.render_all(test, 810), iclevr.render_all(new, 811)
    iclevr.write_lab6_submission(subs / GOOD, *good, seed=1)
    weak = (
        iclevr.render_all(iclevr.wrong_objects(test, 0.5, 3), 812),
        iclevr.render_all(iclevr.wrong_objects(new, 0.4, 4), 813),
    )
    iclevr.write_lab6_submission(subs / WEAK, *weak, seed=2)
    iclevr.write_lab6_submission(subs / SHORT, good[0][:31], good[1], seed=3)
    iclevr.write_lab6_submission(subs / NO_GRID, *good, seed=4)
    (subs / NO_GRID / "test_grid.png").unlink()
    return root


@pytest.fixture(scope="module")
def graded(lab6, env):
    out = lab6 / "results"
    res = grader(
        "run",
        lab6 / "submissions",
        "--rubric",
        lab6 / "rubric.yaml",
        "--out",
        out,
        "-q",
        "--device",
        "cpu",
        env=env,
    )
    assert "4 graded" in res.stdout, res.stdout
    rows = grader("export", out, "--format", "csv", env=env).stdout
    with ResultStore(out) as store:
        stored = {r.student_id: r for r in store.all()}
    return {row["student_id"]: row for row in csv.DictReader(io.StringIO(rows))}, stored


def band(acc: float) -> float:
    return float(np.clip(20 * (acc - 0.5) / 0.3, 0, 20))


def course(evaluator_checkpoint, lab6, sid: str, stem: str) -> float:
    folder = lab6 / "submissions" / sid / stem
    sets = yaml.safe_load((lab6 / f"{stem}.json").read_text())
    return iclevr.course_accuracy(evaluator_checkpoint, [folder / f"{i}.png" for i in range(len(sets))], sets)


def test_class_points_match_hand_computed(graded, lab6, evaluator_checkpoint):
    rows, stored = graded
    acc = {
        sid: {stem: course(evaluator_checkpoint, lab6, sid, stem) for stem in ("test", "new_test")}
        for sid in (GOOD, WEAK, NO_GRID)
    }
    acc[SHORT] = {"test": None, "new_test": course(evaluator_checkpoint, lab6, SHORT, "new_test")}
    # Deductions by rubrics/lab6.yaml: 31 images in test/ -> images.count and images.missing,
    # 5 each, cap 10; no test grid -> submission.missing_artifact, 20.
    deductions = {GOOD: 0, WEAK: 0, SHORT: 10, NO_GRID: 20}
    for sid, d in deductions.items():
        a = acc[sid]
        expected = 60 + (band(a["test"]) if a["test"] is not None else 0) + band(a["new_test"]) - d
        assert float(rows[sid]["final"]) == pytest.approx(expected, abs=0.006), (sid, a, rows[sid])
        metrics = {m.name: m.value for m in stored[sid].metrics}
        assert (
            metrics["accuracy_test"] == a["test"] and metrics["accuracy_new_test"] == a["new_test"]
        )
    assert acc[GOOD]["test"] >= 0.9 and acc[WEAK]["test"] < acc[GOOD]["test"] - 0.2
    short = stored[SHORT]
    assert {f.code for f in short.findings if f.artifact == "test_images"} >= {
        "images.count",
        "images.missing",
        "evaluator.count",
        "evaluator.names",
    }
    assert "do not match test.json" in short.metric("accuracy_test").skipped
    assert rows[GOOD]["status"] == "clean" and rows[NO_GRID]["status"] == "problems"


def test_both_accuracies_reach_the_csv(graded):
    rows, stored = graded
    columns = list(rows[GOOD])
    assert columns[columns.index("max_points") + 1 : columns.index("findings")] == [
        "accuracy_test", "accuracy_new_test",
    ]
    for sid, record in stored.items():
        for m in record.metrics:
            assert rows[sid][m.name] == ("" if m.value is None else f"{m.value:.4f}")
    # Uncomputed: empty, with the reason in incomplete_reason.
    assert rows[SHORT]["accuracy_test"] == "" and "do not match test.json" in rows[SHORT]["incomplete_reason"]


def test_the_page_labels_the_evaluator_checkpoint(graded, lab6):
    page = (lab6 / "results" / "students" / GOOD / "index.html").read_text()
    assert "Evaluator checkpoint (sha256)" in page and "Inception weights" not in page


def test_provenance_names_the_evaluator(graded, evaluator_checkpoint):
    _, stored = graded
    prov = stored[GOOD].metric("accuracy_new_test").provenance
    assert prov["evaluator"] == "iclevr-resnet18" and prov["n"] == 32 and prov["device"] == "cpu"
    import hashlib

    assert prov["weights_sha256"] == hashlib.sha256(evaluator_checkpoint.read_bytes()).hexdigest()


def test_an_evaluator_that_does_not_load_stops_before_grading(lab6, env, tmp_path):
    bad = tmp_path / "checkpoint.pth"
    bad.write_bytes(b"\x80\x04 truncated pickle")
    root = tmp_path / "ta"
    root.mkdir()
    for name in ("objects.json", "test.json", "new_test.json"):
        (root / name).write_bytes((lab6 / name).read_bytes())
    write_rubric(root, bad)
    res = grader(
        "run",
        lab6 / "submissions",
        "--rubric",
        root / "rubric.yaml",
        "--out",
        tmp_path / "out",
        "-q",
        env=env,
        check=None,
    )
    assert res.returncode == 2, res.stdout + res.stderr
    assert (
        "accuracy_test" in res.stderr
        and str(bad) in res.stderr
        and "not a torch checkpoint" in res.stderr
    )
    assert not (tmp_path / "out" / "grader.db").exists()


def check(hand_in: Path, rubric: Path, env, *extra) -> tuple[subprocess.CompletedProcess, dict]:
    """`grader check` of one hand-in: its console output and its --json record."""
    args = ("check", hand_in, "--rubric", rubric, "--device", "cpu", *extra)
    text = grader(*args, env=env, check=None)
    data = json.loads(grader(*args, "--json", env=env, check=None).stdout)
    return text, data


def test_check_without_the_ta_files_shows_no_total(tmp_path, env):
    """A student's check without checkpoint.pth and the label files: the accuracy lines are the
    TA's, so no total (never `missing: 0` standing in), each named once with its reason."""
    sets = iclevr.label_sets(64, seed=5)
    hand_in = iclevr.write_lab6_submission(
        tmp_path / "0810009", iclevr.render_all(sets[:31], 6), iclevr.render_all(sets[32:], 7), seed=8
    )
    rubric = tmp_path / "ta" / "lab6.yaml"  # no TA file beside it
    rubric.parent.mkdir()
    rubric.write_text((ROOT / "rubrics" / "lab6.yaml").read_text())
    res, data = check(hand_in, rubric, env)
    assert res.returncode == 1, res.stdout + res.stderr  # 31 images in test/
    out = res.stdout
    assert data["grade"]["final"] is None and data["grade"]["status"] == "incomplete"
    assert {m["skipped_cause"] for m in data["metrics"]} == {"not_here"}
    assert "= no total here: 60 of the 100 points checked here; Accuracy on test.json, " \
           "Accuracy on new_test.json are computed by the TA" in out
    assert "+60.00  Base points" in out and "-10.00  Image set format" in out  # computed lines
    assert "Accuracy on test.json  (computed by the TA, up to 20 points)" in out
    assert " / 100" not in out and "set by the rubric (missing)" not in out
    # One sentence per metric names the absent files; nothing repeats it.
    assert out.count("the TA's checkpoint.pth, test.json and objects.json are not on this machine") == 1
    assert out.count("the TA's checkpoint.pth, new_test.json and objects.json are not on this machine") == 1
    assert out.count("checkpoint.pth") == 2 and out.count("file not found") == 0


def test_check_with_the_ta_files_gives_the_run_total(graded, lab6, env):
    rows, _ = graded
    for sid in (GOOD, SHORT):  # SHORT: 31 images do not match test.json, `missing: 0` is the rule
        res, data = check(lab6 / "submissions" / sid, lab6 / "rubric.yaml", env)
        assert data["grade"]["status"] == "complete", res.stdout
        assert round(data["grade"]["final"], 2) == float(rows[sid]["final"]), (sid, res.stdout)
        assert f"= {float(rows[sid]['final']):.2f} / 100" in res.stdout


def label_set_rows(page: str, metric: str) -> list[tuple[str, int, int]]:
    """(image, hits, k) of each row of a metric's label-set table, in page order."""
    section = page[page.index(f'id="metric-{metric}"'):]
    section = section[: section.index("</section>")]
    return [(image, int(h), int(k)) for image, h, k in
            re.findall(r'data-image="([^"]+)" data-hits="(\d+)" data-k="(\d+)"', section)]


def test_the_page_lists_each_label_set_misses_first(graded, lab6, evaluator_checkpoint):
    page_dir = lab6 / "results" / "students" / WEAK
    page = (page_dir / "index.html").read_text()
    for metric, stem in (("accuracy_test", "test"), ("accuracy_new_test", "new_test")):
        rows = label_set_rows(page, metric)
        sets = yaml.safe_load((lab6 / f"{stem}.json").read_text())
        images = [lab6 / "submissions" / WEAK / stem / f"{i}.png" for i in range(len(sets))]
        expected = {f"{i}.png": hk for i, hk in enumerate(iclevr.course_hits(evaluator_checkpoint, images, sets))}
        assert {image: (h, k) for image, h, k in rows} == expected  # every label set, by the course recipe
        shares = [h / k for _, h, k in rows]
        assert shares == sorted(shares) and shares[0] < 1  # misses first
    thumbs = re.findall(r'<img class="thumb[^"]*" src="([^"]+)"', page)
    assert len(thumbs) == 64 and all((page_dir / src).is_file() for src in thumbs)


def test_the_class_page_shows_which_label_sets_the_class_fails(graded, lab6):
    _, stored = graded
    page = (lab6 / "results" / "index.html").read_text()
    section = page[page.index('id="label-sets-accuracy_test"'):]
    section = section[: section.index("</section>")]
    rows = re.findall(r'<tr data-image="([^"]+)">.*?<td class="num">([\d.]+)</td><td class="num">(\d+)</td>', section)
    assert len(rows) == 32
    with_value = [r for r in stored.values() if r.metric("accuracy_test").value is not None]
    for image, accuracy, students in rows:
        per = [next(p for p in r.metric("accuracy_test").details["per_image"] if p["image"] == image)
               for r in with_value]
        expected = sum(p["hits"] for p in per) / sum(len(p["true"]) for p in per)
        assert float(accuracy) == pytest.approx(expected, abs=5e-4) and int(students) == len(with_value)
    accuracies = [float(a) for _, a, _ in rows]
    assert accuracies == sorted(accuracies)  # the label sets the class fails come first


@pytest.mark.browser
def test_the_pages_open_in_chromium_with_the_thumbnails(graded, lab6, browser, tmp_path):
    # Every student page loads every picture (the label sets' thumbnails too) without an error.
    assert assert_results_folder_works(browser, lab6 / "results", tmp_path) == 4
