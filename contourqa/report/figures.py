"""Pictures of a report, drawn with matplotlib's object API on the Agg canvas.

No ``pyplot``: figures are plain :class:`matplotlib.figure.Figure` objects with an
explicit Agg canvas, so drawing keeps no global state and works without a display
(several checks may run at once).  Every function returns a :class:`Picture`:
either a figure or the sentence saying why there is none.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Wedge
from numpy.typing import NDArray

from contourqa.errors import ContourQAError, MetricError
from contourqa.findings import Finding, Status
from contourqa.report.record import CaseReport
from contourqa.report.text import mpl_literal

if TYPE_CHECKING:
    from contourqa.case import Case
    from contourqa.dvh import DVH, DVHMetric
    from contourqa.geometry import VolumeGeometry
    from contourqa.sectors import VertebraSectors

__all__ = [
    "ConstraintPoint", "Picture", "case_pictures", "constraint_points", "dvh_picture",
    "figure_png", "sector_pictures", "slice_picture",
]

#: Colours by role (targets warm, cord cool); other ROIs take the cycle below.
ROLE_COLOURS: dict[str, str] = {
    "gtv": "#d62728", "ctv": "#ff7f0e", "itv": "#bcbd22", "ptv": "#e377c2",
    "spinal_cord": "#ffd700", "cord_prv": "#17becf", "thecal_sac": "#9edae5",
    "spinal_canal": "#aec7e8", "spinal_canal_prv": "#c5b0d5", "cauda_equina": "#8c564b",
}
_CYCLE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#7f7f7f", "#393b79", "#637939",
          "#8c6d31", "#843c39", "#7b4173")
STATUS_COLOURS: dict[Status, str] = {Status.FAIL: "#c0392b", Status.WARN: "#e67e22",
                                     Status.PASS: "#27ae60", Status.NOT_EVALUATED: "#8e44ad"}
#: Roles drawn in the DVH: targets and organs at risk (not body, bone or helpers).
_NOT_DRAWN = frozenset({"body", "vertebra", "other", "unknown", "skin"})
_TARGETS = ("gtv", "ctv", "itv", "ptv")
_CORD = ("spinal_cord", "cord_prv", "thecal_sac", "spinal_canal", "spinal_canal_prv")
#: Outlines on the slices, in drawing order.
_SLICE_ROLES = ("ptv", "ctv", "gtv", "cord_prv", "spinal_cord")
_LOG_FLOOR_CC = 1e-3
_ISODOSE_TOL_GY = 1e-6
_MIN_SLICES_FOR_REFORMAT = 8


@dataclass(frozen=True, eq=False)
class Picture:
    """A figure of the report, or why it could not be drawn.

    Attributes
    ----------
    title : str
    figure : Figure or None
    caption : str
        What the picture shows, or why it is missing (``figure is None``).
    png : bytes or None
        Ready-made PNG (pictures from another module, e.g. sector maps).
    """

    title: str
    figure: Figure | None = None
    caption: str = ""
    png: bytes | None = None

    @property
    def present(self) -> bool:
        return self.figure is not None or self.png is not None


def _new_figure(width_in: float, height_in: float) -> Figure:
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_png(picture: Picture, *, dpi: int = 100) -> bytes:
    """PNG bytes of a picture (its own PNG, or its figure rendered with Agg).

    Raises
    ------
    ValueError
        The picture has neither a figure nor a PNG.
    """
    if picture.png is not None:
        return picture.png
    if picture.figure is None:
        raise ValueError(f"Picture {picture.title!r} has no figure: {picture.caption}")
    buf = io.BytesIO()
    picture.figure.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


# --------------------------------------------------------------------------- DVH
def _roles(report: CaseReport) -> dict[str, str]:
    return {s.name: s.role or "unknown" for s in report.structures}


def _colour_map(names: Sequence[str], roles: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    used: set[str] = set()
    n = 0
    for name in names:
        role = roles.get(name, "unknown")
        if role in ROLE_COLOURS and role not in used:
            out[name] = ROLE_COLOURS[role]
            used.add(role)
        else:
            out[name] = _CYCLE[n % len(_CYCLE)]
            n += 1
    return out


def _drawn_rois(report: CaseReport, dvhs: dict[str, Any]) -> list[str]:
    roles = _roles(report)
    order = {r: i for i, r in enumerate(_TARGETS + _CORD)}
    names = [n for n in dvhs if roles.get(n, "unknown") not in _NOT_DRAWN]
    return sorted(names, key=lambda n: (order.get(roles.get(n, ""), 99), n))


@dataclass(frozen=True)
class ConstraintPoint:
    """A checked limit placed on the DVH.

    Attributes
    ----------
    finding : Finding
    metric : DVHMetric
    dose_gy : float
        Dose coordinate of the limit, Gy.
    volume_cc : float
        Volume coordinate of the limit, cc (``Dmax``: the plot's floor).
    """

    finding: Finding
    metric: DVHMetric
    dose_gy: float
    volume_cc: float


_METRIC_BEFORE_EQUALS = re.compile(
    r"(?<![A-Za-z0-9])(D(?:max|min|mean)|D\d+(?:\.\d+)?(?:%|\s?cc)|V\d+(?:\.\d+)?\s?Gy%?"
    r"|V\d+(?:\.\d+)?%)\s*=")


def _finding_metric(f: Finding) -> DVHMetric | None:
    """The DVH metric a finding compares, or None.

    The finding record has no metric field: the constraint checks state it in the
    message as ``"<metric> = <value>"``; the target checks are known by code.
    """
    from contourqa.dvh import DVHMetric

    m = _METRIC_BEFORE_EQUALS.search(f.message)
    text = m.group(1) if m else None
    if text is None and f.code == "dose.gtv_dmin":
        text = "Dmin"
    if text is None and f.code == "dose.ptv_coverage":
        text = "V100%"
    if text is None:
        return None
    try:
        metric = DVHMetric.parse(text.replace(" ", ""))
    except MetricError:
        return None
    return metric if metric.unit == (f.unit or "") else None


def constraint_points(report: CaseReport, dvhs: dict[str, DVH]) -> list[ConstraintPoint]:
    """Limits of the report's DVH checks, placed in (dose, volume) coordinates.

    Parameters
    ----------
    report : CaseReport
    dvhs : dict of ROI name to DVH

    Returns
    -------
    list of ConstraintPoint
        Findings without a value and a limit, on an ROI without a DVH, or whose
        metric is not stated are left out.
    """
    from contourqa.dvh import MetricKind

    rx = report.case.prescription_gy
    out = []
    for f in report.checks:
        if f.structure not in dvhs or f.limit is None or f.value is None:
            continue
        metric = _finding_metric(f)
        if metric is None:
            continue
        d = dvhs[f.structure]
        ref = d.volume_in_dose_cc
        k, x, lim = metric.kind, metric.x, float(f.limit)
        dose: float | None = None
        vol: float | None = None
        if k is MetricKind.DMAX:
            dose, vol = lim, _LOG_FLOOR_CC
        elif k is MetricKind.DMIN:
            dose, vol = lim, ref
        elif k is MetricKind.DOSE_AT_CC and x is not None:
            dose, vol = lim, x
        elif k is MetricKind.DOSE_AT_PERCENT and x is not None:
            dose, vol = lim, ref * x / 100.0
        elif k is MetricKind.VOLUME_CC_AT_GY and x is not None:
            dose, vol = x, lim
        elif k is MetricKind.VOLUME_PERCENT_AT_GY and x is not None:
            dose, vol = x, ref * lim / 100.0
        elif k is MetricKind.VOLUME_PERCENT_AT_RX_PERCENT and x is not None and rx:
            dose, vol = rx * x / 100.0, ref * lim / 100.0
        if dose is None or vol is None or not (math.isfinite(dose) and math.isfinite(vol)):
            continue
        out.append(ConstraintPoint(f, metric, dose, max(vol, _LOG_FLOOR_CC)))
    return out


def dvh_picture(report: CaseReport) -> Picture:
    """Cumulative DVHs of targets and organs at risk with the checked limits.

    Left: volume in % of the volume inside the dose grid; right: volume in cc on a
    log scale (where small-volume limits such as D0.035cc are visible).  Limits are
    open circles coloured by the check's status (``Dmax`` limits sit on the log
    axis's floor, 0.001 cc).
    """
    title = "Cumulative DVH"
    dvhs = dict(report.media.dvhs) if report.media is not None else {}
    if not dvhs:
        why = next((f.message for f in report.checks
                    if f.code in ("dvh.no_dose", "dvh.failed")), None)
        case = report.media.case if report.media is not None else None
        if why is None and case is not None:
            if case.structure_set is None:
                why = "The case has no usable structure set: no DVH."
            elif case.dose is None:
                why = "The case has no usable dose grid: no DVH."
        return Picture(title, caption=why or "No DVH was computed for this case.")
    names = _drawn_rois(report, dvhs)
    if not names:
        return Picture(title, caption="No ROI has a target or organ-at-risk role; see the "
                                      "structures table for the roles assigned.")
    roles = _roles(report)
    colours = _colour_map(names, roles)
    fig = _new_figure(11.0, 4.4)
    ax_pct, ax_cc = fig.subplots(1, 2)
    dmax = 0.0
    for name in names:
        d = dvhs[name]
        ref = d.volume_in_dose_cc
        if ref <= 0:
            continue
        style = "--" if roles.get(name) in ("cord_prv", "spinal_canal_prv") else "-"
        width = 2.0 if roles.get(name) in _TARGETS + ("spinal_cord",) else 1.3
        label = mpl_literal(f"{name} ({roles.get(name)})")
        ax_pct.plot(d.dose_edges_gy, 100.0 * d.cumulative_cc / ref, style, color=colours[name],
                    lw=width, label=label)
        ax_cc.plot(d.dose_edges_gy, np.maximum(d.cumulative_cc, _LOG_FLOOR_CC * 0.5), style,
                   color=colours[name], lw=width)
        if math.isfinite(d.max_gy):
            dmax = max(dmax, d.max_gy)
    points = [p for p in constraint_points(report, dvhs) if p.finding.structure in names]
    for p in points:
        d = dvhs[str(p.finding.structure)]
        ref = d.volume_in_dose_cc
        colour = STATUS_COLOURS[p.finding.status]
        for ax, scale in ((ax_pct, 100.0 / ref), (ax_cc, 1.0)):
            ax.plot([p.dose_gy], [p.volume_cc * scale], marker="o", ms=9, mfc="none",
                    mec=colour, mew=2.0, ls="none", zorder=5)
        dmax = max(dmax, p.dose_gy)
    rx = report.case.prescription_gy
    for ax in (ax_pct, ax_cc):
        if rx:
            ax.axvline(rx, color="#555555", lw=0.8, ls=":")
        ax.set_xlabel("Dose (Gy)")
        ax.set_xlim(0, max(dmax * 1.05, 1.0))
        ax.grid(True, lw=0.4, alpha=0.5)
    ax_pct.set_ylim(0, 102)
    ax_pct.set_ylabel("Volume (% of volume in dose grid)")
    ax_cc.set_yscale("log")
    ax_cc.set_ylim(_LOG_FLOOR_CC * 0.5, None)
    ax_cc.set_ylabel("Volume (cc, log scale)")
    handles, labels = ax_pct.get_legend_handles_labels()
    for status in (Status.FAIL, Status.WARN, Status.PASS):
        if any(p.finding.status is status for p in points):
            handles.append(Line2D([], [], marker="o", mfc="none", mec=STATUS_COLOURS[status],
                                  mew=2.0, ls="none"))
            labels.append(f"limit ({status.value})")
    if rx:
        handles.append(Line2D([], [], color="#555555", lw=0.8, ls=":"))
        labels.append(f"prescription {rx:g} Gy")
    fig.legend(handles, labels, loc="outside right center", fontsize=8, frameon=False)
    drawn = {id(p.finding) for p in points}
    undrawn = sorted({f"{f.code} ({f.unit})" if f.unit else f.code for f in report.checks
                      if f.limit is not None and f.structure in names and id(f) not in drawn})
    caption = (f"{len(names)} ROI(s); {len(points)} checked dose-volume limit(s) drawn as open "
               "circles coloured by status.")
    if undrawn:
        caption += (" Limits that are not points of a DVH are in the check table: "
                    + ", ".join(undrawn) + ".")
    return Picture(title, fig, caption)


# --------------------------------------------------------------------------- slices
def _orientation(direction_col: NDArray[np.float64]) -> tuple[str, str]:
    """Letters at the low and high ends of a grid axis (LPS: +x L, +y P, +z S)."""
    axis = int(np.argmax(np.abs(direction_col)))
    pos, neg = (("L", "R"), ("P", "A"), ("S", "I"))[axis]
    return (neg, pos) if direction_col[axis] > 0 else (pos, neg)


def _target_centre(masks: dict[str, NDArray[np.bool_]], roles: dict[str, str]
                   ) -> tuple[NDArray[np.float64], str] | None:
    for role in ("gtv", "ctv", "ptv"):
        for name, m in masks.items():
            if roles.get(name) == role and m.any():
                what = name if name.upper() == role.upper() else f"the {role.upper()} {name}"
                return np.argwhere(m).mean(axis=0), f"the centre of {what}"
    return None


def _slice_rois(report: CaseReport, case: Case) -> list[Any]:
    roles = _roles(report)
    wanted = [r for r in _SLICE_ROLES]
    if not any(roles.get(s.name) in ("spinal_cord", "cord_prv") for s in report.structures):
        wanted += ["thecal_sac", "spinal_canal"]
    assert case.structure_set is not None
    rois = [roi for roi in case.structure_set.rois
            if roles.get(roi.name) in wanted and not roi.is_empty]
    return sorted(rois, key=lambda r: wanted.index(roles[r.name]))


def _crop_bounds(points_kji: NDArray[np.float64], shape: tuple[int, int, int],
                 margin_vox: NDArray[np.float64]) -> tuple[tuple[int, int, int],
                                                           tuple[int, int, int]]:
    lo = np.floor(points_kji.min(axis=0) - margin_vox).astype(int)
    hi = np.ceil(points_kji.max(axis=0) + margin_vox).astype(int) + 1
    lo = np.clip(lo, 0, np.asarray(shape) - 1)
    hi = np.clip(hi, lo + 1, np.asarray(shape))
    return (int(lo[0]), int(lo[1]), int(lo[2])), (int(hi[0]), int(hi[1]), int(hi[2]))


def _dose_on(case: Case, geometry: VolumeGeometry, index_kji: NDArray[np.float64]
             ) -> NDArray[np.float64]:
    """Dose (Gy) at points given as indices of ``geometry``; 0 outside the dose grid."""
    from scipy.ndimage import map_coordinates

    assert case.dose is not None
    pts = geometry.index_to_patient(index_kji.reshape(-1, 3))
    idx = case.dose.geometry.patient_to_index(pts)
    vals = map_coordinates(case.dose.dose_gy, idx.T, order=1, mode="constant", cval=0.0)
    return np.asarray(vals, dtype=np.float64).reshape(index_kji.shape[:-1])


def _isodose_levels(report: CaseReport) -> list[tuple[float, str, str]]:
    """(dose Gy, label, colour): the prescription and each cord limit checked."""
    roles = _roles(report)
    levels: list[tuple[float, str, str]] = []
    rx = report.case.prescription_gy
    if rx:
        levels.append((float(rx), f"{rx:g} Gy prescription", "#00e676"))
    cord_limits = sorted({round(float(f.limit), 3) for f in report.checks
                          if f.limit is not None and f.unit == "Gy"
                          and roles.get(f.structure or "") in _CORD})
    blues = ("#40c4ff", "#2979ff", "#b388ff", "#84ffff")
    for n, lim in enumerate(cord_limits):
        if rx and abs(lim - rx) < 1e-6:
            continue
        levels.append((lim, f"{lim:g} Gy cord limit", blues[n % len(blues)]))
    return levels


def slice_picture(report: CaseReport) -> Picture:
    """Axial, sagittal and coronal CT slices through the GTV centre.

    Outlines of GTV, CTV, PTV, cord and cord PRV (by role); isodose lines at the
    prescription and at each cord limit that was checked.  The view is cropped to
    the targets with a 30 mm margin.
    """
    from contourqa.masks import crop_geometry, roi_mask

    title = "Slices through the target"
    case = report.media.case if report.media is not None else None
    if case is None or case.image is None:
        return Picture(title, caption="No planning image was loaded: slices are not drawn.")
    if case.structure_set is None:
        return Picture(title, caption="No structure set: slices are not drawn.")
    geometry = case.image.geometry
    if not geometry.is_axis_aligned:
        return Picture(title, caption="The image grid is oblique: slices are not drawn.")
    roles = _roles(report)
    rois = _slice_rois(report, case)
    targets = [r for r in rois if roles[r.name] in _TARGETS]
    focus = targets or rois
    if focus:
        pts = np.concatenate([c.points_mm for r in focus for c in r.closed_contours])
        pts_kji = geometry.patient_to_index(pts)
    elif case.dose is not None:
        peak = np.unravel_index(int(np.argmax(case.dose.dose_gy)), case.dose.dose_gy.shape)
        pts_kji = geometry.patient_to_index(case.dose.geometry.index_to_patient(
            np.asarray(peak, dtype=np.float64)))[None, :]
    else:
        return Picture(title, caption="No target, cord or dose to centre the slices on.")
    margin = 30.0 / geometry.spacing_mm[::-1]
    start, stop = _crop_bounds(pts_kji, geometry.shape, margin)
    crop = crop_geometry(geometry, start, stop)
    try:
        masks = {r.name: roi_mask(r, crop) for r in rois}
    except ContourQAError as exc:
        return Picture(title, caption=f"ROI masks could not be made on the image grid: {exc}")
    ct = case.image.pixels[start[0]:stop[0], start[1]:stop[1], start[2]:stop[2]]
    centre = _target_centre(masks, roles)
    c_kji: NDArray[np.float64]
    if centre is None:
        c_kji = np.clip(pts_kji.mean(axis=0) - np.asarray(start), 0,
                        np.asarray(crop.shape) - 1)
        through = "the centre of the " + ("ROIs" if focus else "dose maximum")
    else:
        c_kji, through = centre
    k, j, i = (round(float(v)) for v in c_kji)
    planes: list[tuple[str, tuple[Any, ...], int, int]] = [
        ("Axial", (k, slice(None), slice(None)), 1, 2),
        ("Sagittal", (slice(None), slice(None), i), 0, 1),
        ("Coronal", (slice(None), j, slice(None)), 0, 2),
    ]
    note = ""
    if crop.shape[0] < _MIN_SLICES_FOR_REFORMAT:
        # A few axial slices make sagittal and coronal views mere strips.
        planes = planes[:1]
        note = (f" Only {crop.shape[0]} image slice(s) cover this region: sagittal and "
                "coronal views are not drawn.")
    levels = _isodose_levels(report) if case.dose is not None else []
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in crop.shape],
                                indexing="ij"), axis=-1)
    colours = {r.name: ROLE_COLOURS.get(roles[r.name], "#ffffff") for r in rois}
    fig = _new_figure(11.0 if len(planes) == 3 else 5.5, 4.6)
    axes = np.atleast_1d(fig.subplots(1, len(planes)))
    spacing_kji = crop.spacing_mm[::-1]
    direction = crop.direction
    for ax, (name, index, ax_v, ax_h) in zip(axes, planes, strict=True):
        img = np.asarray(ct[index], dtype=np.float32)
        if name == "Axial":
            vertical_up = False
        else:
            vertical_up = _orientation(direction[:, 2 - ax_v])[1] == "S"
        origin = "lower" if vertical_up else "upper"
        aspect = float(spacing_kji[ax_v] / spacing_kji[ax_h])
        ax.imshow(img, cmap="gray", vmin=-250, vmax=1050, origin=origin, aspect=aspect,
                  interpolation="bilinear")
        for roi_name, m in masks.items():
            plane = m[index]
            if plane.any():
                # contour's default placement (Z[0, 0] at data (0, 0)) matches imshow's
                # pixel centres for either origin; passing origin would flip it again.
                ax.contour(plane.astype(np.float32), levels=[0.5], colors=[colours[roi_name]],
                           linewidths=1.6)
        if levels:
            dose = _dose_on(case, crop, grid[index])
            for value, _label, colour in levels:
                # The line encloses dose >= value: a plateau exactly at the prescription
                # (a normalised plan) still gets its line.
                level = value - _ISODOSE_TOL_GY
                if float(dose.max()) >= level:
                    ax.contour(dose, levels=[level], colors=[colour], linewidths=1.1,
                               linestyles="--")
        lo_v, hi_v = _orientation(direction[:, 2 - ax_v])
        lo_h, hi_h = _orientation(direction[:, 2 - ax_h])
        style = {"color": "white", "fontsize": 9, "fontweight": "bold"}
        ax.text(0.02, 0.5, lo_h, transform=ax.transAxes, va="center", **style)
        ax.text(0.98, 0.5, hi_h, transform=ax.transAxes, va="center", ha="right", **style)
        top, bottom = (hi_v, lo_v) if vertical_up else (lo_v, hi_v)
        ax.text(0.5, 0.98, top, transform=ax.transAxes, ha="center", va="top", **style)
        ax.text(0.5, 0.02, bottom, transform=ax.transAxes, ha="center", va="bottom", **style)
        pos = crop.index_to_patient(np.array([k, j, i], dtype=np.float64))
        where = {"Axial": f"z = {pos[2]:.1f} mm", "Sagittal": f"x = {pos[0]:.1f} mm",
                 "Coronal": f"y = {pos[1]:.1f} mm"}[name]
        ax.set_title(f"{name} ({where})", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    handles: list[Any] = [Patch(facecolor="none", edgecolor=colours[r.name], lw=1.6,
                                label=mpl_literal(f"{r.name} ({roles[r.name]})")) for r in rois]
    handles += [Line2D([], [], color=c, ls="--", lw=1.1, label=lab) for _, lab, c in levels]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5) or 1,
               fontsize=8, frameon=False)
    caption = (f"Through {through}; CT window -250 to 1050 HU; isodose lines dashed"
               + ("" if case.dose is not None else " (no dose grid: none drawn)") + "." + note)
    return Picture(title, fig, caption)


# --------------------------------------------------------------------------- sectors
# Schematic angles (degrees, anticlockwise from the patient's left in the image,
# anterior up, patient left on the image's right as seen from the feet).
_SECTOR_WEDGES = {1: (30, 150), 6: (150, 200), 5: (200, 250), 4: (250, 290), 3: (290, 340),
                  2: (340, 390)}


def _sector_schematic(entry: VertebraSectors) -> Picture:
    from contourqa.sectors import SECTOR_NAMES

    level = entry.level or "level unknown"
    gtv = set(entry.gtv_sectors)
    ctv = set(entry.ctv_sectors)
    pct = entry.gtv_sector_pct  # sectors 1-6 in order
    fig = _new_figure(3.4, 3.6)
    ax = fig.subplots()
    for sector, (a0, a1) in _SECTOR_WEDGES.items():
        share = pct[sector - 1]
        face = "#d62728" if sector in gtv else "#eeeeee"
        alpha = 0.35 + 0.65 * min(share / 50.0, 1.0) if sector in gtv else 1.0
        ax.add_patch(Wedge((0, 0), 1.0, a0, a1, width=0.55, facecolor=face, alpha=alpha,
                           edgecolor="#333333", lw=1.2,
                           hatch="///" if sector in ctv else None))
        mid = math.radians((a0 + a1) / 2)
        ax.text(0.72 * math.cos(mid), 0.72 * math.sin(mid), str(sector), ha="center",
                va="center", fontsize=11, fontweight="bold")
    flags = [w for w, on in (("epidural", entry.epidural), ("paraspinal", entry.paraspinal))
             if on]
    ax.text(0, 0, "canal" + ("\nGTV" if entry.epidural else ""), ha="center",
            va="center", fontsize=8)
    ax.text(0, 1.12, "A", ha="center", fontsize=9)
    ax.text(-1.12, 0, "R", va="center", fontsize=9)
    ax.text(1.08, 0, "L", va="center", fontsize=9)
    ax.set_xlim(-1.2, 1.2)
    ax.set_ylim(-1.2, 1.25)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(mpl_literal(f"{level}: GTV in {', '.join(map(str, sorted(gtv))) or 'no sector'}"),
                 fontsize=10)
    names = "; ".join(f"{s} {SECTOR_NAMES[s]}" for s in sorted(SECTOR_NAMES))
    caption = (f"Schematic of the ISRC sectors of {level} from the report record (not "
               f"anatomy): red = GTV, darker = larger share of the sector's bone; hatched = "
               f"covered by the CTV. {('Also ' + ' and '.join(flags) + '. ') if flags else ''}"
               f"Sectors: {names}.")
    return Picture(f"Sector map {level}", fig, caption)


def sector_pictures(report: CaseReport) -> list[Picture]:
    """One sector map per involved level.

    The sector analysis may attach rendered maps (``ReportMedia.sector_pictures``);
    they are used as they are.  Otherwise, when the record has a ``sectors``
    section, a schematic is drawn from it.  Empty when there is no sector section.
    """
    media = report.media
    if media is not None and media.sector_pictures:
        return [Picture(f"Sector map {p.level or 'level unknown'}", png=p.png, caption=p.caption)
                for p in media.sector_pictures]
    if not report.sectors:
        return []
    return [_sector_schematic(e) for e in report.sectors
            if e.gtv_sectors or e.ctv_sectors or e.epidural]


def sectors_missing_reason(report: CaseReport) -> str:
    """Why a report shows no sector map."""
    why = [f.message for f in report.checks
           if f.code.startswith("sectors.") and f.status is Status.NOT_EVALUATED]
    if why:
        return " ".join(why)
    if report.sectors is None:
        return "The ISRC sector analysis was not run for this report."
    return "No vertebral level is involved by the GTV or CTV."


def _guarded(make: Callable[[CaseReport], Any], report: CaseReport, title: str) -> Any:
    """``make(report)``, or a picture saying why it could not be drawn: a defect met
    while drawing one picture (odd data, a font, matplotlib) never stops the report."""
    try:
        return make(report)
    except Exception as exc:  # noqa: BLE001
        return Picture(title, caption=f"The picture could not be drawn ({type(exc).__name__}: "
                                      f"{str(exc)[:200]}).")


def case_pictures(report: CaseReport) -> dict[str, Picture | list[Picture]]:
    """Every picture of one case: ``dvh``, ``slices`` and ``sectors`` (a list)."""
    sectors = _guarded(sector_pictures, report, "ISRC sector map")
    return {"dvh": _guarded(dvh_picture, report, "Cumulative DVH"),
            "slices": _guarded(slice_picture, report, "Slices through the target"),
            "sectors": sectors if isinstance(sectors, list) else [sectors]}
