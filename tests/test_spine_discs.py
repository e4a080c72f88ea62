"""Disc finding of the CT vertebra segmentation on synthetic tubes with known discs.

The samples stand for the voxels about the body centreline: arc length ``s`` along
it, offsets ``u`` (anterior) and ``v`` (lateral), all in mm, on a 1 mm grid.  Bodies
are 200 HU, discs 80 HU; the expected planes are the ones the samples were built
with.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from contourqa.anatomy.ct import CTSegmentationOptions
from contourqa.anatomy.discs import (
    _choose_discs,
    _disc_candidates,
    _fit_disc_plane,
    _profiles,
)
from contourqa.geometry import VolumeGeometry

OPTIONS = CTSegmentationOptions()
GRID_1MM = VolumeGeometry(shape=(1, 1, 1), origin_mm=np.zeros(3), spacing_mm=np.ones(3),
                          direction=np.eye(3))


def _tube(length_mm: float, radius_mm: float
          ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    s, u, v = np.meshgrid(np.arange(0.0, length_mm, 1.0),
                          np.arange(-radius_mm, radius_mm + 0.5, 1.0),
                          np.arange(-radius_mm, radius_mm + 0.5, 1.0), indexing="ij")
    inside = u ** 2 + v ** 2 <= radius_mm ** 2
    return s[inside], u[inside], v[inside]


def test_tilted_disc_is_found_and_fitted() -> None:
    # lumbosacral-like disc: 8 mm thick, tilted 25 degrees about the lateral axis;
    # a 20 mm band of dark (120 HU) marrow in the body above it is no disc
    s, u, v = _tube(140.0, 15.0)
    slope = np.tan(np.radians(25.0))
    hu = np.full(s.shape, 200.0)
    hu[np.abs(s + slope * u - 50.0) <= 4.0] = 80.0
    hu[np.abs(s - 95.0) <= 10.0] = 120.0
    probe = u ** 2 + v ** 2 <= OPTIONS.disc_probe_radius_mm ** 2
    arc, contrast, ta, tb = _disc_candidates(
        _profiles(s[probe], u[probe], v[probe], hu[probe], GRID_1MM, OPTIONS), OPTIONS)
    strong = contrast >= 60.0
    assert np.count_nonzero(strong) == 1, (arc, contrast)
    assert arc[strong][0] == pytest.approx(50.0, abs=2.0)
    t0, a, b = _fit_disc_plane(s, u, v, hu, float(arc[strong][0]), float(ta[strong][0]),
                               float(tb[strong][0]), OPTIONS)
    assert t0 == pytest.approx(50.0, abs=1.0)
    assert np.degrees(np.arctan(a)) == pytest.approx(25.0, abs=4.0)
    assert np.degrees(np.arctan(b)) == pytest.approx(0.0, abs=4.0)


def test_choice_follows_the_vertebral_height() -> None:
    # discs every 36 mm (contrast 100, one weak at 25 HU); a marrow dip of 60 HU in
    # the middle of every body would halve them
    discs = np.arange(20.0, 200.0, 36.0)
    dips = discs[:-1] + 18.0
    arc = np.concatenate([discs, dips])
    contrast = np.concatenate([np.full(len(discs), 100.0), np.full(len(dips), 60.0)])
    contrast[2] = 25.0
    order = np.argsort(arc)
    arc, contrast = arc[order], contrast[order]
    expected = np.full(len(arc), 36.0)
    chosen = _choose_discs(arc, contrast, expected, (0.0, 210.0), OPTIONS)
    np.testing.assert_allclose(arc[chosen], discs)
    # without the expected height, halving every body is as regular as the truth
    # and wins on contrast: the size of the bodies is what rules it out
    unknown = _choose_discs(arc, contrast, np.full(len(arc), np.nan), (0.0, 210.0), OPTIONS)
    assert len(unknown) > len(discs)


def test_no_candidate_gives_no_disc() -> None:
    chosen = _choose_discs(np.zeros(0), np.zeros(0), np.zeros(0), (0.0, 50.0), OPTIONS)
    assert chosen.size == 0
