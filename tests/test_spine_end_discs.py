"""A disc cut by an end of the CT crop (:func:`contourqa.anatomy.discs._end_disc_candidates`).

Synthetic column on a 2 mm grid (LPS: +z cranial, anterior is -y): a canal of
radius 8 mm ringed by bone out to 13 mm, bodies of radius 16 mm centred 25 mm in
front of the canal centre (they reach 41 mm in front of it: an expected vertebra
height of 0.8 * 41 = 33 mm) and discs 6 mm thick (80 HU) every 33 mm at
z = 20, 53, 86, 119 and 152 mm.  At a disc the body keeps its outer 2 mm (the
endplate's rim), a closed ring of bone: the hole filling puts the disc into the
column, as it does on a real CT.  The arch ring is open at the discs but for
each vertebra's superior articular processes, which rise beside the canal to the
level of the disc above; each vertebra's spinous process hangs 8 mm below its
caudal disc and ends 12 mm below its cranial one.

The crop ends (a) inside the disc at 20 mm (its caudal 5 mm are cut off), (b)
inside the disc at 152 mm, (c) in a 2 mm sliver of the vertebra below the disc at
20 mm, (d) inside the dark marrow (100 HU, below the bone threshold, enclosed by
the cortex) of a body, no disc there.  In (a) and (b) no vertebra holds the cut
disc and the end vertebra keeps its arch level with it and its endplate rim; in
(c) the sliver does not join the end vertebra; in (d) it keeps all of its marrow.
"""

from __future__ import annotations

import numpy as np
import pytest
from _spine_columns import vertebra_in_band
from numpy.typing import NDArray

from contourqa.anatomy import CTSegmentationOptions, segment_spine
from contourqa.geometry import VolumeGeometry

SPACING_MM = 2.0
DISCS_Z = np.array([20.0, 53.0, 86.0, 119.0, 152.0])
DISC_HALF_MM = 3.0
BODY_RADIUS_MM = 16.0
RIM_MM = 4.0
HANG_MM, PROCESS_GAP_MM = 8.0, 12.0
BODY_HU, DISC_HU, MARROW_HU, ARCH_HU, SOFT_HU = 250.0, 80.0, 100.0, 300.0, 40.0


def _column(z_lo: float, z_hi: float, marrow_z: tuple[float, float] | None = None
            ) -> tuple[NDArray[np.float32], VolumeGeometry, dict[str, NDArray[np.bool_]],
                       NDArray[np.float64]]:
    """The column cropped to slices centred in ``(z_lo, z_hi)``; the masks of the disc
    inside its rim, the rim, each vertebra's spinous process (by the index of its
    caudal disc), the marrow and the bodies; and the z of every voxel."""
    z = np.arange(z_lo, z_hi, SPACING_MM) + SPACING_MM / 2
    y = np.arange(-60.0, 40.0, SPACING_MM) + SPACING_MM / 2
    x = np.arange(-50.0, 50.0, SPACING_MM) + SPACING_MM / 2
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    hu = np.full(zz.shape, SOFT_HU)
    rb = np.hypot(xx, yy + 25.0)
    body = rb <= BODY_RADIUS_MM
    inner = rb < BODY_RADIUS_MM - RIM_MM
    r = np.hypot(xx, yy)
    ring = (r >= 8.0) & (r <= 13.0)
    disc = (np.abs(zz[..., None] - DISCS_Z) <= DISC_HALF_MM).any(axis=-1)
    hu[body | ring] = BODY_HU
    hu[ring] = ARCH_HU
    hu[disc & ring & ~body] = SOFT_HU
    hu[disc & inner] = DISC_HU
    marrow = np.zeros(zz.shape, dtype=bool)
    if marrow_z is not None:
        marrow = inner & (zz > marrow_z[0]) & (zz < marrow_z[1])
        hu[marrow] = MARROW_HU
    midline = (np.abs(xx) <= 3.0) & (yy > 10.0) & (yy <= 35.0)
    masks = {"disc": disc & inner, "rim": disc & body & ~inner, "marrow": marrow,
             "body": body}
    for d in range(len(DISCS_Z) - 1):
        process = midline & (zz > DISCS_Z[d] - HANG_MM) \
            & (zz < DISCS_Z[d + 1] - PROCESS_GAP_MM)
        # the superior articular processes rise beside the canal to the disc above
        facets = ring & (np.abs(xx) >= 8.0) & (np.abs(zz - DISCS_Z[d + 1]) <= DISC_HALF_MM)
        hu[process | facets] = ARCH_HU
        masks[f"process{d}"] = process
        masks[f"facets{d}"] = facets
    g = VolumeGeometry(shape=zz.shape, origin_mm=np.array([x[0], y[0], z[0]]),
                       spacing_mm=np.full(3, SPACING_MM), direction=np.eye(3))
    return hu.astype(np.float32), g, masks, zz


def _in_any(masks: tuple[NDArray[np.bool_], ...], mask: NDArray[np.bool_]) -> int:
    """How many voxels of ``mask`` the vertebrae ``masks`` hold (summed)."""
    return sum(int(np.count_nonzero(v & mask)) for v in masks)


