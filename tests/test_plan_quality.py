"""Plan quality against closed forms: a spherical PTV in a spherically symmetric dose.

Dose D(r) = 20 (1 - r / 40) Gy (r in mm from the origin), PTV a sphere of radius
R = 10 mm, prescription 14.5 Gy: the prescription isodose is the sphere r_p = 11 mm and
the half-prescription isodose (7.25 Gy) the sphere r_50 = 25.5 mm.  So

    TV_PIV = TV,  CI = TV / PIV = (R / r_p)^3,  GI = (r_50 / r_p)^3,  R50 = (r_50 / R)^3,

D2cm = D(R + 20) = 5 Gy and the fall-off from the PTV surface (r = 10) to a cord
surface at r = 20 is 20 / 40 = 0.5 Gy/mm.  None of these uses the code's conventions.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from contourqa.plan_quality import (
    conformity_and_gradient,
    cord_gap_falloff,
    coverage_excluding,
    dose_beyond_distance,
    hot_spot,
)
from _dvh_phantoms import box_dose, circle, make_roi

R, RP, R50 = 10.0, 11.0, 25.5
RX = 20 * (1 - RP / 40)


def _radial(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    return np.maximum(20 * (1 - np.sqrt(x * x + y * y + z * z) / 40), 0.0)


def _sphere(r: float, *, s: float = 1.0, c: tuple[float, float, float] = (0, 0, 0),
            name: str = "PTV", number: int = 1):
    zs = np.arange(-r, r + 1e-9, s)
    return make_roi([(c[2] + float(z), [circle(c[0], c[1], max(math.sqrt(max(r * r - z * z, 0)),
                                                               0.05), 360)]) for z in zs],
                    name=name, number=number)


def _cylinder(r: float, *, cx: float, cy: float, z0: float, z1: float, s: float, name: str,
              number: int):
    return make_roi([(float(z), [circle(cx, cy, r, 360)]) for z in np.arange(z0, z1 + 1e-9, s)],
                    name=name, number=number)


@pytest.fixture(scope="module")
def dose():
    return box_dose(_radial, spacing=1.0, half_extent=40.0)


@pytest.fixture(scope="module")
def body():
    return _cylinder(36.0, cx=0, cy=0, z0=-36, z1=36, s=2.0, name="BODY", number=9)


def _within(q, truth: float, rel: float) -> None:
    """Truth inside the band, widened by ``rel`` (the trilinear interpolation of the
    cone-shaped dose, which the slab-model band does not span)."""
    assert q.value is not None and q.band is not None
    lo, hi = q.band
    assert lo * (1 - rel) <= truth <= hi * (1 + rel), (q, truth)
    assert q.value == pytest.approx(truth, rel=0.03)


def test_paddick_ci_gi_r50_match_closed_form(dose, body) -> None:
    ci, gi, r50 = conformity_and_gradient(ptv=_sphere(R), body=body, dose=dose,
                                          prescription_gy=RX)
    _within(ci, (R / RP) ** 3, 0.01)          # 0.7513
    _within(gi, (R50 / RP) ** 3, 0.01)        # 12.46
    _within(r50, (R50 / R) ** 3, 0.01)        # 16.58


def test_ci_of_an_undercovered_ptv() -> None:
    """PTV radius 12 > r_p = 11: TV_PIV = PIV (the whole isodose sphere lies in the PTV),
    CI = PIV / TV = (11 / 12)^3."""
    dose = box_dose(_radial, spacing=1.0, half_extent=30.0)
    body = _cylinder(28.0, cx=0, cy=0, z0=-28, z1=28, s=2.0, name="BODY", number=9)
    ci, _, _ = conformity_and_gradient(ptv=_sphere(12.0), body=body, dose=dose,
                                       prescription_gy=RX)
    _within(ci, (RP / 12.0) ** 3, 0.01)


def test_d2cm_is_the_dose_20_mm_beyond_the_ptv(dose, body) -> None:
    q = dose_beyond_distance(ptv=_sphere(R), body=body, dose=dose, distance_mm=20.0)
    assert q.band is not None and q.band[0] <= 5.0 <= q.band[1]
    assert q.value == pytest.approx(5.0, abs=0.5)


@pytest.mark.parametrize("gap", [2.0, 5.0, 10.0])
def test_cord_gap_falloff_is_the_radial_gradient(dose, gap: float) -> None:
    cord_r = 4.0
    cord = _cylinder(cord_r, cx=0, cy=R + gap + cord_r, z0=-20, z1=20, s=1.0, name="Cord",
                     number=2)
    f = cord_gap_falloff(ptv=_sphere(R), cord=cord, dose=dose)
    assert f is not None
    assert f.gap_mm == pytest.approx(gap, abs=0.1)
    assert f.gradient_gy_per_mm == pytest.approx(0.5, abs=0.02)  # 20 Gy / 40 mm
    assert f.ptv_dose_gy == pytest.approx(15.0, abs=0.1)          # D(10)


def test_cord_inside_the_ptv_has_no_gradient(dose) -> None:
    cord = _cylinder(3.0, cx=0, cy=5, z0=-20, z1=20, s=1.0, name="Cord", number=2)
    f = cord_gap_falloff(ptv=_sphere(R), cord=cord, dose=dose)
    assert f is not None and f.gap_mm == 0.0 and f.gradient_gy_per_mm is None


def test_hot_spot_location(body) -> None:
    gtv = _sphere(5.0, name="GTV", number=3)
    ptv = _sphere(R)
    cord = _cylinder(4.0, cx=0, cy=25, z0=-30, z1=30, s=1.0, name="Cord", number=2)
    canal = _cylinder(8.0, cx=0, cy=25, z0=-30, z1=30, s=1.0, name="Canal", number=4)
    kw = dict(body=body, gtv=gtv, ptv=ptv, cord=cord, canal=canal, epidural_margin_mm=5.0)
    peak_at = {(0, 0, 0): "GTV", (0, 8, 0): "PTV rim", (0, 18, 0): "epidural space next to the cord",
               (0, 25, 0): "spinal cord", (-20, -10, 0): "outside the PTV"}
    for (x0, y0, z0), where in peak_at.items():
        d = box_dose(lambda x, y, z: 30 - 0.5 * np.sqrt((x - x0) ** 2 + (y - y0) ** 2
                                                        + (z - z0) ** 2), spacing=1.0,
                     half_extent=40.0)
        h = hot_spot(dose=d, **kw)  # type: ignore[arg-type]
        assert h.location == where, (x0, y0, z0)
        assert h.dose_gy == pytest.approx(30.0)
        assert np.allclose(h.point_mm, (x0, y0, z0))


def test_coverage_outside_the_cord_prv() -> None:
    """PTV: the box |x|, |y| <= 10 mm; PRV: x in [6, 14], |y| <= 12 mm; dose 20 - x Gy,
    prescription 18 Gy (covered where x <= 2).  PTV outside the PRV: x in [-10, 6], of
    which x <= 2 is covered: 12 / 16 = 75 %."""
    def square(x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
        return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)

    zs = np.arange(-10, 10.1, 2.0)
    ptv = make_roi([(float(z), [square(-10, 10, -10, 10)]) for z in zs], name="PTV")
    prv = make_roi([(float(z), [square(6, 14, -12, 12)]) for z in zs], name="PRV", number=2)
    d = box_dose(lambda x, y, z: 20 - x, spacing=2.0, half_extent=20.0)
    q = coverage_excluding(ptv=ptv, exclude=prv, dose=d, prescription_gy=18.0, grid_mm=0.5)
    assert q.value == pytest.approx(75.0, abs=0.5)
    assert q.band is not None and q.band[0] <= 75.0 <= q.band[1]
