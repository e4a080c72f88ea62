"""Vertebral level names for detected vertebrae: known, read, or counted; never invented.

Vertebrae are handled in column order, inferior to superior (index 0 is the most
inferior).  A level comes, in order of authority, from

1. the vertebra's own ROI name (``VB_T10``, ``T10``, ``L1 vertebra``);
2. a level given by the user (``--level T10``), naming the treated vertebra (the one
   holding most of the GTV's bone);
3. the plan label or the target ROI names (``"T10 SBRT"``, ``PTV_T10``) when they
   name exactly one level;
4. counting from a named neighbour, when the vertebrae between are all detected.

Anything else stays ``None`` (reported as unknown).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from contourqa.structures import level_index, parse_level

__all__ = ["LevelSource", "levels_in_text", "name_levels"]

#: Where a level came from (the JSON report echoes it).
LevelSource = str

_TOKEN = re.compile(r"(?<![A-Za-z])(th|c|t|d|l|s)[\s_.]?0*(\d{1,2})(?![0-9])", re.IGNORECASE)
_ALL_LEVELS = tuple(f"{r}{i}" for r, n in (("C", 7), ("T", 12), ("L", 5), ("S", 5))
                    for i in range(1, n + 1))


def levels_in_text(texts: Iterable[str | None]) -> tuple[str, ...]:
    """Distinct single vertebral levels named in free text, in order of appearance.

    Parameters
    ----------
    texts : iterable of str or None
        Plan labels, target ROI names ... (None entries are skipped).

    Returns
    -------
    tuple of str
        Normalised levels (``"T10"``); a range ``T9-T11`` yields its two ends.
    """
    found: list[str] = []
    for text in texts:
        if not text:
            continue
        for m in _TOKEN.finditer(text):
            try:
                lv = parse_level(m[1] + m[2])
            except ValueError:
                continue
            if lv not in found:
                found.append(lv)
    return tuple(found)


def _by_offset(anchor_level: str, anchor: int, position: int) -> str | None:
    """Level of the vertebra ``position`` counted from ``anchor`` (both column indices,
    inferior first); None beyond C1 or S5."""
    i = level_index(anchor_level) - (position - anchor)
    return _ALL_LEVELS[i] if 0 <= i < len(_ALL_LEVELS) else None


def name_levels(known: Sequence[str | None], *, treated: int | None,
                user_level: str | None, text_levels: Sequence[str],
                text_source: str = "plan") -> tuple[list[str | None], list[LevelSource]]:
    """Levels and their sources for vertebrae in column order (inferior first).

    Parameters
    ----------
    known : sequence of str or None
        Level read from each vertebra's own ROI name (None when unnamed).
    treated : int or None
        Column index of the treated vertebra (most GTV bone), if any.
    user_level : str or None
        Level of the treated vertebra given by the user.
    text_levels : sequence of str
        Levels named by the plan label and target names (used only when exactly one).
    text_source : str
        Source name recorded for a level taken from ``text_levels``.

    Returns
    -------
    levels : list of str or None
    sources : list of str
        ``"roi_name"``, ``"user"``, ``text_source``, ``"counted"`` or ``"unknown"``.

    Notes
    -----
    Counting assumes the vertebrae passed are contiguous (no undetected vertebra
    between them); callers pass only runs detected without gaps.
    """
    n = len(known)
    levels: list[str | None] = list(known)
    sources = ["roi_name" if lv else "unknown" for lv in known]
    if treated is not None and 0 <= treated < n and levels[treated] is None:
        if user_level:
            levels[treated], sources[treated] = parse_level(user_level), "user"
        elif len(set(text_levels)) == 1:
            levels[treated], sources[treated] = text_levels[0], text_source
    anchors = [i for i, lv in enumerate(levels) if lv is not None]
    if anchors:
        for i in range(n):
            if levels[i] is None:
                a = min(anchors, key=lambda j: abs(j - i))
                anchor_level = levels[a]
                assert anchor_level is not None
                levels[i] = _by_offset(anchor_level, a, i)
                sources[i] = "counted" if levels[i] else "unknown"
    return levels, sources
