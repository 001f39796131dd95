"""KID, the kernel inception distance (Bińkowski et al. 2018), of an image set against the TA's
reference features, on the same course-backend Inception features as FID, computed by
torch-fidelity's `kid_features_to_metric`.

Why beside FID: HW9 grades 1,024 images per set, fewer than FID's 2,048 feature dimensions,
where FID is biased upward; KID's estimator is unbiased at any number of images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from grader.metrics.kinds.base import MetricBase, MetricInputs, MetricOutcome, ReferenceFeaturesKind
from grader.metrics.kinds.fid import Backend

NOTE = (
    "KID is the squared distance between the two sets' Inception features under a polynomial "
    "kernel (lower is better, 0 for the same distribution). Unlike FID, it is unbiased at any "
    "number of images: FID from fewer images than its 2,048 feature dimensions (HW9's 1,024) "
    "reads too high."
)

# torch-fidelity's defaults, stated so a rubric (and its provenance) never depends on them moving.
KERNEL_DEGREE, KERNEL_COEF0, RNG_SEED = 3, 1.0, 2020


class KidMetric(MetricBase):
    kind: Literal["kid"]
    backend: Backend = "pytorch-gan-metrics"
    reference: Path  # a statistics file with reference features (`grader stats --features`)
    subsets: int = Field(100, gt=0)  # MMD estimates averaged
    subset_size: int = Field(1000, gt=1)  # images per subset (fewer when a set is smaller)


class KidKind(ReferenceFeaturesKind):
    kind = "kid"
    model = KidMetric
    components = ("std",)  # the spread of the subset estimates
    digits = 6  # KIDs are small numbers (about 0.001 to 0.1)

    def measure(self, name, spec: KidMetric, inputs: MetricInputs, ctx) -> MetricOutcome:
        import numpy as np
        import torch
        import torch_fidelity
        from torch_fidelity.metric_kid import (
            KEY_METRIC_KID_MEAN,
            KEY_METRIC_KID_STD,
            kid_features_to_metric,
        )

        from grader.metrics.reference_features import load_reference_features

        result = self.new_result(name, spec)
        engine = ctx.engine(spec.backend)
        with ctx.forward_lock:
            features, provenance = engine.set_features(inputs.images[spec.artifact])
        reference = load_reference_features(self.reference_path(name, spec, ctx))
        size = min(spec.subset_size, len(features), len(reference.features))
        if size < 2:
            result.skipped = f"KID needs at least 2 images; got {len(features)}"
            return MetricOutcome(result)
        # float32, as torch-fidelity's own extractor gives them (the values are float32 already).
        out = kid_features_to_metric(
            torch.from_numpy(features.astype(np.float32)), torch.from_numpy(reference.features),
            kid_subsets=spec.subsets, kid_subset_size=size, kid_kernel="poly",
            kid_kernel_poly_degree=KERNEL_DEGREE, kid_kernel_poly_gamma=None,
            kid_kernel_poly_coef0=KERNEL_COEF0, rng_seed=RNG_SEED, verbose=False,
        )
        result.value = float(out[KEY_METRIC_KID_MEAN])
        result.components = {"std": float(out[KEY_METRIC_KID_STD])}
        result.provenance = {
            "metric": "kid",
            **provenance,
            **self.reference_provenance(reference),
            "estimator": (f"unbiased MMD², polynomial kernel (x·y/{features.shape[1]} + "
                          f"{KERNEL_COEF0:g})^{KERNEL_DEGREE}, mean of {spec.subsets} subsets of {size}, "
                          f"seed {RNG_SEED}"),
            "tool": f"torch-fidelity {torch_fidelity.__version__} kid_features_to_metric",
        }
        if size < spec.subset_size:
            result.warnings.append(f"KID subsets of {size} images, fewer than the rubric's {spec.subset_size}: "
                                   "compare it only with KIDs from subsets of the same size")
        return MetricOutcome(result)

    def view(self, metric) -> dict:
        view = super().view(metric)
        view["notes"] = [NOTE]
        return view
