"""Lytic GTV by CT density, fed into the VCF risk flag (issue 6 item 7).

Truth comes from the phantom's construction: cancellous bone is 250 HU, cortex 700 HU
in a 1.5 mm shell, and a ``lytic`` recipe makes the GTV's bone tumour (45 HU), so the
medians compared are exactly truth["hu"]["tumour"] / ["cancellous"] once the cortex is
left out.  Thresholds: vcf.toml [gtv_density] (margin max(50 HU, 0.3 x bone median)).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from contourqa.anatomy.density import (
    BoneDensity,
    DensityClass,
    DensityThresholds,
    classify_density,
    gtv_bone_density,
    lytic_factor,
)
from contourqa.check import CheckOptions, check
from contourqa.dose_checks import DoseCheckOptions, PatientFactors
from contourqa.findings import Finding, Status
from contourqa.geometry import VolumeGeometry
from contourqa.report import JsonFormatter, validate_report
from contourqa.report.record import CaseReport
from test_data.phantom import PhantomRecipe, generate_case

# One vertebra, small matrix: about 1 s per case.
_MINI = PhantomRecipe(name="density", levels=("T10",), ct_matrix=150)
_LYTIC = _MINI.replace(name="density_lytic", lytic=True)


def _run(case_dir: Path, patient: PatientFactors | None = None) -> CaseReport:
    opts = CheckOptions(dose_checks=DoseCheckOptions(patient=patient or PatientFactors()))
    (report,) = check(case_dir, options=opts).reports
    return report


def _vcf(report: CaseReport) -> Finding:
    (f,) = [f for f in report.checks if f.code == "vcf.risk"]
    return f


def _reasons(f: Finding) -> str:
    """The message's list of factors present (before "Absent:" / "Not known:")."""
    return f.message.split(" Absent:")[0].split(" Not known:")[0]


@pytest.fixture(scope="module")
def lytic_case(tmp_path_factory: pytest.TempPathFactory):
    return generate_case(_LYTIC, tmp_path_factory.mktemp("lytic"))


@pytest.fixture(scope="module")
def plain_case(tmp_path_factory: pytest.TempPathFactory):
    return generate_case(_MINI, tmp_path_factory.mktemp("plain"))


def test_lytic_phantom_is_flagged_lytic_from_ct_density(lytic_case) -> None:
    hu = lytic_case.truth["hu"]
    report = _run(lytic_case.dicom_dir)
    (t10,) = report.sectors
    assert t10.density is not None and t10.density.category is DensityClass.LYTIC
    assert t10.density.gtv_median_hu == hu["tumour"]
    assert t10.density.bone_median_hu == hu["cancellous"]
    f = _vcf(report)
    assert f.status is Status.WARN
    # The factor names its source: measured, with the values measured.
    assert (f"lytic lesion (from CT density, T10: GTV median {hu['tumour']} HU vs bone "
            f"{hu['cancellous']} HU)") in _reasons(f)
    assert "not published" in f.source  # the density thresholds are cited, status D
    validate_report(json.loads(JsonFormatter().render([report])))


def test_default_phantom_is_not_flagged_lytic(plain_case) -> None:
    hu = plain_case.truth["hu"]
    report = _run(plain_case.dicom_dir)
    (t10,) = report.sectors
    # GTV marrow and the other marrow are both cancellous bone: isodense -> mixed.
    assert t10.density is not None and t10.density.category is DensityClass.MIXED
    assert t10.density.gtv_median_hu == t10.density.bone_median_hu == hu["cancellous"]
    f = _vcf(report)
    assert "lytic" not in _reasons(f)
    # Left unknown (an isodense GTV may still hide lytic parts), with the measurement shown.
    assert "lytic lesion (CT density neither lytic nor blastic" in f.message.split("Not known:")[1]


def test_user_statement_wins_over_the_measurement(lytic_case) -> None:
    f = _vcf(_run(lytic_case.dicom_dir, PatientFactors(lytic=False)))
    assert "lytic" not in _reasons(f)
    # ... and the disagreement stays visible.
    absent = f.message.split(" Absent:")[1].split(" Not known:")[0]
    assert "lytic lesion (stated; the images disagree: from CT density" in absent
    f = _vcf(_run(lytic_case.dicom_dir, PatientFactors(lytic=True, age_years=60)))
    assert "lytic lesion (stated)" in _reasons(f) and "age 60 years > 55 years (stated)" \
        in _reasons(f)


