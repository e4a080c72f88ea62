"""PDF report for the chart: the HTML report's content on A4 pages (matplotlib PDF backend).

WeasyPrint would need Pango and other system libraries that PyPI cannot install;
matplotlib's PDF backend needs nothing beyond matplotlib.  Pages: summary and
every check (fail and warn first); pictures (DVH, slices, sector maps); DVH
metrics with their uncertainty band, DVH conventions, structures, files and UIDs.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from contourqa import __version__
from contourqa.findings import Finding, Status
from contourqa.report.base import sorted_checks, write_output
from contourqa.report.record import SCHEMA_VERSION, CaseReport
from contourqa.report.text import mpl_literal

if TYPE_CHECKING:
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

__all__ = ["PdfFormatter"]

_A4_IN = (8.27, 11.69)
_MARGIN_IN = 0.55
_STATUS_HEX = {"fail": "#c0392b", "warn": "#d35400", "pass": "#1e8449",
               "not_evaluated": "#7d3c98", "incomplete": "#7d3c98", "not_applicable": "#808b96"}


class _TextPages:
    """Lines of text laid out top to bottom on A4 pages, a new page when one is full."""

    def __init__(self, pdf: PdfPages, header: str) -> None:
        self.pdf = pdf
        self.header = header
        self.fig: Figure | None = None
        self.y = 0.0

    def _new_page(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.close()
        self.fig = Figure(figsize=_A4_IN)
        FigureCanvasAgg(self.fig)
        self.fig.text(_MARGIN_IN / _A4_IN[0], 1 - 0.35 / _A4_IN[1], mpl_literal(self.header),
                      fontsize=7, color="#566573")
        self.y = 1 - _MARGIN_IN / _A4_IN[1] - 0.15 / _A4_IN[1]

    def line(self, text: str, *, size: float = 8.0, colour: str = "#1b2631",
             weight: str = "normal", family: str = "sans-serif", indent_in: float = 0.0,
             gap_in: float = 0.0) -> None:
        height = (size * 1.35 / 72.0 + gap_in) / _A4_IN[1]
        if self.fig is None or self.y - height < _MARGIN_IN / _A4_IN[1]:
            self._new_page()
        assert self.fig is not None
        self.y -= height
        self.fig.text((_MARGIN_IN + indent_in) / _A4_IN[0], self.y, mpl_literal(text), fontsize=size,
                      color=colour, fontweight=weight, family=family, va="bottom")

    def wrapped(self, text: str, *, width: int = 118, **kw: Any) -> None:
        for part in textwrap.wrap(text, width=width) or [""]:
            self.line(part, **kw)

    def heading(self, text: str) -> None:
        self.line(text, size=11.5, weight="bold", gap_in=0.12)

    def close(self) -> None:
        if self.fig is not None:
            self.pdf.savefig(self.fig)
            self.fig = None


def _fmt(v: float | None, unit: str | None = None) -> str:
    from contourqa.report.html import fmt_number

    return fmt_number(v, unit)


def _picture_page(pdf: PdfPages, header: str, pictures: list[Any], dpi: int) -> None:
    """Pictures stacked on one A4 page, each with its title and caption."""
    import matplotlib.image as mpimg
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from contourqa.report.figures import figure_png
    from contourqa.report.html import drawing_failed

    fig = Figure(figsize=_A4_IN)
    FigureCanvasAgg(fig)
    fig.text(_MARGIN_IN / _A4_IN[0], 1 - 0.35 / _A4_IN[1], mpl_literal(header), fontsize=7,
             color="#566573")
    top = 1 - (_MARGIN_IN + 0.1) / _A4_IN[1]
    usable_w = 1 - 2 * _MARGIN_IN / _A4_IN[0]
    for pic in pictures:
        fig.text(_MARGIN_IN / _A4_IN[0], top - 0.2 / _A4_IN[1], mpl_literal(pic.title), fontsize=11.5,
                 fontweight="bold")
        top -= 0.3 / _A4_IN[1]
        png, caption = None, f"Not drawn: {pic.caption}"
        if pic.present:
            try:
                png, caption = figure_png(pic, dpi=dpi), pic.caption
            except Exception as exc:  # noqa: BLE001 - one picture never stops the report
                caption = f"Not drawn: {drawing_failed(exc)}"
        if png is not None:
            img = mpimg.imread(io.BytesIO(png), format="png")
            h_px, w_px = img.shape[:2]
            width = usable_w if w_px > h_px else usable_w * 0.45
            height = width * _A4_IN[0] / _A4_IN[1] * h_px / w_px
            ax = fig.add_axes((_MARGIN_IN / _A4_IN[0], top - height, width, height))
            ax.imshow(img, interpolation="antialiased")
            ax.axis("off")
            top -= height
        lines = textwrap.wrap(caption, width=125)
        for part in lines:
            top -= 0.15 / _A4_IN[1]
            fig.text(_MARGIN_IN / _A4_IN[0], top, mpl_literal(part), fontsize=7.5, color="#566573",
                     va="top")
        top -= 0.2 / _A4_IN[1]
    pdf.savefig(fig)


#: Failed and warned checks listed on page 1 (the rest follow the pictures).
_ATTENTION_ON_PAGE_1 = 22


def _short(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


class PdfFormatter:
    """Writes the report as a PDF (A4 portrait), one section of pages per case.

    Parameters
    ----------
    dpi : int
        Resolution of the pictures placed on the pages.
    """

    name: ClassVar[str] = "pdf"
    needs_media: ClassVar[bool] = True

    def __init__(self, *, dpi: int = 150) -> None:
        self.dpi = dpi

    @staticmethod
    def _check_line(text: "_TextPages", f: Finding) -> None:
        vs = ""
        if f.value is not None:
            vs = f"   {_fmt(f.value, f.unit)}"
            if f.limit is not None:
                vs += f" vs {_fmt(f.limit, f.unit)}"
        where = f" [{f.structure}]" if f.structure else ""
        text.line(f"{f.status.value.upper():<14}{f.code}{where}{vs}", size=8, weight="bold",
                  colour=_STATUS_HEX[f.status.value], family="monospace", gap_in=0.04)

    def _case(self, pdf: PdfPages, r: CaseReport) -> None:
        from contourqa.report.figures import Picture, case_pictures, sectors_missing_reason
        from contourqa.report.html import metric_table

        c = r.case
        header = f"contourqa {__version__} | {c.name} | status {r.status}"
        text = _TextPages(pdf, header)
        text.line(f"{r.status.upper()}  {c.name}", size=16, weight="bold",
                  colour=_STATUS_HEX.get(r.status, "#1b2631"))
        rx = f"{c.prescription_gy:g} Gy" if c.prescription_gy is not None else "unknown"
        text.wrapped(f"Patient {c.patient_id or 'unknown'}  |  plan {c.plan_label or 'none'}  |  "
                     f"prescription {rx} ({c.prescription_source or 'source unknown'})  |  "
                     f"{c.n_fractions if c.n_fractions is not None else 'unknown'} fractions",
                     width=110, size=9, gap_in=0.05)
        counts = ", ".join(f"{sum(f.status is s for f in r.checks)} {s.value}" for s in Status)
        text.line(f"Checks: {counts}", size=9)
        n_ne = sum(f.status is Status.NOT_EVALUATED for f in r.checks)
        if 2 * n_ne > len(r.checks):
            text.wrapped(f"Most checks ({n_ne} of {len(r.checks)}) could not be evaluated; the "
                         "reasons are listed with each check (all checks, after the pictures).",
                         width=100, size=9, colour=_STATUS_HEX["not_evaluated"], weight="bold")
        # Page 1: the verdict and what needs attention, one line each and a short reason;
        # page 2: the DVH and the sector map; the full check list comes after the pictures.
        attention = [f for f in sorted_checks(r.checks)
                     if f.status in (Status.FAIL, Status.WARN)]
        text.heading(f"Needs attention ({len(attention)} failed or warned)")
        if not attention:
            text.line("No check failed or warned.", size=8.5)
        for f in attention[:_ATTENTION_ON_PAGE_1]:
            self._check_line(text, f)
            text.line(_short(f.message, 150), size=7.0, colour="#1b2631", gap_in=0.025)
        if len(attention) > _ATTENTION_ON_PAGE_1:
            text.line(f"... and {len(attention) - _ATTENTION_ON_PAGE_1} more, in the list of "
                      "all checks after the pictures.", size=8)
        text.close()

        pics = case_pictures(r)
        sectors = list(pics["sectors"])  # type: ignore[arg-type]
        if not sectors:
            sectors = [Picture("ISRC sector map", caption=sectors_missing_reason(r))]
        _picture_page(pdf, header, [pics["dvh"], sectors[0]], self.dpi)  # type: ignore[list-item]
        rest = [pics["slices"], *sectors[1:]]
        for start in range(0, len(rest), 2):
            _picture_page(pdf, header, rest[start:start + 2], self.dpi)

        text = _TextPages(pdf, header)
        text.heading("All checks (fail and warn first), with their reasons and sources")
        not_applicable = [f for f in r.checks if f.status is Status.NOT_APPLICABLE]
        for f in sorted_checks([f for f in r.checks if f.status is not Status.NOT_APPLICABLE]):
            self._check_line(text, f)
            text.wrapped(f.message, size=7.5, indent_in=0.2, width=125)
            if f.source:
                text.wrapped(f"Source: {f.source}", size=6.5, colour="#566573", indent_in=0.2,
                             width=140)
        if not_applicable:
            text.heading(f"Not applicable to this case ({len(not_applicable)}; no effect on the "
                         "verdict)")
            for f in not_applicable:
                where = f" [{f.structure}]" if f.structure else ""
                text.wrapped(f"{f.code}{where}: {f.message}", size=7,
                             colour=_STATUS_HEX["not_applicable"], width=130)
        text.heading("DVH metrics [uncertainty band]")
        names, rows = metric_table(r)
        if not rows:
            text.line("No DVH metrics were computed.", size=8)
        for roi, role, cells in rows:
            text.line(f"{roi} ({role})", size=8.5, weight="bold", gap_in=0.03)
            parts = [f"{m} {v}" + (f" [{b}]" if b else "") for m, (v, b) in zip(names, cells)
                     if v]
            text.wrapped(";  ".join(parts), size=7.5, indent_in=0.2, width=125)
        text.heading("DVH conventions")
        if not r.dvh_conventions:
            text.line("No DVH was computed: no conventions to state.", size=8)
        for k, v in r.dvh_conventions.items():
            text.wrapped(f"{k.replace('_', ' ')}: {v}", size=7.5, width=125)
        text.heading("Structures")
        for s in r.structures:
            vol = _fmt(s.volume_cc, "cc")
            text.line(f"{s.number:>4}  {s.name[:28]:<28} {s.role or '':<16} {s.level or '':<6} "
                      f"{vol:>12}", size=7.5, family="monospace")
        text.heading("Files and identifiers")
        text.line(f"Frame of reference UID: {c.frame_of_reference_uid or 'none'}", size=7.5)
        series = (c.image or {}).get("series_instance_uid")
        text.line(f"Image series UID: {series or 'none'}", size=7.5)
        for path in c.files:
            text.wrapped(str(path), size=6.5, width=150, colour="#566573")
        text.line(f"contourqa {__version__}, report schema {SCHEMA_VERSION}. The JSON report "
                  "is the canonical record.", size=7.5, gap_in=0.1)
        text.close()

    def render(self, reports: Sequence[CaseReport]) -> bytes:
        from matplotlib.backends.backend_pdf import PdfPages

        buf = io.BytesIO()
        with PdfPages(buf, metadata={"Title": "contourqa report",
                                     "Creator": f"contourqa {__version__}"}) as pdf:
            for r in reports:
                try:
                    self._case(pdf, r)
                except Exception as exc:  # noqa: BLE001 - one case never stops the report
                    # Pages already drawn for the case stay; this one says what is missing.
                    text = _TextPages(pdf, f"contourqa {__version__} | {r.case.name}")
                    text.line(f"{r.status.upper()}  {r.case.name}", size=16, weight="bold")
                    text.wrapped(f"The PDF pages of this case could not all be drawn "
                                 f"({type(exc).__name__}: {str(exc)[:300]}). The JSON report "
                                 "holds every check of the case.", size=9,
                                 colour=_STATUS_HEX["not_evaluated"])
                    text.close()
        return buf.getvalue()

    def write(self, reports: Sequence[CaseReport], path: str | Path) -> None:
        write_output(self.render(reports), path)
