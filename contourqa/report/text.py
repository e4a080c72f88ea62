"""User text made safe for each output: terminal, spreadsheet, matplotlib.

ROI names, patient IDs, labels and file names come from the DICOM files, so from
anyone who can send one.  Each output has its own hazard: control characters and
ANSI escape sequences rewrite a terminal, a cell beginning with ``=`` is a formula to
a spreadsheet, a pair of ``$`` is mathtext to matplotlib.  The JSON and SARIF
records keep the text as it was (they are data, escaped by their encoders); the
HTML page is escaped by Jinja's autoescape.
"""

from __future__ import annotations

import unicodedata

__all__ = ["mpl_literal", "printable", "spreadsheet_cell"]

#: First characters that make a spreadsheet read a cell as a formula (OWASP "CSV
#: injection": =, +, -, @, and tab or carriage return before them).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_KEPT = frozenset("\n\t")


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control or format character written as an escape.

    C0 and C1 controls (ESC of ANSI sequences, BEL, backspace, carriage return, NUL),
    DEL, and Unicode format characters (bidirectional overrides that reorder what a
    reader sees, zero-width characters) become ``\\xNN`` or ``\\uNNNN``; with
    ``keep_newlines`` line feeds and tabs stay.
    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if keep_newlines and ch in _KEPT:
            out.append(ch)
        elif ch == " " or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000
                       else f"\\U{code:08x}")
    return "".join(out)


def spreadsheet_cell(text: str) -> str:
    """A CSV cell a spreadsheet shows as text: a leading ``'`` when it would start a
    formula, and control characters escaped (:func:`printable`)."""
    safe = printable(text)
    return "'" + safe if safe.startswith(_FORMULA_START) else safe


def mpl_literal(text: str) -> str:
    """Text matplotlib draws as it is: printable, and every ``$`` escaped so that no
    pair of them starts mathtext (whose parser raises on unbalanced markup)."""
    return printable(text).replace("$", r"\$")
