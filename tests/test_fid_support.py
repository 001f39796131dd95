"""Shared, computed-once data for the test_fid_* modules (no tests here).

The InceptionV3 runs at a few images per second on a CPU, so every image set, every
official-tool run and every feature matrix is made once per test process and shared.
Session fixtures of different modules call these memoised builders.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import kept
import numpy as np
from PIL import Image

from grader import atomic
from grader.files import sha256_file
from grader.metrics.inception import WEIGHTS_FILENAME

MNIST_SMALL = 60  # MNIST test digits 0..59 (also the first 60 of the big set)
FACES_SMALL = 60  # CelebA faces 000001..000060, centre-cropped to 64x64
REFERENCE_DIGITS = 200  # MNIST train digits behind the reference statistics
BIG = 2049  # MNIST test digits 0..2048: the one run past D = 2048 features (the covariance route)

_MEMO: dict = {}


def memo(key, make):
    if key not in _MEMO:
        _MEMO[key] = make()
    return _MEMO[key]


def write_pngs(folder: Path, images: np.ndarray, first_number: int = 1) -> Path:
    """uint8 [N, H, W] or [N, H, W, 3] as RGB PNGs 00001.png, 00002.png, ... (like students)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image).convert("RGB").save(folder / f"{i + first_number:05d}.png")
    return folder


def zip_folder(folder: Path, destination: Path) -> Path:
    with zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, path.name)
    return destination


