"""A case of the parts phantom on its CT grid: spine column, soft tissue, lesion, truth.

Patient frame: DICOM LPS (mm), head first supine, axial slices.  The treated vertebra's
local frame (see :mod:`._anatomy`) is placed by ``p_LPS = offset + Rx(tilt) Rz(rot) p``:
``rot`` turns the spine about its cranio-caudal axis (positive from +x towards +y),
``tilt`` about the left-right axis.  Neighbouring vertebrae sit on the same axis, a
disc apart, each 3 % smaller per level upwards.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ._anatomy import (
    BODY,
    DISC,
    RIB_L,
    RIB_R,
    CanalSection,
    Solid,
    VertebraParams,
    body_outline,
    canal_section,
    region_of,
    solids,
)
from ._lesions import (
    Primitive,
    epidural_extension,
    inside_ellipsoid,
    lesion_primitives,
    paraspinal_extension,
)

__all__ = ["CANCELLOUS_HU", "CORTICAL_HU", "HU", "CaseSpec", "Scene", "build_scene", "neighbour_levels"]

#: CT numbers (HU) of the tissues.
HU: dict[str, float] = {
    "air": -1000.0, "lung": -850.0, "fat": -100.0, "soft_tissue": 45.0, "csf": 8.0,
    "cord": 35.0, "disc": 85.0, "tumour": 50.0, "blastic": 1150.0,
}
#: Cortical and cancellous bone (HU) by region.
CORTICAL_HU: dict[str, float] = {"cervical": 900.0, "thoracic": 850.0, "lumbar": 800.0}
CANCELLOUS_HU: dict[str, float] = {"cervical": 300.0, "thoracic": 260.0, "lumbar": 220.0}

_ORDER = ("C1 C2 C3 C4 C5 C6 C7 T1 T2 T3 T4 T5 T6 T7 T8 T9 T10 T11 T12 "
          "L1 L2 L3 L4 L5").split()

Density = Literal["lytic", "blastic", "marrow"]
CanalRoi = Literal["bony", "thecal_sac", "none"]


@dataclass(frozen=True)
class CaseSpec:
    """Recipe of one case.

    Attributes
    ----------
    level : str
        Treated level (C3-C7, T1-T12, L1-L4); its neighbours above and below are built
        too.
    lesion : str
        Kind of GTV, a key of :data:`LESIONS` (``body_central``, ``pedicle_whole``...).
    side : {"left", "right"}
        Patient side of a lateral lesion (left = +x).
    density : {"lytic", "blastic", "marrow"}
        CT of the GTV's bone: soft tissue (the bone is gone), sclerotic, or unchanged
        (a lesion seen on MRI only).
    epidural, paraspinal : bool
        Extension into the canal (between the thecal sac and the bone) or into the
        paravertebral soft tissue.
    pedicle_width_mm : float or None
        Transverse width of the pedicles; None keeps the region's default.
    ribs : bool
        Rib heads and necks (thoracic levels).
    canal_roi : {"bony", "thecal_sac", "none"}
        What the ``SpinalCanal`` ROI outlines: the bony canal, the smaller thecal sac,
        or no such ROI.
    vertebra_roi : str or None
        Name template of the vertebra ROIs (``"VB_{level}"``, ``"Bone_Vertebra_{level}"``);
        None writes none.
    axial_rotation_deg, tilt_deg : float
        Rotation of the spine about its cranio-caudal axis, and about left-right.
    offset_mm : tuple of float
        LPS position of the treated canal's centre.
    pixel_mm, slice_mm : float
        CT pixel size and slice thickness (= spacing).
    noise_hu : float
        Standard deviation of the Gaussian CT noise (seeded from the spec).
    ctv : bool
        Write a CTV (GTV + 3 mm within the treated vertebra's bone) besides the PTV.
    anatomy : tuple of (str, float) pairs
        Changes to the region's :class:`VertebraParams` (field name, value), applied
        after ``pedicle_width_mm`` and ``ribs``: body, canal, pedicle, lamina and
        process shapes (see :func:`draw_shape` for the held-out cases' draws).
    level_shift_mm : tuple of float
        Lateral (local x, mm) displacement of the level above and of the level below
        relative to the treated one (a scoliotic step), ramped across each disc; the
        bony canal, thecal sac and cord follow it.
    gtv_roi : str
        Name template of the GTV ROI (``"GTV"``, ``"GTV_{level}"``).

    The last three fields are left out of the spec's ``repr`` and, at their defaults,
    out of :meth:`key` and of ``truth.json``: a case that does not use them writes the
    same bytes as before they existed.
    """

    level: str = "T10"
    lesion: str = "body_central"
    side: Literal["left", "right"] = "left"
    density: Density = "marrow"
    epidural: bool = False
    paraspinal: bool = False
    pedicle_width_mm: float | None = None
    ribs: bool = False
    canal_roi: CanalRoi = "bony"
    vertebra_roi: str | None = "VB_{level}"
    axial_rotation_deg: float = 0.0
    tilt_deg: float = 0.0
    offset_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    pixel_mm: float = 0.9
    slice_mm: float = 2.0
    noise_hu: float = 10.0
    ctv: bool = True
    prescription_gy: float = 24.0
    n_fractions: int = 2
    anatomy: tuple[tuple[str, float], ...] = field(default=(), repr=False)
    level_shift_mm: tuple[float, float] = field(default=(0.0, 0.0), repr=False)
    gtv_roi: str = field(default="GTV", repr=False)

    def __post_init__(self) -> None:
        if self.level not in _ORDER or self.level in ("C1", "C2", "T1", "L5"):
            raise ValueError(f"Argument 'level' must be C3-C7, T2-T12 or L1-L4 (a level "
                             f"with modelled neighbours), not {self.level!r}.")
        if not 0.5 <= self.pixel_mm <= 1.5:
            raise ValueError("Argument 'pixel_mm' must be within [0.5, 1.5] mm.")
        if not 0.5 <= self.slice_mm <= 5.0:
            raise ValueError("Argument 'slice_mm' must be within [0.5, 5] mm.")
        if abs(self.axial_rotation_deg) > 30 or abs(self.tilt_deg) > 15:
            raise ValueError("Rotation must be within +/-30 deg and tilt within +/-15 deg.")
        known = set(VertebraParams.__dataclass_fields__) - {"region", "ribs"}
        bad = [k for k, _ in self.anatomy if k not in known]
        if bad:
            raise ValueError(f"Argument 'anatomy' names unknown VertebraParams fields {bad}.")
        if len(self.level_shift_mm) != 2 or max(map(abs, self.level_shift_mm)) > 15.0:
            raise ValueError("Argument 'level_shift_mm' must be two shifts within +/-15 mm.")

    @property
    def region(self) -> str:
        return region_of(self.level)

    @property
    def side_sign(self) -> int:
        return 1 if self.side == "left" else -1

    def params(self) -> VertebraParams:
        changes: dict[str, object] = {"ribs": self.ribs}
        if self.pedicle_width_mm is not None:
            changes["pedicle_width_mm"] = float(self.pedicle_width_mm)
        changes.update(dict(self.anatomy))
        return VertebraParams.for_region(self.region, **changes)

    def extras(self) -> dict[str, object]:
        """The fields left out of ``repr`` that differ from their defaults."""
        out: dict[str, object] = {}
        if self.anatomy:
            out["anatomy"] = [list(kv) for kv in self.anatomy]
        if tuple(self.level_shift_mm) != (0.0, 0.0):
            out["level_shift_mm"] = list(self.level_shift_mm)
        if self.gtv_roi != "GTV":
            out["gtv_roi"] = self.gtv_roi
        return out

    def key(self) -> str:
        """Seed of the noise and of the UIDs: the spec's ``repr`` (and its extras)."""
        extras = self.extras()
        return repr(self) + (f" {extras!r}" if extras else "")

    def to_json(self) -> dict[str, Any]:
        """The spec as written to ``truth.json`` (extras only when they are set)."""
        d = asdict(self)
        for k in ("anatomy", "level_shift_mm", "gtv_roi"):
            d.pop(k)
        d.update(self.extras())
        return d


def neighbour_levels(level: str) -> tuple[str, str, str]:
    """(above, level, below)."""
    i = _ORDER.index(level)
    return _ORDER[i - 1], level, _ORDER[i + 1]


@dataclass(frozen=True)
class LevelModel:
    name: str
    params: VertebraParams
    z_mm: float                   # local z of the body's middle
    solids: tuple[Solid, ...]
    x_mm: float = 0.0             # local lateral shift (scoliotic step)


@dataclass
class Scene:
    """Arrays of a case on its CT grid, (slice, row, column) = (z, y, x), HFS.

    ``origin_mm`` is the LPS centre of voxel (0, 0, 0); spacing ``(pixel, pixel, slice)``.
    """

    spec: CaseSpec
    origin_mm: NDArray[np.float64]
    spacing_mm: NDArray[np.float64]      # (x, y, z)
    shape: tuple[int, int, int]
    levels: tuple[LevelModel, ...]
    hu: NDArray[np.int16]
    parts: NDArray[np.uint8]
    level_index: NDArray[np.int8]        # -1 off bone, else index into levels
    canal: NDArray[np.bool_]
    sac: NDArray[np.bool_]
    cord: NDArray[np.bool_]
    body: NDArray[np.bool_]
    gtv: NDArray[np.bool_]
    rotation: NDArray[np.float64]        # local -> LPS
    offset: NDArray[np.float64]
    canal_section: CanalSection = field(repr=False)
    treated_index: int = 1

    @property
    def voxel_cc(self) -> float:
        return float(np.prod(self.spacing_mm)) / 1000.0

    def bone(self) -> NDArray[np.bool_]:
        return (self.parts > 0) & (self.parts != DISC)


def _rotation(rot_deg: float, tilt_deg: float) -> NDArray[np.float64]:
    a, t = math.radians(rot_deg), math.radians(tilt_deg)
    rz = np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0],
                   [0.0, 0.0, 1.0]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(t), -math.sin(t)],
                   [0.0, math.sin(t), math.cos(t)]])
    return rx @ rz


