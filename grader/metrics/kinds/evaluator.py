"""Lab6: accuracy of a TA-provided classifier on generated images against their conditions.

The network is data: a named recipe (``evaluator: iclevr-resnet18``) or an ``architecture:``
block, so next year's evaluator is a rubric edit. The computation is grader/metrics/evaluator.py.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from grader.metrics.kinds.base import (
    ClassStage,
    MetricBase,
    MetricInputs,
    MetricKind,
    MetricOutcome,
)
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
    template = "evaluator.html.j2"
    class_template = "evaluator_class.html.j2"
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
        from grader.files import remembered_sha256
        from grader.metrics.evaluator import load_evaluator, load_labels

        weights, labels, objects = self._paths(name, spec, ctx)
        arch = spec.arch()
        key = tuple(
            remembered_sha256(p) if p.is_file() else str(p) for p in (weights, labels, objects)
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
        if inputs.pictures is not None and outcome.images:
            self._keep_pictures(name, result.details, outcome.images, inputs)
        return MetricOutcome(result, outcome.findings)

    @staticmethod
    def _keep_pictures(name: str, details: dict, images: list[Path], inputs: MetricInputs) -> None:
        """Each label set's image beside the student's page (64x64 PNGs: a few kB each)."""
        import shutil

        folder = inputs.pictures / name
        folder.mkdir(parents=True, exist_ok=True)
        for row, image in zip(details["per_image"], images):
            kept = folder / row["image"]
            shutil.copyfile(image, kept)
            row["picture"] = kept.relative_to(inputs.pictures_root).as_posix()

    def view(self, metric) -> dict:
        """The label sets, misses first: wanted objects, the evaluator's top-k, hits of k."""
        rows = sorted(metric.details.get("per_image", []),
                      key=lambda r: (r["hits"] / max(len(r["true"]), 1), int(r["image"].split(".")[0])))
        return {"label_sets": rows, "pictures": {r["image"]: r["picture"] for r in rows if r.get("picture")}}

    def class_stage(self, name, spec: EvaluatorMetric, results, ctx) -> ClassStage:
        """No findings: which label sets the class gets right, as the share of their objects
        the evaluator finds across every student with a value (the TA's page)."""
        totals: dict[str, list] = {}
        for result in results:
            metric = result.metric(name)
            if metric is None or metric.value is None:
                continue
            for row in metric.details.get("per_image", []):
                entry = totals.setdefault(row["image"], [row["true"], 0, 0, 0])
                entry[1] += row["hits"]
                entry[2] += len(row["true"])
                entry[3] += 1
        view = [
            {"image": image, "true": true, "accuracy": hits / objects, "students": students}
            for image, (true, hits, objects, students) in totals.items()
        ]
        view.sort(key=lambda r: (r["accuracy"], int(r["image"].split(".")[0])))
        return ClassStage(codes=(), view=view)
