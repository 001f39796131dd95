"""The document artifact kind: a report that must be a PDF that opens (pypdf), page count
reported; real files (Pillow and pypdf write the PDFs, a real .docx zip), and the assignment
of HW9's report among other documents."""

from __future__ import annotations

import zipfile
from pathlib import Path

import hw9class
import numpy as np
import pytest
from pypdf import PdfWriter

from grader.artifacts import KINDS, CheckRequest
from grader.assign import assign
from grader.results import ArtifactResult
from grader.rubric import load_rubric

ROOT = Path(__file__).resolve().parents[1]
HW9 = load_rubric(ROOT / "rubrics" / "hw9.yaml")


def faces(n: int = 16) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)


def report_pdf(path: Path) -> Path:
    return hw9class.write_report(path, {"gan": faces(), "diffusion": faces(), "finetuned": faces()})


def docx(path: Path) -> Path:
    """A minimal Word file: the zip container Word writes, with its document part."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document><w:body>HW9 report</w:body></w:document>")
    return path


def check(path: Path):
    spec = HW9.artifacts["report"]
    result = ArtifactResult(name="report", kind="document", status="ok")
    request = CheckRequest(name="report", item=path, shown=path.name, work=path.parent / "work",
                           limits=HW9.limits)
    checked = KINDS["document"].check(spec, request, result)
    return checked.findings, result.details


def test_a_pdf_that_opens_passes_with_its_page_count(tmp_path):
    findings, details = check(report_pdf(tmp_path / "report.pdf"))
    assert findings == [] and details == {"pages": 3}


def test_a_word_file_is_not_a_pdf(tmp_path):
    (finding,), details = check(docx(tmp_path / "report.docx"))
    assert finding.code == "document.format" and details == {}
    assert finding.message == "report.docx is a .docx file; the assignment asks for PDF"
    assert "PDF" in finding.fix


def test_a_word_file_renamed_to_pdf_is_not_a_pdf(tmp_path):
    renamed = docx(tmp_path / "report.docx").rename(tmp_path / "report.pdf")
    (finding,), _ = check(renamed)
    assert finding.code == "document.format"
    assert "is not a PDF file (no %PDF header) (it is a zip container, e.g. a Word .docx file)" in finding.message


@pytest.mark.parametrize("fraction", [0.3, 0.9])
def test_a_cut_off_pdf_does_not_open(tmp_path, fraction):
    data = report_pdf(tmp_path / "full.pdf").read_bytes()
    cut = tmp_path / "report.pdf"
    cut.write_bytes(data[: int(len(data) * fraction)])
    (finding,), details = check(cut)
    assert finding.code == "document.unreadable" and "is damaged and does not open" in finding.message
    assert details == {}


def test_password_protected_and_empty_pdfs(tmp_path):
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    writer.write(tmp_path / "locked.pdf")
    (finding,), _ = check(tmp_path / "locked.pdf")
    assert finding.code == "document.unreadable" and finding.message == "locked.pdf is password-protected"
    # An owner password alone (printing or copying restricted) still opens for reading.
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    writer.write(tmp_path / "restricted.pdf")
    assert check(tmp_path / "restricted.pdf") == ([], {"pages": 1})
    PdfWriter().write(tmp_path / "nopages.pdf")
    (finding,), _ = check(tmp_path / "nopages.pdf")
    assert finding.code == "document.unreadable" and finding.message == "nopages.pdf has no pages"
    (tmp_path / "empty.pdf").write_bytes(b"")
    (finding,), _ = check(tmp_path / "empty.pdf")
    assert finding.code == "document.empty"


def test_the_pdf_is_taken_as_the_report_beside_other_documents(tmp_path):
    pdf = report_pdf(tmp_path / "report.pdf")
    word = docx(tmp_path / "report.docx")
    chosen = assign([word, pdf], HW9).artifacts
    assert chosen["report"] == pdf
    # A Word file alone is still taken, so that its check can say it is not a PDF.
    assert assign([word], HW9).artifacts["report"] == word
