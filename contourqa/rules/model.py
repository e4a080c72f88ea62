"""The rule model: a rule, its thresholds (data), profiles, waivers and run options.

A :class:`Rule` is one small unit: a stable dotted ``code``, a ``name``, its
``citation`` (knowledge-base row and paper), its intrinsic ``severity`` (the status a
violation gets unless a profile re-levels it), the modes it applies to and the
function that checks it.  Numbers a physicist may change live in the TOML files of
``contourqa/rules/data`` (one per rule set, every entry with its source and
knowledge-base status); a :class:`Profile` can switch a rule off, re-level it or
override its thresholds, and a :class:`Waiver` (with a written reason) turns a
violation of one rule, optionally for one structure, into a visible warning that
echoes the reason.
"""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contourqa.errors import ContourQAError
from contourqa.findings import Finding, Status

if TYPE_CHECKING:
    from contourqa.rules.context import RuleContext

__all__ = [
    "FAMILIES",
    "RULE_SETS",
    "Mode",
    "Profile",
    "Rule",
    "RuleConfigError",
    "RuleLevel",
    "RuleOptions",
    "Waiver",
    "load_profile",
    "load_waivers",
    "parse_waiver",
    "rule_data",
]

#: Rule sets, one TOML data file each (``contourqa/rules/data/<set>.toml``).
RULE_SETS: tuple[str, ...] = ("upfront", "postop", "margins", "integrity", "mode",
                              "plan_quality", "epidural", "conus", "fusion", "analysis")
#: Rule families, one module each in ``contourqa/rules/``: the rule sets above (but
#: ``mode``, which holds the mode and scope heuristics) and ``dose``, whose
#: thresholds are the constraint sets and rule files of ``contourqa/constraints/data``.
FAMILIES: tuple[str, ...] = ("upfront", "postop", "margins", "integrity", "dose",
                              "plan_quality", "epidural", "conus", "fusion", "analysis")


class RuleConfigError(ContourQAError, ValueError):
    """A profile, waiver or rule option is malformed (the message names the remedy)."""


class Mode(str, enum.Enum):
    """Which consensus the target rules follow."""

    UPFRONT = "upfront"
    POSTOP = "postop"
    AUTO = "auto"


class RuleLevel(str, enum.Enum):
    """The level a profile gives a rule in one run."""

    FAIL = "fail"
    WARN = "warn"
    OFF = "off"


CheckFunction = Callable[["RuleContext", Mapping[str, Any]], list[Finding]]


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One contouring rule.

    Attributes
    ----------
    code : str
        Stable dotted code (``ctv.missing_sector``); never derived from a class name.
    name : str
        Short human name.
    citation : str
        Knowledge-base rows and the paper the rule encodes.
    severity : Status
        Status of a violation (``FAIL`` or ``WARN``): the worst status the rule
        reports (some rules report a milder ``WARN`` in documented cases; never worse
        than declared, which the tests check).  A profile re-levels it.  ``PASS`` for
        a rule that reports a measurement and never judges it (the PTV cut-backs).
    rule_set : str
        The family: the data file holding its thresholds (one of :data:`RULE_SETS`),
        or ``dose`` (thresholds in ``contourqa/constraints/data``).
    modes : frozenset of Mode
        Modes in which the rule runs; in the other mode it is not applicable.
    check : callable or None
        ``check(ctx, params) -> list[Finding]``; ``params`` is the rule's table of its
        rule-set file merged with profile overrides.  Returns at least one finding.
        None for the dose rules, which :mod:`contourqa.dose_checks` evaluates.
    spine_only : bool
        The rule concerns spine targets only (not applicable when the target involves
        no vertebra, see :mod:`contourqa.rules.scope`).
    thresholds : mapping or None
        For the dose rules: their thresholds (listed by ``contourqa rules``); the
        other rules' thresholds are their table in the rule-set file.
    """

    code: str
    name: str
    citation: str
    severity: Status
    rule_set: str
    check: CheckFunction | None
    modes: frozenset[Mode] = frozenset({Mode.UPFRONT, Mode.POSTOP})
    spine_only: bool = False
    thresholds: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.severity not in (Status.FAIL, Status.WARN, Status.PASS):
            raise ValueError(f'Rule {self.code}: "severity" must be FAIL, WARN or PASS '
                             "(reported, never judged).")
        if self.rule_set not in (*RULE_SETS, "dose"):
            raise ValueError(f'Rule {self.code}: "rule_set" must be one of {RULE_SETS} or dose.')

    @property
    def family(self) -> str:
        """The rule's family (module of ``contourqa/rules``)."""
        return self.rule_set

    def data(self) -> dict[str, Any]:
        """The rule's shipped thresholds, with its source and status (variants apart)."""
        if self.thresholds is not None:
            return dict(self.thresholds)
        return dict(rule_data(self.rule_set).get(self.code, {}))


