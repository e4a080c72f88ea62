"""Constraint-set checks: each applicable constraint on each ROI of its roles.

Codes are ``dose.<set>.<check>`` (e.g. ``dose.hytec2021.cord_pmax``), one finding per
ROI, so the true cord and the cord PRV are reported side by side (review 0.5: which
one carries the limit is unsettled).  Point maxima are reported as the true maximum
and as D0.03cc and D0.035cc, and the set's own definition is the one compared,
except where that definition is unconfirmed (U): then the true maximum, the
stricter value, is compared unless ``use_unconfirmed`` is set.
"""

from __future__ import annotations

from collections import defaultdict

from contourqa.constraints.model import Constraint, ConstraintSet
import dataclasses

from contourqa.dose_checks._context import DoseContext, fmt, not_applicable, not_evaluated
from contourqa.dvh import DVHMetric
from contourqa.errors import ContourQAError
from contourqa.findings import Finding, Status
from contourqa.radiobiology import Course, eqd2_gy
from contourqa.structures import Role

__all__ = ["evaluate_constraint_sets", "resolve_metric", "status_against_limit"]

_SIDE_BY_SIDE = ("Dmax", "D0.03cc", "D0.035cc")
_PRIOR_NONE = "none"
_PRIOR_NONE_COMPROMISE = "none_cord_compromise"


def resolve_metric(constraint: Constraint, cset: ConstraintSet, *, use_unconfirmed: bool
                   ) -> tuple[DVHMetric, str]:
    """The metric compared for ``constraint`` and a phrase saying why."""
    if not constraint.is_point:
        return DVHMetric.parse(constraint.metric), f"{constraint.metric}"
    point = cset.point_metric
    definition = f"{cset.name} point: {cset.point_definition} ({cset.point_status})"
    if cset.point_status == "U" and not use_unconfirmed and str(point) != "Dmax":
        return DVHMetric.parse("Dmax"), (f"true Dmax compared: {cset.name}'s point definition "
                                         f"{point} is unconfirmed (U)")
    return point, definition


def status_against_limit(value: float, *, comparison_holds: bool, band_holds: bool,
                         in_caution: bool, severity: str) -> tuple[Status, str]:
    """Status of one result and the verdict phrase.

    ``comparison_holds``: the nominal value meets the limit; ``band_holds``: the
    whole uncertainty band meets it; ``in_caution``: the value lies in the published
    range beyond the caution value.
    """
    if not comparison_holds:
        return (Status.FAIL if severity == "fail" else Status.WARN), "limit not met"
    if not band_holds:
        return Status.WARN, "met, but the DVH uncertainty band crosses the limit"
    if in_caution:
        return Status.WARN, "met, within the published range (caution)"
    return Status.PASS, "met"


def _prior_row(ctx: DoseContext, cset: ConstraintSet) -> tuple[str | None, str]:
    """The prior-RT row of a set whose constraints depend on prior radiotherapy."""
    rows = sorted({c.prior_rt for c in cset.constraints if c.prior_rt})
    if not rows:
        return None, ""
    courses = ctx.options.prior_courses
    if not courses:
        row = _PRIOR_NONE_COMPROMISE if ctx.options.cord_compromise else _PRIOR_NONE
        return (row if row in rows else None), "no prior course given"
    if len(courses) > 1:
        return None, (f"{len(courses)} prior courses given; the table has one row per single "
                      "prior course")
    tol = 1e-6
    for row in rows:
        if row.startswith(_PRIOR_NONE):
            continue
        try:
            ref = Course.parse(row)
        except ValueError:
            continue
        if courses[0].matches(ref, dose_tolerance_gy=tol):
            return row, f"prior course {courses[0].label}"
    known = ", ".join(r for r in rows if not r.startswith(_PRIOR_NONE))
    return None, f"prior course {courses[0].label} is not a row of the table ({known})"


def _source(cset: ConstraintSet, c: Constraint) -> str:
    return f"{cset.name}: {c.source}; {c.table}; status {c.status}"


def _side_by_side(ctx: DoseContext, roi: str, subvolume: str | None) -> str:
    parts = []
    for text in _SIDE_BY_SIDE:
        v = ctx.try_metric(roi, text, subvolume)
        if v is not None:
            parts.append(f"{text} {fmt(v, 'Gy')}")
    return ", ".join(parts)


