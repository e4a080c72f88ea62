"""Batch audit from a folder: one row per case, planted errors, broken cases, resume.

The archive (tests/_audit_archive.py) holds 12 generated spine phantoms with known
cord maxima -- two of them over the HyTEC 2021 limit, three broken on purpose, one
scattered over two folders -- and two small third-party sets from ../shared/data.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _audit_archive import PLAN, SHARED_SETS, link_subset
from _audit_compare import content
from datapaths import SHARED_DATA

from contourqa.audit import AuditDatabase, FolderSource, run_audit, write_audit_report
from contourqa.audit.db import SCHEMA_VERSION
from contourqa.audit.sources import _multipart_parts
from contourqa.errors import AuditDatabaseError, AuditSourceError
from contourqa.report import validate_report

REPO = Path(__file__).resolve().parents[1]


def _rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with AuditDatabase(db) as d:
        return d.execute(sql, params)


def _by_patient(db: Path) -> dict[str, tuple]:
    rows = _rows(db, "SELECT patient_id, case_key, status, error_kind, error_message, "
                     "n_fractions, prescription_gy, qa_status FROM cases")
    return {r[0]: r[1:] for r in rows if r[0] and r[0].startswith("CQA-")}


def test_one_row_per_case_found(audit_archive: Path, audited_db) -> None:
    db, result = audited_db
    n_found = len(FolderSource(audit_archive).units())
    # phantoms + at least one case per shared set (without ../shared: phantoms only)
    shared_sets = [n for n in SHARED_SETS if (SHARED_DATA / n).exists()]
    assert n_found >= len(PLAN) + len(shared_sets)
    assert result.n_cases == n_found == result.n_checked
    assert not result.interrupted
    assert _rows(db, "SELECT COUNT(*) FROM cases")[0][0] == n_found
    (state, n_cases), = _rows(db, "SELECT state, n_cases FROM runs")
    assert (state, n_cases) == ("done", n_found)
    # every phantom is there, by its patient id, with its plan's fractions and dose
    cases = _by_patient(db)
    for planned in PLAN:
        key, _status, _kind, _message, n_fx, rx, _qa = cases[f"CQA-{planned.folder}"]
        assert key.startswith("plan:")
        assert (n_fx, rx) == (planned.n_fractions, pytest.approx(planned.prescription_gy))
    # not-applicable checks are counted apart (schema 3), as the checks table says
    for key, n_na in _rows(db, "SELECT case_key, n_not_applicable FROM cases "
                               "WHERE status = 'ok'"):
        (count,), = _rows(db, "SELECT COUNT(*) FROM checks WHERE case_key = ? AND status = "
                              "'not_applicable'", (key,))
        assert n_na == count


def test_planted_cord_overdose_fails(audited_db) -> None:
    db, _ = audited_db
    fails = {r[0] for r in _rows(
        db, "SELECT c.patient_id FROM cases c JOIN checks k ON k.case_key = c.case_key "
            "WHERE k.code = 'dose.hytec2021.cord_pmax' AND k.status = 'fail'")}
    expected = {f"CQA-{p.folder}" for p in PLAN if p.cord_over_limit and not p.broken}
    assert expected and fails == expected


def test_cord_dmax_rows_are_the_truth(audited_db) -> None:
    """The generator's cord maximum is exact by construction (test_data/README.md)."""
    db, _ = audited_db
    dmax = dict(_rows(db, "SELECT c.patient_id, r.dmax_gy FROM cases c JOIN rois r "
                          "ON r.case_key = c.case_key WHERE r.role = 'spinal_cord'"))
    for p in PLAN:
        if not p.broken:
            assert dmax[f"CQA-{p.folder}"] == pytest.approx(p.cord_max_gy, abs=1e-3)
    metrics = _rows(db, "SELECT metrics_json FROM rois r JOIN cases c ON r.case_key = "
                        "c.case_key WHERE c.patient_id = 'CQA-p02_2fx' AND r.role = 'ptv'")
    assert {"Dmin", "Dmax", "Dmean", "D95%"} <= set(json.loads(metrics[0][0]))


