"""MR-CT fusion through the console entry point: the demo case with a phantom MR series
and a Spatial Registration in the folder, T10 alone moved 2 mm posterior in the MR
(tests/_mr_phantom.py).  ``contourqa check`` must warn fusion.treated_level at VB_T10
with the measured shift (2 mm within 0.3 mm) in the terminal and the JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np

from contourqa.io.images import read_image_series
from _mr_phantom import LocalMove, crop_ct, mr_pixels, write_mr, write_reg

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "test_data" / "demo_case" / "dicom"
ENTRY = [sys.executable, "-c", "from contourqa.cli import run; run()"]
SCHEMA = json.loads((REPO / "contourqa" / "schemas" / "report.schema.json").read_text("utf-8"))


def test_check_warns_a_fusion_off_at_the_treated_level(tmp_path: Path) -> None:
    case = tmp_path / "case"
    shutil.copytree(DEMO, case)
    ct = read_image_series(sorted(case.glob("CT_*.dcm")))
    small = crop_ct(ct, lower_mm=(-38.0, -28.0), upper_mm=(38.0, 56.0))
    # T10 (z -12..12 mm between its disc mid-planes) 2 mm posterior (+y) in the MR
    move = LocalMove(centre=np.array([0.0, 15.0, 0.0]), r=np.eye(3),
                     t=np.array([0.0, 2.0, 0.0]), z0=-12.0, z1=12.0)
    px, geom = mr_pixels(small, move=move)
    frame, _ = write_mr(case, ct_file=case / "CT_001.dcm", pixels=px, geometry=geom, key="cli")
    write_reg(case / "REG.dcm", ct_file=case / "CT_001.dcm", mr_frame=frame, key="cli")
    out = tmp_path / "report.json"
    proc = subprocess.run([*ENTRY, "check", str(case), "--json", str(out)], capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    # terminal: the warning row with the shift against the 1 mm limit
    row = next(line for line in proc.stdout.splitlines() if "fusion.treated_level" in line)
    assert row.split()[0] == "WARN" and "VB_T10" in row and "mm vs 1 mm" in row
    data = json.loads(out.read_text("utf-8"))
    jsonschema.validate(data, SCHEMA)
    r = data["cases"][0]
    (f,) = [c for c in r["checks"] if c["code"] == "fusion.treated_level"]
    assert f["status"] == "warn" and f["structure"] == "VB_T10" and f["unit"] == "mm"
    assert abs(f["value"] - 2.0) < 0.3 and "rotated by" in f["message"]
    fusion = r["fusion"]
    assert fusion["box"]["level"] == "T10"
    (s,) = fusion["series"]
    assert s["registration"] == "REG.dcm" and s["series"] == "AX T2 phantom"
    t = s["residual"]["translation_mm"]
    assert abs(t[1] - 2.0) < 0.3 and abs(t[0]) < 0.3 and abs(t[2]) < 0.3
    assert s["residual"]["rotation_deg"] < 0.3
    # the MR is seen as registered by the imaging check too
    reg = [c for c in r["checks"] if c["code"] == "imaging.mr_registration"]
    assert [c["status"] for c in reg] == ["pass"]


def test_rules_lists_the_fusion_rule_with_its_citation() -> None:
    proc = subprocess.run([*ENTRY, "rules"], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    block = proc.stdout[proc.stdout.index("fusion.treated_level"):][:900]
    assert "(warn)" in block and "Institutional default, not in the knowledge base" in block
    assert "max_shift_mm = 1" in block and "max_rotation_deg = 1" in block
