"""Constraint-set checks: each applicable constraint on each ROI of its roles.

Codes are ``dose.<set>.<check>`` (e.g. ``dose.hytec2021.cord_pmax``), one finding per
ROI, so the true cord and the cord PRV are reported side by side (review 0.5: which
one carries the limit is unsettled).  Point maxima are reported as the true maximum
and as D0.03cc and D0.035cc, and the set's own definition is the one compared,
except where that definition is unconfirmed (U): then the true maximum, the
stricter value, is compared unless ``use_unconfirmed`` is set.

Without an ROI of its roles, a constraint is not evaluated, or not applicable for an
organ contoured only near the target (``rules/oar_presence.toml``).  Organs and
fraction numbers with no published value (``data/coverage/gaps.toml``) give
``dose.gap.<id>``: not evaluated by design when the organ is contoured.

A constraint is judged only when its ROI is contoured where it matters and has dose
there (:meth:`DoseContext.oar_problem`, thresholds in ``rules/oar_extent.toml``);
otherwise it is not evaluated, except that a maximum-type value already over its
upper limit on the part that is there is a failure (a lower bound).  With a RELATIVE
dose grid, ``dose.relative_scaling`` states the scaling assumption and the reference
dose at which each absolute verdict would change.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

from contourqa.constraints.library import coverage_gaps, load_rules
from contourqa.constraints.model import Constraint, ConstraintSet
from contourqa.dose_checks._context import DoseContext, fmt, not_applicable, not_evaluated
from contourqa.dvh import DVHMetric, MetricKind
from contourqa.errors import ContourQAError
from contourqa.findings import Finding, Status
from contourqa.radiobiology import Course, eqd2_gy
from contourqa.structures import Role

__all__ = ["evaluate_constraint_sets", "evaluate_coverage_gaps", "resolve_metric",
           "status_against_limit"]

_SIDE_BY_SIDE = ("Dmax", "D0.03cc", "D0.035cc")
#: What a coverage-gap finding reports about the organ (values, never judged).
_GAP_METRICS = ("Dmax", "D0.03cc", "Dmean")
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
    problem = ctx.oar_problem(roi, role)
    try:
        limit, caution = c.limit_in_unit(ctx.prescription_gy)
        value = ctx.metric(roi, metric, c.subvolume)
    except (ContourQAError, ValueError) as exc:
        return not_evaluated(code, f"{where}: {metric} not evaluated: {problem or exc}.",
                             structure=roi, source=_source(cset, c))
    holds = c.comparison.holds(value, limit)
    if problem is not None:
        if holds or not _lower_bound(c, metric):
            return not_evaluated(code, f"{where}: {metric} not evaluated: {problem}.",
                                 structure=roi, source=_source(cset, c))
        return Finding(
            code=code, status=Status.FAIL if c.severity == "fail" else Status.WARN,
            structure=roi, value=value, limit=limit, unit=c.unit, source=_source(cset, c),
            message=(f"{where}: {metric} is at least {fmt(value, c.unit)}, against "
                     f"{c.comparison.value} {fmt(limit, c.unit)} for {n} fx: limit not met. "
                     "The value is a lower bound, from the part with dose and contours only "
                     f"({problem}): the missing part can only raise it."))
    band = ctx.band(roi, metric, c.subvolume)
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
    if ctx.relative_reference_gy is not None and _absolute(c, metric):
        msg.append(f"Dose from a RELATIVE RTDOSE, 1.0 ASSUMED to be "
                   f"{fmt(ctx.relative_reference_gy, 'Gy')} (see dose.relative_scaling).")
    return Finding(code=code, status=status, message=" ".join(msg), structure=roi, value=value,
                   limit=limit, unit=unit, source=_source(cset, c))


def _lower_bound(c: Constraint, metric: DVHMetric) -> bool:
    """Whether the metric on part of the organ is a lower bound of its value on the
    whole, so that exceeding an upper limit there is a valid failure."""
    return c.comparison.is_upper and not c.subvolume and metric.kind in (
        MetricKind.DMAX, MetricKind.DOSE_AT_CC, MetricKind.VOLUME_CC_AT_GY)


def _absolute(c: Constraint, metric: DVHMetric) -> bool:
    """Whether the result depends on the absolute dose scale (not a share of the
    prescription compared with a share of it)."""
    return not (c.of_prescription or metric.needs_prescription)


def _relative_scaling(ctx: DoseContext, absolute: list[tuple[Finding, Constraint]]
                      ) -> list[Finding]:
    """One finding stating the RELATIVE-dose assumption and, for each absolute dose
    constraint evaluated, the reference dose at which its verdict would change."""
    ref = ctx.relative_reference_gy
    if ref is None:
        return []
    lines = []
    for f, c in absolute:
        if f.value is None or f.limit is None or f.status is Status.NOT_EVALUATED:
            continue
        head = (f"{f.code} {f.structure}: {fmt(f.value, f.unit or '')} vs "
                f"{c.comparison.value} {fmt(f.limit, f.unit or '')} ({f.status.value})")
        if f.unit != "Gy" or not f.value > 0:
            lines.append(f"{head}, a volume at an absolute dose level: it moves with the "
                         "reference too")
            continue
        k = f.limit / f.value
        holds = c.comparison.holds(f.value, f.limit)
        changes = "above" if holds == c.comparison.is_upper else "below"
        lines.append(f"{head}: the verdict changes if the reference is {changes} {k:.2f} x "
                     f"{fmt(ref, 'Gy')} = {fmt(k * ref, 'Gy')}")
    text = "; ".join(lines) if lines else "no absolute dose constraint was evaluated"
    return [Finding(
        code="dose.relative_scaling", status=Status.WARN, value=ref, unit="Gy",
        source="DICOM PS3.3 C.8.8.3 (DoseUnits RELATIVE: relative to an implicit reference)",
        message=(f"The dose grid is RELATIVE and was scaled with 1.0 = {fmt(ref, 'Gy')} (the "
                 "prescription): an ASSUMPTION every absolute dose constraint rests on. A "
                 "true reference k times this one multiplies every dose by k. Effect: "
                 f"{text}. Limits in percent of the prescription are not affected; the "
                 "GTV Dmin criterion and the re-irradiation EQD2 rest on the assumption "
                 "too."))]


def _evaluate_set(ctx: DoseContext, cset: ConstraintSet,
                  absolute: list[tuple[Finding, Constraint]]) -> list[Finding]:
    """The findings of one set; those of absolute-dose constraints are also appended to
    ``absolute`` with their constraint."""
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
            out.append(_absent(f"dose.{cset.name}.{c.check}", c.roles,
                               f"{c.id} ({c.metric} {c.comparison.value} {c.limit:g})",
                               source=_source(cset, c)))
            continue
        for name, role in rois:
            f = _evaluate_one(ctx, cset, c, name, role)
            if name in surrogate:
                f = dataclasses.replace(f, message=f"{f.message} No thecal-sac ROI: evaluated on "
                                        f"{name} (spinal canal), which contains the thecal sac "
                                        "(conservative).")
            metric, _ = resolve_metric(c, cset, use_unconfirmed=ctx.options.use_unconfirmed)
            if _absolute(c, metric):
                absolute.append((f, c))
            out.append(f)
    return out


def _absent(code: str, roles: tuple[Role, ...], what: str, *, source: str) -> Finding:
    """No ROI of ``roles``: not applicable for an organ contoured only near the target
    (``rules/oar_presence.toml``), else not evaluated (the case is incomplete)."""
    rule = load_rules("oar_presence")["absent_not_applicable"]
    names = " or ".join(r.value for r in roles)
    if all(r.value in rule["roles"] for r in roles):
        return not_applicable(
            code, f"No ROI with role {names}: {what} does not concern this plan (an organ "
                  "contoured where it lies near the target; contour it to have it checked).",
            source=f"{source}; {rule['source']} (status {rule['status']})")
    return not_evaluated(code, f"No ROI with role {names}: {what} not evaluated.",
                         source=source)


def evaluate_coverage_gaps(ctx: DoseContext, sets: tuple[ConstraintSet, ...]) -> list[Finding]:
    """The coverage gaps for the plan's fraction number (``dose.gap.<id>``, from
    ``data/coverage/gaps.toml``): not evaluated by design for each ROI of the organ,
    not applicable without one.  A set of ``sets`` with a constraint on the organ for
    that fraction number closes the gap.  Nothing without a fraction number or dose
    (:func:`evaluate_constraint_sets` says so)."""
    n = ctx.n_fractions
    if n is None or not ctx.has_dose:
        return []
    out: list[Finding] = []
    for gap in coverage_gaps():
        if n not in gap.fractions:
            continue
        roles = tuple(r for r in gap.roles
                      if not any(r in c.roles for cs in sets for c in cs.for_fractions(n)))
        if not roles:
            continue
        source = f"knowledge base section {gap.kb_section}: {gap.reason}"
        what = f"no published constraint for the {gap.name} in {n} fraction(s)"
        rois = [(a.roi_name, role) for role in roles for a in ctx.rois_with(role)]
        if not rois:
            out.append(_absent(gap.code, roles, f"the gap ({what})", source=source))
            continue
        for name, role in rois:
            # the values are reported, never judged (issue 18: "not evaluated, with the value")
            shown = {t: ctx.try_metric(name, t) for t in _GAP_METRICS}
            values = ", ".join(f"{t} {fmt(v, 'Gy')}" for t, v in shown.items() if v is not None)
            dmax = shown.get("Dmax")
            out.append(Finding(
                code=gap.code, status=Status.NOT_EVALUATED, structure=name, value=dmax,
                unit="Gy" if dmax is not None else None, source=source,
                message=(f"{name} ({role.value}): {what} in the knowledge base "
                         f"({gap.reason}): not evaluated by design, no limit is invented. "
                         f"{values or 'No dose value could be computed'} (reported, not "
                         "judged); judge it against your institution's limit (an "
                         "institutional constraint file closes this gap).")))
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
    absolute: list[tuple[Finding, Constraint]] = []
    for cset in sets:
        out += _evaluate_set(ctx, cset, absolute)
    return out + _relative_scaling(ctx, absolute)
