"""The pydicom-free reading path (contourqa.io.rawdicom) gives what pydicom's path gives.

Every RT Structure Set and RT Dose of ../shared/data, the demo case and pydicom's own
RT test files are read both ways: through ``read_structure_set(path)`` /
``read_dose(path)`` (raw walk first, pydicom where it stops) and through the pydicom
dataset (``dataset=``).  Everything read must be identical, findings included.  Files
the walker must handle itself are listed, so that the comparison cannot pass by
always falling back; files it must hand over (big endian, RLE, non-ASCII text,
malformed values) are built or taken from pydicom's test files.
"""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from datapaths import REPO, SHARED_DATA, pydicom_file

from contourqa.errors import DicomReadError, GeometryError
from contourqa.io import read_dose, read_structure_set
from contourqa.io._read import read_dataset
from contourqa.io.rawdicom import KEYWORDS, RawDataset, RawFallback, read_raw
from contourqa.io.rtdose import DoseGrid, _read_dose
from contourqa.io.rtstruct import StructureSet, _read

DEMO = REPO / "test_data" / "demo_case" / "dicom"


def _rt_files() -> list[tuple[str, Path]]:
    found = [("RTSTRUCT", DEMO / "RS.dcm"), ("RTDOSE", DEMO / "RD.dcm")]
    for root, _, files in os.walk(SHARED_DATA):
        for name in sorted(files):
            path = Path(root) / name
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"],
                                     force=True)
            except Exception:  # not DICOM
                continue
            if ds.get("Modality") in ("RTSTRUCT", "RTDOSE"):
                found.append((str(ds.Modality), path))
    return found


RT_FILES = _rt_files()


def _findings(problems: tuple) -> list[dict]:  # type: ignore[type-arg]
    return [p.to_json() for p in problems]


def assert_same_structure_set(a: StructureSet, b: StructureSet) -> None:
    for attr in ("path", "sop_instance_uid", "patient_id", "study_instance_uid", "label",
                 "frame_of_reference_uid", "referenced_series_uids", "referenced_image_uids"):
        assert getattr(a, attr) == getattr(b, attr), attr
    assert _findings(a.problems) == _findings(b.problems)
    assert len(a.rois) == len(b.rois)
    for ra, rb in zip(a.rois, b.rois):
        assert (ra.number, ra.name, ra.interpreted_type, ra.color, ra.frame_of_reference_uid,
                ra.generation_algorithm) == (rb.number, rb.name, rb.interpreted_type, rb.color,
                                             rb.frame_of_reference_uid, rb.generation_algorithm)
        assert len(ra.contours) == len(rb.contours), ra.name
        for ca, cb in zip(ra.contours, rb.contours):
            assert ca.geometric_type == cb.geometric_type
            assert ca.referenced_sop_uids == cb.referenced_sop_uids
            np.testing.assert_array_equal(ca.points_mm, cb.points_mm)


def assert_same_dose(a: DoseGrid, b: DoseGrid) -> None:
    for attr in ("paths", "sop_instance_uids", "frame_of_reference_uid", "summation_type",
                 "dose_type", "referenced_plan_uids", "referenced_beam_numbers"):
        assert getattr(a, attr) == getattr(b, attr), attr
    assert a.geometry.same_grid(b.geometry)
    np.testing.assert_array_equal(a.geometry.origin_mm, b.geometry.origin_mm)
    np.testing.assert_array_equal(a.geometry.spacing_mm, b.geometry.spacing_mm)
    np.testing.assert_array_equal(a.dose_gy, b.dose_gy)
    assert a.dose_gy.dtype == b.dose_gy.dtype
    assert _findings(a.problems) == _findings(b.problems)
    assert len(a.planning_system_dvhs) == len(b.planning_system_dvhs)
    for da, db in zip(a.planning_system_dvhs, b.planning_system_dvhs):
        assert (da.referenced_roi_number, da.dvh_type, da.volume_units, da.minimum_gy,
                da.maximum_gy, da.mean_gy) == (db.referenced_roi_number, db.dvh_type,
                                               db.volume_units, db.minimum_gy, db.maximum_gy,
                                               db.mean_gy)
        np.testing.assert_array_equal(da.dose_bins_gy, db.dose_bins_gy)
        np.testing.assert_array_equal(da.volumes, db.volumes)


