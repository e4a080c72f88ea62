"""Pictures of the ISRC sector map: one axial slice per involved level (PNG).

Drawn in the radiological convention whatever the patient position: anterior up,
the patient's right on the viewer's left.  Sectors are coloured over the CT (the
transverse processes in a lighter shade of their sector's colour than the laminae),
the GTV (red), CTV (yellow) and canal/cord (cyan) outlined, and the partition's
landmarks drawn as white dashed lines: the posterior body wall, each pedicle's end
and outer surface, and the spinous process's half-width.  Everything comes from the
typed :class:`~contourqa.sectors.SectorAnalysis` (its partitions), never from the
JSON.  matplotlib is imported only here, lazily, with an actionable error when it is
missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from contourqa.errors import ContourQAError
from contourqa.geometry import VolumeGeometry
from contourqa.sectors import PART_SECTOR, SECTOR_NAMES, SectorAnalysis, VertebraPartition

__all__ = ["PART_COLOURS", "SECTOR_COLOURS", "draw_sector_slice", "landmark_lines",
           "pyplot", "sector_png"]

#: RGB (0-1) of sectors 1-6.
SECTOR_COLOURS: dict[int, tuple[float, float, float]] = {
    1: (0.55, 0.55, 0.85), 2: (0.20, 0.70, 0.30), 3: (0.60, 0.85, 0.25),
    4: (0.95, 0.55, 0.15), 5: (0.90, 0.35, 0.65), 6: (0.15, 0.55, 0.85),
}
#: RGB of the part codes 1-8: the sector's colour, transverse processes lighter.
PART_COLOURS: dict[int, tuple[float, float, float]] = {
    code: (SECTOR_COLOURS[sector] if code not in (4, 7) else
           tuple(0.55 * c + 0.45 for c in SECTOR_COLOURS[sector]))  # type: ignore[misc]
    for code, sector in PART_SECTOR.items()
}


def landmark_lines(partition: VertebraPartition, k: int, *, reach_mm: float = 35.0
                   ) -> list[NDArray[np.float64]]:
    """The landmarks of grid slice ``k`` as polylines in patient (x, y) mm.

    Returns
    -------
    list of ndarray of shape (2, 2)
        Body wall; per side the pedicle's end (across its medial face beside the
        canal, then obliquely to its outer surface) and outer surface; both spinous
        half-width lines.
    """
    c = partition.coords
    kb = int(np.clip(k - c.start[0], 0, c.shape[0] - 1))
    lm = partition.landmarks.at(k)
    wall, post = lm["body_wall_u_mm"], lm["canal_posterior_u_mm"]
    pend, pout = lm["pedicle_end_u_mm"], lm["pedicle_outer_v_mm"]
    plat, hw = lm["pedicle_end_lateral_u_mm"], lm["canal_half_width_mm"]
    sh = lm["spinous_half_width_mm"]
    segs_uv = [((wall, -reach_mm), (wall, reach_mm))]
    for s, sign in enumerate((1.0, -1.0)):
        segs_uv.append(((pend[s], 0.0), (pend[s], sign * hw[s])))
        segs_uv.append(((pend[s], sign * hw[s]), (plat[s], sign * pout[s])))
        segs_uv.append(((wall, sign * pout[s]), (pend[s] - reach_mm / 2, sign * pout[s])))
        segs_uv.append(((post, sign * sh), (post - reach_mm, sign * sh)))
    out = []
    for (u0, v0), (u1, v1) in segs_uv:
        xy = c.to_patient_xy(np.array([kb, kb]), np.array([u0, u1]), np.array([v0, v1]))
        out.append(xy)
    return out


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (actionable error when missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ContourQAError("Sector pictures need matplotlib: pip install matplotlib") from exc
    return plt


def _display(plane: NDArray[Any], geometry: VolumeGeometry) -> tuple[NDArray[Any], list[float]]:
    """A (row, column) plane rearranged so rows run posterior (+y) and columns to the
    patient's left (+x); returns it with its imshow extent (mm)."""
    d = geometry.direction
    out = plane if abs(d[0, 0]) >= abs(d[1, 0]) else plane.T
    # after the optional transpose, axis 1 runs along x and axis 0 along y
    col_dir = d[:, 0] if abs(d[0, 0]) >= abs(d[1, 0]) else d[:, 1]
    row_dir = d[:, 1] if abs(d[0, 0]) >= abs(d[1, 0]) else d[:, 0]
    if col_dir[0] < 0:
        out = out[:, ::-1]
    if row_dir[1] < 0:
        out = out[::-1, :]
    origin = geometry.origin_mm
    sp = geometry.spacing_mm
    n_r, n_c = plane.shape
    corners = np.array([geometry.index_to_patient([0, j, i]) for j in (0, n_r - 1)
                        for i in (0, n_c - 1)])
    x0, x1 = corners[:, 0].min(), corners[:, 0].max()
    y0, y1 = corners[:, 1].min(), corners[:, 1].max()
    h = 0.5 * float(min(sp[0], sp[1]))
    del origin
    return out, [x0 - h, x1 + h, y1 + h, y0 - h]


