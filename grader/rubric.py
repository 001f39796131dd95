"""The rubric: a YAML file a TA edits, validated by pydantic.

A rubric declares which artifacts a submission holds (image sets, source zip, process
grid, single images), how each is checked, which metrics are computed against which TA
files, how metrics and findings become points, and the late policy. Paths to TA files are
relative to the rubric file. Every validation error names the YAML path and the bad value.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from grader.errors import RubricError
from grader.findings import Severity


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a rubric must never be silently ignored."""

    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- intake limits


class UnpackLimits(Strict):
    """Caps for extracting an untrusted zip; a rubric may raise or lower them."""

    max_total_bytes: int = Field(2 * 1024**3, gt=0)  # sum of declared uncompressed sizes
    max_entry_bytes: int = Field(512 * 1024**2, gt=0)
    max_entries: int = Field(50_000, gt=0)
    # Deflate tops out near 1032:1; PNGs barely compress, text about 3-5:1. 100:1 on an
    # entry over 1 MiB is a bomb, not homework.
    max_ratio: float = Field(100.0, gt=1)
    ratio_min_bytes: int = Field(1024**2, ge=0)  # ratios of tiny entries are not checked


# ---------------------------------------------------------------- artifacts


Container = Literal["zip", "folder", "file", "any"]


class ArtifactBase(Strict):
    title: str = ""
    description: str = ""
    required: bool = True
    # Glob patterns (case-insensitive) on the name of the file or folder as submitted,
    # e.g. ["*.zip"], ["gan*", "*gan*"]. Artifacts whose names collide (HW3's two zips,
    # both named by student id) are told apart by content: see intake/assign.py.
    match: list[str] = Field(default_factory=lambda: ["*"])
    container: Container = "any"


