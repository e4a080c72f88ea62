"""Prescription: compare dose and fractions with the published spine schedules (KB 0.4)."""

from __future__ import annotations

from dataclasses import dataclass

from contourqa.constraints.library import load_rules
from contourqa.dose_checks._context import DoseContext, fmt, not_evaluated
from contourqa.findings import Finding, Status
from contourqa.io.rtdose import DoseGrid
from contourqa.io.rtplan import PrescriptionSource

__all__ = ["Schedule", "evaluate_prescription", "match_schedule", "prescription_above_dose_max",
           "published_schedules"]


@dataclass(frozen=True)
class Schedule:
    """A published schedule: total dose range for some fraction numbers."""

    label: str
    kind: str
    fractions: tuple[int, ...]
    min_gy: float
    max_gy: float
    source: str
    status: str

    def distance(self, total_dose_gy: float, n_fractions: int) -> tuple[int, float]:
        """(fraction difference, dose difference in Gy) to a prescription."""
        dn = min(abs(n - n_fractions) for n in self.fractions)
        dd = max(self.min_gy - total_dose_gy, total_dose_gy - self.max_gy, 0.0)
        return dn, dd


def published_schedules() -> tuple[Schedule, ...]:
    """Every schedule of the built-in prescription rules."""
    rules = load_rules("prescription")
    return tuple(Schedule(label=s["label"], kind=s["kind"], fractions=tuple(s["fractions"]),
                          min_gy=float(s["min_gy"]), max_gy=float(s["max_gy"]),
                          source=s["source"], status=s["status"]) for s in rules["schedule"])


def match_schedule(total_dose_gy: float, n_fractions: int
                   ) -> tuple[tuple[Schedule, ...], tuple[Schedule, ...]]:
    """``(matching, nearest)`` published schedules for a prescription."""
    rules = load_rules("prescription")
    tol = float(rules["dose_tolerance_gy"])
    schedules = published_schedules()
    matching = tuple(s for s in schedules if s.distance(total_dose_gy, n_fractions)[0] == 0
                     and s.distance(total_dose_gy, n_fractions)[1] <= tol)
    nearest = tuple(sorted(schedules, key=lambda s: s.distance(total_dose_gy, n_fractions))
                    [:int(rules["n_nearest"])])
    return matching, nearest


def prescription_above_dose_max(ctx: DoseContext) -> tuple[float, float] | None:
    """``(prescription, plan maximum dose)`` in Gy when the prescription exceeds the
    dose grid's maximum by more than the consistency tolerance, else ``None``."""
    rx, dose = ctx.prescription_gy, ctx.case.dose
    if rx is None or not isinstance(dose, DoseGrid):
        return None
    tol = float(load_rules("prescription")["consistency"]["tolerance_fraction"])
    dmax = dose.max_gy
    return (rx, dmax) if rx > dmax * (1.0 + tol) else None


def _consistency(ctx: DoseContext) -> Finding:
    """``prescription.consistency``: the prescription against the plan's maximum dose
    and against the plan's other sources, stated once."""
    code = "prescription.consistency"
    rule = load_rules("prescription")["consistency"]
    tol = float(rule["tolerance_fraction"])
    cite = f"{rule['source']} ({rule['status']})"
    rx = ctx.prescription_gy
    plan = getattr(ctx.case, "plan", None)
    source = getattr(plan, "prescription_source", None)
    where = source.value if isinstance(source, PrescriptionSource) else "unknown source"
    if rx is None:
        return not_evaluated(code, "No prescription dose: its consistency is not evaluated.",
                             source=cite)
    above = prescription_above_dose_max(ctx)
    if above is not None:
        stated = source in (PrescriptionSource.TARGET_PRESCRIPTION_DOSE, PrescriptionSource.USER)
        return Finding(
            code=code, status=Status.FAIL if stated else Status.WARN, value=rx,
            limit=above[1], unit="Gy", source=cite,
            message=(f"The prescription {fmt(rx, 'Gy')} (from {where}) exceeds the plan's "
                     f"maximum dose {fmt(above[1], 'Gy')}: no voxel receives it, so the "
                     "prescription is wrong or read from the wrong source. Checks relative to "
                     "it (PTV coverage) are not evaluated; give the prescription with "
                     "--prescription."))
    others = [(s, v) for s, v in getattr(plan, "prescription_candidates", ())
              if s is not PrescriptionSource.BEAM_DOSE_SUM]
    disagree = [(s, v) for s, v in others if abs(v - rx) > tol * rx]
    if source is PrescriptionSource.USER and disagree:
        return Finding(
            code=code, status=Status.WARN, value=rx, unit="Gy", source=cite,
            message=(f"The prescription given, {fmt(rx, 'Gy')}, differs from the plan's: "
                     + "; ".join(f"{fmt(v, 'Gy')} ({s.value})" for s, v in disagree) + "."))
    target = [v for s, v in others if s is PrescriptionSource.TARGET_PRESCRIPTION_DOSE]
    deliv = [v for s, v in others if s is PrescriptionSource.DELIVERY_MAXIMUM_DOSE]
    if target and deliv and max(deliv) < max(target) * (1.0 - tol):
        return Finding(
            code=code, status=Status.WARN, value=max(target), limit=max(deliv), unit="Gy",
            source=cite,
            message=(f"The plan's sources disagree: TargetPrescriptionDose {fmt(max(target), 'Gy')}"
                     f" above DeliveryMaximumDose {fmt(max(deliv), 'Gy')}."))
    dmax = ctx.case.dose.max_gy if isinstance(ctx.case.dose, DoseGrid) else None
    against = (f"at most the plan's maximum dose {fmt(dmax, 'Gy')}" if dmax is not None
               else "no dose grid to compare with")
    return Finding(code=code, status=Status.PASS, value=rx, unit="Gy", source=cite,
                   message=f"The prescription {fmt(rx, 'Gy')} (from {where}): {against}; "
                           "no source disagrees.")


def evaluate_prescription(ctx: DoseContext) -> list[Finding]:
    """``prescription.schedule`` and ``prescription.consistency`` findings."""
    return [*_schedule(ctx), _consistency(ctx)]


def _schedule(ctx: DoseContext) -> list[Finding]:
    rx, n = ctx.prescription_gy, ctx.n_fractions
    if rx is None or n is None:
        return [not_evaluated("prescription.schedule", "Prescription dose or number of "
                              "fractions unknown: the schedule is not compared with the "
                              "published ones.")]
    matching, nearest = match_schedule(rx, n)
    if matching:
        return [Finding(
            code="prescription.schedule", status=Status.PASS, value=rx, unit="Gy",
            message=f"{fmt(rx, 'Gy')}/{n} fx ({fmt(rx / n, 'Gy')}/fx) matches: "
                    f"{'; '.join(s.label for s in matching)}.",
            source="; ".join(f"{s.source} ({s.status})" for s in matching))]
    return [Finding(
        code="prescription.schedule", status=Status.WARN, value=rx, unit="Gy",
        message=f"{fmt(rx, 'Gy')}/{n} fx ({fmt(rx / n, 'Gy')}/fx) is not a published spine "
                f"schedule; nearest: {'; '.join(s.label for s in nearest)}.",
        source="; ".join(sorted({f'{s.source} ({s.status})' for s in nearest})))]
