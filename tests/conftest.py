"""Shared fixtures: the read-only data in ../shared/data, skipped with a reason when absent."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GRADER_SHARED_DATA", ROOT.parent / "shared" / "data"))
INCEPTION_WEIGHTS = SHARED_DATA / "inception" / "fid_inception_v3.pth"
MNIST_DIR = SHARED_DATA / "mnist"
FACES_ZIP = SHARED_DATA / "faces" / "celeba_first10k_89x109.zip"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not available: {path} is absent (a clone without ../shared/data)")
    return path


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return _require(MNIST_DIR)


@pytest.fixture(scope="session")
def inception_weights() -> Path:
    return _require(INCEPTION_WEIGHTS)


@pytest.fixture(scope="session")
def faces_zip() -> Path:
    return _require(FACES_ZIP)


@pytest.fixture(scope="session")
def mnist_test(mnist_dir):
    """(images [10000,28,28] uint8, labels) of real MNIST test digits."""
    from grader.datasets import load_mnist

    return load_mnist(mnist_dir, "test")


@pytest.fixture(scope="session")
def mnist_train(mnist_dir):
    from grader.datasets import load_mnist

    return load_mnist(mnist_dir, "train")


# ---------------------------------------------------------------- sandbox

SETUP = ROOT / ".ci" / "sandbox-setup.sh"
TEST_IMAGE = "grader-sampler:test"
BASE_IMAGE = os.environ.get("GRADER_BASE_IMAGE", "grader-base:bookworm")


def _cache_dir() -> Path:
    if os.environ.get("GRADER_SANDBOX_CACHE"):
        return Path(os.environ["GRADER_SANDBOX_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "grader" / "sandbox"


@pytest.fixture(scope="session")
def sandbox_host() -> Iterator[dict[str, str | None]]:
    """Prepare the host once; yields a skip reason per backend (None: usable)."""
    setup_error = None
    if os.geteuid() == 0 and shutil.which("bash"):
        proc = subprocess.run(
            ["bash", str(SETUP)], capture_output=True, text=True, timeout=1800, check=False
        )
        if proc.returncode != 0:
            setup_error = f".ci/sandbox-setup.sh failed: {proc.stderr.strip()[-400:]}"
    reasons: dict[str, str | None] = {}

    # Skipped only when no engine answers or no base image could be made; a Dockerfile that
    # does not build is an error of the tests.
    import docker

    client = None
    try:
        client = docker.from_env(timeout=30)
        client.ping()
        client.images.get(BASE_IMAGE)
        reasons["docker"] = None
    except docker.errors.DockerException as exc:
        reasons["docker"] = (
            f"no Docker engine or no {BASE_IMAGE} image ({exc}); {setup_error or ''}"
        )
    if reasons["docker"] is None:
        with open(ROOT / "Dockerfile", "rb") as dockerfile:
            client.images.build(
                fileobj=dockerfile, tag=TEST_IMAGE, buildargs={"BASE_IMAGE": BASE_IMAGE}, rm=True
            )
    if client is not None:
        client.close()

    # bwrap is skipped only when absent (or no root tree could be made); a sandbox that
    # fails to start where bwrap exists is a failure of the tests, not a skip.
    saved = os.environ.get("GRADER_SANDBOX_ROOTFS")
    rootfs = Path(saved or _cache_dir() / "rootfs-bookworm")
    if shutil.which("bwrap") is None:
        reasons["bwrap"] = "bubblewrap (bwrap) is not installed"
    elif not (rootfs / "usr" / "bin" / "python3").exists():
        reasons["bwrap"] = f"no root tree with python3 + Pillow at {rootfs}; {setup_error or ''}"
    else:
        os.environ["GRADER_SANDBOX_ROOTFS"] = str(rootfs)
        reasons["bwrap"] = None
    yield reasons
    if saved is None:
        os.environ.pop("GRADER_SANDBOX_ROOTFS", None)
    else:
        os.environ["GRADER_SANDBOX_ROOTFS"] = saved


@pytest.fixture(params=[pytest.param("docker", marks=pytest.mark.docker), pytest.param("bwrap")])
def backend(request, sandbox_host) -> str:
    reason = sandbox_host[request.param]
    if reason is not None:
        pytest.skip(f"{request.param} sandbox unavailable: {reason}")
    return request.param


