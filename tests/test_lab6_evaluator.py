"""Lab6's evaluator accuracy: a resnet18 evaluator trained here on rendered i-CLEVR-like scenes
(saved as the course does, {'model': state_dict}), real PNGs, the course's recipe written out
plainly beside the metric."""

from __future__ import annotations

import json

import iclevr
import numpy as np
import pytest
import torch
from PIL import Image

from grader.metrics.evaluator import (
    EvaluatorError,
    evaluator_accuracy,
    load_evaluator,
    load_labels,
    topk_hits,
)
from grader.metrics.kinds.evaluator import PRESETS, Architecture

ARCH = PRESETS["iclevr-resnet18"]
# Ground-truth renders under the evaluator trained by iclevr.train_evaluator (3000 scenes, 8
# epochs, cosine decay): 0.98 on 400 held-out scenes.
GROUND_TRUTH_MIN = 0.9  # the bar for ground-truth renders


@pytest.fixture(scope="module")
def ta(tmp_path_factory):
    """The TA's label files: objects.json, test.json, new_test.json (32 label sets each)."""
    folder = tmp_path_factory.mktemp("ta")
    return folder, iclevr.write_label_files(folder, n=32, seed=500)


@pytest.fixture(scope="module")
def evaluator(evaluator_checkpoint):
    return load_evaluator(evaluator_checkpoint, ARCH, "cpu")


def labels_of(ta, stem="test"):
    folder, _ = ta
    return load_labels(folder / f"{stem}.json", folder / "objects.json", 24)


def pngs(folder, images):
    iclevr.write_pngs(folder, images)
    return [folder / f"{i}.png" for i in range(len(images))]  # label order


def codes(outcome) -> set[str]:
    return {f.code for f in outcome.findings}


@pytest.mark.parametrize("stem", ["test", "new_test"])
def test_ground_truth_renders_score_high(tmp_path, ta, evaluator, stem):
    sets = ta[1][stem]
    images = pngs(tmp_path, iclevr.render_all(sets, seed=900))
    outcome = evaluator_accuracy(images, evaluator, labels_of(ta, stem), artifact="test_images")
    assert outcome.value is not None and outcome.value >= GROUND_TRUTH_MIN, outcome.details
    assert outcome.findings == []
    prov = outcome.provenance
    assert prov["n"] == 32 and prov["device"] == "cpu" and prov["evaluator_format"] == "state_dict"
    assert (
        len(prov["weights_sha256"])
        == len(prov["labels_sha256"])
        == len(prov["objects_sha256"])
        == 64
    )


def test_noise_scores_near_chance(tmp_path, ta, evaluator):
    images = pngs(tmp_path, iclevr.noise_images(32, seed=4))
    outcome = evaluator_accuracy(images, evaluator, labels_of(ta))
    # Chance: k/24 of the k picks hit, about 0.08 for 1-3 objects.
    assert outcome.value is not None and outcome.value < 0.25


def test_metric_equals_the_course_recipe_exactly(tmp_path, ta, evaluator_checkpoint, evaluator):
    sets = ta[1]["test"]
    weak = iclevr.render_all(iclevr.wrong_objects(sets, 0.5, seed=1), seed=901)
    images = pngs(tmp_path, weak)
    expected = iclevr.course_accuracy(evaluator_checkpoint, images, sets)
    for batch_size in (64, 5):  # one batch, and several: the same hits
        outcome = evaluator_accuracy(images, evaluator, labels_of(ta), batch_size=batch_size)
        assert outcome.value == expected
    assert 0.3 < expected < 0.9  # a weak set: neither end of the scale


def test_topk_hits_counts_true_objects_among_the_top_k():
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4]])
    onehot = torch.tensor([[1.0, 0, 1, 0], [0, 0, 0, 1]])
    hits, ks, tops = topk_hits(scores, onehot)
    assert hits.tolist() == [1, 1] and ks.tolist() == [2, 1]
    assert tops == [[0, 1], [3]]  # the k highest, highest first


def test_torchscript_export_gives_the_same_accuracy(tmp_path, ta, evaluator_checkpoint, evaluator):
    sets = ta[1]["test"]
    images = pngs(
        tmp_path / "images", iclevr.render_all(iclevr.wrong_objects(sets, 0.3, seed=2), seed=902)
    )
    scripted = torch.jit.script(evaluator.model)
    scripted.save(str(tmp_path / "evaluator.pt"))
    loaded = load_evaluator(tmp_path / "evaluator.pt", ARCH, "cpu")
    assert loaded.format == "torchscript"
    a = evaluator_accuracy(images, evaluator, labels_of(ta))
    b = evaluator_accuracy(images, loaded, labels_of(ta))
    assert a.value == b.value and b.value is not None


