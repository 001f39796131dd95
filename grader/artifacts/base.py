"""What every artifact kind shares: the rubric fields common to all kinds and the handler shape.

An artifact kind (image set, source zip, process grid, single image, document) is one module
in this package holding its rubric model and a handler that says whether a submitted item
fits it, checks it, and names what a report shows of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from grader.findings import compact_list
from grader.schema import Strict, UnpackLimits

if TYPE_CHECKING:
    from grader.findings import Finding
    from grader.intake.sniff import Contents
    from grader.results import ArtifactResult

Container = Literal["zip", "folder", "file", "any"]


class ArtifactBase(Strict):
    title: str = ""
    description: str = ""
    required: bool = True
    # Glob patterns (case-insensitive) on the name of the file or folder as submitted,
    # e.g. ["*.zip"], ["gan*", "*gan*"]. Artifacts whose names collide (HW3's two zips,
    # both named by student id) are told apart by content: see grader/assign.py.
    match: list[str] = Field(default_factory=lambda: ["*"])
    container: Container = "any"


@dataclass
class CheckedArtifact:
    """One artifact after its checks: the record, its findings and what later stages use."""

    result: ArtifactResult
    findings: list[Finding] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)  # image sets: decodable images, name-sorted
    root: Path | None = None  # unpacked content (image sets, source)
    file: Path | None = None  # single-file artifacts


@dataclass(frozen=True)
class CheckRequest:
    """The inputs of one artifact check."""

    name: str  # the rubric's artifact name
    item: Path  # the submitted zip, folder or file
    shown: str  # the name the student gave it
    work: Path  # scratch folder for this student; unpack under work / name
    limits: UnpackLimits


class ArtifactKind:
    """The handler of one artifact kind; stateless, one instance in the registry."""

    kind: ClassVar[str]
    model: ClassVar[type[ArtifactBase]]
    # How a report shows this kind: None, sample grids of its images; a name, a copy of its
    # one file under that name (e.g. "process" -> process.png).
    preview_copy: ClassVar[str | None] = None

    def fit(self, item: Path, contents: Contents) -> float:
        """0 when the item cannot be this artifact; higher is a better fit (container rules
        are applied before this, by the assignment)."""
        raise NotImplementedError

    def check(self, spec, request: CheckRequest, result: ArtifactResult) -> CheckedArtifact:
        raise NotImplementedError

    def preview_sources(self, checked: CheckedArtifact) -> list[Path]:
        """Files a report shows for this artifact (the report side turns them into previews)."""
        return []

    def rules(self, spec) -> list[str]:
        """The rules this kind's checks apply, in words, each from the rubric's values."""
        return []

    def describe(self, spec: ArtifactBase) -> str:
        """What a submission must hand in for this artifact, stated from the configured rules
        (never from the free-text description, which may lag behind an edit): the Expected
        line of a student's page and of `grader check`."""
        parts = self.rules(spec)
        if spec.match != ["*"]:
            parts.append(f"named like {compact_list(spec.match, first=3)}")
        if not spec.required:
            parts.append("optional")
        return "; ".join(parts)


def either(items: list[str]) -> str:
    """['PNG', 'JPEG'] -> 'PNG or JPEG'."""
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def pixels(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]} pixels"


CONTAINER_WORDS = {"zip": "in a zip", "folder": "in a folder", "any": "in a zip or folder", "file": "one file"}
JUNK_WORDS = "no __MACOSX/, .DS_Store or other OS leftovers"
