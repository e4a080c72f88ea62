"""Options of the sector analysis: sector boundaries and involvement thresholds."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, kw_only=True)
class SectorOptions:
    """Options of the sector analysis (geometry in mm and degrees, volumes in cc).

    Parameters
    ----------
    level : str, optional
        Level of the treated vertebra (``--level T10``); names the vertebra holding
        most GTV bone when its ROI name does not.
    min_involved_cc : float
        GTV volume in a sector from which the sector counts as involved (0.05 cc).
    min_epidural_cc, min_paraspinal_cc : float
        Same for the epidural and paraspinal components (0.05 cc).
    paraspinal_margin_mm : float
        GTV outside the bone but within this in-plane distance (and at least one
        pixel) of a vertebra's bone is the bone's boundary, not paraspinal disease
        (1 mm; 0 counts the rim too): a GTV contour drawn
        on the cortex rasterises one voxel wider than the bone found on the CT,
        which along a 12 mm process over 8 slices is 0.08 cc.  A real paraspinal
        extension reaches millimetres into the soft tissue.
    body_half_angle_deg : float
        Half-angle of the anterior wedge about the canal centre that belongs to the
        body (35: the wedge [-125, -55] degrees).
    pedicle_lamina_angle_deg : float
        Angle behind the transverse axis where pedicle becomes lamina (30).
    spinous_half_angle_deg : float
        Half-angle about posterior of the spinous sector within the arch (12).
    process_spinous_half_angle_deg : float
        Half-angle about posterior of the spinous process beyond the arch (30).
    arch_thickness_mm : float
        Distance from the canal within which bone is neural arch (pedicle, lamina)
        rather than a process (7 mm; thoracic pedicles are 5-8 mm wide).
    arch_thickness_lumbar_mm : float
        The same for vertebrae whose level is known to be lumbar (9 mm: lumbar
        pedicles and laminae are thicker; with 7 mm the outer lamina of a lumbar
        vertebra reads as spinous process).  Derived from typical anatomy (status D).
    lateral_share : float
        Share of the body GTV on one side of the midline that makes it lateralised.
    diffuse_body_fraction : float
        Fraction of the vertebral body (on the GTV's slices) the GTV must fill to be
        diffuse.
    central_half_width_fraction : float
        A body GTV spanning both sides is ``central`` when it stays within this
        fraction of the body's half-width from the midline (0.6), else ``diffuse``.
    epidural_gap_deg : float
        Angular gaps narrower than this between epidural voxels are bridged (15).
    circumferential_min_deg : float
        Epidural extent from which the epidural disease is circumferential (330).
    ctv_covered_min_pct : float
        Share of a sector's bone the CTV must hold to cover the sector (50 %).
    crop_margin_mm : tuple of float
        Margin (z, in-plane) around the GTV and CTV of the analysed region (30, 80).
    min_canal_area_mm2 : float
        Smallest hole in the vertebral ring taken for the canal (20 mm2).
    """

    level: str | None = None
    min_involved_cc: float = 0.05
    min_epidural_cc: float = 0.05
    min_paraspinal_cc: float = 0.05
    paraspinal_margin_mm: float = 1.0
    body_half_angle_deg: float = 35.0
    pedicle_lamina_angle_deg: float = 30.0
    spinous_half_angle_deg: float = 12.0
    process_spinous_half_angle_deg: float = 30.0
    arch_thickness_mm: float = 7.0
    arch_thickness_lumbar_mm: float = 9.0
    lateral_share: float = 0.8
    diffuse_body_fraction: float = 0.5
    central_half_width_fraction: float = 0.6
    epidural_gap_deg: float = 15.0
    circumferential_min_deg: float = 330.0
    ctv_covered_min_pct: float = 50.0
    crop_margin_mm: tuple[float, float] = (30.0, 80.0)
    min_canal_area_mm2: float = 20.0

    def __post_init__(self) -> None:
        for name in ("min_involved_cc", "min_epidural_cc", "min_paraspinal_cc",
                     "paraspinal_margin_mm",
                     "arch_thickness_mm", "arch_thickness_lumbar_mm", "epidural_gap_deg"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f'Argument "{name}" must be >= 0.')
        if not 0 < self.body_half_angle_deg < 90:
            raise ValueError('Argument "body_half_angle_deg" must be within (0, 90).')
        if not -(90 - self.body_half_angle_deg) < self.pedicle_lamina_angle_deg \
                < 90 - self.spinous_half_angle_deg:
            raise ValueError('Argument "pedicle_lamina_angle_deg" must lie between the body '
                             "wedge and the spinous sector.")
        if not 0 < self.spinous_half_angle_deg < 90 or \
                not 0 < self.process_spinous_half_angle_deg < 90:
            raise ValueError("Spinous half-angles must be within (0, 90) degrees.")
        if not 0.5 < self.lateral_share <= 1.0:
            raise ValueError('Argument "lateral_share" must be within (0.5, 1].')
        if self.level is not None:
            from contourqa.structures import parse_level

            object.__setattr__(self, "level", parse_level(self.level))


    def for_level(self, level: str | None) -> "SectorOptions":
        """These options with the arch thickness of ``level``'s region."""
        if level is not None and level.startswith("L"):
            return replace(self, arch_thickness_mm=self.arch_thickness_lumbar_mm)
        return self


_DEFAULT_OPTIONS = SectorOptions()
