"""Precision and recall of an image set against the TA's reference features (Kynkäänniemi et al.
2019, k-nearest-neighbour manifolds, k = 3), on the same course-backend Inception features as
FID, computed by torch-fidelity's `prc_features_to_metric`.

They split what one FID mixes: precision, the share of the student's images that look like
real ones (quality); recall, the share of real images the student's set covers (variety; low
recall with high precision is HW9's mode collapse). Report-only unless a band names
`NAME.precision`, `NAME.recall` or NAME (the F-score).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from grader.metrics.kinds.base import MetricBase, MetricInputs, MetricOutcome, ReferenceFeaturesKind
from grader.metrics.kinds.fid import Backend

SUBSET_SEED = 2020  # the subsets that give both sets the same size
BATCH = 1024  # rows of distances computed at once: bounded memory, same result

NOTE = (
    "Precision is the share of your images that fall inside the region the real images cover "
    "(each real image's ball reaches its k-th nearest real neighbour): low precision means "
    "images that do not look real. Recall is the share of real images inside the region your "
    "images cover: low recall with high precision means too little variety, as in mode collapse."
)


def precision_recall(generated, real, k: int = 3) -> tuple[float, float, float]:
    """(precision, recall, F-score) of generated against real features [N, D], by
    torch-fidelity; the larger set is first cut to a fixed random subset of the other's size
    (the method compares equal numbers of images)."""
    import numpy as np
    import torch
    from torch_fidelity.metric_prc import (
        KEY_METRIC_F_SCORE,
        KEY_METRIC_PRECISION,
        KEY_METRIC_RECALL,
        prc_features_to_metric,
    )

    size = min(len(generated), len(real))
    rng = np.random.RandomState(SUBSET_SEED)
    sets = []
    for rows in (generated, real):
        if len(rows) > size:
            rows = rows[np.sort(rng.choice(len(rows), size, replace=False))]
        sets.append(torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32)))
    out = prc_features_to_metric(*sets, prc_neighborhood=k, prc_batch_size=BATCH, save_cpu_ram=True,
                                 verbose=False)
    return float(out[KEY_METRIC_PRECISION]), float(out[KEY_METRIC_RECALL]), float(out[KEY_METRIC_F_SCORE])


class PrecisionRecallMetric(MetricBase):
    kind: Literal["precision_recall"]
    backend: Backend = "pytorch-gan-metrics"
    reference: Path  # a statistics file with reference features (`grader stats --features`)
    k: int = Field(3, ge=1)  # neighbourhood size


class PrecisionRecallKind(ReferenceFeaturesKind):
    kind = "precision_recall"
    model = PrecisionRecallMetric
    lower_is_better = False  # an F-score
    components = ("precision", "recall")  # the value is their F-score

    def measure(self, name, spec: PrecisionRecallMetric, inputs: MetricInputs, ctx) -> MetricOutcome:
        import torch_fidelity

        from grader.metrics.reference_features import load_reference_features

        result = self.new_result(name, spec)
        engine = ctx.engine(spec.backend)
        with ctx.forward_lock:
            features, provenance = engine.set_features(inputs.images[spec.artifact])
        reference = load_reference_features(self.reference_path(name, spec, ctx))
        size = min(len(features), len(reference.features))
        if size <= spec.k:
            result.skipped = f"precision/recall with k = {spec.k} needs more than {spec.k} images; got {size}"
            return MetricOutcome(result)
        precision, recall, f_score = precision_recall(features, reference.features, spec.k)
        result.value = f_score
        result.components = {"precision": precision, "recall": recall}
        result.provenance = {
            "metric": "precision_recall",
            **provenance,
            **self.reference_provenance(reference),
            "method": (f"k-NN manifolds, k = {spec.k}, {size:,} generated vs {size:,} real images "
                       f"(larger set subsampled, seed {SUBSET_SEED}); value = F-score"),
            "tool": f"torch-fidelity {torch_fidelity.__version__} prc_features_to_metric",
        }
        return MetricOutcome(result)

    def view(self, metric) -> dict:
        view = super().view(metric)
        view["notes"] = ["The number above is their F-score, the harmonic mean of the two.", NOTE]
        return view
