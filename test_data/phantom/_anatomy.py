"""The phantom's anatomy: analytic shapes in LPS mm, piecewise constant along z.

Every cross-section is built from ellipses, boxes and angular wedges (see
:mod:`._shapes`), so that each bone point's ISRC sector is known by construction:

* vertebral body (sector 1): an ellipse anterior to the canal, plus the anterior
  part of the ring around the canal;
* the ring around the canal (outer ellipse minus the canal), split by angle about
  the canal centre into sectors 1-6 (angles ``atan2(y - y_canal, x)``: 0 deg is the
  patient's left, 90 deg posterior);
* transverse processes (boxes, sectors 3 and 5 outside the ring) and the spinous
  process (box, sector 4 outside the ring).

All vertebrae have the same cross-section; each spans a z range (the body height),
with intervertebral discs between them.  The GTV, CTV and PTV are unions of such
z-constant pieces, which makes the 3D PTV expansion exact slice by slice.

Sizes come from the recipe's ``region`` (:meth:`SpineDimensions.for_region`).  The
whole spine may be placed rigidly: an axial rotation about the superior axis through
the canal centre, applied to the planar fields (which stay z-constant), and a sagittal
tilt about the left-right axis through the treated level's canal centre.  With a tilt
the shapes are z-constant in the spine's own frame ``(x, v, w)``; :meth:`Anatomy.to_local`
maps LPS points into it.  Rigid placements keep signed distances, so every truth by
construction (sectors, PTV margin, cord distance) is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ._recipe import VB_HEIGHT_MM, PhantomRecipe, consensus_ctv_sectors
from ._shapes import (
    EMPTY,
    Field,
    box,
    disk,
    ellipse,
    intersect,
    subtract,
    union,
    wedge,
)

__all__ = ["SECTOR_NAMES", "Anatomy", "SpineDimensions", "Zone"]

FloatArray = NDArray[np.float64]
# half-extent (mm) of the spine in v about the canal centre, for the tilted CT's z cover
_SPINE_REACH_MM = 50.0

SECTOR_NAMES: dict[int, str] = {
    1: "vertebral body",
    2: "left pedicle",
    3: "left transverse process and lamina",
    4: "spinous process",
    5: "right transverse process and lamina",
    6: "right pedicle",
}

# Sector wedges about the canal centre, degrees (start, stop), counter-clockwise in x-y.
_WEDGES_DEG: dict[int, tuple[float, float]] = {
    1: (-125.0, -55.0), 2: (-55.0, 30.0), 3: (30.0, 78.0),
    4: (78.0, 102.0), 5: (102.0, 150.0), 6: (150.0, 235.0),
}
_MID_DEG = {1: -90.0, 2: -12.0, 3: 55.0, 4: 90.0, 5: 125.0, 6: 192.0}
_RING = (1, 2, 3, 4, 5, 6)


@dataclass(frozen=True)
class SpineDimensions:
    """Sizes of the phantom (mm).  Defaults are thoracic; the body is a small elliptic torso.

    Processes are boxes: transverse processes ``x in +/-tp_x_mm`` and ``y in canal
    centre + tp_y_mm``; the spinous process ``|x| <= spinous_half_width_mm`` and
    ``y in canal centre + spinous_y_mm``.  ``feature_scale`` scales the GTV's blobs
    (positions about the canal or body centre and radii) relative to the thoracic case.
    """

    body_semi_axes_mm: tuple[float, float] = (72.0, 60.0)
    canal_centre_y_mm: float = 15.0
    canal_semi_axes_mm: tuple[float, float] = (8.5, 7.5)
    cord_semi_axes_mm: tuple[float, float] = (4.5, 4.0)
    vb_offset_y_mm: float = -20.0          # vertebral body centre relative to canal centre
    vb_semi_axes_mm: tuple[float, float] = (17.0, 13.0)
    ring_semi_axes_mm: tuple[float, float] = (14.0, 13.5)
    vb_height_mm: float = 18.0
    disc_height_mm: float = 6.0
    epidural_cord_clearance_mm: float = 1.0
    tp_x_mm: tuple[float, float] = (11.0, 28.0)
    tp_y_mm: tuple[float, float] = (1.0, 8.0)
    spinous_half_width_mm: float = 3.0
    spinous_y_mm: tuple[float, float] = (9.0, 32.0)
    feature_scale: float = 1.0

    @classmethod
    def for_region(cls, region: str) -> SpineDimensions:
        """Typical adult sizes of a mid-cervical, mid-thoracic or mid-lumbar vertebra.

        Vertebral body width x depth about 16 x 15 mm (C5-C7), 34 x 26 mm (T9-T11) and
        45 x 32 mm (L2-L4); body heights and discs 14/5, 18/6 and 26/10 mm; the canal is
        wide and shallow in the neck and large in the lumbar spine.  In the lumbar spine
        the "cord" stands for the conus / cauda equina bundle.
        """
        if region == "thoracic":
            return cls()
        if region == "cervical":
            return cls(canal_semi_axes_mm=(9.0, 6.5), cord_semi_axes_mm=(5.0, 3.5),
                       vb_offset_y_mm=-13.5, vb_semi_axes_mm=(8.0, 7.5),
                       ring_semi_axes_mm=(12.5, 10.0), vb_height_mm=VB_HEIGHT_MM[region],
                       disc_height_mm=5.0, tp_x_mm=(10.0, 24.0), tp_y_mm=(1.0, 5.0),
                       spinous_half_width_mm=2.5, spinous_y_mm=(7.0, 24.0),
                       feature_scale=0.85)
        if region == "lumbar":
            return cls(canal_semi_axes_mm=(11.5, 8.5), cord_semi_axes_mm=(5.0, 4.0),
                       vb_offset_y_mm=-24.0, vb_semi_axes_mm=(22.5, 16.0),
                       ring_semi_axes_mm=(18.0, 17.0), vb_height_mm=VB_HEIGHT_MM[region],
                       disc_height_mm=10.0, tp_x_mm=(15.0, 42.0), tp_y_mm=(1.0, 10.0),
                       spinous_half_width_mm=4.0, spinous_y_mm=(11.0, 40.0),
                       feature_scale=1.3)
        raise ValueError(f'Argument "region" must be cervical, thoracic or lumbar, got {region!r}.')

    @property
    def pitch_mm(self) -> float:
        return self.vb_height_mm + self.disc_height_mm


@dataclass(frozen=True)
class Zone:
    """A z-constant piece of a structure: cross-section ``field`` for ``z_lo <= z <= z_hi``."""

    z_lo_mm: float
    z_hi_mm: float
    field: Field
    key: str


def _polar(r: float, deg: float, yc: float) -> tuple[float, float]:
    t = np.radians(deg)
    return float(r * np.cos(t)), float(yc + r * np.sin(t))


@dataclass
class Anatomy:
    """Shapes of one phantom, built from a recipe.

    Attributes
    ----------
    level_z_mm : dict
        Level name -> centre z of its vertebral body (treated level at z = 0).
    ctv_sectors : frozenset of int
        Sectors written into the CTV; ``expected_ctv_sectors`` are the consensus ones.
    """

    recipe: PhantomRecipe
    dims: SpineDimensions = field(default_factory=SpineDimensions)

    def __post_init__(self) -> None:
        if self.dims == SpineDimensions():  # not given: the recipe's region decides
            self.dims = SpineDimensions.for_region(self.recipe.region)
        r, d = self.recipe, self.dims
        t_idx = r.levels.index(r.treated_level)
        # levels are sorted superior first; superior is +z
        self.level_z_mm = {lv: (t_idx - i) * d.pitch_mm for i, lv in enumerate(r.levels)}
        yc = d.canal_centre_y_mm
        self.canal_centre_mm = (0.0, yc)
        self.body = ellipse(0.0, 0.0, *d.body_semi_axes_mm)
        self.canal = ellipse(0.0, yc, *d.canal_semi_axes_mm)
        self.cord = ellipse(0.0, yc, *d.cord_semi_axes_mm)
        vb = ellipse(0.0, yc + d.vb_offset_y_mm, *d.vb_semi_axes_mm)
        self.disc = vb
        ring = ellipse(0.0, yc, *d.ring_semi_axes_mm)
        (tx0, tx1), (ty0, ty1) = d.tp_x_mm, d.tp_y_mm
        tp_l = box(tx0, tx1, yc + ty0, yc + ty1)
        tp_r = box(-tx1, -tx0, yc + ty0, yc + ty1)
        sw, (sy0, sy1) = d.spinous_half_width_mm, d.spinous_y_mm
        spinous = box(-sw, sw, yc + sy0, yc + sy1)
        self.bone = subtract(union(vb, ring, tp_l, tp_r, spinous), self.canal)
        self.wedges = {s: wedge(0.0, yc, *_WEDGES_DEG[s]) for s in _RING}
        w = self.wedges
        self.sectors: dict[int, Field] = {
            1: intersect(self.bone, union(vb, intersect(ring, w[1]))),
            2: subtract(intersect(self.bone, ring, w[2]), vb),
            3: subtract(intersect(self.bone, union(intersect(ring, w[3]),
                                                   subtract(tp_l, ring))), vb),
            4: subtract(intersect(self.bone, union(intersect(ring, w[4]),
                                                   subtract(spinous, ring))), vb),
            5: subtract(intersect(self.bone, union(intersect(ring, w[5]),
                                                   subtract(tp_r, ring))), vb),
            6: subtract(intersect(self.bone, ring, w[6]), vb),
        }
        self._vb_centre = (0.0, yc + d.vb_offset_y_mm)
        self._build_targets()
        if r.axial_rotation_deg != 0.0:
            self._rotate_spine(r.axial_rotation_deg)

    # -- rigid placement ------------------------------------------------------------------
    @property
    def tilted(self) -> bool:
        return self.recipe.tilt_deg != 0.0

    def to_local(self, y: FloatArray, z: FloatArray) -> tuple[FloatArray, FloatArray]:
        """LPS ``(y, z)`` -> the spine frame's ``(v, w)`` (x is unchanged by the tilt).

        The spine frame is LPS turned by ``tilt_deg`` about the left-right axis through
        ``(y_canal, 0)``: its superior axis ``w`` points to LPS ``(0, sin t, cos t)``.
        """
        yc = self.canal_centre_mm[1]
        t = np.radians(self.recipe.tilt_deg)
        c, s = float(np.cos(t)), float(np.sin(t))
        dy = np.asarray(y, np.float64) - yc
        z = np.asarray(z, np.float64)
        return yc + c * dy - s * z, s * dy + c * z

    def from_local_y(self, v: FloatArray, z: float) -> FloatArray:
        """LPS ``y`` of the spine-frame point ``v`` on the axial plane ``z``."""
        yc = self.canal_centre_mm[1]
        t = np.radians(self.recipe.tilt_deg)
        return yc + (np.asarray(v, np.float64) - yc + float(np.sin(t)) * z) / float(np.cos(t))

    def level_codes_at(self, w: FloatArray) -> NDArray[np.int64]:
        """Index into ``recipe.levels`` of the vertebral body at spine-frame ``w`` (-1: none)."""
        out = np.full(np.shape(w), -1, np.int64)
        for i, lv in enumerate(self.recipe.levels):
            lo, hi = self.vertebra_z_range(lv)
            out[(w >= lo) & (w < hi)] = i
        return out

    # -- z layout -------------------------------------------------------------------------
    def vertebra_z_range(self, level: str) -> tuple[float, float]:
        zc = self.level_z_mm[level]
        h = self.dims.vb_height_mm / 2
        return zc - h, zc + h

    def disc_z_ranges(self) -> list[tuple[float, float]]:
        """Disc slabs above and below every vertebral body."""
        out = []
        for lv in self.recipe.levels:
            lo, hi = self.vertebra_z_range(lv)
            out.append((hi, hi + self.dims.disc_height_mm))
            out.append((lo - self.dims.disc_height_mm, lo))
        return sorted(set(out))

    @property
    def z_extent_mm(self) -> tuple[float, float]:
        """z range the CT must cover: half a disc beyond the outer vertebrae."""
        zs = [self.vertebra_z_range(lv) for lv in self.recipe.levels]
        half = self.dims.disc_height_mm / 2
        lo, hi = min(z[0] for z in zs) - half, max(z[1] for z in zs) + half
        if self.tilted:
            t = np.radians(self.recipe.tilt_deg)
            reach = abs(float(np.sin(t))) * _SPINE_REACH_MM
            c = float(np.cos(t))
            lo, hi = min(lo, c * lo) - reach, max(hi, c * hi) + reach
        return lo, hi

    @property
    def gtv_z_range(self) -> tuple[float, float]:
        zc = self.level_z_mm[self.recipe.treated_level]
        h = self.recipe.gtv_height_mm / 2
        return zc - h, zc + h

    # -- targets --------------------------------------------------------------------------
    def _build_targets(self) -> None:
        r, d = self.recipe, self.dims
        yc = d.canal_centre_y_mm
        gtv_s = frozenset(r.gtv_sectors)
        vbx, vby = self._vb_centre
        k = d.feature_scale
        blobs: list[Field] = []
        if 1 in gtv_s:
            blobs.append({
                "central": disk(vbx, vby, 7.0 * k),
                "left": disk(vbx + 7.0 * k, vby + 1.0 * k, 6.0 * k),
                "right": disk(vbx - 7.0 * k, vby + 1.0 * k, 6.0 * k),
                "diffuse": ellipse(vbx, vby, 15.0 * k, 11.0 * k),
            }[r.gtv_body_position])
        r_mid = 11.0 * k
        for s in (2, 3, 5, 6):
            if s in gtv_s:
                blobs.append(disk(*_polar(r_mid, _MID_DEG[s], yc), 4.0 * k))
        if 4 in gtv_s:
            blobs.append(disk(0.0, yc + 18.0 * k, 5.0 * k))
        for a, b in zip(_RING, _RING[1:] + _RING[:1]):
            if a in gtv_s and b in gtv_s:
                blobs.append(disk(*_polar(r_mid, _WEDGES_DEG[b][0], yc), 4.0 * k))
        if r.epidural:
            ca, cb = d.canal_semi_axes_mm
            for s in gtv_s:
                t = np.radians(_MID_DEG[s])
                rc = 1.0 / np.sqrt((np.cos(t) / ca) ** 2 + (np.sin(t) / cb) ** 2)
                blobs.append(disk(*_polar(float(rc), _MID_DEG[s], yc), 4.0 * k))
        involved = union(*(self.sectors[s] for s in sorted(gtv_s)))
        self.gtv_bone = intersect(union(*blobs), involved)

        clearance = d.epidural_cord_clearance_mm
        cord = self.cord
        cord_margin: Field = lambda x, y: cord(x, y) - clearance
        self.gtv_epidural: Field = EMPTY
        if r.epidural:
            self.gtv_epidural = subtract(
                intersect(self.canal, union(*(self.wedges[s] for s in sorted(gtv_s)))),
                cord_margin)
        self.gtv_paraspinal: Field = EMPTY
        if r.paraspinal:
            s0 = 1 if 1 in gtv_s else min(gtv_s)
            if s0 == 1:
                t = np.radians(-60.0)
                centre = (vbx + 21.0 * k * np.cos(t), vby + 17.0 * k * np.sin(t))
                blob = disk(float(centre[0]), float(centre[1]), 8.0 * k)
            elif s0 == 4:
                blob = disk(7.0 * k, yc + 22.0 * k, 6.0 * k)
            else:
                blob = disk(*_polar(19.0 * k, {2: -12.0, 3: 45.0, 5: 135.0, 6: 192.0}[s0], yc),
                            7.0 * k)
            # paraspinal: soft tissue only, inside the body, outside bone and canal
            self.gtv_paraspinal = subtract(intersect(blob, self.body), self.bone, self.canal)
        self.gtv = union(self.gtv_bone, self.gtv_epidural, self.gtv_paraspinal)

        expected, rules = consensus_ctv_sectors(gtv_s, body_position=r.gtv_body_position)
        self.expected_ctv_sectors = expected
        self.isrc_rules = rules
        written = set(expected)
        planted: str | None = None
        epidural_ctv = r.epidural
        if r.ctv_sectors is not None:
            written = set(r.ctv_sectors)
            planted = "explicit" if frozenset(written) != expected else None
        elif r.ctv == "missing_sector":
            candidates = sorted(expected - gtv_s)
            if not candidates:
                raise ValueError(
                    'Recipe ctv="missing_sector" needs a consensus CTV sector that the GTV does '
                    f"not involve; GTV sectors {sorted(gtv_s)} give CTV {sorted(expected)}. "
                    "Choose other gtv_sectors or give ctv_sectors explicitly.")
            written.discard(candidates[-1])
            planted = "missing_sector"
        elif r.ctv == "extra_sector":
            spare = [s for s in _RING if s not in expected]
            if not spare:
                raise ValueError('Recipe ctv="extra_sector" needs a sector outside the '
                                 "consensus CTV; the consensus already holds all six.")
            def adjacent(s: int) -> bool:
                return bool({(s % 6) + 1, ((s - 2) % 6) + 1} & expected)
            written.add(next((s for s in spare if adjacent(s)), spare[0]))
            planted = "extra_sector"
        elif r.ctv == "circumferential":
            if expected == frozenset(_RING):
                raise ValueError('Recipe ctv="circumferential" is no error when the consensus '
                                 "CTV is already circumferential.")
            written = set(_RING)
            planted = "circumferential"
        elif r.ctv == "epidural_without_disease":
            if r.epidural:
                raise ValueError('Recipe ctv="epidural_without_disease" needs epidural=False.')
            epidural_ctv = True
            planted = "epidural_without_disease"
        self.ctv_sectors = frozenset(written)
        self.ctv_planted_error = planted
        self.ctv_includes_epidural = epidural_ctv

        ctv_base = union(*(self.sectors[s] for s in sorted(self.ctv_sectors)))
        if epidural_ctv:
            source = gtv_s if r.epidural else self.ctv_sectors
            ctv_epi = subtract(intersect(self.canal, union(*(self.wedges[s] for s in
                                                             sorted(source)))), cord_margin)
            ctv_base = union(ctv_base, ctv_epi)
        v_lo, v_hi = self.vertebra_z_range(r.treated_level)
        g_lo, g_hi = self.gtv_z_range
        zones = []
        if g_lo > v_lo:
            zones.append(Zone(v_lo, g_lo, ctv_base, "ctv_outside_gtv"))
        zones.append(Zone(g_lo, g_hi, union(ctv_base, self.gtv), "ctv_with_gtv"))
        if v_hi > g_hi:
            zones.append(Zone(g_hi, v_hi, ctv_base, "ctv_outside_gtv"))
        self.ctv_zones = zones

    def _rotate_spine(self, deg: float) -> None:
        """Turn every spine field (not the body outline) about the canal centre."""
        yc = self.canal_centre_mm[1]
        c, s = float(np.cos(np.radians(deg))), float(np.sin(np.radians(deg)))

        def turned(f: Field) -> Field:
            def g(x: FloatArray, y: FloatArray) -> FloatArray:
                dy = y - yc
                return f(c * x + s * dy, -s * x + c * dy + yc)
            return g

        self.canal = turned(self.canal)
        self.cord = turned(self.cord)
        self.disc = turned(self.disc)
        self.bone = turned(self.bone)
        self.wedges = {k: turned(f) for k, f in self.wedges.items()}
        self.sectors = {k: turned(f) for k, f in self.sectors.items()}
        self.gtv_bone = turned(self.gtv_bone)
        self.gtv_epidural = turned(self.gtv_epidural)
        self.gtv_paraspinal = turned(self.gtv_paraspinal)
        self.gtv = turned(self.gtv)
        self.ctv_zones = [Zone(z.z_lo_mm, z.z_hi_mm, turned(z.field), z.key)
                          for z in self.ctv_zones]

    # -- point classification (CT) --------------------------------------------------------
    def in_range(self, z: float, z_range: tuple[float, float]) -> bool:
        """Half-open slab test ``lo <= z < hi`` (slab edges fall between CT slices)."""
        return z_range[0] <= z < z_range[1]

    def level_at(self, z: float) -> str | None:
        """The vertebra whose body spans ``z``, if any."""
        for lv in self.recipe.levels:
            if self.in_range(z, self.vertebra_z_range(lv)):
                return lv
        return None
