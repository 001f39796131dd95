"""Integrity checks on real MNIST digits and CelebA faces with planted copies, shared sets and
collapsed sets (tests/integrity_plants.py). Small sets against a training subset; the
detection table for full-size sets is benchmarks/bench_integrity.py."""

from __future__ import annotations

import integrity_plants as plants
import numpy as np
import pytest
import torch

from grader.integrity.collapse import check_collapse, digit_labels, nearest_other
from grader.integrity.copies import (
    REFERENCES,
    STRICTER,
    VARIANTS,
    centre_shifts,
    check_copies,
    reference_images,
    variant_queries,
)
from grader.integrity.neighbours import as_vectors, build_index, nearest_rows, nearest_two
from grader.integrity.redrawn import redrawn_scores
from grader.integrity.shared import Signature, normalised_digest, shared_pairs, signature
from grader.integrity.training import load_training, prepare_submission

TRAIN_N = 10000


@pytest.fixture(scope="module")
def train_subset(mnist_train):
    images, labels = mnist_train
    return images[:TRAIN_N], labels[:TRAIN_N]


@pytest.fixture(scope="module")
def index(train_subset):
    return build_index(as_vectors(train_subset[0]))


@pytest.fixture(scope="module")
def indexes(train_subset, index):
    """Every reference the copy check compares with (as TrainingSet.indexes builds them)."""
    images = train_subset[0]
    built = {"pixels": index}
    for reference in set(REFERENCES.values()) - {"pixels"}:
        built[reference] = build_index(as_vectors(reference_images(images, reference)))
    return built


def test_decisions_and_distances_equal_brute_force(train_subset, mnist_test, index):
    rng = np.random.default_rng(1)
    train = train_subset[0]
    queries = np.concatenate(
        [mnist_test[0][:150], plants.noise(train[:50], 0.05, rng), train[50:60]]
    )
    vectors = as_vectors(queries)
    truth = torch.topk(torch.cdist(vectors, index.vectors), 2, largest=False).values.numpy()
    found, _ = nearest_two(index, vectors, threshold=0.4)
    np.testing.assert_array_equal(found.ratio < 0.4, truth[:, 0] < 0.4 * truth[:, 1])
    exact, _ = nearest_two(index, vectors)  # no threshold: the true two nearest
    np.testing.assert_allclose(exact.d1, truth[:, 0], atol=2e-2)
    np.testing.assert_allclose(exact.d2, truth[:, 1], atol=2e-2)


def test_index_keeps_pixels_and_refuses_other_vectors(train_subset, index):
    assert index.codes.dtype == torch.uint8
    assert torch.equal(index.vectors, as_vectors(train_subset[0]))
    with pytest.raises(ValueError, match="uint8 pixels"):
        build_index(torch.rand(50, 784))


def test_index_of_uint8_pixels_equals_the_float_one(train_subset, index):
    pixels = torch.from_numpy(train_subset[0].reshape(TRAIN_N, -1).copy())
    built = build_index(pixels)
    for name in ("codes", "mean", "basis", "coords", "norms_sq", "table"):
        assert torch.equal(getattr(built, name), getattr(index, name)), name


def test_under_a_memory_limit_one_index_is_kept_at_a_time(train_subset, mnist_test, monkeypatch):
    """A 768 MB autograder container: the copy check builds each training index when it needs
    it and lets the one before go, with the same result as with every index kept."""
    from grader.integrity import training as training_module
    from grader.metrics import resources

    images = train_subset[0][:3000]
    training = training_module.TrainingSet(images, train_subset[1][:3000], key="test")
    planted = plants.thicker(plants.rotate(images[:40], 15))
    submission = np.concatenate([mnist_test[0][:100], planted])
    monkeypatch.setattr(resources, "memory_limit", lambda: 768 * 10**6)
    assert not training_module.keeps_every_index()
    lean = check_copies(submission, training.indexes(), training=images)
    assert list(training._indexes) == ["blurred"]  # the last variant's reference, alone
    monkeypatch.setattr(resources, "memory_limit", lambda: None)
    kept = training_module.TrainingSet(images, train_subset[1][:3000], key="test")
    full = check_copies(submission, kept.indexes(), training=images)
    assert set(kept._indexes) == set(REFERENCES.values())
    np.testing.assert_array_equal(lean.ratio, full.ratio)
    assert lean.count == full.count > 0


