"""Traps of a newcomer's first hour, through the console entry point.

- ``--json`` writes one document (``schema_version``, ``contourqa_version``, ``cases``)
  for one case and for two;
- an output path that cannot be written stops the run before any work: exit 2 and
  one line, no traceback, no other report written;
- ``contourqa audit`` run from a folder that holds a ``contourqa/`` folder (the parent
  of a clone) checks its cases, with the package found the way an editable install
  finds it; an audit whose cases could not be checked exits 2 and says why.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from datapaths import REPO
from pydicom.uid import generate_uid

from contourqa.report import validate_report

DEMO = REPO / "test_data" / "demo_case" / "dicom"
ENTRY = "from contourqa.cli import run; run()"


def _cli(*args: str, cwd: Path | None = None, code: str = ENTRY,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)


def _rt_only(folder: Path, *, n_plans: int = 1) -> Path:
    """The demo's RT objects without the CT (quick to check); ``n_plans`` > 1 adds
    copies of the plan under new UIDs, each one more case."""
    folder.mkdir()
    for f in DEMO.glob("R*.dcm"):
        (folder / f.name).symlink_to(f)
    for k in range(1, n_plans):
        ds = pydicom.dcmread(DEMO / "RP.dcm")
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.RTPlanLabel = f"copy {k}"
        ds.save_as(folder / f"RP_copy{k}.dcm")
    return folder


@pytest.mark.parametrize("n_cases", [1, 2])
def test_json_is_one_document_whatever_the_number_of_cases(tmp_path: Path, n_cases: int) -> None:
    case_dir = _rt_only(tmp_path / "case", n_plans=n_cases)
    proc = _cli("check", str(case_dir), "--json", "-")
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(proc.stdout)
    validate_report(doc)
    assert doc["schema_version"].startswith("2.")
    assert len(doc["cases"]) == n_cases
    assert sorted(c["case"]["plan_label"] for c in doc["cases"]) == sorted(
        ["T10 SBRT", *(f"copy {k}" for k in range(1, n_cases))])


def test_unwritable_output_stops_before_any_work(tmp_path: Path) -> None:
    case_dir = _rt_only(tmp_path / "case")
    written = tmp_path / "ok.csv"
    proc = _cli("check", str(case_dir), "--csv", str(written), "--json",
                str(tmp_path / "nodir" / "r.json"))
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "nodir" in err[0] and "--json" in err[0], proc.stderr
    assert not written.exists()  # nothing was checked nor written


def test_every_output_option_is_checked_first(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from contourqa.cli import main

    (tmp_path / "afile").write_text("x")
    nodir = str(tmp_path / "nodir" / "x")
    bad_paths = (nodir, str(tmp_path / "afile" / "r.out"), str(tmp_path))
    for option in ("--json", "--html", "--pdf", "--csv", "--sarif"):
        for bad in bad_paths:  # missing folder, a file as folder, a folder as file
            # a missing case folder would be exit 2 too, but later and with another message
            assert main(["check", str(tmp_path / "no_case"), option, bad]) == 2
            err = capsys.readouterr().err
            assert option in err and "no_case" not in err, err
    for args in (["dvh", "--structures", str(DEMO / "RS.dcm"), "--dose", str(DEMO / "RD.dcm"),
                  "--json", nodir],
                 ["inspect", str(DEMO), "--json", nodir],
                 ["sectors", str(DEMO), "--json", nodir],
                 ["demo", "--out", str(tmp_path / "afile")],
                 ["demo", "--out", str(tmp_path / "d"), "--json", nodir],
                 ["audit", str(DEMO), "--db", nodir]):
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and ("nodir" in err[0] or "afile" in err[0]), (args, err)
    assert not (tmp_path / "d").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    proc = _cli("check", str(_rt_only(tmp_path / "case")), "--json", str(ro / "r.json"))
    assert proc.returncode == 2 and "not writable" in proc.stderr


# A setuptools editable install ("pip install -e ." as `make test` does) finds the
# package through a finder placed after the path-based one: a `contourqa/` folder in
# the working directory then wins as a namespace package wherever the working
# directory is on sys.path (the fork server's `python -c`).  This sitecustomize
# reproduces that finder for the child interpreters, whatever this test runs under.
_SITECUSTOMIZE = '''
import importlib.machinery, importlib.util, os, sys
_PKG = {pkg!r}

class _EditableLikeFinder:
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname != "contourqa":
            return None
        return importlib.util.spec_from_file_location(
            fullname, os.path.join(_PKG, "__init__.py"), submodule_search_locations=[_PKG])

_at = next((i for i, f in enumerate(sys.meta_path) if f is importlib.machinery.PathFinder),
           len(sys.meta_path) - 1)
sys.meta_path.insert(_at + 1, _EditableLikeFinder)

class _BrokenWorkers:
    """With CQA_TEST_BREAK_WORKERS=1 (set by the parent once it has imported what it
    needs), the audit's worker processes cannot import it."""
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if (os.environ.get("CQA_TEST_BREAK_WORKERS") == "1"
                and fullname.startswith("contourqa.audit")):
            raise ImportError("test: this worker cannot import " + fullname)
        return None

