"""FID identical to the course tools: offline weights, cached features, Fréchet distance.

    engine = FidEngine("pytorch-gan-metrics")           # one per backend, reused
    result = engine.fid(list_images("student/"), Path("mnist.npz"))
    result.fid, result.n, result.provenance, result.warnings

Names are imported on first use: the rubric imports the metric kinds (``metrics.kinds``)
and must not pay for torch when a student only checks formats.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "default_cache_dir": "grader.metrics.cache",
    "FidEngine": "grader.metrics.fid",
    "FidResult": "grader.metrics.fid",
    "small_n_warning": "grader.metrics.fid",
    "ReferenceStats": "grader.metrics.frechet",
    "feature_statistics": "grader.metrics.frechet",
    "frechet_distance": "grader.metrics.frechet",
    "load_stats": "grader.metrics.frechet",
    "reference_stats": "grader.metrics.frechet",
    "save_stats": "grader.metrics.frechet",
    "sqrtm_psd": "grader.metrics.frechet",
    "ImageRef": "grader.image_files",
    "UnreadableImageError": "grader.image_files",
    "ZipMember": "grader.image_files",
    "gray_to_rgb": "grader.image_files",
    "list_images": "grader.image_files",
    "BACKENDS": "grader.metrics.inception",
    "WEIGHTS_FILENAME": "grader.metrics.inception",
    "resolve_weights": "grader.metrics.inception",
}


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