@cache
def _builtin_data(rule_set: str) -> dict[str, Any]:
    text = resources.files("contourqa.rules").joinpath("data", f"{rule_set}.toml").read_text("utf-8")
    return tomllib.loads(text)


def rule_data(rule_set: str) -> dict[str, Any]:
    """The thresholds of one rule set (a fresh copy of the shipped TOML file).

    Parameters
    ----------
    rule_set : str
        One of :data:`RULE_SETS`.

    Raises
    ------
    RuleConfigError
        Unknown rule set.
    """
    if rule_set not in RULE_SETS:
        raise RuleConfigError(f'Argument "rule_set" must be one of {RULE_SETS}, got {rule_set!r}.')
    import copy

    return copy.deepcopy(_builtin_data(rule_set))


@dataclass(frozen=True, kw_only=True)
class Waiver:
    """An accepted deviation: findings of ``code`` (for ``structure``, or any) are
    reported as warnings that echo ``reason``.

    Attributes
    ----------
    code : str
    reason : str
        Written reason; required and non-blank.
    structure : str or None
        ROI name the waiver is limited to (case-insensitive); None for every ROI.
    author : str or None
    """

    code: str
    reason: str
    structure: str | None = None
    author: str | None = None
    #: where it was given (``--waiver`` or a file path), for error messages
    origin: str = "--waiver"

    def __post_init__(self) -> None:
        if not self.code.strip():
            raise RuleConfigError('A waiver needs a rule "code".')
        if not self.reason.strip():
            raise RuleConfigError(f'The waiver of {self.code} has no "reason": a waiver needs a '
                                  "written reason.")

    def matches(self, finding: Finding) -> bool:
        """True when this waiver covers ``finding``."""
        if finding.code != self.code:
            return False
        if self.structure is None:
            return True
        return (finding.structure or "").casefold() == self.structure.casefold()


def parse_waiver(text: str) -> Waiver:
    """A waiver from the command-line form ``CODE[@STRUCTURE]=REASON``.

    Raises
    ------
    RuleConfigError
        No ``=`` or an empty reason.
    """
    head, sep, reason = text.partition("=")
    if not sep:
        raise RuleConfigError(f'Waiver {text!r} must read "CODE[@STRUCTURE]=REASON".')
    code, _, structure = head.partition("@")
    return Waiver(code=code.strip(), reason=reason.strip(), structure=structure.strip() or None)


def _read_toml(path: str | Path, what: str) -> dict[str, Any]:
    p = Path(path)
    try:
        return tomllib.loads(p.read_text("utf-8"))
    except OSError as exc:
        raise RuleConfigError(f"{what} {p}: cannot read it ({exc.strerror}).") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RuleConfigError(f"{what} {p}: not valid TOML ({exc}).") from exc


def load_waivers(path: str | Path) -> tuple[Waiver, ...]:
    """Waivers from a TOML file of ``[[waiver]]`` tables (code, reason, structure, author)."""
    data = _read_toml(path, "Waiver file")
    out = []
    for n, entry in enumerate(data.get("waiver", [])):
        if not isinstance(entry, dict) or "code" not in entry:
            raise RuleConfigError(f"Waiver file {path}: [[waiver]] #{n + 1} needs a code.")
        _known_keys(entry, {"code", "reason", "structure", "author"},
                    f"Waiver file {path}: [[waiver]] #{n + 1}")
        out.append(Waiver(code=str(entry["code"]), reason=str(entry.get("reason", "")),
                          structure=entry.get("structure"), author=entry.get("author"),
                          origin=str(path)))
    return tuple(out)


def _known_keys(table: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise RuleConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: "
                              f"{', '.join(sorted(known))}.")


@dataclass(frozen=True, kw_only=True)
class Profile:
    """An institution's settings for the rules.

    Attributes
    ----------
    name : str
    levels : mapping of str to RuleLevel
        Rule code -> level in this profile (``off`` disables the rule).
    params : mapping of str to mapping
        Rule code -> threshold overrides merged over the shipped data.
    variants : tuple of str
        Optional, labelled variants to switch on (``isrc_p1_3mm``, ...).
    waivers : tuple of Waiver
    """

    name: str = "default"
    levels: Mapping[str, RuleLevel] = field(default_factory=dict)
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    variants: tuple[str, ...] = ()
    waivers: tuple[Waiver, ...] = ()
    #: the ``[sectors]`` table: sector-analysis options and partition landmarks
    #: (:meth:`contourqa.sectors.SectorOptions.from_mapping`)
    sectors: Mapping[str, Any] = field(default_factory=dict)
    #: the file it was read from (for error messages); None when built in code
    origin: str | None = None


