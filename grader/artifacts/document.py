"""A report (pdf, md, txt, ...): present, within its size, in an asked-for format; a PDF must
open (pypdf), and its page count is reported."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from grader.artifacts.base import ArtifactBase, ArtifactKind, CheckedArtifact, CheckRequest
from grader.files import format_bytes

DOCUMENT_EXTENSIONS = frozenset({".pdf", ".md", ".txt", ".docx", ".html"})


class DocumentArtifact(ArtifactBase):
    kind: Literal["document"]
    max_bytes: int | None = Field(50 * 1024**2, gt=0)
    # File types accepted, by extension (e.g. [pdf]); None: any document.
    formats: list[Literal["pdf", "md", "txt", "docx", "html"]] | None = None


class DocumentKind(ArtifactKind):
    kind = "document"
    model = DocumentArtifact

    def fit(self, item, contents) -> float:
        if contents.is_bundle or item.suffix.lower() not in DOCUMENT_EXTENSIONS:
            return 0
        return 1.5 if item.suffix.lower() == ".pdf" else 1  # a PDF is the finished form of a report

    def rules(self, spec: DocumentArtifact) -> list[str]:
        if spec.formats == ["pdf"]:
            rules = ["one PDF that opens (its pages are counted)"]
        else:
            formats = sorted(f".{f}" for f in spec.formats) if spec.formats else sorted(DOCUMENT_EXTENSIONS)
            rules = [f"one document ({', '.join(formats)})"]
        if spec.max_bytes is not None:
            rules.append(f"at most {format_bytes(spec.max_bytes)}")
        return rules

    def check(self, spec: DocumentArtifact, request: CheckRequest, result) -> CheckedArtifact:
        from grader.checks.files import check_document

        findings, details = check_document(request.item, spec, artifact=request.name, shown=request.shown)
        result.details.update(details)
        return CheckedArtifact(result=result, findings=findings, file=request.item)