def _levels(spec: CaseSpec) -> tuple[LevelModel, ...]:
    base = spec.params()
    above, mid, below = neighbour_levels(spec.level)
    out = []
    for name, k in ((above, 1), (mid, 0), (below, -1)):
        p = base.scaled(1.0 - 0.03 * k) if k else base
        if region_of(name) != base.region:
            p = replace(p, ribs=False)
        out.append((name, k, p))
    models = []
    shift = {1: float(spec.level_shift_mm[0]), 0: 0.0, -1: float(spec.level_shift_mm[1])}
    for name, k, p in out:
        if k == 0:
            z = 0.0
        else:
            z = k * (base.body_height_mm / 2 + p.body_height_mm / 2 + base.disc_height_mm)
        models.append(LevelModel(name, p, z, tuple(solids(p)), shift[k]))
    return tuple(models)


def _canal_shift(levels: tuple[LevelModel, ...], lz: NDArray[np.float64]
                 ) -> NDArray[np.float64]:
    """Lateral shift (mm) of the canal at local height ``lz``: that of the level there,
    ramped linearly across each disc from the treated level's endplate."""
    treated = levels[1]
    half = treated.params.body_height_mm / 2
    disc = treated.params.disc_height_mm
    up = np.clip((lz - half) / disc, 0.0, 1.0) * levels[0].x_mm
    down = np.clip((-half - lz) / disc, 0.0, 1.0) * levels[2].x_mm
    return np.asarray(up + down, dtype=float)


