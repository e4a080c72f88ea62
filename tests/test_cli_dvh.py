"""`contourqa dvh`: the CLI contract of the DVH issue, through the console entry point.

JSON on stdout or in a file: ROI name -> metric string as requested -> Gy or cc (null
with a reason on stderr when impossible); every ROI with contours when no --roi; the
default metrics; exit 0, or 2 with a message for usage and input errors; the same
numbers whatever the number of worker processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from datapaths import REPO

from contourqa.cli import main
from contourqa.dvh import DEFAULT_METRICS
from contourqa.io import read_structure_set

DEMO = REPO / "test_data" / "demo_case" / "dicom"
RS, RD = DEMO / "RS.dcm", DEMO / "RD.dcm"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The console entry point (`run`, with its fast exit) in a fresh interpreter."""
    return subprocess.run([sys.executable, "-c", "from contourqa.cli import run; run()",
                           "dvh", "--structures", str(RS), "--dose", str(RD), *args],
                          capture_output=True, text=True, timeout=120)


def test_every_roi_with_contours_and_the_default_metrics() -> None:
    proc = _cli("--json", "-")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    names = [r.name for r in read_structure_set(RS).rois if not r.is_empty]
    assert list(out) == names
    for name, row in out.items():
        assert list(row) == [str(m) for m in DEFAULT_METRICS], name
        assert all(v is None or isinstance(v, float) for v in row.values())
        assert row["volume"] > 0
        assert row["Dmin"] <= row["D95%"] <= row["D50%"] <= row["Dmax"]
    # the conventions are told once asked (--verbose); `check --json` always carries them
    assert "conventions: " not in proc.stderr and "Traceback" not in proc.stderr


def test_workers_file_output_and_in_process_call_agree(tmp_path: Path) -> None:
    two, one = tmp_path / "two.json", tmp_path / "one.json"
    assert _cli("--json", str(two), "--jobs", "2").returncode == 0
    assert _cli("--json", str(one), "--jobs", "1").returncode == 0
    assert two.read_text() == one.read_text()
    inproc = tmp_path / "inproc.json"
    assert main(["dvh", "--structures", str(RS), "--dose", str(RD), "--json", str(inproc)]) == 0
    assert inproc.read_text() == one.read_text()


def test_requested_rois_and_metrics_keep_their_spelling() -> None:
    proc = _cli("--roi", "PTV", "--roi", "SpinalCord", "--metrics", "D95%,D0.03cc,V10Gy,Dmax",
                "--json", "-", "--verbose")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("conventions: ") == 1 and "end_caps=" in proc.stderr
    out = json.loads(proc.stdout)
    assert list(out) == ["PTV", "SpinalCord"]
    assert list(out["PTV"]) == ["D95%", "D0.03cc", "V10Gy", "Dmax"]
    assert out["SpinalCord"]["D0.03cc"] <= out["SpinalCord"]["Dmax"]
    assert 0 < out["PTV"]["V10Gy"] <= json.loads(_cli("--roi", "PTV", "--metrics", "volume",
                                                      "--json", "-").stdout)["PTV"]["volume"]


def test_an_impossible_metric_is_null_with_its_reason() -> None:
    proc = _cli("--roi", "GTV", "--metrics", "D500cc,Dmax", "--json", "-")
    assert proc.returncode == 0
    row = json.loads(proc.stdout)["GTV"]
    assert row["D500cc"] is None and row["Dmax"] > 0
    assert "D500cc" in proc.stderr and "cannot take the hottest 500 cc" in proc.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("--roi", "NoSuchROI"), "NoSuchROI"),
    (("--jobs", "0"), "--jobs must be at least 1"),
    (("--metrics", "D95"), "D95"),
])
def test_usage_errors_exit_2_with_a_message(args: tuple[str, ...], message: str) -> None:
    proc = _cli(*args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_a_reader_that_stops_early_gets_no_traceback() -> None:
    cmd = (f"{sys.executable} -c 'from contourqa.cli import run; run()' dvh --structures "
           f"'{RS}' --dose '{RD}' --json - | head -c 20")
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert proc.stdout.startswith("{") and "Traceback" not in proc.stderr
