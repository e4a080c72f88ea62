"""Batch audit under faults: a worker that crashes, a killed audit, a hostile Orthanc,
and the database password in what the audit prints."""

from __future__ import annotations

import doctest
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from contourqa.audit import AuditDatabase, OrthancSource, run_audit

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "test_data" / "demo_case" / "dicom"


def _rows(db: Path, sql: str) -> list[tuple]:
    with AuditDatabase(db) as d:
        return d.execute(sql)


@pytest.fixture
def two_demo_copies(tmp_path: Path) -> Path:
    """The demo case twice (two cases: the second key gets its path)."""
    root = tmp_path / "archive"
    for name in ("a", "b"):
        shutil.copytree(DEMO, root / name)
    return root


def test_redact_url_examples() -> None:
    import contourqa.audit.db

    result = doctest.testmod(contourqa.audit.db)
    assert result.attempted >= 3 and result.failed == 0


def test_a_crashing_unit_is_the_only_crash(two_demo_copies: Path, tmp_path: Path) -> None:
    """Three units in flight on two workers; one kills its worker, which breaks the pool
    under all of them.  Re-run one by one, only that one is recorded as a crash."""
    from _audit_faults import WithACrashingUnit

    from contourqa.audit import FolderSource

    # the copies share their UIDs: discovery makes 3 cases of them (input errors, but
    # checked: what matters here is that none of them is a crash)
    good = {u.unit_id for u in FolderSource(two_demo_copies).units()}
    assert len(good) == 3
    db = tmp_path / "audit.sqlite"
    result = run_audit(WithACrashingUnit(two_demo_copies), db, jobs=2)
    rows = dict(_rows(db, "SELECT case_key, error_kind FROM cases"))
    assert rows.pop("unit:crash:worker") == "crash"
    assert set(rows) == good and "crash" not in rows.values()
    assert (result.n_cases, result.n_checked) == (4, 4)
    # a crash row is retried next run, and is again the only one
    again = run_audit(WithACrashingUnit(two_demo_copies), db, jobs=2)
    assert (again.n_checked, again.n_skipped) == (1, 3)
    assert dict(_rows(db, "SELECT case_key, error_kind FROM cases"))[
        "unit:crash:worker"] == "crash"


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_kill_9_of_an_audit_takes_its_workers_and_the_next_run_marks_it_interrupted(
        two_demo_copies: Path, tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from contourqa.cli import run; run()", "audit",
         str(two_demo_copies), "--db", str(db), "-j", "2", "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    family: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        # multiprocessing's resource tracker, its fork server and the two workers
        while len(_descendants(proc.pid)) < 4 and time.monotonic() < deadline:
            assert proc.poll() is None, "the audit ended before it could be killed"
            time.sleep(0.05)
        family = _descendants(proc.pid)
        assert len(family) >= 4
        assert _rows(db, "SELECT state FROM runs") == [("running",)]
        proc.send_signal(signal.SIGKILL)  # left unreaped (a zombie) while we watch
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in family) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in family if _alive(p)], "workers outlived the killed audit"
        proc.wait(timeout=10)
    finally:  # whatever the outcome, leave no process behind (orphans included)
        for p in family | _descendants(proc.pid) | {proc.pid}:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    result = run_audit(two_demo_copies, db, jobs=1)
    assert result.n_cases == 3
    states = _rows(db, "SELECT run_id, state FROM runs ORDER BY run_id")
    assert states == [(1, "interrupted"), (2, "done")]


# -- a hostile Orthanc ----------------------------------------------------------------------
class _HostileOrthanc(BaseHTTPRequestHandler):
    """Answers the few REST calls an Orthanc audit makes, with path-like instance IDs."""

    served: list[str] = []

    def _json(self, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._json([{"ParentStudy": "0000aaaa-1111bbbb-2222cccc-3333dddd-4444eeee"},
                    {"ParentStudy": "../../studies"}])

    def do_GET(self) -> None:  # noqa: N802
        self.served.append(self.path)
        if self.path.endswith("/instances"):
            self._json([{"ID": "../../../../escape"}, {"ID": "/tmp/contourqa-escape"}])
        elif self.path.startswith("/studies/"):
            self._json({"LastUpdate": "20261207T000000", "Series": [],
                        "PatientMainDicomTags": {"PatientID": "X"}})
        else:  # an instance's file: never asked for
            data = (DEMO / "RP.dcm").read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hostile_orthanc() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostileOrthanc)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _HostileOrthanc.served = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_hostile_orthanc_ids_write_nothing_outside_the_work_folder(
        hostile_orthanc: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))  # where the units are fetched
    db = tmp_path / "audit.sqlite"
    result = run_audit(OrthancSource(hostile_orthanc), db, jobs=1)
    rows = _rows(db, "SELECT case_key, error_kind, error_message FROM cases ORDER BY case_key")
    assert result.n_cases == 2 and [r[1] for r in rows] == ["source", "source"]
    assert all("not an identifier of the expected form" in r[2] for r in rows)
    # nothing was requested with, or written under, a server-given path
    assert not [p for p in _HostileOrthanc.served if "escape" in p or "/../" in p]
    assert not Path("/tmp/contourqa-escape").exists()
    assert not list(tmp_path.rglob("escape*"))
