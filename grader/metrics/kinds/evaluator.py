"""Lab6: accuracy of a TA-provided classifier on generated images against their conditions."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from grader.metrics.kinds.base import MetricBase, MetricInputs, MetricKind, MetricOutcome


class EvaluatorMetric(MetricBase):
    kind: Literal["evaluator_accuracy"]
    weights: Path  # the TA's evaluator weights; never shipped with the project
    labels: Path  # e.g. test.json
    objects: Path | None = None  # objects.json mapping names to class indices


class EvaluatorKind(MetricKind):
    kind = "evaluator_accuracy"
    model = EvaluatorMetric
    needs_model = True

    def ta_files(self, name, spec: EvaluatorMetric, ctx) -> list[Path]:
        paths = [spec.weights, spec.labels] + ([spec.objects] if spec.objects else [])
        return [ctx.rubric.resolve(p) for p in paths]

    def measure(self, name, spec: EvaluatorMetric, inputs: MetricInputs, ctx) -> MetricOutcome:
        result = self.new_result(name, spec)
        result.skipped = "the evaluator's architecture is not known to this version"
        return MetricOutcome(result)