def test_classification_margins() -> None:
    t = DensityThresholds(cortex_exclusion_mm=2.0, reference_gap_mm=2.0, min_region_cc=0.1,
                          min_margin_hu=50.0, margin_fraction=0.3)
    # Bone 250 HU: margin max(50, 0.3 x 250) = 75 HU -> lytic below 175, blastic above 325.
    assert classify_density(174.0, 250.0, thresholds=t) is DensityClass.LYTIC
    assert classify_density(175.0, 250.0, thresholds=t) is DensityClass.MIXED
    assert classify_density(325.0, 250.0, thresholds=t) is DensityClass.MIXED
    assert classify_density(326.0, 250.0, thresholds=t) is DensityClass.BLASTIC
    # Osteoporotic bone 100 HU: the 50 HU floor applies -> lytic below 50.
    assert classify_density(45.0, 100.0, thresholds=t) is DensityClass.LYTIC
    assert classify_density(55.0, 100.0, thresholds=t) is DensityClass.MIXED
    builtin = DensityThresholds.builtin()
    assert builtin.status == "D" and "not published" in builtin.source


def _block(gtv_hu: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, VolumeGeometry]:
    """A 24 mm bone cube (1 mm voxels, 250 HU marrow, 700 HU 1 mm shell) in soft tissue,
    with an 8 mm cubic GTV at its centre."""
    geom = VolumeGeometry(shape=(30, 30, 30), origin_mm=np.zeros(3), spacing_mm=np.ones(3))
    hu = np.full(geom.shape, 40.0)
    bone = np.zeros(geom.shape, bool)
    bone[3:27, 3:27, 3:27] = True
    hu[bone] = 700.0
    hu[4:26, 4:26, 4:26] = 250.0
    gtv = np.zeros(geom.shape, bool)
    gtv[11:19, 11:19, 11:19] = True
    hu[gtv] = gtv_hu
    return hu, bone, gtv, geom


@pytest.mark.parametrize("gtv_hu, expected", [(45.0, DensityClass.LYTIC),
                                              (900.0, DensityClass.BLASTIC),
                                              (260.0, DensityClass.MIXED)])
def test_density_of_a_hand_made_block(gtv_hu: float, expected: DensityClass) -> None:
    hu, bone, gtv, geom = _block(gtv_hu)
    d = gtv_bone_density(hu, bone, gtv, geom, thresholds=DensityThresholds.builtin())
    assert d.category is expected
    assert d.gtv_median_hu == gtv_hu and d.bone_median_hu == 250.0  # cortex left out
    assert d.gtv_cc == pytest.approx(0.512)  # the whole 8 mm GTV is deeper than 2 mm


def test_unknown_when_too_little_marrow() -> None:
    hu, bone, _, geom = _block(45.0)
    gtv = np.zeros(geom.shape, bool)
    gtv[3:5, 3:5, 3:5] = True  # a corner of the cortex only
    d = gtv_bone_density(hu, bone, gtv, geom, thresholds=DensityThresholds.builtin())
    assert d.category is DensityClass.UNKNOWN and d.gtv_median_hu is None
    assert "too little marrow" in (d.reason or "")


def test_lytic_factor_over_several_vertebrae() -> None:
    lyt = BoneDensity(DensityClass.LYTIC, 40.0, 250.0)
    bla = BoneDensity(DensityClass.BLASTIC, 900.0, 250.0)
    mix = BoneDensity(DensityClass.MIXED, 240.0, 250.0)
    unk = BoneDensity.unknown("no CT image")
    assert lytic_factor([("T9", mix), ("T10", lyt)])[0] is True
    assert "T10: GTV median 40 HU vs bone 250 HU" in (lytic_factor([("T10", lyt)])[1] or "")
    assert lytic_factor([("T9", bla), ("T10", unk)])[0] is False
    assert lytic_factor([("T9", bla), ("T10", mix)])[0] is None
    assert lytic_factor([("T10", unk)]) == (None, None)
