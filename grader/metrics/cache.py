"""On-disk caches under the user cache dir: file hashes and Inception features.

Writers go through a temporary file in the same folder and os.replace, so concurrent
runs never see a partial file; a cache file that cannot be read is ignored (and later
overwritten), never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from grader import atomic
from grader.files import remembered_sha256

CACHE_ENV = "GRADER_CACHE_DIR"
# Bump when the feature file layout or the way features are computed changes.
FEATURE_CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """$GRADER_CACHE_DIR, else ~/.cache/grader."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "grader"


def cached_sha256(path: Path, cache_dir: Path | None) -> str:
    """sha256 of a (large) file, remembered by (path, size, mtime) in this process
    (`remembered_sha256`) and, given a cache dir, on disk across runs."""
    if cache_dir is None:
        return remembered_sha256(path)
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    name = hashlib.sha256("\0".join(map(str, key)).encode()).hexdigest()
    record = Path(cache_dir) / "sha256" / f"{name}.txt"
    try:
        known = record.read_text().strip()
        if len(known) == 64 and all(c in "0123456789abcdef" for c in known):
            return known
    except OSError:
        pass
    sha = remembered_sha256(path)
    try:
        atomic.write_text(record, sha)
    except OSError as exc:  # a read-only cache dir costs time, not correctness
        warnings.warn(f"cannot write hash cache {record}: {exc}", stacklevel=2)
    return sha


class FeatureCache:
    """Features [N, D] (float32 or float64) per key, one .npz per key, with the key and metadata inside."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path_for(self, key: str) -> Path:
        return self.root / "features" / key[:2] / f"{key}.npz"

    def load(self, key: str, n: int, dims: int) -> tuple[np.ndarray, dict] | None:
        """(features, metadata), or None when absent or unreadable (then it is recomputed)."""
        path = self.path_for(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                features = data["features"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            warnings.warn(f"ignoring unreadable feature cache file {path}: {exc}", stacklevel=2)
            return None
        if (
            meta.get("key") != key
            or features.dtype not in (np.float32, np.float64)
            or features.shape != (n, dims)
            or not np.isfinite(features).all()
        ):
            warnings.warn(f"ignoring inconsistent feature cache file {path}", stacklevel=2)
            return None
        return features, meta

    def store(self, key: str, features: np.ndarray, meta: dict) -> None:
        meta = {**meta, "key": key, "format": FEATURE_CACHE_VERSION}
        path = self.path_for(key)

        def write(f):
            # float32 features (the network's values) are kept as they are: exact, half the size.
            exact = features.dtype in (np.float32, np.float64)
            values = features if exact else np.asarray(features, dtype=np.float64)
            np.savez(f, features=values, meta=np.array(json.dumps(meta)))

        try:
            atomic.write_with(path, write)
        except OSError as exc:
            warnings.warn(f"cannot write feature cache {path}: {exc}", stacklevel=2)


def feature_key(
    content_digest: str, weights_sha256: str, backend: str, model_variant: str = "exact"
) -> str:
    """Cache key: image content (in order) + weights + backend + model variant + format."""
    parts = {
        "format": FEATURE_CACHE_VERSION,
        "images": content_digest,
        "weights": weights_sha256,
        "backend": backend,
        "model": model_variant,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
