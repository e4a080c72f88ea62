"""ISRC six-sector map of each vertebra and the GTV/CTV involvement per level.

Sectors (knowledge base 0.1/1a; Cox et al. 2012): 1 vertebral body, 2 left pedicle,
3 left transverse process and lamina, 4 spinous process, 5 right transverse process
and lamina, 6 right pedicle.  Left is the patient's left (+x in DICOM LPS) whatever
the patient position.

Vertebra frame
--------------
Each vertebra gets its own frame from its own anatomy, so that axial rotation,
scoliosis and kyphosis do not mislabel sectors:

* origin ``O_k``: the centroid of the spinal canal on each axial slice ``k`` (a tilted
  or laterally shifted spine moves the origin with it);
* anterior axis ``a`` (unit, axial plane): from the canal towards the centroid of the
  vertebral body (first estimate: the centroid of the whole vertebra; then twice the
  centroid of the bone labelled body by the rule below);
* left axis ``l = (-a_y, a_x, 0)``: ``a`` turned by +90 degrees about the superior
  axis.  LPS is a patient coordinate system, so this is the patient's left for
  every patient position (HFS, FFS, HFP, FFP).

For a point ``p`` on slice ``k``: ``u = (p - O_k) . a`` (mm anterior of the canal
centre), ``v = (p - O_k) . l`` (mm to the left) and the angle
``theta = atan2(-u, v)`` in degrees, wrapped to [-125, 235): 0 is left, 90
posterior, -90 anterior, 180 right (for an unrotated HFS patient this is
``atan2(y - y_canal, x - x_canal)``).  ``d`` is the in-plane distance (mm) from the
canal, and ``u_wall(k)`` the anterior extent of the canal on slice ``k`` (its most
anterior voxel centre plus half a pixel): the posterior wall of the body.

Sector boundaries (defaults of :class:`SectorOptions`)
------------------------------------------------------
Every bone voxel of the vertebra gets exactly one sector, by the first rule that holds:

1. **Vertebral body (1)**: ``u >= u_wall(k)`` (anterior to the posterior wall of the
   body), or ``theta`` within ``body_half_angle_deg`` (35) of anterior, i.e.
   ``theta in [-125, -55]`` (the bone between the canal and the body).
2. **Neural arch** (``d <= arch_thickness_mm``, 7 mm: the bone that walls the
   canal), split by angle about the canal centre:
   left pedicle **2** ``(-55, 30)``; left lamina **3** ``[30, 78)``; spinous
   process **4** ``[78, 102]`` (``spinous_half_angle_deg`` 12 about posterior);
   right lamina **5** ``(102, 150]``; right pedicle **6** ``(150, 235)``.  The
   pedicle-lamina boundary is ``pedicle_lamina_angle_deg`` (30) behind the
   transverse axis, mirrored on the right.
3. **Processes** (``d > arch_thickness_mm``, bone projecting from the arch): within
   ``process_spinous_half_angle_deg`` (30) of posterior, i.e. ``[60, 120]``, the
   spinous process **4**; lateral to that, the left (**3**) or right (**5**)
   transverse process.

A figure of this partition is drawn by :func:`contourqa.sector_figure.sector_png`;
real vertebrae are shown in ``benchmarks/results/sectors_real_ct_*.png``.

Involvement
-----------
A sector is involved when the GTV volume inside it (voxel centres on the CT grid)
reaches ``min_involved_cc`` (0.05 cc: a one-voxel sliver along a 12 mm boundary on a
1 x 1 x 1.5 mm grid is about 0.02 cc, a real extension 0.1 cc or more).  The body
involvement is ``left``/``right`` when at least ``lateral_share`` (0.8) of the body
GTV lies on one side of the vertebra's midline (``v``), ``diffuse`` when it fills at
least ``diffuse_body_fraction`` (0.5) of the body on the GTV's slices (or spans both
sides without a dominant one and without being ``central``), ``central`` otherwise,
and ``none`` without body involvement.  Epidural: the GTV inside the canal
(``min_epidural_cc``); its extent is the angle about the canal centre that it
covers, gaps narrower than ``epidural_gap_deg`` bridged; circumferential at
``circumferential_min_deg``.  Paraspinal: GTV outside every vertebra and the canal
(``min_paraspinal_cc``).  The CTV covers a sector when it holds at least
``ctv_covered_min_pct`` (50 %) of the sector's bone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from contourqa.anatomy.levels import levels_in_text, name_levels
from contourqa.anatomy.spine import SpineAnatomy, Vertebra, canal_from_ring
from contourqa.case import Case
from contourqa.errors import ContourQAError
from contourqa.findings import Finding, Status
from contourqa.geometry import VolumeGeometry
from contourqa.io.rtstruct import ROI
from contourqa.masks import crop_geometry, roi_mask
from contourqa.structures import Role, RoleTable

__all__ = [
    "SECTOR_NAMES",
    "SectorAnalysis",
    "SectorOptions",
    "VertebraFrame",
    "VertebraSectors",
    "analyse_sectors",
    "partition_vertebra",
]

SECTOR_NAMES: dict[int, str] = {
    1: "vertebral body",
    2: "left pedicle",
    3: "left transverse process and lamina",
    4: "spinous process",
    5: "right transverse process and lamina",
    6: "right pedicle",
}
_SECTORS = (1, 2, 3, 4, 5, 6)
_SOURCE = "ISRC six-sector model (Cox et al. 2012; knowledge base 0.1, 1a)"


@dataclass(frozen=True, kw_only=True)
class SectorOptions:
    """Options of the sector analysis (geometry in mm and degrees, volumes in cc).

    Parameters
    ----------
    level : str, optional
        Level of the treated vertebra (``--level T10``); names the vertebra holding
        most GTV bone when its ROI name does not.
    min_involved_cc : float
        GTV volume in a sector from which the sector counts as involved (0.05 cc).
    min_epidural_cc, min_paraspinal_cc : float
        Same for the epidural and paraspinal components (0.05 cc).
    body_half_angle_deg : float
        Half-angle of the anterior wedge about the canal centre that belongs to the
        body (35: the wedge [-125, -55] degrees).
    pedicle_lamina_angle_deg : float
        Angle behind the transverse axis where pedicle becomes lamina (30).
    spinous_half_angle_deg : float
        Half-angle about posterior of the spinous sector within the arch (12).
    process_spinous_half_angle_deg : float
        Half-angle about posterior of the spinous process beyond the arch (30).
    arch_thickness_mm : float
        Distance from the canal within which bone is neural arch (pedicle, lamina)
        rather than a process (7 mm; thoracic pedicles are 5-8 mm wide, lumbar ones
        wider: raise it for lumbar levels to keep the whole pedicle in 2/6).
    lateral_share : float
        Share of the body GTV on one side of the midline that makes it lateralised.
    diffuse_body_fraction : float
        Fraction of the vertebral body (on the GTV's slices) the GTV must fill to be
        diffuse.
    central_half_width_fraction : float
        A body GTV spanning both sides is ``central`` when it stays within this
        fraction of the body's half-width from the midline (0.6), else ``diffuse``.
    epidural_gap_deg : float
        Angular gaps narrower than this between epidural voxels are bridged (15).
    circumferential_min_deg : float
        Epidural extent from which the epidural disease is circumferential (330).
    ctv_covered_min_pct : float
        Share of a sector's bone the CTV must hold to cover the sector (50 %).
    crop_margin_mm : tuple of float
        Margin (z, in-plane) around the GTV and CTV of the analysed region (30, 80).
    min_canal_area_mm2 : float
        Smallest hole in the vertebral ring taken for the canal (20 mm2).
    """

    level: str | None = None
    min_involved_cc: float = 0.05
    min_epidural_cc: float = 0.05
    min_paraspinal_cc: float = 0.05
    body_half_angle_deg: float = 35.0
    pedicle_lamina_angle_deg: float = 30.0
    spinous_half_angle_deg: float = 12.0
    process_spinous_half_angle_deg: float = 30.0
    arch_thickness_mm: float = 7.0
    lateral_share: float = 0.8
    diffuse_body_fraction: float = 0.5
    central_half_width_fraction: float = 0.6
    epidural_gap_deg: float = 15.0
    circumferential_min_deg: float = 330.0
    ctv_covered_min_pct: float = 50.0
    crop_margin_mm: tuple[float, float] = (30.0, 80.0)
    min_canal_area_mm2: float = 20.0

    def __post_init__(self) -> None:
        for name in ("min_involved_cc", "min_epidural_cc", "min_paraspinal_cc",
                     "arch_thickness_mm", "epidural_gap_deg"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f'Argument "{name}" must be >= 0.')
        if not 0 < self.body_half_angle_deg < 90:
            raise ValueError('Argument "body_half_angle_deg" must be within (0, 90).')
        if not -(90 - self.body_half_angle_deg) < self.pedicle_lamina_angle_deg \
                < 90 - self.spinous_half_angle_deg:
            raise ValueError('Argument "pedicle_lamina_angle_deg" must lie between the body '
                             "wedge and the spinous sector.")
        if not 0 < self.spinous_half_angle_deg < 90 or \
                not 0 < self.process_spinous_half_angle_deg < 90:
            raise ValueError("Spinous half-angles must be within (0, 90) degrees.")
        if not 0.5 < self.lateral_share <= 1.0:
            raise ValueError('Argument "lateral_share" must be within (0.5, 1].')
        if self.level is not None:
            from contourqa.structures import parse_level

            object.__setattr__(self, "level", parse_level(self.level))


@dataclass(frozen=True)
class VertebraFrame:
    """The anatomical frame of one vertebra (see module docstring).

    Attributes
    ----------
    canal_centre_mm : tuple of float
        Mean canal centre over the vertebra's slices, LPS mm (x, y, z).
    anterior : tuple of float
        Unit vector ``a`` (x, y, 0).
    left : tuple of float
        Unit vector ``l`` (x, y, 0), the patient's left.
    """

    canal_centre_mm: tuple[float, float, float]
    anterior: tuple[float, float, float]
    left: tuple[float, float, float]

    @property
    def rotation_deg(self) -> float:
        """Axial rotation: angle from patient anterior (-y) to ``a``, counter-clockwise
        seen from above (towards the patient's left positive)."""
        ax, ay = self.anterior[0], self.anterior[1]
        return math.degrees(math.atan2(ax, -ay))

    def to_json(self) -> dict[str, Any]:
        return {"canal_centre_mm": [round(v, 2) for v in self.canal_centre_mm],
                "anterior": [round(v, 4) for v in self.anterior],
                "left": [round(v, 4) for v in self.left],
                "rotation_deg": round(self.rotation_deg, 1)}


@dataclass(frozen=True)
class VertebraSectors:
    """GTV and CTV involvement of one vertebra.

    Sector-indexed tuples have six entries, sectors 1-6 in order.

    Attributes
    ----------
    index : int
        Position in the analysed column, inferior first (0 = most inferior).
    level : str or None
        Vertebral level, None when it cannot be known.
    level_source : str
        ``roi_name``, ``user``, ``plan``, ``counted`` or ``unknown``.
    vertebra_source : str
        ``roi:<name>`` or ``ct``.
    frame : VertebraFrame
    sector_volume_cc : tuple of float
    gtv_sector_cc : tuple of float
    gtv_sectors : tuple of int
        Involved sectors, sorted.
    body_laterality : {"left", "right", "diffuse", "central", "none"}
    epidural, epidural_cc, epidural_extent_deg, epidural_circumferential
        Epidural component (GTV in the canal) of this level.
    paraspinal, paraspinal_cc
        Paraspinal component (GTV outside bone and canal) of this level.
    ctv_sector_cc, ctv_sector_coverage_pct : tuple of float
    ctv_sectors : tuple of int
        Sectors the CTV covers (``ctv_covered_min_pct``).
    ctv_epidural_cc : float
        CTV inside the canal at this level.
    """

    index: int
    level: str | None
    level_source: str
    vertebra_source: str
    frame: VertebraFrame
    sector_volume_cc: tuple[float, ...]
    gtv_sector_cc: tuple[float, ...]
    gtv_sectors: tuple[int, ...]
    body_laterality: str
    epidural: bool
    epidural_cc: float
    epidural_extent_deg: float
    epidural_circumferential: bool
    paraspinal: bool
    paraspinal_cc: float
    ctv_sector_cc: tuple[float, ...]
    ctv_sector_coverage_pct: tuple[float, ...]
    ctv_sectors: tuple[int, ...]
    ctv_epidural_cc: float

    @property
    def gtv_sector_pct(self) -> tuple[float, ...]:
        """GTV volume in each sector as % of the sector's bone."""
        return tuple(100.0 * g / s if s > 0 else 0.0
                     for g, s in zip(self.gtv_sector_cc, self.sector_volume_cc, strict=True))

    def to_json(self) -> dict[str, Any]:
        """The report entry (field names as in issue 4; extra fields after them)."""
        def per_sector(values: Sequence[float], nd: int) -> dict[str, float]:
            return {str(s): round(float(v), nd) for s, v in zip(_SECTORS, values, strict=True)}

        return {
            "level": self.level,
            "index": self.index,
            "gtv_sectors": list(self.gtv_sectors),
            "gtv_sector_cc": per_sector(self.gtv_sector_cc, 4),
            "body_laterality": self.body_laterality,
            "epidural": self.epidural,
            "epidural_extent_deg": round(self.epidural_extent_deg, 1),
            "paraspinal": self.paraspinal,
            "ctv_sectors": list(self.ctv_sectors),
            "ctv_sector_coverage_pct": per_sector(self.ctv_sector_coverage_pct, 1),
            "level_source": self.level_source,
            "vertebra_source": self.vertebra_source,
            "gtv_sector_pct": per_sector(self.gtv_sector_pct, 2),
            "sector_volume_cc": per_sector(self.sector_volume_cc, 3),
            "epidural_cc": round(self.epidural_cc, 4),
            "epidural_circumferential": self.epidural_circumferential,
            "paraspinal_cc": round(self.paraspinal_cc, 4),
            "ctv_sector_cc": per_sector(self.ctv_sector_cc, 4),
            "ctv_epidural_cc": round(self.ctv_epidural_cc, 4),
            "frame": self.frame.to_json(),
        }


@dataclass(frozen=True, eq=False)
class SectorAnalysis:
    """Result of :func:`analyse_sectors`.

    Attributes
    ----------
    vertebrae : tuple of VertebraSectors
        One per vertebra touched by the GTV or CTV, inferior first.
    findings : tuple of Finding
        Why something was not evaluated (``sectors.*`` codes), and warnings.
    options : SectorOptions
    canal_source : str or None
    geometry : VolumeGeometry or None
        The analysed grid (a crop of the CT grid); None when nothing was evaluated.
    crop_start_kji : tuple of int
        Voxel of the CT grid at the crop's (0, 0, 0).
    labels : ndarray of shape (S, R, C), int16, or None
        ``10 * (column index + 1) + sector`` for every bone voxel, 0 elsewhere.
    gtv, ctv, canal, cord : ndarray of shape (S, R, C), bool, or None
        Masks on ``geometry`` (for pictures).
    """

    vertebrae: tuple[VertebraSectors, ...]
    findings: tuple[Finding, ...]
    options: SectorOptions
    canal_source: str | None = None
    geometry: VolumeGeometry | None = None
    crop_start_kji: tuple[int, int, int] = (0, 0, 0)
    labels: NDArray[np.int16] | None = None
    gtv: NDArray[np.bool_] | None = None
    ctv: NDArray[np.bool_] | None = None
    canal: NDArray[np.bool_] | None = None
    cord: NDArray[np.bool_] | None = None
    frames: tuple[VertebraFrame | None, ...] = field(default=())

    @property
    def evaluated(self) -> bool:
        return not any(f.status is Status.NOT_EVALUATED for f in self.findings)

    def entry(self, level: str) -> VertebraSectors:
        """The entry of one level.

        Raises
        ------
        KeyError
            No analysed vertebra has this level.
        """
        for v in self.vertebrae:
            if v.level == level:
                return v
        raise KeyError(f"No analysed vertebra is {level!r}; levels are "
                       f"{[v.level for v in self.vertebrae]}.")

    def to_json(self) -> list[dict[str, Any]]:
        """The ``sectors`` section of the JSON report: one entry per vertebra."""
        return [v.to_json() for v in self.vertebrae]


# --------------------------------------------------------------------------- partition

def _slice_centroids(mask: NDArray[np.bool_], geometry: VolumeGeometry
                     ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """In-plane centroid (x, y, mm) of ``mask`` on every slice, gaps filled from the
    nearest slice that has one.  Returns ``(centres (S, 2), present (S,))``."""
    n = mask.shape[0]
    idx = np.argwhere(mask)
    centres = np.full((n, 2), np.nan)
    present = np.zeros(n, dtype=bool)
    if len(idx) == 0:
        return centres, present
    xy = geometry.index_to_patient(idx)[:, :2]
    counts = np.bincount(idx[:, 0], minlength=n)
    present = counts > 0
    for d in range(2):
        centres[present, d] = np.bincount(idx[:, 0], xy[:, d], minlength=n)[present] \
            / counts[present]
    have = np.nonzero(present)[0]
    nearest = have[np.abs(np.arange(n)[:, None] - have[None, :]).argmin(axis=1)]
    centres = centres[nearest]
    return centres, present


def _wrap_deg(theta: NDArray[np.float64], start: float) -> NDArray[np.float64]:
    return (theta - start) % 360.0 + start


def _sector_of(theta: NDArray[np.float64], u: NDArray[np.float64], u_wall: NDArray[np.float64],
               d_canal: NDArray[np.float64], o: SectorOptions) -> NDArray[np.int8]:
    """Sector (1-6) of bone points from their frame coordinates (module docstring)."""
    lo = -90.0 - o.body_half_angle_deg
    t = _wrap_deg(theta, lo)
    hi_body = -90.0 + o.body_half_angle_deg
    pl = o.pedicle_lamina_angle_deg
    sp = o.spinous_half_angle_deg
    psp = o.process_spinous_half_angle_deg
    ring = np.select(
        [t < pl, t < 90.0 - sp, t <= 90.0 + sp, t <= 180.0 - pl],
        [2, 3, 4, 5], default=6).astype(np.int8)
    process = np.select([t < 90.0 - psp, t <= 90.0 + psp], [3, 4], default=5).astype(np.int8)
    out = np.where(d_canal <= o.arch_thickness_mm, ring, process)
    body = (u >= u_wall) | (t <= hi_body)
    return np.where(body, np.int8(1), out).astype(np.int8)


def _frame_coordinates(points_xy: NDArray[np.float64], origins_xy: NDArray[np.float64],
                       anterior: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    left = np.array([-anterior[1], anterior[0]])
    d = points_xy - origins_xy
    u = d @ anterior
    v = d @ left
    return u, v, np.degrees(np.arctan2(-u, v))


def partition_vertebra(mask: NDArray[np.bool_], canal: NDArray[np.bool_],
                       geometry: VolumeGeometry, *, options: SectorOptions = SectorOptions()
                       ) -> tuple[NDArray[np.int8], VertebraFrame] | None:
    """Label every bone voxel of one vertebra with its ISRC sector.

    Parameters
    ----------
    mask : ndarray of shape (S, R, C), bool
        The vertebra's bone.
    canal : ndarray of shape (S, R, C), bool
        Spinal canal (at least on some of the vertebra's slices).
    geometry : VolumeGeometry
        Grid of both masks (axial slices).
    options : SectorOptions

    Returns
    -------
    (sectors, frame) or None
        ``sectors``: ndarray of shape (S, R, C), int8, 1-6 on the vertebra's voxels and
        0 elsewhere; None when the canal is absent from every slice of the vertebra.
    """
    idx = np.argwhere(mask)
    if len(idx) == 0:
        return None
    ks = np.unique(idx[:, 0])
    k0, k1 = int(ks[0]), int(ks[-1]) + 1
    # canal slices near the vertebra (its slices, plus a few for vertebrae whose
    # canal is only contoured between them)
    pad = 3
    s0, s1 = max(k0 - pad, 0), min(k1 + pad, mask.shape[0])
    canal_slab = canal[s0:s1]
    if not canal_slab.any():
        return None
    centres, present = _slice_centroids(canal_slab, geometry)
    # fill canal-less slices with the nearest canal slice (for distances)
    have = np.nonzero(present)[0]
    nearest = have[np.abs(np.arange(len(present))[:, None] - have[None, :]).argmin(axis=1)]
    filled = canal_slab[nearest]
    centres_k = centres - 0.0  # (slab slices, 2)

    pts = geometry.index_to_patient(idx)
    xy = pts[:, :2]
    origin = centres_k[idx[:, 0] - s0]
    cidx = np.argwhere(filled)
    cxy = geometry.index_to_patient(cidx + np.array([s0, 0, 0]))[:, :2]
    corigin = centres_k[cidx[:, 0]]
    half_pixel = 0.5 * float(min(geometry.spacing_mm[0], geometry.spacing_mm[1]))

    a = (xy - origin).mean(axis=0)
    if not np.linalg.norm(a) > 0:
        return None
    a = a / np.linalg.norm(a)
    sampling = (1e4 * float(geometry.spacing_mm[2]), float(geometry.spacing_mm[1]),
                float(geometry.spacing_mm[0]))
    dist = ndimage.distance_transform_edt(~filled, sampling=sampling)
    d_canal = dist[idx[:, 0] - s0, idx[:, 1], idx[:, 2]]
    for _ in range(3):
        u, _, _ = _frame_coordinates(xy, origin, a)
        cu, _, _ = _frame_coordinates(cxy, corigin, a)
        u_wall = np.full(len(present), -np.inf)
        np.maximum.at(u_wall, cidx[:, 0], cu)
        u_wall_pt = u_wall[idx[:, 0] - s0] + half_pixel
        body = u >= u_wall_pt
        if not body.any():
            break
        a_new = (xy[body] - origin[body]).mean(axis=0)
        if not np.linalg.norm(a_new) > 0:
            break
        a = a_new / np.linalg.norm(a_new)
    u, _, theta = _frame_coordinates(xy, origin, a)
    sectors = _sector_of(theta, u, u_wall_pt, d_canal, options)
    out = np.zeros(mask.shape, dtype=np.int8)
    out[idx[:, 0], idx[:, 1], idx[:, 2]] = sectors
    in_vertebra = np.zeros(len(present), dtype=bool)
    in_vertebra[ks - s0] = True
    cc = centres_k[in_vertebra & present].mean(axis=0) if (in_vertebra & present).any() \
        else centres_k[in_vertebra].mean(axis=0)
    zc = float(pts[:, 2].mean())
    frame = VertebraFrame(canal_centre_mm=(float(cc[0]), float(cc[1]), zc),
                          anterior=(float(a[0]), float(a[1]), 0.0),
                          left=(float(-a[1]), float(a[0]), 0.0))
    return out, frame


# --------------------------------------------------------------------------- involvement

def _angular_extent_deg(theta: NDArray[np.float64], gap_deg: float) -> float:
    """Angle covered by a set of directions, gaps narrower than ``gap_deg`` bridged."""
    if len(theta) == 0:
        return 0.0
    t = np.sort(np.unique(np.round(np.mod(theta, 360.0), 3)))
    gaps = np.diff(np.concatenate([t, [t[0] + 360.0]]))
    empty = float(gaps[gaps > gap_deg].sum())
    return 360.0 - empty if empty > 0 else 360.0 if len(t) > 1 else 0.0


def _laterality(v: NDArray[np.float64], n_body_slices: int, body_voxels: int,
                body_half_width_mm: float, o: SectorOptions) -> str:
    if len(v) == 0:
        return "none"
    left = float(np.mean(v > 0))
    right = float(np.mean(v < 0))
    if body_voxels and len(v) / body_voxels >= o.diffuse_body_fraction:
        return "diffuse"
    if left >= o.lateral_share:
        return "left"
    if right >= o.lateral_share:
        return "right"
    if body_half_width_mm > 0 and float(np.abs(v).max()) <= \
            o.central_half_width_fraction * body_half_width_mm:
        return "central"
    return "diffuse"


def _not_evaluated(code: str, message: str, options: SectorOptions,
                   extra: Sequence[Finding] = ()) -> SectorAnalysis:
    f = Finding(code=f"sectors.{code}", status=Status.NOT_EVALUATED, message=message,
                source=_SOURCE)
    return SectorAnalysis(vertebrae=(), findings=(*extra, f), options=options)


def _rois(case: Case, roles: RoleTable, role: Role) -> list[ROI]:
    if case.structure_set is None:
        return []
    by_number = {r.number: r for r in case.structure_set.rois}
    return [by_number[a.roi_number] for a in roles.by_role(role)
            if a.roi_number in by_number and not by_number[a.roi_number].is_empty]


def _grid_from_contours(rois: Sequence[ROI], pixel_mm: float) -> VolumeGeometry | None:
    """A 1 mm axial grid over the ROIs' contours, slices on their planes (no CT)."""
    pts = [c.points_mm for r in rois for c in r.closed_contours]
    if not pts:
        return None
    allp = np.concatenate(pts)
    zs = np.unique(np.round(allp[:, 2], 3))
    dz = float(np.median(np.diff(zs))) if len(zs) > 1 else 1.0
    lo = allp.min(axis=0)
    hi = allp.max(axis=0)
    n_xy = np.ceil((hi[:2] - lo[:2]) / pixel_mm).astype(int) + 3
    nz = round(float((zs[-1] - zs[0]) / dz)) + 1
    origin = np.array([lo[0] - pixel_mm, lo[1] - pixel_mm, zs[0]])
    return VolumeGeometry(shape=(nz, int(n_xy[1]), int(n_xy[0])), origin_mm=origin,
                          spacing_mm=np.array([pixel_mm, pixel_mm, dz]))


def _crop_box(rois: Sequence[ROI], geometry: VolumeGeometry, options: SectorOptions
              ) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    pts = np.concatenate([c.points_mm for r in rois for c in r.closed_contours])
    idx = geometry.patient_to_index(pts)
    sp = geometry.spacing_mm[::-1]  # (slice, row, column) mm
    margin = np.array([options.crop_margin_mm[0], options.crop_margin_mm[1],
                       options.crop_margin_mm[1]]) / sp
    lo = np.floor(idx.min(axis=0) - margin).astype(int)
    hi = np.ceil(idx.max(axis=0) + margin).astype(int) + 1
    shape = np.asarray(geometry.shape)
    lo = np.clip(lo, 0, shape - 1)
    hi = np.clip(hi, lo + 1, shape)
    return (int(lo[0]), int(lo[1]), int(lo[2])), (int(hi[0]), int(hi[1]), int(hi[2]))


def _union_mask(rois: Sequence[ROI], geometry: VolumeGeometry) -> NDArray[np.bool_] | None:
    if not rois:
        return None
    m = np.zeros(geometry.shape, dtype=bool)
    for r in rois:
        m |= roi_mask(r, geometry)
    return m


def _build_anatomy(case: Case, roles: RoleTable, geometry: VolumeGeometry,
                   start: tuple[int, int, int], options: SectorOptions
                   ) -> tuple[SpineAnatomy | None, list[Finding]]:
    problems: list[Finding] = []
    vert_assign = [a for a in roles.by_role(Role.VERTEBRA) if a.roi_number is not None]
    by_number = {r.number: r for r in case.structure_set.rois} if case.structure_set else {}
    vertebrae: list[Vertebra] = []
    for a in vert_assign:
        roi = by_number.get(a.roi_number)  # type: ignore[arg-type]
        if roi is None or roi.is_empty:
            continue
        level = a.level if a.level and "-" not in a.level else None
        if a.level and "-" in a.level:
            problems.append(Finding(
                code="sectors.vertebra_range_roi", status=Status.WARN, structure=roi.name,
                message=f"ROI {roi.name!r} covers the levels {a.level}: it is analysed as one "
                        "vertebra without a level; contour one ROI per vertebra.",
                source=_SOURCE))
        m = roi_mask(roi, geometry)
        if m.any():
            vertebrae.append(Vertebra(mask=m, known_level=level, roi_name=roi.name,
                                      source="structure_set"))
    canal_roi = _union_mask(_rois(case, roles, Role.SPINAL_CANAL), geometry)
    sac = _union_mask(_rois(case, roles, Role.THECAL_SAC), geometry)
    cord = _union_mask(_rois(case, roles, Role.SPINAL_CORD), geometry)
    canal: NDArray[np.bool_] | None = None
    canal_source = None
    if not vertebrae:
        if case.image is None:
            return None, problems
        from contourqa.anatomy.ct import segment_spine

        k0, j0, i0 = start
        s = geometry.shape
        pixels = case.image.pixels[k0:k0 + s[0], j0:j0 + s[1], i0:i0 + s[2]]
        seg = segment_spine(pixels, geometry, canal_hint=canal_roi if canal_roi is not None
                            else sac if sac is not None else cord,
                            lesion=_union_mask(_rois(case, roles, Role.GTV), geometry))
        vertebrae = list(seg.vertebrae)
        problems.extend(seg.problems)
        if seg.canal is not None and seg.canal.any():
            canal, canal_source = seg.canal, "ct"
    if not vertebrae:
        return None, problems
    if canal_roi is not None and canal_roi.any():
        names = "+".join(r.name for r in _rois(case, roles, Role.SPINAL_CANAL))
        canal, canal_source = canal_roi, f"roi:{names}"
    elif canal is None:
        bone = np.zeros(geometry.shape, dtype=bool)
        for v in vertebrae:
            bone |= v.mask
        fallback = []
        if sac is not None:
            fallback.append(("roi:" + "+".join(r.name for r in _rois(case, roles,
                                                                     Role.THECAL_SAC)), sac))
        if cord is not None:
            fallback.append(("roi:" + "+".join(r.name for r in _rois(case, roles,
                                                                     Role.SPINAL_CORD)), cord))
        canal, canal_source = canal_from_ring(bone, geometry,
                                              min_area_mm2=options.min_canal_area_mm2,
                                              fallback=fallback)
    assert canal is not None
    return SpineAnatomy(geometry=geometry,
                        vertebrae=SpineAnatomy.sort_inferior_first(vertebrae, geometry),
                        canal=canal, canal_source=canal_source, cord=cord,
                        problems=tuple(problems)), problems


def analyse_sectors(case: Case, roles: RoleTable, *,
                    options: SectorOptions = SectorOptions()) -> SectorAnalysis:
    """ISRC sector involvement of the GTV (and coverage by the CTV) per vertebra.

    Parameters
    ----------
    case : Case
        Needs a structure set with a GTV and/or CTV; vertebrae come from vertebra
        ROIs, otherwise from the CT (``case.image``).
    roles : RoleTable
        Roles of the structure set's ROIs (:func:`contourqa.structures.assign_roles`).
    options : SectorOptions

    Returns
    -------
    SectorAnalysis
        Never raises for bad input: what cannot be evaluated is a ``sectors.*``
        finding with status ``not_evaluated`` (``no_structure_set``, ``no_target``,
        ``no_vertebra``, ``canal_not_found``, ``gtv_outside_vertebrae``,
        ``geometry``).
    """
    if case.structure_set is None:
        return _not_evaluated("no_structure_set", "No structure set: the ISRC sectors of the "
                              "GTV cannot be evaluated.", options)
    gtv_rois = _rois(case, roles, Role.GTV)
    ctv_rois = _rois(case, roles, Role.CTV)
    if not gtv_rois and not ctv_rois:
        return _not_evaluated("no_target", "No GTV or CTV ROI (by role): the ISRC sector "
                              "involvement cannot be evaluated.", options)
    full = case.image.geometry if case.image is not None else None
    if full is None:
        relevant = [*gtv_rois, *ctv_rois, *_rois(case, roles, Role.VERTEBRA)]
        if not _rois(case, roles, Role.VERTEBRA):
            return _not_evaluated("no_vertebra", "No vertebra ROI and no CT image: the "
                                  "vertebrae cannot be found, so the sectors are not "
                                  "evaluated. Contour the vertebrae (e.g. VB_T10) or include "
                                  "the planning CT.", options)
        full = _grid_from_contours(relevant, 1.0)
        assert full is not None
    try:
        start, stop = _crop_box([*gtv_rois, *ctv_rois], full, options)
        geometry = crop_geometry(full, start, stop)
        anatomy, problems = _build_anatomy(case, roles, geometry, start, options)
    except ContourQAError as exc:
        return _not_evaluated("geometry", f"The sector analysis cannot use this grid: {exc}",
                              options)
    if anatomy is None:
        return _not_evaluated(
            "no_vertebra", "No vertebra found: no vertebra ROI is contoured near the targets "
            + ("and none could be segmented from the CT." if case.image is not None
               else "and there is no CT to segment."), options, problems)
    if not anatomy.canal.any():
        return _not_evaluated(
            "canal_not_found", "The spinal canal was not found (no SpinalCanal, thecal sac or "
            "cord ROI, and no closed vertebral ring): the sector frame cannot be built.",
            options, problems)
    gtv = _union_mask(gtv_rois, geometry)
    ctv = _union_mask(ctv_rois, geometry)
    return _involvement(case, roles, anatomy, gtv, ctv, geometry, start, options, problems)


def _per_sector(lab: NDArray[np.int16], m: NDArray[np.bool_] | None) -> NDArray[np.float64]:
    """Voxels of ``m`` in each sector 1-6 of the label plane ``lab``."""
    if m is None:
        return np.zeros(6)
    return np.bincount(lab[m].ravel(), minlength=7)[1:7].astype(float)


def _involvement(case: Case, roles: RoleTable, anatomy: SpineAnatomy,
                 gtv: NDArray[np.bool_] | None, ctv: NDArray[np.bool_] | None,
                 geometry: VolumeGeometry, start: tuple[int, int, int], options: SectorOptions,
                 problems: list[Finding]) -> SectorAnalysis:
    o = options
    vcc = geometry.voxel_volume_cc
    n_v = len(anatomy.vertebrae)
    labels = np.zeros(geometry.shape, dtype=np.int16)
    owner_bone = np.full(geometry.shape, -1, dtype=np.int16)
    frames: list[VertebraFrame | None] = []
    for i, vert in enumerate(anatomy.vertebrae):
        res = partition_vertebra(vert.mask, anatomy.canal, geometry, options=o)
        if res is None:
            frames.append(None)
            problems.append(Finding(
                code="sectors.canal_not_found", status=Status.NOT_EVALUATED,
                structure=vert.roi_name,
                message=f"No spinal canal near vertebra {vert.known_level or vert.roi_name or i}:"
                        " its sectors are not evaluated.", source=_SOURCE))
            continue
        sect, vf = res
        frames.append(vf)
        free = (sect > 0) & (owner_bone < 0)
        labels[free] = 10 * (i + 1) + sect[free]
        owner_bone[free] = i
    bone = owner_bone >= 0
    # slice owner: the vertebra with most bone on the slice (nearest slice otherwise)
    counts = np.stack([np.count_nonzero(owner_bone == i, axis=(1, 2)) for i in range(n_v)],
                      axis=1) if n_v else np.zeros((geometry.shape[0], 0), int)
    has = counts.sum(axis=1) > 0
    slice_owner = np.full(geometry.shape[0], -1)
    if has.any():
        have = np.nonzero(has)[0]
        near = have[np.abs(np.arange(len(has))[:, None] - have[None, :]).argmin(axis=1)]
        slice_owner = counts[near].argmax(axis=1)
    owner = np.where(bone, owner_bone, slice_owner[:, None, None].astype(np.int16))
    canal = anatomy.canal & ~bone
    centres, _ = _slice_centroids(anatomy.canal, geometry)

    # level names
    gtv_bone_per_v = np.zeros(n_v)
    if gtv is not None:
        gtv_bone_per_v = np.bincount(owner_bone[gtv & bone], minlength=n_v)[:n_v].astype(float)
    treated = int(np.argmax(gtv_bone_per_v)) if gtv_bone_per_v.sum() > 0 else None
    texts = [case.plan.label if case.plan else None, *(case.plan.target_names if case.plan else ()),
             *(a.roi_name for a in roles if a.role.is_target)]
    levels, sources = name_levels([v.known_level for v in anatomy.vertebrae], treated=treated,
                                  user_level=o.level, text_levels=levels_in_text(texts))

    if gtv is not None and gtv.any() and gtv_bone_per_v.sum() * vcc < o.min_involved_cc \
            and not (gtv & canal).any():
        problems.append(Finding(
            code="sectors.gtv_outside_vertebrae", status=Status.NOT_EVALUATED,
            message="The GTV does not involve any vertebra found (no bone, no canal): its "
                    "ISRC sectors are not evaluated. Check the GTV and the vertebra contours.",
            value=round(float(gtv_bone_per_v.sum() * vcc), 4), unit="cc", source=_SOURCE))

    entries: list[VertebraSectors] = []
    for i, vert in enumerate(anatomy.vertebrae):
        vframe = frames[i]
        if vframe is None:
            continue
        frame: VertebraFrame = vframe
        lab = np.where(owner_bone == i, labels - 10 * (i + 1), 0)
        sector_vox = np.bincount(lab.ravel(), minlength=7)[1:7]
        a = np.array(frame.anterior[:2])

        g_vox = _per_sector(lab, gtv)
        c_vox = _per_sector(lab, ctv)
        in_v = owner == i
        epi = (gtv & canal & in_v) if gtv is not None else None
        para = (gtv & ~bone & ~anatomy.canal & in_v) if gtv is not None else None
        epi_cc = float(np.count_nonzero(epi)) * vcc if epi is not None else 0.0
        para_cc = float(np.count_nonzero(para)) * vcc if para is not None else 0.0
        ctv_epi_cc = float(np.count_nonzero(ctv & canal & in_v)) * vcc if ctv is not None else 0.0
        touched = max(g_vox.sum() * vcc, epi_cc, para_cc, c_vox.sum() * vcc)
        if touched < o.min_involved_cc:
            continue
        g_cc = g_vox * vcc
        gtv_sectors = tuple(int(s) for s, v in zip(_SECTORS, g_cc, strict=True)
                            if v >= o.min_involved_cc)
        # epidural extent about the canal centre, in the vertebra frame
        extent = 0.0
        if epi is not None and epi_cc >= o.min_epidural_cc:
            eidx = np.argwhere(epi)
            _, _, th = _frame_coordinates(geometry.index_to_patient(eidx)[:, :2],
                                          centres[eidx[:, 0]], a)
            extent = _angular_extent_deg(th, o.epidural_gap_deg)
        # body laterality
        laterality = "none"
        if 1 in gtv_sectors and gtv is not None:
            body_m = lab == 1
            gb = np.argwhere(gtv & body_m)
            bidx = np.argwhere(body_m)
            _, v_, _ = _frame_coordinates(geometry.index_to_patient(gb)[:, :2],
                                           centres[gb[:, 0]], a)
            on_slices = np.isin(bidx[:, 0], np.unique(gb[:, 0]))
            _, vb_, _ = _frame_coordinates(geometry.index_to_patient(bidx[on_slices])[:, :2],
                                           centres[bidx[on_slices][:, 0]], a)
            half_w = float(np.abs(vb_).max()) if len(vb_) else 0.0
            laterality = _laterality(v_, 0, int(on_slices.sum()), half_w, o)
        c_pct = np.where(sector_vox > 0, 100.0 * c_vox / np.maximum(sector_vox, 1), 0.0)
        entries.append(VertebraSectors(
            index=i, level=levels[i], level_source=sources[i],
            vertebra_source=f"roi:{vert.roi_name}" if vert.roi_name else vert.source,
            frame=frame,
            sector_volume_cc=tuple(float(v) for v in sector_vox * vcc),
            gtv_sector_cc=tuple(float(v) for v in g_cc),
            gtv_sectors=gtv_sectors,
            body_laterality=laterality,
            epidural=epi_cc >= o.min_epidural_cc, epidural_cc=epi_cc,
            epidural_extent_deg=extent,
            epidural_circumferential=extent >= o.circumferential_min_deg,
            paraspinal=para_cc >= o.min_paraspinal_cc, paraspinal_cc=para_cc,
            ctv_sector_cc=tuple(float(v) for v in c_vox * vcc),
            ctv_sector_coverage_pct=tuple(float(v) for v in c_pct),
            ctv_sectors=tuple(int(s) for s, p in zip(_SECTORS, c_pct, strict=True)
                              if p >= o.ctv_covered_min_pct),
            ctv_epidural_cc=ctv_epi_cc))
    return SectorAnalysis(vertebrae=tuple(entries), findings=tuple(problems), options=o,
                          canal_source=anatomy.canal_source, geometry=geometry,
                          crop_start_kji=start, labels=labels, gtv=gtv, ctv=ctv,
                          canal=anatomy.canal, cord=anatomy.cord, frames=tuple(frames))