# ---------------------------------------------------------------- bad images: findings


def test_wrong_count_is_a_finding_and_no_accuracy(tmp_path, ta, evaluator):
    images = pngs(tmp_path, iclevr.render_all(ta[1]["test"], seed=903)[:31])
    outcome = evaluator_accuracy(
        images, evaluator, labels_of(ta), artifact="test_images", label_name="test.json"
    )
    assert outcome.value is None and "test.json" in outcome.skipped
    assert {"evaluator.count", "evaluator.names"} <= codes(outcome)
    count = next(f for f in outcome.findings if f.code == "evaluator.count")
    assert "31 images" in count.message and "32 label sets" in count.message
    names = next(f for f in outcome.findings if f.code == "evaluator.names")
    assert "31.png" in names.message


def test_wrong_names_are_a_finding(tmp_path, ta, evaluator):
    rendered = iclevr.render_all(ta[1]["test"], seed=904)
    iclevr.write_pngs(tmp_path, rendered, names=[f"img_{i:03d}.png" for i in range(32)])
    outcome = evaluator_accuracy(sorted(tmp_path.glob("*.png")), evaluator, labels_of(ta))
    assert outcome.value is None and codes(outcome) == {"evaluator.names"}
    assert (
        "0.png-31.png" in outcome.findings[0].message
        and "img_000.png" in outcome.findings[0].message
    )


def test_wrong_size_is_a_finding_and_never_resized(tmp_path, ta, evaluator):
    images = pngs(tmp_path, iclevr.render_all(ta[1]["test"], seed=905))
    Image.open(tmp_path / "3.png").resize((32, 32)).save(tmp_path / "3.png")
    outcome = evaluator_accuracy(images, evaluator, labels_of(ta))
    assert outcome.value is None and codes(outcome) == {"evaluator.size"}
    assert "32x32" in outcome.findings[0].message and "3.png" in outcome.findings[0].message


def test_gray_images_are_converted_with_a_warning(tmp_path, ta, evaluator):
    images = pngs(tmp_path, iclevr.render_all(ta[1]["test"], seed=906))
    Image.open(images[0]).convert("L").save(images[0])
    outcome = evaluator_accuracy(images, evaluator, labels_of(ta))
    assert outcome.value is not None
    assert [(f.code, f.severity.value) for f in outcome.findings] == [("evaluator.mode", "warning")]


# ---------------------------------------------------------------- TA files: configuration errors


def test_weights_that_do_not_load_are_configuration_errors(tmp_path, evaluator_checkpoint):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint" * 10)
    with pytest.raises(EvaluatorError, match="not a torch checkpoint"):
        load_evaluator(garbage, ARCH, "cpu")
    state = torch.load(evaluator_checkpoint)["model"]
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "other_key.pth")
    with pytest.raises(EvaluatorError, match="no state dict under the key 'model'"):
        load_evaluator(tmp_path / "other_key.pth", ARCH, "cpu")
    # The same file under a rubric that names its key loads.
    assert load_evaluator(tmp_path / "other_key.pth", Architecture(state_key="state_dict"), "cpu")
    with pytest.raises(EvaluatorError, match="do not fit resnet18 with 12 classes"):
        load_evaluator(evaluator_checkpoint, Architecture(num_classes=12), "cpu")
    with pytest.raises(EvaluatorError, match="not found"):
        load_evaluator(tmp_path / "absent.pth", ARCH, "cpu")


def test_label_files_are_checked(tmp_path, ta):
    folder, _ = ta
    (tmp_path / "test.json").write_text(json.dumps([["red cube"], ["pink cube", "red sphere"]]))
    with pytest.raises(EvaluatorError, match="pink cube"):
        load_labels(tmp_path / "test.json", folder / "objects.json", 24)
    (tmp_path / "test.json").write_text(json.dumps({"red cube": 1}))
    with pytest.raises(EvaluatorError, match="list of non-empty lists"):
        load_labels(tmp_path / "test.json", folder / "objects.json", 24)
    labels = load_labels(folder / "test.json", folder / "objects.json", 24)
    assert labels.onehot.shape == (32, 24) and set(np.unique(labels.onehot.sum(1))) <= {1, 2, 3}