def brute_force_ratios(images: np.ndarray, indexes) -> np.ndarray:
    """Lowest d1/d2 over every variant: all reference rows, float64."""
    lowest = np.full(len(images), np.inf)
    for name in VARIANTS:
        if name == "redrawn":  # not a nearest-two search: its candidates are checked below
            lowest = np.minimum(lowest, redrawn_ratios(images, indexes))
            continue
        rows, queries = variant_queries(images, name)
        reference = indexes[REFERENCES[name]].vectors
        distances = torch.cdist(as_vectors(queries).double(), reference.double())
        d = torch.topk(distances, 2, largest=False).values.numpy()
        ratio = np.where(d[:, 1] > 0, d[:, 0] / np.maximum(d[:, 1], 1e-12), 0.0)
        lowest[rows] = np.minimum(lowest[rows], ratio / STRICTER.get(name, 1.0))
    return lowest


def redrawn_ratios(images: np.ndarray, indexes) -> np.ndarray:
    """The "redrawn" variant's ratios as check_copies compares them (copies.STRICTER)."""
    training = indexes["pixels"].codes.numpy().reshape(-1, *images.shape[1:])
    return redrawn_scores(images, indexes["opened"], training)[0] / STRICTER["redrawn"]


def test_redrawn_candidates_are_the_nearest_rows(train_subset, mnist_test, indexes):
    """The candidates "redrawn" draws again are each query's nearest rows of the opened index,
    as every distance measured in float64 gives them."""
    from grader.integrity import pose

    rng = np.random.default_rng(8)
    turned = plants.thinner(plants.rotate(train_subset[0][rng.choice(TRAIN_N, 100, replace=False)], -20))
    images = np.concatenate([mnist_test[0][:100], turned])
    queries = as_vectors(pose.posed(pose.thickened(images)))
    opened = indexes["opened"]
    rows = nearest_rows(opened, queries, 8)
    truth = torch.cdist(queries.double(), opened.vectors.double())
    nearest = torch.topk(truth, 8, dim=1, largest=False)
    found = truth.gather(1, rows)
    np.testing.assert_allclose(found.numpy(), nearest.values.numpy(), rtol=1e-5, atol=1e-5)


def test_copy_flags_equal_brute_force_with_every_planted_kind(train_subset, mnist_test, indexes):
    rng = np.random.default_rng(6)
    train = train_subset[0]
    kinds = {**plants.alterations(rng), **plants.partial_catches(rng), **plants.known_misses(rng)}
    planted = [alter(train[rng.choice(TRAIN_N, 15, replace=False)]) for alter in kinds.values()]
    images = np.concatenate([mnist_test[0][:300], *planted])
    truth = brute_force_ratios(images, indexes)
    check = check_copies(images, indexes)
    np.testing.assert_array_equal(check.flagged, truth < 0.4)
    assert 0 < check.count < len(images)
    flagged = check.flagged
    # float32 puts an identical pair at d ~ 0.01 (neighbours._exact_sq), over 0.6 for "thickened"
    np.testing.assert_allclose(check.ratio[flagged], truth[flagged], atol=2e-2)


def test_near_duplicates_equal_brute_force_on_either_basis(mnist_test, index):
    rng = np.random.default_rng(7)
    honest = mnist_test[0][2000:2300]
    repeated = plants.noise(plants.repeated(mnist_test[0][2300:], 20, 60), 0.01, rng)
    images = np.concatenate([honest, repeated, honest[:5]])
    vectors = as_vectors(images).double()
    distances = torch.cdist(vectors, vectors)
    distances.fill_diagonal_(torch.inf)
    truth = distances.min(1).values.numpy()
    for basis in (index, None):
        found, near = nearest_other(images, 1.0, basis)
        np.testing.assert_array_equal(near, truth < 1.0)
        np.testing.assert_allclose(found[near], truth[near], atol=1e-2)
    assert near[300:].all() and near[:5].all() and not near[5:300].any()


