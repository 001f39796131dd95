"""Readers for the local data sets the project uses: MNIST IDX files and image zips.

No downloads, ever: everything is read from files the TA (or the test suite) points at.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from grader.errors import GraderError

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path | str) -> np.ndarray:
    """Read an IDX file (optionally gzipped), e.g. train-images-idx3-ubyte.gz."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise GraderError(f"{path}: not an IDX file (bad magic number)")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=_IDX_DTYPES[data[2]], offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise GraderError(f"{path}: IDX payload has {array.size} values, header says {shape}")
    return array.reshape(shape)


def find_mnist_file(folder: Path, split: str, what: str) -> Path:
    """Locate e.g. train-images-idx3-ubyte(.gz) or train-images.idx3-ubyte in a folder."""
    prefix = "train" if split == "train" else "t10k"
    rank = "idx3" if what == "images" else "idx1"
    for name in (f"{prefix}-{what}-{rank}-ubyte.gz", f"{prefix}-{what}-{rank}-ubyte", f"{prefix}-{what}.{rank}-ubyte"):
        if (folder / name).is_file():
            return folder / name
    raise GraderError(f"no MNIST {split} {what} in {folder} (expected {prefix}-{what}-{rank}-ubyte[.gz])")


def is_mnist_folder(folder: Path) -> bool:
    try:
        find_mnist_file(folder, "train", "images")
        return True
    except GraderError:
        try:
            find_mnist_file(folder, "test", "images")
            return True
        except GraderError:
            return False


def load_mnist(folder: Path | str, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N,28,28], labels uint8 [N]) from a folder of IDX files."""
    folder = Path(folder)
    images = read_idx(find_mnist_file(folder, split, "images"))
    labels = read_idx(find_mnist_file(folder, split, "labels"))
    return images, labels


def center_crop_resize(image: Image.Image, size: int) -> Image.Image:
    """Center square crop then resize, as the HW9 CelebA 64x64 set is made."""
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    square = image.crop((left, top, left + side, top + side))
    return square.resize((size, size), Image.BICUBIC)


def load_image_zip(path: Path | str, limit: int | None = None, size: int | None = None) -> np.ndarray:
    """Images of a zip in name order as uint8 [N,H,W,3]; optionally center-cropped to size."""
    out = []
    with zipfile.ZipFile(path) as zf:
        names = sorted(n for n in zf.namelist() if n.lower().endswith((".jpg", ".jpeg", ".png")))
        for name in names[:limit]:
            with Image.open(io.BytesIO(zf.read(name))) as im:
                im = im.convert("RGB")
                if size is not None:
                    im = center_crop_resize(im, size)
                out.append(np.asarray(im))
    return np.stack(out)
