"""Contour integrity rules, for every ROI: what a physics review checks before the
target rules mean anything.

Rules (explicit list :data:`INTEGRITY_RULES`; thresholds in
``contourqa/rules/data/integrity.toml``): ``contour.empty``, ``contour.open``,
``contour.self_intersection``, ``contour.gap``, ``contour.duplicate_plane``,
``contour.not_on_slice``, ``contour.off_image``, ``contour.stray_island`` and
``contour.name`` (TG-263, with the suggested standard name).  Each yields one finding
per offending ROI, or one pass naming how many ROIs were checked.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from contourqa.findings import Finding, Status
from contourqa.geometry import VolumeGeometry
from contourqa.io.rtstruct import ROI, ContourType
from contourqa.masks import crop_geometry, roi_mask
from contourqa.rules.context import RuleContext
from contourqa.rules.model import Mode, Rule
from contourqa.structures import Role

__all__ = ["INTEGRITY_RULES", "self_intersections", "suggested_name"]

_BOTH = frozenset({Mode.UPFRONT, Mode.POSTOP})
_ESSENTIAL = frozenset({Role.GTV, Role.CTV, Role.PTV, Role.SPINAL_CORD, Role.CORD_PRV})
_Z = np.array([0.0, 0.0, 1.0])


def _f(code: str, status: Status, message: str, params: Mapping[str, Any], **kw: Any) -> Finding:
    return Finding(code=code, status=status, message=message,
                   source=str(params.get("source", "")) or None, **kw)


def _rois(ctx: RuleContext) -> tuple[ROI, ...]:
    return ctx.case.structure_set.rois if ctx.case.structure_set is not None else ()


def _summary(code: str, found: list[Finding], n: int, what: str, params: Mapping[str, Any]
             ) -> list[Finding]:
    if found:
        return found
    return [_f(code, Status.PASS, f"{n} ROI(s) checked: {what}.", params)]


def _no_ss(code: str, params: Mapping[str, Any]) -> list[Finding]:
    return [_f(code, Status.NOT_EVALUATED, "Not evaluated: no structure set.", params)]


# --------------------------------------------------------------------------- polygon geometry

def _orient(a: NDArray[np.float64], b: NDArray[np.float64], c: NDArray[np.float64]
            ) -> NDArray[np.float64]:
    return np.sign((b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1])
                   - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0]))


def _on_segment(a: NDArray[np.float64], b: NDArray[np.float64], p: NDArray[np.float64]
                ) -> NDArray[np.bool_]:
    """``p`` within the bounding box of ``a``-``b`` (call only where collinear)."""
    return ((np.minimum(a[..., 0], b[..., 0]) <= p[..., 0])
            & (p[..., 0] <= np.maximum(a[..., 0], b[..., 0]))
            & (np.minimum(a[..., 1], b[..., 1]) <= p[..., 1])
            & (p[..., 1] <= np.maximum(a[..., 1], b[..., 1])))


def _clean(points_xy: NDArray[np.float64]) -> NDArray[np.float64]:
    """Vertices without consecutive repeats (and without a repeated closing vertex)."""
    p = np.asarray(points_xy, dtype=np.float64)
    if len(p) == 0:
        return p
    keep = np.any(p != np.roll(p, 1, axis=0), axis=1)
    if not keep.any():
        return p[:1]
    return p[keep]


def self_intersections(points_xy: NDArray[np.float64]) -> NDArray[np.int64]:
    """Pairs of edges of a closed polygon that touch or cross.

    Edge ``i`` runs from vertex ``i`` to vertex ``i + 1`` (mod n) after consecutive
    repeated vertices are dropped.  Non-adjacent edges count when the closed segments
    share any point; adjacent edges when they fold back onto each other (collinear,
    opposite directions).  Candidate pairs come from a sort on the edges' x-ranges,
    then an exact orientation test, so the cost is about ``n log n`` plus the pairs
    whose x-ranges overlap.

    Parameters
    ----------
    points_xy : ndarray of shape (n, 2), float64
        Polygon vertices (mm), implicitly closed.

    Returns
    -------
    ndarray of shape (m, 2), int64
        Edge index pairs ``(i, j)``, ``i < j``; empty for a simple polygon.
    """
    p = _clean(points_xy)
    n = len(p)
    empty = np.zeros((0, 2), np.int64)
    if n < 3:
        return empty
    a, b = p, np.roll(p, -1, axis=0)
    # Adjacent edges (i, i+1) fold back when collinear and reversed.
    c = np.roll(p, -2, axis=0)
    fold = (_orient(a, b, c) == 0) & (np.einsum("ij,ij->i", b - a, c - b) < 0)
    adj = np.column_stack([np.arange(n), (np.arange(n) + 1) % n])[fold]
    xmin, xmax = np.minimum(a[:, 0], b[:, 0]), np.maximum(a[:, 0], b[:, 0])
    order = np.argsort(xmin, kind="stable")
    xs = xmin[order]
    stop = np.searchsorted(xs, xmax[order], side="right")
    count = np.maximum(stop - np.arange(n) - 1, 0)
    first = np.repeat(np.arange(n), count)
    second = first + 1 + (np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count))
    i, j = order[first], order[second]
    ymin, ymax = np.minimum(a[:, 1], b[:, 1]), np.maximum(a[:, 1], b[:, 1])
    diff = np.abs(i - j)
    ok = (ymin[i] <= ymax[j]) & (ymin[j] <= ymax[i]) & (diff != 1) & (diff != n - 1)
    i, j = i[ok], j[ok]
    p1, p2, q1, q2 = a[i], b[i], a[j], b[j]
    o1, o2, o3, o4 = _orient(p1, p2, q1), _orient(p1, p2, q2), _orient(q1, q2, p1), \
        _orient(q1, q2, p2)
    hit = ((o1 * o2 < 0) & (o3 * o4 < 0)) \
        | ((o1 == 0) & _on_segment(p1, p2, q1)) | ((o2 == 0) & _on_segment(p1, p2, q2)) \
        | ((o3 == 0) & _on_segment(q1, q2, p1)) | ((o4 == 0) & _on_segment(q1, q2, p2))
    pairs = np.concatenate([np.sort(np.column_stack([i[hit], j[hit]]), axis=1),
                            np.sort(adj, axis=1)]).astype(np.int64)
    if len(pairs) == 0:
        return empty
    return np.unique(pairs, axis=0)


# --------------------------------------------------------------------------- rules

def check_empty(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``contour.empty``: an ROI without closed contours (point ROIs excepted); a
    failure for targets and the cord, a warning for other ROIs."""
    code = "contour.empty"
    rois = _rois(ctx)
    if ctx.case.structure_set is None:
        return _no_ss(code, params)
    out = []
    for roi in rois:
        if roi.is_empty and not roi.has_points_only:
            role = ctx.roles.of(roi.name).role
            status = Status.FAIL if role in _ESSENTIAL else Status.WARN
            out.append(_f(code, status, f"{roi.name} ({role.value}) has no closed contour.",
                          params, structure=roi.name))
    return _summary(code, out, len(rois), "every ROI has closed contours (or is a point ROI)",
                    params)


