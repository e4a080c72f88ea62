"""Terminal summary: failures and warnings first, then counts; plain when piped."""

from __future__ import annotations

from typing import Sequence, TextIO

from contourqa.findings import Finding, Status
from contourqa.report.record import CaseReport

__all__ = ["TerminalFormatter"]

_COLOURS = {"fail": "31", "incomplete": "35", "warn": "33", "pass": "32",
            "not_evaluated": "35"}
_ORDER = {Status.FAIL: 0, Status.WARN: 1, Status.NOT_EVALUATED: 2, Status.PASS: 3}


class TerminalFormatter:
    """A one-screen summary per case."""

    def __init__(self, *, colour: bool = False, max_lines: int = 25) -> None:
        self.colour = colour
        self.max_lines = max_lines

    def _c(self, text: str, key: str) -> str:
        if not self.colour or key not in _COLOURS:
            return text
        return f"\x1b[{_COLOURS[key]}m{text}\x1b[0m"

    def _line(self, f: Finding) -> str:
        where = f" [{f.structure}]" if f.structure else ""
        vs = ""
        if f.value is not None:
            vs = f" ({f.value:g}{' ' + f.unit if f.unit else ''}"
            vs += f" vs {f.limit:g})" if f.limit is not None else ")"
        src = f"  <{f.source}>" if f.source and not f.code.startswith("input.") else ""
        status = self._c(f"{f.status.value.upper():<13}", f.status.value)
        return f"  {status} {f.code}{where}: {f.message}{vs}{src}"

    def render_case(self, r: CaseReport) -> str:
        c = r.case
        rx = f"{c.prescription_gy:g} Gy" if c.prescription_gy is not None else "unknown"
        fx = str(c.n_fractions) if c.n_fractions is not None else "unknown"
        out = [f"{self._c(r.status.upper(), r.status)}  {c.name}",
               f"  patient {c.patient_id or 'unknown'} | plan {c.plan_label or 'none'} | "
               f"{rx} in {fx} fractions"]
        shown = sorted((f for f in r.checks if f.status is not Status.PASS),
                       key=lambda f: _ORDER[f.status])
        for f in shown[: self.max_lines]:
            out.append(self._line(f))
        if len(shown) > self.max_lines:
            out.append(f"  ... {len(shown) - self.max_lines} more (see the JSON report)")
        counts = {s: sum(f.status is s for f in r.checks) for s in Status}
        out.append("  " + ", ".join(f"{n} {s.value}" for s, n in counts.items()))
        return "\n".join(out)

    def render(self, reports: Sequence[CaseReport]) -> str:
        return "\n\n".join(self.render_case(r) for r in reports) + "\n"

    def write(self, reports: Sequence[CaseReport], stream: TextIO) -> None:
        stream.write(self.render(reports))
