"""Provenance audit: regenerate K images with the rubric's seed and compare with the upload.

The pipeline runs the sampler once more with ``audit_spec(spec)`` (``num`` = the audit's
count, same seed) and hands that output to ``audit_against_submitted``:

- ``exact``: each regenerated image is matched by name with the submitted one; the mean
  absolute difference of their RGB pixels (0-255) must be at most ``tolerance``. This holds
  only if image i depends on nothing but (seed, i), which CONTRACT.md asks of samplers.
- ``fid``: the two sets are compared by a FID function the caller supplies,
  ``fid(regenerated_paths, submitted_paths) -> float``; at most ``tolerance`` passes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from grader.errors import GraderError
from grader.findings import Finding, compact_list, error
from grader.sandbox.spec import SampleAudit, SampleSpec

FidFunction = Callable[[Sequence[Path], Sequence[Path]], float]


def audit_spec(spec: SampleSpec) -> SampleSpec:
    """The spec of the audit run: the same command and seed, ``audit.count`` images."""
    if spec.audit is None:
        raise GraderError("the rubric's sample section has no audit")
    return spec.model_copy(update={"num": spec.audit.count})


def _regenerated(folder: Path, count: int) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    return files[:count]


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def _difference(a: Path, b: Path) -> tuple[float, str]:
    """Mean absolute pixel difference, or inf with the reason they cannot be compared."""
    try:
        x, y = _rgb(a), _rgb(b)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        return float("inf"), f"unreadable ({type(exc).__name__})"
    if x.shape != y.shape:
        return float("inf"), f"size {x.shape[1]}x{x.shape[0]} vs {y.shape[1]}x{y.shape[0]}"
    mad = float(np.abs(x - y).mean())
    return mad, f"{mad:.2f}"


def audit_against_submitted(
    outcome_dir: Path,
    submitted_images: list[Path],
    audit: SampleAudit,
    *,
    fid: FidFunction | None = None,
    artifact: str | None = None,
) -> list[Finding]:
    regenerated = _regenerated(Path(outcome_dir), audit.count)
    if not regenerated:
        return [
            error(
                "sandbox.audit_no_images",
                "the audit run of the sampler produced no images to compare with the submitted set",
                artifact=artifact,
            )
        ]
    if audit.mode == "fid":
        return _audit_fid(regenerated, submitted_images, audit, fid, artifact)

    by_name = {p.name: p for p in submitted_images}
    unmatched = [p.name for p in regenerated if p.name not in by_name]
    differing: list[tuple[str, float, str]] = []
    for path in regenerated:
        if path.name in by_name:
            mad, shown = _difference(path, by_name[path.name])
            if mad > audit.tolerance:
                differing.append((path.name, mad, shown))

    findings = []
    if unmatched:
        findings.append(
            error(
                "sandbox.audit_unmatched",
                f"{len(unmatched)} of {len(regenerated)} images the sampler regenerated have no "
                f"submitted image of the same name: {compact_list(unmatched)}",
                artifact=artifact,
                hint="name the images the same way in your sampler and in your upload",
            )
        )
    if differing:
        worst = sorted(differing, key=lambda d: -d[1])
        listed = compact_list([f"{name} ({shown})" for name, _, shown in worst])
        findings.append(
            error(
                "sandbox.audit_mismatch",
                f"{len(differing)} of {len(regenerated)} regenerated images differ from the "
                f"submitted ones by more than {audit.tolerance:g} (mean absolute pixel "
                f"difference): {listed}",
                artifact=artifact,
                hint="upload the images your sampler produces with the rubric's seed; make image i "
                "depend only on the seed and i (seed each image, not the whole run)",
            )
        )
    return findings


def _audit_fid(
    regenerated: list[Path],
    submitted: list[Path],
    audit: SampleAudit,
    fid: FidFunction | None,
    artifact: str | None,
) -> list[Finding]:
    if fid is None:
        raise GraderError("sample.audit.mode is 'fid' but no FID function was given to the audit")
    value = float(fid(regenerated, submitted))
    if value > audit.tolerance:
        return [
            error(
                "sandbox.audit_fid",
                f"the regenerated images are far from the submitted ones: FID {value:.2f} > "
                f"{audit.tolerance:g} ({len(regenerated)} regenerated vs "
                f"{len(submitted)} submitted)",
                artifact=artifact,
                hint="upload images produced by the sampler and weights in your source",
            )
        ]
    return []
