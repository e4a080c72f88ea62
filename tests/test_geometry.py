"""VolumeGeometry: the one index <-> patient conversion."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contourqa.errors import GeometryError
from contourqa.geometry import VolumeGeometry


def rotation(angles: tuple[float, float, float]) -> np.ndarray:
    a, b, c = angles
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


angle = st.floats(-np.pi, np.pi, allow_nan=False)
coord = st.floats(-500, 500, allow_nan=False)
spacing = st.floats(0.1, 5.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.tuples(angle, angle, angle), st.tuples(coord, coord, coord),
       st.tuples(spacing, spacing, spacing),
       st.lists(st.tuples(st.floats(-3, 40), st.floats(-3, 40), st.floats(-3, 40)), min_size=1, max_size=5))
def test_index_patient_round_trip(angles, origin, spacing_mm, indices):
    g = VolumeGeometry(shape=(30, 40, 50), origin_mm=np.array(origin),
                       spacing_mm=np.array(spacing_mm), direction=rotation(angles))
    kji = np.array(indices)
    back = g.patient_to_index(g.index_to_patient(kji))
    np.testing.assert_allclose(back, kji, atol=1e-8)
    # affine agrees with index_to_patient (affine takes i, j, k order)
    ijk1 = np.c_[kji[:, ::-1], np.ones(len(kji))]
    np.testing.assert_allclose((ijk1 @ g.affine.T)[:, :3], g.index_to_patient(kji), atol=1e-8)


def test_voxel_centres_from_dicom_attributes():
    # Feet-first supine style orientation: rows run to patient right (-x).
    g = VolumeGeometry.from_dicom(image_position=[10.0, -20.0, 5.0],
                                  image_orientation=[-1, 0, 0, 0, 1, 0],
                                  pixel_spacing=[0.5, 0.8], slice_spacing_mm=2.0,
                                  shape=(3, 4, 5))
    # column i moves along the row direction by PixelSpacing[1]; row j along the column
    # direction by PixelSpacing[0]; the slice normal is row x column = (0, 0, -1).
    np.testing.assert_allclose(g.index_to_patient([0, 0, 1]), [10 - 0.8, -20, 5])
    np.testing.assert_allclose(g.index_to_patient([0, 1, 0]), [10, -20 + 0.5, 5])
    np.testing.assert_allclose(g.index_to_patient([2, 0, 0]), [10, -20, 5 - 4.0])
    assert g.voxel_volume_cc == pytest.approx(0.5 * 0.8 * 2.0 / 1000)
    assert g.is_axis_aligned


def test_sheared_grid_is_refused():
    shear = np.eye(3)
    shear[:, 2] = [0.0, 0.2, 1.0]  # slice axis tilted against the rows: gantry tilt
    with pytest.raises(GeometryError, match="gantry tilt"):
        VolumeGeometry(shape=(2, 2, 2), origin_mm=np.zeros(3), spacing_mm=np.ones(3), direction=shear)


def test_contains_uses_voxel_centre_hull():
    g = VolumeGeometry(shape=(2, 3, 4), origin_mm=np.zeros(3), spacing_mm=np.ones(3))
    assert g.contains([[3.0, 2.0, 1.0]]).all()
    assert not g.contains([[3.6, 0, 0]]).any()
    assert g.contains([[3.4, 0, 0]], tol_voxels=0.5).all()
