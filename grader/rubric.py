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
from typing import Annotated, ClassVar

import yaml
from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator

from grader.artifacts import KINDS as ARTIFACT_KINDS
from grader.artifacts import (
    Artifact,
    DocumentArtifact,
    ImageArtifact,
    ImageSetArtifact,
    ProcessGridArtifact,
    SourceArtifact,
)
from grader.codes import resolve_pattern
from grader.errors import RubricError
from grader.findings import Severity
from grader.metrics.kinds import KINDS as METRIC_KINDS
from grader.metrics.kinds import Metric
from grader.platforms import Platforms
from grader.prerequisites import MISSING_CODE, Prerequisite
from grader.sandbox.spec import SampleSpec
from grader.schema import Strict, UnpackLimits

# The artifact kinds' models live beside their handlers; re-exported for code that reads rubrics.
__all__ = [
    "DocumentArtifact",
    "ImageArtifact",
    "ImageSetArtifact",
    "ProcessGridArtifact",
    "Rubric",
    "SourceArtifact",
    "UnpackLimits",
    "load_rubric",
    "parse_rubric",
]

# A finding code or glob wherever a rubric names one (deductions, zero_if, severity): a name
# the catalogue (grader/codes.py) lacks, or a glob matching none of it, is refused with the
# nearest codes instead of becoming a rule that silently never applies; a renamed code is
# stored under its current name, as findings carry it.
FindingCode = Annotated[str, AfterValidator(resolve_pattern)]

# ---------------------------------------------------------------- scoring


class Band(Strict):
    """Piecewise-linear points for a metric, clamped outside the given points.

    HW3: points [[40, 100], [100, 0]]: FID < 40 -> 100, linear to 0 at 100, > 100 -> 0.
    Lower- or higher-is-better follows from the points themselves.
    """

    metric: str
    title: str = ""
    points: list[tuple[float, float]] = Field(..., min_length=1)
    missing: float | None = None  # points when the metric could not be computed; None: incomplete

    @field_validator("points")
    @classmethod
    def _sorted(cls, v: list[tuple[float, float]]) -> list[tuple[float, float]]:
        xs = [x for x, _ in v]
        if any(b <= a for a, b in pairwise(xs)):
            raise ValueError(f"metric values must be strictly increasing, got {xs}")
        return v


class Deduction(Strict):
    code: FindingCode  # e.g. "images.count" or "zip.*"
    points: float = Field(..., ge=0)  # per finding
    cap: float | None = Field(None, ge=0)  # at most this much for this line
    title: str = ""


class Scoring(Strict):
    max_points: float = Field(100, gt=0)
    base_points: float | None = None  # points before bands and deductions; default max_points if no bands
    bands: list[Band] = Field(default_factory=list)
    deductions: list[Deduction] = Field(default_factory=list)
    # Finding codes (globs) that set the grade to zero, e.g. a missing required artifact.
    zero_if: list[FindingCode] = Field(default_factory=list)
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
    severity: dict[FindingCode, Severity] = Field(default_factory=dict)  # finding code glob -> severity
    requires: list[Prerequisite] = Field(default_factory=list)  # earlier hand-ins: prerequisites.py
    platforms: Platforms = Field(default_factory=Platforms)  # what platform autograders show: platforms.py

    # Set by load_rubric, not by YAML.
    path: Path | None = Field(None, exclude=True)
    ta_dir: Path | None = Field(None, exclude=True)  # where relative TA paths point (None: beside path)
    shipped_name: str | None = Field(None, exclude=True)  # found by name (rubric_catalog.py)
    content_hash: str = Field("", exclude=True)

    @model_validator(mode="after")
    def _references(self) -> Rubric:
        problems = []
        for name, metric in self.metrics.items():
            if metric.artifact not in self.artifacts:
                problems.append(f"metrics.{name}.artifact: unknown artifact {metric.artifact!r}")
            elif self.artifacts[metric.artifact].kind not in type(metric).artifact_kinds:
                wanted = " or ".join(type(metric).artifact_kinds)
                problems.append(f"metrics.{name}.artifact: {metric.artifact!r} is not an {wanted}")
        for i, band in enumerate(self.scoring.bands):
            name, _, component = band.metric.partition(".")
            if name not in self.metrics:
                problems.append(f"scoring.bands.{i}.metric: unknown metric {band.metric!r}")
            elif component and component not in (parts := METRIC_KINDS[self.metrics[name].kind].components):
                problems.append(f"scoring.bands.{i}.metric: {name!r} has no value {component!r}"
                                + (f" (it has {', '.join(parts)})" if parts else ""))
        if self.sample is not None:
            for key in ("source", "produces"):
                ref = getattr(self.sample, key)
                if ref not in self.artifacts:
                    problems.append(f"sample.{key}: unknown artifact {ref!r}")
            audit, produces = self.sample.audit, self.sample.produces
            if audit is not None and audit.mode == "fid" and not any(
                m.artifact == produces and METRIC_KINDS[m.kind].compares_sets for m in self.metrics.values()
            ):
                problems.append(f"sample.audit.mode: 'fid' compares the regenerated and the submitted "
                                f"images with the rubric's FID metric on {produces!r}; add one")
        problems += self.platforms.problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        if any(r.missing == "not_graded" for r in self.requires) and MISSING_CODE not in self.scoring.zero_if:
            self.scoring.zero_if.append(MISSING_CODE)
        return self

    # Sections that only turn findings and metrics into points: editing them re-scores stored
    # results without unpacking or checking anything again.
    SCORING_SECTIONS: ClassVar[frozenset[str]] = frozenset({"scoring", "late", "name", "course", "platforms"})

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
        """A TA file path from the rubric, relative to the rubric's folder (or its --ta-dir)."""
        p = Path(path).expanduser()
        base = self.ta_dir or (self.path.parent if self.path is not None else None)
        if not p.is_absolute() and base is not None:
            p = base / p
        return p


def _format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid rubric ({exc.error_count()} problem{'s' if exc.error_count() != 1 else ''})"]
    for err in exc.errors():
        # Drop pydantic's discriminator tags (e.g. 'image_set') from the YAML path.
        loc = ".".join(
            str(p) for p in err["loc"] if not (isinstance(p, str) and (p in _KINDS or p == "[key]"))
        )
        bad = err.get("input")
        shown = "" if isinstance(bad, dict) else f" (got {bad!r})"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"  {loc or '<top>'}: {msg}{shown}")
    return "\n".join(lines)


_KINDS = set(ARTIFACT_KINDS) | set(METRIC_KINDS)  # discriminator tags pydantic puts in error paths


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


def load_rubric(spec: Path | str, ta_dir: Path | str | None = None) -> Rubric:
    """A rubric by path, or a shipped one by name (hw3); `ta_dir`: where its TA files are."""
    from grader.rubric_catalog import find_rubric

    source = find_rubric(spec, ta_dir)
    path = source.path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RubricError(f"rubric not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RubricError(f"cannot read rubric {path}: {exc}") from None
    rubric = parse_rubric(text, source=str(spec if source.name else path), path=path)
    rubric.ta_dir = source.ta_dir.resolve() if source.ta_dir is not None else None
    rubric.shipped_name = source.name
    return rubric
