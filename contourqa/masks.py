"""ROI masks on an image grid: which voxel centres lie inside an ROI's contours.

A voxel belongs to the ROI when its centre is inside the even-odd combination of the
ROI's closed polygons on the contour plane nearest to it (within half the ROI's plane
spacing); slices beyond the first and last plane by more than that get nothing.  This
is the usual "nearest plane, voxel centre" convention of planning systems and is
what the sector analysis needs (the DVH engine, which needs sub-voxel volumes, has
its own finer model in :mod:`contourqa.dvh.occupancy`, whose scanline sampler is
reused here).

The grid must have axial slices (slice normal along patient z, any sign) like the
contours; the row and column axes may point either way (HFS, FFS, HFP, FFP).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from contourqa.errors import GeometryError
from contourqa.geometry import VolumeGeometry
from contourqa.io.rtstruct import ROI

__all__ = ["crop_geometry", "polygon_rows", "roi_mask"]

_AXIS_TOL = 1e-4


def _check_axial(geometry: VolumeGeometry) -> None:
    if not geometry.is_axis_aligned or abs(abs(geometry.direction[2, 2]) - 1.0) > _AXIS_TOL:
        raise GeometryError(
            "ROI masks need image slices parallel to the axial contour planes; this grid is "
            "oblique or its slice axis is not the patient z axis.")


def polygon_rows(polygons: list[tuple[int, NDArray[np.float64]]], *, n_rows: int | None = None
                 ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64],
                            NDArray[np.int64]]:
    """Runs of integer (row, column) points inside polygons, even-odd per plane.

    Parameters
    ----------
    polygons : list of (plane id, ndarray of shape (M, 2) of (j, i))
        Vertices in fractional index units; polygons with the same plane id combine
        even-odd.
    n_rows : int, optional
        Rows ``0 .. n_rows - 1`` only (the grid's): rows beyond it are not generated,
        so that the work is bounded by the grid, not by how far a vertex lies.

    Returns
    -------
    plane, row, col_start, col_stop : ndarray of shape (N,), int64
        Points ``(row, col)`` with ``col_start <= col < col_stop`` are inside.  Rows
        and columns use the half-open rule (a point exactly on a left or lower edge
        is inside, on a right or upper edge outside), so abutting polygons share no
        point.

    Raises
    ------
    GeometryError
        A vertex is not finite (its cast to a row index would be undefined).
    """
    e = np.zeros(0, np.int64)
    if not polygons:
        return e, e, e, e
    ids = np.concatenate([np.full(len(poly), g, np.int64) for g, poly in polygons])
    a = np.concatenate([poly for _, poly in polygons])
    b = np.concatenate([np.roll(poly, -1, axis=0) for _, poly in polygons])
    if not np.all(np.isfinite(a)):
        raise GeometryError("A contour vertex is not finite (NaN or inf); no mask is made.")
    qa_f, qb_f = np.ceil(a[:, 0]), np.ceil(b[:, 0])
    if n_rows is not None:
        # Rows crossed by an edge are [min(qa, qb), max(qa, qb)); clipping both ends to
        # the grid keeps exactly the crossings inside it, and every edge crossing a kept
        # row is kept, so the even-odd pairing of each row is unchanged.
        qa_f, qb_f = np.clip(qa_f, 0, n_rows), np.clip(qb_f, 0, n_rows)
    qa = qa_f.astype(np.int64)
    qb = qb_f.astype(np.int64)
    count = np.abs(qb - qa)
    total = int(count.sum())
    if total == 0:
        return e, e, e, e
    edge = np.repeat(np.arange(len(a)), count)
    q = np.repeat(np.minimum(qa, qb), count) + (np.arange(total)
                                                - np.repeat(np.cumsum(count) - count, count))
    ja, ia, jb, ib = a[edge, 0], a[edge, 1], b[edge, 0], b[edge, 1]
    x = ia + (q - ja) * (ib - ia) / (jb - ja)
    g = ids[edge]
    order = np.lexsort((x, q, g))
    x, q, g = x[order], q[order], g[order]
    start = np.ceil(x[0::2]).astype(np.int64)
    stop = np.ceil(x[1::2]).astype(np.int64)
    keep = stop > start
    return g[0::2][keep], q[0::2][keep], start[keep], stop[keep]


def roi_mask(roi: ROI, geometry: VolumeGeometry) -> NDArray[np.bool_]:
    """Voxels of ``geometry`` whose centre lies inside ``roi``.

    Parameters
    ----------
    roi : ROI
        Its CLOSED_PLANAR contours are used (axial planes); several polygons on one
        plane combine even-odd (holes, islands).
    geometry : VolumeGeometry
        Target grid, axial slices.

    Returns
    -------
    ndarray of shape (S, R, C), bool
        ``S, R, C = geometry.shape``.

    Raises
    ------
    GeometryError
        The grid's slices are not axial.
    """
    _check_axial(geometry)
    shape = geometry.shape
    mask = np.zeros(shape, dtype=bool)
    planes: list[tuple[float, list[NDArray[np.float64]]]] = []
    for polys in roi.planes(normal=np.array([0.0, 0.0, 1.0])).values():
        idx = [geometry.patient_to_index(p) for p in polys]
        k = float(np.mean(np.concatenate([v[:, 0] for v in idx])))
        planes.append((k, [np.ascontiguousarray(v[:, 1:], dtype=np.float64) for v in idx]))
    if not planes:
        return mask
    planes.sort(key=lambda t: t[0])
    ks = np.array([k for k, _ in planes])
    half = 0.5 * float(np.median(np.diff(ks))) if len(ks) > 1 else 0.5
    half = max(half, 0.5)
    slices = np.arange(shape[0], dtype=np.float64)
    nearest = np.abs(slices[:, None] - ks[None, :]).argmin(axis=1)
    within = np.abs(slices - ks[nearest]) <= half + 1e-6
    rows_in: list[tuple[int, NDArray[np.float64]]] = [
        (int(s), poly) for s in np.nonzero(within)[0]
        for poly in planes[int(nearest[s])][1]]
    g, q, c0, c1 = polygon_rows(rows_in, n_rows=shape[1])
    ok = (q >= 0) & (q < shape[1])
    g, q = g[ok], q[ok]
    c0 = np.clip(c0[ok], 0, shape[2])
    c1 = np.clip(c1[ok], 0, shape[2])
    n = c1 - c0
    tot = int(n.sum())
    off = np.arange(tot) - np.repeat(np.cumsum(n) - n, n)
    mask[np.repeat(g, n), np.repeat(q, n), np.repeat(c0, n) + off] = True
    return mask


def crop_geometry(geometry: VolumeGeometry, start_kji: tuple[int, int, int],
                  stop_kji: tuple[int, int, int]) -> VolumeGeometry:
    """The sub-grid ``[start, stop)`` (array order, clipped to the grid) of ``geometry``.

    Parameters
    ----------
    geometry : VolumeGeometry
    start_kji, stop_kji : tuple of int
        First and one-past-last voxel along (slice, row, column).

    Returns
    -------
    VolumeGeometry
        Same spacing and direction; its voxel ``(0, 0, 0)`` is ``start_kji`` of the
        original grid.
    """
    lo = np.clip(np.asarray(start_kji, int), 0, np.asarray(geometry.shape) - 1)
    hi = np.clip(np.asarray(stop_kji, int), lo + 1, np.asarray(geometry.shape))
    origin = geometry.index_to_patient(lo.astype(np.float64))
    return VolumeGeometry(shape=(int(hi[0] - lo[0]), int(hi[1] - lo[1]), int(hi[2] - lo[2])), origin_mm=origin,
                          spacing_mm=geometry.spacing_mm, direction=geometry.direction)
