"""The diffusion-process grid: rows of snapshots from pure noise to the final image (HW3, Lab6)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from grader.artifacts.base import (
    ArtifactBase,
    ArtifactKind,
    CheckedArtifact,
    CheckRequest,
    either,
    pixels,
)
from grader.files import IMAGE_EXTENSIONS


class ProcessGridArtifact(ArtifactBase):
    kind: Literal["process_grid"]
    rows: int = Field(8, gt=0)
    cols: int = Field(8, gt=1)
    tile: tuple[int, int] = (28, 28)  # (width, height)
    paddings: list[int] = Field(default_factory=lambda: [0, 2])
    direction: Literal["noise_to_clean", "clean_to_noise"] = "noise_to_clean"
    content: Literal["mnist", "generic"] = "generic"
    # Tolerance for small increases of noise along a row (relative to the row's range).
    monotonic_tolerance: float = Field(0.1, ge=0, le=1)
    formats: list[str] = Field(default_factory=lambda: ["PNG"])


def is_single_image(item: Path, contents) -> bool:
    return not contents.is_bundle and item.suffix.lower() in IMAGE_EXTENSIONS


class ProcessGridKind(ArtifactKind):
    kind = "process_grid"
    model = ProcessGridArtifact
    preview_copy = "process"

    def fit(self, item, contents) -> float:
        return 1 if is_single_image(item, contents) else 0

    def check(self, spec: ProcessGridArtifact, request: CheckRequest, result) -> CheckedArtifact:
        from grader.checks.grid import check_process_grid

        report = check_process_grid(request.item, spec, artifact=request.name)
        result.details = {"layout": report.layout, "noise": report.noise}
        return CheckedArtifact(result=result, findings=list(report.findings), file=request.item)

    def preview_sources(self, checked: CheckedArtifact) -> list[Path]:
        return [checked.file] if checked.file is not None else []

    def rules(self, spec: ProcessGridArtifact) -> list[str]:
        (tw, th), rows, cols = spec.tile, spec.rows, spec.cols
        sizes = either([
            f"{cols * (tw + p) + p}x{rows * (th + p) + p} with padding {p}"  # torchvision make_grid
            for p in sorted(set(spec.paddings))
        ])
        row = f"{rows} row{'s' if rows != 1 else ''} x {cols} snapshots of {pixels(spec.tile)}"
        if spec.direction == "noise_to_clean":
            start, end = "pure noise (left)", "the final image (right)"
        else:
            start, end = "the final image (left)", "pure noise (right)"
        trajectory = f"{'each row' if rows > 1 else 'the row'} from {start} to {end}"
        rules = [f"one {either(spec.formats)} image", row, sizes, trajectory]
        if spec.content == "mnist":
            rules.append("the final images are digits")
        return rules
