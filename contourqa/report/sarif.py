"""SARIF 2.1.0 report, for CI-style tooling: one run per case, one result per check.

Status mapping (SARIF 2.1.0 sections 3.27.9 ``kind`` and 3.27.10 ``level``; a
level other than ``none`` is only allowed with kind ``fail``):

==============  =============  =========
contourqa       kind           level
==============  =============  =========
fail            fail           error
warn            fail           warning
not_evaluated   open           none
pass            pass           none
not_applicable  notApplicable  none
==============  =============  =========
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any, ClassVar

from contourqa import __version__
from contourqa.findings import Finding, Status
from contourqa.report.base import write_output
from contourqa.report.json_report import json_safe
from contourqa.report.record import CaseReport

__all__ = ["SARIF_SCHEMA_URI", "SarifFormatter", "sarif_schema", "validate_sarif"]

#: The OASIS schema URI written into ``$schema`` (the file is bundled, never fetched).
SARIF_SCHEMA_URI = ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
                    "sarif-schema-2.1.0.json")

_KIND_LEVEL: dict[Status, tuple[str, str]] = {
    Status.FAIL: ("fail", "error"),
    Status.WARN: ("fail", "warning"),
    Status.NOT_EVALUATED: ("open", "none"),
    Status.PASS: ("pass", "none"),
    Status.NOT_APPLICABLE: ("notApplicable", "none"),
}


@lru_cache(maxsize=1)
def sarif_schema() -> dict[str, Any]:
    """The bundled OASIS SARIF 2.1.0 JSON schema (``contourqa/schemas``)."""
    text = files("contourqa").joinpath("schemas/sarif-schema-2.1.0.json").read_text(
        encoding="utf-8")
    return json.loads(text)


def validate_sarif(obj: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when ``obj`` is not a valid SARIF 2.1.0 log."""
    import jsonschema

    jsonschema.Draft4Validator(sarif_schema()).validate(obj)


def _uri(path: str | Path) -> str:
    p = Path(path)
    return p.as_uri() if p.is_absolute() else p.as_posix()


def _result(f: Finding, rule_index: int, case_name: str) -> dict[str, Any]:
    kind, level = _KIND_LEVEL[f.status]
    text = f.message
    if f.status is Status.NOT_EVALUATED:
        text = f"Not evaluated: {text}"
    elif f.status is Status.NOT_APPLICABLE:
        text = f"Not applicable: {text}"
    result: dict[str, Any] = {
        "ruleId": f.code, "ruleIndex": rule_index, "kind": kind, "level": level,
        "message": {"text": text},
    }
    locations: list[dict[str, Any]] = []
    for path in f.files:
        locations.append({"physicalLocation": {"artifactLocation": {"uri": _uri(path)}}})
    if f.structure:
        logical = [{"name": f.structure, "fullyQualifiedName": f"{case_name}/{f.structure}",
                    "kind": "roi"}]
        if locations:
            locations[0]["logicalLocations"] = logical
        else:
            locations.append({"logicalLocations": logical})
    if locations:
        result["locations"] = locations
    props = {k: v for k, v in (("status", f.status.value), ("structure", f.structure),
                               ("value", f.value), ("limit", f.limit), ("unit", f.unit),
                               ("source", f.source))
             if v is not None and not (isinstance(v, float) and not math.isfinite(v))}
    result["properties"] = props
    return result


class SarifFormatter:
    """Writes a SARIF 2.1.0 log: one run per case, rules are the check codes."""

    name: ClassVar[str] = "sarif"
    needs_media: ClassVar[bool] = False

    def run(self, report: CaseReport) -> dict[str, Any]:
        """The SARIF ``run`` object of one case."""
        codes: dict[str, int] = {}
        rules: list[dict[str, Any]] = []
        results = []
        for f in report.checks:
            if f.code not in codes:
                codes[f.code] = len(rules)
                rule: dict[str, Any] = {"id": f.code, "name": f.code.replace(".", "_"),
                                        "shortDescription": {"text": f.code}}
                if f.source:
                    rule["help"] = {"text": f"Source: {f.source}"}
                rules.append(rule)
            results.append(_result(f, codes[f.code], report.case.name))
        c = report.case
        artifacts = [{"location": {"uri": _uri(p)}} for p in c.files]
        return {
            "tool": {"driver": {"name": "contourqa", "version": __version__,
                                "semanticVersion": __version__, "rules": rules}},
            "automationDetails": {"id": f"contourqa/{c.name}/"},
            "artifacts": artifacts,
            "results": results,
            "properties": {"case": c.name, "patient_id": c.patient_id,
                           "plan_label": c.plan_label, "n_fractions": c.n_fractions,
                           "prescription_gy": c.prescription_gy, "status": report.status,
                           "frame_of_reference_uid": c.frame_of_reference_uid},
        }

    def log(self, reports: Sequence[CaseReport]) -> dict[str, Any]:
        """The whole SARIF log object."""
        return {"$schema": SARIF_SCHEMA_URI, "version": "2.1.0",
                "runs": [self.run(r) for r in reports]}

    def render(self, reports: Sequence[CaseReport]) -> str:
        # a value that is not a number (from corrupt input) is null, never invalid JSON
        return json.dumps(json_safe(self.log(reports)), indent=2, allow_nan=False) + "\n"

    def write(self, reports: Sequence[CaseReport], path: str | Path) -> None:
        write_output(self.render(reports), path)