def test_broken_cases_are_error_rows(audited_db) -> None:
    db, _ = audited_db
    cases = _by_patient(db)
    expected_code = {"truncated_structure_set": "input.unreadable_structure_set",
                     "missing_dose": "input.missing_dose",
                     "frame_of_reference": "input.frame_of_reference_mismatch"}
    for p in PLAN:
        _key, status, kind, message, *_ = cases[f"CQA-{p.folder}"]
        if p.broken:
            assert (status, kind) == ("error", "input"), p.folder
            assert expected_code[p.damage] in message
        else:
            assert (status, kind, message) == ("ok", None, None), (p.folder, message)


def test_second_run_does_no_work(audit_archive: Path, audited_db, tmp_path: Path) -> None:
    db, first = audited_db
    copy = tmp_path / "again.sqlite"
    with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    before = content(copy)
    again = run_audit(audit_archive, copy, jobs=2)
    assert (again.n_checked, again.n_skipped, again.n_cases) == (0, first.n_cases, first.n_cases)
    assert again.elapsed_s < 10
    assert content(copy) == before


def test_changed_inputs_are_checked_again(audit_archive: Path, tmp_path: Path) -> None:
    arch = tmp_path / "arch"
    shutil.copytree(audit_archive / "p01_1fx", arch / "p01_1fx")
    db = tmp_path / "a.sqlite"
    assert run_audit(arch, db, jobs=1).n_checked == 1
    rd = arch / "p01_1fx" / "dicom" / "RD.dcm"
    os.utime(rd, ns=(time.time_ns(), time.time_ns() + 10**9))  # same bytes, new mtime
    touched = run_audit(arch, db, jobs=1)
    assert (touched.n_checked, touched.n_skipped) == (0, 1)
    rp = arch / "p01_1fx" / "dicom" / "RP.dcm"
    import pydicom

    ds = pydicom.dcmread(rp)
    ds.RTPlanLabel = "T10 SBRT v2"
    ds.save_as(rp)
    changed = run_audit(arch, db, jobs=1)
    assert (changed.n_checked, changed.n_skipped) == (1, 0)
    assert _rows(db, "SELECT plan_label FROM cases") == [("T10 SBRT v2",)]
    # other options: everything again
    from contourqa.check import CheckOptions

    other = run_audit(arch, db, jobs=1, options=CheckOptions(metrics=("Dmax", "Dmean")))
    assert other.n_checked == 1
    assert _rows(db, "SELECT COUNT(*) FROM cases")[0][0] == 1


