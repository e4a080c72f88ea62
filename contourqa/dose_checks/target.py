"""Target dose: GTV Dmin/D98/D95 (local-control predictors) and PTV coverage.

Knowledge base 0.4, 0.6 and 5.  Missing coverage is a warning, never a failure:
normal-tissue constraints take priority over target coverage (review 0.4).  A target
partly outside the dose grid gets a verdict only where the missing part cannot change
it (GTV Dmin below its threshold; PTV coverage with both bounds on one side).
"""

from __future__ import annotations

from typing import Any

from contourqa.constraints.library import load_rules
from contourqa.constraints.model import Comparison
from contourqa.dose_checks._context import DoseContext, fmt, not_applicable, not_evaluated
from contourqa.dose_checks.prescription import prescription_above_dose_max
from contourqa.dvh import DVHMetric
from contourqa.errors import ContourQAError
from contourqa.findings import Finding, Status
from contourqa.radiobiology import bed_gy, total_dose_for_bed_gy
from contourqa.structures import Role

__all__ = ["evaluate_target_dose", "gtv_dmin_threshold_gy"]

_TUMOUR = "tumour"


def _variant(table: dict[str, Any], name: str, what: str) -> dict[str, Any]:
    if name not in table:
        raise ValueError(f"Unknown {what} variant {name!r}; known: {', '.join(table)}.")
    return table[name]


def gtv_dmin_threshold_gy(variant: dict[str, Any], *, n_fractions: int,
                          alpha_beta_gy: float | None) -> tuple[float | None, str]:
    """The GTV Dmin threshold for ``n_fractions`` and how it was obtained.

    The published threshold is for ``variant["fractions"]`` (one); other schedules
    get the total dose of equal BED at the tumour ``alpha_beta_gy``, or ``None``
    when no alpha/beta is given.
    """
    base_gy = float(variant["dmin_gy"])
    base_n = int(variant["fractions"])
    if n_fractions == base_n:
        return base_gy, f"published for {base_n} fx"
    if alpha_beta_gy is None:
        return None, (f"the threshold is published for {base_n} fx only; converting it to "
                      f"{n_fractions} fx needs a tumour alpha/beta (option alpha_beta_gy "
                      "'tumour'), which the knowledge base does not give")
    bed = bed_gy(total_dose_gy=base_gy, n_fractions=base_n, alpha_beta_gy=alpha_beta_gy)
    total = total_dose_for_bed_gy(bed_gy=bed, n_fractions=n_fractions, alpha_beta_gy=alpha_beta_gy)
    return total, (f"{base_gy:g} Gy/{base_n} fx converted at equal BED ({fmt(bed, 'Gy')}, tumour "
                   f"alpha/beta {alpha_beta_gy:g} Gy) to {fmt(total, 'Gy')} in {n_fractions} fx")


def _outside_cc(ctx: DoseContext, roi_name: str) -> str:
    """``"<x> cc"`` of the ROI outside the dose grid (beyond the tolerance of
    ``rules/oar_extent.toml``), or ``""``."""
    tol = float(load_rules("oar_extent")["dose_coverage"]["tolerance_cc"])
    try:
        cc = ctx.dvh(roi_name).volume_outside_dose_cc
    except ContourQAError:
        return ""
    return fmt(cc, "cc") if cc > tol else ""


