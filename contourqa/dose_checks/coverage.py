"""Whether an organ at risk can be judged: contoured where its constraints matter, and
inside the dose grid there.

A cord contour that stops short of the target, or a dose grid cropped before the
target, leaves a constraint computed on the wrong part of the organ: its value is too
low and it would read "pass".  These functions measure both; the thresholds (margin
beyond the target's cranio-caudal extent, which roles must span it) are in
``constraints/data/rules/oar_extent.toml`` with their rationale and status.

Cranio-caudal positions are the patient z coordinate (LPS, +z superior), mm.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from contourqa.geometry import VolumeGeometry
from contourqa.io.rtstruct import ROI

__all__ = ["ExtentShortfall", "extent_shortfall", "grid_bounds_mm", "near_target",
           "planes_outside_grid", "target_extent_mm"]

_TOL_MM = 0.01  # contour coordinates are often written with 2-3 decimals


@dataclass(frozen=True)
class ExtentShortfall:
    """How far an ROI's contours fall short of the extent its constraints need.

    Attributes
    ----------
    reach_mm : float
        How far the contours reach beyond the target's end on their shorter side, mm
        (negative: they stop before the target's end).
    side : str
        ``"inferior"`` or ``"superior"``.
    roi_end_mm, target_end_mm : float
        z of the ROI's last contour plane and of the target's on that side, mm.
    margin_mm : float
        The reach required.
    """

    reach_mm: float
    side: str
    roi_end_mm: float
    target_end_mm: float
    margin_mm: float


def _z_values(rois: Iterable[ROI]) -> NDArray[np.float64]:
    zs = [c.points_mm[:, 2] for r in rois for c in r.closed_contours]
    return np.concatenate(zs) if zs else np.zeros(0)


def target_extent_mm(targets: Iterable[ROI]) -> tuple[float, float] | None:
    """Lowest and highest z of the targets' closed contours, mm (``None``: no contour)."""
    z = _z_values(targets)
    return (float(z.min()), float(z.max())) if z.size else None


def extent_shortfall(roi: ROI, *, target_z_mm: tuple[float, float], margin_mm: float
                     ) -> ExtentShortfall | None:
    """The shortfall of ``roi`` against the target's extent plus ``margin_mm`` at both
    ends, or ``None`` when it reaches far enough (or has no contour: that is reported
    elsewhere)."""
    z = _z_values([roi])
    if not z.size:
        return None
    lo, hi = target_z_mm
    below, above = lo - float(z.min()), float(z.max()) - hi
    side, reach = ("inferior", below) if below <= above else ("superior", above)
    if reach >= margin_mm - _TOL_MM:
        return None
    return ExtentShortfall(reach_mm=reach, side=side,
                           roi_end_mm=float(z.min()) if side == "inferior" else float(z.max()),
                           target_end_mm=lo if side == "inferior" else hi, margin_mm=margin_mm)


def near_target(roi: ROI, *, z_range_mm: tuple[float, float]) -> ROI | None:
    """The contours of ``roi`` whose plane lies within ``z_range_mm`` (inclusive), as
    an ROI of the same name, or ``None`` when there are none."""
    lo, hi = z_range_mm
    kept = tuple(c for c in roi.closed_contours
                 if lo - _TOL_MM <= float(c.points_mm[:, 2].mean()) <= hi + _TOL_MM)
    return replace(roi, contours=kept) if kept else None


def grid_bounds_mm(geometry: VolumeGeometry) -> NDArray[np.float64]:
    """Lowest and highest x, y, z of the grid's voxel centres, shape (3, 2), LPS mm."""
    upper = np.asarray(geometry.shape, dtype=np.float64) - 1
    corners = np.array([[k, j, i] for k in (0, upper[0]) for j in (0, upper[1])
                        for i in (0, upper[2])])
    pts = geometry.index_to_patient(corners)
    return np.column_stack([pts.min(axis=0), pts.max(axis=0)])


def planes_outside_grid(roi: ROI, geometry: VolumeGeometry) -> list[float]:
    """z (mm) of the contour planes of ``roi`` with a vertex outside the grid's
    voxel-centre hull, sorted."""
    out = {round(float(c.points_mm[:, 2].mean()), 3) for c in roi.closed_contours
           if not geometry.contains(c.points_mm).all()}
    return sorted(out)
