"""Mode collapse: near-duplicates within one set and, for digits, the class histogram.

A healthy generator's images are spread out: almost no image has another image of the same set
within a few pixels' worth of L2 distance, and the digit classes follow the training
histogram. A collapsed one repeats a few images (near-duplicate share) or draws one or two
digits (total-variation distance from the training histogram, largest class share).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.integrity.neighbours import as_vectors, build_index, refine, search

# Pixel L2 (values in [0, 1]) under which two images of one set count as near-duplicates:
# 1.0 is an RMS difference of 0.036 per pixel on a 28x28 digit. Among 2,000 MNIST test digits
# the closest pair is 1.22 apart (benchmarks/bench_integrity.py measures the honest sets).
NEAR_DUPLICATE_L2 = 1.0


@dataclass
class Collapse:
    nearest_other: np.ndarray  # per image: distance to its nearest other image of the set
    near_duplicate: np.ndarray  # bool per image
    histogram: np.ndarray | None  # class shares (digits), or None
    tv_distance: float | None
    largest_class_share: float | None

    @property
    def near_duplicate_share(self) -> float:
        return float(self.near_duplicate.mean()) if len(self.near_duplicate) else 0.0


def nearest_other(images: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(distance to the nearest other image, whether it is < threshold): exact decisions.

    Searching the set against itself, the nearest is the image itself (or an identical one),
    so the second-nearest is the nearest other image.
    """
    vectors = as_vectors(images)
    if len(vectors) < 2:
        return np.full(len(vectors), np.inf, np.float32), np.zeros(len(vectors), bool)
    index = build_index(vectors, dims=min(32, len(vectors) - 1))
    found = search(index, vectors)
    low = np.minimum(found.d2, found.bound)
    unsettled = np.nonzero((found.d2 >= threshold) & (low < threshold))[0]
    refine(index, vectors, found, unsettled)
    return found.d2, found.d2 < threshold


def class_histogram(labels: np.ndarray, classes: int = 10) -> np.ndarray:
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=classes)[:classes]
    return counts / max(1, counts.sum())


def tv_distance(p: np.ndarray, q: np.ndarray) -> float:
    return float(0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum())


def check_collapse(
    images: np.ndarray,
    labels: np.ndarray | None = None,
    reference_histogram: np.ndarray | None = None,
    threshold: float = NEAR_DUPLICATE_L2,
) -> Collapse:
    """Near-duplicate share of uint8 images; class statistics when labels are given."""
    distances, near = nearest_other(images, threshold)
    histogram = tv = largest = None
    if labels is not None and len(labels):
        classes = len(reference_histogram) if reference_histogram is not None else 10
        histogram = class_histogram(labels, classes)
        largest = float(histogram.max())
        if reference_histogram is not None:
            tv = tv_distance(histogram, reference_histogram)
    return Collapse(distances, near, histogram, tv, largest)
