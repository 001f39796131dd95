"""The registry of artifact kinds: one module per kind, listed once here.

A new kind is a module with its rubric model and an ``ArtifactKind`` handler, added to
``KINDS``; the rubric schema, the assignment of files and the pipeline all read this registry.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from grader.artifacts.base import ArtifactBase, ArtifactKind, CheckedArtifact, CheckRequest
from grader.artifacts.document import DocumentArtifact, DocumentKind
from grader.artifacts.image import ImageArtifact, ImageKind
from grader.artifacts.image_set import ImageSetArtifact, ImageSetKind
from grader.artifacts.process_grid import ProcessGridArtifact, ProcessGridKind
from grader.artifacts.source import SourceArtifact, SourceKind

KINDS: dict[str, ArtifactKind] = {
    handler.kind: handler
    for handler in (ImageSetKind(), SourceKind(), ProcessGridKind(), ImageKind(), DocumentKind())
}

# The rubric's `artifacts:` entries: one model per kind, told apart by `kind:`.
Artifact = Annotated[Union[tuple(h.model for h in KINDS.values())], Field(discriminator="kind")]  # noqa: UP007


def handler_for(spec: ArtifactBase) -> ArtifactKind:
    return KINDS[spec.kind]


def describe(spec: ArtifactBase) -> str:
    """The rules a rubric sets for an artifact, in words (see ArtifactKind.describe)."""
    return handler_for(spec).describe(spec)


__all__ = [
    "KINDS",
    "Artifact",
    "ArtifactBase",
    "ArtifactKind",
    "CheckRequest",
    "CheckedArtifact",
    "DocumentArtifact",
    "ImageArtifact",
    "ImageSetArtifact",
    "ProcessGridArtifact",
    "SourceArtifact",
    "describe",
    "handler_for",
]
