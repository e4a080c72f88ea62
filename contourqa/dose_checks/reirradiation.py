"""Re-irradiation with SBRT: Sahgal 2012 / HyTEC 2021 rules RE-01 to RE-04 (KB 4a).

All doses are thecal-sac (or cord) point maxima converted to EQD2 at alpha/beta = 2 Gy
(= nBED, Gy2/2), summed over courses.  The current plan's Pmax is the true maximum
of the most conservative structure present: the thecal sac if contoured (the
structure Sahgal used), else the cord PRV, else the cord (never the lower true cord
when a sac or PRV exists); the report names it.  A prior course's Pmax comes, in
order, from its RTDOSE (maximum inside the same structure) or from ``cord_max`` given
with the course.  Without either, the cumulative rules (RE-01, RE-03) are not
evaluated, unless the user opts into the labelled conservative assumption of
``rules/reirradiation.toml`` (``assume_prior_cord_max``).
"""

from __future__ import annotations

import datetime as dt

from contourqa.constraints.library import load_rules
from contourqa.constraints.model import Comparison
from contourqa.dose_checks._context import DoseContext, fmt, not_applicable, not_evaluated
from contourqa.dvh import DVHMetric, compute_dvh
from contourqa.errors import ContourQAError
from contourqa.findings import Finding, Status
from contourqa.io.rtdose import read_dose
from contourqa.radiobiology import Course, eqd2_gy
from contourqa.structures import Role

__all__ = ["evaluate_reirradiation", "months_between"]

_PMAX_ROLES = (Role.THECAL_SAC, Role.CORD_PRV, Role.SPINAL_CORD)


