"""The registry of metric kinds: one module per kind, listed once here.

A new kind is a module with its rubric model (a ``MetricBase``) and a ``MetricKind`` handler,
added to ``KINDS``; the rubric schema, grading keys, checks before grading, the pipeline, the
class stages, the exports and the pages read this registry. Kind modules import heavy
libraries (torch) only inside their methods.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from grader.metrics.kinds.base import (
    ClassStage,
    KindContext,
    MetricBase,
    MetricInputs,
    MetricKind,
    MetricOutcome,
    ScoringRules,
)
from grader.metrics.kinds.evaluator import EvaluatorKind
from grader.metrics.kinds.fid import FidKind
from grader.metrics.kinds.integrity import IntegrityKind
from grader.metrics.kinds.kid import KidKind
from grader.metrics.kinds.precision_recall import PrecisionRecallKind

KINDS: dict[str, MetricKind] = {
    handler.kind: handler
    for handler in (FidKind(), EvaluatorKind(), IntegrityKind(), KidKind(), PrecisionRecallKind())
}

# The rubric's `metrics:` entries: one model per kind, told apart by `kind:`.
Metric = Annotated[Union[tuple(h.model for h in KINDS.values())], Field(discriminator="kind")]  # noqa: UP007

_GENERIC = MetricKind()  # for a stored record of a kind this version does not have


def handler_for(spec: MetricBase) -> MetricKind:
    return KINDS[spec.kind]


def handler_of(kind: str) -> MetricKind:
    """The handler of a stored record's kind (a generic one: value and provenance only, for
    a kind this version does not have)."""
    return KINDS.get(kind, _GENERIC)


def model_of(kind: str) -> type[MetricBase] | None:
    handler = KINDS.get(kind)
    return handler.model if handler else None


__all__ = [
    "KINDS",
    "ClassStage",
    "KindContext",
    "Metric",
    "MetricBase",
    "MetricInputs",
    "MetricKind",
    "MetricOutcome",
    "ScoringRules",
    "handler_for",
    "handler_of",
    "model_of",
]
