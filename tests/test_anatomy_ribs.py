"""Ribs jointed to the vertebrae, cut from the column (:mod:`contourqa.anatomy.ribs`).

Synthetic column on a 2 mm grid (LPS: +z cranial, anterior is -y): a canal of
radius 8 mm ringed by bone out to 12 mm with a spinous process behind it, bodies of
radius 12 mm centred 20 mm in front of the canal centre (they reach 32 mm in front
of it: expected height 0.8 * 32 = 25.6 mm) and discs 6 mm thick every 26 mm at
z = 13, 39, 65, 91, 117 and 143 mm.  Each vertebra has transverse processes 10 mm
high, 6 mm thick, out to 24 mm each side.  The three vertebrae above z = 65 mm
are thoracic: a rib 4 mm thick leaves each transverse-process tip, with no joint
space, and runs slightly forward out to 85 mm from the midline.  The two below
are lumbar-like: their transverse processes reach 45 mm and end free.

With ``rib_min_lateral_mm`` 28 mm the ribs go from 28 mm outwards (they reach far
beyond ``rib_reach_mm``, 70 mm): a thoracic vertebra keeps its transverse
processes (24 mm) and nothing beyond 28 mm; the lumbar ones keep their 45 mm
transverse processes.
"""

from __future__ import annotations

import numpy as np
import pytest
from _spine_columns import vertebra_in_band
from numpy.typing import NDArray

from contourqa.anatomy import CTSegmentationOptions, segment_spine
from contourqa.geometry import VolumeGeometry

SPACING_MM = 2.0
DISCS_Z = np.array([13.0, 39.0, 65.0, 91.0, 117.0, 143.0])
THORACIC = ((65.0, 91.0), (91.0, 117.0), (117.0, 143.0))
LUMBAR = ((13.0, 39.0), (39.0, 65.0))


def _column() -> tuple[NDArray[np.float32], VolumeGeometry, dict[str, NDArray[np.float64]]]:
    z = np.arange(0.0, 156.0, SPACING_MM) + SPACING_MM / 2
    y = np.arange(-50.0, 40.0, SPACING_MM) + SPACING_MM / 2
    x = np.arange(-96.0, 96.0, SPACING_MM) + SPACING_MM / 2
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    hu = np.full(zz.shape, 40.0)
    body = xx ** 2 + (yy + 20.0) ** 2 <= 12.0 ** 2
    r = np.hypot(xx, yy)
    arch = ((r >= 8.0) & (r <= 12.0)) | ((np.abs(xx) <= 3.0) & (yy > 10.0) & (yy <= 30.0))
    disc = (np.abs(zz[..., None] - DISCS_Z) <= 3.0).any(axis=-1)
    hu[body | arch] = 300.0
    hu[disc & body] = 80.0
    hu[disc & arch] = 40.0
    # the middle of each vertebra (between two discs), where its processes leave
    mid = np.zeros(zz.shape, dtype=bool)
    for lo, hi in THORACIC + LUMBAR:
        mid |= np.abs(zz - (lo + hi) / 2) <= 5.0
    thoracic = zz > DISCS_Z[2]
    ax = np.abs(xx)
    tp = mid & (ax >= 10.0) & (np.abs(yy) <= 3.0)
    hu[tp & (ax <= 24.0)] = 300.0
    hu[tp & ~thoracic & (ax <= 45.0)] = 300.0
    # the thoracic vertebrae's middles are at z = 78, 104 and 130 mm (multiples of 26)
    rib = mid & thoracic & (np.abs(zz - np.round(zz / 26.0) * 26.0) <= 3.0) \
        & (ax >= 22.0) & (ax <= 85.0) & (np.abs(yy + 0.3 * (ax - 22.0)) <= 2.0)
    hu[rib] = 300.0
    g = VolumeGeometry(shape=zz.shape, origin_mm=np.array([x[0], y[0], z[0]]),
                       spacing_mm=np.full(3, SPACING_MM), direction=np.eye(3))
    return hu.astype(np.float32), g, {"x": xx, "z": zz, "tp": tp & (ax <= 24.0)}


@pytest.fixture(scope="module")
def column() -> tuple[NDArray[np.float32], VolumeGeometry, dict[str, NDArray[np.float64]]]:
    return _column()


def test_ribs_leave_the_thoracic_vertebrae(column) -> None:  # type: ignore[no-untyped-def]
    hu, g, c = column
    seg = segment_spine(hu, g)
    assert not seg.problems
    o = CTSegmentationOptions()
    for lo, hi in THORACIC:
        mask = vertebra_in_band(seg, c["z"], lo, hi)
        assert np.abs(c["x"][mask]).max() < o.rib_min_lateral_mm, (lo, hi)
        # the transverse processes stay whole
        band = (c["z"] > lo) & (c["z"] < hi)
        assert np.all(mask[c["tp"] & band]), (lo, hi)
    for lo, hi in LUMBAR:
        mask = vertebra_in_band(seg, c["z"], lo, hi)
        assert np.abs(c["x"][mask]).max() >= 44.0, (lo, hi)


def test_without_the_cut_the_ribs_stay(column) -> None:  # type: ignore[no-untyped-def]
    hu, g, c = column
    o = CTSegmentationOptions(rib_min_lateral_mm=0.0)
    seg = segment_spine(hu, g, options=o)
    for lo, hi in THORACIC:
        mask = vertebra_in_band(seg, c["z"], lo, hi)
        # the column ends at column_radius_mm from the canal centre
        assert np.abs(c["x"][mask]).max() >= o.column_radius_mm - 2 * SPACING_MM, (lo, hi)
