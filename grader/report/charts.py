"""Geometry for the pictures on the report pages, computed server-side (no JS libraries).

Only numbers come out of here; the templates draw them as inline SVG or styled table
cells, so every label still passes through Jinja's autoescape.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# SVG canvas of a histogram, in user units.
WIDTH, HEIGHT = 480, 200
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 36, 12, 16, 36


@dataclass(frozen=True)
class Bar:
    lo: float
    hi: float
    count: int
    x: float
    y: float
    width: float
    height: float
    last: bool  # the last bin includes its upper edge


@dataclass(frozen=True)
class Histogram:
    bars: list[Bar]
    ticks: list[tuple[float, str]]  # x position, label
    max_count: int
    total: int
    width: int = WIDTH
    height: int = HEIGHT
    baseline: float = HEIGHT - MARGIN_BOTTOM
    left: float = MARGIN_LEFT
    right: float = WIDTH - MARGIN_RIGHT


def nice_step(span: float, bins: int = 10) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^k step that covers `span` in `bins` bins."""
    if span <= 0:
        return 1.0
    raw = span / bins
    magnitude = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * magnitude >= raw:
            return m * magnitude
    return 10 * magnitude


def histogram(values: Iterable[float], lo: float, hi: float, bins: int) -> Histogram:
    """Counts of `values` in `bins` equal bins over [lo, hi]; outliers go to the edge bins."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    bins = max(1, bins)
    if hi <= lo:
        hi = lo + 1
    step = (hi - lo) / bins
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int((v - lo) // step)))] += 1

    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    top = max(counts) if values else 0
    bar_w = plot_w / bins
    bars = []
    for i, count in enumerate(counts):
        h = plot_h * count / top if top else 0.0
        bars.append(
            Bar(
                lo=lo + i * step,
                hi=lo + (i + 1) * step,
                count=count,
                x=round(MARGIN_LEFT + i * bar_w + 1, 2),
                y=round(HEIGHT - MARGIN_BOTTOM - h, 2),
                width=round(bar_w - 2, 2),
                height=round(h, 2),
                last=i == bins - 1,
            )
        )
    every = max(1, math.ceil(bins / 5))  # at most ~6 labels on the axis
    ticks = [
        (round(MARGIN_LEFT + i * bar_w, 2), _axis_number(lo + i * step))
        for i in range(0, bins + 1, every)
    ]
    return Histogram(bars=bars, ticks=ticks, max_count=top, total=len(values))


def grade_histogram(grades: Iterable[float], max_points: float) -> Histogram:
    return histogram(grades, 0.0, max_points, 10)


def metric_histogram(values: Sequence[float]) -> Histogram:
    """Bins of a nice width from 0 (or the smallest value when negative) to past the largest."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    lo = min(0.0, min(finite, default=0.0))
    top = max(finite, default=1.0)
    step = nice_step(top - lo)
    lo = math.floor(lo / step) * step
    bins = max(1, math.floor((top - lo) / step) + 1)  # +1: the largest value inside a bin
    return histogram(finite, lo, lo + bins * step, bins)


def _axis_number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.3g}"


# ---------------------------------------------------------------- noise heat table


@dataclass(frozen=True)
class HeatCell:
    text: str
    style: str  # inline CSS built here from numbers only


def heat_table(rows: Any) -> list[list[HeatCell]] | None:
    """Cells coloured by value for a rows x cols list of noise levels.

    The scale is fixed at 0 (a clean image) to 1 (pure noise), widened only by values
    outside it, so the same level has the same colour on every student's page.
    """
    if not isinstance(rows, (list, tuple)) or not rows:
        return None
    grid = [list(r) if isinstance(r, (list, tuple)) else [r] for r in rows]
    numbers = [float(v) for row in grid for v in row if _is_number(v)]
    lo, hi = min([0.0, *numbers]), max([1.0, *numbers])
    span = hi - lo
    table = []
    for row in grid:
        cells = []
        for v in row:
            if not _is_number(v):
                cells.append(HeatCell(text="–", style=""))
                continue
            t = (float(v) - lo) / span
            cells.append(HeatCell(text=f"{float(v):.3g}", style=_heat_style(t)))
        table.append(cells)
    return table


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _heat_style(t: float) -> str:
    # Linear from near-white (#f7fbff) to deep blue (#08306b); white text on the dark half.
    light, dark = (247, 251, 255), (8, 48, 107)
    r, g, b = (round(a + (z - a) * t) for a, z in zip(light, dark))
    text = "#ffffff" if t > 0.5 else "#111111"
    return f"background:#{r:02x}{g:02x}{b:02x};color:{text}"


@dataclass(frozen=True)
class ShareBar:
    label: str
    share: float  # this set's share of the class
    reference: float | None  # the training set's share
    x: float
    y: float
    width: float
    height: float
    ref_y: float | None


@dataclass(frozen=True)
class ShareChart:
    bars: list[ShareBar]
    top: float  # the share at the top of the plot
    width: int = WIDTH
    height: int = HEIGHT
    baseline: float = HEIGHT - MARGIN_BOTTOM
    left: float = MARGIN_LEFT
    right: float = WIDTH - MARGIN_RIGHT


def share_chart(shares: Sequence[float], reference: Sequence[float] | None = None) -> ShareChart:
    """Bars of a set's class shares, each with a tick at the training set's share: a collapsed
    generator shows one tall bar where the ticks stay level."""
    top = max([*shares, *(reference or []), 0.01])
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    bar_w = plot_w / max(1, len(shares))
    bars = []
    for i, share in enumerate(shares):
        h = plot_h * share / top
        ref = reference[i] if reference is not None and i < len(reference) else None
        bars.append(
            ShareBar(
                label=str(i),
                share=share,
                reference=ref,
                x=round(MARGIN_LEFT + i * bar_w + 2, 2),
                y=round(HEIGHT - MARGIN_BOTTOM - h, 2),
                width=round(bar_w - 4, 2),
                height=round(h, 2),
                ref_y=None
                if ref is None
                else round(HEIGHT - MARGIN_BOTTOM - plot_h * ref / top, 2),
            )
        )
    return ShareChart(bars=bars, top=top)
