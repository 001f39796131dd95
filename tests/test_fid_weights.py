"""Inception weights: resolution order, offline failure, download, hashing, both backends."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from test_fid_support import write_pngs

from grader.cli import main
from grader.errors import GraderError
from grader.files import sha256_file
from grader.metrics import WEIGHTS_FILENAME, resolve_weights
from grader.metrics import cache as cache_module
from grader.metrics.features import to_model_input
from grader.metrics.inception import (
    BACKENDS,
    OFFLINE_ENV,
    WEIGHTS_ENV,
    build_inception,
    fold_batchnorm,
    load_state_dict,
)


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No weights anywhere: empty TORCH_HOME, no env var, offline."""
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv(OFFLINE_ENV, "1")
    return tmp_path


def _hub_file(torch_home):
    return torch_home / "hub" / "checkpoints" / WEIGHTS_FILENAME


def test_resolution_order(clean_env, monkeypatch, inception_weights):
    hub = _hub_file(clean_env / "torch_home")
    hub.parent.mkdir(parents=True)
    hub.symlink_to(inception_weights)
    assert resolve_weights(None) == hub

    from_env = clean_env / "env.pth"
    from_env.symlink_to(inception_weights)
    monkeypatch.setenv(WEIGHTS_ENV, str(from_env))
    assert resolve_weights(None) == from_env  # the env var beats the hub cache

    explicit = clean_env / "explicit.pth"
    explicit.symlink_to(inception_weights)
    assert resolve_weights(explicit) == explicit  # the flag beats both


def test_named_but_missing_files_are_errors(clean_env, monkeypatch):
    with pytest.raises(GraderError, match="--inception-weights .*nope.pth: no such file"):
        resolve_weights(clean_env / "nope.pth")
    monkeypatch.setenv(WEIGHTS_ENV, str(clean_env / "gone.pth"))
    with pytest.raises(GraderError, match=f"{WEIGHTS_ENV}=.*gone.pth: no such file"):
        resolve_weights(None)


def test_offline_without_weights_exits_2_naming_file_and_places(clean_env, mnist_test):
    images, _ = mnist_test
    folder = write_pngs(clean_env / "imgs", images[:3])
    stats = clean_env / "ref.npz"
    np.savez(stats, mu=np.zeros(2048), sigma=np.eye(2048))
    result = CliRunner().invoke(main, ["fid", str(folder), "--stats", str(stats), "--device",
                                       "cpu", "--cache-dir", str(clean_env / "cache")])
    assert result.exit_code == 2, result.output
    message = result.output
    assert WEIGHTS_FILENAME in message
    assert str(_hub_file(clean_env / "torch_home")) in message
    assert "--inception-weights" in message and WEIGHTS_ENV in message and "offline" in message


def test_online_fetches_once_into_the_hub_cache(clean_env, inception_weights):
    # A file:// URL goes through the same urllib download as the official https URL.
    fetched = resolve_weights(None, download=True, url=inception_weights.resolve().as_uri())
    assert fetched == _hub_file(clean_env / "torch_home")
    assert fetched.read_bytes()[:4096] == inception_weights.read_bytes()[:4096]
    assert fetched.stat().st_size == inception_weights.stat().st_size
    assert resolve_weights(None, download=False) == fetched  # found in the cache from now on


def test_failed_download_is_a_grader_error(clean_env):
    url = (clean_env / "no-such-weights.pth").as_uri()
    with pytest.raises(GraderError, match=f"(?s)download from {url} failed.*{WEIGHTS_FILENAME}"):
        resolve_weights(None, download=True, url=url)
    assert not _hub_file(clean_env / "torch_home").exists()


def test_weights_hash_is_cached_by_path_size_and_mtime(tmp_path, inception_weights):
    copy = tmp_path / "w.pth"
    shutil.copyfile(inception_weights, copy)
    cache = tmp_path / "cache"
    real = cache_module.cached_sha256(copy, cache)
    assert real == sha256_file(copy)
    (record,) = (cache / "sha256").iterdir()
    record.write_text("0" * 64)  # stands in for the hash: proves the record is what is read
    assert cache_module.cached_sha256(copy, cache) == "0" * 64
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # file "changed"
    assert cache_module.cached_sha256(copy, cache) == real


def test_a_wrong_state_dict_is_a_grader_error(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(3)}, bad)
    with pytest.raises(GraderError, match="do not fit pytorch-fid's FID InceptionV3"):
        build_inception(BACKENDS["pytorch-fid"], load_state_dict(bad))
    (tmp_path / "text.pth").write_text("not torch")
    with pytest.raises(GraderError, match="not a PyTorch state dict"):
        load_state_dict(tmp_path / "text.pth")


def test_both_course_classes_give_identical_features(inception_weights, mnist_test, faces_zip):
    """The two packages' InceptionV3 classes, same weights: the same features, bit for bit."""
    from grader.datasets import load_image_zip

    digits, _ = mnist_test
    batches = [
        np.repeat(digits[:3, :, :, None], 3, axis=3),
        load_image_zip(faces_zip, limit=3, size=64),
    ]
    state_dict = load_state_dict(inception_weights)
    gan_metrics = build_inception(BACKENDS["pytorch-gan-metrics"], state_dict)
    pytorch_fid = build_inception(BACKENDS["pytorch-fid"], state_dict)
    inputs = [to_model_input(torch.from_numpy(b), torch.device("cpu")) for b in batches]
    with torch.inference_mode():
        features = [(gan_metrics(x)[0], pytorch_fid(x)[0]) for x in inputs]
        for a, b in features:
            assert a.shape == (3, 2048, 1, 1)
            assert torch.equal(a, b)
        folded = fold_batchnorm(pytorch_fid)  # what --fold-batchnorm runs: equal to ~1e-6
        for x, (a, _) in zip(inputs, features, strict=True):
            assert torch.allclose(folded(x)[0], a, rtol=1e-4, atol=1e-5)


def test_cli_offers_exactly_the_engine_backends():
    from grader.cli.fid import BACKEND_NAMES  # kept apart so the CLI starts without torch

    assert set(BACKEND_NAMES) == set(BACKENDS)
