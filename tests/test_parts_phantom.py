"""The parts phantom's own truth (test_data/parts_phantom).

Expected values are anatomical facts written here by hand (adult vertebral volumes,
the sector a part belongs to, which side is patient left), or measured from the label
volume without the generator's own axes (the pedicle's width across its principal
axis), never taken from the generator's parameters of the quantity under test.
"""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # test_data/ is not installed with the package
    sys.path.insert(0, str(REPO))

from test_data.parts_phantom import (  # noqa: E402
    PART_NAMES,
    SECTOR_OF_PART,
    SUITE,
    CaseSpec,
    VertebraParams,
    build_scene,
    build_vertebra,
    canal_section,
    case_truth,
    write_case,
)
from test_data.parts_phantom._anatomy import (  # noqa: E402
    BODY,
    PEDICLE_L,
    PEDICLE_R,
    vertebra_parts,
)

CODE = {v: k for k, v in PART_NAMES.items()}


def _fast(spec: CaseSpec) -> CaseSpec:
    """The same case on a coarse grid (tests of truth, not of CT fidelity)."""
    return replace(spec, pixel_mm=1.0, slice_mm=2.0, noise_hu=0.0)


# ------------------------------------------------------------------ anatomy


@pytest.mark.parametrize(("region", "body_cc", "vertebra_cc"), [
    # adult ranges, rounded wide: C5 body 2-5 cc; T10 body 12-25 cc, whole 20-40 cc;
    # L3 body 25-45 cc, whole 40-70 cc
    ("cervical", (1.8, 5.0), (4.0, 12.0)),
    ("thoracic", (12.0, 25.0), (20.0, 40.0)),
    ("lumbar", (25.0, 45.0), (40.0, 70.0)),
])
def test_part_volumes_in_anatomical_ranges(region: str, body_cc: tuple[float, float],
                                           vertebra_cc: tuple[float, float]) -> None:
    v = build_vertebra(VertebraParams.for_region(region), spacing_mm=0.5)
    body = v.volume_cc(BODY)
    whole = sum(v.volume_cc(c) for c in SECTOR_OF_PART)
    assert body_cc[0] <= body <= body_cc[1]
    assert vertebra_cc[0] <= whole <= vertebra_cc[1]
    # every part exists, the pair parts are mirror images, the body is the largest
    for code in SECTOR_OF_PART:
        assert v.volume_cc(code) > 0.05, PART_NAMES[code]
    assert v.volume_cc(PEDICLE_L) == pytest.approx(v.volume_cc(PEDICLE_R), rel=0.02)
    assert body > 0.3 * whole  # cervical: large lateral masses


def _pedicle_width(params: VertebraParams, *, code: int = PEDICLE_L) -> float:
    """Width of the pedicle across its axis, on the axial plane where its section is
    largest, over the middle third of its length (0.1 mm grid)."""
    xs = np.arange(-60.0, 60.0, 0.5)
    ys = np.arange(-40.0, 30.0, 0.5)
    zs = np.arange(-20.0, 20.0, 0.5)
    zz, yy, xx = np.meshgrid(zs, ys, xs, indexing="ij")
    m = vertebra_parts(params, xx, yy, zz) == code
    z_best = float(zs[int(np.argmax(m.sum(axis=(1, 2))))])
    yi, xi = np.nonzero(m.any(axis=0))
    fx = np.arange(xs[xi.min()] - 1.0, xs[xi.max()] + 1.0, 0.1)
    fy = np.arange(ys[yi.min()] - 1.0, ys[yi.max()] + 1.0, 0.1)
    gx, gy = np.meshgrid(fx, fy, indexing="ij")
    lab = vertebra_parts(params, gx, gy, np.full_like(gx, z_best))
    ped = lab == code
    # the pedicle's axis joins the middles of its junctions with the body and with the
    # articular pillar (read from the labels, not from the generator's axis)
    pillar = CODE["articular_left"] if code == PEDICLE_L else CODE["articular_right"]
    ends = []
    for other in (BODY, pillar):
        touch = ped & ndimage.binary_dilation(lab == other, iterations=2)
        assert touch.any()
        ends.append(np.array([gx[touch].mean(), gy[touch].mean()]))
    u = (ends[0] - ends[1]) / np.linalg.norm(ends[0] - ends[1])
    pts = np.column_stack([gx[ped], gy[ped]]) - ends[1]
    along, across = pts @ u, pts @ np.array([u[1], -u[0]])
    length = float(np.linalg.norm(ends[0] - ends[1]))
    mid = (along >= length / 3) & (along <= 2 * length / 3)
    return float(across[mid].max() - across[mid].min()) + 0.1


