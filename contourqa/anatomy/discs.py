"""Intervertebral discs along the body centreline, for :mod:`contourqa.anatomy.ct`.

The discs are dark, thin slabs across the vertebral column: the voxels about the
centreline of the bodies are profiled along planes of several tilts
(:func:`_disc_candidates`), the set of dips whose spacing matches the size of the
bodies is chosen (:func:`_choose_discs`) and each chosen plane is fitted to the
darkest voxels of its disc (:func:`_fit_disc_plane`).  :func:`_disc_planes` chains
the three.  Positions are LPS mm; ``s`` is the arc length along the centreline,
``u`` and ``v`` the offsets towards the anterior and to the side of the local frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, signal
from scipy.spatial import cKDTree

from contourqa.geometry import VolumeGeometry

if TYPE_CHECKING:
    from contourqa.anatomy.ct import CTSegmentationOptions

__all__: list[str] = []


@dataclass(frozen=True)
class _Centreline:
    """The body centreline sampled densely: points (N, 3) LPS mm, arc length (N,) mm,
    unit tangents (N, 3)."""

    points: NDArray[np.float64]
    arc_mm: NDArray[np.float64]
    tangent: NDArray[np.float64]

    def locate(self, pts: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Arc length ``s`` (mm) of the nearest centreline point and the distance (mm)."""
        d, idx = cKDTree(self.points).query(pts)
        return self.arc_mm[idx], np.asarray(d, dtype=np.float64)


@dataclass(frozen=True)
class _DiscPlanes:
    """Disc planes: a point on each (D, 3) LPS mm, unit normals (D, 3) pointing up
    the centreline, their arc lengths (D,) mm and contrasts (D,) HU."""

    points: NDArray[np.float64]
    normals: NDArray[np.float64]
    arc_mm: NDArray[np.float64]
    contrast_hu: NDArray[np.float64]