def test_fast_digit_labels_equal_the_reference_classifier(mnist_test):
    from reference.classifier import classify_digits

    digits = mnist_test[0][:1500]
    np.testing.assert_array_equal(digit_labels(digits), classify_digits(digits)[0])


def test_honest_test_digits_are_never_flagged(mnist_test, indexes):
    check = check_copies(mnist_test[0][:400], indexes)
    assert check.count == 0
    assert check.ratio.min() > 0.45


def test_reference_ddpm_samples_are_not_flagged(mnist_dir, indexes, tmp_path):
    """An honest generator: samples of the reference DDPM after a short CPU training."""
    from grader.image_files import list_images, load_rgb
    from reference.ddpm import sample_ddpm, train_ddpm

    train_ddpm(mnist_dir, tmp_path / "ddpm", steps=60, timesteps=40, save_every=60, device="cpu",
               width=8, blocks=1, batch_size=16, limit=512, progress=False)
    sample_ddpm(tmp_path / "ddpm", tmp_path / "samples", 120, seed=3, device="cpu", progress=False)
    samples = np.stack([load_rgb(path)[..., 0] for path in list_images(tmp_path / "samples")])
    assert samples.shape == (120, 28, 28)
    check = check_copies(samples, indexes)
    assert check.count == 0, sorted(check.ratio)[:5]


@pytest.mark.parametrize("kind", list(plants.alterations(np.random.default_rng(0))))
def test_planted_copies_at_5_percent_are_caught(kind, train_subset, mnist_test, indexes):
    rng = np.random.default_rng(2)
    copies = plants.alterations(rng)[kind](train_subset[0][rng.choice(TRAIN_N, 20, replace=False)])
    submission = plants.mix(mnist_test[0][:400], copies, rng)
    check = check_copies(submission, indexes)
    assert check.count >= 17, f"{kind}: {check.count} of 20 planted copies flagged"
    assert check.count <= 20  # nothing honest flagged


@pytest.mark.parametrize("kind", list(plants.partial_catches(np.random.default_rng(0))))
def test_edited_copies_are_caught_in_a_share(kind, train_subset, indexes):
    # Full size (bench_integrity.py, all 60,000 digits): 8-89% of such copies flagged, so a 5%
    # share of a 10,000-image set (500 copies) passes min_flagged 25 every time.
    rng = np.random.default_rng(4)
    copies = plants.partial_catches(rng)[kind](train_subset[0][rng.choice(TRAIN_N, 200, replace=False)])
    without = check_copies(copies, indexes, variants=("raw", "centred", "flip"))
    check = check_copies(copies, indexes)
    assert check.count >= 0.08 * len(copies) > without.count, (kind, check.count, without.count)


def test_honest_augmentation_is_not_a_copy(mnist_test, indexes):
    """Test digits scaled, turned and thickened or thinned as data augmentation does: an honest
    student's images, never flagged."""
    augmented = plants.augmented(mnist_test[0][400:800], np.random.default_rng(5))
    check = check_copies(augmented, indexes)
    assert check.count == 0, sorted(check.ratio)[:5]


def test_centring_undoes_shifts(mnist_train):
    digits = mnist_train[0][:2000]
    assert (centre_shifts(digits) == 0).all(axis=1).mean() > 0.999
    moved = plants.shift_1px(digits[:50], np.random.default_rng(3))
    assert (centre_shifts(moved) != 0).any(axis=1).all()


