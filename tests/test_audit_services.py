"""Audit through real services started by the tests: Orthanc (REST and DICOMweb),
PostgreSQL, and a dask.distributed LocalCluster.  Each must give the same rows as the
folder audit with the process pool (tests/test_audit.py).  A service that is not
installed skips its test with the reason; scripts/install-tools.sh installs them.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from _audit_archive import link_subset
from _audit_compare import content

from contourqa.audit import run_audit, write_audit_report

#: one clean case, one with a planted cord overdose, one without dose
SUBSET = ["p02_2fx", "p05_2fx_hot", "p10_no_dose"]


@pytest.fixture(scope="module")
def subset(audit_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return link_subset(audit_archive, SUBSET, tmp_path_factory.mktemp("subset") / "archive")


def _expected(audited_db: tuple[Path, object], got: dict) -> dict:
    full = content(audited_db[0], messages=False)
    return {k: full[k] for k in got}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 30) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                r.read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} not ready in {timeout_s} s: {log.read_text()[-2000:]}")


# -- Orthanc ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, bool]]:
    """Orthanc on a loopback port with temporary storage: (REST root, has DICOMweb)."""
    exe = shutil.which("Orthanc")
    if exe is None:
        pytest.skip("Orthanc is not installed (Debian package orthanc; "
                    "scripts/install-tools.sh installs it)")
    d = tmp_path_factory.mktemp("orthanc")
    plugins = sorted(glob.glob("/usr/share/orthanc/plugins/libOrthancDicomWeb.so*"))[:1]
    log = d / "orthanc.log"
    for _attempt in range(3):  # the port is free when chosen; retry if taken meanwhile
        port = _free_port()
        cfg = {"Name": "contourqa-test", "StorageDirectory": str(d / "storage"),
               "IndexDirectory": str(d / "index"), "HttpPort": port,
               "DicomServerEnabled": False, "RemoteAccessAllowed": False,
               "AuthenticationEnabled": False, "Plugins": plugins,
               "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}
        (d / "orthanc.json").write_text(json.dumps(cfg))
        with open(log, "w") as fh:
            proc = subprocess.Popen([exe, str(d / "orthanc.json")], stdout=fh,
                                    stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_http(url + "/system", proc, log)
            break
        except RuntimeError:
            proc.kill()
            proc.wait()
    else:
        pytest.fail(f"Orthanc did not start: {log.read_text()[-2000:]}")
    try:
        yield url, bool(plugins)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _upload(url: str, folder: Path) -> int:
    n = 0
    for path in sorted(folder.rglob("*.dcm")):
        req = urllib.request.Request(url + "/instances", data=path.read_bytes(),
                                     headers={"Content-Type": "application/dicom"})
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
        n += 1
    return n


def test_orthanc_rest_and_dicomweb_match_the_folder(orthanc: tuple[str, bool], subset: Path,
                                                    audited_db, tmp_path: Path) -> None:
    url, has_dicomweb = orthanc
    assert _upload(url, subset) > 0
    db = tmp_path / "orthanc.sqlite"
    result = run_audit("orthanc+" + url, db, jobs=2)
    assert (result.n_units, result.n_cases, result.n_checked) == (3, 3, 3)
    got = content(db, messages=False)
    assert got == _expected(audited_db, got)
    again = run_audit("orthanc+" + url, db, jobs=2)
    assert (again.n_checked, again.n_skipped) == (0, 3)
    if not has_dicomweb:
        pytest.skip("Orthanc's DICOMweb plugin is not installed (Debian package "
                    "orthanc-dicomweb); the REST source was tested")
    db_web = tmp_path / "dicomweb.sqlite"
    web = run_audit("dicomweb+" + url + "/dicom-web", db_web, jobs=2)
    assert (web.n_cases, web.n_checked) == (3, 3)
    assert content(db_web, messages=False) == got


# -- PostgreSQL ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL cluster on a Unix socket (no TCP port at all)."""
    initdb = shutil.which("initdb") or next(iter(sorted(glob.glob(
        "/usr/lib/postgresql/*/bin/initdb"), reverse=True)), None)
    if initdb is None:
        pytest.skip("PostgreSQL is not installed (Debian package postgresql; "
                    "scripts/install-tools.sh installs it)")
    bindir = Path(os.path.realpath(initdb)).parent
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and no 'postgres' user to run the server as")
        as_user = ["runuser", "-u", "postgres", "--"]
    d = Path(tempfile.mkdtemp(prefix="contourqa-pg-"))
    try:
        (d / "sock").mkdir()
        if as_user:
            shutil.chown(d, "postgres")
            shutil.chown(d / "sock", "postgres")
        subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(d / "data"), "-U",
                        "postgres", "--auth=trust", "-E", "UTF8"], check=True,
                       capture_output=True)
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(d / "data"), "-l",
                        str(d / "log"), "-w", "-t", "30", "-o",
                        f"-k {d / 'sock'} -c listen_addresses='' -F", "start"], check=True,
                       capture_output=True)
        try:
            yield f"postgresql://postgres@/postgres?host={d / 'sock'}"
        finally:
            subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(d / "data"), "-m",
                            "fast", "-w", "stop"], check=False, capture_output=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_postgresql_database_matches_sqlite(postgres_url: str, subset: Path, audited_db,
                                            tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    result = run_audit(subset, postgres_url, jobs=2)
    assert (result.n_cases, result.n_checked) == (3, 3)
    got = content(postgres_url, messages=False)
    assert got == _expected(audited_db, got)
    again = run_audit(subset, postgres_url, jobs=2)
    assert (again.n_checked, again.n_skipped) == (0, 3)
    summary = write_audit_report(postgres_url, csv_path=tmp_path / "pg.csv")
    assert summary.n_cases == 3 and summary.n_error == 1
    assert {r.code: r.n_fail for r in summary.check_rates}["dose.hytec2021.cord_pmax"] == 1


# -- dask.distributed ----------------------------------------------------------------------
def test_dask_local_cluster_matches_the_process_pool(subset: Path, audited_db,
                                                     tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", host="127.0.0.1") as cluster:
        result = run_audit(subset, tmp_path / "dask.sqlite", scheduler=cluster.scheduler_address)
    assert (result.n_cases, result.n_checked) == (3, 3)
    got = content(tmp_path / "dask.sqlite", messages=False)
    assert got == _expected(audited_db, got)


def test_cli_audit_summary_shows_no_password(postgres_url: str, tmp_path: Path) -> None:
    """The password in --db never reaches the terminal (the server here trusts any)."""
    pytest.importorskip("psycopg")
    import sys

    url = postgres_url.replace("postgresql://postgres@", "postgresql://postgres:hunter2-s3cret@")
    assert "hunter2" in url
    demo = Path(__file__).resolve().parents[1] / "test_data" / "demo_case" / "dicom"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", "from contourqa.cli import run; run()",
                          "audit", str(demo), "--db", url, "-j", "1", "-q"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "hunter2" not in out.stdout + out.stderr
    assert "postgresql://postgres:***@/postgres?host=" in out.stderr
