"""The parts phantom's held-out cases and shape parameters (test_data/parts_phantom).

Shapes are checked by measuring the label volume (pedicle width and convergence from
the chords of the pedicle's section, spinous incline from the principal axis of its
sagittal section, canal shape from its hole), never by reading the generator's axes.
Truth is checked against the parts: a lesion drawn in one part has that part's sector.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # test_data/ is not installed with the package
    sys.path.insert(0, str(REPO))

from test_data.parts_phantom import (  # noqa: E402
    HELDOUT,
    PART_NAMES,
    SECTOR_OF_PART,
    SHAPE_RANGES,
    SUITE,
    CaseSpec,
    VertebraParams,
    build_scene,
    canal_section,
    case_truth,
    draw_shape,
    write_case,
)
from test_data.parts_phantom._anatomy import vertebra_parts  # noqa: E402

CODE = {v: k for k, v in PART_NAMES.items()}


def _fast(spec: CaseSpec) -> CaseSpec:
    """The same case on a coarse grid, unposed (truth, not CT fidelity)."""
    return replace(spec, pixel_mm=1.0, slice_mm=2.0, noise_hu=0.0)


def _pedicle_width_and_convergence(p: VertebraParams, side: int) -> tuple[float, float]:
    """(width across the axis in mm, convergence in degrees) of one pedicle, measured
    on its labels: on the axial plane through the pedicle's centroid, the rows (0.05 mm
    grid) where the pedicle is bordered by no other part on either side; the midpoints
    of those chords lie on its axis and their length times cos(angle) is its width."""
    code = CODE["pedicle_left" if side > 0 else "pedicle_right"]
    xs = side * np.arange(0.0, 45.0, 1.0)
    ys = np.arange(-40.0, 20.0, 1.0)
    zs = np.arange(-20.0, 20.0, 0.5)
    zz, yy, xx = np.meshgrid(zs, ys, xs, indexing="ij")
    m = vertebra_parts(p, xx, yy, zz) == code
    xi, yi = xx[m], yy[m]
    fx = np.arange(xi.min() - 2.0, xi.max() + 2.0, 0.05)
    fy = np.arange(yi.min() - 2.0, yi.max() + 2.0, 0.05)
    gx, gy = np.meshgrid(fx, fy, indexing="xy")  # rows: y
    lab = vertebra_parts(p, gx, gy, np.full_like(gx, float(zz[m].mean())))
    rows_y, mids, chords = [], [], []
    for r in np.flatnonzero((lab == code).any(axis=1)):
        cols = np.flatnonzero(lab[r] == code)
        if cols.size != cols[-1] - cols[0] + 1 or lab[r, cols[0] - 1] or lab[r, cols[-1] + 1]:
            continue  # the pedicle meets the body, the pillar or a process on this row
        rows_y.append(fy[r])
        mids.append(fx[cols].mean())
        chords.append(cols.size * 0.05)
    y, mid, chord = np.array(rows_y), np.array(mids), np.array(chords)
    full = np.abs(chord - np.median(chord)) <= 0.1 * np.median(chord)  # not the tips
    assert full.sum() > 20
    angle = math.atan(float(np.polyfit(y[full], mid[full], 1)[0]))
    return float(np.median(chord[full]) * math.cos(angle)), math.degrees(side * angle)


def _spinous_incline_deg(p: VertebraParams) -> float:
    """Angle below the horizontal (posterior) of the spinous process's long axis."""
    ys, zs = np.arange(-10.0, 80.0, 0.2), np.arange(-80.0, 30.0, 0.2)
    yy, zz = np.meshgrid(ys, zs, indexing="ij")
    m = vertebra_parts(p, np.zeros_like(yy), yy, zz) == CODE["spinous_process"]
    pts = np.column_stack([yy[m], zz[m]])
    pts -= pts.mean(axis=0)
    axis = np.linalg.eigh(pts.T @ pts)[1][:, -1]
    axis = axis if axis[0] > 0 else -axis
    return math.degrees(math.atan2(-axis[1], axis[0]))


def _posterior_canal_fill(p: VertebraParams) -> float:
    """Area of the canal behind y = 0 over its bounding box: pi/4 for a round arch,
    less for a triangular one."""
    c = canal_section(p)
    i, j = np.nonzero(c.mask)
    x, y = c.x0_mm + i * c.step_mm, c.y0_mm + j * c.step_mm
    post = y > 0
    return float(post.sum() * c.step_mm ** 2 / (np.ptp(x[post]) * y[post].max()))


# ------------------------------------------------------------------ shape parameters


