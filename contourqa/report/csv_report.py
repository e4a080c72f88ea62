"""CSV report: one tidy row per case and check, and per case, ROI and DVH metric.

Text cells that a spreadsheet would run as a formula (a ROI named ``=HYPERLINK(...)``)
start with ``'``, and control characters are written as escapes
(:func:`contourqa.report.text.spreadsheet_cell`); numbers are written as they are.

Every row repeats the case columns, so that rows from many runs can be appended to
one spreadsheet or data frame and filtered by any column.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from contourqa.report.base import write_output
from contourqa.report.record import CaseReport
from contourqa.report.text import spreadsheet_cell

__all__ = ["CSV_COLUMNS", "CsvFormatter"]

#: Column names, in order.  ``kind`` is ``check`` or ``dvh_metric``.
CSV_COLUMNS: tuple[str, ...] = (
    "case", "patient_id", "plan_label", "n_fractions", "prescription_gy", "case_status",
    "kind", "code", "status", "structure", "role", "metric", "value", "limit", "unit",
    "band_low", "band_high", "source", "message",
)


def _num(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(round(value, 6))
    return str(value)


class CsvFormatter:
    """Writes checks and DVH metrics as tidy CSV rows (UTF-8, header row, RFC 4180)."""

    name: ClassVar[str] = "csv"
    needs_media: ClassVar[bool] = False

    def rows(self, report: CaseReport) -> list[dict[str, str]]:
        """The rows of one case, as column name -> text."""
        c = report.case
        base = {"case": c.name, "patient_id": c.patient_id or "", "plan_label": c.plan_label or "",
                "n_fractions": _num(c.n_fractions), "prescription_gy": _num(c.prescription_gy),
                "case_status": report.status}
        roles = {s.name: s.role or "" for s in report.structures}
        out = []
        for f in report.checks:
            out.append({**base, "kind": "check", "code": f.code, "status": f.status.value,
                        "structure": f.structure or "", "role": roles.get(f.structure or "", ""),
                        "metric": "", "value": _num(f.value), "limit": _num(f.limit),
                        "unit": f.unit or "", "band_low": "", "band_high": "",
                        "source": f.source or "", "message": f.message})
        bands = report.extra.get("dvh_uncertainty") or {}
        from contourqa.dvh import DVHMetric

        for roi, values in report.dvh.items():
            for metric, value in values.items():
                band = (bands.get(roi) or {}).get(metric) or [None, None]
                unit = "cc" if metric == "volume" else DVHMetric.parse(metric).unit
                out.append({**base, "kind": "dvh_metric", "code": "", "status": "",
                            "structure": roi, "role": roles.get(roi, ""), "metric": metric,
                            "value": _num(value), "limit": "", "unit": unit,
                            "band_low": _num(band[0]), "band_high": _num(band[1]),
                            "source": "", "message": ""})
        return out

    def render(self, reports: Sequence[CaseReport]) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\r\n")
        writer.writeheader()
        numeric = {"n_fractions", "prescription_gy", "value", "limit", "band_low", "band_high"}
        for r in reports:
            # Text cells come from the DICOM files (ROI names, labels, IDs): a leading
            # =, +, - or @ would run as a spreadsheet formula, so it is quoted.
            writer.writerows({k: v if k in numeric else spreadsheet_cell(v) for k, v in row.items()}
                             for row in self.rows(r))
        return buf.getvalue()

    def write(self, reports: Sequence[CaseReport], path: str | Path) -> None:
        write_output(self.render(reports), path)
