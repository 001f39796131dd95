"""FidEngine behaviour: feature cache, corrupt cache files, inputs, errors."""

from __future__ import annotations

import math
import multiprocessing
import shutil
import warnings
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from test_fid_support import reference_npz, write_pngs, zip_folder

from grader.cli import main
from grader.errors import GraderError
from grader.metrics import (
    FidEngine,
    UnreadableImageError,
    ZipMember,
    default_cache_dir,
    list_images,
    save_stats,
)
from grader.metrics.cache import FeatureCache, feature_key


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, mnist_test):
    """8 real MNIST test digits as 28x28 RGB PNGs."""
    images, _ = mnist_test
    return write_pngs(tmp_path_factory.mktemp("tiny") / "imgs", images[100:108])


@pytest.fixture(scope="module")
def reference(tmp_path_factory, mnist_dir, inception_weights):
    return reference_npz(tmp_path_factory, mnist_dir, inception_weights)


def _engine(weights, cache_dir, **kwargs):
    return FidEngine("pytorch-gan-metrics", weights=weights, device="cpu", cache_dir=cache_dir,
                     **kwargs)


class ForwardCounter:
    """Counts images through the model's forward pass (a hook on the real module)."""

    def __init__(self, model):
        self.images = 0
        model.register_forward_hook(self)

    def __call__(self, module, args, output):
        self.images += args[0].shape[0]


def test_second_fid_of_the_same_images_runs_no_forward_pass(
    tmp_path, tiny, reference, inception_weights
):
    engine = _engine(inception_weights, tmp_path / "cache")
    counter = ForwardCounter(engine.model)
    first = engine.fid(list_images(tiny), reference)
    assert counter.images == 8 and first.provenance["feature_cache"] == "miss"
    second = engine.fid(list_images(tiny), reference)
    assert counter.images == 8  # nothing ran through the network
    assert second.provenance["feature_cache"] == "hit" and second.fid == first.fid

    fresh = _engine(inception_weights, tmp_path / "cache")
    third = fresh.fid(list(reversed(list_images(tiny))), reference)  # any order: name order
    assert not fresh.model_loaded  # the model was never even built
    assert third.fid == first.fid and third.provenance["device"] == "cpu"

    uncached = _engine(inception_weights, tmp_path / "cache", use_cache=False)
    assert uncached.fid(list_images(tiny), reference).provenance["feature_cache"] == "off"


def _corrupt_truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _corrupt_wrong_content(path):
    with open(path, "wb") as f:
        np.savez(f, features=np.zeros((3, 2048)), meta=np.array("{}"))


