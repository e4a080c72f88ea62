"""The canal of a closed ring that the canal chain passed over
(:func:`contourqa.anatomy.ct._unchosen_canal`).

On one 0.5 mm slice with the canal centre at the origin: a round hole of radius 7 mm
about the centre (CSF, 10 HU), a marrow hole 20 mm in front of it (40 HU) and, on a
second slice, the same round hole filled with 150 HU (a disc ringed by its endplate,
not a canal), and on a third a hole about the centre but reaching 25 mm to one side
(its centroid 9.5 mm off).  Only the first is the canal.
"""

from __future__ import annotations

import numpy as np

from contourqa.anatomy.ct import CTSegmentationOptions, _unchosen_canal
from contourqa.geometry import VolumeGeometry

PIXEL_MM = 0.5


def test_only_the_canal_like_hole_at_the_centre_joins_the_canal() -> None:
    n = 121
    g = VolumeGeometry(shape=(3, n, n), origin_mm=np.zeros(3),
                       spacing_mm=np.array([PIXEL_MM, PIXEL_MM, 2.0]), direction=np.eye(3))
    c = (np.arange(n) - n // 2) * PIXEL_MM
    dy, dx = np.meshgrid(c, c, indexing="ij")
    dx3, dy3 = np.broadcast_to(dx, g.shape), np.broadcast_to(dy, g.shape)
    round_hole = dx ** 2 + dy ** 2 <= 7.0 ** 2
    marrow = dx ** 2 + (dy + 20.0) ** 2 <= 6.0 ** 2
    side = round_hole | ((np.abs(dy) <= 6.0) & (dx >= 0) & (dx <= 25.0))
    holes = np.stack([round_hole | marrow, round_hole, side])
    hu = np.full(g.shape, 40.0)
    hu[0][round_hole] = 10.0
    hu[1][round_hole] = 150.0
    hu[2][side] = 10.0
    out = _unchosen_canal(holes, hu, dx3, dy3, g, CTSegmentationOptions())
    assert np.array_equal(out[0], round_hole)  # the canal; not the marrow in front
    assert not out[1].any()  # as bright as marrow: no canal
    assert not out[2].any()  # centroid 9.5 mm off the centre: no canal
    wider = CTSegmentationOptions(canal_max_offset_mm=10.0)
    assert np.array_equal(_unchosen_canal(holes, hu, dx3, dy3, g, wider)[2], side)
