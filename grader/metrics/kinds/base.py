"""The shape every metric kind has: its rubric model, its TA files, its checks before grading,
its computation and, optionally, the grade lines it adds.

A metric kind is one module in this package, listed once in its ``__init__``; the rubric
schema, the grading key, the checks before grading and the pipeline all go through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from grader.findings import Finding
from grader.results import MetricResult
from grader.schema import Strict

if TYPE_CHECKING:
    from grader.pipeline import GradingContext


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


@dataclass
class MetricOutcome:
    result: MetricResult  # value None and `skipped` set when it was not computed
    findings: list[Finding] = field(default_factory=list)


@dataclass
class ScoringRules:
    deductions: list[tuple[str, float, str]] = field(default_factory=list)  # (code, points, title)
    zero_if: list[str] = field(default_factory=list)  # finding codes that zero the grade


class MetricKind:
    kind: ClassVar[str]
    model: ClassVar[type[MetricBase]]
    # The rubric field that `--stats NAME=PATH` replaces for this kind (None: not overridable).
    override_field: ClassVar[str | None] = None
    needs_model: ClassVar[bool] = False  # runs a network: the device must exist

    def ta_files(self, name: str, spec, ctx: GradingContext) -> list[Path]:
        """TA files this metric reads; their content is part of the grading key."""
        return []

    def preflight(self, name: str, spec, ctx: GradingContext) -> list[str]:
        """Configuration problems, one sentence each naming the fix; checked once before any
        student is graded."""
        return [
            f"metric {name}: file not found: {path}"
            for path in self.ta_files(name, spec, ctx)
            if not path.is_file()
        ]

    def measure(self, name: str, spec, inputs: MetricInputs, ctx: GradingContext) -> MetricOutcome:
        raise NotImplementedError

    def scoring_rules(self, name: str, spec) -> ScoringRules:
        """Rules this metric adds to the rubric's own deductions and zero_if, keyed on its
        finding codes: scored, explained and cleared by a TA override like any other rule."""
        return ScoringRules()

    @staticmethod
    def new_result(name: str, spec) -> MetricResult:
        return MetricResult(name=name, kind=spec.kind, title=spec.title or name, artifact=spec.artifact)
