"""Lab6: accuracy of a TA-provided classifier on generated images against their conditions.

The network is data: a named recipe (``evaluator: iclevr-resnet18``) or an ``architecture:``
block, so next year's evaluator is a rubric edit. The computation is grader/metrics/evaluator.py.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from grader.metrics.kinds.base import MetricBase, MetricInputs, MetricKind, MetricOutcome
from grader.schema import Strict


class Architecture(Strict):
    """The evaluator network and its input, as the TA's evaluator.py builds them."""

    backbone: str = "resnet18"  # a torchvision.models name, built with weights=None
    head: str = "fc"  # the backbone's Linear layer replaced by Linear(in, num_classes) + activation
    num_classes: int = Field(24, gt=1)
    activation: Literal["sigmoid", "softmax", "none"] = "sigmoid"
    input_size: tuple[int, int] = (
        64,
        64,
    )  # (width, height); other sizes are findings, never resized
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # Normalize after ToTensor
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    state_key: str | None = "model"  # checkpoint key holding the state dict; None: the file is one


# The course's recipe: resnet18, fc -> Sequential(Linear(512, 24), Sigmoid()), 64x64, (0.5, 0.5).
PRESETS: dict[str, Architecture] = {"iclevr-resnet18": Architecture()}


class EvaluatorMetric(MetricBase):
    kind: Literal["evaluator_accuracy"]
    evaluator: str = "iclevr-resnet18"  # a named recipe, or the name of `architecture`
    architecture: Architecture | None = None  # given: used instead of the named recipe
    weights: Path  # the TA's checkpoint ({'model': state_dict}) or TorchScript file
    labels: Path  # e.g. test.json: a list of lists of object names, image i is i.png
    objects: Path  # objects.json: object name -> class index
    batch_size: int = Field(64, gt=0)

    @model_validator(mode="after")
    def _known(self) -> EvaluatorMetric:
        if self.architecture is None and self.evaluator not in PRESETS:
            raise ValueError(
                f"evaluator {self.evaluator!r} is not a known recipe ({', '.join(PRESETS)}); "
                "describe it with an `architecture:` block"
            )
        return self

    def arch(self) -> Architecture:
        return self.architecture or PRESETS[self.evaluator]


class EvaluatorKind(MetricKind):
    kind = "evaluator_accuracy"
    model = EvaluatorMetric
    lower_is_better = False  # an accuracy
    override_field = "weights"
    needs_model = True
    provenance_labels: ClassVar[dict[str, str]] = {
        "evaluator": "Evaluator",
        "weights_sha256": "Evaluator checkpoint (sha256)",
        "labels_sha256": "Label file (sha256)",
        "objects_sha256": "objects.json (sha256)",
        "n": "Label sets",
    }

    def __init__(self) -> None:
        self._loaded: dict[tuple, object] = {}
        self._lock = threading.Lock()

    def _paths(self, name: str, spec: EvaluatorMetric, ctx) -> tuple[Path, Path, Path]:
        return (
            ctx.override(name, spec.weights),
            ctx.resolve(spec.labels),
            ctx.resolve(spec.objects),
        )

    def ta_files(self, name, spec: EvaluatorMetric, ctx) -> list[Path]:
        return list(self._paths(name, spec, ctx))

    def _load(self, name, spec: EvaluatorMetric, ctx):
        """(evaluator, labels), loaded once per file content, architecture and device."""
        from grader.files import sha256_file
        from grader.metrics.evaluator import load_evaluator, load_labels

        weights, labels, objects = self._paths(name, spec, ctx)
        arch = spec.arch()
        key = tuple(
            sha256_file(p) if p.is_file() else str(p) for p in (weights, labels, objects)
        )
        key += (arch.model_dump_json(), ctx.device)
        with self._lock:
            if key not in self._loaded:
                self._loaded[key] = (
                    load_evaluator(weights, arch, ctx.device),
                    load_labels(labels, objects, arch.num_classes),
                )
            return self._loaded[key]

    def preflight(self, name, spec: EvaluatorMetric, ctx) -> list[str]:
        from grader.metrics.evaluator import EvaluatorError

        missing = [p for p in self.ta_files(name, spec, ctx) if not p.is_file()]
        if missing:
            return [
                f"metric {name}: file not found: {p} (the TA's evaluator files; put them there"
                + (f" or pass --stats {name}=PATH for the weights)" if p == missing[0] else ")")
                for p in missing
            ]
        try:
            self._load(name, spec, ctx)
        except EvaluatorError as exc:
            return [f"metric {name}: {exc}"]
        return []

    def measure(self, name, spec: EvaluatorMetric, inputs: MetricInputs, ctx) -> MetricOutcome:
        from grader.metrics.evaluator import evaluator_accuracy

        result = self.new_result(name, spec)
        images = inputs.images[spec.artifact]
        evaluator, labels = self._load(name, spec, ctx)
        with ctx.forward_lock:  # one model on one device: students take turns
            outcome = evaluator_accuracy(
                images,
                evaluator,
                labels,
                artifact=spec.artifact,
                label_name=Path(spec.labels).name,
                batch_size=spec.batch_size,
            )
        result.value, result.skipped = outcome.value, outcome.skipped
        result.provenance = {"evaluator": spec.evaluator, **outcome.provenance}
        result.details = outcome.details
        return MetricOutcome(result, outcome.findings)
