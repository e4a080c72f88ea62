"""Summary of an audit database: failing-check rates, dose distributions, worst cases.

``contourqa audit-report DB --html FILE [--csv FILE]`` writes one self-contained HTML
page (plots embedded as PNG) and, next to it, each worst case's JSON report so the
page can link to it; the CSV has one row per case.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contourqa.audit.db import AuditDatabase
from contourqa.errors import ContourQAError
from contourqa.report.json_report import report_document
from contourqa.report.text import spreadsheet_cell

__all__ = ["AuditSummary", "CheckRate", "summarize", "write_audit_report"]

_CORD_PMAX = "%cord_pmax"


@dataclass(frozen=True)
class CheckRate:
    """How often one check code failed or warned, over the cases that evaluated it."""

    code: str
    n_fail: int
    n_warn: int
    n_evaluated: int   # cases where the check was pass, warn or fail
    n_cases: int       # cases where it appears at all

    @property
    def fail_rate(self) -> float:
        return self.n_fail / self.n_evaluated if self.n_evaluated else 0.0


@dataclass(frozen=True)
class AuditSummary:
    """Counts and distributions of one database (see :func:`summarize`).

    Dose values in Gy; ``ptv_coverage`` in percent of the PTV receiving the
    prescription.
    """

    n_cases: int
    n_ok: int
    n_error: int
    qa_status: dict[str, int]
    check_rates: tuple[CheckRate, ...]
    #: (case_key, n_fractions, cord Dmax Gy, limit Gy or None)
    cord_dmax: tuple[tuple[str, int | None, float, float | None], ...]
    gtv_dmin: tuple[tuple[str, int | None, float], ...]
    ptv_coverage: tuple[tuple[str, int | None, float], ...]
    #: case rows (dicts) ordered worst first
    worst: tuple[dict[str, Any], ...] = field(default=())
    errors: tuple[dict[str, Any], ...] = field(default=())
    #: every case row (dicts), by case_key
    cases: tuple[dict[str, Any], ...] = field(default=())


def summarize(db_url: str | Path, *, n_worst: int = 20) -> AuditSummary:
    """Read the counts, rates and distributions of an audit database.

    Parameters
    ----------
    db_url : str or Path
        SQLite file or ``postgresql://...`` URL.
    n_worst : int
        How many cases to list as worst (most failed checks, then highest cord
        Dmax relative to its limit).
    """
    with AuditDatabase(db_url) as db:
        n_cases = int(db.execute("SELECT COUNT(*) FROM cases")[0][0])
        by_status = dict(db.execute("SELECT status, COUNT(*) FROM cases GROUP BY status"))
        qa = {str(k): int(v) for k, v in db.execute(
            "SELECT qa_status, COUNT(*) FROM cases WHERE qa_status IS NOT NULL "
            "GROUP BY qa_status ORDER BY qa_status")}
        rates = tuple(CheckRate(code, int(nf), int(nw), int(ne), int(nc)) for code, nf, nw, ne, nc
                      in db.execute(
            "SELECT code, "
            "COUNT(DISTINCT CASE WHEN status = 'fail' THEN case_key END), "
            "COUNT(DISTINCT CASE WHEN status = 'warn' THEN case_key END), "
            "COUNT(DISTINCT CASE WHEN status IN ('pass', 'warn', 'fail') THEN case_key END), "
            "COUNT(DISTINCT case_key) FROM checks GROUP BY code "
            "ORDER BY 2 DESC, 3 DESC, code"))
        # The cord maximum: the spinal-cord ROI's Dmax, the tightest cord Pmax limit.
        cord = db.execute(
            "SELECT c.case_key, c.n_fractions, MAX(r.dmax_gy), "
            "(SELECT MIN(k.limit_value) FROM checks k WHERE k.case_key = c.case_key "
            " AND k.code LIKE ? AND k.limit_value IS NOT NULL) "
            "FROM cases c JOIN rois r ON r.case_key = c.case_key "
            "WHERE r.role = 'spinal_cord' AND r.dmax_gy IS NOT NULL "
            "GROUP BY c.case_key, c.n_fractions ORDER BY c.case_key", (_CORD_PMAX,))
        gtv = db.execute(
            "SELECT c.case_key, c.n_fractions, MIN(r.dmin_gy) FROM cases c "
            "JOIN rois r ON r.case_key = c.case_key WHERE r.role = 'gtv' "
            "AND r.dmin_gy IS NOT NULL GROUP BY c.case_key, c.n_fractions ORDER BY c.case_key")
        ptv = db.execute(
            "SELECT c.case_key, c.n_fractions, MIN(k.value) FROM cases c "
            "JOIN checks k ON k.case_key = c.case_key WHERE k.code = 'dose.ptv_coverage' "
            "AND k.value IS NOT NULL GROUP BY c.case_key, c.n_fractions ORDER BY c.case_key")
        cols = ["case_key", "name", "patient_id", "plan_label", "n_fractions", "prescription_gy",
                "status", "qa_status", "n_fail", "n_warn", "n_not_evaluated", "error_kind",
                "error_message"]
        rows = [dict(zip(cols, r)) for r in db.execute(
            f"SELECT {', '.join(cols)} FROM cases ORDER BY case_key")]
    ratio = {k: (d / lim if lim else 0.0) for k, _, d, lim in cord}
    cord_by_key = {k: (d, lim) for k, _, d, lim in cord}
    for r in rows:
        r["cord_dmax_gy"], r["cord_limit_gy"] = cord_by_key.get(r["case_key"], (None, None))
    worst = sorted((r for r in rows if r["status"] == "ok" or r["n_fail"]),
                   key=lambda r: (-(r["n_fail"] or 0), -ratio.get(r["case_key"], 0.0),
                                  r["case_key"]))[:n_worst]
    return AuditSummary(
        n_cases=n_cases, n_ok=int(by_status.get("ok", 0)), n_error=int(by_status.get("error", 0)),
        qa_status=qa, check_rates=rates,
        cord_dmax=tuple((k, n, float(d), None if lim is None else float(lim))
                        for k, n, d, lim in cord),
        gtv_dmin=tuple((k, n, float(d)) for k, n, d in gtv),
        ptv_coverage=tuple((k, n, float(v)) for k, n, v in ptv),
        worst=tuple(worst), errors=tuple(r for r in rows if r["status"] == "error"),
        cases=tuple(rows))


def _plots(summary: AuditSummary) -> dict[str, str]:
    """Base64 PNGs of the three distributions (matplotlib, Agg backend)."""
    try:
        from matplotlib.figure import Figure  # Figure alone needs no GUI backend
    except ImportError as exc:
        raise ContourQAError("the audit report's plots need matplotlib; install it with: "
                             "pip install 'contourqa[audit]'") from exc

    out: dict[str, str] = {}

    def png(fig: Figure) -> str:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
        return base64.b64encode(buf.getvalue()).decode()

    fig = Figure(figsize=(6, 3.6))
    ax = fig.add_subplot()
    if summary.cord_dmax:
        fx = [n or 0 for _, n, _, _ in summary.cord_dmax]
        ax.scatter(fx, [d for _, _, d, _ in summary.cord_dmax], label="cord Dmax", zorder=3)
        lims = sorted({(n or 0, lim) for _, n, _, lim in summary.cord_dmax if lim is not None})
        if lims:
            ax.scatter([n for n, _ in lims], [v for _, v in lims], marker="_", s=400,
                       color="red", label="tightest cord Pmax limit", zorder=4)
        ax.legend(fontsize=8)
    ax.set_xlabel("number of fractions")
    ax.set_ylabel("Gy")
    ax.set_title("Spinal cord Dmax vs limit by fraction number")
    out["cord"] = png(fig)

    for key, data, title, unit in (
            ("gtv", summary.gtv_dmin, "GTV Dmin", "Gy"),
            ("ptv", summary.ptv_coverage, "PTV coverage (V100%)", "%")):
        fig = Figure(figsize=(6, 3.2))
        ax = fig.add_subplot()
        values = [v for _, _, v in data]
        if values:
            ax.hist(values, bins=min(20, max(5, len(values))))
        ax.set_xlabel(unit)
        ax.set_ylabel("cases")
        ax.set_title(f"{title} (n = {len(values)})")
        out[key] = png(fig)
    return out


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120]


def write_audit_report(db_url: str | Path, *, html_path: str | Path | None = None,
                       csv_path: str | Path | None = None, n_worst: int = 20) -> AuditSummary:
    """Write the HTML summary (and its linked case reports) and/or the per-case CSV.

    Parameters
    ----------
    db_url : str or Path
        The audit database.
    html_path : str or Path, optional
        HTML page; the worst cases' JSON reports go to ``<stem>_reports/`` beside it.
    csv_path : str or Path, optional
        One row per case: identifiers, status, counts, cord Dmax and limit.
    """
    summary = summarize(db_url, n_worst=n_worst)
    if csv_path is not None:
        cols = ["case_key", "name", "patient_id", "plan_label", "n_fractions",
                "prescription_gy", "status", "qa_status", "n_fail", "n_warn",
                "n_not_evaluated", "cord_dmax_gy", "cord_limit_gy", "error_kind",
                "error_message"]
        with open(csv_path, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
            w.writeheader()
            # names, labels and messages come from the files: no spreadsheet formulas
            w.writerows({k: spreadsheet_cell(v) if isinstance(v, str) else v
                         for k, v in row.items()} for row in summary.cases)
    if html_path is not None:
        html_path = Path(html_path)
        report_dir = html_path.with_name(html_path.stem + "_reports")
        report_dir.mkdir(parents=True, exist_ok=True)
        links: dict[str, str] = {}
        with AuditDatabase(db_url) as db:
            for r in summary.worst:
                got = db.execute("SELECT report_json FROM reports WHERE case_key = ?",
                                 (r["case_key"],))
                if got:
                    name = _safe(r["case_key"]) + ".json"
                    # the same document as `contourqa check --json` writes
                    (report_dir / name).write_text(json.dumps(
                        report_document([json.loads(got[0][0])]), indent=2) + "\n",
                        encoding="utf-8")
                    links[r["case_key"]] = f"{report_dir.name}/{name}"
        html_path.write_text(_html(summary, _plots(summary), links), encoding="utf-8")
    return summary


def _html(s: AuditSummary, plots: dict[str, str], links: dict[str, str]) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>contourqa audit</title>",
        "<style>body{font-family:sans-serif;max-width:70em;margin:auto}table{border-collapse:"
        "collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}"
        ".fail{color:#b00}</style></head><body>",
        "<h1>contourqa audit</h1>",
        f"<p>{s.n_cases} cases: {s.n_ok} checked, {s.n_error} with errors. QA status: "
        + ", ".join(f"{e(k)} {v}" for k, v in s.qa_status.items()) + ".</p>",
        "<h2>Checks that failed or warned</h2><table><tr><th>code</th><th>fail</th>"
        "<th>warn</th><th>evaluated</th><th>fail rate</th></tr>",
    ]
    for rate in s.check_rates:
        if rate.n_fail or rate.n_warn:
            parts.append(f"<tr><td>{e(rate.code)}</td><td class='fail'>{rate.n_fail}</td>"
                         f"<td>{rate.n_warn}</td><td>{rate.n_evaluated}</td>"
                         f"<td>{100 * rate.fail_rate:.1f}%</td></tr>")
    parts.append("</table><h2>Distributions</h2>")
    for key in ("cord", "gtv", "ptv"):
        parts.append(f"<img alt='{key}' src='data:image/png;base64,{plots[key]}'>")
    parts.append("<h2>Worst cases</h2><table><tr><th>case</th><th>fx</th><th>Rx Gy</th>"
                 "<th>failed</th><th>cord Dmax / limit Gy</th><th>report</th></tr>")
    for r in s.worst:
        cord = ("" if r["cord_dmax_gy"] is None else f"{r['cord_dmax_gy']:.2f}"
                + ("" if r["cord_limit_gy"] is None else f" / {r['cord_limit_gy']:.2f}"))
        link = (f"<a href='{e(links[r['case_key']])}'>JSON</a>" if r["case_key"] in links else "")
        parts.append(f"<tr><td>{e(str(r['name']))}</td><td>{r['n_fractions'] or ''}</td>"
                     f"<td>{r['prescription_gy'] or ''}</td><td class='fail'>{r['n_fail']}</td>"
                     f"<td>{cord}</td><td>{link}</td></tr>")
    parts.append("</table><h2>Cases with errors</h2><table><tr><th>case</th><th>kind</th>"
                 "<th>message</th></tr>")
    for r in s.errors:
        parts.append(f"<tr><td>{e(str(r['name']))}</td><td>{e(str(r['error_kind']))}</td>"
                     f"<td>{e(str(r['error_message'])[:300])}</td></tr>")
    parts.append("</table></body></html>\n")
    return "".join(parts)
