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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from grader import atomic
from grader.errors import GraderError
from grader.metrics.loaded import LoadedByContent


def _psd_roots(eigenvalues: np.ndarray) -> np.ndarray:
    """sqrt of the eigenvalues of a PSD matrix, those at round-off level taken as 0.

    A rank-deficient covariance (N <= D samples) has exact zero eigenvalues that come out
    as +-1e-16 * max; their square roots (~1e-8 each, over ~2000 of them) would add noise
    to the trace. The cut is numpy's matrix_rank tolerance.
    """
    cut = eigenvalues.max(initial=0.0) * len(eigenvalues) * np.finfo(np.float64).eps
    return np.sqrt(np.where(eigenvalues > cut, eigenvalues, 0.0))


def _symmetrised(matrix: np.ndarray) -> np.ndarray:
    """(M + Mᵀ) / 2 in M's own memory: the same numbers as the plain expression (halving is
    exact) without its two temporary D x D copies (32 MB each at D = 2048)."""
    matrix += matrix.T  # numpy buffers the overlapping transpose
    matrix *= 0.5
    return matrix


def sqrtm_psd(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (float64)."""
    eigenvalues, eigenvectors = np.linalg.eigh(_symmetrised(np.array(sigma, dtype=np.float64)))
    return (eigenvectors * _psd_roots(eigenvalues)) @ eigenvectors.T


def trace_sqrt_product(sqrt_ref: np.ndarray, sigma: np.ndarray) -> float:
    """tr sqrtm(Σ_ref Σ) given A = sqrtm(Σ_ref)."""
    inner = sqrt_ref @ np.asarray(sigma, dtype=np.float64)
    inner = inner @ sqrt_ref
    return float(_psd_roots(np.linalg.eigvalsh(_symmetrised(inner))).sum())


def trace_sqrt_product_from_features(sqrt_ref: np.ndarray, centered: np.ndarray) -> float:
    """tr sqrtm(Σ_ref Σ) with Σ = XᵀX / (N-1) given by centred features X [N, D], N <= D.

    A Σ A = YᵀY / (N-1) with Y = X A, whose non-zero eigenvalues are those of the N x N
    matrix Y Yᵀ / (N-1): the same trace at a fraction of the cost when N < D.
    """
    scaled = centered @ sqrt_ref
    gram = scaled @ scaled.T / (len(centered) - 1)
    return float(_psd_roots(np.linalg.eigvalsh(_symmetrised(gram))).sum())


@dataclass
class ReferenceStats:
    """Mean and covariance of a reference set, with sqrtm(Σ) computed once on first use.

    With `sqrt_file`, the root is also kept on disk (it depends only on the file's bytes).
    """

    mu: np.ndarray
    sigma: np.ndarray
    sha256: str | None = None
    path: Path | None = None
    sqrt_file: Path | None = None
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
                self._sqrt = self._load_sqrt()
            if self._sqrt is None:
                self._sqrt = sqrtm_psd(self.sigma)
                if self.sqrt_file is not None:
                    try:
                        atomic.write_with(self.sqrt_file, lambda f: np.save(f, self._sqrt))
                    except OSError:
                        pass  # a read-only cache costs time, not correctness
            return self._sqrt

    def _load_sqrt(self) -> np.ndarray | None:
        if self.sqrt_file is None or not self.sqrt_file.is_file():
            return None
        try:
            root = np.load(self.sqrt_file, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        whole = root.dtype == np.float64 and root.shape == self.sigma.shape
        return root if whole and np.isfinite(root).all() else None

    def distance(self, mu: np.ndarray, sigma: np.ndarray) -> float:
        """Fréchet distance between N(mu, sigma) and this reference."""
        mu, sigma = _check_stats(mu, sigma, "statistics")
        self._check_dims(mu.shape[0])
        diff = mu - self.mu
        covariance_term = np.trace(sigma) + np.trace(self.sigma)
        return float(diff @ diff + covariance_term - 2 * trace_sqrt_product(self.sqrt_sigma, sigma))

    def distance_to_features(self, features: np.ndarray) -> float:
        """Fréchet distance between the Gaussian fitted to [N, D] features and this reference.

        Equal to distance(*feature_statistics(features)); for N <= D it works on the
        N x N Gram matrix instead of D x D products.
        """
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or len(features) < 2:
            raise ValueError(f"need features [N >= 2, D]; got shape {features.shape}")
        self._check_dims(features.shape[1])
        if len(features) > self.dims:
            return self.distance(*feature_statistics(features))
        mu = np.mean(features, axis=0)
        centered = features - mu
        diff = mu - self.mu
        covariance_term = np.sum(centered * centered) / (len(features) - 1) + np.trace(self.sigma)
        tr_sqrt = trace_sqrt_product_from_features(self.sqrt_sigma, centered)
        return float(diff @ diff + covariance_term - 2 * tr_sqrt)

    def _check_dims(self, dims: int) -> None:
        if dims != self.dims:
            raise ValueError(f"feature dims differ: {dims} vs reference {self.dims}")


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """d² = |mu1 - mu2|² + tr(Σ1 + Σ2 - 2 sqrtm(Σ1 Σ2)), by the symmetric eigen route.

    (mu2, sigma2) plays the reference: for many distances to one reference, use
    ReferenceStats.distance, which keeps sqrtm(Σ2).
    """
    return ReferenceStats(mu2, sigma2).distance(mu1, sigma1)


STATISTICS_CHUNK = 1024  # rows centred at a time


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of [N, D] features as both official tools compute them (np.mean, np.cov),
    in float64, without np.cov's centred copy of all N rows (164 MB for 10,000 features):
    Σ = Σ_chunks (X_c - mu)ᵀ (X_c - mu) / (N - 1), the same sums in another order (~1e-16)."""
    features = np.asarray(features)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need features [N >= 2, D]; got shape {features.shape}")
    mu = np.mean(features, axis=0, dtype=np.float64)
    sigma = np.zeros((features.shape[1],) * 2, dtype=np.float64)
    for start in range(0, len(features), STATISTICS_CHUNK):
        centred = features[start : start + STATISTICS_CHUNK].astype(np.float64) - mu
        sigma += centred.T @ centred
    sigma /= len(features) - 1
    return mu, sigma


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


def save_stats(path: Path | str, mu, sigma, features: np.ndarray | None = None) -> None:
    """Write float64 `mu`, `sigma` as an .npz both official tools load; atomic. With
    `features`, the file also keeps those rows (float32, as the network computed them) for
    metrics that need samples, not moments (grader.metrics.reference_features)."""
    path = Path(path)
    mu, sigma = _check_stats(mu, sigma, path)
    extra = {} if features is None else {"features": np.asarray(features, dtype=np.float32)}
    atomic.write_with(path, lambda f: np.savez_compressed(f, mu=mu, sigma=sigma, **extra))


_REFERENCES: LoadedByContent[ReferenceStats] = LoadedByContent(kept=4)  # a 2048x2048 root is 32 MB


def root_file(cache_dir: Path, sha256: str) -> Path:
    """Where a cache keeps sqrtm(Σ) of the statistics file with this sha256."""
    return Path(cache_dir) / "sqrtm" / f"{sha256}.npy"


def save_root(path: Path | str, cache_dir: Path) -> Path:
    """Write sqrtm(Σ) of a statistics file into a cache (an autograder ships it)."""
    reference = reference_stats(path)
    target = root_file(cache_dir, reference.sha256)
    if not target.is_file():
        atomic.write_with(target, lambda f: np.save(f, reference.sqrt_sigma))
    return target


def reference_stats(path: Path | str, cache_dir: Path | None = None) -> ReferenceStats:
    """Load a statistics file once per content (sha256); its sqrtm(Σ) is then shared.

    With `cache_dir`, sqrtm(Σ) is also kept on disk for later processes.
    """
    path = Path(path)
    if not path.is_file():
        raise GraderError(f"reference statistics file not found: {path}")

    def load(path: Path, sha: str) -> ReferenceStats:
        sqrt_file = root_file(cache_dir, sha) if cache_dir is not None else None
        return ReferenceStats(*load_stats(path), sha, path, sqrt_file)

    return _REFERENCES.get(path, load)
