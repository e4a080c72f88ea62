"""The six ISRC sectors and the anatomical frame of a vertebra (see :mod:`contourqa.sectors`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from contourqa.geometry import VolumeGeometry

__all__ = ["SECTORS", "SECTOR_NAMES", "SECTOR_SOURCE", "BoxCoordinates", "VertebraFrame",
           "box_coordinates", "frame_coordinates", "slice_centroids"]

SECTOR_NAMES: dict[int, str] = {
    1: "vertebral body",
    2: "left pedicle",
    3: "left transverse process and lamina",
    4: "spinous process",
    5: "right transverse process and lamina",
    6: "right pedicle",
}
SECTORS = (1, 2, 3, 4, 5, 6)
SECTOR_SOURCE = "ISRC six-sector model (Cox et al. 2012; knowledge base 0.1, 1a)"


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


def slice_centroids(mask: NDArray[np.bool_], geometry: VolumeGeometry
                    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """In-plane centroid of ``mask`` on every slice, gaps filled from the nearest slice.

    Parameters
    ----------
    mask : ndarray of shape (S, R, C), bool
    geometry : VolumeGeometry
        Grid of ``mask``.

    Returns
    -------
    centres : ndarray of shape (S, 2), float64
        Patient (x, y), mm; NaN everywhere when ``mask`` is empty.
    present : ndarray of shape (S,), bool
        Slices where ``mask`` has voxels.
    """
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


def frame_coordinates(points_xy: NDArray[np.float64], origins_xy: NDArray[np.float64],
                      anterior: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    """Frame coordinates of points: ``(u, v, theta)``.

    ``u`` mm anterior of the origin, ``v`` mm to the patient's left, ``theta`` =
    ``atan2(-u, v)`` in degrees (0 left, 90 posterior, -90 anterior).
    """
    left = np.array([-anterior[1], anterior[0]])
    d = points_xy - origins_xy
    u = d @ anterior
    v = d @ left
    return u, v, np.degrees(np.arctan2(-u, v))


@dataclass(frozen=True, eq=False)
class BoxCoordinates:
    """Vertebra-frame coordinates of every voxel of a box of the analysis grid.

    Attributes
    ----------
    start : tuple of int
        Grid index (slice, row, column) of the box's voxel (0, 0, 0).
    u, v : ndarray of shape (S, R, C), float64
        mm anterior of, and to the patient's left of, the slice's canal centre.
    origins_xy : ndarray of shape (S, 2)
        Canal centre (patient x, y, mm) of each slice of the box.
    anterior : ndarray of shape (2,)
        Unit anterior axis ``a`` (x, y).
    pixel_mm : float
        Smaller in-plane spacing of the grid.
    """

    start: tuple[int, int, int]
    u: NDArray[np.float64]
    v: NDArray[np.float64]
    origins_xy: NDArray[np.float64]
    anterior: NDArray[np.float64]
    pixel_mm: float

    @property
    def shape(self) -> tuple[int, int, int]:
        s = self.u.shape
        return int(s[0]), int(s[1]), int(s[2])

    @property
    def box(self) -> tuple[slice, slice, slice]:
        """The box as slices of the grid's arrays."""
        k, j, i = self.start
        s = self.shape
        return slice(k, k + s[0]), slice(j, j + s[1]), slice(i, i + s[2])

    def to_patient_xy(self, k: NDArray[np.int64], u: NDArray[np.float64],
                      v: NDArray[np.float64]) -> NDArray[np.float64]:
        """Patient (x, y) of frame points ``(u, v)`` on box slices ``k``."""
        a = self.anterior
        left = np.array([-a[1], a[0]])
        return self.origins_xy[k] + u[:, None] * a[None, :] + v[:, None] * left[None, :]


def box_coordinates(geometry: VolumeGeometry, start: tuple[int, int, int],
                    shape: tuple[int, int, int], origins_xy: NDArray[np.float64],
                    anterior: NDArray[np.float64]) -> BoxCoordinates:
    """Frame coordinates of the voxels of a box (the grid is affine: built from three
    index steps, not point by point).

    Parameters
    ----------
    geometry : VolumeGeometry
    start, shape : tuple of int
        The box, (slice, row, column).
    origins_xy : ndarray of shape (shape[0], 2)
        Canal centre of each box slice (patient x, y, mm).
    anterior : ndarray of shape (2,)
        Unit anterior axis.
    """
    k0, j0, i0 = start
    base = geometry.index_to_patient([k0, j0, i0])
    dk = geometry.index_to_patient([k0 + 1, j0, i0]) - base
    dj = geometry.index_to_patient([k0, j0 + 1, i0]) - base
    di = geometry.index_to_patient([k0, j0, i0 + 1]) - base
    ks = np.arange(shape[0])[:, None, None]
    js = np.arange(shape[1])[None, :, None]
    is_ = np.arange(shape[2])[None, None, :]
    a = np.asarray(anterior, dtype=float)
    left = np.array([-a[1], a[0]])
    dx = base[0] + ks * dk[0] + js * dj[0] + is_ * di[0] - origins_xy[:, 0][:, None, None]
    dy = base[1] + ks * dk[1] + js * dj[1] + is_ * di[1] - origins_xy[:, 1][:, None, None]
    u = dx * a[0] + dy * a[1]
    v = dx * left[0] + dy * left[1]
    px = float(min(geometry.spacing_mm[0], geometry.spacing_mm[1]))
    return BoxCoordinates(start=start, u=u, v=v, origins_xy=np.asarray(origins_xy, float),
                          anterior=a, pixel_mm=px)