@pytest.mark.parametrize(("region", "width_mm"), [
    ("thoracic", 8.0), ("lumbar", 12.0), ("lumbar", 18.0), ("cervical", 6.0)])
def test_pedicle_width_measured_from_labels(region: str, width_mm: float) -> None:
    p = VertebraParams.for_region(region, pedicle_width_mm=width_mm)
    # 0.7 mm: the axis read from the junctions' middles leans a little where the body's
    # rounded posterolateral wall cuts the pedicle obliquely (18 mm reads 18.6 mm)
    assert _pedicle_width(p) == pytest.approx(width_mm, abs=0.7)
    assert _pedicle_width(p, code=PEDICLE_R) == pytest.approx(width_mm, abs=0.7)


@pytest.mark.parametrize("region", ["cervical", "thoracic", "lumbar"])
def test_canal_is_a_closed_hole_of_plausible_size(region: str) -> None:
    # adult canal areas: cervical 180-300 mm2, thoracic 150-250, lumbar 180-350
    lo, hi = {"cervical": (150, 320), "thoracic": (130, 260), "lumbar": (170, 360)}[region]
    for w in (8.0, 12.0, 18.0) if region == "lumbar" else (None,):
        p = VertebraParams.for_region(region) if w is None else \
            VertebraParams.for_region(region, pedicle_width_mm=w)
        assert lo <= canal_section(p).area_mm2 <= hi


def test_sector_of_each_part_follows_isrc_numbering() -> None:
    # knowledge base 1a: 1 body, 2 left pedicle, 3 left TP + lamina, 4 spinous,
    # 5 right TP + lamina, 6 right pedicle
    expected = {"body": 1, "pedicle_left": 2, "lamina_left": 3,
                "transverse_process_left": 3, "articular_left": 3, "spinous_process": 4,
                "lamina_right": 5, "transverse_process_right": 5, "articular_right": 5,
                "pedicle_right": 6}
    assert {PART_NAMES[k]: s for k, s in SECTOR_OF_PART.items()} == expected


def test_left_parts_lie_at_plus_x_in_lps() -> None:
    sc = build_scene(_fast(CaseSpec(level="T10", lesion="pedicle", side="left")))
    xs = sc.origin_mm[0] + sc.spacing_mm[0] * np.arange(sc.shape[2])
    for code, sign in ((PEDICLE_L, 1), (PEDICLE_R, -1), (CODE["lamina_left"], 1),
                       (CODE["transverse_process_right"], -1)):
        cols = np.nonzero(sc.parts == code)[2]
        assert sign * (xs[cols].mean() - sc.offset[0]) > 5.0, PART_NAMES[code]
    # the GTV of a left-pedicle lesion is on the left too
    assert xs[np.nonzero(sc.gtv)[2]].mean() > sc.offset[0]


# ------------------------------------------------------------------ lesion truth


@pytest.mark.parametrize(("lesion", "side", "level", "sectors"), [
    ("body_central", "left", "T10", (1,)),
    ("pedicle", "left", "T10", (2,)),
    ("pedicle", "right", "L3", (6,)),
    ("lamina", "left", "T10", (3,)),
    ("transverse_process", "right", "L3", (5,)),
    ("articular", "left", "L4", (3,)),
    ("spinous", "left", "T11", (4,)),
    ("pedicle_whole", "right", "C6", (6,)),
])
def test_lesion_inside_one_part_has_that_parts_sector(lesion: str, side: str, level: str,
                                                      sectors: tuple[int, ...]) -> None:
    sc = build_scene(_fast(CaseSpec(level=level, lesion=lesion, side=side)))  # type: ignore[arg-type]
    t = case_truth(sc)
    assert t.gtv_sectors == sectors
    assert t.gtv_cc > 0.1
    # wholly inside: every GTV voxel is bone of the treated vertebra in that sector
    lut = np.zeros(256, dtype=np.uint8)
    for k, s in SECTOR_OF_PART.items():
        lut[k] = s
    inside = lut[sc.parts[sc.gtv]]
    assert set(np.unique(inside)) == set(sectors)
    assert (sc.level_index[sc.gtv] == sc.treated_index).all()
    assert not t.epidural and not t.paraspinal
    assert all(v == 0.0 for v in t.gtv_other_levels_cc.values())


