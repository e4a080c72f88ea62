"""Which dose a case uses: plan dose, summed beam doses, fraction doses scaled."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from contourqa.case import load_case
from contourqa.io import read_dose
from contourqa.io.discovery import discover

DEMO = Path(__file__).resolve().parents[1] / "test_data" / "demo_case" / "dicom"


@pytest.fixture()
def case_dir(tmp_path):
    for f in DEMO.iterdir():
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def _write_scaled_dose(src: Path, dst: Path, *, factor: float, summation: str,
                       beam: int | None = None) -> None:
    ds = pydicom.dcmread(src)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.DoseSummationType = summation
    ds.DoseGridScaling = float(ds.DoseGridScaling) * factor
    if beam is not None:  # ReferencedRTPlanSequence > fraction group 1 > this beam
        ref, group = pydicom.Dataset(), pydicom.Dataset()
        ref.ReferencedBeamNumber = beam
        group.ReferencedFractionGroupNumber = 1
        group.ReferencedBeamSequence = [ref]
        ds.ReferencedRTPlanSequence[0].ReferencedFractionGroupSequence = [group]
    ds.save_as(dst, enforce_file_format=True)


def test_beam_doses_are_summed(case_dir):
    # One dose per beam of the plan's fraction group (unequal shares summing to 1).
    reference = read_dose(case_dir / "RD.dcm")
    plan = pydicom.dcmread(case_dir / "RP.dcm")
    beams = [int(b.ReferencedBeamNumber)
             for b in plan.FractionGroupSequence[0].ReferencedBeamSequence]
    weights = np.arange(1, len(beams) + 1) / np.arange(1, len(beams) + 1).sum()
    for beam, factor in zip(beams, weights):
        _write_scaled_dose(case_dir / "RD.dcm", case_dir / f"RD_beam{beam}.dcm",
                           factor=float(factor), summation="BEAM", beam=beam)
    (case_dir / "RD.dcm").unlink()
    (files,) = discover(case_dir)[1]
    case = load_case(files)
    np.testing.assert_allclose(case.dose.dose_gy, reference.dose_gy, atol=1e-9)
    assert "input.summed_doses" in {p.code for p in case.problems}


def test_beam_doses_naming_no_beam_are_not_summed(case_dir):
    # Two BEAM doses that do not say which beams they are: nothing shows that they
    # make up the plan's seven beams, so no dose (and no dose check) rather than a guess.
    for n, factor in enumerate((0.25, 0.75)):
        _write_scaled_dose(case_dir / "RD.dcm", case_dir / f"RD_beam{n}.dcm", factor=factor,
                           summation="BEAM")
    (case_dir / "RD.dcm").unlink()
    (files,) = discover(case_dir)[1]
    case = load_case(files)
    assert case.dose is None
    (f,) = [p for p in case.problems if p.code == "input.incomplete_beam_doses"]
    assert "name no beam" in f.message and "RD_beam0.dcm" in f.message


def test_fraction_dose_is_scaled_by_the_number_of_fractions(case_dir):
    reference = read_dose(case_dir / "RD.dcm")
    _write_scaled_dose(case_dir / "RD.dcm", case_dir / "RD_fx.dcm", factor=0.5,
                       summation="FRACTION")
    (case_dir / "RD.dcm").unlink()
    (files,) = discover(case_dir)[1]
    case = load_case(files)
    assert case.n_fractions == 2
    np.testing.assert_allclose(case.dose.dose_gy, reference.dose_gy, atol=1e-9)
    (f,) = [p for p in case.problems if p.code == "input.fraction_dose_scaled"]
    assert "2 fractions" in f.message


def test_plan_dose_wins_over_beam_doses(case_dir):
    _write_scaled_dose(case_dir / "RD.dcm", case_dir / "RD_beam.dcm", factor=0.3, summation="BEAM")
    (files,) = discover(case_dir)[1]
    case = load_case(files)
    assert case.dose.paths[0].name == "RD.dcm"
    assert "input.extra_doses" in {p.code for p in case.problems}
