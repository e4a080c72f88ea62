"""`contourqa inspect` on every folder of ../shared/data, and usage errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from contourqa.cli import main
from datapaths import SHARED_DATA, shared

# folder -> (exit code, strings the description must contain)
EXPECTED = {
    "dicompyler_core_example": (0, ["plan 'B1': 14 Gy in 7 fractions", "dose: grid 194 x 129 x 98 (columns x rows x frames)",
                                    "BODY", "body", "input.missing_referenced_images"]),
    "pps_brain_srs_raystation": (0, ["plan 'imrt 4'", "image: none", "input.missing_image_series",
                                     "input.prescription_fallback"]),
    "pps_plan_competition_misc": (0, ["3 case(s)", "SPINAL CORD2", "spinal_cord", "SC PRV",
                                      "cord_prv", "input.dangling_reference"]),
    "rtutils_mock": (0, ["input.frame_of_reference_mismatch", "input.missing_plan"]),
    "pymedphys_rtplan": (0, ["plan 'AMC06MV'", "input.dangling_reference"]),
    "nelms_analytical_dvh": (0, ["input.ambiguous_dose", "Sphere"]),
    "rider_lung_ct_rtstruct_seg": (0, ["GTVp_test_man", "input.missing_image_series"]),
    "totalsegmentator_examples": (2, ["series CT x20", "0 case(s)"]),
    "sct_testing_spinal_cord_mri": (2, ["0 DICOM objects"]),
}


def test_every_shared_folder_is_listed():
    folders = {p.name for p in SHARED_DATA.iterdir() if p.is_dir()} if SHARED_DATA.exists() else set()
    assert folders <= set(EXPECTED), f"add expectations for {folders - set(EXPECTED)}"


@pytest.mark.parametrize("folder", sorted(EXPECTED))
def test_inspect_shared_folder(folder, capsys):
    path = shared(folder)
    code, needles = EXPECTED[folder]
    assert main(["inspect", str(path)]) == code
    out, err = capsys.readouterr()
    for needle in needles:
        assert needle in out, needle
    if code == 2:
        assert str(path) in err and "no RT Plan, RT Structure Set or RT Dose" in err
    assert "Traceback" not in out + err


def test_inspect_json(capsys):
    assert main(["inspect", str(shared("pps_plan_competition_misc")), "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["cases"]) == 3
    rois = {r["name"]: r["role"] for c in data["cases"] for r in c.get("rois", [])}
    assert rois["SPINAL CORD2"] == "spinal_cord" and rois["SC PRV"] == "cord_prv"


def test_missing_path_exits_2_naming_it(tmp_path, capsys):
    assert main(["check", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err
    assert "absent" in err and "no such file" in err and "Traceback" not in err


def test_usage_error_exits_2(capsys):
    assert main(["check"]) == 2
    assert "usage" in capsys.readouterr().err


def test_console_script_runs():
    # The installed entry point, as a physicist would call it.
    r = subprocess.run([sys.executable, "-m", "contourqa.cli", "--version"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0 and r.stdout.startswith("contourqa ")
