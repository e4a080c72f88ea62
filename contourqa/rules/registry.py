"""The explicit list of contouring rules and the runner that evaluates them."""

from __future__ import annotations

import dataclasses

from contourqa.case import Case
from contourqa.errors import ContourQAError
from contourqa.findings import Finding, Status
from contourqa.rules.context import RuleContext, resolve_mode
from contourqa.rules.model import Rule, RuleLevel, RuleOptions
from contourqa.sectors import SectorAnalysis
from contourqa.structures import RoleTable

__all__ = ["builtin_rules", "evaluate_contouring_rules", "rule_by_code"]


def builtin_rules() -> tuple[Rule, ...]:
    """Every contouring rule, in report order (listed explicitly in each module)."""
    from contourqa.contour_integrity import INTEGRITY_RULES
    from contourqa.ctv_rules import MARGIN_RULES, POSTOP_RULES, UPFRONT_RULES

    return (*UPFRONT_RULES, *MARGIN_RULES, *POSTOP_RULES, *INTEGRITY_RULES)


def rule_by_code(code: str) -> Rule:
    """The rule with this code.

    Raises
    ------
    KeyError
        No such rule (the message lists the codes).
    """
    rules = {r.code: r for r in builtin_rules()}
    if code not in rules:
        raise KeyError(f"No contouring rule {code!r}; rules are: {', '.join(rules)}.")
    return rules[code]


def _relevel(f: Finding, level: RuleLevel | None) -> Finding:
    if level is None or f.status not in (Status.FAIL, Status.WARN):
        return f
    return dataclasses.replace(f, status=Status(level.value))


def _waive(f: Finding, options: RuleOptions) -> Finding:
    if f.status not in (Status.FAIL, Status.WARN):
        return f
    for w in options.all_waivers:
        if w.matches(f):
            who = f" by {w.author}" if w.author else ""
            return dataclasses.replace(
                f, status=Status.WARN,
                message=f"WAIVED{who} ({f.status.value}): {w.reason} -- {f.message}")
    return f


def _run_one(rule: Rule, ctx: RuleContext) -> list[Finding]:
    level = ctx.options.profile.levels.get(rule.code)

    def note(message: str) -> Finding:
        return Finding(code=rule.code, status=Status.NOT_EVALUATED, message=message,
                       source=rule.citation)

    if level is RuleLevel.OFF:
        return [note(f"{rule.name}: switched off by profile {ctx.options.profile.name!r}.")]
    if ctx.mode not in rule.modes:
        return [note(f"{rule.name}: applies in {'/'.join(sorted(m.value for m in rule.modes))} "
                     f"mode only ({ctx.mode_evidence}).")]
    try:
        found = rule.check(ctx, ctx.params(rule))
    except (ContourQAError, ValueError, MemoryError) as exc:
        # Scoped to this rule and reported; the other rules still run.
        found = [note(f"{rule.name}: could not be evaluated ({type(exc).__name__}: {exc}).")]
    if not found:
        found = [Finding(code=rule.code, status=Status.PASS, message=f"{rule.name}: nothing to "
                         "flag.", source=rule.citation)]
    return [_waive(_relevel(f, level), ctx.options) for f in found]


def evaluate_contouring_rules(case: Case, roles: RoleTable, sectors: SectorAnalysis | None, *,
                              options: RuleOptions | None = None,
                              rules: tuple[Rule, ...] | None = None) -> list[Finding]:
    """Evaluate every contouring rule on one case.

    Parameters
    ----------
    case : Case
    roles : RoleTable
        From :func:`contourqa.structures.assign_roles`.
    sectors : SectorAnalysis or None
        From :func:`contourqa.sectors.analyse_sectors`; None (or not evaluated) makes
        the sector rules not_evaluated.
    options : RuleOptions, optional
        Mode, profile, waivers, variants and the clinical inputs the tool cannot see.
    rules : tuple of Rule, optional
        Default: :func:`builtin_rules`.

    Returns
    -------
    list of Finding
        At least one finding per rule (pass, fail, warn or not_evaluated with the
        reason), first a ``rules.mode`` finding saying which mode was used and why.
    """
    options = options if options is not None else RuleOptions()
    mode, evidence = resolve_mode(case, roles, options)
    ctx = RuleContext(case=case, roles=roles, sectors=sectors, options=options, mode=mode,
                      mode_evidence=evidence)
    out = [Finding(code="rules.mode", status=Status.PASS,
                   message=f"Contouring rules in {mode.value} mode: {evidence}.",
                   source="Cox 2012 (upfront, KB 1) / Redmond 2017 (post-operative, KB 2)")]
    for rule in rules if rules is not None else builtin_rules():
        out += _run_one(rule, ctx)
    return out
