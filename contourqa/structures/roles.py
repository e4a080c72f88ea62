"""What an ROI is: the :class:`Role` enum, its groups, and the table of roles."""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from contourqa.findings import Finding


class Role(str, enum.Enum):
    """What an ROI is for the checks.  Values are the strings used in mapping files."""

    GTV = "gtv"
    CTV = "ctv"
    ITV = "itv"
    PTV = "ptv"
    SPINAL_CORD = "spinal_cord"
    CORD_PRV = "cord_prv"
    #: Dural (thecal) sac: the membrane around cord, cauda and CSF.  Sahgal 2013
    #: applies the cord Pmax limits to it as a cord surrogate.
    THECAL_SAC = "thecal_sac"
    #: Bony vertebral canal (TG-263 ``SpinalCanal``): wider than the thecal sac
    #: (it includes the epidural space), a more conservative surrogate.
    SPINAL_CANAL = "spinal_canal"
    SPINAL_CANAL_PRV = "spinal_canal_prv"
    CAUDA_EQUINA = "cauda_equina"
    SACRAL_PLEXUS = "sacral_plexus"
    BRACHIAL_PLEXUS = "brachial_plexus"
    NERVE_ROOT = "nerve_root"
    ESOPHAGUS = "esophagus"
    TRACHEA = "trachea"
    HEART = "heart"
    LUNG = "lung"
    KIDNEY = "kidney"
    LIVER = "liver"
    STOMACH = "stomach"
    DUODENUM = "duodenum"
    BOWEL_SMALL = "bowel_small"
    BOWEL_LARGE = "bowel_large"
    SKIN = "skin"
    BODY = "body"
    VERTEBRA = "vertebra"
    #: Recognised, but no role of its own: planning helpers (``zPTV``, rings),
    #: derived structures (``Body-PTV``), PRVs of other organs, point ROIs.
    OTHER = "other"
    #: Name not recognised.
    UNKNOWN = "unknown"

    @property
    def is_target(self) -> bool:
        """True for GTV, CTV, ITV and PTV."""
        return self in _TARGETS

    @property
    def is_cord_surrogate(self) -> bool:
        """True for the structures cord dose limits are applied to.

        The cord itself, its PRV, the thecal sac and the spinal canal (and its
        PRV); which one was used must be recorded with the result (knowledge
        base section 3a).
        """
        return self in _CORD_SURROGATES


_TARGETS = frozenset({Role.GTV, Role.CTV, Role.ITV, Role.PTV})
_CORD_SURROGATES = frozenset({Role.SPINAL_CORD, Role.CORD_PRV, Role.THECAL_SAC,
                              Role.SPINAL_CANAL, Role.SPINAL_CANAL_PRV})
_PAIRED = frozenset({Role.BRACHIAL_PLEXUS, Role.LUNG, Role.KIDNEY})
_REPEATABLE = frozenset({Role.OTHER, Role.UNKNOWN, Role.NERVE_ROOT})
_NO_SUBTRAHEND = frozenset({Role.OTHER, Role.UNKNOWN, Role.VERTEBRA})


@dataclass(frozen=True)
class RoleAssignment:
    """The role of one ROI and why.

    Attributes
    ----------
    roi_name : str
    roi_number : int or None
        ROINumber; None when only a name was classified.
    role : Role
    level : str or None
        Vertebral level (``"T10"``) or range (``"T9-T11"``) for vertebrae and
        targets whose name carries one.
    side : str or None
        ``"L"`` or ``"R"`` for paired organs.
    margin_mm : float or None
        PRV (or PTV) margin read from the name; None when the name does not say
        (``"SC PRV"``).
    dose_gy : float or None
        Dose level read from a target name (``PTV_2400`` and ``PTV_24Gy`` give 24).
    subtracted : tuple of Role
        Roles subtracted in the name (``PTV-Cord`` gives ``(SPINAL_CORD,)``).
    tg263_name : str or None
        The TG-263 primary name matched, if any.
    evidence : str
        Why this role: TG-263 name, clinical variant, RTROIInterpretedType, user
        mapping.
    ambiguous : bool
        True when the role could not be decided alone: the name could mean each
        of ``alternatives``, or other ROIs (``competing``) claim the same role.
    alternatives : tuple of Role
        Roles the name could also mean.
    competing : tuple of str
        Names of other ROIs claiming the same unique role.
    """

    roi_name: str
    roi_number: int | None
    role: Role
    level: str | None = None
    side: str | None = None
    margin_mm: float | None = None
    dose_gy: float | None = None
    subtracted: tuple[Role, ...] = ()
    tg263_name: str | None = None
    evidence: str = ""
    ambiguous: bool = False
    alternatives: tuple[Role, ...] = ()
    competing: tuple[str, ...] = ()


@dataclass(frozen=True)
class RoleTable:
    """Roles of all ROIs of one structure set, and the problems found assigning them."""

    assignments: tuple[RoleAssignment, ...]
    problems: tuple[Finding, ...] = field(default=())

    def __iter__(self) -> Iterator[RoleAssignment]:
        return iter(self.assignments)

    def __len__(self) -> int:
        return len(self.assignments)

    def by_role(self, role: Role) -> tuple[RoleAssignment, ...]:
        """Every ROI with this role, in structure-set order."""
        return tuple(a for a in self.assignments if a.role is role)

    def one(self, role: Role) -> RoleAssignment | None:
        """The ROI with this role if exactly one unambiguous ROI has it, else None.

        None means absent or several; ``problems`` says which when several ROIs
        compete for a unique role, and ``by_role`` lists them.
        """
        found = self.by_role(role)
        if len(found) == 1 and not found[0].ambiguous:
            return found[0]
        return None

    def of(self, roi_name: str) -> RoleAssignment:
        """The assignment of the ROI with this exact name.

        Raises
        ------
        KeyError
            No ROI has this name.
        """
        for a in self.assignments:
            if a.roi_name == roi_name:
                return a
        raise KeyError(f"No ROI named {roi_name!r}; ROIs are: "
                       f"{', '.join(a.roi_name for a in self.assignments)}")

    def multiple(self) -> dict[Role, tuple[RoleAssignment, ...]]:
        """Roles held by more than one ROI (legitimately or not), UNKNOWN/OTHER excluded."""
        out: dict[Role, list[RoleAssignment]] = defaultdict(list)
        for a in self.assignments:
            if a.role not in (Role.OTHER, Role.UNKNOWN):
                out[a.role].append(a)
        return {r: tuple(v) for r, v in out.items() if len(v) > 1}
