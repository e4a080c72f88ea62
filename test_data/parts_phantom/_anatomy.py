"""Vertebrae built from anatomical parts, each part its own solid with its own label.

Local frame of a vertebra (mm): ``x`` to the patient's left, ``y`` posterior, ``z``
superior; the origin is the centre of the spinal canal level with the middle of the
vertebral body.  Every part is an analytic solid in this frame; a point takes the
label of the first part (in :data:`PRIORITY`) that contains it.  Nothing here is
taken from contourqa's sector engine: the ISRC sector of a voxel follows from the
*part* it belongs to (:data:`SECTOR_OF_PART`), never from angles about the canal.

Parts
-----
* body: kidney-shaped (an ellipse with a concave posterior wall), slightly concave
  endplates;
* pedicles: elliptic bars of width ``pedicle_width_mm`` (the transverse width of the
  bone, measured perpendicular to the pedicle's axis) from the articular pillar to
  inside the posterolateral body, converging anteriorly by
  ``pedicle_convergence_deg``, on the cranial half of the body;
* articular pillars with their superior and inferior articular processes (facets),
  offset along the facet axis so that the processes of neighbouring vertebrae
  interlock with a joint gap and do not touch;
* laminae: curved plates from each pillar to the midline behind the canal, hanging
  caudally (shingled);
* transverse processes: bars from the pillar (pedicle-lamina junction), pointing
  posterolaterally (thoracic) or laterally (lumbar); in the cervical spine, a ring
  around the foramen transversarium lateral to the pedicle, and a short bar;
* spinous process: a plate from the laminar junction, inclined caudally;
* ribs (thoracic, optional): head by the posterolateral body, neck anterior to the
  transverse process, a gap of about 1.5 mm at the joints; not part of the vertebra.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

__all__ = [
    "ARTICULAR_L", "ARTICULAR_R", "BODY", "DISC", "LAMINA_L", "LAMINA_R", "PART_NAMES",
    "PEDICLE_L", "PEDICLE_R", "PRIORITY", "RIB_L", "RIB_R", "SECTOR_OF_PART", "SPINOUS",
    "SUB_LABEL", "TP_L", "TP_R", "VERTEBRA_PARTS", "PartsVertebra", "VertebraParams",
    "Solid", "body_outline", "build_vertebra", "canal_section", "region_of", "solids",
    "vertebra_parts",
]

Region = Literal["cervical", "thoracic", "lumbar"]

# part codes (uint8 label values); 0 is "not a part"
BODY = 1
PEDICLE_L, PEDICLE_R = 2, 3
ARTICULAR_L, ARTICULAR_R = 4, 5
LAMINA_L, LAMINA_R = 6, 7
TP_L, TP_R = 8, 9
SPINOUS = 10
RIB_L, RIB_R = 11, 12
DISC = 13

PART_NAMES: dict[int, str] = {
    BODY: "body", PEDICLE_L: "pedicle_left", PEDICLE_R: "pedicle_right",
    ARTICULAR_L: "articular_left", ARTICULAR_R: "articular_right",
    LAMINA_L: "lamina_left", LAMINA_R: "lamina_right",
    TP_L: "transverse_process_left", TP_R: "transverse_process_right",
    SPINOUS: "spinous_process", RIB_L: "rib_left", RIB_R: "rib_right", DISC: "disc",
}
#: Bone parts of a vertebra (ribs and discs are not).
VERTEBRA_PARTS: frozenset[int] = frozenset(range(BODY, SPINOUS + 1))

#: ISRC sector of each part (knowledge base section 1a / 0.1: 1 body, 2 left pedicle,
#: 3 left transverse process + lamina, 4 spinous process, 5 right transverse process +
#: lamina, 6 right pedicle).  The articular processes (facets and the pillar that
#: carries them) are not named in the knowledge base (section 1a lists only body,
#: pedicles, transverse process + lamina and spinous process, status SEED from the
#: review's Fig. 2): the phantom counts them with the lamina of their side (sectors 3
#: and 5), the posterolateral element that the lamina joins at the pillar, and keeps
#: them apart as sub-label ``articular_process`` so a scorer can see them.
SECTOR_OF_PART: dict[int, int] = {
    BODY: 1, PEDICLE_L: 2, ARTICULAR_L: 3, LAMINA_L: 3, TP_L: 3, SPINOUS: 4,
    LAMINA_R: 5, TP_R: 5, ARTICULAR_R: 5, PEDICLE_R: 6,
}
#: Sub-label of the parts of sectors 3 and 5.
SUB_LABEL: dict[int, str] = {
    LAMINA_L: "lamina", LAMINA_R: "lamina", TP_L: "transverse_process",
    TP_R: "transverse_process", ARTICULAR_L: "articular_process",
    ARTICULAR_R: "articular_process",
}
#: Order in which overlapping solids claim a point (first wins).
PRIORITY: tuple[int, ...] = (BODY, PEDICLE_L, PEDICLE_R, ARTICULAR_L, ARTICULAR_R,
                             LAMINA_L, LAMINA_R, TP_L, TP_R, SPINOUS)


@dataclass(frozen=True)
class VertebraParams:
    """Dimensions of one vertebra (mm, degrees), in its local frame.

    Defaults are a mid-thoracic vertebra; :meth:`for_region` gives cervical (C5-C6),
    thoracic (T9-T10) and lumbar (L3) sizes from published adult morphometry ranges
    (body width and depth, canal, pedicle, processes), rounded.

    The last five fields vary the shape beyond scaling (their defaults give the
    suite's shapes): ``body_anterior_exponent`` is the superellipse exponent of the
    body's anterior half (2 an ellipse, larger a boxier front; ``body_squareness`` is
    the posterior half's); ``body_concavity_radius_factor`` the radius of the concave
    posterior wall in canal half-widths (smaller: a deeper, narrower, more
    kidney-shaped notch); ``body_shift_mm`` moves the body anteriorly away from the
    posterior arch (longer pedicles and a deeper canal in front; negative: shorter);
    ``canal_posterior_exponent`` is the superellipse exponent of the laminar arch
    behind the canal (2 round, 1.2-1.6 the triangular lumbar canal with a posterior
    apex); ``pedicle_width_right_mm`` makes the pedicles asymmetric (None: the right
    pedicle is as wide as the left, ``pedicle_width_mm``).
    """

    region: Region = "thoracic"
    body_half_width_mm: float = 17.0
    body_half_depth_mm: float = 14.0
    body_height_mm: float = 22.0
    body_concavity_mm: float = 2.5
    endplate_concavity_mm: float = 0.8
    canal_half_width_mm: float = 8.5
    canal_half_depth_mm: float = 8.0
    pedicle_width_mm: float = 8.0
    pedicle_height_mm: float = 15.0
    pedicle_convergence_deg: float = 8.0
    pedicle_z_frac: float = 0.12
    junction_y_frac: float = 0.3
    pillar_half_depth_mm: float = 5.0
    facet_axis: Literal["x", "y"] = "y"
    facet_offset_mm: float = 3.0
    facet_half_thickness_mm: float = 2.2
    lamina_thickness_mm: float = 5.5
    lamina_drop_mm: float = 5.0
    lamina_shingle: float = 0.3
    tp_length_mm: float = 20.0
    tp_angle_deg: float = 35.0
    tp_half_thickness_mm: float = 4.5
    tp_half_height_mm: float = 5.0
    foramen_transversarium: bool = False
    spinous_length_mm: float = 38.0
    spinous_incline_deg: float = 45.0
    spinous_half_height_mm: float = 5.0
    spinous_half_thickness_mm: float = 3.0
    disc_height_mm: float = 6.0
    cortical_mm: float = 1.5
    body_squareness: float = 2.6
    pedicle_anchor_mm: float = 3.0
    ribs: bool = False
    # shape variations (defaults: the suite's shapes, unchanged) -----------------------
    body_anterior_exponent: float = 2.0
    body_concavity_radius_factor: float = 1.25
    body_shift_mm: float = 0.0
    canal_posterior_exponent: float = 2.0
    pedicle_width_right_mm: float | None = None

    @classmethod
    def for_region(cls, region: str, **changes: object) -> VertebraParams:
        """Typical adult dimensions of a region, with ``changes`` applied."""
        if region == "thoracic":
            base = cls()
        elif region == "lumbar":
            base = cls(region="lumbar", body_half_width_mm=23.0, body_half_depth_mm=17.0,
                       body_height_mm=27.0, body_concavity_mm=3.0, canal_half_width_mm=11.5,
                       canal_half_depth_mm=8.5, pedicle_width_mm=12.0,
                       pedicle_height_mm=15.0, pedicle_convergence_deg=12.0,
                       pillar_half_depth_mm=6.0, facet_axis="x", lamina_thickness_mm=6.0,
                       lamina_drop_mm=6.0, lamina_shingle=0.2, tp_length_mm=28.0,
                       tp_angle_deg=5.0, tp_half_thickness_mm=4.0, tp_half_height_mm=5.0,
                       spinous_length_mm=30.0, spinous_incline_deg=5.0,
                       spinous_half_height_mm=10.0, spinous_half_thickness_mm=3.5,
                       disc_height_mm=10.0, cortical_mm=1.5)
        elif region == "cervical":
            base = cls(region="cervical", body_half_width_mm=8.5, body_half_depth_mm=7.5,
                       body_height_mm=13.0, body_concavity_mm=1.0, endplate_concavity_mm=0.5,
                       canal_half_width_mm=12.0, canal_half_depth_mm=7.0,
                       pedicle_width_mm=6.0, pedicle_height_mm=7.0,
                       pedicle_convergence_deg=40.0, pedicle_z_frac=0.1,
                       junction_y_frac=0.1, pillar_half_depth_mm=6.0, facet_axis="y",
                       facet_offset_mm=2.8, facet_half_thickness_mm=2.0,
                       lamina_thickness_mm=3.5, lamina_drop_mm=3.0, lamina_shingle=0.3,
                       tp_length_mm=7.0, tp_angle_deg=-25.0, tp_half_thickness_mm=2.5,
                       tp_half_height_mm=3.5, foramen_transversarium=True,
                       spinous_length_mm=18.0, spinous_incline_deg=25.0,
                       spinous_half_height_mm=4.0, spinous_half_thickness_mm=2.5,
                       disc_height_mm=5.0, cortical_mm=1.0)
        else:
            raise ValueError(f"Argument 'region' must be cervical, thoracic or lumbar, "
                             f"not {region!r}.")
        return replace(base, **changes)  # type: ignore[arg-type]

    def scaled(self, factor: float) -> VertebraParams:
        """The same vertebra with every length multiplied by ``factor`` (neighbours)."""
        skip = {"region", "pedicle_convergence_deg", "pedicle_z_frac", "junction_y_frac",
                "facet_axis", "lamina_shingle", "tp_angle_deg", "foramen_transversarium",
                "spinous_incline_deg", "cortical_mm", "ribs", "disc_height_mm", "body_squareness",
                "facet_offset_mm", "facet_half_thickness_mm", "body_anterior_exponent",
                "body_concavity_radius_factor", "canal_posterior_exponent"}
        changes = {k: getattr(self, k) * factor for k in self.__dataclass_fields__
                   if k not in skip and getattr(self, k) is not None}
        return replace(self, **changes)

    # derived landmarks --------------------------------------------------------------
    @property
    def body_centre_y_mm(self) -> float:
        return (-self.canal_half_depth_mm + self.body_concavity_mm - self.body_half_depth_mm
                - self.body_shift_mm)

    @property
    def canal_front_y_mm(self) -> float:
        """y of the canal's anterior wall (the body's posterior wall) at the midline."""
        return -self.canal_half_depth_mm - self.body_shift_mm

    def pedicle_w(self, side: int) -> float:
        """Transverse width of the left (``side`` +1) or right (-1) pedicle (mm)."""
        if side < 0 and self.pedicle_width_right_mm is not None:
            return self.pedicle_width_right_mm
        return self.pedicle_width_mm

    @property
    def junction_y_mm(self) -> float:
        """y of the pedicle-lamina junction (the articular pillar's centre, about)."""
        return self.junction_y_frac * self.canal_half_depth_mm

    @property
    def pedicle_z_mm(self) -> float:
        return self.pedicle_z_frac * self.body_height_mm

    def junction_x_mm(self, side: int = 1) -> float:
        """|x| of the pedicle's axis at the junction: its medial face on the canal."""
        return self.canal_half_width_mm + self.pedicle_w(side) / 2.0

    def pedicle_length_mm(self, side: int = 1) -> float:
        """From the junction to ``pedicle_anchor_mm`` inside the body's outline (along
        the pedicle's axis, at its own lateral position)."""
        start, u = self.pedicle_axis(side)
        t = np.arange(0.0, 80.0, 0.1)
        pts = start[None, :] + t[:, None] * u[None, :]
        inside = body_outline(self, pts[:, 0], pts[:, 1])
        if not inside.any():
            raise ValueError("The pedicle's axis misses the vertebral body: check the "
                             "pedicle width and convergence against the body's width.")
        return float(t[int(np.argmax(inside))]) + self.pedicle_anchor_mm

    def pedicle_axis(self, side: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(start at the junction, unit direction towards the body) in the axial plane."""
        phi = math.radians(self.pedicle_convergence_deg)
        start = np.array([side * self.junction_x_mm(side), self.junction_y_mm])
        u = np.array([-side * math.sin(phi), -math.cos(phi)])
        return start, u

    def pillar_centre(self, side: int) -> NDArray[np.float64]:
        return np.array([side * self.junction_x_mm(side), self.junction_y_mm + 0.5])

    def pillar_half_width_mm(self, side: int = 1) -> float:
        return max(self.pedicle_w(side) / 2.0 + 0.5, 4.0)

    def tp_axis(self, side: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(start, unit direction) of the transverse process bar in the axial plane."""
        beta = math.radians(self.tp_angle_deg)
        d = np.array([side * math.cos(beta), math.sin(beta)])
        if self.foramen_transversarium:
            return self.foramen_centre(side), d
        return self.pillar_centre(side), d

    def foramen_centre(self, side: int) -> NDArray[np.float64]:
        """Centre of the foramen transversarium, lateral to the pedicle's middle."""
        start, u = self.pedicle_axis(side)
        mid = start + u * self.pedicle_length_mm(side) * 0.45
        normal = np.array([u[1], -u[0]])
        if normal[0] * side < 0:
            normal = -normal
        return mid + normal * (self.pedicle_w(side) / 2.0 + self.foramen_radius_mm + 1.2)

    @property
    def foramen_radius_mm(self) -> float:
        return 2.8

    @property
    def spinous_root(self) -> tuple[float, float]:
        """(y, z) of the spinous process's root at the laminar junction."""
        y = self.canal_half_depth_mm + self.lamina_thickness_mm * 0.5
        return y, self.lamina_z_centre(y)

    def lamina_z_range(self, y: NDArray[np.float64] | float
                       ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        shift = -self.lamina_shingle * np.maximum(np.asarray(y, dtype=float)
                                                  - self.junction_y_mm, 0.0)
        zp, hp = self.pedicle_z_mm, self.pedicle_height_mm
        return zp - hp / 2 - self.lamina_drop_mm + shift, zp + hp / 2 + shift

    def lamina_z_centre(self, y: float) -> float:
        lo, hi = self.lamina_z_range(y)
        return float((lo + hi) / 2)

    def articular_extension_mm(self) -> float:
        """How far the superior and inferior processes reach beyond the pillar."""
        pitch = self.body_height_mm + self.disc_height_mm
        return max((pitch - self.pedicle_height_mm) / 2.0 + 3.0, 3.0)


def _segment_coords(x: NDArray[np.float64], y: NDArray[np.float64], start: NDArray[np.float64],
                    u: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(distance along u from start, signed in-plane distance across it)."""
    dx, dy = x - start[0], y - start[1]
    return dx * u[0] + dy * u[1], dx * u[1] - dy * u[0]


Box = tuple[float, float, float, float, float, float]


@dataclass(frozen=True)
class Solid:
    """One part's solid: a predicate on local points and a box (x0, x1, y0, y1, z0, z1)
    that holds it."""

    code: int
    box: Box
    inside: Callable[[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]],
                     NDArray[np.bool_]]


def vertebra_parts(p: VertebraParams, x: NDArray[np.float64], y: NDArray[np.float64],
                   z: NDArray[np.float64]) -> NDArray[np.uint8]:
    """Part label of each point (local frame, mm) for one vertebra; 0 outside its bone.

    Ribs are labelled too when ``p.ribs`` (codes :data:`RIB_L`, :data:`RIB_R`).
    """
    shape = np.shape(x)
    xf, yf, zf = (np.asarray(v, dtype=float).ravel() for v in (x, y, z))
    out = np.zeros(xf.shape, dtype=np.uint8)
    for sol in solids(p):
        x0, x1, y0, y1, z0, z1 = sol.box
        idx = np.flatnonzero((xf >= x0) & (xf <= x1) & (yf >= y0) & (yf <= y1)
                             & (zf >= z0) & (zf <= z1) & (out == 0))
        if idx.size:
            hit = sol.inside(xf[idx], yf[idx], zf[idx])
            out[idx[hit]] = sol.code
    return out.reshape(shape)


def body_outline(p: VertebraParams, x: NDArray[np.float64], y: NDArray[np.float64]
                 ) -> NDArray[np.bool_]:
    """Kidney-shaped axial outline of the body (and of its discs): a superellipse with
    full posterolateral corners and a concave posterior wall."""
    return _body_r(p, x, y) <= 1.0


def _body_r(p: VertebraParams, x: NDArray[np.float64], y: NDArray[np.float64]
            ) -> NDArray[np.float64]:
    """>1 outside the outline; the superellipse's level inside it."""
    n = p.body_squareness
    dy = y - p.body_centre_y_mm
    # rounder anteriorly (ellipse), squarer posteriorly
    expo = np.where(dy > 0, n, p.body_anterior_exponent)
    r = np.abs(x / p.body_half_width_mm) ** expo + np.abs(dy / p.body_half_depth_mm) ** expo
    rc = p.canal_half_width_mm * p.body_concavity_radius_factor
    yc = p.canal_front_y_mm + rc
    concave = x ** 2 + (y - yc) ** 2 < rc ** 2
    return np.where(concave, 2.0, r)


def solids(p: VertebraParams) -> list[Solid]:
    """The vertebra's solids in :data:`PRIORITY` order (ribs last, when ``p.ribs``)."""
    out: list[Solid] = []
    aw, bd, hb = p.body_half_width_mm, p.body_half_depth_mm, p.body_height_mm
    yb = p.body_centre_y_mm

    def body(x: NDArray[np.float64], y: NDArray[np.float64], z: NDArray[np.float64]
             ) -> NDArray[np.bool_]:
        r = _body_r(p, x, y)
        endplate = hb / 2 - p.endplate_concavity_mm * (1 - np.clip(r, 0, 1))
        return (r <= 1.0) & (np.abs(z) <= endplate)

    out.append(Solid(BODY, (-aw, aw, yb - bd, yb + bd, -hb / 2, hb / 2), body))
    zp, hp = p.pedicle_z_mm, p.pedicle_height_mm
    ext = p.articular_extension_mm()
    cw, cd, tl = p.canal_half_width_mm, p.canal_half_depth_mm, p.lamina_thickness_mm
    ne = p.canal_posterior_exponent
    per_side: dict[int, list[Solid]] = {PEDICLE_L: [], ARTICULAR_L: [], LAMINA_L: [], TP_L: []}
    for side, ped, art, lam, tp in ((1, PEDICLE_L, ARTICULAR_L, LAMINA_L, TP_L),
                                    (-1, PEDICLE_R, ARTICULAR_R, LAMINA_R, TP_R)):
        start, u = p.pedicle_axis(side)
        w = p.pedicle_w(side)
        length = p.pedicle_length_mm(side)
        end = start + u * length

        def pedicle(x: NDArray[np.float64], y: NDArray[np.float64], z: NDArray[np.float64],
                    start: NDArray[np.float64] = start, u: NDArray[np.float64] = u,
                    w: float = w, length: float = length) -> NDArray[np.bool_]:
            t, d = _segment_coords(x, y, start, u)
            return ((t >= 0) & (t <= length)
                    & ((d / (w / 2)) ** 2 + ((z - zp) / (hp / 2)) ** 2 <= 1.0))

        per_side[PEDICLE_L].append(Solid(ped, (
            min(start[0], end[0]) - w / 2, max(start[0], end[0]) + w / 2,
            min(start[1], end[1]) - w / 2, max(start[1], end[1]) + w / 2,
            zp - hp / 2, zp + hp / 2), pedicle))
        a = p.pillar_centre(side)
        rx, ry = p.pillar_half_width_mm(side), p.pillar_half_depth_mm
        o, ht = p.facet_offset_mm, p.facet_half_thickness_mm

        def articular(x: NDArray[np.float64], y: NDArray[np.float64], z: NDArray[np.float64],
                      a: NDArray[np.float64] = a, side: int = side, rx: float = rx
                      ) -> NDArray[np.bool_]:
            pillar = ((((x - a[0]) / rx) ** 2 + ((y - a[1]) / ry) ** 2 <= 1.0)
                      & (z >= zp - hp / 2 - 1.0) & (z <= zp + hp / 2 + 1.0))
            if p.facet_axis == "x":   # sagittal facets (lumbar): superior process lateral
                sap = ((x - a[0] - side * o) / ht) ** 2 + ((y - a[1]) / (ry * 0.9)) ** 2 <= 1.0
                iap = ((x - a[0] + side * o) / ht) ** 2 + ((y - a[1]) / (ry * 0.9)) ** 2 <= 1.0
            else:                      # coronal facets: superior process anterior
                sap = ((x - a[0]) / (rx * 0.9)) ** 2 + ((y - a[1] + o) / ht) ** 2 <= 1.0
                iap = ((x - a[0]) / (rx * 0.9)) ** 2 + ((y - a[1] - o) / ht) ** 2 <= 1.0
            sap &= (z > zp + hp / 2) & (z <= zp + hp / 2 + ext)
            iap &= (z < zp - hp / 2) & (z >= zp - hp / 2 - ext)
            return pillar | sap | iap

        reach = max(rx, ry) + o + ht
        per_side[ARTICULAR_L].append(Solid(art, (
            a[0] - reach, a[0] + reach, a[1] - reach, a[1] + reach,
            zp - hp / 2 - ext, zp + hp / 2 + ext), articular))

        def lamina(x: NDArray[np.float64], y: NDArray[np.float64], z: NDArray[np.float64],
                   side: int = side) -> NDArray[np.bool_]:
            if ne == 2.0:
                inner = (x / cw) ** 2 + (y / cd) ** 2 >= 1.0
                outer = (x / (cw + tl)) ** 2 + (y / (cd + tl)) ** 2 <= 1.0
            else:  # a superellipse arch behind the canal (in front of y = 0: an ellipse)
                e = np.where(y > 0, ne, 2.0)
                inner = np.abs(x / cw) ** e + np.abs(y / cd) ** e >= 1.0
                outer = np.abs(x / (cw + tl)) ** e + np.abs(y / (cd + tl)) ** e <= 1.0
            lo, hi = p.lamina_z_range(y)
            return (inner & outer & (y >= p.junction_y_mm - 1.0) & (side * x >= 0)
                    & (z >= lo) & (z <= hi))

        zlo, _ = p.lamina_z_range(cd + tl)
        _, zhi = p.lamina_z_range(p.junction_y_mm)
        xs = sorted((0.0, side * (cw + tl)))
        per_side[LAMINA_L].append(Solid(lam, (xs[0], xs[1], p.junction_y_mm - 1.0, cd + tl,
                                              float(zlo), float(zhi)), lamina))
        s0, dv = p.tp_axis(side)
        rt, hz = p.tp_half_thickness_mm, p.tp_half_height_mm
        tipc = s0 + dv * p.tp_length_mm
        f = p.foramen_centre(side) if p.foramen_transversarium else s0
        rf = p.foramen_radius_mm

        def transverse(x: NDArray[np.float64], y: NDArray[np.float64], z: NDArray[np.float64],
                       s0: NDArray[np.float64] = s0, dv: NDArray[np.float64] = dv,
                       tipc: NDArray[np.float64] = tipc, f: NDArray[np.float64] = f
                       ) -> NDArray[np.bool_]:
            t2, d2 = _segment_coords(x, y, s0, dv)
            zz = ((z - zp) / hz) ** 2
            m = (((t2 >= 0) & (t2 <= p.tp_length_mm) & ((d2 / rt) ** 2 + zz <= 1.0))
                 | (((x - tipc[0]) ** 2 + (y - tipc[1]) ** 2) / rt ** 2 + zz <= 1.0))
            if p.foramen_transversarium:
                rr = (x - f[0]) ** 2 + (y - f[1]) ** 2
                ring = (rr <= (rf + 2.3) ** 2) & (np.abs(z - zp) <= hz)
                m = (m | ring) & (rr > rf ** 2)
            return m

        pts = np.array([s0, tipc, f])
        rr_ = max(rt, rf + 2.3)
        per_side[TP_L].append(Solid(tp, (
            pts[:, 0].min() - rr_, pts[:, 0].max() + rr_, pts[:, 1].min() - rr_,
            pts[:, 1].max() + rr_, zp - hz, zp + hz), transverse))
    for key in (PEDICLE_L, ARTICULAR_L, LAMINA_L, TP_L):
        out.extend(per_side[key])
    yj0, zj0 = p.spinous_root
    al = math.radians(p.spinous_incline_deg)
    ls, hs, ts_ = p.spinous_length_mm, p.spinous_half_height_mm, p.spinous_half_thickness_mm

    def spinous(x: NDArray[np.float64], y: NDArray[np.float64], z: NDArray[np.float64]
                ) -> NDArray[np.bool_]:
        ts = (y - yj0) * math.cos(al) - (z - zj0) * math.sin(al)
        qs = (y - yj0) * math.sin(al) + (z - zj0) * math.cos(al)
        frac = np.clip(ts / ls, 0.0, 1.0)
        return ((ts >= -1.0) & (ts <= ls) & (np.abs(qs) <= hs * (1.0 - 0.25 * frac))
                & (np.abs(x) <= ts_ * (1.0 - 0.35 * frac)))

    out.append(Solid(SPINOUS, (-ts_, ts_, yj0 - 2.0 - hs, yj0 + ls * math.cos(al) + hs,
                               zj0 - ls * math.sin(al) - hs - 1.0, zj0 + hs + 1.0), spinous))
    if p.ribs:
        out.extend(_ribs(p))
    return out


def _segment_box(a: NDArray[np.float64], b: NDArray[np.float64], r: float) -> Box:
    lo = np.minimum(a, b) - r
    hi = np.maximum(a, b) + r
    return (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]), float(lo[2]), float(hi[2]))


def _capsule(x: NDArray[np.float64], y: NDArray[np.float64], z: NDArray[np.float64],
             a: NDArray[np.float64], b: NDArray[np.float64], r: float) -> NDArray[np.bool_]:
    ab = b - a
    t = ((x - a[0]) * ab[0] + (y - a[1]) * ab[1] + (z - a[2]) * ab[2]) / float(ab @ ab)
    t = np.clip(t, 0.0, 1.0)
    return ((x - a[0] - t * ab[0]) ** 2 + (y - a[1] - t * ab[1]) ** 2
            + (z - a[2] - t * ab[2]) ** 2) <= r * r


def _ribs(p: VertebraParams) -> list[Solid]:
    """Rib head by the posterolateral body, neck in front of the transverse process."""
    r = 3.5
    zr = p.pedicle_z_mm
    out = []
    for side, code in ((1, RIB_L), (-1, RIB_R)):
        ang = math.radians(-40.0)
        hx = side * (p.body_half_width_mm * math.cos(ang) + r + 1.5)
        hy = p.body_centre_y_mm - p.body_half_depth_mm * math.sin(ang) + 1.0
        s0, dv = p.tp_axis(side)
        tip = s0 + dv * p.tp_length_mm
        kx, ky = tip[0], tip[1] - (p.tp_half_thickness_mm + r + 1.5)
        head = np.array([hx, hy, zr])
        neck = np.array([kx, ky, zr])
        shaft = np.array([kx + side * 30.0, ky - 20.0, zr - 8.0])

        def rib(x: NDArray[np.float64], y: NDArray[np.float64], z: NDArray[np.float64],
                head: NDArray[np.float64] = head, neck: NDArray[np.float64] = neck,
                shaft: NDArray[np.float64] = shaft) -> NDArray[np.bool_]:
            return _capsule(x, y, z, head, neck, r) | _capsule(x, y, z, neck, shaft, r)

        b1, b2 = _segment_box(head, neck, r), _segment_box(neck, shaft, r)
        box = (min(b1[0], b2[0]), max(b1[1], b2[1]), min(b1[2], b2[2]), max(b1[3], b2[3]),
               min(b1[4], b2[4]), max(b1[5], b2[5]))
        out.append(Solid(code, box, rib))
    return out


def region_of(level: str) -> Region:
    """Region of a level name (``C5``, ``T10``, ``L3``)."""
    head = level[:1].upper()
    if head == "C":
        return "cervical"
    if head == "T":
        return "thoracic"
    if head == "L":
        return "lumbar"
    raise ValueError(f"Argument 'level' must be a cervical, thoracic or lumbar level, "
                     f"not {level!r}.")


# ----------------------------------------------------------------------------- canal

_CANAL_STEP_MM = 0.1


@dataclass(frozen=True)
class CanalSection:
    """The bony canal of a vertebra: the hole its ring encloses at the pedicles' level.

    ``mask[i, j]`` is the point ``x = x0 + i * step``, ``y = y0 + j * step`` (mm, local).
    """

    mask: NDArray[np.bool_]
    x0_mm: float
    y0_mm: float
    step_mm: float

    def contains(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.bool_]:
        i = np.rint((x - self.x0_mm) / self.step_mm).astype(np.int64)
        j = np.rint((y - self.y0_mm) / self.step_mm).astype(np.int64)
        ok = (i >= 0) & (i < self.mask.shape[0]) & (j >= 0) & (j < self.mask.shape[1])
        out = np.zeros(np.shape(x), dtype=bool)
        out[ok] = self.mask[i[ok], j[ok]]
        return out

    @property
    def area_mm2(self) -> float:
        return float(self.mask.sum()) * self.step_mm ** 2


def canal_section(p: VertebraParams) -> CanalSection:
    """The hole bounded by the body's posterior wall, the pedicles and the laminae.

    Computed on the axial plane through the pedicles' middle (a 0.1 mm grid): the
    connected component of non-bone that holds the canal's centre and does not reach
    the grid's border.

    Raises
    ------
    ValueError
        The ring is not closed (the parameters leave a gap between the parts).
    """
    half = p.canal_half_width_mm + 2 * max(p.pedicle_w(1), p.pedicle_w(-1)) + 10.0
    xs = np.arange(-half, half + 1e-9, _CANAL_STEP_MM)
    ys = np.arange(p.canal_front_y_mm - 8.0, p.canal_half_depth_mm + p.lamina_thickness_mm
                   + 8.0, _CANAL_STEP_MM)
    xx, yy = np.meshgrid(xs, ys, indexing="ij")
    zz = np.full_like(xx, p.pedicle_z_mm)
    bone = vertebra_parts(replace(p, ribs=False), xx, yy, zz) > 0
    lab, _ = ndimage.label(~bone)
    i0 = int(np.argmin(np.abs(xs)))
    j0 = int(np.argmin(np.abs(ys)))
    c = lab[i0, j0]
    if c == 0:
        raise ValueError("The canal's centre lies in bone: check the canal dimensions.")
    hole = lab == c
    if hole[0, :].any() or hole[-1, :].any() or hole[:, 0].any() or hole[:, -1].any():
        raise ValueError("The vertebral ring is not closed at the pedicles' level: the "
                         "pedicles, pillars and laminae leave a gap; widen the laminae.")
    return CanalSection(mask=hole, x0_mm=float(xs[0]), y0_mm=float(ys[0]),
                        step_mm=_CANAL_STEP_MM)


# ------------------------------------------------------------------ a lone vertebra

@dataclass(frozen=True)
class PartsVertebra:
    """One vertebra's part labels on a regular grid of its local frame.

    Attributes
    ----------
    params : VertebraParams
    labels : ndarray of shape (Z, Y, X), uint8
        Part code of each voxel centre (:data:`PART_NAMES`), 0 outside bone.
    origin_mm : tuple of float
        (x, y, z) of voxel (0, 0, 0), local frame.
    spacing_mm : float
        Isotropic voxel size.
    canal : CanalSection
    """

    params: VertebraParams
    labels: NDArray[np.uint8]
    origin_mm: tuple[float, float, float]
    spacing_mm: float
    canal: CanalSection = field(repr=False)

    def volume_cc(self, part: int) -> float:
        return float((self.labels == part).sum()) * self.spacing_mm ** 3 / 1000.0

    def sectors(self) -> NDArray[np.uint8]:
        """ISRC sector of each voxel (0 off the vertebra)."""
        lut = np.zeros(256, dtype=np.uint8)
        for k, s in SECTOR_OF_PART.items():
            lut[k] = s
        return lut[self.labels]

    def coordinates(self) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                   NDArray[np.float64]]:
        """(x, y, z) local coordinates of the voxel centres, each (Z, Y, X)."""
        nz, ny, nx = self.labels.shape
        s = self.spacing_mm
        x0, y0, z0 = self.origin_mm
        z, y, x = np.meshgrid(z0 + s * np.arange(nz), y0 + s * np.arange(ny),
                              x0 + s * np.arange(nx), indexing="ij")
        return x, y, z


def build_vertebra(params: VertebraParams, *, spacing_mm: float = 0.5) -> PartsVertebra:
    """Part labels of one vertebra on an isotropic grid of its local frame.

    Parameters
    ----------
    params : VertebraParams
    spacing_mm : float
        Voxel size (mm).

    Returns
    -------
    PartsVertebra
    """
    if spacing_mm <= 0:
        raise ValueError("Argument 'spacing_mm' must be positive.")
    p = params
    jx = max(p.junction_x_mm(1), p.junction_x_mm(-1))
    reach_x = max(p.body_half_width_mm, jx + max(p.pillar_half_width_mm(1),
                                                 p.pillar_half_width_mm(-1)),
                  jx + p.tp_length_mm + 2 * p.tp_half_thickness_mm + 8.0) + 2.0
    if p.ribs:
        reach_x += 40.0
    y_lo = p.body_centre_y_mm - p.body_half_depth_mm - 2.0
    y_hi = p.spinous_root[0] + p.spinous_length_mm + 4.0
    ext = p.articular_extension_mm()
    z_hi = max(p.body_height_mm / 2, p.pedicle_z_mm + p.pedicle_height_mm / 2 + ext) + 2.0
    z_lo = min(-p.body_height_mm / 2, p.pedicle_z_mm - p.pedicle_height_mm / 2 - ext,
               p.spinous_root[1] - p.spinous_length_mm
               * math.sin(math.radians(p.spinous_incline_deg)) - p.spinous_half_height_mm) - 2.0
    xs = np.arange(-reach_x, reach_x + 1e-9, spacing_mm)
    ys = np.arange(y_lo, y_hi + 1e-9, spacing_mm)
    zs = np.arange(z_lo, z_hi + 1e-9, spacing_mm)
    z, y, x = np.meshgrid(zs, ys, xs, indexing="ij")
    labels = vertebra_parts(p, x, y, z)
    return PartsVertebra(params=p, labels=labels,
                         origin_mm=(float(xs[0]), float(ys[0]), float(zs[0])),
                         spacing_mm=spacing_mm, canal=canal_section(p))
