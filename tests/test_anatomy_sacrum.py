"""The sacral alae cut from the sacral vertebrae (:mod:`contourqa.anatomy.sacrum`).

Synthetic column on a 2 mm grid (LPS: +z cranial, anterior is -y): a canal of
radius 8 mm ringed by bone out to 13 mm with a spinous process behind it, bodies of
radius 16 mm centred 25 mm in front of the canal centre (they reach 41 mm in front
of it, so the expected vertebra height is 0.8 * 41 = 33 mm) and discs 6 mm thick
every 33 mm at z = 80, 113, 146, 179 and 212 mm.  Below z = 113 mm lies the
sacrum: S1 between the discs at 80 and 113 mm, and the fused S2-S5 below 80 mm (80 mm
with no disc, more than ``end_height_ratio`` = 1.5 vertebrae of 33 mm).  It has
alae reaching 50 mm to each side; the lumbar vertebrae above have transverse
processes reaching 45 mm.

The sacral vertebrae keep their bone within ``sacral_width_ratio`` (1.4) times the
half-width of the other bodies: that half-width (90th percentile of the distance
of the body bone from the midline) is at most the radius, 16 mm, so that nothing
farther than 1.4 * 16 = 22.4 mm from the midline stays; their bodies (16 mm) and
canal rings stay whole.  The lumbar transverse processes are not cut.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from _spine_columns import vertebra_in_band
from numpy.typing import NDArray

from contourqa.anatomy import CTSegmentationOptions, segment_spine
from contourqa.anatomy.sacrum import sacral_segments
from contourqa.geometry import VolumeGeometry

SPACING_MM = 2.0
DISCS_Z = np.array([80.0, 113.0, 146.0, 179.0, 212.0])
BODY_RADIUS_MM = 16.0


def _column() -> tuple[NDArray[np.float32], VolumeGeometry, dict[str, NDArray[np.float64]]]:
    z = np.arange(0.0, 230.0, SPACING_MM) + SPACING_MM / 2
    y = np.arange(-60.0, 40.0, SPACING_MM) + SPACING_MM / 2
    x = np.arange(-70.0, 70.0, SPACING_MM) + SPACING_MM / 2
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    hu = np.full(zz.shape, 40.0)
    body = xx ** 2 + (yy + 25.0) ** 2 <= BODY_RADIUS_MM ** 2
    r = np.hypot(xx, yy)
    arch = ((r >= 8.0) & (r <= 13.0)) | ((np.abs(xx) <= 3.0) & (yy > 12.0) & (yy <= 35.0))
    disc = (np.abs(zz[..., None] - DISCS_Z) <= 3.0).any(axis=-1)
    hu[body | arch] = 300.0
    hu[disc & body] = 80.0
    hu[disc & arch] = 40.0
    sacrum = zz < DISCS_Z[1]
    lateral = (np.abs(xx) >= 10.0) & ~disc
    hu[sacrum & lateral & (np.abs(xx) <= 50.0) & (yy >= -30.0) & (yy <= 5.0)] = 300.0
    hu[~sacrum & lateral & (np.abs(xx) <= 45.0) & (np.abs(yy) <= 3.0)] = 300.0
    g = VolumeGeometry(shape=zz.shape, origin_mm=np.array([x[0], y[0], z[0]]),
                       spacing_mm=np.full(3, SPACING_MM), direction=np.eye(3))
    return hu.astype(np.float32), g, {"x": xx, "y": yy, "z": zz, "body": body & ~disc}


@pytest.fixture(scope="module")
def column() -> tuple[NDArray[np.float32], VolumeGeometry, dict[str, NDArray[np.float64]]]:
    return _column()


def test_sacral_vertebrae_lose_their_alae(column) -> None:  # type: ignore[no-untyped-def]
    hu, g, c = column
    seg = segment_spine(hu, g)
    assert not seg.problems
    assert len(seg.vertebrae) == 6
    limit = CTSegmentationOptions().sacral_width_ratio * BODY_RADIUS_MM
    for lo, hi in ((0.0, DISCS_Z[0]), (DISCS_Z[0], DISCS_Z[1])):  # S2-S5, S1
        mask = vertebra_in_band(seg, c["z"], lo, hi)
        width = np.abs(c["x"][mask])
        assert width.max() <= limit, (lo, hi, width.max())
        # the body and the ring about the canal stay
        whole = c["body"] & (c["z"] > lo + 5.0) & (c["z"] < hi - 5.0)
        assert np.all(mask[whole]), (lo, hi)
        assert width.max() >= 13.0
    # the lumbar transverse processes (45 mm) are kept
    for lo, hi in itertools.pairwise(DISCS_Z[1:]):
        mask = vertebra_in_band(seg, c["z"], lo, hi)
        assert np.abs(c["x"][mask]).max() >= 44.0, (lo, hi)


def test_ratio_zero_keeps_the_alae(column) -> None:  # type: ignore[no-untyped-def]
    hu, g, c = column
    seg = segment_spine(hu, g, options=CTSegmentationOptions(sacral_width_ratio=0.0))
    s1 = vertebra_in_band(seg, c["z"], DISCS_Z[0], DISCS_Z[1])
    assert np.abs(c["x"][s1]).max() >= 49.0


@pytest.mark.parametrize("up", [1.0, -1.0])
def test_sacral_segments_need_a_long_caudal_end(up: float) -> None:
    o = CTSegmentationOptions()
    lengths = np.array([80.0, 33.0, 33.0, 33.0, 20.0])
    if up < 0:  # the arc runs caudally: the caudal end is the last segment
        lengths = lengths[::-1]
    sacral = sacral_segments(lengths, up, o)
    expected = [0, 1] if up > 0 else [4, 3]
    np.testing.assert_array_equal(sacral, expected)
    # 1.5 vertebrae of 33 mm is 49.5 mm: a 45 mm caudal end is one vertebra
    short = np.array([45.0, 33.0, 33.0, 33.0, 20.0])
    assert sacral_segments(short if up > 0 else short[::-1], up, o).size == 0
