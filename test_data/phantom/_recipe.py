"""The phantom recipe, its named presets, and the generator's ISRC consensus table."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "CTV_RECIPES",
    "PATIENT_POSITIONS",
    "PRESETS",
    "REGIONS",
    "PhantomRecipe",
    "consensus_ctv_sectors",
    "level_index",
]

PatientPosition = Literal["HFS", "FFS", "HFP", "FFP"]
PATIENT_POSITIONS: tuple[str, ...] = ("HFS", "FFS", "HFP", "FFP")
BodyPosition = Literal["central", "left", "right", "diffuse"]
CtvRecipe = Literal["consensus", "missing_sector", "extra_sector", "circumferential",
                    "epidural_without_disease"]
CTV_RECIPES: tuple[str, ...] = ("consensus", "missing_sector", "extra_sector", "circumferential",
                                "epidural_without_disease")

Region = Literal["cervical", "thoracic", "lumbar"]
REGIONS: tuple[str, ...] = ("cervical", "thoracic", "lumbar")
# levels and treated level a region gets when the recipe keeps the thoracic defaults
_REGION_LEVELS: dict[str, tuple[tuple[str, ...], str]] = {
    "cervical": (("C5", "C6", "C7"), "C6"),
    "thoracic": (("T9", "T10", "T11"), "T10"),
    "lumbar": (("L2", "L3", "L4"), "L3"),
}
# vertebral body heights (mm), also used by the anatomy
VB_HEIGHT_MM: dict[str, float] = {"cervical": 14.0, "thoracic": 18.0, "lumbar": 26.0}
_REGION_LETTER = {"cervical": "C", "thoracic": "T", "lumbar": "L"}
MAX_TILT_DEG = 15.0
MAX_AXIAL_ROTATION_DEG = 30.0
# Fields added after the bundled demo case was made; to_dict() leaves them out at their
# defaults so that older cases (UIDs come from to_dict()) regenerate byte for byte.
_LATE_FIELD_DEFAULTS: dict[str, Any] = {
    "region": "thoracic", "axial_rotation_deg": 0.0, "tilt_deg": 0.0, "blastic": False,
    "allow_thick_slices": False,
}

_LEVEL_RE = re.compile(r"^(C|T|L|S)(\d{1,2})$")
_LEVEL_COUNT = {"C": 7, "T": 12, "L": 5, "S": 5}
_LEVEL_OFFSET = {"C": 0, "T": 7, "L": 19, "S": 24}


def level_index(level: str) -> int:
    """Position of a vertebral level from the top of the spine (C1 = 1, T1 = 8, ...).

    Raises
    ------
    ValueError
        The name is not C1-C7, T1-T12, L1-L5 or S1-S5.
    """
    m = _LEVEL_RE.match(level)
    if not m or not 1 <= int(m.group(2)) <= _LEVEL_COUNT[m.group(1)]:
        raise ValueError(f"Vertebral level {level!r} is not one of C1-C7, T1-T12, L1-L5, S1-S5.")
    return _LEVEL_OFFSET[m.group(1)] + int(m.group(2))


def consensus_ctv_sectors(gtv_sectors: frozenset[int] | set[int] | tuple[int, ...], *,
                          body_position: str = "central") -> tuple[frozenset[int], tuple[str, ...]]:
    """Bony CTV sectors the ISRC consensus asks for, by the knowledge base, section 1b.

    The default rows of section 1b are applied to every involvement pattern they
    match and their sector sets united (with the GTV's own sectors); the
    circumferential rule (section 0.2, ISRC-C3) adds all six sectors when the body,
    both sides (pedicle or lamina) and the spinous process are all involved.

    Parameters
    ----------
    gtv_sectors : set of int
        ISRC sectors (1-6) that the GTV's bony part intersects.
    body_position : {"central", "left", "right", "diffuse"}
        Where a body-only GTV lies within the vertebral body (ISRC-01/02/03).

    Returns
    -------
    sectors : frozenset of int
    rules : tuple of str
        Rule ids of section 1b / 1c that matched.
    """
    s = frozenset(gtv_sectors)
    out: set[int] = set(s)
    rules: list[str] = []
    left = bool(s & {2, 3})
    right = bool(s & {5, 6})
    if 1 in s:
        if {2, 6} <= s:
            rules.append("ISRC-05")
            out |= {1, 2, 3, 5, 6}
        elif 2 in s:
            rules.append("ISRC-04")
            out |= {1, 2, 3}
        elif 6 in s:
            rules.append("ISRC-04")
            out |= {1, 5, 6}
        elif body_position == "diffuse":
            rules.append("ISRC-03")
            out |= {1, 2, 6}
        elif body_position == "left":
            rules.append("ISRC-02")
            out |= {1, 2}
        elif body_position == "right":
            rules.append("ISRC-02")
            out |= {1, 6}
        else:
            rules.append("ISRC-01")
            out |= {1}
    if 1 not in s and 2 in s:
        rules.append("ISRC-06")
        out |= {2, 3}
    if 1 not in s and 6 in s:
        rules.append("ISRC-06")
        out |= {5, 6}
    if 3 in s:
        rules.append("ISRC-07")
        out |= {2, 3, 4}
    if 5 in s:
        rules.append("ISRC-07")
        out |= {4, 5, 6}
    if 4 in s:
        rules.append("ISRC-08")
        out |= {3, 4, 5}
    if 1 in s and left and right and 4 in s:
        rules.append("ISRC-C3")
        out |= {1, 2, 3, 4, 5, 6}
    return frozenset(out), tuple(dict.fromkeys(rules))


def _sorted_sectors(value: Any, name: str) -> tuple[int, ...]:
    try:
        sectors = tuple(sorted({int(v) for v in value}))
    except (TypeError, ValueError) as exc:
        raise ValueError(f'Argument "{name}" must be a set of ISRC sectors 1-6.') from exc
    if any(not 1 <= v <= 6 for v in sectors):
        raise ValueError(f'Argument "{name}" must hold ISRC sectors 1-6, got {sectors}.')
    return sectors


@dataclass(frozen=True, kw_only=True)
class PhantomRecipe:
    """Everything that defines one phantom case.  Lengths in mm, doses in Gy.

    Parameters
    ----------
    name : str
        Short identifier; goes into PatientID, labels and UID entropy.
    seed : int
        Mixed into every UID; the same recipe always yields the same UIDs and bytes.
    levels : tuple of str
        Vertebrae in the phantom (any order; placed anatomically, superior at +z).
    treated_level : str
        The level that holds the GTV (must be in ``levels``).
    patient_position : {"HFS", "FFS", "HFP", "FFP"}
        Sets ImageOrientationPatient; the anatomy in patient (LPS) coordinates is the same.
    ct_pixel_spacing_mm, ct_slice_thickness_mm : float
        CT grid; slices are contiguous (spacing = thickness).
    ct_matrix : int
        Rows = columns of the CT; the field of view must hold the body (144 x 120 mm).
    gtv_sectors : set of int
        ISRC sectors (1-6) of the treated vertebra that the GTV's bony part occupies.
    gtv_body_position : {"central", "left", "right", "diffuse"}
        Where the GTV sits in the vertebral body when sector 1 is involved.
    gtv_height_mm : float
        Cranio-caudal extent of the GTV, centred on the treated vertebra.
    epidural, paraspinal, lytic : bool
        Epidural extension into the canal (never touching the cord), paraspinal soft
        tissue extension, and soft-tissue HU inside the bony GTV.
    blastic : bool
        Sclerotic HU inside the bony GTV (excludes ``lytic``).
    region : {"thoracic", "cervical", "lumbar"}
        Vertebra dimensions.  Cervical and lumbar recipes must name levels of their
        region; when ``levels`` and ``treated_level`` keep their thoracic defaults they
        become C5-C7 (treated C6) or L2-L4 (treated L3).
    axial_rotation_deg : float
        Rotation of the spine (vertebrae, canal, cord, GTV, CTV, PTV; not the body
        outline) about the superior axis through the canal centre, counter-clockwise in
        x-y: positive turns the vertebral body towards the patient's left.  |value| <= 30.
    tilt_deg : float
        Sagittal tilt: the same anatomy rotated about the left-right axis through the
        treated level's canal centre, positive turning its superior end posteriorly, so
        that the vertebrae are oblique to the axial CT slices.  |value| <= 15.
    allow_thick_slices : bool
        Allow ``ct_slice_thickness_mm`` from 2 mm up to 5 mm.  The SBRT imaging rule
        (slices below 2 mm) is something contourqa checks, not a limit of the generator;
        this flag makes a case that breaks it deliberately.
    ctv : str
        ``consensus`` or a planted error: ``missing_sector``, ``extra_sector``,
        ``circumferential``, ``epidural_without_disease``.
    ctv_sectors : set of int, optional
        Explicit CTV sectors; overrides what ``ctv`` would choose (the truth then calls
        the CTV ``explicit``).
    ptv_margin_mm : float
        Isotropic CTV to PTV expansion (3D).
    ptv_cord_carveout : bool
        Subtract the cord PRV from the PTV.
    cord_prv_margin_mm : float
        Isotropic cord expansion for the PRV.
    dose_model : {"sbrt", "analytic"}
        ``sbrt``: prescription over the PTV with a smooth fall-off and a cord maximum
        of exactly ``cord_max_gy``.  ``analytic``: ``D = analytic_intercept_gy +
        analytic_gradient_gy_per_mm . (x, y, z)``.
    prescription_gy, n_fractions : float, int
        Total prescription and fractions (plan and truth).
    cord_max_gy : float
        Cord maximum of the ``sbrt`` dose (rounded to the dose quantisation step).
    dose_grid_spacing_mm : float
        Isotropic dose grid spacing; dose nodes sit at multiples of it in x, y and z.
    dose_bits : {16, 32}
        RTDOSE BitsAllocated.  dciodvfy (dicom3tools 2022) cannot check 32-bit pixels.
    analytic_intercept_gy : float
        Analytic dose at the LPS origin.
    analytic_gradient_gy_per_mm : tuple of float
        Analytic dose gradient ``(dD/dx, dD/dy, dD/dz)``.
    """

    name: str = "phantom"
    seed: int = 0
    levels: tuple[str, ...] = ("T9", "T10", "T11")
    treated_level: str = "T10"
    patient_position: PatientPosition = "HFS"
    ct_pixel_spacing_mm: float = 1.0
    ct_slice_thickness_mm: float = 1.5
    ct_matrix: int = 160
    gtv_sectors: tuple[int, ...] = (1,)
    gtv_body_position: BodyPosition = "central"
    gtv_height_mm: float = 12.0
    epidural: bool = False
    paraspinal: bool = False
    lytic: bool = False
    blastic: bool = False
    region: Region = "thoracic"
    axial_rotation_deg: float = 0.0
    tilt_deg: float = 0.0
    allow_thick_slices: bool = False
    ctv: CtvRecipe = "consensus"
    ctv_sectors: tuple[int, ...] | None = None
    ptv_margin_mm: float = 2.0
    ptv_cord_carveout: bool = True
    cord_prv_margin_mm: float = 2.0
    dose_model: Literal["sbrt", "analytic"] = "sbrt"
    prescription_gy: float = 24.0
    n_fractions: int = 2
    cord_max_gy: float = 14.0
    dose_grid_spacing_mm: float = 2.0
    dose_bits: Literal[16, 32] = 16
    analytic_intercept_gy: float = 20.0
    analytic_gradient_gy_per_mm: tuple[float, float, float] = (0.05, -0.04, 0.02)

    def __post_init__(self) -> None:
        setattr_ = object.__setattr__
        if not re.fullmatch(r"[A-Za-z0-9_\-]{1,32}", self.name):
            raise ValueError('Argument "name" must be 1-32 letters, digits, "_" or "-".')
        if self.region not in REGIONS:
            raise ValueError(f'Argument "region" must be one of {REGIONS}.')
        if (self.region != "thoracic" and tuple(self.levels) == _REGION_LEVELS["thoracic"][0]
                and self.treated_level == _REGION_LEVELS["thoracic"][1]):
            setattr_(self, "levels", _REGION_LEVELS[self.region][0])
            setattr_(self, "treated_level", _REGION_LEVELS[self.region][1])
        levels = tuple(str(v) for v in self.levels)
        if self.region != "thoracic":
            letter = _REGION_LETTER[self.region]
            if any(lv[0] != letter for lv in levels):
                raise ValueError(f'Argument "levels" must name {self.region} vertebrae '
                                 f"({letter}...) when region={self.region!r}, got {levels}.")
        for lv in levels:
            level_index(lv)
        if len(set(levels)) != len(levels) or not levels:
            raise ValueError(f'Argument "levels" must name distinct vertebrae, got {levels}.')
        setattr_(self, "levels", tuple(sorted(levels, key=level_index)))
        if self.treated_level not in levels:
            raise ValueError(f'Argument "treated_level" ({self.treated_level!r}) must be one '
                             f"of levels {levels}.")
        if self.patient_position not in PATIENT_POSITIONS:
            raise ValueError(f'Argument "patient_position" must be one of {PATIENT_POSITIONS}.')
        setattr_(self, "gtv_sectors", _sorted_sectors(self.gtv_sectors, "gtv_sectors"))
        if not self.gtv_sectors:
            raise ValueError('Argument "gtv_sectors" must hold at least one sector.')
        if self.ctv_sectors is not None:
            setattr_(self, "ctv_sectors", _sorted_sectors(self.ctv_sectors, "ctv_sectors"))
        if self.gtv_body_position not in ("central", "left", "right", "diffuse"):
            raise ValueError('Argument "gtv_body_position" must be central, left, right or diffuse.')
        if self.ctv not in CTV_RECIPES:
            raise ValueError(f'Argument "ctv" must be one of {CTV_RECIPES}.')
        for key in ("ct_pixel_spacing_mm", "ct_slice_thickness_mm", "dose_grid_spacing_mm",
                    "prescription_gy", "gtv_height_mm"):
            if not float(getattr(self, key)) > 0:
                raise ValueError(f'Argument "{key}" must be positive.')
        vb_height = VB_HEIGHT_MM[self.region]
        if not 0 < self.gtv_height_mm <= vb_height:
            raise ValueError(f'Argument "gtv_height_mm" must be within the {vb_height:g} mm '
                             "vertebral body.")
        if self.allow_thick_slices:
            if self.ct_slice_thickness_mm > 5.0 + 1e-9:
                raise ValueError('Argument "ct_slice_thickness_mm" must be at most 5 mm.')
        elif self.ct_slice_thickness_mm >= 2.0 + 1e-9:
            raise ValueError('Argument "ct_slice_thickness_mm" must be below 2 mm (SBRT CT); '
                             "set allow_thick_slices=True for a deliberately thick-sliced case.")
        if self.lytic and self.blastic:
            raise ValueError('Arguments "lytic" and "blastic" exclude each other.')
        setattr_(self, "axial_rotation_deg", float(self.axial_rotation_deg))
        setattr_(self, "tilt_deg", float(self.tilt_deg))
        if abs(self.axial_rotation_deg) > MAX_AXIAL_ROTATION_DEG:
            raise ValueError(f'Argument "axial_rotation_deg" must be within '
                             f"+/-{MAX_AXIAL_ROTATION_DEG:g} degrees.")
        if abs(self.tilt_deg) > MAX_TILT_DEG:
            raise ValueError(f'Argument "tilt_deg" must be within +/-{MAX_TILT_DEG:g} degrees.')
        if self.ptv_margin_mm < 0 or self.cord_prv_margin_mm < 0:
            raise ValueError("Margins must be >= 0 mm.")
        if self.n_fractions < 1:
            raise ValueError('Argument "n_fractions" must be >= 1.')
        if self.dose_bits not in (16, 32):
            raise ValueError('Argument "dose_bits" must be 16 or 32.')
        if self.dose_model not in ("sbrt", "analytic"):
            raise ValueError('Argument "dose_model" must be "sbrt" or "analytic".')
        if self.dose_model == "sbrt" and not 0 < self.cord_max_gy < self.prescription_gy:
            raise ValueError('Argument "cord_max_gy" must lie between 0 and the prescription.')
        setattr_(self, "analytic_gradient_gy_per_mm",
                 tuple(float(v) for v in self.analytic_gradient_gy_per_mm))
        if len(self.analytic_gradient_gy_per_mm) != 3:
            raise ValueError('Argument "analytic_gradient_gy_per_mm" must have length 3.')

    def replace(self, **changes: Any) -> PhantomRecipe:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping of every field (fields added later only when not default)."""
        out = dataclasses.asdict(self)
        for k, default in _LATE_FIELD_DEFAULTS.items():
            if out[k] == default:
                del out[k]
        for k, v in out.items():
            if isinstance(v, tuple):
                out[k] = list(v)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PhantomRecipe:
        """Inverse of :meth:`to_dict`."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"Unknown recipe fields: {sorted(unknown)}.")
        fixed: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                 for k, v in data.items()}
        return cls(**fixed)


PRESETS: dict[str, PhantomRecipe] = {
    # the bundled demo: central body lesion, consensus CTV = {1}
    "demo": PhantomRecipe(name="demo"),
    "body_lateral_left": PhantomRecipe(name="body_lateral_left", gtv_body_position="left"),
    "body_diffuse": PhantomRecipe(name="body_diffuse", gtv_body_position="diffuse"),
    "body_pedicle_epidural": PhantomRecipe(name="body_pedicle_epidural", gtv_sectors=(1, 2),
                                           epidural=True),
    "posterior_elements": PhantomRecipe(name="posterior_elements", gtv_sectors=(4,)),
    "right_lamina_paraspinal": PhantomRecipe(name="right_lamina_paraspinal", gtv_sectors=(5,),
                                             paraspinal=True, lytic=True),
    "circumferential_disease": PhantomRecipe(name="circumferential_disease",
                                             gtv_sectors=(1, 2, 3, 4, 5, 6), epidural=True,
                                             prescription_gy=27.0, n_fractions=3,
                                             cord_max_gy=20.0),
    "error_missing_sector": PhantomRecipe(name="error_missing_sector", gtv_sectors=(1, 2),
                                          ctv="missing_sector"),
    "error_extra_sector": PhantomRecipe(name="error_extra_sector", ctv="extra_sector"),
    "error_circumferential": PhantomRecipe(name="error_circumferential",
                                           ctv="circumferential"),
    "error_epidural_ctv": PhantomRecipe(name="error_epidural_ctv",
                                        ctv="epidural_without_disease"),
    "analytic_dose": PhantomRecipe(name="analytic_dose", dose_model="analytic"),
    "ffs": PhantomRecipe(name="ffs", patient_position="FFS"),
    "hfp": PhantomRecipe(name="hfp", patient_position="HFP"),
    "dose32": PhantomRecipe(name="dose32", dose_bits=32),
    "cervical": PhantomRecipe(name="cervical", region="cervical"),
    "lumbar": PhantomRecipe(name="lumbar", region="lumbar"),
    "rotated_tilted": PhantomRecipe(name="rotated_tilted", gtv_sectors=(1, 2),
                                    axial_rotation_deg=15.0, tilt_deg=10.0),
    "blastic": PhantomRecipe(name="blastic", gtv_body_position="left", blastic=True),
}
