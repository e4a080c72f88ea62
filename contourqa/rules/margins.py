"""Distances between two contoured structures: margins of a PTV around a CTV, of a
PRV around the cord.

The margin is measured from every vertex of the *outer* structure's polygons to the
*inner* structure's solid.  Each inner plane is rasterised on a fine in-plane grid
(``pixel_mm``, voxel centres, even-odd) and its Euclidean distance map
(:func:`scipy.ndimage.distance_transform_edt`, in mm) is sampled bilinearly at the
vertices; half a pixel is taken off because the map measures to the nearest *inside
pixel centre*, not to the boundary.  Planes stand for slabs of the inner plane
spacing ``t``: a vertex on plane ``z_o`` and an inner plane ``z_i`` are
``g = max(0, |z_o - z_i| - t/2)`` apart along z, and the 3-D distance is the
minimum over inner planes of ``sqrt(g^2 + d_i^2)``.  Vertices on outer planes within
the inner structure's z-range are *axial* (their margin is resolved to about the
fine pixel); the others are *cranio-caudal caps*, resolved only to +/- t/2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from contourqa.geometry import VolumeGeometry
from contourqa.io.rtstruct import ROI
from contourqa.masks import polygon_rows

__all__ = ["MarginStats", "SurfaceDistances", "surface_distances"]

_Z = np.array([0.0, 0.0, 1.0])
_PAD_PIXELS = 3
_PLANE_TOL_MM = 1e-3


@dataclass(frozen=True)
class MarginStats:
    """Summary of distances (mm)."""

    n: int
    min_mm: float
    mean_mm: float
    max_mm: float
    p05_mm: float
    p95_mm: float

    @classmethod
    def of(cls, d: NDArray[np.float64]) -> MarginStats | None:
        if d.size == 0:
            return None
        p05, p95 = np.percentile(d, [5.0, 95.0])
        return cls(int(d.size), float(d.min()), float(d.mean()), float(d.max()),
                   float(p05), float(p95))

    def text(self) -> str:
        return (f"min {self.min_mm:.1f} / mean {self.mean_mm:.1f} / max {self.max_mm:.1f} mm "
                f"(5-95 %: {self.p05_mm:.1f}-{self.p95_mm:.1f} mm, {self.n} vertices)")


@dataclass(frozen=True)
class SurfaceDistances:
    """Distances from the vertices of an outer structure to an inner solid.

    Attributes
    ----------
    points_mm : ndarray of shape (N, 3), float64
        Outer vertices, LPS mm.
    distance_mm : ndarray of shape (N,), float64
        Distance to the inner solid (0 inside it).
    axial : ndarray of shape (N,), bool
        Vertex on a plane within the inner structure's z-range.
    plane_spacing_mm : float
        Inner plane spacing ``t``.
    inner_centre_mm : ndarray of shape (3,)
        Centroid of the inner vertices (for naming directions).
    """

    points_mm: NDArray[np.float64]
    distance_mm: NDArray[np.float64]
    axial: NDArray[np.bool_]
    plane_spacing_mm: float
    inner_centre_mm: NDArray[np.float64]

    def directions(self, select: NDArray[np.bool_]) -> list[str]:
        """Patient directions (anterior, posterior, left, right, superior, inferior)
        of the selected vertices relative to the inner structure, most frequent first."""
        if not select.any():
            return []
        off = self.points_mm[select] - self.inner_centre_mm
        cap = ~self.axial[select]
        names = np.where(np.abs(off[:, 0]) >= np.abs(off[:, 1]),
                         np.where(off[:, 0] > 0, "left", "right"),
                         np.where(off[:, 1] > 0, "posterior", "anterior"))
        names = np.where(cap, np.where(off[:, 2] > 0, "superior", "inferior"), names)
        values, counts = np.unique(names, return_counts=True)
        return [str(v) for v in values[np.argsort(-counts, kind="stable")]]


def _plane_spacing(zs: NDArray[np.float64]) -> float:
    if zs.size < 2:
        return 0.0
    return float(np.median(np.diff(zs)))


def surface_distances(outer: ROI, inner: ROI, *, pixel_mm: float, search_mm: float,
                      max_plane_pixels: int | None = None) -> SurfaceDistances | None:
    """Distance from each vertex of ``outer`` to the solid of ``inner`` (module doc).

    Parameters
    ----------
    outer, inner : ROI
        Axial CLOSED_PLANAR contours.
    pixel_mm : float
        In-plane pixel of the fine grid (0.2 mm resolves margins to ~0.1 mm).
    search_mm : float
        Inner planes farther than this along z from an outer plane are ignored;
        vertices with no inner plane in reach get ``inf``.
    max_plane_pixels : int, optional
        Coarsen the fine pixel so that one plane holds at most this many pixels
        (large structures such as a whole-breast PTV).

    Returns
    -------
    SurfaceDistances or None
        None when either structure has no closed contour.
    """
    if pixel_mm <= 0 or search_mm <= 0:
        raise ValueError('Arguments "pixel_mm" and "search_mm" must be > 0.')
    o_planes = outer.planes(normal=_Z)
    i_planes = inner.planes(normal=_Z)
    if not o_planes or not i_planes:
        return None
    iz = np.array(list(i_planes))
    t = _plane_spacing(iz) or _plane_spacing(np.array(list(o_planes)))
    inner_pts = np.concatenate([p for ps in i_planes.values() for p in ps])
    outer_pts = [np.concatenate(ps) for ps in o_planes.values()]
    allxy = np.concatenate([inner_pts[:, :2], *[p[:, :2] for p in outer_pts]])
    lo = allxy.min(axis=0) - _PAD_PIXELS * pixel_mm
    hi = allxy.max(axis=0) + _PAD_PIXELS * pixel_mm
    if max_plane_pixels is not None:
        pixel_mm = max(pixel_mm, float(np.sqrt(np.prod(hi - lo) / max_plane_pixels)))
        lo, hi = lo - _PAD_PIXELS * pixel_mm, hi + _PAD_PIXELS * pixel_mm
    n_cols, n_rows = (np.ceil((hi - lo) / pixel_mm).astype(int) + 1)
    grid = VolumeGeometry(shape=(len(iz), int(n_rows), int(n_cols)),
                          origin_mm=np.array([lo[0], lo[1], 0.0]),
                          spacing_mm=np.array([pixel_mm, pixel_mm, 1.0]))
    polys: list[tuple[int, NDArray[np.float64]]] = []
    for k, ps in enumerate(i_planes.values()):
        for p in ps:
            q = np.column_stack([p[:, :2], np.zeros(len(p))])
            polys.append((k, np.ascontiguousarray(grid.patient_to_index(q)[:, 1:])))
    g, q, c0, c1 = polygon_rows(polys)
    mask = np.zeros(grid.shape, dtype=bool)
    n = np.clip(c1, 0, n_cols) - np.clip(c0, 0, n_cols)
    ok = (n > 0) & (q >= 0) & (q < n_rows)
    g, q, c0, n = g[ok], q[ok], np.clip(c0[ok], 0, n_cols), n[ok]
    off = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    mask[np.repeat(g, n), np.repeat(q, n), np.repeat(c0, n) + off] = True

    points, dist, axial = [], [], []
    dmaps: dict[int, NDArray[np.float32]] = {}
    zlo, zhi = iz[0] - _PLANE_TOL_MM, iz[-1] + _PLANE_TOL_MM
    for zo, pts in zip(o_planes, outer_pts, strict=True):
        gap = np.maximum(np.abs(iz - zo) - 0.5 * t, 0.0)
        near = np.nonzero(gap <= search_mm)[0]
        best = np.full(len(pts), np.inf)
        if near.size:
            idx = grid.patient_to_index(np.column_stack([pts[:, :2], np.zeros(len(pts))]))
            coords = idx[:, 1:].T
            for k in near.tolist():
                if not mask[k].any():
                    continue
                if k not in dmaps:
                    dmaps[k] = ndimage.distance_transform_edt(
                        ~mask[k], sampling=(pixel_mm, pixel_mm)).astype(np.float32)
                d2 = ndimage.map_coordinates(dmaps[k], coords, order=1, mode="nearest")
                d2 = np.maximum(d2 - 0.5 * pixel_mm, 0.0)
                best = np.minimum(best, np.hypot(gap[k], d2))
        points.append(pts)
        dist.append(best)
        axial.append(np.full(len(pts), zlo <= zo <= zhi))
    return SurfaceDistances(points_mm=np.concatenate(points), distance_mm=np.concatenate(dist),
                            axial=np.concatenate(axial), plane_spacing_mm=t,
                            inner_centre_mm=inner_pts.mean(axis=0))
