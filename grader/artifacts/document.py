"""A report (pdf, md, txt): checked for presence and size only."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from grader.artifacts.base import ArtifactBase, ArtifactKind, CheckedArtifact, CheckRequest
from grader.files import format_bytes

DOCUMENT_EXTENSIONS = frozenset({".pdf", ".md", ".txt", ".docx", ".html"})


class DocumentArtifact(ArtifactBase):
    kind: Literal["document"]
    max_bytes: int | None = Field(50 * 1024**2, gt=0)


class DocumentKind(ArtifactKind):
    kind = "document"
    model = DocumentArtifact

    def fit(self, item, contents) -> float:
        return 1 if not contents.is_bundle and item.suffix.lower() in DOCUMENT_EXTENSIONS else 0

    def rules(self, spec: DocumentArtifact) -> list[str]:
        rules = [f"one document ({', '.join(sorted(DOCUMENT_EXTENSIONS))})"]
        if spec.max_bytes is not None:
            rules.append(f"at most {format_bytes(spec.max_bytes)}")
        return rules

    def check(self, spec: DocumentArtifact, request: CheckRequest, result) -> CheckedArtifact:
        from grader.checks.files import check_document

        findings = check_document(request.item, spec, artifact=request.name, shown=request.shown)
        return CheckedArtifact(result=result, findings=findings, file=request.item)
