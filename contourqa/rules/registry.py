"""The explicit list of rules, the runner of the contouring rules, and the profile and
waivers applied to every finding of a case (contouring and dose alike)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path

from contourqa.case import Case
from contourqa.errors import ContourQAError
from contourqa.findings import Finding, Status
from contourqa.rules.context import RuleContext, deep_merge, resolve_mode
from contourqa.rules.model import Rule, RuleConfigError, RuleLevel, RuleOptions, rule_data
from contourqa.rules.scope import spine_target
from contourqa.sectors import SectorAnalysis
from contourqa.structures import RoleTable

__all__ = ["all_rules", "apply_profile", "builtin_rules", "evaluate_contouring_rules",
           "known_variants", "rule_by_code", "validate_rule_options"]

#: Codes a profile may configure besides the rules: the auto-mode and scope heuristics.
_SETTINGS = ("mode.auto", "mode.spine_target")


def builtin_rules() -> tuple[Rule, ...]:
    """Every contouring rule, in report order (listed explicitly in each module)."""
    from contourqa.rules.integrity import INTEGRITY_RULES
    from contourqa.rules.margins import MARGIN_RULES
    from contourqa.rules.postop import POSTOP_RULES
    from contourqa.rules.upfront import UPFRONT_RULES

    return (*UPFRONT_RULES, *MARGIN_RULES, *POSTOP_RULES, *INTEGRITY_RULES)


def all_rules(*, constraint_files: Iterable[str | Path] = ()) -> tuple[Rule, ...]:
    """Every rule: the contouring rules, the dose rules (fixed checks, built-in
    constraint sets, and the sets of ``constraint_files``), plan quality, epidural
    geometry, conus, MR-CT fusion, then the analysis checks (:mod:`contourqa.rules.analysis`)."""
    from contourqa.rules.analysis import analysis_rules
    from contourqa.rules.conus import CONUS_RULES
    from contourqa.rules.dose import dose_rules
    from contourqa.rules.epidural import EPIDURAL_RULES
    from contourqa.rules.fusion import FUSION_RULES
    from contourqa.rules.plan_quality import PLAN_QUALITY_RULES

    return (*builtin_rules(), *dose_rules(constraint_files), *PLAN_QUALITY_RULES,
            *EPIDURAL_RULES, *CONUS_RULES, *FUSION_RULES, *analysis_rules())


def rule_by_code(code: str) -> Rule:
    """The rule with this code.

    Raises
    ------
    KeyError
        No such rule (the message lists the codes).
    """
    rules = {r.code: r for r in all_rules()}
    if code not in rules:
        raise KeyError(f"No rule {code!r}; rules are: {', '.join(rules)}.")
    return rules[code]


def known_variants() -> dict[str, str]:
    """Every optional variant of the rule data, with the table it belongs to."""
    out: dict[str, str] = {}
    for rule_set in ("upfront", "postop", "margins", "integrity", "mode"):
        for key, table in rule_data(rule_set).items():
            if isinstance(table, dict):
                for name in table.get("variants", {}):
                    out[name] = key
    return out


def validate_rule_options(options: RuleOptions, *,
                          constraint_files: Iterable[str | Path] = ()) -> None:
    """Check a profile's and the waivers' codes, keys and variants against the rules.

    Raises
    ------
    RuleConfigError
        An unknown rule code, threshold key or variant; the message names the file
        (or option) and the key, and lists what is known.
    """
    rules = {r.code: r for r in all_rules(constraint_files=constraint_files)}
    variants = known_variants()
    prof = options.profile
    where = f"Profile {prof.origin}" if prof.origin else f"Profile {prof.name!r}"

    def unknown_code(code: str, what: str) -> RuleConfigError:
        near = [c for c in rules if c.split(".")[0] == code.split(".")[0]] or list(rules)
        return RuleConfigError(f"{what}: unknown rule code {code!r}; known codes include "
                               f"{', '.join(near[:12])} (contourqa rules lists them all).")

    for code in (*prof.levels, *prof.params):
        if code not in rules and code not in _SETTINGS:
            raise unknown_code(code, f'{where}: [rules."{code}"]')
    for code, table in prof.params.items():
        if code in _SETTINGS:
            rule_set, _, key = code.partition(".")
            known = set(rule_data(rule_set).get(key, {}))
        elif rules[code].rule_set == "dose":
            raise RuleConfigError(
                f'{where}: [rules."{code}"]: a dose rule takes only "level"; its limits '
                "live in its constraint set (copy the set into an institutional file, "
                "--constraint-file).")
        else:
            known = set(rules[code].data()) - {"variants"}
        bad = sorted(set(table) - known - {"source", "status"})
        if bad:
            raise RuleConfigError(f'{where}: [rules."{code}"]: unknown key(s) {", ".join(bad)}; '
                                  f'known: level, {", ".join(sorted(known))}.')
    for name in (*prof.variants, *options.variants):
        if name not in variants:
            src = where if name in prof.variants else "--variant"
            raise RuleConfigError(f"{src}: unknown variant {name!r}; known: "
                                  f"{', '.join(f'{v} ({t})' for v, t in variants.items())}.")
    for w in options.all_waivers:
        if w.code not in rules:
            raise unknown_code(w.code, f"Waiver ({w.origin})")


def _relevel(f: Finding, level: RuleLevel | None) -> Finding:
    if level is RuleLevel.OFF and f.status is not Status.NOT_APPLICABLE:
        # whatever it found: the rule does not concern this institution's cases
        return dataclasses.replace(f, status=Status.NOT_APPLICABLE,
                                   message=f"Switched off by profile: {f.message}")
    if level is None or level is RuleLevel.OFF or f.status not in (Status.FAIL, Status.WARN):
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


def apply_profile(findings: Sequence[Finding], options: RuleOptions) -> list[Finding]:
    """The findings with the profile's levels and then the waivers applied.

    Run once on all findings of a case (contouring and dose checks): a failed or
    warned finding of a re-levelled rule gets the profile's level (``off``: not
    applicable, "switched off by profile"), and one a waiver covers becomes a warning
    that echoes the waiver's reason.  Other findings are unchanged.
    """
    levels = options.profile.levels
    return [_waive(_relevel(f, levels.get(f.code)), options) for f in findings]


def _run_one(rule: Rule, ctx: RuleContext) -> list[Finding]:
    level = ctx.options.profile.levels.get(rule.code)

    def note(status: Status, message: str) -> Finding:
        return Finding(code=rule.code, status=status, message=message, source=rule.citation)

    if level is RuleLevel.OFF:
        return [note(Status.NOT_APPLICABLE, f"{rule.name}: switched off by profile "
                     f"{ctx.options.profile.name!r}.")]
    if ctx.mode not in rule.modes:
        return [note(Status.NOT_APPLICABLE,
                     f"{rule.name}: applies in {'/'.join(sorted(m.value for m in rule.modes))} "
                     f"mode only ({ctx.mode_evidence}).")]
    assert rule.check is not None
    try:
        found = rule.check(ctx, ctx.params(rule))
    except (ContourQAError, ValueError, MemoryError) as exc:
        # Scoped to this rule and reported; the other rules still run.
        found = [note(Status.NOT_EVALUATED, f"{rule.name}: could not be evaluated "
                      f"({type(exc).__name__}: {exc}).")]
    if not found:
        found = [Finding(code=rule.code, status=Status.PASS, message=f"{rule.name}: nothing to "
                         "flag.", source=rule.citation)]
    return found


def evaluate_contouring_rules(case: Case, roles: RoleTable, sectors: SectorAnalysis | None, *,
                              options: RuleOptions | None = None,
                              rules: tuple[Rule, ...] | None = None,
                              apply_levels: bool = True) -> list[Finding]:
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
    apply_levels : bool
        Apply the profile's levels and the waivers (:func:`apply_profile`) to the
        findings; the check pipeline passes False and applies them once to all the
        case's findings, dose checks included.

    Returns
    -------
    list of Finding
        At least one finding per rule (pass, fail, warn, not_evaluated or
        not_applicable with the reason), first a ``rules.mode`` finding saying which
        mode was used and why.  When the target involves no vertebra, the spine rules
        are left out and one ``rules.spine_scope`` finding (not applicable) says why
        and names them.
    """
    options = options if options is not None else RuleOptions()
    mode, evidence = resolve_mode(case, roles, options)
    ctx = RuleContext(case=case, roles=roles, sectors=sectors, options=options, mode=mode,
                      mode_evidence=evidence)
    out = [Finding(code="rules.mode", status=Status.PASS,
                   message=f"Contouring rules in {mode.value} mode: {evidence}.",
                   source="Cox 2012 (upfront, KB 1) / Redmond 2017 (post-operative, KB 2)")]
    todo = rules if rules is not None else builtin_rules()
    scope_params = deep_merge(rule_data("mode")["spine_target"],
                              options.profile.params.get("mode.spine_target", {}))
    names = [a.roi_name for a in roles if a.role.is_target]
    plan = getattr(case, "plan", None)
    names += [n for n in (getattr(plan, "label", None),) if n]
    is_spine, why = spine_target(sectors, scope_params, names)
    if is_spine is False:
        skipped = [r.code for r in todo if r.spine_only]
        out.append(Finding(
            code="rules.spine_scope", status=Status.NOT_APPLICABLE,
            message=f"Not a spine target: {why}. The spine rules do not apply "
                    f"({', '.join(skipped)}).", source=str(scope_params.get("source", ""))))
        todo = tuple(r for r in todo if not r.spine_only)
    for rule in todo:
        out += _run_one(rule, ctx)
    return apply_profile(out, options) if apply_levels else out
