"""Training data from local files only: MNIST IDX folders and face images (folder or zip)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from grader.datasets import center_crop_resize, is_mnist_folder, load_image_zip, load_mnist
from grader.errors import GraderError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def load_mnist_digits(
    folder: Path | str, split: str = "train"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 [N,1,28,28], labels int64 [N]) of an MNIST IDX folder."""
    images, labels = load_mnist(folder, split)
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def load_image_folder(folder: Path | str, size: int, limit: int | None = None) -> np.ndarray:
    """Images of a folder (sorted by name) as uint8 [N,size,size,3], center-cropped."""
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    out = []
    for path in paths[:limit]:
        with Image.open(path) as im:
            out.append(np.asarray(center_crop_resize(im.convert("RGB"), size)))
    if not out:
        raise GraderError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return np.stack(out)


def load_faces(path: Path | str, size: int = 64, limit: int | None = None) -> torch.Tensor:
    """Face images from a zip or a folder as uint8 [N,3,size,size] (center crop, bicubic)."""
    path = Path(path)
    if path.is_dir():
        images = load_image_folder(path, size, limit)
    elif path.is_file() and path.suffix.lower() == ".zip":
        images = load_image_zip(path, limit=limit, size=size)
    else:
        raise GraderError(f"{path}: expected an image folder or a .zip of images")
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def load_training_images(path: Path | str, limit: int | None = None) -> torch.Tensor:
    """uint8 [N,C,H,W]: MNIST digits (1x28x28) for an IDX folder, else faces (3x64x64)."""
    path = Path(path)
    if not path.exists():
        raise GraderError(f"training data not found: {path}")
    if path.is_dir() and is_mnist_folder(path):
        return load_mnist_digits(path, "train")[0][:limit]
    return load_faces(path, 64, limit)


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0,255] -> float [-1,1]."""
    return images.float().div(127.5).sub(1.0)
