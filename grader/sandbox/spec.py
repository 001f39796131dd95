"""The rubric's `sample:` section: how a student's sampler is re-run in the sandbox and how its
output is audited against the upload (the models; grader/rubric.py puts them in the rubric)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from grader.schema import Strict


class SampleAudit(Strict):
    count: int = Field(64, gt=0)
    mode: Literal["exact", "fid"] = "exact"
    tolerance: float = Field(0.0, ge=0)  # exact: max mean abs pixel difference; fid: max FID


class SampleSpec(Strict):
    """Re-run the student's sampler in a sandbox (see grader/sandbox)."""

    source: str  # the source artifact holding the student's code
    produces: str  # the image_set artifact whose rules the produced set must meet
    command: str  # with {output}, {num}, {seed} placeholders
    num: int = Field(..., gt=0)
    seed: int = 0
    weights: str | None = None  # where the weights live inside the submission, if required
    backend: Literal["docker", "bwrap", "auto"] = "auto"
    image: str = "grader-sampler:latest"
    gpus: Literal[0, 1, "all"] = 0
    timeout_s: float = Field(1800, gt=0)
    memory_bytes: int = Field(8 * 1024**3, gt=0)
    cpus: float = Field(2.0, gt=0)
    pids: int = Field(256, gt=0)
    output_max_bytes: int = Field(1024**3, gt=0)
    output_max_files: int = Field(20_000, gt=0)
    tmp_max_bytes: int = Field(256 * 1024**2, gt=0)
    log_max_bytes: int = Field(64 * 1024, gt=0)
    replace_submitted: bool = False  # grade the regenerated set instead of the uploaded one
    audit: SampleAudit | None = None