def _torso(region: str) -> tuple[float, float, float]:
    """(half width, half depth, centre y) of the body outline, local frame."""
    return {"cervical": (58.0, 52.0, -12.0), "thoracic": (88.0, 70.0, -14.0),
            "lumbar": (92.0, 74.0, -16.0)}[region]


def _seed(spec: CaseSpec) -> int:
    return int.from_bytes(hashlib.sha256(spec.key().encode()).digest()[:8], "little")


def _lesion(spec: CaseSpec, p: VertebraParams) -> list[Primitive]:
    prims = lesion_primitives(spec.lesion, p, spec.side_sign)
    if spec.epidural:
        prims.append(epidural_extension(spec.lesion, p, spec.side_sign))
    if spec.paraspinal:
        prims.append(paraspinal_extension(spec.lesion, p, spec.side_sign))
    return prims


def build_scene(spec: CaseSpec) -> Scene:
    """Every array of the case on its CT grid (labels at voxel centres; CT numbers
    averaged over sub-slices 1 mm apart or less, so thick slices show partial volume)."""
    levels = _levels(spec)
    treated = levels[1]
    p = treated.params
    rot = _rotation(spec.axial_rotation_deg, spec.tilt_deg)
    off = np.asarray(spec.offset_mm, dtype=float)
    bx, by, byc = _torso(spec.region)
    half = max(bx, by) + abs(byc) + 6.0
    px, dz = spec.pixel_mm, spec.slice_mm
    n_xy = int(math.ceil(2 * half / px)) + 1
    top = levels[0].z_mm + levels[0].params.body_height_mm / 2 + 0.5 * p.disc_height_mm
    bottom = levels[2].z_mm - levels[2].params.body_height_mm / 2 - 0.5 * p.disc_height_mm
    z_lo = off[2] + bottom * math.cos(math.radians(spec.tilt_deg))
    z_hi = off[2] + top * math.cos(math.radians(spec.tilt_deg))
    # positions on a 0.5 mm lattice: contour coordinates then have at most one decimal
    # in z, never a value that rounding to 3 decimals could split into two planes
    z_lo = math.floor(z_lo * 2.0) / 2.0
    nz = int(math.floor((z_hi - z_lo) / dz)) + 1
    origin = np.array([math.floor((off[0] - half) * 2.0) / 2.0,
                       math.floor((off[1] + byc - half) * 2.0) / 2.0, z_lo])
    xs = origin[0] + px * np.arange(n_xy)
    ys = origin[1] + px * np.arange(n_xy)
    zs = origin[2] + dz * np.arange(nz)
    shape = (nz, n_xy, n_xy)
    n_sub = max(1, int(math.ceil(dz / 1.0 - 1e-9)))
    if n_sub % 2 == 0:
        n_sub += 1
    sub_offsets = (np.arange(n_sub) - (n_sub - 1) / 2) * (dz / n_sub)

    canal = canal_section(p)
    prims = _lesion(spec, p)
    boxes = _solid_boxes(levels, rot, off)
    region = spec.region
    cort_hu = CORTICAL_HU[region]
    canc_hu = CANCELLOUS_HU[region]

    parts = np.zeros(shape, dtype=np.uint8)
    lev = np.full(shape, -1, dtype=np.int8)
    canal_m = np.zeros(shape, dtype=bool)
    sac_m = np.zeros(shape, dtype=bool)
    cord_m = np.zeros(shape, dtype=bool)
    body_m = np.zeros(shape, dtype=bool)
    gtv_m = np.zeros(shape, dtype=bool)
    hu_acc = np.zeros(shape, dtype=np.float32)
    xx, yy = np.meshgrid(xs, ys, indexing="xy")   # (row=y, col=x)
    rinv = rot.T
    # the spine's window (rows, columns): every solid of every level, the canal and the
    # lesion; outside it only soft tissue, which does not depend on z without tilt
    allb = np.array([b for row in boxes for b in row])
    c0, c1 = _window(allb[:, 0].min() - 25.0, allb[:, 1].max() + 25.0, float(xs[0]), px, n_xy)
    r0, r1 = _window(allb[:, 2].min() - 25.0, allb[:, 3].max() + 25.0, float(ys[0]), px, n_xy)
    win = (slice(r0, r1), slice(c0, c1))
    soft_cache: tuple[NDArray[np.float64], NDArray[np.bool_]] | None = None
    for k, zc in enumerate(zs):
        for si, dzs in enumerate(sub_offsets):
            z_lps = zc + dzs
            dxf, dyf, dzf = xx - off[0], yy - off[1], z_lps - off[2]
            if soft_cache is None or spec.tilt_deg != 0.0:
                lxf = rinv[0, 0] * dxf + rinv[0, 1] * dyf + rinv[0, 2] * dzf
                lyf = rinv[1, 0] * dxf + rinv[1, 1] * dyf + rinv[1, 2] * dzf
                soft_cache = _soft_tissue(spec, lxf, lyf, p)
            soft, body = soft_cache
            dxw, dyw = dxf[win], dyf[win]
            lx = rinv[0, 0] * dxw + rinv[0, 1] * dyw + rinv[0, 2] * dzf
            ly = rinv[1, 0] * dxw + rinv[1, 1] * dyw + rinv[1, 2] * dzf
            lz = rinv[2, 0] * dxw + rinv[2, 1] * dyw + rinv[2, 2] * dzf
            f = _slice_fields(spec, levels, boxes, lx, ly, lz, z_lps, xs[c0:c1], ys[r0:r1],
                              canal, prims)
            hu = soft.copy()
            hu[win] = _slice_hu(spec, f, px, cort_hu, canc_hu, levels, soft[win])
            hu_acc[k] += hu.astype(np.float32)
            if si == (n_sub - 1) // 2:
                parts[k][win], lev[k][win] = f["parts"], f["level"]
                canal_m[k][win], sac_m[k][win] = f["canal"], f["sac"]
                cord_m[k][win], gtv_m[k][win] = f["cord"], f["gtv"]
                body_m[k] = body
    hu_acc /= n_sub
    rng = np.random.default_rng(_seed(spec))
    if spec.noise_hu > 0:
        hu_acc += rng.normal(0.0, spec.noise_hu, size=shape).astype(np.float32)
    hu_acc[~body_m & (hu_acc < -900)] = -1000.0
    ct_hu: NDArray[np.int16] = np.clip(np.rint(hu_acc), -1024, 3000).astype(np.int16)
    return Scene(spec=spec, origin_mm=origin, spacing_mm=np.array([px, px, dz]), shape=shape,
                 levels=levels, hu=ct_hu, parts=parts, level_index=lev, canal=canal_m,
                 sac=sac_m, cord=cord_m, body=body_m, gtv=gtv_m, rotation=rot, offset=off,
                 canal_section=canal)


