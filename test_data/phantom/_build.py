"""Compute a phantom case in memory: CT grid, HU and label volumes, ROI polygons, dose."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ._anatomy import Anatomy, Zone
from ._recipe import PhantomRecipe
from ._shapes import (
    FineGrid,
    ellipse_offset_area_mm2,
    ellipse_offset_polygon,
    net_area_mm2,
)

__all__ = ["ORIENTATIONS", "CaseModel", "OrientedGrid", "RoiModel", "build_case"]

FloatArray = NDArray[np.float64]

# ImageOrientationPatient (row direction, column direction) per patient position.
ORIENTATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "HFS": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "FFS": ((-1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "HFP": ((-1.0, 0.0, 0.0), (0.0, -1.0, 0.0)),
    "FFP": ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0)),
}

HU = {
    "air": -1000, "soft_tissue": 40, "csf": 10, "cord": 35, "disc": 80,
    "cancellous": 250, "cortical": 700, "tumour": 45,
}
SCLEROTIC_HU = 1100             # blastic GTV bone (kept out of HU: older truth files list HU)
CORTEX_MM = 1.5
FINE_STEP_MM = 0.2
POLYGON_TOLERANCE_MM = 0.05
ELLIPSE_POINTS = {"BODY": 256, "default": 128}
SBRT_FALLOFF_HALF_MM = 10.0     # dose halves every 10 mm beyond the PTV
SBRT_CAP_SLOPE_PER_MM = 0.10    # cord cap rises by 10 % of the prescription per mm
SBRT_CAP_EXTRA_MM = 1.5         # cap clearance beyond one dose-cell diagonal


@dataclass(frozen=True)
class OrientedGrid:
    """An axis-aligned grid written in a patient position's orientation.

    ``xs``, ``ys``, ``zs`` are the node coordinates (ascending, mm).  Arrays are indexed
    ``(frame, row, column)``; columns run along the row direction of
    ImageOrientationPatient, rows along its column direction, frames along the
    normal (row x column), so that frames are in increasing position along it.
    """

    xs: FloatArray
    ys: FloatArray
    zs: FloatArray
    position: str

    @property
    def row_dir(self) -> NDArray[np.float64]:
        return np.asarray(ORIENTATIONS[self.position][0])

    @property
    def col_dir(self) -> NDArray[np.float64]:
        return np.asarray(ORIENTATIONS[self.position][1])

    @property
    def normal(self) -> NDArray[np.float64]:
        return np.cross(self.row_dir, self.col_dir)

    @property
    def column_x(self) -> FloatArray:
        return self.xs if self.row_dir[0] > 0 else self.xs[::-1]

    @property
    def row_y(self) -> FloatArray:
        return self.ys if self.col_dir[1] > 0 else self.ys[::-1]

    @property
    def frame_z(self) -> FloatArray:
        return self.zs if self.normal[2] > 0 else self.zs[::-1]

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.zs), len(self.ys), len(self.xs)

    def spacing(self, axis: str) -> float:
        v = {"x": self.xs, "y": self.ys, "z": self.zs}[axis]
        return float(v[1] - v[0]) if len(v) > 1 else 1.0

    def first_position(self) -> FloatArray:
        return np.array([self.column_x[0], self.row_y[0], self.frame_z[0]])

    def frame_position(self, k: int) -> FloatArray:
        return np.array([self.column_x[0], self.row_y[0], self.frame_z[k]])

    def plane_xy(self) -> tuple[FloatArray, FloatArray]:
        """``(x, y)`` of the nodes of one frame, shape (rows, columns)."""
        return np.meshgrid(self.column_x, self.row_y)

    @property
    def affine(self) -> FloatArray:
        """4x4 from ``(column, row, frame, 1)`` to LPS mm (contourqa's convention)."""
        a = np.eye(4)
        a[:3, 0] = self.row_dir * self.spacing("x")
        a[:3, 1] = self.col_dir * self.spacing("y")
        a[:3, 2] = self.normal * self.spacing("z")
        a[:3, 3] = self.first_position()
        return a


@dataclass
class RoiModel:
    """One ROI: name, number, type, colour and its polygons per CT frame.

    ``planes`` maps the CT frame index to a list of polygons, each a tuple of the
    coordinate strings as written (x, y, z per point) and their float values (N, 3).
    """

    number: int
    name: str
    interpreted_type: str
    color: tuple[int, int, int]
    description: str
    planes: dict[int, list[tuple[list[str], FloatArray]]] = field(default_factory=dict)
    volume_cc_analytic: float | None = None

    def volume_cc(self, thickness_mm: float) -> float:
        """Even-odd polygon area per plane x plane spacing (the written polygons)."""
        total = sum(net_area_mm2([p[:, :2] for _, p in polys]) for polys in self.planes.values())
        return total * thickness_mm / 1000.0

    @property
    def n_contours(self) -> int:
        return sum(len(v) for v in self.planes.values())


@dataclass
class CaseModel:
    recipe: PhantomRecipe
    anatomy: Anatomy
    ct_grid: OrientedGrid
    ct_hu: NDArray[np.int16]
    labels: NDArray[np.uint8]
    rois: list[RoiModel]
    dose_grid: OrientedGrid
    dose_int: NDArray[np.unsignedinteger]
    dose_scaling_text: str
    dose_truth: dict[str, object]


def _fmt(v: float) -> str:
    s = f"{v:.3f}"
    return "0.000" if s == "-0.000" else s


def _axis(lo: float, hi: float, step: float) -> FloatArray:
    """Multiples of ``step`` covering ``[lo, hi]``."""
    i0 = int(np.floor(lo / step + 1e-9))
    i1 = int(np.ceil(hi / step - 1e-9))
    return step * np.arange(i0, i1 + 1, dtype=np.float64)


def _ct_grid(recipe: PhantomRecipe, anatomy: Anatomy) -> OrientedGrid:
    n, dx, t = recipe.ct_matrix, recipe.ct_pixel_spacing_mm, recipe.ct_slice_thickness_mm
    half = dx * (n - 1) / 2
    bx, by = anatomy.dims.body_semi_axes_mm
    if half + dx / 2 < max(bx, by):
        raise ValueError(f'Arguments "ct_matrix" x "ct_pixel_spacing_mm" give a {2 * half + dx:.0f}'
                         f" mm field of view, too small for the {2 * bx:.0f} mm wide body.")
    xs = np.linspace(-half, half, n)
    z_lo, z_hi = anatomy.z_extent_mm
    k0 = int(np.floor(z_lo / t + 1e-9))
    k1 = int(np.ceil(z_hi / t - 1e-9))
    zs = t * (np.arange(k0, k1, dtype=np.float64) + 0.5)
    return OrientedGrid(xs=xs, ys=xs.copy(), zs=zs, position=recipe.patient_position)


def _ct_volumes(anatomy: Anatomy, grid: OrientedGrid) -> tuple[NDArray[np.int16], NDArray[np.uint8]]:
    """HU (int16) and labels (uint8: 10 x level number + sector) on the CT grid."""
    if anatomy.tilted:
        return _ct_volumes_tilted(anatomy, grid)
    r = anatomy.recipe
    x, y = grid.plane_xy()
    body = anatomy.body(x, y) < 0
    canal = anatomy.canal(x, y) < 0
    cord = anatomy.cord(x, y) < 0
    disc = anatomy.disc(x, y) < 0
    bone = anatomy.bone(x, y) < 0
    sector = np.zeros(x.shape, np.uint8)
    for s, f in anatomy.sectors.items():
        sector[(f(x, y) < 0) & bone] = s
    gtv_bone = (anatomy.gtv_bone(x, y) < 0) & bone
    gtv_soft = ((anatomy.gtv_epidural(x, y) < 0) | (anatomy.gtv_paraspinal(x, y) < 0)) & ~bone
    disc_ranges = anatomy.disc_z_ranges()
    frames = grid.frame_z
    hu = np.empty(grid.shape, np.int16)
    labels = np.zeros(grid.shape, np.uint8)
    bone3 = np.zeros(grid.shape, bool)
    lesion3 = np.zeros(grid.shape, bool)  # the GTV's bone
    for k, z in enumerate(frames):
        plane = np.full(x.shape, HU["air"], np.int16)
        plane[body] = HU["soft_tissue"]
        level = anatomy.level_at(float(z))
        if level is None and any(anatomy.in_range(float(z), d) for d in disc_ranges):
            plane[disc & body] = HU["disc"]
        plane[canal] = HU["csf"]
        plane[cord] = HU["cord"]
        if level is not None:
            plane[bone] = HU["cancellous"]
            bone3[k] = bone
            labels[k][bone] = 10 * (r.levels.index(level) + 1) + sector[bone]
            if level == r.treated_level and anatomy.in_range(float(z), anatomy.gtv_z_range):
                plane[gtv_soft] = HU["tumour"]
                lesion3[k] = gtv_bone
        hu[k] = plane
    return _finish_bone(grid, hu, labels, bone3, lesion3, r)


def _finish_bone(grid: OrientedGrid, hu: NDArray[np.int16], labels: NDArray[np.uint8],
                 bone3: NDArray[np.bool_], lesion3: NDArray[np.bool_], r: PhantomRecipe
                 ) -> tuple[NDArray[np.int16], NDArray[np.uint8]]:
    """Cortical shell, then the GTV's bone (``lesion3``) HU: tumour where the recipe's
    lesion is lytic, sclerotic where it is blastic."""
    spacing = (grid.spacing("z"), grid.spacing("y"), grid.spacing("x"))
    depth = ndimage.distance_transform_edt(bone3, sampling=spacing)
    hu[bone3 & (depth <= CORTEX_MM)] = HU["cortical"]
    if r.lytic:
        hu[lesion3] = HU["tumour"]
    if r.blastic:
        hu[lesion3] = SCLEROTIC_HU
    return hu, labels


def _ct_volumes_tilted(anatomy: Anatomy, grid: OrientedGrid
                       ) -> tuple[NDArray[np.int16], NDArray[np.uint8]]:
    """:func:`_ct_volumes` for a tilted spine: fields evaluated in the spine frame per voxel.

    Every voxel centre ``(x, y, z)`` maps to ``(x, v, w)``; the planar fields are taken
    at ``(x, v)`` and the level, disc and GTV slabs at ``w``.
    """
    r = anatomy.recipe
    x, y = grid.plane_xy()
    body = anatomy.body(x, y) < 0
    disc_ranges = anatomy.disc_z_ranges()
    g_lo, g_hi = anatomy.gtv_z_range
    treated = r.levels.index(r.treated_level)
    hu = np.empty(grid.shape, np.int16)
    labels = np.zeros(grid.shape, np.uint8)
    bone3 = np.zeros(grid.shape, bool)
    lesion3 = np.zeros(grid.shape, bool)  # the GTV's bone
    for k, z in enumerate(grid.frame_z):
        v, w = anatomy.to_local(y, np.full(y.shape, float(z)))
        level = anatomy.level_codes_at(w)
        in_disc = np.zeros(x.shape, bool)
        for lo, hi in disc_ranges:
            in_disc |= (w >= lo) & (w < hi)
        in_disc &= level < 0
        bone = (anatomy.bone(x, v) < 0) & (level >= 0)
        sector = np.zeros(x.shape, np.uint8)
        for s_, f in anatomy.sectors.items():
            sector[(f(x, v) < 0) & bone] = s_
        in_gtv = (level == treated) & (w >= g_lo) & (w < g_hi)
        gtv_bone = (anatomy.gtv_bone(x, v) < 0) & bone & in_gtv
        gtv_soft = (((anatomy.gtv_epidural(x, v) < 0) | (anatomy.gtv_paraspinal(x, v) < 0))
                    & (anatomy.bone(x, v) >= 0) & in_gtv)
        plane = np.full(x.shape, HU["air"], np.int16)
        plane[body] = HU["soft_tissue"]
        plane[(anatomy.disc(x, v) < 0) & body & in_disc] = HU["disc"]
        plane[anatomy.canal(x, v) < 0] = HU["csf"]
        plane[anatomy.cord(x, v) < 0] = HU["cord"]
        plane[bone] = HU["cancellous"]
        plane[gtv_soft] = HU["tumour"]
        labels[k][bone] = (10 * (level[bone] + 1) + sector[bone]).astype(np.uint8)
        bone3[k] = bone
        lesion3[k] = gtv_bone
        hu[k] = plane
    return _finish_bone(grid, hu, labels, bone3, lesion3, r)


def _polygon_record(poly_xy: FloatArray, z: float) -> tuple[list[str], FloatArray]:
    zs = _fmt(z)
    text: list[str] = []
    for px, py in poly_xy:
        text += [_fmt(float(px)), _fmt(float(py)), zs]
    return text, np.asarray([float(v) for v in text], dtype=np.float64).reshape(-1, 3)


def _rois(anatomy: Anatomy, grid: OrientedGrid, fine: FineGrid,
          sdf_cache: dict[str, FloatArray]) -> list[RoiModel]:
    r, d = anatomy.recipe, anatomy.dims
    yc = d.canal_centre_y_mm
    zs = grid.frame_z
    t = r.ct_slice_thickness_mm
    z_lo_all, z_hi_all = float(zs.min()) - t / 2, float(zs.max()) + t / 2
    length_mm = z_hi_all - z_lo_all
    prv_margin = r.cord_prv_margin_mm
    prv_name = (f"SpinalCord_PRV{round(prv_margin):02d}"
                if abs(prv_margin - round(prv_margin)) < 1e-9 else "SpinalCord_PRV")
    rois: list[RoiModel] = []

    def add(name: str, kind: str, color: tuple[int, int, int], description: str) -> RoiModel:
        roi = RoiModel(len(rois) + 1, name, kind, color, description)
        rois.append(roi)
        return roi

    # analytic ellipses and the cord PRV (exact parallel curve) on every slice
    for name, kind, color, semi, centre, offset, desc in (
        ("BODY", "EXTERNAL", (255, 224, 189), d.body_semi_axes_mm, (0.0, 0.0), 0.0,
         "external contour"),
        ("SpinalCanal", "ORGAN", (0, 160, 255), d.canal_semi_axes_mm, (0.0, yc), 0.0,
         "spinal canal = thecal sac"),
        ("SpinalCord", "ORGAN", (255, 255, 0), d.cord_semi_axes_mm, (0.0, yc), 0.0,
         "spinal cord"),
        (prv_name, "AVOIDANCE", (255, 128, 0), d.cord_semi_axes_mm, (0.0, yc), prv_margin,
         f"spinal cord + {prv_margin:g} mm"),
    ):
        roi = add(name, kind, color, desc)
        n_pts = ELLIPSE_POINTS.get(name, ELLIPSE_POINTS["default"])
        poly = ellipse_offset_polygon(*centre, *semi, offset_mm=offset, n_points=n_pts)
        roi.volume_cc_analytic = ellipse_offset_area_mm2(*semi, offset) * length_mm / 1000.0
        if name == "BODY":
            for k, z in enumerate(zs):
                roi.planes[k] = [_polygon_record(poly, float(z))]
            continue
        poly = _turned_polygon(poly, r.axial_rotation_deg, yc)
        if anatomy.tilted:
            # an oblique cut of a (tilted) elliptic cylinder: stretched in y and shifted
            roi.volume_cc_analytic /= float(np.cos(np.radians(r.tilt_deg)))
        for k, z in enumerate(zs):
            placed = poly
            if anatomy.tilted:
                placed = np.column_stack([poly[:, 0], anatomy.from_local_y(poly[:, 1], float(z))])
            roi.planes[k] = [_polygon_record(placed, float(z))]

    if anatomy.tilted:
        _tilted_solids(anatomy, grid, fine, sdf_cache, add, prv_name)
        return rois

    cache: dict[str, list[FloatArray]] = {}

    def polygons_of(key: str, compute) -> list[FloatArray]:  # type: ignore[no-untyped-def]
        if key not in cache:
            cache[key] = fine.polygons(compute(), tolerance_mm=POLYGON_TOLERANCE_MM)
        return cache[key]

    for lv in r.levels:
        roi = add(f"VB_T{int(lv[1:]):02d}" if lv[0] == "T" else f"VB_{lv}", "ORGAN",
                  (230, 230, 200) if lv != r.treated_level else (255, 200, 150),
                  f"vertebra {lv} (all six ISRC sectors)")
        rng = anatomy.vertebra_z_range(lv)
        for k, z in enumerate(zs):
            if anatomy.in_range(float(z), rng):
                polys = polygons_of("bone", lambda: fine.sample(anatomy.bone))
                roi.planes[k] = [_polygon_record(p, float(z)) for p in polys]

    gtv = add("GTV", "GTV", (255, 0, 0), "gross tumour volume")
    for k, z in enumerate(zs):
        if anatomy.in_range(float(z), anatomy.gtv_z_range):
            polys = polygons_of("gtv", lambda: fine.sample(anatomy.gtv))
            gtv.planes[k] = [_polygon_record(p, float(z)) for p in polys]

    ctv = add("CTV", "CTV", (0, 255, 0), "clinical target volume")
    for k, z in enumerate(zs):
        for zone in anatomy.ctv_zones:
            if anatomy.in_range(float(z), (zone.z_lo_mm, zone.z_hi_mm)):
                polys = polygons_of(zone.key, lambda zone=zone: fine.sample(zone.field))
                ctv.planes[k] = [_polygon_record(p, float(z)) for p in polys]

    ptv = add("PTV", "PTV", (255, 0, 255), f"CTV + {r.ptv_margin_mm:g} mm"
              + (f" minus {prv_name}" if r.ptv_cord_carveout else ""))
    def sdf(zone: Zone) -> FloatArray:
        return _zone_sdf(zone, fine, sdf_cache)

    prv_field = fine.sample(anatomy.cord) - prv_margin
    margin = r.ptv_margin_mm
    for k, z in enumerate(zs):
        parts = []
        for zone in anatomy.ctv_zones:
            dz = max(0.0, zone.z_lo_mm - float(z), float(z) - zone.z_hi_mm)
            if dz < margin or (dz == 0.0 and margin == 0.0):
                parts.append((zone, float(np.sqrt(max(margin**2 - dz**2, 0.0)))))
        if not parts:
            continue
        key = "ptv:" + ";".join(f"{zone.key}@{rho:.6f}" for zone, rho in parts)

        def compute(parts=parts) -> FloatArray:  # type: ignore[no-untyped-def]
            field_ = np.minimum.reduce([sdf(zone) - rho for zone, rho in parts])
            if r.ptv_cord_carveout:
                field_ = np.maximum(field_, -prv_field)
            return field_

        ptv.planes[k] = [_polygon_record(p, float(z)) for p in polygons_of(key, compute)]
    return rois


def _turned_polygon(poly: FloatArray, deg: float, yc: float) -> FloatArray:
    """``poly`` (N, 2) rotated by ``deg`` counter-clockwise about ``(0, yc)``."""
    if deg == 0.0:
        return poly
    c, s = float(np.cos(np.radians(deg))), float(np.sin(np.radians(deg)))
    dy = poly[:, 1] - yc
    return np.column_stack([c * poly[:, 0] - s * dy, s * poly[:, 0] + c * dy + yc])


def _rows_at(values: FloatArray, fine: FineGrid, v: FloatArray) -> FloatArray:
    """A fine-grid sample of the spine frame, read back at spine-frame rows ``v`` (mm).

    A tilt changes only ``y`` into ``v`` (one value per fine-grid row of an axial
    plane), so linear interpolation between sample rows suffices; rows beyond the grid
    take its edge values (outside every shape).
    """
    rows = np.clip((v - fine.y0_mm) / fine.step_mm, 0.0, fine.n_rows - 1.0)
    i0 = np.minimum(np.floor(rows).astype(np.int64), fine.n_rows - 2)
    f = (rows - i0)[:, None]
    return values[i0] * (1.0 - f) + values[i0 + 1] * f


def _tilted_solids(anatomy: Anatomy, grid: OrientedGrid, fine: FineGrid,
                   sdf_cache: dict[str, FloatArray], add, prv_name: str) -> None:  # type: ignore[no-untyped-def]
    """Vertebra, GTV, CTV and PTV polygons of a tilted spine, plane by plane.

    Each solid is a spine-frame prism (planar field x ``w`` slab); on an axial plane
    its field is ``max(planar field at (x, v), slab distance at w)``, whose zero set is
    the exact cut.  The PTV is the CTV's exact 3D expansion computed in the spine
    frame (distances survive the rigid tilt): ``hypot(max(d_plane, 0), d_w)``.
    """
    r = anatomy.recipe
    _, y = fine.coordinates()
    y_rows = y[:, 0]
    samples: dict[str, FloatArray] = {}

    def sample(key: str, f) -> FloatArray:  # type: ignore[no-untyped-def]
        if key not in samples:
            samples[key] = fine.sample(f)
        return samples[key]

    def slab(w: FloatArray, lo: float, hi: float) -> FloatArray:
        return np.maximum(lo - w, w - hi)[:, None]

    def polys(values: FloatArray, z: float) -> list[tuple[list[str], FloatArray]]:
        return [_polygon_record(p, z)
                for p in fine.polygons(values, tolerance_mm=POLYGON_TOLERANCE_MM)]

    planes_vw = [anatomy.to_local(y_rows, np.full(y_rows.shape, float(z)))
                 for z in grid.frame_z]

    def fill_slab(roi, key: str, field, lo: float, hi: float) -> None:  # type: ignore[no-untyped-def]
        """Contours of ``field`` cut to the slab ``lo <= w <= hi`` on every CT plane."""
        for k, (z, (v, w)) in enumerate(zip(grid.frame_z, planes_vw)):
            cut = slab(w, lo, hi)
            if cut.min() < 0:
                found = polys(np.maximum(_rows_at(sample(key, field), fine, v), cut), float(z))
                if found:
                    roi.planes[k] = found
    for lv in r.levels:
        roi = add(f"VB_T{int(lv[1:]):02d}" if lv[0] == "T" else f"VB_{lv}", "ORGAN",
                  (230, 230, 200) if lv != r.treated_level else (255, 200, 150),
                  f"vertebra {lv} (all six ISRC sectors)")
        fill_slab(roi, "bone", anatomy.bone, *anatomy.vertebra_z_range(lv))

    gtv = add("GTV", "GTV", (255, 0, 0), "gross tumour volume")
    fill_slab(gtv, "gtv", anatomy.gtv, *anatomy.gtv_z_range)

    ctv = add("CTV", "CTV", (0, 255, 0), "clinical target volume")
    zones = anatomy.ctv_zones
    for k, (z, (v, w)) in enumerate(zip(grid.frame_z, planes_vw)):
        parts = [np.maximum(_rows_at(sample(zone.key, zone.field), fine, v),
                            slab(w, zone.z_lo_mm, zone.z_hi_mm))
                 for zone in zones if np.any(slab(w, zone.z_lo_mm, zone.z_hi_mm) < 0)]
        if parts:
            found = polys(np.minimum.reduce(parts), float(z))
            if found:
                ctv.planes[k] = found

    margin = r.ptv_margin_mm
    ptv = add("PTV", "PTV", (255, 0, 255), f"CTV + {margin:g} mm"
              + (f" minus {prv_name}" if r.ptv_cord_carveout else ""))
    prv = sample("cord", anatomy.cord) - r.cord_prv_margin_mm
    for k, (z, (v, w)) in enumerate(zip(grid.frame_z, planes_vw)):
        parts = []
        for zone in zones:
            dz = np.maximum(slab(w, zone.z_lo_mm, zone.z_hi_mm), 0.0)
            if dz.min() > margin:
                continue
            d_plane = _rows_at(_zone_sdf(zone, fine, sdf_cache), fine, v)
            parts.append(np.where(dz > 0, np.hypot(np.maximum(d_plane, 0.0), dz), d_plane)
                         - margin)
        if not parts:
            continue
        field_ = np.minimum.reduce(parts)
        if r.ptv_cord_carveout:
            field_ = np.maximum(field_, -_rows_at(prv, fine, v))
        found = polys(field_, float(z))
        if found:
            ptv.planes[k] = found


def _zone_sdf(zone: Zone, fine: FineGrid, cache: dict[str, FloatArray]) -> FloatArray:
    if zone.key not in cache:
        cache[zone.key] = fine.signed_distance(fine.sample(zone.field) < 0)
    return cache[zone.key]


def _scaling(max_gy: float, bits: int) -> str:
    top = 65535 if bits == 16 else 4294967295
    for text in ("0.000001", "0.00001", "0.0001", "0.001", "0.01", "0.1"):
        if bits == 16 and float(text) < 0.001:
            continue
        if max_gy / float(text) <= top:
            return text
    raise ValueError(f"Dose up to {max_gy:.1f} Gy cannot be stored in {bits} bits.")


def _dose(anatomy: Anatomy, ct: OrientedGrid, fine: FineGrid,
          sdf_cache: dict[str, FloatArray]) -> tuple[OrientedGrid, NDArray[np.unsignedinteger],
                                                        str, dict[str, object]]:
    r, d = anatomy.recipe, anatomy.dims
    s = r.dose_grid_spacing_mm
    bx, by = d.body_semi_axes_mm
    grid = OrientedGrid(xs=_axis(-bx, bx, s), ys=_axis(-by, by, s),
                        zs=_axis(float(ct.zs.min()), float(ct.zs.max()), s),
                        position=r.patient_position)
    x2, y2 = grid.plane_xy()
    z3 = grid.frame_z[:, None, None]
    x3, y3 = x2[None], y2[None]
    truth: dict[str, object] = {"model": r.dose_model}
    if r.dose_model == "analytic":
        g = np.asarray(r.analytic_gradient_gy_per_mm)
        dose = r.analytic_intercept_gy + g[0] * x3 + g[1] * y3 + g[2] * z3
        if dose.min() < 0:
            raise ValueError("The analytic dose is negative somewhere on the dose grid; raise "
                             '"analytic_intercept_gy" or lower "analytic_gradient_gy_per_mm".')
        truth.update(intercept_gy=r.analytic_intercept_gy,
                     gradient_gy_per_mm=list(map(float, g)),
                     formula="D(x, y, z) = intercept_gy + gradient_gy_per_mm . (x, y, z), LPS mm")
        text = _scaling(float(dose.max()), r.dose_bits)
        scale = float(text)
        ints = np.rint(dose / scale)
        truth["exact_at_grid_nodes"] = bool(np.max(np.abs(ints * scale - dose)) < 1e-9)
    else:
        rx = r.prescription_gy
        text = _scaling(rx * 1.001, r.dose_bits)
        scale = float(text)
        cord_int = round(r.cord_max_gy / scale)
        cord_max = cord_int * scale
        # spine-frame coordinates of the nodes: (1, rows, cols) planes unless tilted
        xq, vq, wq = x3, y3, z3
        if anatomy.tilted:
            vq, wq = anatomy.to_local(np.broadcast_to(y3, grid.shape),
                                      np.broadcast_to(z3, grid.shape))
            xq = np.broadcast_to(x3, grid.shape)
        outside = fine.distance_outside(xq, vq)
        dist = np.full(grid.shape, np.inf)
        for zone in anatomy.ctv_zones:
            sd = _zone_sdf(zone, fine, sdf_cache)
            d2 = np.maximum(fine.interpolate(sd, xq, vq), 0.0) + outside
            dz = np.maximum(np.maximum(zone.z_lo_mm - wq, wq - zone.z_hi_mm), 0.0)
            dist = np.minimum(dist, np.hypot(d2, dz))
        beyond = np.maximum(dist - r.ptv_margin_mm, 0.0)
        target = rx * np.exp2(-beyond / SBRT_FALLOFF_HALF_MM)
        rho = anatomy.cord(xq, vq)
        clearance = float(np.hypot(s, s)) + SBRT_CAP_EXTRA_MM
        cap = cord_max + SBRT_CAP_SLOPE_PER_MM * rx * np.maximum(rho - clearance, 0.0)
        dose = np.minimum(target, cap)
        ints = np.rint(dose / scale)
        inside = np.broadcast_to(rho < 0, grid.shape)
        near = np.broadcast_to(rho < clearance - 0.5, grid.shape)
        if ints[inside].max() != cord_int or ints[near].max() > cord_int:
            raise ValueError(
                f"The cord maximum of {r.cord_max_gy} Gy is not reached inside the cord with "
                f"this target; lower \"cord_max_gy\" (prescription {rx} Gy).")
        hits = np.argwhere(inside & (ints == cord_int))
        pts = np.column_stack([grid.column_x[hits[:, 2]], grid.row_y[hits[:, 1]],
                               grid.frame_z[hits[:, 0]]])
        best = pts[np.lexsort((pts[:, 1], np.abs(pts[:, 2])))[0]]
        truth.update(
            prescription_gy=rx, cord_dmax_gy=cord_int * scale,
            cord_dmax_point_mm=[float(v) for v in best],
            cord_dmax_nodes_inside_cord=len(hits),
            cord_cap_clearance_mm=clearance,
            description=(
                "D = min(Rx * 2^(-max(0, dist_to_CTV - ptv_margin) / 10 mm), "
                "cord_max + 0.1 * Rx/mm * max(0, dist_to_cord - clearance)); every dose node "
                "within 'cord_cap_clearance_mm' - 0.5 mm of the cord is <= cord_dmax_gy and "
                "some nodes inside the cord equal it, so the maximum over the cord is exactly "
                "cord_dmax_gy for nearest-node, trilinear and any supersampled evaluation."))
    top = 65535 if r.dose_bits == 16 else 4294967295
    if ints.min() < 0 or ints.max() > top:
        raise ValueError("Dose out of range for the chosen dose_bits.")
    dtype = np.uint16 if r.dose_bits == 16 else np.uint32
    truth.update(grid_scaling_gy=scale, bits_allocated=r.dose_bits,
                 max_gy=float(ints.max()) * scale)
    return grid, ints.astype(dtype), text, truth


def build_case(recipe: PhantomRecipe) -> CaseModel:
    """Compute every volume, polygon and dose of a recipe (no files written)."""
    anatomy = Anatomy(recipe)
    yc = anatomy.dims.canal_centre_y_mm
    fine = FineGrid.covering((-50.0, 50.0), (yc - 55.0, yc + 45.0), FINE_STEP_MM)
    sdf_cache: dict[str, FloatArray] = {}
    _check_gtv_sectors(anatomy, fine)
    ct = _ct_grid(recipe, anatomy)
    hu, labels = _ct_volumes(anatomy, ct)
    rois = _rois(anatomy, ct, fine, sdf_cache)
    dose_grid, dose_int, text, dose_truth = _dose(anatomy, ct, fine, sdf_cache)
    return CaseModel(recipe, anatomy, ct, hu, labels, rois, dose_grid, dose_int, text, dose_truth)


def _check_gtv_sectors(anatomy: Anatomy, fine: FineGrid) -> None:
    """The GTV's bone part must occupy every requested sector (and no other, by construction)."""
    gtv = fine.sample(anatomy.gtv_bone) < 0
    for s in anatomy.recipe.gtv_sectors:
        area = float(np.count_nonzero(gtv & (fine.sample(anatomy.sectors[s]) < 0))) \
            * fine.step_mm**2
        if area < 2.0:
            raise ValueError(f"GTV occupies only {area:.2f} mm2 of sector {s}; phantom bug.")
