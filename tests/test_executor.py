"""Executor options (TOML + CLI), refusals at start, and the task spec, without a cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.errors import GraderError
from grader.executors.settings import resolve_settings, time_minutes

ROOT = Path(__file__).resolve().parents[1]


def test_slurm_times_in_minutes():
    assert time_minutes("90") == 90
    assert time_minutes("0:30") == 1  # Slurm rounds seconds up to a minute
    assert time_minutes("1:00:00") == 60
    assert time_minutes("2-03") == 2 * 1440 + 180
    for bad in ("", "1h", "0", "-5"):
        with pytest.raises(ValueError):
            time_minutes(bad)


def test_config_file_then_command_line(tmp_path):
    config = tmp_path / "grader.toml"
    config.write_text(
        '[executor]\nkind = "slurm"\npartition = "gpu"\ntime = "2:00:00"\ngpus-per-task = 1\n'
        'sbatch_args = ["--qos=high"]\ncontainer-image = "grader:latest"\n'
    )
    s = resolve_settings(
        config, {"partition": "debug", "retries": 3, "time": None, "sbatch_args": None}
    )
    assert (s.kind, s.partition, s.time_minutes, s.gpus_per_task, s.retries) == (
        "slurm",
        "debug",
        120,
        1,
        3,
    )
    assert s.sbatch_args == ["--qos=high"] and s.container_image == "grader:latest"
    assert resolve_settings(None, {}).kind == "local"


@pytest.mark.parametrize(
    "text, words",
    [
        ("[executor]\npartiton = 'gpu'\n", ["partiton", "Extra inputs"]),
        ("[executor]\ntime = '1 hour'\n", ["time", "not a Slurm time"]),
        ("[executor]\ngpus_per_task = -1\n", ["gpus_per_task", "0 or more"]),
        ("[executor\n", ["not valid TOML"]),
    ],
)
def test_bad_config_is_refused_by_name(tmp_path, text, words):
    config = tmp_path / "grader.toml"
    config.write_text(text)
    with pytest.raises(GraderError) as err:
        resolve_settings(config, {})
    for word in words:
        assert word in str(err.value)


@pytest.fixture(scope="module")
def tiny_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "example",
            "class",
            str(root),
            "--images",
            "12",
            "--rubric",
            str(ROOT / "rubrics" / "hw3.yaml"),
        ],
        check=True,
        capture_output=True,
    )
    return root


def _run(tiny_class, tmp_path, *extra, env=None):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "run",
            str(tiny_class / "submissions"),
            "--rubric",
            str(tiny_class / "rubric.yaml"),
            "--out",
            str(tmp_path / "out"),
            "--no-metrics",
            "-q",
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env or os.environ,
        check=False,
    )


def test_slurm_without_sbatch_is_refused(tiny_class, tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    res = _run(tiny_class, tmp_path, "--executor", "slurm", env={**os.environ, "PATH": str(empty)})
    assert res.returncode == 2 and "sbatch is not on PATH" in res.stderr, res.stderr
    assert not (tmp_path / "out" / "grader.db").exists()


def test_local_gpus_that_do_not_exist_are_refused(tiny_class, tmp_path):
    import torch

    present = torch.cuda.device_count() if torch.cuda.is_available() else 0
    res = _run(tiny_class, tmp_path, "--gpus", f"{present},{present + 1}")
    assert res.returncode == 2 and f"this machine has {present} GPU(s)" in res.stderr, res.stderr


def test_local_executor_is_todays_runner(tiny_class, tmp_path):
    res = _run(tiny_class, tmp_path, "--executor", "local", "-j", "2")
    assert res.returncode in (0, 3), res.stdout + res.stderr
    assert "8 graded" in res.stdout and not (tmp_path / "out" / "slurm").exists()


def test_task_spec_travels_and_rebuilds_the_context(tiny_class, tmp_path):
    import pickle

    from grader.executors.task import ContextSpec, build_context
    from grader.pipeline import GradingContext
    from grader.rubric import load_rubric

    ctx = GradingContext(
        rubric=load_rubric(tiny_class / "rubric.yaml"),
        work_root=tmp_path / "w",
        assets_root=tmp_path / "students",
        compute_metrics=False,
    )
    spec = pickle.loads(pickle.dumps(ContextSpec.from_context(ctx)))
    again = build_context(spec, tmp_path / "w")
    assert again.rubric.content_hash == ctx.rubric.content_hash and again.compute_metrics is False
    assert again.grading_key("x") == ctx.grading_key("x")

    (tmp_path / "edited.yaml").write_text((tiny_class / "rubric.yaml").read_text() + "\n# edited\n")
    moved = ContextSpec(**{**spec.__dict__, "rubric_path": str(tmp_path / "edited.yaml")})
    with pytest.raises(GraderError, match="changed after the tasks were submitted"):
        build_context(moved, tmp_path / "w")
