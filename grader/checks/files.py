"""Checks of single-file artifacts: one picture (a sample grid, a loss plot) or a document."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, UnidentifiedImageError

from grader.files import format_bytes
from grader.findings import Finding, error

if TYPE_CHECKING:
    from grader.artifacts import DocumentArtifact, ImageArtifact


def check_image_file(
    path: Path, spec: ImageArtifact, *, artifact: str | None = None, shown: str | None = None
) -> list[Finding]:
    shown = shown or path.name
    try:
        with Image.open(path) as im:
            fmt, (w, h) = im.format, im.size
            if w * h > spec.max_pixels:
                return [
                    error(
                        "image.too_large",
                        f"{shown} declares {w}x{h} pixels; refused",
                        artifact=artifact,
                        path=shown,
                    )
                ]
            im.load()
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as exc:
        return [
            error(
                "image.corrupt",
                f"{shown} is not a readable image ({exc})",
                artifact=artifact,
                path=shown,
            )
        ]
    findings = []
    if spec.formats and fmt not in spec.formats:
        findings.append(
            error(
                "image.format",
                f"{shown} is {fmt}; expected {' or '.join(spec.formats)}",
                artifact=artifact,
                path=shown,
            )
        )
    if spec.size and (w, h) != tuple(spec.size):
        findings.append(
            error(
                "image.size",
                f"{shown} is {w}x{h}; expected {spec.size[0]}x{spec.size[1]}",
                artifact=artifact,
                path=shown,
            )
        )
    if spec.min_size and (w < spec.min_size[0] or h < spec.min_size[1]):
        findings.append(
            error(
                "image.size",
                f"{shown} is {w}x{h}; at least {spec.min_size[0]}x{spec.min_size[1]} expected",
                artifact=artifact,
                path=shown,
            )
        )
    return findings


def check_document(
    path: Path, spec: DocumentArtifact, *, artifact: str | None = None, shown: str | None = None
) -> tuple[list[Finding], dict]:
    """(findings, details): details has the page count of a PDF that opens."""
    from grader.checks.pdf import PdfProblem, pdf_pages

    shown = shown or path.name
    size = path.stat().st_size
    if size == 0:
        return [error("document.empty", f"{shown} is empty", artifact=artifact, path=shown)], {}
    if spec.max_bytes is not None and size > spec.max_bytes:
        return [
            error(
                "document.too_large",
                f"{shown} is {format_bytes(size)}; limit {format_bytes(spec.max_bytes)}",
                artifact=artifact,
                path=shown,
            )
        ], {}
    suffix = path.suffix.lower().lstrip(".")
    wanted = [f.lower() for f in spec.formats or []]
    if wanted and suffix not in wanted:
        return [
            error(
                "document.format",
                f"{shown} is a .{suffix or '?'} file; the assignment asks for "
                + " or ".join(f.upper() for f in wanted),
                artifact=artifact,
                path=shown,
            )
        ], {}
    if suffix != "pdf":
        return [], {}
    try:
        pages = pdf_pages(path)
    except PdfProblem as problem:
        code = "document.format" if problem.not_pdf else "document.unreadable"
        return [error(code, f"{shown} {problem}", artifact=artifact, path=shown)], {}
    return [], {"pages": pages}
