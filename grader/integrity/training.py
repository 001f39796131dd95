"""The TA's training data, prepared once for the integrity checks and cached by content.

MNIST IDX files (a folder holding train-images-idx3-ubyte[.gz] and the labels) give 28x28 gray
digits with labels; an images folder or zip gives RGB thumbnails (``size`` px, centre-cropped
as the HW9 set is made) without labels. The prepared arrays are stored under the cache folder,
keyed by the SHA-256 of the source files and the preparation settings, so a second student (or
a second run) loads them in well under a second instead of decoding 60,000 files.
"""

from __future__ import annotations

import hashlib
import json
import threading
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from grader import atomic
from grader.datasets import center_crop_resize, find_mnist_file, is_mnist_folder, load_mnist
from grader.errors import GraderError
from grader.files import remembered_sha256
from grader.image_files import list_images, load_rgb

PREP_VERSION = 1


@dataclass
class TrainingSet:
    images: np.ndarray  # uint8 [N, H, W] (digits) or [N, H, W, 3] (photos)
    labels: np.ndarray | None
    key: str  # content hash of the sources + settings
    _indexes: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def digits(self) -> bool:
        return self.images.ndim == 3

    @property
    def variants(self) -> tuple[str, ...]:
        """The copy-check variants (copies.py) that make sense for these images."""
        from grader.integrity.copies import DIGIT_VARIANTS, PHOTO_VARIANTS

        return DIGIT_VARIANTS if self.digits else PHOTO_VARIANTS

    @property
    def histogram(self) -> np.ndarray | None:
        if self.labels is None:
            return None
        counts = np.bincount(self.labels.astype(np.int64), minlength=10)
        return counts / counts.sum()

    def index(self, reference: str = "pixels"):
        """The neighbour index of the training images as a copy-check reference holds them
        (copies.REFERENCES: as given, posed, closed or opened and posed, blurred); built on first
        use and kept, or, when memory is short (``keeps_every_index``), only the last one built."""
        import torch

        from grader.integrity.copies import reference_images
        from grader.integrity.neighbours import build_index
        from grader.metrics.resources import release_freed_memory

        with self._lock:
            if reference not in self._indexes:
                if not keeps_every_index():
                    self._indexes.clear()  # let the last one go before the next is built
                    release_freed_memory()
                codes = reference_images(self.images, reference).reshape(len(self.images), -1)
                # torch takes only writable arrays (decoded IDX files are read-only views)
                codes = torch.from_numpy(np.require(codes, requirements=["C", "W"]))
                self._indexes[reference] = build_index(codes)
            return self._indexes[reference]

    def indexes(self, variants: tuple[str, ...] | None = None) -> Mapping:
        """Reference name -> index, for every reference the variants (default: all) compare with;
        each index is built when first looked up."""
        from grader.integrity.copies import REFERENCES

        return _Indexes(self, tuple(dict.fromkeys(REFERENCES[v] for v in variants or self.variants)))


def keeps_every_index() -> bool:
    """Whether every index built is kept (not when memory is short: resources.memory_is_short)."""
    from grader.metrics.resources import memory_is_short

    return not memory_is_short()


class _Indexes(Mapping):
    """A training set's indexes by reference name, each built (TrainingSet.index) when looked up."""

    def __init__(self, training: TrainingSet, references: tuple[str, ...]):
        self._training, self._references = training, references

    def __getitem__(self, reference: str):
        if reference not in self._references:
            raise KeyError(reference)
        return self._training.index(reference)

    def __iter__(self):
        return iter(self._references)

    def __len__(self) -> int:
        return len(self._references)


def source_files(path: Path) -> list[Path]:
    """The files whose content defines the training set (hashed into the cache key)."""
    path = Path(path)
    if path.is_dir() and is_mnist_folder(path):
        return [find_mnist_file(path, "train", "images"), find_mnist_file(path, "train", "labels")]
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in list_images(path) if isinstance(p, Path))
    raise GraderError(f"training data not found: {path}")


def _key(path: Path, size: int) -> str:
    parts = {"version": PREP_VERSION, "size": size}
    parts["files"] = [remembered_sha256(p) for p in source_files(path)]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _prepare(path: Path, size: int) -> tuple[np.ndarray, np.ndarray | None]:
    if path.is_dir() and is_mnist_folder(path):
        images, labels = load_mnist(path, "train")
        return np.ascontiguousarray(images), np.ascontiguousarray(labels)
    if path.is_file() and not zipfile.is_zipfile(path):
        raise GraderError(
            f"{path}: training data must be an MNIST folder, an images folder or a zip"
        )
    thumbs = []
    for ref in list_images(path):
        image = Image.fromarray(load_rgb(ref))
        thumbs.append(np.asarray(center_crop_resize(image, size)))
    return np.stack(thumbs), None


def load_training(path: Path | str, cache_dir: Path | None = None, size: int = 32) -> TrainingSet:
    """Training images (and labels for MNIST), from the cache when the sources are unchanged."""
    path = Path(path)
    key = _key(path, size)
    cached = Path(cache_dir) / "integrity" / f"{key}.npz" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        try:
            with np.load(cached, allow_pickle=False) as data:
                labels = data["labels"] if data["labels"].size else None
                return TrainingSet(data["images"], labels, key)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            pass  # unreadable: prepared again and overwritten
    images, labels = _prepare(path, size)
    if cached is not None:
        empty = np.zeros(0, np.uint8)
        atomic.write_with(
            cached,
            lambda f: np.savez(f, images=images, labels=labels if labels is not None else empty),
        )
    return TrainingSet(images, labels, key)


def prepare_submission(images: list[np.ndarray], training: TrainingSet) -> np.ndarray:
    """Decoded RGB submission images in the training set's size and mode (uint8 stack)."""
    if training.digits:
        h, w = training.images.shape[1:3]
        out = np.zeros((len(images), h, w), np.uint8)
        for i, pixels in enumerate(images):
            image = Image.fromarray(pixels).convert("L")
            if image.size != (w, h):
                image = image.resize((w, h), Image.BILINEAR)
            out[i] = np.asarray(image)
        return out
    size = training.images.shape[1]
    return np.stack(
        [np.asarray(center_crop_resize(Image.fromarray(p).convert("RGB"), size)) for p in images]
    )