def _local_frame(line: _Centreline, ant: NDArray[np.float64], geometry: VolumeGeometry,
                 idx: NDArray[np.int64]
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Unit tangent, anterior and lateral (tangent x anterior) vectors (N, 3) at the
    centreline points ``idx``; the anterior is that of the nearest slice, made normal
    to the tangent."""
    tan = line.tangent[idx]
    k = np.clip(np.rint(geometry.patient_to_index(line.points[idx])[:, 0]).astype(np.int64),
                0, len(ant) - 1)
    a3 = np.zeros_like(tan)
    a3[:, :2] = ant[k]
    a3 -= tan * np.einsum("ij,ij->i", a3, tan)[:, None]
    a3 /= np.maximum(np.linalg.norm(a3, axis=1, keepdims=True), 1e-9)
    return tan, a3, np.cross(tan, a3)


def _slice_arcs(line: _Centreline, geometry: VolumeGeometry, n: int) -> NDArray[np.float64]:
    """Arc length (mm) of the centreline where it crosses each of the ``n`` slices."""
    k_line = geometry.patient_to_index(line.points)[:, 0]
    order = np.argsort(k_line, kind="stable")
    return np.interp(np.arange(n, dtype=np.float64), k_line[order], line.arc_mm[order])


def _tube_samples(hu: NDArray[np.float64], line: _Centreline, ant: NDArray[np.float64],
                  geometry: VolumeGeometry, radius_mm: float, sample_mm: float
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
                             NDArray[np.float64]]:
    """Voxels within ``radius_mm`` of the centreline: arc length ``s`` (mm, extended
    along the tangent past the ends), offsets ``u`` (anterior) and ``v`` (left of the
    local frame) in mm, and their HU; all (N,).  Pixels finer than ``sample_mm`` are
    taken every ``round(sample_mm / spacing)`` rows and columns: the profiles and
    fits bin them by the millimetre, and a 0.6 mm grid would give four times the
    samples for the same means."""
    shape = hu.shape
    kji_line = geometry.patient_to_index(line.points)
    k = np.arange(shape[0], dtype=np.float64)
    order = np.argsort(kji_line[:, 0], kind="stable")
    jc = np.interp(k, kji_line[order, 0], kji_line[order, 1])
    ic = np.interp(k, kji_line[order, 0], kji_line[order, 2])
    # a box twice the radius per slice: the tube crosses the slices at up to 60 degrees
    hj = int(np.ceil(2.0 * radius_mm / float(geometry.spacing_mm[1])))
    hi = int(np.ceil(2.0 * radius_mm / float(geometry.spacing_mm[0])))
    sj = max(int(round(sample_mm / float(geometry.spacing_mm[1]))), 1)
    si = max(int(round(sample_mm / float(geometry.spacing_mm[0]))), 1)
    dj, di = np.mgrid[-hj:hj + 1:sj, -hi:hi + 1:si]
    kk = np.repeat(np.arange(shape[0]), dj.size)
    jj = (np.rint(jc).astype(np.int64)[:, None] + dj.ravel()[None]).ravel()
    ii = (np.rint(ic).astype(np.int64)[:, None] + di.ravel()[None]).ravel()
    ok = (jj >= 0) & (jj < shape[1]) & (ii >= 0) & (ii < shape[2])
    kji = np.stack([kk[ok], jj[ok], ii[ok]], axis=1)
    pts = geometry.index_to_patient(kji)
    _, idx = cKDTree(line.points).query(pts)
    tan, a3, l3 = _local_frame(line, ant, geometry, idx)
    off = pts - line.points[idx]
    u = np.einsum("ij,ij->i", off, a3)
    v = np.einsum("ij,ij->i", off, l3)
    inside = u ** 2 + v ** 2 <= radius_mm ** 2
    s = line.arc_mm[idx] + np.einsum("ij,ij->i", off, tan)
    return s[inside], u[inside], v[inside], hu[tuple(kji[inside].T)]


def _disc_candidates(s: NDArray[np.float64], u: NDArray[np.float64], v: NDArray[np.float64],
                     values: NDArray[np.float64], geometry: VolumeGeometry,
                     o: CTSegmentationOptions
                     ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
                                NDArray[np.float64]]:
    """Dark, thin slabs across the tube: arc lengths (C,) mm, contrasts (C,) HU and the
    plane slopes ``(tan alpha, tan beta)`` (C,), (C,) against the local frame.

    For every tilt of the plane (``alpha`` about the lateral axis, ``beta`` about
    the anterior one, in steps of ``disc_tilt_step_deg``), the mean HU of the tube
    is profiled along ``t = s + u tan(alpha) + v tan(beta)``; the black top-hat of
    each profile over ``disc_max_thickness_mm`` keeps dips thinner than a disc (a
    body's dark marrow is a wider dip) and the contrast of a candidate is the largest
    top-hat over the tilts.
    """
    bin_mm = min(1.0, 0.5 * float(geometry.spacing_mm[2]))
    step = o.disc_tilt_step_deg
    alphas = np.radians(np.arange(-o.disc_max_tilt_deg, o.disc_max_tilt_deg + 1e-6, step))
    betas = np.radians(np.arange(-o.disc_max_lateral_tilt_deg,
                                 o.disc_max_lateral_tilt_deg + 1e-6, step))
    ta, tb = np.meshgrid(np.tan(alphas), np.tan(betas), indexing="ij")
    ta, tb = ta.ravel(), tb.ravel()
    reach = float(np.sqrt(u ** 2 + v ** 2).max(initial=0.0)) * float(np.hypot(ta, tb).max())
    lo = float(s.min()) - reach - bin_mm
    nbins = int(np.ceil((float(s.max()) + reach + bin_mm - lo) / bin_mm)) + 1
    t = s[None, :] + ta[:, None] * u[None, :] + tb[:, None] * v[None, :]
    b = np.clip(((t - lo) / bin_mm).astype(np.int64), 0, nbins - 1)
    flat = (b + nbins * np.arange(len(ta))[:, None]).ravel()
    clipped = np.clip(values, o.disc_profile_min_hu, o.disc_profile_max_hu)
    size = nbins * len(ta)
    counts = np.bincount(flat, minlength=size).reshape(len(ta), nbins).astype(np.float64)
    sums = np.bincount(flat, np.broadcast_to(clipped, t.shape).ravel(),
                       minlength=size).reshape(len(ta), nbins)
    sigma = max(o.profile_smoothing_mm, 0.5 * float(geometry.spacing_mm[2])) / bin_mm
    counts = ndimage.gaussian_filter1d(counts, sigma, axis=1, mode="constant")
    sums = ndimage.gaussian_filter1d(sums, sigma, axis=1, mode="constant")
    # a plane that crosses only part of the tube (at the crop's ends) is not profiled
    valid = counts >= 0.6 * counts.max(axis=1, keepdims=True)
    mean = np.where(valid, sums / np.maximum(counts, 1e-9), np.nan)
    width = max(round(o.disc_max_thickness_mm / bin_mm) | 1, 3)
    tophat = np.zeros_like(mean)
    for r in range(len(ta)):
        ok = np.nonzero(valid[r])[0]
        if len(ok) < 3:
            continue
        row = np.interp(np.arange(nbins), ok, mean[r, ok])  # edges held flat
        tophat[r] = np.where(valid[r], ndimage.grey_closing(row, size=width, mode="nearest")
                             - row, 0.0)
    best = tophat.max(axis=0)
    which = tophat.argmax(axis=0)
    peaks, _ = signal.find_peaks(best, height=o.disc_min_contrast_hu)
    centres = lo + (np.arange(nbins) + 0.5) * bin_mm
    return (np.asarray(centres[peaks], dtype=np.float64), best[peaks],
            ta[which[peaks]], tb[which[peaks]])


def _choose_discs(arc: NDArray[np.float64], contrast: NDArray[np.float64],
                  expected_mm: NDArray[np.float64], span_mm: tuple[float, float],
                  o: CTSegmentationOptions) -> NDArray[np.int64]:
    """The candidates (indices, in arc order) that are the discs.

    The chosen set maximises the sum of the candidates' contrasts less two penalties
    on the heights (disc to disc, mm) of the whole vertebrae between them:
    ``disc_height_penalty_hu`` times the squared log of the ratio of a height to the
    expected one (``expected_mm`` (C,) at each candidate, from the size of the
    bodies; NaN: unknown), and ``disc_spacing_penalty_hu`` times the squared log of
    the ratio of two consecutive heights.  A dip in the marrow halves a body, a
    missed disc doubles one: either costs more than a candidate's contrast.  The
    partial vertebrae at the ends of ``span_mm`` (the profiled arc) are penalised
    only when longer than ``end_height_ratio`` times the expected height.  Two discs
    are at least ``min_vertebra_height_mm`` apart.
    """
    n = len(arc)
    exp = np.where(np.isfinite(expected_mm) & (expected_mm > 0), expected_mm, np.nan)

    def height_cost(length: NDArray[np.float64], expect: NDArray[np.float64],
                    ratio: float = 1.0) -> NDArray[np.float64]:
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.log(np.maximum(length, 1e-3) / (ratio * expect))
        if ratio > 1.0:
            r = np.maximum(r, 0.0)
        return np.nan_to_num(o.disc_height_penalty_hu * r ** 2, nan=0.0)

    whole = height_cost(np.array([span_mm[1] - span_mm[0]]),
                        np.array([np.nanmedian(exp) if np.isfinite(exp).any() else np.nan]),
                        o.end_height_ratio)[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    gap = arc[None, :] - arc[:, None]  # gap[i, j] from i to j
    allowed = gap >= o.min_vertebra_height_mm
    pair_exp = 0.5 * (exp[:, None] + exp[None, :])
    pair_cost = height_cost(gap, pair_exp)
    first = contrast - height_cost(arc - span_mm[0], exp, o.end_height_ratio)
    last = height_cost(span_mm[1] - arc, exp, o.end_height_ratio)
    # f[i, j]: best score of a chain whose last two discs are i < j; f[j, j]: j first
    f = np.full((n, n), -np.inf)
    prev = np.full((n, n), -1, dtype=np.int64)
    f[np.arange(n), np.arange(n)] = first
    h = np.arange(n)
    for b in range(n):
        for a in (int(x) for x in np.nonzero(allowed[:, b])[0]):
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.log(gap[a, b] / np.where(h < a, gap[:, a], 1.0))
            cand = np.where(h < a, f[:, a] - o.disc_spacing_penalty_hu * ratio ** 2, -np.inf)
            cand[a] = f[a, a]
            best_h = int(np.argmax(cand))
            f[a, b] = cand[best_h] + contrast[b] - pair_cost[a, b]
            prev[a, b] = best_h
    total = f - last[None, :]
    flat = int(np.argmax(total))
    i, j = flat // n, flat % n
    if float(total[i, j]) <= -whole:
        return np.zeros(0, dtype=np.int64)
    chain = [j]
    while i != j:
        chain.append(i)
        i, j = int(prev[i, j]), i
    return np.asarray(sorted(chain), dtype=np.int64)


def _fit_disc_plane(s: NDArray[np.float64], u: NDArray[np.float64], v: NDArray[np.float64],
                    values: NDArray[np.float64], t0: float, ta: float, tb: float,
                    o: CTSegmentationOptions) -> tuple[float, float, float]:
    """Refine a disc plane ``s + ta u + tb v = t0`` to the disc's dark voxels.

    The tube within ``disc_fit_radius_mm`` is cut into columns of
    ``disc_fit_cell_mm`` (u, v); in each, the mean HU is profiled across the plane
    (``w``, bins of ``disc_fit_bin_mm`` within half ``disc_max_thickness_mm``) and
    the centre of its bins darker than half-way between the column's darkest and
    brightest is where the disc crosses it.  A plane fitted to those
    crossings (weighted by the depth of each dip, outliers dropped) gives the new
    position and slopes; twice, the second time in the refined frame.
    """
    half = 0.5 * o.disc_max_thickness_mm
    r2 = o.disc_fit_radius_mm ** 2
    cell = o.disc_fit_cell_mm
    nb = max(int(np.ceil(2.0 * half / o.disc_fit_bin_mm)), 3)
    nc = int(np.ceil(2.0 * o.disc_fit_radius_mm / cell)) + 1
    clipped = np.clip(values, o.disc_profile_min_hu, o.disc_profile_max_hu)
    for _ in range(2):
        w = s + ta * u + tb * v - t0
        m = (np.abs(w) < half) & (u ** 2 + v ** 2 <= r2)
        if np.count_nonzero(m) < 10:
            break
        cu = ((u[m] + o.disc_fit_radius_mm) / cell).astype(np.int64)
        cv = ((v[m] + o.disc_fit_radius_mm) / cell).astype(np.int64)
        b = ((w[m] + half) / (2.0 * half) * nb).astype(np.int64).clip(0, nb - 1)
        key = (cu * nc + cv) * nb + b
        size = nc * nc * nb
        cnt = np.bincount(key, minlength=size).reshape(nc * nc, nb)
        tot = np.bincount(key, clipped[m], minlength=size).reshape(nc * nc, nb)
        mean = np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)
        full = np.count_nonzero(cnt > 0, axis=1) >= max(nb - 1, 3)
        if np.count_nonzero(full) < 4:
            break
        prof = mean[full]
        filled = np.where(np.isnan(prof), np.nanmax(prof, axis=1, keepdims=True), prof)
        top, bottom = filled.max(axis=1), filled.min(axis=1)
        depth = top - bottom
        # the disc crosses the column at the centre of its bins darker than half-way
        dark = np.maximum(0.5 * (top + bottom)[:, None] - filled, 0.0)
        centres = (np.arange(nb) + 0.5) / nb * 2.0 * half - half
        cw = (dark @ centres) / np.maximum(dark.sum(axis=1), 1e-9)
        ids = np.nonzero(full)[0]
        cu_c = (ids // nc + 0.5) * cell - o.disc_fit_radius_mm
        cv_c = (ids % nc + 0.5) * cell - o.disc_fit_radius_mm
        wt = np.maximum(depth - o.disc_min_contrast_hu, 0.0)
        a_mat = np.stack([np.ones_like(cu_c), cu_c, cv_c], axis=1)
        ok = wt > 0
        coef = np.zeros(3)
        for _ in range(3):
            if np.count_nonzero(ok) < 4:
                break
            sw = np.sqrt(wt[ok])
            coef = np.linalg.lstsq(a_mat[ok] * sw[:, None], cw[ok] * sw, rcond=None)[0]
            ok = (wt > 0) & (np.abs(a_mat @ coef - cw) <= o.disc_fit_max_residual_mm)
        if np.count_nonzero(ok) < 4:
            break
        # s + ta u + tb v - t0 = c0 + c1 u + c2 v  at the disc
        t0, ta, tb = t0 + float(coef[0]), ta - float(coef[1]), tb - float(coef[2])
        lim = np.tan(np.radians(o.disc_max_tilt_deg + 10.0))
        ta, tb = float(np.clip(ta, -lim, lim)), float(np.clip(tb, -lim, lim))
    return t0, ta, tb


def _disc_planes(hu: NDArray[np.float64], line: _Centreline, ant: NDArray[np.float64],
                 reach_mm: NDArray[np.float64], geometry: VolumeGeometry,
                 o: CTSegmentationOptions) -> _DiscPlanes:
    """The disc planes along the centreline (see :func:`_disc_candidates` and
    :func:`_choose_discs`); ``reach_mm`` (S,) is how far the body reaches in front of
    the canal centre on each slice (NaN without body bone)."""
    s, u, v, values = _tube_samples(hu, line, ant, geometry,
                                    max(o.disc_probe_radius_mm, o.disc_fit_radius_mm),
                                    o.disc_sample_mm)
    probe = u ** 2 + v ** 2 <= o.disc_probe_radius_mm ** 2
    arc, contrast, ta, tb = _disc_candidates(s[probe], u[probe], v[probe], values[probe],
                                             geometry, o)
    # expected height of a vertebra with its disc along the centreline: a running
    # median of the bodies' reach, scaled
    k_arc = _slice_arcs(line, geometry, len(reach_mm))
    have = np.isfinite(reach_mm)
    if have.any():
        window = max(round(o.height_window_mm / float(geometry.spacing_mm[2])) | 1, 1)
        k = np.arange(len(reach_mm), dtype=np.float64)
        filled = np.interp(k, k[have], reach_mm[have])
        typical = ndimage.median_filter(filled, size=window, mode="nearest")
        expected = o.height_per_reach * np.interp(arc, k_arc, typical)
    else:
        expected = np.full(len(arc), np.nan)
    keep = _choose_discs(arc, contrast, expected,
                         (float(line.arc_mm[0]), float(line.arc_mm[-1])), o)
    arc, contrast, ta, tb = arc[keep], contrast[keep], ta[keep], tb[keep]
    for d in range(len(arc)):
        arc[d], ta[d], tb[d] = _fit_disc_plane(s, u, v, values, float(arc[d]), float(ta[d]),
                                               float(tb[d]), o)
    idx = np.searchsorted(line.arc_mm, arc).clip(0, len(line.arc_mm) - 1)
    tan, a3, l3 = _local_frame(line, ant, geometry, idx)
    normals = tan + ta[:, None] * a3 + tb[:, None] * l3
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    # beyond the centreline's ends the plane point continues along the end tangent
    points = line.points[idx] + (arc - line.arc_mm[idx])[:, None] * tan
    return _DiscPlanes(points, normals, arc, contrast)
