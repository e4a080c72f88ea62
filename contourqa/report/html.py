"""Self-contained HTML report: one file, inline CSS and script, pictures as base64 PNG.

Nothing is fetched when the page is opened (no fonts, scripts or images from the
network), so it can be archived with the plan and read offline.
"""

from __future__ import annotations

import base64
import datetime as _dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from contourqa import __version__
from contourqa.findings import Finding, Status
from contourqa.report.base import sorted_checks, write_output
from contourqa.report.record import SCHEMA_VERSION, CaseReport

__all__ = ["HtmlFormatter", "drawing_failed", "fmt_number", "metric_table"]

_STATUSES = ("fail", "warn", "not_evaluated", "pass")


def fmt_number(value: float | None, unit: str | None = None) -> str:
    """Number with 4 significant digits and its unit; '' for None or not finite."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    text = f"{value:.4g}"
    return f"{text} {unit}" if unit else text


def metric_table(report: CaseReport) -> tuple[list[str], list[tuple[str, str, list[tuple[str, str]]]]]:
    """DVH metrics with their uncertainty band, for tables.

    Returns
    -------
    metric_names : list of str
        Column order (as in the record).
    rows : list of (ROI name, role, cells)
        ``cells`` holds ``(value text, "low-high" text or '')`` per metric.
    """
    roles = {s.name: s.role or "" for s in report.structures}
    bands: dict[str, dict[str, Any]] = report.extra.get("dvh_uncertainty") or {}
    names: list[str] = []
    for values in report.dvh.values():
        names += [m for m in values if m not in names]
    rows = []
    for roi, values in report.dvh.items():
        cells = []
        for m in names:
            band = (bands.get(roi) or {}).get(m)
            band_text = ""
            if band and band[0] is not None and band[1] is not None:
                band_text = f"{band[0]:.4g}\u2013{band[1]:.4g}"
            cells.append((fmt_number(values.get(m)), band_text))
        rows.append((roi, roles.get(roi, ""), cells))
    return names, rows


def drawing_failed(exc: BaseException) -> str:
    """The sentence that replaces a picture whose drawing raised."""
    return (f"the picture could not be drawn ({type(exc).__name__}: {str(exc)[:200]}); the "
            "checks and numbers of this case are not affected.")


@dataclass(frozen=True)
class _PictureView:
    title: str
    png: str | None  # base64
    caption: str


def _b64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


class HtmlFormatter:
    """Writes one self-contained HTML page for all cases of a run.

    Parameters
    ----------
    dpi : int
        Resolution of the embedded pictures.

    Notes
    -----
    Reports without ``media`` (see :class:`~contourqa.report.media.ReportMedia`)
    still render: every picture is replaced by the sentence saying why it is
    missing.
    """

    name: ClassVar[str] = "html"
    needs_media: ClassVar[bool] = True

    def __init__(self, *, dpi: int = 96) -> None:
        self.dpi = dpi

    def _picture(self, picture: Any) -> _PictureView:
        from contourqa.report.figures import figure_png

        if not picture.present:
            return _PictureView(picture.title, None, picture.caption)
        try:
            png = figure_png(picture, dpi=self.dpi)
        except Exception as exc:  # noqa: BLE001 - one picture never stops the report
            return _PictureView(picture.title, None, drawing_failed(exc))
        return _PictureView(picture.title, _b64(png), picture.caption)

    def _case(self, report: CaseReport) -> dict[str, Any]:
        from contourqa.report.figures import case_pictures, sectors_missing_reason

        pics = case_pictures(report)
        sectors = [self._picture(p) for p in pics["sectors"]]  # type: ignore[union-attr]
        checks = sorted_checks([f for f in report.checks if f.status is not Status.NOT_APPLICABLE])
        counts = [(s, sum(f.status.value == s for f in report.checks))
                  for s in (*_STATUSES, Status.NOT_APPLICABLE.value)]
        names, rows = metric_table(report)
        not_evaluated: list[Finding] = [f for f in checks if f.status is Status.NOT_EVALUATED]
        return {
            "report": report, "checks": checks, "counts": counts,
            "failed_or_warned": [f for f in checks if f.status in (Status.FAIL, Status.WARN)],
            "not_evaluated": not_evaluated,
            # folded: checks that do not concern this case (never change the verdict)
            "not_applicable": [f for f in report.checks if f.status is Status.NOT_APPLICABLE],
            "mostly_not_evaluated": 2 * len(not_evaluated) > len(checks),
            "dvh": self._picture(pics["dvh"]), "slices": self._picture(pics["slices"]),
            "sectors": [v for v in sectors if v.png],
            "sectors_missing": " ".join(v.caption for v in sectors if not v.png)
            or sectors_missing_reason(report),
            "metric_names": names, "metrics": rows,
        }

    def _safe_case(self, report: CaseReport) -> dict[str, Any]:
        """:meth:`_case`, or, when drawing this case's pictures fails in a way the
        pictures did not catch, the same page without pictures (saying so)."""
        try:
            return self._case(report)
        except Exception as exc:  # noqa: BLE001 - one case never stops the report
            view = self._case(replace(report, media=None))
            why = drawing_failed(exc)
            for key in ("dvh", "slices"):
                view[key] = _PictureView(view[key].title, None, why)
            return view

    def render(self, reports: Sequence[CaseReport]) -> str:
        import jinja2

        env = jinja2.Environment(
            loader=jinja2.PackageLoader("contourqa.report", "templates"),
            autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=False)
        env.globals["fmt"] = fmt_number
        template = env.get_template("report.html.j2")
        now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        return template.render(cases=[self._safe_case(r) for r in reports], version=__version__,
                               schema_version=SCHEMA_VERSION, generated=now,
                               statuses=_STATUSES)

    def write(self, reports: Sequence[CaseReport], path: str | Path) -> None:
        write_output(self.render(reports), path)
