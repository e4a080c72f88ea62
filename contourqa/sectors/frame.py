"""The six ISRC sectors and the anatomical frame of a vertebra (see :mod:`contourqa.sectors`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from contourqa.geometry import VolumeGeometry

SECTOR_NAMES: dict[int, str] = {
    1: "vertebral body",
    2: "left pedicle",
    3: "left transverse process and lamina",
    4: "spinous process",
    5: "right transverse process and lamina",
    6: "right pedicle",
}
_SECTORS = (1, 2, 3, 4, 5, 6)
_SOURCE = "ISRC six-sector model (Cox et al. 2012; knowledge base 0.1, 1a)"


@dataclass(frozen=True)
class VertebraFrame:
    """The anatomical frame of one vertebra (see :mod:`contourqa.sectors`).

    Attributes
    ----------
    canal_centre_mm : tuple of float
        Mean canal centre over the vertebra's slices, LPS mm (x, y, z).
    anterior : tuple of float
        Unit vector ``a`` (x, y, 0).
    left : tuple of float
        Unit vector ``l`` (x, y, 0), the patient's left.
    """

    canal_centre_mm: tuple[float, float, float]
    anterior: tuple[float, float, float]
    left: tuple[float, float, float]

    @property
    def rotation_deg(self) -> float:
        """Axial rotation: angle from patient anterior (-y) to ``a``, counter-clockwise
        seen from above (towards the patient's left positive)."""
        ax, ay = self.anterior[0], self.anterior[1]
        return math.degrees(math.atan2(ax, -ay))

    def to_json(self) -> dict[str, Any]:
        return {"canal_centre_mm": [round(v, 2) for v in self.canal_centre_mm],
                "anterior": [round(v, 4) for v in self.anterior],
                "left": [round(v, 4) for v in self.left],
                "rotation_deg": round(self.rotation_deg, 1)}


def _slice_centroids(mask: NDArray[np.bool_], geometry: VolumeGeometry
                     ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """In-plane centroid (x, y, mm) of ``mask`` on every slice, gaps filled from the
    nearest slice that has one.  Returns ``(centres (S, 2), present (S,))``."""
    n = mask.shape[0]
    idx = np.argwhere(mask)
    centres = np.full((n, 2), np.nan)
    present = np.zeros(n, dtype=bool)
    if len(idx) == 0:
        return centres, present
    xy = geometry.index_to_patient(idx)[:, :2]
    counts = np.bincount(idx[:, 0], minlength=n)
    present = counts > 0
    for d in range(2):
        centres[present, d] = np.bincount(idx[:, 0], xy[:, d], minlength=n)[present] \
            / counts[present]
    have = np.nonzero(present)[0]
    nearest = have[np.abs(np.arange(n)[:, None] - have[None, :]).argmin(axis=1)]
    centres = centres[nearest]
    return centres, present


def _frame_coordinates(points_xy: NDArray[np.float64], origins_xy: NDArray[np.float64],
                       anterior: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    left = np.array([-anterior[1], anterior[0]])
    d = points_xy - origins_xy
    u = d @ anterior
    v = d @ left
    return u, v, np.degrees(np.arctan2(-u, v))