class ImageSetArtifact(ArtifactBase):
    kind: Literal["image_set"]
    count: int | None = Field(None, gt=0)
    # Python format pattern for exact names, with {index}: "{index:05d}.png" -> 00001.png.
    # None: free names (HW9), only the count and the image rules are checked.
    names: str | None = None
    first_index: int = 1
    formats: list[str] = Field(default_factory=lambda: ["PNG"])  # by content, PIL names
    size: tuple[int, int] | None = None  # (width, height)
    modes: list[str] | None = None  # PIL modes allowed, e.g. ["RGB"]
    flat: bool = True  # no subdirectories inside the container
    forbid_junk: bool = True  # __MACOSX/, .DS_Store, Thumbs.db are findings
    allow_duplicates: bool = False  # byte-identical images
    max_pixels: int = Field(4096 * 4096, gt=0)  # refuse decompression bombs from the header

    @field_validator("names")
    @classmethod
    def _names_pattern(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            v.format(index=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"must be a format pattern using {{index}}, e.g. '{{index:05d}}.png' ({exc})")
        if "{index" not in v:
            raise ValueError("must contain {index}, e.g. '{index:05d}.png'")
        return v

    def expected_names(self) -> list[str] | None:
        if self.names is None or self.count is None:
            return None
        return [self.names.format(index=i) for i in range(self.first_index, self.first_index + self.count)]


class SourceArtifact(ArtifactBase):
    kind: Literal["source"]
    readme: list[str] = Field(default_factory=lambda: ["readme*.md", "readme*.txt", "readme*.pdf", "readme"])
    code: list[str] = Field(default_factory=lambda: ["*.py", "*.ipynb"])
    # Weights and data sets are not allowed in a source zip (HW3).
    forbid: list[str] = Field(
        default_factory=lambda: [
            "*.pt", "*.pth", "*.ckpt", "*.safetensors", "*.bin", "*.h5", "*.onnx", "*.npz", "*.npy",
            "*-ubyte", "*-ubyte.gz", "*.idx3-ubyte", "*.pkl", "*.tar", "*.tar.gz", "*.zip",
        ]
    )
    max_bytes: int | None = Field(50 * 1024**2, gt=0)
    forbid_junk: bool = True


class ProcessGridArtifact(ArtifactBase):
    kind: Literal["process_grid"]
    rows: int = Field(8, gt=0)
    cols: int = Field(8, gt=1)
    tile: tuple[int, int] = (28, 28)  # (width, height)
    paddings: list[int] = Field(default_factory=lambda: [0, 2])
    direction: Literal["noise_to_clean", "clean_to_noise"] = "noise_to_clean"
    content: Literal["mnist", "generic"] = "generic"
    # Tolerance for small increases of noise along a row (relative to the row's range).
    monotonic_tolerance: float = Field(0.1, ge=0, le=1)
    formats: list[str] = Field(default_factory=lambda: ["PNG"])


class ImageArtifact(ArtifactBase):
    """A single picture: a sample grid, a loss plot."""

    kind: Literal["image"]
    formats: list[str] = Field(default_factory=lambda: ["PNG", "JPEG"])
    size: tuple[int, int] | None = None
    min_size: tuple[int, int] | None = None
    max_pixels: int = Field(8192 * 8192, gt=0)


class DocumentArtifact(ArtifactBase):
    """A report (pdf/md/txt): checked for presence and size only."""

    kind: Literal["document"]
    max_bytes: int | None = Field(50 * 1024**2, gt=0)


Artifact = Annotated[
    ImageSetArtifact | SourceArtifact | ProcessGridArtifact | ImageArtifact | DocumentArtifact,
    Field(discriminator="kind"),
]


# ---------------------------------------------------------------- metrics


class FidMetric(Strict):
    kind: Literal["fid"]
    artifact: str  # an image_set artifact (or a sampled one)
    backend: Literal["pytorch-gan-metrics", "pytorch-fid"] = "pytorch-gan-metrics"
    stats: Path  # TA-published reference statistics (npz with mu, sigma); relative to rubric
    dims: Literal[2048] = 2048
    title: str = ""


class EvaluatorMetric(Strict):
    """Lab6: accuracy of a TA-provided classifier on generated images vs their conditions."""

    kind: Literal["evaluator_accuracy"]
    artifact: str
    weights: Path  # the TA's evaluator weights; never shipped with the project
    labels: Path  # e.g. test.json
    objects: Path | None = None  # objects.json mapping names to class indices
    title: str = ""


Metric = Annotated[FidMetric | EvaluatorMetric, Field(discriminator="kind")]


# ---------------------------------------------------------------- sampling (sandbox)


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


# ---------------------------------------------------------------- scoring


class Band(Strict):
    """Piecewise-linear points for a metric, clamped outside the given points.

    HW3: points [[40, 100], [100, 0]]: FID < 40 -> 100, linear to 0 at 100, > 100 -> 0.
    Lower- or higher-is-better follows from the points themselves.
    """

    metric: str
    title: str = ""
    points: list[tuple[float, float]] = Field(..., min_length=1)
    missing: float = 0.0  # points when the metric could not be computed

    @field_validator("points")
    @classmethod
    def _sorted(cls, v: list[tuple[float, float]]) -> list[tuple[float, float]]:
        xs = [x for x, _ in v]
        if any(b <= a for a, b in pairwise(xs)):
            raise ValueError(f"metric values must be strictly increasing, got {xs}")
        return v


class Deduction(Strict):
    code: str  # a finding code or glob, e.g. "images.count" or "zip.*"
    points: float = Field(..., ge=0)  # per finding
    cap: float | None = Field(None, ge=0)  # at most this much for this line
    title: str = ""


class Scoring(Strict):
    max_points: float = Field(100, gt=0)
    base_points: float | None = None  # points before bands and deductions; default max_points if no bands
    bands: list[Band] = Field(default_factory=list)
    deductions: list[Deduction] = Field(default_factory=list)
    # Finding codes (globs) that set the grade to zero, e.g. a missing required artifact.
    zero_if: list[str] = Field(default_factory=list)
    min_total: float = 0.0


class LatePolicy(Strict):
    due: datetime
    per_day: float = Field(0.0, ge=0)  # points off per started late day
    max_days: int | None = Field(None, ge=0)  # later than this: zero
    hard: bool = False  # any lateness: zero, no extensions
    grace_minutes: float = Field(0.0, ge=0)

    @field_validator("due")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("must carry a time zone, e.g. 2026-10-07T23:59:00+08:00")
        return v


class SubmissionNaming(Strict):
    # Regex with a named group `id`, searched in each top-level file or folder name.
    id_pattern: str = r"(?P<id>[A-Za-z0-9]+)"

    @field_validator("id_pattern")
    @classmethod
    def _has_id(cls, v: str) -> str:
        try:
            compiled = re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}")
        if "id" not in compiled.groupindex:
            raise ValueError("must have a named group (?P<id>...)")
        return v