def _solid_boxes(levels: tuple[LevelModel, ...], rot: NDArray[np.float64],
                 off: NDArray[np.float64]) -> list[list[NDArray[np.float64]]]:
    """LPS bounding box (x0, x1, y0, y1, z0, z1) of every solid of every level."""
    out = []
    for lv in levels:
        row = []
        for s in lv.solids:
            x0, x1, y0, y1, z0, z1 = s.box
            corners = np.array([[x + lv.x_mm, y, z + lv.z_mm] for x in (x0, x1) for y in (y0, y1)
                                for z in (z0, z1)])
            c = corners @ rot.T + off
            row.append(np.array([c[:, 0].min(), c[:, 0].max(), c[:, 1].min(), c[:, 1].max(),
                                 c[:, 2].min(), c[:, 2].max()]))
        out.append(row)
    return out


def _window(lo: float, hi: float, start: float, step: float, n: int) -> tuple[int, int]:
    i0 = max(0, int(math.floor((lo - start) / step)))
    i1 = min(n, int(math.ceil((hi - start) / step)) + 1)
    return i0, i1


def _slice_fields(spec: CaseSpec, levels: tuple[LevelModel, ...],
                  boxes: list[list[NDArray[np.float64]]], lx: NDArray[np.float64],
                  ly: NDArray[np.float64], lz: NDArray[np.float64], z_lps: float,
                  xs: NDArray[np.float64], ys: NDArray[np.float64], canal: CanalSection,
                  prims: list[Primitive]) -> dict[str, NDArray[Any]]:
    shape = lx.shape
    parts = np.zeros(shape, dtype=np.uint8)
    lev = np.full(shape, -1, dtype=np.int8)
    step = float(xs[1] - xs[0])
    for li, lv in enumerate(levels):
        for s, b in zip(lv.solids, boxes[li], strict=True):
            if not b[4] <= z_lps <= b[5]:
                continue
            c0, c1 = _window(b[0], b[1], float(xs[0]), step, len(xs))
            r0, r1 = _window(b[2], b[3], float(ys[0]), step, len(ys))
            if c1 <= c0 or r1 <= r0:
                continue
            sub = parts[r0:r1, c0:c1]
            sx = lx[r0:r1, c0:c1] if lv.x_mm == 0.0 else lx[r0:r1, c0:c1] - lv.x_mm
            hit = s.inside(sx, ly[r0:r1, c0:c1], lz[r0:r1, c0:c1] - lv.z_mm)
            hit &= sub == 0
            sub[hit] = s.code
            lev[r0:r1, c0:c1][hit] = li
    bone = parts > 0
    # discs: between consecutive bodies and beyond the end ones, same outline as a body
    for li, lv in enumerate(levels):
        p = lv.params
        top = lv.z_mm + p.body_height_mm / 2
        zlo, zhi = top - 1.0, top + p.disc_height_mm + 1.0
        zl = lz
        near = (zl >= zlo) & (zl <= zhi)
        if li == len(levels) - 1:
            bot = lv.z_mm - p.body_height_mm / 2
            near |= (zl <= bot + 1.0) & (zl >= bot - p.disc_height_mm - 1.0)
        if not near.any():
            continue
        disc = near & body_outline(p, lx if lv.x_mm == 0.0 else lx - lv.x_mm, ly) & ~bone
        parts[disc] = DISC
        lev[disc] = li
    # the canal, sac and cord follow a scoliotic step of the neighbours
    cx = lx if levels[0].x_mm == levels[2].x_mm == 0.0 else lx - _canal_shift(levels, lz)
    canal_m = canal.contains(cx, ly) & ~bone
    p = levels[1].params
    cw, cd = p.canal_half_width_mm, p.canal_half_depth_mm
    sac = canal_m & ((cx / (0.75 * cw)) ** 2 + ((ly - 0.05 * cd) / (0.75 * cd)) ** 2 <= 1.0)
    if spec.region == "lumbar":
        cord = np.zeros(shape, dtype=bool)
    else:
        ca, cb = (6.5, 4.0) if spec.region == "cervical" else (4.5, 4.0)
        cord = (cx / ca) ** 2 + ((ly + 0.5) / cb) ** 2 <= 1.0
    gtv = np.zeros(shape, dtype=bool)
    treated_bone = (lev == 1) & bone & (parts != RIB_L) & (parts != RIB_R)
    for prim in prims:
        m = inside_ellipsoid(prim, lx, ly, lz)
        if not m.any():
            continue
        kind, codes = prim.clip
        if kind == "parts":
            m &= treated_bone & np.isin(parts, list(codes))
        elif kind == "epidural":
            m &= canal_m & ~sac
        elif kind == "outside":
            m &= ~canal_m
        elif kind == "vertebra":
            m &= treated_bone
        gtv |= m
    return {"parts": parts, "level": lev, "canal": canal_m, "sac": sac, "cord": cord,
            "gtv": gtv, "lx": lx, "ly": ly, "lz": lz}


