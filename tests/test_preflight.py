"""TA and configuration mistakes stop `grader run` before any student is graded: exit 2, one
message naming every problem and its fix, and no student record written."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def grader(*args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *map(str, args)], capture_output=True,
                          text=True, env=env, check=False)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return {**os.environ, "GRADER_CACHE_DIR": str(cache), "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def klass(tmp_path_factory, env):
    root = tmp_path_factory.mktemp("class")
    res = grader("example", "class", root, "--images", 8, "--rubric", ROOT / "rubrics" / "hw3.yaml", env=env)
    assert res.returncode == 0, res.stderr
    return root


def _graded(out: Path) -> int:
    db = out / "grader.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]


def _run(klass, out, env, *extra, rubric=None):
    return grader("run", klass / "submissions", "--rubric", rubric or klass / "rubric.yaml",
                  "--out", out, "-q", *extra, env=env)


def test_missing_statistics_and_weights_are_named_before_grading(klass, tmp_path, env):
    env = {**env, "GRADER_INCEPTION_WEIGHTS": str(tmp_path / "absent.pth"), "TORCH_HOME": str(tmp_path)}
    res = _run(klass, tmp_path / "out", env, "--stats", f"fid={tmp_path / 'absent.npz'}")
    assert res.returncode == 2
    assert "absent.npz: file not found" in res.stderr  # the --stats override is checked first
    res = _run(klass, tmp_path / "out", env)
    assert res.returncode == 2
    assert "reference statistics not found" in res.stderr and "--stats fid=PATH" in res.stderr
    assert "absent.pth" in res.stderr  # the weights problem is listed in the same message
    assert _graded(tmp_path / "out") == 0


def test_cuda_asked_without_cuda_is_a_configuration_error(klass, tmp_path, env, inception_weights):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: --device cuda is valid here")
    env = {**env, "GRADER_INCEPTION_WEIGHTS": str(inception_weights)}
    stats = tmp_path / "ref.npz"
    import numpy as np

    np.savez(stats, mu=np.zeros(2048), sigma=np.eye(2048))
    res = _run(klass, tmp_path / "out", env, "--stats", f"fid={stats}", "--device", "cuda")
    assert res.returncode == 2
    assert "CUDA is not available" in res.stderr and "--device cpu" in res.stderr
    assert _graded(tmp_path / "out") == 0
    # A student's self-check says the same, before checking anything.
    sub = next((klass / "submissions").iterdir())
    res = grader("check", sub, "--rubric", klass / "rubric.yaml", "--device", "cuda", env=env)
    assert res.returncode == 2 and "CUDA is not available" in res.stderr


def test_sampler_that_cannot_run_here_is_a_configuration_error(klass, tmp_path, env):
    rubric = yaml.safe_load((klass / "rubric.yaml").read_text())
    rubric["sample"] = {"source": "source", "produces": "images", "num": 8,
                        "command": "python sample.py --output {output}",
                        "backend": "docker", "image": "grader-sampler:never-built"}
    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(rubric, sort_keys=False))
    res = _run(klass, tmp_path / "out", env, "--no-metrics", rubric=path)
    assert res.returncode == 2
    assert "sample:" in res.stderr and "--no-sandbox" in res.stderr
    assert _graded(tmp_path / "out") == 0
    # --no-sandbox grades the uploads instead: the same rubric then runs.
    res = _run(klass, tmp_path / "out", env, "--no-metrics", "--no-sandbox", rubric=path)
    assert res.returncode != 2, res.stderr
    assert _graded(tmp_path / "out") > 0
