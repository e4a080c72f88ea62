"""Structure model of the DVH engine: from contour polygons to weighted sample layers.

Everything here works in the *dose grid's index space*: ``k`` (slice), ``j`` (row) and
``i`` (column) as fractional indices, obtained from
:meth:`~contourqa.geometry.VolumeGeometry.patient_to_index`.  The dose grid must have
its slices parallel to the contour planes (axial contours, axis-aligned grid).

A structure becomes a stack of *layers*: prisms ``[k_lo, k_hi]`` with a constant
cross-section given as in-plane samples on a grid ``n`` times finer than the dose
voxels (sample ``(q, p)`` sits at ``j = (q + phase) / n - 0.5``, ``i = (p + phase) / n - 0.5``,
shifted by a fixed phase so that no sample lies on a voxel centre).  Without shape interpolation each contour
plane is one layer (its slab); with it, the space between two planes is cut into thin
sub-layers whose shapes morph from one plane's shape to the next.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from contourqa.dvh.options import DVHOptions
from contourqa.errors import GeometryError
from contourqa.geometry import VolumeGeometry
from contourqa.limits import input_limits
from contourqa.io.rtstruct import ROI

__all__ = ["ContourPlane", "StructureModel", "build_model", "contour_planes", "scanline_runs",
           "scanline_samples"]

_AXIS_TOL = 1e-4
# Sample q sits at index (q + _PHASE) / n - 0.5: a phase other than 0.5 keeps samples off
# voxel centres and half-voxel lines for every n, where contour vertices often lie
# exactly (a sample row on an edge is a whole row in or out).
_PHASE = 0.5 + 1.0 / 8.0


@dataclass(frozen=True, eq=False)
class ContourPlane:
    """The closed polygons of one ROI on one plane, in dose index space.

    Attributes
    ----------
    k : float
        Slice index of the plane (fractional).
    polygons : tuple of ndarray of shape (M, 2), float64
        Vertices as ``(j, i)`` fractional indices; combined even-odd.
    area_index : float
        Sum of the polygons' absolute areas in index units squared (an estimate: exact
        when polygons neither overlap nor nest), from :func:`contour_planes`.
    """

    k: float
    polygons: tuple[NDArray[np.float64], ...]
    area_index: float


@dataclass(frozen=True, eq=False)
class StructureModel:
    """A structure as layers of in-plane samples, in dose index space.

    The samples of a layer are stored as runs along a sample row: run ``r`` holds the
    samples ``(q[r], p)`` for ``p0[r] <= p < p1[r]`` of layer ``layer[r]``.

    Attributes
    ----------
    n : int
        Samples per dose voxel along each in-plane axis.
    run_layer, run_q, run_p0, run_p1 : ndarray of shape (R,), int64
        Layer, sample row and column range ``[p0, p1)`` of each run; the runs of one
        layer and row are disjoint.
    k_lo, k_hi : ndarray of shape (L,), float64
        Slice-index bounds of each layer (``k_hi >= k_lo``).
    vertex_ji : ndarray of shape (V, 2), float64
        Contour vertices, in-plane.
    vertex_k : ndarray of shape (V, 3), float64
        Slice positions of each vertex where Dmin and Dmax are also evaluated: its plane
        and both faces of its slab (end-cap faces included).
    interpolated : bool
        Whether sub-layers were morphed between planes.
    cap_volume_index : float
        Volume of the end caps, index units cubed (for reconciliation).
    """

    n: int
    run_layer: NDArray[np.int64]
    run_q: NDArray[np.int64]
    run_p0: NDArray[np.int64]
    run_p1: NDArray[np.int64]
    k_lo: NDArray[np.float64]
    k_hi: NDArray[np.float64]
    vertex_ji: NDArray[np.float64]
    vertex_k: NDArray[np.float64]
    interpolated: bool
    cap_volume_index: float

    @property
    def sample_area_index(self) -> float:
        return 1.0 / (self.n * self.n)

    @property
    def vertices_kji(self) -> NDArray[np.float64]:
        """Every boundary point as ``(k, j, i)``, shape (3 V, 3)."""
        nk = self.vertex_k.shape[1]
        return np.column_stack([self.vertex_k.T.ravel(), np.tile(self.vertex_ji, (nk, 1))])

    @property
    def n_samples(self) -> int:
        """In-plane samples summed over layers."""
        return int(np.sum(self.run_p1 - self.run_p0))

    def samples(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """Every sample as ``(layer, q, p)``, shape (N,) each (expanded from the runs)."""
        return _expand_runs(self.run_layer, self.run_q, self.run_p0, self.run_p1)

    def volume_index(self) -> float:
        """Model volume in index units cubed."""
        thick = (self.k_hi - self.k_lo)[self.run_layer]
        return float(np.sum(thick * (self.run_p1 - self.run_p0))) * self.sample_area_index


def _expand_runs(g: NDArray[np.int64], q: NDArray[np.int64], p0: NDArray[np.int64],
                 p1: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    cnt = np.maximum(p1 - p0, 0)
    tot = int(cnt.sum())
    if tot > input_limits().max_voxels:
        raise GeometryError(
            f"The ROI would need {tot} in-plane samples, beyond "
            f"{input_limits().where('max_voxels')}: its contours are far larger than the "
            "dose grid's spacing allows.")
    off = np.arange(tot) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    return np.repeat(g, cnt), np.repeat(q, cnt), np.repeat(p0, cnt) + off


def _mask_runs(mask: NDArray[np.bool_]) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Runs ``(row, col0, col1)`` of True along the rows of a 2D mask, row-major order."""
    pad = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    pad[:, 1:-1] = mask
    d = np.diff(pad, axis=1)
    r0, c0 = np.nonzero(d == 1)
    _, c1 = np.nonzero(d == -1)
    return r0.astype(np.int64), c0.astype(np.int64), c1.astype(np.int64)


