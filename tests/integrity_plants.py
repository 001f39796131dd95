"""Planted integrity cases built by code: altered training copies, mixtures, collapsed sets.

Shared by tests/test_integrity*.py and benchmarks/bench_integrity.py. Images are uint8 [N, H, W].
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

from grader.integrity.copies import shift


def _each(images: np.ndarray, fn) -> np.ndarray:
    return np.stack([np.asarray(fn(Image.fromarray(a))) for a in images])


def noise(images: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    noisy = images.astype(np.float64) + rng.normal(0, sigma * 255, images.shape)
    return np.clip(noisy, 0, 255).round().astype(np.uint8)


def shift_1px(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    moves = np.array([(1, 0), (-1, 0), (0, 1), (0, -1)])[rng.integers(0, 4, len(images))]
    return shift(images, moves)


def brightness(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    factor = rng.choice([0.9, 1.1], len(images)).reshape(-1, *[1] * (images.ndim - 1))
    return np.clip(images * factor, 0, 255).round().astype(np.uint8)


def jpeg(images: np.ndarray, quality: int = 75) -> np.ndarray:
    def encode(image: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        return Image.open(io.BytesIO(buffer.getvalue())).convert(image.mode)

    return _each(images, encode)


def rotate(images: np.ndarray, degrees: float = 10) -> np.ndarray:
    return _each(images, lambda im: im.rotate(degrees, resample=Image.BILINEAR))


def blur(images: np.ndarray, radius: float = 1.0) -> np.ndarray:
    return _each(images, lambda im: im.filter(ImageFilter.GaussianBlur(radius)))


def scale(images: np.ndarray, factor: float) -> np.ndarray:
    """Each image resized by ``factor`` about its frame's centre (bilinear), same frame size."""

    def resize(im: Image.Image) -> Image.Image:
        w, h = im.size
        big = im.resize((round(w * factor), round(h * factor)), Image.BILINEAR)
        out = Image.new(im.mode, (w, h))
        out.paste(big, ((w - big.size[0]) // 2, (h - big.size[1]) // 2))
        return out

    return _each(images, resize)


def thicker(images: np.ndarray) -> np.ndarray:
    """Strokes one pixel thicker on every side (PIL's MaxFilter(3), cv2.dilate with a 3x3)."""
    return _each(images, lambda im: im.filter(ImageFilter.MaxFilter(3)))


def thinner(images: np.ndarray) -> np.ndarray:
    """Strokes one pixel thinner on every side (PIL's MinFilter(3), cv2.erode with a 3x3)."""
    return _each(images, lambda im: im.filter(ImageFilter.MinFilter(3)))


def augmented(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An honest student's data augmentation: each image scaled by 0.8-1.2, turned by up to
    25 degrees, and a third each made thicker, thinner or left as is."""
    out = []
    for image in images:
        im = Image.fromarray(scale(image[None], rng.uniform(0.8, 1.2))[0])
        im = im.rotate(rng.uniform(-25, 25), resample=Image.BILINEAR)
        stroke = rng.integers(0, 3)
        if stroke:
            im = im.filter(ImageFilter.MaxFilter(3) if stroke == 1 else ImageFilter.MinFilter(3))
        out.append(np.asarray(im))
    return np.stack(out)


def alterations(rng: np.random.Generator) -> dict:
    """Name -> function(training images) -> altered copies (the planted kinds)."""
    return {
        "exact": lambda x: x.copy(),
        "noise 0.05": lambda x: noise(x, 0.05, rng),
        "shift 1px": lambda x: shift_1px(x, rng),
        "brightness +-10%": lambda x: brightness(x, rng),
        "jpeg q75": jpeg,
        "flip": lambda x: x[:, :, ::-1].copy(),
        "thinner strokes": thinner,
    }


def partial_catches(rng: np.random.Generator) -> dict:
    """Alterations of which only a share of the copies is flagged (the posed, redrawn and
    blurred variants of copies.py): enough at a 5% share of a 10,000-image set, not image by
    image."""
    return {
        "rotate 5 deg": lambda x: rotate(x, 5),
        "rotate 10 deg": rotate,
        "rotate -10 deg": lambda x: rotate(x, -10),
        "rotate 25 deg": lambda x: rotate(x, 25),
        "scale 0.8": lambda x: scale(x, 0.8),
        "scale 1.2": lambda x: scale(x, 1.2),
        "thicker strokes": thicker,
        "scale 1.1, rotate 20 deg, thicker": lambda x: thicker(rotate(scale(x, 1.1), 20)),
        "scale 0.85, rotate -20 deg, thicker": lambda x: thicker(rotate(scale(x, 0.85), -20)),
        "scale 0.8, rotate 25 deg, thicker": lambda x: thicker(rotate(scale(x, 0.8), 25)),
        "blur r=1": blur,
        "rotate -20 deg, thinner": lambda x: thinner(rotate(x, -20)),
        "rotate 10 deg, thinner": lambda x: thinner(rotate(x, 10)),
        "scale 1.2, rotate 25 deg, thinner": lambda x: thinner(rotate(scale(x, 1.2), 25)),
        "scale 0.8, thinner": lambda x: thinner(scale(x, 0.8)),
        "scale 0.85, rotate -20 deg, thinner": lambda x: thinner(rotate(scale(x, 0.85), -20)),
    }


def combinations() -> dict:
    """Every scaling x turn x stroke edit of a grid (bench_integrity.py --sweep): what a
    student who copies and then augments by hand might do."""
    kinds = {}
    for stroke_name, stroke in (("thinner", thinner), ("thicker", thicker)):
        for factor in (0.8, 0.9, 1.1, 1.2):
            for degrees in (-25, -15, 15, 25):
                kinds[f"scale {factor}, rotate {degrees} deg, {stroke_name}"] = (
                    lambda x, f=factor, d=degrees, s=stroke: s(rotate(scale(x, f), d))
                )
    return kinds


def known_misses(rng: np.random.Generator) -> dict:
    """Edits not caught enough yet (bench_integrity.py: 0-4% of such copies flagged)."""
    return {
        "blur r=2": lambda x: blur(x, 2.0),
        "noise 32/255": lambda x: noise(x, 32 / 255, rng),
    }


def mix(honest: np.ndarray, copies: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """honest images with the first len(copies) replaced by copies, then shuffled."""
    out = honest.copy()
    out[: len(copies)] = copies
    return out[rng.permutation(len(out))]


def repeated(images: np.ndarray, distinct: int, total: int) -> np.ndarray:
    """A collapsed set: ``distinct`` images repeated to ``total``."""
    return np.resize(images[:distinct], (total, *images.shape[1:]))
