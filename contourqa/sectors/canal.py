"""The bony canal of a vertebra: the hole of its ring, closed across gaps.

Rays leave the canal centre of each slice in ``bony_canal_angular_bins`` directions;
along each, the nearest bone voxel (the vertebra's own bone or its mirror image about
the midline) bounds the canal.  A ray that meets no bone within
``bony_canal_max_radius_mm``, or meets it farther than ``bony_canal_gap_factor`` times
the median ray, crosses a gap in the ring (a foramen, a defect where tumour replaced
the bone) and takes the radius interpolated from its neighbours.  A slice whose ring
is closed over less than ``bony_canal_min_hit_fraction`` of the directions has no
bony canal.  The canal ROIs (``SpinalCanal``, ``ThecalSac``, cord) only place the
first centre: the epidural space is bounded by bone.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from contourqa.sectors.frame import BoxCoordinates
from contourqa.sectors.options import PartitionOptions

__all__ = ["bony_canal"]


def bony_canal(bone: NDArray[np.bool_], coords: BoxCoordinates, *,
               options: PartitionOptions, slice_mm: float) -> NDArray[np.bool_]:
    """The bony canal on the box of ``coords``.

    Parameters
    ----------
    bone : ndarray of shape coords.shape, bool
        The vertebra's bone on the box (with its mirror image, to close one-sided gaps).
    coords : BoxCoordinates
        Frame coordinates of the box voxels; their origin (canal centre) is the rays'.
    options : PartitionOptions
    slice_mm : float
        Slice spacing: a ray that meets no bone on its slice takes the nearest bone
        met in its direction on the slices within ``bony_canal_neighbour_mm`` (the
        lamina above or below a pedicle-level slice closes the canal behind).

    Returns
    -------
    ndarray of shape coords.shape, bool
        Voxels inside the ring's hole (no bone); empty on slices without a ring.
    """
    o = options
    n = o.bony_canal_angular_bins
    n_k = bone.shape[0]
    out = np.zeros(bone.shape, dtype=bool)
    r_all = np.hypot(coords.u, coords.v)
    th_all = np.arctan2(coords.v, coords.u)
    centres = (np.arange(n) + 0.5) * (2 * np.pi / n) - np.pi
    near = 0.5 * coords.pixel_mm
    hits = np.full((n_k, n), np.inf)
    on = bone.any(axis=(1, 2))
    for k in np.nonzero(on)[0]:
        sel = bone[k] & (r_all[k] > near) & (r_all[k] <= o.bony_canal_max_radius_mm)
        if sel.any():
            bins = ((th_all[k][sel] + np.pi) / (2 * np.pi) * n).astype(np.int64) % n
            np.minimum.at(hits[k], bins, r_all[k][sel])
    reach = int(np.floor(o.bony_canal_neighbour_mm / slice_mm + 1e-6)) if slice_mm > 0 else 0
    for k in np.nonzero(on)[0]:
        hit = hits[k].copy()
        lo, hi = max(k - reach, 0), min(k + reach + 1, n_k)
        if reach > 0:
            hit = np.where(np.isfinite(hit), hit, hits[lo:hi].min(axis=0))
        valid = np.isfinite(hit)
        if valid.mean() < o.bony_canal_min_hit_fraction:
            continue
        med = float(np.median(hit[valid]))
        valid &= hit <= o.bony_canal_gap_factor * med
        if valid.mean() < o.bony_canal_min_hit_fraction:
            continue
        bound = np.interp(th_all[k], centres[valid], hit[valid], period=2 * np.pi)
        out[k] = (r_all[k] < bound) & ~bone[k]
    return out
