"""The report section (what ``contourqa dvh`` prints), bands and reconciliation."""

from __future__ import annotations

import json
import math

import pytest
from _dvh_phantoms import SHARED_DATA, box_dose, circle, make_roi

from contourqa.dvh import DVHOptions, compute_dvh, dvh_report, metric_band
from contourqa.io.rtdose import read_dose
from contourqa.io.rtstruct import read_structure_set

EXAMPLE = SHARED_DATA / "dicompyler_core_example"


def test_band_contains_nominal_and_reflects_end_caps() -> None:
    roi = make_roi([(float(z), [circle(0, 0, 3.0)]) for z in (0.0, 2.0, 4.0)])
    dose = box_dose(lambda x, y, z: 10 + 0.5 * z, spacing=2.0, half_extent=16.0)
    nominal = compute_dvh(roi, dose)
    bands = metric_band(roi, dose, ["Dmin", "D95%", "volume"], nominal=nominal)
    for m, (lo, hi) in bands.items():
        assert lo <= nominal.metric(m) <= hi
    lo, hi = bands["Dmin"]
    assert lo == pytest.approx(10 + 0.5 * -1.0) and hi == pytest.approx(10.0)


@pytest.mark.skipif(not EXAMPLE.is_dir(), reason="shared data not present")
def test_dvh_report_on_an_eclipse_plan() -> None:
    ss = read_structure_set(EXAMPLE / "rtss.dcm")
    dose = read_dose(EXAMPLE / "rtdose.dcm")
    rep = dvh_report(ss, dose, roi_names=["Heart", "Scar"], metrics=["volume", "D95%", "D5cc", "Dmax"],
                     uncertainty=True, options=DVHOptions(samples_per_plane=1000))
    out = json.loads(json.dumps(rep.to_json()))
    assert set(out["rois"]) == {"Heart", "Scar"}
    assert out["rois"]["Scar"]["D5cc"] is None  # 0.5 cc structure: not a 0.0 sentinel
    assert "D5cc" in out["not_evaluated"]["Scar"]
    assert out["rois"]["Heart"]["D5cc"] > 0
    assert out["conventions"]["end_caps"] == "half_slice"
    lo, hi = out["uncertainty"]["Heart"]["D95%"]
    assert lo <= out["rois"]["Heart"]["D95%"] <= hi
    recs = {r["roi"]: r for r in out["reconciliation"]}
    assert "Heart" in recs and recs["Heart"]["likely_causes"]
    heart_volume = [c for c in recs["Heart"]["comparisons"] if c["metric"] == "volume"][0]
    assert math.isclose(heart_volume["contourqa"], heart_volume["planning_system"], rel_tol=0.03)


@pytest.mark.skipif(not EXAMPLE.is_dir(), reason="shared data not present")
def test_unknown_roi_name_lists_the_rois() -> None:
    ss = read_structure_set(EXAMPLE / "rtss.dcm")
    dose = read_dose(EXAMPLE / "rtdose.dcm")
    with pytest.raises(KeyError, match="ROIs are"):
        dvh_report(ss, dose, roi_names=["Spinal Cord"])