def _days_in_month(year: int, month: int) -> int:
    first_next = dt.date(year + month // 12, month % 12 + 1, 1)
    return (first_next - dt.date(year, month, 1)).days


def _add_months(day: dt.date, months: int) -> dt.date:
    idx = day.month - 1 + months
    year, month = day.year + idx // 12, idx % 12 + 1
    return dt.date(year, month, min(day.day, _days_in_month(year, month)))


def months_between(start: dt.date, end: dt.date) -> float:
    """Calendar months from ``start`` to ``end``: whole months plus the elapsed
    fraction of the next one (negative when ``end`` precedes ``start``)."""
    if end < start:
        return -months_between(end, start)
    whole = (end.year - start.year) * 12 + end.month - start.month
    if _add_months(start, whole) > end:
        whole -= 1
    a, b = _add_months(start, whole), _add_months(start, whole + 1)
    return whole + (end - a).days / (b - a).days


def _plan_date(ctx: DoseContext) -> dt.date | None:
    text = ctx.case.plan.plan_date if ctx.case.plan else None
    if not text:
        return None
    try:
        return dt.datetime.strptime(text.strip()[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _prior_pmax(ctx: DoseContext, index: int, course: Course, roi_names: tuple[str, ...]
                ) -> tuple[float | None, str]:
    """A prior course's Pmax (Gy) and where it came from; ``None`` when unknown."""
    paths = ctx.options.prior_dose_paths
    if paths:
        path = paths[index]
        dose = read_dose(path)
        current = ctx.case.dose
        if current is not None and dose.frame_of_reference_uid != current.frame_of_reference_uid:
            raise ContourQAError(f"prior RTDOSE {path.name} is in another frame of reference "
                                 "than the plan; a registered dose sum is needed")
        ss = ctx.case.structure_set
        rois = [r for r in (ss.rois if ss is not None else ()) if r.name in roi_names]
        pmax = max(compute_dvh(r, dose).max_gy for r in rois)
        return pmax, f"maximum of prior RTDOSE {path.name} inside {', '.join(roi_names)}"
    if course.cord_max_gy is not None:
        return course.cord_max_gy, "prior Pmax as given"
    if ctx.options.assume_prior_cord_max:
        rule = load_rules("reirradiation")["prior_pmax_assumption"]
        factor = float(rule["fraction_of_prescription"])
        return factor * course.total_dose_gy, (
            f"prior Pmax ASSUMED {factor:.0%} of the prior prescription, a conservative "
            f"assumption asked for with --assume-prior-cord-max ({rule['source']}, status "
            f"{rule['status']})")
    return None, (f"prior course {course.label} states no cord maximum: give cord_max= with "
                  "--prior, a prior RTDOSE with --prior-dose, or opt into a labelled "
                  "conservative assumption with --assume-prior-cord-max")


def _pmax_structure(ctx: DoseContext) -> tuple[Role | None, tuple[str, ...]]:
    """The most conservative Pmax structure present: thecal sac, else cord PRV, else cord."""
    for role in _PMAX_ROLES:
        names = tuple(a.roi_name for a in ctx.rois_with(role))
        if names:
            return role, names
    return None, ()


def _sbrt_pmax(ctx: DoseContext, role: Role, names: tuple[str, ...]
               ) -> tuple[float | None, str, str]:
    """The plan's Pmax over the ROIs of ``role``: (Gy or None, ROI, reason if None)."""
    best: tuple[float, str] | None = None
    for name in names:
        problem = ctx.oar_problem(name, role)
        if problem is not None:
            return None, name, problem
        try:
            v = ctx.metric(name, DVHMetric.parse("Dmax"))
        except ContourQAError as exc:
            return None, name, str(exc)
        if best is None or v > best[0]:
            best = (v, name)
    assert best is not None
    return best[0], best[1], ""


def evaluate_reirradiation(ctx: DoseContext) -> list[Finding]:
    """RE-01 cumulative EQD2, RE-02 SBRT EQD2, RE-03 ratio, RE-04 interval findings.

    RE-02 needs only the plan; RE-01 and RE-03 also need every prior course's Pmax,
    and are not evaluated without it (unless the labelled assumption is asked for).
    """
    courses = ctx.options.prior_courses
    rules = load_rules("reirradiation")
    if not courses:
        return [not_applicable("dose.reirradiation", "No prior radiotherapy course given "
                               "(--prior): a first course; re-irradiation limits do not "
                               "apply.")]
    n = ctx.n_fractions
    ab = float(rules["alpha_beta_gy"])
    role, names = _pmax_structure(ctx)
    cumulative_codes = ("dose.reirradiation_cumulative_eqd2", "dose.reirradiation_ratio")
    sbrt_code = "dose.reirradiation_sbrt_eqd2"
    findings: list[Finding] = []
    pmax = None
    roi = ""
    reason = ""
    if n is None or not ctx.has_dose:
        reason = "the number of fractions or the dose grid is unknown"
    elif role is None:
        reason = "no thecal sac, cord PRV or spinal cord ROI"
    else:
        pmax, roi, reason = _sbrt_pmax(ctx, role, names)
    if pmax is None or role is None or n is None:
        return [*(not_evaluated(c, f"Re-irradiation not evaluated: {reason}.",
                                structure=roi or None)
                  for c in (cumulative_codes[0], sbrt_code, cumulative_codes[1])),
                _interval(ctx, courses, rules["interval"])]
    prior_eqd2: list[tuple[float, str]] = []
    prior_reason = ""
    for i, course in enumerate(courses):
        try:
            p, how = _prior_pmax(ctx, i, course, names)
        except (ContourQAError, ValueError) as exc:
            prior_reason = f"prior course {course.label}: {exc}"
            break
        if p is None:
            prior_reason = how
            break
        e = eqd2_gy(total_dose_gy=p, n_fractions=course.n_fractions, alpha_beta_gy=ab)
        prior_eqd2.append((e, f"{course.label}: Pmax {fmt(p, 'Gy')} ({how}) -> EQD2 "
                              f"{fmt(e, 'Gy')}"))
    sbrt = eqd2_gy(total_dose_gy=pmax, n_fractions=n, alpha_beta_gy=ab)
    others = [a for r in _PMAX_ROLES if r is not role for a in ctx.rois_with(r)]
    used = (f"SBRT Pmax {fmt(pmax, 'Gy')} in {roi} ({role.value}, true maximum; the most "
            "conservative structure present: thecal sac, else cord PRV, else cord"
            + (f"; not used: {', '.join(a.roi_name for a in others)}" if others else "")
            + f") over {n} fx -> EQD2 {fmt(sbrt, 'Gy')}")
    rows: list[tuple[str, str, float, str | None, str]] = [
        ("sbrt_eqd2", sbrt_code, sbrt, "Gy", "SBRT-course Pmax EQD2")]
    if prior_reason:
        findings += [not_evaluated(
            c, f"Cumulative re-irradiation not evaluated: {prior_reason}. {used}.",
            structure=roi) for c in cumulative_codes]
    else:
        total = sbrt + sum(e for e, _ in prior_eqd2)
        ratio = sbrt / total if total > 0 else 0.0
        rows = [("cumulative_eqd2", cumulative_codes[0], total, "Gy", "cumulative Pmax EQD2"),
                *rows, ("ratio", cumulative_codes[1], ratio, None,
                        "SBRT share of the cumulative Pmax EQD2")]
    detail = "; ".join([used, *(t for _, t in prior_eqd2), f"alpha/beta {ab:g} Gy"]) + "."
    for key, code, value, unit, label in rows:
        rule = rules[key]
        limit = float(rule.get("max_gy", rule.get("max_ratio")))
        ok = Comparison(rule["comparison"]).holds(value, limit)
        findings.append(Finding(
            code=code, status=Status.PASS if ok else Status.FAIL, structure=roi,
            value=value, limit=limit, unit=unit,
            source=f"{rule['rule']}: {rule['source']} ({rule['status']})",
            message=(f"{label} {fmt(value, unit or '')} {rule['comparison']} {limit:g}: "
                     f"{'met' if ok else 'not met'}. {detail}")))
    findings.append(_interval(ctx, courses, rules["interval"]))
    return findings


def _interval(ctx: DoseContext, courses: tuple[Course, ...], rule: dict) -> Finding:  # type: ignore[type-arg]
    code = "dose.reirradiation_interval"
    source = f"{rule['rule']}: {rule['source']} ({rule['status']})"
    plan_date = _plan_date(ctx)
    dated = [c for c in courses if c.end_date is not None]
    if plan_date is None or not dated:
        missing = "the plan date (RTPlanDate)" if plan_date is None else "the prior course date"
        return not_evaluated(code, f"Interval since prior radiotherapy not evaluated: "
                                   f"{missing} is unknown (give date= with --prior).",
                             source=source)
    last = max(dated, key=lambda c: c.end_date)  # type: ignore[arg-type, return-value]
    assert last.end_date is not None
    months = months_between(last.end_date, plan_date)
    limit = float(rule["min_months"])
    ok = Comparison(rule["comparison"]).holds(months, limit)
    return Finding(code=code, status=Status.PASS if ok else Status.FAIL, value=months,
                   limit=limit, unit="months", source=source,
                   message=(f"{fmt(months)} months from the prior course {last.label} "
                            f"({last.end_date.isoformat()}) to the plan ({plan_date.isoformat()}); "
                            f"required {rule['comparison']} {limit:g}: "
                            f"{'met' if ok else 'not met'}."))
