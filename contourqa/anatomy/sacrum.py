"""The sacral alae, cut from the sacral vertebrae of :mod:`contourqa.anatomy.ct`.

A sacral vertebra (S1, and the fused S2-S5 below it) is its body and the ring of
bone about the canal; its lateral masses (the alae) belong to the sacrum as a
whole and articulate with the ilia at the sacroiliac joints.  The CT segmentation
floods all the column's bone from the bodies, so that the sacral segments hold the
alae and, through the joints (a thin dark line that a 3 mm grid blurs), pieces of
the ilia.  :func:`alae` drops the bone of the sacral segments that lies farther
left or right of the canal centre than the bodies of the spine are wide.

The sacral segments are recognised from the discs alone: the caudal end of the
column is the fused sacrum when it runs longer than ``end_height_ratio`` times the
typical vertebra without a disc, and the segment just above it (between the L5/S1
and the S1/S2 discs) is S1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from contourqa.anatomy.options import CTSegmentationOptions

__all__ = ["alae", "sacral_segments"]


def sacral_segments(seg_len: NDArray[np.float64], up: float, o: CTSegmentationOptions
                     ) -> NDArray[np.int64]:
    """Indices (arc order) of the sacral inter-disc segments: the caudal end when it
    is longer than ``end_height_ratio`` times the median whole segment, and its
    cranial neighbour; empty otherwise.

    Parameters
    ----------
    seg_len : ndarray of shape (D + 1,), float64, mm
        Length of the segments along the centreline's arc (both ends partial).
    up : float
        +1 when the arc runs cranially (patient +z), -1 when caudally.
    o : CTSegmentationOptions
    """
    if len(seg_len) < 3:
        # no whole segment: nothing to compare the end with
        return np.zeros(0, dtype=np.int64)
    typical = float(np.median(seg_len[1:-1]))
    caudal = 0 if up > 0 else len(seg_len) - 1
    if not seg_len[caudal] > o.end_height_ratio * typical:
        return np.zeros(0, dtype=np.int64)
    return np.array([caudal, caudal + (1 if up > 0 else -1)], dtype=np.int64)


def alae(label: NDArray[np.int64], lateral_mm: NDArray[np.float64], body: NDArray[np.bool_],
          sacral: NDArray[np.int64], o: CTSegmentationOptions) -> NDArray[np.bool_]:
    """Voxels of the sacral vertebrae lateral of their body and canal ring.

    The limit is ``sacral_width_ratio`` times the median, over the other vertebrae,
    of the 90th percentile of the distance (left-right) of their body bone from the
    canal centre: the alae of a sacral vertebra lie level with and in front of the
    canal, where the body bone of a lumbar vertebra is no wider than its body.  On the
    TotalSegmentator example CT the lumbar bodies reach 20-27 mm to the side and S1
    with its pedicles 27 mm (95th percentile), its alae 55 mm; ratios of 1.2 to 1.5
    give the same S1.

    Parameters
    ----------
    label : ndarray of shape (N,), int64
        Inter-disc segment of each column voxel's vertebra plus one (0: none).
    lateral_mm : ndarray of shape (N,), float64, mm
        Left-right offset of each voxel from its slice's canal centre, across the
        anterior direction.
    body : ndarray of shape (N,), bool
        Voxels anterior of the canal's anterior wall (body bone).
    sacral : ndarray of shape (M,), int64
        The sacral segments (:func:`sacral_segments`).
    o : CTSegmentationOptions

    Returns
    -------
    ndarray of shape (N,), bool
        Empty (all False) without sacral segments, without another vertebra to
        measure, or when ``sacral_width_ratio`` is 0.
    """
    drop = np.zeros(len(label), dtype=bool)
    if len(sacral) == 0 or o.sacral_width_ratio <= 0:
        return drop
    in_sacrum = np.isin(label, sacral + 1)
    width = np.abs(lateral_mm)
    others = body & ~in_sacrum & (label > 0)
    labels, counts = np.unique(label[others], return_counts=True)
    # vertebrae cut by the crop to a sliver of body do not measure the width
    labels = labels[counts >= 0.25 * counts.max()] if len(counts) else labels
    if len(labels) == 0:
        return drop
    half = [float(np.percentile(width[others & (label == lab)], 90)) for lab in labels]
    limit = o.sacral_width_ratio * float(np.median(half))
    return np.asarray(in_sacrum & (width > limit), dtype=bool)