def _soft_tissue(spec: CaseSpec, lx: NDArray[np.float64], ly: NDArray[np.float64],
                 p: VertebraParams) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """CT numbers of everything but the spine and canal, and the body outline."""
    region = spec.region
    bxh, byh, byc = _torso(region)
    body = (lx / bxh) ** 2 + ((ly - byc) / byh) ** 2 <= 1.0
    hu = np.full(lx.shape, HU["air"], dtype=np.float64)
    inner = (lx / (bxh - 10.0)) ** 2 + ((ly - byc) / (byh - 10.0)) ** 2 <= 1.0
    hu[body] = HU["fat"]
    hu[inner] = HU["soft_tissue"]
    if region == "thoracic":
        for s in (1, -1):
            lung = ((lx - s * 50.0) / 30.0) ** 2 + ((ly + 32.0) / 36.0) ** 2 <= 1.0
            hu[lung & inner] = HU["lung"]
    elif region == "cervical":
        trachea = lx ** 2 + (ly - (p.body_centre_y_mm - p.body_half_depth_mm - 12.0)) ** 2 <= 64
        hu[trachea] = HU["air"]
    else:
        gut = (lx / 60.0) ** 2 + ((ly + 62.0) / 22.0) ** 2 <= 1.0
        hu[gut & inner] = -90.0
    return hu, body