def test_the_shared_data_holds_the_rt_files() -> None:
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data not present: {SHARED_DATA}")
    kinds = [k for k, _ in RT_FILES]
    assert kinds.count("RTSTRUCT") >= 40 and kinds.count("RTDOSE") >= 8


@pytest.mark.parametrize(("modality", "path"), RT_FILES,
                         ids=[str(p.relative_to(p.parents[1])) for _, p in RT_FILES])
def test_raw_path_reads_what_pydicom_reads(modality: str, path: Path) -> None:
    if modality == "RTSTRUCT":
        assert_same_structure_set(read_structure_set(path),
                                  read_structure_set(path, dataset=read_dataset(path, convert_all=False)))
    else:
        assert_same_dose(read_dose(path), read_dose(path, dataset=read_dataset(path)))


BRAIN = SHARED_DATA / "pps_brain_srs_raystation" / "BrainSRSRaystationIMRT"


def _files(path: Path, pattern: str) -> list[Path]:
    """``path`` itself, or its files matching ``pattern`` if a folder; skip if absent."""
    if not path.exists():
        pytest.skip(f"shared data not present: {path}")
    return sorted(path.glob(pattern)) if path.is_dir() else [path]


@pytest.mark.parametrize("path", [
    DEMO / "RS.dcm", DEMO / "RD.dcm", BRAIN,
    SHARED_DATA / "nelms_analytical_dvh" / "STRUCTURES" / "Sphere_02_0.dcm",
    SHARED_DATA / "nelms_analytical_dvh" / "DOSE GRIDS" / "Linear_AntPost_1mm_Aligned.dcm",
    SHARED_DATA / "dicompyler_core_example" / "rtss.dcm",
    SHARED_DATA / "dicompyler_core_example" / "rtdose.dcm",
], ids=lambda p: p.name)
def test_conformant_files_are_walked_without_pydicom(path: Path) -> None:
    """These files never reach the fallback: the comparison above is not vacuous."""
    for p in _files(path, "R[SD]*.dcm"):
        ds = read_raw(p)
        if ds.get("Modality") == "RTSTRUCT":
            assert len(_read(p, ds).rois) > 0
        else:
            assert _read_dose(p, ds).dose_gy.size > 0


def test_raw_values_match_pydicom_values_for_every_keyword() -> None:
    checked = 0
    for path in (DEMO / "RS.dcm", DEMO / "RD.dcm"):
        raw, ref = read_raw(path), pydicom.dcmread(path)
        for keyword in KEYWORDS:
            if keyword not in ref or keyword == "PixelData":
                assert (keyword in raw) == (keyword in ref)
                continue
            mine, theirs = raw.get(keyword), ref.get(keyword)
            if isinstance(theirs, pydicom.Sequence):
                assert len(mine) == len(theirs)
            elif isinstance(theirs, (list, pydicom.multival.MultiValue)):
                assert list(mine) == list(theirs), keyword
            else:
                assert mine == theirs, keyword
            checked += 1
    assert checked >= 25
    np.testing.assert_array_equal(read_raw(DEMO / "RD.dcm").pixel_array,
                                  pydicom.dcmread(DEMO / "RD.dcm").pixel_array)


@pytest.mark.parametrize("name", ["rtdose_expb.dcm", "rtdose_rle.dcm"])
def test_big_endian_and_compressed_doses_go_through_pydicom(name: str) -> None:
    path = pydicom_file(name)
    with pytest.raises(RawFallback):
        read_raw(path)
    assert_same_dose(read_dose(path, prescription_gy=10.0),
                     read_dose(path, prescription_gy=10.0, dataset=read_dataset(path)))


@pytest.mark.parametrize("name", ["rtdose_1frame.dcm", "rtdose_rle_1frame.dcm",
                                  "rtdose_expb_1frame.dcm"])
def test_inconsistent_files_give_pydicoms_error(name: str) -> None:
    """pydicom's one-frame doses keep the 15 offsets of the original: both paths refuse."""
    path = pydicom_file(name)
    with pytest.raises(GeometryError) as raw_error:
        read_dose(path, prescription_gy=10.0)
    with pytest.raises(GeometryError) as pydicom_error:
        read_dose(path, prescription_gy=10.0, dataset=read_dataset(path))
    assert str(raw_error.value) == str(pydicom_error.value)
    assert "15 entries for 1 frames" in str(raw_error.value)


