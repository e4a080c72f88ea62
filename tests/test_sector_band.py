"""The boundary band of the sector involvement, against its geometric truth.

Two sectors side by side (sector 1 in columns ``[0, b)``, sector 2 from ``b``) and a
GTV box over columns ``c0..c1`` astride the boundary.  The deepest GTV voxel of
sector 2 lies ``(c1 - b + 1)`` pixels from the nearest sector-1 voxel centre, that of
sector 1 ``(b - c0)`` pixels from sector 2: a sector counts when that distance exceeds
the band (``band_mm`` and at least 1.5 pixels); when neither does, both count.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from contourqa.geometry import VolumeGeometry
from contourqa.sectors.involvement import sectors_beyond_band


def _grid(n: int, pixel_mm: float) -> VolumeGeometry:
    return VolumeGeometry(shape=(3, n, n), origin_mm=np.zeros(3),
                          spacing_mm=np.array([pixel_mm, pixel_mm, 2.5]))


def _astride(n: int, data: st.DataObject) -> tuple[int, int, int, np.ndarray, np.ndarray]:
    """Sector 1 in columns ``[0, b)``, sector 2 from ``b``; a GTV box over columns
    ``c0..c1`` (``n - 8`` rows of the middle slice) astride the boundary."""
    b = data.draw(st.integers(3, n - 3))
    c0 = data.draw(st.integers(0, b - 1))
    c1 = data.draw(st.integers(b, n - 1))
    lab = np.zeros((3, n, n), dtype=np.int16)
    lab[:, 2:n - 2, :b] = 1
    lab[:, 2:n - 2, b:] = 2
    gtv = np.zeros((3, n, n), dtype=bool)
    gtv[1, 4:n - 4, c0:c1 + 1] = True
    return b, c0, c1, lab, gtv


@settings(max_examples=60, deadline=None)
@given(n=st.integers(16, 30), data=st.data(), pixel_mm=st.sampled_from([0.5, 0.98, 1.0, 3.0]),
       band_mm=st.floats(0.5, 4.0, allow_nan=False))
def test_band_matches_the_depth_into_each_sector(n, data, pixel_mm, band_mm):  # type: ignore[no-untyped-def]
    b, c0, c1, lab, gtv = _astride(n, data)
    band = max(band_mm, 1.5 * pixel_mm)
    deep = {1: (b - c0) * pixel_mm > band, 2: (c1 - b + 1) * pixel_mm > band}
    expected = deep if any(deep.values()) else {1: True, 2: True}
    assert sectors_beyond_band(lab, gtv, [1, 2], _grid(n, pixel_mm), band_mm) == expected


def test_band_zero_counts_every_sliver() -> None:
    lab = np.zeros((3, 20, 20), dtype=np.int16)
    lab[:, :, :10] = 1
    lab[:, :, 10:] = 2
    gtv = np.zeros((3, 20, 20), dtype=bool)
    gtv[1, 5:15, 2:11] = True  # one column into sector 2
    geometry = _grid(20, 1.0)
    assert sectors_beyond_band(lab, gtv, [1, 2], geometry, 1.5) == {1: True, 2: False}
    assert sectors_beyond_band(lab, gtv, [1, 2], geometry, 0.0) == {1: True, 2: True}


@settings(max_examples=60, deadline=None)
@given(n=st.integers(16, 30), data=st.data(), pixel_mm=st.sampled_from([0.5, 0.98, 1.0, 3.0]),
       band_mm=st.floats(0.5, 4.0, allow_nan=False), min_cc=st.floats(0.0, 0.2))
def test_min_cc_counts_the_volume_past_the_band(n, data, pixel_mm, band_mm, min_cc):  # type: ignore[no-untyped-def]
    """A sector counts when the GTV voxels farther than the band from the other
    sector (counted column by column: ``n - 8`` rows of one slice each) hold
    ``min_cc``."""
    b, c0, c1, lab, gtv = _astride(n, data)
    band = max(band_mm, 1.5 * pixel_mm)
    voxel_cc = pixel_mm * pixel_mm * 2.5 / 1000.0
    cols = {1: sum(1 for c in range(c0, b) if (b - c) * pixel_mm > band),
            2: sum(1 for c in range(b, c1 + 1) if (c - b + 1) * pixel_mm > band)}
    deep = {s: k > 0 and k * (n - 8) * voxel_cc >= min_cc for s, k in cols.items()}
    expected = deep if any(deep.values()) else {1: True, 2: True}
    got = sectors_beyond_band(lab, gtv, [1, 2], _grid(n, pixel_mm), band_mm, min_cc=min_cc)
    assert got == expected


def test_min_cc_drops_a_few_voxels_past_the_band() -> None:
    """Two voxels (1 x 1 x 2.5 mm) 2 mm into sector 2, past a 1.5 mm band: 0.005 cc,
    a sliver under 0.02 cc, a sector with min_cc 0."""
    lab = np.zeros((3, 20, 20), dtype=np.int16)
    lab[:, :, :10] = 1
    lab[:, :, 10:] = 2
    gtv = np.zeros((3, 20, 20), dtype=bool)
    gtv[1, 5:15, 2:11] = True  # one column into sector 2
    gtv[1, 8:10, 11] = True  # two voxels a column deeper
    geometry = _grid(20, 1.0)
    assert sectors_beyond_band(lab, gtv, [1, 2], geometry, 1.5, min_cc=0.02) == {1: True,
                                                                                2: False}
    assert sectors_beyond_band(lab, gtv, [1, 2], geometry, 1.5, min_cc=0.0) == {1: True,
                                                                               2: True}
