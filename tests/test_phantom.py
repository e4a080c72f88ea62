"""Tests of the digital spine phantom (test_data/phantom).

Expected values come from the phantom's construction (truth.json, the sector label
volume) and are checked against what the DICOM files say when read back.
"""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from skimage.measure import points_in_poly

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # test_data/ is not installed with the package
    sys.path.insert(0, str(REPO))

from contourqa.io.rtdose import read_dose
from contourqa.io.rtstruct import read_structure_set
from test_data.phantom import (
    PRESETS,
    PhantomRecipe,
    consensus_ctv_sectors,
    generate_case,
)
from test_data.phantom.__main__ import main as phantom_main
from test_data.phantom._anatomy import Anatomy

DEMO_DIR = REPO / "test_data" / "demo_case"
DCIODVFY = shutil.which("dciodvfy")
# One vertebra, 150 x 150 CT: the smallest case that still has every structure.
MINI = PhantomRecipe(name="mini", levels=("T10",), ct_matrix=150)


# -- helpers --------------------------------------------------------------------------
def even_odd_area_mm2(polygons: list[np.ndarray]) -> float:
    """Area of one plane's polygons combined even-odd (holes subtract)."""
    total = 0.0
    for i, p in enumerate(polygons):
        x, y = p[:, 0], p[:, 1]
        area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
        depth = sum(bool(points_in_poly(p[:1, :2], q[:, :2])[0])
                    for j, q in enumerate(polygons) if j != i)
        total += area if depth % 2 == 0 else -area
    return total


def ct_volume(case_dir: Path) -> tuple[np.ndarray, np.ndarray, list[pydicom.FileDataset]]:
    """HU and the LPS position (mm) of every CT voxel, from the DICOM headers only."""
    slices = [pydicom.dcmread(p) for p in sorted((case_dir / "dicom").glob("CT_*.dcm"))]
    positions, values = [], []
    for ds in slices:
        iop = np.asarray(ds.ImageOrientationPatient, float)
        ipp = np.asarray(ds.ImagePositionPatient, float)
        dr, dc = (float(v) for v in ds.PixelSpacing)
        j, i = np.mgrid[0:ds.Rows, 0:ds.Columns]
        xyz = ipp + i[..., None] * dc * iop[:3] + j[..., None] * dr * iop[3:]
        positions.append(xyz.reshape(-1, 3))
        values.append(ds.pixel_array.astype(np.int32).ravel() * float(ds.RescaleSlope)
                      + float(ds.RescaleIntercept))
    return np.concatenate(positions), np.concatenate(values), slices


def label_points(case_dir: Path, truth: dict) -> tuple[np.ndarray, np.ndarray]:
    """LPS positions and codes of every labelled voxel of truth_labels.npy."""
    labels = np.load(case_dir / "truth" / "truth_labels.npy")
    affine = np.asarray(truth["geometry"]["ct"]["affine_lps_mm"])
    kji = np.argwhere(labels > 0)
    ijk1 = np.column_stack([kji[:, ::-1], np.ones(len(kji))])
    return (ijk1 @ affine.T)[:, :3], labels[labels > 0]


