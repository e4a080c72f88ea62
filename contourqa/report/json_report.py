"""JSON report: one object per case, or a list when a run holds several cases."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any, ClassVar

from contourqa.report.record import CaseReport

__all__ = ["JsonFormatter", "json_safe", "report_schema", "validate_report"]


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


def validate_report(obj: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when ``obj`` does not follow the schema."""
    import jsonschema

    jsonschema.validate(obj, report_schema())


class JsonFormatter:
    """Writes the canonical record as JSON: one object, or a list for several cases."""

    name: ClassVar[str] = "json"
    needs_media: ClassVar[bool] = False

    def render(self, reports: Sequence[CaseReport]) -> str:
        objs = [json_safe(r.to_json()) for r in reports]
        payload: Any = objs[0] if len(objs) == 1 else objs
        return json.dumps(payload, indent=2, allow_nan=False) + "\n"

    def write(self, reports: Sequence[CaseReport], path: str | Path) -> None:
        text = self.render(reports)
        if str(path) == "-":
            import sys

            sys.stdout.write(text)
        else:
            Path(path).write_text(text, encoding="utf-8")
