"""Terminal summary: one screen per case, failures and warnings first, then counts.

Text from the files (ROI names, IDs, messages that quote them) is passed to ``rich``
as :class:`~rich.text.Text`, never as markup, with control characters escaped: a name
holding ``[/]`` or an ANSI escape sequence prints as it reads.  Drawn with ``rich``;
colour only when asked (the CLI asks when standard output is a
terminal and ``NO_COLOR`` is unset), plain text when piped.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from contourqa.findings import Finding, Status
from contourqa.report.base import sorted_checks
from contourqa.report.record import CaseReport
from contourqa.report.text import printable

__all__ = ["TerminalFormatter", "value_vs_limit"]

_UNLIMITED = 1_000_000  # characters: "no width" for rich, which needs one
_STYLE = {"fail": "bold red", "incomplete": "bold magenta", "warn": "bold yellow",
          "pass": "bold green", "not_evaluated": "magenta", "not_applicable": "dim"}


def value_vs_limit(f: Finding) -> str:
    """``"14 Gy vs 17"``-style text of a finding's value and limit ('' when none)."""
    if f.value is None:
        return ""
    unit = f" {f.unit}" if f.unit else ""
    text = f"{f.value:.4g}{unit}"
    if f.limit is not None:
        text += f" vs {f.limit:.4g}{unit}"
    return text


class TerminalFormatter:
    """A one-screen summary per case.

    Parameters
    ----------
    colour : bool
        ANSI colours and styles (only for a terminal).
    max_lines : int
        Failed, warned and not-evaluated checks listed before "... more".
    width : int or None
        Line width in characters (long cells are cut with an ellipsis); None: the
        terminal's width when colour is on, else 120.
    full_width : bool
        No line width at all: every cell and line whole (for a file or a pipe, where
        nothing wraps and a cut would lose text); ``width`` is then ignored.
    """

    def __init__(self, *, colour: bool = False, max_lines: int = 25, width: int | None = None,
                 full_width: bool = False) -> None:
        self.colour = colour
        self.max_lines = max_lines
        self.width = width
        self.full_width = full_width

    def _console(self, stream: TextIO) -> Console:
        width = self.width if self.width or self.colour else 120
        return Console(file=stream, force_terminal=self.colour, no_color=not self.colour,
                       color_system="standard" if self.colour else None,
                       width=_UNLIMITED if self.full_width else width,
                       highlight=False, emoji=False, soft_wrap=False)

    def _print_case(self, con: Console, r: CaseReport) -> None:
        c = r.case
        rx = f"{c.prescription_gy:g} Gy" if c.prescription_gy is not None else "unknown dose"
        fx = str(c.n_fractions) if c.n_fractions is not None else "unknown"
        head = Text()
        head.append(f"{r.status.upper():<11}", style=_STYLE.get(r.status, ""))
        head.append(printable(c.name), style="bold")
        con.print(head)
        con.print(Text(printable(f"  patient {c.patient_id or 'unknown'} | plan "
                                 f"{c.plan_label or 'none'} | {rx} in {fx} fractions")),
                  overflow="ellipsis", no_wrap=True)
        shown = [f for f in sorted_checks(r.checks)
                 if f.status not in (Status.PASS, Status.NOT_APPLICABLE)]
        serious = [f for f in shown if f.status in (Status.FAIL, Status.WARN)][: self.max_lines]
        if serious:
            table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False)
            for name, kw in (("status", {"no_wrap": True}), ("check", {"no_wrap": True}),
                             ("ROI", {"no_wrap": True}), ("value vs limit", {"no_wrap": True}),
                             ("source", {"no_wrap": True, "overflow": "ellipsis",
                                         "max_width": None if self.full_width else 48})):
                table.add_column(name, **kw)  # type: ignore[arg-type]
            for f in serious:
                label = f.status.value.upper()
                if f.message.startswith("WAIVED"):  # contourqa.rules.apply_profile
                    label += " (waived)"
                table.add_row(Text(label, style=_STYLE[f.status.value]),
                              *(Text(printable(t)) for t in (f.code, f.structure or "",
                                                             value_vs_limit(f), f.source or "")))
            con.print(table)
        rest = [f for f in shown if f.status is Status.NOT_EVALUATED]
        room = max(self.max_lines - len(serious), 0)
        for f in rest[:room]:
            line = Text("  ")
            line.append("NOT_EVALUATED ", style=_STYLE["not_evaluated"])
            line.append(printable(f"{f.code}{f' [{f.structure}]' if f.structure else ''}: "
                                  f"{f.message}"))
            con.print(line, overflow="ellipsis", no_wrap=True)
        hidden = len(shown) - len(serious) - min(room, len(rest))
        if hidden > 0:
            con.print(f"  ... {hidden} more (see the HTML or JSON report)")
        n_na = sum(f.status is Status.NOT_APPLICABLE for f in r.checks)
        if n_na:
            # folded: they do not concern this case and never change the verdict
            con.print(Text(f"  {n_na} not applicable to this case (folded; listed in the HTML "
                           "and JSON reports)", style=_STYLE["not_applicable"]),
                      overflow="ellipsis", no_wrap=True)
        counts = {s: sum(f.status is s for f in r.checks) for s in Status}
        line = Text("  ")
        for n, (s, k) in enumerate(counts.items()):
            line.append(f"{k} {s.value}", style=_STYLE[s.value] if k else "")
            if n < len(counts) - 1:
                line.append(", ")
        con.print(line)

    def render(self, reports: Sequence[CaseReport]) -> str:
        buf = io.StringIO()
        self.write(reports, buf)
        return buf.getvalue()

    def write(self, reports: Sequence[CaseReport], stream: TextIO) -> None:
        buf = io.StringIO()
        con = self._console(buf if self.full_width else stream)
        for n, r in enumerate(reports):
            if n:
                con.print()
            self._print_case(con, r)
        if self.full_width:  # the table pads every line to its widest row
            stream.write("\n".join(line.rstrip() for line in buf.getvalue().split("\n")))
