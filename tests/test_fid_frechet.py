"""Fréchet distance by the symmetric eigen route, and statistics file I/O."""

from __future__ import annotations

import pickle
import re
from functools import partial

import numpy as np
import pytest
from pytorch_fid.fid_score import calculate_frechet_distance as scipy_route
from test_fid_support import REFERENCE_DIGITS, cache_dir, kept_official, reference_npz

from grader.errors import GraderError
from grader.metrics import (
    FidEngine,
    ReferenceStats,
    feature_statistics,
    frechet_distance,
    gray_to_rgb,
    load_stats,
    reference_stats,
    save_stats,
    sqrtm_psd,
)


@pytest.fixture(scope="module")
def real_features(tmp_path_factory, mnist_dir, mnist_train, inception_weights):
    """Inception features of 200 real MNIST train digits (from the suite's feature cache)."""
    reference_npz(tmp_path_factory, mnist_dir, inception_weights)  # fills the cache
    engine = FidEngine("pytorch-gan-metrics", weights=inception_weights, device="cpu",
                       cache_dir=cache_dir(tmp_path_factory))
    digits, _ = mnist_train
    features = engine.array_features(gray_to_rgb(digits[:REFERENCE_DIGITS]))
    assert not engine.model_loaded  # all from the cache: no second forward pass
    return features


def test_diagonal_case_has_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=64), rng.normal(size=64)
    a, b = rng.uniform(0.1, 3, size=64), rng.uniform(0.1, 3, size=64)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_sqrtm_psd_squares_back_and_clips_round_off():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 50))  # rank 29 < 50: eigenvalues ~0 may come out negative
    sigma = np.cov(x, rowvar=False)
    root = sqrtm_psd(sigma)
    assert np.allclose(root, root.T)
    assert np.allclose(root @ root, sigma, atol=1e-10)
    assert np.isfinite(root).all()


def test_eigen_route_equals_scipy_sqrtm_on_real_covariances(real_features, tmp_path_factory, inception_weights):
    """Random SPD covariances built from real features, where scipy's sqrtm succeeds."""
    rng = np.random.default_rng(2)
    for _ in range(2):  # each scipy sqrtm at 2048 dims costs 10-60 CPU seconds
        rows = rng.permutation(len(real_features))
        a, b = real_features[rows[:100]], real_features[rows[100:]]
        mu1, s1 = feature_statistics(a)
        mu2, s2 = feature_statistics(b)
        # A ridge makes both full rank, so the official scipy route is well posed.
        ridge = rng.uniform(1e-3, 1e-1) * np.trace(s1) / len(s1)
        s1 = s1 + ridge * np.eye(len(s1))
        s2 = s2 + ridge * np.eye(len(s2))
        ours = frechet_distance(mu1, s1, mu2, s2)
        official = kept_official(tmp_path_factory, "calculate_frechet_distance", inception_weights,
                                 mu1, s1, mu2, s2, make=partial(scipy_route, mu1, s1, mu2, s2))
        assert ours == pytest.approx(official, rel=1e-6)


def test_small_n_is_finite_and_symmetric(real_features):
    """N < 2048 (rank-deficient on both sides): finite, and the same either way round."""
    first = ReferenceStats(*feature_statistics(real_features[:60]))
    second = ReferenceStats(*feature_statistics(real_features[60:120]))
    forward = second.distance(first.mu, first.sigma)  # through sqrtm of the second
    backward = first.distance(second.mu, second.sigma)  # sqrtm of the first: other numbers
    assert np.isfinite(forward) and forward > 0
    assert forward == pytest.approx(backward, rel=1e-9)
    assert first.distance(first.mu, first.sigma) == pytest.approx(0, abs=1e-9 * forward)


def test_reference_keeps_its_square_root(tmp_path, real_features):
    mu, sigma = feature_statistics(real_features[:80])
    path = tmp_path / "ref.npz"
    save_stats(path, mu, sigma)
    first = reference_stats(path)
    root = first.sqrt_sigma
    second = reference_stats(path)
    assert second is first and second.sqrt_sigma is root  # eigh ran once for this file
    mu2, sigma2 = feature_statistics(real_features[80:160])
    assert first.distance(mu2, sigma2) == pytest.approx(
        frechet_distance(mu2, sigma2, mu, sigma), rel=1e-12
    )


# ---------------------------------------------------------------------------------------
# Statistics files


def _stats(d=16, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(40, d))
    return x.mean(0), np.cov(x, rowvar=False)


