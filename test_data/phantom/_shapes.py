"""Planar shapes as signed fields, their sampling on a fine grid, and polygons.

A *field* is a function ``f(x_mm, y_mm) -> ndarray`` that is negative inside a
region and positive outside.  Primitive fields (ellipse, box, half-plane) are exact
signed distances, or at least have an exact zero set; unions, intersections and
differences are ``min``/``max`` combinations, which keep the zero set exact.  Polygons
are extracted at level 0 with :func:`skimage.measure.find_contours` (linear
interpolation between grid samples gives sub-sample accuracy).

Coordinates are DICOM LPS millimetres in one axial plane: ``x`` to the patient's left,
``y`` posterior.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.special import ellipe
from skimage.measure import approximate_polygon, find_contours, points_in_poly

__all__ = [
    "Field",
    "FineGrid",
    "box",
    "disk",
    "ellipse",
    "ellipse_offset_area_mm2",
    "ellipse_offset_polygon",
    "half_plane",
    "intersect",
    "nesting_depths",
    "net_area_mm2",
    "polygon_signed_area_mm2",
    "subtract",
    "union",
    "wedge",
]

FloatArray = NDArray[np.float64]
Field = Callable[[FloatArray, FloatArray], FloatArray]

_BISECTION_STEPS = 30
_EXACT_BAND_MM = 12.0


# -- primitive fields -----------------------------------------------------------------
def _ellipse_distance(px: FloatArray, py: FloatArray, a: float, b: float) -> FloatArray:
    """Signed distance from points to the ellipse ``(x/a)^2 + (y/b)^2 = 1``, exact near it.

    ``s = sqrt((x/a)^2 + (y/b)^2)`` is a norm with Lipschitz constant ``1/min(a, b)``,
    so ``|s - 1| * min(a, b)`` never exceeds the true distance.  Points where that
    bound is below ``_EXACT_BAND_MM`` get the exact distance: the foot point's
    parametric angle ``t`` in the first quadrant solves
    ``(b^2 - a^2) sin t cos t + a|x| sin t - b|y| cos t = 0``, a function that goes from
    ``-b|y| <= 0`` at ``t = 0`` to ``a|x| >= 0`` at ``t = pi/2``, so bisection always finds
    a root (unique outside the ellipse; inside, where only the sign is used far from
    the boundary, it is an upper bound).  Farther points keep the bound.
    """
    px, py = np.broadcast_arrays(np.asarray(px, np.float64), np.asarray(py, np.float64))
    s = np.hypot(px / a, py / b)
    out = (s - 1.0) * min(a, b)
    near = np.abs(out) < _EXACT_BAND_MM
    ax, ay = np.abs(px[near]), np.abs(py[near])
    lo = np.zeros_like(ax)
    hi = np.full_like(ax, np.pi / 2)
    k = b * b - a * a
    for _ in range(_BISECTION_STEPS):
        t = 0.5 * (lo + hi)
        h = k * np.sin(t) * np.cos(t) + a * ax * np.sin(t) - b * ay * np.cos(t)
        neg = h < 0
        lo = np.where(neg, t, lo)
        hi = np.where(neg, hi, t)
    t = 0.5 * (lo + hi)
    dist = np.hypot(ax - a * np.cos(t), ay - b * np.sin(t))
    out[near] = np.where(s[near] < 1.0, -dist, dist)
    return out


def _remember_last(f: Field) -> Field:
    """Reuse the result when called again with the very same coordinate arrays."""
    memo: list[tuple[FloatArray, FloatArray, FloatArray]] = []

    def g(x: FloatArray, y: FloatArray) -> FloatArray:
        if memo and memo[0][0] is x and memo[0][1] is y:
            return memo[0][2]
        value = f(x, y)
        memo[:] = [(x, y, value)]
        return value

    return g


def ellipse(cx: float, cy: float, a: float, b: float) -> Field:
    """Signed distance to an axis-aligned ellipse (semi-axes ``a`` along x, ``b`` along y).

    Exact within 12 mm of the curve, a lower bound of the distance farther away.
    """
    return _remember_last(lambda x, y: _ellipse_distance(x - cx, y - cy, a, b))


def disk(cx: float, cy: float, r: float) -> Field:
    """Exact signed distance to a disk of radius ``r`` (mm)."""
    return lambda x, y: np.hypot(x - cx, y - cy) - r


def box(x0: float, x1: float, y0: float, y1: float) -> Field:
    """Exact signed distance to the rectangle ``[x0, x1] x [y0, y1]``."""
    cx, cy, hx, hy = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2

    def f(x: FloatArray, y: FloatArray) -> FloatArray:
        qx, qy = np.abs(x - cx) - hx, np.abs(y - cy) - hy
        outside = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
        return outside + np.minimum(np.maximum(qx, qy), 0.0)

    return f


def half_plane(px: float, py: float, nx: float, ny: float) -> Field:
    """Signed distance to the half-plane ``(p - p0) . n <= 0`` (``n`` is normalised)."""
    norm = float(np.hypot(nx, ny))
    ux, uy = nx / norm, ny / norm
    return lambda x, y: (x - px) * ux + (y - py) * uy


def wedge(cx: float, cy: float, start_deg: float, stop_deg: float) -> Field:
    """The angular wedge from ``start_deg`` to ``stop_deg`` (counter-clockwise in x-y).

    Angles are ``atan2(y - cy, x - cx)`` in degrees; the span must be below 180 deg.
    """
    span = stop_deg - start_deg
    if not 0 < span < 180:
        raise ValueError(f"wedge span must be between 0 and 180 degrees, got {span}.")
    a0, a1 = np.radians(start_deg), np.radians(stop_deg)
    # inside: left of the start ray and right of the stop ray
    first = half_plane(cx, cy, np.sin(a0), -np.cos(a0))
    second = half_plane(cx, cy, -np.sin(a1), np.cos(a1))
    return intersect(first, second)


def union(*fields: Field) -> Field:
    """Union of regions (pointwise minimum)."""
    return lambda x, y: np.minimum.reduce([f(x, y) for f in fields])


def intersect(*fields: Field) -> Field:
    """Intersection of regions (pointwise maximum)."""
    return lambda x, y: np.maximum.reduce([f(x, y) for f in fields])


def subtract(f: Field, *others: Field) -> Field:
    """``f`` minus the union of ``others``."""
    if not others:
        return f
    g = union(*others)
    return lambda x, y: np.maximum(f(x, y), -g(x, y))


EMPTY: Field = lambda x, y: np.full(np.broadcast(x, y).shape, 1e3)


# -- analytic ellipse polygons ----------------------------------------------------------
def ellipse_offset_polygon(cx: float, cy: float, a: float, b: float, *, offset_mm: float = 0.0,
                           n_points: int = 360) -> FloatArray:
    """Polygon of the ellipse's outer parallel curve at ``offset_mm`` (0: the ellipse).

    Returns an array of shape (n_points, 2), counter-clockwise in (x, y).  Vertices lie
    exactly on the curve (the offset of the point with parameter ``t`` along its
    outward normal), so the polygon is inscribed.
    """
    t = np.linspace(0.0, 2 * np.pi, n_points, endpoint=False)
    x, y = a * np.cos(t), b * np.sin(t)
    nx, ny = b * np.cos(t), a * np.sin(t)
    norm = np.hypot(nx, ny)
    return np.column_stack([cx + x + offset_mm * nx / norm, cy + y + offset_mm * ny / norm])


def ellipse_offset_area_mm2(a: float, b: float, offset_mm: float = 0.0) -> float:
    """Exact area enclosed by an ellipse's outer parallel curve (Steiner's formula)."""
    hi, lo = max(a, b), min(a, b)
    perimeter = 4 * hi * float(ellipe(1.0 - (lo / hi) ** 2))
    return float(np.pi * a * b + perimeter * offset_mm + np.pi * offset_mm**2)


# -- polygons -----------------------------------------------------------------------------
def polygon_signed_area_mm2(poly: FloatArray) -> float:
    """Shoelace area of a closed polygon (N, 2); positive when counter-clockwise."""
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def nesting_depths(polygons: list[FloatArray]) -> list[int]:
    """How many other polygons of the same plane contain each polygon (even-odd depth).

    Polygons of one plane from a level set never cross, so one vertex decides.
    """
    depths = []
    for i, p in enumerate(polygons):
        probe = p[:1]
        depths.append(sum(bool(points_in_poly(probe, q)[0])
                          for j, q in enumerate(polygons) if j != i))
    return depths


def net_area_mm2(polygons: list[FloatArray]) -> float:
    """Area of the even-odd combination of one plane's polygons."""
    return float(sum((-1) ** d * abs(polygon_signed_area_mm2(p))
                     for p, d in zip(polygons, nesting_depths(polygons))))


