"""Does a tile look like an MNIST digit? Simple measurements, no model.

A reference digit classifier may add its own opinion (see grid.DigitClassifier); these rules
stand without one: a dark background, a bright stroke of plausible area, centred ink with a
dark margin, sharp pen strokes rather than soft or filled blobs.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import distance_transform_edt

# Digit plausibility, for 28x28 tiles (scaled with the tile size). MNIST train (60,000 digits)
# has: dark pixels (< 0.25) 57-97 %, bright pixels (>= 0.5) 1.9-40 %, centre of mass at most
# 1.4 px from the centre, at most 16 % of the ink in the outer 3-pixel frame, at most 6.4 %
# mid-grey pixels (0.25-0.5), strokes at most 6.7 px from their edge. Limits leave room for
# the rougher digits a small diffusion model draws.
DIGIT_DARK_MIN = 0.5
DIGIT_BRIGHT = (0.015, 0.45)
DIGIT_OFFCENTRE_MAX = 3.5
DIGIT_FRAME = 3
DIGIT_FRAME_INK_MAX = 0.25
DIGIT_GREY_MAX = 0.15
DIGIT_STROKE_MAX = 6.0


def digit_problem(tile: np.ndarray) -> str | None:
    """Why a tile in [0, 1] (white digit on black) does not look like an MNIST digit, or None."""
    h, w = tile.shape
    scale = min(h, w) / 28.0
    dark = float((tile < 0.25).mean())
    bright_mask = tile >= 0.5
    bright = float(bright_mask.mean())
    grey = float(((tile >= 0.25) & (tile < 0.5)).mean())
    if float(tile.max() - tile.min()) < 0.1:
        return "it is blank"
    if dark < DIGIT_DARK_MIN:
        return (
            f"the background is not dark ({dark:.0%} dark pixels; MNIST digits have at least 57%)"
        )
    if bright < DIGIT_BRIGHT[0]:
        return f"it has almost no bright stroke ({bright:.1%} bright pixels)"
    if bright > DIGIT_BRIGHT[1]:
        return f"too much of it is bright ({bright:.0%}; MNIST digits have at most 40%)"
    # Ink above the background level, so a grey background does not pull the mass around.
    ink = np.clip(tile - float(np.median(tile)), 0.0, None)
    mass = float(ink.sum())
    yy, xx = np.mgrid[0:h, 0:w]
    off = math.hypot(
        float((ink * yy).sum()) / mass - (h - 1) / 2, float((ink * xx).sum()) / mass - (w - 1) / 2
    )
    if off > DIGIT_OFFCENTRE_MAX * scale:
        return f"its ink is {off:.1f} px off the centre (MNIST digits are centred)"
    frame = max(1, round(DIGIT_FRAME * scale))
    inner = float(ink[frame:-frame, frame:-frame].sum())
    if (mass - inner) / mass > DIGIT_FRAME_INK_MAX:
        share = (mass - inner) / mass
        return f"{share:.0%} of its ink lies on the border (MNIST digits keep a dark margin)"
    if grey > DIGIT_GREY_MAX:
        return f"{grey:.0%} of it is mid-grey (pen strokes are sharp: MNIST has at most 6%)"
    stroke = float(distance_transform_edt(bright_mask).max())
    if stroke > DIGIT_STROKE_MAX * scale:
        return f"it is a filled blob, not a pen stroke (about {2 * stroke:.0f} px thick)"
    return None
