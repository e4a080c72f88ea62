"""Vertebral compression fracture risk flag (KB 0.7, 6a, 6b).

The output is a flag with its reasons, not a score: the literature gives none.  Dose
per fraction comes from the plan; the other factors from :class:`PatientFactors`
(the vertebral-body share and the lytic lesion can be filled from the images).  Each
patient factor names its source: ``(stated)`` or how it was measured
(``PatientFactors.evidence``).
"""

from __future__ import annotations

from contourqa.constraints.library import load_rules
from contourqa.constraints.model import Comparison
from contourqa.dose_checks._context import DoseContext, fmt
from contourqa.findings import Finding, Status

__all__ = ["evaluate_vcf"]


def evaluate_vcf(ctx: DoseContext) -> list[Finding]:
    """One ``vcf.risk`` finding: WARN with reasons when any factor is present; PASS only
    when every factor is known and absent, else NOT_EVALUATED naming the unknown ones."""
    rules = load_rules("vcf")
    p = ctx.options.patient
    reasons: list[str] = []
    unknown: list[str] = []
    absent: list[str] = []   # factors known absent, with their source
    below: list[str] = []    # numeric factors known and under their threshold
    sources: list[str] = []
    dpf = None
    if ctx.prescription_gy is not None and ctx.n_fractions:
        dpf = ctx.prescription_gy / ctx.n_fractions
    rule = rules["dose_per_fraction"]
    if dpf is None:
        unknown.append("dose per fraction")
    elif Comparison(rule["comparison"]).holds(dpf, float(rule["min_gy"])):
        reasons.append(f"dose per fraction {fmt(dpf, 'Gy')} {rule['comparison']} "
                       f"{float(rule['min_gy']):g} Gy (the strongest predictor)")
        sources.append(rule["source"])

    def origin(field: str) -> str:
        """Where a patient factor came from: measured (its evidence) or stated."""
        return f" ({p.evidence[field]})" if field in p.evidence else " (stated)"

    def numeric(value: float | None, field: str, key: str, limit_key: str, label: str,
                unit: str) -> None:
        r = rules[key]
        if value is None:
            unknown.append(label + (f" ({p.evidence[field]})" if field in p.evidence else ""))
        elif Comparison(r["comparison"]).holds(value, float(r[limit_key])):
            reasons.append(f"{label} {fmt(value, unit)} {r['comparison']} "
                           f"{fmt(float(r[limit_key]), unit)}{origin(field)}")
            sources.append(r["source"])
        else:
            below.append(f"{label} {fmt(value, unit)}{origin(field)}")

    numeric(p.vertebral_body_involved_percent, "vertebral_body_involved_percent",
            "vertebral_body_involved", "min_percent", "vertebral body involved", "%")
    numeric(p.age_years, "age_years", "age", "min_years", "age", "years")
    for key, value, label in (("lytic", p.lytic, "lytic lesion"),
                              ("baseline_vcf", p.baseline_vcf, "baseline VCF"),
                              ("deformity", p.deformity, "spinal deformity")):
        if value is None:
            unknown.append(label + (f" ({p.evidence[key]})" if key in p.evidence else ""))
        elif value:
            reasons.append(label + origin(key))
            sources.append(rules[key]["source"])
            if key == "lytic" and key in p.evidence:  # measured: cite the derived thresholds
                sources.append(rules["gtv_density"]["source"])
        else:
            absent.append(f"{label}{origin(key)}")
    sins = rules["sins"]
    if p.sins_total is not None:
        if not 0 <= p.sins_total <= int(sins["max_total"]):
            raise ValueError(f"SINS total must be 0-{sins['max_total']}, got {p.sins_total}.")
        if p.sins_total >= int(sins["unstable_min"]):
            reasons.append(f"SINS {p.sins_total}{origin('sins_total')}: unstable; surgical "
                           "consultation warranted")
            sources.append(sins["source"])
        elif p.sins_total >= int(sins["potentially_unstable_min"]):
            reasons.append(f"SINS {p.sins_total}{origin('sins_total')}: potentially unstable; "
                           "surgical consultation warranted")
            sources.append(sins["source"])
    tail = f" Not known: {', '.join(unknown)}." if unknown else ""
    if below:
        tail = f" Below threshold: {', '.join(below)}.{tail}"
    if absent:
        tail = f" Absent: {', '.join(absent)}.{tail}"
    if reasons:
        return [Finding(code="vcf.risk", status=Status.WARN, value=dpf, unit="Gy",
                        message=f"VCF risk factors present: {'; '.join(reasons)}.{tail}",
                        source="; ".join(dict.fromkeys(sources)))]
    if unknown:
        # Absent among the known factors says nothing about the unknown ones: no pass.
        known = f" (dose per fraction {fmt(dpf, 'Gy')})" if dpf is not None else ""
        return [Finding(code="vcf.risk", status=Status.NOT_EVALUATED, value=dpf,
                        unit="Gy" if dpf is not None else None,
                        message=(f"VCF risk not evaluated: no risk factor present among those "
                                 f"known{known}, but {len(unknown)} factor(s) are unknown.{tail}"
                                 " State them to evaluate it (command line: --age, "
                                 "--vb-involved, --[no-]lytic, --[no-]baseline-vcf, "
                                 "--[no-]deformity)."),
                        source=rule["source"])]
    return [Finding(code="vcf.risk", status=Status.PASS, value=dpf, unit="Gy",
                    message=(f"No VCF risk factor present; every factor is known (dose per "
                             f"fraction {fmt(dpf, 'Gy')}).{tail}"),
                    source="; ".join(dict.fromkeys(
                        [rule["source"]] + [rules[k]["source"] for k in
                                            ("vertebral_body_involved", "age", "lytic",
                                             "baseline_vcf", "deformity")])))]
