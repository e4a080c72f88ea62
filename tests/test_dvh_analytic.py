"""Closed-form DVHs: stacks of polygons under linear dose, truth worked out here.

Conventions under test (see ``DVHOptions``): each plane is a slab reaching halfway to its
neighbours, the end planes extend half a plane spacing (``end_caps="half_slice"``).  A
stack of identical n-gons of area ``a`` on planes ``z_0 .. z_m`` spaced ``s`` is then a
prism of area ``a`` from ``z_0 - s/2`` to ``z_m + s/2``:

* dose linear in z: the volume is spread uniformly in dose between the doses of the two
  prism ends, so ``D<x>% = Dmax - x/100 (Dmax - Dmin)`` and ``Dmean`` is the dose at the
  middle;
* dose linear in y: the volume receiving at least D is the prism length times the area of
  the circular segment on the hot side: ``A(h) = R^2 acos((R - h)/R) - (R - h) sqrt(2Rh - h^2)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _dvh_phantoms import box_dose, circle, make_dose, make_roi, ngon_area

from contourqa.dvh import DVHOptions, compute_dvh
from contourqa.errors import MetricError
from contourqa.findings import Status


def cylinder(*, r: float, cx: float, cy: float, z0: float, n_planes: int, s: float):
    zs = z0 + s * np.arange(n_planes)
    return make_roi([(float(z), [circle(cx, cy, r)]) for z in zs]), zs


def segment_area(r: float, h: float) -> float:
    h = min(max(h, 0.0), 2 * r)
    return r * r * math.acos((r - h) / r) - (r - h) * math.sqrt(max(2 * r * h - h * h, 0.0))


def solve_h(r: float, fraction: float) -> float:
    """Height of the segment holding ``fraction`` of the disk (bisection)."""
    lo, hi = 0.0, 2 * r
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if segment_area(r, mid) < fraction * math.pi * r * r:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


CASES_Z = [  # (plane spacing mm, dose spacing mm, offset of the structure mm)
    (1.0, 1.0, (0.37, -0.81, 0.23)),
    (2.5, 2.0, (1.13, 0.52, -0.61)),
    (3.0, 3.0, (-1.4, 0.9, 1.1)),
    (2.0, 2.5, (0.0, 0.0, 0.0)),
]


@pytest.mark.parametrize("s, grid, off", CASES_Z)
def test_cylinder_dose_along_z(s: float, grid: float, off: tuple[float, float, float]) -> None:
    r, n = 10.0, 9
    roi, zs = cylinder(r=r, cx=off[0], cy=off[1], z0=off[2] - 4 * s, n_planes=n, s=s)
    dose = box_dose(lambda x, y, z: 20.0 + 0.4 * z, spacing=grid, half_extent=36.0)
    dvh = compute_dvh(roi, dose)
    zlo, zhi = zs[0] - s / 2, zs[-1] + s / 2
    dmin, dmax = 20 + 0.4 * zlo, 20 + 0.4 * zhi
    volume = ngon_area(r) * (zhi - zlo) / 1000
    assert dvh.volume_cc == pytest.approx(volume, rel=3e-3)
    assert dvh.volume_outside_dose_cc == 0.0
    assert dvh.min_gy == pytest.approx(dmin, abs=1e-9)
    assert dvh.max_gy == pytest.approx(dmax, abs=1e-9)
    assert dvh.mean_gy == pytest.approx(0.5 * (dmin + dmax), abs=1e-6)
    for x in (99, 95, 50, 5, 1):
        assert dvh.metric(f"D{x}%") == pytest.approx(dmax - x / 100 * (dmax - dmin), abs=2e-3)
    v = dvh.volume_cc
    assert dvh.metric("D0.5cc") == pytest.approx(dmax - 0.5 / v * (dmax - dmin), abs=5e-3)
    assert dvh.metric("V21Gy") == pytest.approx(v * (dmax - 21) / (dmax - dmin), rel=2e-3)
    assert dvh.metric("V21Gy%") == pytest.approx(100 * (dmax - 21) / (dmax - dmin), rel=2e-3)


@pytest.mark.parametrize("grid, off", [(1.0, (0.3, 0.45, 0.0)), (2.0, (-0.7, 1.21, 0.5)),
                                       (3.0, (1.5, -1.1, -0.4))])
def test_cylinder_dose_along_y(grid: float, off: tuple[float, float, float]) -> None:
    r, s, n = 9.0, 2.0, 7
    roi, zs = cylinder(r=r, cx=off[0], cy=off[1], z0=off[2] - 6, n_planes=n, s=s)
    g = 0.5  # Gy/mm, hotter at low y

    def d(y: float) -> float:
        return 30.0 - g * y

    dose = box_dose(lambda x, y, z: 30.0 - g * y, spacing=grid, half_extent=30.0)
    dvh = compute_dvh(roi, dose)
    assert dvh.min_gy == pytest.approx(d(off[1] + r), abs=1e-6)
    assert dvh.max_gy == pytest.approx(d(off[1] - r), abs=1e-6)
    assert dvh.mean_gy == pytest.approx(d(off[1]), abs=0.01)
    for x in (99, 95, 50, 5, 1):
        truth = d(off[1] - r + solve_h(r, x / 100))
        assert dvh.metric(f"D{x}%") == pytest.approx(truth, abs=0.03), x


@pytest.mark.parametrize("grid, gradient", [(3.0, "z"), (3.0, "y"), (2.0, "y"), (2.5, "z")])
def test_small_cylinder_under_0_1_cc_off_grid(grid: float, gradient: str) -> None:
    r, s, n = 2.0, 1.0, 3
    cx, cy, z0 = 0.77, -1.31, 0.42
    roi, zs = cylinder(r=r, cx=cx, cy=cy, z0=z0, n_planes=n, s=s)
    if gradient == "z":
        dose = box_dose(lambda x, y, z: 15 + 1.0 * z, spacing=grid, half_extent=15.0)
        dmin, dmax = 15 + zs[0] - s / 2, 15 + zs[-1] + s / 2
        truth = {x: dmax - x / 100 * (dmax - dmin) for x in (98, 50, 2)}
    else:
        dose = box_dose(lambda x, y, z: 15 - 1.0 * y, spacing=grid, half_extent=15.0)
        dmin, dmax = 15 - (cy + r), 15 - (cy - r)
        truth = {x: 15 - (cy - r + solve_h(r, x / 100)) for x in (98, 50, 2)}
    dvh = compute_dvh(roi, dose)
    volume = ngon_area(r) * n * s / 1000
    assert volume < 0.1
    assert dvh.volume_cc == pytest.approx(volume, rel=0.01)
    assert dvh.min_gy == pytest.approx(dmin, abs=1e-6)
    assert dvh.max_gy == pytest.approx(dmax, abs=1e-6)
    for x, t in truth.items():
        assert dvh.metric(f"D{x}%") == pytest.approx(t, abs=0.02)
    with pytest.raises(MetricError, match="cannot take"):
        dvh.metric("D0.1cc")


def test_partly_outside_the_dose_grid_is_counted_and_warned() -> None:
    r, s = 8.0, 2.0
    roi, zs = cylinder(r=r, cx=0.0, cy=0.0, z0=-20.0, n_planes=21, s=s)  # z -21 .. 21 with caps
    dose = make_dose(shape=(26, 21, 21), origin_mm=(-20, -20, -10), spacing_mm=(2, 2, 2),
                     fn=lambda x, y, z: 10 + 0.1 * z)  # slices z = -10 .. 40
    dvh = compute_dvh(roi, dose)
    a = ngon_area(r) / 1000
    assert dvh.volume_cc == pytest.approx(a * 42, rel=3e-3)
    assert dvh.volume_outside_dose_cc == pytest.approx(a * 11, rel=3e-3)
    assert dvh.volume_in_dose_cc == pytest.approx(a * 31, rel=3e-3)
    (warn,) = [p for p in dvh.problems if p.code == "dvh.outside_dose_grid"]
    assert warn.status is Status.WARN and warn.unit == "cc"
    assert warn.value == pytest.approx(a * 11, rel=3e-3)
    # the in-grid part is not spread over other doses
    assert dvh.min_gy == pytest.approx(10 + 0.1 * -10, abs=1e-9)
    assert dvh.metric("D50%") == pytest.approx(10 + 0.1 * 5.5, abs=2e-3)


def test_end_caps_none_ends_at_the_end_planes() -> None:
    roi, zs = cylinder(r=10.0, cx=0.0, cy=0.0, z0=-8.0, n_planes=9, s=2.0)
    dose = box_dose(lambda x, y, z: 10 + 0.2 * z, spacing=2.0, half_extent=30.0)
    dvh = compute_dvh(roi, dose, options=DVHOptions(end_caps="none"))
    assert dvh.volume_cc == pytest.approx(ngon_area(10.0) * 16 / 1000, rel=3e-3)
    assert dvh.min_gy == pytest.approx(10 + 0.2 * -8, abs=1e-9)
    assert dvh.conventions["end_caps"] == "none"


def test_hole_is_combined_even_odd() -> None:
    outer, inner = circle(0, 0, 10.0), circle(1.0, 0.5, 4.0)
    roi = make_roi([(float(z), [outer, inner]) for z in (-2.0, 0.0, 2.0)])
    dose = box_dose(lambda x, y, z: 5 + 0 * x, spacing=2.0, half_extent=20.0)
    dvh = compute_dvh(roi, dose)
    assert dvh.volume_cc == pytest.approx((ngon_area(10) - ngon_area(4)) * 6 / 1000, rel=5e-3)


def _cone_truth(R: float, H: float, cap: float, dose_of_z, fraction: float) -> float:
    """Dose covering ``fraction`` of a cone (apex z = 0, base radius R at z = H) plus a
    cylindrical cap of height ``cap`` on its base, dose increasing with z."""
    total = math.pi * R * R * H / 3 + math.pi * R * R * cap

    def above(zeta: float) -> float:  # volume with z >= zeta
        if zeta >= H:
            return math.pi * R * R * (H + cap - zeta)
        return math.pi * (R / H) ** 2 * (H ** 3 - max(zeta, 0.0) ** 3) / 3 + math.pi * R * R * cap

    lo, hi = 0.0, H + cap
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if above(mid) > fraction * total:
            lo = mid
        else:
            hi = mid
    return dose_of_z(0.5 * (lo + hi)), total


@pytest.mark.parametrize("s", [1.0, 3.0])
def test_cone_with_shape_interpolation_at_the_apex(s: float) -> None:
    R, H = 12.0, 24.0
    zs = np.arange(0.0, H + 1e-9, s)
    roi = make_roi([(float(z), [circle(0.3, -0.2, max(R * z / H, 0.01), 360)]) for z in zs])
    dose = box_dose(lambda x, y, z: 5 + 0.5 * z, spacing=s, half_extent=32.0, offset=(0, 0, 12))
    dvh = compute_dvh(roi, dose)
    for x in (99, 95, 50, 5):
        truth, total = _cone_truth(R, H, s / 2, lambda z: 5 + 0.5 * z, x / 100)
        assert dvh.metric(f"D{x}%") == pytest.approx(truth, rel=0.02), x
    assert dvh.volume_cc == pytest.approx(total / 1000, rel=0.02)
    assert dvh.min_gy == pytest.approx(5 + 0.5 * (-s / 2), abs=1e-6)


@pytest.mark.parametrize("s", [2.0, 3.0])
def test_sphere_with_shape_interpolation_at_the_poles(s: float) -> None:
    R = 12.0
    zs = np.arange(-R, R + 1e-9, s)
    roi = make_roi([(float(z), [circle(0, 0, max(math.sqrt(max(R * R - z * z, 0)), 0.05), 360)])
                    for z in zs])
    dose = box_dose(lambda x, y, z: 16 + 1.0 * z, spacing=s, half_extent=30.0)
    dvh = compute_dvh(roi, dose)
    V = 4 / 3 * math.pi * R ** 3
    assert dvh.volume_cc == pytest.approx(V / 1000, rel=0.02)
    for x in (99, 95, 5, 1):
        # cap of height h below the plane z: pi h^2 (3R - h) / 3
        lo, hi = 0.0, 2 * R
        for _ in range(80):
            h = 0.5 * (lo + hi)
            if math.pi * h * h * (3 * R - h) / 3 < (1 - x / 100) * V:
                lo = h
            else:
                hi = h
        truth = 16 + (-R + h)
        assert dvh.metric(f"D{x}%") == pytest.approx(truth, rel=0.02), x
    assert dvh.min_gy == pytest.approx(16 - R - s / 2, abs=1e-6)


def test_prescription_metric_needs_prescription() -> None:
    roi, _ = cylinder(r=5.0, cx=0, cy=0, z0=0, n_planes=3, s=2.0)
    dose = box_dose(lambda x, y, z: 10 + 0.1 * z, spacing=2.0, half_extent=15.0)
    dvh = compute_dvh(roi, dose)
    with pytest.raises(MetricError, match="prescription"):
        dvh.metric("V100%")
    assert dvh.metric("V100%", prescription_gy=10.0) == pytest.approx(
        100 * dvh.metric("V10Gy") / dvh.volume_cc)


def _lying_cylinder(R: float, L: float, zc: float, s: float):
    """Cylinder of radius ``R`` and length ``L`` with its axis along y at height ``zc``,
    contoured on planes ``s`` apart from tangent to tangent: rectangles of half-width
    ``sqrt(R^2 - u^2)``, a 0.02 mm wide line on the two tangent planes (as Nelms 2015)."""
    us = np.arange(-R, R + 1e-9, s)
    planes = []
    for u in us:
        w = max(math.sqrt(max(R * R - u * u, 0.0)), 0.01)
        ys = np.linspace(-L / 2, L / 2, 49)
        rect = np.concatenate([np.column_stack([np.full(49, w), ys]),
                               np.column_stack([np.full(49, -w), ys[::-1]])])
        planes.append((float(zc + u), [rect]))
    return make_roi(planes)


@pytest.mark.parametrize("s", [1.0, 2.0, 3.0])
def test_cylinder_lying_across_the_planes(s: float) -> None:
    """The cross-section area grows like sqrt(d) from the tangent end planes; truth is the
    true cylinder (the line contours' caps hold no volume but reach Dmin and Dmax)."""
    R, L, zc = 12.0, 24.0, 0.4
    roi = _lying_cylinder(R, L, zc, s)
    dose = box_dose(lambda x, y, z: 16 + 1.0 * z, spacing=s, half_extent=24.0)
    dvh = compute_dvh(roi, dose)
    V = math.pi * R * R * L
    assert dvh.volume_cc == pytest.approx(V / 1000, rel=0.01)
    assert dvh.min_gy == pytest.approx(16 + zc - R - s / 2, abs=1e-6)
    assert dvh.max_gy == pytest.approx(16 + zc + R + s / 2, abs=1e-6)
    for x in (99, 95, 50, 5, 1):
        # the hottest x % lies above the chord at height R - h from the top
        h = solve_h(R, x / 100)
        truth = 16 + zc + R - h
        assert dvh.metric(f"D{x}%") == pytest.approx(truth, rel=0.02), x
