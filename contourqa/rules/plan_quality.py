"""Plan-quality rules: reported quantities (Paddick CI, GI, R50%, D2cm, cord-PTV
fall-off, hot-spot location, coverage outside the cord PRV).

None has a published spine SBRT threshold (``rules/data/plan_quality.toml``): the
rules have severity "report"; their findings carry the value and never judge it.
They are evaluated in the check pipeline after the dose is loaded
(:func:`plan_quality_findings`), ``check`` is None here.
"""

from __future__ import annotations

from typing import Any

from contourqa.findings import Finding, Status
from contourqa.plan_quality import PlanQuality, plan_quality_of_rois
from contourqa.rules.context import deep_merge
from contourqa.rules.model import Rule, RuleOptions, rule_data

__all__ = ["PLAN_QUALITY_RULES", "compute_plan_quality", "plan_quality_findings",
           "plan_quality_params"]


def _rule(code: str, name: str) -> Rule:
    return Rule(code=code, name=name, citation=str(rule_data("plan_quality")[code]["source"]),
                severity=Status.PASS, rule_set="plan_quality", check=None)


PLAN_QUALITY_RULES: tuple[Rule, ...] = (
    _rule("plan.conformity", "Paddick conformity index (reported)"),
    _rule("plan.gradient", "Paddick gradient index and R50% (reported)"),
    _rule("plan.d2cm", "Maximum dose 2 cm from the PTV (reported)"),
    _rule("plan.cord_falloff", "Dose fall-off across the cord-PTV gap (reported)"),
    _rule("plan.hot_spot", "Location of the hot spot (reported)"),
    _rule("plan.coverage_ex_prv", "PTV coverage outside the cord PRV (reported)"),
)

_NOT_JUDGED = "reported, not judged (no published spine SBRT threshold)"


def plan_quality_params(options: RuleOptions) -> dict[str, Any]:
    """The plan-quality rule data merged with the profile's overrides."""
    data = rule_data("plan_quality")
    return {code: deep_merge(table, options.profile.params.get(code, {}))
            for code, table in data.items()}


def compute_plan_quality(case: Any, roles: Any, *, options: RuleOptions, workers: int = 1
                         ) -> PlanQuality | None:
    """Plan quality of a loaded case (None without a dose or a structure set).

    Parameters
    ----------
    case : Case
    roles : RoleTable
    options : RuleOptions
    workers : int
    """
    from contourqa.structures import Role

    if case.dose is None or case.structure_set is None:
        return None
    rois = {r.number: r for r in case.structure_set.rois if not r.is_empty}

    def first(*wanted: Role) -> Any:
        for role in wanted:
            for a in roles.by_role(role):
                if a.roi_number in rois:
                    return rois[a.roi_number]
        return None

    return plan_quality_of_rois(
        dose=case.dose, prescription_gy=case.prescription_gy, ptv=first(Role.PTV),
        body=first(Role.BODY), gtv=first(Role.GTV), cord=first(Role.SPINAL_CORD),
        cord_prv=first(Role.CORD_PRV), canal=first(Role.THECAL_SAC, Role.SPINAL_CANAL),
        params=plan_quality_params(options), workers=workers)


def _band(q: Any) -> str:
    if q.band is None:
        return ""
    return f" (band {q.band[0]:.3g} to {q.band[1]:.3g})"


def plan_quality_findings(pq: PlanQuality) -> list[Finding]:
    """One finding per reported quantity: PASS with the value (severity "report"),
    NOT_APPLICABLE when it could not be computed (nothing is judged, so the case's
    verdict does not depend on it), with the reason."""
    out: list[Finding] = []
    src = {r.code: r.citation for r in PLAN_QUALITY_RULES}
    for q in pq.quantities:
        if q.value is None:
            out.append(Finding(code=q.code, status=Status.NOT_APPLICABLE,
                               message=f"{q.name}: not computed ({q.reason}); {_NOT_JUDGED}.",
                               source=src[q.code]))
            continue
        unit = f" {q.unit}" if q.unit else ""
        out.append(Finding(code=q.code, status=Status.PASS, value=q.value, unit=q.unit or None,
                           message=f"{q.name} = {q.value:.3g}{unit}{_band(q)}; {_NOT_JUDGED}.",
                           source=src[q.code]))
    f = pq.falloff
    if f is not None and f.gradient_gy_per_mm is not None:
        i = next(i for i, x in enumerate(out) if x.code == "plan.cord_falloff")
        out[i] = Finding(code="plan.cord_falloff", status=Status.PASS,
                         value=f.gradient_gy_per_mm, unit="Gy/mm", source=src["plan.cord_falloff"],
                         message=(f"Cord-PTV gap {f.gap_mm:.1f} mm: {f.ptv_dose_gy:.3g} Gy at the "
                                  f"PTV, {f.cord_dose_gy:.3g} Gy at the cord, "
                                  f"{f.gradient_gy_per_mm:.2f} Gy/mm; {_NOT_JUDGED}."))
    h = pq.hot_spot
    if h is not None:
        out.append(Finding(code="plan.hot_spot", status=Status.PASS, value=h.dose_gy, unit="Gy",
                           source=src["plan.hot_spot"],
                           message=(f"Hot spot {h.dose_gy:.3g} Gy at ({h.point_mm[0]:.1f}, "
                                    f"{h.point_mm[1]:.1f}, {h.point_mm[2]:.1f}) mm: {h.location}; "
                                    f"{_NOT_JUDGED}.")))
    for note in pq.notes:
        out.append(Finding(code="plan.conformity", status=Status.NOT_APPLICABLE,
                           message=f"Plan quality: {note}.", source=src["plan.conformity"]))
    return out
