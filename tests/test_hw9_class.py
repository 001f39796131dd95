"""HW9 end to end: a class on real CelebA faces (64x64 crops) through `grader run` in a real
process, with pytorch-fid, late days (-10 a day, 5 at most), the progress-report rule, the PDF
report and the code as .py files (not notebooks), each grade checked line by line against
grades computed by hand from rubrics/hw9.yaml; the integrity metrics run on the same faces."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import hw9class
import numpy as np
import pytest

from grader.datasets import load_image_zip
from grader.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]
COUNT = 12  # images per set: small, Inception runs ~6 images/s on a CPU
REFERENCE = 48  # real faces behind the test statistics
BAND = [[100.0, 10.0], [400.0, 0.0]]  # small-N FIDs are large: the bands are widened to match

GOOD, LATE2, NO_REPORT, LATE6, BROKEN = "0910001", "0910002", "0910003", "0910004", "0910005"
NO_PDF, NOTEBOOK = "0910006", "0910007"
LATE = {GOOD: -0.5, LATE2: 1.5, NO_REPORT: -1, LATE6: 5.2, BROKEN: -0.1, NO_PDF: -1, NOTEBOOK: -1}
REPORTED = [GOOD, LATE2, LATE6, BROKEN, NO_PDF, NOTEBOOK]  # handed in the progress report


def grader(*args, env, check=True):
    res = subprocess.run(
        [sys.executable, "-m", "grader", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if check:
        assert res.returncode == 0, res.stdout + res.stderr
    return res


@pytest.fixture(scope="module")
def env(request, inception_weights):
    # Features are cached by image content across runs of the suite.
    cache = request.config.cache.mkdir("hw9-features")
    return {
        **os.environ,
        "GRADER_CACHE_DIR": str(cache),
        "GRADER_INCEPTION_WEIGHTS": str(inception_weights),
        "NO_COLOR": "1",
    }


@pytest.fixture(scope="module")
def hw9(tmp_path_factory, faces_zip, env):
    root = tmp_path_factory.mktemp("hw9")
    faces = load_image_zip(faces_zip, limit=REFERENCE + 3 * COUNT, size=64)
    hw9class.write_set(root / "real", faces[:REFERENCE], "{:05d}.png", as_zip=False)
    grader("stats", root / "real", "--backend", "pytorch-fid", "-o", root / "celeba64.npz", env=env)
    sets = {
        "gan": hw9class.blurred(faces[REFERENCE : REFERENCE + COUNT], 1.5),
        "diffusion": faces[REFERENCE + COUNT : REFERENCE + 2 * COUNT],
        "finetuned": hw9class.blurred(faces[REFERENCE + 2 * COUNT :], 0.7),
    }
    subs = root / "submissions"
    for sid in (GOOD, NO_REPORT, LATE6):
        hw9class.write_hw9_submission(subs / sid, sets)
    hw9class.write_hw9_submission(subs / LATE2, sets, zips=True)
    broken = dict(sets, finetuned=sets["finetuned"][:-1])
    hw9class.write_hw9_submission(subs / BROKEN, broken, loss_plot=False)
    hw9class.write_hw9_submission(subs / NO_PDF, sets, report=False)
    hw9class.write_hw9_submission(subs / NOTEBOOK, sets, notebook=True)
    reports = root / "progress_reports.csv"
    reports.write_text("student_id,name\n" + "".join(f"{sid},student {sid}\n" for sid in REPORTED))
    hw9class.write_times(root / "times.csv", LATE)
    hw9class.write_test_rubric(
        ROOT / "rubrics" / "hw9.yaml",
        root / "rubric.yaml",
        count=COUNT,
        stats=root / "celeba64.npz",
        training=root / "real",  # the integrity metrics' training faces: the statistics' faces
        handed_in=reports,
        band=BAND,
    )
    return root


@pytest.fixture(scope="module")
def graded(hw9, env):
    out = hw9 / "results"
    res = grader(
        "run",
        hw9 / "submissions",
        "--rubric",
        hw9 / "rubric.yaml",
        "--times",
        hw9 / "times.csv",
        "--out",
        out,
        "-q",
        env=env,
    )
    assert "7 graded" in res.stdout, res.stdout
    with ResultStore(out) as store:
        return out, {r.student_id: r for r in store.all()}


def band(fid: float) -> float:
    return float(np.clip(10 * (400 - fid) / 300, 0, 10))


def fids(result) -> dict[str, float]:
    return {m.name: m.value for m in result.metrics if m.kind == "fid"}


def lines(result) -> list[tuple[str, float]]:
    return [(line.label, round(line.points, 4)) for line in result.grade.lines]


def expected_lines(result, deductions: list[tuple[str, float]]) -> list[tuple[str, float]]:
    f = fids(result)
    return [
        ("Base points", 70.0),
        ("FID of GAN samples", round(band(f["fid_gan"]), 4)),
        ("FID of diffusion samples", round(band(f["fid_diffusion"]), 4)),
        ("FID of fine-tuned GAN samples", round(band(f["fid_finetuned"]), 4)),
        *deductions,
    ]


def test_fids_are_computed_with_pytorch_fid(graded):
    _, results = graded
    good = results[GOOD]
    for m in good.metrics:
        if m.kind != "fid":
            continue
        assert m.value is not None and 20 < m.value < 400, (m.name, m.value)
        assert m.provenance["backend"] == "pytorch-fid" and m.provenance["n"] == COUNT
    # Blurred faces are further from the real ones than real faces are.
    assert fids(good)["fid_gan"] > fids(good)["fid_diffusion"] + 10
    # The same images, handed in as zips with other names, give the same FIDs.
    assert fids(results[LATE2]) == fids(good)


def test_on_time_with_report(graded):
    r = graded[1][GOOD]
    assert lines(r) == expected_lines(r, [])
    assert r.grade.late_days == 0 and r.grade.final == pytest.approx(
        sum(p for _, p in lines(r)), abs=1e-3
    )


def test_two_days_late_loses_twenty(graded):
    r = graded[1][LATE2]
    raw = sum(p for _, p in expected_lines(r, []))
    assert lines(r) == expected_lines(r, []) + [("Late penalty", -20.0)]
    assert r.grade.late_days == 2 and r.grade.final == pytest.approx(raw - 20, abs=1e-3)


def test_without_progress_report_not_graded(graded):
    r = graded[1][NO_REPORT]
    assert r.grade.final == 0 and r.grade.raw == 0
    zero = r.grade.lines[-1]
    assert zero.label == "Grade set to zero" and zero.points == pytest.approx(
        -sum(p for _, p in expected_lines(r, []))
    )
    assert (
        "prerequisite.missing" in zero.detail and "Progress report was not handed in" in zero.detail
    )
    assert any(f.code == "prerequisite.missing" for f in r.findings)


def test_six_days_late_is_beyond_the_limit(graded):
    r = graded[1][LATE6]
    raw = sum(p for _, p in expected_lines(r, []))
    assert lines(r) == expected_lines(r, []) + [("Late beyond the limit", round(-raw, 4))]
    assert r.grade.late_days == 6 and r.grade.final == 0


def test_missing_plot_and_short_set(graded):
    r = graded[1][BROKEN]
    # loss_plot missing: 20; finetuned has 11 of 12 images: images.count, 5.
    assert lines(r) == expected_lines(
        r, [("Missing part of the submission", -20.0), ("Image set format", -5.0)]
    )
    assert fids(r)["fid_finetuned"] != fids(graded[1][GOOD])["fid_finetuned"]  # measured on its 11


def test_missing_report_costs_a_missing_part(graded):
    r = graded[1][NO_PDF]
    assert lines(r) == expected_lines(r, [("Missing part of the submission", -20.0)])
    (missing,) = [f for f in r.findings if f.code == "submission.missing_artifact"]
    assert missing.artifact == "report" and "Report (PDF) is missing" in missing.message


def test_notebook_instead_of_py_files(graded):
    r = graded[1][NOTEBOOK]
    assert lines(r) == expected_lines(r, [("Code handed in as notebooks (convert them to .py)", -5.0)])
    (finding,) = [f for f in r.findings if f.severity.fails]
    assert finding.code == "source.notebook" and "hw9.ipynb" in finding.message
    assert "jupyter nbconvert --to script" in finding.fix


def test_good_hand_in_report_pages_and_integrity(graded):
    r = graded[1][GOOD]
    assert r.status == "clean" and not [f for f in r.findings if f.severity.fails]
    report = next(a for a in r.artifacts if a.name == "report")
    assert report.status == "ok" and report.submitted_as == "hw9_report.pdf"
    assert report.details == {"pages": 3}  # one 4x4 grid per set
    # Real faces and blurred ones: no training copies, no mode collapse in any set.
    integrity = {m.name: m for m in r.metrics if m.kind == "integrity"}
    assert sorted(integrity) == ["integrity_diffusion", "integrity_finetuned", "integrity_gan"]
    for m in integrity.values():
        assert m.value == 0 and not m.details["collapse"]["flagged"], m
    assert not [f for f in r.findings if f.code.startswith("integrity.")]


def test_csv_export_matches(graded, env):
    out, results = graded
    res = grader("export", out, "--format", "csv", env=env)
    rows = {row["student_id"]: row for row in csv.DictReader(io.StringIO(res.stdout))}
    finals = {sid: round(r.grade.final, 2) for sid, r in results.items()}
    assert {sid: float(row["final"]) for sid, row in rows.items()} == finals
    assert finals[NO_REPORT] == finals[LATE6] == 0
    assert finals[GOOD] - finals[LATE2] == pytest.approx(20, abs=0.011)
