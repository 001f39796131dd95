"""FidEngine: FID of an image set against reference statistics, with provenance.

One engine per backend serves many students: the model is built on first use and kept,
features are cached on disk by content, and the reference's sqrtm(Σ) is computed once.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from grader.errors import GraderError
from grader.image_files import ImageRef, array_digest, content_digest, sort_key
from grader.metrics.cache import FeatureCache, cached_sha256, default_cache_dir, feature_key
from grader.metrics.features import (
    array_batches,
    configure_determinism,
    default_workers,
    extract_features,
    image_batches,
)
from grader.metrics.frechet import feature_statistics, reference_stats
from grader.metrics.inception import (
    DEFAULT_BACKEND,
    FEATURE_DIMS,
    RESIZE_MODE,
    backend_version,
    build_inception,
    fold_batchnorm,
    get_backend,
    load_state_dict,
    resolve_device,
    resolve_weights,
)
from grader.metrics.resources import (
    available_cpus,
    memory_is_short,
    memory_limit,
    release_freed_memory,
)

FRECHET_ROUTE = (
    "symmetric eigen route, float64: tr sqrtm(S_ref S) = sum sqrt(eig(A S A)), A = sqrtm(S_ref)"
)


@dataclass
class FidResult:
    fid: float
    n: int
    provenance: dict
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain JSON-ready data (an undefined FID is None, not NaN)."""
        data = asdict(self)
        if math.isnan(self.fid):
            data["fid"] = None
        return data


def small_n_warning(n: int) -> str | None:
    if n >= FEATURE_DIMS:
        return None
    return (
        f"FID from {n:,} images (fewer than {FEATURE_DIMS}, the feature dimension): the "
        f"covariance is rank-deficient and small-N FID is biased upward; compare it only "
        f"with FIDs from the same number of images"
    )


# Features are held as the network's float32 values (exact; half the memory of float64, which
# is what keeps 10,000 images' FID inside 768 MB); statistics are computed in float64.
FEATURE_DTYPE = np.float32
FOLD_ENV = "GRADER_FID_FOLD_BATCHNORM"
THREADS_ENV = "GRADER_FID_THREADS"
CPU_BATCH = 16  # per forward thread: as fast per image as 32 or 50, a third of the memory
GPU_BATCH = 500
# Under a memory limit (a container's cgroup) threads and batches shrink to fit. Measured on a
# CPU (channels_last, 299x299 after the resize): ~12 MB of activations per image in flight;
# besides them `import torch, torchvision` (~390 MB anonymous with PyPI's CUDA build, less with
# the CPU build), the model (~100 MB) and the statistics of 10,000 images (~180 MB): 680 MB.
# Under Gradescope's 768 MB that leaves one thread with batches of 4 (benchmarks/bench_limits.py).
CPU_BYTES_PER_IMAGE = 12 * 2**20
CPU_FIXED_BYTES = 680 * 2**20
MIN_THREAD_BATCH = 4  # a thread is added only when each can run batches of at least this


