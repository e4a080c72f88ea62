"""Checks made by the analysis itself (sector analysis and level verification, the
scope and mode heuristics, an OAR's contour extent, the prescription's consistency),
listed as :class:`~contourqa.rules.model.Rule` entries so that ``contourqa rules``
shows every check a report can hold, and profiles and waivers can name them.

Their data (name, severity, source, knowledge-base status) is
``contourqa/rules/data/analysis.toml``; they are evaluated where the analysis runs
(``check`` is None here).  The same file lists the families of findings about the
input data (``input.*``, ``dvh.*``, ...), which are not rules.
"""

from __future__ import annotations

from contourqa.findings import Status
from contourqa.rules.model import Rule, rule_data

__all__ = ["analysis_rules", "data_finding_families"]

_SEVERITY = {"fail": Status.FAIL, "warn": Status.WARN, "report": Status.PASS}


def analysis_rules() -> tuple[Rule, ...]:
    """The analysis checks, in file order."""
    return tuple(
        Rule(code=code, name=str(table["name"]), citation=str(table["source"]),
             severity=_SEVERITY[str(table["severity"])], rule_set="analysis", check=None)
        for code, table in rule_data("analysis").items() if code != "data_findings")


def data_finding_families() -> dict[str, str]:
    """Prefix -> description of the findings about the input data (not rules)."""
    return {str(k): str(v) for k, v in rule_data("analysis")["data_findings"].items()}
