"""CPUs and memory from cgroup limits (v1 and v2), and the FID plan that follows them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import limits
import numpy as np
import pytest

from grader.metrics import fid as fid_module
from grader.metrics import resources
from grader.metrics.fid import CPU_BATCH, cpu_plan
from grader.metrics.frechet import feature_statistics

ROOT = Path(__file__).resolve().parents[1]


def fake_cgroups(monkeypatch, tmp_path: Path, files: dict[str, str], own: dict[str, str]) -> None:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text + "\n")
    monkeypatch.setattr(resources, "CGROUP_ROOT", tmp_path)
    monkeypatch.setattr(resources, "_own_cgroups", lambda: own)


def test_cgroup_v1_limits(monkeypatch, tmp_path):
    fake_cgroups(monkeypatch, tmp_path, {
        "memory/job/memory.limit_in_bytes": "805306368",
        "memory/memory.limit_in_bytes": "9223372036854771712",
        "cpu,cpuacct/job/cpu.cfs_quota_us": "50000",
        "cpu,cpuacct/job/cpu.cfs_period_us": "100000",
    }, {"memory": "/job", "cpu,cpuacct": "/job"})
    assert resources.memory_limit() == 805306368
    assert resources.cpu_quota() == 0.5
    assert resources.available_cpus() == 1  # half a vCPU: one thread


def test_cgroup_v2_limits(monkeypatch, tmp_path):
    fake_cgroups(monkeypatch, tmp_path, {"memory.max": "max", "cpu.max": "max 100000",
                                         "job/memory.max": "768000000", "job/cpu.max": "200000 100000"},
                 {"": "/job"})
    assert resources.memory_limit() == 768_000_000
    assert resources.cpu_quota() == 2.0


def test_no_limits(monkeypatch, tmp_path):
    fake_cgroups(monkeypatch, tmp_path, {}, {})
    assert resources.memory_limit() is None and resources.cpu_quota() is None
    assert resources.available_cpus() == len(os.sched_getaffinity(0))


def test_fid_plan_follows_the_limits():
    assert cpu_plan(2, None) == (2, CPU_BATCH)
    assert cpu_plan(1, 768_000_000) == (1, 4)  # Gradescope's default
    assert cpu_plan(4, 768_000_000) == (1, 4)  # more CPUs do not buy memory
    threads, batch = cpu_plan(2, 2 * 1024**3)
    assert threads == 2 and batch == CPU_BATCH
    assert cpu_plan(1, 100 * 2**20) == (1, 1)  # never below one image


def test_engine_takes_the_plan(monkeypatch, inception_weights, tmp_path):
    monkeypatch.setattr(fid_module, "memory_limit", lambda: 768_000_000)
    monkeypatch.setattr(fid_module, "available_cpus", lambda: 1)
    monkeypatch.delenv("GRADER_FID_THREADS", raising=False)
    engine = fid_module.FidEngine("pytorch-fid", weights=inception_weights, device="cpu", cache_dir=tmp_path)
    assert (engine.threads, engine.batch_size) == (1, 4)


def test_statistics_equal_numpy_in_float64():
    x = np.random.default_rng(0).standard_normal((2500, 2048)).astype(np.float32) * 2 + 0.5
    mu, sigma = feature_statistics(x)
    x64 = x.astype(np.float64)
    assert np.array_equal(mu, np.mean(x64, axis=0))
    assert np.abs(sigma - np.cov(x64, rowvar=False)).max() <= 1e-12 * np.abs(sigma).max()


def test_a_real_memory_cgroup_is_read():
    if limits.unavailable():
        pytest.skip(limits.unavailable())
    code = "from grader.metrics.resources import memory_limit, available_cpus; print(memory_limit(), available_cpus())"
    run = limits.run_limited([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [str(limits.GRADESCOPE_MEMORY), "1"]


def test_no_network_inside():
    if limits.unavailable():
        pytest.skip(limits.unavailable())
    code = "import socket; print(' '.join(name for _, name in socket.if_nameindex()))"
    run = limits.run_limited([sys.executable, "-c", code], timeout=60)
    assert run.returncode == 0 and run.stdout.split() == ["lo"], run.stdout + run.stderr  # only loopback
