"""Integrity on by default: the shipped rubrics/hw3.yaml, copied beside the TA's MNIST folder
(nothing else), flags a 10,000-image zip of MNIST training digits through `grader run` and not
10,000 test digits; without the training folder the run stops at start. FID is skipped here
(--skip-metric fid): 10,000 Inception passes per student would take ~17 minutes on this CPU.
The example class brings its own training digits."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from grader.datasets import find_mnist_file
from grader.examples import write_example_class, write_hw3_submission
from grader.integrity.training import load_training
from grader.rubric import load_rubric
from grader.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]
COPIER, HONEST = "0810001", "0810002"


def grader(*args, env):
    return subprocess.run([sys.executable, "-m", "grader", *map(str, args)], capture_output=True,
                          text=True, env=env, check=False)


@pytest.fixture(scope="module")
def env(request):
    cache = request.config.cache.mkdir("hw3-integrity")  # prepared training arrays, kept across runs
    return {**os.environ, "GRADER_CACHE_DIR": str(cache), "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def ta(tmp_path_factory, mnist_dir) -> Path:
    """The TA's folder: the shipped hw3.yaml and, beside it, mnist/ with the training IDX files."""
    root = tmp_path_factory.mktemp("ta")
    shutil.copy(ROOT / "rubrics" / "hw3.yaml", root / "hw3.yaml")
    (root / "mnist").mkdir()
    for what in ("images", "labels"):
        shutil.copy(find_mnist_file(mnist_dir, "train", what), root / "mnist")
    return root


@pytest.fixture(scope="module")
def klass(tmp_path_factory, mnist_train, mnist_test) -> Path:
    root = tmp_path_factory.mktemp("hw3-integrity")
    grid = mnist_test[0][-8:]
    write_hw3_submission(root / "submissions" / COPIER, COPIER, mnist_train[0][:10000], grid)
    write_hw3_submission(root / "submissions" / HONEST, HONEST, mnist_test[0][:10000], grid)
    due = load_rubric(ROOT / "rubrics" / "hw3.yaml").late.due
    when = (due - timedelta(hours=1)).isoformat()
    (root / "times.csv").write_text(f"student_id,submitted_at\n{COPIER},{when}\n{HONEST},{when}\n")
    return root


def run(klass: Path, rubric: Path, out: Path, env, *extra):
    return grader("run", klass / "submissions", "--rubric", rubric, "--times", klass / "times.csv",
                  "--out", out, "-q", *extra, env=env)


def test_shipped_hw3_flags_training_digits_not_test_digits(klass, ta, env, tmp_path):
    res = run(klass, ta / "hw3.yaml", tmp_path / "out", env, "--skip-metric", "fid")
    # Every grade is incomplete (the FID band was skipped), none crashed.
    assert res.returncode == 3, res.stdout + res.stderr
    assert "2 graded" in res.stdout
    with ResultStore(tmp_path / "out") as store:
        results = {r.student_id: r for r in store.all()}

    copier, honest = results[COPIER], results[HONEST]
    metric = copier.metric("integrity")
    assert metric.value == 10000 and metric.provenance["training_N"] == 60000
    (flag,) = [f for f in copier.findings if f.code == "integrity.training_copies"]
    assert flag.severity.value == "warning"  # action: flag, no points move
    assert flag.message.startswith("10000 of 10000 images are (near) copies of training images")
    assert not any(line.label.startswith("Integrity") for line in copier.grade.lines)

    metric = honest.metric("integrity")
    assert metric.value == 0 and not metric.details["collapse"]["flagged"]
    assert not [f for f in honest.findings if f.code.startswith("integrity.")]
    assert [f.code for f in honest.findings] == []  # the example source zip passes the white list
    assert copier.metric("fid").skipped == "this metric was skipped for this run (--skip-metric fid)"


def test_missing_training_folder_stops_the_run_at_start(klass, ta, env, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(ta / "hw3.yaml", bare / "hw3.yaml")  # no mnist/ beside it
    res = run(klass, bare / "hw3.yaml", tmp_path / "out", env, "--skip-metric", "fid")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "metric integrity: training data not found" in res.stderr
    assert not (tmp_path / "out" / "grader.db").exists()
    # An unknown metric name is a usage error, not a silent no-op.
    res = run(klass, bare / "hw3.yaml", tmp_path / "out", env, "--skip-metric", "integrit")
    assert res.returncode == 2 and "no such metric" in res.stderr and "fid, integrity" in res.stderr
    # The TA removes the metric: the rubric runs without it.
    data = yaml.safe_load((bare / "hw3.yaml").read_text())
    del data["metrics"]["integrity"]
    (bare / "hw3.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    res = run(klass, bare / "hw3.yaml", tmp_path / "out", env, "--no-metrics", "--student", HONEST)
    assert res.returncode == 3 and "1 graded" in res.stdout, res.stdout + res.stderr


def test_hw9_without_training_faces_stops_at_start(tmp_path, env):
    shutil.copy(ROOT / "rubrics" / "hw9.yaml", tmp_path / "hw9.yaml")
    (tmp_path / "subs").mkdir()
    res = grader("run", tmp_path / "subs", "--rubric", tmp_path / "hw9.yaml", "--out", tmp_path / "out",
                 "-q", env=env)
    assert res.returncode == 2
    for name in ("integrity_gan", "integrity_diffusion", "integrity_finetuned"):
        assert f"metric {name}: training data not found" in res.stderr
    assert "progress_reports.csv" in res.stderr  # listed beside the other configuration problems


def test_the_example_class_brings_training_digits(tmp_path, mnist_dir):
    paths = write_example_class(tmp_path / "ex", images=20, mnist_dir=mnist_dir,
                                base_rubric=ROOT / "rubrics" / "hw3.yaml")
    rubric = load_rubric(paths["rubric"])
    assert rubric.resolve(rubric.metrics["integrity"].training) == tmp_path / "ex" / "mnist"
    training = load_training(tmp_path / "ex" / "mnist")
    assert training.images.shape == (10000, 28, 28) and training.labels is not None
    # Each student's digits are their own (the class-wide screen finds no shared sets).
    zips = sorted((tmp_path / "ex" / "submissions").glob("*/A*[0-9].zip"))
    names = [set(zipfile_digests(z)) for z in zips]
    assert len(zips) == 8 and all(not (a & b) for i, a in enumerate(names) for b in names[i + 1 :])
    # Without MNIST the digits are drawn, near-copies of one another: no integrity metric.
    paths = write_example_class(tmp_path / "drawn", images=4, mnist_dir=None,
                                base_rubric=ROOT / "rubrics" / "hw3.yaml")
    assert list(load_rubric(paths["rubric"]).metrics) == ["fid"]
    assert not (tmp_path / "drawn" / "mnist").exists()


def zipfile_digests(path: Path) -> list[bytes]:
    import hashlib
    import zipfile

    with zipfile.ZipFile(path) as zf:
        return [hashlib.sha256(zf.read(n)).digest() for n in zf.namelist() if n.endswith(".png")]
