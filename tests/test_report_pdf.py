"""The PDF report: pages rendered with pdftoppm (Debian poppler-utils) are not blank."""

from __future__ import annotations

import subprocess

from reportruns import demo_run, dicompyler_run, png_variance, tool

from contourqa.report import PdfFormatter


def _pages(pdf_bytes: bytes, tmp_path) -> list:
    exe = tool("pdftoppm", "poppler-utils")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(pdf_bytes)
    subprocess.run([exe, "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True,
                   timeout=60, capture_output=True)
    return sorted(tmp_path.glob("page-*.png"))


def test_demo_pdf_pages_are_not_blank(tmp_path):
    data = PdfFormatter(dpi=100).render(demo_run().reports)
    assert data.startswith(b"%PDF")
    pages = _pages(data, tmp_path)
    assert len(pages) >= 3  # checks, pictures, sector map, tables
    for page in pages:
        assert png_variance(page) > 20.0, page.name


def test_mostly_not_evaluated_pdf_renders(tmp_path):
    data = PdfFormatter(dpi=72).render(dicompyler_run().reports)
    pages = _pages(data, tmp_path)
    assert pages and all(png_variance(p) > 20.0 for p in pages)


def test_verdict_attention_dvh_and_sector_map_on_pages_1_and_2(tmp_path):
    exe = tool("pdftotext", "poppler-utils")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(PdfFormatter(dpi=72).render(demo_run().reports))

    def page(n: int) -> str:
        return subprocess.run([exe, "-f", str(n), "-l", str(n), str(pdf), "-"], check=True,
                              capture_output=True, text=True, timeout=60).stdout

    one, two = page(1), page(2)
    assert "INCOMPLETE" in one and "Needs attention (4 failed or warned)" in one
    assert "dose.ptv_coverage" in one and "dose.grid_resolution" in one
    assert "Cumulative DVH" in two and "Sector map T10" in two
    assert "All checks" not in one + two  # the full list follows the pictures
