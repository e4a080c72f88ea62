"""The foramina transversaria, kept as holes of the column of :mod:`contourqa.anatomy.ct`.

The column's axial holes are filled: dark marrow below the bone threshold and a
lytic metastasis that replaced bone belong to their vertebra.  The foramina
transversaria of the cervical vertebrae are holes too, but of soft tissue (the
vertebral artery and veins, fat): they are no bone, and the sector partition
(:mod:`contourqa.sectors.landmarks`) finds the cervical pedicle beside them, as it
does on a vertebra ROI, which leaves them out.  :func:`transverse_foramina` tells
them from the holes that must stay filled by their size, their CT numbers, their
place beside the canal, the lesion and their mirror image (thresholds in
``anatomy/data/ct_segmentation.toml`` ``[foramen]``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from contourqa.anatomy.options import CTSegmentationOptions
from contourqa.anatomy.spine import slice_structure
from contourqa.geometry import VolumeGeometry

__all__ = ["transverse_foramina"]


def transverse_foramina(column: NDArray[np.bool_], bone: NDArray[np.bool_],
                        canal: NDArray[np.bool_],
                        hu: NDArray[np.float64], lesion: NDArray[np.bool_] | None,
                        dx_mm: NDArray[np.float64], dy_mm: NDArray[np.float64],
                        anterior: NDArray[np.float64], geometry: VolumeGeometry,
                        options: CTSegmentationOptions) -> NDArray[np.bool_]:
    """The axial holes of the column's bone that are foramina transversaria.

    A hole (in-plane 4-connected, not canal) is a foramen when its area is within
    [``foramen_min_area_mm2``, ``foramen_max_area_mm2``], its mean HU is at most
    ``foramen_max_mean_hu``, its centroid lies farther left or right of the canal
    centre than the canal's half-width (the median over the slices of the canal's
    largest left-right offset), it holds no lesion voxel, and a hole on the other
    side of the same slice mirrors it about a plane through the canal centre: the
    two centroids' distances from the canal centre differ by at most
    ``foramen_pair_tolerance_mm``, they lie farther apart left-right than
    front-back, and their midpoint lies between ``foramen_max_behind_mm`` behind and
    ``foramen_max_ahead_mm`` in front of the canal's front (the body's posterior
    wall): beside the pedicle.  And the foramen lies lateral to the body: of the
    voxels in front of it (as wide as the hole, up to ``foramen_front_depth_mm``
    ahead of its front edge), at most ``foramen_max_front_fraction`` are the
    column's, whereas the dark (fatty) marrow of a lumbar or thoracic pedicle has
    the body in front of it.

    Parameters
    ----------
    column : ndarray of shape (S, R, C), bool
        The column with its holes filled (marrow included).
    bone : ndarray of shape (S, R, C), bool
        The column's bone (before its holes are filled).
    canal : ndarray of shape (S, R, C), bool
    hu : ndarray of shape (S, R, C), float64, HU
    lesion : ndarray of shape (S, R, C), bool, or None
        The GTV: a hole that holds any of it is a lytic cavity, not a foramen.
    dx_mm, dy_mm : ndarray of shape (S, R, C), float64, mm
        In-plane LPS offsets of every voxel from its slice's canal centre.
    anterior : ndarray of shape (S, 2), float64
        Unit anterior direction (LPS x, y) of each slice.
    geometry : VolumeGeometry
    options : CTSegmentationOptions

    Returns
    -------
    ndarray of shape (S, R, C), bool
        The foramina (none of ``bone``); empty when ``foramen_max_area_mm2`` is 0 or
        no slice has canal.
    """
    o = options
    none = np.zeros(bone.shape, dtype=bool)
    if o.foramen_max_area_mm2 <= 0 or not canal.any():
        return none
    st = slice_structure(1)
    holes = np.asarray(ndimage.binary_fill_holes(bone, structure=st), dtype=bool) & ~bone & ~canal
    lab, n = ndimage.label(holes, structure=st)
    if n == 0:
        return none
    # the vertebra's frame on each slice: u anterior, v to the patient's left
    ax = anterior[:, 0, None, None]
    ay = anterior[:, 1, None, None]
    u = dx_mm * ax + dy_mm * ay
    v = dx_mm * ay - dy_mm * ax
    k_of = np.broadcast_to(np.arange(bone.shape[0])[:, None, None], bone.shape)
    canal_k = np.nonzero(canal)[0]
    has_canal = canal.any(axis=(1, 2))
    canal_hw = np.zeros(bone.shape[0])
    np.maximum.at(canal_hw, canal_k, np.abs(v[canal]))
    half_width = float(np.median(canal_hw[has_canal]))
    # the canal's front (the body's posterior wall) on each slice, interpolated between
    # the slices where the canal was found
    front = np.full(bone.shape[0], -np.inf)
    np.maximum.at(front, canal_k, u[canal])
    slices = np.arange(bone.shape[0])
    front = np.interp(slices, slices[has_canal], front[has_canal])
    index = np.arange(1, n + 1)
    area = ndimage.sum_labels(np.ones(bone.shape), lab, index) \
        * float(geometry.spacing_mm[0] * geometry.spacing_mm[1])
    mean_hu = np.asarray(ndimage.mean(hu, lab, index))
    cu = np.asarray(ndimage.mean(u, lab, index))
    cv = np.asarray(ndimage.mean(v, lab, index))
    k = np.asarray(ndimage.minimum(k_of, lab, index)).astype(np.int64)
    in_lesion = np.zeros(n, dtype=bool)
    if lesion is not None and lesion.any():
        in_lesion = np.asarray(ndimage.maximum(lesion, lab, index)) > 0
    ok = (area >= o.foramen_min_area_mm2) & (area <= o.foramen_max_area_mm2) \
        & (mean_hu <= o.foramen_max_mean_hu) & (np.abs(cv) > half_width) & ~in_lesion
    # lateral to the body: little of the column straight in front of the hole (the
    # anterior root of the transverse process, then soft tissue), not the body
    boxes = ndimage.find_objects(lab)
    reach = int(np.ceil(o.foramen_front_depth_mm / float(min(geometry.spacing_mm[:2])))) + 1
    for c in np.nonzero(ok)[0]:
        box = boxes[c]
        if box is None:  # every label 1..n has voxels
            continue
        kc = box[0].start
        # the hole's box widened by the strip's depth on every side (any direction)
        rows = slice(max(box[1].start - reach, 0), box[1].stop + reach)
        cols = slice(max(box[2].start - reach, 0), box[2].stop + reach)
        uu, vv = u[kc, rows, cols], v[kc, rows, cols]
        m = lab[kc, rows, cols] == c + 1
        mu, mv = uu[m], vv[m]
        strip = (vv >= mv.min()) & (vv <= mv.max()) & (uu > mu.max()) \
            & (uu <= mu.max() + o.foramen_front_depth_mm)
        if strip.any() and float(column[kc, rows, cols][strip].mean()) \
                > o.foramen_max_front_fraction:
            ok[c] = False
    cand = np.nonzero(ok)[0]
    tol = o.foramen_pair_tolerance_mm
    # mirror images about a plane through the canal centre: the same distance from
    # it, on opposite sides, the plane nearer the front-back axis than the left-right
    # one (the anterior direction, from the bone's centroid, turns with an asymmetric
    # lytic lesion: 7 degrees on the parts phantom's lytic C6 pedicle, which moves
    # a foramen 16 mm to the side by 2 mm front-back); the pair's midpoint, on that
    # plane and so hardly moved by the turn, lies in the band about the canal's front
    cu, cv = cu[cand], cv[cand]
    radius = np.hypot(cu, cv)
    same = k[cand][:, None] == k[cand][None, :]
    opposite = np.sign(cv)[:, None] != np.sign(cv)[None, :]
    near = np.abs(radius[:, None] - radius[None, :]) <= tol
    lateral = np.abs(cv[:, None] - cv[None, :]) > np.abs(cu[:, None] - cu[None, :])
    ahead = 0.5 * (cu[:, None] + cu[None, :]) - front[k[cand]][:, None]
    band = (ahead >= -o.foramen_max_behind_mm) & (ahead <= o.foramen_max_ahead_mm)
    paired = cand[(same & opposite & near & lateral & band).any(axis=1)]
    return np.isin(lab, paired + 1)
