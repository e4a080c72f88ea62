"""Property-based tests of the DVH engine on random polygons and grids."""

from __future__ import annotations

import numpy as np
import pytest
from _dvh_phantoms import make_dose, make_roi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contourqa.dvh import DVHOptions, compute_dvh

FINE = DVHOptions(min_subdivision=16, max_subdivision=16)


@st.composite
def star_polygon(draw):  # type: ignore[no-untyped-def]
    n = draw(st.integers(5, 14))
    # one vertex per equal sector (jittered inside it): star-shaped about the centre, so
    # the polygon is simple and its shoelace area is its even-odd area
    jitter = np.array(draw(st.lists(st.floats(0.0, 0.8), min_size=n, max_size=n)))
    angles = (np.arange(n) + jitter) * 2 * np.pi / n
    radii = np.array(draw(st.lists(st.floats(3.0, 9.0), min_size=n, max_size=n)))
    cx, cy = draw(st.floats(-3, 3)), draw(st.floats(-3, 3))
    return np.column_stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)])


def shoelace(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2


def grid(spacing: float, origin=(-20.0, -20.0, -20.0), fn=lambda x, y, z: 10 + 0.3 * x + 0.2 * z):
    n = int(40 / spacing) + 1
    return make_dose(shape=(n, n, n), origin_mm=origin, spacing_mm=(spacing,) * 3, fn=fn)


settings.register_profile("dvh", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("dvh")


@given(poly=star_polygon(), n_planes=st.integers(2, 6), s=st.floats(1.0, 3.0),
       spacing=st.sampled_from([1.0, 2.0, 2.5, 3.0]), z0=st.floats(-3, 3))
def test_volume_is_area_times_slab_thickness(poly, n_planes, s, spacing, z0) -> None:  # type: ignore[no-untyped-def]
    roi = make_roi([(z0 + s * k, [poly]) for k in range(n_planes)])
    dvh = compute_dvh(roi, grid(spacing), options=FINE.replace(shape_interpolation="off"))
    truth = shoelace(poly) * s * n_planes / 1000
    perimeter = float(np.sum(np.hypot(*np.diff(np.vstack([poly, poly[:1]]), axis=0).T)))
    h = spacing / 16
    # sampling error bounded by a band of half a sample along the perimeter
    assert abs(dvh.volume_cc - truth) <= perimeter * h * s * n_planes / 1000 + 1e-9


@given(poly=star_polygon(), n_planes=st.integers(1, 5), spacing=st.sampled_from([1.0, 2.0, 3.0]))
def test_dvh_is_monotonic(poly, n_planes, spacing) -> None:  # type: ignore[no-untyped-def]
    roi = make_roi([(1.5 * k, [poly]) for k in range(n_planes)])
    dose = grid(spacing, fn=lambda x, y, z: 10 + 0.02 * (x * x + y * y) + 0.3 * z)
    dvh = compute_dvh(roi, dose)
    assert np.all(np.diff(dvh.cumulative_cc) <= 1e-12)
    assert np.all(dvh.differential_cc >= -1e-12)
    ds = [dvh.metric(f"D{x}%") for x in (99, 95, 50, 5, 1)]
    assert all(a <= b + 1e-12 for a, b in zip(ds, ds[1:]))
    assert dvh.min_gy <= ds[0] and ds[-1] <= dvh.max_gy
    assert dvh.min_gy <= dvh.mean_gy <= dvh.max_gy


@given(poly=star_polygon(), shift=st.tuples(st.floats(-7, 7), st.floats(-7, 7), st.floats(-7, 7)),
       spacing=st.sampled_from([1.0, 2.0, 3.0]))
def test_metrics_invariant_to_translating_structure_and_dose(poly, shift, spacing) -> None:  # type: ignore[no-untyped-def]
    def fn(x, y, z):  # type: ignore[no-untyped-def]
        return 20 + 0.4 * x - 0.3 * y + 0.01 * z * z

    planes = [(1.0 * k - 1.0, [poly]) for k in range(4)]
    a = compute_dvh(make_roi(planes), grid(spacing, fn=fn))
    dx, dy, dz = shift
    moved = make_roi([(z + dz, [p + np.array([dx, dy])]) for z, [p] in planes])
    b = compute_dvh(moved, grid(spacing, origin=(-20 + dx, -20 + dy, -20 + dz),
                                fn=lambda x, y, z: fn(x - dx, y - dy, z - dz)))
    for m in ("volume", "Dmin", "Dmax", "Dmean", "D98%", "D50%", "D2%", "V20Gy"):
        assert b.metric(m) == pytest.approx(a.metric(m), rel=1e-6, abs=1e-6), m


def _merge_per_sample(model):  # type: ignore[no-untyped-def]
    """Reference merge of touching layers, one sample at a time (slow, obvious)."""
    layer, q, p = model.samples()
    order = np.lexsort((model.k_lo[layer], p, q))
    out = []
    for idx in order:
        lo, hi = float(model.k_lo[layer[idx]]), float(model.k_hi[layer[idx]])
        if hi - lo <= 1e-9:
            continue
        key = (int(q[idx]), int(p[idx]))
        if out and out[-1][0] == key and abs(lo - out[-1][2]) <= 1e-9:
            out[-1][2] = hi
        else:
            out.append([key, lo, hi])
    return sorted((k[0], k[1], round(a, 9), round(b, 9)) for k, a, b in out)


@given(polys=st.lists(star_polygon(), min_size=2, max_size=6),
       gaps=st.lists(st.sampled_from([1.0, 1.0, 2.0, 5.0]), min_size=5, max_size=5),
       interpolate=st.booleans())
def test_column_segments_match_a_per_sample_merge(polys, gaps, interpolate) -> None:  # type: ignore[no-untyped-def]
    """The run-based merge of touching layers equals merging sample by sample."""
    from contourqa.dvh.engine import _column_segments
    from contourqa.dvh.occupancy import build_model, contour_planes

    zs = np.concatenate([[0.0], np.cumsum(gaps[:len(polys) - 1])])
    # shrink every other plane so that some gaps are morphed (tips) and columns start and
    # stop between layers
    planes = [(float(z), [poly * (0.4 if m % 2 else 1.0)]) for m, (z, poly) in enumerate(zip(zs, polys))]
    roi = make_roi(planes)
    dose = grid(2.0)
    cps = contour_planes(roi, dose.geometry)
    model = build_model(cps, options=DVHOptions(samples_per_plane=400), slice_mm=2.0,
                        interpolate=interpolate)
    q, p, lo, hi = _column_segments(model)
    got = sorted((int(a), int(b), round(float(c), 9), round(float(d), 9))
                 for a, b, c, d in zip(q, p, lo, hi))
    assert got == _merge_per_sample(model)


@given(polys=st.lists(star_polygon(), min_size=1, max_size=8),
       planes=st.lists(st.sampled_from([0.0, 2.0, 3.5, 6.0]), min_size=8, max_size=8))
def test_contour_planes_group_by_plane_with_their_areas(polys, planes) -> None:  # type: ignore[no-untyped-def]
    """Polygons on one z form one plane, sorted by k; its area is the sum of the
    polygons' shoelace areas (mm^2 / voxel face)."""
    from contourqa.dvh.occupancy import contour_planes

    zs = planes[:len(polys)]
    roi = make_roi([(z, [p]) for z, p in zip(zs, polys)])
    dose = grid(2.0)
    cps = contour_planes(roi, dose.geometry)
    assert [round(c.k * 2.0 - 20.0, 9) for c in cps] == sorted(set(zs))  # k -> z, mm
    for c in cps:
        z = c.k * 2.0 - 20.0
        truth = sum(abs(float(np.dot(p[:, 0], np.roll(p[:, 1], -1)) - np.dot(p[:, 1], np.roll(p[:, 0], -1))))
                    / 2.0 for zz, p in zip(zs, polys) if abs(zz - z) < 1e-9)
        assert c.area_index == pytest.approx(truth / 4.0, rel=1e-9, abs=1e-9)
        assert len(c.polygons) == sum(abs(zz - z) < 1e-9 for zz in zs)
