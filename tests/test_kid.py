"""KID (`kind: kid`) on real CelebA faces: equal to torch-fidelity's own kid_features_to_metric on
the same features, beside FID without changing it, in the exports, and refused at start when the
reference file has no features."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys

import face_sets
import numpy as np
import pytest
import torch
from torch_fidelity.metric_kid import kid_features_to_metric

from grader.metrics.kinds import KINDS, MetricInputs
from grader.metrics.reference_features import load_reference_features
from grader.pipeline import GradingContext
from grader.rubric import load_rubric
from grader.store import ResultStore

COUNT = face_sets.N  # images per student; as many real faces are behind the reference file
REAL, SOFT = "0920001", "0920002"  # real faces; the same kind of faces blurred (a weak GAN)

RUBRIC = """
name: KID test
submission: {{id_pattern: '(?P<id>\\d{{7}})'}}
artifacts:
  gan: {{kind: image_set, match: ["gan"], count: {count}, names: null, size: [64, 64], modes: [RGB]}}
metrics:
  fid_gan: {{kind: fid, artifact: gan, backend: pytorch-fid, stats: {stats}}}
{kid}scoring: {{bands: [{{metric: fid_gan, points: [[100, 100], [400, 0]]}}]}}
"""
KID = "  kid_gan: {{kind: kid, artifact: gan, backend: pytorch-fid, reference: {stats}, subset_size: 50}}\n"


def grader(*args, env, check=0):
    done = subprocess.run([sys.executable, "-m", "grader", *map(str, args)], capture_output=True,
                          text=True, env=env, check=False)
    if check is not None:
        assert done.returncode == check, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def env(inception_weights):
    return face_sets.env(inception_weights)


@pytest.fixture(scope="module")
def klass(tmp_path_factory, faces_zip, env):
    faces = face_sets.face_sets(tmp_path_factory, faces_zip, env)
    root = tmp_path_factory.mktemp("kid")
    for name in ("ref.npz", "plain.npz"):
        shutil.copy(faces / name, root / name)
    for sid, folder in ((REAL, "real"), (SOFT, "blurred")):
        shutil.copytree(faces / folder, root / "submissions" / sid / "gan")
    for name, kid in (("fid.yaml", ""), ("fid_kid.yaml", KID.format(stats="ref.npz")),
                      ("no_features.yaml", KID.format(stats="plain.npz"))):
        (root / name).write_text(RUBRIC.format(count=COUNT, stats="ref.npz", kid=kid))
    return root


def graded_csv(klass, rubric, env):
    out = klass / f"results-{rubric}"
    grader("run", klass / "submissions", "--rubric", klass / rubric, "--out", out, "-q", env=env)
    text = grader("export", out, "--format", "csv", env=env).stdout
    with ResultStore(out) as store:
        records = {r.student_id: r for r in store.all()}
    return {row["student_id"]: row for row in csv.DictReader(io.StringIO(text))}, records


def test_kid_equals_torch_fidelity_on_the_same_features(klass, env, inception_weights, tmp_path):
    rubric = load_rubric(klass / "fid_kid.yaml")
    ctx = GradingContext(rubric=rubric, work_root=tmp_path, weights=inception_weights, device="cpu",
                         cache_dir=env["GRADER_CACHE_DIR"])
    images = sorted((klass / "submissions" / REAL / "gan").glob("*.png"))
    outcome = KINDS["kid"].measure("kid_gan", rubric.metrics["kid_gan"],
                                   MetricInputs(REAL, {"gan": images}, {}, {}), ctx)
    features, provenance = ctx.engine("pytorch-fid").set_features(images)
    assert provenance["feature_cache"] == "hit"  # the kind's pass filled the cache: one Inception pass
    reference = load_reference_features(klass / "ref.npz").features
    expected = kid_features_to_metric(
        torch.from_numpy(features.astype(np.float32)), torch.from_numpy(reference), kid_subsets=100,
        kid_subset_size=50, kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
        kid_kernel_poly_coef0=1, rng_seed=2020, verbose=False,
    )
    result = outcome.result
    assert abs(result.value - expected["kernel_inception_distance_mean"]) <= 1e-6
    assert abs(result.components["std"] - expected["kernel_inception_distance_std"]) <= 1e-6
    assert result.provenance["reference_n"] == COUNT and result.provenance["n"] == COUNT
    assert "100 subsets of 50" in result.provenance["estimator"]


def test_kid_sits_beside_fid_without_changing_it(klass, env):
    plain, _ = graded_csv(klass, "fid.yaml", env)
    both, records = graded_csv(klass, "fid_kid.yaml", env)
    assert list(both[REAL])[:9] == ["student_id", "raw_points", "late_days", "late_deduction", "final",
                                     "max_points", "fid_gan", "kid_gan", "kid_gan_std"]
    for sid in (REAL, SOFT):
        assert both[sid]["fid_gan"] == plain[sid]["fid_gan"] != ""  # FID unchanged by adding KID
        kid = records[sid].metric("kid_gan")
        assert both[sid]["kid_gan"] == f"{kid.value:.6f}"
        assert both[sid]["kid_gan_std"] == f"{kid.components['std']:.6f}"
        assert both[sid]["final"] == plain[sid]["final"]  # report-only: no points
    assert float(both[SOFT]["kid_gan"]) > float(both[REAL]["kid_gan"])  # blurred faces are farther
    page = (klass / "results-fid_kid.yaml" / "students" / REAL / "index.html").read_text()
    assert 'id="metric-kid_gan"' in page and "unbiased at any number of images" in page


def test_a_reference_without_features_is_refused_before_grading(klass, env, tmp_path):
    done = grader("run", klass / "submissions", "--rubric", klass / "no_features.yaml", "--out",
                  tmp_path / "out", "-q", env=env, check=2)
    assert "plain.npz has no reference features" in done.stderr
    assert "grader stats REAL_IMAGES -o plain.npz --features" in done.stderr
    assert not (tmp_path / "out" / "grader.db").exists()  # nothing graded
