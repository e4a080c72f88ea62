"""Typed constraint sets, read from TOML files with eager validation.

File format (one file per set; see ``data/sets/*.toml``)::

    [set]
    name = "hytec2021"                 # lowercase, digits, _ (used in finding codes)
    title = "..."
    citation = "..."                   # full reference
    kb_section = "3a"                  # knowledge-base section it was encoded from
    point_volume_cc = 0.0              # what "point"/"max" means here; 0 = true maximum
    point_definition = "..."           # the source's words
    point_status = "C"                 # C/S/D/U/SEED of the point definition
    auto = true                        # selected automatically (--constraints auto)
                                       # (the default of every constraint's own "auto")

    [[constraint]]
    id = "cord_pmax_1fx"               # unique in the set
    check = "cord_pmax"                # finding code: dose.<set>.<check>
    roles = ["spinal_cord", "cord_prv"]
    metric = "Dpoint"                  # DVH grammar, or Dpoint = the set's point definition
    comparison = "<="                  # <, <=, >, >=
    limit_gy = 14.0                    # exactly one of limit_gy / limit_cc / limit_percent /
                                       # limit_percent_of_prescription (by the metric's unit)
    caution_gy = 12.4                  # optional: published range start; beyond it: warn
    fractions = [1]
    source = "..."; table = "..."; status = "C"
    severity = "fail"                  # optional: "warn" for target-coverage criteria
    prior_rt = "30Gy/10fx"             # optional: applies only after this prior course
                                       # ("none", "none_cord_compromise")
    subvolume = "cord_target_levels"   # optional: evaluated on the cord subvolume
    auto = true                        # optional: part of the automatic selection even in
                                       # a set that is not (or not, in one that is)
    note = "..."                       # optional

Coverage gaps (``data/coverage/gaps.toml``, :func:`parse_coverage_gaps`): organs at
risk and fraction numbers for which the knowledge base has no published value::

    [[gap]]
    id = "kidney"                      # finding code dose.gap.<id>
    name = "kidneys"
    roles = ["kidney"]
    fractions = [1, 2, 3, 4, 5]
    kb_section = "3"
    reason = "..."                     # what the knowledge base has, and what it lacks
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contourqa.dvh.metrics import DVHMetric
from contourqa.errors import ContourQAError, MetricError
from contourqa.structures import Role

__all__ = [
    "POINT_METRIC",
    "STATUSES",
    "Comparison",
    "Constraint",
    "ConstraintFileError",
    "ConstraintSet",
    "CoverageGap",
    "load_constraint_set",
    "parse_constraint_set",
    "parse_coverage_gaps",
]

#: The metric token that stands for the set's own maximum-dose definition.
POINT_METRIC = "Dpoint"
#: Knowledge-base status codes (section "Status codes").
STATUSES = ("C", "S", "D", "U", "SEED")
_NAME_RE = re.compile(r"^[a-z0-9_]+$")
_LIMIT_KEYS = {"Gy": "limit_gy", "cc": "limit_cc", "%": "limit_percent"}
_CAUTION_KEYS = {"Gy": "caution_gy", "cc": "caution_cc", "%": "caution_percent"}
_SUBVOLUMES = ("cord_target_levels",)


class ConstraintFileError(ContourQAError, ValueError):
    """A constraint file is malformed; the message names the file, the entry and the fix."""


class Comparison(str, enum.Enum):
    """How a value must relate to its limit to pass."""

    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="

    @property
    def is_upper(self) -> bool:
        """True when the limit is an upper bound (``<``, ``<=``)."""
        return self in (Comparison.LT, Comparison.LE)

    def holds(self, value: float, limit: float) -> bool:
        """Whether ``value <comparison> limit``."""
        return {Comparison.LT: value < limit, Comparison.LE: value <= limit,
                Comparison.GT: value > limit, Comparison.GE: value >= limit}[self]


@dataclass(frozen=True)
class Constraint:
    """One dose-volume constraint for a number of fractions.

    Attributes
    ----------
    id, check : str
        Unique id in the set; ``check`` names the finding code ``dose.<set>.<check>``.
    roles : tuple of Role
    metric : str
        DVH grammar, or :data:`POINT_METRIC` (resolved with the set's point volume).
    comparison : Comparison
    limit : float
        In ``unit``; for ``limit_percent_of_prescription`` the percentage.
    unit : str
        ``"Gy"``, ``"cc"`` or ``"%"``.
    of_prescription : bool
        ``limit`` (and ``caution``) are percentages of the prescription dose.
    caution : float or None
        Start of a published range: beyond it (towards the limit) the result is a
        warning.
    fractions : tuple of int
    source, table, status : str
    severity : str
        ``"fail"`` or ``"warn"``: the status when the limit is not met.
    prior_rt : str or None
    subvolume : str or None
    note : str
    auto : bool
        Part of the automatic selection (``--constraints auto``); the set's ``auto``
        unless the entry says otherwise.  Never true for status U.
    """

    id: str
    check: str
    roles: tuple[Role, ...]
    metric: str
    comparison: Comparison
    limit: float
    unit: str
    fractions: tuple[int, ...]
    source: str
    table: str
    status: str
    of_prescription: bool = False
    caution: float | None = None
    severity: str = "fail"
    prior_rt: str | None = None
    subvolume: str | None = None
    note: str = ""
    auto: bool = False

    @property
    def is_point(self) -> bool:
        return self.metric == POINT_METRIC

    def limit_in_unit(self, prescription_gy: float | None) -> tuple[float, float | None]:
        """``(limit, caution)`` in :attr:`unit`, converting percentages of the
        prescription to Gy.

        Raises
        ------
        ValueError
            The limit is a percentage of the prescription and none is known.
        """
        if not self.of_prescription:
            return self.limit, self.caution
        if prescription_gy is None or not prescription_gy > 0:
            raise ValueError(f"{self.id}: the limit is {self.limit:g}% of the prescription, "
                             "and the prescription dose is unknown.")
        scale = prescription_gy / 100.0
        return self.limit * scale, None if self.caution is None else self.caution * scale


@dataclass(frozen=True)
class ConstraintSet:
    """A named, cited constraint set.

    Attributes
    ----------
    name, title, citation, kb_section : str
    point_volume_cc : float
        Volume that defines the set's "point" maximum; 0 is the true maximum.
    point_definition, point_status : str
    auto : bool
        The set's default for its constraints' ``auto`` (part of the automatic
        selection).
    constraints : tuple of Constraint
    path : str
        File it was read from (``package:...`` for built-in sets).
    """

    name: str
    title: str
    citation: str
    kb_section: str
    point_volume_cc: float
    point_definition: str
    point_status: str
    auto: bool
    constraints: tuple[Constraint, ...]
    path: str = ""
    note: str = ""

    @property
    def point_metric(self) -> DVHMetric:
        """The DVH metric that is this set's point maximum."""
        if self.point_volume_cc == 0:
            return DVHMetric.parse("Dmax")
        return DVHMetric.parse(f"D{self.point_volume_cc:g}cc")

    @property
    def fractions(self) -> frozenset[int]:
        """Every fraction number some constraint of the set applies to."""
        return frozenset(n for c in self.constraints for n in c.fractions)

    def for_fractions(self, n_fractions: int) -> tuple[Constraint, ...]:
        return tuple(c for c in self.constraints if n_fractions in c.fractions)

    def automatic_part(self) -> ConstraintSet | None:
        """The part of the set in the automatic selection: the set itself when every
        constraint is ``auto``, a copy holding only those (its title says so) when
        some are, ``None`` when none is."""
        part = tuple(c for c in self.constraints if c.auto)
        if not part:
            return None
        if len(part) == len(self.constraints):
            return self
        return dataclasses.replace(
            self, constraints=part, title=f"{self.title}, automatic part ({len(part)} of "
                                          f"{len(self.constraints)} constraints)")


@dataclass(frozen=True)
class CoverageGap:
    """Organs at risk and fraction numbers with no published constraint in the
    knowledge base: not evaluated by design (never invented).

    Attributes
    ----------
    id : str
        Finding code ``dose.gap.<id>``.
    name : str
        The organ(s), as a physicist names them.
    roles : tuple of Role
    fractions : tuple of int
    kb_section : str
    reason : str
        What the knowledge base has for this organ, and what it lacks.
    """

    id: str
    name: str
    roles: tuple[Role, ...]
    fractions: tuple[int, ...]
    kb_section: str
    reason: str

    @property
    def code(self) -> str:
        return f"dose.gap.{self.id}"


# --------------------------------------------------------------------------- parsing

def _err(where: str, problem: str) -> ConstraintFileError:
    return ConstraintFileError(f"{where}: {problem}")


def _str(entry: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = entry.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise _err(where, f'"{key}" must be a non-empty string.')
    return value.strip()


def _number(entry: Mapping[str, Any], key: str, where: str) -> float:
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _err(where, f'"{key}" must be a finite number, got {value!r}.')
    return float(value)


def _status(value: str, where: str) -> str:
    if value not in STATUSES:
        raise _err(where, f'"status" must be one of {", ".join(STATUSES)} (knowledge-base '
                          f'status codes), got {value!r}.')
    return value


def _roles(entry: Mapping[str, Any], where: str) -> tuple[Role, ...]:
    roles_raw = entry.get("roles")
    if not isinstance(roles_raw, list) or not roles_raw:
        raise _err(where, '"roles" must be a non-empty list of role names, e.g. ["spinal_cord"].')
    try:
        return tuple(Role(str(r).lower()) for r in roles_raw)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise _err(where, f'"roles" {roles_raw!r} has an unknown role; known: {known}.') from None


def _fractions(entry: Mapping[str, Any], where: str) -> tuple[int, ...]:
    fractions = entry.get("fractions")
    if (not isinstance(fractions, list) or not fractions
            or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0
                       for n in fractions)):
        raise _err(where, '"fractions" must be a non-empty list of positive integers, e.g. [1].')
    return tuple(sorted(set(fractions)))


def _constraint(entry: Mapping[str, Any], where: str, ids: set[str], *,
                default_auto: bool) -> Constraint:
    cid = _str(entry, "id", where)
    where = f"{where} (id {cid!r})"
    if cid in ids:
        raise _err(where, "duplicate id; every constraint id in a set must be unique.")
    ids.add(cid)
    check = _str(entry, "check", where)
    if not _NAME_RE.match(check):
        raise _err(where, f'"check" must be lowercase letters, digits and _, got {check!r}.')
    roles = _roles(entry, where)
    metric = _str(entry, "metric", where)
    if metric == POINT_METRIC:
        unit = "Gy"
    else:
        try:
            unit = DVHMetric.parse(metric).unit
        except MetricError as exc:
            raise _err(where, str(exc)) from None
    try:
        comparison = Comparison(_str(entry, "comparison", where))
    except ValueError:
        raise _err(where, '"comparison" must be one of <, <=, >, >=.') from None
    limit_keys = [k for k in (*_LIMIT_KEYS.values(), "limit_percent_of_prescription")
                  if k in entry]
    if len(limit_keys) != 1:
        raise _err(where, "give exactly one of limit_gy, limit_cc, limit_percent, "
                          f"limit_percent_of_prescription (found {limit_keys or 'none'}).")
    key = limit_keys[0]
    of_rx = key == "limit_percent_of_prescription"
    if of_rx and unit != "Gy":
        raise _err(where, "limit_percent_of_prescription needs a dose metric (D..., Dpoint).")
    if not of_rx and key != _LIMIT_KEYS[unit]:
        raise _err(where, f"metric {metric} is in {unit}: use {_LIMIT_KEYS[unit]}, not {key}.")
    limit = _number(entry, key, where)
    caution_key = "caution_percent_of_prescription" if of_rx else _CAUTION_KEYS[unit]
    stray = [k for k in (*_CAUTION_KEYS.values(), "caution_percent_of_prescription")
             if k in entry and k != caution_key]
    if stray:
        raise _err(where, f"{stray[0]} does not match the limit; use {caution_key}.")
    caution = _number(entry, caution_key, where) if caution_key in entry else None
    if caution is not None and not (caution <= limit if comparison.is_upper else caution >= limit):
        raise _err(where, f"{caution_key} ({caution:g}) must lie on the passing side of the "
                          f"limit ({limit:g}).")
    fractions = _fractions(entry, where)
    severity = entry.get("severity", "fail")
    if severity not in ("fail", "warn"):
        raise _err(where, f'"severity" must be "fail" or "warn", got {severity!r}.')
    subvolume = entry.get("subvolume")
    if subvolume is not None and subvolume not in _SUBVOLUMES:
        raise _err(where, f'"subvolume" must be one of {", ".join(_SUBVOLUMES)}.')
    prior = entry.get("prior_rt")
    if prior is not None and not isinstance(prior, str):
        raise _err(where, '"prior_rt" must be a string such as "30Gy/10fx" or "none".')
    allowed = {"id", "check", "roles", "metric", "comparison", key, caution_key, "fractions",
             "source", "table", "status", "severity", "subvolume", "prior_rt", "note", "auto"}
    stray_keys = sorted(set(entry) - allowed)
    if stray_keys:
        raise _err(where, f"unknown key(s) {', '.join(stray_keys)}; known: "
                          f"{', '.join(sorted(allowed))}.")
    status = _status(_str(entry, "status", where), where)
    auto = entry.get("auto", default_auto)
    if not isinstance(auto, bool):
        raise _err(where, '"auto" must be true or false.')
    if auto and status == "U":
        raise _err(where, "an unconfirmed constraint (status U) is never part of the automatic "
                          'selection: set "auto = false" (it is evaluated with use_unconfirmed).')
    return Constraint(
        id=cid, check=check, roles=roles, metric=metric, comparison=comparison, limit=limit,
        unit=unit, fractions=fractions, source=_str(entry, "source", where),
        table=_str(entry, "table", where), status=status,
        of_prescription=of_rx, caution=caution, severity=severity, prior_rt=prior,
        subvolume=subvolume, note=_str(entry, "note", where, required=False), auto=auto)


def parse_constraint_set(data: Mapping[str, Any], *, origin: str) -> ConstraintSet:
    """Build a :class:`ConstraintSet` from parsed TOML.

    Raises
    ------
    ConstraintFileError
        Missing or malformed fields (the message names ``origin`` and the entry).
    """
    head = data.get("set")
    if not isinstance(head, dict):
        raise _err(origin, "a constraint file needs a [set] table (name, title, citation, ...).")
    where = f"{origin} [set]"
    name = _str(head, "name", where)
    if not _NAME_RE.match(name):
        raise _err(where, f'"name" must be lowercase letters, digits and _, got {name!r} '
                          "(it becomes part of finding codes).")
    point_cc = _number(head, "point_volume_cc", where) if "point_volume_cc" in head else None
    if point_cc is None or point_cc < 0:
        raise _err(where, '"point_volume_cc" (>= 0; 0 = the true maximum) is required: every '
                          "set states what its maximum dose means.")
    auto = head.get("auto", False)
    if not isinstance(auto, bool):
        raise _err(where, '"auto" must be true or false.')
    entries = data.get("constraint", [])
    if not isinstance(entries, list) or not entries:
        raise _err(origin, "no [[constraint]] entries.")
    ids: set[str] = set()
    constraints = tuple(_constraint(e, f"{origin} [[constraint]] #{i + 1}", ids,
                                    default_auto=auto)
                        for i, e in enumerate(entries))
    return ConstraintSet(
        name=name, title=_str(head, "title", where), citation=_str(head, "citation", where),
        kb_section=_str(head, "kb_section", where, required=False),
        point_volume_cc=point_cc, point_definition=_str(head, "point_definition", where),
        point_status=_status(_str(head, "point_status", where), where), auto=auto,
        constraints=constraints, path=origin, note=_str(head, "note", where, required=False))


def parse_coverage_gaps(data: Mapping[str, Any], *, origin: str) -> tuple[CoverageGap, ...]:
    """The ``[[gap]]`` entries of a coverage-gap file (parsed TOML).

    Raises
    ------
    ConstraintFileError
        Missing or malformed fields, a duplicate id, an unknown key.
    """
    entries = data.get("gap", [])
    if not isinstance(entries, list) or not entries:
        raise _err(origin, "no [[gap]] entries.")
    out: list[CoverageGap] = []
    ids: set[str] = set()
    allowed = {"id", "name", "roles", "fractions", "kb_section", "reason"}
    for i, entry in enumerate(entries):
        where = f"{origin} [[gap]] #{i + 1}"
        gid = _str(entry, "id", where)
        where = f"{where} (id {gid!r})"
        if not _NAME_RE.match(gid):
            raise _err(where, f'"id" must be lowercase letters, digits and _, got {gid!r} '
                              "(it becomes the finding code dose.gap.<id>).")
        if gid in ids:
            raise _err(where, "duplicate id; every gap id must be unique.")
        ids.add(gid)
        stray = sorted(set(entry) - allowed)
        if stray:
            raise _err(where, f"unknown key(s) {', '.join(stray)}; known: "
                              f"{', '.join(sorted(allowed))}.")
        out.append(CoverageGap(id=gid, name=_str(entry, "name", where),
                               roles=_roles(entry, where), fractions=_fractions(entry, where),
                               kb_section=_str(entry, "kb_section", where),
                               reason=_str(entry, "reason", where)))
    return tuple(out)


def load_constraint_set(path: str | Path) -> ConstraintSet:
    """Read one constraint-set TOML file (an institutional set, or a built-in one).

    Raises
    ------
    ConstraintFileError
        The file is missing, is not TOML, or is malformed.
    """
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConstraintFileError(f"{p}: constraint file not found.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConstraintFileError(f"{p}: cannot read the constraint file ({exc}).") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConstraintFileError(f"{p}: not valid TOML ({exc}).") from None
    return parse_constraint_set(data, origin=str(p))
