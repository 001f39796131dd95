"""Mode collapse: near-duplicates within one set and, for digits, the class histogram.

A healthy generator's images are spread out: almost no image has another image of the same set
within a few pixels' worth of L2 distance, and the digit classes follow the training
histogram. A collapsed one repeats a few images (near-duplicate share) or draws one or two
digits (total-variation distance from the training histogram, largest class share).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass

import numpy as np
import torch

from grader.integrity.neighbours import Index, as_vectors, build_index, nearest_other_within

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


def nearest_other(
    images: np.ndarray, threshold: float, basis: Index | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(distance to the nearest other image, whether it is < threshold): exact decisions.

    ``basis``: an index (the training set's) whose PCA basis bounds the distances, so that
    none is computed for this set; without it the set's own PCA is used.
    """
    vectors = as_vectors(images)
    if len(vectors) < 2:
        return np.full(len(vectors), np.inf, np.float32), np.zeros(len(vectors), bool)
    if basis is not None and basis.basis.shape[0] == vectors.shape[1]:
        index = basis.with_vectors(vectors)
    else:
        index = build_index(vectors, dims=min(32, len(vectors) - 1))
    found, _ = nearest_other_within(index, threshold)
    return found.d1, found.d1 < threshold


class _ChannelsLast(torch.nn.Module):
    """The digit CNN with each BatchNorm folded into its convolution, run channels_last.

    One gray channel makes NCHW and NHWC the same bytes, but only an input marked
    channels_last sends the convolutions down oneDNN's NHWC path: with the folding, about 2x
    fewer CPU-seconds per digit and the same labels (measured on the 10,000 test digits).
    """

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        model = copy.deepcopy(model).eval()
        for block in model.modules():
            if isinstance(block, torch.nn.Sequential) and len(block) >= 2:
                conv, norm = block[0], block[1]
                if isinstance(conv, torch.nn.Conv2d) and isinstance(norm, torch.nn.BatchNorm2d):
                    block[0], block[1] = fuse_conv_bn_eval(conv, norm), torch.nn.Identity()
        self.model = model.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.contiguous(memory_format=torch.channels_last))


@functools.lru_cache(maxsize=1)
def _digit_classifier() -> torch.nn.Module:
    from reference.classifier import load_digit_classifier

    return _ChannelsLast(load_digit_classifier())


def digit_labels(images: np.ndarray) -> np.ndarray:
    """Labels of uint8 digits [N, 28, 28] by the committed reference classifier."""
    from reference.classifier import classify_digits

    with torch.inference_mode():
        return classify_digits(images, _digit_classifier(), batch_size=1000)[0]


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
    basis: Index | None = None,
) -> Collapse:
    """Near-duplicate share of uint8 images; class statistics when labels are given."""
    distances, near = nearest_other(images, threshold, basis)
    histogram = tv = largest = None
    if labels is not None and len(labels):
        classes = len(reference_histogram) if reference_histogram is not None else 10
        histogram = class_histogram(labels, classes)
        largest = float(histogram.max())
        if reference_histogram is not None:
            tv = tv_distance(histogram, reference_histogram)
    return Collapse(distances, near, histogram, tv, largest)
