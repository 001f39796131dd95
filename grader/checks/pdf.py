"""Whether a file is a PDF that opens, and how many pages it has (pypdf; nothing is rendered)."""

from __future__ import annotations

import logging
from pathlib import Path

HEADER_WINDOW = 1024  # PDF readers accept junk before %PDF- within the first kilobyte


class PdfProblem(Exception):
    """The file is not a PDF that opens; the message says why, in a student's terms."""

    def __init__(self, message: str, *, not_pdf: bool = False) -> None:
        super().__init__(message)
        self.not_pdf = not_pdf


def _looks_like(head: bytes) -> str:
    if head.startswith(b"PK\x03\x04"):
        return " (it is a zip container, e.g. a Word .docx file)"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return " (it is an old Word/Office file)"
    if head.startswith((b"\x89PNG", b"\xff\xd8")):
        return " (it is an image)"
    return ""


def pdf_pages(path: Path) -> int:
    """The page count of the PDF at `path`; PdfProblem when it is not one that opens."""
    from pypdf import PdfReader

    with open(path, "rb") as f:
        head = f.read(HEADER_WINDOW)
    if b"%PDF-" not in head:
        raise PdfProblem(f"is not a PDF file (no %PDF header){_looks_like(head)}", not_pdf=True)
    # pypdf reports what it repairs through logging; a student's damaged file is a finding
    # here, not a line on the TA's terminal.
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")  # an owner password alone still opens for reading
            except Exception:  # noqa: BLE001 - any failure here means it does not open
                opened = 0
            if not opened:
                raise PdfProblem("is password-protected")
        pages = len(reader.pages)
    except PdfProblem:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged student file can fail anywhere in the parser
        raise PdfProblem(f"is damaged and does not open ({type(exc).__name__}: {exc})") from None
    finally:
        logger.setLevel(level)
    if pages == 0:
        raise PdfProblem("has no pages")
    return pages
