"""What the suite keeps across runs (pytest's cache folder), keyed by what it depends on.

A kept folder's name carries a hash of the source files and package versions that its content
follows from: a change to how features are computed gets a fresh folder, so it is tested,
never served from an earlier run. Older folders of the same kind are removed.
"""

from __future__ import annotations

import hashlib
import shutil
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Inception features follow from these files and the versions below (the cache's own key adds
# the image content, the weights' sha256, the backend and the network variant).
FEATURE_SOURCES = (
    "grader/image_files.py",
    "grader/metrics/cache.py",
    "grader/metrics/features.py",
    "grader/metrics/fid.py",
    "grader/metrics/inception.py",
)
FEATURE_PACKAGES = ("torch", "torchvision", "pytorch-fid", "pytorch-gan-metrics", "numpy", "pillow")

_config = None


def configure(config) -> None:
    global _config
    _config = config


def folder(kind: str, sources: tuple[str, ...] = (), packages: tuple[str, ...] = (), data: bytes = b"") -> Path:
    digest = hashlib.sha256(data)
    for source in sources:
        digest.update(source.encode() + b"\0" + (ROOT / source).read_bytes() + b"\0")
    for package in packages:
        digest.update(f"{package}=={metadata.version(package)}\0".encode())
    base = _config.cache.mkdir(kind)
    path = base / digest.hexdigest()[:16]
    for old in base.iterdir():
        if old != path:  # another worker may be removing it too
            shutil.rmtree(old, ignore_errors=True)
    path.mkdir(exist_ok=True)
    return path


def features() -> Path:
    """A feature cache (GRADER_CACHE_DIR) shared by the suite's image sets, across runs."""
    return folder("inception-features", FEATURE_SOURCES, FEATURE_PACKAGES)
