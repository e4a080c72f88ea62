"""`contourqa check`: the JSON contract, exit codes, and never "pass" when unsure."""

from __future__ import annotations

import json
import shutil

import pytest

from contourqa.check import check
from contourqa.cli import main
from contourqa.report import validate_report
from datapaths import pydicom_file, shared


def run_check(path, tmp_path, capsys, *extra):
    out = tmp_path / "report.json"
    code = main(["check", str(path), "--json", str(out), "--no-colour", *extra])
    captured = capsys.readouterr()
    doc = json.loads(out.read_text())
    validate_report(doc)  # one document, whatever the number of cases
    data = doc["cases"]
    return code, (data[0] if len(data) == 1 else data), captured


def test_real_plan_report_follows_the_contract(tmp_path, capsys):
    code, r, cap = run_check(shared("dicompyler_core_example"), tmp_path, capsys)
    # A 3 mm planning CT fails the spine SBRT imaging rule (< 2 mm): exit 1.
    assert code == 1 and r["status"] == "fail"
    (ct,) = [f for f in r["checks"] if f["code"] == "imaging.ct_slice_spacing"]
    assert ct["status"] == "fail" and ct["value"] == pytest.approx(3.0) and ct["limit"] == 2.0
    c = r["case"]
    assert (c["patient_id"], c["plan_label"], c["n_fractions"], c["prescription_gy"]) == (
        "123456", "B1", 7, 14.0)
    assert any(f.endswith("rtdose.dcm") for f in c["files"])
    roles = {s["name"]: s["role"] for s in r["structures"]}
    assert roles["BODY"] == "body" and roles["Heart"] == "heart"
    # DVH section: every non-empty ROI, default metrics, Gy and cc.
    assert set(r["dvh"]) == {s["name"] for s in r["structures"] if s["name"] != "Areola"}
    heart = r["dvh"]["Heart"]
    assert heart["Dmin"] <= heart["D95%"] <= heart["D50%"] <= heart["D2%"] <= heart["Dmax"]
    assert heart["Dmax"] <= c["dose_grid"]["max_gy"] + 1e-6
    vol = {s["name"]: s["volume_cc"] for s in r["structures"]}
    assert vol["Heart"] == pytest.approx(heart["volume"])
    assert r["dvh_conventions"]["end_caps"] and r["dvh_conventions"]["dose_interpolation"]
    codes = {f["code"] for f in r["checks"]}
    assert {"input.empty_roi", "input.missing_referenced_images", "contour.empty"} <= codes
    assert "FAIL" in cap.out and "Traceback" not in cap.err


def test_several_cases_in_one_document(tmp_path, capsys):
    code, data, _ = run_check(shared("pps_plan_competition_misc"), tmp_path, capsys)
    assert isinstance(data, list) and len(data) == 3
    for r in data:
        assert r["status"] != "pass"
        assert r["dvh"] == {}  # no dose in this folder
    lung = next(r for r in data if r["case"]["plan_label"] == "Plan_04 98.2?")
    assert lung["case"]["n_fractions"] == 5 and lung["case"]["prescription_gy"] == 50.0
    assert "dvh.no_dose" in {f["code"] for f in lung["checks"]}


def test_broken_file_does_not_stop_other_cases(tmp_path, capsys):
    for f in shared("dicompyler_core_example").iterdir():
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "sub").mkdir()
    shutil.copy(pydicom_file("rtplan_truncated.dcm"), tmp_path / "sub" / "bad.dcm")
    code, data, _ = run_check(tmp_path, tmp_path / "sub", capsys)
    assert len(data) == 2
    bad = next(r for r in data if any("bad.dcm" in f for f in r["case"]["files"]))
    (f,) = [f for f in bad["checks"] if f["code"] == "input.unreadable_plan"]
    assert "truncated" in f["message"] and f["status"] == "not_evaluated"
    good = next(r for r in data if r is not bad)
    assert good["dvh"]["Heart"]["Dmax"] > 0


def test_no_plan_in_folder_exits_2(capsys):
    assert main(["check", str(shared("totalsegmentator_examples"))]) == 2
    err = capsys.readouterr().err
    assert "totalsegmentator_examples" in err and "no RT Plan" in err


def test_python_api_run():
    run = check(shared("rtutils_mock"))
    assert len(run.reports) == 4
    # 5 mm CT: the imaging rule fails on every case; the rt-utils contours also lie
    # partly outside this 2-slice CT (15-35 % of each ROI), which the integrity rule fails.
    for r in run.reports:
        failed = {f.code for f in r.checks if f.status.value == "fail"}
        assert "imaging.ct_slice_spacing" in failed
        off = [f for f in r.checks if f.code == "contour.off_image" and f.status.value == "fail"]
        assert all(0.0 < f.value < 100.0 for f in off)
        assert failed <= {"imaging.ct_slice_spacing", "contour.off_image",
                          "contour.self_intersection"}
        assert r.status == "fail"
