"""Prescription: compare dose and fractions with the published spine schedules (KB 0.4)."""

from __future__ import annotations

from dataclasses import dataclass

from contourqa.constraints.library import load_rules
from contourqa.dose_checks._context import DoseContext, fmt, not_evaluated
from contourqa.findings import Finding, Status

__all__ = ["Schedule", "evaluate_prescription", "match_schedule", "published_schedules"]


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


def evaluate_prescription(ctx: DoseContext) -> list[Finding]:
    """One ``prescription.schedule`` finding."""
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
