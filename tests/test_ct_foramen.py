"""The foramina transversaria stay holes of the vertebrae segmented from the CT.

The CT segmentation (:func:`contourqa.anatomy.segment_spine`) fills every axial hole
of the column's bone (dark marrow, lytic bone); the foramina transversaria of a
cervical vertebra were filled too, so the sector partition found no foramen on the
CT path and read the lytic right pedicle of the parts phantom's C6 as lamina
(CT only {1, 5}; {1, 6} with the vertebra ROIs, truth {6}).
:func:`contourqa.anatomy.foramina.transverse_foramina` keeps them open.  Truth:
the parts phantom's transverse-process rings (``test_data/parts_phantom``, labels by
anatomical part, no code shared with contourqa) and hand-made arrays.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # test_data/ is not installed with the package
    sys.path.insert(0, str(REPO))

from contourqa.anatomy.foramina import transverse_foramina  # noqa: E402
from contourqa.anatomy.options import CTSegmentationOptions  # noqa: E402
from contourqa.case import load_case  # noqa: E402
from contourqa.geometry import VolumeGeometry  # noqa: E402
from contourqa.io.discovery import discover  # noqa: E402
from contourqa.sectors import analyse_sectors  # noqa: E402
from contourqa.structures import assign_roles  # noqa: E402
from test_data.parts_phantom import SUITE, write_case  # noqa: E402

TP_LEFT, TP_RIGHT = 8, 9  # parts phantom part codes (its README)


def test_c6_ct_only_keeps_the_foramina_and_reads_the_pedicle(tmp_path: Path) -> None:
    """CT only, the treated C6 (right pedicle replaced by a lytic lesion) has its
    foramina: the partition's medial foramen edges lie within 1 mm of the phantom's
    (the inner edge of the transverse-process rings), the phantom's foramen voxels are
    in no vertebra, and the GTV reads no sector 5 (before: no foramen, {1, 5}, 0.31 cc
    of 0.42 in sector 5)."""
    truth = write_case(SUITE["C6_pedicle_whole_right_lytic"], tmp_path, name="c6")
    _, cases = discover(tmp_path / "dicom")
    case = load_case(cases[0])
    assert case.structure_set is not None and case.image is not None
    vert = {v for k, v in truth.roi_names.items() if k.startswith("vertebra:")}
    rois = [r for r in case.structure_set.rois if r.name not in vert]
    res = analyse_sectors(case, assign_roles(rois))
    entry = res.entry(truth.level)
    assert entry.vertebra_source == "ct"
    assert 5 not in entry.gtv_sectors and 6 in entry.gtv_sectors
    partition = res.partitions[entry.index]
    assert partition is not None
    medial = partition.landmarks.foramen_medial_v
    assert medial is not None

    # the phantom's foramina: the holes of the treated level's transverse-process rings
    lab = np.load(tmp_path / "truth" / "labels.npz")
    parts, treated, canal = lab["parts"], lab["level_index"] == 1, lab["canal"]
    st = np.zeros((3, 3, 3), dtype=bool)
    st[1] = ndimage.generate_binary_structure(2, 1)
    geometry = case.image.geometry
    expected = []
    for code in (TP_LEFT, TP_RIGHT):
        ring = treated & (parts == code)
        hole = np.asarray(ndimage.binary_fill_holes(ring, structure=st), dtype=bool) & (parts == 0)
        assert hole.any()
        # medial edge: the hole's nearest point to the canal centre, left-right (the
        # case is not rotated: the phantom's left is patient +x)
        ks = np.unique(np.nonzero(hole)[0])
        edges = []
        for k in ks:
            x = geometry.index_to_patient(np.argwhere(hole[k:k + 1]) + [k, 0, 0])[:, 0]
            cx = geometry.index_to_patient(np.argwhere(canal[k:k + 1]) + [k, 0, 0])[:, 0].mean()
            edges.append(np.abs(x - cx).min() - 0.5 * float(geometry.spacing_mm[0]))
        expected.append(float(np.median(edges)))
        # no vertebra segmented from the CT holds the foramen
        assert res.labels is not None
        k0, j0, i0 = res.crop_start_kji
        s = res.labels.shape
        inside = hole[k0:k0 + s[0], j0:j0 + s[1], i0:i0 + s[2]]
        assert inside.sum() == hole.sum()
        assert np.count_nonzero(res.labels[inside]) <= 0.05 * hole.sum()
    assert np.allclose(sorted(medial), sorted(expected), atol=1.0), (medial, expected)


def _grid(shape: tuple[int, int, int]) -> VolumeGeometry:
    return VolumeGeometry(shape=shape, origin_mm=np.zeros(3),
                          spacing_mm=np.array([1.0, 1.0, 2.0]))


def _scene(centres: list[tuple[float, float]], value: float, body_half_mm: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A 1 mm axial slice (3 copies), LPS x left, y posterior, canal centre at 0: a
    canal of radius 10 mm in a bone ring 4 mm thick, a body in front of it (y from -25
    to -10 mm, ``body_half_mm`` to either side) and, at each of ``centres`` (mm), a
    hole of radius 3 mm and HU ``value`` in a bone ring 2.5 mm thick; soft tissue
    (45 HU) elsewhere.  Returns hu, column (bone with its holes filled, no canal),
    bone, canal, dx, dy."""
    n = 81
    y, x = np.mgrid[0:n, 0:n].astype(np.float64) - 40.0
    r = np.hypot(x, y)
    bone2 = ((r > 10.0) & (r <= 14.0)) | ((np.abs(x) <= body_half_mm) & (y >= -25) & (y <= -10))
    for cx, cy in centres:
        bone2 |= np.hypot(x - cx, y - cy) <= 5.5
    canal2 = r <= 10.0
    bone2 &= ~canal2
    hu2 = np.where(bone2, 600.0, 45.0)
    hu2[canal2] = 10.0
    for cx, cy in centres:
        hole = np.hypot(x - cx, y - cy) <= 3.0
        hu2[hole] = value
        bone2 &= ~hole
    column2 = np.asarray(ndimage.binary_fill_holes(bone2), dtype=bool) & ~canal2

    def stack(a: np.ndarray) -> np.ndarray:
        return np.broadcast_to(a, (3, n, n)).copy()

    return stack(hu2), stack(column2), stack(bone2), stack(canal2), stack(x), stack(y)