def test_shape_parameters_change_the_measured_anatomy() -> None:
    # asymmetric, convergent lumbar pedicles: 9 mm left, 6 mm right, 25 deg
    p = VertebraParams.for_region("lumbar", pedicle_width_mm=9.0, pedicle_width_right_mm=6.0,
                                  pedicle_convergence_deg=25.0)
    w_left, c_left = _pedicle_width_and_convergence(p, 1)
    w_right, c_right = _pedicle_width_and_convergence(p, -1)
    assert w_left == pytest.approx(9.0, abs=0.3) and w_right == pytest.approx(6.0, abs=0.3)
    assert c_left == pytest.approx(25.0, abs=1.0) and c_right == pytest.approx(25.0, abs=1.0)
    # narrow, parallel thoracic pedicles
    w, c = _pedicle_width_and_convergence(
        VertebraParams.for_region("thoracic", pedicle_width_mm=5.0, pedicle_convergence_deg=0.0),
        1)
    assert w == pytest.approx(5.0, abs=0.3) and c == pytest.approx(0.0, abs=1.0)
    # a triangular (trefoil) lumbar canal fills less of its box behind the middle
    round_, tri = (_posterior_canal_fill(VertebraParams.for_region(
        "lumbar", canal_posterior_exponent=n)) for n in (2.0, 1.2))
    assert round_ > 0.75 and tri < round_ - 0.12
    # spinous process inclination (the plate tapers: read within 3 deg)
    for incline in (30.0, 58.0):
        p = VertebraParams.for_region("thoracic", spinous_incline_deg=incline)
        assert _spinous_incline_deg(p) == pytest.approx(incline, abs=3.0)
    # a body moved forward lengthens parallel pedicles by as much
    base = VertebraParams.for_region("thoracic", pedicle_convergence_deg=0.0)
    xx, yy = np.meshgrid(np.arange(0.0, 40.0, 0.1), np.arange(-40.0, 20.0, 0.1))
    lengths = []
    for q in (base, replace(base, body_shift_mm=3.5)):
        ped = vertebra_parts(q, xx, yy, np.full_like(xx, q.pedicle_z_mm)) == CODE["pedicle_left"]
        lengths.append(float(np.ptp(yy[ped])))
    assert lengths[1] - lengths[0] == pytest.approx(3.5, abs=0.3)


def test_draw_shape_is_seeded_and_within_its_ranges() -> None:
    for region in ("cervical", "thoracic", "lumbar"):
        base = VertebraParams.for_region(region)
        a = draw_shape.__wrapped__(region, seed=7)
        assert a == draw_shape.__wrapped__(region, seed=7)
        assert a != draw_shape.__wrapped__(region, seed=8)
        drawn = dict(a)
        for name, (how, lo, hi) in SHAPE_RANGES[region].items():
            if name == "pedicle_width_right_mm":
                lo, hi = lo * drawn["pedicle_width_mm"], hi * drawn["pedicle_width_mm"]
            elif how == "scale":
                lo, hi = lo * getattr(base, name), hi * getattr(base, name)
            elif how == "add":
                lo, hi = lo + getattr(base, name), hi + getattr(base, name)
            tol = 0.26 if name.endswith("_deg") else 0.06  # rounding to 0.5 deg, 0.1 mm
            assert lo - tol <= drawn[name] <= hi + tol, (region, name)


def test_heldout_shapes_differ_from_the_suites() -> None:
    assert 16 <= len(HELDOUT) <= 20
    assert not set(HELDOUT) & set(SUITE)
    for name, spec in HELDOUT.items():
        default = VertebraParams.for_region(spec.region)
        p = spec.params()
        changed = [f.name for f in fields(p) if getattr(p, f.name) != getattr(default, f.name)]
        assert len(changed) >= 15, name
    specs = list(HELDOUT.values())
    assert {s.region for s in specs} == {"cervical", "thoracic", "lumbar"}
    assert {"body_lateral", "body_central", "body_half", "pedicle", "pedicle_whole", "lamina",
            "transverse_process", "spinous"} <= {s.lesion for s in specs}
    assert any(s.lesion == "pedicle_whole" and s.density == "lytic" for s in specs)
    assert any(s.lesion == "body_half" and s.density == "lytic" for s in specs)
    assert any(s.epidural and s.canal_roi == "thecal_sac" for s in specs)
    assert any(s.paraspinal for s in specs)
    assert any(abs(s.axial_rotation_deg) >= 15 for s in specs)
    assert any(s.level_shift_mm != (0.0, 0.0) for s in specs)
    assert all(1.0 <= s.slice_mm <= 3.0 for s in specs) and len({s.slice_mm for s in specs}) >= 4
    # spellings the suite does not use
    assert len({s.vertebra_roi for s in specs} - {s.vertebra_roi for s in SUITE.values()}) >= 4
    assert len({s.gtv_roi for s in specs}) >= 4


def test_heldout_roi_names_are_spellings_contourqa_reads() -> None:
    from contourqa.structures import Role, classify_name

    for spec in HELDOUT.values():
        gtv = classify_name(spec.gtv_roi.format(level=spec.level))
        assert gtv.role is Role.GTV, spec.gtv_roi
        assert spec.vertebra_roi is not None
        vb = classify_name(spec.vertebra_roi.format(level=spec.level))
        assert vb.role is Role.VERTEBRA and vb.level == spec.level, spec.vertebra_roi


