"""The image files of a set (for FID, KID and the integrity checks): listing a folder or zip,
reading bytes, decoding like the course tools.

Both official tools turn a file into a tensor with `Image.open(path).convert('RGB')` then
ToTensor (uint8 HWC -> float32 CHW / 255). `decode_rgb` is exactly the first half; the
division happens on the device (features.py), bit for bit the same.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from grader import files
from grader.errors import GraderError

# The course tools' own list (pytorch-fid's IMAGE_EXTENSIONS): every image kind but GIF.
IMAGE_EXTENSIONS = files.IMAGE_EXTENSIONS - {".gif"}


@dataclass(frozen=True, order=True)
class ZipMember:
    """An image stored in a zip, read without extracting it."""

    zip_path: Path
    name: str

    def __str__(self) -> str:
        return f"{self.zip_path}!{self.name}"


ImageRef = Path | ZipMember


class UnreadableImageError(Exception):
    """An image file that Pillow cannot decode (a submission problem, not the TA's)."""

    def __init__(self, ref: ImageRef, reason: str):
        super().__init__(f"cannot read image {ref}: {reason}")
        self.ref = ref
        self.reason = reason


def _is_image_name(relative: str) -> bool:
    parts = PurePosixPath(relative).parts
    if any(part == "__MACOSX" or part.startswith(".") for part in parts):
        return False  # macOS resource forks (._x.png) and hidden files are not images
    return PurePosixPath(relative).suffix.lower() in IMAGE_EXTENSIONS


def list_images(source: Path | str) -> list[ImageRef]:
    """Images of a folder (recursively) or a zip, sorted by their path inside it."""
    source = Path(source)
    if source.is_dir():
        found = []
        for root, _dirs, files in os.walk(source):
            for name in files:
                path = Path(root) / name
                if _is_image_name(path.relative_to(source).as_posix()):
                    found.append(path)
        refs: list[ImageRef] = sorted(found, key=lambda p: p.relative_to(source).as_posix())
    elif source.is_file() and zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as zf:
            names = [i.filename for i in zf.infolist() if not i.is_dir()]
        refs = [ZipMember(source, n) for n in sorted(names) if _is_image_name(n)]
    elif source.exists():
        raise GraderError(f"{source}: not a folder or a zip file of images")
    else:
        raise GraderError(f"{source}: no such folder or zip file")
    if not refs:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise GraderError(f"{source}: no images found (looked for {exts})")
    return refs


_OPEN_ZIPS: dict[tuple[int, Path], zipfile.ZipFile] = {}


def _open_zip(path: Path) -> zipfile.ZipFile:
    # One handle per process: a handle inherited through fork shares its file offset.
    key = (os.getpid(), path)
    if key not in _OPEN_ZIPS:
        _OPEN_ZIPS[key] = zipfile.ZipFile(path)
    return _OPEN_ZIPS[key]


def read_bytes(ref: ImageRef) -> bytes:
    if isinstance(ref, ZipMember):
        return _open_zip(ref.zip_path).read(ref.name)
    return Path(ref).read_bytes()


def decode_rgb(data: bytes, ref: ImageRef | None = None) -> np.ndarray:
    """uint8 [H, W, 3] exactly as `Image.open(f).convert('RGB')` gives it to ToTensor."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImageError(ref, str(exc)) from exc


def load_rgb(ref: ImageRef) -> np.ndarray:
    try:
        data = read_bytes(ref)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise UnreadableImageError(ref, str(exc)) from exc
    return decode_rgb(data, ref)


def content_digest(refs: Sequence[ImageRef]) -> str:
    """sha256 over the sha256 of each image's bytes, in the given order."""
    digest = hashlib.sha256(f"files:{len(refs)}\n".encode())
    for ref in refs:
        try:
            digest.update(hashlib.sha256(read_bytes(ref)).digest())
        except (OSError, KeyError, zipfile.BadZipFile) as exc:
            raise UnreadableImageError(ref, str(exc)) from exc
    return digest.hexdigest()


def array_digest(arrays: Iterable[np.ndarray]) -> str:
    """sha256 of uint8 images given as pixels (e.g. MNIST digits), shape included."""
    digest = hashlib.sha256(b"pixels\n")
    count = 0
    for array in arrays:
        array = np.ascontiguousarray(array, dtype=np.uint8)
        digest.update(repr(array.shape).encode())
        digest.update(array.tobytes())
        count += 1
    digest.update(f"count:{count}".encode())
    return digest.hexdigest()


def gray_to_rgb(digits: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W] -> [N, H, W, 3], the gray value in each channel.

    This is what a student's RGB PNG of a digit holds (`Image.fromarray(d).convert('RGB')`
    replicates L into R, G and B), so statistics of IDX digits equal those of the PNGs.
    """
    digits = np.asarray(digits, dtype=np.uint8)
    if digits.ndim != 3:
        raise GraderError(f"expected gray images [N, H, W]; got shape {digits.shape}")
    return np.repeat(digits[..., None], 3, axis=-1)


def sort_key(ref: ImageRef) -> tuple[str, str]:
    """Name order: by path, and by member name inside a zip."""
    if isinstance(ref, ZipMember):
        return (str(ref.zip_path), ref.name)
    return (str(ref), "")
