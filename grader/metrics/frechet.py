"""Fréchet distance between Gaussians, and reference statistics files (.npz / pickled dict).

The official tools compute tr sqrtm(Σ1 Σ2) with scipy's sqrtm of a non-symmetric product.
That is slow (about 13 s at 2048x2048) and fails with "Imaginary component" when a
covariance is rank-deficient (N < 2048 images). We use the symmetric route instead:
with A = sqrtm(Σ_ref), Σ_ref Σ = A (A Σ) and A Σ A have the same eigenvalues, and
A Σ A is symmetric positive semi-definite, so

    tr sqrtm(Σ_ref Σ) = Σ_i sqrt(max(λ_i(A Σ A), 0)).

A is computed once per reference (eigh) and kept; each distance then costs two matrix
products and one symmetric eigenvalue solve.
"""

from __future__ import annotations

import pickle
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from grader.errors import GraderError
from grader.metrics.cache import atomic_write, sha256_of_file


def sqrtm_psd(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (float64)."""
    sigma = np.asarray(sigma, dtype=np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh((sigma + sigma.T) / 2)
    # Round-off makes some eigenvalues of a rank-deficient covariance slightly negative.
    root = np.sqrt(np.clip(eigenvalues, 0.0, None))
    return (eigenvectors * root) @ eigenvectors.T


def trace_sqrt_product(sqrt_ref: np.ndarray, sigma: np.ndarray) -> float:
    """tr sqrtm(Σ_ref Σ) given A = sqrtm(Σ_ref)."""
    inner = sqrt_ref @ np.asarray(sigma, dtype=np.float64) @ sqrt_ref
    eigenvalues = np.linalg.eigvalsh((inner + inner.T) / 2)
    return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


@dataclass
class ReferenceStats:
    """Mean and covariance of a reference set, with sqrtm(Σ) computed once on first use."""

    mu: np.ndarray
    sigma: np.ndarray
    sha256: str | None = None
    path: Path | None = None
    _sqrt: np.ndarray | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.mu, self.sigma = _check_stats(self.mu, self.sigma, self.path or "statistics")

    @property
    def dims(self) -> int:
        return self.mu.shape[0]

    @property
    def sqrt_sigma(self) -> np.ndarray:
        with self._lock:
            if self._sqrt is None:
                self._sqrt = sqrtm_psd(self.sigma)
            return self._sqrt

    def distance(self, mu: np.ndarray, sigma: np.ndarray) -> float:
        """Fréchet distance between N(mu, sigma) and this reference."""
        mu, sigma = _check_stats(mu, sigma, "statistics")
        if mu.shape != self.mu.shape:
            raise ValueError(f"feature dims differ: {mu.shape[0]} vs reference {self.dims}")
        diff = mu - self.mu
        covariance_term = np.trace(sigma) + np.trace(self.sigma)
        return float(diff @ diff + covariance_term - 2 * trace_sqrt_product(self.sqrt_sigma, sigma))


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """d² = |mu1 - mu2|² + tr(Σ1 + Σ2 - 2 sqrtm(Σ1 Σ2)), by the symmetric eigen route.

    (mu2, sigma2) plays the reference: for many distances to one reference, use
    ReferenceStats.distance, which keeps sqrtm(Σ2).
    """
    return ReferenceStats(mu2, sigma2).distance(mu1, sigma1)


def frechet_distance_to_reference(mu, sigma, reference: ReferenceStats) -> float:
    """Fréchet distance to a reference whose sqrtm(Σ_ref) is computed once and kept."""
    return reference.distance(mu, sigma)


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of [N, D] features exactly as both official tools compute them."""
    features = np.asarray(features, dtype=np.float64)
    return np.mean(features, axis=0), np.cov(features, rowvar=False)


def _check_stats(mu, sigma, where) -> tuple[np.ndarray, np.ndarray]:
    try:
        mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
        sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise GraderError(f"{where}: mu/sigma are not numeric arrays ({exc})") from exc
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise GraderError(
            f"{where}: mu must be [D] and sigma [D, D]; got mu {mu.shape}, sigma {sigma.shape}"
        )
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise GraderError(f"{where}: mu/sigma contain NaN or infinite values")
    return mu, sigma


# ---------------------------------------------------------------------------------------
# Statistics files

STATS_KEYS = ("mu", "sigma")


def load_stats(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) as float64 from either official format.

    Accepted: an .npz with arrays `mu` and `sigma` (pytorch-fid, pytorch-gan-metrics
    `calc_fid_stats`), or a pickled dict {'mu', 'sigma'} (np.save of a dict, which
    pytorch-gan-metrics also reads, or a plain pickle).
    """
    path = Path(path)
    if not path.is_file():
        raise GraderError(f"reference statistics file not found: {path}")
    try:
        # allow_pickle: the "pickled dict" format is pickle by definition. Statistics
        # files are the TA's own configuration, never student input.
        loaded = np.load(path, allow_pickle=True)
    except (OSError, ValueError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise GraderError(f"{path}: not a statistics file (.npz or pickled dict): {exc}") from exc
    try:
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                found = list(loaded.files)
                values = {k: loaded[k] for k in STATS_KEYS if k in found}
        else:
            if isinstance(loaded, np.ndarray) and loaded.dtype == object and loaded.shape == ():
                loaded = loaded.item()
            if not isinstance(loaded, dict):
                raise GraderError(
                    f"{path}: expected an .npz or a pickled dict with keys 'mu' and 'sigma'; "
                    f"found {type(loaded).__name__}"
                )
            found = [str(k) for k in loaded]
            values = {k: loaded[k] for k in STATS_KEYS if k in loaded}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise GraderError(f"{path}: unreadable statistics file: {exc}") from exc
    missing = [k for k in STATS_KEYS if k not in values]
    if missing:
        raise GraderError(
            f"{path}: reference statistics need keys 'mu' and 'sigma'; missing "
            f"{', '.join(repr(k) for k in missing)} (found: {', '.join(found) or 'nothing'})"
        )
    return _check_stats(values["mu"], values["sigma"], path)


def save_stats(path: Path | str, mu, sigma) -> None:
    """Write float64 `mu`, `sigma` as an .npz both official tools load; atomic."""
    path = Path(path)
    mu, sigma = _check_stats(mu, sigma, path)
    atomic_write(path, lambda f: np.savez_compressed(f, mu=mu, sigma=sigma))


_REFERENCES: OrderedDict[str, ReferenceStats] = OrderedDict()
_REFERENCES_LOCK = threading.Lock()
_REFERENCES_KEPT = 4  # a 2048x2048 root is 32 MB


def reference_stats(path: Path | str) -> ReferenceStats:
    """Load a statistics file once per content (sha256); its sqrtm(Σ) is then shared."""
    path = Path(path)
    if not path.is_file():
        raise GraderError(f"reference statistics file not found: {path}")
    sha = sha256_of_file(path)
    with _REFERENCES_LOCK:
        if sha in _REFERENCES:
            _REFERENCES.move_to_end(sha)
            return _REFERENCES[sha]
    mu, sigma = load_stats(path)
    reference = ReferenceStats(mu, sigma, sha, path)
    with _REFERENCES_LOCK:
        _REFERENCES[sha] = reference
        while len(_REFERENCES) > _REFERENCES_KEPT:
            _REFERENCES.popitem(last=False)
    return reference