def test_multi_part_lesions() -> None:
    t = case_truth(build_scene(_fast(SUITE["L2_body_bilateral_pedicles"])))
    assert t.gtv_sectors == (1, 2, 6)
    t = case_truth(build_scene(_fast(SUITE["L1_posterior_arch_lytic"])))
    assert t.gtv_sectors == (3, 4, 5)
    assert t.gtv_parts["lamina_left"] > 0.05 and t.gtv_parts["lamina_right"] > 0.05


def test_whole_pedicle_lesion_takes_the_whole_pedicle_and_erases_it_on_ct() -> None:
    sc = build_scene(_fast(SUITE["L3_pedicle_whole_left_w18_lytic"]))
    ped = (sc.parts == PEDICLE_L) & (sc.level_index == sc.treated_index)
    assert (sc.gtv & ped).sum() == ped.sum()
    # lytic: soft-tissue CT numbers where the pedicle was, bone on the other side
    assert np.median(sc.hu[ped]) < 120
    other = (sc.parts == PEDICLE_R) & (sc.level_index == sc.treated_index)
    assert np.median(sc.hu[other]) > 200


def test_blastic_raises_ct_numbers_in_the_gtv() -> None:
    sc = build_scene(_fast(SUITE["T11_spinous_blastic"]))
    assert np.median(sc.hu[sc.gtv]) > 900


def test_epidural_extension_lies_between_sac_and_bone() -> None:
    sc = build_scene(_fast(SUITE["T10_body_epidural_sac"]))
    t = case_truth(sc)
    assert t.epidural and t.gtv_sectors == (1,)
    epi = sc.gtv & sc.canal
    assert epi.sum() * sc.voxel_cc == pytest.approx(t.epidural_cc)
    assert not (epi & sc.sac).any()
    assert not (epi & (sc.parts > 0)).any()


def test_paraspinal_extension_is_outside_bone() -> None:
    t = case_truth(build_scene(_fast(SUITE["T7_body_right_paraspinal"])))
    assert t.paraspinal and t.paraspinal_cc > 0.5
    assert t.gtv_sectors == (1,) and not t.epidural


def test_truth_does_not_depend_on_pose() -> None:
    base = CaseSpec(level="L3", lesion="pedicle", side="left")
    ref = case_truth(build_scene(_fast(base)))
    posed = case_truth(build_scene(_fast(replace(base, axial_rotation_deg=-20.0, tilt_deg=10.0,
                                                 offset_mm=(10.0, -5.0, 30.0)))))
    assert posed.gtv_sectors == ref.gtv_sectors == (2,)
    assert posed.gtv_cc == pytest.approx(ref.gtv_cc, rel=0.1)


# ------------------------------------------------------------------ suite and files


def test_suite_covers_the_variants() -> None:
    assert len(SUITE) >= 24
    specs = list(SUITE.values())
    assert {s.region for s in specs} == {"cervical", "thoracic", "lumbar"}
    assert {8.0, 12.0, 18.0} <= {s.pedicle_width_mm for s in specs}
    assert {"lytic", "blastic", "marrow"} <= {s.density for s in specs}
    assert {"pedicle_whole", "body_half", "pedicle", "lamina", "transverse_process",
            "spinous", "articular"} <= {s.lesion for s in specs}
    assert any(s.epidural for s in specs) and any(s.paraspinal for s in specs)
    assert any(s.canal_roi == "thecal_sac" for s in specs)
    assert {1.0, 3.0} <= {s.slice_mm for s in specs}
    assert max(abs(s.axial_rotation_deg) for s in specs) >= 20.0
    assert len({s.vertebra_roi for s in specs}) >= 3


def test_generator_imports_nothing_from_the_engine() -> None:
    src = REPO / "test_data" / "parts_phantom"
    for f in src.glob("*.py"):
        text = f.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(from|import)\s+contourqa(\.|\s|$)", text, re.MULTILINE), f.name


