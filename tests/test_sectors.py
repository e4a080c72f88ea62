"""ISRC sector analysis against the spine phantom's truth (sectors by construction).

Every expected value comes from the phantom's ``truth.json`` (the recipe's GTV
sectors, body position, epidural/paraspinal flags and written CTV sectors); the
rotated cases apply a rigid axial rotation to every contour, which cannot change
any of them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from phantom_loading import generate_and_load, load_single_case

from contourqa.case import Case
from contourqa.sectors import SectorOptions, analyse_sectors
from contourqa.structures import Role, assign_roles
from test_data.phantom import PRESETS, PhantomRecipe

REPO = Path(__file__).resolve().parents[1]

# Presets plus recipes for the ISRC rows the presets do not cover.
RECIPES: dict[str, PhantomRecipe] = {
    **{n: PRESETS[n] for n in ("body_lateral_left", "body_diffuse", "body_pedicle_epidural",
                               "posterior_elements", "right_lamina_paraspinal",
                               "circumferential_disease", "hfp")},
    "body_lateral_right_ffs": PhantomRecipe(name="body_lateral_right_ffs",
                                            gtv_body_position="right", patient_position="FFS"),
    "body_both_pedicles": PhantomRecipe(name="body_both_pedicles", gtv_sectors=(1, 2, 6)),
    "right_pedicle": PhantomRecipe(name="right_pedicle", gtv_sectors=(6,)),
    "left_lamina": PhantomRecipe(name="left_lamina", gtv_sectors=(3,)),
    "lytic_body_fine": PhantomRecipe(name="lytic_body_fine", lytic=True,
                                     gtv_body_position="left", ct_pixel_spacing_mm=0.8,
                                     ct_slice_thickness_mm=1.0, ct_matrix=200),
    "left_paraspinal_ffp": PhantomRecipe(name="left_paraspinal_ffp", gtv_sectors=(2, 3),
                                         paraspinal=True, epidural=True,
                                         patient_position="FFP"),
}


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Case, dict[str, Any]]]:
    return generate_and_load(RECIPES, tmp_path_factory.mktemp("sector_phantoms"))


@pytest.fixture(scope="module")
def demo() -> tuple[Case, dict[str, Any]]:
    import json

    truth = json.loads((REPO / "test_data/demo_case/truth/truth.json").read_text("utf-8"))
    return load_single_case(REPO / "test_data/demo_case/dicom"), truth


def _analyse(case: Case, **options: Any):  # type: ignore[no-untyped-def]
    return analyse_sectors(case, assign_roles(case.structure_set.rois),
                           options=SectorOptions(**options))


def _rotated(case: Case, deg: float, centre_xy: tuple[float, float] = (0.0, 5.0)) -> Case:
    """The case with every contour rotated about the z axis through ``centre_xy``."""
    t = np.radians(deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    c = np.asarray(centre_xy)
    rois = []
    for roi in case.structure_set.rois:
        contours = []
        for con in roi.contours:
            p = con.points_mm.copy()
            p[:, :2] = (p[:, :2] - c) @ rot.T + c
            contours.append(dataclasses.replace(con, points_mm=p))
        rois.append(dataclasses.replace(roi, contours=tuple(contours)))
    ss = dataclasses.replace(case.structure_set, rois=tuple(rois))
    return dataclasses.replace(case, structure_set=ss)


def _without(case: Case, *roles: Role) -> Case:
    table = assign_roles(case.structure_set.rois)
    drop = {a.roi_number for a in table if a.role in roles}
    ss = dataclasses.replace(case.structure_set,
                             rois=tuple(r for r in case.structure_set.rois if r.number not in drop))
    return dataclasses.replace(case, structure_set=ss)


# --------------------------------------------------------------------------- truth

@pytest.mark.parametrize("name", list(RECIPES))
def test_gtv_sectors_flags_and_ctv_equal_truth(phantoms, name):  # type: ignore[no-untyped-def]
    case, truth = phantoms[name]
    result = _analyse(case)
    assert result.evaluated, result.findings
    entry = result.entry(truth["treated_level"])
    assert list(entry.gtv_sectors) == truth["gtv"]["sectors"]
    assert entry.epidural == truth["gtv"]["epidural"]
    assert entry.paraspinal == truth["gtv"]["paraspinal"]
    assert list(entry.ctv_sectors) == truth["ctv"]["written_sectors"]
    for s in truth["ctv"]["written_sectors"]:
        # the anatomical boundaries differ a little from the construction ones
        assert entry.ctv_sector_coverage_pct[s - 1] > 80.0
    if truth["gtv"]["sectors"] == [1]:
        assert entry.body_laterality == truth["gtv"]["body_position"]
    elif 1 not in truth["gtv"]["sectors"]:
        assert entry.body_laterality == "none"
    # only the treated vertebra is touched; its level is read from its ROI name
    assert [v.level for v in result.vertebrae] == [truth["treated_level"]]
    assert entry.level_source == "roi_name"


def test_demo_case_json_section(demo):  # type: ignore[no-untyped-def]
    case, truth = demo
    result = _analyse(case)
    (entry,) = result.to_json()
    assert entry["level"] == "T10" and entry["index"] == 1  # T11 below it is index 0
    assert entry["gtv_sectors"] == [1]
    assert set(entry["gtv_sector_cc"]) == {"1", "2", "3", "4", "5", "6"}
    assert entry["body_laterality"] == "central"
    assert entry["epidural"] is False and entry["epidural_extent_deg"] == 0.0
    assert entry["paraspinal"] is False
    assert entry["ctv_sectors"] == [1]
    assert entry["ctv_sector_coverage_pct"]["1"] > 95.0
    # the GTV volume in bone is the GTV's polygon volume (all in the body)
    assert entry["gtv_sector_cc"]["1"] == pytest.approx(truth["rois"]["GTV"]["volume_cc"],
                                                        rel=0.05)


def test_sector_labels_agree_with_truth_labels(demo):  # type: ignore[no-untyped-def]
    case, _ = demo
    result = _analyse(case)
    truth = np.load(REPO / "test_data/demo_case/truth/truth_labels.npy")
    k0, j0, i0 = result.crop_start_kji
    s = result.labels.shape
    t = truth[k0:k0 + s[0], j0:j0 + s[1], i0:i0 + s[2]] % 10
    mine = result.labels % 10
    both = (t > 0) & (mine > 0)
    # boundaries differ only where the phantom's construction (an ellipse ring split
    # in wedges about the canal centre, no pedicle or pillar of its own) and the
    # anatomical landmarks (body wall, pedicle junction, spinous root) disagree: a
    # one-voxel strip at each of those boundaries, 0.946 with the landmark partition
    # (the parts phantom, tests/test_sectors_parts.py, is the anatomical truth)
    assert float(np.mean(t[both] == mine[both])) > 0.94


def test_epidural_extent(phantoms):  # type: ignore[no-untyped-def]
    # body + left pedicle: the wedges of sectors 1 and 2, -125..30 deg = 155 deg
    entry = _analyse(phantoms["body_pedicle_epidural"][0]).entry("T10")
    assert entry.epidural_extent_deg == pytest.approx(155.0, abs=12.0)
    assert not entry.epidural_circumferential
    full = _analyse(phantoms["circumferential_disease"][0]).entry("T10")
    assert full.epidural_circumferential and full.epidural_extent_deg == 360.0


def test_user_level_names_ct_free_vertebra(demo):  # type: ignore[no-untyped-def]
    case, _ = demo
    table = assign_roles(case.structure_set.rois)
    # rename the vertebra ROIs so that their names carry no level
    rois = tuple(dataclasses.replace(r, name=f"bone{r.number}")
                 if table.of(r.name).role is Role.VERTEBRA else r
                 for r in case.structure_set.rois)
    renamed = dataclasses.replace(case, structure_set=dataclasses.replace(
        case.structure_set, rois=rois), plan=None)
    mapping = {f"bone{a.roi_number}": "vertebra" for a in table if a.role is Role.VERTEBRA}
    roles = assign_roles(rois, mapping=mapping)
    unknown = analyse_sectors(renamed, roles)
    assert [v.level for v in unknown.vertebrae] == [None]
    named = analyse_sectors(renamed, roles, options=SectorOptions(level="L1"))
    assert [(v.level, v.level_source) for v in named.vertebrae] == [("L1", "user")]
    # the plan label "T10 SBRT" names it too
    from_plan = analyse_sectors(dataclasses.replace(renamed, plan=case.plan), roles)
    assert [(v.level, v.level_source) for v in from_plan.vertebrae] == [("T10", "plan")]


# --------------------------------------------------------------------------- rotation

# derandomize: the same 12 draws on every run (a random draw found the -7.5 deg sliver
# pinned below)
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["body_pedicle_epidural", "right_lamina_paraspinal",
                             "posterior_elements", "body_lateral_right_ffs", "left_lamina"]),
       deg=st.floats(min_value=-20.0, max_value=20.0, allow_nan=False))
def test_axial_rotation_keeps_sector_set(phantoms, name, deg):  # type: ignore[no-untyped-def]
    case, truth = phantoms[name]
    entry = _analyse(_rotated(case, deg)).entry("T10")
    assert list(entry.gtv_sectors) == truth["gtv"]["sectors"]
    assert entry.epidural == truth["gtv"]["epidural"]
    assert entry.paraspinal == truth["gtv"]["paraspinal"]
    assert list(entry.ctv_sectors) == truth["ctv"]["written_sectors"]
    assert entry.frame.rotation_deg == pytest.approx(deg, abs=1.5)


def test_axial_rotation_sliver_is_not_involvement(phantoms):  # type: ignore[no-untyped-def]
    """At -7.5 deg the body + left pedicle lesion put 0.06 cc in sector 6 along the
    body-pedicle boundary, within a pixel of the body's bone (found by the property
    test above on a random draw; it read {1, 2, 6}).  The boundary band reports it as a
    sliver and reads the truth; with the band off (0 mm) the sliver counts again."""
    case, truth = phantoms["body_pedicle_epidural"]
    rotated = _rotated(case, -7.5)
    res = _analyse(rotated)
    entry = res.entry("T10")
    assert list(entry.gtv_sectors) == truth["gtv"]["sectors"] == [1, 2]
    assert entry.gtv_sector_cc[5] >= 0.05 and "pedicle_right" not in (entry.gtv_parts or ())
    sliver = [f for f in res.findings if f.code == "sectors.boundary_sliver"]
    assert len(sliver) == 1 and "6 (" in sliver[0].message
    off = _analyse(rotated, sector_boundary_band_mm=0.0).entry("T10")
    assert list(off.gtv_sectors) == [1, 2, 6]


def test_rotation_keeps_laterality(phantoms):  # type: ignore[no-untyped-def]
    case, _ = phantoms["body_lateral_right_ffs"]
    for deg in (-20.0, 20.0):
        assert _analyse(_rotated(case, deg)).entry("T10").body_laterality == "right"


# --------------------------------------------------------------------------- bad input

def test_no_vertebra_and_no_ct(demo):  # type: ignore[no-untyped-def]
    case, _ = demo
    bare = dataclasses.replace(_without(case, Role.VERTEBRA), image=None)
    result = _analyse(bare)
    assert not result.evaluated and result.vertebrae == ()
    assert [f.code for f in result.findings] == ["sectors.no_vertebra"]
    assert result.to_json() == []


def test_vertebra_rois_without_ct(demo):  # type: ignore[no-untyped-def]
    case, _ = demo
    entry = _analyse(dataclasses.replace(case, image=None)).entry("T10")
    assert entry.gtv_sectors == (1,)


def test_gtv_outside_vertebrae(demo):  # type: ignore[no-untyped-def]
    case, _ = demo
    table = assign_roles(case.structure_set.rois)
    gtv = table.one(Role.GTV)
    rois = []
    for roi in case.structure_set.rois:
        if roi.number == gtv.roi_number:  # move the GTV 45 mm to the patient's left
            roi = dataclasses.replace(roi, contours=tuple(
                dataclasses.replace(c, points_mm=c.points_mm + [45.0, 0.0, 0.0])
                for c in roi.contours))
        rois.append(roi)
    moved = dataclasses.replace(case, structure_set=dataclasses.replace(
        case.structure_set, rois=tuple(rois)))
    result = _analyse(moved)
    assert "sectors.gtv_outside_vertebrae" in [f.code for f in result.findings]
    assert not result.evaluated


def test_canal_not_found(demo):  # type: ignore[no-untyped-def]
    case, _ = demo
    stripped = _without(case, Role.SPINAL_CANAL, Role.SPINAL_CORD, Role.THECAL_SAC,
                        Role.CORD_PRV)
    # keep only each plane's outer vertebra contour: the ring no longer encloses a canal
    table = assign_roles(stripped.structure_set.rois)
    rois = []
    for roi in stripped.structure_set.rois:
        if table.of(roi.name).role is Role.VERTEBRA:
            by_plane: dict[float, Any] = {}
            for c in roi.contours:
                z = round(float(c.points_mm[0, 2]), 3)
                if z not in by_plane or len(c.points_mm) > len(by_plane[z].points_mm):
                    by_plane[z] = c
            roi = dataclasses.replace(roi, contours=tuple(by_plane.values()))
        rois.append(roi)
    solid = dataclasses.replace(stripped, structure_set=dataclasses.replace(
        stripped.structure_set, rois=tuple(rois)), image=None)
    result = _analyse(solid)
    assert [f.code for f in result.findings] == ["sectors.canal_not_found"]


def test_canal_from_vertebral_ring(demo):  # type: ignore[no-untyped-def]
    case, _ = demo
    result = _analyse(_without(case, Role.SPINAL_CANAL))
    assert result.canal_source is not None and result.canal_source.startswith("vertebral_ring")
    assert result.entry("T10").gtv_sectors == (1,)


def test_no_target(demo):  # type: ignore[no-untyped-def]
    case, _ = demo
    result = _analyse(_without(case, Role.GTV, Role.CTV))
    assert [f.code for f in result.findings] == ["sectors.no_target"]


def test_options_are_validated(tmp_path):  # type: ignore[no-untyped-def]
    from contourqa.sectors import PartitionOptions
    from contourqa.sectors.options import PartitionOptionsError, builtin_partition_options

    base = builtin_partition_options()
    with pytest.raises(ValueError, match="pedicle_junction_canal_fraction"):
        base.with_values(pedicle_junction_canal_fraction=1.5)
    with pytest.raises(PartitionOptionsError, match="min <= default <= max"):
        base.with_values(pedicle_min_width_mm=30.0)
    # a profile changes a threshold; an unknown key is an error naming file and key
    profile = tmp_path / "site.toml"
    profile.write_text("[pedicle]\nmin_width_mm = 5.0\n", encoding="utf-8")
    assert PartitionOptions.from_toml(profile).pedicle_min_width_mm == 5.0
    assert PartitionOptions.from_toml(profile).pedicle_max_width_mm == base.pedicle_max_width_mm
    profile.write_text("[pedicle]\nmin_widht_mm = 5.0\n", encoding="utf-8")
    with pytest.raises(PartitionOptionsError, match="site.toml.*min_widht_mm"):
        PartitionOptions.from_toml(profile)
    with pytest.raises(ValueError, match="level"):
        SectorOptions(level="T13")
    assert SectorOptions(level="t010").level == "T10"


# --------------------------------------------------------------------------- CT-based

@pytest.mark.parametrize("name", ["body_pedicle_epidural", "right_lamina_paraspinal",
                                  "circumferential_disease", "hfp", "lytic_body_fine"])
def test_vertebrae_from_ct_give_the_same_sectors(phantoms, name):  # type: ignore[no-untyped-def]
    case, truth = phantoms[name]
    ct_only = _without(case, Role.VERTEBRA, Role.SPINAL_CANAL)
    result = _analyse(ct_only)
    assert result.evaluated, result.findings
    assert result.canal_source == "ct"
    entry = result.entry(truth["treated_level"])  # named from the plan label "T10 SBRT"
    assert entry.vertebra_source == "ct" and entry.level_source == "plan"
    assert list(entry.gtv_sectors) == truth["gtv"]["sectors"]
    assert entry.epidural == truth["gtv"]["epidural"]
    assert entry.paraspinal == truth["gtv"]["paraspinal"]
    # bone segmentation against the truth labels (voxel centres in bone)
    labels = np.load(Path(case.structure_set.path).parents[1] / "truth" / "truth_labels.npy")
    k0, j0, i0 = result.crop_start_kji
    s = result.labels.shape
    t = labels[k0:k0 + s[0], j0:j0 + s[1], i0:i0 + s[2]] > 0
    m = result.labels > 0
    assert 2.0 * np.count_nonzero(t & m) / (t.sum() + m.sum()) > 0.97
