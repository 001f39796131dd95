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
    "default_cache_dir": "cache",
    "FidEngine": "fid",
    "FidResult": "fid",
    "small_n_warning": "fid",
    "ReferenceStats": "frechet",
    "feature_statistics": "frechet",
    "frechet_distance": "frechet",
    "load_stats": "frechet",
    "reference_stats": "frechet",
    "save_stats": "frechet",
    "sqrtm_psd": "frechet",
    "ImageRef": "images",
    "UnreadableImageError": "images",
    "ZipMember": "images",
    "gray_to_rgb": "images",
    "list_images": "images",
    "BACKENDS": "inception",
    "WEIGHTS_FILENAME": "inception",
    "resolve_weights": "inception",
}


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
