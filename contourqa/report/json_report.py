"""JSON report: one document whatever the number of cases.

``{"schema_version": "2.0", "contourqa_version": ..., "cases": [<case>, ...]}``, each
case the canonical record (:meth:`CaseReport.to_json`); the layout is
``contourqa/schemas/report.schema.json`` (the case is its ``$defs/case``).
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
from contourqa.report.record import SCHEMA_VERSION, CaseReport

__all__ = ["JsonFormatter", "json_safe", "report_document", "report_schema", "validate_case",
           "validate_report"]


def json_safe(value: Any) -> Any:
    """NaN and infinities are not JSON: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


@lru_cache(maxsize=1)
def report_schema() -> dict[str, Any]:
    text = files("contourqa").joinpath("schemas/report.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def report_document(cases: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The JSON document around case records (``CaseReport.to_json()`` dicts)."""
    return {"schema_version": SCHEMA_VERSION, "contourqa_version": __version__,
            "cases": [json_safe(c) for c in cases]}


def validate_report(obj: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when the document ``obj`` does not follow
    the schema."""
    import jsonschema

    jsonschema.validate(obj, report_schema())


def validate_case(obj: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when one case record (an entry of the
    document's ``cases``, as the audit database stores it) does not follow the schema."""
    import jsonschema

    schema = report_schema()
    jsonschema.validate(obj, {**schema["$defs"]["case"], "$defs": schema["$defs"]})


class JsonFormatter:
    """Writes the canonical records as one JSON document (:func:`report_document`)."""

    name: ClassVar[str] = "json"
    needs_media: ClassVar[bool] = False

    def render(self, reports: Sequence[CaseReport]) -> str:
        payload = report_document([json_safe(r.to_json()) for r in reports])
        return json.dumps(payload, indent=2, allow_nan=False) + "\n"

    def write(self, reports: Sequence[CaseReport], path: str | Path) -> None:
        text = self.render(reports)
        if str(path) == "-":
            import sys

            sys.stdout.write(text)
        else:
            Path(path).write_text(text, encoding="utf-8")
