"""Vertebra ROI names: ``VB_T9``, ``Bone_Vertebra_T9``, ``T9 body``, ``BWK 9``, ranges.

The spellings (vertebra words before and after the level, level prefixes, bone names)
are package data, ``contourqa/data/vertebra_names.toml``.  A name is read on its
compact form (casefolded, separators removed; see
:func:`contourqa.structures.names.classify_name`).  A name that looks like a vertebra
but whose level cannot be read (``T13``, ``L6``, ``VB_T9_old``) is not guessed:
:func:`read_vertebra_name` says why, and the role table reports it as
``structures.vertebra_name``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from contourqa.structures.levels import parse_level

__all__ = ["VertebraName", "looks_like_vertebra", "read_vertebra_name"]


@dataclass(frozen=True)
class VertebraName:
    """What a name says about a vertebra.

    Attributes
    ----------
    level : str or None
        Normalised level (``"T9"``) or range (``"T9-T11"``); None when the name is
        vertebra-like but its level could not be read (``problem`` says why).
    evidence : str
        How the name was read.
    problem : str or None
        Why a vertebra-like name gives no level (a level that does not exist).
    """

    level: str | None
    evidence: str
    problem: str | None = None


@dataclass(frozen=True)
class _Spellings:
    prefixes: dict[str, str]
    bare: tuple[str, ...]
    named: dict[str, str]
    hint_tokens: frozenset[str]
    hint_prefixes: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]
    bare_level: re.Pattern[str]


def _compact_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.casefold())


def _alternation(words: list[str]) -> str:
    # longest first, so that "vertebralbody" is tried before "vertebra"
    return "|".join(re.escape(w) for w in sorted({_compact_key(w) for w in words},
                                                  key=lambda w: (-len(w), w)))


@cache
def _spellings() -> _Spellings:
    raw = resources.files("contourqa.data").joinpath("vertebra_names.toml").read_text("utf-8")
    data = tomllib.loads(raw)
    prefixes = {_compact_key(k): str(v) for k, v in data["prefixes"].items()
                if k not in ("source", "status")}
    # the levels of whole bones are validated once, at load
    named = {_compact_key(k): parse_level(str(v)) for k, v in data["named"].items()
             if k not in ("source", "status")}
    if not set(prefixes.values()) <= {"C", "T", "L", "S"}:
        raise ValueError(f"vertebra_names.toml [prefixes]: regions must be C, T, L or S; "
                         f"got {sorted(set(prefixes.values()))}.")
    before = _alternation(list(data["words"]["before"]))
    after = _alternation(list(data["words"]["after"]))
    any_prefix = _alternation(list(prefixes))
    bare = tuple(_compact_key(p) for p in data["bare"]["prefixes"])
    bare_prefix = _alternation(list(bare))
    lv_any = rf"(?:{any_prefix})\d{{1,2}}"
    lv_bare = rf"(?:{bare_prefix})\d{{1,2}}"
    patterns = (
        # a vertebra word before the level: VB_T9, Bone_Vertebra_T9, Vert D10, VB T9-T11
        re.compile(rf"^(?:{before})+(?P<a>{lv_any})(?P<b>{lv_any})?(?:{after})*$"),
        # a vertebra word after the level: T9_VB, L3 vert, T9 vertebral body
        re.compile(rf"^(?P<a>{lv_any})(?P<b>{lv_any})?(?:{after})+$"),
        # the level alone: T9, T09, C2, BWK9, T9-T11
        re.compile(rf"^(?P<a>{lv_bare})(?P<b>{lv_bare})?$"),
    )
    return _Spellings(
        prefixes=prefixes, bare=bare, named=named,
        hint_tokens=frozenset(_compact_key(t) for t in data["hints"]["tokens"]),
        hint_prefixes=tuple(_compact_key(t) for t in data["hints"]["token_prefixes"]),
        patterns=patterns,
        bare_level=re.compile(rf"^(?:{bare_prefix})\d{{1,3}}$"))


def _single(token: str) -> str:
    """``"bwk9"`` -> ``"T9"``; raises ValueError for a level that does not exist."""
    sp = _spellings()
    m = re.fullmatch(r"([a-z]+?)0*(\d{1,3})", token)
    if m is None or m[1] not in sp.prefixes:
        raise ValueError(f"{token!r} is not a vertebral level")
    return parse_level(f"{sp.prefixes[m[1]]}{m[2]}")


def _why(exc: ValueError) -> str:
    return str(exc).replace("Argument 'level' ", "").rstrip(".")


def read_vertebra_name(compact: str) -> VertebraName | None:
    """The vertebral level a compact ROI name gives, if the name is a vertebra's.

    Parameters
    ----------
    compact : str
        The name casefolded with separators removed (``"bonevertebrat9"``); a range
        arrives as two levels (``"vbt9t11"``).

    Returns
    -------
    VertebraName or None
        None when the name is not a vertebra name.  A vertebra name with a level
        that does not exist (``"t13"``, ``"vertebral6"``) gives ``level=None`` and a
        ``problem``.
    """
    sp = _spellings()
    if compact in sp.named:
        return VertebraName(sp.named[compact], f"bone name {compact!r} ({sp.named[compact]})")
    for pattern in sp.patterns:
        m = pattern.match(compact)
        if m is None:
            continue
        tokens = [t for t in (m["a"], m["b"]) if t]
        try:
            levels = [_single(t) for t in tokens]
            level = parse_level("-".join(levels))
        except ValueError as exc:
            return VertebraName(None, "vertebra-like name", problem=_why(exc))
        return VertebraName(level, f"vertebral level {level}")
    if sp.bare_level.match(compact):
        # "t13", "l6", "c8": shaped like a level that does not exist
        try:
            _single(compact)
        except ValueError as exc:
            return VertebraName(None, "vertebra-like name", problem=_why(exc))
    return None


def looks_like_vertebra(name: str) -> bool:
    """True when a name's words include a vertebra hint (``VB``, ``vert...``, ``BWK``).

    Used for names no pattern reads (``"VB_T9_old"``), so that they are reported
    rather than left unknown without a word.
    """
    sp = _spellings()
    for token in re.findall(r"[a-z]+", name.casefold()):
        if token in sp.hint_tokens or token.startswith(sp.hint_prefixes):
            return True
    return False
