"""Real CelebA faces (64x64 crops) for the feature-based metrics' tests, written once per test
process: reference faces with a statistics file that keeps their features, other real faces,
the same faces blurred (a weak GAN's look) and noise. Features go to the suite's kept feature
cache (kept.py), so KID and precision/recall share one Inception pass per set, across runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import hw9class
import kept
import numpy as np

from grader.datasets import load_image_zip

N = 64  # images per set: small, Inception runs ~10 images/s on a CPU
_MEMO: dict[str, Path] = {}


def env(inception_weights) -> dict[str, str]:
    return {**os.environ, "GRADER_CACHE_DIR": str(kept.features()),
            "GRADER_INCEPTION_WEIGHTS": str(inception_weights), "NO_COLOR": "1"}


def face_sets(tmp_path_factory, faces_zip, environment) -> Path:
    """A folder with `reference/` (+ `ref.npz` with features, `plain.npz` without), `real/`,
    `blurred/` and `noise/`, each N PNGs."""
    if "root" in _MEMO:
        return _MEMO["root"]
    root = tmp_path_factory.mktemp("faces")
    faces = load_image_zip(faces_zip, limit=2 * N, size=64)
    noise = np.random.default_rng(0).integers(0, 256, (N, 64, 64, 3), dtype=np.uint8)
    for name, images in (("reference", faces[:N]), ("real", faces[N:]),
                         ("blurred", hw9class.blurred(faces[N:], 2.0)), ("noise", noise)):
        hw9class.write_set(root / name, images, "{:05d}.png", as_zip=False)
    for out, extra in (("ref.npz", ["--features"]), ("plain.npz", [])):
        done = subprocess.run(
            [sys.executable, "-m", "grader", "stats", str(root / "reference"), "--backend",
             "pytorch-fid", "-o", str(root / out), *extra],
            capture_output=True, text=True, env=environment, check=False,
        )
        assert done.returncode == 0, done.stderr
    _MEMO["root"] = root
    return root
