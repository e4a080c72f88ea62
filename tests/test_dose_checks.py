"""Dose checks on hand-built inputs: every result lands on the right side of its limit."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest

from contourqa.constraints import builtin_sets
from contourqa.dose_checks import DoseCheckOptions, PatientFactors, classify_mr, match_schedule
from contourqa.dose_checks._context import DoseContext
from contourqa.dose_checks.constraint_checks import evaluate_constraint_sets
from contourqa.dose_checks.prescription import evaluate_prescription
from contourqa.dose_checks.reirradiation import months_between
from contourqa.dose_checks.target import gtv_dmin_threshold_gy
from contourqa.dose_checks.vcf import evaluate_vcf
from contourqa.dvh import DVHMetric
from contourqa.errors import MetricError
from contourqa.findings import Status
from contourqa.structures import Role, RoleAssignment, RoleTable

HYTEC = {1: 14.0, 2: 17.0, 3: 20.3, 4: 23.0, 5: 25.3}  # KB 3a


class TableContext(DoseContext):
    """A DoseContext whose metric values come from a table: {roi: {metric: value}}."""

    relative_reference_gy = None  # a dose in Gy, not RELATIVE

    def __init__(self, values: dict[str, dict[str, float]], roles: dict[str, Role], *,
                 n_fractions: int | None, prescription_gy: float | None = None,
                 bands: dict[tuple[str, str], tuple[float, float]] | None = None,
                 options: DoseCheckOptions | None = None) -> None:
        plan = SimpleNamespace(n_fractions=n_fractions, prescription_gy=prescription_gy,
                               plan_date=None)
        case: Any = SimpleNamespace(n_fractions=n_fractions, prescription_gy=prescription_gy,
                                    plan=plan, dose=object(), structure_set=object())
        table = RoleTable(tuple(RoleAssignment(roi_name=n, roi_number=i, role=r)
                                for i, (n, r) in enumerate(roles.items())))
        super().__init__(case, table, None, options=options or DoseCheckOptions())
        self.values = values
        self.bands_table = bands or {}

    def rois_with(self, role: Role) -> tuple[RoleAssignment, ...]:
        return self.roles.by_role(role)

    def metric(self, roi_name: str, metric: DVHMetric, subvolume: str | None = None) -> float:
        try:
            return self.values[roi_name][str(metric)]
        except KeyError:
            raise MetricError(f"{metric} not in the table") from None

    def prefetch_bands(self, *args: Any, **kwargs: Any) -> None:
        return None

    def band(self, roi_name: str, metric: DVHMetric, subvolume: str | None = None
             ) -> tuple[float, float] | None:
        return self.bands_table.get((roi_name, str(metric)))

    def subvolume_description(self, kind: str) -> str:
        return kind

    def oar_problem(self, roi_name: str, role: Role) -> str | None:
        return None  # no contours here: extent and dose coverage are tested on phantoms


def _cord(dmax: float) -> dict[str, dict[str, float]]:
    point = {"Dmax": dmax, "D0.03cc": dmax - 0.2, "D0.035cc": dmax - 0.25}
    return {"SpinalCord": point, "SpinalCord_PRV02": dict(point)}


_ROLES = {"SpinalCord": Role.SPINAL_CORD, "SpinalCord_PRV02": Role.CORD_PRV}


@pytest.mark.parametrize("n", sorted(HYTEC))
@pytest.mark.parametrize("delta, expected", [(-0.05, {Status.PASS, Status.WARN}),
                                             (+0.05, {Status.FAIL})])
def test_hytec_cord_limit_sides(n: int, delta: float, expected: set[Status]) -> None:
    ctx = TableContext(_cord(HYTEC[n] + delta), _ROLES, n_fractions=n)
    found = evaluate_constraint_sets(ctx, (builtin_sets()["hytec2021"],))
    assert {f.structure for f in found} == {"SpinalCord", "SpinalCord_PRV02"}
    for f in found:
        assert f.code == "dose.hytec2021.cord_pmax"
        assert f.status in expected
        assert f.limit == HYTEC[n] and f.unit == "Gy"
        assert f.value == pytest.approx(HYTEC[n] + delta)
        assert "Dmax" in f.message and "D0.03cc" in f.message and "D0.035cc" in f.message
        assert "Sahgal" in (f.source or "") and "status C" in (f.source or "")
    if delta < 0 and n > 1:
        assert all(f.status is Status.PASS for f in found)


def test_hytec_single_fraction_range_warns() -> None:
    # 12.4-14.0 Gy is the published 1-fx range: inside it, a warning; below it, a pass.
    ctx = TableContext(_cord(13.0), _ROLES, n_fractions=1)
    assert {f.status for f in evaluate_constraint_sets(ctx, (builtin_sets()["hytec2021"],))} \
        == {Status.WARN}
    ctx = TableContext(_cord(12.3), _ROLES, n_fractions=1)
    assert {f.status for f in evaluate_constraint_sets(ctx, (builtin_sets()["hytec2021"],))} \
        == {Status.PASS}


def test_band_crossing_the_limit_warns() -> None:
    bands = {("SpinalCord", "Dmax"): (16.8, 17.2)}
    ctx = TableContext(_cord(16.9), _ROLES, n_fractions=2, bands=bands)
    found = {f.structure: f for f in evaluate_constraint_sets(ctx, (builtin_sets()["hytec2021"],))}
    assert found["SpinalCord"].status is Status.WARN
    assert "16.8 Gy to 17.2 Gy" in found["SpinalCord"].message
    assert found["SpinalCord_PRV02"].status is Status.PASS


def test_unconfirmed_point_definition_compares_true_max() -> None:
    # TG-101 "point <= 0.035 cc" is U: by default the true maximum is compared.
    values = _cord(14.1)  # D0.035cc = 13.85 Gy < 14 Gy < Dmax
    tg = builtin_sets()["tg101"]
    ctx = TableContext(values, _ROLES, n_fractions=1)
    pmax = [f for f in evaluate_constraint_sets(ctx, (tg,)) if f.code == "dose.tg101.cord_pmax"]
    assert pmax and all(f.status is Status.FAIL and "unconfirmed" in f.message for f in pmax)
    ctx = TableContext(values, _ROLES, n_fractions=1,
                       options=DoseCheckOptions(use_unconfirmed=True))
    pmax = [f for f in evaluate_constraint_sets(ctx, (tg,)) if f.code == "dose.tg101.cord_pmax"]
    assert pmax and all(f.status is Status.PASS for f in pmax)


def test_fraction_number_without_constraint_is_not_applicable() -> None:
    # a set for other fraction numbers does not concern the plan (never a pass, and
    # no "incomplete" verdict either); an unknown fraction number is not evaluated
    ctx = TableContext(_cord(10.0), _ROLES, n_fractions=2)
    found = evaluate_constraint_sets(ctx, (builtin_sets()["tg101"],))
    assert [(f.code, f.status) for f in found] == [("dose.tg101.fractions",
                                                    Status.NOT_APPLICABLE)]
    ctx = TableContext(_cord(10.0), _ROLES, n_fractions=None)
    assert evaluate_constraint_sets(ctx, (builtin_sets()["hytec2021"],))[0].status \
        is Status.NOT_EVALUATED


def test_missing_role_is_not_evaluated() -> None:
    ctx = TableContext(_cord(10.0), _ROLES, n_fractions=3)
    found = evaluate_constraint_sets(ctx, (builtin_sets()["sahgal2013"],))
    assert [(f.code, f.status) for f in found] == [
        ("dose.sahgal2013.thecal_sac_pmax", Status.NOT_EVALUATED)]


def test_thecal_sac_limit_falls_back_to_the_canal() -> None:
    # No thecal-sac ROI: the canal contains the sac, so its maximum (18 Gy) bounds the
    # sac's from above and the 3 fx limit of 20.3 Gy (Sahgal 2013, KB 3a) holds.
    ctx = TableContext({**_cord(10.0), "Canal": {"Dmax": 18.0, "D0.03cc": 18.0,
                                                 "D0.035cc": 18.0}},
                       {**_ROLES, "Canal": Role.SPINAL_CANAL}, n_fractions=3)
    found = evaluate_constraint_sets(ctx, (builtin_sets()["sahgal2013"],))
    assert [(f.code, f.status, f.structure) for f in found] == [
        ("dose.sahgal2013.thecal_sac_pmax", Status.PASS, "Canal")]
    assert "spinal canal" in found[0].message


def test_redmond_row_follows_the_prior_course() -> None:
    red = builtin_sets()["redmond2017"]
    opts = DoseCheckOptions(prior_courses=("30Gy/10fx",))
    ctx = TableContext(_cord(12.5), _ROLES, n_fractions=2, options=opts)
    found = evaluate_constraint_sets(ctx, (red,))
    assert {f.status for f in found} == {Status.FAIL} and all(f.limit == 12.2 for f in found)
    ctx = TableContext(_cord(12.5), _ROLES, n_fractions=2)  # no prior: row "none", 17 Gy
    assert {(f.status, f.limit) for f in evaluate_constraint_sets(ctx, (red,))} == {
        (Status.PASS, 17.0)}
    opts = DoseCheckOptions(prior_courses=("36Gy/12fx",))
    ctx = TableContext(_cord(12.5), _ROLES, n_fractions=2, options=opts)
    assert [f.code for f in evaluate_constraint_sets(ctx, (red,))] == ["dose.redmond2017.prior_rt"]


def test_volume_constraint_cc() -> None:
    values = {"SpinalCord": {"V10Gy": 0.34}, "SpinalCord_PRV02": {"V10Gy": 0.36}}
    ctx = TableContext(values, _ROLES, n_fractions=1)
    found = [f for f in evaluate_constraint_sets(ctx, (builtin_sets()["rtog0631"],))
             if f.code == "dose.rtog0631.cord_v035cc"]
    assert {f.structure: f.status for f in found} == {"SpinalCord": Status.PASS,
                                                      "SpinalCord_PRV02": Status.FAIL}
    assert all(f.unit == "cc" and f.limit == 0.35 for f in found)


@pytest.mark.parametrize("rx, n, ok", [(24.0, 1, True), (18.0, 1, True), (24.0, 2, True),
                                       (27.0, 3, True), (35.0, 5, True), (16.0, 1, True),
                                       (30.0, 10, True), (26.0, 2, False), (50.0, 5, False),
                                       (12.0, 1, False)])
def test_prescription_schedules(rx: float, n: int, ok: bool) -> None:
    ctx = TableContext({}, {}, n_fractions=n, prescription_gy=rx)
    (f,) = [f for f in evaluate_prescription(ctx) if f.code == "prescription.schedule"]
    assert f.status is (Status.PASS if ok else Status.WARN)
    if not ok:
        assert "nearest" in f.message
    assert match_schedule(rx, n)[1]


def test_gtv_dmin_threshold_conversion() -> None:
    review = {"dmin_gy": 14.0, "fractions": 1}
    assert gtv_dmin_threshold_gy(review, n_fractions=1, alpha_beta_gy=None)[0] == 14.0
    assert gtv_dmin_threshold_gy(review, n_fractions=3, alpha_beta_gy=None)[0] is None
    total, how = gtv_dmin_threshold_gy(review, n_fractions=3, alpha_beta_gy=10.0)
    # BED(14 Gy/1, ab 10) = 33.6 Gy; 3 fractions of d with 3d(1 + d/10) = 33.6 -> d = 6.88 Gy.
    assert total == pytest.approx(3 * 5 * ((1 + 4 * 33.6 / 30) ** 0.5 - 1), rel=1e-12)
    assert "equal BED" in how


def test_vcf_flag_reasons() -> None:
    ctx = TableContext({}, {}, n_fractions=1, prescription_gy=24.0)
    (f,) = evaluate_vcf(ctx)
    assert f.status is Status.WARN and "dose per fraction 24 Gy" in f.message
    opts = DoseCheckOptions(patient=PatientFactors(age_years=70, lytic=True, sins_total=8,
                                                   vertebral_body_involved_percent=50))
    ctx = TableContext({}, {}, n_fractions=5, prescription_gy=30.0, options=opts)
    (f,) = evaluate_vcf(ctx)
    assert f.status is Status.WARN
    for word in ("age 70", "lytic", "SINS 8", "vertebral body involved 50%"):
        assert word in f.message
    ctx = TableContext({}, {}, n_fractions=5, prescription_gy=30.0)
    (f,) = evaluate_vcf(ctx)  # nothing present, but age etc. unknown: not a pass
    assert f.status is Status.NOT_EVALUATED and "Not known" in f.message


def test_months_between() -> None:
    assert months_between(dt.date(2023, 1, 15), dt.date(2023, 6, 15)) == 5.0
    assert months_between(dt.date(2023, 1, 15), dt.date(2023, 6, 14)) < 5.0
    assert months_between(dt.date(2023, 1, 31), dt.date(2023, 2, 28)) == 1.0


@pytest.mark.parametrize("desc, seq, agent, orient, label", [
    ("SAG T1 TSE", ["SE"], None, [0, 1, 0, 0, 0, -1], "sagittal T1"),
    ("Sag STIR", ["IR"], None, [0, 1, 0, 0, 0, -1], "sagittal STIR"),
    ("t1_tse_tra POST GAD", ["SE"], None, [1, 0, 0, 0, 1, 0], "axial T1+C"),
    ("AX T2", ["SE"], None, [1, 0, 0, 0, 1, 0], "axial T2"),
    ("sag t1", ["SE"], "Gadovist", [0, 1, 0, 0, 0, -1], "sagittal T1+C"),
    ("localizer", ["GR"], None, [1, 0, 0, 0, 1, 0], None),
])
def test_classify_mr(desc: str, seq: list[str], agent: str | None, orient: list[float],
                     label: str | None) -> None:
    assert classify_mr(series_description=desc, scanning_sequence=seq, contrast_agent=agent,
                       orientation=orient).label == label


def test_institutional_file_is_applied(tmp_path: Any) -> None:
    from test_constraints import _INSTITUTION  # same folder helper data

    from contourqa.constraints import select_sets

    path = tmp_path / "inst.toml"
    path.write_text(_INSTITUTION, encoding="utf-8")
    ctx = TableContext(_cord(12.5), _ROLES, n_fractions=1)
    (f,) = evaluate_constraint_sets(ctx, select_sets(["hytec2021"], files=[path])[1:])
    assert (f.code, f.structure, f.status, f.limit) == (
        "dose.institution_a.cord_prv_d003", "SpinalCord_PRV02", Status.FAIL, 12.0)
    assert "D0.03cc = 12.3 Gy" in f.message and "Institution A" in (f.source or "")


def test_reirradiation_rules() -> None:
    from contourqa.dose_checks.reirradiation import evaluate_reirradiation

    # 30 Gy/10 fx prior (EQD2 37.5 Gy, KB 4c) + thecal sac Pmax 12 Gy/2 fx (EQD2 24 Gy).
    opts = DoseCheckOptions(prior_courses=("30Gy/10fx,cord_max=30Gy,date=2023-01-10",))
    ctx = TableContext({"Sac": {"Dmax": 12.0}}, {"Sac": Role.THECAL_SAC}, n_fractions=2,
                       prescription_gy=24.0, options=opts)
    ctx.case.plan.plan_date = "20230601"
    found = {f.code: f for f in evaluate_reirradiation(ctx)}
    assert found["dose.reirradiation_sbrt_eqd2"].value == pytest.approx(24.0)
    assert found["dose.reirradiation_sbrt_eqd2"].status is Status.PASS
    assert found["dose.reirradiation_cumulative_eqd2"].value == pytest.approx(61.5)
    assert found["dose.reirradiation_ratio"].status is Status.PASS  # 24 / 61.5 = 0.39
    assert "prior Pmax as given" in found["dose.reirradiation_ratio"].message
    assert found["dose.reirradiation_interval"].status is Status.FAIL  # 4.7 months
    opts = DoseCheckOptions(prior_courses=("30Gy/10fx,cord_max=32Gy",))
    ctx = TableContext({"Sac": {"Dmax": 14.0}}, {"Sac": Role.THECAL_SAC}, n_fractions=2,
                       options=opts)
    found = {f.code: f for f in evaluate_reirradiation(ctx)}
    assert found["dose.reirradiation_sbrt_eqd2"].status is Status.FAIL  # 31.5 Gy > 25
    assert found["dose.reirradiation_interval"].status is Status.NOT_EVALUATED
