"""Dark marrow filled on the sagittal and coronal planes (:mod:`contourqa.anatomy.marrow`).

Synthetic column on a 1 mm grid (slices along z): a body of radius 10 mm from
slice 0 to 39, filled on every slice (its axial holes already filled) except

* slice 15, dark marrow: only a cortex 1 mm thick with a 3 mm gap at the front is
  bone, so the axial fill leaves the marrow out;
* slices 28 to 31, a disc (its plane at z = 29.5 mm): the endplate rim with the
  same gap.

Both are enclosed on the sagittal and coronal planes by the filled slices above and
below; only the marrow is farther than the margin (6 mm) from the disc plane.  The
canal, a tube along z behind the body, is never filled.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from contourqa.anatomy.marrow import enclosed_marrow, plane_fill
from contourqa.geometry import VolumeGeometry

GRID = VolumeGeometry(shape=(40, 40, 40), origin_mm=np.array([-20.0, -20.0, 0.0]),
                      spacing_mm=np.ones(3), direction=np.eye(3))
DISC_POINT = np.array([[0.0, 0.0, 29.5]])
DISC_NORMAL = np.array([[0.0, 0.0, 1.0]])


def _column() -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_]]:
    k, j, i = np.mgrid[0:40, 0:40, 0:40]
    x, y = i - 20.0, j - 20.0  # LPS mm of the voxel (identity direction)
    r = np.hypot(x, y)
    solid = r <= 10.0
    shell = solid & (r > 9.0) & ~((np.abs(x) <= 1.0) & (y < 0))  # gap at the front
    open_slice = (k == 15) | ((k >= 28) & (k <= 31))
    column = np.where(open_slice, shell, solid)
    canal = np.hypot(x, y - 15.0) <= 3.0
    marrow = (k == 15) & (r <= 8.0)
    return column, canal, marrow


def test_marrow_away_from_the_discs_is_filled() -> None:
    column, canal, marrow = _column()
    extra = enclosed_marrow(column, canal, GRID, DISC_POINT, DISC_NORMAL, 6.0)
    assert not (extra & column).any()
    assert np.all(extra[marrow])
    k = np.nonzero(extra)[0]
    np.testing.assert_array_equal(np.unique(k), [15])  # not the disc slices 28-31
    assert not (extra & canal).any()


def test_without_disc_planes_the_disc_is_filled_too() -> None:
    column, canal, _ = _column()
    extra = enclosed_marrow(column, canal, GRID, np.zeros((0, 3)), np.zeros((0, 3)), 6.0)
    assert set(np.unique(np.nonzero(extra)[0])) == {15, 28, 29, 30, 31}
    # the plane fill itself keeps what it is given
    assert np.all(plane_fill(column)[column])
