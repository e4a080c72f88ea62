"""Ribs and ilia jointed to the vertebrae, cut from the column of :mod:`contourqa.anatomy.ct`.

A thoracic vertebra articulates with its ribs at the costovertebral joints (the
rib head against the body) and the costotransverse joints (the rib's tubercle
against the tip of the transverse process); L5 and the sacrum meet the ilia.  On a
3 mm grid the joints are barely darker than bone, so that the column's bone holds
the rib necks, and the watershed gives them to the vertebra.  A rib (or an iliac
wing) is told from a transverse process by where it goes: on the side of the
column, beyond the bodies and the thoracic transverse-process tips, it runs on far
from the canal, whereas a transverse process, however long (lumbar ones reach
about 50 mm from the canal centre), ends free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

if TYPE_CHECKING:
    from contourqa.anatomy.options import CTSegmentationOptions

__all__ = ["jointed_bone"]


def jointed_bone(bone: NDArray[np.bool_], dx_mm: NDArray[np.float64],
                  dy_mm: NDArray[np.float64], anterior: NDArray[np.float64],
                  o: CTSegmentationOptions) -> NDArray[np.bool_]:
    """Bone on the column's sides that continues far from the canal: ribs and ilia.

    The bone farther than ``rib_min_lateral_mm`` left or right of the canal centre
    (across the anterior direction of its slice) is split into its 3D connected
    parts; the parts that reach ``rib_reach_mm`` or more from the canal centre
    (in-plane) are returned whole.

    Parameters
    ----------
    bone : ndarray of shape (S, R, C), bool
    dx_mm, dy_mm : ndarray of shape (S, R, C), float64, mm
        In-plane LPS offset of every voxel from its slice's canal centre.
    anterior : ndarray of shape (S, 2), float64
        Unit anterior direction (LPS x, y) per slice.
    o : CTSegmentationOptions

    Returns
    -------
    ndarray of shape (S, R, C), bool
    """
    out = np.zeros(bone.shape, dtype=bool)
    r2 = dx_mm ** 2 + dy_mm ** 2
    # what lies beyond the reach does not matter: a part touching it reaches it
    near = r2 <= (o.rib_reach_mm + 1.0) ** 2
    found = ndimage.find_objects(near.astype(np.int8))
    if not found or found[0] is None:
        return out
    box = found[0]
    dx, dy, anterior_k = dx_mm[box], dy_mm[box], anterior[box[0]]
    lateral = np.abs(dx * anterior_k[:, 1, None, None] - dy * anterior_k[:, 0, None, None])
    side = bone[box] & (lateral >= o.rib_min_lateral_mm)
    parts, _ = ndimage.label(side)
    far = np.unique(parts[side & (r2[box] >= o.rib_reach_mm ** 2)])
    out[box] = np.isin(parts, far[far > 0])
    return out
