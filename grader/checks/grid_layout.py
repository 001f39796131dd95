"""Find the tiles of a process grid: torchvision ``make_grid``'s layout, read from pixels.

make_grid puts ``padding`` pixels of one colour (``pad_value``) on every side of every tile,
so a padded grid of R x C tiles of w x h is C(w+p)+p wide and R(h+p)+p high, and its padding
lines are rows and columns of one colour at a fixed period. Without padding only the size
tells the layout, so such a reading is a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from grader.artifacts import ProcessGridArtifact


UNIFORM_TOLERANCE = 2  # grey levels a padding line may vary (PNG is exact; this forgives little)
MAX_PADDING = 16
MIN_TILE = 4


def count_words(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class Layout:
    rows: int
    cols: int
    tile_w: int
    tile_h: int
    padding: int
    width: int
    height: int
    pad_value: float | None = None  # None: no padding, or padding not seen (guessed layout)

    def matches(self, spec: ProcessGridArtifact) -> bool:
        return (self.rows, self.cols, (self.tile_w, self.tile_h)) == (
            spec.rows,
            spec.cols,
            tuple(spec.tile),
        )

    def describe(self, size: bool = True) -> str:
        pad = f"with {self.padding}-pixel padding" if self.padding else "without padding"
        text = (
            f"{count_words(self.rows, 'row')} x {count_words(self.cols, 'column')} of "
            f"{self.tile_w}x{self.tile_h} tiles {pad}"
        )
        return f"{text} ({self.width}x{self.height} pixels)" if size else text

    def as_dict(self, ok: bool = True) -> dict:
        return {
            "ok": ok,
            "rows": self.rows,
            "cols": self.cols,
            "tile": (self.tile_w, self.tile_h),
            "padding": self.padding,
            "pad_value": self.pad_value,
            "image_size": (self.width, self.height),
        }


def expected_sizes(spec: ProcessGridArtifact) -> list[tuple[int, int, int]]:
    """(width, height, padding) for each allowed padding, as make_grid lays the tiles out."""
    tw, th = spec.tile
    return [
        (spec.cols * (tw + p) + p, spec.rows * (th + p) + p, p) for p in sorted(set(spec.paddings))
    ]


def line_profile(pixels: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row (axis 0) or column (axis 1): is it one colour, and which grey level."""
    other = (1, 2) if axis == 0 else (0, 2)
    hi = pixels.max(axis=other).astype(np.int16)
    lo = pixels.min(axis=other).astype(np.int16)
    return hi - lo <= UNIFORM_TOLERANCE, (hi + lo) / 2.0


def padding_ok(profile: tuple[np.ndarray, np.ndarray], count: int, step: int, padding: int) -> bool:
    """Are the padding lines of `count` tiles spaced `step` apart all one, shared colour?"""
    uniform, value = profile
    lines = (np.arange(count + 1)[:, None] * step + np.arange(padding)[None, :]).ravel()
    return (
        bool(uniform[lines].all())
        and float(np.abs(value[lines] - value[0]).max()) <= UNIFORM_TOLERANCE
    )


def _axis_candidates(
    length: int, profile: tuple[np.ndarray, np.ndarray]
) -> dict[int, tuple[int, int]]:
    """padding -> (tile count, step) with the most tiles whose padding lines are uniform."""
    uniform, _ = profile
    found = {}
    for padding in range(1, min(MAX_PADDING, length // 3) + 1):
        if not uniform[padding - 1]:
            break  # make_grid's padding starts at pixel 0: a wider padding cannot fit either
        for step in range(padding + MIN_TILE, length - padding + 1):
            if (length - padding) % step == 0:
                count = (length - padding) // step
                if padding_ok(profile, count, step, padding):
                    found[padding] = (count, step)
                    break
    return found


def discover_layout(pixels: np.ndarray) -> Layout | None:
    """The padded tile layout that explains the uniform lines of the image, if any."""
    height, width = pixels.shape[:2]
    rows_profile, cols_profile = line_profile(pixels, 0), line_profile(pixels, 1)
    by_rows = _axis_candidates(height, rows_profile)
    by_cols = _axis_candidates(width, cols_profile)
    best = None
    for padding in by_rows.keys() & by_cols.keys():
        (rows, ystep), (cols, xstep) = by_rows[padding], by_cols[padding]
        if rows * cols < 2:
            continue
        key = (rows * cols, padding)
        if best is None or key > best[0]:
            layout = Layout(
                rows,
                cols,
                xstep - padding,
                ystep - padding,
                padding,
                width,
                height,
                float(rows_profile[1][0]),
            )
            best = (key, layout)
    return None if best is None else best[1]


def guess_unpadded(width: int, height: int, spec: ProcessGridArtifact) -> Layout | None:
    tw, th = spec.tile
    if width % tw == 0 and height % th == 0:
        return Layout(height // th, width // tw, tw, th, 0, width, height)
    if width % spec.cols == 0 and height % spec.rows == 0:
        return Layout(
            spec.rows, spec.cols, width // spec.cols, height // spec.rows, 0, width, height
        )
    return None


def tile_stack(lum: np.ndarray, layout: Layout) -> np.ndarray:
    """[rows, cols, tile_h, tile_w] views of the tiles."""
    p, th, tw = layout.padding, layout.tile_h, layout.tile_w
    body = lum[p : p + layout.rows * (th + p), p : p + layout.cols * (tw + p)]
    blocks = body.reshape(layout.rows, th + p, layout.cols, tw + p)[:, :th, :, :tw]
    return blocks.transpose(0, 2, 1, 3)
