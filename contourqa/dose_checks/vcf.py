"""Vertebral compression fracture risk flag (KB 0.7, 6a, 6b).

The output is a flag with its reasons, not a score: the literature gives none.  Dose
per fraction comes from the plan; the other factors from :class:`PatientFactors`
(the vertebral-body share can be filled from the sector analysis).
"""

from __future__ import annotations

from contourqa.constraints.library import load_rules
from contourqa.constraints.model import Comparison
from contourqa.dose_checks._context import DoseContext, fmt
from contourqa.findings import Finding, Status

__all__ = ["evaluate_vcf"]


def evaluate_vcf(ctx: DoseContext) -> list[Finding]:
    """One ``vcf.risk`` finding: WARN with reasons when any factor is present."""
    rules = load_rules("vcf")
    p = ctx.options.patient
    reasons: list[str] = []
    unknown: list[str] = []
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

    def numeric(value: float | None, key: str, limit_key: str, label: str, unit: str) -> None:
        r = rules[key]
        if value is None:
            unknown.append(label)
        elif Comparison(r["comparison"]).holds(value, float(r[limit_key])):
            reasons.append(f"{label} {fmt(value, unit)} {r['comparison']} "
                           f"{fmt(float(r[limit_key]), unit)}")
            sources.append(r["source"])

    numeric(p.vertebral_body_involved_percent, "vertebral_body_involved", "min_percent",
            "vertebral body involved", "%")
    numeric(p.age_years, "age", "min_years", "age", "years")
    for key, value, label in (("lytic", p.lytic, "lytic lesion"),
                              ("baseline_vcf", p.baseline_vcf, "baseline VCF"),
                              ("deformity", p.deformity, "spinal deformity")):
        if value is None:
            unknown.append(label)
        elif value:
            reasons.append(label)
            sources.append(rules[key]["source"])
    sins = rules["sins"]
    if p.sins_total is not None:
        if not 0 <= p.sins_total <= int(sins["max_total"]):
            raise ValueError(f"SINS total must be 0-{sins['max_total']}, got {p.sins_total}.")
        if p.sins_total >= int(sins["unstable_min"]):
            reasons.append(f"SINS {p.sins_total}: unstable; surgical consultation warranted")
            sources.append(sins["source"])
        elif p.sins_total >= int(sins["potentially_unstable_min"]):
            reasons.append(f"SINS {p.sins_total}: potentially unstable; surgical consultation "
                           "warranted")
            sources.append(sins["source"])
    unknown_text = f" Not known: {', '.join(unknown)}." if unknown else ""
    if reasons:
        return [Finding(code="vcf.risk", status=Status.WARN, value=dpf, unit="Gy",
                        message=f"VCF risk factors present: {'; '.join(reasons)}.{unknown_text}",
                        source="; ".join(dict.fromkeys(sources)))]
    if dpf is None:
        return [Finding(code="vcf.risk", status=Status.NOT_EVALUATED,
                        message=f"VCF risk not evaluated: no risk factor known.{unknown_text}",
                        source=rule["source"])]
    return [Finding(code="vcf.risk", status=Status.PASS, value=dpf, unit="Gy",
                    message=(f"No VCF risk factor present among those known (dose per fraction "
                             f"{fmt(dpf, 'Gy')}).{unknown_text}"),
                    source=rule["source"])]