def _default_sigint() -> None:
    """In the audit's process before it starts: Ctrl-C as at a terminal.  A runner that
    starts the tests in the background (``nohup``, ``cmd &``) leaves SIGINT ignored, and
    an ignored signal is inherited: the audit would never see the test's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _audit_cmd(archive: Path, db: Path) -> list[str]:
    return [sys.executable, "-m", "contourqa.cli", "audit", str(archive), "--db", str(db),
            "--jobs", "2"]


def _wait_rows(db: Path, n: int, proc: subprocess.Popen, timeout_s: float = 60) -> int:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=1) as c:
                    got = c.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
            except sqlite3.OperationalError:  # tables not created yet
                got = 0
            if got >= n:
                return int(got)
        time.sleep(0.05)
    raise AssertionError(f"no {n} case rows in {timeout_s} s")


def test_killed_runs_resume_to_the_same_content(audit_archive: Path, audited_db,
                                                tmp_path: Path) -> None:
    """Ctrl-C after 3 cases, then SIGKILL of everything after 3 more, then finish."""
    db_full, full = audited_db
    db = tmp_path / "resumed.sqlite"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(_audit_cmd(audit_archive, db), stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True,
                            preexec_fn=_default_sigint)
    _wait_rows(db, 3, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    n_after_int = _rows(db, "SELECT COUNT(*) FROM cases")[0][0]
    assert 3 <= n_after_int < full.n_cases
    assert _rows(db, "SELECT state FROM runs") == [("interrupted",)]

    proc = subprocess.Popen(_audit_cmd(audit_archive, db), stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True,
                            preexec_fn=_default_sigint)
    _wait_rows(db, n_after_int + 3, proc)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole group: main process and workers
    proc.communicate(timeout=30)
    n_after_kill = _rows(db, "SELECT COUNT(*) FROM cases")[0][0]
    assert n_after_kill < full.n_cases

    last = run_audit(audit_archive, db, jobs=2)
    assert last.n_skipped == n_after_kill
    assert last.n_checked == full.n_cases - n_after_kill
    assert content(db) == content(db_full)


def test_audit_report_html_and_csv(audited_db, tmp_path: Path) -> None:
    db, result = audited_db
    html, csv_path = tmp_path / "audit.html", tmp_path / "audit.csv"
    from contourqa.cli import main

    assert main(["audit-report", str(db), "--html", str(html), "--csv", str(csv_path)]) == 0
    page = html.read_text()
    assert "dose.hytec2021.cord_pmax" in page
    assert page.count("data:image/png;base64,") == 3
    import csv

    with csv_path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == result.n_cases
    hot = next(r for r in rows if r["patient_id"] == "CQA-p05_2fx_hot")
    assert float(hot["cord_dmax_gy"]) == pytest.approx(20.0, abs=1e-3)
    assert float(hot["cord_limit_gy"]) == pytest.approx(17.0)
    # the worst cases link to their JSON reports, written beside the page
    links = sorted((tmp_path / "audit_reports").glob("*.json"))
    doc = json.loads(links[0].read_text())
    validate_report(doc)  # the same document as `contourqa check --json`
    assert len(doc["cases"]) == 1 and doc["cases"][0]["case"]["files"]
    # worst first: most failed checks, then cord Dmax closest to (or over) its limit
    summary = write_audit_report(db)
    n_fail = [r["n_fail"] for r in summary.worst]
    assert n_fail == sorted(n_fail, reverse=True)
    assert summary.worst[0]["patient_id"] == "CQA-p06_1fx_hot"  # HyTEC and TG-101 fail
    assert "CQA-p05_2fx_hot" in {r["patient_id"] for r in summary.worst}
    rates = {r.code: r for r in summary.check_rates}
    assert rates["dose.hytec2021.cord_pmax"].n_fail == 2


def test_cli_audit_subset(audit_archive: Path, audited_db, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    from contourqa.cli import main

    sub = link_subset(audit_archive, ["p05_2fx_hot"], tmp_path / "sub")
    db = tmp_path / "cli.sqlite"
    assert main(["audit", str(sub), "--db", str(db), "-j", "1", "-q"]) == 0
    assert "1 cases" in capsys.readouterr().err
    full = content(audited_db[0], messages=False)
    got = content(db, messages=False)
    assert got == {k: v for k, v in full.items() if k in got}
    assert main(["audit", str(sub), "--db", str(db), "--html", "x.html"]) == 2
    assert main(["audit", "--db", str(db)]) == 2


def test_schema_migrates_and_refuses_newer(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    # a version-1 database, as an older contourqa left it
    d = AuditDatabase.__new__(AuditDatabase)
    d.url, d.dialect, d._conn = str(db), "sqlite", sqlite3.connect(db)
    d.migrate(to_version=1)
    assert d.schema_version == 1
    d.close()
    with AuditDatabase(db) as d:
        assert d.schema_version == SCHEMA_VERSION == 4
        assert d.execute("SELECT COUNT(*) FROM reports") == [(0,)]
        assert d.execute("SELECT host, pid FROM runs") == []  # version 4's columns
        assert d.execute("SELECT COUNT(n_not_applicable) FROM cases") == [(0,)]  # version 3
        d.execute("UPDATE schema_meta SET value = '99' WHERE key = 'schema_version'")
        d.commit()
    with pytest.raises(AuditDatabaseError, match="newer contourqa"):
        AuditDatabase(db)
    with pytest.raises(AuditDatabaseError, match="does not exist"):
        AuditDatabase(tmp_path / "no" / "such" / "dir.sqlite")
    with pytest.raises(AuditSourceError, match="no such folder"):
        run_audit(tmp_path / "missing", tmp_path / "x.sqlite")


def test_multipart_parts_split_wado_responses() -> None:
    body = (b"--b1\r\nContent-Type: application/dicom\r\n\r\nDICM-one\r\n"
            b"--b1\r\nContent-Type: application/dicom\r\n\r\n\r\nbin\r\n\r\n--b1--\r\n")
    parts = _multipart_parts(body, 'multipart/related; type="application/dicom"; boundary=b1')
    assert parts == [b"DICM-one", b"\r\nbin\r\n"]
    with pytest.raises(AuditSourceError):
        _multipart_parts(body, "multipart/related")
