"""Level verification (issue: sectors, item 5): each vertebra's level from every source.

Phantom cases: the bundled demo case (vertebrae T9, T10, T11, GTV in T10, plan label
"T10 SBRT"), its ROI names or plan label then edited to plant a wrong level: the
truth is the recipe's treated level, T10, which the edits do not move.  The phantom's
CT holds neither the sacrum nor ribs: no image anchor.

Real CT: the TotalSegmentator example (3 mm, T11 to the sacrum, the 12th ribs in the
field) against the model's vertebra labels (a reference, not manual truth); the
30-slice crop of it (T11 to L2) has the ribs only.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from datapaths import shared
from phantom_loading import load_single_case

from contourqa.anatomy.anchors import Anchor, Rib, count_levels, image_levels, last_rib_pair
from contourqa.case import Case
from contourqa.findings import Finding, Status
from contourqa.geometry import VolumeGeometry
from contourqa.io.discovery import CaseFiles
from contourqa.io.images import ImageSeries
from contourqa.io.rtstruct import ROI, Contour, ContourType, StructureSet
from contourqa.sectors import SectorAnalysis, SectorOptions, analyse_sectors
from contourqa.sectors.levels import text_levels
from contourqa.structures import assign_roles

REPO = Path(__file__).resolve().parents[1]
#: CT HU, the reference labels on its grid, and its geometry
RealCT = tuple[np.ndarray, np.ndarray, VolumeGeometry]


DEMO = REPO / "test_data" / "demo_case" / "dicom"  # the "demo" recipe, bundled


@pytest.fixture(scope="module")
def demo() -> Case:
    return load_single_case(DEMO)


def _edited(case: Case, *, names: dict[str, str] | None = None,
            plan_label: str | None = None) -> Case:
    """The case with ROIs renamed and the plan relabelled (RTPlanLabel and RTPlanName)."""
    names = names or {}
    rois = tuple(dataclasses.replace(r, name=names.get(r.name, r.name))
                 for r in case.structure_set.rois)
    plan = case.plan if plan_label is None else dataclasses.replace(
        case.plan, label=plan_label, name=plan_label)
    return dataclasses.replace(case, structure_set=dataclasses.replace(
        case.structure_set, rois=rois), plan=plan)


def _analyse(case: Case, **options: str) -> SectorAnalysis:
    return analyse_sectors(case, assign_roles(case.structure_set.rois),
                           options=SectorOptions(**options))


def _level(sec: SectorAnalysis, status: Status) -> list[Finding]:
    return [f for f in sec.findings if f.code == "sectors.level_mismatch" and f.status is status]


SHIFTED = {"VB_T09": "VB_T10", "VB_T10": "VB_T11", "VB_T11": "VB_T12"}


def test_consistent_case_passes_and_says_the_image_could_not_verify(demo: Case) -> None:
    sec = _analyse(demo)
    assert not _level(sec, Status.FAIL)
    (ok,) = _level(sec, Status.PASS)
    assert "roi_name T10" in ok.message and "plan T10" in ok.message
    (unverified,) = [f for f in sec.findings if f.code == "sectors.level_unverified"]
    # two sources agree, the image has no anchor: a warning, not a pass
    assert unverified.status is Status.WARN and "no anchor" in unverified.message
    (entry,) = sec.to_json()
    assert entry["level"] == "T10"
    assert {(s["source"], s["level"]) for s in entry["level_sources"]} == {
        ("roi_name", "T10"), ("plan", "T10")}
    assert sec.evaluated  # the sector map itself stands


def test_clinic_spelled_vertebra_rois_are_used_with_their_level(demo: Case) -> None:
    # "Bone_Vertebra_T10" was role unknown: the CT path ran and the ROI's level was lost
    names = {"VB_T09": "Bone_Vertebra_T9", "VB_T10": "Bone_Vertebra_T10",
             "VB_T11": "Bone_Vertebra_T11"}
    (entry,) = _analyse(_edited(demo, names=names, plan_label="SBRT")).vertebrae
    assert (entry.level, entry.level_source) == ("T10", "roi_name")
    assert entry.vertebra_source == "roi:Bone_Vertebra_T10"


def test_vertebra_rois_shifted_by_one_level_fail(demo: Case) -> None:
    sec = _analyse(_edited(demo, names=SHIFTED))
    (fail,) = _level(sec, Status.FAIL)
    assert fail.structure == "VB_T11"  # the ROI on the treated (true T10) vertebra
    assert "roi_name T11" in fail.message and "plan T10" in fail.message
    assert not _level(sec, Status.PASS)


def test_one_vertebra_renamed_to_a_wrong_level_fails(demo: Case) -> None:
    sec = _analyse(_edited(demo, names={"VB_T10": "Bone_Vertebra_T12"}))
    messages = [f.message for f in _level(sec, Status.FAIL)]
    assert any("run against their order" in m for m in messages), messages
    assert any("roi_name T12" in m and "plan T10" in m for m in messages), messages


def test_ptv_t10_on_vb_t11_fails(demo: Case) -> None:
    # the plan label names no level: the target ROI's name is the other source
    sec = _analyse(_edited(demo, names={**SHIFTED, "PTV": "PTV_T10"},
                         plan_label="SBRT 24Gy/2fx"))
    (fail,) = _level(sec, Status.FAIL)
    assert "roi_name T11" in fail.message and "target T10" in fail.message
    assert "PTV_T10" in fail.message


def test_ptv_range_covering_the_vertebra_passes(demo: Case) -> None:
    sec = _analyse(_edited(demo, names={"PTV": "PTV_T9-T11"},
                         plan_label="SBRT 24Gy/2fx"))
    assert not _level(sec, Status.FAIL)
    assert _level(sec, Status.PASS)


def test_a_range_roi_admits_its_levels(demo: Case) -> None:
    ok = _analyse(_edited(demo, names={"VB_T10": "VB_T9-T11"}))
    assert not _level(ok, Status.FAIL) and _level(ok, Status.PASS)
    wrong = _analyse(_edited(demo, names={"VB_T10": "VB_T11-T12"}))
    (fail,) = [f for f in _level(wrong, Status.FAIL) if f.structure == "VB_T11-T12"]
    assert "roi_name T11-T12" in fail.message and "plan T10" in fail.message


def test_the_same_vertebra_drawn_twice_is_not_an_order_error(demo: Case) -> None:
    t10 = demo.structure_set.roi("VB_T10")
    twice = dataclasses.replace(t10, number=99, name="Vertebra T10")
    case = dataclasses.replace(demo, structure_set=dataclasses.replace(
        demo.structure_set, rois=(*demo.structure_set.rois, twice)))
    sec = _analyse(case)
    assert not _level(sec, Status.FAIL)


def test_user_level_contradicting_the_vertebra_roi_is_a_failure(demo: Case) -> None:
    sec = _analyse(demo, level="L3")
    (fail,) = _level(sec, Status.FAIL)
    assert "user L3" in fail.message and "roi_name T10" in fail.message
    assert sec.vertebrae[0].level == "T10"  # the ROI's name still names the entry


def test_single_source_is_not_evaluated(demo: Case) -> None:
    sec = _analyse(_edited(demo, plan_label="SBRT"))
    (unverified,) = [f for f in sec.findings if f.code == "sectors.level_unverified"]
    assert unverified.status is Status.NOT_EVALUATED
    assert "roi_name only" in unverified.message
    assert not [f for f in sec.findings if f.code == "sectors.level_mismatch"]
    assert sec.evaluated


def test_cli_level_contradiction_is_reported() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from contourqa.cli import run; run()", "sectors",
         str(DEMO), "--level", "L3", "--json", "-"],
        capture_output=True, text=True, timeout=300, cwd=REPO, check=False)
    assert out.returncode == 0, out.stderr
    assert "fail: sectors.level_mismatch" in out.stderr
    (case,) = json.loads(out.stdout)
    sources = {s["source"]: s["level"] for s in case["sectors"][0]["level_sources"]}
    assert sources == {"roi_name": "T10", "user": "L3", "plan": "T10"}


@pytest.mark.parametrize(("text", "levels"), [
    ("T10 SBRT", ("T10",)), ("T9-11 SBRT", ("T9", "T10", "T11")),
    ("T12-L1 24Gy/2fx", ("T12", "L1")), ("L5/S1", ("L5", "S1")), ("Th 9", ("T9",)),
    ("SBRT 24Gy/2fx", ()), ("PTV_2400", ()), (None, ()), ("T13 SBRT", ()),
    ("Cord D2cc", ()), ("PTV D95", ()), ("S 2 cc", ()), ("T10 2 Gy", ("T10",)),
    ("L3 30Gy/5fx", ("L3",)), ("T9/T10", ("T9", "T10")),
])
def test_text_levels(text: str | None, levels: tuple[str, ...]) -> None:
    assert text_levels(text) == levels


# --------------------------------------------------------------------------- real CT

@pytest.fixture(scope="module")
def example_ct() -> RealCT:
    sitk = pytest.importorskip("SimpleITK")

    folder = shared("totalsegmentator_examples")
    ct = sitk.ReadImage(str(folder / "example_ct.nii.gz"))
    ref = sitk.ReadImage(str(folder / "spine_report" / "example_ct_report" / "totalseg.nii.gz"))
    ref = sitk.Resample(ref, ct, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    g = VolumeGeometry(shape=tuple(reversed(ct.GetSize())), origin_mm=np.array(ct.GetOrigin()),
                       spacing_mm=np.array(ct.GetSpacing()),
                       direction=np.array(ct.GetDirection()).reshape(3, 3))
    return (sitk.GetArrayFromImage(ct).astype(np.float32), sitk.GetArrayFromImage(ref), g)


#: TotalSegmentator 'total' label ids (README.txt of the data folder)
TOTALSEG = {26: "S1", 27: "L5", 28: "L4", 29: "L3", 30: "L2", 31: "L1", 32: "T12"}


def test_real_ct_levels_counted_from_both_anchors(example_ct: RealCT) -> None:
    hu, ref, g = example_ct
    found = image_levels(hu, g)
    assert found.status == "counted", found.message
    assert {a.kind: a.level for a in found.anchors} == {"lumbosacral_junction": "L5",
                                                        "last_rib": "T12"}
    for lid, level in TOTALSEG.items():
        k = found.vertebra_at(g.index_to_patient(np.argwhere(ref == lid)))
        assert k is not None and found.levels[k] == level, (level, k, found.levels)


def test_real_ct_crop_counts_from_the_ribs_alone() -> None:
    sitk = pytest.importorskip("SimpleITK")

    folder = shared("totalsegmentator_examples")
    ct = sitk.ReadImage(str(folder / "example_ct_sm.nii.gz"))
    ref = sitk.GetArrayFromImage(sitk.Resample(sitk.ReadImage(str(folder / "example_seg.nii.gz")),
                                               ct, sitk.Transform(), sitk.sitkNearestNeighbor, 0))
    g = VolumeGeometry(shape=tuple(reversed(ct.GetSize())), origin_mm=np.array(ct.GetOrigin()),
                       spacing_mm=np.array(ct.GetSpacing()),
                       direction=np.array(ct.GetDirection()).reshape(3, 3))
    found = image_levels(sitk.GetArrayFromImage(ct).astype(np.float32), g)
    assert found.status == "counted", found.message
    assert [a.kind for a in found.anchors] == ["last_rib"]
    for lid in (30, 31, 32):  # L2, L1, T12
        k = found.vertebra_at(g.index_to_patient(np.argwhere(ref == lid)))
        assert k is not None and found.levels[k] == TOTALSEG[lid]


# --------------------------------------------------------------------------- counting

def _anchor(kind: str, index: int, level: str) -> Anchor:
    return Anchor(kind, index, level, kind)


def test_count_from_agreeing_anchors() -> None:
    sacral = (True, True) + (False,) * 7
    levels, status, _ = count_levels(9, (_anchor("lumbosacral_junction", 2, "L5"),
                                         _anchor("last_rib", 7, "T12")), set(), set(), sacral)
    assert status == "counted"
    assert levels == ("S2-S5", "S1", "L5", "L4", "L3", "L2", "L1", "T12", "T11")


def test_anchors_four_apart_make_the_image_level_uncertain() -> None:
    # a lumbar rib on L1 (or 11 rib pairs ...): the last rib-bearing vertebra is 4 above L5
    sacral = (True, True) + (False,) * 7
    levels, status, message = count_levels(
        9, (_anchor("lumbosacral_junction", 2, "L5"), _anchor("last_rib", 6, "T12")),
        set(), set(), sacral)
    assert status == "anchors_disagree" and levels == (None,) * 9
    assert "uncertain" in message


def test_no_count_across_a_vertebra_that_may_be_two() -> None:
    levels, status, _ = count_levels(5, (_anchor("last_rib", 1, "T12"),), {3}, set(),
                                     (False,) * 5)
    assert status == "counted"
    assert levels == ("L1", "T12", "T11", None, None)
    levels, _, _ = count_levels(5, (_anchor("last_rib", 1, "T12"),), set(), {1}, (False,) * 5)
    assert levels == ("L1", "T12", None, None, None)  # the step T12 -> T11 may hide one


# ------------------------------------------------------- real CT, whole analysis

def _mask_roi(number: int, name: str, kind: str, mask: np.ndarray,
              g: VolumeGeometry) -> ROI:
    """An ROI outlining ``mask`` slice by slice (even-odd polygons at the 0.5 level)."""
    from skimage.measure import find_contours

    contours = []
    for k in np.nonzero(mask.any(axis=(1, 2)))[0]:
        for c in find_contours(np.pad(mask[k], 1).astype(float), 0.5):
            rc = c - 1.0
            kji = np.column_stack([np.full(len(rc), float(k)), rc])
            contours.append(Contour(g.index_to_patient(kji), ContourType.CLOSED_PLANAR))
    return ROI(number, name, kind, None, tuple(contours))


@pytest.fixture(scope="module")
def real_image(example_ct: RealCT) -> ImageSeries:
    """The example CT as an image series (one object: its CT column is counted once)."""
    hu, _, g = example_ct
    z = g.index_to_patient(np.column_stack([np.arange(g.shape[0]), np.zeros((g.shape[0], 2))]))
    return ImageSeries(paths=(), modality="CT", series_instance_uid=None,
                       study_instance_uid=None, frame_of_reference_uid=None,
                       sop_instance_uids=(), patient_id=None, patient_position="HFS",
                       geometry=g, pixels=hu, slice_positions_mm=z[:, 2],
                       slice_spacing_mm=float(g.spacing_mm[2]), slice_thickness_mm=None,
                       uniform_spacing=True)


def _real_case(image: ImageSeries, rois: list[ROI]) -> Case:
    ss = StructureSet(path=Path("rs"), sop_instance_uid="1", patient_id=None,
                      study_instance_uid=None, label=None, frame_of_reference_uid=None,
                      referenced_series_uids=(), referenced_image_uids=(), rois=tuple(rois))
    return Case(files=CaseFiles("real", None, None), plan=None, structure_set=ss, image=image,
                dose=None)


@pytest.fixture(scope="module")
def l3_gtv(example_ct: RealCT) -> np.ndarray:
    """A 10 mm sphere in the L3 body (TotalSegmentator's L3 label, 29), as a mask."""
    hu, ref, g = example_ct
    l3 = ref == 29
    idx = np.argwhere(l3)
    pts = g.index_to_patient(idx)
    centre = pts.mean(axis=0)
    centre[1] = np.percentile(pts[:, 1], 15)  # anterior (LPS -y) part: the body
    grid = g.index_to_patient(np.argwhere(np.ones(g.shape, bool))).reshape(*g.shape, 3)
    return np.linalg.norm(grid - centre, axis=-1) <= 10.0


@pytest.mark.parametrize(("name", "fails"), [("VB_L3", False), ("VB_L2", True)])
def test_real_ct_vertebra_roi_checked_against_the_image(
        example_ct: RealCT, real_image: ImageSeries, l3_gtv: np.ndarray, name: str,
        fails: bool) -> None:
    _, ref, g = example_ct
    case = _real_case(real_image, [_mask_roi(1, name, "ORGAN", ref == 29, g),
                              _mask_roi(2, "GTV", "GTV", l3_gtv, g)])
    sec = _analyse(case)
    entry = sec.entry(name[3:])
    sources = {c.source: c.level for c in entry.level_sources}
    assert sources == {"roi_name": name[3:], "image": "L3"}
    assert bool(_level(sec, Status.FAIL)) is fails
    assert bool(_level(sec, Status.PASS)) is not fails
    assert not [f for f in sec.findings if f.code == "sectors.level_unverified"]


def test_real_ct_without_vertebra_rois_takes_the_image_level(
        example_ct: RealCT, real_image: ImageSeries, l3_gtv: np.ndarray) -> None:
    g = example_ct[2]
    sec = _analyse(_real_case(real_image, [_mask_roi(1, "GTV", "GTV", l3_gtv, g)]))
    treated = max(sec.vertebrae, key=lambda v: v.gtv_sector_cc[0])
    assert (treated.level, treated.level_source) == ("L3", "image")
    assert [(c.source, c.level) for c in treated.level_sources] == [("image", "L3")]
    # the image counted it; no other source to agree or disagree with
    assert not [f for f in sec.findings if f.code.startswith("sectors.level_")]


def _rib(side: str, z: tuple[float, float], touches: dict[int, int]) -> Rib:
    contact = np.zeros(6, dtype=np.int64)
    for i, n in touches.items():
        contact[i] = n
    return Rib(side, z, contact)


def test_lowest_rib_pair_names_t12_even_split_between_two_vertebrae() -> None:
    # the two 12th ribs (z -308..-258) touch vertebra 2 and 3; the 11th pair above
    ribs = [_rib("L", (-308, -258), {2: 10}), _rib("R", (-301, -258), {3: 7}),
            _rib("L", (-266, -231), {3: 30}), _rib("R", (-263, -231), {4: 28})]
    assert last_rib_pair(ribs) == (2, None)


def test_a_rib_without_its_fellow_gives_no_anchor() -> None:
    # a lumbar rib on the left, under the pair of 12th ribs
    ribs = [_rib("L", (-340, -320), {1: 12}), _rib("L", (-308, -258), {2: 10}),
            _rib("R", (-301, -258), {2: 7})]
    last, why = last_rib_pair(ribs)
    assert last is None and "lumbar rib" in str(why)
    assert last_rib_pair([_rib("R", (-300, -260), {2: 9})])[0] is None


def test_anchors_on_both_sides_of_a_vertebra_that_may_be_two_each_count_their_side() -> None:
    # vertebra 4 may be two (a missed disc): no count across it, and no disagreement
    sacral = (True, True) + (False,) * 7
    levels, status, _ = count_levels(9, (_anchor("lumbosacral_junction", 2, "L5"),
                                         _anchor("last_rib", 6, "T12")), {4}, set(), sacral)
    assert status == "counted"
    assert levels == ("S2-S5", "S1", "L5", "L4", None, "L1", "T12", "T11", "T10")
