"""The integrity metric kind on a real rubric (rubrics/hw3.yaml plus an integrity metric), real
PNG folders and the real MNIST training set; the class-wide screen reads the stored signatures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from grader.integrity.shared import Signature, shared_pairs
from grader.metrics.kinds import KINDS, MetricInputs
from grader.pipeline import GradingContext
from grader.results import MetricResult
from grader.rubric import load_rubric
from grader.scoring import score

ROOT = Path(__file__).resolve().parents[1]


def _rubric(tmp_path: Path, mnist_dir: Path, **metric) -> Path:
    data = yaml.safe_load((ROOT / "rubrics" / "hw3.yaml").read_text())
    data["metrics"]["integrity"] = {
        "kind": "integrity",
        "artifact": "images",
        "training": str(mnist_dir),
        "min_flagged": 10,
        **metric,
    }
    path = tmp_path / "hw3-integrity.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _folder(path: Path, digits: np.ndarray) -> list[Path]:
    path.mkdir()
    files = []
    for i, digit in enumerate(digits):
        files.append(path / f"{i:05d}.png")
        Image.fromarray(digit).convert("RGB").save(files[-1])
    return files


def test_copies_flagged_with_details_and_scoring_rules(
    tmp_path, mnist_dir, mnist_test, mnist_train
):
    rubric = load_rubric(_rubric(tmp_path, mnist_dir))
    ctx = GradingContext(rubric=rubric, work_root=tmp_path / "work", cache_dir=tmp_path / "cache")
    kind = KINDS["integrity"]
    spec = rubric.metrics["integrity"]
    assert kind.preflight("integrity", spec, ctx) == []
    honest = mnist_test[0][:270]
    cheat = np.concatenate([honest[:240], mnist_train[0][:30]])
    outcomes = {}
    for student, digits in {"s1": honest, "s2": cheat}.items():
        files = _folder(tmp_path / student, digits)
        inputs = MetricInputs(student, {"images": files}, {"images": tmp_path / student}, {})
        outcomes[student] = kind.measure("integrity", spec, inputs, ctx)

    ok, bad = outcomes["s1"], outcomes["s2"]
    assert ok.result.value == 0 and ok.findings == []
    assert bad.result.value == 30
    assert [f.code for f in bad.findings] == ["integrity.training_copies"]
    assert bad.findings[0].severity.value == "warning"  # action: flag (the default)
    copies = bad.result.details["copies"]
    assert {img["name"] for img in copies["images"]} == {f"{i:05d}.png" for i in range(240, 270)}
    assert {img["matched_as"] for img in copies["images"]} <= {"raw", "blurred"}  # exact copies
    assert len(bad.result.details["collapse"]["class_histogram"]) == 10
    # flag: evidence for the TA, no points move.
    fid = MetricResult(name="fid", kind="fid", artifact="images", value=20.0)  # band: 100 points
    assert score(rubric, [fid, bad.result], bad.findings).final == 100
    # deduct: the same finding, now an error, costs the rubric's points (and a TA override
    # clearing the code would take that line away like any other rule's).
    deduct_rubric = load_rubric(_rubric(tmp_path, mnist_dir, action="deduct", points=20))
    ctx = GradingContext(
        rubric=deduct_rubric, work_root=tmp_path / "work", cache_dir=tmp_path / "cache"
    )
    files = _folder(tmp_path / "s2-again", cheat)
    inputs = MetricInputs("s2", {"images": files}, {"images": tmp_path / "s2-again"}, {})
    again = KINDS["integrity"].measure("integrity", deduct_rubric.metrics["integrity"], inputs, ctx)
    assert [f.severity.value for f in again.findings] == ["error"]
    grade = score(deduct_rubric, [fid, again.result], again.findings)
    assert grade.final == 80
    assert [(line.label, line.points) for line in grade.lines if line.points < 0] == [
        ("Integrity: training-set copies", -20)
    ]

    # The class stage: both students' signatures, from the cache, share 240 images.
    folder = tmp_path / "cache" / "integrity" / "signatures"
    sigs = {
        s: Signature.load(folder / outcomes[s].result.details["signature"]) for s in ("s1", "s2")
    }
    (pair,) = shared_pairs(sigs, min_shared=25)
    assert (pair.a, pair.b, pair.identical) == ("s1", "s2", 240)


def test_missing_training_data_is_a_preflight_problem(tmp_path, mnist_dir):
    rubric = load_rubric(_rubric(tmp_path, tmp_path / "nowhere"))
    ctx = GradingContext(rubric=rubric, work_root=tmp_path / "work", cache_dir=tmp_path / "cache")
    (problem,) = KINDS["integrity"].preflight("integrity", rubric.metrics["integrity"], ctx)
    assert "training data not found" in problem
