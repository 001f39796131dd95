"""Reference features: rows of real-image features kept in a statistics file beside `mu` and
`sigma`, for metrics that compare samples rather than moments (KID, precision/recall).

`grader stats SOURCE -o ref.npz --features` writes them under the key `features` (float32:
the Inception network computes in float32, so nothing is lost; the course tools read `mu`
and `sigma` and ignore the extra key). A set larger than `--max-features` (default 10,000,
82 MB at 2,048 dimensions) keeps a random subset, the same one every time (seed 0).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.errors import GraderError
from grader.metrics.loaded import LoadedByContent

FEATURES_KEY = "features"
MAX_FEATURES = 10_000
SUBSET_SEED = 0


def keep_rows(features: np.ndarray, limit: int = MAX_FEATURES, seed: int = SUBSET_SEED) -> np.ndarray:
    """At most `limit` rows of `features`: all of them, or a seeded random subset in their
    original order."""
    if len(features) <= limit:
        return features
    rows = np.sort(np.random.default_rng(seed).choice(len(features), limit, replace=False))
    return features[rows]


@dataclass(frozen=True)
class ReferenceFeatures:
    features: np.ndarray  # float32 [M, D]
    sha256: str
    path: Path


_LOADED: LoadedByContent[ReferenceFeatures] = LoadedByContent(kept=2)  # 10,000 x 2,048 float32 is 82 MB


def has_features(path: Path | str) -> bool:
    """Whether a statistics file holds reference features (reads only the file's index)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return FEATURES_KEY in data.files
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return False


def load_reference_features(path: Path | str) -> ReferenceFeatures:
    """The reference features of a statistics file, loaded once per content (sha256)."""
    path = Path(path)
    if not path.is_file():
        raise GraderError(f"reference features file not found: {path}")
    return _LOADED.get(path, _read_features)


def _read_features(path: Path, sha: str) -> ReferenceFeatures:
    try:
        with np.load(path, allow_pickle=False) as data:
            if FEATURES_KEY not in data.files:
                raise GraderError(
                    f"{path}: no reference features (key 'features'); write them with "
                    f"`grader stats SOURCE -o {path.name} --features`"
                )
            features = np.asarray(data[FEATURES_KEY])
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise GraderError(f"{path}: not a statistics file with reference features: {exc}") from exc
    if features.ndim != 2 or len(features) < 2 or not np.isfinite(features).all():
        raise GraderError(f"{path}: reference features must be finite [N >= 2, D]; got {features.shape}")
    return ReferenceFeatures(features.astype(np.float32, copy=False), sha, path)
