"""Prescription sanity on the real RayStation brain SRS plan (three isocentres, no
TargetPrescriptionDose): beam doses are summed per dose specification point, and a
prescription above the plan's maximum dose is one finding, not eight coverage warnings.

Ground truth: the plan's BeamDose values (read with pydicom below, not with contourqa's
reader), the dose grid's maximum 61.97 Gy, 5 fractions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
from datapaths import shared

from contourqa.cli import main
from contourqa.io.rtplan import PrescriptionSource, read_plan


def _plan_path() -> Path:
    return next(shared("pps_brain_srs_raystation").rglob("RP*.dcm"))


def _by_point() -> dict[tuple[float, ...], float]:
    ds = pydicom.dcmread(_plan_path())
    sums: dict[tuple[float, ...], float] = {}
    for b in ds.FractionGroupSequence[0].ReferencedBeamSequence:
        if b.get("BeamDose") is not None:
            key = tuple(float(v) for v in b.BeamDoseSpecificationPoint)
            sums[key] = sums.get(key, 0.0) + float(b.BeamDose)
    return sums


def test_beam_doses_are_summed_per_specification_point() -> None:
    per_point = _by_point()
    assert len(per_point) == 3  # three isocentres, three targets
    plan = read_plan(_plan_path())
    assert plan.prescription_source is PrescriptionSource.BEAM_DOSE_SUM
    # the busiest point: 2.406065 + 1.466934 + 0.2132834 + 0.4888255 + 0.8293225 Gy/fx
    assert plan.prescription_gy == pytest.approx(5 * 5.4044304, abs=1e-5)
    assert plan.prescription_gy == pytest.approx(5 * max(per_point.values()))
    assert plan.prescription_gy < 5 * sum(per_point.values())  # not the 70.03 Gy of all beams
    (fallback,) = [p for p in plan.problems if p.code == "input.prescription_fallback"]
    assert "3 dose specification points" in fallback.message


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict]:
    out = tmp_path / "r.json"
    main(["check", str(shared("pps_brain_srs_raystation")), "--json", str(out), *extra])
    capsys.readouterr()
    (case,) = json.loads(out.read_text())["cases"]
    return case["checks"]


def test_prescription_above_the_plan_maximum_is_one_finding(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checks = _run(tmp_path, capsys, "--prescription", "70.03")
    (rx,) = [c for c in checks if c["code"] == "prescription.consistency"]
    assert rx["status"] == "fail" and rx["limit"] == pytest.approx(61.97, abs=0.01)
    assert "exceeds the plan's maximum dose 61.97 Gy" in rx["message"]
    cov = [c for c in checks if c["code"] == "dose.ptv_coverage"]
    assert len(cov) == 1 and cov[0]["status"] == "not_evaluated"  # stated once
    assert "PTV_1" in cov[0]["message"] and "PTV 1 AND 2" in cov[0]["message"]


def test_plan_prescription_is_consistent(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    checks = _run(tmp_path, capsys)
    (rx,) = [c for c in checks if c["code"] == "prescription.consistency"]
    assert rx["status"] == "pass" and "61.97 Gy" in rx["message"]
    assert not [c for c in checks if c["code"] == "dose.ptv_coverage" and c["value"] == 0]