def _gtv(ctx: DoseContext) -> list[Finding]:
    rules = load_rules("target_dose")
    variant = _variant(rules["gtv_dmin"], ctx.options.gtv_dmin_variant, "GTV Dmin")
    source = f"{ctx.options.gtv_dmin_variant}: {variant['source']} ({variant['status']})"
    reported = rules["gtv_reported"]
    gtvs = ctx.rois_with(Role.GTV)
    if not gtvs:
        return [not_evaluated("dose.gtv_dmin", "No GTV: GTV Dmin, D98 and D95 (local-control "
                              "predictors) not evaluated.", source=source)]
    if not ctx.has_dose:
        return [not_evaluated("dose.gtv_dmin", "No dose grid: GTV dose not evaluated.",
                              source=source)]
    n = ctx.n_fractions
    ab, ab_from = ctx.alpha_beta_gy(_TUMOUR)
    out: list[Finding] = []
    for a in gtvs:
        values: dict[str, float | None] = {}
        for text in reported["metrics"]:
            values[text] = ctx.try_metric(a.roi_name, text)
        summary = ", ".join(f"{k} {fmt(v, 'Gy')}" for k, v in values.items())
        for text in reported["metrics"]:
            if text == "Dmin":
                continue
            code = f"dose.gtv_{text.lower().rstrip('%')}"
            # reported only: no threshold, so it cannot change the verdict
            out.append(not_applicable(
                code, f"{a.roi_name}: {text} = {fmt(values[text], 'Gy')} (reported: a "
                f"local-control predictor with no confirmed threshold).", structure=a.roi_name,
                source=f"{reported['source']} ({reported['status']})", value=values[text],
                unit="Gy"))
        dmin = values.get("Dmin")
        if dmin is None:
            out.append(not_evaluated("dose.gtv_dmin", f"{a.roi_name}: Dmin not evaluable.",
                                     structure=a.roi_name, source=source))
            continue
        if n is None:
            out.append(not_evaluated("dose.gtv_dmin", f"{a.roi_name}: {summary}; the number of "
                                     "fractions is unknown.", structure=a.roi_name, source=source))
            continue
        threshold, how = gtv_dmin_threshold_gy(variant, n_fractions=n, alpha_beta_gy=ab)
        if threshold is None:
            # the threshold is published for other fraction numbers: not applicable to
            # this plan unless a tumour alpha/beta converts it (the message says how)
            out.append(Finding(code="dose.gtv_dmin", status=Status.NOT_APPLICABLE,
                               message=f"{a.roi_name}: {summary}; {how}.", structure=a.roi_name,
                               value=dmin, unit="Gy", source=source))
            continue
        if ab is not None and n != int(variant["fractions"]):
            how += f" (alpha/beta from {ab_from})"
        comparison = Comparison(variant["comparison"])
        band = ctx.band(a.roi_name, DVHMetric.parse("Dmin"))
        outside = _outside_cc(ctx, a.roi_name)
        if outside and comparison.holds(dmin, threshold):
            # The part outside the grid may hold a lower minimum: only "below" is certain.
            out.append(Finding(
                code="dose.gtv_dmin", status=Status.NOT_EVALUATED, structure=a.roi_name,
                value=dmin, limit=threshold, unit="Gy", source=source,
                message=(f"{a.roi_name}: {outside} lies outside the dose grid; Dmin "
                         f"{fmt(dmin, 'Gy')} of the part inside is only an upper bound, so "
                         f"{comparison.value} {fmt(threshold, 'Gy')} ({how}) is not evaluated. "
                         f"{summary}.")))
            continue
        if not comparison.holds(dmin, threshold):
            status, verdict = Status.WARN, "below the threshold associated with local control"
        elif band is not None and not all(comparison.holds(b, threshold) for b in band):
            status, verdict = Status.WARN, "met, but the DVH uncertainty band crosses it"
        else:
            status, verdict = Status.PASS, "met"
        band_text = f" Band {fmt(band[0], 'Gy')} to {fmt(band[1], 'Gy')}." if band else ""
        out.append(Finding(
            code="dose.gtv_dmin", status=status, structure=a.roi_name, value=dmin,
            limit=threshold, unit="Gy", source=source,
            message=(f"{a.roi_name}: Dmin {fmt(dmin, 'Gy')} {comparison.value} "
                     f"{fmt(threshold, 'Gy')} ({how}): {verdict}. {summary}.{band_text}")))
    return out


