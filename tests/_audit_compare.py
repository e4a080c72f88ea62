"""Read an audit database as comparable content (timings, run ids and paths left out)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contourqa.audit import AuditDatabase

#: columns that differ between equivalent runs: when, how long, which run, where from
VOLATILE = {"checked_at", "wall_s", "check_s", "timings_json", "run_id", "unit_id", "unit_stamp"}


def content(db_url: str | Path, *, keys: set[str] | None = None,
            messages: bool = True) -> dict[str, Any]:
    """case_key -> (case columns, checks, rois) without the volatile columns."""
    out: dict[str, Any] = {}
    with AuditDatabase(db_url) as db:
        cols = [r[1] for r in db.execute("PRAGMA table_info(cases)")] if db.dialect == "sqlite" \
            else [r[0] for r in db.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'cases' "
                "ORDER BY ordinal_position")]
        keep = [c for c in cols if c not in VOLATILE and (messages or c != "error_message")]
        for row in db.execute(f"SELECT {', '.join(keep)} FROM cases ORDER BY case_key"):
            rec = dict(zip(keep, row))
            key = rec["case_key"]
            if keys is not None and key not in keys:
                continue
            check_cols = "code, status, structure, value, limit_value, unit" + (
                ", message" if messages else "")
            checks = db.execute(f"SELECT {check_cols} FROM checks WHERE case_key = ? "
                                "ORDER BY seq", (key,))
            rois = db.execute("SELECT roi_name, roi_number, role, volume_cc, dmin_gy, dmax_gy, "
                              "dmean_gy, metrics_json FROM rois WHERE case_key = ? ORDER BY seq",
                              (key,))
            out[key] = (rec, checks, rois)
    return out
