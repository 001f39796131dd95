"""The registry of metric kinds: one module per kind, listed once here.

A new kind is a module with its rubric model (a ``MetricBase``) and a ``MetricKind`` handler,
added to ``KINDS``; the rubric schema, grading keys, checks before grading and the pipeline
read this registry. Kind modules import heavy libraries (torch) only inside their methods.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from grader.metrics.kinds.base import (
    MetricBase,
    MetricInputs,
    MetricKind,
    MetricOutcome,
    ScoringRules,
)
from grader.metrics.kinds.evaluator import EvaluatorKind, EvaluatorMetric
from grader.metrics.kinds.fid import FidKind, FidMetric
from grader.metrics.kinds.integrity import IntegrityKind, IntegrityMetric

KINDS: dict[str, MetricKind] = {
    handler.kind: handler for handler in (FidKind(), EvaluatorKind(), IntegrityKind())
}

# The rubric's `metrics:` entries: one model per kind, told apart by `kind:`.
Metric = Annotated[Union[tuple(h.model for h in KINDS.values())], Field(discriminator="kind")]  # noqa: UP007


def handler_for(spec: MetricBase) -> MetricKind:
    return KINDS[spec.kind]


__all__ = [
    "KINDS",
    "EvaluatorMetric",
    "FidMetric",
    "IntegrityMetric",
    "Metric",
    "MetricBase",
    "MetricInputs",
    "MetricKind",
    "MetricOutcome",
    "ScoringRules",
    "handler_for",
]