def canonical(points: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort (points, values) by position so that grids in any orientation compare."""
    key = np.round(points, 3)
    order = np.lexsort((key[:, 0], key[:, 1], key[:, 2]))
    return key[order], values[order]


def dose_points(case) -> tuple[np.ndarray, np.ndarray]:
    """Canonically ordered LPS positions and doses (Gy) of every dose node."""
    dose = read_dose(case.rtdose_path)
    xyz = dose.geometry.index_to_patient(np.argwhere(np.ones(dose.dose_gy.shape, bool)))
    return canonical(xyz, dose.dose_gy.ravel())


def dciodvfy_errors(path: Path) -> list[str]:
    assert DCIODVFY is not None
    result = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60,
                            check=False)  # dciodvfy exits non-zero on warnings too
    lines = (result.stdout + result.stderr).splitlines()
    return [line for line in lines if line.startswith("Error")]


# -- fixtures -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    """The demo preset, generated afresh (also compared with the bundled copy)."""
    return generate_case(PRESETS["demo"], tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def mini_cases(tmp_path_factory: pytest.TempPathFactory):
    """The mini recipe in every patient position, plus analytic and 32-bit dose."""
    out = {}
    for position in ("HFS", "FFS", "HFP", "FFP"):
        out[position] = generate_case(MINI.replace(name=f"mini_{position}",
                                                   patient_position=position),
                                      tmp_path_factory.mktemp(position))
    out["analytic"] = generate_case(MINI.replace(name="mini_analytic", dose_model="analytic"),
                                    tmp_path_factory.mktemp("analytic"))
    out["dose32"] = generate_case(MINI.replace(name="mini_HFS", dose_bits=32),
                                  tmp_path_factory.mktemp("dose32"))
    out["epidural"] = generate_case(
        MINI.replace(name="mini_epidural", gtv_sectors=(1, 2), epidural=True, paraspinal=True,
                     lytic=True, patient_position="FFS"),
        tmp_path_factory.mktemp("epidural"))
    return out


# -- recipe and consensus ----------------------------------------------------------------
@pytest.mark.parametrize(("sectors", "position", "expected"), [
    ({1}, "central", {1}),
    ({1}, "left", {1, 2}),
    ({1}, "right", {1, 6}),
    ({1}, "diffuse", {1, 2, 6}),
    ({1, 2}, "central", {1, 2, 3}),
    ({1, 6}, "central", {1, 5, 6}),
    ({1, 2, 6}, "central", {1, 2, 3, 5, 6}),
    ({2}, "central", {2, 3}),
    ({6}, "central", {5, 6}),
    ({3}, "central", {2, 3, 4}),
    ({5}, "central", {4, 5, 6}),
    ({4}, "central", {3, 4, 5}),
    ({1, 2, 4, 6}, "central", {1, 2, 3, 4, 5, 6}),
])
def test_consensus_rows(sectors, position, expected):
    got, rules = consensus_ctv_sectors(sectors, body_position=position)
    assert got == frozenset(expected)
    assert rules


@pytest.mark.parametrize("changes", [
    {"gtv_sectors": (7,)}, {"gtv_sectors": ()}, {"levels": ("T13",)},
    {"treated_level": "L1"}, {"ct_slice_thickness_mm": 2.5}, {"ctv": "wrong"},
    {"cord_max_gy": 30.0}, {"dose_bits": 8}, {"name": "has space"},
])
def test_recipe_rejects_bad_values(changes):
    with pytest.raises(ValueError):
        PhantomRecipe(**changes)


def test_recipe_round_trip_and_ordering():
    r = PhantomRecipe(levels=("T11", "T9", "T10"), gtv_sectors=[2, 1])
    assert r.levels == ("T9", "T10", "T11")  # superior first
    assert r.gtv_sectors == (1, 2)
    assert PhantomRecipe.from_dict(json.loads(json.dumps(r.to_dict()))) == r


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_ctv_recipes(name):
    recipe = PRESETS[name]
    a = Anatomy(recipe)
    assert set(recipe.gtv_sectors) <= a.expected_ctv_sectors
    if recipe.ctv == "consensus":
        assert a.ctv_sectors == a.expected_ctv_sectors and a.ctv_planted_error is None
    elif recipe.ctv == "missing_sector":
        assert a.ctv_sectors < a.expected_ctv_sectors
    elif recipe.ctv in ("extra_sector", "circumferential"):
        assert a.ctv_sectors > a.expected_ctv_sectors
    else:
        assert a.ctv_includes_epidural and not recipe.epidural


def test_impossible_planted_error_is_refused():
    with pytest.raises(ValueError, match="missing_sector"):
        Anatomy(PhantomRecipe(ctv="missing_sector"))  # consensus {1} = GTV sectors


# -- files and references ------------------------------------------------------------------
def test_files_load_and_reference_each_other(demo):
    t = demo.truth
    cts = [pydicom.dcmread(p) for p in demo.ct_paths]
    rs, rp, rd = (pydicom.dcmread(p) for p in (demo.rtstruct_path, demo.rtplan_path,
                                               demo.rtdose_path))
    every = [*cts, rs, rp, rd]
    assert {ds.StudyInstanceUID for ds in every} == {t["uids"]["study"]}
    assert {ds.FrameOfReferenceUID for ds in every} == {t["uids"]["frame_of_reference"]}
    assert [ds.Modality for ds in (rs, rp, rd)] == ["RTSTRUCT", "RTPLAN", "RTDOSE"]
    assert rp.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID == rs.SOPInstanceUID
    assert rd.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == rp.SOPInstanceUID
    assert rp.RTPlanLabel == "T10 SBRT" == t["plan_label"]
    assert int(rp.FractionGroupSequence[0].NumberOfFractionsPlanned) == t["n_fractions"] == 2
    assert float(rp.DoseReferenceSequence[0].TargetPrescriptionDose) == t["prescription_gy"]
    assert rd.DoseSummationType == "PLAN" and rd.DoseUnits == "GY" and rd.BitsAllocated == 16
    z_of = {ds.SOPInstanceUID: float(ds.ImagePositionPatient[2]) for ds in cts}
    referenced = rs.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0] \
        .RTReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == cts[0].SeriesInstanceUID
    assert {i.ReferencedSOPInstanceUID for i in referenced.ContourImageSequence} == set(z_of)
    for roi in rs.ROIContourSequence:
        for c in roi.ContourSequence:
            assert c.ContourGeometricType == "CLOSED_PLANAR"
            z = np.asarray(c.ContourData, float)[2::3]
            assert np.all(z == z_of[c.ContourImageSequence[0].ReferencedSOPInstanceUID])
    kinds = {o.ReferencedROINumber: o.RTROIInterpretedType for o in rs.RTROIObservationsSequence}
    names = {r.ROINumber: r.ROIName for r in rs.StructureSetROISequence}
    assert {names[n]: kinds[n] for n in names} == {
        "BODY": "EXTERNAL", "SpinalCanal": "ORGAN", "SpinalCord": "ORGAN",
        "SpinalCord_PRV02": "AVOIDANCE", "VB_T09": "ORGAN", "VB_T10": "ORGAN",
        "VB_T11": "ORGAN", "GTV": "GTV", "CTV": "CTV", "PTV": "PTV"}


@pytest.mark.needs_tool
def test_dciodvfy_reports_no_errors(demo, mini_cases):
    if DCIODVFY is None:
        pytest.skip("dciodvfy not found (Debian/Ubuntu package dicom3tools)")
    cts = demo.ct_paths
    files = [cts[0], cts[len(cts) // 2], cts[-1], demo.rtstruct_path, demo.rtplan_path,
             demo.rtdose_path]
    for key in ("FFS", "HFP", "FFP", "analytic", "epidural"):
        files += [mini_cases[key].ct_paths[0], mini_cases[key].rtstruct_path,
                  mini_cases[key].rtdose_path]
    # dose32 is not given to dciodvfy: dicom3tools 2022 aborts on any 32-bit pixel data
    # (../shared/README.md); test_dose_32_bit checks that file by reading it back instead.
    problems = {p.name: e for p in files if (e := dciodvfy_errors(p))}
    assert problems == {}


# -- truth by construction -----------------------------------------------------------------
def test_sector_labels_by_construction(demo):
    t = demo.truth
    xyz, codes = label_points(demo.root, t)
    sector, level = codes % 10, codes // 10
    cx, cy = t["anatomy"]["canal_centre_mm"]
    assert set(np.unique(level)) == {1, 2, 3}
    assert set(np.unique(sector)) == {1, 2, 3, 4, 5, 6}
    x, y = xyz[:, 0], xyz[:, 1]
    assert np.all(x[sector == 2] > cx) and np.all(x[sector == 3] > cx)   # patient left is +x
    assert np.all(x[sector == 6] < cx) and np.all(x[sector == 5] < cx)
    assert np.all(y[sector == 1] < cy)                                    # body is anterior
    assert np.all(y[np.isin(sector, (3, 4, 5))] > cy)                     # posterior elements
    assert np.all(np.abs(x[sector == 4] - cx) <= 3.0)
    for number, lv in t["labels"]["level_numbers"].items():
        lo, hi = t["levels"][lv]["z_range_mm"]
        z = xyz[level == int(number), 2]
        assert z.min() > lo and z.max() < hi
    # the label volume is on the CT grid, frame k = file k; bone is cancellous or cortical
    slices = [pydicom.dcmread(p) for p in demo.ct_paths]
    affine = np.asarray(t["geometry"]["ct"]["affine_lps_mm"])
    for k, ds in enumerate(slices):
        np.testing.assert_allclose(np.asarray(ds.ImagePositionPatient, float),
                                   affine[:3, 3] + k * affine[:3, 2], atol=1e-6)
    hu = np.stack([ds.pixel_array.astype(np.int32) - 1024 for ds in slices])
    labels = demo.labels()
    assert labels.shape == hu.shape
    assert set(np.unique(hu[labels > 0])) == {t["hu"]["cancellous"], t["hu"]["cortical"]}
    assert not np.any(np.isin(hu[labels == 0], (t["hu"]["cancellous"], t["hu"]["cortical"])))


@pytest.mark.parametrize("key", ["HFS", "epidural"])
def test_gtv_contours_touch_exactly_the_truth_sectors(mini_cases, key):
    case = mini_cases[key]
    t = case.truth
    ss = read_structure_set(case.rtstruct_path)
    labels = np.load(case.labels_path)
    affine = np.asarray(t["geometry"]["ct"]["affine_lps_mm"])
    _, nr, nc = labels.shape
    j, i = np.mgrid[0:nr, 0:nc]
    hit: set[int] = set()
    for z, polys in ss.roi("GTV").planes().items():
        k = round((z - affine[2, 3]) / affine[2, 2])
        xyz = np.column_stack([i.ravel(), j.ravel(), np.full(i.size, k), np.ones(i.size)]) \
            @ affine.T
        inside = np.zeros(i.size, bool)
        for p in polys:
            inside ^= points_in_poly(xyz[:, :2], p[:, :2])
        codes = labels[k].ravel()[inside]
        hit |= set((codes[codes > 0] % 10).tolist())
    assert hit == set(t["gtv"]["sectors"])


def test_epidural_gtv_stays_off_the_cord(mini_cases):
    case = mini_cases["epidural"]
    ss = read_structure_set(case.rtstruct_path)
    gtv, cord, canal = ss.roi("GTV").planes(), ss.roi("SpinalCord").planes(), \
        ss.roi("SpinalCanal").planes()
    in_canal = 0
    for z, polys in gtv.items():
        gtv_pts = np.concatenate(polys)[:, :2]
        for c in cord[z]:
            assert not points_in_poly(gtv_pts, c[:, :2]).any()
            for p in polys:
                assert not points_in_poly(c[:, :2], p[:, :2]).any()
        in_canal += int(points_in_poly(gtv_pts, canal[z][0][:, :2]).sum())
    assert in_canal > 0  # the epidural part is inside the canal


def test_volumes_in_truth_match_polygons_read_back(demo):
    t = demo.truth
    ss = read_structure_set(demo.rtstruct_path)
    thickness = t["geometry"]["ct"]["slice_thickness_mm"]
    assert {r.name for r in ss.rois} == set(t["rois"])
    for roi in ss.rois:
        expected = t["rois"][roi.name]
        volume_cc = sum(even_odd_area_mm2(p) for p in roi.planes().values()) * thickness / 1000
        assert volume_cc == pytest.approx(expected["volume_cc"], rel=0.005), roi.name
        if expected["volume_cc_analytic"] is not None:
            assert volume_cc == pytest.approx(expected["volume_cc_analytic"], rel=0.001)
    # nesting: the cord PRV lies within the canal, the GTV within the CTV, CTV within PTV
    vols = {n: v["volume_cc"] for n, v in t["rois"].items()}
    assert vols["GTV"] < vols["CTV"] < vols["PTV"]
    assert vols["SpinalCord"] < vols["SpinalCord_PRV02"] < vols["SpinalCanal"]


def test_sbrt_dose_cord_maximum_is_exact(demo):
    t = demo.truth
    dose = read_dose(demo.rtdose_path)
    cord_max = t["dose"]["cord_dmax_gy"]
    assert dose.max_gy == pytest.approx(t["prescription_gy"], abs=1e-9)
    xyz = dose.geometry.index_to_patient(np.argwhere(np.ones(dose.dose_gy.shape, bool)))
    cx, cy = t["anatomy"]["canal_centre_mm"]
    a, b = t["anatomy"]["cord_semi_axes_mm"]
    q = np.hypot((xyz[:, 0] - cx) / a, (xyz[:, 1] - cy) / b)
    values = dose.dose_gy.ravel()
    assert values[q < 1].max() == pytest.approx(cord_max, abs=1e-9)
    # every node whose trilinear cell can reach into the cord stays at or below the maximum
    reach = np.hypot(*dose.geometry.spacing_mm[:2])
    assert values[(q - 1) * min(a, b) < reach].max() <= cord_max + 1e-9
    point = np.asarray(t["dose"]["cord_dmax_point_mm"])
    k, j, i = np.round(dose.geometry.patient_to_index(point)).astype(int)
    assert dose.dose_gy[k, j, i] == pytest.approx(cord_max, abs=1e-9)


def test_analytic_dose_is_exact(mini_cases):
    case = mini_cases["analytic"]
    d = case.truth["dose"]
    assert d["exact_at_grid_nodes"] is True
    dose = read_dose(case.rtdose_path)
    xyz = dose.geometry.index_to_patient(np.argwhere(np.ones(dose.dose_gy.shape, bool)))
    expected = d["intercept_gy"] + xyz @ np.asarray(d["gradient_gy_per_mm"])
    np.testing.assert_allclose(dose.dose_gy.ravel(), expected, rtol=0, atol=1e-9)
    cord = read_structure_set(case.rtstruct_path).roi("SpinalCord")
    vertices = np.concatenate([c.points_mm for c in cord.closed_contours])
    cord_max = (d["intercept_gy"] + vertices @ np.asarray(d["gradient_gy_per_mm"])).max()
    assert cord_max == pytest.approx(d["cord_dmax_gy"], abs=1e-9)


def test_dose_32_bit(mini_cases):
    d16, d32 = mini_cases["HFS"], mini_cases["dose32"]
    ds = pydicom.dcmread(d32.rtdose_path)
    assert ds.BitsAllocated == 32 and ds.BitsStored == 32 and ds.PixelRepresentation == 0
    a, b = read_dose(d16.rtdose_path), read_dose(d32.rtdose_path)
    assert a.geometry.same_grid(b.geometry)
    np.testing.assert_allclose(a.dose_gy, b.dose_gy, atol=0.0005 + 1e-9)
    assert d32.truth["dose"]["cord_dmax_gy"] == pytest.approx(d16.truth["dose"]["cord_dmax_gy"])


@pytest.mark.parametrize("position", ["FFS", "HFP", "FFP"])
def test_patient_position_keeps_anatomy(mini_cases, position):
    ref, case = mini_cases["HFS"], mini_cases[position]
    ds = pydicom.dcmread(case.ct_paths[0])
    assert ds.PatientPosition == position
    p_ref, hu_ref = canonical(*ct_volume(ref.root)[:2])
    p_pos, hu_pos = canonical(*ct_volume(case.root)[:2])
    np.testing.assert_array_equal(p_ref, p_pos)
    np.testing.assert_array_equal(hu_ref, hu_pos)
    l_ref = canonical(*label_points(ref.root, ref.truth))
    l_pos = canonical(*label_points(case.root, case.truth))
    np.testing.assert_array_equal(l_ref[0], l_pos[0])
    np.testing.assert_array_equal(l_ref[1], l_pos[1])
    dose_ref, dose_pos = (dose_points(c) for c in (ref, case))
    np.testing.assert_array_equal(dose_ref[0], dose_pos[0])
    np.testing.assert_array_equal(dose_ref[1], dose_pos[1])
    v_ref = {n: v["volume_cc"] for n, v in ref.truth["rois"].items()}
    assert {n: v["volume_cc"] for n, v in case.truth["rois"].items()} == v_ref


# -- determinism and the bundled case -----------------------------------------------------
def test_generation_is_deterministic(tmp_path, mini_cases):
    again = generate_case(MINI.replace(name="mini_HFS"), tmp_path / "again")
    first = mini_cases["HFS"]
    names = [p.relative_to(first.root) for p in sorted(first.root.rglob("*")) if p.is_file()]
    assert names == [p.relative_to(again.root) for p in sorted(again.root.rglob("*"))
                     if p.is_file()]
    different = [str(n) for n in names
                 if not filecmp.cmp(first.root / n, again.root / n, shallow=False)]
    assert different == []


def test_bundled_demo_case_is_current(demo):
    if not DEMO_DIR.is_dir():
        pytest.fail(f"{DEMO_DIR} is missing; regenerate it: "
                    "python -m test_data.phantom test_data/demo_case --recipe demo")
    names = sorted(str(p.relative_to(demo.root)) for p in demo.root.rglob("*") if p.is_file())
    bundled = sorted(str(p.relative_to(DEMO_DIR)) for p in DEMO_DIR.rglob("*")
                     if p.is_file() and p.name != "README.md")
    assert bundled == names
    stale = [n for n in names if not filecmp.cmp(demo.root / n, DEMO_DIR / n, shallow=False)]
    assert stale == [], ("the bundled demo case differs from the generator's output; "
                         "regenerate: python -m test_data.phantom test_data/demo_case")


def test_command_line(tmp_path, capsys):
    assert phantom_main([str(tmp_path / "cli"), "--recipe", "demo", "--set", 'levels=["T10"]',
                         "--set", "gtv_sectors=[4]", "--set", "name=cli"]) == 0
    truth = json.loads((tmp_path / "cli" / "truth" / "truth.json").read_text())
    assert truth["ctv"]["expected_sectors"] == [3, 4, 5]
    assert phantom_main([str(tmp_path / "bad"), "--set", "gtv_sectors=[9]"]) == 2
    assert "gtv_sectors" in capsys.readouterr().err


# -- regions, placement, blastic lesions, thick slices ------------------------------------
@pytest.mark.parametrize("changes", [
    {"ct_slice_thickness_mm": 3.0}, {"ct_slice_thickness_mm": 6.0, "allow_thick_slices": True},
    {"lytic": True, "blastic": True}, {"tilt_deg": 20.0}, {"axial_rotation_deg": -45.0},
    {"region": "sacral"}, {"region": "lumbar", "levels": ("T12", "L1"), "treated_level": "L1"},
])
def test_recipe_rejects_bad_variant_values(changes):
    with pytest.raises(ValueError):
        PhantomRecipe(**changes)


def test_later_fields_stay_out_of_default_recipes():
    # UIDs and truth.json come from to_dict(): older cases must keep their bytes
    assert not {"region", "axial_rotation_deg", "tilt_deg", "blastic",
                "allow_thick_slices"} & set(PhantomRecipe().to_dict())
    r = PhantomRecipe(region="lumbar", tilt_deg=5, ct_slice_thickness_mm=3.0,
                      allow_thick_slices=True)
    assert (r.levels, r.treated_level) == (("L2", "L3", "L4"), "L3")
    assert PhantomRecipe.from_dict(json.loads(json.dumps(r.to_dict()))) == r


def test_placed_spine_ct_labels_and_contours_agree(tmp_path):
    # rotated and tilted: every labelled voxel is bone on the CT, every bone-HU voxel is
    # labelled, the label level follows the tilt, and the vertebra ROI contains it
    recipe = PhantomRecipe(name="placed", levels=("T10",), ct_matrix=150, gtv_sectors=(1, 2),
                           axial_rotation_deg=-20.0, tilt_deg=12.0, blastic=True)
    gen = generate_case(recipe, tmp_path / "placed")
    labels = np.load(gen.labels_path)
    affine = np.asarray(gen.truth["geometry"]["ct"]["affine_lps_mm"])
    kji = np.argwhere(labels > 0)
    xyz = (np.column_stack([kji[:, ::-1], np.ones(len(kji))]) @ affine.T)[:, :3]
    hu_vol = np.full(labels.shape, -2000.0)
    for k in range(labels.shape[0]):
        ds = pydicom.dcmread(gen.ct_paths[k])
        hu_vol[k] = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert np.all(hu_vol[labels > 0] >= 250)
    assert np.all(labels[hu_vol >= 250] > 0)
    assert np.max(hu_vol) == 1100  # sclerotic GTV bone
    # superior end turned posteriorly: posterior bone (y > canal) sits lower, by about
    # sin(12 deg) x 20-30 mm between the spinous process and the body
    yc = gen.truth["anatomy"]["canal_centre_mm"][1]
    post, ant = xyz[:, 1] > yc + 10, xyz[:, 1] < yc - 10
    assert xyz[post, 2].max() < xyz[ant, 2].max() - 3.0
    # the vertebra's polygons hold the labelled voxel centres of their plane
    rs = read_structure_set(gen.rtstruct_path)
    vb = next(r for r in rs.rois if r.name == "VB_T10")
    inside = 0
    for c in vb.contours:
        z = float(c.points_mm[0, 2])
        on_plane = np.abs(xyz[:, 2] - z) < 1e-3
        inside += int(np.count_nonzero(points_in_poly(xyz[on_plane, :2], c.points_mm[:, :2])))
    assert inside >= 0.97 * len(xyz)
