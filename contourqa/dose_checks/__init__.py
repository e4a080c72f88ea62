"""Dose, prescription, re-irradiation, VCF and imaging checks of one case.

One entry point for the pipeline::

    findings = evaluate_dose_checks(case, roles, dvh_report, options=DoseCheckOptions())

Each check group is one module with one function, listed explicitly in
:data:`CHECK_GROUPS`; every number they compare with comes from the TOML files of
:mod:`contourqa.constraints` (constraint sets and rules), each with its citation and
knowledge-base status.  Finding codes:

- ``prescription.schedule``, ``prescription.consistency`` (above the plan's maximum
  dose, or sources that disagree)
- ``dose.<set>.<check>`` (constraint sets; plus ``.fractions``, ``.prior_rt``,
  ``.unconfirmed`` when a set or some of its constraints do not apply)
- ``dose.gap.<id>`` (an organ at risk and fraction number with no published
  constraint: not evaluated by design; ``constraints/data/coverage/gaps.toml``)
- ``dose.gtv_dmin``, ``dose.gtv_d98``, ``dose.gtv_d95``, ``dose.ptv_coverage``
- ``dose.reirradiation``, ``dose.reirradiation_cumulative_eqd2``,
  ``dose.reirradiation_sbrt_eqd2``, ``dose.reirradiation_ratio``,
  ``dose.reirradiation_interval``
- ``vcf.risk``
- ``imaging.ct_slice_spacing``, ``imaging.ct_slice_thickness``,
  ``imaging.mr_sequences``, ``imaging.mr_registration``
- ``dose.grid_resolution``
- ``dose.relative_scaling`` (a RELATIVE RTDOSE: the assumption and its effect)
- ``contour.oar_extent`` (an organ-at-risk contour that stops short of where its
  constraints matter: those constraints are not evaluated)
"""

from __future__ import annotations

from collections.abc import Callable

from contourqa.case import Case
from contourqa.constraints.library import builtin_sets, select_sets
from contourqa.constraints.model import ConstraintSet
from contourqa.dose_checks._context import DoseContext
from contourqa.dose_checks.constraint_checks import (
    evaluate_constraint_sets,
    evaluate_coverage_gaps,
)
from contourqa.dose_checks.grid import evaluate_dose_grid
from contourqa.dose_checks.imaging import classify_mr, evaluate_imaging
from contourqa.dose_checks.options import ALL_CHECKS, DoseCheckOptions, PatientFactors
from contourqa.dose_checks.prescription import evaluate_prescription, match_schedule
from contourqa.dose_checks.reirradiation import evaluate_reirradiation
from contourqa.dose_checks.target import evaluate_target_dose
from contourqa.dose_checks.vcf import evaluate_vcf
from contourqa.dvh import DVHReport
from contourqa.findings import Finding
from contourqa.structures import RoleTable

__all__ = [
    "ALL_CHECKS", "CHECK_GROUPS", "DoseCheckOptions", "PatientFactors", "classify_mr",
    "evaluate_dose_checks", "match_schedule", "selected_sets",
]

_REDMOND = "redmond2017"


def selected_sets(options: DoseCheckOptions) -> tuple[ConstraintSet, ...]:
    """The constraint sets of a run: the named ones, the institutional files, and
    Redmond 2017 (by prior RT) when prior courses are given.

    Raises
    ------
    ConstraintFileError
        Unknown set name or malformed institutional file.
    """
    sets = select_sets(options.constraint_sets, files=options.constraint_files)
    if options.prior_courses and all(s.name != _REDMOND for s in sets):
        sets = (*sets, builtin_sets()[_REDMOND])
    return sets


def _constraints(ctx: DoseContext) -> list[Finding]:
    sets = selected_sets(ctx.options)
    return evaluate_constraint_sets(ctx, sets) + evaluate_coverage_gaps(ctx, sets)


#: Check groups in report order: name -> function of the run's context.
CHECK_GROUPS: dict[str, Callable[[DoseContext], list[Finding]]] = {
    "prescription": evaluate_prescription,
    "constraints": _constraints,
    "target": evaluate_target_dose,
    "reirradiation": evaluate_reirradiation,
    "vcf": evaluate_vcf,
    "imaging": evaluate_imaging,
    "dose_grid": evaluate_dose_grid,
}
assert tuple(CHECK_GROUPS) == ALL_CHECKS


_DEFAULT_OPTIONS = DoseCheckOptions()


def evaluate_dose_checks(case: Case, roles: RoleTable, dvh_report: DVHReport | None, *,
                         options: DoseCheckOptions = _DEFAULT_OPTIONS) -> list[Finding]:
    """Every dose, prescription, re-irradiation, VCF and imaging finding of a case.

    Never raises for missing data: a missing plan, dose or role gives
    ``not_evaluated`` findings saying what is missing.

    Parameters
    ----------
    case : Case
    roles : RoleTable
        From :func:`contourqa.structures.assign_roles` on the case's ROIs.
    dvh_report : DVHReport or None
        The run's DVH report (its DVHs and bands are reused); ``None`` computes
        the DVHs needed here.
    options : DoseCheckOptions, keyword-only

    Raises
    ------
    ConstraintFileError
        An unknown constraint-set name or a malformed institutional file (a usage
        error: the run cannot do what was asked).
    """
    selected_sets(options)  # validate the selection before any work
    ctx = DoseContext(case, roles, dvh_report, options=options)
    out: list[Finding] = []
    for name in options.checks:
        out += CHECK_GROUPS[name](ctx)
    return out + ctx.side_findings()