def check_geometry(geometry: VolumeGeometry) -> None:
    """Raise :class:`GeometryError` unless the dose slices are axial and axis-aligned."""
    if not geometry.is_axis_aligned or abs(abs(geometry.direction[2, 2]) - 1.0) > _AXIS_TOL:
        raise GeometryError(
            "The DVH engine needs dose slices parallel to the (axial) contour planes; this "
            "dose grid is oblique or its slice axis is not the patient z axis. Export the "
            "dose on an axial grid.")
    if min(geometry.shape) < 2:
        raise GeometryError(f"The dose grid {geometry.shape} needs at least 2 voxels along each "
                            "axis for interpolation.")


def contour_planes(roi: ROI, geometry: VolumeGeometry) -> list[ContourPlane]:
    """The ROI's closed contours grouped by plane, in the grid's index space, sorted by k."""
    contours = roi.closed_contours
    if not contours:
        return []
    # grouped as ROI.planes does (plane position rounded to 1 um), converted at once
    pts = np.concatenate([c.points_mm for c in contours])
    sizes = np.fromiter((len(c.points_mm) for c in contours), np.int64, len(contours))
    starts = np.cumsum(sizes) - sizes
    keys = np.round(np.add.reduceat(pts[:, 2], starts) / sizes, 3)
    groups, member_of = np.unique(keys, return_inverse=True)
    kji = geometry.patient_to_index(pts)
    k_sum = np.bincount(member_of, weights=np.add.reduceat(kji[:, 0], starts), minlength=len(groups))
    k_mean = k_sum / np.bincount(member_of, weights=sizes, minlength=len(groups))
    ji = np.ascontiguousarray(kji[:, 1:])
    # shoelace of every contour at once: the next vertex wraps within each contour
    nxt = np.arange(1, len(ji) + 1)
    nxt[starts + sizes - 1] = starts
    cross = ji[:, 1] * ji[nxt, 0] - ji[:, 0] * ji[nxt, 1]
    area = np.bincount(member_of, weights=np.abs(np.add.reduceat(cross, starts)) / 2.0,
                       minlength=len(groups))
    polys: list[list[NDArray[np.float64]]] = [[] for _ in groups]
    for g, a, n in zip(member_of.tolist(), starts.tolist(), sizes.tolist()):
        polys[g].append(ji[a:a + n])
    out = [ContourPlane(k=float(k), polygons=tuple(p), area_index=float(a_))
           for k, p, a_ in zip(k_mean, polys, area)]
    out.sort(key=lambda c: c.k)
    return out


