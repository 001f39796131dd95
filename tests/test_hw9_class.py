"""HW9 end to end: a class on real CelebA faces (64x64 crops) through `grader run` in a real
process, with pytorch-fid, late days (-10 a day, 5 at most), the progress-report rule, the PDF
report and the code as .py files (not notebooks), each grade checked line by line against
grades computed by hand from rubrics/hw9.yaml; the integrity metrics run on the same faces."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from pathlib import Path

import hw9class
import kept
import numpy as np
import pytest
from cli import grader

from grader.datasets import load_image_zip
from grader.results import StudentResult
from grader.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]
COUNT = 12  # images per set: small, Inception runs ~6 images/s on a CPU
REFERENCE = 48  # real faces behind the test statistics
BAND = [[100.0, 10.0], [400.0, 0.0]]  # small-N FIDs are large: the bands are widened to match

GOOD, LATE2, NO_REPORT, LATE6, BROKEN = "0910001", "0910002", "0910003", "0910004", "0910005"
NO_PDF, NOTEBOOK = "0910006", "0910007"
LATE = {GOOD: -0.5, LATE2: 1.5, NO_REPORT: -1, LATE6: 5.2, BROKEN: -0.1, NO_PDF: -1, NOTEBOOK: -1}
REPORTED = [GOOD, LATE2, LATE6, BROKEN, NO_PDF, NOTEBOOK]  # handed in the progress report



@pytest.fixture(scope="module")
def env(inception_weights):
    cache = kept.features()
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
    grader("stats", root / "real", "--backend", "pytorch-fid", "--features", "-o", root / "celeba64.npz",
           env=env)
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
        if m.kind == "integrity":  # no backend: thumbnails of the training faces
            continue
        assert m.value is not None, (m.name, m.skipped)
        assert m.provenance["backend"] == "pytorch-fid" and m.provenance["n"] == COUNT
        if m.kind == "fid":
            assert 20 < m.value < 400, (m.name, m.value)
    # Blurred faces are further from the real ones than real faces are.
    assert fids(good)["fid_gan"] > fids(good)["fid_diffusion"] + 10
    # The same images, handed in as zips with other names, give the same FIDs.
    assert fids(results[LATE2]) == fids(good)


def test_kid_and_precision_recall_are_reported_beside_the_fids(graded):
    good = graded[1][GOOD]
    # blurred faces are further from real ones than real faces
    assert good.metric("kid_gan").value > good.metric("kid_diffusion").value
    pr = good.metric("pr_diffusion")
    assert 0 <= pr.components["precision"] <= 1 and 0 <= pr.components["recall"] <= 1
    assert not any(line.label.startswith(("KID", "Precision")) for line in good.grade.lines)  # report-only


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
    reader = csv.DictReader(io.StringIO(res.stdout))
    rows = {row["student_id"]: row for row in reader}
    # Every rubric metric has its columns, in rubric order, equal to the stored values as printed.
    metric_columns = reader.fieldnames[reader.fieldnames.index("max_points") + 1 : reader.fieldnames.index("findings")]
    assert metric_columns == [
        "fid_gan", "fid_diffusion", "fid_finetuned",
        "kid_gan", "kid_gan_std", "kid_diffusion", "kid_diffusion_std", "kid_finetuned", "kid_finetuned_std",
        "pr_gan", "pr_gan_precision", "pr_gan_recall", "pr_diffusion", "pr_diffusion_precision",
        "pr_diffusion_recall", "pr_finetuned", "pr_finetuned_precision", "pr_finetuned_recall",
        "integrity_gan", "integrity_gan_flags", "integrity_diffusion", "integrity_diffusion_flags",
        "integrity_finetuned", "integrity_finetuned_flags",
    ]
    for sid, r in results.items():
        for m in r.metrics:
            if m.kind == "integrity":  # copies found and flags, tested in test_integrity_class.py
                continue
            digits = 6 if m.kind == "kid" else 4
            assert rows[sid][m.name] == f"{m.value:.{digits}f}"
            for part, value in m.components.items():
                assert rows[sid][f"{m.name}_{part}"] == f"{value:.{digits}f}"
    finals = {sid: round(r.grade.final, 2) for sid, r in results.items()}
    assert {sid: float(row["final"]) for sid, row in rows.items()} == finals
    assert finals[NO_REPORT] == finals[LATE6] == 0
    assert finals[GOOD] - finals[LATE2] == pytest.approx(20, abs=0.011)


def check(hand_in: Path, rubric: Path, env) -> tuple[subprocess.CompletedProcess, dict]:
    """`grader check` of one hand-in: its console output and its --json record."""
    text = grader("check", hand_in, "--rubric", rubric, env=env, check=None)
    data = json.loads(grader("check", hand_in, "--rubric", rubric, "--json", env=env, check=None).stdout)
    return text, data


def test_check_without_the_ta_files_shows_no_total(hw9, env, tmp_path):
    """Without celeba64.npz (and the progress-report list): the FID lines are the TA's, so no
    total; HW9's `missing: 0` does not stand in for a file the student does not have."""
    rubric = hw9class.write_test_rubric(
        ROOT / "rubrics" / "hw9.yaml",
        tmp_path / "rubric.yaml",
        count=COUNT,
        stats=tmp_path / "celeba64.npz",
        training=tmp_path / "celeba64",
        handed_in=tmp_path / "progress_reports.csv",
        band=BAND,
    )
    res, data = check(hw9 / "submissions" / BROKEN, rubric, env)
    out = res.stdout
    assert res.returncode == 1, out + res.stderr  # no loss plot, 11 fine-tuned images
    assert data["grade"]["final"] is None and {m["skipped_cause"] for m in data["metrics"]} == {"not_here"}
    assert "+70.00  Base points" in out and "-20.00  Missing part of the submission" in out
    assert "-5.00  Image set format" in out
    assert "= no total here: 70 of the 100 points checked here; FID of GAN samples, FID of diffusion " \
           "samples, FID of fine-tuned GAN samples are computed by the TA" in out
    for title in ("FID of GAN samples", "FID of diffusion samples", "FID of fine-tuned GAN samples"):
        assert f"{title}  (computed by the TA, up to 10 points)" in out
    assert out.count("celeba64.npz") == 9  # once per metric that reads it: 3 FIDs, 3 KIDs, 3 precision/recall
    assert "the TA also checks that the progress report was handed in" in out
    assert " / 100" not in out