sys.meta_path.insert(0, _BrokenWorkers)
'''
# the console script's sys.path: its own folder first, never the working directory
_SCRIPT = ("import os, sys; sys.path[:] = [p for p in sys.path if p not in ('', os.getcwd())]; "
           "from contourqa.cli import run; {before}run()")


def _parent_of_a_clone(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    parent = tmp_path / "parent"
    (parent / "contourqa").mkdir(parents=True)  # the clone, seen from its parent
    (parent / "contourqa" / "README.md").write_text("a clone\n")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        _SITECUSTOMIZE.format(pkg=str(REPO / "contourqa")), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "CQA_TEST_BREAK_WORKERS"}
    env["PYTHONPATH"] = str(site)
    return parent, env


def test_audit_from_the_parent_of_a_clone(tmp_path: Path) -> None:
    parent, env = _parent_of_a_clone(tmp_path)
    case_dir = _rt_only(tmp_path / "archive")
    db = tmp_path / "audit.sqlite"
    proc = _cli("audit", str(case_dir), "--db", str(db), "-j", "1", "-q", cwd=parent,
                code=_SCRIPT.format(before=""), env=env)
    assert proc.returncode == 0, proc.stderr
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT status, error_kind, qa_status FROM cases").fetchall()
    assert len(rows) == 1 and rows[0][0] == "ok", rows


def test_audit_whose_workers_cannot_check_exits_2(tmp_path: Path) -> None:
    parent, env = _parent_of_a_clone(tmp_path)
    case_dir = _rt_only(tmp_path / "archive")
    db = tmp_path / "audit.sqlite"
    # the workers cannot import the audit: every case is an error/crash row
    before = ("import contourqa.audit.runner; "
              "os.environ['CQA_TEST_BREAK_WORKERS'] = '1'; ")
    proc = _cli("audit", str(case_dir), "--db", str(db), "-j", "1", "-q", cwd=parent,
                code=_SCRIPT.format(before=before), env=env)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "1 case(s) could not be checked" in last and "crash" in last


def test_listen_without_the_node_extra_says_how_to_install_it(tmp_path: Path) -> None:
    hide = ("import sys\n"
            "class NoPynetdicom:\n"
            "    @staticmethod\n"
            "    def find_spec(name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'pynetdicom':\n"
            "            raise ModuleNotFoundError(name)\n"
            "sys.meta_path.insert(0, NoPynetdicom)\n")
    proc = _cli("listen", "--storage", str(tmp_path / "store"), "--port", "0",
                code=hide + ENTRY)
    assert proc.returncode == 2
    assert "pip install 'contourqa[node]'" in proc.stderr and "Traceback" not in proc.stderr
    # the check itself needs no extra
    proc = _cli("check", str(_rt_only(tmp_path / "case")), "--json", "-", code=hide + ENTRY)
    assert proc.returncode in (0, 1), proc.stderr


def test_terminal_summary_piped_to_a_file_is_not_cut(tmp_path: Path) -> None:
    case_dir = _rt_only(tmp_path / "case")
    proc = _cli("check", str(case_dir))  # stdout is a pipe, as with > file
    assert proc.returncode in (0, 1), proc.stderr
    assert "…" not in proc.stdout
    lines = proc.stdout.splitlines()
    header = next(line for line in lines if line.startswith("status"))
    assert header.split()[:2] == ["status", "check"]
    assert all(line == line.rstrip() for line in lines)
    (case,) = json.loads(_cli("check", str(case_dir), "--json", "-").stdout)["cases"]
    shown = [c for c in case["checks"] if c["status"] in ("fail", "warn")]
    assert shown and all(c["source"] in proc.stdout for c in shown if c["source"])


def test_dose_grid_size_in_one_order_everywhere(tmp_path: Path) -> None:
    ds = pydicom.dcmread(DEMO / "RD.dcm", stop_before_pixels=True)
    want = f"{ds.Columns} x {ds.Rows} x {ds.NumberOfFrames}"  # columns x rows x frames
    case_dir = _rt_only(tmp_path / "case")
    text = _cli("inspect", str(case_dir)).stdout
    assert f"grid {want} (columns x rows x frames)" in text
    html = tmp_path / "r.html"
    proc = _cli("check", str(case_dir), "--html", str(html), "--json", "-")
    (case,) = json.loads(proc.stdout)["cases"]
    assert case["case"]["dose_grid"]["shape"] == [ds.Columns, ds.Rows, int(ds.NumberOfFrames)]
    assert f"{want} voxels" in html.read_text(encoding="utf-8")
    # no CT in this folder, but a dose grid: the message does not claim more
    (missing,) = [c for c in case["checks"] if c["code"] == "input.missing_image_series"] or [None]
    if missing is not None:
        assert "dose grid only" not in missing["message"]
