"""Epidural-geometry rules, per vertebral level: the GTV-cord gap against the RTOG 0631
eligibility gap (>= 3 mm), and, reported only, the share of the thecal sac the GTV
occupies and the Bilsky ESCC grade estimated from contours.

Evaluated in the check pipeline (:func:`epidural_findings`); ``check`` is None here.
"""

from __future__ import annotations

from typing import Any

from contourqa.epidural import EpiduralGeometry, epidural_geometry_of_rois, level_ranges
from contourqa.findings import Finding, Status
from contourqa.rules.context import deep_merge
from contourqa.rules.model import Rule, RuleOptions, rule_data

__all__ = ["EPIDURAL_RULES", "compute_epidural_geometry", "epidural_findings"]


def _rule(code: str, name: str, severity: Status) -> Rule:
    return Rule(code=code, name=name, citation=str(rule_data("epidural")[code]["source"]),
                severity=severity, rule_set="epidural", check=None)


EPIDURAL_RULES: tuple[Rule, ...] = (
    _rule("epidural.cord_gap", "GTV-to-cord gap per level (RTOG 0631 eligibility)", Status.WARN),
    _rule("epidural.thecal_share", "Share of the thecal sac occupied by the GTV (reported)",
          Status.PASS),
    _rule("epidural.bilsky_estimate", "Bilsky ESCC grade estimated from contours (reported)",
          Status.PASS),
)


def _params(options: RuleOptions) -> dict[str, Any]:
    return {code: deep_merge(table, options.profile.params.get(code, {}))
            for code, table in rule_data("epidural").items()}


def compute_epidural_geometry(case: Any, roles: Any, *, options: RuleOptions
                              ) -> EpiduralGeometry | None:
    """Epidural geometry of a loaded case (None without a structure set).

    Parameters
    ----------
    case : Case
    roles : RoleTable
    options : RuleOptions
    """
    from contourqa.structures import Role

    if case.structure_set is None:
        return None
    rois = {r.number: r for r in case.structure_set.rois if not r.is_empty}

    def first(role: Role) -> Any:
        return next((rois[a.roi_number] for a in roles.by_role(role) if a.roi_number in rois),
                    None)

    vertebrae = [(a.level, rois[a.roi_number]) for a in roles.by_role(Role.VERTEBRA)
                 if a.roi_number in rois and a.level]
    return epidural_geometry_of_rois(
        gtv=first(Role.GTV), cord=first(Role.SPINAL_CORD), sac=first(Role.THECAL_SAC),
        canal=first(Role.SPINAL_CANAL), levels=level_ranges(vertebrae), params=_params(options))


def epidural_findings(eg: EpiduralGeometry, *, options: RuleOptions) -> list[Finding]:
    """Per level: the gap (WARN under the RTOG 0631 gap, PASS otherwise, NOT_EVALUATED
    without a cord ROI), the thecal-sac share and the estimated grade (reported)."""
    p = _params(options)
    src = {r.code: r.citation for r in EPIDURAL_RULES}
    limit = float(p["epidural.cord_gap"]["min_gap_mm"])
    out: list[Finding] = []
    for lv in eg.levels:
        where = lv.level or "GTV slices (level unknown)"
        if lv.gtv_cord_gap_mm is None:
            out.append(Finding(code="epidural.cord_gap", status=Status.NOT_EVALUATED,
                               message=f"{where}: GTV-cord gap not measured ({lv.reason}).",
                               source=src["epidural.cord_gap"]))
        else:
            low = lv.gtv_cord_gap_mm < limit
            out.append(Finding(
                code="epidural.cord_gap", status=Status.WARN if low else Status.PASS,
                value=lv.gtv_cord_gap_mm, limit=limit, unit="mm", structure=where,
                source=src["epidural.cord_gap"],
                message=(f"{where}: GTV-cord gap {lv.gtv_cord_gap_mm:.1f} mm "
                         + (f"< {limit:g} mm: outside the RTOG 0631 eligibility gap (epidural "
                            "disease close to the cord)." if low else
                            f">= {limit:g} mm (RTOG 0631 eligibility gap)."))))
        if lv.bilsky_estimate is None:
            continue
        out.append(Finding(
            code="epidural.thecal_share", status=Status.PASS, value=lv.thecal_share_percent,
            unit="%", structure=where, source=src["epidural.thecal_share"],
            message=(f"{where}: the GTV occupies up to {lv.thecal_share_percent:.1f}% of the "
                     "thecal sac on one slice; reported, not judged.")))
        out.append(Finding(
            code="epidural.bilsky_estimate", status=Status.PASS, structure=where,
            source=src["epidural.bilsky_estimate"],
            message=(f"{where}: Bilsky ESCC grade {lv.bilsky_estimate} ESTIMATED from contours "
                     f"(worst slice z = {lv.worst_slice_z_mm:.1f} mm; the grade is defined on "
                     "axial T2 MRI); reported, not judged.")))
    for note in eg.notes:
        out.append(Finding(code="epidural.bilsky_estimate", status=Status.NOT_APPLICABLE,
                           message=f"Epidural geometry: {note}.",
                           source=src["epidural.bilsky_estimate"]))
    return out
