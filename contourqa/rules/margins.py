"""Margin rules (CTV-to-PTV, cord PRV, PTV cut-back; explicit list :data:`MARGIN_RULES`,
thresholds in ``contourqa/rules/data/margins.toml``) and the distance measurement they
use: margins of a PTV around a CTV, of a PRV around the cord.

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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from contourqa.findings import Finding, Status
from contourqa.geometry import VolumeGeometry
from contourqa.io.rtstruct import ROI
from contourqa.masks import polygon_rows
from contourqa.rules.common import finding, not_evaluated, outside, target_pairs
from contourqa.rules.context import RuleContext
from contourqa.rules.model import Mode, Rule
from contourqa.structures import Role

__all__ = ["MARGIN_RULES", "MarginStats", "SurfaceDistances", "surface_distances"]

_BOTH = frozenset({Mode.UPFRONT, Mode.POSTOP})

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


# --------------------------------------------------------------------------- PTV and PRV

def _cord_avoidance(ctx: RuleContext) -> ROI | None:
    prv, _ = ctx.roi(Role.CORD_PRV)
    if prv is not None:
        return prv
    cord, _ = ctx.roi(Role.SPINAL_CORD)
    return cord


def _avoidance(ctx: RuleContext) -> list[ROI]:
    """The structures a PTV may be cut back at: the cord avoidance structure (cord PRV,
    else cord), then the critical OARs of ``[ptv.ctv_not_covered] cutback_roles``
    (cauda equina, oesophagus, bowel, skin, ...) and their PRVs."""
    out = []
    cord = _cord_avoidance(ctx)
    if cord is not None:
        out.append(cord)
    roles = ctx.params(PTV_COVERS)["cutback_roles"]
    for name in roles:
        for roi in ctx.rois(Role(str(name))):
            if all(roi.number != o.number for o in out):
                out.append(roi)
    return out


def _cutback(ctx: RuleContext, ctv: ROI, ptv: ROI, zone_mm: float, tol_mm: float
             ) -> tuple[dict[str, float], float]:
    """({avoidance structure: cc of CTV outside the PTV within ``zone_mm`` of it},
    cc of CTV outside the PTV beyond ``tol_mm`` away from every such structure)."""
    key = ("cutback", ctv.number, ptv.number, zone_mm, tol_mm)
    if key not in ctx.memo:
        _, _, far = outside(ctx, ctv, ptv, tol_mm)
        out_all = ctx.mask(ctv) & ~ctx.mask(ptv)
        cuts: dict[str, float] = {}
        near_any = np.zeros_like(out_all)
        for avoid in _avoidance(ctx):
            near = ctx.distance_mm(avoid) <= zone_mm if out_all.any() else out_all
            cuts[avoid.name] = float((out_all & near).sum()) * ctx.voxel_cc
            near_any |= near
        ctx.memo[key] = (cuts, float((far & ~near_any).sum()) * ctx.voxel_cc)
    cached: tuple[dict[str, float], float] = ctx.memo[key]
    return cached


def _pairs_or_reason(ctx: RuleContext, code: str, params: Mapping[str, Any]
                     ) -> tuple[list[tuple[ROI, ROI]], list[Finding]]:
    """The CTV-PTV pairs, and not-evaluated findings for targets in no pair."""
    pairs, lone, reason = target_pairs(ctx)
    if not pairs:
        return [], not_evaluated(code, f"Not evaluated: {reason}.", params)
    out = [finding(code, Status.NOT_EVALUATED, f"{name}: not checked (no nesting CTV or PTV "
                   "found for it).", params, structure=name) for name in lone]
    return pairs, out


def check_ptv_covers_ctv(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``ptv.ctv_not_covered``: CTV outside its PTV other than the cut-back at the cord
    and the critical OARs (each CTV-PTV pair, paired by nesting and name)."""
    code = "ptv.ctv_not_covered"
    pairs, out = _pairs_or_reason(ctx, code, params)
    limit = float(params["min_uncovered_cc"])
    zone = float(params["cutback_zone_mm"])
    for ctv, ptv in pairs:
        cuts, cc = _cutback(ctx, ctv, ptv, zone, float(params["tolerance_mm"]))
        where = "; ".join(f"{v:.3f} cc within {zone:g} mm of {k}" for k, v in cuts.items())
        where = f" (cut-back: {where}; reported by ptv.cord_cutback / ptv.oar_cutback)" \
            if cuts else ""
        out.append(finding(code, Status.FAIL if cc >= limit else Status.PASS,
                           f"{cc:.3f} cc of {ctv.name} lies outside {ptv.name} away from the cord "
                           f"and critical OARs{where}.", params, structure=ptv.name,
                           value=round(cc, 4), limit=limit, unit="cc"))
    return out


