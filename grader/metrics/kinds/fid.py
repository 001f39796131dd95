"""FID of an image set against the TA's reference statistics, computed as the course tool does."""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar, Literal

from grader.errors import GraderError
from grader.metrics.kinds.base import MetricBase, MetricInputs, MetricKind, MetricOutcome

# The course tools whose InceptionV3, resize and normalisation a backend reproduces.
Backend = Literal["pytorch-gan-metrics", "pytorch-fid"]


class FidMetric(MetricBase):
    kind: Literal["fid"]
    backend: Backend = "pytorch-gan-metrics"
    stats: Path  # TA-published reference statistics (npz with mu, sigma); relative to rubric
    dims: Literal[2048] = 2048


class FidKind(MetricKind):
    kind = "fid"
    model = FidMetric
    uses_inception = True
    override_field = "stats"
    needs_model = True
    provenance_labels: ClassVar[dict[str, str]] = {"weights_sha256": "Inception weights (sha256)"}

    def stats_path(self, name: str, spec: FidMetric, ctx) -> Path:
        return ctx.override(name, spec.stats)

    def ta_files(self, name, spec: FidMetric, ctx) -> list[Path]:
        return [self.stats_path(name, spec, ctx)]

    def precompute(self, name, spec: FidMetric, ctx, cache_dir: Path) -> None:
        """sqrtm(Σ_ref): on an autograder it is read, not computed (the eigen solve alone
        needs ~170 MB of a 768 MB limit)."""
        from grader.metrics.frechet import save_root

        save_root(self.stats_path(name, spec, ctx), cache_dir)

    def preflight(self, name, spec: FidMetric, ctx) -> list[str]:
        from grader.metrics.inception import resolve_weights

        problems = []
        stats = self.stats_path(name, spec, ctx)
        if not stats.is_file():
            problems.append(
                f"metric {name}: reference statistics not found at {stats} "
                f"(pass --stats {name}=PATH, or --no-metrics for format checks only)"
            )
        try:
            resolve_weights(ctx.weights)
        except GraderError as exc:  # names the file and the places it may go
            problems.append(str(exc))
        return problems

    def measure(self, name, spec: FidMetric, inputs: MetricInputs, ctx) -> MetricOutcome:
        result = self.new_result(name, spec)
        images = inputs.images[spec.artifact]
        engine = ctx.engine(spec.backend)
        with ctx.forward_lock:  # one model on one device: students take turns
            fid = engine.fid(images, self.stats_path(name, spec, ctx))
        result.provenance = dict(fid.provenance)
        if math.isnan(fid.fid):  # fewer than two images: FID is undefined, never a number to score
            result.skipped = "; ".join(fid.warnings) or "FID is undefined for this set"
            return MetricOutcome(result)
        result.value = fid.fid
        result.warnings = list(fid.warnings)
        return MetricOutcome(result)

    def set_distance(self, name, spec: FidMetric, ctx):
        from grader.metrics.frechet import frechet_distance

        def fid(a: list[Path], b: list[Path]) -> float:
            engine = ctx.engine(spec.backend)
            with ctx.forward_lock:
                return frechet_distance(*engine.statistics(a), *engine.statistics(b))

        return fid
