"""The shape every metric kind has, end to end: its rubric model, its TA files, its checks
before grading, its computation, the grade rules it adds, an optional stage across the class,
its columns in the exports and the class table, and its section of the report pages.

A metric kind is one module in this package, listed once in its ``__init__``; the rubric
schema, the grading key, the checks before grading, the pipeline, the batch, the exports and
the pages all go through it. Nothing outside this package names a kind.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from grader.findings import Finding
from grader.results import MetricResult, StudentResult
from grader.schema import Strict


class KindContext(Protocol):
    """What a kind may use of the grading run (grader.pipeline.GradingContext has it all)."""

    device: str | None
    weights: Path | None
    forward_lock: threading.Lock  # one network on one device: students take turns

    @property
    def cache_root(self) -> Path: ...

    def resolve(self, path: Path | str) -> Path:
        """A TA file named in the rubric, relative to the rubric's folder."""

    def override(self, name: str, default: Path) -> Path:
        """The TA file of metric ``name``: `--stats NAME=PATH` when given, else the rubric's."""

    def engine(self, backend: str) -> Any:
        """The FID InceptionV3 of a course backend (grader.metrics.fid.FidEngine), shared."""


class MetricBase(Strict):
    kind: str  # each kind narrows this to its Literal
    artifact: str  # the artifact it measures
    title: str = ""

    artifact_kinds: ClassVar[tuple[str, ...]] = ("image_set",)  # kinds `artifact` may name


@dataclass
class MetricInputs:
    student_id: str
    images: dict[str, list[Path]]  # image_set artifact -> its checked images, name-sorted
    roots: dict[str, Path]  # artifact -> unpacked folder (image sets, source)
    files: dict[str, Path]  # single-file artifacts (image, process_grid, document) -> file
    # Where a kind may keep pictures its page section shows (the student's report folder, None
    # when no report is written); it records them as paths relative to `pictures_root`.
    pictures: Path | None = None
    pictures_root: Path | None = None


@dataclass
class MetricOutcome:
    result: MetricResult  # value None and `skipped` set when it was not computed
    findings: list[Finding] = field(default_factory=list)


@dataclass
class ScoringRules:
    deductions: list[tuple[str, float, str]] = field(default_factory=list)  # (code, points, title)
    zero_if: list[str] = field(default_factory=list)  # finding codes that zero the grade


@dataclass
class ClassStage:
    """What a kind's stage across the class found, after every student was graded."""

    codes: tuple[str, ...]  # the finding codes this stage owns: replaced on every student
    findings: dict[str, list[Finding]] = field(default_factory=dict)  # student id -> findings
    view: Any = None  # plain data for the kind's section of the class page (the TA's only)


# Provenance keys every kind may use, in the order pages show them; a kind adds or relabels
# its own in `provenance_labels`. Keys not listed follow in sorted order.
PROVENANCE_LABELS = {
    "backend": "Tool",
    "backend_version": "Tool version",
    "version": "Tool version",
    "weights_sha256": "Weights (sha256)",
    "stats_sha256": "Reference statistics (sha256)",
    "n": "Images used",
    "N": "Images used",
    "device": "Device",
    "resize": "Resize",
}


