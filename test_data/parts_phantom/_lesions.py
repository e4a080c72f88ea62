"""Lesions of the parts phantom: unions of ellipsoids, each clipped to a region.

A lesion is written in the treated vertebra's local frame from the parts' own
landmarks (pedicle axis, pillar, lamina arc, transverse process axis, spinous root),
so "a lesion in the left pedicle" is placed by the pedicle, not by an angle.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._anatomy import (
    ARTICULAR_L,
    ARTICULAR_R,
    BODY,
    LAMINA_L,
    LAMINA_R,
    PEDICLE_L,
    PEDICLE_R,
    SPINOUS,
    TP_L,
    TP_R,
    VertebraParams,
)

__all__ = ["LESIONS", "Primitive", "epidural_extension", "lesion_primitives",
           "paraspinal_extension"]


@dataclass(frozen=True)
class Primitive:
    """An ellipsoid (local mm; rotated by ``yaw_deg`` about z) clipped to a region.

    ``clip``: ``("parts", codes)`` the treated vertebra's parts with these codes;
    ``("epidural", ())`` the canal outside the thecal sac and outside bone;
    ``("outside", ())`` soft tissue outside every bone and the canal;
    ``("vertebra", ())`` any bone of the treated vertebra.
    """

    centre: tuple[float, float, float]
    semi: tuple[float, float, float]
    clip: tuple[str, frozenset[int]]
    yaw_deg: float = 0.0


def _side_codes(side: int) -> dict[str, int]:
    if side > 0:
        return {"pedicle": PEDICLE_L, "articular": ARTICULAR_L, "lamina": LAMINA_L,
                "tp": TP_L}
    return {"pedicle": PEDICLE_R, "articular": ARTICULAR_R, "lamina": LAMINA_R, "tp": TP_R}


def _parts(*codes: int) -> tuple[str, frozenset[int]]:
    return ("parts", frozenset(codes))


def _body_central(p: VertebraParams, side: int) -> list[Primitive]:
    return [Primitive((0.0, p.body_centre_y_mm - 1.0, 0.0),
                      (0.4 * p.body_half_width_mm, 0.45 * p.body_half_depth_mm,
                       0.3 * p.body_height_mm), _parts(BODY))]


def _body_lateral(p: VertebraParams, side: int) -> list[Primitive]:
    return [Primitive((side * 0.55 * p.body_half_width_mm, p.body_centre_y_mm, 0.0),
                      (0.33 * p.body_half_width_mm, 0.45 * p.body_half_depth_mm,
                       0.3 * p.body_height_mm), _parts(BODY))]


def _body_half(p: VertebraParams, side: int) -> list[Primitive]:
    """The whole half of the body on one side of the midline (1 mm clear of it)."""
    a = 2.0 * p.body_half_width_mm
    return [Primitive((side * (a / 2.0 + 1.0), p.body_centre_y_mm, 0.0),
                      (a / 2.0, 3.0 * p.body_half_depth_mm, 2.0 * p.body_height_mm),
                      _parts(BODY))]


def _body_diffuse(p: VertebraParams, side: int) -> list[Primitive]:
    return [Primitive((0.0, p.body_centre_y_mm, 0.0),
                      (0.85 * p.body_half_width_mm, 0.85 * p.body_half_depth_mm,
                       0.38 * p.body_height_mm), _parts(BODY))]


def _pedicle_point(p: VertebraParams, side: int, frac: float) -> tuple[float, float, float]:
    start, u = p.pedicle_axis(side)
    m = start + u * p.pedicle_length_mm(side) * frac
    return float(m[0]), float(m[1]), p.pedicle_z_mm


def _pedicle(p: VertebraParams, side: int) -> list[Primitive]:
    """Inside one pedicle, clear of the body and the pillar."""
    w = p.pedicle_w(side)
    return [Primitive(_pedicle_point(p, side, 0.4), (0.42 * w, 0.42 * w,
                                                     0.35 * p.pedicle_height_mm),
                      _parts(_side_codes(side)["pedicle"]))]


def _pedicle_whole(p: VertebraParams, side: int) -> list[Primitive]:
    """The whole pedicle, from the body's outline to the pillar's."""
    c = _pedicle_point(p, side, 0.5)
    big = (p.pedicle_length_mm(side), p.pedicle_length_mm(side), p.pedicle_height_mm)
    return [Primitive(c, big, _parts(_side_codes(side)["pedicle"]))]


def _body_pedicle(p: VertebraParams, side: int) -> list[Primitive]:
    return _body_lateral(p, side) + _pedicle_whole(p, side)


def _body_bilateral(p: VertebraParams, side: int) -> list[Primitive]:
    return _body_diffuse(p, side) + _pedicle_whole(p, 1) + _pedicle_whole(p, -1)


def _lamina_point(p: VertebraParams, side: int) -> tuple[float, float, float]:
    """Mid-thickness of one lamina, 55 deg round its arch from the side."""
    ang = math.radians(55.0)
    cw, cd, tl = p.canal_half_width_mm, p.canal_half_depth_mm, p.lamina_thickness_mm
    c, s = math.cos(ang), math.sin(ang)
    if p.canal_posterior_exponent != 2.0:  # a point of the superellipse arch
        c, s = c ** (2.0 / p.canal_posterior_exponent), s ** (2.0 / p.canal_posterior_exponent)
    x = side * (cw + tl / 2) * c
    y = (cd + tl / 2) * s
    return x, y, p.lamina_z_centre(y)


def _lamina(p: VertebraParams, side: int) -> list[Primitive]:
    return [Primitive(_lamina_point(p, side), (5.0, 5.0, 0.35 * (p.pedicle_height_mm
                                                                  + p.lamina_drop_mm)),
                      _parts(_side_codes(side)["lamina"]))]


def _tp_point(p: VertebraParams, side: int, frac: float) -> tuple[float, float, float]:
    s0, dv = p.tp_axis(side)
    m = s0 + dv * p.tp_length_mm * frac
    return float(m[0]), float(m[1]), p.pedicle_z_mm


def _transverse(p: VertebraParams, side: int) -> list[Primitive]:
    return [Primitive(_tp_point(p, side, 0.6), (0.3 * p.tp_length_mm + 2.0,
                                                0.3 * p.tp_length_mm + 2.0,
                                                p.tp_half_height_mm), _parts(_side_codes(side)["tp"]))]


def _articular(p: VertebraParams, side: int) -> list[Primitive]:
    a = p.pillar_centre(side)
    return [Primitive((float(a[0]), float(a[1]), p.pedicle_z_mm),
                      (p.pillar_half_width_mm(side), p.pillar_half_depth_mm,
                       0.5 * p.pedicle_height_mm), _parts(_side_codes(side)["articular"]))]


def _spinous_point(p: VertebraParams, frac: float) -> tuple[float, float, float]:
    y0, z0 = p.spinous_root
    al = math.radians(p.spinous_incline_deg)
    t = p.spinous_length_mm * frac
    return 0.0, y0 + t * math.cos(al), z0 - t * math.sin(al)


def _spinous(p: VertebraParams, side: int) -> list[Primitive]:
    return [Primitive(_spinous_point(p, 0.45), (6.0, 0.25 * p.spinous_length_mm + 2.0,
                                                0.25 * p.spinous_length_mm + 2.0),
                      _parts(SPINOUS))]


def _posterior_arch(p: VertebraParams, side: int) -> list[Primitive]:
    """Both laminae and the spinous process's root."""
    return _lamina(p, 1) + _lamina(p, -1) + [Primitive(
        _spinous_point(p, 0.15), (6.0, 6.0, 8.0), _parts(SPINOUS))]


