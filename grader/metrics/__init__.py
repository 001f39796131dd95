"""FID identical to the course tools: offline weights, cached features, Fréchet distance.

    engine = FidEngine("pytorch-gan-metrics")           # one per backend, reused
    result = engine.fid(list_images("student/"), Path("mnist.npz"))
    result.fid, result.n, result.provenance, result.warnings
"""

from grader.metrics.cache import default_cache_dir
from grader.metrics.fid import FidEngine, FidResult, small_n_warning
from grader.metrics.frechet import (
    ReferenceStats,
    feature_statistics,
    frechet_distance,
    frechet_distance_to_reference,
    load_stats,
    reference_stats,
    save_stats,
    sqrtm_psd,
)
from grader.metrics.images import (
    ImageRef,
    UnreadableImageError,
    ZipMember,
    gray_to_rgb,
    list_images,
)
from grader.metrics.inception import BACKENDS, WEIGHTS_FILENAME, resolve_weights

__all__ = [
    "BACKENDS",
    "WEIGHTS_FILENAME",
    "FidEngine",
    "FidResult",
    "ImageRef",
    "ReferenceStats",
    "UnreadableImageError",
    "ZipMember",
    "default_cache_dir",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_to_reference",
    "gray_to_rgb",
    "list_images",
    "load_stats",
    "reference_stats",
    "resolve_weights",
    "save_stats",
    "small_n_warning",
    "sqrtm_psd",
]
