"""Every fraction number (issue 18 item 4): the organs at risk near spine targets get
every published value of the knowledge base for 1-5 fractions, and the rest is listed
as a gap, not evaluated by design.

Expected limits are written here from the knowledge base (section 3), not read from
the shipped TOML files, so a wrong number in the data fails a test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from _dvh_phantoms import box_dose, circle, make_roi, ngon_area
from test_dose_checks import TableContext

from contourqa.constraints import (
    ConstraintFileError,
    CoverageGap,
    builtin_sets,
    check_coverage_gaps,
    coverage_gaps,
    select_sets,
)
from contourqa.dose_checks import DoseCheckOptions
from contourqa.dose_checks._context import DoseContext
from contourqa.dose_checks.constraint_checks import (
    evaluate_constraint_sets,
    evaluate_coverage_gaps,
)
from contourqa.findings import Finding, Status
from contourqa.structures import Role, assign_roles

README = Path(__file__).parents[1] / "README.md"
RX_GY = 24.0  # 24 Gy in 2 fractions (KB 0.4); also used for the 1-fx nerve-root row

# (set, check, fractions, ROI name, role, metric compared, limit, unit, severity)
# BMC Cancer 2025 Table 1 (KB 3d, C); nerve root / plexus D0.03cc < 110% of the
# prescription (105-110%: a warning).  Cox 2012 (KB 3d, C): cohort medians, warnings.
NEW = [
    ("bmc2025", "cauda_equina_v003cc", 2, "CaudaEquina", Role.CAUDA_EQUINA, "V22Gy", 0.03,
     "cc", Status.FAIL),
    ("bmc2025", "cauda_equina_v035cc", 2, "CaudaEquina", Role.CAUDA_EQUINA, "V16.5Gy", 0.35,
     "cc", Status.FAIL),
    ("bmc2025", "esophagus_v2_5cc", 2, "Esophagus", Role.ESOPHAGUS, "V19Gy", 2.5, "cc",
     Status.FAIL),
    ("bmc2025", "esophagus_v3_8cc", 2, "Esophagus", Role.ESOPHAGUS, "V16.5Gy", 3.8, "cc",
     Status.FAIL),
    ("bmc2025", "esophagus_v003cc", 2, "Esophagus", Role.ESOPHAGUS, "V27.5Gy", 0.03, "cc",
     Status.FAIL),
    ("bmc2025", "nerve_dpoint_rx", 2, "BrachialPlex_L", Role.BRACHIAL_PLEXUS, "D0.03cc",
     1.10 * RX_GY, "Gy", Status.FAIL),
    ("bmc2025", "nerve_dpoint_rx", 2, "SacralPlex", Role.SACRAL_PLEXUS, "D0.03cc",
     1.10 * RX_GY, "Gy", Status.FAIL),
    ("bmc2025", "nerve_dpoint_rx", 2, "Nrv_Root", Role.NERVE_ROOT, "D0.03cc", 1.10 * RX_GY,
     "Gy", Status.FAIL),
    ("bmc2025", "nerve_dpoint_rx", 1, "Nrv_Root", Role.NERVE_ROOT, "D0.03cc", 1.10 * RX_GY,
     "Gy", Status.FAIL),
    ("cox2012", "esophagus_v12gy", 1, "Esophagus", Role.ESOPHAGUS, "V12Gy", 3.78, "cc",
     Status.WARN),
    ("cox2012", "esophagus_v15gy", 1, "Esophagus", Role.ESOPHAGUS, "V15Gy", 1.87, "cc",
     Status.WARN),
    ("cox2012", "esophagus_v20gy", 1, "Esophagus", Role.ESOPHAGUS, "V20Gy", 0.11, "cc",
     Status.WARN),
    ("cox2012", "esophagus_v22gy", 1, "Esophagus", Role.ESOPHAGUS, "V22Gy", 0.0, "cc",
     Status.WARN),
    ("cox2012", "esophagus_d2_5cc", 1, "Esophagus", Role.ESOPHAGUS, "D2.5cc", 14.02, "Gy",
     Status.WARN),
]

#: The gaps the knowledge base leaves (KB 3b: TG-101 1/3/5 fx; 3d: BMC 2025 1/2 fx;
#: KB 8: bowel, kidneys and skin named only): role -> fraction numbers.
KB_GAPS = {
    Role.CAUDA_EQUINA: {4}, Role.SACRAL_PLEXUS: {4}, Role.ESOPHAGUS: {4},
    Role.BRACHIAL_PLEXUS: {4}, Role.NERVE_ROOT: {3, 4, 5},
    Role.BOWEL_SMALL: {1, 2, 3, 4, 5}, Role.BOWEL_LARGE: {1, 2, 3, 4, 5},
    Role.KIDNEY: {1, 2, 3, 4, 5}, Role.SKIN: {1, 2, 3, 4, 5},
}


def _findings(code: str, found: list[Finding], roi: str) -> list[Finding]:
    return [f for f in found if f.code == code and f.structure == roi]


@pytest.mark.parametrize("side", ["over", "under"])
@pytest.mark.parametrize("set_name, check, n, roi, role, metric, limit, unit, severity", NEW,
                         ids=[f"{r[0]}-{r[1]}-{r[2]}fx-{r[3]}" for r in NEW])
def test_new_constraint_fails_over_and_passes_under(
        side: str, set_name: str, check: str, n: int, roi: str, role: Role, metric: str,
        limit: float, unit: str, severity: Status) -> None:
    """Each new constraint (automatic ones through ``--constraints auto``, Cox 2012 by
    name): a value over its limit fails (Cox: warns), one under it passes."""
    step = 0.01 if unit == "cc" else 0.1
    value = limit + step if side == "over" else max(limit - step, 0.0)
    if unit == "Gy" and side == "under" and set_name == "bmc2025":
        value = 1.04 * RX_GY  # below the 105% start of the published 105-110% range
    ctx = TableContext({roi: {metric: value}}, {roi: role}, n_fractions=n,
                       prescription_gy=RX_GY)
    sets = select_sets(None) if set_name == "bmc2025" else select_sets([set_name])
    (f,) = _findings(f"dose.{set_name}.{check}", evaluate_constraint_sets(ctx, sets), roi)
    assert f.limit == pytest.approx(limit) and f.unit == unit
    assert f.value == pytest.approx(value)
    assert f.status is (severity if side == "over" else Status.PASS), f.message
    assert "status C" in (f.source or "")


def test_nerve_range_between_105_and_110_percent_warns() -> None:
    ctx = TableContext({"SacralPlex": {"D0.03cc": 1.07 * RX_GY}},
                       {"SacralPlex": Role.SACRAL_PLEXUS}, n_fractions=2, prescription_gy=RX_GY)
    (f,) = _findings("dose.bmc2025.nerve_dpoint_rx", evaluate_constraint_sets(
        ctx, select_sets(None)), "SacralPlex")
    assert f.status is Status.WARN
    assert "published range" in f.message


def _covered(n: int) -> set[Role]:
    """Roles with a confirmed or secondary value in ``--constraints auto`` for n fx."""
    return {r for cs in select_sets(None) for c in cs.for_fractions(n) if c.status != "U"
            for r in c.roles}


def test_two_and_four_fractions_get_more_than_the_cord() -> None:
    cord = {Role.SPINAL_CORD, Role.CORD_PRV, Role.THECAL_SAC}
    assert _covered(2) == cord | {Role.CAUDA_EQUINA, Role.ESOPHAGUS, Role.BRACHIAL_PLEXUS,
                                  Role.SACRAL_PLEXUS, Role.NERVE_ROOT}
    # 4 fx: no published value beyond the cord and thecal sac in the knowledge base; every
    # other organ is a listed gap, reported not evaluated by design (test below)
    assert _covered(4) == cord
    gapped_at_4 = {r for g in coverage_gaps() if 4 in g.fractions for r in g.roles}
    assert gapped_at_4 == {r for r, fx in KB_GAPS.items() if 4 in fx}


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_every_organ_is_covered_or_a_listed_gap(n: int) -> None:
    listed = {r for g in coverage_gaps() if n in g.fractions for r in g.roles}
    assert listed == {r for r, fx in KB_GAPS.items() if n in fx}
    for role in KB_GAPS:
        assert (role in _covered(n)) != (role in listed), (role, n)


def test_four_fraction_case_reports_its_gaps() -> None:
    """4 fx with an esophagus, both kidneys and a cauda equina contoured: the cord is
    judged, each contoured organ without a published value is not evaluated by design,
    the absent ones are not applicable."""
    values = {"SpinalCord": {"Dmax": 20.0}, "Esophagus": {}, "Kidney_L": {}, "Kidney_R": {},
              "CaudaEquina": {}}
    roles = {"SpinalCord": Role.SPINAL_CORD, "Esophagus": Role.ESOPHAGUS,
             "Kidney_L": Role.KIDNEY, "Kidney_R": Role.KIDNEY, "CaudaEquina": Role.CAUDA_EQUINA}
    ctx = TableContext(values, roles, n_fractions=4)
    sets = select_sets(None)
    judged = evaluate_constraint_sets(ctx, sets)
    assert [(f.code, f.status) for f in judged if f.structure == "SpinalCord"] == [
        ("dose.hytec2021.cord_pmax", Status.PASS)]  # 20 Gy <= 23 Gy (KB 3a)
    gaps = {(f.code, f.structure): f.status for f in evaluate_coverage_gaps(ctx, sets)}
    assert gaps == {
        ("dose.gap.cauda_equina", "CaudaEquina"): Status.NOT_EVALUATED,
        ("dose.gap.esophagus", "Esophagus"): Status.NOT_EVALUATED,
        ("dose.gap.kidney", "Kidney_L"): Status.NOT_EVALUATED,
        ("dose.gap.kidney", "Kidney_R"): Status.NOT_EVALUATED,
        ("dose.gap.sacral_plexus", None): Status.NOT_APPLICABLE,
        ("dose.gap.brachial_plexus", None): Status.NOT_APPLICABLE,
        ("dose.gap.nerve_root", None): Status.NOT_APPLICABLE,
        ("dose.gap.bowel", None): Status.NOT_APPLICABLE,
        ("dose.gap.skin", None): Status.NOT_APPLICABLE,
    }
    (f,) = [f for f in evaluate_coverage_gaps(ctx, sets) if f.structure == "Esophagus"]
    assert "not evaluated by design" in f.message and "4 fraction" in f.message


def test_an_institutional_value_closes_the_gap(tmp_path: Path) -> None:
    path = tmp_path / "kidney.toml"
    path.write_text("""