def test_rgb_and_gray_saves_of_a_digit_have_one_digest(mnist_test):
    digit = mnist_test[0][0]
    assert normalised_digest(np.repeat(digit[..., None], 3, -1)) == normalised_digest(digit)
    rgba = np.concatenate([np.repeat(digit[..., None], 3, -1), np.full((28, 28, 1), 255)], -1)
    assert normalised_digest(rgba.astype(np.uint8)) == normalised_digest(digit)
    assert normalised_digest(digit) != normalised_digest(mnist_test[0][1])


def test_a_set_reordered_and_reencoded_is_found_shared_and_honest_pairs_are_not(
    mnist_test, mnist_train, tmp_path
):
    rng = np.random.default_rng(4)
    a = mnist_test[0][:600]
    order = rng.permutation(600)
    names = [f"{i:05d}.png" for i in range(600)]
    sigs = {
        "alice": signature(names, list(a)),
        "bob": signature(names, list(plants.jpeg(a[order]))),
        "carol": signature(names, list(np.repeat(a[::-1, ..., None], 3, -1))),  # RGB, reversed
        "dave": signature(names, list(mnist_train[0][:600])),
        "erin": signature(names, list(mnist_test[0][600:1200])),
    }
    sigs["bob"].save(tmp_path / "bob.npz")
    sigs["bob"] = Signature.load(tmp_path / "bob.npz")
    pairs = {(p.a, p.b): p for p in shared_pairs(sigs, min_shared=25)}
    assert set(pairs) == {("alice", "bob"), ("alice", "carol"), ("bob", "carol")}
    assert pairs[("alice", "carol")].identical == 600
    assert pairs[("alice", "bob")].identical == 0 and pairs[("alice", "bob")].verified >= 500
    name_a, name_b = pairs[("alice", "bob")].examples[0]
    assert order[names.index(name_b)] == names.index(name_a)


def test_collapsed_sets(mnist_test, mnist_train):
    from reference.classifier import classify_digits

    train_hist = np.bincount(mnist_train[1], minlength=10) / len(mnist_train[1])
    honest = mnist_test[0][:1000]
    labels, _ = classify_digits(honest)
    ok = check_collapse(honest, labels, train_hist)
    assert ok.near_duplicate_share < 0.02 and ok.tv_distance < 0.08

    repeated = plants.repeated(mnist_test[0][1000:], 50, 1000)
    bad = check_collapse(repeated, classify_digits(repeated)[0], train_hist)
    assert bad.near_duplicate_share == 1.0

    sevens = mnist_test[0][mnist_test[1] == 7][:500]
    one = check_collapse(sevens, classify_digits(sevens)[0], train_hist)
    assert one.largest_class_share > 0.95 and one.tv_distance > 0.8
    assert one.near_duplicate_share < 0.05  # distinct images: only the histogram shows it


def test_training_cache_is_keyed_by_content(mnist_dir, tmp_path):
    first = load_training(mnist_dir, tmp_path)
    assert list((tmp_path / "integrity").glob("*.npz"))
    again = load_training(mnist_dir, tmp_path)
    assert again.key == first.key
    np.testing.assert_array_equal(again.images, first.images)
    np.testing.assert_array_equal(again.labels, first.labels)
    assert first.images.shape == (60000, 28, 28)


def test_faces_copies_on_thumbnails(faces_zip, tmp_path):
    from grader.datasets import load_image_zip

    faces = load_image_zip(faces_zip, limit=700, size=64)
    folder = tmp_path / "train"
    folder.mkdir()
    from PIL import Image

    for i, face in enumerate(faces[:500]):
        Image.fromarray(face).save(folder / f"{i:04d}.png")
    training = load_training(folder, tmp_path / "cache")
    assert training.images.shape == (500, 32, 32, 3) and training.labels is None
    rng = np.random.default_rng(5)
    copies = plants.jpeg(faces[rng.choice(500, 20, replace=False)])
    honest = faces[500:700]
    submission = prepare_submission(list(np.concatenate([honest, copies])), training)
    check = check_copies(submission, training.indexes(("raw", "flip")), variants=("raw", "flip"))
    assert check.flagged[200:].all()
    assert check.count == 20