# -- sampling and contouring ------------------------------------------------------------
@dataclass(frozen=True)
class FineGrid:
    """A fine axial sampling grid for contour extraction and planar distance maps.

    Sample ``[row, col]`` lies at ``x = x0_mm + col * step_mm``, ``y = y0_mm + row * step_mm``.
    """

    x0_mm: float
    y0_mm: float
    n_cols: int
    n_rows: int
    step_mm: float

    @classmethod
    def covering(cls, x_range_mm: tuple[float, float], y_range_mm: tuple[float, float],
                 step_mm: float) -> FineGrid:
        n_cols = int(np.ceil((x_range_mm[1] - x_range_mm[0]) / step_mm)) + 1
        n_rows = int(np.ceil((y_range_mm[1] - y_range_mm[0]) / step_mm)) + 1
        return cls(x_range_mm[0], y_range_mm[0], n_cols, n_rows, step_mm)

    def coordinates(self) -> tuple[FloatArray, FloatArray]:
        """``(x, y)`` arrays of shape (n_rows, n_cols), mm (the same objects every call)."""
        return self._xy

    @cached_property
    def _xy(self) -> tuple[FloatArray, FloatArray]:
        xs = self.x0_mm + self.step_mm * np.arange(self.n_cols)
        ys = self.y0_mm + self.step_mm * np.arange(self.n_rows)
        x, y = np.meshgrid(xs, ys)
        x.flags.writeable = False
        y.flags.writeable = False
        return x, y

    def sample(self, field: Field) -> FloatArray:
        x, y = self.coordinates()
        return field(x, y)

    def signed_distance(self, mask: NDArray[np.bool_]) -> FloatArray:
        """Approximate signed distance (mm) to the boundary of a sampled region.

        Distances between sample centres, less half a step, so that the zero level
        falls midway between inside and outside samples (error about step/2).
        """
        h = self.step_mm
        outside = ndimage.distance_transform_edt(~mask) * h - h / 2
        inside = ndimage.distance_transform_edt(mask) * h - h / 2
        return np.where(mask, -inside, outside)

    def interpolate(self, values: FloatArray, x: FloatArray, y: FloatArray) -> FloatArray:
        """Bilinear interpolation of a sampled map at points; outside: nearest edge value."""
        cols = (np.asarray(x) - self.x0_mm) / self.step_mm
        rows = (np.asarray(y) - self.y0_mm) / self.step_mm
        return ndimage.map_coordinates(values, [rows.ravel(), cols.ravel()], order=1,
                                       mode="nearest").reshape(np.shape(x))

    def distance_outside(self, x: FloatArray, y: FloatArray) -> FloatArray:
        """Distance (mm) from points to this grid's rectangle (0 inside)."""
        x1 = self.x0_mm + self.step_mm * (self.n_cols - 1)
        y1 = self.y0_mm + self.step_mm * (self.n_rows - 1)
        dx = np.maximum(np.maximum(self.x0_mm - x, x - x1), 0.0)
        dy = np.maximum(np.maximum(self.y0_mm - y, y - y1), 0.0)
        return np.hypot(dx, dy)

    def polygons(self, values: FloatArray, *, level: float = 0.0, tolerance_mm: float = 0.05,
                 min_area_mm2: float = 0.2) -> list[FloatArray]:
        """Closed polygons (N, 2) in mm of the region ``values < level``.

        Outer boundaries come out counter-clockwise in (x, y), holes clockwise, so the
        signed areas of one plane add up to the region's area.  Vertices closer than
        ``tolerance_mm`` to the straight line between their neighbours are dropped;
        polygons smaller than ``min_area_mm2`` (sampling slivers) are dropped.
        """
        padded = np.pad(values, 1, mode="constant", constant_values=max(1.0, level + 1.0))
        if not np.any(padded < level):
            return []
        out = []
        for c in find_contours(padded, level):
            rc = c - 1.0
            xy = np.column_stack([self.x0_mm + rc[:, 1] * self.step_mm,
                                  self.y0_mm + rc[:, 0] * self.step_mm])
            xy = approximate_polygon(xy, tolerance=tolerance_mm)
            if len(xy) > 1 and np.allclose(xy[0], xy[-1]):
                xy = xy[:-1]
            if len(xy) >= 3 and abs(polygon_signed_area_mm2(xy)) >= min_area_mm2:
                out.append(xy)
        depths = nesting_depths(out)
        oriented = []
        for p, d in zip(out, depths):
            ccw = polygon_signed_area_mm2(p) > 0
            if ccw != (d % 2 == 0):
                p = p[::-1]
            oriented.append(np.ascontiguousarray(p))
        return oriented
