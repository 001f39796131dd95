"""`grader fid` / `grader stats` against the course tools themselves, on real images.

pytorch-gan-metrics 0.5.3 and pytorch-fid 0.3.0 run end to end on the CPU, finding the same
weights file under their own hub file name in a temporary TORCH_HOME.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from click.testing import CliRunner
from test_fid_support import (
    BIG,
    MNIST_SMALL,
    cache_dir,
    cli_json,
    faces_small,
    kept_official,
    mnist_big,
    mnist_small,
    official_activations,
    official_fids,
    official_statistics,
    reference_npz,
    root_dir,
)

from grader.cli import main
from grader.metrics import FidEngine, frechet_distance, list_images, load_stats

RTOL_FID = 1e-4


@pytest.fixture(scope="module")
def reference(tmp_path_factory, mnist_dir, inception_weights):
    return reference_npz(tmp_path_factory, mnist_dir, inception_weights)


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _engine_args(tmp_path_factory, weights):
    return ["--device", "cpu", "--inception-weights", str(weights),
            "--cache-dir", str(cache_dir(tmp_path_factory))]


def test_cli_fid_equals_both_course_tools_on_mnist_digits(
    tmp_path_factory, mnist_test, reference, inception_weights
):
    folder = mnist_small(tmp_path_factory, mnist_test)
    ours = cli_json("fid", str(folder), "--stats", str(reference), "--backend",
                    "pytorch-gan-metrics", *_engine_args(tmp_path_factory, inception_weights))
    official = official_fids(tmp_path_factory, inception_weights, folder, reference)
    assert ours["fid"] == pytest.approx(official["pytorch-gan-metrics"], rel=RTOL_FID)
    assert ours["fid"] == pytest.approx(official["pytorch-fid"], rel=RTOL_FID)
    provenance = ours["provenance"]
    assert ours["n"] == provenance["n"] == MNIST_SMALL
    assert provenance["backend"] == "pytorch-gan-metrics"
    assert provenance["backend_version"] == "0.5.3"
    assert provenance["weights_sha256"] == _sha256(inception_weights)
    assert provenance["stats_sha256"] == _sha256(reference)
    assert provenance["device"] == "cpu" and provenance["model"] == "bn-folded"  # the default
    assert provenance["resize"] == "bilinear to 299x299, align_corners=False"
    assert any("biased upward" in w for w in ours["warnings"])


def test_fid_equals_both_course_tools_on_celeba_faces(
    tmp_path_factory, faces_zip, reference, inception_weights
):
    folder = faces_small(tmp_path_factory, faces_zip)
    result = CliRunner().invoke(main, [
        "fid", str(folder), "--stats", str(reference), "--backend", "pytorch-fid", "--json",
        *_engine_args(tmp_path_factory, inception_weights),
    ])
    assert result.exit_code == 0, result.output
    ours = json.loads(result.stdout)
    official = official_fids(tmp_path_factory, inception_weights, folder, reference)
    assert ours["fid"] == pytest.approx(official["pytorch-fid"], rel=RTOL_FID)
    assert ours["fid"] == pytest.approx(official["pytorch-gan-metrics"], rel=RTOL_FID)
    assert ours["provenance"]["backend_version"] == "0.3.0"
    assert ours["fid"] > 150  # faces against digits: the distance is real, not a constant


def test_human_output_names_tool_weights_stats_and_origin(
    tmp_path_factory, mnist_test, reference, inception_weights
):
    folder = mnist_small(tmp_path_factory, mnist_test)
    args = ["fid", str(folder), "--stats", str(reference),
            *_engine_args(tmp_path_factory, inception_weights)]
    first = CliRunner().invoke(main, args)
    second = CliRunner().invoke(main, args)
    assert first.exit_code == 0 and second.exit_code == 0, first.output
    assert second.stdout == first.stdout.replace("computed, now cached", "from the feature cache")
    out = second.stdout
    assert out.startswith("FID ") and f"({MNIST_SMALL} images)" in out
    assert "pytorch-gan-metrics 0.5.3" in out and _sha256(inception_weights) in out
    assert _sha256(reference) in out and "from the feature cache" in out
    assert "device    cpu" in out and "bilinear to 299x299" in out
    assert "warning: FID from 60 images" in second.stderr


def test_stats_of_mnist_idx_equal_the_course_tool_on_the_same_digits_as_pngs(
    tmp_path_factory, mnist_dir, mnist_test, inception_weights
):
    """`grader stats` of IDX digits (made RGB) == pytorch-fid's statistics of the same digits
    saved as RGB PNGs (what its `--save-stats` writes: calculate_activation_statistics of the
    folder). pytorch-gan-metrics' calc_and_save_stats has no device argument and needs CUDA;
    its features equal pytorch-fid's, see test_fid_weights."""
    root = root_dir(tmp_path_factory)
    ours = root / "idx_test60.npz"
    result = CliRunner().invoke(main, [
        "stats", str(mnist_dir), "--split", "test", "--limit", str(MNIST_SMALL), "-o", str(ours),
        *_engine_args(tmp_path_factory, inception_weights),
    ])
    assert result.exit_code == 0, result.output
    assert f"mu/sigma of {MNIST_SMALL} MNIST test digits" in result.stdout
    with np.load(ours) as f:
        assert f["mu"].dtype == np.float64 and f["sigma"].dtype == np.float64
    mu, sigma = load_stats(ours)
    pngs = mnist_small(tmp_path_factory, mnist_test)
    _assert_close_stats(mu, sigma, *official_statistics(tmp_path_factory, inception_weights, pngs))


