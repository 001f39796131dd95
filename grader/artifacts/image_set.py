"""Image sets: a zip or folder of generated images (HW3's 10,000 PNGs, HW9's sets, Lab6's grids)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from grader.artifacts.base import (
    CONTAINER_WORDS,
    JUNK_WORDS,
    ArtifactBase,
    ArtifactKind,
    CheckedArtifact,
    CheckRequest,
    either,
    pixels,
)
from grader.intake.unpack import open_container


class ImageSetArtifact(ArtifactBase):
    kind: Literal["image_set"]
    count: int | None = Field(None, gt=0)
    # Python format pattern for exact names, with {index}: "{index:05d}.png" -> 00001.png.
    # None: free names (HW9), only the count and the image rules are checked.
    names: str | None = None
    first_index: int = 1
    formats: list[str] = Field(default_factory=lambda: ["PNG"])  # by content, PIL names
    size: tuple[int, int] | None = None  # (width, height)
    modes: list[str] | None = None  # PIL modes allowed, e.g. ["RGB"]
    flat: bool = True  # no subdirectories inside the container
    forbid_junk: bool = True  # __MACOSX/, .DS_Store, Thumbs.db are findings
    allow_duplicates: bool = False  # byte-identical images
    max_pixels: int = Field(4096 * 4096, gt=0)  # refuse decompression bombs from the header

    @field_validator("names")
    @classmethod
    def _names_pattern(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            v.format(index=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"must be a format pattern using {{index}}, e.g. '{{index:05d}}.png' ({exc})"
            ) from None
        if "{index" not in v:
            raise ValueError("must contain {index}, e.g. '{index:05d}.png'")
        return v

    def expected_names(self) -> list[str] | None:
        if self.names is None or self.count is None:
            return None
        return [self.names.format(index=i) for i in range(self.first_index, self.first_index + self.count)]


class ImageSetKind(ArtifactKind):
    kind = "image_set"
    model = ImageSetArtifact

    def fit(self, item, contents) -> float:
        # A set of images: mostly image files, no code.
        if not contents.is_bundle or contents.images == 0:
            return 0
        n = max(len(contents.names), 1)
        return 1 + contents.images / n - contents.code / n

    def check(self, spec: ImageSetArtifact, request: CheckRequest, result) -> CheckedArtifact:
        from grader.checks.images import check_image_set

        unpacked = open_container(request, flat=spec.flat, forbid_junk=spec.forbid_junk)
        checked = CheckedArtifact(result=result, findings=list(unpacked.findings))
        if unpacked.fatal:
            return checked
        report = check_image_set(unpacked.root, spec, artifact=request.name, files=unpacked.files)
        checked.findings += report.findings
        checked.images, checked.root = report.images, unpacked.root
        result.count = report.count
        return checked

    def preview_sources(self, checked: CheckedArtifact) -> list[Path]:
        return checked.images

    def rules(self, spec: ImageSetArtifact) -> list[str]:
        names = spec.expected_names()
        if names is not None:
            listed = " ... ".join(dict.fromkeys([names[0], names[-1]]))
            what = f"{spec.count:,} image{'s' if spec.count != 1 else ''} named {listed}"
        elif spec.names is not None:
            first = [spec.names.format(index=spec.first_index + i) for i in range(2)]
            what = f"images named {', '.join(first)}, ..."
        elif spec.count is not None:
            what = f"{spec.count:,} image{'s' if spec.count != 1 else ''} (any names)"
        else:
            what = "images (any number, any names)"
        each = [either(spec.formats)]
        if spec.size is not None:
            each.append(pixels(spec.size))
        if spec.modes:
            each.append(f"mode {either(spec.modes)}")
        rules = [what, "each " + ", ".join(each), CONTAINER_WORDS[spec.container]]
        if spec.flat:
            rules.append("no subfolders")
        if spec.forbid_junk:
            rules.append(JUNK_WORDS)
        if not spec.allow_duplicates:
            rules.append("no two files identical")
        return rules
