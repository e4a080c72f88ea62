"""Plan quality and epidural geometry through the console entry point: the JSON
sections (schema-valid), the estimated Bilsky grade reaching the post-operative rule,
and ``contourqa rules`` listing every new rule with its citation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "test_data" / "demo_case" / "dicom"
ENTRY = [sys.executable, "-c", "from contourqa.cli import run; run()"]
SCHEMA = json.loads((REPO / "contourqa" / "schemas" / "report.schema.json").read_text("utf-8"))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ENTRY, *args], capture_output=True, text=True, timeout=300,
                          check=False)


def test_demo_reports_plan_quality_and_epidural_geometry() -> None:
    proc = _cli("check", str(DEMO), "--mode", "postop", "--json", "-")
    assert proc.returncode in (0, 1), proc.stderr
    data = json.loads(proc.stdout)
    jsonschema.validate(data, SCHEMA)
    r = data["cases"][0]
    names = {q["name"] for q in r["plan_quality"]["quantities"]}
    assert {"Paddick CI", "GI", "R50%", "D2cm"} <= names
    assert all(q["evaluated"] is False for q in r["plan_quality"]["quantities"])
    ci = next(q for q in r["plan_quality"]["quantities"] if q["name"] == "Paddick CI")
    assert 0 < ci["value"] <= 1 and ci["band"][0] <= ci["value"] <= ci["band"][1]
    assert r["plan_quality"]["hot_spot"]["location"]
    levels = r["epidural_geometry"]["levels"]
    assert [lv["level"] for lv in levels] == ["T10"]
    assert levels[0]["bilsky_label"] == "estimated from contours"
    # no --bilsky: the post-operative rule uses the estimate, labelled
    bilsky = [c for c in r["checks"] if c["code"] == "postop.bilsky"]
    assert bilsky and all("ESTIMATED from contours" in c["message"] for c in bilsky)
    assert all(c["status"] == "pass" for c in bilsky)  # grade 0 is no contraindication


def test_given_bilsky_grade_wins_over_the_estimate() -> None:
    proc = _cli("check", str(DEMO), "--mode", "postop", "--bilsky", "3", "--json", "-")
    data = json.loads(proc.stdout)
    r = data["cases"][0]
    bilsky = [c for c in r["checks"] if c["code"] == "postop.bilsky"]
    assert bilsky and all(c["status"] == "fail" and "ESTIMATED" not in c["message"]
                          for c in bilsky)


def test_rules_lists_the_new_rules_with_citations() -> None:
    proc = _cli("rules")
    assert proc.returncode == 0, proc.stderr
    for code, cited in (("plan.conformity", "Paddick I. A simple scoring ratio"),
                        ("plan.gradient", "Paddick I, Lippitz B"),
                        ("plan.d2cm", "RTOG 0915"), ("plan.coverage_ex_prv", "RTOG 0631"),
                        ("epidural.cord_gap", "RTOG 0631 eligibility"),
                        ("epidural.bilsky_estimate", "Bilsky")):
        block = proc.stdout[proc.stdout.index(code):]
        assert cited in block[:600], code


def test_lumbar_case_with_the_cord_drawn_into_l3_raises_the_finding(tmp_path: Path) -> None:
    """The demo relabelled lumbar (VB_T09/T10/T11 -> VB_L2/L3/L4): its cord ROI runs
    through every vertebra, so it reaches L4, below L2: drawn through the cauda."""
    import shutil

    import pydicom

    case = tmp_path / "lumbar"
    shutil.copytree(DEMO, case)
    ds = pydicom.dcmread(case / "RS.dcm")
    for r in ds.StructureSetROISequence:
        r.ROIName = {"VB_T09": "VB_L2", "VB_T10": "VB_L3", "VB_T11": "VB_L4"}.get(r.ROIName,
                                                                                r.ROIName)
    ds.save_as(case / "RS.dcm")
    proc = _cli("check", str(case), "--json", "-")
    data = json.loads(proc.stdout)
    jsonschema.validate(data, SCHEMA)
    r = data["cases"][0]
    assert r["conus"]["conus_level"] == "L4"
    f = [c for c in r["checks"] if c["code"] == "conus.cord_in_cauda"]
    assert [c["status"] for c in f] == ["warn"] and "through the cauda equina" in f[0]["message"]
    # the thoracic original: the cord ends at T11 (its lowest vertebra ROI), no finding
    proc = _cli("check", str(DEMO), "--json", "-")
    data = json.loads(proc.stdout)
    r = data["cases"][0]
    assert [c["status"] for c in r["checks"] if c["code"] == "conus.cord_in_cauda"] == ["pass"]
