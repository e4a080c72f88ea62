"""Plan quality of a spine SBRT plan: Paddick conformity and gradient indices, R50%,
the maximum dose 2 cm from the PTV, the dose fall-off across the cord-PTV gap, where
the hot spot lies, and PTV coverage outside the cord PRV.

No quantity here has a published spine SBRT threshold (``rules/data/plan_quality.toml``
gives each definition and citation): each is reported with its value and, where the
DVH model gives one, its uncertainty band; none is judged.

Isodose volumes (PIV, PIV50) and the PTV volumes come from the DVH engine (same slab
model, trilinear dose interpolation and uncertainty band as the DVH section): PIV is the
body ROI's volume receiving the prescription.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import cKDTree

from contourqa.dvh import DVHMetric, compute_dvhs_with_bands
from contourqa.geometry import VolumeGeometry
from contourqa.io.rtdose import DoseGrid
from contourqa.io.rtstruct import ROI
from contourqa.masks import roi_mask

__all__ = [
    "GapFalloff", "HotSpot", "PlanQuality", "Quantity", "conformity_and_gradient",
    "cell_corner_range_gy", "contour_surface_points", "cord_gap_falloff", "coverage_excluding", "dose_at_points_gy",
    "dose_beyond_distance", "hot_spot", "plan_quality_of_rois",
]


@dataclass(frozen=True)
class Quantity:
    """One reported plan-quality value.

    Attributes
    ----------
    code : str
        Rule code (``plan.conformity``).
    name : str
        ``"Paddick CI"``, ``"GI"``, ...
    value : float or None
        None when it could not be computed (``reason`` says why).
    unit : str
        ``""`` for a ratio, ``"Gy"``, ``"Gy/mm"``, ``"%"``, ``"mm"``.
    band : tuple of float or None
        (low, high) from the DVH uncertainty band (or the stated geometric band).
    reason : str or None
        Why ``value`` is None.
    """

    code: str
    name: str
    value: float | None
    unit: str = ""
    band: tuple[float, float] | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "value": self.value, "unit": self.unit,
                "band": list(self.band) if self.band is not None else None,
                "evaluated": False, "reason": self.reason}


@dataclass(frozen=True)
class GapFalloff:
    """Dose fall-off along the shortest segment from the PTV to the cord.

    Attributes
    ----------
    gap_mm : float
        Length of the segment (0 when the PTV touches or overlaps the cord).
    ptv_point_mm, cord_point_mm : tuple of float
        Its ends (LPS, mm).
    ptv_dose_gy, cord_dose_gy : float
        Trilinear dose at the ends, Gy.
    gradient_gy_per_mm : float or None
        ``(ptv_dose - cord_dose) / gap``; None for a gap under ``min_gap_mm``.
    """

    gap_mm: float
    ptv_point_mm: tuple[float, float, float]
    cord_point_mm: tuple[float, float, float]
    ptv_dose_gy: float
    cord_dose_gy: float
    gradient_gy_per_mm: float | None


@dataclass(frozen=True)
class HotSpot:
    """Where the dose maximum lies.

    Attributes
    ----------
    dose_gy : float
    point_mm : tuple of float
        Grid node of the maximum (LPS, mm).
    location : str
        ``spinal cord``, ``epidural space next to the cord``, ``GTV``, ``PTV rim``
        or ``outside the PTV``.
    """

    dose_gy: float
    point_mm: tuple[float, float, float]
    location: str


@dataclass(frozen=True)
class PlanQuality:
    """Plan-quality section of one case."""

    quantities: tuple[Quantity, ...] = ()
    falloff: GapFalloff | None = None
    hot_spot: HotSpot | None = None
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        f, h = self.falloff, self.hot_spot
        return {
            "quantities": [q.to_json() for q in self.quantities],
            "cord_gap": None if f is None else {
                "gap_mm": f.gap_mm, "ptv_point_mm": list(f.ptv_point_mm),
                "cord_point_mm": list(f.cord_point_mm), "ptv_dose_gy": f.ptv_dose_gy,
                "cord_dose_gy": f.cord_dose_gy, "gradient_gy_per_mm": f.gradient_gy_per_mm},
            "hot_spot": None if h is None else {
                "dose_gy": h.dose_gy, "point_mm": list(h.point_mm), "location": h.location},
            "notes": list(self.notes),
        }


#: dose comparisons tolerate this much floating-point rounding, Gy (not a clinical value)
_ROUNDING_GY = 1e-9

# -- dose sampling ---------------------------------------------------------------------
def dose_at_points_gy(dose: DoseGrid, *, points_mm: NDArray[np.float64]) -> NDArray[np.float64]:
    """Trilinear dose (the DVH engine's interpolation) at patient points.

    Parameters
    ----------
    dose : DoseGrid
    points_mm : ndarray of shape (N, 3)
        LPS points, mm.

    Returns
    -------
    ndarray of shape (N,), Gy
        NaN outside the grid (more than half a voxel beyond its outer nodes: none).
    """
    pts = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
    kji = dose.geometry.patient_to_index(pts)
    shape = np.asarray(dose.geometry.shape)
    inside = np.all((kji >= -1e-6) & (kji <= shape - 1 + 1e-6), axis=1)
    out = np.full(len(pts), np.nan)
    if inside.any():
        out[inside] = ndimage.map_coordinates(np.asarray(dose.dose_gy, np.float64),
                                              np.clip(kji[inside], 0, shape - 1).T, order=1,
                                              mode="nearest")
    return out


def contour_surface_points(roi: ROI, *, step_mm: float = 0.5) -> NDArray[np.float64]:
    """Points along every closed contour of ``roi``, edges resampled every ``step_mm``.

    Returns
    -------
    ndarray of shape (N, 3), LPS mm
    """
    out = []
    for c in roi.closed_contours:
        p = np.asarray(c.points_mm, np.float64)
        q = np.roll(p, -1, axis=0)
        for a, b in zip(p, q):
            n = max(1, int(math.ceil(float(np.linalg.norm(b - a)) / step_mm)))
            t = np.arange(n)[:, None] / n
            out.append(a + t * (b - a))
    return np.concatenate(out) if out else np.zeros((0, 3))


# -- conformity and gradient -------------------------------------------------------------
def _volume_metric(gy: float) -> str:
    return str(DVHMetric.parse(f"V{gy:.6g}Gy"))


def conformity_and_gradient(*, ptv: ROI, body: ROI, dose: DoseGrid, prescription_gy: float,
                            isodose_fraction: float = 0.5, workers: int = 1
                            ) -> tuple[Quantity, Quantity, Quantity]:
    """Paddick CI, GI and R50% with their bands.

    Parameters
    ----------
    ptv, body : ROI
        Target and the body (external) ROI bounding the isodose volumes.
    dose : DoseGrid
    prescription_gy : float
        Prescription isodose, Gy.
    isodose_fraction : float
        The low isodose of GI and R50% (0.5: half the prescription).
    workers : int
        As in :func:`contourqa.dvh.compute_dvhs`.

    Returns
    -------
    tuple of Quantity
        ``CI = TV_PIV^2 / (TV PIV)``, ``GI = PIV50 / PIV``, ``R50 = PIV50 / TV``; each
        band combines the DVH bands of TV, TV_PIV, PIV and PIV50 (interval arithmetic).
    """
    low_gy = isodose_fraction * prescription_gy
    m_rx, m_lo = _volume_metric(prescription_gy), _volume_metric(low_gy)
    dvhs, bands = compute_dvhs_with_bands([ptv, body], dose, ["volume", m_rx, m_lo],
                                          workers=workers)
    p, b = dvhs[ptv.name], dvhs[body.name]
    tv, tv_piv = p.volume_cc, p.volume_at_dose_cc(prescription_gy)
    piv, piv50 = b.volume_at_dose_cc(prescription_gy), b.volume_at_dose_cc(low_gy)

    def band(name: str, metric: str, nominal: float) -> tuple[float, float]:
        lo, hi = bands[name].get(metric, (nominal, nominal))
        return min(lo, nominal), max(hi, nominal)

    tv_b, tvp_b = band(ptv.name, "volume", tv), band(ptv.name, m_rx, tv_piv)
    piv_b, p50_b = band(body.name, m_rx, piv), band(body.name, m_lo, piv50)
    pct = f"{isodose_fraction:.0%}"
    if tv <= 0 or piv <= 0:
        why = "empty PTV" if tv <= 0 else "no body volume receives the prescription"
        return (Quantity("plan.conformity", "Paddick CI", None, reason=why),
                Quantity("plan.gradient", "GI", None, reason=why),
                Quantity("plan.gradient", f"R{pct}", None, reason=why))
    ci = tv_piv ** 2 / (tv * piv)
    ci_b = (tvp_b[0] ** 2 / (tv_b[1] * piv_b[1]),
            min(1.0, tvp_b[1] ** 2 / max(tv_b[0] * piv_b[0], 1e-12)))
    gi_b = (p50_b[0] / piv_b[1], p50_b[1] / max(piv_b[0], 1e-12))
    r_b = (p50_b[0] / tv_b[1], p50_b[1] / max(tv_b[0], 1e-12))
    return (Quantity("plan.conformity", "Paddick CI", ci, band=(min(ci_b[0], ci), max(ci_b[1], ci))),
            Quantity("plan.gradient", "GI", piv50 / piv,
                     band=(min(gi_b[0], piv50 / piv), max(gi_b[1], piv50 / piv))),
            Quantity("plan.gradient", f"R{pct}", piv50 / tv,
                     band=(min(r_b[0], piv50 / tv), max(r_b[1], piv50 / tv))))


# -- dose far from the PTV ---------------------------------------------------------------
def _array_spacing(geometry: VolumeGeometry) -> NDArray[np.float64]:
    """Spacing in array (slice, row, column) order, mm."""
    return np.asarray(geometry.spacing_mm, np.float64)[::-1]


def dose_beyond_distance(*, ptv: ROI, body: ROI | None, dose: DoseGrid, distance_mm: float
                         ) -> Quantity:
    """Maximum dose at ``distance_mm`` or more from the PTV (inside the body ROI).

    Distances are those of dose-grid voxel centres to the PTV rasterised on the dose
    grid (Euclidean distance transform); the band is the same maximum at
    ``distance_mm`` -/+ half a voxel diagonal.
    """
    geom = dose.geometry
    inside = roi_mask(ptv, geom)
    if not inside.any():
        return Quantity("plan.d2cm", f"D{distance_mm / 10:g}cm", None, "Gy",
                        reason="the PTV covers no dose-grid voxel")
    dist = ndimage.distance_transform_edt(~inside, sampling=_array_spacing(geom))
    keep = roi_mask(body, geom) if body is not None else np.ones(geom.shape, bool)
    half_diag = 0.5 * float(np.linalg.norm(geom.spacing_mm))
    d = np.asarray(dose.dose_gy, np.float64)

    def max_beyond(r: float) -> float | None:
        sel = keep & (dist >= r)
        return float(d[sel].max()) if sel.any() else None

    nominal = max_beyond(distance_mm)
    if nominal is None:
        return Quantity("plan.d2cm", f"D{distance_mm / 10:g}cm", None, "Gy",
                        reason=f"no dose-grid voxel lies {distance_mm:g} mm from the PTV")
    hi = max_beyond(max(distance_mm - half_diag, 0.0)) or nominal
    lo = max_beyond(distance_mm + half_diag)
    return Quantity("plan.d2cm", f"D{distance_mm / 10:g}cm", nominal, "Gy",
                    band=(lo if lo is not None else 0.0, hi))


# -- cord-PTV gap ------------------------------------------------------------------------
def cord_gap_falloff(*, ptv: ROI, cord: ROI, dose: DoseGrid, step_mm: float = 0.5,
                     min_gap_mm: float = 0.5) -> GapFalloff | None:
    """Dose fall-off along the shortest segment between the PTV and cord surfaces.

    Parameters
    ----------
    ptv, cord : ROI
    dose : DoseGrid
    step_mm : float
        Contour edges are resampled at this step (the gap is exact to about half of it).
    min_gap_mm : float
        Below this gap (PTV touching or overlapping the cord) no gradient is given.

    Returns
    -------
    GapFalloff or None
        None when either ROI has no contour.
    """
    a, b = contour_surface_points(ptv, step_mm=step_mm), contour_surface_points(cord, step_mm=step_mm)
    if len(a) == 0 or len(b) == 0:
        return None
    dist, idx = cKDTree(b).query(a)
    i = int(np.argmin(dist))
    pa, pb = a[i], b[int(idx[i])]
    gap = float(dist[i])
    # a cord point inside the PTV means overlap: the gap is 0
    if _overlaps(ptv, cord):
        gap = 0.0
    da, db = dose_at_points_gy(dose, points_mm=np.stack([pa, pb]))
    grad = (float(da) - float(db)) / gap if gap >= min_gap_mm else None
    return GapFalloff(gap_mm=gap, ptv_point_mm=tuple(map(float, pa)),  # type: ignore[arg-type]
                      cord_point_mm=tuple(map(float, pb)),  # type: ignore[arg-type]
                      ptv_dose_gy=float(da), cord_dose_gy=float(db), gradient_gy_per_mm=grad)


def _overlaps(a: ROI, b: ROI) -> bool:
    """Whether the ROIs share area on a common contour plane (1 mm raster)."""
    pts = np.concatenate([c.points_mm for r in (a, b) for c in r.closed_contours])
    lo, hi = pts.min(axis=0) - 1, pts.max(axis=0) + 1
    zs = sorted({round(float(c.points_mm[0, 2]), 3) for c in a.closed_contours}
                & {round(float(c.points_mm[0, 2]), 3) for c in b.closed_contours})
    if not zs:
        return False
    for z in zs:
        n = np.maximum(np.ceil((hi[:2] - lo[:2]) / 0.5).astype(int), 1)
        g = VolumeGeometry(shape=(1, int(n[1]), int(n[0])), origin_mm=np.array([lo[0], lo[1], z]),
                           spacing_mm=np.array([0.5, 0.5, 1.0]))
        if (roi_mask(a, g) & roi_mask(b, g)).any():
            return True
    return False


# -- hot spot ----------------------------------------------------------------------------
def hot_spot(*, dose: DoseGrid, body: ROI | None, gtv: ROI | None, ptv: ROI | None,
             cord: ROI | None, canal: ROI | None, epidural_margin_mm: float) -> HotSpot:
    """The dose-grid maximum (inside the body ROI when given) and where it lies.

    The label is the first that holds: ``spinal cord``; ``epidural space next to the
    cord`` (inside ``canal``, outside the cord; without a canal ROI, within
    ``epidural_margin_mm`` of the cord); ``GTV``; ``PTV rim`` (PTV outside the GTV);
    ``outside the PTV``.
    """
    geom = dose.geometry
    d = np.asarray(dose.dose_gy, np.float64)
    if body is not None:
        keep = roi_mask(body, geom)
        d = np.where(keep, d, -np.inf) if keep.any() else d
    k = np.unravel_index(int(np.argmax(d)), d.shape)
    point = geom.index_to_patient(np.asarray(k, np.float64))

    def inside(roi: ROI | None) -> bool:
        return roi is not None and bool(roi_mask(roi, geom)[k])

    if inside(cord):
        where = "spinal cord"
    elif canal is not None and inside(canal):
        where = "epidural space next to the cord"
    elif canal is None and cord is not None and len(pts := contour_surface_points(cord)) and \
            float(cKDTree(pts).query(point)[0]) <= epidural_margin_mm:
        where = "epidural space next to the cord"
    elif inside(gtv):
        where = "GTV"
    elif inside(ptv):
        where = "PTV rim" if gtv is not None else "PTV (no GTV ROI)"
    else:
        where = "outside the PTV"
    return HotSpot(dose_gy=float(np.asarray(dose.dose_gy)[k]),
                   point_mm=tuple(map(float, point)), location=where)  # type: ignore[arg-type]


# -- coverage outside the cord PRV ---------------------------------------------------------
def coverage_excluding(*, ptv: ROI, exclude: ROI, dose: DoseGrid, prescription_gy: float,
                       grid_mm: float) -> Quantity:
    """Share (%) of the PTV outside ``exclude`` receiving at least the prescription.

    Voxels of in-plane spacing ``grid_mm`` on the PTV's contour planes (each plane
    equally weighted), dose trilinearly interpolated at their centres.
    The band counts, instead of the trilinear dose, the lowest and the highest node
    dose of each voxel's dose-grid cell.
    """
    pts = np.concatenate([c.points_mm for c in ptv.closed_contours])
    lo, hi = pts[:, :2].min(axis=0) - grid_mm, pts[:, :2].max(axis=0) + grid_mm
    zs = np.array(sorted({round(float(c.points_mm[0, 2]), 4) for c in ptv.closed_contours}))
    n = np.maximum(np.ceil((hi - lo) / grid_mm).astype(int), 1)
    dz = float(np.median(np.diff(zs))) if len(zs) > 1 else 1.0
    doses: list[NDArray[np.float64]] = []
    lows: list[NDArray[np.float64]] = []
    highs: list[NDArray[np.float64]] = []
    for z in zs:
        # voxel centres half a step off the grid's corner: not on round-number edges
        g = VolumeGeometry(shape=(1, int(n[1]), int(n[0])),
                           origin_mm=np.array([lo[0] + grid_mm / 2, lo[1] + grid_mm / 2, z]),
                           spacing_mm=np.array([grid_mm, grid_mm, dz]))
        sel = roi_mask(ptv, g) & ~roi_mask(exclude, g)
        if not sel.any():
            continue
        pts_mm = g.index_to_patient(np.argwhere(sel).astype(np.float64))
        doses.append(np.nan_to_num(dose_at_points_gy(dose, points_mm=pts_mm), nan=0.0))
        cmin, cmax = cell_corner_range_gy(dose, points_mm=pts_mm)
        lows.append(cmin)
        highs.append(cmax)
    if not doses:
        return Quantity("plan.coverage_ex_prv", f"PTV outside {exclude.name} V100%", None, "%",
                        reason=f"the PTV lies entirely inside {exclude.name}")
    allv, total = np.concatenate(doses), float(sum(len(d) for d in doses))
    # interpolation rounding (a flat 14.0 Gy region interpolates to 13.999...)
    rx = prescription_gy - _ROUNDING_GY
    # any dose interpolated inside a grid cell lies between its corner nodes' doses
    lo_c = float((np.concatenate(lows) >= rx).sum())
    hi_c = float((np.concatenate(highs) >= rx).sum())
    return Quantity("plan.coverage_ex_prv", f"PTV outside {exclude.name} V100%",
                    100 * float((allv >= rx).sum()) / total, "%",
                    band=(100 * lo_c / total, 100 * hi_c / total))


def cell_corner_range_gy(dose: DoseGrid, *, points_mm: NDArray[np.float64]
                         ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Lowest and highest node dose of the grid cell holding each point, Gy (0 outside
    the grid): the range any interpolation inside the cell can give."""
    kji = dose.geometry.patient_to_index(np.asarray(points_mm, np.float64).reshape(-1, 3))
    shape = np.asarray(dose.geometry.shape)
    d = np.asarray(dose.dose_gy, np.float64)
    inside = np.all((kji >= -1e-6) & (kji <= shape - 1 + 1e-6), axis=1)
    base = np.clip(np.floor(kji).astype(int), 0, np.maximum(shape - 2, 0))
    lo = np.full(len(kji), np.inf)
    hi = np.full(len(kji), -np.inf)
    for off in np.ndindex(2, 2, 2):
        idx = np.minimum(base + np.asarray(off), shape - 1)
        v = d[idx[:, 0], idx[:, 1], idx[:, 2]]
        lo, hi = np.minimum(lo, v), np.maximum(hi, v)
    return np.where(inside, lo, 0.0), np.where(inside, hi, 0.0)


