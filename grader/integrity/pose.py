"""Digits brought to one pose and size, for the copy check's "posed" variants.

A training digit that a student scaled or turned is far from its original pixel by pixel, yet
both come back to nearly one image once each is posed:

- moved so that its ink's centre of mass is the frame's centre,
- turned so that its principal (major) axis of inertia is upright,
- scaled so that the ink's standard deviation along that axis is ``POSE_SD`` px,

all three from the image's own moments, which a turn and a scaling carry along (a copy is posed
as its original was, up to resampling), then blurred a little (``POSE_BLUR``) so that what
resampling leaves does not count. Strokes made one pixel thicker (a 3x3 grey dilation, the "one
pixel" of cv2.dilate or PIL's MaxFilter(3)) are undone by a 3x3 grey erosion of the query
(``thinned``) compared with training digits closed (dilation, then erosion), at their own size
and ``scaled`` down (copies.py); strokes made thinner, by a dilation (``thickened``) compared
with training digits opened.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

POSE_SIZE = 28  # px: the posed frame, MNIST's (784 values, as the raw index)
# MNIST digits are ~20 px tall, 4-6 px standard deviation along the major axis; at 4.375 px
# (5/32 of the frame) long tails stay inside. Measured on 1,000 copies per edit: 24 px
# frames flag 1-5 points fewer turned or scaled copies and bring honest test digits to 0.429
# (0.457 at 28).
POSE_SD = 4.375
POSE_BLUR = 0.75  # px: Gaussian sigma applied after posing
# Images resampled or filtered at once: each takes ~30 KB of float32 temporaries (source, grid,
# coordinates, output), ~60 MB a chunk; 8192 took a 768 MB autograder container past its limit.
CHUNK = 2048


def moments(images: np.ndarray) -> tuple[torch.Tensor, ...]:
    """(cy, cx, angle, spread) per gray image [N, H, W]: centre of mass (pixel rows, columns),
    the major axis's angle from the vertical (radians, in (-pi/2, pi/2]) and the ink's standard
    deviation along it (px). An empty image has centre at the frame's centre and spread 1."""
    f = torch.from_numpy(np.asarray(images, np.float32))
    h, w = f.shape[1:]
    mass = f.sum((1, 2))
    empty = mass <= 0
    mass = torch.where(empty, torch.ones_like(mass), mass)
    ys = torch.arange(h, dtype=torch.float32)
    xs = torch.arange(w, dtype=torch.float32)
    rows, cols = f.sum(2), f.sum(1)
    cy = (rows * ys).sum(1) / mass
    cx = (cols * xs).sum(1) / mass
    dy = ys[None, :] - cy[:, None]
    dx = xs[None, :] - cx[:, None]
    syy = (rows * dy.square()).sum(1) / mass
    sxx = (cols * dx.square()).sum(1) / mass
    sxy = torch.einsum("nhw,nh,nw->n", f, dy, dx) / mass
    angle = 0.5 * torch.atan2(2 * sxy, syy - sxx)
    major = (syy + sxx) / 2 + ((syy - sxx).square() / 4 + sxy.square()).sqrt()
    spread = major.clamp_min(1e-6).sqrt()
    cy = torch.where(empty, torch.full_like(cy, (h - 1) / 2), cy)
    cx = torch.where(empty, torch.full_like(cx, (w - 1) / 2), cx)
    spread = torch.where(empty, torch.ones_like(spread), spread)
    return cy, cx, angle, spread


def posed(images: np.ndarray) -> np.ndarray:
    """Gray uint8 images [N, H, W] -> posed uint8 [N, POSE_SIZE, POSE_SIZE] (see the module doc)."""
    out = np.empty((len(images), POSE_SIZE, POSE_SIZE), np.uint8)
    for s in range(0, len(images), CHUNK):  # filled in place: no list of parts beside the result
        out[s : s + CHUNK] = _posed(images[s : s + CHUNK])
    return out


def _posed(images: np.ndarray) -> np.ndarray:
    h, w = images.shape[1:]
    cy, cx, angle, spread = moments(images)
    step = spread / POSE_SD  # source pixels per posed pixel
    centre = (POSE_SIZE - 1) / 2
    grid = torch.arange(POSE_SIZE, dtype=torch.float32) - centre
    py, px = torch.meshgrid(grid, grid, indexing="ij")
    cos = (torch.cos(angle) * step)[:, None, None]
    sin = (torch.sin(angle) * step)[:, None, None]
    # Posed pixel p (about the centre) reads the source at centre of mass + step * R(angle) p:
    # the posed image's vertical is the source's major axis.
    sy = cy[:, None, None] + cos * py - sin * px
    sx = cx[:, None, None] + sin * py + cos * px
    where = torch.stack([sx * (2 / (w - 1)) - 1, sy * (2 / (h - 1)) - 1], -1)
    source = torch.from_numpy(np.asarray(images, np.float32))[:, None]
    out = F.grid_sample(source, where, mode="bicubic", padding_mode="zeros", align_corners=True)
    out = ndimage.gaussian_filter(out[:, 0].numpy(), (0, POSE_BLUR, POSE_BLUR))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def scaled(images: np.ndarray, factor: float) -> np.ndarray:
    """Gray uint8 images [N, H, W] shrunk by ``factor`` (<= 1) about the frame's centre, same
    frame (bilinear with antialiasing, as PIL's and torchvision's resize)."""
    if not 0 < factor <= 1:
        raise ValueError(f"scaled shrinks: factor {factor} is not in (0, 1]")
    h, w = images.shape[1:]
    size = (round(h * factor), round(w * factor))
    out = np.zeros_like(images)
    top, left = (h - size[0]) // 2, (w - size[1]) // 2
    for s in range(0, len(images), CHUNK):
        source = torch.from_numpy(np.asarray(images[s : s + CHUNK], np.float32))[:, None]
        small = F.interpolate(source, size=size, mode="bilinear", antialias=True, align_corners=False)
        out[s : s + CHUNK, top : top + size[0], left : left + size[1]] = np.clip(
            np.rint(small[:, 0].numpy()), 0, 255
        )
    return out


def thickened(images: np.ndarray) -> np.ndarray:
    """Strokes one pixel thicker on every side: grey dilation with a 3x3 square."""
    return ndimage.grey_dilation(images, size=(1, 3, 3))


def thinned(images: np.ndarray) -> np.ndarray:
    """Strokes one pixel thinner on every side: grey erosion with a 3x3 square."""
    return ndimage.grey_erosion(images, size=(1, 3, 3))
