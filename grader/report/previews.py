"""Preview grids of an image set, written at grading time so reports never need the images.

The sample is a pure function of (seed, sorted file names): the same submission gives the
same grid bytes on every run and every machine, and a report can be re-rendered later
from the record alone.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

GRIDS = (("grid16.png", 4), ("grid64.png", 8))  # file name, tiles per side
PADDING = 2  # as torchvision's make_grid
PAD_VALUE = 128  # grey: tiles stay apart on MNIST's black backgrounds
MAX_TILE_SOURCE_PIXELS = 4096 * 4096  # skip decompression bombs by their header


def keep_previews(
    sources: Sequence[Path], dest: Path, *, copy_as: str | None, relative_to: Path
) -> list[str]:
    """Keep what a report shows of one artifact under `dest`: sample grids of an image set
    (`copy_as` None) or a copy of its one file named `copy_as` + its suffix. Returns the
    kept files as POSIX paths relative to `relative_to` (the student's folder)."""
    if not sources:
        return []
    if copy_as is None:
        written = write_previews(sources, dest)
    else:
        dest.mkdir(parents=True, exist_ok=True)
        written = [dest / f"{copy_as}{Path(sources[0]).suffix.lower()}"]
        shutil.copyfile(sources[0], written[0])
    return [p.relative_to(relative_to).as_posix() for p in written]


def write_previews(
    images: Sequence[Path], out_dir: Path, *, seed: int = 0, tile: int | None = None
) -> list[Path]:
    """Write grid16.png (4x4) and grid64.png (8x8) of a deterministic sample of `images`.

    Tiles are `tile` x `tile` pixels, or the size of the first readable sampled image.
    Unreadable images are skipped (the checks report them); missing tiles stay grey.
    Returns the paths written: none when no image could be read.
    """
    order = _sample_order(images, seed)
    needed = max(side * side for _, side in GRIDS)
    tiles = list(_readable(order, needed))
    if not tiles:
        return []
    size = (tile, tile) if tile else tiles[0].size
    tiles = [t if t.size == size else t.resize(size, Image.Resampling.BICUBIC) for t in tiles]

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, side in GRIDS:
        path = out_dir / name
        _grid(tiles[: side * side], side, size).save(path, format="PNG")
        written.append(path)
    return written


def _sample_order(images: Sequence[Path], seed: int) -> list[Path]:
    """A permutation of the images seeded by `seed` and the sorted file names only.

    Names, not full paths: the same submission unpacked in another folder samples the same.
    """
    paths = sorted((Path(p) for p in images), key=lambda p: (p.name, str(p)))
    digest = hashlib.sha256(str(seed).encode())
    for p in paths:
        digest.update(b"\0" + p.name.encode("utf-8", "surrogateescape"))
    rng = np.random.default_rng(int.from_bytes(digest.digest()[:8], "big"))
    return [paths[i] for i in rng.permutation(len(paths))]


def _readable(paths: Sequence[Path], limit: int) -> Iterator[Image.Image]:
    count = 0
    for path in paths:
        if count == limit:
            return
        image = _open_rgb(path)
        if image is not None:
            count += 1
            yield image


def _open_rgb(path: Path) -> Image.Image | None:
    try:
        with Image.open(path) as im:
            width, height = im.size
            if width * height > MAX_TILE_SOURCE_PIXELS or width == 0 or height == 0:
                return None
            im.load()
            return im.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def _grid(tiles: list[Image.Image], side: int, size: tuple[int, int]) -> Image.Image:
    w, h = size
    canvas = Image.new(
        "RGB",
        (side * (w + PADDING) + PADDING, side * (h + PADDING) + PADDING),
        (PAD_VALUE,) * 3,
    )
    for i, tile in enumerate(tiles):
        row, col = divmod(i, side)
        canvas.paste(tile, (PADDING + col * (w + PADDING), PADDING + row * (h + PADDING)))
    return canvas