def test_saved_stats_are_float64_npz_that_both_official_tools_read(tmp_path):
    from pytorch_fid.fid_score import compute_statistics_of_path

    mu, sigma = _stats()
    path = tmp_path / "ref.npz"
    save_stats(path, mu.astype(np.float32), sigma)
    with np.load(path) as f:
        assert sorted(f.files) == ["mu", "sigma"]
        assert f["mu"].dtype == np.float64 and f["sigma"].dtype == np.float64
    # pytorch-fid: np.load(path) then f['mu'], f['sigma'].
    m, s = compute_statistics_of_path(str(path), None, 50, 16, "cpu")
    assert np.array_equal(s, sigma) and np.allclose(m, mu)
    # pytorch-gan-metrics: np.load(path, allow_pickle=True), the same keys.
    f = np.load(path, allow_pickle=True)
    assert np.array_equal(f["sigma"], sigma)
    f.close()


def test_both_official_formats_load(tmp_path):
    mu, sigma = _stats()
    npz = tmp_path / "stats.npz"
    np.savez(npz, mu=mu, sigma=sigma)
    as_npy_dict = tmp_path / "stats.npy"
    np.save(as_npy_dict, {"mu": mu, "sigma": sigma})  # what pytorch-gan-metrics also reads
    as_pickle = tmp_path / "stats.pkl"
    as_pickle.write_bytes(pickle.dumps({"mu": mu, "sigma": sigma}))
    for path in (npz, as_npy_dict, as_pickle):
        m, s = load_stats(path)
        assert m.dtype == np.float64 and np.array_equal(m, mu) and np.array_equal(s, sigma)


@pytest.mark.parametrize(
    ("name", "write", "message"),
    [
        ("a.npz", lambda p, mu, s: np.savez(p, m=mu, s=s), "missing 'mu', 'sigma' (found: m, s)"),
        ("b.npz", lambda p, mu, s: np.savez(p, mu=mu), "missing 'sigma' (found: mu)"),
        ("c.npy", lambda p, mu, s: np.save(p, {"mean": mu, "sigma": s}), "missing 'mu'"),
        ("d.npz", lambda p, mu, s: np.savez(p, mu=mu, sigma=s[:3]), "sigma [D, D]"),
        ("e.npz", lambda p, mu, s: np.savez(p, mu=mu * np.nan, sigma=s), "NaN"),
        ("f.npy", lambda p, mu, s: np.save(p, np.arange(3)), "found ndarray"),
        ("g.npz", lambda p, mu, s: p.write_text("mu, sigma"), "not a statistics file"),
    ],
)
def test_bad_stats_files_are_grader_errors(tmp_path, name, write, message):
    path = tmp_path / name
    write(path, *_stats())
    with pytest.raises(GraderError, match=re.escape(message)):
        load_stats(path)


def test_missing_stats_file_is_a_grader_error(tmp_path):
    with pytest.raises(GraderError, match="not found"):
        load_stats(tmp_path / "absent.npz")


def test_mismatched_dims_are_refused():
    mu, sigma = _stats(d=8)
    reference = ReferenceStats(*_stats(d=16))
    with pytest.raises(ValueError, match="dims differ"):
        reference.distance(mu, sigma)


def test_features_route_equals_covariance_route(real_features):
    """N <= 2048 works on the N x N Gram matrix: the same distance as from (mu, sigma)."""
    reference = ReferenceStats(*feature_statistics(real_features[:150]))
    for n in (2, 17, 50):
        features = real_features[150 : 150 + n]
        expected = reference.distance(*feature_statistics(features))
        assert reference.distance_to_features(features) == pytest.approx(expected, rel=1e-9)


def test_square_root_is_kept_on_disk_for_later_processes(tmp_path, real_features):
    mu, sigma = feature_statistics(real_features[:50])
    save_stats(tmp_path / "r.npz", mu, sigma)
    first = ReferenceStats(mu, sigma, "abc", tmp_path / "r.npz", tmp_path / "sqrtm" / "abc.npy")
    root = first.sqrt_sigma
    assert np.array_equal(np.load(tmp_path / "sqrtm" / "abc.npy"), root)
    np.save(tmp_path / "sqrtm" / "abc.npy", root * 2)  # proves the next one reads the file
    later = ReferenceStats(mu, sigma, "abc", tmp_path / "r.npz", tmp_path / "sqrtm" / "abc.npy")
    assert np.array_equal(later.sqrt_sigma, root * 2)
    (tmp_path / "sqrtm" / "abc.npy").write_bytes(b"garbage")  # unreadable: recomputed
    again = ReferenceStats(mu, sigma, "abc", tmp_path / "r.npz", tmp_path / "sqrtm" / "abc.npy")
    np.testing.assert_allclose(again.sqrt_sigma, root, rtol=0, atol=1e-9 * np.abs(root).max())
    assert np.load(tmp_path / "sqrtm" / "abc.npy").shape == root.shape  # rewritten whole
