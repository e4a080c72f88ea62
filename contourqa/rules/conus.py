"""Conus and cauda rules: where the cord ROI ends (reported), a cord ROI drawn into the
cauda equina (warning), and a target below the conus (the cauda equina / thecal sac
limits apply, said; not evaluated without such an ROI).

Evaluated in the check pipeline (:func:`conus_findings`); ``check`` is None here.
"""

from __future__ import annotations

from typing import Any

from contourqa.conus import ConusReading, below_level, read_conus
from contourqa.epidural import level_ranges
from contourqa.findings import Finding, Status
from contourqa.rules.context import deep_merge
from contourqa.rules.model import Rule, RuleOptions, rule_data

__all__ = ["CONUS_RULES", "compute_conus", "conus_findings"]


def _rule(code: str, name: str, severity: Status) -> Rule:
    return Rule(code=code, name=name, citation=str(rule_data("conus")[code]["source"]),
                severity=severity, rule_set="conus", check=None)


CONUS_RULES: tuple[Rule, ...] = (
    _rule("conus.level", "Where the cord ROI ends (reported)", Status.PASS),
    _rule("conus.cord_in_cauda", "Cord ROI drawn into the cauda equina", Status.WARN),
    _rule("conus.target_below", "Target below the conus: cauda equina / thecal sac limits",
          Status.WARN),
)


def compute_conus(case: Any, roles: Any) -> tuple[ConusReading | None, bool]:
    """The conus reading of a case (None without a cord ROI or vertebra levels) and
    whether a cauda equina or thecal-sac ROI exists.

    Parameters
    ----------
    case : Case
    roles : RoleTable
    """
    from contourqa.structures import Role

    if case.structure_set is None:
        return None, False
    rois = {r.number: r for r in case.structure_set.rois if not r.is_empty}

    def of(*wanted: Role) -> list[Any]:
        return [rois[a.roi_number] for role in wanted for a in roles.by_role(role)
                if a.roi_number in rois]

    cords = of(Role.SPINAL_CORD)
    levels = level_ranges([(a.level, rois[a.roi_number]) for a in roles.by_role(Role.VERTEBRA)
                           if a.roi_number in rois and a.level])
    has_cauda = bool(of(Role.CAUDA_EQUINA, Role.THECAL_SAC))
    if not cords or not levels:
        return None, has_cauda
    return read_conus(cord=cords[0], levels=levels,
                      targets=of(Role.GTV, Role.CTV, Role.PTV)), has_cauda


def conus_findings(reading: ConusReading, *, has_cauda_roi: bool, options: RuleOptions
                   ) -> list[Finding]:
    """The findings of one conus reading."""
    p = {code: deep_merge(t, options.profile.params.get(code, {}))
         for code, t in rule_data("conus").items()}
    src = {r.code: r.citation for r in CONUS_RULES}
    at = reading.conus_level or "an unnamed level"
    below = ", ".join(reading.levels_below) or "none among the vertebra ROIs"
    out = [Finding(code="conus.level", status=Status.PASS, value=reading.cord_end_z_mm,
                   unit="mm", source=src["conus.level"],
                   message=(f"The cord ROI ends at z = {reading.cord_end_z_mm:.1f} mm, at "
                            f"{at}; levels below it: {below}."))]
    lowest = str(p["conus.cord_in_cauda"]["lowest_expected_level"])
    if reading.conus_level is not None:
        deep = below_level(reading.conus_level, lowest)
        out.append(Finding(
            code="conus.cord_in_cauda", status=Status.WARN if deep else Status.PASS,
            source=src["conus.cord_in_cauda"], structure=reading.conus_level,
            message=(f"The cord ROI reaches {reading.conus_level}, below {lowest}: the cord is "
                     "drawn through the cauda equina, where the cord limits do not describe "
                     "the nerves; end the cord at the conus and contour the cauda equina / "
                     "thecal sac." if deep else
                     f"The cord ROI ends at {reading.conus_level}, not below {lowest}.")))
    if reading.target_levels_below:
        lv = ", ".join(reading.target_levels_below)
        only = "The target lies wholly" if reading.target_below_only else "Part of the target lies"
        if has_cauda_roi:
            out.append(Finding(
                code="conus.target_below", status=Status.PASS, source=src["conus.target_below"],
                message=(f"{only} below the conus ({lv}): the cauda equina / thecal sac limits "
                         "apply there (evaluated by the dose checks on that ROI), "
                         + ("not the cord limits." if reading.target_below_only else
                            "with the cord limits above the conus."))))
        else:
            out.append(Finding(
                code="conus.target_below", status=Status.NOT_EVALUATED,
                source=src["conus.target_below"],
                message=(f"{only} below the conus ({lv}) but no cauda equina or thecal-sac ROI "
                         "exists: the cauda equina limits that apply there cannot be checked.")))
    return out
