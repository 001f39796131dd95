"""Process grids for tests and benchmarks: real forward diffusion of real images, and the
mistakes students make with them (each a function of the [rows, cols, 3, H, W] tile array)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from grader.grid_synth import (
    forward_diffusion_tiles,
    linear_alpha_bars,
    snapshot_steps,
    tiles_to_grid,
    to_unit,
)


def digit_tiles(digits: np.ndarray, seed: int, **kw) -> np.ndarray:
    return forward_diffusion_tiles(digits, seed=seed, **kw)


def reverse_chain_tiles(images: np.ndarray, seed: int, steps: int = 1000, snapshots: int = 8):
    """A real reverse Markov chain, as a sampler walks it: x_T ~ N(0, I), then
    x_{t-1} ~ q(x_{t-1} | x_t, x_0) with the DDPM posterior mean and variance, i.e. a sampler
    whose denoiser knows the target image. Snapshots are correlated along a row, like a
    student's trajectory. Returns [N, snapshots, 3, H, W] in [0, 1]."""
    x0 = to_unit(images)
    abar = linear_alpha_bars(steps)
    betas = np.linspace(1e-4, 0.02, steps)
    rng = np.random.default_rng(seed)
    wanted = {t: k for k, t in enumerate(snapshot_steps(steps, snapshots))}
    tiles = np.empty((x0.shape[0], snapshots, 3, *x0.shape[2:]), dtype=np.float32)
    x = rng.standard_normal(x0.shape)
    for t in range(steps - 1, -1, -1):
        if t in wanted:
            tiles[:, wanted[t]] = (np.clip(x, -1, 1) + 1) / 2
        if t == 0:
            break
        prev = abar[t - 1]
        mean = (np.sqrt(prev) * betas[t] * x0 + np.sqrt(1 - betas[t]) * (1 - prev) * x) / (
            1 - abar[t]
        )
        var = (1 - prev) / (1 - abar[t]) * betas[t]
        x = mean + np.sqrt(var) * rng.standard_normal(x0.shape)
    return tiles


def reversed_columns(tiles: np.ndarray) -> np.ndarray:
    return tiles[:, ::-1]


def shuffled_columns(tiles: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random column order (not the right one) for the whole grid."""
    cols = tiles.shape[1]
    order = np.arange(cols)
    while np.array_equal(order, np.arange(cols)):
        order = rng.permutation(cols)
    return tiles[:, order]


def all_noise_row(tiles: np.ndarray, row: int, rng: np.random.Generator) -> np.ndarray:
    """One row shows only pure noise (a sampler that never denoised)."""
    out = tiles.copy()
    noise = np.clip(rng.standard_normal((tiles.shape[1], 1, *tiles.shape[3:])), -1, 1)
    out[row] = (noise + 1) / 2
    return out


def all_clean_row(tiles: np.ndarray, row: int) -> np.ndarray:
    """One row repeats its final image in every column."""
    out = tiles.copy()
    out[row] = tiles[row, -1]
    return out


def repeated_row(tiles: np.ndarray, source: int, target: int) -> np.ndarray:
    out = tiles.copy()
    out[target] = tiles[source]
    return out


def transposed(tiles: np.ndarray) -> np.ndarray:
    """Rows hold one snapshot step of all samples (make_grid over [steps, samples])."""
    return tiles.transpose(1, 0, 2, 3, 4)


def padded_tiles(tiles: np.ndarray, pad: int = 2) -> np.ndarray:
    """Tiles of 32x32: MNIST padded to 32 as many DDPM implementations feed their UNet."""
    return np.pad(tiles, [(0, 0)] * 3 + [(pad, pad), (pad, pad)])


def blob_images(count: int, rng: np.random.Generator, size: int = 28) -> np.ndarray:
    """uint8 [count, size, size]: one to three soft bright blobs on black, anywhere."""
    yy, xx = np.mgrid[0:size, 0:size]
    out = np.zeros((count, size, size))
    for i in range(count):
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(4, size - 4, 2)
            sy, sx = rng.uniform(1.5, 6, 2)
            out[i] += np.exp(-((yy - cy) ** 2 / (2 * sy**2) + (xx - cx) ** 2 / (2 * sx**2)))
    return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)


def grid(tiles: np.ndarray, padding: int = 2, **kw) -> Image.Image:
    return tiles_to_grid(tiles, padding=padding, **kw)
