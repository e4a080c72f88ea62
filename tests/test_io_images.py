"""Image series reader: sorting, patient positions, HU, compression, refusals."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.uid import RLELossless

from contourqa.errors import GeometryError
from contourqa.findings import Status
from contourqa.io.images import read_image_series
from datapaths import pydicom_file, shared
from dicom_factory import write_stack

# ImageOrientationPatient of the usual patient positions (row direction, column direction).
ORIENTATIONS = {
    "HFS": (1, 0, 0, 0, 1, 0),
    "FFS": (-1, 0, 0, 0, 1, 0),
    "HFP": (-1, 0, 0, 0, -1, 0),
    "FFP": (1, 0, 0, 0, -1, 0),
    "HFDL": (0, -1, 0, 1, 0, 0),
    "HFDR": (0, 1, 0, -1, 0, 0),
}


@pytest.mark.parametrize("position", sorted(ORIENTATIONS))
def test_any_patient_position_sorted_along_normal(tmp_path, position):
    iop = np.array(ORIENTATIONS[position], dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    origin = np.array([-12.0, 7.5, 30.0])
    positions = [origin + normal * 2.5 * n for n in range(6)]
    paths = write_stack(tmp_path, positions, orientation=tuple(iop), patient_position=position,
                        pixel_spacing=(0.7, 0.9))
    s = read_image_series(paths)
    # Slice n of the written stack holds 10*n HU: sorted order recovers n.
    np.testing.assert_allclose(s.pixels[:, 1, 1], 10.0 * np.arange(6))
    assert s.pixels[0, 0, 0] == -1024.0
    assert s.slice_spacing_mm == pytest.approx(2.5)
    assert s.uniform_spacing and not s.problems
    assert s.patient_position == position
    # Voxel (k, j, i) sits at IPP_k + i * 0.9 * row_dir + j * 0.7 * col_dir.
    for k in (0, 3, 5):
        expected = positions[k] + 4 * 0.9 * iop[:3] + 2 * 0.7 * iop[3:]
        np.testing.assert_allclose(s.geometry.index_to_patient([k, 2, 4]), expected, atol=1e-9)


def test_gantry_tilt_is_refused(tmp_path):
    positions = [(0.0, 0.5 * n, 2.0 * n) for n in range(4)]  # y drifts with z
    with pytest.raises(GeometryError, match="gantry tilt"):
        read_image_series(write_stack(tmp_path, positions))


def test_non_parallel_slices_are_refused(tmp_path):
    paths = write_stack(tmp_path / "a", [(0, 0, 0), (0, 0, 2)])
    paths += write_stack(tmp_path / "b", [(0, 0, 4)], orientation=(1, 0, 0, 0, 0.9950042, 0.0998334))
    with pytest.raises(GeometryError, match="not a stack of parallel slices"):
        read_image_series(paths)


def test_duplicate_positions_are_refused(tmp_path):
    paths = write_stack(tmp_path, [(0, 0, 0), (0, 0, 2), (0, 0, 2)])
    with pytest.raises(GeometryError, match="same position"):
        read_image_series(paths)


def test_missing_slice_is_reported_with_the_real_spacing(tmp_path):
    zs = [0, 1.5, 3.0, 6.0, 7.5, 9.0]  # 4.5 mm missing
    s = read_image_series(write_stack(tmp_path, [(0, 0, z) for z in zs], thickness=1.5))
    assert s.slice_spacing_mm == pytest.approx(1.5)
    assert s.slice_thickness_mm == pytest.approx(1.5)
    assert not s.uniform_spacing
    (gap,) = [p for p in s.problems if p.code == "input.missing_slices"]
    assert gap.status is Status.WARN and "3.00 mm" in gap.message
    np.testing.assert_allclose(s.slice_positions_mm, zs)


@pytest.mark.parametrize("syntax", [RLELossless])
def test_compressed_series_decode_to_the_same_hu(tmp_path, syntax):
    # JPEG 2000 decoding is tested on a real series (test_jpeg2000_ct_with_empty_uids):
    # openjpeg's encoder refuses these tiny signed frames.
    plain = write_stack(tmp_path / "plain", [(0, 0, 2.0 * n) for n in range(3)], rows=16, cols=16)
    for p in plain:
        ds = pydicom.dcmread(p)
        ds.compress(syntax)
        ds.save_as(tmp_path / f"c_{p.name}", enforce_file_format=True)
    a = read_image_series(plain)
    b = read_image_series(sorted(tmp_path.glob("c_*.dcm")))
    assert pydicom.dcmread(sorted(tmp_path.glob("c_*.dcm"))[0]).file_meta.TransferSyntaxUID == syntax
    np.testing.assert_array_equal(a.pixels, b.pixels)


def test_jpeg_ls_slice_decodes(tmp_path):
    # pydicom's JPEG-LS sample has no patient geometry: add it, keep the compressed pixels.
    ds = pydicom.dcmread(pydicom_file("JPEGLSNearLossless_16.dcm"))
    ds.ImagePositionPatient = [0, 0, 0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [1, 1]
    ds.save_as(tmp_path / "jls.dcm")
    s = read_image_series([tmp_path / "jls.dcm"])
    assert s.pixels.shape == (1, ds.Rows, ds.Columns)
    np.testing.assert_array_equal(s.pixels[0], ds.pixel_array.astype(np.float32))
    assert s.pixels.std() > 0


def test_rider_feet_first_ct(rider_ct_dir):
    files = sorted(rider_ct_dir.rglob("*.dcm"))
    s = read_image_series(files)
    assert s.n_slices == 236 and s.pixels.shape == (236, 512, 512)
    assert s.patient_position == "FFS"
    assert s.slice_spacing_mm == pytest.approx(1.25) and s.uniform_spacing
    ends_z = s.geometry.index_to_patient([[0, 0, 0], [235, 0, 0]])[:, 2]
    np.testing.assert_allclose(sorted(ends_z), [-328.75, -35.0], atol=1e-3)
    # Every slice's first voxel is where its file says.
    for k in (0, 117, 235):
        ds = pydicom.dcmread(s.paths[k], stop_before_pixels=True)
        np.testing.assert_allclose(s.geometry.index_to_patient([k, 0, 0]),
                                   [float(v) for v in ds.ImagePositionPatient], atol=1e-3)
    # Air outside the patient, soft tissue near the centre of the middle slice.
    assert s.pixels[118, 5, 5] < -900
    assert -200 < float(np.median(s.pixels[118, 240:270, 240:270])) < 200


def test_jpeg2000_ct_with_empty_uids():
    folder = shared("totalsegmentator_examples", "example_ct_dicom")
    s = read_image_series(sorted(folder.iterdir()))
    assert s.n_slices == 20 and s.series_instance_uid is None
    assert s.slice_spacing_mm == pytest.approx(2.0) and s.slice_thickness_mm == pytest.approx(3.0)
    assert [p.code for p in s.problems] == ["input.missing_uid"]
    assert np.all(np.diff(s.slice_positions_mm) > 0)
    assert s.pixels.min() >= -1024 and s.pixels.max() > 1000  # bone present
