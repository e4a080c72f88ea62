"""Phantoms for the DVH tests: ROIs and dose grids built directly (no DICOM files)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from contourqa.geometry import VolumeGeometry
from contourqa.io.rtdose import DoseGrid
from contourqa.io.rtstruct import ROI, Contour, ContourType

SHARED_DATA = Path(__file__).parents[2] / "shared" / "data"


def circle(cx: float, cy: float, r: float, n: int = 720) -> np.ndarray:
    """Regular n-gon inscribed in a circle, (n, 2) mm."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.column_stack([cx + r * np.cos(t), cy + r * np.sin(t)])


def ngon_area(r: float, n: int = 720) -> float:
    return 0.5 * n * r * r * np.sin(2 * np.pi / n)


def make_roi(planes: Sequence[tuple[float, Sequence[np.ndarray]]], *, name: str = "ROI",
             number: int = 1) -> ROI:
    """ROI from ``[(z_mm, [polygon (M, 2) x/y mm, ...]), ...]``."""
    contours = []
    for z, polys in planes:
        for p in polys:
            pts = np.column_stack([p, np.full(len(p), z)])
            contours.append(Contour(points_mm=pts, geometric_type=ContourType.CLOSED_PLANAR))
    return ROI(number=number, name=name, interpreted_type="ORGAN", color=None,
               contours=tuple(contours))


def make_dose(*, shape: tuple[int, int, int], origin_mm: Sequence[float],
              spacing_mm: Sequence[float], fn: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
              ) -> DoseGrid:
    """Dose grid (S, R, C) with ``fn(x, y, z)`` (mm -> Gy) at the voxel centres; spacing
    in DICOM (column, row, slice) order."""
    geom = VolumeGeometry(shape=shape, origin_mm=np.asarray(origin_mm, float),
                          spacing_mm=np.asarray(spacing_mm, float))
    k, j, i = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    xyz = geom.index_to_patient(np.stack([k, j, i], axis=-1).astype(float))
    dose = np.asarray(fn(xyz[..., 0], xyz[..., 1], xyz[..., 2]), dtype=np.float64)
    dose.flags.writeable = False
    return DoseGrid(paths=(), sop_instance_uids=(), frame_of_reference_uid=None, geometry=geom,
                    dose_gy=dose, summation_type="PLAN", dose_type="PHYSICAL",
                    referenced_plan_uids=())


def box_dose(fn: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray], *, spacing: float,
             half_extent: float = 40.0, offset: Sequence[float] = (0.0, 0.0, 0.0)) -> DoseGrid:
    """Cubic grid of side ``2 * half_extent`` mm centred near ``offset``."""
    n = int(round(2 * half_extent / spacing)) + 1
    origin = np.asarray(offset, float) - half_extent
    return make_dose(shape=(n, n, n), origin_mm=origin, spacing_mm=(spacing,) * 3, fn=fn)