def _assert_close_stats(mu, sigma, official_mu, official_sigma):
    """Equal up to float32 rounding in the network (channels_last, folded BatchNorm: features
    move by ~2e-6 of their largest value), far inside what moves an FID by 1e-4."""
    for ours, theirs in ((mu, official_mu), (sigma, official_sigma)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5 * np.abs(theirs).max())


# ---------------------------------------------------------------------------------------
# The one N > 2048 run of the suite


@pytest.fixture(scope="module")
def big(tmp_path_factory, mnist_test, inception_weights):
    """2049 MNIST test digits through `grader stats` once (which caches their features);
    everything below reuses them."""
    folder = mnist_big(tmp_path_factory, mnist_test)
    ours = root_dir(tmp_path_factory) / f"grader_test{BIG}.npz"
    result = CliRunner().invoke(main, ["stats", str(folder), "-o", str(ours), "--backend",
                                       "pytorch-fid",
                                       *_engine_args(tmp_path_factory, inception_weights)])
    assert result.exit_code == 0, result.output
    engine = FidEngine("pytorch-fid", weights=inception_weights, device="cpu",
                       cache_dir=cache_dir(tmp_path_factory))
    features, provenance = engine.set_features(list_images(folder))
    assert provenance["feature_cache"] == "hit"
    return folder, ours, features


@pytest.mark.slow
def test_stats_and_fid_past_2048_images_equal_the_course_tools(
    tmp_path_factory, mnist_test, big, reference, inception_weights
):
    """N = 2049 > D = 2048, where `grader fid` leaves the N x N Gram route for the D x D
    covariance route, as at the courses' N (1,024 to 10,000 images cross it): the course tools'
    own statistics and Fréchet code on the features against `grader stats` and `grader fid`.
    The features are pytorch-fid's own get_activations row for row, checked on the first 60
    digits: each row is computed from its image alone, and 2049 more forward passes of the
    course tool would cost ~19 CPU-minutes."""
    from pytorch_fid.fid_score import calculate_frechet_distance
    from pytorch_gan_metrics.core import calculate_frechet_inception_distance

    folder, ours_npz, activations = big
    assert activations.shape == (BIG, 2048) and activations.dtype == np.float32
    first = official_activations(tmp_path_factory, inception_weights, mnist_small(tmp_path_factory, mnist_test))
    np.testing.assert_allclose(activations[:MNIST_SMALL], first, rtol=1e-4, atol=1e-5 * np.abs(first).max())
    # The two lines of pytorch-fid's calculate_activation_statistics:
    official_mu, official_sigma = np.mean(activations, axis=0), np.cov(activations, rowvar=False)
    mu, sigma = load_stats(ours_npz)
    _assert_close_stats(mu, sigma, official_mu, official_sigma)

    ref_mu, ref_sigma = load_stats(reference)
    official_fid = float(kept_official(
        tmp_path_factory, "calculate_frechet_distance", inception_weights, official_mu,
        official_sigma, ref_mu, ref_sigma,
        make=lambda: calculate_frechet_distance(official_mu, official_sigma, ref_mu, ref_sigma)))
    gan_metrics_fid = float(kept_official(
        tmp_path_factory, "calculate_frechet_inception_distance", inception_weights, activations,
        ref_mu, ref_sigma, make=lambda: calculate_frechet_inception_distance(activations, ref_mu, ref_sigma)))
    engine = FidEngine("pytorch-fid", weights=inception_weights, device="cpu",
                       cache_dir=cache_dir(tmp_path_factory))
    result = engine.fid(list_images(folder), reference)
    assert result.provenance["feature_cache"] == "hit"  # the features `grader stats` cached
    assert result.n == BIG and result.warnings == []
    assert result.fid == pytest.approx(official_fid, rel=RTOL_FID)
    assert result.fid == pytest.approx(gan_metrics_fid, rel=RTOL_FID)
    # The Fréchet step alone, on identical statistics. The reference has 200 samples (rank
    # 199): scipy's sqrtm carries round-off from its ~1850 zero eigenvalues (~2e-6 relative
    # here); our two independent roots (of Σ_ref, or of Σ) agree far closer than that.
    ours = frechet_distance(official_mu, official_sigma, ref_mu, ref_sigma)
    swapped = frechet_distance(ref_mu, ref_sigma, official_mu, official_sigma)
    print(f"N={BIG}: grader {result.fid!r}, pytorch-fid {official_fid!r}, "
          f"pytorch-gan-metrics {gan_metrics_fid!r}, eigen route on official stats {ours!r} "
          f"(other root {swapped!r})")
    assert ours == pytest.approx(official_fid, rel=1e-5)
    assert ours == pytest.approx(swapped, rel=1e-9)
