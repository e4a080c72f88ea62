"""Epidural geometry from contours, per vertebral level: the minimum GTV-to-cord gap,
the share of the thecal sac the GTV occupies, and a Bilsky ESCC grade ESTIMATED from
the GTV, thecal sac and cord contours.

The Bilsky grade is defined on axial T2 MRI (knowledge base section 6c); the estimate
reads its definitions geometrically with cut-offs that are this tool's, kept as data
(``rules/data/epidural.toml``, status U) and always labelled "estimated from contours".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import cKDTree

from contourqa.geometry import VolumeGeometry
from contourqa.io.rtstruct import ROI
from contourqa.masks import roi_mask
from contourqa.plan_quality import contour_surface_points

__all__ = ["BILSKY_ORDER", "EpiduralGeometry", "LevelGeometry", "SliceReading",
           "epidural_geometry_of_rois", "level_ranges"]

#: Bilsky ESCC grades, mildest first (knowledge base section 6c).
BILSKY_ORDER: tuple[str, ...] = ("0", "1a", "1b", "1c", "2", "3")


@dataclass(frozen=True)
class SliceReading:
    """One axial slice: z (mm), GTV share of the sac (%), in-plane GTV-cord gap (mm,
    0 on overlap), free sac (CSF) share (%), cord compressed, estimated grade."""

    z_mm: float
    thecal_share_percent: float
    gap_mm: float
    csf_percent: float
    cord_compressed: bool
    grade: str


@dataclass(frozen=True)
class LevelGeometry:
    """Epidural geometry of one vertebral level.

    Attributes
    ----------
    level : str or None
        ``"T10"``; None when the level is unknown (all GTV slices).
    z_range_mm : tuple of float
    gtv_cord_gap_mm : float or None
        Minimum 3-D distance between the GTV (on this level's slices) and the cord.
    thecal_share_percent : float or None
        Largest per-slice share of the thecal sac occupied by the GTV.
    bilsky_estimate : str or None
        Worst per-slice estimated grade; None when it cannot be estimated (``reason``).
    worst_slice_z_mm : float or None
    reason : str or None
    """

    level: str | None
    z_range_mm: tuple[float, float]
    gtv_cord_gap_mm: float | None
    thecal_share_percent: float | None
    bilsky_estimate: str | None
    worst_slice_z_mm: float | None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "z_range_mm": list(self.z_range_mm),
                "gtv_cord_gap_mm": self.gtv_cord_gap_mm,
                "thecal_share_percent": self.thecal_share_percent,
                "bilsky_estimate": self.bilsky_estimate,
                "bilsky_label": "estimated from contours", "worst_slice_z_mm":
                self.worst_slice_z_mm, "reason": self.reason}


@dataclass(frozen=True)
class EpiduralGeometry:
    """Per-level epidural geometry of one case."""

    levels: tuple[LevelGeometry, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def worst_bilsky(self) -> str | None:
        """The highest estimated grade over the levels (None if none estimated)."""
        grades = [lv.bilsky_estimate for lv in self.levels if lv.bilsky_estimate is not None]
        return max(grades, key=BILSKY_ORDER.index) if grades else None

    def to_json(self) -> dict[str, Any]:
        return {"levels": [lv.to_json() for lv in self.levels],
                "worst_bilsky_estimate": self.worst_bilsky, "notes": list(self.notes)}


def _planes_z(roi: ROI) -> NDArray[np.float64]:
    return np.array(sorted({round(float(c.points_mm[0, 2]), 4) for c in roi.closed_contours}))


def _polygon_area(p: NDArray[np.float64]) -> float:
    x, y = p[:, 0], p[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def level_ranges(vertebrae: Sequence[tuple[str | None, ROI]]) -> list[tuple[str | None, float, float]]:
    """``(level, z_min, z_max)`` of each vertebra ROI, inferior first (mm)."""
    out = []
    for level, roi in vertebrae:
        z = _planes_z(roi)
        if len(z):
            out.append((level, float(z.min()), float(z.max())))
    return sorted(out, key=lambda t: t[1])


def _slice_grid(rois: Sequence[ROI], z: float, grid_mm: float, dz: float) -> VolumeGeometry:
    pts = np.concatenate([c.points_mm[:, :2] for r in rois for c in r.closed_contours])
    lo, hi = pts.min(axis=0) - 2.0, pts.max(axis=0) + 2.0
    n = np.maximum(np.ceil((hi - lo) / grid_mm).astype(int), 1)
    return VolumeGeometry(shape=(1, int(n[1]), int(n[0])),
                          origin_mm=np.array([lo[0] + grid_mm / 2, lo[1] + grid_mm / 2, z]),
                          spacing_mm=np.array([grid_mm, grid_mm, dz]))


def _grade(*, touching: bool, share: float, gap: float, compressed: bool, csf: float,
           p: Mapping[str, Any]) -> str:
    if compressed:
        return "2" if csf >= float(p["csf_min_percent"]) else "3"
    if gap <= float(p["abut_mm"]):
        return "1c"
    if share >= float(p["deform_share_percent"]):
        return "1b"
    return "1a" if touching else "0"


def _read_slice(z: float, *, gtv: ROI, cord: ROI, sac: ROI, canal: ROI | None, dz: float,
                cord_median_area: float, p: Mapping[str, Any]) -> SliceReading:
    grid = float(p["grid_mm"])
    rois = [r for r in (gtv, cord, sac, canal) if r is not None]
    g = _slice_grid(rois, z, grid, dz)
    m_gtv, m_cord, m_sac = (roi_mask(r, g)[0] for r in (gtv, cord, sac))
    a_sac = float(m_sac.sum())
    share = 100.0 * float((m_gtv & m_sac).sum()) / a_sac if a_sac else 0.0
    csf = 100.0 * float((m_sac & ~m_cord & ~m_gtv).sum()) / a_sac if a_sac else 0.0
    overlap = bool((m_gtv & m_cord).any())
    if overlap:
        gap = 0.0
    elif m_gtv.any() and m_cord.any():
        # pixel-centre distance minus one pixel: the distance between the outlines
        gap = max(float(ndimage.distance_transform_edt(~m_gtv, sampling=grid)[m_cord].min())
                  - grid, 0.0)
    else:
        gap = float("inf")
    if m_gtv.any() and m_sac.any():
        to_sac = max(float(ndimage.distance_transform_edt(~m_sac, sampling=grid)[m_gtv].min())
                     - grid, 0.0)
    else:
        to_sac = float("inf")
    in_canal = canal is not None and bool((m_gtv & roi_mask(canal, g)[0] & ~m_sac).any())
    touching = to_sac <= float(p["touch_mm"]) or in_canal
    cord_area = float(m_cord.sum()) * grid * grid
    flattened = cord_median_area > 0 and m_cord.any() and \
        cord_area < float(p["compression_area_ratio"]) * cord_median_area
    compressed = overlap or (flattened and gap <= float(p["abut_mm"]))
    return SliceReading(z_mm=z, thecal_share_percent=share, gap_mm=gap, csf_percent=csf,
                        cord_compressed=compressed,
                        grade=_grade(touching=touching, share=share, gap=gap,
                                     compressed=compressed, csf=csf, p=p))


def epidural_geometry_of_rois(*, gtv: ROI | None, cord: ROI | None, sac: ROI | None,
                              canal: ROI | None, levels: Sequence[tuple[str | None, float, float]],
                              params: Mapping[str, Mapping[str, Any]]) -> EpiduralGeometry:
    """Epidural geometry per level.

    Parameters
    ----------
    gtv, cord, sac, canal : ROI or None
        GTV, spinal cord, thecal sac (the spinal canal stands in for it when absent,
        said in the notes) and spinal canal.
    levels : sequence of (level, z_min_mm, z_max_mm)
        From :func:`level_ranges`; empty: one unnamed level spanning the GTV.
    params : mapping
        The ``epidural`` rule data (``rules/data/epidural.toml``).
    """
    notes: list[str] = []
    if gtv is None:
        return EpiduralGeometry(notes=("no GTV ROI: epidural geometry not measured",))
    gz = _planes_z(gtv)
    if not levels:
        levels = [(None, float(gz.min()), float(gz.max()))]
        notes.append("no vertebra ROI with a level: one unnamed level spanning the GTV")
    if sac is None and canal is not None:
        sac = canal
        notes.append(f"no thecal-sac ROI: {canal.name} (spinal canal) stands in for it")
    dz = float(np.median(np.diff(gz))) if len(gz) > 1 else 1.0
    gpts = contour_surface_points(gtv)
    cord_tree = cKDTree(contour_surface_points(cord)) if cord is not None else None
    cord_areas = [sum(_polygon_area(c.points_mm[:, :2]) for c in cord.closed_contours
                      if abs(float(c.points_mm[0, 2]) - z) < 1e-3) for z in _planes_z(cord)] \
        if cord is not None else []
    cord_median = float(np.median(cord_areas)) if cord_areas else 0.0
    half = 0.5 * dz
    out = []
    for level, z0, z1 in levels:
        zs = gz[(gz >= z0 - 1e-6) & (gz <= z1 + 1e-6)]
        if not len(zs):
            continue
        sel = (gpts[:, 2] >= z0 - half) & (gpts[:, 2] <= z1 + half)
        readings = [] if cord is None or sac is None else [
            _read_slice(float(z), gtv=gtv, cord=cord, sac=sac, canal=canal, dz=dz,
                        cord_median_area=cord_median, p=params["epidural.bilsky_estimate"])
            for z in zs]
        gap = None
        if cord_tree is not None and sel.any():
            gap = float(cord_tree.query(gpts[sel])[0].min())
            if any(r.gap_mm == 0.0 for r in readings):
                gap = 0.0
        if cord is None or sac is None:
            out.append(LevelGeometry(level=level, z_range_mm=(z0, z1), gtv_cord_gap_mm=gap,
                                     thecal_share_percent=None, bilsky_estimate=None,
                                     worst_slice_z_mm=None,
                                     reason="no spinal cord ROI" if cord is None else
                                     "no thecal-sac or spinal-canal ROI"))
            continue
        worst = max(readings, key=lambda r: (BILSKY_ORDER.index(r.grade), r.thecal_share_percent))
        out.append(LevelGeometry(
            level=level, z_range_mm=(z0, z1), gtv_cord_gap_mm=gap,
            thecal_share_percent=max(r.thecal_share_percent for r in readings),
            bilsky_estimate=worst.grade, worst_slice_z_mm=worst.z_mm))
    return EpiduralGeometry(levels=tuple(out), notes=tuple(notes))
