"""Check a diffusion-process grid: layout, noise trajectory, distinct rows, digit content.

The grid is what torchvision's ``make_grid`` draws: ``rows`` samples, each shown at ``cols``
snapshots from pure noise to the final image, tiles separated by ``padding`` pixels of one
colour on every side. The check finds the tiles, measures how noisy each one is, and says in
the student's terms what is wrong: the layout, the direction, the order of the columns, rows
that never leave noise or never were noise, repeated rows, final images that are no digits.
Finding the tiles is grid_layout.py; judging a digit is grid_digits.py.

The noise level of a tile is a ratio: an estimate of the white-noise standard deviation
divided by the tile's own standard deviation. Pure noise reads about 1.0 whatever the value
range the student saved (clamped, min-max scaled, grayscale or RGB); a clean image reads
close to 0. The noise estimate is a trimmed mean of the absolute mixed second differences
x[i,j] - x[i,j+1] - x[i+1,j] + x[i+1,j+1]: straight horizontal and vertical edges cancel in
it, and trimming the largest 20 % drops what corners and diagonal strokes leave.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from grader.checks.grid_digits import digit_problem
from grader.checks.grid_layout import (
    Layout,
    count_words,
    discover_layout,
    expected_sizes,
    guess_unpadded,
    line_profile,
    padding_ok,
    tile_stack,
)
from grader.findings import Finding, compact_list, compact_ranges, error, warning

if TYPE_CHECKING:
    from grader.artifacts import ProcessGridArtifact

# A reference digit classifier, when one exists: uint8 tiles [N, H, W] (white digit on black)
# -> [N] confidence in [0, 1] that each tile is a digit (e.g. the top softmax probability).
DigitClassifier = Callable[[np.ndarray], np.ndarray]

MAX_PIXELS = 50_000_000  # a process grid is a few hundred pixels a side; refuse bombs
LOSSY_FORMATS = {"JPEG", "MPO", "WEBP"}

# Noise levels (see the module docstring). Measured on forward-diffused MNIST grids (linear
# schedule, 1000 steps): pure clamped noise 1.04 +- 0.04 per tile, t=286 0.88, t=143 0.55,
# the final digit 0.02 (never above 0.06).
PURE_NOISE = 1.0
NOISE_MIN = 0.75  # a tile at least this noisy looks like pure noise
CLEAN_MAX = 0.3  # a tile at most this noisy looks like a finished image
# The estimate scatters by about 0.04 per tile (0.06 between two tiles), so rises smaller than
# these are never called a wrong order, whatever the rubric's relative tolerance.
ROW_RISE_FLOOR = 0.3  # one row (8 tiles)
COLUMN_RISE_FLOOR = 0.12  # column medians over the rows
# In the first half of a linear schedule the tiles are all near-pure noise, so their order is
# read from their similarity (correlation) to the row's final image instead: it grows from 0.00
# to 1 (forward-diffused MNIST, medians of 8 rows: 0.00 0.01 0.05 0.11 0.25 0.48 0.84 1) and
# scatters by 0.015; a drop larger than this between two columns is a wrong order.
SIMILARITY_DROP_FLOOR = 0.08
STD_FLOOR = 0.025  # on [0, 1]; a nearly flat tile is not called noise for its faint grain
TRIM = 0.8  # fraction of the smallest absolute differences kept
# E|Z| over the smallest TRIM of |Z|, Z standard normal: makes the trimmed mean a sigma.
_Q = NormalDist().inv_cdf(0.5 + TRIM / 2)
_TRIMMED_ABS_MEAN = 2 * (NormalDist().pdf(0) - NormalDist().pdf(_Q)) / TRIM

SAME_IMAGE = 0.01  # mean absolute difference on [0, 1] below which two final images are one

CLASSIFIER_MIN = 0.5


@dataclass
class GridReport:
    findings: list[Finding]
    # ok (the rubric's layout, tiles usable), rows, cols, tile (w, h), padding, pad_value,
    # image_size (w, h); when not ok, what was seen instead (rows ... None if nothing was).
    layout: dict
    noise: list[list[float]] | None  # rows x cols noise levels; None when the layout failed

    @property
    def ok(self) -> bool:
        return not any(f.severity.fails for f in self.findings)


def check_process_grid(
    path: Path,
    spec: ProcessGridArtifact,
    *,
    artifact: str | None = None,
    shown: str | None = None,
    digit_classifier: DigitClassifier | None = None,
) -> GridReport:
    """Check one process-grid image against its rubric entry; never raises for bad content."""
    path = Path(path)
    say = _Say(artifact, shown or path.name)
    pixels, fmt = _read_pixels(path, spec, say)
    if pixels is None:
        return GridReport(say.findings, _no_layout(None), None)

    height, width = pixels.shape[:2]
    layout, seen = _find_layout(pixels, spec, say, lossy=fmt in LOSSY_FORMATS)
    if layout is None:
        seen_dict = _no_layout((width, height)) if seen is None else seen.as_dict(ok=False)
        return GridReport(say.findings, seen_dict, None)

    tiles = tile_stack(_luminance(pixels), layout)
    noise = noise_levels(tiles)
    _check_trajectory(noise, tiles, spec, say, digit_classifier)
    return GridReport(say.findings, layout.as_dict(), np.round(noise, 3).tolist())


# ---------------------------------------------------------------- findings


class _Say:
    """Collects the Findings of one grid; every one carries the artifact and the file name."""

    def __init__(self, artifact: str | None, shown: str):
        self.artifact, self.shown = artifact, shown
        self.findings: list[Finding] = []

    def error(self, code: str, message: str, hint: str) -> None:
        self.findings.append(
            error(f"grid.{code}", message, artifact=self.artifact, path=self.shown, hint=hint)
        )

    def warning(self, code: str, message: str, hint: str) -> None:
        self.findings.append(
            warning(f"grid.{code}", message, artifact=self.artifact, path=self.shown, hint=hint)
        )


SAVE_HINT = (
    "put each sample's snapshots in one row and save all tiles with "
    "torchvision.utils.save_image(tiles, 'process.png', nrow=<snapshots per row>)"
)


def _rows_text(rows: list[int]) -> str:
    """1-based row numbers: 'row 3', 'rows 1-8'."""
    return f"{'row' if len(rows) == 1 else 'rows'} {compact_ranges(r + 1 for r in rows)}"


def _and(items) -> str:
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _span(values: np.ndarray) -> str:
    lo, hi = float(np.min(values)), float(np.max(values))
    return f"{lo:.2f}" if round(lo, 2) == round(hi, 2) else f"{lo:.2f}-{hi:.2f}"


# ---------------------------------------------------------------- reading


def _read_pixels(
    path: Path, spec: ProcessGridArtifact, say: _Say
) -> tuple[np.ndarray | None, str | None]:
    """(uint8 [H, W, C] with C 1 or 3, Pillow's format name), or (None, None) with a finding."""
    hint = "save the grid as a PNG file, e.g. with torchvision.utils.save_image"
    try:
        with Image.open(path) as im:
            fmt, (w, h) = im.format, im.size
            if w * h > MAX_PIXELS:
                say.error(
                    "too_large",
                    f"{say.shown} declares {w}x{h} pixels; "
                    "a process grid is a few hundred pixels a side",
                    hint,
                )
                return None, None
            im.seek(0)
            im.load()
            pixels = _to_array(im)
    except FileNotFoundError:
        say.error("unreadable", f"{say.shown} was not found", hint)
        return None, None
    # Pillow raises many types for damaged files (OSError, SyntaxError, ValueError, struct.error,
    # DecompressionBombError, ...); each is the student's broken file, not a grader failure.
    except Exception as exc:  # noqa: BLE001
        reason = str(exc).replace(str(path), say.shown) or type(exc).__name__
        say.error("unreadable", f"{say.shown} could not be read as an image ({reason})", hint)
        return None, None
    if fmt not in spec.formats:
        say.error(
            "format",
            f"{say.shown} is a {fmt or 'unknown'} image; expected {' or '.join(spec.formats)}",
            hint,
        )
    return pixels, fmt


def _to_array(im: Image.Image) -> np.ndarray:
    if im.mode.startswith("I;16"):
        gray = np.asarray(im, dtype=np.float64) / 257.0
    elif im.mode in ("I", "F"):
        gray = np.clip(np.asarray(im, dtype=np.float64), 0, 255)
    elif im.mode in ("L", "LA", "La"):
        gray = np.asarray(im.convert("L"), dtype=np.float64)
    else:
        return np.asarray(im.convert("RGB"))
    return np.round(gray).astype(np.uint8)[..., None]


def _luminance(pixels: np.ndarray) -> np.ndarray:
    """float32 [H, W] in [0, 1]; Rec. 601 weights, as Pillow's convert('L')."""
    if pixels.shape[2] == 1:
        return pixels[..., 0].astype(np.float32) / 255.0
    return (pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255.0


# ---------------------------------------------------------------- layout


def _no_layout(size: tuple[int, int] | None) -> dict:
    keys = ("rows", "cols", "tile", "padding", "pad_value")
    return {"ok": False, **dict.fromkeys(keys), "image_size": size}


def _find_layout(
    pixels: np.ndarray, spec: ProcessGridArtifact, say: _Say, *, lossy: bool = False
) -> tuple[Layout | None, Layout | None]:
    """(the layout to check, what was seen): the first is None after a layout finding."""
    height, width = pixels.shape[:2]
    tw, th = spec.tile
    for w, h, padding in expected_sizes(spec):
        if (width, height) != (w, h):
            continue
        if padding == 0 or lossy:
            # Lossy compression rings into the padding, so its lines cannot be checked; the
            # exact make_grid size is evidence enough (the format finding says the rest).
            layout = Layout(spec.rows, spec.cols, tw, th, padding, width, height)
            return layout, layout
        rows_profile = line_profile(pixels, 0)
        if padding_ok(rows_profile, spec.rows, th + padding, padding) and padding_ok(
            line_profile(pixels, 1), spec.cols, tw + padding, padding
        ):
            pad_value = float(rows_profile[1][0])
            layout = Layout(spec.rows, spec.cols, tw, th, padding, width, height, pad_value)
            return layout, layout

    # A padded layout is seen in the image; an unpadded one is only a reading of the size. Tiles
    # with dark margins can fake a few padding lines, so the reading with more tiles wins.
    found = discover_layout(pixels)
    guess = guess_unpadded(width, height, spec)
    guessed = guess is not None and (
        found is None or guess.rows * guess.cols > found.rows * found.cols
    )
    if guessed:
        found = guess
    allowed = " or ".join(f"{w}x{h} pixels with padding {p}" for w, h, p in expected_sizes(spec))
    expected = (
        f"expected {count_words(spec.rows, 'row')} x {count_words(spec.cols, 'column')} of "
        f"{tw}x{th} tiles: {allowed} (torchvision make_grid)"
    )
    if found is not None and found.matches(spec):
        paddings = " or ".join(map(str, sorted(set(spec.paddings))))
        say.warning(
            "padding",
            f"{say.shown} has {found.describe()}; the rubric allows padding {paddings} "
            f"({expected.removeprefix('expected ')})",
            f"save it with torchvision.utils.save_image(..., nrow={spec.cols}, "
            f"padding={spec.paddings[-1]})",
        )
        return found, found
    if found is None:
        what = f"{say.shown} is {width}x{height} pixels and no grid of tiles could be found in it"
    elif guessed:
        what = (
            f"{say.shown} is {width}x{height} pixels, which looks like {found.describe(size=False)}"
        )
    else:
        what = f"{say.shown} has {found.describe()}"
    say.error(
        "layout",
        f"{what}; {expected}",
        "save the raw tiles, not a matplotlib figure; "
        + SAVE_HINT
        + f" ({spec.rows} rows of {spec.cols} snapshots)",
    )
    return None, found


# ---------------------------------------------------------------- noise


def noise_levels(tiles: np.ndarray) -> np.ndarray:
    """[..., H, W] tiles in [0, 1] -> [...] noise levels (pure noise ~1, clean image ~0)."""
    t = np.asarray(tiles, dtype=np.float32)
    diff = np.abs(t[..., :-1, :-1] - t[..., :-1, 1:] - t[..., 1:, :-1] + t[..., 1:, 1:])
    diff = diff.reshape(*t.shape[:-2], -1)
    keep = max(1, int(TRIM * diff.shape[-1]))
    smallest = np.partition(diff, keep - 1, axis=-1)[..., :keep]
    # The mixed difference of white noise has 2 sigma standard deviation.
    sigma = smallest.mean(axis=-1) / (2 * _TRIMMED_ABS_MEAN)
    spread = t.reshape(*t.shape[:-2], -1).std(axis=-1)
    return (sigma / np.maximum(spread, STD_FLOOR)).astype(np.float64)


def _largest_rise(seq: np.ndarray) -> tuple[float, int, int]:
    """max over i < j of seq[j] - seq[i], with i and j."""
    run_min = np.minimum.accumulate(seq)
    rises = seq[1:] - run_min[:-1]
    j = int(np.argmax(rises)) + 1
    return float(rises[j - 1]), int(np.argmin(seq[:j])), j


def _rise_tolerance(seq: np.ndarray, relative: float, floor: float) -> float:
    return max(relative * float(seq.max() - seq.min()), floor)


def _good_rows(levels: np.ndarray, relative: float) -> np.ndarray:
    """Rows (of analysis-oriented levels) that start noisy, end clean and never rise much."""
    good = (levels[:, 0] >= NOISE_MIN) & (levels[:, -1] <= CLEAN_MAX)
    for r in np.flatnonzero(good):
        rise, _, _ = _largest_rise(levels[r])
        good[r] = rise <= _rise_tolerance(levels[r], relative, ROW_RISE_FLOOR)
    return good


class _Sides:
    """Words for the two ends of a row, in the direction the rubric asks for."""

    def __init__(self, spec: ProcessGridArtifact):
        self.forward = spec.direction == "noise_to_clean"
        self.start = "first (left)" if self.forward else "last (right)"
        self.end = "last (right)" if self.forward else "first (left)"
        self.noise_side, self.image_side = ("left", "right") if self.forward else ("right", "left")
        self.wrong_way = (
            f"from the final image on the {self.noise_side} to noise on the {self.image_side}"
        )

    def column(self, j: int, cols: int) -> int:
        """1-based image column of analysis column j."""
        return j + 1 if self.forward else cols - j


def _check_trajectory(
    noise: np.ndarray,
    tiles: np.ndarray,
    spec: ProcessGridArtifact,
    say: _Say,
    digit_classifier: DigitClassifier | None,
) -> None:
    sides = _Sides(spec)
    levels = noise if sides.forward else noise[:, ::-1]  # analysis order: noise end first
    rows, cols = levels.shape
    relative = spec.monotonic_tolerance
    order_hint = (
        f"record x_t every (total steps / {cols - 1}) steps, starting from the pure noise x_T, "
        f"and put the snapshots of one sample left to right in one row, noise on the "
        f"{sides.noise_side}, the final image on the {sides.image_side}"
    )

    if (
        rows == cols > 1
        and _good_rows(levels, relative).sum() < rows / 2
        and _good_rows(levels.T, relative).sum() >= rows / 2
    ):
        say.error(
            "transposed",
            "the snapshots run from top to bottom: the first row is noise and the last row holds "
            "the final images; each row must be one sample, from noise on the "
            f"{sides.noise_side} to its final image on the {sides.image_side}",
            "transpose the tiles before saving (e.g. tiles.transpose(0, 1) on a [snapshots, "
            "samples, C, H, W] tensor, then flatten the first two axes); " + SAVE_HINT,
        )
        _check_distinct_rows(noise, tiles, say)
        return

    medians = np.median(levels, axis=0)
    column_tolerance = _rise_tolerance(medians, relative, COLUMN_RISE_FLOOR)
    rise, i, j = _largest_rise(medians)
    grid_order_ok = rise <= column_tolerance
    if not grid_order_ok:
        drop, _, _ = _largest_rise(-medians)
        profile = ", ".join(f"{m:.2f}" for m in (medians if sides.forward else medians[::-1]))
        if drop <= column_tolerance and medians[0] <= CLEAN_MAX and medians[-1] >= NOISE_MIN:
            say.error(
                "reversed",
                f"the columns run {sides.wrong_way} (median noise level by column, left to "
                f"right: {profile}); expected noise on the {sides.noise_side} and the final "
                f"image on the {sides.image_side}",
                "reverse the order of the snapshots in each row; " + order_hint,
            )
            _check_distinct_rows(noise, tiles, say)
            return
        if medians.max() >= NOISE_MIN and medians.min() <= CLEAN_MAX:
            a, b = sides.column(i, cols), sides.column(j, cols)
            say.error(
                "column_order",
                f"the columns are out of order: the noise rises from column {a} to column {b} "
                f"({medians[i]:.2f} -> {medians[j]:.2f}; median noise level by column, left to "
                f"right: {profile}); it must fall steadily from the noise to the final image",
                "keep the snapshots in the order the sampler produced them; " + order_hint,
            )
            _check_distinct_rows(noise, tiles, say)
            return

    if _similarity_out_of_order(levels, tiles if sides.forward else tiles[:, ::-1], sides, say):
        _check_distinct_rows(noise, tiles, say)
        return

    blank = tiles.reshape(*tiles.shape[:2], -1).std(axis=-1) < STD_FLOOR
    blank_rows = blank.all(axis=1)
    if blank_rows.any():
        say.error(
            "row_blank",
            f"{_rows_text(list(np.flatnonzero(blank_rows)))} "
            f"{'is' if blank_rows.sum() == 1 else 'are'} blank: one flat colour in every column",
            "check the sampler for NaN or overflow and save the tensors it returns; " + order_hint,
        )
    _check_rows(levels, sides, relative, say, order_hint, skip=blank_rows)
    _check_distinct_rows(noise, tiles, say)
    if spec.content == "mnist":
        end = cols - 1 if sides.forward else 0
        finished = np.flatnonzero((levels[:, -1] <= CLEAN_MAX) & ~blank_rows)
        _check_digits(tiles[finished, end], finished, say, digit_classifier)


def similarity_to_final(tiles: np.ndarray) -> np.ndarray:
    """[rows, cols] correlation of each tile with the last tile of its row."""
    flat = tiles.reshape(*tiles.shape[:2], -1).astype(np.float64)
    flat = flat - flat.mean(axis=-1, keepdims=True)
    final = flat[:, -1:]
    norms = np.sqrt((flat**2).sum(axis=-1) * (final**2).sum(axis=-1))
    return (flat * final).sum(axis=-1) / np.maximum(norms, 1e-12)


def _similarity_out_of_order(
    levels: np.ndarray, tiles: np.ndarray, sides: _Sides, say: _Say
) -> bool:
    """Columns whose noise levels look alike can still be out of order: the image grows in."""
    good = (levels[:, 0] >= NOISE_MIN) & (levels[:, -1] <= CLEAN_MAX)
    if good.sum() < max(1, levels.shape[0] / 2):
        return False  # the row checks say what is wrong
    medians = np.median(similarity_to_final(tiles[good]), axis=0)
    drop, i, j = _largest_rise(-medians)
    if drop <= SIMILARITY_DROP_FLOOR:
        return False
    cols = levels.shape[1]
    a, b = sides.column(i, cols), sides.column(j, cols)
    profile = ", ".join(f"{m:.2f}" for m in (medians if sides.forward else medians[::-1]))
    say.error(
        "column_order",
        f"the columns are out of order: column {a} is more like the final image than column {b} "
        f"(similarity {medians[i]:.2f} -> {medians[j]:.2f}; median similarity to the final "
        f"image by column, left to right: {profile}); the image must emerge steadily from the "
        f"noise",
        "keep the snapshots in the order the sampler produced them; put the snapshots of one "
        f"sample in one row, noise on the {sides.noise_side}, the final image on the "
        f"{sides.image_side}",
    )
    return True


def _check_rows(
    levels: np.ndarray,
    sides: _Sides,
    relative: float,
    say: _Say,
    order_hint: str,
    skip: np.ndarray,
) -> None:
    is_noise, is_clean = levels >= NOISE_MIN, levels <= CLEAN_MAX
    all_noise = np.flatnonzero(is_noise.all(axis=1) & ~skip)
    all_clean = np.flatnonzero(is_clean.all(axis=1) & ~skip)
    rest = ~(is_noise.all(axis=1) | is_clean.all(axis=1) | skip)
    reversed_rows = np.flatnonzero(rest & is_clean[:, 0] & is_noise[:, -1])
    rest &= ~(is_clean[:, 0] & is_noise[:, -1])
    no_start = np.flatnonzero(rest & ~is_noise[:, 0])
    no_end = np.flatnonzero(rest & ~is_clean[:, -1])
    scale = f"pure noise is about {PURE_NOISE:.1f}, a finished image below {CLEAN_MAX:.1f}"

    if all_noise.size:
        say.error(
            "row_all_noise",
            f"{_rows_text(list(all_noise))} {'is' if all_noise.size == 1 else 'are'} noise in "
            f"every column (noise level {_span(levels[all_noise])}; {scale}): the sample never "
            "turns into an image",
            "show the snapshots of one sampling run, from x_T down to the final x_0; " + order_hint,
        )
    if all_clean.size:
        say.error(
            "row_all_clean",
            f"{_rows_text(list(all_clean))} {'shows' if all_clean.size == 1 else 'show'} a "
            f"finished image in every column (noise level at most "
            f"{levels[all_clean].max():.2f}; {scale}): it must start from pure noise",
            "save x_t at the snapshot steps during sampling, not the final image again; "
            + order_hint,
        )
    if reversed_rows.size:
        say.error(
            "reversed",
            f"{_rows_text(list(reversed_rows))} {'runs' if reversed_rows.size == 1 else 'run'} "
            f"{sides.wrong_way}; expected noise on the {sides.noise_side} and the final image "
            f"on the {sides.image_side}",
            "reverse the order of the snapshots in those rows; " + order_hint,
        )
    if no_start.size:
        verb = "does" if no_start.size == 1 else "do"
        say.error(
            "start_not_noise",
            f"{_rows_text(list(no_start))} {verb} not start from noise (noise level "
            f"{_span(levels[no_start, 0])} in the {sides.start} column; {scale})",
            "the first snapshot must be the pure Gaussian noise x_T the sampler starts from; "
            + order_hint,
        )
    if no_end.size:
        verb = "does" if no_end.size == 1 else "do"
        say.error(
            "end_not_clean",
            f"{_rows_text(list(no_end))} {verb} not end in a finished image (noise level "
            f"{_span(levels[no_end, -1])} in the {sides.end} column; {scale})",
            "the last snapshot must be the sampler's final output x_0, after all steps; "
            + order_hint,
        )

    bumpy = []
    good_ends = np.flatnonzero(is_noise[:, 0] & is_clean[:, -1])
    for r in good_ends:
        rise, i, j = _largest_rise(levels[r])
        if rise > _rise_tolerance(levels[r], relative, ROW_RISE_FLOOR):
            cols = levels.shape[1]
            bumpy.append(
                f"row {r + 1}: column {sides.column(i, cols)} -> {sides.column(j, cols)}, "
                f"{levels[r, i]:.2f} -> {levels[r, j]:.2f}"
            )
    if bumpy:
        say.error(
            "not_monotonic",
            f"the noise rises again within a row ({compact_list(bumpy, 3)}); it must fall steadily "
            f"from the noise to the final image",
            "keep each row's snapshots in sampling order; " + order_hint,
        )


# ---------------------------------------------------------------- rows and content


def _check_distinct_rows(noise: np.ndarray, tiles: np.ndarray, say: _Say) -> None:
    """The rows must be different samples: compare the final (least noisy) column."""
    rows = tiles.shape[0]
    if rows < 2:
        return
    end = int(np.argmin(np.median(noise, axis=0)))
    finals = tiles[:, end].reshape(rows, -1)
    blank = finals.std(axis=1) < STD_FLOOR  # blank finals are reported by the content check
    distance = np.abs(finals[:, None, :] - finals[None, :, :]).mean(axis=-1)
    same = (distance < SAME_IMAGE) & ~blank[:, None] & ~blank[None, :]
    groups, seen = [], set()
    for r in range(rows):
        if r in seen:
            continue
        members = [int(m) for m in np.flatnonzero(same[r]) if m >= r]
        if len(members) > 1:
            groups.append(members)
            seen.update(members)
    if not groups:
        return
    if len(groups) == 1 and len(groups[0]) == rows:
        text = f"all {rows} rows end in the same image"
    else:
        text = "; ".join(f"rows {_and(m + 1 for m in g)} end in the same image" for g in groups)
    say.error(
        "rows_repeated",
        f"{text}: the {rows} rows must be {rows} different results",
        "start each row from its own random noise (do not reuse the seed or copy a row)",
    )


def _check_digits(
    finals: np.ndarray, rows: np.ndarray, say: _Say, digit_classifier: DigitClassifier | None
) -> None:
    """The final images must look like MNIST digits (white on black, centred, thin strokes)."""
    if len(rows) == 0:
        return
    problems: dict[int, str] = {}
    inverted: list[int] = []
    for r, tile in zip(rows, finals):
        reason = digit_problem(tile)
        if reason is not None and reason != "it is blank" and digit_problem(1.0 - tile) is None:
            inverted.append(int(r))
        elif reason is not None:
            problems[int(r)] = reason
    if digit_classifier is not None:
        scores = np.asarray(digit_classifier(np.round(finals * 255).astype(np.uint8)), dtype=float)
        for r, score in zip(rows, scores):
            if int(r) not in problems and int(r) not in inverted and score < CLASSIFIER_MIN:
                problems[int(r)] = (
                    f"the digit classifier is not confident it is a digit ({score:.2f})"
                )

    failing = len(problems) + len(inverted)
    if failing == 0:
        return
    must = math.ceil(len(rows) / 2)
    details = [f"row {r + 1}: {why}" for r, why in sorted(problems.items())]
    if len(inverted) >= must:
        say.error(
            "digits_inverted",
            f"the final images of {_rows_text(inverted)} are dark digits on a light background; "
            f"MNIST digits are white on black",
            "do not invert the images; save (x.clamp(-1, 1) + 1) / 2 of the model's output",
        )
    elif failing >= must:
        say.error(
            "not_digits",
            f"the final images do not look like handwritten digits ({compact_list(details, 3)})",
            "the last snapshot of each row must be the generated MNIST digit",
        )
    else:
        odd = details + [f"row {r + 1}: dark digit on a light background" for r in inverted]
        say.warning(
            "odd_digits",
            f"some final images do not look like handwritten digits ({compact_list(odd, 3)})",
            "check these samples; a well-trained model draws clear digits",
        )
