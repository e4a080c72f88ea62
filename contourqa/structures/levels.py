"""Vertebral levels: ``T10``, ``Th10``, ``D10`` and ranges ``T9-T11``, C1 to S5."""

from __future__ import annotations

import re

_REGIONS = {"C": 7, "T": 12, "L": 5, "S": 5}
_REGION_START = {"C": 0, "T": 7, "L": 19, "S": 24}
_LEVEL_RE = re.compile(r"^(th|c|t|d|l|s)0*(\d{1,2})$")


def _single_level(text: str, original: str) -> str:
    m = _LEVEL_RE.match(text)
    if m is None:
        raise ValueError(f"Argument 'level' must be a vertebral level such as 'T10', 'C2', "
                         f"'L1', 'S1' (or 'Th10'/'D10' for thoracic); got {original!r}.")
    region = {"th": "T", "d": "T"}.get(m[1], m[1].upper())
    number = int(m[2])
    if not 1 <= number <= _REGIONS[region]:
        raise ValueError(f"Argument 'level' {original!r}: {region}{number} does not exist; "
                         f"{region} levels are {region}1-{region}{_REGIONS[region]}.")
    return f"{region}{number}"


def parse_level(text: str) -> str:
    """Normalise a vertebral level or range of levels.

    Parameters
    ----------
    text : str
        ``"T10"``, ``"t10"``, ``"T010"``, ``"Th10"``, ``"D10"`` (dorsal), ``"VB_T10"``
        is *not* accepted (only the level); ranges ``"T9-T11"``, ``"T9-11"``,
        ``"T12-L1"`` in either order.

    Returns
    -------
    str
        ``"T10"`` or, for a range, ``"T9-T11"`` (cranial level first).

    Raises
    ------
    ValueError
        Not a level, or a level that does not exist (``"L6"``, ``"T13"``).
    """
    s = re.sub(r"[\s_.]", "", text.casefold()).replace("\u2013", "-")
    if "-" in s:
        first, _, second = s.partition("-")
        a = _single_level(first, text)
        if second.isdigit():
            second = a[0].lower() + second
        b = _single_level(second, text)
        lo, hi = sorted((a, b), key=level_index)
        return lo if lo == hi else f"{lo}-{hi}"
    return _single_level(s, text)


def level_index(level: str) -> int:
    """Position of a single level along the spine, C1 = 0 ... S5 = 28.

    Neighbours differ by one (``level_index("T12") + 1 == level_index("L1")``).

    Raises
    ------
    ValueError
        ``level`` is not a single level (ranges have no index).
    """
    norm = parse_level(level)
    if "-" in norm:
        raise ValueError(f"Argument 'level' must be a single level for level_index; "
                         f"got the range {level!r} (use level_range).")
    return _REGION_START[norm[0]] + int(norm[1:]) - 1


def level_range(text: str) -> tuple[str, ...]:
    """Every single level of a level or range, cranial first (``"T9-T11"`` -> T9, T10, T11)."""
    norm = parse_level(text)
    lo, _, hi = norm.partition("-")
    start, stop = level_index(lo), level_index(hi or lo)
    names = [f"{r}{i}" for r in _REGIONS for i in range(1, _REGIONS[r] + 1)]
    return tuple(names[start:stop + 1])
