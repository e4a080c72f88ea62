"""Options of the DVH engine.  Every option is echoed in each result's ``conventions``."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

__all__ = ["FIXED_CONVENTIONS", "DVHOptions"]

EndCaps = Literal["half_slice", "none"]
ShapeInterpolation = Literal["auto", "on", "off"]

FIXED_CONVENTIONS: dict[str, str] = {
    "structure_model": (
        "each closed-contour plane is a slab reaching halfway to its neighbouring planes "
        "(irregular spacing handled per plane); several contours on a plane combine even-odd "
        "(holes, islands); a plane spacing above gap_factor x the ROI's median spacing "
        "separates two parts, each with its own end caps"),
    "shape_interpolation_method": (
        "between neighbouring planes, sub-layers morph the two shapes by their signed "
        "distance maps; the morph parameter (kept between the two shapes) is chosen so that "
        "each sub-layer's area follows the mean of the quadratics through the neighbouring "
        "plane areas (exact for upright cylinders, cones and spheres); morphed sub-layers "
        "start from a contour's outline when it is too thin to hold a sample (a plane "
        "tangent to the structure)"),
    "tip_profile": (
        "in the end gap of a part whose end plane is the smaller one, the area follows "
        "A(d)^p = A0^p + a d + b d^2 (d: distance from the end plane) through the next three "
        "planes, p the smallest exponent in [1/4, 4] that fits them: exact for sphere poles "
        "(p = 1), cone apices (p = 1/2) and cylinders lying across the planes (p = 2); parts "
        "of fewer than four planes use the quadratics above"),
    "occupancy": ("in-plane supersampling on a grid aligned with the dose grid (even-odd "
                  "scanline, sample centre inside); each sample stands for its sub-cell, its dose "
                  "spread uniformly over the width that matches the dose variance over the cell"),
    "dose_interpolation": "trilinear; within a layer the dose is integrated exactly along the slice axis",
    "dose_domain": "hull of the dose voxel centres; volume beyond it is counted apart, never given a dose",
    "percent_volume_reference": "volume inside the dose grid",
    "dmin_dmax": "extremes over the sampled volume, the contour vertices and the end-cap faces",
    "metric_lookup": "linear interpolation of the cumulative DVH between bin edges (never nearest bin)",
    "units": "dose Gy, volume cc",
}


@dataclass(frozen=True)
class DVHOptions:
    """How a DVH is computed.

    Attributes
    ----------
    end_caps : {"half_slice", "none"}
        Extent of the structure beyond its first and last contour planes.
        ``"half_slice"`` (default, as Eclipse, RayStation and the Nelms 2015 analytic
        values) extrudes the end contours by half the spacing to their neighbouring plane;
        ``"none"`` ends the structure at its end planes.
    shape_interpolation : {"auto", "on", "off"}
        Whether the cross-section changes smoothly between contour planes (``"on"``) or
        each plane's shape fills its whole slab (``"off"``).  ``"auto"`` (default)
        interpolates ROIs whose slab volume is below ``interpolation_max_cc`` (where it
        changes the small-volume metrics) and not larger ones (where it does not, and
        would cost time).
    interpolation_max_cc : float
        Volume limit of ``"auto"``, cc.  Default 200 cc.
    morph_area_ratio : float
        Shapes are morphed only across gaps where the smaller cross-section is below
        this fraction of the larger (tips, poles, apices: where the slab model misplaces
        most volume); between similar planes each half-gap takes the nearer plane's
        shape, since a morph would chamfer the edges both shapes share.  Default 0.5.
    sublayer_mm : float
        Largest thickness of an interpolated sub-layer, mm.  Default 0.5 mm.
    samples_per_plane : int
        In-plane samples aimed at on the ROI's median contour plane; the supersampling
        factor per dose voxel adapts to it, so a 0.05 cc target is sampled finely and a
        body contour coarsely.  Default 6 000.
    max_samples : int
        Upper bound of samples over all layers of one ROI (lowers the factor for ROIs
        with many planes).  Default 300 000.
    min_subdivision, max_subdivision : int
        Bounds of the supersampling factor per dose voxel and in-plane axis.
        Defaults 2 and 40.
    bin_width_gy : float
        Dose bin width of the DVH, Gy.  Default 0.005 Gy; cumulative values at bin edges
        are exact for the sampled model, metrics interpolate between edges.
    gap_factor : float
        Plane spacing above ``gap_factor`` times the ROI's median spacing splits the
        ROI into separately capped parts.  Default 1.5.
    """

    end_caps: EndCaps = "half_slice"
    shape_interpolation: ShapeInterpolation = "auto"
    interpolation_max_cc: float = 200.0
    morph_area_ratio: float = 0.5
    sublayer_mm: float = 0.5
    samples_per_plane: int = 6_000
    max_samples: int = 300_000
    min_subdivision: int = 2
    max_subdivision: int = 40
    bin_width_gy: float = 0.005
    gap_factor: float = 1.5

    def __post_init__(self) -> None:
        if self.end_caps not in ("half_slice", "none"):
            raise ValueError(f'Argument "end_caps" must be "half_slice" or "none", got {self.end_caps!r}.')
        if self.shape_interpolation not in ("auto", "on", "off"):
            raise ValueError('Argument "shape_interpolation" must be "auto", "on" or "off", '
                             f"got {self.shape_interpolation!r}.")
        if self.samples_per_plane < 10 or self.max_samples < 100:
            raise ValueError('Arguments "samples_per_plane" and "max_samples" must be at least '
                             "10 and 100.")
        if not 1 <= self.min_subdivision <= self.max_subdivision:
            raise ValueError('Arguments "min_subdivision" and "max_subdivision" must satisfy '
                             "1 <= min_subdivision <= max_subdivision.")
        if not self.bin_width_gy > 0:
            raise ValueError('Argument "bin_width_gy" must be positive.')
        if not self.sublayer_mm > 0:
            raise ValueError('Argument "sublayer_mm" must be positive.')
        if not self.gap_factor > 1:
            raise ValueError('Argument "gap_factor" must be above 1.')

    def replace(self, **changes: Any) -> DVHOptions:
        """A copy with some options changed."""
        return replace(self, **changes)

    def conventions(self) -> dict[str, str | float | int]:
        """Options and fixed conventions as plain strings and numbers (for JSON)."""
        out: dict[str, str | float | int] = {
            "end_caps": self.end_caps,
            "shape_interpolation": self.shape_interpolation,
            "interpolation_max_cc": self.interpolation_max_cc,
            "morph_area_ratio": self.morph_area_ratio,
            "sublayer_mm": self.sublayer_mm,
            "samples_per_plane": self.samples_per_plane,
            "max_samples": self.max_samples,
            "min_subdivision": self.min_subdivision,
            "max_subdivision": self.max_subdivision,
            "bin_width_gy": self.bin_width_gy,
            "gap_factor": self.gap_factor,
        }
        out.update(FIXED_CONVENTIONS)
        return out