def test_suite_specs_keep_their_key_and_json() -> None:
    # the noise seed, the UIDs and truth.json of the suite do not see the new fields
    new = {"anatomy", "level_shift_mm", "gtv_roi"}
    for name, spec in SUITE.items():
        if name == "C5_body_paraspinal_rot11_tiltm4":
            # added after the new fields, with its drawn shape written out: its key
            # carries the shape (the earlier cases' keys are untouched)
            assert set(spec.extras()) == {"anatomy"} and spec.key() != repr(spec)
            continue
        assert spec.key() == repr(spec) and spec.extras() == {}
        assert set(spec.to_json()) == set(asdict(spec)) - new
        assert not new & set(repr(spec).split("(", 1)[1].replace("=", " ").split())


# ------------------------------------------------------------------ held-out truth


def _sector_lut() -> np.ndarray:
    lut = np.zeros(256, dtype=np.uint8)
    for k, s in SECTOR_OF_PART.items():
        lut[k] = s
    return lut


def test_heldout_truth_is_the_parts() -> None:
    # the narrower right pedicle, replaced by a lytic lesion: sector 6, all of it
    sc = build_scene(_fast(HELDOUT["L1_pedicle_whole_right_lytic_asym"]))
    t = case_truth(sc)
    ped = (sc.parts == CODE["pedicle_right"]) & (sc.level_index == sc.treated_index)
    assert t.gtv_sectors == (6,)
    assert set(np.unique(_sector_lut()[sc.parts[sc.gtv]])) == {6}
    assert (sc.gtv & ped).sum() == ped.sum()
    left = (sc.parts == CODE["pedicle_left"]) & (sc.level_index == sc.treated_index)
    assert left.sum() > 1.3 * ped.sum()  # 9 mm against 6 mm
    # a lamina under a triangular canal: sector 3
    t = case_truth(build_scene(_fast(HELDOUT["L3_lamina_left_trefoil"])))
    assert t.gtv_sectors == (3,) and not t.epidural
    # the scoliotic case, unposed: its neighbours sit 5 mm left and 3 mm right
    spec = replace(_fast(HELDOUT["L3_pedicle_left_rot15_scoliotic"]), axial_rotation_deg=0.0,
                   tilt_deg=0.0)
    sc = build_scene(spec)
    assert case_truth(sc).gtv_sectors == (2,)
    xs = sc.origin_mm[0] + sc.spacing_mm[0] * np.arange(sc.shape[2])
    body_x = [float(xs[np.nonzero((sc.parts == CODE["body"]) & (sc.level_index == i))[2]].mean())
              for i in range(3)]
    assert body_x[0] - body_x[1] == pytest.approx(5.0, abs=0.3)
    assert body_x[2] - body_x[1] == pytest.approx(-3.0, abs=0.3)
    # the canal follows: its centre at the upper body's middle is 5 mm left too
    k_up = int(np.argmin(np.abs(sc.origin_mm[2] + sc.spacing_mm[2] * np.arange(sc.shape[0])
                                - sc.offset[2] - sc.levels[0].z_mm)))
    canal_x = float(xs[np.nonzero(sc.canal[k_up])[1]].mean())
    assert canal_x - body_x[1] == pytest.approx(5.0, abs=0.6)


def test_a_heldout_case_writes_its_names(tmp_path: Path) -> None:
    from contourqa.io.rtstruct import read_structure_set

    truth = write_case(HELDOUT["C7_body_half_right_lytic"], tmp_path, name="h")
    assert truth.gtv_sectors == (1,) and truth.level == "C7"
    names = {r.name for r in read_structure_set(tmp_path / "dicom" / "RS.dcm").rois}
    assert {"GTV_C7", "Vertebra_C6", "Vertebra_C7", "Vertebra_T1"} <= names
    assert truth.roi_names["gtv"] == "GTV_C7"
    tj = json.loads((tmp_path / "truth" / "truth.json").read_text())
    assert tj["spec"]["anatomy"] == [list(kv) for kv in HELDOUT["C7_body_half_right_lytic"].anatomy]


def test_command_line_lists_the_heldout_cases() -> None:
    import subprocess

    out = subprocess.run([sys.executable, "-m", "test_data.parts_phantom", "--list", "--suite",
                          "heldout"], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == list(HELDOUT)


def _expected_sectors(spec: CaseSpec) -> tuple[int, ...]:
    """ISRC sectors of a lesion kind by anatomy (knowledge base 1a), by hand."""
    left = spec.side == "left"
    by_kind = {"pedicle": (2,) if left else (6,), "pedicle_whole": (2,) if left else (6,),
               "lamina": (3,) if left else (5,), "transverse_process": (3,) if left else (5,),
               "spinous": (4,), "body_pedicle": (1, 2) if left else (1, 6)}
    return (1,) if spec.lesion.startswith("body_") and spec.lesion != "body_pedicle" \
        else by_kind[spec.lesion]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HELDOUT))
def test_every_heldout_case_has_the_truth_its_parts_give(name: str) -> None:
    spec = HELDOUT[name]
    t = case_truth(build_scene(_fast(spec)))
    assert t.gtv_sectors == _expected_sectors(spec)
    assert t.borderline_sectors == ()
    assert t.epidural == spec.epidural and t.paraspinal == spec.paraspinal
    assert all(v == 0.0 for v in t.gtv_other_levels_cc.values())
