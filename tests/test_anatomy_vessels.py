"""A contrast-filled aorta against a body, cut from the column (:mod:`contourqa.anatomy.vessels`).

Synthetic column on a grid of 1 mm in-plane and 2 mm slices (LPS: +z cranial,
anterior is -y, left is +x), with Gaussian noise of 10 HU: a canal of radius
8 mm ringed by cortical bone (600 HU) out to 12 mm with a spinous process behind
it; bodies of radius 18 mm centred 26 mm in front of the canal centre, a cortex
2 mm thick (600 HU) about marrow of 150 HU; discs (80 HU) 6 mm thick at z = 13, 39
and 65 mm.  The aorta runs along the column in front of the body, 30 degrees to
its left: a lumen of radius 12.5 mm (150 HU, the marrow's HU and noise) whose
wall is 1.5 mm thick, calcified (800 HU) on the half that faces the body and
soft tissue (40 HU) elsewhere; the calcified wall overlaps the body's cortex by
1 mm.  Blood and marrow differ only in where they lie: the marrow is enclosed by
its cortex and reaches the canal's ring, the lumen faces soft tissue and comes no
closer than 42 mm to the canal centre.  The second test drops the position rule
(``vessel_min_canal_mm`` 0): the cortex alone keeps the marrow.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from contourqa.anatomy import CTSegmentationOptions, segment_spine
from contourqa.geometry import VolumeGeometry

SLICE_MM = 2.0
NOISE_HU = 10.0
DISCS_Z = np.array([13.0, 39.0, 65.0])
BODY_Y, BODY_R, CORTEX_MM = -26.0, 18.0, 2.0
LUMEN_R, WALL_MM = 12.5, 1.5
#: the aorta's centre: anterior-left of the body's (30 degrees left of anterior), its
#: wall overlapping the cortex
AORTA_DEG = 30.0
AORTA_DIST = BODY_R + LUMEN_R + WALL_MM - 1.0
AORTA_X = AORTA_DIST * np.sin(np.radians(AORTA_DEG))
AORTA_Y = BODY_Y - AORTA_DIST * np.cos(np.radians(AORTA_DEG))


#: CT (HU), its grid, and the masks of the lumen, marrow, body and wall
Column = tuple[NDArray[np.float32], VolumeGeometry, dict[str, NDArray[np.bool_]]]


def _column(aorta: bool) -> Column:
    z = np.arange(0.0, 78.0, SLICE_MM) + SLICE_MM / 2
    y = np.arange(-80.0, 40.0, 1.0) + 0.5
    x = np.arange(-60.0, 60.0, 1.0) + 0.5
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    hu = np.full(zz.shape, 40.0)
    r_body = np.hypot(xx, yy - BODY_Y)
    r = np.hypot(xx, yy)
    arch = ((r >= 8.0) & (r <= 12.0)) | ((np.abs(xx) <= 3.0) & (yy > 10.0) & (yy <= 30.0))
    disc = (np.abs(zz[..., None] - DISCS_Z) <= 3.0).any(axis=-1)
    marrow = r_body <= BODY_R - CORTEX_MM
    hu[(r_body <= BODY_R) | arch] = 600.0
    hu[marrow] = 150.0
    hu[disc & (r_body <= BODY_R)] = 80.0
    hu[disc & arch] = 40.0
    r_aorta = np.hypot(xx - AORTA_X, yy - AORTA_Y)
    lumen = r_aorta <= LUMEN_R
    wall = (r_aorta > LUMEN_R) & (r_aorta <= LUMEN_R + WALL_MM)
    if aorta:
        # the half of the wall facing the body (towards +y, -x from the aorta's centre)
        facing = (yy - AORTA_Y) * np.cos(np.radians(AORTA_DEG)) \
            - (xx - AORTA_X) * np.sin(np.radians(AORTA_DEG)) > 0
        hu[wall] = 40.0
        hu[wall & facing] = 800.0
        hu[lumen] = 150.0
    hu += np.random.default_rng(7).normal(0.0, NOISE_HU, hu.shape)
    g = VolumeGeometry(shape=zz.shape, origin_mm=np.array([x[0], y[0], z[0]]),
                       spacing_mm=np.array([1.0, 1.0, SLICE_MM]), direction=np.eye(3))
    return hu.astype(np.float32), g, {"lumen": lumen & aorta, "marrow": marrow & ~disc,
                                      "body": r_body <= BODY_R,
                                      "wall": wall & aorta & (r_body > BODY_R + CORTEX_MM)}


def _vertebrae(hu: NDArray[np.float32], g: VolumeGeometry,
               options: CTSegmentationOptions | None = None) -> NDArray[np.bool_]:
    """The union of the vertebrae segmented from ``hu`` (at least three, no problems)."""
    seg = segment_spine(hu, g, options=options or CTSegmentationOptions())
    assert not seg.problems
    assert len(seg.vertebrae) >= 3
    out = np.zeros(hu.shape, dtype=bool)
    for v in seg.vertebrae:
        out |= v.mask
    return out


@pytest.fixture(scope="module")
def with_aorta() -> Column:
    return _column(aorta=True)


def test_the_aorta_leaves_the_vertebrae_and_the_marrow_stays(with_aorta: Column) -> None:
    hu, g, c = with_aorta
    lumen, marrow, body = c["lumen"], c["marrow"], c["body"]
    n_lumen = np.count_nonzero(lumen)
    # without the step the lumen, bone by its HU and joined through the calcified
    # wall, is taken into the body as far as the column reaches (9165 of 19227)
    before = _vertebrae(hu, g, CTSegmentationOptions(vessel_min_radius_mm=0.0))
    assert np.count_nonzero(before & lumen) > 0.4 * n_lumen
    assert np.count_nonzero(before & c["wall"]) > 0
    after = _vertebrae(hu, g)
    # what stays is the lumen's last pixels in the corner where the calcified wall
    # meets the cortex (36 in all)
    assert np.count_nonzero(after & lumen) <= 0.005 * n_lumen
    assert np.count_nonzero(after & c["wall"]) == 0
    # the marrow, the same HU and noise as the blood, stays whole, and the body is
    # the body of the column without the aorta (less the cortex under the wall)
    assert np.all(after[marrow])
    hu0, g0, _ = _column(aorta=False)
    alone = _vertebrae(hu0, g0)
    assert np.count_nonzero(after & body) >= 0.999 * np.count_nonzero(alone & body)
    assert np.count_nonzero(after & ~body & ~lumen) >= 0.99 * np.count_nonzero(alone & ~body)


def test_the_marrow_stays_by_its_cortex_alone(with_aorta: Column) -> None:
    hu, g, c = with_aorta
    # without the position rule only the enclosure by the cortex tells the marrow
    # from the blood
    after = _vertebrae(hu, g, CTSegmentationOptions(vessel_min_canal_mm=0.0))
    assert np.all(after[c["marrow"]])
    assert np.count_nonzero(after & c["lumen"]) <= 0.005 * np.count_nonzero(c["lumen"])


def test_without_a_vessel_nothing_is_removed() -> None:
    hu, g, c = _column(aorta=False)
    on = _vertebrae(hu, g)
    off = _vertebrae(hu, g, CTSegmentationOptions(vessel_min_radius_mm=0.0))
    np.testing.assert_array_equal(on, off)
    assert np.all(on[c["marrow"]])
    assert np.count_nonzero(on) > np.count_nonzero(c["body"] & ~c["marrow"])


@pytest.mark.parametrize("kwargs", [{"vessel_min_exterior": 1.5}, {"vessel_min_exterior": -0.1},
                                    {"vessel_max_hu": 100.0}, {"vessel_wall_mm": -1.0},
                                    {"vessel_min_radius_mm": -1.0}])
def test_vessel_options_are_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CTSegmentationOptions(**kwargs)
