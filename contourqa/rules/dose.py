"""Dose rules: the dose, prescription, target-dose, re-irradiation, VCF, imaging and
dose-grid checks, as :class:`~contourqa.rules.model.Rule` entries.

They are evaluated by :mod:`contourqa.dose_checks` (``check`` is None here); this
module lists them with their codes, citations, severities and thresholds, read from
the constraint sets and rule files of ``contourqa/constraints/data`` through their
public loaders, so that ``contourqa rules`` shows them and profiles and waivers can
name them.  A constraint set's rules are ``dose.<set>.<check>``, one per check of the
set (its constraints for every fraction number are the rule's thresholds).  Each
coverage gap (an organ and fraction numbers with no published value, see
``contourqa/constraints/data/coverage/gaps.toml``) is a rule ``dose.gap.<id>`` that
reports, never judges: not evaluated by design.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from contourqa.findings import Status
from contourqa.rules.model import Rule

__all__ = ["GAP_PREFIX", "dose_rules", "gap_rules", "set_rules"]

#: Code prefix of the coverage-gap rules (``dose.gap.<id>``).
GAP_PREFIX = "dose.gap."

# (code, name, rule file, table, severity): the fixed dose checks; severities are the
# worst status each reports (see contourqa/dose_checks).
_FIXED: tuple[tuple[str, str, str, str, Status], ...] = (
    ("prescription.schedule", "Prescription among the suggested schedules", "prescription",
     "schedule", Status.WARN),
    ("dose.gtv_dmin", "GTV Dmin (local control)", "target_dose", "gtv_dmin", Status.WARN),
    ("dose.gtv_d98", "GTV D98% (reported)", "target_dose", "gtv_reported", Status.WARN),
    ("dose.gtv_d95", "GTV D95% (reported)", "target_dose", "gtv_reported", Status.WARN),
    ("dose.ptv_coverage", "PTV coverage by the prescription", "target_dose", "ptv_coverage",
     Status.WARN),
    ("dose.reirradiation_cumulative_eqd2", "Re-irradiation: cumulative EQD2", "reirradiation",
     "cumulative_eqd2", Status.FAIL),
    ("dose.reirradiation_sbrt_eqd2", "Re-irradiation: SBRT course EQD2", "reirradiation",
     "sbrt_eqd2", Status.FAIL),
    ("dose.reirradiation_ratio", "Re-irradiation: SBRT share of the cumulative EQD2",
     "reirradiation", "ratio", Status.FAIL),
    ("dose.reirradiation_interval", "Re-irradiation: interval since the prior course",
     "reirradiation", "interval", Status.FAIL),
    ("vcf.risk", "Vertebral compression fracture risk factors", "vcf", "dose_per_fraction",
     Status.WARN),
    ("imaging.ct_slice_spacing", "Planning CT slice spacing", "imaging", "ct_slice_spacing",
     Status.FAIL),
    ("imaging.ct_slice_thickness", "Planning CT slice thickness", "imaging", "ct_slice_spacing",
     Status.WARN),
    ("imaging.mr_sequences", "Recommended MR sequences", "imaging", "mr_sequences", Status.WARN),
    ("imaging.mr_registration", "MR registered to the planning CT", "imaging", "mr_sequences",
     Status.WARN),
    ("dose.grid_resolution", "Dose grid resolution", "dose_grid", "dose_grid", Status.WARN),
)


def _table(file: str, key: str) -> dict[str, Any]:
    from contourqa.constraints import load_rules

    value = load_rules(file).get(key, {})
    return dict(value) if isinstance(value, dict) else {key: value}


def _citation(table: dict[str, Any], file: str) -> str:
    """The table's source, else the sources of its entries (a list of schedules)."""
    if "source" in table:
        return str(table["source"])
    sources = [str(e["source"]) for v in table.values() if isinstance(v, list)
               for e in v if isinstance(e, dict) and "source" in e]
    return "; ".join(dict.fromkeys(sources)) or f"contourqa/constraints/data/rules/{file}.toml"


def set_rules(sets: Iterable[Any]) -> tuple[Rule, ...]:
    """One rule per check of each constraint set (``dose.<set>.<check>``).

    Parameters
    ----------
    sets : iterable of ConstraintSet
        E.g. ``contourqa.constraints.builtin_sets().values()`` or an institutional
        set read with ``load_constraint_set``.
    """
    out: list[Rule] = []
    for cset in sets:
        by_check: dict[str, list[Any]] = {}
        for c in cset.constraints:
            by_check.setdefault(c.check, []).append(c)
        for check, items in by_check.items():
            thresholds = {
                c.id: {"metric": c.metric, "comparison": c.comparison.value, "limit": c.limit,
                       "unit": c.unit, "fractions": list(c.fractions),
                       "roles": [r.value for r in c.roles], "source": f"{c.source}; {c.table}",
                       "status": c.status, "auto": c.auto,
                       **({"prior_rt": c.prior_rt} if c.prior_rt else {})}
                for c in items}
            severe = any(c.severity == "fail" for c in items)
            out.append(Rule(code=f"dose.{cset.name}.{check}", name=f"{cset.title}: {check}",
                            citation=cset.citation, severity=Status.FAIL if severe
                            else Status.WARN, rule_set="dose", check=None,
                            thresholds=thresholds))
        # what the set reports when it does not concern the plan (other fraction
        # numbers) or lacks the prior course its rows need: reported, never judged
        out.append(Rule(code=f"dose.{cset.name}.fractions",
                        name=f"{cset.title}: covers the plan's fraction number",
                        citation=cset.citation, severity=Status.PASS, rule_set="dose",
                        check=None, thresholds={"fractions": sorted(cset.fractions)}))
        if any(c.prior_rt for c in cset.constraints):
            out.append(Rule(code=f"dose.{cset.name}.prior_rt",
                            name=f"{cset.title}: prior course for its re-irradiation rows",
                            citation=cset.citation, severity=Status.PASS, rule_set="dose",
                            check=None, thresholds={}))
    return tuple(out)


def gap_rules() -> tuple[Rule, ...]:
    """One rule per coverage gap (``dose.gap.<id>``): severity ``PASS`` (it reports,
    never judges; its findings are not evaluated by design or not applicable)."""
    from contourqa.constraints import coverage_gaps

    out = []
    for g in coverage_gaps():
        fx = ", ".join(str(n) for n in g.fractions)
        out.append(Rule(
            code=g.code, name=f"No published constraint for the {g.name} in {fx} fx",
            citation=f"knowledge base section {g.kb_section}: {g.reason}",
            severity=Status.PASS, rule_set="dose", check=None,
            thresholds={"fractions": list(g.fractions), "roles": [r.value for r in g.roles],
                        "evaluated": "no: not evaluated by design (no value is invented)"}))
    return tuple(out)


def dose_rules(constraint_files: Iterable[Any] = ()) -> tuple[Rule, ...]:
    """Every dose rule: the fixed checks, then each built-in constraint set's checks,
    then those of ``constraint_files`` (institutional sets, paths), then the coverage
    gaps."""
    from contourqa.constraints import builtin_sets, load_constraint_set

    fixed = tuple(Rule(code=code, name=name, citation=_citation(_table(f, t), f),
                       severity=sev, rule_set="dose", check=None, thresholds=_table(f, t))
                  for code, name, f, t, sev in _FIXED)
    extra = [load_constraint_set(p) for p in constraint_files]
    return (*fixed, *set_rules(builtin_sets().values()), *set_rules(extra), *gap_rules())