def _ptv(ctx: DoseContext) -> list[Finding]:
    rules = load_rules("target_dose")
    name = ctx.options.ptv_coverage_variant
    variant = _variant(rules["ptv_coverage"], name, "PTV coverage")
    source = f"{name}: {variant['source']} ({variant['status']})"
    ptvs = ctx.rois_with(Role.PTV)
    if not ptvs:
        return [not_evaluated("dose.ptv_coverage", "No PTV: coverage not evaluated.",
                              source=source)]
    if not ctx.has_dose:
        return [not_evaluated("dose.ptv_coverage", "No dose grid: PTV coverage not evaluated.",
                              source=source)]
    above = prescription_above_dose_max(ctx)
    implausible = []  # PTVs whose prescription (the plan's) no voxel receives
    out = []
    limit = float(variant["min_percent"])
    comparison = Comparison(variant["comparison"])
    for a in ptvs:
        rx = a.dose_gy if a.dose_gy else ctx.prescription_gy
        rx_from = "the PTV name" if a.dose_gy else "the plan"
        if above is not None and not a.dose_gy:
            implausible.append(a.roi_name)
            continue
        if rx is None:
            out.append(not_evaluated("dose.ptv_coverage", f"{a.roi_name}: prescription dose "
                                     "unknown; coverage not evaluated.", structure=a.roi_name,
                                     source=source))
            continue
        try:
            dvh = ctx.dvh(a.roi_name)
            cov = 100.0 * dvh.volume_at_dose_cc(rx) / dvh.volume_in_dose_cc
        except (ContourQAError, ZeroDivisionError) as exc:
            out.append(not_evaluated("dose.ptv_coverage", f"{a.roi_name}: coverage not "
                                     f"evaluated: {exc}.", structure=a.roi_name, source=source))
            continue
        outside = _outside_cc(ctx, a.roi_name)
        if outside:
            # Coverage of the whole lies between "nothing outside is covered" and
            # "everything outside is"; a verdict only when both bounds agree.
            covered, total = dvh.volume_at_dose_cc(rx), dvh.volume_cc
            low = 100.0 * covered / total
            high = 100.0 * (covered + dvh.volume_outside_dose_cc) / total
            if comparison.holds(low, limit) != comparison.holds(high, limit):
                out.append(Finding(
                    code="dose.ptv_coverage", status=Status.NOT_EVALUATED, structure=a.roi_name,
                    value=cov, limit=limit, unit="%", source=source,
                    message=(f"{a.roi_name}: {outside} lies outside the dose grid; coverage by "
                             f"the prescription {fmt(rx, 'Gy')} is between {fmt(low, '%')} and "
                             f"{fmt(high, '%')} of the volume, on both sides of "
                             f"{comparison.value} {limit:g}%: not evaluated.")))
                continue
            cov = low
        ok = comparison.holds(cov, limit)
        status = Status.PASS if ok else Status.WARN
        note = ""
        top = variant.get("typical_max_percent")
        if top is not None and cov > float(top):
            note = f" Above the typical {limit:g}-{float(top):g}% range."
        out.append(Finding(
            code="dose.ptv_coverage", status=status, structure=a.roi_name, value=cov,
            limit=limit, unit="%", source=source,
            message=(f"{a.roi_name}: {fmt(cov, '%')} of the volume receives the prescription "
                     f"{fmt(rx, 'Gy')} (from {rx_from}); expected {comparison.value} {limit:g}%: "
                     f"{'met' if ok else 'not met (normal-tissue constraints take priority)'}."
                     f"{note}")))
    if implausible and above is not None:  # stated once, not once per PTV
        out.append(not_evaluated(
            "dose.ptv_coverage", f"Coverage of {', '.join(implausible)} not evaluated: the "
            f"prescription {fmt(above[0], 'Gy')} exceeds the plan's maximum dose "
            f"{fmt(above[1], 'Gy')} (see prescription.consistency).", source=source))
    return out


def evaluate_target_dose(ctx: DoseContext) -> list[Finding]:
    """GTV Dmin/D98/D95 and PTV coverage findings."""
    return _gtv(ctx) + _ptv(ctx)