def _slice_hu(spec: CaseSpec, f: dict[str, NDArray[Any]], px: float, cort: float,
              canc: float, levels: tuple[LevelModel, ...], soft: NDArray[np.float64]
              ) -> NDArray[np.float64]:
    parts = f["parts"]
    hu = soft.copy()
    p = levels[1].params
    canal = f["canal"].astype(bool)
    hu[canal] = HU["fat"]
    hu[f["sac"].astype(bool)] = HU["csf"]
    hu[f["cord"].astype(bool) & f["sac"].astype(bool)] = HU["cord"]
    hu[parts == DISC] = HU["disc"]
    bone = (parts > 0) & (parts != DISC)
    if bone.any():
        rows = np.flatnonzero(bone.any(axis=1))
        cols = np.flatnonzero(bone.any(axis=0))
        r0, r1 = max(rows[0] - 3, 0), rows[-1] + 4
        c0, c1 = max(cols[0] - 3, 0), cols[-1] + 4
        sub = bone[r0:r1, c0:c1]
        dist = ndimage.distance_transform_edt(sub, sampling=(px, px))
        hb = np.where(dist <= p.cortical_mm, cort, canc)
        region_hu = hu[r0:r1, c0:c1]
        region_hu[sub] = hb[sub]
        # endplates: the body's cranial and caudal cortex
        lz, lev = f["lz"], f["level"]
        for li, lv in enumerate(levels):
            q = lv.params
            ep = ((parts == BODY) & (lev == li) & (np.abs(lz - lv.z_mm) >= q.body_height_mm / 2
                                                   - q.endplate_concavity_mm - q.cortical_mm))
            hu[ep] = cort
    gtv = f["gtv"].astype(bool)
    if gtv.any():
        if spec.density == "lytic":
            hu[gtv] = HU["tumour"]
        elif spec.density == "blastic":
            hu[gtv & bone] = HU["blastic"]
            hu[gtv & ~bone] = HU["tumour"]
        else:
            hu[gtv & ~bone] = HU["tumour"]
    return hu
