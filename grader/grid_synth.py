"""Build diffusion-process grids from real images by running the forward process.

A reverse DDPM trajectory and the forward process share their marginals,
x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, so noising real digits at the snapshot steps
gives a process grid with the noise levels a correct submission shows. The grid is laid out by
torchvision's own ``make_grid`` and quantised exactly as ``save_image`` does, so it has the
layout and pixel values a student's ``save_image(..., nrow=8)`` produces.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def snapshot_steps(steps: int = 1000, snapshots: int = 8) -> list[int]:
    """Steps shown left to right: the total split into snapshots-1 equal parts, noise first.

    1000 steps, 8 snapshots -> [999, 857, 714, 571, 429, 286, 143, 0].
    """
    if snapshots < 2 or steps < snapshots:
        raise ValueError(f"need steps >= snapshots >= 2, got steps={steps}, snapshots={snapshots}")
    last = steps - 1
    return [last - (k * last) // (snapshots - 1) for k in range(snapshots)]


def linear_alpha_bars(
    steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02
) -> np.ndarray:
    """abar_t = prod_{s<=t} (1 - beta_s) for the DDPM paper's linear beta schedule."""
    betas = np.linspace(beta_start, beta_end, steps, dtype=np.float64)
    return np.cumprod(1.0 - betas)


def to_unit(images: np.ndarray) -> np.ndarray:
    """uint8 [N,H,W] or [N,H,W,3] -> float64 [N,C,H,W] in [-1, 1], C = 1 or 3."""
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] == 3:
        x = x.transpose(0, 3, 1, 2)
    else:
        raise ValueError(f"expected images [N,H,W] or [N,H,W,3], got shape {x.shape}")
    return x.astype(np.float64) / 127.5 - 1.0


def forward_diffusion_tiles(
    images: np.ndarray,
    *,
    steps: int = 1000,
    snapshots: int = 8,
    seed: int = 0,
    t_values: list[int] | None = None,
) -> np.ndarray:
    """Tiles [N, snapshots, 3, H, W] in [0, 1]: row n is image n noised at each snapshot step.

    Each tile draws its own eps. Grayscale images are noised in one channel (as an MNIST model
    samples) and replicated to RGB afterwards. Values are clamped to [-1, 1] and mapped to
    [0, 1], as a student's ``(x.clamp(-1, 1) + 1) / 2`` before ``save_image``.
    """
    x0 = to_unit(images)
    abar = linear_alpha_bars(steps)
    ts = snapshot_steps(steps, snapshots) if t_values is None else list(t_values)
    rng = np.random.default_rng(seed)
    tiles = np.empty((x0.shape[0], len(ts), 3, *x0.shape[2:]), dtype=np.float32)
    for k, t in enumerate(ts):
        eps = rng.standard_normal(x0.shape)
        xt = np.sqrt(abar[t]) * x0 + np.sqrt(1.0 - abar[t]) * eps
        tiles[:, k] = (np.clip(xt, -1.0, 1.0) + 1.0) / 2.0  # broadcasts one channel to three
    return tiles


def tiles_to_grid(
    tiles: np.ndarray, *, padding: int = 2, pad_value: float = 0.0, nrow: int | None = None
) -> Image.Image:
    """[R, C, 3, H, W] in [0, 1] -> RGB image by torchvision make_grid (row r = sample r).

    nrow defaults to C (one sample per grid row); quantisation is save_image's.
    """
    import torch
    from torchvision.utils import make_grid

    rows, cols = tiles.shape[:2]
    batch = torch.from_numpy(np.ascontiguousarray(tiles, dtype=np.float32)).reshape(
        rows * cols, *tiles.shape[2:]
    )
    grid = make_grid(
        batch, nrow=cols if nrow is None else nrow, padding=padding, pad_value=pad_value
    )
    array = grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()
    return Image.fromarray(array)


def make_forward_diffusion_grid(
    digits: np.ndarray, *, padding: int = 2, steps: int = 1000, snapshots: int = 8, seed: int = 0
) -> Image.Image:
    """A valid HW3 process grid: one row per digit (uint8 [8,28,28]), noise left, digit right.

    8 digits, padding 2 -> 242x242 RGB; padding 0 -> 224x224.
    """
    tiles = forward_diffusion_tiles(digits, steps=steps, snapshots=snapshots, seed=seed)
    return tiles_to_grid(tiles, padding=padding)
