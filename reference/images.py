"""Turning model outputs into course-format PNGs and make_grid pictures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1,1] [N,C,H,W] -> uint8 [N,3,H,W] (gray replicated to RGB)."""
    images = images.detach().float().cpu().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return images


def write_pngs(images: torch.Tensor, folder: Path, first_index: int = 1) -> list[Path]:
    """Write uint8 [N,3,H,W] as RGB PNGs {index:05d}.png numbered from first_index."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = images.permute(0, 2, 3, 1).contiguous().numpy()
    paths = []
    for offset, array in enumerate(arrays):
        path = folder / f"{first_index + offset:05d}.png"
        Image.fromarray(np.ascontiguousarray(array), "RGB").save(path, format="PNG")
        paths.append(path)
    return paths


def save_grid(tiles: torch.Tensor, path: Path, nrow: int, padding: int = 2) -> Path:
    """uint8 [N,3,H,W] tiles, row-major, as one RGB PNG via torchvision's make_grid."""
    grid = make_grid(tiles, nrow=nrow, padding=padding, pad_value=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid.permute(1, 2, 0).contiguous().numpy(), "RGB").save(path, format="PNG")
    return path
