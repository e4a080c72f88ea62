"""Landmarks of one vertebra that bound its anatomical parts (see :mod:`contourqa.sectors`).

All in the vertebra frame of each slice (``u`` mm anterior of the canal centre, ``v``
mm to the patient's left), found on the vertebra's own bone and bony canal:

* ``body_wall_u``: the posterior wall of the body, the canal's most anterior point;
* ``canal_posterior_u``: the canal's most posterior point (the spinous base is behind);
* ``canal_half_width``: the canal's widest extent on each side of the midline;
* ``pedicle_end_u``: where the canal's wall on that side turns medially into the
  lamina (the last canal row still ``pedicle_junction_canal_fraction`` of the widest),
  or, if that lies farther forward, the middle of the transverse process's root (the
  bone within ``pedicle_tp_root_mm`` lateral of the pedicle's outer surface): where
  the pedicle meets the articular pillar and the transverse process arises; one
  depth per vertebra (median over the slices, the more anterior of the two sides);
  this is the end at the pedicle's medial face;
* ``pedicle_end_lateral_u``: the end at its outer surface, between the transverse
  process's anterior surface (0) and the medial end's depth (1) at
  ``pedicle_lateral_end_fraction``; between the two faces the end runs obliquely,
  as the articular pillar's anterior surface does;
* ``pedicle_outer_v``: the pedicle's outer surface, the canal's half-width plus the
  vertebra's pedicle width (the narrowest bone between body and arch, measured row by
  row lateral to the canal, ``pedicle_width_quantile`` over the slices, the wider
  side's for both) plus ``pedicle_outer_margin_mm``; the transverse process arises
  lateral to it;
* ``body_profile_u``: the body's posterior surface per lateral position, from the
  slices where the body stands alone and cuts its whole section (measured within
  the body's width, so that the roots of cervical transverse processes beside a
  narrow body do not make its sections look partial); columns seen on most of
  them; mirrored;
* ``spinous_half_width``: half the width of the spinous process, measured
  ``spinous_base_offset_mm`` and more behind the canal; the process starts
  ``spinous_root_offset_mm`` behind the canal (the laminae meet in front of it).

Slices without a canal take the landmarks of the nearest slice that has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from contourqa.sectors.frame import BoxCoordinates
from contourqa.sectors.options import PartitionOptions

__all__ = ["VertebraLandmarks", "find_landmarks", "label_parts"]

_SIDES = (1.0, -1.0)  # left (+v), right (-v)


@dataclass(frozen=True, eq=False)
class VertebraLandmarks:
    """Landmarks per slice of the vertebra's box (mm, frame coordinates).

    Attributes
    ----------
    first_slice : int
        Grid slice of the arrays' first entry.
    body_wall_u, canal_posterior_u : ndarray of shape (S,)
    canal_half_width, pedicle_end_u, pedicle_outer_v : ndarray of shape (S, 2)
        Column 0 the patient's left, 1 the right; ``pedicle_outer_v`` is a distance
        from the midline (positive on both sides).
    pedicle_end_lateral_u : ndarray of shape (S, 2) or None
        The pedicle's end at its outer surface (None: at ``pedicle_end_u``, as at
        its medial face).
    pedicle_width_mm : tuple of float
        Measured width of the left and right pedicle (after clamping).
    pedicle_width_measured : tuple of bool
        Whether each width was measured on this vertebra (else the other side's or
        the default).
    spinous_half_width_mm : float
    spinous_measured : bool
    spinous_root_offset_mm : float
    body_back_tolerance_mm : float
        Bone this far behind the body's posterior surface is still body.
    body_profile_v, body_profile_u : ndarray or None
        The body's posterior surface (``u - body_wall_u`` per ``v`` bin, NaN where
        unmeasured),
        the median over the slices where the body is not joined to the arch; None
        without such slices.
        The spinous process starts this far behind the canal (the laminar junction).
    foramen_medial_v, foramen_posterior_u : tuple of float or None
        Cervical vertebrae: the medial edge (distance from the midline) and the
        posterior edge of the left and right foramen transversarium; bone lateral to
        the medial edge and in front of the posterior edge is transverse process (its
        roots), in front of the body wall too.  None where no foramen was found.
    """

    first_slice: int
    body_wall_u: NDArray[np.float64]
    canal_posterior_u: NDArray[np.float64]
    canal_half_width: NDArray[np.float64]
    pedicle_end_u: NDArray[np.float64]
    pedicle_outer_v: NDArray[np.float64]
    pedicle_width_mm: tuple[float, float]
    pedicle_width_measured: tuple[bool, bool]
    spinous_half_width_mm: float
    spinous_measured: bool
    spinous_root_offset_mm: float = 0.0
    body_back_tolerance_mm: float = 0.0
    body_profile_v: NDArray[np.float64] | None = None
    body_profile_u: NDArray[np.float64] | None = None
    foramen_medial_v: tuple[float, float] | None = None
    foramen_posterior_u: tuple[float, float] | None = None
    pedicle_end_lateral_u: NDArray[np.float64] | None = None
    transverse_front_u: float | None = None
    transverse_root_mm: float = 0.0
    transverse_front_tolerance_mm: float = 0.0

    def body_back_u(self, v: NDArray[np.float64]) -> NDArray[np.float64]:
        """The body's posterior surface at lateral positions ``v``, mm in front of the
        body wall (``u - body_wall_u``; from the
        slices where the body stands alone, mirrored where one side is missing);
        ``-inf`` where it is unknown (then the body wall alone bounds the body),
        ``+inf`` lateral to the body."""
        if self.body_profile_v is None or self.body_profile_u is None:
            return np.full(np.shape(v), -np.inf)
        pv, pu = self.body_profile_v, self.body_profile_u
        step = float(pv[1] - pv[0]) if len(pv) > 1 else 1.0
        i = np.rint((np.asarray(v) - pv[0]) / step).astype(np.int64)
        out = np.full(np.shape(v), np.inf)
        ok = (i >= 0) & (i < len(pv))
        out[ok] = pu[i[ok]]
        # inside the body's width but unmeasured: the body wall alone decides
        return np.where(np.isnan(out), -np.inf, out)

    def at(self, k: int) -> dict[str, Any]:
        """The landmarks of grid slice ``k`` (for pictures and reports)."""
        i = int(np.clip(k - self.first_slice, 0, len(self.body_wall_u) - 1))
        return {"body_wall_u_mm": float(self.body_wall_u[i]),
                "canal_posterior_u_mm": float(self.canal_posterior_u[i]),
                "pedicle_end_u_mm": tuple(float(x) for x in self.pedicle_end_u[i]),
                "pedicle_end_lateral_u_mm": tuple(float(x) for x in (
                    self.pedicle_end_u if self.pedicle_end_lateral_u is None
                    else self.pedicle_end_lateral_u)[i]),
                "canal_half_width_mm": tuple(float(x) for x in self.canal_half_width[i]),
                "pedicle_outer_v_mm": tuple(float(x) for x in self.pedicle_outer_v[i]),
                "spinous_half_width_mm": self.spinous_half_width_mm}

    def to_json(self) -> dict[str, Any]:
        return {"pedicle_width_mm": [round(w, 1) for w in self.pedicle_width_mm],
                "pedicle_width_measured": list(self.pedicle_width_measured),
                "spinous_half_width_mm": round(self.spinous_half_width_mm, 1),
                "spinous_measured": self.spinous_measured}


def _fill_nearest(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rows that are NaN take the nearest finite row (along axis 0)."""
    ok = np.isfinite(values).all(axis=1) if values.ndim == 2 else np.isfinite(values)
    if not ok.any() or ok.all():
        return values
    have = np.nonzero(ok)[0]
    nearest = have[np.abs(np.arange(len(values))[:, None] - have[None, :]).argmin(axis=1)]
    return values[nearest]


def _run_end(vs: NDArray[np.float64], start_max: float, gap: float) -> float | None:
    """End of the contiguous run of sorted values ``vs`` that starts at or before
    ``start_max``; None when the first value lies beyond it."""
    if len(vs) == 0 or vs[0] > start_max:
        return None
    breaks = np.nonzero(np.diff(vs) > gap)[0]
    return float(vs[breaks[0]] if len(breaks) else vs[-1])


def _body_components(mask_k: NDArray[np.bool_], u_k: NDArray[np.float64],
                     v_k: NDArray[np.float64], wall: float, half_width: float, px: float
                     ) -> tuple[NDArray[np.int32], NDArray[np.bool_]]:
    """In-plane components of one slice and which of them hold body (bone in front
    of the body wall within the canal's width)."""
    comps, n = ndimage.label(mask_k)
    seed = mask_k & (u_k >= wall + px) & (np.abs(v_k) <= half_width)
    is_body = np.zeros(n + 1, dtype=bool)
    is_body[np.unique(comps[seed])] = True
    is_body[0] = False
    return comps, is_body


def _body_profile(bone: NDArray[np.bool_], coords: BoxCoordinates, wall: NDArray[np.float64],
                  hw: NDArray[np.float64], px: float, min_area: float,
                  lesion: NDArray[np.bool_] | None = None
                  ) -> tuple[NDArray[np.float64] | None, NDArray[np.float64] | None]:
    """The body's posterior surface per ``v`` bin, from the slices where the body's
    component holds no bone behind the canal (not joined to the arch) and is at least
    ``min_area`` of the largest such section (not an end slice cutting part of it)."""
    per_slice: list[tuple[int, NDArray[np.float64], NDArray[np.float64]]] = []
    for k in range(bone.shape[0]):
        if not np.isfinite(wall[k]) or not bone[k].any():
            continue
        u_k, v_k = coords.u[k], coords.v[k]
        half = float(np.nanmax(hw[k]))
        comps, is_body = _body_components(bone[k], u_k, v_k, wall[k], half, px)
        body = is_body[comps]
        # joined to the arch: bone of the body's piece behind the canal centre (a
        # shallow cervical canal puts the laminae within a canal width of the wall)
        if not body.any() or (body & (u_k < 0.0)).any():
            continue
        per_slice.append((k, u_k[body] - wall[k], v_k[body]))  # relative to the wall
    if not per_slice:
        return None, None
    # the body's section in front of the wall on every slice (joined or not), the
    # tumour that replaced its bone included, within the body's width on the slices
    # where it stands alone (not the roots of cervical transverse processes beside it)
    reach_v = max(float(np.abs(v).max()) for _, _, v in per_slice) + px
    solid = bone if lesion is None else bone | lesion
    front = np.zeros(bone.shape[0])
    for k in range(bone.shape[0]):
        if np.isfinite(wall[k]):
            front[k] = np.count_nonzero(solid[k] & (coords.u[k] >= wall[k])
                                        & (np.abs(coords.v[k]) <= reach_v))
    largest = float(front.max(initial=0.0))
    kept = [(u, v) for k, u, v in per_slice if front[k] >= min_area * largest]
    if not kept:
        return None, None
    reach = max(max(float(np.abs(v).max()) for _, v in kept), px)
    half_n = int(np.ceil(reach / px))
    bins = np.arange(-half_n, half_n + 1) * px  # symmetric: a missing side is mirrored
    rows = np.full((len(kept), len(bins)), np.nan)
    for r, (u, v) in enumerate(kept):
        i = np.clip(np.rint((v - bins[0]) / px).astype(np.int64), 0, len(bins) - 1)
        back = np.full(len(bins), np.inf)
        np.minimum.at(back, i, u)
        rows[r] = np.where(np.isfinite(back), back, np.nan)
    # a column of the body is on most of those slices; one seen on a few only is the
    # stub of a pedicle (its lower rim, not yet joined to the arch)
    known = np.isfinite(rows).sum(axis=0) >= 0.5 * len(kept)
    prof = np.full(len(bins), np.nan)
    if known.any():
        prof[known] = np.nanmedian(rows[:, known], axis=0)
    # a one-sided defect (lytic half body) takes the other side's surface
    mirror = np.interp(-bins, bins, np.where(np.isfinite(prof), prof, np.inf),
                       left=np.inf, right=np.inf)
    # (deeper by more than a pixel: the two sides of a healthy body differ by the
    # grid's sampling only)
    prof = np.where(np.isfinite(prof), np.where(mirror < prof - px, mirror, prof),
                    np.where(np.isfinite(mirror), mirror, np.nan))
    # lateral to the outermost measured columns lies no body (+inf), between them an
    # unmeasured column is left to the body wall (NaN)
    have = np.nonzero(np.isfinite(prof))[0]
    if len(have):
        prof[:have[0]] = np.inf
        prof[have[-1] + 1:] = np.inf
    out_v: NDArray[np.float64] = np.asarray(bins, dtype=np.float64)
    out_u: NDArray[np.float64] = np.asarray(prof, dtype=np.float64)
    return out_v, out_u


def _lamina_back(bone: NDArray[np.bool_], coords: BoxCoordinates, post: NDArray[np.float64],
                 s_half: float, px: float, gap: float) -> float | None:
    """How far behind the canal the laminae's posterior surface lies beside the
    spinous process (median over slices and columns ``|v|`` within 3 mm lateral of
    its half-width): the spinous process arises behind it."""
    depths = []
    for k in range(bone.shape[0]):
        if not np.isfinite(post[k]) or not bone[k].any():
            continue
        u_k, v_k = coords.u[k], coords.v[k]
        av = np.abs(v_k)
        sel = bone[k] & (u_k < post[k] + px) & (av > s_half + px) & (av <= s_half + 3.0)
        if not sel.any():
            continue
        cols = np.rint(v_k[sel] / px).astype(np.int64)
        us = u_k[sel]
        for c in np.unique(cols):
            col = np.sort(us[cols == c])[::-1]  # anterior first
            if col[0] < post[k] - 3.0 * px:
                continue  # no lamina against the canal here
            breaks = np.nonzero(-np.diff(col) > gap)[0]
            back = col[breaks[0]] if len(breaks) else col[-1]
            depths.append(float(post[k] - back + 0.5 * px))
    # the laminae slope back towards the midline: their deeper columns, nearest it
    return float(np.quantile(depths, 0.75)) if depths else None


def _transverse_foramina(bone: NDArray[np.bool_], canal: NDArray[np.bool_],
                         coords: BoxCoordinates, wall: NDArray[np.float64],
                         post: NDArray[np.float64], hw: NDArray[np.float64],
                         options: PartitionOptions
                         ) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """The foramina transversaria of a cervical vertebra, per side (left, right):
    their medial edge (``|v|``) and their posterior edge (``u``), the medians over the
    slices where a hole of the bone of foramen size lies beside the canal, its centre
    between ``foramen_max_behind_mm`` behind and ``foramen_max_ahead_mm`` in front of
    the body wall (beside the pedicle, not the articular processes), with its
    mirror image on the other side.  None without such a pair.
    """
    o = options
    px = coords.pixel_mm
    a_min, a_max = o.foramen_min_area_mm2, o.foramen_max_area_mm2
    found: list[list[tuple[int, float, float]]] = [[], []]
    for k in range(bone.shape[0]):
        if not np.isfinite(wall[k]) or not bone[k].any():
            continue
        holes = ndimage.binary_fill_holes(bone[k]) & ~bone[k] & ~canal[k]
        if not holes.any():
            continue
        comps, n = ndimage.label(holes)
        u_k, v_k = coords.u[k], coords.v[k]
        for c in range(1, n + 1):
            m = comps == c
            area = np.count_nonzero(m) * px * px
            if not a_min <= area <= a_max:
                continue
            hole_u, hole_v = u_k[m], v_k[m]
            side = 0 if hole_v.mean() > 0 else 1
            if np.abs(hole_v).min() < hw[k, side] \
                    or not -o.foramen_max_behind_mm <= hole_u.mean() - wall[k] \
                    <= o.foramen_max_ahead_mm:
                continue
            found[side].append((k, float(np.abs(hole_v).min()) - 0.5 * px,
                                float(hole_u.min()) - 0.5 * px))
    # a pair: foramina on both sides of the same slice, mirror images within
    # pair_tolerance_mm (a lytic cavity or a rib's joint is on one side, the foramina
    # of a cervical vertebra on both, on at least min_slices slices)
    tol = o.foramen_pair_tolerance_mm
    paired = [[f for f in found[0] if any(g[0] == f[0] and abs(g[1] - f[1]) <= tol
                                           and abs(g[2] - f[2]) <= tol for g in found[1])],
              [g for g in found[1] if any(f[0] == g[0] and abs(g[1] - f[1]) <= tol
                                           and abs(g[2] - f[2]) <= tol for f in found[0])]]
    if len({f[0] for f in paired[0]}) < o.foramen_min_slices:
        return None
    # each side's own foramen where it is seen (a lytic pedicle opens it on some slices)
    medial = np.array([np.median([f[1] for f in fs]) for fs in paired])
    back = np.array([np.median([f[2] for f in fs]) for fs in paired])
    return medial, back


def find_landmarks(bone: NDArray[np.bool_], canal: NDArray[np.bool_], coords: BoxCoordinates, *,
                   options: PartitionOptions, lesion: NDArray[np.bool_] | None = None
                   ) -> VertebraLandmarks | None:
    """The landmarks of one vertebra.

    Parameters
    ----------
    bone : ndarray of shape coords.shape, bool
        The vertebra's bone on the box.
    canal : ndarray of shape coords.shape, bool
        Its canal on the box (the bony canal where the ring exists).
    coords : BoxCoordinates
    options : PartitionOptions
    lesion : ndarray of shape coords.shape, bool, optional
        The GTV on the box, outside the canal: it counts in the body's section when
        choosing the slices that cut the whole body.

    Returns
    -------
    VertebraLandmarks or None
        None when no slice of the box has canal.
    """
    o = options
    n = coords.shape[0]
    px = coords.pixel_mm
    half = 0.5 * px
    gap = 1.6 * px
    wall = np.full(n, np.nan)
    post = np.full(n, np.nan)
    hw = np.full((n, 2), np.nan)
    pend = np.full((n, 2), np.nan)
    widths: list[list[float]] = [[], []]
    spin: list[float] = []
    for k in range(n):
        ck = canal[k]
        if not ck.any():
            continue
        cu, cv = coords.u[k][ck], coords.v[k][ck]
        wall[k] = cu.max() + half
        post[k] = cu.min() - half
        bk = bone[k]
        bu, bv = coords.u[k][bk], coords.v[k][bk]
        crow = np.floor((cu - wall[k]) / px).astype(np.int64)
        brow = np.floor((bu - wall[k]) / px).astype(np.int64)
        for s, sign in enumerate(_SIDES):
            side = sign * cv > -half
            if not side.any():
                continue
            sv = sign * cv[side]
            rows = crow[side]
            hw[k, s] = sv.max() + half
            # canal half-width per row, then the junction row
            uniq, inv = np.unique(rows, return_inverse=True)
            hrow = np.full(len(uniq), -np.inf)
            np.maximum.at(hrow, inv, sv)
            keep = hrow >= o.pedicle_junction_canal_fraction * hrow.max()
            pend[k, s] = float(uniq[keep].min()) * px + wall[k]
            # pedicle width: bone run lateral to the canal, row by row, in front of the junction
            bside = (sign * bv > 0) & (bu < wall[k]) & (brow >= uniq[keep].min())
            best = np.inf
            for r, h in zip(uniq[keep], hrow[keep], strict=True):
                vs = np.sort(sign * bv[bside & (brow == r)])
                vs = vs[vs > h]
                end = _run_end(vs, h + 2.0 * px, gap)
                if end is not None:
                    best = min(best, end - h)
            if np.isfinite(best):
                widths[s].append(best)
        # spinous half-width behind the canal
        behind = bk & (coords.u[k] < post[k] - o.spinous_base_offset_mm) \
            & (np.abs(coords.v[k]) <= o.spinous_search_half_width_mm)
        if behind.any():
            su, sv2 = coords.u[k][behind], coords.v[k][behind]
            srow = np.floor(su / px).astype(np.int64)
            for r in np.unique(srow):
                vs = np.sort(sv2[srow == r])
                centre = int(np.argmin(np.abs(vs)))
                if abs(vs[centre]) > 2.0 * px:
                    continue
                lo = hi = centre
                while lo > 0 and vs[lo] - vs[lo - 1] <= gap:
                    lo -= 1
                while hi < len(vs) - 1 and vs[hi + 1] - vs[hi] <= gap:
                    hi += 1
                spin.append(max(-vs[lo], vs[hi]) + half)
    if not np.isfinite(wall).any():
        return None
    measured = tuple(len(w) > 0 for w in widths)
    width = [float(np.quantile(w, o.pedicle_width_quantile)) if w else np.nan for w in widths]
    for s in (0, 1):
        if not np.isfinite(width[s]):
            width[s] = width[1 - s] if np.isfinite(width[1 - s]) else o.pedicle_default_width_mm
    # the two pedicles of a vertebra are near-equal: a lesion that replaced one (lytic)
    # or a partial segmentation narrows it, nothing widens it beyond the other
    width = [max(width)] * 2
    width = [float(np.clip(w, o.pedicle_min_width_mm, o.pedicle_max_width_mm)) for w in width]
    s_half = float(np.median(spin)) + o.spinous_half_width_margin_mm if spin \
        else o.spinous_default_half_width_mm
    s_half = float(np.clip(s_half, o.spinous_min_half_width_mm, o.spinous_max_half_width_mm))
    root = _lamina_back(bone, coords, post, s_half, px, gap)
    root_offset = float(np.clip(root, 0.0, o.spinous_max_root_offset_mm)) if root is not None \
        else o.spinous_root_offset_mm
    wall, post = _fill_nearest(wall), _fill_nearest(post)
    hw, pend = _fill_nearest(hw), _fill_nearest(pend)
    # a side without canal voxels on a slice: mirror the other side
    for a, b in ((0, 1), (1, 0)):
        hw[:, a] = np.where(np.isfinite(hw[:, a]), hw[:, a], hw[:, b])
        pend[:, a] = np.where(np.isfinite(pend[:, a]), pend[:, a], pend[:, b])
    outer = hw + np.array(width)[None, :] + o.pedicle_outer_margin_mm
    # cervical: the foramen transversarium lies lateral to the pedicle, between the
    # roots of the transverse process (the anterior one arises from the body); the
    # pedicle ends where the canal wall turns into the lamina (the lateral mass)
    foramina = _transverse_foramina(bone, canal, coords, wall, post, hw, o)
    foramen: tuple[tuple[float, float], tuple[float, float]] | None = None
    if foramina is not None:
        medial, back = foramina
        foramen = ((float(medial[0]), float(medial[1])), (float(back[0]), float(back[1])))
    # elsewhere the transverse process arises at the pedicle-lamina junction: the
    # pedicle ends no farther back than the middle of the process's root (lumbar
    # pedicles beside parallel canal walls)
    lateral = np.full(2, np.nan)
    for s, sign in enumerate(_SIDES if foramina is None else ()):
        edges, fronts = [], []
        for k in range(n):
            if not np.isfinite(wall[k]) or not bone[k].any():
                continue
            bk = bone[k]
            sv = sign * coords.v[k][bk]
            bu = coords.u[k][bk]
            root = (sv > outer[k, s]) & (sv <= outer[k, s] + o.pedicle_tp_root_mm) \
                & (bu < wall[k])
            if np.count_nonzero(root) * px * px < o.pedicle_tp_root_min_area_mm2:
                continue  # a few voxels: a bony spur or noise, not the process
            rows = np.unique(np.floor((bu[root] - wall[k]) / px).astype(np.int64))[::-1]
            if rows[0] * px + wall[k] < pend[k, s]:
                continue  # starts behind the pedicle: a facet, not the root
            run = rows[:np.argmax(np.diff(np.append(rows, rows[-1] - 2)) < -1) + 1]
            first, last = float(run[0]) * px, float(run[-1]) * px
            if first + wall[k] > pend[k, s] + o.pedicle_tp_root_max_ahead_mm:
                continue  # a rib's neck joined to the process on the CT, not its root
            edges.append(first - o.pedicle_tp_root_position * (first - last) + wall[k])
            fronts.append(first + wall[k])
        if edges:
            pend[:, s] = np.maximum(pend[:, s], float(np.median(edges)))
            lateral[s] = float(np.median(fronts))
    # both pedicles end at the same depth of the vertebra: a side whose bone a lesion
    # replaced (no canal wall, no process root to measure) takes the other's, the
    # more anterior of the two being the one whose junction was seen
    # one junction per vertebra (the pillar is one solid): the median over its slices
    pend = np.repeat(np.full((1, 1), float(np.nanmedian(pend.max(axis=1)))), n, axis=0) \
        .repeat(2, axis=1) if np.isfinite(pend).any() else pend
    # the pedicle's end runs obliquely: at its medial face where the canal wall turns
    # into the lamina, at its outer surface where the transverse process arises
    # (never behind the medial end); both sides alike, as the medial end
    # (the transverse process's anterior surface is measured the same on contours and
    # on a CT segmentation; its posterior extent is not)
    front: float | None = None
    if np.isfinite(lateral).any() and np.isfinite(pend).any():
        front = float(np.nanmax(lateral))
        pend_lateral = np.maximum(pend, front + o.pedicle_lateral_end_fraction * (pend - front))
    else:
        pend_lateral = pend
    prof_v, prof_u = _body_profile(bone, coords, wall, hw, px, o.pedicle_body_profile_min_area,
                                   lesion)
    if prof_u is not None:
        prof_u = np.where(np.isfinite(prof_u),
                          np.maximum(prof_u, -o.pedicle_body_max_behind_wall_mm), prof_u)
    return VertebraLandmarks(
        body_profile_v=prof_v, body_profile_u=prof_u,
        body_back_tolerance_mm=o.pedicle_body_tolerance_mm,
        first_slice=coords.start[0], body_wall_u=wall, canal_posterior_u=post,
        canal_half_width=hw, pedicle_end_u=pend, pedicle_outer_v=outer,
        pedicle_end_lateral_u=pend_lateral, pedicle_width_mm=(width[0], width[1]),
        transverse_front_u=front, transverse_root_mm=o.pedicle_tp_root_mm,
        transverse_front_tolerance_mm=max(o.pedicle_tp_front_tolerance_mm, 0.5 * px),
        pedicle_width_measured=(bool(measured[0]), bool(measured[1])),
        spinous_half_width_mm=s_half, spinous_measured=bool(spin),
        spinous_root_offset_mm=root_offset,
        foramen_medial_v=foramen[0] if foramen else None,
        foramen_posterior_u=foramen[1] if foramen else None)


def label_parts(mask: NDArray[np.bool_], coords: BoxCoordinates,
                landmarks: VertebraLandmarks) -> NDArray[np.int8]:
    """Part code (:data:`contourqa.sectors.parts.PART_NAMES`) of every voxel of ``mask``.

    Rules, first that holds: body (``u >= body_wall_u`` and not behind the body's
    posterior surface at that ``v``); spinous process (behind
    the canal and its root offset, ``|v| <= spinous_half_width``); transverse process (``|v|`` beyond
    the pedicle's outer surface); pedicle (in front of the pedicle's end, joined
    in-plane to the body: the bridge); lamina (with the articular processes).

    Returns
    -------
    ndarray of shape coords.shape, int8
        1-8 on ``mask``, 0 elsewhere.
    """
    lm = landmarks
    idx = np.nonzero(mask)
    k = idx[0]
    u = coords.u[idx]
    v = coords.v[idx]
    s = (v < 0).astype(np.int64)  # 0 left, 1 right
    av = np.abs(v)
    # the pedicle is a bridge: bone beside the canal joined in-plane to the body
    joined = np.zeros(mask.shape, dtype=bool)
    for kk in np.nonzero(mask.any(axis=(1, 2)))[0]:
        comps, is_body = _body_components(mask[kk], coords.u[kk], coords.v[kk],
                                          float(lm.body_wall_u[kk]),
                                          float(np.max(lm.canal_half_width[kk])),
                                          coords.pixel_mm)
        joined[kk] = is_body[comps]
    bridge = joined[idx]
    # the body's posterior surface where it was measured (its posterolateral corners
    # reach behind the canal's most anterior point), else the body wall
    back = lm.body_back_u(v)
    known = np.isfinite(back) & (back > -np.inf)
    tol = max(0.5 * coords.pixel_mm, lm.body_back_tolerance_mm)  # voxel centres
    body = np.where(known, u >= lm.body_wall_u[k] + back - tol,
                    (u >= lm.body_wall_u[k]) & (back < np.inf))
    root = np.zeros(len(k), dtype=bool)
    if lm.foramen_medial_v is not None and lm.foramen_posterior_u is not None:
        root = (av > np.asarray(lm.foramen_medial_v)[s]) \
            & (u >= np.asarray(lm.foramen_posterior_u)[s])
        body &= ~root
    spinous = ~body & (u < lm.canal_posterior_u[k] - lm.spinous_root_offset_mm) \
        & (av <= lm.spinous_half_width_mm)
    lateral = av > lm.pedicle_outer_v[k, s]
    if lm.transverse_front_u is not None:
        # the transverse process arises behind its root's anterior surface: bone just
        # lateral to the pedicle's outer surface but in front of it is the pedicle's
        # own (a convergent pedicle's outer surface runs obliquely); farther out the
        # process may run forward
        lateral &= (u < lm.transverse_front_u + lm.transverse_front_tolerance_mm) \
            | (av > lm.pedicle_outer_v[k, s] + lm.transverse_root_mm)
    tp = ~body & ~spinous & (lateral | root)
    end = lm.pedicle_end_u[k, s]
    if lm.pedicle_end_lateral_u is not None:
        inner = lm.canal_half_width[k, s]
        span = np.maximum(lm.pedicle_outer_v[k, s] - inner, coords.pixel_mm)
        end = end + np.clip((av - inner) / span, 0.0, 1.0) \
            * (lm.pedicle_end_lateral_u[k, s] - end)
    pedicle = ~body & ~spinous & ~tp & (u >= end) & bridge
    codes = np.select(
        [body, spinous, tp & (s == 0), tp & (s == 1), pedicle & (s == 0), pedicle & (s == 1),
         s == 0],
        [1, 5, 4, 7, 2, 8, 3], default=6).astype(np.int8)
    out = np.zeros(mask.shape, dtype=np.int8)
    out[idx] = codes
    return out