def test_pydicoms_rt_test_files_read_alike() -> None:
    path = pydicom_file("rtdose.dcm")
    assert_same_dose(read_dose(path, prescription_gy=10.0),
                     read_dose(path, prescription_gy=10.0, dataset=read_dataset(path)))
    path = pydicom_file("rtstruct.dcm")
    assert_same_structure_set(read_structure_set(path),
                              read_structure_set(path, dataset=read_dataset(path, convert_all=False)))


def _rewrite(tmp_path: Path, source: Path, edit: object) -> Path:
    ds = pydicom.dcmread(source)
    out = tmp_path / source.name
    with warnings.catch_warnings():  # pydicom warns on the malformed values written here
        warnings.simplefilter("ignore")
        edit(ds)  # type: ignore[operator]
        ds.save_as(out, enforce_file_format=True)
    return out


def test_non_ascii_names_are_read_by_pydicom(tmp_path: Path) -> None:
    def edit(ds: pydicom.Dataset) -> None:
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.StructureSetROISequence[0].ROIName = "Rückenmark"

    path = _rewrite(tmp_path, DEMO / "RS.dcm", edit)
    with pytest.raises(RawFallback):
        _read(path, read_raw(path))
    ss = read_structure_set(path)
    assert ss.rois[0].name == "Rückenmark"
    assert_same_structure_set(ss, read_structure_set(path, dataset=read_dataset(path, convert_all=False)))


def _with_bad_contour(tmp_path: Path, *, last: bool = False) -> Path:
    """The demo RTSTRUCT with the first number of its first (or last) ContourData made
    non-numeric (explicit VR: tag, 'DS', 2-byte length, value)."""
    data = bytearray((DEMO / "RS.dcm").read_bytes())
    tag = b"\x06\x30\x50\x00DS"
    start = (data.rindex(tag) if last else data.index(tag)) + 8
    first = data.index(b"\\", start)
    data[start:first] = b"x" * (first - start)
    path = tmp_path / "RS.dcm"
    path.write_bytes(bytes(data))
    return path


def test_malformed_contour_data_gives_pydicoms_finding(tmp_path: Path) -> None:
    path = _with_bad_contour(tmp_path)
    ss = read_structure_set(path)
    assert "input.malformed_contour" in [p.code for p in ss.problems]
    assert_same_structure_set(ss, read_structure_set(path, dataset=read_dataset(path, convert_all=False)))


def test_truncated_files_are_refused_naming_the_file(tmp_path: Path) -> None:
    for name in ("RS.dcm", "RD.dcm"):
        data = (DEMO / name).read_bytes()
        path = tmp_path / name
        path.write_bytes(data[: len(data) - 1000])
        with pytest.raises(RawFallback):
            read_raw(path)
        reader = read_structure_set if name == "RS.dcm" else read_dose
        with pytest.raises(DicomReadError, match=name):
            reader(path)


def test_raw_dataset_refuses_keywords_outside_its_table() -> None:
    ds = read_raw(DEMO / "RS.dcm")
    with pytest.raises(RawFallback):
        ds.get("PatientName")
    with pytest.raises(AttributeError):
        ds.NoSuchKeyword  # noqa: B018
    assert isinstance(ds.get("StructureSetROISequence")[0], RawDataset)


def test_implicit_vr_files_are_walked(tmp_path: Path) -> None:
    ds = pydicom.dcmread(DEMO / "RS.dcm")
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    path = tmp_path / "RS_implicit.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert struct.unpack("<H", path.read_bytes()[132:134])[0] == 2  # meta group first
    raw = read_raw(path)
    assert raw.implicit_vr
    assert_same_structure_set(_read(path, raw), read_structure_set(path, dataset=read_dataset(path, convert_all=False)))


@pytest.mark.parametrize("path", [
    DEMO / "RS.dcm", BRAIN, SHARED_DATA / "dicompyler_core_example" / "rtss.dcm",
], ids=lambda p: p.name)
def test_forked_parsing_reads_the_same(path: Path) -> None:
    (path,) = _files(path, "RS*.dcm")
    assert_same_structure_set(read_structure_set(path, workers=2), read_structure_set(path))


def test_forked_parsing_of_a_malformed_file_gives_pydicoms_finding(tmp_path: Path) -> None:
    path = _with_bad_contour(tmp_path, last=True)  # the last ROI: taken by either worker
    ss = read_structure_set(path, workers=2)
    assert "input.malformed_contour" in [p.code for p in ss.problems]
    assert_same_structure_set(ss, read_structure_set(path, dataset=read_dataset(path, convert_all=False)))