CERVICAL, LUMBAR = 9.0, 24.0  # body half-widths (mm): narrower than the foramina's offset


@pytest.mark.parametrize(("centres", "value", "body_half_mm", "lesion_at", "kept"), [
    # a mirror pair of soft-tissue holes beside the canal and the narrow body: foramina
    ([(16.0, -8.0), (-16.0, -8.0)], 45.0, CERVICAL, None, 2),
    # dark marrow (90 HU: below the 110 HU bone threshold, above soft tissue): filled
    ([(16.0, -8.0), (-16.0, -8.0)], 90.0, CERVICAL, None, 0),
    # one-sided: a lytic cavity, not a foramen
    ([(16.0, -8.0)], 45.0, CERVICAL, None, 0),
    # a pair whose right hole lies in the GTV (lytic): both filled
    ([(16.0, -8.0), (-16.0, -8.0)], 45.0, CERVICAL, (-16.0, -8.0), 0),
    # the same pair with a wide body in front of it: fatty marrow of lumbar pedicles
    ([(16.0, -8.0), (-16.0, -8.0)], 45.0, LUMBAR, None, 0),
    # a pair 12 mm behind the canal's front: holes of the posterior elements
    ([(17.0, 2.0), (-17.0, 2.0)], 45.0, CERVICAL, None, 0),
    # a pair in the body, within the canal's width
    ([(5.0, -19.0), (-5.0, -19.0)], 45.0, CERVICAL, None, 0),
])
def test_which_holes_are_foramina(centres: list[tuple[float, float]], value: float,
                                  body_half_mm: float, lesion_at: tuple[float, float] | None,
                                  kept: int) -> None:
    hu, column, bone, canal, dx, dy = _scene(centres, value, body_half_mm)
    o = CTSegmentationOptions()
    assert not (bone & (hu < o.bone_min_hu)).any()
    lesion = None
    if lesion_at is not None:
        lesion = np.hypot(dx - lesion_at[0], dy - lesion_at[1]) <= 4.0
    anterior = np.tile([0.0, -1.0], (3, 1))
    grid = _grid(hu.shape)
    found = transverse_foramina(column, bone, canal, hu, lesion, dx, dy, anterior, grid, o)
    assert not (found & bone).any() and not (found & canal).any()
    assert ndimage.label(found[1])[1] == kept
    if kept:
        # the holes themselves, whole
        holes = np.zeros(found[1].shape, dtype=bool)
        for cx, cy in centres:
            holes |= np.hypot(dx[1] - cx, dy[1] - cy) <= 3.0
        assert np.array_equal(found[1], holes)
    # the frame need not be exact: the anterior direction turned by 8 degrees (an
    # asymmetric lesion pulls the bone's centroid) keeps the pair
    t = np.radians(8.0)
    turned = np.tile([np.sin(t), -np.cos(t)], (3, 1))
    found = transverse_foramina(column, bone, canal, hu, lesion, dx, dy, turned, grid, o)
    assert ndimage.label(found[1])[1] == kept


def test_max_area_zero_fills_every_hole() -> None:
    hu, column, bone, canal, dx, dy = _scene([(16.0, -8.0), (-16.0, -8.0)], 45.0, CERVICAL)
    o = CTSegmentationOptions(foramen_max_area_mm2=0.0)
    found = transverse_foramina(column, bone, canal, hu, None, dx, dy,
                                np.tile([0.0, -1.0], (3, 1)), _grid(hu.shape), o)
    assert not found.any()


def test_foramen_options_come_from_the_data_file() -> None:
    import tomllib

    raw = (REPO / "contourqa" / "anatomy" / "data" / "ct_segmentation.toml").read_text("utf-8")
    table = tomllib.loads(raw)["foramen"]
    o = CTSegmentationOptions()
    for key in ("min_area_mm2", "max_area_mm2", "max_mean_hu", "max_behind_mm", "max_ahead_mm",
                "front_depth_mm", "max_front_fraction", "pair_tolerance_mm"):
        assert getattr(o, f"foramen_{key}") == table[key]
    assert table["source"] and table["status"] == "D"
    with pytest.raises(ValueError, match="foramen_pair_tolerance_mm"):
        CTSegmentationOptions(foramen_pair_tolerance_mm=-1.0)