def _evaluate_one(ctx: DoseContext, cset: ConstraintSet, c: Constraint, roi: str, role: Role
                  ) -> Finding:
    code = f"dose.{cset.name}.{c.check}"
    n = ctx.n_fractions
    metric, why = resolve_metric(c, cset, use_unconfirmed=ctx.options.use_unconfirmed)
    where = f"{roi} ({role.value})"
    if c.subvolume:
        where += f", {ctx.subvolume_description(c.subvolume)}"
    try:
        limit, caution = c.limit_in_unit(ctx.prescription_gy)
        value = ctx.metric(roi, metric, c.subvolume)
    except (ContourQAError, ValueError) as exc:
        return not_evaluated(code, f"{where}: {metric} not evaluated: {exc}.", structure=roi,
                             source=_source(cset, c))
    band = ctx.band(roi, metric, c.subvolume)
    holds = c.comparison.holds(value, limit)
    band_holds = band is None or all(c.comparison.holds(b, limit) for b in band)
    in_caution = caution is not None and not c.comparison.holds(value, caution) \
        and value != caution
    status, verdict = status_against_limit(value, comparison_holds=holds, band_holds=band_holds,
                                           in_caution=in_caution, severity=c.severity)
    unit = c.unit
    lim_text = f"{c.comparison.value} {fmt(limit, unit)}"
    if caution is not None:
        lim_text += f" (published range from {fmt(caution, unit)})"
    if c.of_prescription:
        lim_text += f" [{c.limit:g}% of the {fmt(ctx.prescription_gy, 'Gy')} prescription]"
    msg = [f"{where}: {metric} = {fmt(value, unit)} {lim_text} for {n} fx: {verdict}."]
    if band is not None:
        msg.append(f"DVH uncertainty band {fmt(band[0], unit)} to {fmt(band[1], unit)}.")
    if c.is_point:
        msg.append(f"{why}; side by side: {_side_by_side(ctx, roi, c.subvolume)}.")
        ab, _ = ctx.alpha_beta_gy(role.value)
        if ab is not None and n:
            eqd2 = eqd2_gy(total_dose_gy=value, n_fractions=n, alpha_beta_gy=ab)
            msg.append(f"EQD2 (alpha/beta {ab:g} Gy) {fmt(eqd2, 'Gy')}.")
    if c.prior_rt:
        msg.append(f"Row: prior RT {c.prior_rt}.")
    if c.note:
        msg.append(f"({c.note}.)")
    if c.status == "U":
        msg.append("UNCONFIRMED constraint (knowledge-base status U), evaluated on request.")
    return Finding(code=code, status=status, message=" ".join(msg), structure=roi, value=value,
                   limit=limit, unit=unit, source=_source(cset, c))


def _evaluate_set(ctx: DoseContext, cset: ConstraintSet) -> list[Finding]:
    n = ctx.n_fractions
    assert n is not None
    out: list[Finding] = []
    cover = ", ".join(str(k) for k in sorted(cset.fractions))
    applicable = cset.for_fractions(n)
    if not applicable:
        # a set for other fraction numbers does not concern this plan
        return [not_applicable(
            f"dose.{cset.name}.fractions",
            f"{cset.title}: no constraint for {n} fraction(s) (the set covers {cover}); "
            "not applicable to this plan.", source=cset.citation)]
    row, why = _prior_row(ctx, cset)
    if any(c.prior_rt for c in applicable):
        if row is None:
            return [not_evaluated(f"dose.{cset.name}.prior_rt",
                                  f"{cset.title}: no row applies ({why}); not evaluated.",
                                  source=cset.citation)]
        applicable = tuple(c for c in applicable if c.prior_rt in (None, row))
    skipped = [c for c in applicable if c.status == "U" and not ctx.options.use_unconfirmed]
    if skipped:
        out.append(not_evaluated(
            f"dose.{cset.name}.unconfirmed",
            f"{cset.title}: {len(skipped)} unconfirmed constraint(s) (status U) not evaluated: "
            f"{', '.join(c.id for c in skipped)}; use_unconfirmed evaluates them as labelled "
            "variants.", source=cset.citation))
        applicable = tuple(c for c in applicable if c not in skipped)
    # Prefetch bands per (ROI, subvolume) so each ROI's variants are computed once.
    wanted: dict[tuple[str, str | None], list[DVHMetric]] = defaultdict(list)
    plan: list[tuple[Constraint, list[tuple[str, Role]]]] = []
    surrogate: set[str] = set()
    for c in applicable:
        rois = [(a.roi_name, role) for role in c.roles for a in ctx.rois_with(role)]
        if not rois and Role.THECAL_SAC in c.roles:
            # No thecal sac: the spinal canal holds it, so the canal's maximum is at least
            # the sac's and the limit is checked conservatively (KB 3a: the same values
            # apply to the cord and to the thecal sac).
            rois = [(a.roi_name, Role.THECAL_SAC) for a in ctx.rois_with(Role.SPINAL_CANAL)]
            surrogate |= {name for name, _ in rois}
        plan.append((c, rois))
        metric, _ = resolve_metric(c, cset, use_unconfirmed=ctx.options.use_unconfirmed)
        for name, _role in rois:
            wanted[(name, c.subvolume)].append(metric)
    for (name, sub), metrics in wanted.items():
        ctx.prefetch_bands(name, metrics, sub)
    for c, rois in plan:
        if not rois:
            out.append(not_evaluated(
                f"dose.{cset.name}.{c.check}",
                f"No ROI with role {' or '.join(r.value for r in c.roles)}: {c.id} "
                f"({c.metric} {c.comparison.value} {c.limit:g}) not evaluated.",
                source=_source(cset, c)))
            continue
        for name, role in rois:
            f = _evaluate_one(ctx, cset, c, name, role)
            if name in surrogate:
                f = dataclasses.replace(f, message=f"{f.message} No thecal-sac ROI: evaluated on "
                                        f"{name} (spinal canal), which contains the thecal sac "
                                        "(conservative).")
            out.append(f)
    return out


def evaluate_constraint_sets(ctx: DoseContext, sets: tuple[ConstraintSet, ...]) -> list[Finding]:
    """Findings of every constraint of ``sets`` that applies to the plan.

    A plan without a fraction number or dose gives one not-evaluated finding; a set
    with no constraint for the plan's fraction number gives one per set.
    """
    names = ", ".join(s.name for s in sets)
    if ctx.n_fractions is None:
        return [not_evaluated("dose.constraints", f"The number of fractions is unknown (no RT "
                              f"Plan): constraint sets {names} not evaluated.")]
    if not ctx.has_dose:
        return [not_evaluated("dose.constraints", f"No dose grid or structure set: constraint "
                              f"sets {names} not evaluated.")]
    out: list[Finding] = []
    for cset in sets:
        out += _evaluate_set(ctx, cset)
    return out
