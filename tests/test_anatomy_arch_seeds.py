"""Caudal seeds of the CT vertebra segmentation (:func:`contourqa.anatomy.ct._caudal_seeds`).

Synthetic column along the patient's z axis (LPS: +z cranial), sampled every 1 mm
from z = -40 to 120 mm, with horizontal discs at z = 0, 40 and 80 mm: whole
vertebrae of 40 mm between them and partial ones at both ends.  With
``arch_seed_fraction`` f = 0.5 and ``seed_margin_mm`` 3 mm, the bone seeded for a
vertebra is the part farther than 0.5 * 40 = 20 mm below its cranial disc and
farther than 3 mm above its caudal one: z in (3, 20], (43, 60]; below the lowest
disc (no caudal disc) z <= -20; above the highest (no cranial disc) z in (83, 100];
only within ``arch_seed_depth_mm`` (20 mm) behind the canal centre.
The answer must not depend on which way the centreline's arc runs (slice order).

On a whole phantom CT (T9-T11, vertebrae 18 mm high, discs 6 mm), a thoracic
spinous process sloping down from T9 until its tip lies behind the caudal half of
T10 (35-51 mm behind the canal centre, 2 mm clear of T10's own process) must stay
with T9: only bone within ``arch_seed_depth_mm`` of the canal seeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from phantom_loading import load_single_case

from contourqa.anatomy import segment_spine
from contourqa.anatomy.ct import CTSegmentationOptions, _caudal_seeds
from contourqa.anatomy.discs import Centreline
from test_data.phantom import PhantomRecipe, generate_case

OPTIONS = CTSegmentationOptions(arch_seed_fraction=0.5, seed_margin_mm=3.0,
                               arch_seed_depth_mm=20.0)
DISCS_Z = np.array([0.0, 40.0, 80.0])
Z = np.arange(-40.0, 120.5, 1.0)


def _expected(z: NDArray[np.float64]) -> NDArray[np.bool_]:
    return (((z > 3) & (z <= 20)) | ((z > 43) & (z <= 60)) | (z <= -20)
            | ((z > 83) & (z <= 100)))


def _seeds(cranial_arc: bool, discs_z: NDArray[np.float64] = DISCS_Z,
           reach_mm: float = np.nan) -> NDArray[np.bool_]:
    """Seeds on the synthetic column, the arc running cranially or caudally."""
    sign = 1.0 if cranial_arc else -1.0
    pts = np.zeros((len(Z), 3))
    pts[:, 2] = Z
    tangent = np.tile([0.0, 0.0, sign], (len(Z), 1))
    arc = sign * Z
    order = np.argsort(arc)
    line = Centreline(pts[order], arc[order], tangent)
    # the planes in arc order, their normals pointing up the arc
    disc_arc = np.sort(sign * discs_z)
    signed = Z[:, None] * sign - disc_arc[None, :]
    segment = (signed > 0).sum(axis=1)
    ends = np.concatenate([[arc.min()], disc_arc, [arc.max()]])
    return _caudal_seeds(signed, segment, np.diff(ends), np.zeros(len(Z)), line,
                         np.full(5, reach_mm), OPTIONS)


@pytest.mark.parametrize("cranial_arc", [True, False])
def test_caudal_part_of_each_segment_is_seeded(cranial_arc: bool) -> None:
    seeds = _seeds(cranial_arc)
    np.testing.assert_array_equal(Z[seeds], Z[_expected(Z)])


@pytest.mark.parametrize("cranial_arc", [True, False])
def test_collapsed_body_is_not_seeded_by_the_arch_above(cranial_arc: bool) -> None:
    # discs at 0, 20 and 60 mm: a body collapsed to 20 mm under a 40 mm vertebra,
    # whose arch hangs 0.5 * 40 = 20 mm below their disc, i.e. over all of it.  The
    # partial ends take the median whole height, 30 mm: the 40 mm vertebra is
    # seeded from 0.5 * 30 = 15 mm below its cranial disc, the one below the
    # collapsed body from 10 mm below its cranial disc, the top one up to 15 mm
    seeds = _seeds(cranial_arc, np.array([0.0, 20.0, 60.0]))
    expected = (Z <= -10) | ((Z > 23) & (Z <= 45)) | ((Z > 63) & (Z <= 75))
    np.testing.assert_array_equal(Z[seeds], Z[expected])


def test_bone_far_behind_the_canal_is_not_seeded() -> None:
    # the same column at the canal centre, 15 mm and 25 mm behind it (a thoracic
    # spinous process sloping over the vertebra below): the last is never seeded
    pts = np.zeros((len(Z), 3))
    pts[:, 2] = Z
    line = Centreline(pts, Z.copy(), np.tile([0.0, 0.0, 1.0], (len(Z), 1)))
    signed = np.tile(Z[:, None] - DISCS_Z[None, :], (3, 1))
    segment = (signed > 0).sum(axis=1)
    anterior = np.repeat([0.0, -15.0, -25.0], len(Z))
    ends = np.concatenate([[Z.min()], DISCS_Z, [Z.max()]])
    seeds = _caudal_seeds(signed, segment, np.diff(ends), anterior, line, np.full(5, np.nan),
                          OPTIONS).reshape(3, len(Z))
    np.testing.assert_array_equal(seeds[0], _expected(Z))
    np.testing.assert_array_equal(seeds[1], _expected(Z))
    assert not seeds[2].any()


def test_no_disc_no_seed() -> None:
    line = Centreline(np.zeros((2, 3)), np.array([0.0, 1.0]), np.tile([0.0, 0.0, 1.0], (2, 1)))
    seeds = _caudal_seeds(np.zeros((4, 0)), np.zeros(4, dtype=np.int64), np.array([50.0]),
                          np.zeros(4), line, np.full(3, 40.0), OPTIONS)
    assert not seeds.any()


@pytest.mark.parametrize("name", ["arch_seed_fraction", "edge_fraction"])
def test_fractions_are_validated(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        CTSegmentationOptions(**{name: 1.5})
    with pytest.raises(ValueError, match=name):
        CTSegmentationOptions(**{name: -0.1})


def test_sloping_spinous_process_stays_with_its_vertebra(tmp_path: Path) -> None:
    gen = generate_case(PhantomRecipe(name="sloping_spinous"), tmp_path / "case")
    image = load_single_case(gen.dicom_dir).image
    assert image is not None
    g = image.geometry
    assert gen.truth["levels"]["T9"]["z_range_mm"] == [15.0, 33.0]
    assert gen.truth["levels"]["T10"]["z_range_mm"] == [-9.0, 9.0]
    labels = gen.labels()  # 10 * level number + sector; T9 is 1, T10 is 2
    hu = np.asarray(image.pixels, dtype=np.float32).copy()
    x, y, z = np.moveaxis(g.index_to_patient(np.indices(hu.shape).reshape(3, -1).T)
                          .reshape(*hu.shape, 3), -1, 0)
    # T9's spinous process ends at y = 46.5 mm (canal centre y = 15 mm, LPS); the
    # bar leaves it at z = 17 mm and slopes to z = -4 mm, behind T10 (y > 48.5 mm
    # wherever T10 and its process are, z <= 9 mm)
    y0 = 41.0 + (17.0 - z) * 0.9
    bar = (np.abs(x) <= 2.5) & (z >= -4.0) & (z <= 17.0) & (y >= y0) & (y <= y0 + 6.0)
    hu[bar] = 400.0
    seg = segment_spine(hu, g)
    t9, t10 = labels // 10 == 1, labels // 10 == 2
    of_t9 = int(np.argmax([np.count_nonzero(v.mask & t9) for v in seg.vertebrae]))
    of_t10 = int(np.argmax([np.count_nonzero(v.mask & t10) for v in seg.vertebrae]))
    assert of_t9 != of_t10
    assert np.count_nonzero(bar & (z < 0)) > 50  # the tip lies in T10's caudal half
    assert np.array_equal(seg.vertebrae[of_t9].mask & bar, bar)
    t10_mask = seg.vertebrae[of_t10].mask
    assert 2.0 * np.count_nonzero(t10_mask & t10) / (t10_mask.sum() + t10.sum()) >= 0.99