@pytest.mark.parametrize(("z_lo", "z_hi", "lo", "hi", "cut", "arch", "held"), [
    # (a) caudal 5 mm of the disc at 20 mm cut off
    (18.0, 140.0, 20.0, 53.0, 0, "process0", 0.0),
    # (b) cranial 4 mm of the disc at 152 mm cut off; the plane fitted to the edge
    # tilts by 7 degrees here and leaves 12 of the 432 voxels (the front of the
    # disc's first slice)
    (30.0, 156.0, 119.0, 152.0, 4, "facets3", 0.03),
])
def test_cut_disc_is_not_the_end_vertebra(z_lo: float, z_hi: float, lo: float, hi: float,
                                          cut: int, arch: str, held: float) -> None:
    hu, g, m, z = _column(z_lo, z_hi)
    seg = segment_spine(hu, g)
    assert not seg.problems
    # three whole vertebrae and a partial one at the other end; none beyond the cut
    # disc
    assert len(seg.vertebrae) == 4
    end = vertebra_in_band(seg, z, lo, hi)
    the_disc = m["disc"] & (np.abs(z - DISCS_Z[cut]) <= DISC_HALF_MM)
    assert np.count_nonzero(the_disc) > 0
    # no vertebra holds what the crop keeps of the cut disc (without the cut disc
    # found, the end vertebra holds all of it: see the next test)
    in_any = _in_any(tuple(v.mask for v in seg.vertebrae), the_disc)
    assert in_any <= held * np.count_nonzero(the_disc)
    # the end vertebra keeps its arch level with the cut disc: (a) its spinous
    # process, which hangs beyond the disc, (b) its superior articular processes
    own = m[arch] & (np.abs(z - DISCS_Z[cut]) <= DISC_HALF_MM)
    assert np.count_nonzero(own) > 0
    assert np.all(end[own])
    # and the endplate's rim about the cut disc (bone)
    rim = m["rim"] & (np.abs(z - DISCS_Z[cut]) <= DISC_HALF_MM)
    assert np.all(end[rim])
    # the body of the end vertebra is whole: away from the discs, all of it is there
    core = m["body"] & (z > lo + DISC_HALF_MM) & (z < hi - DISC_HALF_MM)
    assert np.all(end[core])


def test_sliver_beyond_the_disc_is_not_the_end_vertebra() -> None:
    # (c) the crop keeps the whole disc at 20 mm and one 2 mm slice of the body below
    hu, g, m, z = _column(14.0, 140.0)
    seg = segment_spine(hu, g)
    assert not seg.problems
    end = vertebra_in_band(seg, z, DISCS_Z[0], DISCS_Z[1])
    sliver = m["body"] & (z < DISCS_Z[0] - DISC_HALF_MM)
    assert np.count_nonzero(sliver) > 0
    assert not (end & sliver).any()
    # the disc is split at its plane, as between any two vertebrae
    assert not (end & m["disc"] & (z < DISCS_Z[0])).any()
    assert np.all(end[m["process0"]])


def test_without_the_detection_the_disc_joins_the_end_vertebra() -> None:
    # the case (a) with cut discs never found: the rim ring is filled, the disc flooded
    hu, g, m, z = _column(18.0, 140.0)
    seg = segment_spine(hu, g, options=CTSegmentationOptions(end_disc_min_contrast_hu=1e6))
    end = vertebra_in_band(seg, z, DISCS_Z[0], DISCS_Z[1])
    the_disc = m["disc"] & (np.abs(z - DISCS_Z[0]) <= DISC_HALF_MM)
    assert np.count_nonzero(end & the_disc) == np.count_nonzero(the_disc)


@pytest.mark.parametrize(("z_lo", "z_hi", "marrow_z", "lo", "hi"), [
    # caudal end 10 mm into the marrow: no single step from dark to bright (the
    # marrow's edge, then the disc at 53 mm)
    (36.0, 140.0, (26.0, 46.0), 20.0, 53.0),
    # cranial end 18 mm into it: thicker than a disc
    (30.0, 142.0, (124.0, 147.0), 119.0, 152.0),
    # cranial end 7 mm into it: a disc there would leave a vertebra of 5 mm
    (30.0, 131.0, (124.0, 147.0), 119.0, 152.0),
])
def test_dark_marrow_at_the_end_stays(z_lo: float, z_hi: float, marrow_z: tuple[float, float],
                                      lo: float, hi: float) -> None:
    hu, g, m, z = _column(z_lo, z_hi, marrow_z)
    assert np.count_nonzero(m["marrow"]) > 0
    seg = segment_spine(hu, g)
    assert not seg.problems
    end = vertebra_in_band(seg, z, lo, hi)
    assert np.all(end[m["marrow"]])
    own = m["body"] & (z > lo + DISC_HALF_MM) & (z < hi - DISC_HALF_MM)
    assert np.all(end[own])


def test_end_contrast_is_validated() -> None:
    with pytest.raises(ValueError, match="end_disc_min_contrast_hu"):
        CTSegmentationOptions(end_disc_min_contrast_hu=-1.0)
