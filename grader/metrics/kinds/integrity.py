"""Integrity of an image set: training-set copies, mode collapse, and the signature that the
class-wide shared-set screen (grader.integrity.shared.shared_pairs) reads after grading.

A flag is evidence for a TA, not a verdict (a diffusion model can reproduce a training image
verbatim), so the default ``action`` only flags; ``deduct`` and ``zero`` are the TA's choice.
The computation is grader/integrity/.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from grader import atomic
from grader.layout import student_dir_name
from grader.metrics.kinds.base import (
    ClassStage,
    MetricBase,
    MetricInputs,
    MetricKind,
    MetricOutcome,
    ScoringRules,
)

MAX_LISTED = 50  # flagged image names kept in the details (the count is always exact)
SHARED_CODE = "integrity.shared_set"
CODES = ("integrity.training_copies", "integrity.mode_collapse", SHARED_CODE)


class IntegrityMetric(MetricBase):
    kind: Literal["integrity"]
    training: Path  # the TA's training data: MNIST IDX folder, images folder or zip
    ratio: float = Field(0.4, gt=0, lt=1)  # an image is a copy below this d1/d2
    min_flagged: int = Field(25, ge=1)  # the set is flagged at this many copies
    min_shared: int = Field(25, ge=1)  # two students' sets are flagged at this many shared images
    near_duplicate_l2: float = Field(1.0, gt=0)
    max_near_duplicate_share: float = Field(0.1, gt=0, le=1)
    max_class_tv: float = Field(0.3, gt=0, le=1)  # digits: TV distance from the training histogram
    max_class_share: float = Field(0.35, gt=0, le=1)  # digits: largest class share
    classes: Literal["classifier", "neighbours"] = "classifier"  # how digits are labelled
    thumbnail: int = Field(32, ge=8, le=128)  # photos: compared as size x size RGB thumbnails
    action: Literal["flag", "deduct", "zero"] = "flag"
    points: float = Field(0.0, ge=0)  # deducted per finding when action is deduct

    @model_validator(mode="after")
    def _points(self) -> IntegrityMetric:
        if self.action == "deduct" and self.points <= 0:
            raise ValueError("action: deduct needs `points` (> 0) to deduct")
        return self


class IntegrityKind(MetricKind):
    kind = "integrity"
    model = IntegrityMetric
    template = "integrity.html.j2"
    class_template = "integrity_class.html.j2"
    provenance_labels: ClassVar[dict[str, str]] = {
        "training_N": "Training images", "training_key": "Training set (key)",
    }

    def __init__(self) -> None:
        self._loaded: dict[tuple, object] = {}
        self._lock = threading.Lock()

    def _path(self, spec: IntegrityMetric, ctx) -> Path:
        return ctx.resolve(spec.training)

    def ta_files(self, name, spec: IntegrityMetric, ctx) -> list[Path]:
        from grader.integrity.training import source_files

        path = self._path(spec, ctx)
        from grader.errors import GraderError

        try:
            return source_files(path)
        except (GraderError, OSError):  # reported by preflight
            return [path]

    def _training(self, spec: IntegrityMetric, ctx):
        from grader.integrity.training import load_training

        path = self._path(spec, ctx)
        with self._lock:
            key = (str(path), spec.thumbnail)
            if key not in self._loaded:
                self._loaded[key] = load_training(path, ctx.cache_root, spec.thumbnail)
            return self._loaded[key]

    def preflight(self, name, spec: IntegrityMetric, ctx) -> list[str]:
        from grader.errors import GraderError

        path = self._path(spec, ctx)
        if not path.exists():
            return [
                (
                    f"metric {name}: training data not found at {path} (an MNIST IDX folder, "
                    "an images folder or a zip, relative to the rubric)"
                )
            ]
        try:
            training = self._training(spec, ctx)
        except (GraderError, OSError, ValueError) as exc:
            return [f"metric {name}: cannot read the training data {path}: {exc}"]
        if spec.classes == "classifier" and training.digits:
            try:
                from reference.classifier import load_digit_classifier

                load_digit_classifier()
            except (GraderError, OSError, RuntimeError) as exc:
                return [f"metric {name}: {exc} (or set classes: neighbours)"]
        return []

    def measure(self, name, spec: IntegrityMetric, inputs: MetricInputs, ctx) -> MetricOutcome:
        from grader import findings
        from grader.image_files import UnreadableImageError, load_rgb
        from grader.integrity.classwide import signature_folder
        from grader.integrity.collapse import check_collapse
        from grader.integrity.copies import VARIANTS, check_copies
        from grader.integrity.shared import duplicate_groups, signature
        from grader.integrity.training import prepare_submission

        result = self.new_result(name, spec)
        paths = inputs.images.get(spec.artifact, [])
        decoded, names = [], []
        root = inputs.roots.get(spec.artifact)
        for path in paths:
            try:
                decoded.append(load_rgb(path))
            except UnreadableImageError:
                continue  # the image checks already report it
            names.append(Path(path).relative_to(root).as_posix() if root else Path(path).name)
        if len(decoded) < 2:
            result.skipped = "fewer than two readable images to measure"
            return MetricOutcome(result)
        training = self._training(spec, ctx)
        images = prepare_submission(decoded, training)
        variants = training.variants
        copies = check_copies(
            images, training.indexes(), spec.ratio, variants, training=training.images
        )
        labels = None
        if training.digits and training.labels is not None:
            if spec.classes == "classifier":
                from grader.integrity.collapse import digit_labels

                with ctx.forward_lock:
                    labels = digit_labels(images)
            else:
                labels = training.labels[copies.neighbour]
        collapse = check_collapse(
            images, labels, training.histogram, spec.near_duplicate_l2, training.index()
        )
        sig = signature(names, decoded)
        # One file per student and metric: HW9's three sets share one training set.
        sig_path = (
            signature_folder(ctx.cache_root)
            / f"{training.key[:16]}-{student_dir_name(name)}-{student_dir_name(inputs.student_id)}.npz"
        )
        atomic.write_with(sig_path, sig.save)

        flagged = [i for i in range(len(names)) if copies.flagged[i]]
        severity = findings.warning if spec.action == "flag" else findings.error
        out = []
        copied = copies.count >= spec.min_flagged
        if copied:
            out.append(
                severity(
                    "integrity.training_copies",
                    f"{copies.count} of {len(names)} images are (near) copies of training images "
                    f"(nearest-neighbour ratio below {spec.ratio}); a TA will look at them",
                    artifact=spec.artifact,
                )
            )
        reasons = []
        if collapse.near_duplicate_share > spec.max_near_duplicate_share:
            reasons.append(
                f"{collapse.near_duplicate_share:.0%} of the images have a near-duplicate"
            )
        if collapse.tv_distance is not None and collapse.tv_distance > spec.max_class_tv:
            reasons.append(
                f"the digit classes are {collapse.tv_distance:.2f} (TV) from the training mix"
            )
        if (
            collapse.largest_class_share is not None
            and collapse.largest_class_share > spec.max_class_share
        ):
            reasons.append(f"{collapse.largest_class_share:.0%} of the digits are one class")
        if reasons:
            out.append(
                severity("integrity.mode_collapse", "; ".join(reasons), artifact=spec.artifact)
            )

        result.value = float(copies.count)
        result.provenance = {
            "N": len(names),
            "training_key": training.key,
            "training_N": len(training.images),
            "variants": list(variants),
            "exhaustive_searches": copies.exhaustive,
            "classes": spec.classes if labels is not None else None,
        }
        result.details = {
            "action": spec.action,
            "copies": {
                "flagged_count": copies.count,
                "threshold": spec.ratio,
                "min_flagged": spec.min_flagged,
                "flagged": copied,
                "images": [
                    {
                        "name": names[i],
                        "ratio": round(float(copies.ratio[i]), 3),
                        "training_index": int(copies.neighbour[i]),
                        "matched_as": VARIANTS[copies.variant[i]],  # raw, centred, flip, posed, ...
                    }
                    for i in sorted(flagged, key=lambda i: copies.ratio[i])[:MAX_LISTED]
                ],
            },
            "collapse": {
                "near_duplicate_share": round(collapse.near_duplicate_share, 4),
                "exact_duplicate_groups": len(duplicate_groups(sig)),
                "class_histogram": None
                if collapse.histogram is None
                else [round(float(v), 4) for v in collapse.histogram],
                "training_histogram": None
                if training.histogram is None
                else [round(float(v), 4) for v in training.histogram],
                "tv_distance": None
                if collapse.tv_distance is None
                else round(collapse.tv_distance, 4),
                "largest_class_share": collapse.largest_class_share,
                "flagged": bool(reasons),
            },
            "signature": sig_path.name,
        }
        return MetricOutcome(result, out)

    def scoring_rules(self, name, spec: IntegrityMetric) -> ScoringRules:
        # flag (the default): warnings for the TA, no points; deduct / zero: the findings are
        # errors and these rules turn them into points, like a rubric's own rules.
        codes = list(CODES)
        if spec.action == "deduct":
            titles = ("Integrity: training-set copies", "Integrity: mode collapse",
                      "Integrity: images shared with another student")
            return ScoringRules(deductions=[(c, spec.points, t) for c, t in zip(codes, titles)])
        if spec.action == "zero":
            return ScoringRules(zero_if=codes)
        return ScoringRules()

    def class_stage(self, name, spec: IntegrityMetric, results, ctx) -> ClassStage:
        """Students whose sets share images: each gets a finding saying how many of their
        images another submission shares, never with whom; the pairs go to the TA's page."""
        from grader import findings
        from grader.integrity.classwide import screen_class

        pairs = screen_class(name, results, ctx.cache_root, min_shared=spec.min_shared, ratio=spec.ratio)
        make = findings.warning if spec.action == "flag" else findings.error
        found: dict[str, list] = {}
        for pair in pairs:
            sentence = (
                f"{pair['shared']:,} of your images also appear (identical or re-encoded) in another "
                "student's submission; a TA will compare the two"
            )
            for sid in (pair["a"], pair["b"]):
                found.setdefault(sid, []).append(make(SHARED_CODE, sentence, artifact=spec.artifact))
        return ClassStage(codes=(SHARED_CODE,), findings=found, view=pairs)

    def columns(self, name: str) -> list[str]:
        return [name, f"{name}_flags"]  # copies found, and which integrity findings were raised

    def column_values(self, name: str, result) -> list:
        metric = result.metric(name)
        artifact = metric.artifact if metric else None
        flags = sorted({f.code.removeprefix("integrity.") for f in result.findings
                        if f.code in CODES and f.artifact == artifact})
        copies = metric.value if metric is not None else None
        return [copies, ";".join(flags) if metric is not None and metric.value is not None else None]

    def view(self, metric) -> dict:
        collapse = metric.details.get("collapse") or {}
        shares = collapse.get("class_histogram")
        return {
            "copies": metric.details.get("copies") or {},
            "collapse": collapse,
            "share_chart": (shares, collapse.get("training_histogram")) if shares else None,
        }
