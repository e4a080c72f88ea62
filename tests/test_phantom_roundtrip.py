"""The phantom read back through contourqa: exact geometry, dose and report.

Truth comes from the generator's construction (truth.json), not from contourqa.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from contourqa.check import check
from contourqa.dvh import compute_dvh
from contourqa.io import read_dose, read_structure_set
from contourqa.report import validate_case
from test_data.phantom import PRESETS, generate_case

DEMO = Path(__file__).resolve().parents[1] / "test_data" / "demo_case"


@pytest.fixture(scope="module")
def demo():
    truth = json.loads((DEMO / "truth" / "truth.json").read_text())
    return truth, read_structure_set(DEMO / "dicom" / truth["files"]["rtstruct"]), \
        read_dose(DEMO / "dicom" / truth["files"]["rtdose"])


def test_roi_volumes_within_half_a_percent_of_truth(demo):
    truth, ss, dose = demo
    for name, t in truth["rois"].items():
        dvh = compute_dvh(ss.roi(name), dose)
        total = dvh.volume_cc  # includes any part outside the dose grid
        # Polygon truth: even-odd area x slice thickness, the same slab model.
        assert total == pytest.approx(t["volume_cc"], rel=0.005), name
        if t.get("volume_cc_analytic"):
            # Analytic truth (ellipse areas x extent): the inscribed polygons are smaller.
            assert total == pytest.approx(t["volume_cc_analytic"], rel=0.005), name


def test_cord_maximum_is_the_designed_value(demo):
    truth, ss, dose = demo
    cord = compute_dvh(ss.roi(truth["roi_names"]["spinal_cord"]), dose)
    assert cord.metric("Dmax") == pytest.approx(truth["dose"]["cord_dmax_gy"], abs=0.01)
    assert cord.metric("D0.03cc") <= truth["dose"]["cord_dmax_gy"] + 1e-6


def test_demo_check_report(demo):
    truth, _, _ = demo
    run = check(DEMO / "dicom")
    (report,) = run.reports
    obj = report.to_json()
    validate_case(obj)
    assert obj["case"]["n_fractions"] == truth["n_fractions"]
    assert obj["case"]["prescription_gy"] == pytest.approx(truth["prescription_gy"])
    assert obj["case"]["plan_label"] == truth["plan_label"]
    roles = {s["name"]: s["role"] for s in obj["structures"]}
    names = truth["roi_names"]
    assert roles[names["spinal_cord"]] == "spinal_cord"
    assert roles[names["cord_prv"]] == "cord_prv"
    assert roles[names["gtv"]] == "gtv" and roles[names["ptv"]] == "ptv"
    assert {roles[v] for v in names["vertebrae"].values()} == {"vertebra"}
    levels = {s["name"]: s["level"] for s in obj["structures"]}
    assert {levels[v] for v in names["vertebrae"].values()} == set(names["vertebrae"])
    # No input problem on a consistent case; the report is honest about its scope.
    assert [c["code"] for c in obj["checks"] if c["code"].startswith("input.")] == []
    assert obj["status"] != "pass"


@pytest.mark.parametrize("position", ["FFS", "HFP"])
def test_patient_position_does_not_change_geometry(tmp_path, position, demo):
    truth, _, _ = demo
    recipe = dataclasses.replace(PRESETS["demo"], patient_position=position)
    case = generate_case(recipe, tmp_path)
    run = check(case.dicom_dir)
    (report,) = run.reports
    vols = {s.name: s.volume_cc for s in report.structures}
    for name, t in truth["rois"].items():
        assert vols[name] == pytest.approx(t["volume_cc"], rel=0.005), (position, name)
    assert report.dvh["SpinalCord"]["Dmax"] == pytest.approx(truth["dose"]["cord_dmax_gy"], abs=0.01)


def test_vcf_flag_uses_the_sector_analysis(demo):
    truth, _, _ = demo
    (report,) = check(DEMO / "dicom").reports
    (vcf,) = [f for f in report.checks if f.code == "vcf.risk"]
    # The GTV's share of the T10 body comes from the images, not from the user.
    (t10,) = [v for v in report.sectors if v.level == truth["treated_level"]]
    assert 0 < t10.gtv_sector_pct[0] < 40  # sector 1, the body
    assert "vertebral body involved" not in vcf.message.split("Not known:")[-1]
    assert vcf.value == pytest.approx(truth["prescription_gy"] / truth["n_fractions"])


def test_volumes_without_a_dose(tmp_path, demo):
    # A contouring review without RT Dose still reports every ROI's volume, with the
    # same slab model as the DVH.
    import shutil

    truth, _, _ = demo
    for f in (DEMO / "dicom").iterdir():
        if f.name != truth["files"]["rtdose"]:
            shutil.copy(f, tmp_path / f.name)
    (report,) = check(tmp_path).reports
    assert report.dvh == {}
    vols = {s.name: s.volume_cc for s in report.structures}
    for name, t in truth["rois"].items():
        assert vols[name] == pytest.approx(t["volume_cc"], rel=0.005), name
