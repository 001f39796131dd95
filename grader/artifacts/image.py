"""A single picture: a sample grid, a loss plot (HW9)."""

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
from grader.artifacts.process_grid import is_single_image


class ImageArtifact(ArtifactBase):
    kind: Literal["image"]
    formats: list[str] = Field(default_factory=lambda: ["PNG", "JPEG"])
    size: tuple[int, int] | None = None
    min_size: tuple[int, int] | None = None
    max_pixels: int = Field(8192 * 8192, gt=0)


class ImageKind(ArtifactKind):
    kind = "image"
    model = ImageArtifact
    preview_copy = "image"

    def fit(self, item, contents) -> float:
        return 1 if is_single_image(item, contents) else 0

    def check(self, spec: ImageArtifact, request: CheckRequest, result) -> CheckedArtifact:
        from grader.checks.files import check_image_file

        findings = check_image_file(request.item, spec, artifact=request.name, shown=request.shown)
        return CheckedArtifact(result=result, findings=findings, file=request.item)

    def rules(self, spec: ImageArtifact) -> list[str]:
        rules = [f"one {either(spec.formats)} image"]
        if spec.size is not None:
            rules.append(pixels(spec.size))
        if spec.min_size is not None:
            rules.append(f"at least {pixels(spec.min_size)}")
        return rules

    def preview_sources(self, checked: CheckedArtifact) -> list[Path]:
        # Only a picture that passed its checks is shown: a broken one may not even decode.
        ok = checked.file is not None and not checked.findings
        return [checked.file] if ok else []
