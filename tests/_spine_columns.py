"""Helpers for the tests of CT vertebra segmentation on synthetic spine columns."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from contourqa.anatomy import CTSegmentation


def vertebra_in_band(seg: CTSegmentation, z: NDArray[np.float64], lo: float, hi: float
                     ) -> NDArray[np.bool_]:
    """The mask of the segmented vertebra holding most voxels with ``lo < z < hi``."""
    band = (z > lo) & (z < hi)
    return max(seg.vertebrae, key=lambda v: np.count_nonzero(v.mask & band)).mask
