"""Dark marrow of the vertebral bodies, filled into the column of :mod:`contourqa.anatomy.ct`.

Cancellous bone of older patients is 80-250 HU: part of it falls below the bone
threshold, and where the cortex is open on an axial slice (the basivertebral
foramen, a thin or partial-volume cortex on a 3 mm grid) the axial hole filling
leaves it out.  On the sagittal and coronal grid planes the same marrow is still
enclosed: by the cortex in front and behind, and by the bone (or the filled
marrow) of the slices above and below.  The discs are enclosed likewise, between
the endplates, so that the marrow filled from filled slices keeps clear of the
disc planes.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from contourqa.geometry import VolumeGeometry

__all__ = ["enclosed_marrow", "plane_fill"]


def plane_fill(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """``mask`` with its holes on the grid's sagittal and coronal planes filled.

    Parameters
    ----------
    mask : ndarray of shape (S, R, C), bool

    Returns
    -------
    ndarray of shape (S, R, C), bool
        The union of the fills on the (slice, column) planes of each row and the
        (slice, row) planes of each column.
    """
    filled = mask.copy()
    found = ndimage.find_objects(mask.astype(np.int8))
    if not found or found[0] is None:
        return filled
    # the mask's bounding box with a margin of one voxel: the background beyond it is
    # connected to the border, as is the margin
    box = tuple(slice(max(sl.start - 1, 0), sl.stop + 1) for sl in found[0])
    sub = mask[box]
    cross = ndimage.generate_binary_structure(2, 1)
    for axis in (1, 2):
        st = np.zeros((3, 3, 3), dtype=bool)
        if axis == 1:
            st[:, 1, :] = cross
        else:
            st[:, :, 1] = cross
        filled[box] |= np.asarray(ndimage.binary_fill_holes(sub, structure=st), dtype=bool)
    return filled


def enclosed_marrow(column: NDArray[np.bool_], canal: NDArray[np.bool_],
                     geometry: VolumeGeometry, disc_points_mm: NDArray[np.float64],
                     disc_normals: NDArray[np.float64], margin_mm: float) -> NDArray[np.bool_]:
    """Voxels enclosed by the (axially filled) column on a sagittal or coronal grid
    plane, outside the canal and farther than ``margin_mm`` from every disc plane.

    Parameters
    ----------
    column : ndarray of shape (S, R, C), bool
        The column's bone with its axial holes filled.
    canal : ndarray of shape (S, R, C), bool
    geometry : VolumeGeometry
    disc_points_mm, disc_normals : ndarray of shape (D, 3), float64
        A point (LPS mm) and the unit normal of each disc plane.
    margin_mm : float
        Half the thickness of the thickest disc (and the plane's fitting error).

    Returns
    -------
    ndarray of shape (S, R, C), bool
        The voxels to add to the column (none of ``column``).
    """
    extra = plane_fill(column) & ~column & ~canal
    if len(disc_points_mm) == 0:
        return extra
    kji = np.argwhere(extra)
    pts = geometry.index_to_patient(kji)
    dist = np.abs(np.einsum("nij,ij->ni", pts[:, None, :] - disc_points_mm[None],
                            disc_normals)).min(axis=1)
    out = np.zeros_like(extra)
    out[tuple(kji[dist > margin_mm].T)] = True
    return out