class MetricKind:
    kind: ClassVar[str]
    model: ClassVar[type[MetricBase]]
    # The rubric field that `--stats NAME=PATH` replaces for this kind (None: not overridable).
    override_field: ClassVar[str | None] = None
    needs_model: ClassVar[bool] = False  # runs a network: the device must exist
    uses_inception: ClassVar[bool] = False  # reads the FID Inception weights
    lower_is_better: ClassVar[bool] = True  # the value's direction (leaderboards, when no band says)
    # Named values besides `value` (e.g. precision and recall): a band names one as
    # `metric: NAME.COMPONENT`, the exports give each its own column.
    components: ClassVar[tuple[str, ...]] = ()
    provenance_labels: ClassVar[dict[str, str]] = {}
    digits: ClassVar[int] = 4  # decimals of its values in the exports
    # The kind's section of the student page, and of the class page after its class stage:
    # templates in grader/metrics/kinds/templates/ (the generic one shows value and provenance).
    template: ClassVar[str] = "metric.html.j2"
    class_template: ClassVar[str | None] = None

    # -- configuration -------------------------------------------------------------------

    def ta_files(self, name: str, spec, ctx: KindContext) -> list[Path]:
        """TA files this metric reads; their content is part of the grading key."""
        return []

    def preflight(self, name: str, spec, ctx: KindContext) -> list[str]:
        """Configuration problems, one sentence each naming the fix; checked once before any
        student is graded."""
        return [
            f"metric {name}: file not found: {path}"
            for path in self.ta_files(name, spec, ctx)
            if not path.is_file()
        ]

    def precompute(self, name: str, spec, ctx: KindContext, cache_dir: Path) -> None:
        """Work that depends only on the TA files, done once when an autograder is built and
        written into `cache_dir`, the cache its grading reads (nothing by default)."""

    # -- grading -------------------------------------------------------------------------

    def measure(self, name: str, spec, inputs: MetricInputs, ctx: KindContext) -> MetricOutcome:
        raise NotImplementedError

    def scoring_rules(self, name: str, spec) -> ScoringRules:
        """Rules this metric adds to the rubric's own deductions and zero_if, keyed on its
        finding codes: scored, explained and cleared by a TA override like any other rule."""
        return ScoringRules()

    def set_distance(self, name: str, spec, ctx: KindContext):
        """A function (a, b) -> float comparing two image sets by this metric (the sampler
        audit's `mode: fid`), or None when the kind cannot compare sets."""
        return

    @property
    def compares_sets(self) -> bool:
        return type(self).set_distance is not MetricKind.set_distance

    def class_stage(
        self, name: str, spec, results: list[StudentResult], ctx: KindContext
    ) -> ClassStage | None:
        """Checks across students, run once after everyone is graded (None: this kind has
        none). Its findings replace the student's findings of `codes`; a change re-scores."""
        return None

    @staticmethod
    def new_result(name: str, spec) -> MetricResult:
        return MetricResult(name=name, kind=spec.kind, title=spec.title or name, artifact=spec.artifact)

    # -- exports and the class table -----------------------------------------------------

    def columns(self, name: str) -> list[str]:
        """Column names in the grade CSV and the class table."""
        return [name] + [f"{name}_{c}" for c in self.components]

    def column_values(self, name: str, result: StudentResult) -> list[float | str | None]:
        """This student's values of `columns(name)`: None where not computed."""
        metric = result.metric(name)
        if metric is None or metric.value is None:
            return [None] * len(self.columns(name))
        return [metric.value] + [metric.components.get(c) for c in self.components]

    # -- pages ---------------------------------------------------------------------------

    def view(self, metric: MetricResult) -> dict[str, Any]:
        """Data for the kind's template beyond the record itself. The generic template shows
        `rows`, a list of (label, value), and `notes`, sentences under the value; any template
        gets `share_chart`, (shares, reference shares) or None, drawn as a bar chart, and
        `pictures`, {key: path relative to the student's folder} of pictures the kind kept,
        as checked <img> data in `m.pictures`."""
        rows = [(c.replace("_", " ").capitalize(), metric.components.get(c)) for c in self.components]
        return {"rows": rows if metric.value is not None else [], "notes": []}

    def provenance(self, metric: MetricResult) -> list[tuple[str, Any]]:
        """(label, value) pairs of the metric's provenance, labelled by this kind."""
        labels = {**PROVENANCE_LABELS, **self.provenance_labels}
        provenance = dict(metric.provenance)
        items = [(label, provenance.pop(key)) for key, label in labels.items() if key in provenance]
        return items + sorted(provenance.items())

    def class_view(self, name: str, view: Any) -> dict[str, Any]:
        """Data for `class_template` from the class stage's `view`."""
        return {"data": view}


class ReferenceFeaturesKind(MetricKind):
    """A kind that compares a set's Inception features with the TA's reference features (a
    statistics file written by `grader stats --features`), in the spec's `reference` field."""

    override_field = "reference"
    needs_model = True
    uses_inception = True
    provenance_labels: ClassVar[dict[str, str]] = {
        "weights_sha256": "Inception weights (sha256)",
        "reference_sha256": "Reference features (sha256)",
        "reference_n": "Reference images",
    }

    def reference_path(self, name: str, spec, ctx: KindContext) -> Path:
        return ctx.override(name, spec.reference)

    def ta_files(self, name: str, spec, ctx: KindContext) -> list[Path]:
        return [self.reference_path(name, spec, ctx)]

    def preflight(self, name: str, spec, ctx: KindContext) -> list[str]:
        from grader.errors import GraderError
        from grader.metrics.inception import resolve_weights
        from grader.metrics.reference_features import has_features

        path = self.reference_path(name, spec, ctx)
        problems = []
        if not path.is_file():
            problems.append(f"metric {name}: reference features not found at {path} (pass --stats "
                            f"{name}=PATH, or --no-metrics for format checks only)")
        elif not has_features(path):
            problems.append(f"metric {name}: {path} has no reference features; write them with "
                            f"`grader stats REAL_IMAGES -o {path.name} --features`")
        try:
            resolve_weights(ctx.weights)
        except GraderError as exc:  # names the file and the places it may go
            problems.append(str(exc))
        return problems

    def reference_provenance(self, reference) -> dict[str, Any]:
        return {"reference": str(reference.path), "reference_sha256": reference.sha256,
                "reference_n": len(reference.features)}