@pytest.mark.parametrize("corrupt", [_corrupt_truncated, _corrupt_wrong_content])
def test_corrupt_cache_file_is_ignored_and_recomputed(
    tmp_path, tiny, reference, inception_weights, corrupt
):
    engine = _engine(inception_weights, tmp_path / "cache")
    expected = engine.fid(list_images(tiny), reference).fid
    (cache_file,) = (tmp_path / "cache" / "features").rglob("*.npz")
    corrupt(cache_file)

    again = _engine(inception_weights, tmp_path / "cache")
    counter = ForwardCounter(again.model)
    with pytest.warns(UserWarning, match="ignoring .*feature cache file"):
        result = again.fid(list_images(tiny), reference)
    assert counter.images == 8 and result.provenance["feature_cache"] == "miss"
    assert result.fid == pytest.approx(expected, rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rewritten file is whole again
        assert _engine(inception_weights, tmp_path / "cache").fid(
            list_images(tiny), reference
        ).provenance["feature_cache"] == "hit"


def test_zip_and_folder_give_the_same_features(tmp_path, tiny, reference, inception_weights):
    archive = zip_folder(tiny, tmp_path / "student.zip")
    refs = list_images(archive)
    assert refs == [ZipMember(archive, f"{i:05d}.png") for i in range(1, 9)]
    engine = _engine(inception_weights, tmp_path / "cache")
    from_folder = engine.features(list_images(tiny))
    cached = engine.features(refs)  # same bytes in the same order: the same cache entry
    assert np.array_equal(cached, from_folder)
    decoded = _engine(inception_weights, None, use_cache=False, workers=2).features(refs)
    assert np.array_equal(decoded, from_folder)


def test_workers_batches_and_mixed_sizes_do_not_change_features(
    tmp_path, mnist_test, faces_zip, inception_weights
):
    from grader.datasets import load_image_zip

    digits, _ = mnist_test
    folder = tmp_path / "mixed"
    faces = load_image_zip(faces_zip, limit=3, size=64)
    write_pngs(folder, digits[200:203])  # 00001-00003: 28x28
    write_pngs(folder, faces, first_number=4)  # 00004-00006: 64x64
    refs = list_images(folder)
    one_by_one = _engine(inception_weights, None, use_cache=False, workers=0, batch_size=1)
    expected = one_by_one.features(refs)
    batched = _engine(inception_weights, None, use_cache=False, workers=2, batch_size=4)
    np.testing.assert_allclose(batched.features(refs), expected, rtol=1e-5, atol=1e-6)


def test_unreadable_image_is_reported_not_crashed(tmp_path, tiny, reference, inception_weights):
    folder = tmp_path / "broken"
    shutil.copytree(tiny, folder)
    truncated = folder / "00004.png"
    truncated.write_bytes(truncated.read_bytes()[:40])
    engine = _engine(inception_weights, tmp_path / "cache", workers=1)
    with pytest.raises(UnreadableImageError, match="00004.png") as info:
        engine.fid(list_images(folder), reference)
    assert info.value.ref == truncated

    result = CliRunner().invoke(main, [
        "fid", str(folder), "--stats", str(reference), "--device", "cpu",
        "--inception-weights", str(inception_weights), "--cache-dir", str(tmp_path / "cache"),
    ])
    assert result.exit_code == 1 and "cannot read image" in result.output


def test_one_image_gives_nan_with_a_warning(tmp_path, tiny, reference, inception_weights):
    result = _engine(inception_weights, tmp_path / "c").fid(list_images(tiny)[:1], reference)
    assert math.isnan(result.fid) and result.n == 1
    assert "at least 2 images" in result.warnings[0]
    assert result.to_dict()["fid"] is None  # valid JSON, not NaN


def test_bad_stats_fail_before_any_forward_pass(tmp_path, tiny, inception_weights):
    stats = tmp_path / "small.npz"
    save_stats(stats, np.zeros(16), np.eye(16))
    engine = _engine(inception_weights, tmp_path / "cache")
    with pytest.raises(GraderError, match="16 dims; FID uses 2048"):
        engine.fid(list_images(tiny), stats)
    with pytest.raises(GraderError, match="not found"):
        engine.fid(list_images(tiny), tmp_path / "absent.npz")
    assert not engine.model_loaded


def test_engine_argument_errors(inception_weights):
    with pytest.raises(GraderError, match="unknown FID backend 'clean-fid'"):
        FidEngine("clean-fid", weights=inception_weights)
    with pytest.raises(GraderError, match="not a torch device"):
        FidEngine("pytorch-fid", weights=inception_weights, device="gpu0")
    with pytest.raises(GraderError, match="batch-size"):
        FidEngine("pytorch-fid", weights=inception_weights, batch_size=0)
    with pytest.raises(GraderError, match="threads"):
        FidEngine("pytorch-fid", weights=inception_weights, device="cpu", threads=0)


def test_listing_skips_junk_and_sorts_by_name(tmp_path, tiny):
    folder = tmp_path / "sub"
    shutil.copytree(tiny, folder)
    (folder / ".DS_Store").write_bytes(b"\0")
    (folder / "notes.txt").write_text("hi")
    (folder / "__MACOSX").mkdir()
    (folder / "__MACOSX" / "._00001.png").write_bytes(b"\0")
    (folder / "._00002.png").write_bytes(b"\0")
    (folder / "more").mkdir()
    shutil.copy(tiny / "00001.png", folder / "more" / "00000.PNG")
    names = [p.relative_to(folder).as_posix() for p in list_images(folder)]
    assert names == [f"{i:05d}.png" for i in range(1, 9)] + ["more/00000.PNG"]

    archive = tmp_path / "junk.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(tiny / "00002.png", "b.png")
        zf.write(tiny / "00001.png", "a.png")
        zf.writestr("__MACOSX/._a.png", b"\0")
        zf.writestr("readme.md", "x")
        zf.writestr("dir/", "")
    assert [r.name for r in list_images(archive)] == ["a.png", "b.png"]

    (tmp_path / "empty").mkdir()
    with pytest.raises(GraderError, match="no images found"):
        list_images(tmp_path / "empty")
    with pytest.raises(GraderError, match="no such folder or zip"):
        list_images(tmp_path / "absent")
    with pytest.raises(GraderError, match="not a folder or a zip"):
        list_images(tiny / "00001.png")


def test_cache_dir_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("GRADER_CACHE_DIR")
    assert default_cache_dir().parts[-2:] == (".cache", "grader")


def _write_repeatedly(root, key, value, times):
    cache = FeatureCache(root)
    for _ in range(times):
        cache.store(key, np.full((1000, 2048), float(value)), {"writer": value})


def test_concurrent_writers_never_expose_a_partial_file(tmp_path):
    """Two processes rewrite one entry (16 MB) while this one reads: whole files only."""
    key = feature_key("images", "weights", "pytorch-fid")
    cache = FeatureCache(tmp_path)
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_write_repeatedly, args=(tmp_path, key, v, 15))
               for v in (1, 2)]
    for writer in writers:
        writer.start()
    seen = set()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unreadable file would warn
        while any(w.is_alive() for w in writers) or not seen:
            loaded = cache.load(key, 1000, 2048)
            if loaded is not None:
                features, meta = loaded
                assert np.all(features == features[0, 0])
                assert features[0, 0] == meta["writer"]
                seen.add(meta["writer"])
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    assert not [p for p in cache.path_for(key).parent.iterdir() if p.suffix == ".tmp"]