def scanline_samples(polygons: list[tuple[int, NDArray[np.float64]]], n: int
                     ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Samples inside polygons: :func:`scanline_runs` expanded to one entry per sample.

    Returns
    -------
    plane, q, p : ndarray of shape (N,), int64
        Plane id, row and column sub-index of every sample inside (same rules as
        :func:`scanline_runs`).
    """
    return _expand_runs(*scanline_runs(polygons, n))


def scanline_runs(polygons: list[tuple[int, NDArray[np.float64]]], n: int
                  ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Runs of samples inside polygons by an even-odd scanline, batched over planes.

    Parameters
    ----------
    polygons : list of (plane id, ndarray of shape (M, 2) of (j, i))
        Polygons with the id of the plane they lie on; those of one plane combine
        even-odd.
    n : int
        Samples per index unit.

    Returns
    -------
    plane, q, p0, p1 : ndarray of shape (R,), int64
        Plane id, row and column range ``[p0, p1)`` of every run of samples inside, by
        plane, row and column.  A sample is inside when its centre is; rows use the
        half-open rule, so shared vertices count once.
    """
    if not polygons:
        e = np.zeros(0, np.int64)
        return e, e, e, e
    ids = np.concatenate([np.full(len(poly), g, np.int64) for g, poly in polygons])
    a = np.concatenate([poly for _, poly in polygons])
    if not np.all(np.isfinite(a)):  # a NaN or inf cast to an index is undefined
        raise GeometryError("A contour vertex is not finite (NaN or inf); no DVH is computed.")
    b = np.concatenate([np.concatenate([poly[1:], poly[:1]]) for _, poly in polygons])
    ja, ia, jb, ib = a[:, 0], a[:, 1], b[:, 0], b[:, 1]
    q_a = np.ceil((ja + 0.5) * n - _PHASE).astype(np.int64)
    q_b = np.ceil((jb + 0.5) * n - _PHASE).astype(np.int64)
    q_start = np.minimum(q_a, q_b)
    count = np.abs(q_b - q_a)
    total = int(count.sum())
    if total == 0:
        e = np.zeros(0, np.int64)
        return e, e, e, e
    if total > input_limits().max_voxels:
        raise GeometryError(
            f"The ROI's contours cross {total} sample rows, beyond "
            f"{input_limits().where('max_voxels')}: they are far larger than the dose grid's "
            "spacing allows.")
    edge = np.repeat(np.arange(len(ja)), count)
    q = np.repeat(q_start, count) + (np.arange(total) - np.repeat(np.cumsum(count) - count, count))
    u = (q + _PHASE) / n - 0.5
    je, ie, jf, iff = ja[edge], ia[edge], jb[edge], ib[edge]
    x = ie + (u - je) * (iff - ie) / (jf - je)
    g = ids[edge]
    # one sort key: row (plane, q) first, then x (x - x_min lies in [0, width); float64
    # keeps it to ~1e-8 of an index unit for any realistic number of rows)
    q_min, x_min = int(q.min()), float(x.min())
    width = float(x.max()) - x_min + 1.0
    key = (g * (int(q.max()) - q_min + 1) + (q - q_min)) * width + (x - x_min)
    order = np.argsort(key)
    x, q, g = x[order], q[order], g[order]
    xs, xe = x[0::2], x[1::2]
    q_row, g_row = q[0::2], g[0::2]
    p_start = np.ceil((xs + 0.5) * n - _PHASE).astype(np.int64)
    p_end = np.ceil((xe + 0.5) * n - _PHASE).astype(np.int64)
    keep = p_end > p_start
    return g_row[keep], q_row[keep], p_start[keep], p_end[keep]


def median(values: NDArray[np.float64]) -> float:
    """Median of a non-empty array (``np.median`` imports ``numpy.ma``, 10 ms a process)."""
    s = np.sort(np.asarray(values, dtype=np.float64).ravel())
    half = len(s) // 2
    return float(s[half]) if len(s) % 2 else 0.5 * float(s[half - 1] + s[half])


def _runs(ks: NDArray[np.float64], gap_factor: float) -> list[tuple[int, int]]:
    """Index ranges ``[start, stop)`` of planes that form connected parts."""
    if len(ks) < 3:
        return [(0, len(ks))]
    d = np.diff(ks)
    cuts = np.nonzero(d > gap_factor * median(d) + 1e-9)[0]
    starts = [0, *(cuts + 1).tolist()]
    stops = [*(cuts + 1).tolist(), len(ks)]
    return list(zip(starts, stops))


def _lone_half_thickness(ks: NDArray[np.float64]) -> float:
    """Half thickness of a part made of a single plane: half the ROI's median plane
    spacing, or half a dose slice when the ROI has one plane."""
    if len(ks) >= 2:
        return 0.5 * median(np.diff(ks))
    return 0.5


def _choose_n(plane_areas: NDArray[np.float64], layer_area_sum: float, options: DVHOptions) -> int:
    """Subdivision per dose voxel: ``samples_per_plane`` on the median plane, at most
    ``max_samples`` over all layers, within the subdivision bounds."""
    positive = plane_areas[plane_areas > 0]
    if len(positive) == 0:
        return options.max_subdivision
    n = math.ceil(math.sqrt(options.samples_per_plane / median(positive)))
    if layer_area_sum > 0 and n * n * layer_area_sum > options.max_samples:
        n = max(1, int(math.floor(math.sqrt(options.max_samples / layer_area_sum))))
        return n if n == 1 or n % 2 == 0 else n - 1
    n = int(min(max(n, options.min_subdivision), options.max_subdivision))
    # Even n keeps sample rows and columns off the voxel centres and half-voxel lines,
    # where contour edges often lie exactly (a sample on an edge is a whole row in or out);
    # n = 1 (voxel centres) only where the budget of a large structure demands it.
    if n % 2 and n > 1:
        n = n + 1 if n + 1 <= options.max_subdivision else n - 1
    return n


def _vertices(planes: list[ContourPlane], lo: NDArray[np.float64], hi: NDArray[np.float64]
              ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Contour vertices ``(j, i)``, shape (V, 2), and the slice positions where each is
    evaluated, shape (V, 3): its plane and both faces of its slab."""
    pts = np.concatenate([poly for pl in planes for poly in pl.polygons])
    counts = [sum(len(poly) for poly in pl.polygons) for pl in planes]
    ks = np.column_stack([np.array([pl.k for pl in planes]), lo, hi])
    return pts, np.repeat(ks, counts, axis=0)


def build_model(planes: list[ContourPlane], *, options: DVHOptions, slice_mm: float,
                interpolate: bool) -> StructureModel:
    """Build the layered model of one ROI.

    Parameters
    ----------
    planes : list of ContourPlane, sorted by ``k``
    options : DVHOptions
    slice_mm : float
        Dose grid slice spacing, mm (converts ``sublayer_mm`` to index units).
    interpolate : bool
        Morph shapes between planes (else one slab per plane).
    """
    ks = np.array([pl.k for pl in planes], dtype=np.float64)
    caps = options.end_caps == "half_slice"
    runs = _runs(ks, options.gap_factor)
    lone = _lone_half_thickness(ks)
    areas = np.array([pl.area_index for pl in planes])

    # Layer bounds of the slab model, and cap extents per run.
    lo = np.empty(len(ks))
    hi = np.empty(len(ks))
    cap_lo = np.empty(len(ks))
    cap_hi = np.empty(len(ks))
    for s, e in runs:
        for m in range(s, e):
            below = 0.5 * (ks[m] - ks[m - 1]) if m > s else (
                (0.5 * (ks[m + 1] - ks[m]) if e - s > 1 else lone) if caps else 0.0)
            above = 0.5 * (ks[m + 1] - ks[m]) if m < e - 1 else (
                (0.5 * (ks[m] - ks[m - 1]) if e - s > 1 else lone) if caps else 0.0)
            lo[m], hi[m] = ks[m] - below, ks[m] + above
            cap_lo[m] = below if m == s else 0.0
            cap_hi[m] = above if m == e - 1 else 0.0
    cap_volume = float(np.sum(areas * (cap_lo + cap_hi)))

    if not interpolate:
        n = _choose_n(areas, float(areas.sum()), options)
        g, q, p0, p1 = scanline_runs([(m, poly) for m, pl in enumerate(planes)
                                      for poly in pl.polygons], n)
        vji, vk = _vertices(planes, lo, hi)
        return StructureModel(n=n, run_layer=g, run_q=q, run_p0=p0, run_p1=p1, k_lo=lo, k_hi=hi,
                              vertex_ji=vji, vertex_k=vk, interpolated=False,
                              cap_volume_index=cap_volume)
    return _morph_model(planes, ks, areas, runs, lo, hi, options=options,
                        slice_mm=slice_mm, cap_volume=cap_volume)


def _outline_points(polygons: tuple[NDArray[np.float64], ...], step: float = 0.5
                    ) -> NDArray[np.float64]:
    """Points along the polygons' edges at most ``step`` apart (same units), shape (M, 2)."""
    out = []
    for poly in polygons:
        a = poly
        b = np.roll(poly, -1, axis=0)
        k = np.maximum(np.ceil(np.hypot(*(b - a).T) / step).astype(np.int64), 1)
        e = np.repeat(np.arange(len(a)), k)
        f = (np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)) / np.repeat(k, k)
        out.append(a[e] + f[:, None] * (b[e] - a[e]))
    return np.concatenate(out)


_FAR = 1e9  # distance standing for 'fixed sign' where two morphed masks agree


def _ring(mask: NDArray[np.bool_], *, inner: bool) -> NDArray[np.int32]:
    """Pixels of the mask (``inner``) or of its complement with a 4-neighbour of the
    other class, as (row, column), shape (K, 2).  The nearest pixel of the other class
    to any pixel always lies on this ring, so distances to it are exact."""
    pad = np.pad(mask, 1, constant_values=False)
    other = ~pad if inner else pad
    nb = other[:-2, 1:-1] | other[2:, 1:-1] | other[1:-1, :-2] | other[1:-1, 2:]
    return np.argwhere((mask if inner else ~mask) & nb).astype(np.int32)


def _nearest(points: NDArray[Any], targets: NDArray[Any]) -> NDArray[np.float64]:
    """Distance from each point (N, 2) to the nearest target (K, 2), chunked.

    Integer coordinates (pixels) are compared as int32, exactly and twice as fast."""
    out = np.empty(len(points))
    step = max(1, 2_000_000 // max(len(targets), 1))
    for s in range(0, len(points), step):
        pt = points[s:s + step]
        dr = pt[:, 0, None] - targets[None, :, 0]
        dc = pt[:, 1, None] - targets[None, :, 1]
        dr *= dr
        dc *= dc
        dr += dc
        out[s:s + step] = np.sqrt(dr.min(axis=1).astype(np.float64))
    return out


def _morph_fields(mask_a: NDArray[np.bool_], mask_b: NDArray[np.bool_],
                  outline_a: NDArray[np.float64], outline_b: NDArray[np.float64]
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Signed distances (sample units, negative inside) of two masks, exact where the
    masks differ, -/+ _FAR where both agree (a blend's sign is fixed there).

    A mask too thin to hold a sample (a line or a point where a plane touches the
    structure) gets the distance to its outline, so that morphs grow from the line.
    """
    da = np.where(mask_a & mask_b, -_FAR, _FAR)
    db = da.copy()
    diff = np.argwhere(mask_a ^ mask_b)
    if len(diff) == 0:
        return da, db
    r, c = diff[:, 0], diff[:, 1]
    pts = diff.astype(np.int32)
    for mask, outline, field in ((mask_a, outline_a, da), (mask_b, outline_b, db)):
        if not mask.any():
            field[r, c] = _nearest(pts, outline)
            continue
        inside = mask[r, c]
        if inside.any():
            field[r[inside], c[inside]] = 0.5 - _nearest(pts[inside], _ring(mask, inner=False))
        if (~inside).any():
            field[r[~inside], c[~inside]] = _nearest(pts[~inside], _ring(mask, inner=True)) - 0.5
    return da, db


def _area_at(z: NDArray[np.float64], A: NDArray[np.float64], m: int, t: NDArray[np.float64]
             ) -> NDArray[np.float64]:
    """Cross-section area between planes ``m`` and ``m + 1`` at fraction ``t``: the mean
    of the quadratics through the neighbouring plane triples (linear for two planes)."""
    zt = z[m] + t * (z[m + 1] - z[m])

    def quad(i0: int) -> NDArray[np.float64]:
        zz, aa = z[i0:i0 + 3], A[i0:i0 + 3]
        out = np.zeros_like(zt)
        for a in range(3):
            term = np.full_like(zt, aa[a])
            for b in range(3):
                if b != a:
                    term *= (zt - zz[b]) / (zz[a] - zz[b])
            out += term
        return out

    fits = []
    if m - 1 >= 0:
        fits.append(quad(m - 1))
    if m + 2 < len(z):
        fits.append(quad(m))
    if not fits:
        return (1 - t) * A[m] + t * A[m + 1]
    return np.maximum(np.mean(fits, axis=0), 0.0)


# Exponents tried by the tip profile (geometric steps from 1/4 to 4).
_TIP_EXPONENTS = np.geomspace(0.25, 4.0, 161)


def _tip_area_at(z: NDArray[np.float64], A: NDArray[np.float64], tip: int,
                 t: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """Cross-section area in the end gap of a run whose end plane ``tip`` (0 or last)
    is the small one, at fraction ``t`` from plane ``0 -> 1`` (or ``last-1 -> last``).

    Near an end the area follows ``A(d)^p = A_0^p + a d + b d^2`` (``d`` distance from the
    end plane): the two coefficients pass through the next two planes and ``p`` is the
    smallest exponent in [1/4, 4] that also passes through the third.  This is exact for
    spheres and ellipsoids at their poles (``p = 1``), cones at their apex (``p = 1/2``)
    and cylinders lying across the planes (``p = 2``, area ~ sqrt(d) where the end plane
    is tangent).  ``None`` (caller falls back) when the run has fewer than four planes or
    no exponent fits.
    """
    if len(z) < 4:
        return None
    idx = [0, 1, 2, 3] if tip == 0 else [len(z) - 1, len(z) - 2, len(z) - 3, len(z) - 4]
    d = np.abs(z[idx] - z[idx[0]])
    a = np.maximum(A[idx], 0.0)
    if not (d[1] > 0 and d[2] > d[1] and d[3] > d[2]) or not np.all(a[1:] > 0):
        return None
    P = _TIP_EXPONENTS[:, None]
    y = a[None, :] ** P                               # (E, 4)
    r1, r2 = y[:, 1] - y[:, 0], y[:, 2] - y[:, 0]
    det = d[1] * d[2] * (d[2] - d[1])
    ca = (r1 * d[2] ** 2 - r2 * d[1] ** 2) / det
    cb = (r2 * d[1] - r1 * d[2]) / det
    pred = y[:, 0] + ca * d[3] + cb * d[3] ** 2
    err = np.where(pred > 0, np.maximum(pred, 0.0) ** (1.0 / P[:, 0]), 0.0) / a[3] - 1.0
    cross = np.nonzero(np.sign(err[:-1]) * np.sign(err[1:]) <= 0)[0]
    if len(cross) == 0:
        return None
    e = int(cross[0])
    w = err[e] / (err[e] - err[e + 1]) if err[e] != err[e + 1] else 0.0
    p = float(np.exp((1 - w) * np.log(_TIP_EXPONENTS[e]) + w * np.log(_TIP_EXPONENTS[e + 1])))
    yy = a ** p
    r1, r2 = yy[1] - yy[0], yy[2] - yy[0]
    ca = (r1 * d[2] ** 2 - r2 * d[1] ** 2) / det
    cb = (r2 * d[1] - r1 * d[2]) / det
    dist = (t if tip == 0 else 1.0 - t) * d[1]
    val = yy[0] + ca * dist + cb * dist ** 2
    return np.maximum(val, 0.0) ** (1.0 / p)


_TAU_GRID = np.linspace(0.0, 1.0, 17)


def _match_area(da: NDArray[np.float64], db: NDArray[np.float64], target: NDArray[np.float64],
                t: NDArray[np.float64]) -> NDArray[np.float64]:
    """Morph parameters in [0, 1] whose shapes ``(1 - tau) da + tau db < 0`` have the target
    areas (in samples); the plain fraction ``t`` where the area does not vary
    monotonically with tau (shifted or branching shapes)."""
    counts = np.array([np.count_nonzero((1 - tau) * da + tau * db < 0) for tau in _TAU_GRID],
                      dtype=np.float64)
    d = np.diff(counts)
    if counts[-1] == counts[0] or not (np.all(d >= 0) or np.all(d <= 0)):
        return t
    if counts[-1] < counts[0]:
        return np.interp(target, counts[::-1], _TAU_GRID[::-1])
    return np.interp(target, counts, _TAU_GRID)


def _morph_model(planes: list[ContourPlane], ks: NDArray[np.float64], areas_est: NDArray[np.float64],
                 runs: list[tuple[int, int]], lo: NDArray[np.float64], hi: NDArray[np.float64],
                 *, options: DVHOptions, slice_mm: float, cap_volume: float) -> StructureModel:
    """Slab model with morphed sub-layers across the gaps that end at a tip.

    Each plane keeps its slab, except on the side of a *tip gap* (the smaller of the two
    cross-sections below ``morph_area_ratio`` times the larger): there its slab stops at
    the plane and the gap is filled with thin sub-layers morphed between the two shapes.
    """
    sub_index = options.sublayer_mm / slice_mm
    tip = np.zeros(len(ks), dtype=bool)  # tip[m]: the gap between m and m + 1 is morphed
    for s_, e in runs:
        for m in range(s_, e - 1):
            small, big = sorted((areas_est[m], areas_est[m + 1]))
            tip[m] = small < options.morph_area_ratio * big
    gaps = np.where(tip, np.diff(np.append(ks, ks[-1])), 0.0)
    n_sub = np.where(tip, np.maximum(1, np.ceil(gaps / sub_index - 1e-9)), 0).astype(int)
    est = float(areas_est.sum() + np.sum(
        np.where(tip, 0.5 * (areas_est + np.append(areas_est[1:], 0.0)) * n_sub, 0.0)))
    n = _choose_n(areas_est, est, options)
    g, q, p0, p1 = scanline_runs([(m, poly) for m, pl in enumerate(planes)
                                  for poly in pl.polygons], n)
    counts = np.bincount(g, weights=(p1 - p0).astype(np.float64),
                         minlength=len(planes)).astype(np.float64)
    # plane slabs, cut at the plane on the side of a tip gap
    lo = lo.copy()
    hi = hi.copy()
    for m in np.nonzero(tip)[0].tolist():
        hi[m] = ks[m]
        lo[m + 1] = ks[m + 1]
    starts = np.searchsorted(g, np.arange(len(planes) + 1))  # runs come by plane

    out_q = [q]
    out_p0 = [p0]
    out_p1 = [p1]
    out_l = [g]
    k_lo = list(lo)
    k_hi = list(hi)

    def add(mask: NDArray[np.bool_], q0: int, p0_: int, a: float, b: float) -> None:
        rq, ra, rb = _mask_runs(mask)
        out_q.append(rq + q0)
        out_p0.append(ra + p0_)
        out_p1.append(rb + p0_)
        out_l.append(np.full(len(rq), len(k_lo), np.int64))
        k_lo.append(a)
        k_hi.append(b)

    for s_, e in runs:
        z = ks[s_:e]
        A = counts[s_:e]
        for m in range(s_, e - 1):
            if not tip[m]:
                continue
            pair = (m, m + 1)
            pts = np.concatenate([poly for mm in pair for poly in planes[mm].polygons])
            q0 = int(math.floor((pts[:, 0].min() + 0.5) * n)) - 2
            p0_ = int(math.floor((pts[:, 1].min() + 0.5) * n)) - 2
            nq = int(math.ceil((pts[:, 0].max() + 0.5) * n)) + 2 - q0 + 1
            npp = int(math.ceil((pts[:, 1].max() + 0.5) * n)) + 2 - p0_ + 1
            masks, outlines = [], []
            for mm in pair:
                mask = np.zeros((nq, npp), dtype=bool)
                sl = slice(starts[mm], starts[mm + 1])
                _, sq, sp = _expand_runs(g[sl], q[sl], p0[sl], p1[sl])
                mask[sq - q0, sp - p0_] = True
                masks.append(mask)
                outlines.append((_outline_points(planes[mm].polygons, 0.5 / n) + 0.5) * n - _PHASE
                                - np.array([q0, p0_]))
            da, db = _morph_fields(masks[0], masks[1], outlines[0], outlines[1])
            nsub = int(n_sub[m])
            t = (np.arange(nsub) + 0.5) / nsub
            edges = ks[m] + np.arange(nsub + 1) / nsub * (ks[m + 1] - ks[m])
            target = None
            if m == s_ and A[0] < A[1]:
                target = _tip_area_at(z, A, 0, t)
            elif m == e - 2 and A[-1] < A[-2]:
                target = _tip_area_at(z, A, len(z) - 1, t)
            if target is None:
                target = _area_at(z, A, m - s_, t)
            taus = _match_area(da, db, target, t)
            for c_ in range(nsub):
                add((1 - taus[c_]) * da + taus[c_] * db < 0, q0, p0_,
                    float(edges[c_]), float(edges[c_ + 1]))
    vji, vk = _vertices(planes, lo, hi)
    return StructureModel(n=n, run_layer=np.concatenate(out_l), run_q=np.concatenate(out_q),
                          run_p0=np.concatenate(out_p0), run_p1=np.concatenate(out_p1),
                          k_lo=np.asarray(k_lo, dtype=np.float64),
                          k_hi=np.asarray(k_hi, dtype=np.float64),
                          vertex_ji=vji, vertex_k=vk,
                          interpolated=bool(tip.any()), cap_volume_index=cap_volume)
