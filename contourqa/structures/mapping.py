"""User role mappings: a TOML ``[roles]`` table or a mapping, checked entry by entry."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contourqa.errors import ContourQAError
from contourqa.structures.levels import parse_level
from contourqa.structures.roles import Role


class RoleMappingError(ContourQAError, ValueError):
    """A user role mapping is malformed (bad TOML, unknown role, bad value)."""


@dataclass(frozen=True)
class RoleOverride:
    """One entry of a user mapping: the role of an ROI name, with optional details."""

    role: Role
    margin_mm: float | None = None
    level: str | None = None
    dose_gy: float | None = None


def _parse_role(value: object, where: str) -> Role:
    if isinstance(value, Role):
        return value
    if isinstance(value, str):
        key = re.sub(r"[\s\-]+", "_", value.strip()).lower()
        for role in Role:
            if key == role.value:
                return role
    valid = ", ".join(r.value for r in Role)
    raise RoleMappingError(f"{where}: unknown role {value!r}; valid roles are: {valid}.")


def _optional_float(entry: Mapping[str, Any], key: str, where: str) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RoleMappingError(f"{where}: {key!r} must be a number, got {value!r}.")
    return float(value)


def _coerce_override(name: str, value: object, where: str) -> RoleOverride:
    if isinstance(value, RoleOverride):
        return value
    if isinstance(value, (str, Role)):
        return RoleOverride(_parse_role(value, where))
    if isinstance(value, Mapping):
        extra = set(value) - {"role", "margin_mm", "level", "dose_gy"}
        if extra or "role" not in value:
            raise RoleMappingError(
                f"{where}: an entry for {name!r} needs 'role' and may have 'margin_mm', "
                f"'level', 'dose_gy'; got keys {sorted(value)}.")
        level = value.get("level")
        if level is not None:
            try:
                level = parse_level(str(level))
            except ValueError as exc:
                raise RoleMappingError(f"{where}: {exc}") from None
        return RoleOverride(_parse_role(value["role"], where),
                            margin_mm=_optional_float(value, "margin_mm", where), level=level,
                            dose_gy=_optional_float(value, "dose_gy", where))
    raise RoleMappingError(f"{where}: the value for {name!r} must be a role string or a table "
                           f"with 'role'; got {value!r}.")


def _normalise_mapping(mapping: Mapping[str, object], source: str) -> dict[str, RoleOverride]:
    out: dict[str, RoleOverride] = {}
    folded: dict[str, str] = {}
    for name, value in mapping.items():
        where = f"{source} [roles] {name!r}"
        if not isinstance(name, str) or not name.strip():
            raise RoleMappingError(f"{source}: ROI names in [roles] must be non-empty strings.")
        if (prev := folded.get(name.casefold())) is not None and prev != name:
            raise RoleMappingError(f"{where}: {prev!r} and {name!r} differ only in case; "
                                   f"keep one.")
        folded[name.casefold()] = name
        out[name] = _coerce_override(name, value, where)
    return out


def load_mapping(path: str | Path) -> dict[str, RoleOverride]:
    """Read a user role mapping from a TOML file.

    The file has a ``[roles]`` table from ROI name to a role string or a table::

        [roles]
        "SPINAL CORD2" = "spinal_cord"
        "SC PRV" = { role = "cord_prv", margin_mm = 2 }
        "Cord old" = "other"
        "Vert 10" = { role = "vertebra", level = "T10" }

    Role strings are the :class:`Role` values (case-insensitive).

    Returns
    -------
    dict
        ROI name -> :class:`RoleOverride`.

    Raises
    ------
    RoleMappingError
        Unreadable TOML, no ``[roles]`` table, an unknown role or a bad value; the
        message names the file and the entry.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise RoleMappingError(f"{path}: cannot read the role mapping ({exc.strerror}).") from None
    except tomllib.TOMLDecodeError as exc:
        raise RoleMappingError(f"{path}: not valid TOML ({exc}).") from None
    roles = data.get("roles")
    if not isinstance(roles, dict):
        raise RoleMappingError(f"{path}: a role mapping needs a [roles] table "
                               f"(ROI name = role).")
    return _normalise_mapping(roles, str(path))