def check_open(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``contour.open``: open or degenerate polygons in a volume ROI: OPEN_PLANAR /
    OPEN_NONPLANAR contours, closed polygons with fewer than 3 points, non-planar ones."""
    code = "contour.open"
    if ctx.case.structure_set is None:
        return _no_ss(code, params)
    tol = float(params["planarity_tolerance_mm"])
    out = []
    for roi in _rois(ctx):
        if roi.has_points_only:
            continue
        opened = [c for c in roi.contours
                  if c.geometric_type in (ContourType.OPEN_PLANAR, ContourType.OPEN_NONPLANAR)]
        few = [c for c in roi.closed_contours if len(_clean(c.points_mm[:, :2]))
               < int(params["min_points"])]
        tilted = [c for c in roi.closed_contours if np.ptp(c.points_mm[:, 2]) > tol]
        if opened or few or tilted:
            z = sorted({round(float(c.points_mm[0, 2]), 2) for c in (*opened, *few, *tilted)})
            out.append(_f(code, Status.FAIL, (
                f"{roi.name}: {len(opened)} open contour(s), {len(few)} with fewer than "
                f"{params['min_points']} distinct points, {len(tilted)} not planar (z spread > "
                f"{tol:g} mm); planes z = {_zlist(z)} mm."), params, structure=roi.name,
                value=float(len(opened) + len(few) + len(tilted)), unit="contours"))
    return _summary(code, out, len(_rois(ctx)), "every contour is a closed planar polygon",
                    params)


def _zlist(z: list[float], n: int = 6) -> str:
    text = ", ".join(f"{v:g}" for v in z[:n])
    return text + (f" (+{len(z) - n} more)" if len(z) > n else "")


def check_self_intersection(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``contour.self_intersection``: a polygon whose edges cross or touch."""
    code = "contour.self_intersection"
    if ctx.case.structure_set is None:
        return _no_ss(code, params)
    out = []
    for roi in _rois(ctx):
        bad = [float(c.points_mm[0, 2]) for c in roi.closed_contours
               if len(self_intersections(c.points_mm[:, :2]))]
        if bad:
            out.append(_f(code, Status.FAIL, (
                f"{roi.name}: {len(bad)} self-intersecting polygon(s), planes z = "
                f"{_zlist(sorted({round(z, 2) for z in bad}))} mm: the inside is undefined "
                "there (even-odd flips)."), params, structure=roi.name, value=float(len(bad)),
                unit="contours"))
    return _summary(code, out, len(_rois(ctx)), "no polygon crosses itself", params)


def _expected_spacing(ctx: RuleContext, zs: NDArray[np.float64]) -> float:
    if ctx.case.image is not None:
        return float(ctx.case.image.slice_spacing_mm)
    return float(np.median(np.diff(zs))) if zs.size > 1 else 0.0


def _inplane_distance_mm(polys0: list[NDArray[np.float64]], polys1: list[NDArray[np.float64]]
                         ) -> float:
    """Smallest in-plane distance between the polygons' bounding boxes of two planes."""
    b0 = np.array([np.concatenate([p[:, :2].min(axis=0), p[:, :2].max(axis=0)]) for p in polys0])
    b1 = np.array([np.concatenate([p[:, :2].min(axis=0), p[:, :2].max(axis=0)]) for p in polys1])
    sep = np.maximum(np.maximum(b0[:, None, :2] - b1[None, :, 2:], b1[None, :, :2]
                                - b0[:, None, 2:]), 0.0)
    return float(np.hypot(sep[..., 0], sep[..., 1]).min())


def projected_overlap(polys0: list[NDArray[np.float64]], polys1: list[NDArray[np.float64]],
                      *, pixel_mm: float) -> float:
    """Overlap of two planes' cross-sections seen along z, as a fraction of the smaller.

    Each plane's inside is the even-odd union of its polygons, rasterised on one
    in-plane grid of ``pixel_mm``; 1 when the smaller cross-section lies wholly over
    the other, 0 when they do not overlap.

    Parameters
    ----------
    polys0, polys1 : list of ndarray of shape (N, 3), mm
        The polygons of the two planes (patient x, y, z).
    pixel_mm : float, keyword-only
        Raster pixel size (mm).
    """
    from skimage.draw import polygon as fill

    pts = np.concatenate([p[:, :2] for p in polys0 + polys1])
    lo = pts.min(axis=0) - pixel_mm
    shape = tuple(int(v) for v in np.ceil((pts.max(axis=0) + pixel_mm - lo) / pixel_mm) + 1)

    def inside(polys: list[NDArray[np.float64]]) -> NDArray[np.bool_]:
        m = np.zeros(shape, bool)
        for p in polys:
            ij = (p[:, :2] - lo) / pixel_mm
            rr, cc = fill(ij[:, 0], ij[:, 1], shape)
            m[rr, cc] ^= True
        return m

    a, b = inside(polys0), inside(polys1)
    smaller = min(int(a.sum()), int(b.sum()))
    return float((a & b).sum()) / smaller if smaller else 0.0


def check_gap(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``contour.gap``: a plane missing inside a structure's extent.

    A step between two planes wider than ``gap_factor`` slice spacings is a gap of
    one object when the cross-sections on either side overlap, seen along z, by at
    least ``min_overlap_fraction`` of the smaller (fail).  Cross-sections that do not
    overlap are separate objects: far apart (more than the step's height in-plane),
    nothing to say; closer, a warning that it may be a gap, unless the ROI's name marks
    a union of several lesions (``union_name_pattern``: ``GTV_ALL``, ``PTV 1 AND 2``),
    where the space between lesions is expected.  A small overlap (below the fraction)
    is a warning whatever the name.
    """
    code = "contour.gap"
    if ctx.case.structure_set is None:
        return _no_ss(code, params)
    min_overlap = float(params["min_overlap_fraction"])
    pixel_mm = float(params["projection_pixel_mm"])
    union_name = re.compile(str(params["union_name_pattern"]))
    out = []
    n_between_lesions = 0
    for roi in _rois(ctx):
        planes = roi.planes(normal=_Z)
        if len(planes) < 2:
            continue
        zs = np.array(list(planes))
        spacing = _expected_spacing(ctx, zs)
        if spacing <= 0:
            continue
        polys = list(planes.values())
        is_union = bool(union_name.search(roi.name))
        missing, unsure = [], []
        for k in np.nonzero(np.diff(zs) > float(params["gap_factor"]) * spacing)[0]:
            step = float(zs[k + 1] - zs[k])
            n = round(step / spacing) - 1
            where = f"{n} plane(s) between z {zs[k]:g} and {zs[k + 1]:g} mm"
            overlap = projected_overlap(polys[k], polys[k + 1], pixel_mm=pixel_mm)
            if overlap >= min_overlap:
                missing.append(f"{where} (the cross-sections either side overlap "
                               f"{100 * overlap:.0f}%: one object)")
            elif overlap > 0:
                unsure.append(f"{where} (cross-sections either side overlap only "
                              f"{100 * overlap:.0f}%)")
            elif (apart := _inplane_distance_mm(polys[k], polys[k + 1])) <= step:
                if is_union:
                    n_between_lesions += 1
                else:
                    unsure.append(f"{where} (cross-sections either side do not overlap but lie "
                                  f"{apart:.1f} mm apart in-plane: two objects, or a gap)")
        if missing:
            out.append(_f(code, Status.FAIL, f"{roi.name}: missing " + "; ".join(missing)
                          + f" (slice spacing {spacing:g} mm).", params, structure=roi.name,
                          value=float(len(missing)), unit="gaps"))
        elif unsure:
            out.append(_f(code, Status.WARN, f"{roi.name}: possibly missing " + "; ".join(unsure)
                          + f" (slice spacing {spacing:g} mm); check the planes.", params,
                          structure=roi.name, value=float(len(unsure)), unit="gaps"))
    what = "no plane missing inside any structure"
    if n_between_lesions:
        what += (f" ({n_between_lesions} step(s) between separate lesions of union ROIs "
                 "are not gaps)")
    return _summary(code, out, len(_rois(ctx)), what, params)


def _poly_key(p: NDArray[np.float64], tol: float) -> bytes:
    r = np.round(p[:, :2] / tol).astype(np.int64)
    return r[np.lexsort((r[:, 1], r[:, 0]))].tobytes()


def check_duplicate_plane(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``contour.duplicate_plane``: the same polygon twice on one plane (it cancels
    itself under the even-odd rule), or two planes closer than a slice can be."""
    code = "contour.duplicate_plane"
    if ctx.case.structure_set is None:
        return _no_ss(code, params)
    tol = float(params["point_tolerance_mm"])
    sep = float(params["min_plane_separation_mm"])
    out = []
    for roi in _rois(ctx):
        planes = roi.planes(normal=_Z)
        dups = []
        for z, polys in planes.items():
            keys = [_poly_key(p, tol) for p in polys]
            if len(set(keys)) < len(keys):
                dups.append(f"repeated polygon at z {z:g} mm")
        zs = np.array(list(planes))
        close = np.nonzero(np.diff(zs) < sep)[0] if zs.size > 1 else np.zeros(0, np.int64)
        dups += [f"planes z {zs[k]:g} and {zs[k + 1]:g} mm only {zs[k + 1] - zs[k]:.3f} mm apart"
                 for k in close]
        if dups:
            out.append(_f(code, Status.FAIL, f"{roi.name}: " + "; ".join(dups[:6])
                          + (f" (+{len(dups) - 6} more)" if len(dups) > 6 else "") + ".",
                          params, structure=roi.name, value=float(len(dups))))
    return _summary(code, out, len(_rois(ctx)), "no duplicated polygon or plane", params)


def check_not_on_slice(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``contour.not_on_slice``: contour planes that are not CT slice positions."""
    code = "contour.not_on_slice"
    if ctx.case.structure_set is None:
        return _no_ss(code, params)
    if ctx.case.image is None:
        return [_f(code, Status.NOT_EVALUATED, "Not evaluated: no CT image series.", params)]
    geo = ctx.case.image.geometry
    tol = float(params["tolerance_mm"])
    out = []
    for roi in _rois(ctx):
        pts = [c.points_mm[0] for c in roi.closed_contours]
        if not pts:
            continue
        k = geo.patient_to_index(np.array(pts))[:, 0]
        off = np.abs(k - np.rint(k)) * float(geo.spacing_mm[2])
        bad = off > tol
        if bad.any():
            z = sorted({round(float(p[2]), 3) for p, b in zip(pts, bad, strict=True) if b})
            out.append(_f(code, Status.FAIL, (
                f"{roi.name}: {int(bad.sum())} contour(s) on {len(z)} plane(s) between CT "
                f"slices (up to {off.max():.2f} mm off), z = {_zlist(z)} mm."), params,
                structure=roi.name, value=round(float(off.max()), 3), limit=tol, unit="mm"))
    return _summary(code, out, len(_rois(ctx)), "every contour lies on a CT slice", params)


def _roi_grid(ctx: RuleContext, roi: ROI, max_voxels: int) -> VolumeGeometry | None:
    """A grid around ``roi``: the cropped CT grid, or one built from its contours
    (pixel coarsened so that it holds at most ``max_voxels``)."""
    pts = np.concatenate([c.points_mm for c in roi.closed_contours])
    if ctx.case.image is not None:
        geo = ctx.case.image.geometry
        idx = geo.patient_to_index(pts)
        lo = np.floor(idx.min(axis=0)).astype(int) - 1
        hi = np.ceil(idx.max(axis=0)).astype(int) + 2
        return crop_geometry(geo, (int(lo[0]), int(lo[1]), int(lo[2])),
                             (int(hi[0]), int(hi[1]), int(hi[2])))
    zs = np.unique(np.round(pts[:, 2], 3))
    dz = float(np.median(np.diff(zs))) if zs.size > 1 else 1.0
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    n_z = round((hi[2] - lo[2]) / dz) + 1
    area = float(np.prod(hi[:2] - lo[:2] + 2.0))
    px = max(float(ctx.data("margins", "measure")["grid_pixel_mm"]),
             float(np.sqrt(area * n_z / max_voxels)))
    shape = (n_z, int(np.ceil((hi[1] - lo[1]) / px)) + 3, int(np.ceil((hi[0] - lo[0]) / px)) + 3)
    return VolumeGeometry(shape=shape, origin_mm=lo - np.array([px, px, 0.0]),
                          spacing_mm=np.array([px, px, dz]))


def check_stray_island(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``contour.stray_island``: small disconnected 3-D components of a structure
    (smaller than ``max_island_cc`` and ``max_island_fraction`` of the largest)."""
    code = "contour.stray_island"
    if ctx.case.structure_set is None:
        return _no_ss(code, params)
    out = []
    n_checked = 0
    for roi in _rois(ctx):
        if roi.is_empty:
            continue
        geo = _roi_grid(ctx, roi, int(params["max_voxels"]))
        if geo is None:
            continue
        mask = roi_mask(roi, geo)
        n_checked += 1
        lab, n = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
        if n < 2:
            continue
        sizes = np.bincount(lab.ravel())[1:] * geo.voxel_volume_cc
        small = (sizes < float(params["max_island_cc"])) & \
            (sizes < float(params["max_island_fraction"]) * sizes.max())
        if small.any():
            where = []
            for lbl in (np.nonzero(small)[0] + 1)[:5]:
                c = geo.index_to_patient(np.argwhere(lab == lbl).mean(axis=0))
                where.append(f"({c[0]:.0f}, {c[1]:.0f}, {c[2]:.0f}) mm")
            out.append(_f(code, Status.WARN, (
                f"{roi.name}: {int(small.sum())} small disconnected component(s) of "
                f"{n} ({', '.join(f'{s:.3f}' for s in sizes[small][:5])} cc) at "
                f"{', '.join(where)}: stray contour(s)?"), params, structure=roi.name,
                value=round(float(sizes[small].sum()), 4), limit=float(params["max_island_cc"]),
                unit="cc"))
    return _summary(code, out, n_checked, "no small disconnected component", params)


def check_off_image(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``contour.off_image``: contour points outside the CT volume (fail) or structure
    volume outside the BODY (warning)."""
    code = "contour.off_image"
    if ctx.case.structure_set is None:
        return _no_ss(code, params)
    out = []
    body = next((r for r in ctx.rois(Role.BODY)), None)
    notes = []
    if ctx.case.image is None:
        notes.append("no CT: only the BODY test was made")
    for roi in _rois(ctx):
        if roi.is_empty:
            continue
        pts = np.concatenate([c.points_mm for c in roi.closed_contours])
        if ctx.case.image is not None:
            inside = ctx.case.image.geometry.contains(
                pts, tol_voxels=float(params["tolerance_voxels"]))
            if not inside.all():
                out.append(_f(code, Status.FAIL, (
                    f"{roi.name}: {int((~inside).sum())} of {len(pts)} contour points lie "
                    "outside the CT volume."), params, structure=roi.name,
                    value=round(float((~inside).mean()) * 100.0, 2), unit="%"))
                continue
        if body is None or roi.number == body.number or ctx.roles.of(roi.name).role is Role.BODY:
            continue
        geo = _roi_grid(ctx, roi, int(ctx.params(STRAY_ISLAND)["max_voxels"]))
        if geo is None:
            continue
        m = roi_mask(roi, geo)
        b = roi_mask(body, geo)
        outside = m & ~b
        if float(outside.sum()) * geo.voxel_volume_cc < float(params["min_outside_body_cc"]):
            continue
        if b.any():
            outside &= ndimage.distance_transform_edt(
                ~b, sampling=tuple(geo.spacing_mm[::-1])) > float(params["body_tolerance_mm"])
        cc = float(outside.sum()) * geo.voxel_volume_cc
        if cc >= float(params["min_outside_body_cc"]):
            out.append(_f(code, Status.WARN, f"{roi.name}: {cc:.3f} cc outside {body.name}.",
                          params, structure=roi.name, value=round(cc, 4),
                          limit=float(params["min_outside_body_cc"]), unit="cc"))
    if body is None:
        notes.append("no BODY ROI: the outside-body test was not made")
    if out:
        return out
    what = "every structure lies inside the CT" + (" and the BODY" if body is not None else "")
    return [_f(code, Status.PASS if ctx.case.image is not None or body is not None
               else Status.NOT_EVALUATED,
               f"{len(_rois(ctx))} ROI(s) checked: {what}" + (f" ({'; '.join(notes)})"
                                                              if notes else "") + ".", params)]


@cache
def _tg263_by_role() -> dict[tuple[str, str | None], str]:
    text = resources.files("contourqa.data").joinpath("tg263_roles.csv").read_text("utf-8")
    rows = csv.DictReader([ln for ln in text.splitlines() if ln and not ln.startswith("#")])
    out: dict[tuple[str, str | None], str] = {}
    for r in rows:
        if not r["level"]:
            out.setdefault((r["role"], r["side"] or None), r["tg263_primary"])
    return out


_TARGET_RE = re.compile(r"^(GTV|CTV|ITV|IGTV|ICTV|PTV!?)(n|p|sb|par|v|vas)?\d?(_(CT|PT|MR|SP)\d)?"
                        r"(_[A-Za-z0-9]+)*(x\d+)?(-\d+)?(\^.*)?$")
_TARGET_MAX_CHARS = 16


def suggested_name(name: str, ctx: RuleContext) -> tuple[bool, str | None]:
    """(compliant, suggestion) for one ROI name against TG-263 (case-insensitive).

    Targets follow TG-263's target grammar (knowledge base 8); other names must be a
    TG-263 primary name; the suggestion is the primary name of the ROI's role (and
    side), ``SpinalCord_PRVxx`` with the PRV margin from the name.
    """
    a = ctx.roles.of(name)
    if name.lower().startswith("z"):
        return True, None
    if a.role.is_target:
        ok = bool(_TARGET_RE.match(name)) and len(name) <= _TARGET_MAX_CHARS and " " not in name
        base = {"gtv": "GTV", "ctv": "CTV", "itv": "ITV", "ptv": "PTV"}[a.role.value]
        return ok, None if ok else base + (f"_{a.dose_gy * 100:04.0f}" if a.dose_gy else "")
    if a.tg263_name is not None:
        primary = a.tg263_name
        if "PRVxx" in primary:
            primary = primary.replace("xx", f"{a.margin_mm:02.0f}") \
                if a.margin_mm is not None and float(a.margin_mm).is_integer() else "SpinalCord_PRV"
            return name.lower() == primary.lower() or name.lower().startswith(
                a.tg263_name.replace("xx", "").lower()), primary
        return name.lower() == primary.lower(), primary
    if a.role is Role.CORD_PRV:
        m = a.margin_mm
        return False, f"SpinalCord_PRV{m:02.0f}" if m is not None and float(m).is_integer() \
            else "SpinalCord_PRV"
    if a.role in (Role.OTHER, Role.UNKNOWN):
        return False, None
    return False, _tg263_by_role().get((a.role.value, a.side))


def check_name(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``contour.name``: ROI names against TG-263, with the suggested standard name."""
    code = "contour.name"
    if ctx.case.structure_set is None:
        return _no_ss(code, params)
    out = []
    for roi in _rois(ctx):
        ok, suggestion = suggested_name(roi.name, ctx)
        if not ok:
            hint = f"; suggested: {suggestion}" if suggestion else "; no TG-263 name known for it"
            out.append(_f(code, Status.WARN, f"{roi.name!r} is not a TG-263 name{hint}.", params,
                          structure=roi.name))
    return _summary(code, out, len(_rois(ctx)), "every name follows TG-263", params)


_SRC = "knowledge base 8 (TG-263); contourqa physics-review checks (D)"
EMPTY = Rule(code="contour.empty", name="Empty ROI", citation=_SRC, severity=Status.FAIL,
             rule_set="integrity", check=check_empty, modes=_BOTH)
OPEN = Rule(code="contour.open", name="Open or degenerate contour",
            citation="DICOM PS3.3 C.8.8.6; " + _SRC, severity=Status.FAIL, rule_set="integrity",
            check=check_open, modes=_BOTH)
SELF_INTERSECTION = Rule(code="contour.self_intersection", name="Self-intersecting polygon",
                         citation=_SRC, severity=Status.FAIL, rule_set="integrity",
                         check=check_self_intersection, modes=_BOTH)
GAP = Rule(code="contour.gap", name="Missing plane", citation=_SRC, severity=Status.FAIL,
           rule_set="integrity", check=check_gap, modes=_BOTH)
DUPLICATE = Rule(code="contour.duplicate_plane", name="Duplicated polygon or plane", citation=_SRC,
                 severity=Status.FAIL, rule_set="integrity", check=check_duplicate_plane,
                 modes=_BOTH)
NOT_ON_SLICE = Rule(code="contour.not_on_slice", name="Contour between CT slices",
                    citation="DICOM PS3.3 C.8.8.6.1; " + _SRC, severity=Status.FAIL,
                    rule_set="integrity", check=check_not_on_slice, modes=_BOTH)
OFF_IMAGE = Rule(code="contour.off_image", name="Contour outside the CT or BODY", citation=_SRC,
                 severity=Status.FAIL, rule_set="integrity", check=check_off_image, modes=_BOTH)
STRAY_ISLAND = Rule(code="contour.stray_island", name="Stray island", citation=_SRC,
                    severity=Status.WARN, rule_set="integrity", check=check_stray_island,
                    modes=_BOTH)
NAME = Rule(code="contour.name", name="TG-263 name", citation="AAPM TG-263, knowledge base 8",
            severity=Status.WARN, rule_set="integrity", check=check_name, modes=_BOTH)

#: Contour integrity rules, in report order.
INTEGRITY_RULES: tuple[Rule, ...] = (EMPTY, OPEN, SELF_INTERSECTION, GAP, DUPLICATE, NOT_ON_SLICE,
                                     OFF_IMAGE, STRAY_ISLAND, NAME)
