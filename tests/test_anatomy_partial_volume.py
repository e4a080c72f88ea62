"""Half-maximum edge of the CT vertebra segmentation
(:func:`contourqa.anatomy.edge.partial_volume_edge`).

A 10 x 10 voxel block of 300 HU bone in 20 HU soft tissue on 3 slices, with single
partial-volume voxels stuck to its faces.  With ``fraction`` 0.5 a bump's threshold
lies half-way between its soft-tissue neighbours (20 HU) and its one column
neighbour, the bone (300 HU): 160 HU.  Left face: bumps of 140 HU (less than half
bone: dropped); right face: 200 HU (kept); top face: 140 HU, but in the lesion (a
lytic tumour replacing the cortex: kept).  A one-voxel ring of 140 HU about a second
block lowers its own threshold (its neighbours along the ring are 140 HU): kept.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from contourqa.anatomy.edge import partial_volume_edge


def _phantom() -> tuple[NDArray[np.bool_], NDArray[np.float64], NDArray[np.bool_]]:
    hu = np.full((3, 40, 20), 20.0)
    hu[:, 5:15, 5:15] = 300.0  # bone with bumps
    bumps_j = np.arange(6, 14, 2)
    hu[:, bumps_j, 4] = 140.0  # left
    hu[:, bumps_j, 15] = 200.0  # right
    hu[:, 4, bumps_j] = 140.0  # top, in the lesion
    hu[:, 24:36, 4:16] = 140.0  # ring about a second block
    hu[:, 25:35, 5:15] = 300.0
    column = (hu > 100.0)
    lesion = np.zeros(hu.shape, dtype=bool)
    lesion[:, 3:5, :] = True
    return column, hu, lesion


def test_bumps_less_than_half_bone_are_dropped() -> None:
    column, hu, lesion = _phantom()
    drop = partial_volume_edge(column, hu >= 110.0, hu, lesion, 0.5)
    bumps_j = np.arange(6, 14, 2)
    assert drop[:, bumps_j, 4].all()  # 140 < (20 + 300) / 2
    assert np.count_nonzero(drop) == drop[:, bumps_j, 4].size  # nothing else
    assert not drop[:, 24:36, 4:16].any()  # the smooth ring stays


def test_fraction_zero_keeps_everything_above_soft_tissue() -> None:
    column, hu, _ = _phantom()
    drop = partial_volume_edge(column, hu >= 110.0, hu, None, 0.0)
    assert not drop.any()
