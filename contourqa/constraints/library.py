"""The built-in constraint sets and clinical rule files, and set selection.

Built-in files live in ``contourqa/constraints/data/sets/*.toml`` (constraint sets)
and ``data/rules/*.toml`` (thresholds of the other dose, prescription, imaging and
VCF checks).  Every number in them carries its citation and knowledge-base status.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from contourqa.constraints.model import (
    ConstraintFileError,
    ConstraintSet,
    CoverageGap,
    load_constraint_set,
    parse_constraint_set,
    parse_coverage_gaps,
)

__all__ = ["AUTO", "builtin_sets", "check_coverage_gaps", "coverage_gaps", "load_rules",
           "select_sets"]

#: The selection keyword for "every set marked auto that covers the plan's fractions".
AUTO = "auto"


@cache
def builtin_sets() -> dict[str, ConstraintSet]:
    """Every built-in constraint set, by name (sorted)."""
    root = resources.files("contourqa.constraints").joinpath("data", "sets")
    out: dict[str, ConstraintSet] = {}
    for item in sorted(root.iterdir(), key=lambda t: t.name):
        if not item.name.endswith(".toml"):
            continue
        data = tomllib.loads(item.read_text(encoding="utf-8"))
        cs = parse_constraint_set(data, origin=f"contourqa:constraints/data/sets/{item.name}")
        if cs.name in out:
            raise ConstraintFileError(f"{item.name}: set name {cs.name!r} is used twice.")
        out[cs.name] = cs
    return dict(sorted(out.items()))


@cache
def coverage_gaps() -> tuple[CoverageGap, ...]:
    """Organs at risk and fraction numbers with no published value in the knowledge
    base (``data/coverage/gaps.toml``): not evaluated by design.

    Raises
    ------
    ConstraintFileError
        A gap that a built-in constraint covers (:func:`check_coverage_gaps`).
    """
    item = resources.files("contourqa.constraints").joinpath("data", "coverage", "gaps.toml")
    origin = "contourqa:constraints/data/coverage/gaps.toml"
    gaps = parse_coverage_gaps(tomllib.loads(item.read_text(encoding="utf-8")), origin=origin)
    check_coverage_gaps(gaps, builtin_sets().values(), origin=origin)
    return gaps


def check_coverage_gaps(gaps: Iterable[CoverageGap], sets: Iterable[ConstraintSet], *,
                        origin: str) -> None:
    """Refuse a gap that a constraint of ``sets`` (of status C, S or D) covers: the
    gap list and the sets must not drift apart.

    Raises
    ------
    ConstraintFileError
        Naming ``origin``, the gap, the fraction numbers and the constraint.
    """
    sets = tuple(sets)
    for gap in gaps:
        for cs in sets:
            for c in cs.constraints:
                both = set(c.fractions) & set(gap.fractions)
                if c.status != "U" and both and set(c.roles) & set(gap.roles):
                    raise ConstraintFileError(
                        f"{origin}: gap {gap.id!r} lists {sorted(both)} fx, but {cs.name} "
                        f"constraint {c.id!r} gives a value there: remove it from the gap.")


@cache
def load_rules(name: str) -> dict[str, Any]:
    """A built-in rule file ``data/rules/<name>.toml`` as parsed TOML (read once).

    Raises
    ------
    ConstraintFileError
        No such rule file.
    """
    item = resources.files("contourqa.constraints").joinpath("data", "rules", f"{name}.toml")
    if not item.is_file():
        raise ConstraintFileError(f"no built-in rule file {name!r}.")
    return tomllib.loads(item.read_text(encoding="utf-8"))


def select_sets(names: Sequence[str] | None = None, *,
                files: Iterable[str | Path] = ()) -> tuple[ConstraintSet, ...]:
    """The constraint sets of one run.

    Parameters
    ----------
    names : sequence of str, optional
        Built-in set names; ``"auto"`` (the default, also for ``None`` or empty)
        stands for every set marked ``auto``, and for the ``auto`` constraints of the
        other sets (:meth:`ConstraintSet.automatic_part`).
    files : iterable of path
        Institutional constraint files, always added.

    Raises
    ------
    ConstraintFileError
        An unknown set name (the message lists the known ones), or a bad file.
    """
    known = builtin_sets()
    chosen: list[ConstraintSet] = []
    for name in (names or (AUTO,)):
        key = name.strip().lower()
        if key == AUTO:
            chosen += [p for p in (s.automatic_part() for s in known.values()) if p]
        elif key in known:
            chosen.append(known[key])
        else:
            raise ConstraintFileError(
                f"unknown constraint set {name!r}; known: {AUTO}, {', '.join(known)}. "
                "An institutional file is given by path (--constraint-file).")
    for path in files:
        cs = load_constraint_set(path)
        if cs.name in known:
            raise ConstraintFileError(
                f"{path}: set name {cs.name!r} is a built-in set; give the institutional set "
                "its own name.")
        chosen.append(cs)
    unique: dict[str, ConstraintSet] = {}
    for cs in chosen:
        # a set both named and in the automatic selection: the whole set, not its part
        if cs.name not in unique or len(cs.constraints) > len(unique[cs.name].constraints):
            unique[cs.name] = cs
    return tuple(unique.values())
