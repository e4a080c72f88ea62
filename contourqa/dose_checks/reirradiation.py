"""Re-irradiation with SBRT: Sahgal 2012 / HyTEC 2021 rules RE-01 to RE-04 (KB 4a).

All doses are thecal-sac (or cord) point maxima converted to EQD2 at alpha/beta = 2 Gy
(= nBED, Gy2/2), summed over courses.  The current plan's Pmax is the true maximum
of the thecal sac if contoured (the structure Sahgal used), else the cord, else the
cord PRV; the report names it.  A prior course's Pmax comes, in order, from its
RTDOSE (maximum inside the same structure), from ``cord_max`` given with the course,
or, failing both, from its prescription dose (an assumption the report states).
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

_PMAX_ROLES = (Role.THECAL_SAC, Role.SPINAL_CORD, Role.CORD_PRV)


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


def _prior_pmax(ctx: DoseContext, index: int, course: Course, roi_name: str
                ) -> tuple[float, str]:
    paths = ctx.options.prior_dose_paths
    if paths:
        path = paths[index]
        dose = read_dose(path)
        current = ctx.case.dose
        if current is not None and dose.frame_of_reference_uid != current.frame_of_reference_uid:
            raise ContourQAError(f"prior RTDOSE {path.name} is in another frame of reference "
                                 "than the plan; a registered dose sum is needed")
        roi = next(r for r in ctx.case.structure_set.rois if r.name == roi_name)  # type: ignore[union-attr]
        pmax = compute_dvh(roi, dose).max_gy
        return pmax, f"maximum of prior RTDOSE {path.name} inside {roi_name}"
    if course.cord_max_gy is not None:
        return course.cord_max_gy, "prior Pmax as given"
    return course.total_dose_gy, ("prior Pmax ASSUMED equal to the prior prescription (give "
                                  "cord_max= or a prior RTDOSE)")


def evaluate_reirradiation(ctx: DoseContext) -> list[Finding]:
    """RE-01 cumulative EQD2, RE-02 SBRT EQD2, RE-03 ratio, RE-04 interval findings."""
    courses = ctx.options.prior_courses
    rules = load_rules("reirradiation")
    if not courses:
        return [not_applicable("dose.reirradiation", "No prior radiotherapy course given "
                               "(--prior): a first course; re-irradiation limits do not "
                               "apply.")]
    n = ctx.n_fractions
    ab = float(rules["alpha_beta_gy"])
    roi = next((a for role in _PMAX_ROLES for a in ctx.rois_with(role)), None)
    codes = ("dose.reirradiation_cumulative_eqd2", "dose.reirradiation_sbrt_eqd2",
             "dose.reirradiation_ratio")
    findings: list[Finding] = []
    pmax = None
    reason = ""
    if n is None or not ctx.has_dose:
        reason = "the number of fractions or the dose grid is unknown"
    elif roi is None:
        reason = "no thecal sac, spinal cord or cord PRV ROI"
    else:
        try:
            pmax = ctx.metric(roi.roi_name, DVHMetric.parse("Dmax"))
        except ContourQAError as exc:
            reason = str(exc)
    prior_eqd2: list[tuple[float, str]] = []
    if pmax is not None and roi is not None:
        for i, course in enumerate(courses):
            try:
                p, how = _prior_pmax(ctx, i, course, roi.roi_name)
            except (ContourQAError, ValueError) as exc:
                reason = f"prior course {course.label}: {exc}"
                pmax = None
                break
            e = eqd2_gy(total_dose_gy=p, n_fractions=course.n_fractions, alpha_beta_gy=ab)
            prior_eqd2.append((e, (f"{course.label}: Pmax {fmt(p, 'Gy')} ({how}) -> EQD2 "
                                  f"{fmt(e, 'Gy')}")))
    if pmax is None or roi is None or n is None:
        findings += [not_evaluated(c, f"Re-irradiation not evaluated: {reason}.") for c in codes]
    else:
        sbrt = eqd2_gy(total_dose_gy=pmax, n_fractions=n, alpha_beta_gy=ab)
        total = sbrt + sum(e for e, _ in prior_eqd2)
        ratio = sbrt / total if total > 0 else 0.0
        detail = (f"SBRT Pmax {fmt(pmax, 'Gy')} in {roi.roi_name} ({roi.role.value}, true "
                  f"maximum) over {n} fx -> EQD2 {fmt(sbrt, 'Gy')}; "
                  + "; ".join(t for _, t in prior_eqd2) + f"; alpha/beta {ab:g} Gy.")
        for key, code, value, unit, label in (
                ("cumulative_eqd2", codes[0], total, "Gy", "cumulative Pmax EQD2"),
                ("sbrt_eqd2", codes[1], sbrt, "Gy", "SBRT-course Pmax EQD2"),
                ("ratio", codes[2], ratio, None, "SBRT share of the cumulative Pmax EQD2")):
            rule = rules[key]
            limit = float(rule.get("max_gy", rule.get("max_ratio")))
            ok = Comparison(rule["comparison"]).holds(value, limit)
            findings.append(Finding(
                code=code, status=Status.PASS if ok else Status.FAIL, structure=roi.roi_name,
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
