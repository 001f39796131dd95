"""Reference features in a statistics file (`grader stats --features`): what KID and
precision/recall compare against, kept beside mu/sigma so the course tools still read it."""

from __future__ import annotations

import numpy as np
import pytest
from test_fid_support import run_cli, write_pngs

from grader.errors import GraderError, RubricError
from grader.metrics.frechet import load_stats, save_stats
from grader.metrics.reference_features import has_features, keep_rows, load_reference_features
from grader.rubric import parse_rubric


@pytest.fixture(scope="module")
def digits(tmp_path_factory, mnist_test):
    images, _ = mnist_test
    return write_pngs(tmp_path_factory.mktemp("ref") / "digits", images[:12])


def stats(digits, out, *extra, cache, weights):
    done = run_cli("stats", str(digits), "-o", str(out), "--device", "cpu", "--cache-dir", str(cache),
                   "--inception-weights", str(weights), *extra)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def written(digits, inception_weights, tmp_path_factory):
    root, cache = tmp_path_factory.mktemp("stats"), tmp_path_factory.mktemp("cache")
    plain = root / "plain.npz"
    stats(digits, plain, cache=cache, weights=inception_weights)
    with_features = root / "features.npz"
    done = stats(digits, with_features, "--features", cache=cache, weights=inception_weights)
    assert "and features of 12 of them" in done.stdout
    subset = root / "subset.npz"
    stats(digits, subset, "--features", "--max-features", "5", cache=cache, weights=inception_weights)
    return plain, with_features, subset


def test_features_are_kept_beside_unchanged_statistics(written):
    plain, with_features, _ = written
    mu, sigma = load_stats(plain)
    mu2, sigma2 = load_stats(with_features)
    assert np.array_equal(mu, mu2) and np.array_equal(sigma, sigma2)
    features = load_reference_features(with_features).features
    assert features.dtype == np.float32 and features.shape == (12, 2048)
    # float32 loses nothing: the network computes in float32, the statistics are its float64 cast.
    assert np.allclose(features.astype(np.float64).mean(axis=0), mu, rtol=0, atol=1e-12)
    assert not has_features(plain) and has_features(with_features)


def test_the_course_tools_still_read_the_statistics(written):
    from pytorch_fid.fid_score import compute_statistics_of_path

    _, with_features, _ = written
    mu, sigma = compute_statistics_of_path(str(with_features), None, 50, 2048, "cpu")
    expected_mu, expected_sigma = load_stats(with_features)
    assert np.array_equal(mu, expected_mu) and np.array_equal(sigma, expected_sigma)
    with np.load(with_features, allow_pickle=True) as f:  # pytorch-gan-metrics' own reading
        assert np.array_equal(f["mu"][:], expected_mu)


def test_max_features_keeps_a_fixed_subset(written):
    _, with_features, subset = written
    everything = load_reference_features(with_features).features
    kept = load_reference_features(subset).features
    assert kept.shape == (5, 2048)
    assert np.array_equal(kept, keep_rows(everything, 5))
    assert np.array_equal(keep_rows(everything, 5), keep_rows(everything, 5))  # seeded
    assert np.array_equal(keep_rows(everything, 12), everything)


def test_a_statistics_file_without_features_says_how_to_write_them(tmp_path):
    path = tmp_path / "ref.npz"
    save_stats(path, np.zeros(4), np.eye(4))
    with pytest.raises(GraderError, match="grader stats .* --features"):
        load_reference_features(path)
    with pytest.raises(GraderError, match="not found"):
        load_reference_features(tmp_path / "absent.npz")


def test_a_band_may_name_only_a_value_the_kind_has():
    text = """
name: t
artifacts: {images: {kind: image_set}}
metrics: {fid: {kind: fid, artifact: images, stats: ref.npz}}
scoring: {bands: [{metric: fid.std, points: [[40, 100], [100, 0]]}]}
"""
    with pytest.raises(RubricError, match=r"scoring\.bands\.0\.metric: 'fid' has no value 'std'"):
        parse_rubric(text)


def test_what_no_later_metric_reads_is_let_go(written):
    """Where memory is short the pipeline keeps only the TA files later metrics read
    (grader.metrics.loaded.keep_only): the rest is loaded again if asked for, never stale."""
    from grader.metrics.frechet import reference_stats
    from grader.metrics.loaded import keep_only

    plain, with_features, subset = written
    kept, dropped = load_reference_features(with_features), load_reference_features(subset)
    moments = reference_stats(plain)
    keep_only([with_features])
    assert load_reference_features(with_features) is kept
    again = load_reference_features(subset)
    assert again is not dropped
    np.testing.assert_array_equal(again.features, dropped.features)
    assert reference_stats(plain) is not moments
