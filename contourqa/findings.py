"""Findings: the one record type for everything a check or a reader has to say.

A finding is a plain frozen dataclass, never an exception.  Input problems found
while reading (a dangling reference, a missing slice, a contour off the dose grid)
are findings too, with codes under ``input.``, so that they reach the report instead
of being repaired silently.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Status", "Finding"]


class Status(str, enum.Enum):
    """Outcome of one check for one case."""

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    NOT_EVALUATED = "not_evaluated"
    #: The check does not concern this case (a post-operative rule on an intact spine,
    #: a constraint set for other fraction numbers, a rule switched off by a profile):
    #: shown folded, never changes the case's verdict.  Unlike ``NOT_EVALUATED``
    #: (the check concerns the case but data is missing: the case is incomplete).
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class Finding:
    """One result of one check (or one problem found in the input).

    Attributes
    ----------
    code : str
        Stable dotted identifier, e.g. ``"input.dangling_reference"``.
    status : Status
    message : str
        One sentence a physicist understands.
    structure : str or None
        ROI name the finding is about, if any.
    value, limit : float or None
        Measured value and the limit it was compared with, in ``unit``.
    source : str or None
        Citation of the rule (knowledge-base id, paper, table) or of the DICOM
        standard section for input findings.
    files : tuple of Path
        Files involved.
    """

    code: str
    status: Status
    message: str
    structure: str | None = None
    value: float | None = None
    limit: float | None = None
    unit: str | None = None
    source: str | None = None
    files: tuple[Path, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "status": self.status.value,
            "structure": self.structure,
            "message": self.message,
            "value": self.value,
            "limit": self.limit,
            "unit": self.unit,
            "source": self.source,
            "files": [str(f) for f in self.files],
        }


def input_problem(code: str, message: str, *files: Path | str, status: Status = Status.NOT_EVALUATED,
                  structure: str | None = None) -> Finding:
    """Shorthand for a finding about the input data (codes under ``input.``)."""
    return Finding(code=f"input.{code}", status=status, message=message, structure=structure,
                   source="DICOM PS3.3", files=tuple(Path(f) for f in files))
