"""The vertebra's outline where tumour replaced bone (lytic lesions).

A lytic GTV that replaced a pedicle or most of a body leaves no bone on the CT (and
sometimes a hole in a careless vertebra contour).  The outline is restored, inside
the GTV only, from what the vertebra tells about itself:

* its mirror image about the midline (``envelope_use_mirror``): a one-sided defect;
* its bone on the neighbouring slices within ``envelope_neighbour_mm``;
* the convex outline of the body on the slice (``envelope_use_body_hull``);
* a closing of ``envelope_closing_mm`` (a cortex broken by a narrow defect);
* the vertebrae above and below at the same relative height in their own frames
  (``envelope_use_adjacent_levels``, see :func:`adjacent_level_template`): a defect
  through the whole height of both sides.

GTV inside the restored outline (and outside the bony canal) is bone replaced by
tumour: it takes the part and sector of the place it occupies.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.morphology import convex_hull_image

from contourqa.geometry import VolumeGeometry
from contourqa.sectors.frame import BoxCoordinates

__all__ = ["adjacent_level_template", "mirrored", "mirrored_values", "restore_envelope"]


def mirrored(mask_full: NDArray[np.bool_], coords: BoxCoordinates,
             geometry: VolumeGeometry) -> NDArray[np.bool_]:
    """``mask_full`` reflected about each slice's midline (``v -> -v``), on the box.

    Parameters
    ----------
    mask_full : ndarray of shape geometry.shape, bool
    coords : BoxCoordinates
    geometry : VolumeGeometry

    Returns
    -------
    ndarray of shape coords.shape, bool
    """
    return mirrored_values(mask_full, coords, geometry).astype(bool)


def mirrored_values(values_full: NDArray[np.generic], coords: BoxCoordinates,
                    geometry: VolumeGeometry) -> NDArray[np.generic]:
    """Like :func:`mirrored` for an array of any type (labels): the value at each box
    voxel's mirror image about its slice's midline (nearest voxel; 0 outside the grid)."""
    mask_full = values_full
    out = np.zeros(coords.shape, dtype=values_full.dtype)
    k0 = coords.start[0]
    box = coords.box
    near = mask_full[box[0]].any(axis=(1, 2))
    for k in np.nonzero(near)[0]:
        u, v = coords.u[k].ravel(), coords.v[k].ravel()
        xy = coords.to_patient_xy(np.full(len(u), k), u, -v)
        z = geometry.index_to_patient(np.array([k0 + int(k), 0, 0]))[2]
        pts = np.column_stack([xy, np.full(len(u), z)])
        idx = np.rint(geometry.patient_to_index(pts)).astype(np.int64)
        ok = np.all((idx >= 0) & (idx < np.asarray(geometry.shape)), axis=1)
        vals = np.zeros(len(u), dtype=values_full.dtype)
        vals[ok] = mask_full[k0 + k, idx[ok, 1], idx[ok, 2]]
        out[k] = vals.reshape(coords.shape[1:])
    return out


def adjacent_level_template(bone: NDArray[np.bool_], coords: BoxCoordinates,
                            other_bone: NDArray[np.bool_], other: BoxCoordinates
                            ) -> NDArray[np.bool_]:
    """Another vertebra's bone mapped onto this one's box, slice by slice at the same
    relative height and in each one's own frame.

    Parameters
    ----------
    bone : ndarray of shape coords.shape, bool
        This vertebra's bone on its box (gives its slice range).
    coords : BoxCoordinates
    other_bone : ndarray of shape other.shape, bool
        The other vertebra's bone on its own box.
    other : BoxCoordinates

    Returns
    -------
    ndarray of shape coords.shape, bool
    """
    out = np.zeros(coords.shape, dtype=bool)
    mine = np.nonzero(bone.any(axis=(1, 2)))[0]
    theirs = np.nonzero(other_bone.any(axis=(1, 2)))[0]
    if len(mine) == 0 or len(theirs) == 0:
        return out
    step = max(other.pixel_mm, 1e-6)
    for k in mine:
        t = (k - mine[0]) / max(mine[-1] - mine[0], 1)
        ko = int(theirs[int(round(t * (len(theirs) - 1)))])
        ou, ov = other.u[ko][other_bone[ko]], other.v[ko][other_bone[ko]]
        if len(ou) == 0:
            continue
        # rasterise the other's bone in (u, v) bins, look up this slice's voxels
        u0, v0 = ou.min(), ov.min()
        iu = np.rint((ou - u0) / step).astype(np.int64)
        iv = np.rint((ov - v0) / step).astype(np.int64)
        grid = np.zeros((iu.max() + 3, iv.max() + 3), dtype=bool)
        grid[iu + 1, iv + 1] = True
        grid = ndimage.binary_closing(grid, iterations=1) | grid
        qu = np.rint((coords.u[k] - u0) / step).astype(np.int64) + 1
        qv = np.rint((coords.v[k] - v0) / step).astype(np.int64) + 1
        ok = (qu >= 0) & (qu < grid.shape[0]) & (qv >= 0) & (qv < grid.shape[1])
        hit = np.zeros(qu.shape, dtype=bool)
        hit[ok] = grid[qu[ok], qv[ok]]
        out[k] = hit
    return out


def restore_envelope(bone: NDArray[np.bool_], mirror: NDArray[np.bool_],
                     lesion: NDArray[np.bool_], canal: NDArray[np.bool_],
                     body_wall_u: NDArray[np.float64], coords: BoxCoordinates, *,
                     slice_mm: float, neighbour_mm: float, closing_mm: float,
                     use_body_hull: bool, templates: tuple[NDArray[np.bool_], ...] = ()
                     ) -> NDArray[np.bool_]:
    """The lesion voxels that lie where this vertebra's bone was (on the box).

    Parameters
    ----------
    bone : ndarray of shape coords.shape, bool
        The vertebra's bone.
    mirror : ndarray of shape coords.shape, bool
        Its mirror image (:func:`mirrored`; all False to leave it out).
    lesion : ndarray of shape coords.shape, bool
        The GTV.
    canal : ndarray of shape coords.shape, bool
        The bony canal (never restored: GTV there is epidural).
    body_wall_u : ndarray of shape (S,)
        Posterior body wall per box slice (frame ``u``, mm).
    coords : BoxCoordinates
    slice_mm : float
        Slice spacing.
    neighbour_mm, closing_mm : float
    use_body_hull : bool
    templates : tuple of ndarray of shape coords.shape, bool
        Adjacent vertebrae mapped here (:func:`adjacent_level_template`).

    Returns
    -------
    ndarray of shape coords.shape, bool
        Lesion voxels on the vertebra's slices inside the restored outline, not in
        ``bone`` nor ``canal``.
    """
    on: NDArray[np.bool_] = np.asarray(bone.any(axis=(1, 2)), dtype=bool)
    cand = lesion & ~bone & ~canal & on[:, None, None]
    if not cand.any():
        return np.zeros_like(bone)
    outline = mirror.copy()
    n = int(np.floor(neighbour_mm / slice_mm + 1e-6)) if slice_mm > 0 else 0
    for d in range(1, n + 1):
        outline[d:] |= bone[:-d]
        outline[:-d] |= bone[d:]
    for t in templates:
        outline |= t
    r = int(np.floor(closing_mm / coords.pixel_mm))
    for k in np.nonzero(cand.any(axis=(1, 2)))[0]:
        if r > 0:
            disk = np.hypot(*np.mgrid[-r:r + 1, -r:r + 1]) <= r + 1e-9
            padded = np.pad(bone[k], r + 1)
            closed = ndimage.binary_closing(padded, structure=disk)[r + 1:-r - 1, r + 1:-r - 1]
            outline[k] |= closed
        if use_body_hull:
            front = coords.u[k] >= body_wall_u[k]
            body = bone[k] & front
            if np.count_nonzero(body) >= 3:
                outline[k] |= convex_hull_image(body) & front
    return cand & outline