class Rubric(Strict):
    name: str
    course: str = ""
    artifacts: dict[str, Artifact] = Field(..., min_length=1)
    metrics: dict[str, Metric] = Field(default_factory=dict)
    sample: SampleSpec | None = None
    scoring: Scoring = Field(default_factory=Scoring)
    late: LatePolicy | None = None
    submission: SubmissionNaming = Field(default_factory=SubmissionNaming)
    limits: UnpackLimits = Field(default_factory=UnpackLimits)
    severity: dict[str, Severity] = Field(default_factory=dict)  # finding code glob -> severity

    # Set by load_rubric, not by YAML.
    path: Path | None = Field(None, exclude=True)
    content_hash: str = Field("", exclude=True)

    @model_validator(mode="after")
    def _references(self) -> Rubric:
        problems = []
        for name, metric in self.metrics.items():
            if metric.artifact not in self.artifacts:
                problems.append(f"metrics.{name}.artifact: unknown artifact {metric.artifact!r}")
            elif self.artifacts[metric.artifact].kind != "image_set":
                problems.append(f"metrics.{name}.artifact: {metric.artifact!r} is not an image_set")
        for i, band in enumerate(self.scoring.bands):
            if band.metric not in self.metrics:
                problems.append(f"scoring.bands.{i}.metric: unknown metric {band.metric!r}")
        if self.sample is not None:
            for key in ("source", "produces"):
                ref = getattr(self.sample, key)
                if ref not in self.artifacts:
                    problems.append(f"sample.{key}: unknown artifact {ref!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # Sections that only turn findings and metrics into points: editing them re-scores stored
    # results without unpacking or checking anything again.
    SCORING_SECTIONS: ClassVar[frozenset[str]] = frozenset({"scoring", "late", "name", "course"})

    def _section_hash(self, *, include=None, exclude=None) -> str:
        data = self.model_dump(mode="json", include=include, exclude=exclude)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    @property
    def check_hash(self) -> str:
        """What the checks and metrics depend on: everything but the scoring sections."""
        return self._section_hash(exclude=set(self.SCORING_SECTIONS))

    @property
    def score_hash(self) -> str:
        return self._section_hash(include={"scoring", "late"})

    def resolve(self, path: Path | str) -> Path:
        """A TA file path from the rubric, relative to the rubric's folder."""
        p = Path(path).expanduser()
        if not p.is_absolute() and self.path is not None:
            p = self.path.parent / p
        return p


def _format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid rubric ({exc.error_count()} problem{'s' if exc.error_count() != 1 else ''})"]
    for err in exc.errors():
        # Drop pydantic's discriminator tags (e.g. 'image_set') from the YAML path.
        loc = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and p in _KINDS))
        bad = err.get("input")
        shown = "" if isinstance(bad, dict) else f" (got {bad!r})"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"  {loc or '<top>'}: {msg}{shown}")
    return "\n".join(lines)


_KINDS = {"image_set", "source", "process_grid", "image", "document", "fid", "evaluator_accuracy"}


def parse_rubric(text: str, source: str = "<rubric>", path: Path | None = None) -> Rubric:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RubricError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RubricError(f"{source}: a rubric must be a YAML mapping, got {type(data).__name__}")
    try:
        rubric = Rubric.model_validate(data)
    except ValidationError as exc:
        raise RubricError(_format_validation_error(exc, source)) from None
    rubric.path = path.resolve() if path else None
    rubric.content_hash = hashlib.sha256(text.encode()).hexdigest()
    return rubric


def load_rubric(path: Path | str) -> Rubric:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RubricError(f"rubric not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RubricError(f"cannot read rubric {path}: {exc}") from None
    return parse_rubric(text, source=str(path), path=path)
