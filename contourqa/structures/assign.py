"""Roles of all ROIs of a structure set, and the problems found assigning them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from contourqa.findings import Finding, Status
from contourqa.structures.mapping import RoleOverride, _normalise_mapping
from contourqa.structures.names import (
    _POINT_TYPES,
    _PRV_ROLE,
    _TARGET_TYPES,
    _classify_name,
    _compact,
    _match_vertebra,
)
from contourqa.structures.vertebrae import looks_like_vertebra
from contourqa.structures.roles import _PAIRED, _REPEATABLE, Role, RoleAssignment, RoleTable

_TG263_SOURCE = "AAPM TG-263 (v20170815)"
_DICOM_SOURCE = "DICOM PS3.3 C.8.8.8 (RTROIInterpretedType)"
_VERTEBRA_SOURCE = "AAPM TG-263 VB_ names (KB 8); contourqa/data/vertebra_names.toml"


class _ROILike(Protocol):
    @property
    def number(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def interpreted_type(self) -> str | None: ...


def _finding(code: str, message: str, roi: str | None, source: str,
             status: Status = Status.WARN) -> Finding:
    return Finding(code=f"structures.{code}", status=status, message=message, structure=roi,
                   source=source)


def _type_conflict(role: Role, kind: str) -> bool:
    if role in (Role.OTHER, Role.UNKNOWN):
        return False
    if role.is_target:
        if kind in _TARGET_TYPES:
            return role is not Role.ITV and _TARGET_TYPES[kind] is not role
        return True
    if role is Role.BODY:
        return kind != "EXTERNAL"
    return kind in _TARGET_TYPES or kind == "EXTERNAL"


def _assign_one(roi: _ROILike, override: RoleOverride | None,
                problems: list[Finding]) -> RoleAssignment:
    name = str(roi.name)
    kind = str(roi.interpreted_type).strip().upper() if roi.interpreted_type else None
    m = _classify_name(name)
    if override is None or override.role is Role.VERTEBRA:
        _vertebra_name_problem(name, m.role if override is None else override.role,
                               m.level if override is None else (override.level or m.level),
                               m.vertebra_problem if override is None else None, problems)
    if override is not None:
        same = override.role is m.role
        level = override.level or (m.level if same else None)
        if level is None and override.role is Role.VERTEBRA:
            vertebra = _match_vertebra(_compact(name))
            level = vertebra.level if vertebra is not None else None
        return RoleAssignment(
            roi_name=name, roi_number=roi.number, role=override.role, level=level,
            side=m.side if same else None,
            margin_mm=override.margin_mm if override.margin_mm is not None
            else (m.margin_mm if same else None),
            dose_gy=override.dose_gy if override.dose_gy is not None
            else (m.dose_gy if same else None),
            subtracted=m.subtracted if same else (), tg263_name=m.tg263_name if same else None,
            evidence=f"user mapping ({override.role.value})")

    role, evidence = m.role, m.evidence
    if kind in _POINT_TYPES:
        if role not in (Role.OTHER, Role.UNKNOWN):
            problems.append(_finding(
                "name_type_conflict",
                f"ROI {name!r} is named like {role.name} but its RTROIInterpretedType is {kind} "
                f"(a point, not a volume); it is not used as {role.name}.", name, _DICOM_SOURCE))
        role, evidence = Role.OTHER, f"RTROIInterpretedType {kind} (a point, not a volume)"
    elif kind is not None and role is Role.UNKNOWN and not m.alternatives:
        if kind == "EXTERNAL":
            role, evidence = Role.BODY, "RTROIInterpretedType EXTERNAL"
        elif kind in _TARGET_TYPES:
            role, evidence = _TARGET_TYPES[kind], f"RTROIInterpretedType {kind} only"
            problems.append(_finding(
                "role_from_type",
                f"ROI {name!r} has an unrecognised name; its RTROIInterpretedType {kind} is "
                f"taken as its role. Map it explicitly if it is a helper structure.",
                name, _DICOM_SOURCE))
    elif kind is not None and _type_conflict(role, kind):
        problems.append(_finding(
            "name_type_conflict",
            f"ROI {name!r} is named like {role.name} but its RTROIInterpretedType is {kind}; "
            f"the name is used.", name, _DICOM_SOURCE))
        evidence += f"; RTROIInterpretedType {kind} disagrees"

    if role is Role.UNKNOWN and m.alternatives:
        alts = ", ".join(r.name for r in m.alternatives)
        code = "ambiguous_name" if len(m.alternatives) > 1 else "unrecognised_name"
        problems.append(_finding(
            code, f"ROI {name!r} is not assigned a role but could mean {alts}; "
            f"add it to the role mapping.", name, _TG263_SOURCE))
    if (role in (Role.CORD_PRV, Role.SPINAL_CANAL_PRV) and m.margin_mm is not None
            and not 0 <= m.margin_mm <= 5):
        problems.append(_finding(
            "implausible_margin",
            f"ROI {name!r}: PRV margin read as {m.margin_mm:g} mm (TG-263 'PRVxx' is whole "
            f"millimetres); spine SBRT cord PRVs are 0-2 mm. Map it with margin_mm if "
            f"another value was meant.", name, _TG263_SOURCE))
    return RoleAssignment(
        roi_name=name, roi_number=roi.number, role=role, level=m.level, side=m.side,
        margin_mm=m.margin_mm, dose_gy=m.dose_gy, subtracted=m.subtracted,
        tg263_name=m.tg263_name, evidence=evidence, ambiguous=bool(m.alternatives),
        alternatives=m.alternatives)


def _vertebra_name_problem(name: str, role: Role, level: str | None, problem: str | None,
                           problems: list[Finding]) -> None:
    """``structures.vertebra_name``: a vertebra-like name whose level cannot be read."""
    if problem is not None:
        message = (f"ROI {name!r} is named like a vertebra but its level cannot be used: "
                   f"{problem}. A transitional vertebra (L6, a 13th thoracic) must be given "
                   f"its level in the role mapping; the ROI is not used as a vertebra.")
    elif role is Role.UNKNOWN and looks_like_vertebra(name):
        message = (f"ROI {name!r} looks like a vertebra but no level could be read from its "
                   f"name; it is not used as a vertebra. Rename it (VB_T09) or map it "
                   f"with its level.")
    elif role is Role.VERTEBRA and level is None:
        message = (f"Vertebra ROI {name!r} names no level; the level of this vertebra cannot "
                   f"be checked against the plan and the image. Contour one ROI per vertebra "
                   f"named with its level (VB_T09), or map it with its level.")
    else:
        return
    problems.append(_finding("vertebra_name", message, name, _VERTEBRA_SOURCE))


def _uniqueness_key(a: RoleAssignment) -> tuple[object, ...] | None:
    if a.role in _REPEATABLE:
        return None
    if a.role.is_target:
        # Targets repeat legitimately; only indistinguishable names compete.
        return (a.role, _compact(a.roi_name))
    if a.role is Role.VERTEBRA:
        return (a.role, a.level)
    if a.role in _PRV_ROLE.values():
        return (a.role, a.margin_mm)
    if a.role in _PAIRED:
        return (a.role, a.side)
    return (a.role,)


def _key_detail(key: tuple[object, ...]) -> str:
    role = key[0]
    if role is Role.VERTEBRA:
        return f" at level {key[1] or 'unspecified'}"
    if role in _PRV_ROLE.values():
        return " with an unstated margin" if key[1] is None else f" with margin {key[1]:g} mm"
    if role in _PAIRED:
        return {"L": " (left)", "R": " (right)"}.get(str(key[1]), "")
    if isinstance(role, Role) and role.is_target:
        return " under names that differ only in case or separators"
    return ""


def assign_roles(rois: Sequence[_ROILike], *,
                 mapping: Mapping[str, object] | None = None) -> RoleTable:
    """Assign a role to every ROI of a structure set.

    Parameters
    ----------
    rois : sequence of ROI-like
        Objects with ``.number`` (int), ``.name`` (str) and ``.interpreted_type``
        (str or None), e.g. :class:`contourqa.io.rtstruct.ROI`.
    mapping : mapping, optional
        User overrides, ROI name -> role string, :class:`Role`,
        :class:`RoleOverride` or a table ``{"role": ..., "margin_mm": ...}`` (as
        returned by :func:`load_mapping`).  Names match exactly, else ignoring case.

    Returns
    -------
    RoleTable
        One assignment per ROI in input order, and the problems: ``structures.
        ambiguous_role`` (several ROIs claim a unique role), ``ambiguous_name``,
        ``unrecognised_name``, ``name_type_conflict``, ``role_from_type``,
        ``implausible_margin``, ``vertebra_name`` (a vertebra-like name whose level
        cannot be read, or a vertebra ROI without a level); all with status WARN.

    Raises
    ------
    RoleMappingError
        The mapping names an unknown role or has a malformed entry.
    """
    overrides = _normalise_mapping(mapping or {}, "mapping")
    folded = {k.casefold(): v for k, v in overrides.items()}
    problems: list[Finding] = []
    assigned = []
    for roi in rois:
        name = str(roi.name)
        override = overrides.get(name) or folded.get(name.casefold())
        assigned.append(_assign_one(roi, override, problems))

    groups: dict[tuple[object, ...], list[int]] = defaultdict(list)
    for i, a in enumerate(assigned):
        if (key := _uniqueness_key(a)) is not None:
            groups[key].append(i)
    for key, idx in groups.items():
        if len(idx) < 2:
            continue
        names = [assigned[i].roi_name for i in idx]
        for i in idx:
            assigned[i] = replace(assigned[i], ambiguous=True, competing=tuple(
                n for j, n in zip(idx, names, strict=True) if j != i))
        role = assigned[idx[0]].role
        detail = _key_detail(key)
        problems.append(_finding(
            "ambiguous_role",
            f"{len(idx)} ROIs claim the role {role.name}{detail}: "
            f"{', '.join(repr(n) for n in names)}; checks that need one are not evaluated "
            f"until the role mapping says which.", None, _TG263_SOURCE))
    return RoleTable(tuple(assigned), tuple(problems))
