"""Building blocks of the rubric schema shared by the rubric and by every artifact and metric kind.

Kept free of other grader imports so that kind modules can define their rubric models here
without importing the rubric (which imports them).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a rubric must never be silently ignored."""

    model_config = ConfigDict(extra="forbid")


class UnpackLimits(Strict):
    """Caps for extracting an untrusted zip; a rubric may raise or lower them."""

    max_total_bytes: int = Field(2 * 1024**3, gt=0)  # sum of declared uncompressed sizes
    max_entry_bytes: int = Field(512 * 1024**2, gt=0)
    max_entries: int = Field(50_000, gt=0)
    # Deflate tops out near 1032:1; PNGs barely compress, text about 3-5:1. 100:1 on an
    # entry over 1 MiB is a bomb, not homework.
    max_ratio: float = Field(100.0, gt=1)
    ratio_min_bytes: int = Field(1024**2, ge=0)  # ratios of tiny entries are not checked
