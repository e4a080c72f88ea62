"""MR-CT fusion at the treated level against constructed truth.

The MR is the demo phantom's CT with a T2-like contrast (tests/_mr_phantom.py), on its
own grid in its own frame of reference (4 deg about z, 2 deg about x and (11, -6, 35)
mm from the CT's: the REG matrix).  Only the slab of T10, between the mid-planes of
its discs (z -12..12 mm; T10 is z -8.25..8.25, its discs 6 mm), is moved by a known
rigid transform about the canal centre (0, 15, 0): the registration is exact
everywhere else.  Truth: the registered MR shows T10 at ``R (p - c) + c + t`` where the
CT shows it at ``p``; the expected displacement of the measured box's centre ``b`` is
``R (b - c) + c + t - b``.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from contourqa.case import Case, load_case
from contourqa.findings import Status
from contourqa.fusion import FusionReading, mr_to_ct_matrix
from contourqa.io.discovery import discover
from contourqa.io.images import ImageSeries
from contourqa.io.registration import Registration, RigidTransform, read_registration
from contourqa.rules import RuleOptions
from contourqa.rules.fusion import FUSION_CODE, compute_fusion, fusion_findings
from contourqa.rules.model import Profile
from contourqa.structures import RoleTable, assign_roles
from _mr_phantom import (MR_FROM_CT, LocalMove, crop_ct, mr_series, rigid, rotation, write_mr,
                         write_reg)

DEMO = Path(__file__).resolve().parents[1] / "test_data" / "demo_case" / "dicom"
CANAL = np.array([0.0, 15.0, 0.0])
MR_FRAME = "1.2.3.4.5.6"


@functools.cache
def _demo() -> tuple[Case, RoleTable]:
    _, cases = discover(DEMO)
    case = load_case(cases[0])
    assert case.structure_set is not None
    return case, assign_roles(case.structure_set.rois)


@functools.cache
def _small_ct() -> ImageSeries:
    # the MR's field of view: the spine region only (faster to build)
    ct = _demo()[0].image
    assert ct is not None
    return crop_ct(ct, lower_mm=(-38.0, -28.0), upper_mm=(38.0, 56.0))


def _reg(ct_frame: str, frame: str = MR_FRAME) -> Registration:
    return Registration(path=Path("REG.dcm"), sop_instance_uid="1.2.3",
                        frame_of_reference_uid=ct_frame,
                        transforms=(RigidTransform(ct_frame, np.eye(4), "RIGID"),
                                    RigidTransform(frame, np.linalg.inv(MR_FROM_CT), "RIGID")))


@functools.cache
def _mr(axis: str, deg: float, shift: tuple[float, float, float]) -> ImageSeries:
    move = LocalMove(centre=CANAL, r=rotation(axis, deg), t=np.asarray(shift, float),
                     z0=-12.0, z1=12.0)
    return mr_series(_small_ct(), move=move, frame_uid=MR_FRAME)


@functools.cache
def _reading(axis: str, deg: float, shift: tuple[float, float, float], level: str | None = None
             ) -> FusionReading:
    case, roles = _demo()
    assert case.image is not None and case.image.frame_of_reference_uid
    mr = _mr(axis, deg, shift)
    case = replace(case, secondary_images=(mr,),
                   registrations=(_reg(case.image.frame_of_reference_uid),))
    return compute_fusion(case, roles, level=level, options=RuleOptions())


def _truth(reading: FusionReading, axis: str, deg: float, shift: tuple[float, float, float]
           ) -> np.ndarray:
    assert reading.box is not None
    b = (reading.box.lower_mm + reading.box.upper_mm) / 2
    return rotation(axis, deg) @ (b - CANAL) + CANAL + np.asarray(shift) - b


def _options(**params: float) -> RuleOptions:
    return RuleOptions(profile=Profile(params={FUSION_CODE: params}))


def test_reg_matrix_conventions(tmp_path: Path) -> None:
    ct_from_mr = np.linalg.inv(MR_FROM_CT)
    # the usual export: the REG in the CT's frame, the MR item maps MR -> CT
    m, reg = mr_to_ct_matrix([_reg("CT")], ct_frame="CT", mr_frame=MR_FRAME)
    assert reg is not None and np.allclose(m, ct_from_mr)
    # the REG in the MR's frame: its CT item maps CT -> MR, so the MR -> CT map inverts it
    in_mr = Registration(path=Path("r"), sop_instance_uid="2", frame_of_reference_uid=MR_FRAME,
                         transforms=(RigidTransform("CT", MR_FROM_CT, "RIGID"),))
    assert np.allclose(mr_to_ct_matrix([in_mr], ct_frame="CT", mr_frame=MR_FRAME)[0], ct_from_mr)
    # a third frame: CT -> X by A and MR -> X by B give MR -> CT = inv(A) B
    a = rigid(rotation("y", 10.0), [1.0, 2.0, 3.0])
    third = Registration(path=Path("r"), sop_instance_uid="3", frame_of_reference_uid="X",
                         transforms=(RigidTransform("CT", a, "RIGID"),
                                     RigidTransform(MR_FRAME, a @ ct_from_mr, "RIGID")))
    assert np.allclose(mr_to_ct_matrix([third], ct_frame="CT", mr_frame=MR_FRAME)[0], ct_from_mr)
    assert mr_to_ct_matrix([third], ct_frame="CT", mr_frame="other") is None
    same = mr_to_ct_matrix([], ct_frame="CT", mr_frame="CT")
    assert same is not None and np.allclose(same[0], np.eye(4)) and same[1] is None
    # through the files: a REG written in the MR's frame, read back
    path = write_reg(tmp_path / "REG.dcm", ct_file=DEMO / "CT_001.dcm", mr_frame=MR_FRAME,
                     key="conv", reg_in_mr_frame=True)
    ct_frame = str(_demo()[0].image.frame_of_reference_uid)  # type: ignore[union-attr]
    got = mr_to_ct_matrix([read_registration(path)], ct_frame=ct_frame, mr_frame=MR_FRAME)
    assert got is not None and np.allclose(got[0], ct_from_mr, atol=1e-9)


@pytest.mark.parametrize("shift, warns", [
    ((0.5, 0.0, 0.0), False),   # 0.5 mm left: within 1 mm
    ((0.0, 1.0, 0.0), None),    # 1 mm posterior: at the threshold (see the next test)
    ((0.0, 0.0, 2.0), True),    # 2 mm superior
])
def test_shift_at_the_treated_level(shift: tuple[float, float, float], warns: bool | None
                                    ) -> None:
    reading = _reading("z", 0.0, shift)
    assert reading.box is not None and reading.box.level == "T10"
    assert reading.box.roi_name == "VB_T10"
    (s,) = reading.series
    assert s.residual is not None and s.registration == "REG.dcm"
    truth = _truth(reading, "z", 0.0, shift)
    err = float(np.linalg.norm(s.residual.translation_mm - truth))
    assert err < 0.3, (s.residual.translation_mm, truth)
    assert s.residual.rotation_deg < 0.3
    (f,) = fusion_findings(reading, options=RuleOptions())
    assert f.code == FUSION_CODE and f.structure == "VB_T10" and f.unit == "mm"
    assert f.value == pytest.approx(s.residual.shift_mm, abs=1e-3) and f.limit == 1.0
    if warns is not None:
        assert f.status is (Status.WARN if warns else Status.PASS)
    assert f"shifted by {s.residual.shift_mm:.2f} mm" in f.message


def test_the_finding_follows_the_threshold_in_data() -> None:
    # 1 mm true shift, measured within 0.3 mm: a limit 0.3 mm above passes, 0.3 mm below warns
    reading = _reading("z", 0.0, (0.0, 1.0, 0.0))
    (f,) = fusion_findings(reading, options=_options(max_shift_mm=1.3))
    assert f.status is Status.PASS and "within the limits 1.3 mm" in f.message
    (f,) = fusion_findings(reading, options=_options(max_shift_mm=0.7))
    assert f.status is Status.WARN and "the shift exceeds" in f.message
    # and at the shipped 1 mm: raised exactly when the measured shift exceeds it
    (f,) = fusion_findings(reading, options=RuleOptions())
    assert f.value is not None
    assert (f.status is Status.WARN) == (f.value > 1.0)


@pytest.mark.parametrize("axis, deg", [("z", 1.0), ("x", 2.0), ("y", 3.0)])
def test_rotation_at_the_treated_level(axis: str, deg: float) -> None:
    reading = _reading(axis, deg, (0.0, 0.0, 0.0))
    (s,) = reading.series
    assert s.residual is not None
    assert s.residual.rotation_deg == pytest.approx(deg, abs=0.25)
    axis_vec = {"x": [1, 0, 0], "y": [0, 1, 0], "z": [0, 0, 1]}[axis]
    assert abs(float(np.dot(s.residual.rotation_axis, axis_vec))) > 0.95
    truth = _truth(reading, axis, deg, (0.0, 0.0, 0.0))
    assert float(np.linalg.norm(s.residual.translation_mm - truth)) < 0.3
    (f,) = fusion_findings(reading, options=RuleOptions())
    if deg >= 2.0:  # 2 and 3 deg exceed 1 deg; the shift at the centre is under 1 mm
        assert f.status is Status.WARN and "the rotation exceeds" in f.message
        assert f.unit == "deg" and f.value == pytest.approx(s.residual.rotation_deg, abs=1e-3)
    # the threshold on each side of the 1 deg truth
    (f,) = fusion_findings(reading, options=_options(max_rotation_deg=deg + 0.3))
    assert f.status is Status.PASS
    (f,) = fusion_findings(reading, options=_options(max_rotation_deg=deg - 0.3))
    assert f.status is Status.WARN


def test_good_elsewhere_is_no_excuse() -> None:
    """T10 moved 2 mm superior: T9 (--level T9), untouched, lines up; T10 is the finding."""
    at_t9 = _reading("z", 0.0, (0.0, 0.0, 2.0), level="T9")
    assert at_t9.box is not None and at_t9.box.roi_name == "VB_T09"
    (s9,) = at_t9.series
    assert s9.residual is not None and s9.residual.shift_mm < 0.2
    assert fusion_findings(at_t9, options=RuleOptions())[0].status is Status.PASS
    at_t10 = _reading("z", 0.0, (0.0, 0.0, 2.0))
    (s10,) = at_t10.series
    assert s10.residual is not None and s10.residual.shift_mm == pytest.approx(2.0, abs=0.3)
    assert fusion_findings(at_t10, options=RuleOptions())[0].status is Status.WARN


def _status(case: Case, roles: RoleTable | None = None) -> tuple[Status, str]:
    reading = compute_fusion(case, _demo()[1] if roles is None else roles, level=None,
                             options=RuleOptions())
    (f,) = fusion_findings(reading, options=RuleOptions())
    return f.status, f.message


def test_without_mr_not_applicable_unless_structures_came_from_elsewhere() -> None:
    case, _ = _demo()
    ct_frame = case.image.frame_of_reference_uid  # type: ignore[union-attr]
    assert ct_frame
    status, msg = _status(case)
    assert status is Status.NOT_APPLICABLE and "No MR series" in msg
    # the cord drawn in another frame, no MR and no REG: it concerns the case, unchecked
    ss = case.structure_set
    assert ss is not None
    rois = tuple(replace(r, frame_of_reference_uid=MR_FRAME) if r.name == "SpinalCord" else r
                 for r in ss.rois)
    moved = replace(case, structure_set=replace(ss, rois=rois))
    status, msg = _status(moved)
    assert status is Status.NOT_EVALUATED and "SpinalCord" in msg
    assert "no spatial registration" in msg
    # with a REG to that frame but its MR missing: still not evaluated
    status, msg = _status(replace(moved, registrations=(_reg(ct_frame),)))
    assert status is Status.NOT_EVALUATED and "no MR series of it" in msg
    # a REG to a frame whose images are not in the folder, every ROI on the CT
    status, msg = _status(replace(case, registrations=(_reg(ct_frame),)))
    assert status is Status.NOT_EVALUATED and "no image series of that frame" in msg


def test_mr_that_cannot_be_measured_is_not_evaluated() -> None:
    case, roles = _demo()
    ct_frame = case.image.frame_of_reference_uid  # type: ignore[union-attr]
    assert ct_frame
    mr = mr_series(_small_ct(), move=None, frame_uid=MR_FRAME)
    # an MR with no registration to the CT
    status, msg = _status(replace(case, secondary_images=(mr,)))
    assert status is Status.NOT_EVALUATED and "no spatial registration links" in msg
    # the cord drawn on the MR (its ROI in the MR frame), the MR here and registered: measured
    ss = case.structure_set
    assert ss is not None
    on_mr = tuple(replace(r, frame_of_reference_uid=MR_FRAME) if r.name == "SpinalCord" else r
                  for r in ss.rois)
    drawn = replace(case, structure_set=replace(ss, rois=on_mr), secondary_images=(mr,),
                    registrations=(_reg(ct_frame),))
    got = fusion_findings(compute_fusion(drawn, roles, level=None, options=RuleOptions()),
                          options=RuleOptions())
    assert [f.status for f in got] == [Status.PASS]
    # one MR measured, a second registered frame without images: that one is not evaluated
    two = replace(case, secondary_images=(mr,), registrations=(
        _reg(ct_frame), _reg(ct_frame, frame="9.8.7")))
    reading = compute_fusion(two, roles, level=None, options=RuleOptions())
    got = fusion_findings(reading, options=RuleOptions())
    assert [f.status for f in got] == [Status.PASS, Status.NOT_EVALUATED]
    assert "9.8.7" in got[1].message and "no image series of it" in got[1].message
    # registered, but no target and no vertebra ROI: the treated level is unknown
    linked = replace(case, secondary_images=(mr,), registrations=(_reg(ct_frame),))
    status, msg = _status(linked, RoleTable(()))
    assert status is Status.NOT_EVALUATED and "treated level is unknown" in msg
    # registered, but the MR's field of view misses the treated vertebra
    far = replace(mr, geometry=replace(mr.geometry, origin_mm=mr.geometry.origin_mm
                                       + np.array([0.0, 0.0, 200.0])))
    status, msg = _status(replace(linked, secondary_images=(far,)))
    assert status is Status.NOT_EVALUATED and "covers 0%" in msg


def test_thick_slices_and_half_a_vertebra_along_the_spine() -> None:
    """A clinical axial MR (1.2 x 1.2 mm, 3 mm slices, each averaging its thickness)
    with T10 shifted 1 mm posterior; a sagittal one (0.8 mm, 3 mm slices) with T10 2 mm
    superior; and T10 shifted 10 mm along the spine, where a
    local fit from the REG alone settled on 0.3 mm (vertebrae repeat: the search along
    z finds it)."""
    case, roles = _demo()
    assert case.image is not None and case.image.frame_of_reference_uid
    reg = (_reg(case.image.frame_of_reference_uid),)
    # sagittal grid: columns posterior, rows inferior, slices left
    sagittal = np.column_stack([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    for spacing, shift, direction in (((1.2, 1.2, 3.0), (0.0, 1.0, 0.0), None),
                                      ((0.8, 0.8, 3.0), (0.0, 0.0, 2.0), sagittal),
                                      ((0.9, 0.9, 1.5), (0.0, 0.0, 10.0), None)):
        move = LocalMove(centre=CANAL, r=np.eye(3), t=np.asarray(shift), z0=-12.0, z1=12.0)
        mr = mr_series(_small_ct(), move=move, frame_uid=MR_FRAME, spacing_mm=spacing,
                       direction=direction)
        reading = compute_fusion(replace(case, secondary_images=(mr,), registrations=reg),
                                 roles, level=None, options=RuleOptions())
        (s,) = reading.series
        assert s.residual is not None, s.reason
        truth = _truth(reading, "z", 0.0, shift)
        assert float(np.linalg.norm(s.residual.translation_mm - truth)) < 0.3, spacing
    # the 10 mm one warns, with its size
    (f,) = fusion_findings(reading, options=RuleOptions())
    assert f.status is Status.WARN and f.value == pytest.approx(10.0, abs=0.3)