@contextlib.contextmanager
def official_torch_home(root: Path, weights: Path):
    """TORCH_HOME where the official tools find the weights under their hub file name."""
    home = root / "torch_home"
    checkpoint = home / "hub" / "checkpoints" / WEIGHTS_FILENAME
    if not checkpoint.exists():
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.symlink_to(weights.resolve())
    previous = os.environ.get("TORCH_HOME")
    os.environ["TORCH_HOME"] = str(home)
    try:
        yield home
    finally:
        if previous is None:
            os.environ.pop("TORCH_HOME", None)
        else:
            os.environ["TORCH_HOME"] = previous


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real console entry point in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "grader", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def cli_json(*args: str, env: dict | None = None) -> dict:
    done = run_cli(*args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# ---------------------------------------------------------------------------------------
# Image sets


def root_dir(tmp_path_factory) -> Path:
    return memo("root", lambda: tmp_path_factory.mktemp("fid"))


def cache_dir(tmp_path_factory) -> Path:
    """The feature cache every CLI run of these modules shares, kept across runs (kept.py)."""
    return memo("cache", kept.features)


def mnist_small(tmp_path_factory, mnist_test) -> Path:
    images, _ = mnist_test
    return memo(
        "mnist_small",
        lambda: write_pngs(root_dir(tmp_path_factory) / "mnist60", images[:MNIST_SMALL]),
    )


def faces_small(tmp_path_factory, faces_zip) -> Path:
    from grader.datasets import load_image_zip

    def make():
        faces = load_image_zip(faces_zip, limit=FACES_SMALL, size=64)
        return write_pngs(root_dir(tmp_path_factory) / "faces60", faces)

    return memo("faces_small", make)


def mnist_big(tmp_path_factory, mnist_test) -> Path:
    images, _ = mnist_test
    return memo("mnist_big", lambda: write_pngs(root_dir(tmp_path_factory) / f"mnist{BIG}",
                                                  images[:BIG]))


def reference_npz(tmp_path_factory, mnist_dir, weights) -> Path:
    """`grader stats` of the first 200 MNIST train digits, straight from the IDX files."""

    def make():
        out = root_dir(tmp_path_factory) / "mnist_train200.npz"
        done = run_cli(
            "stats", str(mnist_dir), "-o", str(out), "--split", "train",
            "--limit", str(REFERENCE_DIGITS), "--device", "cpu",
            "--inception-weights", str(weights), "--cache-dir", str(cache_dir(tmp_path_factory)),
        )
        assert done.returncode == 0, done.stderr
        return out

    return memo("reference", make)


# ---------------------------------------------------------------------------------------
# Official tools (CPU, weights through a temporary TORCH_HOME)

OFFICIAL_PACKAGES = ("pytorch-fid", "pytorch-gan-metrics", "torch", "torchvision", "numpy", "scipy", "pillow")


def kept_official(tmp_path_factory, what: str, weights: Path, *inputs: Path | np.ndarray, make) -> np.ndarray:
    """An official tool's result, computed once per content of its inputs (arrays, files or
    folders of files), the weights and the tools' versions, and kept across runs (kept.py)."""
    weights_sha = memo(("sha256", str(weights)), lambda: sha256_file(weights))  # 95 MB: hash it once
    digest = hashlib.sha256(f"{what}\0{weights_sha}\0".encode())
    for value in inputs:
        if isinstance(value, np.ndarray):
            digest.update(f"{value.dtype}{value.shape}".encode() + np.ascontiguousarray(value).tobytes())
            continue
        for file in sorted(value.iterdir()) if value.is_dir() else [value]:
            digest.update(file.name.encode() + b"\0" + _content(file) + b"\0")
    folder = memo("kept-official", lambda: kept.folder("official-tools", ("tests/test_fid_support.py",),
                                                       OFFICIAL_PACKAGES))
    path = folder / f"{what}-{digest.hexdigest()[:16]}.npy"
    if path.is_file():
        return np.load(path)
    with official_torch_home(root_dir(tmp_path_factory), weights):
        result = np.asarray(make())
    atomic.write_with(path, lambda f: np.save(f, result))
    return result


def _content(file: Path) -> bytes:
    if file.suffix == ".npz":  # its zip entries carry the time of writing: the arrays alone
        with np.load(file) as f:
            return b"".join(f[name].tobytes() for name in sorted(f.files))
    return file.read_bytes()


def official_fids(tmp_path_factory, weights, folder: Path, stats: Path) -> dict[str, float]:
    """FID of a folder by each course tool's own code. pytorch-gan-metrics: its end-to-end
    get_fid_from_directory. pytorch-fid: what its calculate_fid_given_paths runs, in its parts,
    so that the activations of a folder are computed once for every test that needs them:
    get_activations, the two lines of calculate_activation_statistics, the npz read of
    compute_statistics_of_path and calculate_frechet_distance."""

    def make():
        import torch
        from pytorch_fid.fid_score import calculate_frechet_distance, compute_statistics_of_path
        from pytorch_gan_metrics import get_fid_from_directory

        mu, sigma = official_statistics(tmp_path_factory, weights, folder)
        ref_mu, ref_sigma = compute_statistics_of_path(str(stats), None, 50, 2048, "cpu")
        gan_metrics = kept_official(
            tmp_path_factory, "get_fid_from_directory", weights, folder, stats,
            make=lambda: get_fid_from_directory(str(folder), str(stats), device=torch.device("cpu")))
        pytorch_fid = kept_official(  # scipy's sqrtm at 2048 dims: 10-60 CPU seconds
            tmp_path_factory, "calculate_frechet_distance", weights, mu, sigma, ref_mu, ref_sigma,
            make=lambda: calculate_frechet_distance(mu, sigma, ref_mu, ref_sigma))
        return {"pytorch-gan-metrics": float(gan_metrics), "pytorch-fid": float(pytorch_fid)}

    return memo(("official", str(folder), str(stats)), make)


def official_statistics(tmp_path_factory, weights, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """pytorch-fid 0.3.0's calculate_activation_statistics of a folder's PNGs."""
    activations = official_activations(tmp_path_factory, weights, folder)
    return np.mean(activations, axis=0), np.cov(activations, rowvar=False)


def official_activations(tmp_path_factory, weights, folder: Path) -> np.ndarray:
    """pytorch-fid 0.3.0's own data path and model: get_activations over the sorted PNGs."""

    def activations():
        from pytorch_fid.fid_score import get_activations
        from pytorch_fid.inception import InceptionV3

        model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to("cpu")
        return get_activations(sorted(folder.glob("*.png")), model, batch_size=50, dims=2048,
                               device="cpu", num_workers=0)

    return memo(("activations", str(folder)),
                lambda: kept_official(tmp_path_factory, "get_activations", weights, folder, make=activations))