def draw_sector_slice(ax: Any, *, ct: NDArray[Any] | None, sectors: NDArray[Any],
                      geometry: VolumeGeometry,
                      outlines: dict[str, tuple[NDArray[np.bool_], str]] | None = None,
                      title: str = "", parts: NDArray[Any] | None = None,
                      lines: list[NDArray[np.float64]] | None = None) -> None:
    """Draw one axial slice: CT, sector colours and outlines.

    Parameters
    ----------
    ax : matplotlib Axes
    ct : ndarray of shape (R, C), HU, or None
    sectors : ndarray of shape (R, C), int
        0 outside bone, 1-6 sectors.
    geometry : VolumeGeometry
        Grid the planes come from (any axial orientation).
    outlines : dict name -> (mask of shape (R, C), colour), optional
    title : str
    parts : ndarray of shape (R, C), int, optional
        Part codes 1-8; when given they colour the bone instead of ``sectors``.
    lines : list of ndarray of shape (N, 2), optional
        Landmark polylines in patient (x, y) mm.
    """
    if ct is not None:
        img, ext = _display(np.asarray(ct, float), geometry)
        ax.imshow(img, cmap="gray", vmin=-200, vmax=1000, extent=ext, interpolation="nearest")
    lab, ext = _display(np.asarray(sectors if parts is None else parts), geometry)
    rgba = np.zeros((*lab.shape, 4))
    for s, c in (SECTOR_COLOURS if parts is None else PART_COLOURS).items():
        rgba[lab == s] = (*c, 0.75)
    ax.imshow(rgba, extent=ext, interpolation="nearest")
    for line in lines or []:
        ax.plot(line[:, 0], line[:, 1], color="white", linestyle="--", linewidth=0.8)
    for name, (mask, colour) in (outlines or {}).items():
        m, ext_m = _display(mask.astype(float), geometry)
        if m.any():
            xs = np.linspace(ext_m[0], ext_m[1], m.shape[1])
            ys = np.linspace(ext_m[3], ext_m[2], m.shape[0])
            ax.contour(xs, ys, m, levels=[0.5], colors=[colour], linewidths=1.2)
            ax.plot([], [], color=colour, label=name)
    ax.set_xlabel("x (mm, patient left ->)")
    ax.set_ylabel("y (mm, posterior v)")
    ax.set_title(title, fontsize=9)
    ax.set_aspect("equal")


def sector_png(analysis: SectorAnalysis, out_dir: str | Path, *,
               ct: NDArray[Any] | None = None, dpi: int = 110) -> list[Path]:
    """One PNG per analysed vertebra, on the slice with most GTV (else its middle).

    Parameters
    ----------
    analysis : SectorAnalysis
        A result with masks (``analysis.geometry`` not None).
    out_dir : path
        Created if needed; files ``sectors_<level or index>.png``.
    ct : ndarray of shape (S, R, C), HU, optional
        The full CT (``case.image.pixels``); cropped as the analysis was.

    Returns
    -------
    list of Path
    """
    if analysis.geometry is None or analysis.labels is None:
        return []
    plt = pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    g = analysis.geometry
    k0, j0, i0 = analysis.crop_start_kji
    crop = None
    if ct is not None:
        s = g.shape
        crop = ct[k0:k0 + s[0], j0:j0 + s[1], i0:i0 + s[2]]
    paths = []
    for v in analysis.vertebrae:
        own = analysis.labels // 10 == v.index + 1
        per_slice = own.sum(axis=(1, 2))
        if analysis.gtv is not None and (analysis.gtv & own).any():
            k = int(np.argmax((analysis.gtv & own).sum(axis=(1, 2))))
        else:
            ks = np.nonzero(per_slice)[0]
            k = int(ks[len(ks) // 2])
        sectors = np.where(own[k], analysis.labels[k] % 10, 0)
        parts = None if analysis.part_labels is None else np.where(own[k], analysis.part_labels[k] % 10, 0)
        part = analysis.partitions[v.index] if v.index < len(analysis.partitions) else None
        outlines = {}
        if analysis.gtv is not None:
            outlines["GTV"] = (analysis.gtv[k], "red")
        if analysis.ctv is not None:
            outlines["CTV"] = (analysis.ctv[k], "yellow")
        if analysis.canal is not None:
            outlines["canal"] = (analysis.canal[k], "cyan")
        if analysis.cord is not None:
            outlines["cord"] = (analysis.cord[k], "white")
        fig, ax = plt.subplots(figsize=(6, 5.5))
        z = float(g.index_to_patient([k, 0, 0])[2])
        name = v.level or f"vertebra {v.index}"
        draw_sector_slice(ax, ct=None if crop is None else crop[k], sectors=sectors, geometry=g,
                          outlines=outlines, parts=parts,
                          lines=None if part is None else landmark_lines(part, k),
                          title=f"{name} (z = {z:.1f} mm): GTV sectors "
                                f"{list(v.gtv_sectors)}, CTV covers {list(v.ctv_sectors)}")
        pts = g.index_to_patient(np.column_stack([np.full(int(own[k].sum()), k), np.argwhere(own[k])]) + 0.0)
        if len(pts):
            lo, hi = pts[:, :2].min(axis=0) - 15.0, pts[:, :2].max(axis=0) + 15.0
            ax.set_xlim(lo[0], hi[0])
            ax.set_ylim(hi[1], lo[1])
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in SECTOR_COLOURS.values()]
        labels = [f"{s} {SECTOR_NAMES[s]}" for s in SECTOR_COLOURS]
        handles += [plt.Rectangle((0, 0), 1, 1, color=PART_COLOURS[c]) for c in (4, 7)]
        labels += ["3 left transverse process", "5 right transverse process"]
        line_h, line_l = ax.get_legend_handles_labels()
        ax.legend(handles + line_h, labels + line_l, fontsize=6, loc="upper left",  # beside the
                  bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,  # slice: no sector hidden;
                  facecolor="#a0a0a0", edgecolor="none", framealpha=1.0)  # grey: white cord shows
        path = out / f"sectors_{v.level or v.index}.png"
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths
