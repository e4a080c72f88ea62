"""Intervertebral discs along the body centreline, for :mod:`contourqa.anatomy.ct`.

The discs are dark, thin slabs across the vertebral column: the voxels about the
centreline of the bodies are profiled along planes of several tilts
(:func:`_disc_candidates`), the set of dips whose spacing matches the size of the
bodies is chosen (:func:`_choose_discs`) and each chosen plane is fitted to the
darkest voxels of its disc (:func:`_fit_disc_plane`).  A disc cut by an end of
the crop is only half a dip: :func:`_end_disc_candidates` finds the dark slab that
the profile enters and does not leave before its end, its plane at the slab's
inner edge.  :func:`disc_planes` chains them.  Positions are LPS mm; ``s`` is the
arc length along the centreline, ``u`` and ``v`` the offsets towards the anterior
and to the side of the local frame.
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
    from contourqa.anatomy.options import CTSegmentationOptions

__all__ = ["Centreline", "END_VERTEBRA_SHARE", "disc_planes"]

# share of the most samples on any plane that a plane must hold to be profiled (it
# crosses most of the tube), and to count as crossing the crop at all
_FULL_PLANE_SHARE = 0.6
_PARTIAL_PLANE_SHARE = 0.1
# share of ``min_vertebra_height_mm`` that a partial vertebra at the crop's end must
# reach to be kept (as in :func:`contourqa.anatomy.ct.segment_spine`)
END_VERTEBRA_SHARE = 0.25


@dataclass(frozen=True)
class Centreline:
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
    the centreline, their arc lengths (D,) mm and contrasts (D,) HU, and ``end``
    (D,): 0 for a whole disc, -1 (+1) for a disc cut by the crop at the start (end)
    of the arc, whose plane is the inner edge of the disc (the crop lies beyond)."""

    points: NDArray[np.float64]
    normals: NDArray[np.float64]
    arc_mm: NDArray[np.float64]
    contrast_hu: NDArray[np.float64]
    end: NDArray[np.int64]


def _local_frame(line: Centreline, ant: NDArray[np.float64], geometry: VolumeGeometry,
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


def _slice_arcs(line: Centreline, geometry: VolumeGeometry, n: int) -> NDArray[np.float64]:
    """Arc length (mm) of the centreline where it crosses each of the ``n`` slices."""
    k_line = geometry.patient_to_index(line.points)[:, 0]
    order = np.argsort(k_line, kind="stable")
    return np.interp(np.arange(n, dtype=np.float64), k_line[order], line.arc_mm[order])


def _tube_samples(hu: NDArray[np.float64], line: Centreline, ant: NDArray[np.float64],
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


@dataclass(frozen=True)
class _Profiles:
    """Mean-HU profiles of the tube along ``t = s + u ta + v tb`` for each tilt: mean
    (T, B) HU (NaN where the plane crosses only part of the tube), ``partial`` (T, B)
    the same also where it crosses a small part (at the crop's ends), bin centres
    (B,) mm, slopes ``ta``, ``tb`` (T,), and the bin width (mm)."""

    mean: NDArray[np.float64]
    partial: NDArray[np.float64]
    centres: NDArray[np.float64]
    ta: NDArray[np.float64]
    tb: NDArray[np.float64]
    bin_mm: float


def _profiles(s: NDArray[np.float64], u: NDArray[np.float64], v: NDArray[np.float64],
              values: NDArray[np.float64], geometry: VolumeGeometry,
              o: CTSegmentationOptions) -> _Profiles:
    """The smoothed mean-HU profiles of the tube for every tilt of the plane (``alpha``
    about the lateral axis, ``beta`` about the anterior one, in steps of
    ``disc_tilt_step_deg``).  A plane that crosses only part of the tube (at the
    crop's ends: fewer samples than ``_FULL_PLANE_SHARE`` of the most on any plane)
    is not profiled; ``partial`` keeps those with ``_PARTIAL_PLANE_SHARE`` or more."""
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
    most = counts.max(axis=1, keepdims=True)
    ratio = sums / np.maximum(counts, 1e-9)
    mean = np.where(counts >= _FULL_PLANE_SHARE * most, ratio, np.nan)
    partial = np.where(counts >= _PARTIAL_PLANE_SHARE * most, ratio, np.nan)
    centres = np.asarray(lo + (np.arange(nbins) + 0.5) * bin_mm, dtype=np.float64)
    return _Profiles(mean, partial, centres, ta, tb, bin_mm)


def _disc_candidates(prof: _Profiles, o: CTSegmentationOptions
                     ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
                                NDArray[np.float64]]:
    """Dark, thin slabs across the tube: arc lengths (C,) mm, contrasts (C,) HU and the
    plane slopes ``(tan alpha, tan beta)`` (C,), (C,) against the local frame.

    For every tilt of the plane (:func:`_profiles`), the mean HU of the tube is
    profiled along ``t = s + u tan(alpha) + v tan(beta)``; the black top-hat of
    each profile over ``disc_max_thickness_mm`` keeps dips thinner than a disc (a
    body's dark marrow is a wider dip) and the contrast of a candidate is the largest
    top-hat over the tilts.  Beyond the profiled range the profile is held flat, so
    that a disc cut by the crop is no dip here (see :func:`_end_disc_candidates`).
    """
    mean = prof.mean
    valid = np.isfinite(mean)
    nbins = mean.shape[1]
    width = max(round(o.disc_max_thickness_mm / prof.bin_mm) | 1, 3)
    tophat = np.zeros_like(mean)
    for r in range(len(prof.ta)):
        ok = np.nonzero(valid[r])[0]
        if len(ok) < 3:
            continue
        row = np.interp(np.arange(nbins), ok, mean[r, ok])  # edges held flat
        tophat[r] = np.where(valid[r], ndimage.grey_closing(row, size=width, mode="nearest")
                             - row, 0.0)
    best = tophat.max(axis=0)
    which = tophat.argmax(axis=0)
    peaks, _ = signal.find_peaks(best, height=o.disc_min_contrast_hu)
    return (np.asarray(prof.centres[peaks], dtype=np.float64), best[peaks],
            prof.ta[which[peaks]], prof.tb[which[peaks]])


def _half_dip(profile: NDArray[np.float64], max_bins: int, body_bins: int
              ) -> tuple[int, float, float]:
    """A dark slab at the start of ``profile`` (mean HU from the crop's end inwards):
    its thickness (bins; 0 when there is none), contrast (HU) and the half-way level
    (HU) that bounds it.

    Within ``2 max_bins`` bins of the end, the profile must start below half-way
    between its brightest bin and the darkest bin before it, cross that level once
    within ``max_bins`` bins and stay above it up to the brightest bin (the
    endplate).  The contrast is the brightest HU less the slab's mean.  For
    ``body_bins`` bins past the crossing (a vertebra), the profile must stay
    brighter than the slab's mean: when the crop ends in dark marrow, the endplate
    that bounds it is followed by a disc darker than the marrow.
    """
    w = profile[:2 * max_bins]
    if len(w) < 3:
        return 0, 0.0, 0.0
    peak = int(np.argmax(w))
    if peak == 0:
        return 0, 0.0, 0.0
    half = 0.5 * (float(w[peak]) + float(w[:peak].min()))
    bright = w[:peak + 1] >= half
    edge = int(np.argmax(bright))
    if edge == 0 or edge > max_bins or not bright[edge:].all():
        return 0, 0.0, 0.0
    slab = float(w[:edge].mean())
    if np.any(profile[edge:edge + body_bins] <= slab):
        return 0, 0.0, 0.0
    return edge, float(w[peak]) - slab, half


def _end_disc_candidates(prof: _Profiles, o: CTSegmentationOptions
                         ) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                    NDArray[np.int64]]:
    """Discs cut by the crop's ends: arc lengths (E,) mm of the inner edge of the
    disc on the centreline, contrasts (E,) HU and the end (E,): -1 at the start of
    the arc, +1 at its end; at most one per end.

    A crop that ends inside a disc leaves half a dip at the end of the profiles
    (:func:`_disc_candidates` holds them flat there and finds none): a dark slab
    that the profile enters and does not leave before the end of its profiled
    range (:func:`_half_dip`), no thicker than ``disc_max_thickness_mm``, darker
    by at least ``end_disc_min_contrast_hu`` than the bone inside it and darker than
    all of the profile within ``min_vertebra_height_mm`` inside it, and that stays
    dark on the planes beyond, which cross only part of the tube, up to the crop's
    end (on a steep tilt the profiled range ends before the crop does, and a whole
    disc there would be half a dip too) but for a sliver of the next endplate
    shorter than a quarter of ``min_vertebra_height_mm`` (a partial vertebra that
    short is not kept).  Of the tilts, the one with the largest contrast gives the
    position, the half-way crossing (the endplate's surface) on the centreline; the
    plane is fitted to the edge (:func:`_fit_disc_edge`).  The dark marrow
    of a body cut by the crop is a slab that is thicker, or not as dark, or not as
    sharply bounded, and where it is not, :func:`_choose_discs` weighs the height
    of the vertebra it would leave.
    """
    max_bins = max(round(o.disc_max_thickness_mm / prof.bin_mm), 1)
    body_bins = max(round(o.min_vertebra_height_mm / prof.bin_mm), 1)
    # a sliver of the next endplate too short for a vertebra of its own
    sliver = round(END_VERTEBRA_SHARE * o.min_vertebra_height_mm / prof.bin_mm)
    out = []
    for side in (-1, 1):
        best = (-np.inf, 0.0, -1)
        for r in range(len(prof.ta)):
            ok = np.nonzero(np.isfinite(prof.mean[r]))[0]
            if len(ok) < 3:
                continue
            inward = ok if side < 0 else ok[::-1]
            edge, contrast, half = _half_dip(prof.mean[r, inward], max_bins, body_bins)
            # the planes beyond, from the profiled range outwards, to the crop's end
            tail = prof.partial[r, :ok[0]][::-1] if side < 0 else prof.partial[r, ok[-1] + 1:]
            tail = tail[np.isfinite(tail)]
            beyond_sliver = tail[:max(len(tail) - sliver, 0)]
            if edge and contrast > best[0] and not np.any(beyond_sliver >= half):
                # the crossing lies between the slab's last bin and the next
                t = 0.5 * (prof.centres[inward[edge - 1]] + prof.centres[inward[edge]])
                best = (contrast, float(t), r)
        if best[2] >= 0 and best[0] >= o.end_disc_min_contrast_hu:
            out.append((best[1], best[0], side))
    arr = np.asarray(out, dtype=np.float64).reshape(-1, 3)
    return arr[:, 0], arr[:, 1], arr[:, 2].astype(np.int64)


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
        cu_c = np.asarray((ids // nc + 0.5) * cell - o.disc_fit_radius_mm, dtype=np.float64)
        cv_c = np.asarray((ids % nc + 0.5) * cell - o.disc_fit_radius_mm, dtype=np.float64)
        wt = np.maximum(depth - o.disc_min_contrast_hu, 0.0)
        coef = _crossing_plane(cu_c, cv_c, cw, wt, o)
        if coef is None:
            break
        t0, ta, tb = _moved_plane(t0, ta, tb, coef, o)
    return t0, ta, tb


def _crossing_plane(cu: NDArray[np.float64], cv: NDArray[np.float64],
                    cw: NDArray[np.float64], wt: NDArray[np.float64],
                    o: CTSegmentationOptions) -> NDArray[np.float64] | None:
    """The plane ``w = c0 + c1 u + c2 v`` (coefficients (3,)) through the crossings
    ``cw`` of the disc with the columns at ``(cu, cv)`` (all (N,), mm), weighted by
    ``wt``; crossings farther than ``disc_fit_max_residual_mm`` from it are dropped
    and it is fitted again (three times).  None with fewer than four crossings."""
    a_mat = np.stack([np.ones_like(cu), cu, cv], axis=1)
    ok = wt > 0
    coef = np.zeros(3)
    for _ in range(3):
        if np.count_nonzero(ok) < 4:
            return None
        sw = np.sqrt(wt[ok])
        coef = np.linalg.lstsq(a_mat[ok] * sw[:, None], cw[ok] * sw, rcond=None)[0]
        ok = (wt > 0) & (np.abs(a_mat @ coef - cw) <= o.disc_fit_max_residual_mm)
    if np.count_nonzero(ok) < 4:
        return None
    return np.asarray(coef, dtype=np.float64)


def _moved_plane(t0: float, ta: float, tb: float, coef: NDArray[np.float64],
                 o: CTSegmentationOptions) -> tuple[float, float, float]:
    """The plane ``s + ta u + tb v = t0`` moved onto ``w = c0 + c1 u + c2 v`` (``w``
    measured from it), its slopes held within 10 degrees beyond
    ``disc_max_tilt_deg``."""
    # s + ta u + tb v - t0 = c0 + c1 u + c2 v  at the disc
    t0, ta, tb = t0 + float(coef[0]), ta - float(coef[1]), tb - float(coef[2])
    lim = np.tan(np.radians(o.disc_max_tilt_deg + 10.0))
    return t0, float(np.clip(ta, -lim, lim)), float(np.clip(tb, -lim, lim))


def _fit_disc_edge(s: NDArray[np.float64], u: NDArray[np.float64], v: NDArray[np.float64],
                   values: NDArray[np.float64], t0: float, side: int,
                   o: CTSegmentationOptions) -> tuple[float, float, float]:
    """The plane ``s + ta u + tb v = t0`` of the inner edge of a disc cut by the crop
    (``side`` -1: the crop ends at lower ``s``, +1 at higher), from the plane normal
    to the centreline through ``t0``.

    As in :func:`_fit_disc_plane`, the tube within ``disc_fit_radius_mm`` is cut
    into columns of ``disc_fit_cell_mm``; in each, the mean HU is profiled across the
    plane (bins of ``disc_fit_bin_mm`` within ``disc_max_thickness_mm``) from the
    disc's side, and the edge crosses the column where the profile first rises, past
    the darkest bin on the disc's side, above half-way between that bin and the
    brightest bin on the other side.  A plane is fitted to those crossings (weighted
    by the rise, outliers dropped), three times, each in the frame of the last.
    Only half of the disc is seen: the tilt of the strongest half dip
    (:func:`_end_disc_candidates`) follows the crop's end more than the disc, and
    is not taken.
    """
    reach = o.disc_max_thickness_mm
    r2 = o.disc_fit_radius_mm ** 2
    cell = o.disc_fit_cell_mm
    nb = 2 * max(int(np.ceil(reach / o.disc_fit_bin_mm)), 2)
    nc = int(np.ceil(2.0 * o.disc_fit_radius_mm / cell)) + 1
    clipped = np.clip(values, o.disc_profile_min_hu, o.disc_profile_max_hu)
    # x: across the plane from the disc (x < 0) into the vertebra (x > 0)
    centres = ((np.arange(nb) + 0.5) / nb * 2.0 - 1.0) * reach
    step = 2.0 * reach / nb
    ta = tb = 0.0
    for _ in range(3):
        x = -side * (s + ta * u + tb * v - t0)
        m = (np.abs(x) < reach) & (u ** 2 + v ** 2 <= r2)
        if np.count_nonzero(m) < 10:
            break
        cu = ((u[m] + o.disc_fit_radius_mm) / cell).astype(np.int64)
        cv = ((v[m] + o.disc_fit_radius_mm) / cell).astype(np.int64)
        b = ((x[m] + reach) / step).astype(np.int64).clip(0, nb - 1)
        key = (cu * nc + cv) * nb + b
        size = nc * nc * nb
        cnt = np.bincount(key, minlength=size).reshape(nc * nc, nb)
        tot = np.bincount(key, clipped[m], minlength=size).reshape(nc * nc, nb)
        have = cnt > 0
        seen = have[:, :nb // 2].any(axis=1) & have[:, nb // 2:].any(axis=1)
        if np.count_nonzero(seen) < 4:
            break
        prof = np.where(have, tot / np.maximum(cnt, 1), np.nan)[seen]
        dark_side = np.where(np.isfinite(prof[:, :nb // 2]), prof[:, :nb // 2], np.inf)
        darkest = dark_side.argmin(axis=1)
        low = dark_side.min(axis=1)
        high = np.nanmax(np.where(np.isfinite(prof[:, nb // 2:]), prof[:, nb // 2:], -np.inf),
                         axis=1)
        level = 0.5 * (low + high)
        rises = (np.nan_to_num(prof, nan=-np.inf) >= level[:, None]) \
            & (np.arange(nb)[None, :] > darkest[:, None])
        first = rises.argmax(axis=1)
        rows = np.arange(len(prof))
        before = prof[rows, np.maximum(first - 1, 0)]
        after = prof[rows, first]
        # linear between the last bin below the level and the first above it
        frac = np.where(np.isfinite(before) & (after > before),
                        (level - before) / np.maximum(after - before, 1e-9), 0.5)
        xc = centres[first] - step * (1.0 - np.clip(frac, 0.0, 1.0))
        ids = np.nonzero(seen)[0]
        wt = np.where(rises.any(axis=1), np.maximum(high - low - o.disc_min_contrast_hu, 0.0),
                      0.0)
        cu_c = np.asarray((ids // nc + 0.5) * cell - o.disc_fit_radius_mm, dtype=np.float64)
        cv_c = np.asarray((ids % nc + 0.5) * cell - o.disc_fit_radius_mm, dtype=np.float64)
        coef = _crossing_plane(cu_c, cv_c, np.asarray(-side * xc, dtype=np.float64),
                               np.asarray(wt, dtype=np.float64), o)
        if coef is None:
            break
        t0, ta, tb = _moved_plane(t0, ta, tb, coef, o)
    return t0, ta, tb


def disc_planes(hu: NDArray[np.float64], line: Centreline, ant: NDArray[np.float64],
                 reach_mm: NDArray[np.float64], geometry: VolumeGeometry,
                 o: CTSegmentationOptions) -> _DiscPlanes:
    """The disc planes along the centreline (see :func:`_disc_candidates`,
    :func:`_end_disc_candidates` and :func:`_choose_discs`); ``reach_mm`` (S,) is how
    far the body reaches in front of the canal centre on each slice (NaN without body
    bone)."""
    s, u, v, values = _tube_samples(hu, line, ant, geometry,
                                    max(o.disc_probe_radius_mm, o.disc_fit_radius_mm),
                                    o.disc_sample_mm)
    probe = u ** 2 + v ** 2 <= o.disc_probe_radius_mm ** 2
    prof = _profiles(s[probe], u[probe], v[probe], values[probe], geometry, o)
    arc, contrast, ta, tb = _disc_candidates(prof, o)
    # the discs cut by the crop compete with the whole ones: the heights they make
    # must fit too
    e_arc, e_contrast, e_end = _end_disc_candidates(prof, o)
    # a whole dip within half a disc's thickness of the edge is the same disc, seen
    # whole: not cut by the crop
    if len(arc):
        lone = np.abs(e_arc[:, None] - arc[None, :]).min(axis=1) > 0.5 * o.disc_max_thickness_mm
        e_arc, e_contrast, e_end = e_arc[lone], e_contrast[lone], e_end[lone]
    end = np.concatenate([np.zeros(len(arc), dtype=np.int64), e_end])
    arc, contrast = np.concatenate([arc, e_arc]), np.concatenate([contrast, e_contrast])
    # the plane of a cut disc is fitted to its edge below, from no tilt
    ta, tb = np.concatenate([ta, 0.0 * e_arc]), np.concatenate([tb, 0.0 * e_arc])
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
    order = np.argsort(arc, kind="stable")
    arc, contrast, ta, tb, expected = (x[order] for x in (arc, contrast, ta, tb, expected))
    end = end[order]
    keep = _choose_discs(arc, contrast, expected,
                         (float(line.arc_mm[0]), float(line.arc_mm[-1])), o)
    arc, contrast, ta, tb = arc[keep], contrast[keep], ta[keep], tb[keep]
    end = end[keep]
    for d in range(len(arc)):
        if end[d]:
            arc[d], ta[d], tb[d] = _fit_disc_edge(s, u, v, values, float(arc[d]),
                                                  int(end[d]), o)
        else:
            arc[d], ta[d], tb[d] = _fit_disc_plane(s, u, v, values, float(arc[d]),
                                                   float(ta[d]), float(tb[d]), o)
    idx = np.searchsorted(line.arc_mm, arc).clip(0, len(line.arc_mm) - 1)
    tan, a3, l3 = _local_frame(line, ant, geometry, idx)
    normals = tan + ta[:, None] * a3 + tb[:, None] * l3
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    # beyond the centreline's ends the plane point continues along the end tangent
    points = line.points[idx] + (arc - line.arc_mm[idx])[:, None] * tan
    return _DiscPlanes(points, normals, arc, contrast, end)
