"""Shared fixtures: the read-only data in ../shared/data, skipped with a reason when absent."""

from __future__ import annotations

import os
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