def test_written_case_reads_back(tmp_path: Path) -> None:
    from contourqa.io.rtstruct import read_structure_set
    from contourqa.masks import roi_mask
    from contourqa.geometry import VolumeGeometry

    spec = replace(SUITE["T9_pedicle_whole_right_lytic"], pixel_mm=1.2, slice_mm=3.0,
                   axial_rotation_deg=-20.0, tilt_deg=10.0, offset_mm=(3.3, -7.1, 12.345))
    truth = write_case(spec, tmp_path, name="rb")
    assert truth.gtv_sectors == (6,)
    ss = read_structure_set(tmp_path / "dicom" / "RS.dcm")
    names = {r.name for r in ss.rois}
    assert {"GTV", "CTV", "PTV", "BODY", "SpinalCord", "SpinalCanal", "Bone_Vertebra_T9",
            "Bone_Vertebra_T8", "Bone_Vertebra_T10"} <= names
    labels = np.load(tmp_path / "truth" / "labels.npz")
    parts = labels["parts"]
    sc_shape = parts.shape
    geo = truth.files
    assert len(geo["ct"]) == sc_shape[0]
    import json

    tj = json.loads((tmp_path / "truth" / "truth.json").read_text())
    g = tj["geometry"]
    vg = VolumeGeometry(shape=tuple(g["shape_zyx"]), origin_mm=np.array(g["origin_mm"]),
                        spacing_mm=np.array(g["spacing_mm_xyz"]))
    gtv = roi_mask(next(r for r in ss.rois if r.name == "GTV"), vg)
    ped = (parts == PEDICLE_R) & (labels["level_index"] == 1)
    # the GTV as written covers the pedicle it replaced
    assert (gtv & ped).sum() >= 0.97 * ped.sum()
    # every ROI rasterised by voxel centre gives back the mask it was drawn from
    vert = np.isin(parts, list(SECTOR_OF_PART))
    for lv, name in enumerate(("Bone_Vertebra_T8", "Bone_Vertebra_T9", "Bone_Vertebra_T10")):
        m = roi_mask(next(r for r in ss.rois if r.name == name), vg)
        assert np.array_equal(m, vert & (labels["level_index"] == lv)), name
    canal = roi_mask(next(r for r in ss.rois if r.name == "SpinalCanal"), vg)
    assert np.array_equal(canal, labels["canal"])
    # the designed dose: the prescription in the PTV's core, half of it in the cord
    from contourqa.io.rtdose import read_dose

    dose = read_dose(tmp_path / "dicom" / "RD.dcm")
    assert dose.dose_gy.max() == pytest.approx(24.0, abs=0.01)
    cord = roi_mask(next(r for r in ss.rois if r.name == "SpinalCord"), dose.geometry)
    assert cord.any() and dose.dose_gy[cord].max() <= 12.0 + 1e-3
    assert tj["gtv_sectors"] == [6] and tj["level"] == "T9"


def test_command_line_lists_the_suite() -> None:
    import subprocess

    out = subprocess.run([sys.executable, "-m", "test_data.parts_phantom", "--list"], cwd=REPO,
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == list(SUITE)


def test_contour_planes_are_not_split_by_rounding(tmp_path: Path) -> None:
    # this pose once put the slices at z = ...x.xxx5 mm: rounded to 3 decimals, the
    # polygons of one slice fell into two planes and a reader kept only one of them
    from contourqa.geometry import VolumeGeometry
    from contourqa.io.rtstruct import read_structure_set
    from contourqa.masks import roi_mask

    spec = replace(SUITE["L3_pedicle_left_rotm20_tilt10"], pixel_mm=1.2)
    write_case(spec, tmp_path, name="planes")
    import json

    g = json.loads((tmp_path / "truth" / "truth.json").read_text())["geometry"]
    assert all(abs(2 * z - round(2 * z)) < 1e-9 for z in g["origin_mm"])
    vg = VolumeGeometry(shape=tuple(g["shape_zyx"]), origin_mm=np.array(g["origin_mm"]),
                        spacing_mm=np.array(g["spacing_mm_xyz"]))
    labels = np.load(tmp_path / "truth" / "labels.npz")
    ss = read_structure_set(tmp_path / "dicom" / "RS.dcm")
    m = roi_mask(next(r for r in ss.rois if r.name == "VB_L3"), vg)
    assert np.array_equal(m, np.isin(labels["parts"], list(SECTOR_OF_PART))
                          & (labels["level_index"] == 1))