def cpu_plan(cpus: int, memory_limit: int | None) -> tuple[int, int]:
    """(forward threads, batch per thread) for a CPU with `cpus` and a memory limit in bytes
    (None: unlimited). The features do not depend on either: only speed and memory do."""
    if memory_limit is None:
        return cpus, CPU_BATCH
    spare = max(memory_limit - CPU_FIXED_BYTES, 0)
    threads = max(1, min(cpus, spare // (MIN_THREAD_BATCH * CPU_BYTES_PER_IMAGE)))
    batch = max(1, min(CPU_BATCH, spare // (threads * CPU_BYTES_PER_IMAGE)))
    return int(threads), int(batch)


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise GraderError(f"{name}={value!r}: expected 1 or 0")


def _env_threads() -> int | None:
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise GraderError(f"{THREADS_ENV}={value!r}: expected a whole number >= 1")
    return int(value)


class FidEngine:
    def __init__(
        self,
        backend: str = DEFAULT_BACKEND,
        *,
        weights: Path | None = None,
        device: str | None = None,
        cache_dir: Path | None = None,
        batch_size: int | None = None,
        workers: int | None = None,
        progress: bool = False,
        use_cache: bool = True,
        fold_batchnorm: bool | None = None,
        threads: int | None = None,
    ):
        if batch_size is not None and batch_size < 1:
            raise GraderError(f"--batch-size must be at least 1; got {batch_size}")
        if workers is not None and workers < 0:
            raise GraderError(f"--workers must be 0 or more; got {workers}")
        if threads is not None and threads < 1:
            raise GraderError(f"--threads must be at least 1; got {threads}")
        self.backend = get_backend(backend)
        self.backend_version = backend_version(self.backend)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.use_cache = use_cache
        self.weights = resolve_weights(weights)
        self.weights_sha256 = cached_sha256(self.weights, self.cache_dir if use_cache else None)
        self.device = resolve_device(device)
        on_cpu = self.device.type == "cpu"
        plan_threads, plan_batch = cpu_plan(available_cpus(), memory_limit() if on_cpu else None)
        if batch_size is None:
            batch_size = plan_batch if on_cpu else GPU_BATCH
        self.batch_size = batch_size
        self.workers = default_workers(self.device) if workers is None else workers
        if threads is None:
            threads = _env_threads() or plan_threads
        self.threads = threads if on_cpu else 1  # forward threads, each one intra-op thread
        self.progress = progress
        self.fold_batchnorm = _env_flag(FOLD_ENV, True) if fold_batchnorm is None else fold_batchnorm
        self._cache = FeatureCache(self.cache_dir) if use_cache else None
        self._model: torch.nn.Module | None = None
        self._lock = threading.Lock()

    # -- model ---------------------------------------------------------------------------

    @property
    def model(self) -> torch.nn.Module:
        """The backend's InceptionV3, built on first use and kept."""
        with self._lock:
            if self._model is None:
                configure_determinism()
                model = build_inception(self.backend, load_state_dict(self.weights))
                if self.fold_batchnorm:
                    fold_batchnorm(model)
                # Same numbers in either layout (see features.to_model_input), fewer reorders.
                self._model = model.to(self.device, memory_format=torch.channels_last)
                del model
                release_freed_memory()  # the weights' earlier copies, freed above
            return self._model

    def release_model(self) -> None:
        """Let the model go (~100 MB); the next forward pass builds it again."""
        with self._lock:
            self._model = None
        release_freed_memory()

    @property
    def model_variant(self) -> str:
        """'exact': the course tool's network as is; 'bn-folded': BatchNorm folded into the
        convolutions (the default: faster, FID equal to ~1e-6 relative)."""
        return "bn-folded" if self.fold_batchnorm else "exact"

    @property
    def model_loaded(self) -> bool:
        return self._model is not None

    # -- features ------------------------------------------------------------------------

    def features(self, images: Sequence[ImageRef]) -> np.ndarray:
        """float64 [N, 2048] pool3 features, rows in the order of `images`; cached."""
        return np.asarray(self._image_features(list(images))[0], dtype=np.float64)

    def array_features(self, images: np.ndarray) -> np.ndarray:
        """Features of uint8 [N, H, W, 3] pixels (e.g. MNIST digits made RGB); cached."""
        return np.asarray(self._array_features(images)[0], dtype=np.float64)

    def _image_features(self, refs: list[ImageRef]) -> tuple[np.ndarray, dict]:
        def compute() -> np.ndarray:
            workers = min(self.workers, math.ceil(len(refs) / self.batch_size))
            pin = self.device.type == "cuda"  # page-locked uint8 batches: async copies
            return self._forward(image_batches(refs, self.batch_size, workers, pin_memory=pin), len(refs))

        key = content_digest(refs) if self._cache is not None and refs else None
        return self._cached(key, len(refs), compute)

    def _array_features(self, images: np.ndarray) -> tuple[np.ndarray, dict]:
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise GraderError(
                f"expected uint8 images [N, H, W, 3]; got {images.dtype} {images.shape}"
            )

        def compute() -> np.ndarray:
            return self._forward(array_batches(images, self.batch_size), len(images))

        key = array_digest(images) if self._cache is not None and len(images) else None
        return self._cached(key, len(images), compute)

    def _forward(self, batches, n: int) -> np.ndarray:
        features = extract_features(self.model, batches, n, self.device, self.progress, self.threads,
                                    dtype=FEATURE_DTYPE)
        if memory_is_short():
            # Under a 768 MB cap the model (~100 MB) and what follows a forward pass do not fit
            # together: HW3 was OOM-killed at 713 MB with it beside FID's algebra (~200 MB of
            # float64 D x D matrices for N > D). The next forward pass builds it again (seconds).
            self.release_model()
        return features

    def _cached(self, content: str | None, n: int, compute) -> tuple[np.ndarray, dict]:
        if n == 0:
            return np.empty((0, FEATURE_DIMS)), {"feature_cache": "off", "device": str(self.device)}
        if content is None:
            return compute(), {"feature_cache": "off", "device": str(self.device)}
        key = feature_key(content, self.weights_sha256, self.backend.name, self.model_variant)
        hit = self._cache.load(key, n, FEATURE_DIMS)
        if hit is not None:
            features, meta = hit
            return features, {"feature_cache": "hit", "device": meta.get("device", "unknown")}
        features = compute()
        meta = {
            "backend": self.backend.name,
            "backend_version": self.backend_version,
            "weights_sha256": self.weights_sha256,
            "device": str(self.device),
            "torch": torch.__version__,
            "n": n,
        }
        self._cache.store(key, features, meta)
        return features, {"feature_cache": "miss", "device": str(self.device)}

    # -- statistics and FID --------------------------------------------------------------

    def statistics(self, images: Sequence[ImageRef]) -> tuple[np.ndarray, np.ndarray]:
        """(mu, sigma) of the images, in name order, as the official tools compute them."""
        refs = sorted(images, key=sort_key)
        if len(refs) < 2:
            raise GraderError(f"statistics need at least 2 images; got {len(refs)}")
        return feature_statistics(self._image_features(refs)[0])

    def array_statistics(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(images) < 2:
            raise GraderError(f"statistics need at least 2 images; got {len(images)}")
        return feature_statistics(self._array_features(images)[0])

    def set_features(self, images: Sequence[ImageRef]) -> tuple[np.ndarray, dict]:
        """Features of an image set in name order (as FID takes them; cached, so FID, KID and
        precision/recall of one set cost one Inception pass) and their provenance."""
        refs = sorted(images, key=sort_key)
        features, origin = self._image_features(refs)
        return features, self.feature_provenance(len(refs), origin)

    def fid(self, images: Sequence[ImageRef], stats: Path) -> FidResult:
        """FID of the images (taken in name order) against a reference statistics file."""
        # A bad stats file fails here, before any forward pass.
        reference = reference_stats(stats, self.cache_dir if self.use_cache else None)
        if reference.dims != FEATURE_DIMS:
            raise GraderError(
                f"{stats}: statistics have {reference.dims} dims; FID uses {FEATURE_DIMS}"
            )
        refs = sorted(images, key=sort_key)
        features, origin = self._image_features(refs)
        n = len(refs)
        warnings = []
        if n < 2:
            fid = math.nan
            warnings.append(f"FID needs at least 2 images; got {n}")
        elif n > reference.dims:
            # The moments first; the [N, D] features (82 MB at 10,000 images) are let go
            # before the D x D eigen solve. The same numbers as distance_to_features.
            mu, sigma = feature_statistics(features)
            del features
            fid = reference.distance(mu, sigma)
        else:
            fid = reference.distance_to_features(features)
            if note := small_n_warning(n):
                warnings.append(note)
        provenance = self.provenance(stats, reference.sha256, n, origin)
        return FidResult(fid=fid, n=n, provenance=provenance, warnings=warnings)

    def feature_provenance(self, n: int, origin: dict) -> dict:
        """Where a set's Inception features come from (every feature metric carries it)."""
        return {
            "backend": self.backend.name,
            "backend_version": self.backend_version,
            "weights": str(self.weights),
            "weights_sha256": self.weights_sha256,
            "n": n,
            "dims": FEATURE_DIMS,
            "device": origin["device"],
            "resize": RESIZE_MODE,
            "model": self.model_variant,
            "feature_cache": origin["feature_cache"],
            "torch": torch.__version__,
        }

    def provenance(self, stats: Path, stats_sha256: str, n: int, origin: dict) -> dict:
        return {
            "metric": "fid",
            **self.feature_provenance(n, origin),
            "stats": str(stats),
            "stats_sha256": stats_sha256,
            "precision": "float32 model (TF32 off), float64 statistics",
            "frechet": FRECHET_ROUTE,
        }
