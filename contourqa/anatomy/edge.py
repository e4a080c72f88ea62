"""Partial-volume voxels on the edge of the column of :mod:`contourqa.anatomy.ct`.

On a 3 mm grid the bone threshold keeps voxels that are mostly soft tissue where
the cortex runs obliquely through them: the column's outline is thicker than the
bone.  :func:`partial_volume_edge` finds the voxels on the outer edge that hold
less bone than soft tissue by their HU.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

__all__ = ["partial_volume_edge"]


def partial_volume_edge(column: NDArray[np.bool_], bone: NDArray[np.bool_],
                         hu: NDArray[np.float64], lesion: NDArray[np.bool_] | None,
                         fraction: float) -> NDArray[np.bool_]:
    """Voxels on the column's outer edge that hold more soft tissue than bone.

    A voxel of the column with an in-plane (4-connected) neighbour outside the bone
    is dropped when its HU is below ``fraction`` of the way from the mean HU of those
    soft-tissue neighbours to the mean HU of its neighbours in the column: at
    ``fraction`` 0.5 the edge is placed at half maximum, as a partial-volume voxel
    less than half filled by bone is not bone.  The column neighbours include the
    voxel's neighbours along the edge, so that a smooth edge of partial-volume
    voxels lowers its own threshold and mostly stays; what goes are dim voxels
    sticking out of a brighter surface.  Lesion voxels (a lytic tumour that
    replaced the cortex) are kept.

    Parameters
    ----------
    column, bone : ndarray of shape (S, R, C), bool
    hu : ndarray of shape (S, R, C), float64, HU
    lesion : ndarray of shape (S, R, C), bool, or None
    fraction : float

    Returns
    -------
    ndarray of shape (S, R, C), bool
    """
    drop_all = np.zeros(column.shape, dtype=bool)
    found = ndimage.find_objects(column.astype(np.int8))
    if not found or found[0] is None:
        return drop_all
    # the column's bounding box, one voxel wider in-plane
    box = (found[0][0],) + tuple(slice(max(sl.start - 1, 0), sl.stop + 1) for sl in found[0][1:])
    column, bone, hu = column[box], bone[box], hu[box]
    cross = np.zeros((3, 3, 3))
    cross[1] = ndimage.generate_binary_structure(2, 1)
    cross[1, 1, 1] = 0.0
    soft = ~column & ~bone
    n_in = ndimage.convolve(column.astype(np.float64), cross, mode="constant")
    n_out = ndimage.convolve(soft.astype(np.float64), cross, mode="constant")
    sum_in = ndimage.convolve(np.where(column, hu, 0.0), cross, mode="constant")
    sum_out = ndimage.convolve(np.where(soft, hu, 0.0), cross, mode="constant")
    edge = column & (n_in > 0) & (n_out > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        level = (1.0 - fraction) * sum_out / n_out + fraction * sum_in / n_in
    drop_all[box] = edge & (hu < np.where(edge, level, -np.inf))
    if lesion is not None:
        drop_all &= ~lesion
    return drop_all
