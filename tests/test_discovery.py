"""Case discovery: linking by UIDs across any folder layout, and every broken link."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest

from contourqa.case import load_case
from contourqa.errors import DicomReadError
from contourqa.io.discovery import discover, index_folder
from datapaths import pydicom_file, shared


def codes(case):
    return {p.code for p in case.problems}


def test_plan_structure_dose_image_chain():
    _, cases = discover(shared("dicompyler_core_example"))
    (case,) = cases
    assert case.plan.path.name == "rtplan.dcm"
    assert case.structure_set.path.name == "rtss.dcm"
    assert [d.path.name for d in case.doses] == ["rtdose.dcm"]
    assert [o.path.name for o in case.image_series] == ["ct.0.dcm"]
    # 97 of the 98 CT slices the contours reference are absent: said, with the file.
    (missing,) = [p for p in case.problems if p.code == "input.missing_referenced_images"]
    assert missing.files[0].name == "rtss.dcm"


def test_several_plans_and_a_lone_structure_set():
    _, cases = discover(shared("pps_plan_competition_misc"))
    by_label = {c.name.split(" / ")[1]: c for c in cases}
    assert len(cases) == 3
    lung = next(c for k, c in by_label.items() if "Plan_04" in k)
    assert lung.structure_set.path.name.startswith("RS.zzz")
    assert {"input.missing_dose", "input.missing_image_series"} <= codes(lung)
    breast_plan = next(c for k, c in by_label.items() if "Final Mod1" in k)
    # The breast plan references a structure set that is not in the folder.
    assert breast_plan.structure_set is None and "input.dangling_reference" in codes(breast_plan)
    lone = next(c for c in cases if c.plan is None)
    assert lone.structure_set.path.name == "RTSS.dcm" and "input.missing_plan" in codes(lone)


def test_broken_references_of_rt_utils_fixtures():
    _, cases = discover(shared("rtutils_mock"))
    by_file = {c.structure_set.path.name: c for c in cases}
    assert "input.frame_of_reference_mismatch" in codes(by_file["rt.dcm"])
    assert "input.missing_referenced_images" in codes(by_file["invalid_reference_rt.dcm"])
    assert "input.series_by_frame_of_reference" in codes(by_file["non_existent_reference_rt.dcm"])
    for case in cases:
        assert "input.missing_plan" in codes(case)


def test_scattered_folders_several_cases_and_junk(tmp_path):
    # Two real plans scattered over nested folders, with non-DICOM files, a DICOMDIR,
    # a truncated DICOM file and an image-only folder mixed in.
    a, b = tmp_path / "x" / "y", tmp_path / "z"
    a.mkdir(parents=True)
    b.mkdir()
    src = shared("dicompyler_core_example")
    for name, dst in (("rtplan.dcm", a), ("rtss.dcm", b), ("rtdose.dcm", tmp_path), ("ct.0.dcm", a)):
        shutil.copy(src / name, dst / name)
    for f in shared("pps_brain_srs_raystation", "BrainSRSRaystationIMRT").iterdir():
        shutil.copy(f, (b if f.name.startswith("RS") else a) / f.name)
    (tmp_path / "notes.txt").write_text("not DICOM")
    (a / "garbage.bin").write_bytes(b"\x00" * 300)
    (tmp_path / "DICOMDIR").write_bytes(b"\x00" * 200)
    shutil.copy(pydicom_file("rtplan_truncated.dcm"), b / "broken.dcm")
    index, cases = discover(tmp_path)
    good = [c for c in cases if c.plan.path.name != "broken.dcm"]
    assert sorted(c.plan.label for c in good) == ["B1", "imrt 4"]
    for c in good:
        assert c.structure_set is not None and len(c.doses) == 1
        assert c.doses[0].patient_id == c.plan.patient_id
    assert index.n_ignored_files >= 2
    # The truncated plan's header is readable, so it forms a case of its own; loading
    # it says what is wrong and with which file, and the other cases are untouched.
    (broken,) = [c for c in cases if c.plan.path.name == "broken.dcm"]
    loaded = load_case(broken)
    (bad,) = [p for p in loaded.problems if p.code == "input.unreadable_plan"]
    assert "broken.dcm" in bad.message and "truncated" in bad.message
    assert loaded.plan is None


def test_files_without_preamble_are_indexed():
    index = index_folder(shared("pymedphys_rtplan"))
    (obj,) = index.objects
    assert obj.modality == "RTPLAN"


def test_image_only_folder_forms_no_case():
    index, cases = discover(shared("totalsegmentator_examples"))
    assert cases == [] and {o.modality for o in index.objects} == {"CT"}
    # Empty series UIDs are not invented: the files group by folder.
    (key,) = index.series()
    assert key.startswith("no-series-uid:")


def test_missing_path_is_a_named_error(tmp_path):
    with pytest.raises(DicomReadError, match="no such file"):
        index_folder(tmp_path / "nope")


def test_nelms_doses_without_plan_are_not_guessed():
    _, cases = discover(shared("nelms_analytical_dvh"))
    struct_cases = [c for c in cases if c.structure_set is not None]
    n_files = len(list(shared("nelms_analytical_dvh", "STRUCTURES").glob("*.dcm")))
    assert len(struct_cases) == n_files == 35
    # Six doses share the structures' frame of reference and no plan links them: no
    # dose is picked for a structure set; each dose stands as its own case.
    assert all(not c.doses and "input.ambiguous_dose" in codes(c) for c in struct_cases)
    assert sum(1 for c in cases if c.structure_set is None) == 6


def test_mr_linked_by_registration_joins_the_case(tmp_path):
    from dicom_factory import registration, write_stack

    from contourqa.case import load_case

    demo = Path(__file__).resolve().parents[1] / "test_data" / "demo_case" / "dicom"
    for f in demo.iterdir():
        shutil.copy(f, tmp_path / f.name)
    ct_frame = pydicom.dcmread(tmp_path / "CT_001.dcm", stop_before_pixels=True).FrameOfReferenceUID
    mr_frame = "1.2.826.0.1.3680043.8.498.77"
    write_stack(tmp_path / "mr", [(0, 0, 3.0 * k) for k in range(4)], modality="MR",
                frame_uid=mr_frame, series_uid="1.2.826.0.1.3680043.8.498.78")
    # An MR in an unrelated frame, with no registration: not part of the case.
    write_stack(tmp_path / "mr2", [(0, 0, 3.0 * k) for k in range(3)], modality="MR",
                frame_uid="1.2.826.0.1.3680043.8.498.79", series_uid="1.2.826.0.1.3680043.8.498.80")
    registration(own_frame=ct_frame, moving_frame=mr_frame, shift_mm=(1.0, -2.0, 0.5)).save_as(
        tmp_path / "reg.dcm", enforce_file_format=True)
    _, cases = discover(tmp_path)
    (case,) = cases
    assert [r.path.name for r in case.registrations] == ["reg.dcm"]
    (mr,) = case.secondary_series
    assert len(mr) == 4 and mr[0].modality == "MR" and mr[0].frame_of_reference_uid == mr_frame
    loaded = load_case(case)
    (reg,) = loaded.registrations
    assert reg.linked_frames() == (mr_frame,)
    assert loaded.secondary_images[0].n_slices == 4