def test_folded_batchnorm_is_the_default_close_and_cached_apart(
    tmp_path, tiny, reference, inception_weights, monkeypatch
):
    folded = _engine(inception_weights, tmp_path / "cache").fid(list_images(tiny), reference)
    assert folded.provenance["model"] == "bn-folded"
    exact = _engine(inception_weights, tmp_path / "cache", fold_batchnorm=False)
    unfolded = exact.fid(list_images(tiny), reference)
    assert unfolded.provenance["model"] == "exact"
    assert unfolded.provenance["feature_cache"] == "miss"  # never mixed with folded features
    assert folded.fid == pytest.approx(unfolded.fid, rel=1e-5)
    monkeypatch.setenv("GRADER_FID_FOLD_BATCHNORM", "0")
    assert _engine(inception_weights, None).model_variant == "exact"
    monkeypatch.setenv("GRADER_FID_FOLD_BATCHNORM", "maybe")
    with pytest.raises(GraderError, match="GRADER_FID_FOLD_BATCHNORM"):
        _engine(inception_weights, None)


def test_forward_threads_keep_order_and_features(tmp_path, mnist_test, inception_weights):
    """Several forward threads take batches as they come: rows still follow the images."""
    digits, _ = mnist_test
    folder = write_pngs(tmp_path / "imgs", digits[300:311])  # 11 images: uneven batches
    refs = list_images(folder)
    one = _engine(inception_weights, None, use_cache=False, threads=1, batch_size=11)
    expected = one.features(refs)
    three = _engine(inception_weights, None, use_cache=False, threads=3, batch_size=2)
    assert three.threads == 3
    np.testing.assert_allclose(three.features(refs), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(expected[0], expected[1])  # rows differ: order is really checked


def test_under_a_memory_cap_the_model_lives_only_through_a_forward_pass(
    tmp_path, tiny, reference, inception_weights, monkeypatch
):
    """Where memory is short (a 768 MB autograder) the model is let go after each forward pass;
    the next one rebuilds it, with the same FID."""
    from grader.metrics import resources

    engine = _engine(inception_weights, tmp_path / "cache")
    first = engine.fid(list_images(tiny), reference)
    assert engine.model_loaded  # no cap: kept for the next set
    monkeypatch.setattr(resources, "memory_limit", lambda: 768 * 10**6)
    shutil.rmtree(tmp_path / "cache" / "features")  # the features again, from the network
    again = engine.fid(list_images(tiny), reference)
    assert not engine.model_loaded and again.provenance["feature_cache"] == "miss"
    assert again.fid == first.fid