def check_cord_cutback(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``ptv.cord_cutback``: the PTV cut back at the cord (reported, not judged)."""
    code = "ptv.cord_cutback"
    pairs, out = _pairs_or_reason(ctx, code, params)
    if not pairs:
        return out
    avoid = _cord_avoidance(ctx)
    if avoid is None:
        return not_evaluated(code, "Not evaluated: no spinal cord or cord PRV ROI.", params)
    zone = float(ctx.params(PTV_COVERS)["cutback_zone_mm"])
    for ctv, ptv in pairs:
        cuts, _ = _cutback(ctx, ctv, ptv, zone, float(ctx.params(PTV_COVERS)["tolerance_mm"]))
        cut = cuts.get(avoid.name, 0.0)
        overlap = float((ctx.mask(ptv) & ctx.mask(avoid)).sum()) * ctx.voxel_cc
        out.append(finding(code, Status.PASS, (
            f"{ptv.name} is cut back at {avoid.name}: {cut:.3f} cc of {ctv.name} outside the "
            f"PTV within {zone:g} mm of it; PTV overlaps {avoid.name} by {overlap:.3f} cc."),
            params, structure=ptv.name, value=round(cut, 4), unit="cc"))
    return out


def check_oar_cutback(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``ptv.oar_cutback``: the PTV cut back at critical OARs other than the cord
    (cauda equina, oesophagus, bowel, skin; reported, not judged: KB 0.5, the PTV "may
    be reduced at critical OARs")."""
    code = "ptv.oar_cutback"
    pairs, out = _pairs_or_reason(ctx, code, params)
    if not pairs:
        return out
    cord = _cord_avoidance(ctx)
    zone = float(ctx.params(PTV_COVERS)["cutback_zone_mm"])
    for ctv, ptv in pairs:
        cuts, _ = _cutback(ctx, ctv, ptv, zone, float(ctx.params(PTV_COVERS)["tolerance_mm"]))
        others = {k: v for k, v in cuts.items() if cord is None or k != cord.name}
        cut = {k: v for k, v in others.items() if v > 0}
        text = ("; ".join(f"{v:.3f} cc of {ctv.name} outside the PTV within {zone:g} mm of {k}"
                          for k, v in cut.items()) if cut else
                f"no cut-back at {', '.join(others) or 'a critical OAR (none contoured)'}")
        out.append(finding(code, Status.PASS, f"{ptv.name}: {text}.", params,
                           structure=ptv.name, value=round(sum(cut.values()), 4), unit="cc"))
    return out


def _margin_limits(ctx: RuleContext, params: Mapping[str, Any]) -> tuple[float, Status, str]:
    key = "postop" if ctx.mode is Mode.POSTOP else "upfront"
    status = Status(str(params[f"{key}_outside_range"]))
    return float(params[f"{key}_max_mm"]), status, str(params[f"{key}_source"])


def check_ptv_margin(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``ptv.margin``: CTV-to-PTV margin (min, mean, max) from every PTV vertex of each
    CTV-PTV pair, the cut-back at the cord and at critical OARs excluded; non-uniform
    or beyond the mode's range."""
    code = "ptv.margin"
    pairs, out = _pairs_or_reason(ctx, code, params)
    for ctv, ptv in pairs:
        out += _ptv_margin(ctx, ctv, ptv, params)
    return out


def _ptv_margin(ctx: RuleContext, ctv: ROI, ptv: ROI, params: Mapping[str, Any]
                ) -> list[Finding]:
    code = "ptv.margin"
    meas = ctx.data("margins", "measure")
    px, search = float(meas["pixel_mm"]), float(meas["search_mm"])
    cap_px = int(meas["max_plane_pixels"])
    sd = surface_distances(ptv, ctv, pixel_mm=px, search_mm=search, max_plane_pixels=cap_px)
    assert sd is not None
    keep = np.isfinite(sd.distance_mm)
    avoids = _avoidance(ctx)
    excl = float(params["cutback_exclusion_mm"])
    for avoid in avoids:
        to_avoid = surface_distances(ptv, avoid, pixel_mm=px, search_mm=search,
                                     max_plane_pixels=cap_px)
        if to_avoid is not None:
            keep &= to_avoid.distance_mm > excl
    ax = sd.distance_mm[keep & sd.axial]
    stats = MarginStats.of(ax)
    if stats is None:
        return not_evaluated(code, f"Not evaluated: no {ptv.name} vertex on a plane of "
                             f"{ctv.name} away "
                   "from the cord.", params, structure=ptv.name)
    cap = MarginStats.of(sd.distance_mm[keep & ~sd.axial])
    margin = float(np.median(ax))
    max_mm, outside_status, src = _margin_limits(ctx, params)
    uni = float(params["uniformity_tolerance_mm"])
    dev = float(params["deviation_tolerance_mm"])
    spread = stats.p95_mm - stats.p05_mm
    off = keep & sd.axial & (np.abs(sd.distance_mm - margin) > uni / 2)
    where = sd.directions(off)
    text = (f"{ctv.name} -> {ptv.name} axial margin {stats.text()}, median {margin:.2f} mm"
            + (f"; cranio-caudal {cap.min_mm:.1f}-{cap.max_mm:.1f} mm (+/- "
               f"{sd.plane_spacing_mm / 2:.2f} mm: plane spacing)" if cap else "")
            + (f"; vertices within {excl:g} mm of {', '.join(a.name for a in avoids)} "
               "(cut-back) excluded" if avoids else "") + ".")
    problems = []
    status = Status.PASS
    if spread > uni:
        status = Status.FAIL
        problems.append(f"not uniform: 5-95 % spread {spread:.1f} mm > {uni:g} mm"
                        + (f", deviating {', '.join(where)}" if where else ""))
    if margin > max_mm + dev:
        problems.append(f"beyond the {ctx.mode.value} range 0-{max_mm:g} mm ({src})")
        if status is Status.PASS:
            status = outside_status
    msg = text + (" " + "; ".join(problems).capitalize() + "." if problems else
                  f" Uniform and within 0-{max_mm:g} mm ({src}).")
    return [finding(code, status, msg, params, structure=ptv.name, value=round(margin, 2),
               limit=max_mm, unit="mm")]


def check_prv_margin(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``cord.prv_margin``: each cord PRV is a uniform expansion of the cord, by the
    margin its name states, within 0-2 mm."""
    code = "cord.prv_margin"
    cord, note = ctx.roi(Role.SPINAL_CORD)
    prvs = ctx.rois(Role.CORD_PRV)
    if not prvs:
        return not_evaluated(code, "Not evaluated: no cord PRV ROI.", params)
    if cord is None:
        return not_evaluated(code, f"Not evaluated: {note}.", params)
    meas = ctx.data("margins", "measure")
    uni = float(params["uniformity_tolerance_mm"])
    lo, hi = float(params["min_mm"]), float(params["max_mm"])
    key = "postop" if ctx.mode is Mode.POSTOP else "upfront"
    outside_status = Status(str(params[f"{key}_outside_range"]))
    out = []
    for prv in prvs:
        sd = surface_distances(prv, cord, pixel_mm=float(meas["pixel_mm"]),
                               search_mm=float(meas["search_mm"]),
                               max_plane_pixels=int(meas["max_plane_pixels"]))
        assert sd is not None
        ok = np.isfinite(sd.distance_mm) & sd.axial
        stats = MarginStats.of(sd.distance_mm[ok])
        if stats is None:
            out += not_evaluated(code, f"Not evaluated: {prv.name} has no plane within "
                                 f"{cord.name}'s "
                       "extent.", params, structure=prv.name)
            continue
        margin = float(np.median(sd.distance_mm[ok]))
        spread = stats.p95_mm - stats.p05_mm
        problems = []
        status = Status.PASS
        if spread > uni:
            status = Status.FAIL
            off = ok & (np.abs(sd.distance_mm - margin) > uni / 2)
            problems.append(f"not uniform: 5-95 % spread {spread:.1f} mm > {uni:g} mm, "
                            f"deviating {', '.join(sd.directions(off))}")
        declared = ctx.roles.of(prv.name).margin_mm
        if declared is not None and abs(declared - margin) > float(params["name_tolerance_mm"]):
            status = Status.FAIL
            problems.append(f"the name states {declared:g} mm")
        if not lo - float(params["name_tolerance_mm"]) <= margin <= hi + \
                float(params["name_tolerance_mm"]):
            problems.append(f"outside the {lo:g}-{hi:g} mm of Redmond 2017 (PO-07)")
            if status is Status.PASS:
                status = outside_status
        msg = f"{cord.name} -> {prv.name} margin {stats.text()}, median {margin:.2f} mm"
        msg += ("; " + "; ".join(problems) + "." if problems else
                ": uniform" + (f", as named ({declared:g} mm)" if declared is not None else "")
                + ".")
        out.append(finding(code, status, msg, params, structure=prv.name, value=round(margin, 2),
                      limit=declared if declared is not None else hi, unit="mm"))
    return out


# --------------------------------------------------------------------------- the list

_REDMOND = "Redmond et al. 2017, knowledge base 0.5, 2"

PTV_COVERS = Rule(code="ptv.ctv_not_covered", name="CTV outside the PTV",
                  citation=f"{_REDMOND} (PTV includes GTV and CTV); ISRC-P2 (KB 1c, U)",
                  severity=Status.FAIL, rule_set="margins", check=check_ptv_covers_ctv,
                  modes=_BOTH)
CORD_CUTBACK = Rule(code="ptv.cord_cutback", name="PTV cut back at the cord",
                    citation=f"{_REDMOND} (modified PTV at the cord)", severity=Status.PASS,
                    rule_set="margins", check=check_cord_cutback, modes=_BOTH, spine_only=True)
OAR_CUTBACK = Rule(code="ptv.oar_cutback", name="PTV cut back at critical OARs",
                   citation=f"{_REDMOND} (PTV may be reduced at critical OARs)",
                   severity=Status.PASS, rule_set="margins", check=check_oar_cutback,
                   modes=_BOTH, spine_only=True)
PTV_MARGIN = Rule(code="ptv.margin", name="CTV-to-PTV margin",
                  citation=f"{_REDMOND} (PO-06 0-2 mm); Radiat Oncol 2016 practice 0-2 mm (KB 1c, "
                  "C); ISRC-P1 <= 3 mm as optional variant (U)", severity=Status.FAIL,
                  rule_set="margins", check=check_ptv_margin, modes=_BOTH, spine_only=True)
PRV_MARGIN = Rule(code="cord.prv_margin", name="Cord PRV margin",
                  citation=f"{_REDMOND} (PO-07 0-2 mm); TG-263 SpinalCord_PRVxx (KB 8)",
                  severity=Status.FAIL, rule_set="margins", check=check_prv_margin, modes=_BOTH,
                  spine_only=True)
#: PTV and PRV rules (both modes).
MARGIN_RULES: tuple[Rule, ...] = (PTV_COVERS, CORD_CUTBACK, OAR_CUTBACK, PTV_MARGIN,
                                  PRV_MARGIN)
