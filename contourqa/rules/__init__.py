"""Contouring rules: the model (rules, thresholds, profiles, waivers) and the runner.

>>> from contourqa.rules import RuleOptions, evaluate_contouring_rules   # doctest: +SKIP
>>> findings = evaluate_contouring_rules(case, roles, sectors, options=RuleOptions(mode="auto"))

One module per family, matching the data files of ``contourqa/rules/data``:
:mod:`~contourqa.rules.upfront` (ISRC, Cox 2012), :mod:`~contourqa.rules.postop`
(Redmond 2017), :mod:`~contourqa.rules.margins` (PTV and PRV margins and their
measurement), :mod:`~contourqa.rules.integrity` (contour integrity) and
:mod:`~contourqa.rules.dose` (the dose checks, evaluated by
:mod:`contourqa.dose_checks`, listed with their thresholds).  Each module lists its
rules explicitly; :func:`builtin_rules` joins the contouring lists and
:func:`all_rules` adds the dose rules.  ``contourqa rules`` prints them.
"""

from contourqa.rules.model import (
    RULE_SETS,
    Mode,
    Profile,
    Rule,
    RuleConfigError,
    RuleLevel,
    RuleOptions,
    Waiver,
    load_profile,
    load_waivers,
    parse_waiver,
    rule_data,
)
from contourqa.rules.registry import (
    all_rules,
    apply_profile,
    builtin_rules,
    evaluate_contouring_rules,
    known_variants,
    rule_by_code,
    validate_rule_options,
)

__all__ = [
    "RULE_SETS", "Mode", "Profile", "Rule", "RuleConfigError", "RuleLevel", "RuleOptions", "Waiver",
    "all_rules", "apply_profile", "builtin_rules", "evaluate_contouring_rules", "known_variants",
    "load_profile", "load_waivers", "parse_waiver", "rule_by_code", "rule_data",
    "validate_rule_options",
]
