"""Precision and recall (`kind: precision_recall`) on real CelebA faces: real faces against other
real faces score high on both, a few faces repeated (mode collapse) keep precision and lose
recall, noise has no precision; equal to torch-fidelity's own function on the same features."""

from __future__ import annotations

import face_sets
import numpy as np
import pytest
import torch
from torch_fidelity.metric_prc import prc_features_to_metric

from grader.metrics.kinds import KINDS, MetricInputs
from grader.metrics.kinds.precision_recall import precision_recall
from grader.metrics.reference_features import load_reference_features
from grader.pipeline import GradingContext
from grader.rubric import parse_rubric

RUBRIC = """
name: precision/recall test
artifacts: {gan: {kind: image_set}}
metrics: {pr: {kind: precision_recall, artifact: gan, backend: pytorch-fid, reference: ref.npz}}
"""


@pytest.fixture(scope="module")
def faces(tmp_path_factory, faces_zip, inception_weights):
    environment = face_sets.env(inception_weights)
    root = face_sets.face_sets(tmp_path_factory, faces_zip, environment)
    rubric = parse_rubric(RUBRIC, path=root / "rubric.yaml")
    ctx = GradingContext(rubric=rubric, work_root=tmp_path_factory.mktemp("work"), device="cpu",
                         weights=inception_weights, cache_dir=environment["GRADER_CACHE_DIR"])
    return root, ctx


def measure(faces, folder: str):
    root, ctx = faces
    images = sorted((root / folder).glob("*.png"))
    outcome = KINDS["precision_recall"].measure(
        "pr", ctx.rubric.metrics["pr"], MetricInputs("s", {"gan": images}, {}, {}), ctx
    )
    return outcome.result


def test_real_faces_against_other_real_faces_have_both(faces):
    result = measure(faces, "real")
    precision, recall = result.components["precision"], result.components["recall"]
    assert precision >= 0.6 and recall >= 0.6, result.components
    assert result.value == pytest.approx(2 * precision * recall / (precision + recall))
    assert result.provenance["n"] == result.provenance["reference_n"] == face_sets.N


def test_noise_has_no_precision(faces):
    noise = measure(faces, "noise")
    real = measure(faces, "real")
    assert noise.components["precision"] <= 0.05 < real.components["precision"]
    assert noise.components["recall"] < real.components["recall"]


def test_a_few_faces_repeated_keep_precision_and_lose_recall(faces):
    """Mode collapse: 8 of the real faces, each 8 times, against 64 real faces (at the feature
    level: identical images give identical features; `benchmarks/bench_feature_metrics.py` runs
    the full-size 64 faces repeated to 1,024)."""
    root, ctx = faces
    engine = ctx.engine("pytorch-fid")
    real, _ = engine.set_features(sorted((root / "real").glob("*.png")))
    reference = load_reference_features(root / "ref.npz").features
    collapsed = np.repeat(real[:8], 8, axis=0)
    honest_precision, honest_recall, _ = precision_recall(real, reference)
    precision, recall, _ = precision_recall(collapsed, reference)
    assert recall <= 0.15 < honest_recall  # the other modes are missing
    assert precision >= 0.6 and precision >= honest_precision - 0.25  # what is there looks real


def test_equal_to_torch_fidelity_on_the_same_features(faces):
    root, ctx = faces
    real, _ = ctx.engine("pytorch-fid").set_features(sorted((root / "real").glob("*.png")))
    reference = load_reference_features(root / "ref.npz").features
    ours = precision_recall(real, reference)
    theirs = prc_features_to_metric(torch.from_numpy(real.astype(np.float32)), torch.from_numpy(reference),
                                    prc_neighborhood=3, verbose=False)
    assert ours == pytest.approx((theirs["precision"], theirs["recall"], theirs["f_score"]), abs=1e-6)