[set]
name = "institution_k"
title = "Institution K kidney"
citation = "Institution K protocol v1"
point_volume_cc = 0.0
point_definition = "Dmax"
point_status = "C"

[[constraint]]
id = "kidney_v10_4fx"
check = "kidney_v10"
roles = ["kidney"]
metric = "V10Gy%"
comparison = "<"
limit_percent = 33.0
fractions = [4]
source = "Institution K protocol v1"
table = "Table 1"
status = "C"
""", encoding="utf-8")
    ctx = TableContext({"Kidney_L": {"V10Gy%": 20.0}}, {"Kidney_L": Role.KIDNEY}, n_fractions=4)
    sets = select_sets(None, files=[path])
    assert not [f for f in evaluate_coverage_gaps(ctx, sets) if f.code == "dose.gap.kidney"]
    (f,) = [f for f in evaluate_constraint_sets(ctx, sets) if f.structure == "Kidney_L"]
    assert (f.code, f.status) == ("dose.institution_k.kidney_v10", Status.PASS)


def test_a_gap_that_a_set_covers_is_refused() -> None:
    wrong = CoverageGap(id="esophagus", name="esophagus", roles=(Role.ESOPHAGUS,),
                        fractions=(3, 4), kb_section="3b", reason="test")
    with pytest.raises(ConstraintFileError, match="tg101 constraint 'esophagus_v5cc_3fx'"):
        check_coverage_gaps([wrong], builtin_sets().values(), origin="gaps.toml")


def test_absent_regional_organ_is_not_applicable_absent_cord_is_not_evaluated() -> None:
    # 3 fx, TG-101: no esophagus/plexus/cauda ROI does not concern a thoracic plan; no
    # cord ROI leaves the case incomplete
    ctx = TableContext({"SpinalCord": {"Dmax": 15.0, "V18Gy": 0.0, "V12.3Gy": 0.1}},
                       {"SpinalCord": Role.SPINAL_CORD}, n_fractions=3)
    absent = {f.code: f.status for f in evaluate_constraint_sets(ctx, (builtin_sets()["tg101"],))
              if f.structure is None}
    assert absent == {f"dose.tg101.{c}": Status.NOT_APPLICABLE for c in (
        "cauda_equina_v5cc", "cauda_equina_pmax", "sacral_plexus_v5cc", "sacral_plexus_pmax",
        "esophagus_v5cc", "esophagus_pmax", "brachial_plexus_v3cc", "brachial_plexus_pmax")}
    ctx = TableContext({"Esophagus": {"Dmax": 10.0, "V17.7Gy": 0.0}},
                       {"Esophagus": Role.ESOPHAGUS}, n_fractions=3)
    found = evaluate_constraint_sets(ctx, (builtin_sets()["hytec2021"],))
    assert [(f.code, f.status) for f in found] == [("dose.hytec2021.cord_pmax",
                                                    Status.NOT_EVALUATED)]


# ----------------------------------------------------------------- analytic dose
# Two cylinders along z (radius 6 mm, planes every 2 mm from z = -30 to 30 mm, so the
# slab model spans -31 to 31 mm with half-slice end caps) in a dose that rises linearly
# with z: D(z) = base + 0.25 Gy/mm * z, exact under trilinear interpolation.  Then
# V(D) = A * (31 - (D - base) / 0.25) mm^3 and D_v = base + 0.25 * (31 - v / A) Gy,
# with A the area of the 720-gon.
_R_MM, _SLOPE = 6.0, 0.25
_AREA_MM2 = ngon_area(_R_MM)


def _v_cc(dose_gy: float, base_gy: float) -> float:
    z = (dose_gy - base_gy) / _SLOPE
    return _AREA_MM2 * max(0.0, 31.0 - max(z, -31.0)) / 1000.0


def _d_gy(volume_cc: float, base_gy: float) -> float:
    return base_gy + _SLOPE * (31.0 - volume_cc * 1000.0 / _AREA_MM2)


def _analytic_ctx(base_gy: float, *, n_fractions: int, extra: tuple[str, ...] = ()
                  ) -> DoseContext:
    planes = np.arange(-30.0, 30.1, 2.0)
    names = ("Esophagus", "SacralPlex", *extra)
    rois = [make_roi([(float(z), [circle(-20.0 + 14.0 * i, 0.0, _R_MM)]) for z in planes],
                     name=name, number=i + 1) for i, name in enumerate(names)]
    dose = box_dose(lambda x, y, z: base_gy + _SLOPE * z, spacing=2.0, half_extent=40.0)
    plan = SimpleNamespace(n_fractions=n_fractions, prescription_gy=RX_GY, plan_date=None)
    case: Any = SimpleNamespace(n_fractions=n_fractions, prescription_gy=RX_GY, plan=plan,
                                dose=dose, structure_set=SimpleNamespace(rois=tuple(rois)))
    return DoseContext(case, assign_roles(rois), None, options=DoseCheckOptions())


@pytest.mark.parametrize("base_gy, expected", [(12.0, Status.PASS), (20.0, Status.FAIL)])
def test_two_fraction_esophagus_and_plexus_on_an_analytic_dose(base_gy: float,
                                                                expected: Status) -> None:
    """24 Gy/2 fx, --constraints auto, DVHs from the engine.  base 12 Gy: V19Gy 0.34 cc,
    V16.5Gy 1.47 cc, V27.5Gy 0, D0.03cc 19.7 Gy (all met); base 20 Gy: 3.96 cc, 5.09 cc,
    0.11 cc and 27.7 Gy (> 26.4 Gy = 110% of 24 Gy): all fail (BMC 2025, KB 3d)."""
    ctx = _analytic_ctx(base_gy, n_fractions=2)
    found = evaluate_constraint_sets(ctx, select_sets(None))
    truth = {"esophagus_v2_5cc": _v_cc(19.0, base_gy), "esophagus_v3_8cc": _v_cc(16.5, base_gy),
             "esophagus_v003cc": _v_cc(27.5, base_gy)}
    for check, value in truth.items():
        (f,) = _findings(f"dose.bmc2025.{check}", found, "Esophagus")
        assert f.value == pytest.approx(value, rel=0.02, abs=0.005), (check, f.message)
        assert f.status is expected, f.message
    (f,) = _findings("dose.bmc2025.nerve_dpoint_rx", found, "SacralPlex")
    assert f.value == pytest.approx(_d_gy(0.03, base_gy), abs=0.05)
    assert f.status is expected and f.limit == pytest.approx(26.4)


def test_four_fraction_kidney_on_an_analytic_dose_is_not_evaluated_by_design() -> None:
    """The organ's values are reported with the gap, never judged: Dmax is the dose at
    the top end cap, 12 + 0.25 * 31 = 19.75 Gy; Dmean that of the middle, 12 Gy."""
    ctx = _analytic_ctx(12.0, n_fractions=4, extra=("Kidney_L",))
    found = evaluate_coverage_gaps(ctx, select_sets(None))
    by = {(f.code, f.structure): f.status for f in found if f.structure}
    assert by == {("dose.gap.esophagus", "Esophagus"): Status.NOT_EVALUATED,
                  ("dose.gap.sacral_plexus", "SacralPlex"): Status.NOT_EVALUATED,
                  ("dose.gap.kidney", "Kidney_L"): Status.NOT_EVALUATED}
    (f,) = [f for f in found if f.structure == "Kidney_L"]
    assert f.value == pytest.approx(19.75, abs=0.01) and f.unit == "Gy" and f.limit is None
    assert "Dmean 12 Gy" in f.message and "not evaluated by design" in f.message


# ----------------------------------------------------------------- listing, README
def test_rules_command_lists_the_gaps(tmp_path: Path) -> None:
    run = "from contourqa.cli import run; run()"
    proc = subprocess.run([sys.executable, "-c", run, "rules", "--json",
                           str(tmp_path / "rules.json")], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for g in coverage_gaps():
        assert f"{g.code}  (not evaluated by design)" in text
    assert "esophagus: 1 fx tg101*, bmc2025, cox2012, rtog0631 (U); 2 fx bmc2025*; 3 fx tg101*; " \
        "4 fx GAP;" in text
    assert "kidney: 1 fx GAP; 2 fx GAP; 3 fx GAP; 4 fx GAP; 5 fx GAP [dose.gap.kidney]" in text
    listed = {r["code"]: r for r in json.loads((tmp_path / "rules.json").read_text("utf-8"))}
    assert listed["dose.gap.nerve_root"]["severity"] == "not evaluated by design"
    assert listed["dose.gap.nerve_root"]["thresholds"]["fractions"] == [3, 4, 5]
    assert listed["dose.bmc2025.esophagus_v2_5cc"]["thresholds"]["esophagus_v2_5cc_2fx"]["auto"]


def test_readme_lists_every_gap() -> None:
    text = README.read_text("utf-8")
    for g in coverage_gaps():
        assert f"`{g.code}`" in text, g.code
    assert "not evaluated by design" in text


@pytest.mark.parametrize("name, role", [
    ("Esophagus", Role.ESOPHAGUS), ("BrachialPlex_L", Role.BRACHIAL_PLEXUS),
    ("BrachialPlex_R", Role.BRACHIAL_PLEXUS), ("Bowel_Small", Role.BOWEL_SMALL),
    ("Bowel_Large", Role.BOWEL_LARGE), ("Kidney_L", Role.KIDNEY), ("Kidney_R", Role.KIDNEY),
    ("Skin", Role.SKIN), ("CaudaEquina", Role.CAUDA_EQUINA), ("SacralPlex", Role.SACRAL_PLEXUS),
])
def test_tg263_names_reach_the_constraints_or_gaps(name: str, role: Role) -> None:
    """The TG-263 names (KB 8) get their role from the structures tables, and every
    fraction number gives that role a constraint or a listed gap."""
    roi = make_roi([(0.0, [circle(0.0, 0.0, 5.0)])], name=name)
    (a,) = assign_roles([roi])
    assert a.role is role
    for n in (1, 2, 3, 4, 5):
        assert role in _covered(n) or any(role in g.roles and n in g.fractions
                                           for g in coverage_gaps()), (name, n)