def _posterolateral(p: VertebraParams, side: int) -> list[Primitive]:
    """Pedicle, pillar, lamina and transverse process of one side."""
    c = _side_codes(side)
    return (_pedicle_whole(p, side) + _articular(p, side) + _lamina(p, side)
            + _transverse(p, side)
            + [Primitive(_lamina_point(p, side), (20.0, 20.0, 20.0),
                         _parts(c["articular"], c["lamina"]))])


_BONE = ("vertebra", frozenset[int]())


def _pedicle_base(p: VertebraParams, side: int) -> list[Primitive]:
    """Across the junction of the pedicle with the body (any bone of the vertebra)."""
    w = p.pedicle_w(side)
    return [Primitive(_pedicle_point(p, side, 0.9), (0.6 * w + 1.0, 0.6 * w + 1.0,
                                                     0.4 * p.pedicle_height_mm), _BONE)]


def _pillar_junction(p: VertebraParams, side: int) -> list[Primitive]:
    """Across the pedicle-lamina junction: pedicle, pillar, lamina root, TP root."""
    a = p.pillar_centre(side)
    r = p.pillar_half_width_mm(side) + 2.0
    return [Primitive((float(a[0]), float(a[1]) - 1.0, p.pedicle_z_mm),
                      (r, r + 1.0, 0.4 * p.pedicle_height_mm), _BONE)]


