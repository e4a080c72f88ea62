"""What every report formatter offers, and writing its output to a file or stdout."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Protocol

from contourqa.findings import Finding, Status
from contourqa.report.record import CaseReport

__all__ = ["STATUS_ORDER", "FileFormatter", "sorted_checks", "write_output"]

#: Order in which checks are shown: what needs attention first.
STATUS_ORDER: dict[Status, int] = {Status.FAIL: 0, Status.WARN: 1, Status.NOT_EVALUATED: 2,
                                   Status.PASS: 3, Status.NOT_APPLICABLE: 4}


def sorted_checks(checks: Sequence[Finding]) -> list[Finding]:
    """Checks in display order: fail, warn, not evaluated, pass, not applicable (stable
    within each)."""
    return sorted(checks, key=lambda f: STATUS_ORDER[f.status])


class FileFormatter(Protocol):
    """A report format written to one file per run.

    Attributes
    ----------
    name : str
        The format's name; the command line option is ``--<name> FILE``.
    needs_media : bool
        True when the format draws pictures and so needs ``CaseReport.media``
        (the check run then keeps the loaded case and DVH curves).
    """

    name: ClassVar[str]
    needs_media: ClassVar[bool]

    def write(self, reports: Sequence[CaseReport], path: str | Path) -> None:
        """Write the report of ``reports`` to ``path`` (``-``: standard output)."""
        ...


def write_output(data: str | bytes, path: str | Path) -> None:
    """Write text or bytes to ``path``; ``-`` means standard output."""
    if str(path) == "-":
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
        else:
            sys.stdout.write(data)
        return
    if isinstance(data, bytes):
        Path(path).write_bytes(data)
    else:
        Path(path).write_text(data, encoding="utf-8")
