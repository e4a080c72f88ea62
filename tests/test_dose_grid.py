"""dose.grid_resolution: coarse grids near the cord are flagged, fine ones pass."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from contourqa.check import CheckOptions, check
from contourqa.dose_checks import DoseCheckOptions
from contourqa.findings import Status
from test_data.phantom import PRESETS, generate_case

DEMO = Path(__file__).resolve().parents[1] / "test_data" / "demo_case" / "dicom"


def grid_finding(path, **dose_options):
    options = CheckOptions(compute_dvh=True, dvh_uncertainty=False,
                           dose_checks=DoseCheckOptions(**dose_options))
    (report,) = check(path, options=options).reports
    (f,) = [f for f in report.checks if f.code == "dose.grid_resolution"]
    return f


def test_two_mm_grid_with_cord_next_to_ptv_warns():
    # Demo: 2 mm dose grid; the PTV is carved 2 mm around the cord PRV (truth recipe).
    f = grid_finding(DEMO)
    assert f.status is Status.WARN and f.value == pytest.approx(2.0) and f.limit == 1.5
    assert "within 5 mm of the PTV" in f.message and "status D" in f.source


def test_run_option_overrides_the_default():
    f = grid_finding(DEMO, dose_grid_max_spacing_mm=2.5)
    assert f.status is Status.PASS and f.limit == 2.5


def test_fine_grid_passes(tmp_path):
    recipe = dataclasses.replace(PRESETS["demo"], dose_grid_spacing_mm=1.0)
    case = generate_case(recipe, tmp_path)
    f = grid_finding(case.dicom_dir)
    assert f.status is Status.PASS and f.value == pytest.approx(1.0)