def test_check_with_the_ta_files_gives_the_run_total(hw9, graded, env):
    _, results = graded
    for sid in (GOOD, BROKEN):  # no times given to check: both are on time in the run too
        res, data = check(hw9 / "submissions" / sid, hw9 / "rubric.yaml", env)
        assert data["grade"]["status"] == "complete", res.stdout
        assert data["grade"]["final"] == pytest.approx(results[sid].grade.final, abs=1e-9), res.stdout
        assert f"= {results[sid].grade.final:.2f} / 100" in res.stdout


def test_json_export_round_trips(graded, env):
    out, results = graded
    document = json.loads(grader("export", out, "--format", "json", env=env).stdout)
    assert document["format"] == "grader-results" and document["run"]["rubric_name"] == "HW9 GAN vs diffusion"
    loaded = {}
    for record in document["students"]:
        assert record.pop("grade_status") == results[record["student_id"]].grade_status
        loaded[record["student_id"]] = StudentResult.model_validate(record)
    for sid, r in results.items():
        assert loaded[sid].model_dump(exclude={"traceback"}) == r.model_dump(exclude={"traceback"})
        provenance = loaded[sid].metric("fid_gan").provenance
        assert provenance["stats_sha256"] == r.metric("fid_gan").provenance["stats_sha256"]