def _lamina_spinous(p: VertebraParams, side: int) -> list[Primitive]:
    """Across the junction of the laminae with the spinous process."""
    x, y, z = _spinous_point(p, 0.0)
    return [Primitive((x + side * 2.0, y, z), (7.0, 6.0, 7.0), _BONE)]


LesionFn = Callable[[VertebraParams, int], list[Primitive]]

#: Lesion kinds: name -> primitives from the treated vertebra's parameters and side
#: (+1 left, -1 right).
LESIONS: dict[str, LesionFn] = {
    "body_central": _body_central,
    "body_lateral": _body_lateral,
    "body_half": _body_half,
    "body_diffuse": _body_diffuse,
    "pedicle": _pedicle,
    "pedicle_whole": _pedicle_whole,
    "body_pedicle": _body_pedicle,
    "body_bilateral_pedicles": _body_bilateral,
    "lamina": _lamina,
    "transverse_process": _transverse,
    "articular": _articular,
    "spinous": _spinous,
    "posterior_arch": _posterior_arch,
    "posterolateral": _posterolateral,
    "pedicle_base": _pedicle_base,
    "pillar_junction": _pillar_junction,
    "lamina_spinous": _lamina_spinous,
}


def lesion_primitives(kind: str, p: VertebraParams, side: int) -> list[Primitive]:
    if kind not in LESIONS:
        raise ValueError(f"Unknown lesion {kind!r}; choose one of {sorted(LESIONS)}.")
    return LESIONS[kind](p, side)


def _where(kind: str) -> str:
    if kind.startswith("body") and kind != "body_pedicle":
        return "anterior"
    if kind in ("lamina", "spinous", "posterior_arch", "lamina_spinous"):
        return "posterior"
    return "lateral"


def epidural_extension(kind: str, p: VertebraParams, side: int) -> Primitive:
    """Tumour in the epidural space next to the involved bone, outside the thecal sac."""
    cw, cd = p.canal_half_width_mm, p.canal_half_depth_mm
    where = _where(kind)
    z = p.pedicle_z_mm * 0.5
    if where == "anterior":
        x = 0.0 if kind in ("body_central", "body_diffuse") else side * 0.35 * cw
        y = -cd if p.body_shift_mm == 0.0 else p.canal_front_y_mm + 0.5 * p.body_shift_mm
        return Primitive((x, y, z), (0.7 * cw, 0.5 * cd, 9.0), ("epidural", frozenset()))
    if where == "posterior":
        return Primitive((side * 0.3 * cw, cd, z), (0.7 * cw, 0.5 * cd, 9.0),
                         ("epidural", frozenset()))
    return Primitive((side * cw, -0.2 * cd, z), (0.5 * cw, 0.8 * cd, 9.0),
                     ("epidural", frozenset()))


def paraspinal_extension(kind: str, p: VertebraParams, side: int) -> Primitive:
    """Tumour bulging out of the involved bone into the paravertebral soft tissue."""
    where = _where(kind)
    if where == "anterior":
        c = (side * (p.body_half_width_mm + 3.0), p.body_centre_y_mm, 0.0)
        return Primitive(c, (9.0, 10.0, 0.35 * p.body_height_mm), ("outside", frozenset()))
    if where == "posterior":
        x, y, z = _lamina_point(p, side)
        return Primitive((x + side * 6.0, y + 7.0, z), (7.0, 7.0, 8.0),
                         ("outside", frozenset()))
    x, y, z = _tp_point(p, side, 0.2)
    return Primitive((x + side * 3.0, y - 8.0, z), (8.0, 7.0, 8.0), ("outside", frozenset()))


def inside_ellipsoid(prim: Primitive, x: np.ndarray, y: np.ndarray, z: np.ndarray
                     ) -> np.ndarray:
    cx, cy, cz = prim.centre
    a, b, c = prim.semi
    dx, dy = x - cx, y - cy
    if prim.yaw_deg:
        t = math.radians(prim.yaw_deg)
        dx, dy = dx * math.cos(t) + dy * math.sin(t), -dx * math.sin(t) + dy * math.cos(t)
    return (dx / a) ** 2 + (dy / b) ** 2 + ((z - cz) / c) ** 2 <= 1.0