def load_profile(path: str | Path) -> Profile:
    """A profile from TOML.

    The file holds ``name``, optional ``variants = [...]``, ``[rules."<code>"]`` tables
    with ``level = "fail"|"warn"|"off"`` and any threshold of that rule, and optional
    ``[[waiver]]`` tables.

    Raises
    ------
    RuleConfigError
        Unreadable file, bad level, a waiver without a reason.
    """
    data = _read_toml(path, "Profile")
    _known_keys(data, {"name", "variants", "rules", "waiver", "sectors"}, f"Profile {path}")
    if not isinstance(data.get("sectors", {}), dict):
        raise RuleConfigError(f"Profile {path}: [sectors] must be a table.")
    levels: dict[str, RuleLevel] = {}
    params: dict[str, dict[str, Any]] = {}
    for code, table in data.get("rules", {}).items():
        if not isinstance(table, dict):
            raise RuleConfigError(f'Profile {path}: [rules."{code}"] must be a table.')
        table = dict(table)
        if "level" in table:
            try:
                levels[code] = RuleLevel(str(table.pop("level")))
            except ValueError as exc:
                raise RuleConfigError(f'Profile {path}: rule {code}: "level" must be fail, warn '
                                      "or off.") from exc
        if table:
            params[code] = table
    waivers = []
    for n, entry in enumerate(data.get("waiver", [])):
        if not isinstance(entry, dict) or "code" not in entry:
            raise RuleConfigError(f"Profile {path}: [[waiver]] #{n + 1} needs a code.")
        _known_keys(entry, {"code", "reason", "structure", "author"},
                    f"Profile {path}: [[waiver]] #{n + 1}")
        waivers.append(Waiver(code=str(entry["code"]), reason=str(entry.get("reason", "")),
                              structure=entry.get("structure"), author=entry.get("author"),
                              origin=str(path)))
    return Profile(name=str(data.get("name", Path(path).stem)), levels=levels, params=params,
                   variants=tuple(str(v) for v in data.get("variants", ())),
                   waivers=tuple(waivers), sectors=dict(data.get("sectors", {})),
                   origin=str(path))


_ASIA = ("A", "B", "C", "D", "E")
_BILSKY = ("0", "1a", "1b", "1c", "2", "3")


@dataclass(frozen=True, kw_only=True)
class RuleOptions:
    """Per-run options of the contouring rules.

    Parameters
    ----------
    mode : Mode or str
        ``upfront`` (Cox 2012), ``postop`` (Redmond 2017) or ``auto`` (post-operative
        when hardware-density voxels or ROI names show surgery).
    profile : Profile
    waivers : sequence of Waiver
        Added to the profile's waivers.
    variants : sequence of str
        Optional variants switched on (added to the profile's).
    asia_grade : {"A", "B", "C", "D", "E"} or None
    bilsky_grade : {"0", "1a", "1b", "1c", "2", "3"} or None
        Post-operative Bilsky ESCC grade of the residual disease.
    bilsky_estimated : bool
        ``bilsky_grade`` was estimated from the contours (GTV, thecal sac, cord; see
        :mod:`contourqa.epidural`), not given: the findings say so.
    histology : str or None
        Primary histology (``renal``, ``breast``, ...), matched against the
        radio-resistant / radio-sensitive lists of the post-operative data.
    prior_rt_overlap : bool or None
        Prior radiation overlapping the target.
    """

    mode: Mode | str = Mode.AUTO
    profile: Profile = field(default_factory=Profile)
    waivers: Sequence[Waiver] = ()
    variants: Sequence[str] = ()
    asia_grade: str | None = None
    bilsky_grade: str | None = None
    bilsky_estimated: bool = False
    histology: str | None = None
    prior_rt_overlap: bool | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "mode", Mode(str(getattr(self.mode, "value", self.mode))))
        except ValueError as exc:
            raise RuleConfigError('Argument "mode" must be upfront, postop or auto.') from exc
        if self.asia_grade is not None:
            grade = str(self.asia_grade).strip().upper()
            if grade not in _ASIA:
                raise RuleConfigError(f'Argument "asia_grade" must be one of {_ASIA}.')
            object.__setattr__(self, "asia_grade", grade)
        if self.bilsky_grade is not None:
            grade = str(self.bilsky_grade).strip().lower()
            if grade not in _BILSKY:
                raise RuleConfigError(f'Argument "bilsky_grade" must be one of {_BILSKY}.')
            object.__setattr__(self, "bilsky_grade", grade)
        object.__setattr__(self, "waivers", tuple(self.waivers))
        object.__setattr__(self, "variants", tuple(self.variants))

    @property
    def all_waivers(self) -> tuple[Waiver, ...]:
        return (*self.profile.waivers, *self.waivers)

    @property
    def all_variants(self) -> frozenset[str]:
        return frozenset((*self.profile.variants, *self.variants))
