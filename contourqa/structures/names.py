"""ROI name -> role: TG-263 names, the TG-263 target grammar and clinical variants."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources

from contourqa.structures.levels import parse_level
from contourqa.structures.roles import _NO_SUBTRAHEND, _PAIRED, Role, RoleAssignment
from contourqa.structures.vertebrae import read_vertebra_name

# --------------------------------------------------------------------------- TG-263 data

@dataclass(frozen=True)
class _TG263Row:
    primary: str
    name: str
    role: Role
    level: str | None
    side: str | None
    reverse: bool
    pattern: re.Pattern[str]


@cache
def _tg263_rows() -> tuple[_TG263Row, ...]:
    text = resources.files("contourqa.data").joinpath("tg263_roles.csv").read_text("utf-8")
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    rows = []
    for rec in csv.DictReader(lines):
        for reverse, name in enumerate((rec["tg263_primary"], rec["tg263_reverse"])):
            compact = _compact(name)
            # TG-263 "PRVxx"/"PRVx": xx is the margin in whole millimetres.
            regex = re.sub(r"prvx+", r"prv(?P<m>\\d+)", re.escape(compact))
            rows.append(_TG263Row(rec["tg263_primary"], name, Role(rec["role"]),
                                  rec["level"] or None, rec["side"] or None, bool(reverse),
                                  re.compile(f"^{regex}$")))
    return tuple(rows)


# --------------------------------------------------------------------------- name parsing

_NUM = r"\d+(?:\.\d+)?"
_SIDE = r"(?:left|right|lt|rt|l|r)"
_ORGANS: dict[Role, str] = {
    Role.SPINAL_CORD: r"(?:spinal|sp)?cord|sc|myelon|medullaspinalis",
    Role.SPINAL_CANAL: r"spinalcanal|canalspinal|vertebralcanal|spinecanal",
    Role.THECAL_SAC: r"thecalsac|thecal|sacthecal|duralsac",
    Role.CAUDA_EQUINA: r"caudaequina|cauda",
    Role.SACRAL_PLEXUS: r"sacralplex(?:us)?|plexussacralis",
    Role.BRACHIAL_PLEXUS: r"brachialplex(?:us|s|i)?|plexusbrachialis",
    Role.NERVE_ROOT: r"nrvroots?|nerveroots?|rootnrv",
    Role.ESOPHAGUS: r"o?esophag(?:us)?|o?esoph",
    Role.TRACHEA: r"trachea",
    Role.HEART: r"heart",
    Role.LUNG: r"lungs?",
    Role.KIDNEY: r"kidneys?",
    Role.LIVER: r"liver",
    Role.STOMACH: r"stomach",
    Role.DUODENUM: r"duodenum",
    Role.BOWEL_SMALL: r"smallbowel|bowelsmall|smallintestine",
    Role.BOWEL_LARGE: r"largebowel|bowellarge|colon",
    Role.SKIN: r"skin",
    Role.BODY: r"body|external|outline|bodyoutline|bodycontour",
}
_SEGMENT_PRE = {Role.SPINAL_CORD: r"(?:cerv|thor|lum|sac)"}
_SEGMENT_POST = {Role.SPINAL_CORD: r"(?:cerv|cervical|thor|thoracic|lum|lumbar|sac|sacral)",
                 Role.ESOPHAGUS: r"(?:s|m|i|upper|middle|mid|lower)"}
_PRV_ROLE = {Role.SPINAL_CORD: Role.CORD_PRV, Role.SPINAL_CANAL: Role.SPINAL_CANAL_PRV}


def _organ_regex(role: Role) -> str:
    side_pre = side_post = ""
    if role in _PAIRED:
        side_pre, side_post = rf"(?P<s1>{_SIDE})?", rf"(?P<s2>{_SIDE})?"
    pre = rf"{_SEGMENT_PRE[role]}?" if role in _SEGMENT_PRE else ""
    post = rf"{_SEGMENT_POST[role]}?" if role in _SEGMENT_POST else ""
    return rf"{side_pre}{pre}(?:{_ORGANS[role]}){post}{side_post}"


def _unit(u: str | None) -> float:
    return 10.0 if u == "cm" else 1.0


@cache
def _organ_patterns() -> tuple[tuple[Role, re.Pattern[str], re.Pattern[str], re.Pattern[str]], ...]:
    out = []
    for role in _ORGANS:
        organ = _organ_regex(role)
        plain = re.compile(rf"^{organ}\d{{0,2}}$")
        prv_after = re.compile(
            rf"^{organ}(?:prv(?P<m1>{_NUM})?(?:mm)?|\+(?P<m2>{_NUM})(?P<u2>mm|cm)?"
            rf"|(?P<m3>{_NUM})(?P<u3>mm|cm)|exp(?:and(?:ed)?)?(?P<m4>{_NUM})?(?:mm)?)$")
        prv_before = re.compile(rf"^prv(?P<m5>{_NUM})?(?:mm)?{organ}(?:(?P<m6>{_NUM})mm)?$")
        out.append((role, plain, prv_after, prv_before))
    return tuple(out)


_TARGET_HEAD = re.compile(r"^(?P<kind>igtv|ictv|gtv|ctv|itv|ptv)")
_HELPER_WORDS = ("opt", "ring", "wall", "shell", "help", "dummy", "avoid")
_HELPER_PREFIX = re.compile(r"^\s*(?P<p>zz|z|opt|ring)[\s_.]*", re.IGNORECASE)
_POINT_TYPES = frozenset({"MARKER", "ISOCENTER", "REGISTRATION"})
_TARGET_TYPES = {"GTV": Role.GTV, "CTV": Role.CTV, "PTV": Role.PTV}
_KEYWORDS: tuple[tuple[str, Role], ...] = (
    ("spinalcord", Role.SPINAL_CORD), ("cord", Role.SPINAL_CORD), ("myelon", Role.SPINAL_CORD),
    ("prv", Role.CORD_PRV), ("thecal", Role.THECAL_SAC), ("spinalcanal", Role.SPINAL_CANAL),
    ("canal", Role.SPINAL_CANAL), ("cauda", Role.CAUDA_EQUINA), ("esophag", Role.ESOPHAGUS),
    ("oesophag", Role.ESOPHAGUS), ("sacralplex", Role.SACRAL_PLEXUS),
)


def _compact(text: str) -> str:
    """Casefold and drop separators; keep ``+``, decimal points and digit|digit breaks."""
    s = text.casefold().strip()
    s = re.sub(r"(?<=\d)[.,](?=\d)", "\x00", s)
    s = re.sub(r"(?<=\d)[^a-z0-9+\x00]+(?=\d)", "|", s)
    s = re.sub(r"[^a-z0-9+|\x00]", "", s)
    return s.replace("\x00", ".")


def _expand_ranges(text: str) -> str:
    # "T9-11" -> "T9-T11" (also "T9/10", "BWK 9-10") so that the range survives the
    # subtraction split.
    return re.sub(r"(?i)(?<![a-z])(th|bwk|lwk|hwk|[ctlsd])[\s_]?(\d{1,2})\s*[-\u2013/]\s*"
                  r"(\d{1,2})(?![\d.,])", r"\1\2-\1\3", text)


@dataclass(frozen=True)
class _Match:
    role: Role
    evidence: str
    level: str | None = None
    side: str | None = None
    margin_mm: float | None = None
    dose_gy: float | None = None
    tg263_name: str | None = None
    subtracted: tuple[Role, ...] = ()
    alternatives: tuple[Role, ...] = ()
    #: why a vertebra-like name gives no level (reported as structures.vertebra_name)
    vertebra_problem: str | None = None


def _side_of(m: re.Match[str]) -> str | None:
    groups = m.groupdict()
    s = groups.get("s1") or groups.get("s2")
    return None if s is None else s[0].upper()


def _match_tg263(compact: str, text: str = "") -> _Match | None:
    rows = [(row, m) for row in _tg263_rows() if (m := row.pattern.match(compact)) is not None]
    if len({row.primary for row, _ in rows}) > 1:
        # "VBs" (all vertebral bodies) and "VB_S" (sacral) share a compact form: the
        # name as written (separators as "_") decides
        spelled = re.sub(r"[\s.]+", "_", text.strip()).casefold()
        rows = [(row, m) for row, m in rows if row.name.casefold() == spelled] or rows[:1]
    if not rows:
        return None
    row, m = rows[0]
    margin = float(m["m"]) if "m" in m.groupdict() and m["m"] is not None else None
    how = "TG-263 reverse-order name of" if row.reverse else "TG-263 name"
    return _Match(row.role, f"{how} {row.primary}", level=row.level, side=row.side,
                  margin_mm=margin, tg263_name=row.primary)


def _match_organ(compact: str) -> list[_Match]:
    found = []
    for role, plain, after, before in _organ_patterns():
        if (m := plain.match(compact)) is not None:
            found.append(_Match(role, f"clinical variant of {role.name}", side=_side_of(m)))
            continue
        m = after.match(compact) or before.match(compact)
        if m is None:
            continue
        g = m.groupdict()
        margin = None
        for key, unit in (("m1", None), ("m2", g.get("u2")), ("m3", g.get("u3")), ("m4", None),
                          ("m5", None), ("m6", None)):
            if g.get(key) is not None:
                margin = float(g[key]) * _unit(unit)
        prv_role = _PRV_ROLE.get(role, Role.OTHER)
        what = f"PRV of {role.name}" + ("" if margin is None else f", margin {margin:g} mm")
        found.append(_Match(prv_role, what, side=_side_of(m), margin_mm=margin))
    return found


def _match_vertebra(compact: str) -> _Match | None:
    found = read_vertebra_name(compact)
    if found is None:
        return None
    if found.level is None:
        return _Match(Role.UNKNOWN, f"vertebra-like name, no level: {found.problem}",
                      vertebra_problem=found.problem)
    return _Match(Role.VERTEBRA, found.evidence, level=found.level)


def _match_target(compact: str) -> _Match | None:
    head = _TARGET_HEAD.match(compact)
    if head is None:
        return None
    role = Role(head["kind"].removeprefix("i") if head["kind"] != "itv" else "itv")
    tokens = re.findall(rf"\+|{_NUM}|[a-z]+", compact[head.end():])
    letters = [t for t in tokens if t.isalpha()]
    if any(h in t for t in letters for h in _HELPER_WORDS):
        return _Match(Role.OTHER, f"planning helper derived from {role.name} ({compact!r})")
    dose = margin = level = None
    expansion = False
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if tok == "+" and re.fullmatch(_NUM, nxt):
            expansion = True
            after = tokens[i + 2] if i + 2 < len(tokens) else ""
            margin = float(nxt) * _unit(after if after in ("mm", "cm") else None)
        elif re.fullmatch(_NUM, tok) and (i == 0 or tokens[i - 1] != "+"):
            if nxt.startswith("cgy"):
                dose = float(tok) / 100.0
            elif nxt.startswith("gy"):
                dose = float(tok)
            elif nxt in ("mm", "cm"):
                margin = float(tok) * _unit(nxt)
            elif re.fullmatch(r"\d{4}", tok):
                dose = float(tok) / 100.0  # TG-263: four-digit dose in cGy
        elif tok in ("c", "t", "th", "l", "s") and re.fullmatch(r"\d{1,2}", nxt) and level is None:
            try:
                level = parse_level(tok + nxt)
            except ValueError:
                continue
            if (i + 3 < len(tokens) and tokens[i + 2] in ("c", "t", "th", "l", "s")
                    and re.fullmatch(r"\d{1,2}", tokens[i + 3])):
                try:
                    level = parse_level(f"{level}-{tokens[i + 2]}{tokens[i + 3]}")
                except ValueError:
                    pass
    if expansion:
        return _Match(Role.OTHER, f"expansion of {role.name} by {margin:g} mm (not a named target)",
                      margin_mm=margin)
    bits = [role.name] + ([f"dose {dose:g} Gy"] if dose is not None else []) + (
        [f"level {level}"] if level else [])
    return _Match(role, f"TG-263 target grammar ({', '.join(bits)})", level=level,
                  margin_mm=margin, dose_gy=dose)


def _classify_simple(text: str) -> _Match:
    """Classify a name without subtraction: TG-263, targets, organs, vertebrae."""
    compact = _compact(text)
    if not compact:
        return _Match(Role.UNKNOWN, "empty name")
    helper = _HELPER_PREFIX.match(text)
    if helper is not None:
        inner = _classify_simple(text[helper.end():])
        if inner.role is not Role.UNKNOWN:
            return _Match(Role.OTHER, f"planning helper (prefix {helper['p']!r}) based on "
                          f"{inner.role.name}")
    candidates: list[_Match] = []
    if (tg := _match_tg263(compact, text)) is not None:
        candidates.append(tg)
    for m in (_match_target(compact), _match_vertebra(compact), *_match_organ(compact)):
        if m is not None:
            candidates.append(m)
    if not candidates:
        return _Match(Role.UNKNOWN, "name not recognised")
    problems = [c for c in candidates if c.vertebra_problem is not None]
    if problems and len(candidates) == 1:
        return problems[0]
    candidates = [c for c in candidates if c.vertebra_problem is None]
    roles = list(dict.fromkeys(c.role for c in candidates))
    if len(roles) > 1:
        return _Match(Role.UNKNOWN, f"name matches several roles: "
                      f"{', '.join(r.name for r in roles)}", alternatives=tuple(roles))
    best = candidates[0]
    # TG-263 gives the canonical name; a variant match may add a parsed margin/dose/level.
    for other in candidates[1:]:
        best = replace(best, margin_mm=best.margin_mm if best.margin_mm is not None
                       else other.margin_mm, dose_gy=best.dose_gy or other.dose_gy,
                       level=best.level or other.level, side=best.side or other.side)
    return best


def _suspect_roles(name: str) -> tuple[Role, ...]:
    words = re.findall(r"[a-z]+", name.casefold())
    found: list[Role] = []
    for w in words:
        for key, role in _KEYWORDS:
            if w.startswith(key) and role not in found:
                found.append(role)
                break
    return tuple(found)


def classify_name(name: str) -> RoleAssignment:
    """Role suggested by an ROI name alone (no RTROIInterpretedType, no table checks).

    Parameters
    ----------
    name : str
        ROI name as written in the structure set.

    Returns
    -------
    RoleAssignment
        With ``roi_number=None``.  Unrecognised names give :attr:`Role.UNKNOWN`;
        ``alternatives`` lists the spine roles a partly matching name could mean.

    Examples
    --------
    >>> classify_name("SpinalCord_PRV05").margin_mm
    5.0
    >>> classify_name("PTV_2400").dose_gy
    24.0
    """
    m = _classify_name(name)
    return RoleAssignment(roi_name=name, roi_number=None, role=m.role, level=m.level,
                          side=m.side, margin_mm=m.margin_mm, dose_gy=m.dose_gy,
                          subtracted=m.subtracted, tg263_name=m.tg263_name, evidence=m.evidence,
                          ambiguous=bool(m.alternatives), alternatives=m.alternatives)


def _classify_name(name: str) -> _Match:
    text = _expand_ranges(name.replace("'", ""))
    text = re.sub(r"(?i)[\s_]minus[\s_]", "-", text)
    parts = re.split(r"\s*[-\u2013]\s*", text)
    # A "-" is a subtraction only when what follows names a role; else a separator.
    head = parts[0]
    subtracted: list[Role] = []
    for part in parts[1:]:
        sub = _classify_simple(part) if part.strip() else _Match(Role.UNKNOWN, "")
        if subtracted or (sub.role not in _NO_SUBTRAHEND and head.strip()):
            if sub.role in _NO_SUBTRAHEND:
                return _Match(Role.UNKNOWN, f"cannot read the subtraction in {name!r}")
            subtracted.append(sub.role)
        else:
            head = f"{head} {part}"
    m = _classify_simple(head)
    if m.role is Role.UNKNOWN and not m.alternatives:
        suspects = _suspect_roles(head)
        if suspects:
            words = ", ".join(r.name for r in suspects)
            m = replace(m, evidence=f"name not recognised but mentions {words}",
                        alternatives=suspects)
    if not subtracted:
        return m
    minus = "; minus " + " and ".join(r.name for r in subtracted)
    if m.role.is_target or m.role in (Role.UNKNOWN, Role.OTHER):
        return replace(m, subtracted=tuple(subtracted), evidence=m.evidence + minus)
    return _Match(Role.OTHER, f"derived structure: {m.role.name}{minus}",
                  subtracted=tuple(subtracted), side=m.side)