def plan_quality_of_rois(*, dose: DoseGrid, prescription_gy: float | None, ptv: ROI | None,
                         body: ROI | None, gtv: ROI | None, cord: ROI | None,
                         cord_prv: ROI | None, canal: ROI | None, params: dict[str, Any],
                         workers: int = 1) -> PlanQuality:
    """Every plan-quality quantity from the ROIs of each role.

    Parameters
    ----------
    params : dict
        The ``plan_quality`` rule data (``rules/data/plan_quality.toml``): rule code ->
        table (``isodose_fraction``, ``distance_mm``, ``epidural_margin_mm``, ``grid_mm``).
    """
    qs: list[Quantity] = []
    notes: list[str] = []
    if ptv is None:
        return PlanQuality(notes=("no PTV ROI: plan quality not computed",))
    if prescription_gy is None or prescription_gy <= 0:
        notes.append("no prescription: CI, GI, R50% and coverage not computed")
    elif body is None:
        notes.append("no body ROI: the isodose volumes (CI, GI, R50%) need one")
        qs += [Quantity("plan.conformity", "Paddick CI", None, reason="no body ROI"),
               Quantity("plan.gradient", "GI", None, reason="no body ROI")]
    else:
        qs += list(conformity_and_gradient(
            ptv=ptv, body=body, dose=dose, prescription_gy=prescription_gy,
            isodose_fraction=float(params["plan.gradient"]["isodose_fraction"]), workers=workers))
    qs.append(dose_beyond_distance(ptv=ptv, body=body, dose=dose,
                                   distance_mm=float(params["plan.d2cm"]["distance_mm"])))
    falloff = cord_gap_falloff(ptv=ptv, cord=cord, dose=dose) if cord is not None else None
    if cord is None:
        notes.append("no spinal cord ROI: no cord-PTV fall-off")
    elif falloff is not None:
        qs.append(Quantity("plan.cord_falloff", "cord-PTV fall-off", falloff.gradient_gy_per_mm,
                           "Gy/mm", reason=None if falloff.gradient_gy_per_mm is not None
                           else f"PTV-cord gap {falloff.gap_mm:.1f} mm: too small for a gradient"))
    spot = hot_spot(dose=dose, body=body, gtv=gtv, ptv=ptv, cord=cord, canal=canal,
                    epidural_margin_mm=float(params["plan.hot_spot"]["epidural_margin_mm"]))
    if cord_prv is not None and prescription_gy is not None and prescription_gy > 0:
        qs.append(coverage_excluding(ptv=ptv, exclude=cord_prv, dose=dose,
                                     prescription_gy=prescription_gy,
                                     grid_mm=float(params["plan.coverage_ex_prv"]["grid_mm"])))
    elif cord_prv is None:
        notes.append("no cord PRV ROI: coverage outside the PRV not computed")
    return PlanQuality(quantities=tuple(qs), falloff=falloff, hot_spot=spot, notes=tuple(notes))
