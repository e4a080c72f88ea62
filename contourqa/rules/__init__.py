"""Contouring rules: the model (rules, thresholds, profiles, waivers) and the runner.

>>> from contourqa.rules import RuleOptions, evaluate_contouring_rules   # doctest: +SKIP
>>> findings = evaluate_contouring_rules(case, roles, sectors, options=RuleOptions(mode="auto"))

The rules themselves live in :mod:`contourqa.ctv_rules` (upfront and post-operative
target rules, margins) and :mod:`contourqa.contour_integrity`; each module lists its
rules explicitly and :func:`builtin_rules` joins the lists.
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
from contourqa.rules.registry import builtin_rules, evaluate_contouring_rules, rule_by_code

__all__ = [
    "RULE_SETS", "Mode", "Profile", "Rule", "RuleConfigError", "RuleLevel", "RuleOptions", "Waiver",
    "builtin_rules", "evaluate_contouring_rules", "load_profile", "load_waivers", "parse_waiver",
    "rule_by_code", "rule_data",
]
