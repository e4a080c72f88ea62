"""The one geometry object of contourqa: a regular 3D grid in patient space.

Arrays are indexed ``(slice, row, column)`` = ``(k, j, i)``.  Patient coordinates are
DICOM LPS in mm (x to the patient's left, y posterior, z superior).  The affine maps
the homogeneous index vector ``(i, j, k, 1)`` (column, row, slice: DICOM order) to
``(x, y, z, 1)``.  Nothing else in contourqa converts between index and patient space;
readers build a :class:`VolumeGeometry` and every other module asks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from contourqa.errors import GeometryError
from contourqa.limits import input_limits

__all__ = ["VolumeGeometry"]

_ORTHO_TOL = 1e-4


@dataclass(frozen=True, eq=False)
class VolumeGeometry:
    """A regular grid in patient space.

    Parameters
    ----------
    shape : tuple of int
        ``(n_slices, n_rows, n_columns)``.
    origin_mm : ndarray of shape (3,)
        Patient position (LPS, mm) of the centre of voxel ``(0, 0, 0)``.
    spacing_mm : ndarray of shape (3,)
        Distance between voxel centres along ``(column, row, slice)``: DICOM order,
        i.e. ``(PixelSpacing[1], PixelSpacing[0], slice spacing)``.
    direction : ndarray of shape (3, 3)
        Unit column vectors: ``direction[:, 0]`` is the direction of increasing
        column index, ``[:, 1]`` of increasing row, ``[:, 2]`` of increasing slice.
    """

    shape: tuple[int, int, int]
    origin_mm: NDArray[np.float64]
    spacing_mm: NDArray[np.float64]
    direction: NDArray[np.float64] = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        origin = np.asarray(self.origin_mm, dtype=np.float64).reshape(3)
        spacing = np.asarray(self.spacing_mm, dtype=np.float64).reshape(3)
        direction = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        if len(self.shape) != 3 or any(int(n) < 1 for n in self.shape):
            raise GeometryError(f'Argument "shape" must be 3 positive sizes, got {self.shape}.')
        if np.any(spacing <= 0) or not np.all(np.isfinite(spacing)):
            raise GeometryError(f'Argument "spacing_mm" must be positive, got {spacing}.')
        limits = input_limits()
        if np.any(spacing < limits.min_spacing_mm) or np.any(spacing > limits.max_spacing_mm):
            raise GeometryError(
                f'Argument "spacing_mm" {spacing.tolist()} is outside '
                f'[{limits.where("min_spacing_mm")}, {limits.where("max_spacing_mm")}].')
        if not np.all(np.abs(origin) <= limits.max_coordinate_mm):
            raise GeometryError(
                f'Argument "origin_mm" {origin.tolist()} is not finite or beyond '
                f'{limits.where("max_coordinate_mm")} mm.')
        if not np.all(np.isfinite(direction)):
            raise GeometryError('Argument "direction" must be finite.')
        if not np.allclose(direction.T @ direction, np.eye(3), atol=_ORTHO_TOL):
            raise GeometryError(
                "The grid's direction cosines are not orthonormal: slices are tilted "
                "against the image rows and columns (gantry tilt or sheared grid)."
            )
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))
        object.__setattr__(self, "origin_mm", origin)
        object.__setattr__(self, "spacing_mm", spacing)
        object.__setattr__(self, "direction", direction)
        for arr in (origin, spacing, direction):
            arr.flags.writeable = False

    # -- construction -------------------------------------------------------------
    @classmethod
    def from_dicom(
        cls,
        *,
        image_position: Sequence[float],
        image_orientation: Sequence[float],
        pixel_spacing: Sequence[float],
        slice_spacing_mm: float,
        shape: tuple[int, int, int],
    ) -> "VolumeGeometry":
        """Build from DICOM attributes of the first slice.

        ``pixel_spacing`` is DICOM PixelSpacing (row spacing, column spacing).
        The slice direction is the cross product row x column of
        ImageOrientationPatient; ``slice_spacing_mm`` may be negative when the slices
        run against that normal.
        """
        if len(image_orientation) != 6:
            raise GeometryError('Argument "image_orientation" must have length 6.')
        if len(pixel_spacing) != 2:
            raise GeometryError('Argument "pixel_spacing" must have length 2.')
        row_dir = np.asarray(image_orientation[:3], dtype=np.float64)
        col_dir = np.asarray(image_orientation[3:], dtype=np.float64)
        row_dir /= np.linalg.norm(row_dir)
        col_dir /= np.linalg.norm(col_dir)
        normal = np.cross(row_dir, col_dir)
        sign = 1.0 if slice_spacing_mm >= 0 else -1.0
        direction = np.column_stack([row_dir, col_dir, sign * normal])
        spacing = (float(pixel_spacing[1]), float(pixel_spacing[0]), abs(float(slice_spacing_mm)))
        return cls(shape=shape, origin_mm=np.asarray(image_position, float),
                   spacing_mm=np.asarray(spacing), direction=direction)

    # -- derived ------------------------------------------------------------------
    @property
    def affine(self) -> NDArray[np.float64]:
        """4x4 matrix from ``(i, j, k, 1)`` (column, row, slice) to LPS mm."""
        a = np.eye(4)
        a[:3, :3] = self.direction * self.spacing_mm[np.newaxis, :]
        a[:3, 3] = self.origin_mm
        return a

    @property
    def voxel_volume_cc(self) -> float:
        return float(np.prod(self.spacing_mm)) / 1000.0

    @property
    def slice_normal(self) -> NDArray[np.float64]:
        return self.direction[:, 2]

    @property
    def is_axis_aligned(self) -> bool:
        """True when every grid axis is along a patient axis (any sign or order)."""
        return bool(np.allclose(np.abs(self.direction).max(axis=0), 1.0, atol=_ORTHO_TOL))

    def index_to_patient(self, index_kji: ArrayLike) -> NDArray[np.float64]:
        """Convert ``(..., 3)`` indices in array order ``(k, j, i)`` to LPS mm."""
        kji = np.asarray(index_kji, dtype=np.float64)
        return _times_rows(kji[..., ::-1], (self.direction * self.spacing_mm).T) + self.origin_mm

    def patient_to_index(self, points_mm: ArrayLike) -> NDArray[np.float64]:
        """Convert ``(..., 3)`` LPS points to fractional indices ``(k, j, i)``."""
        p = np.asarray(points_mm, dtype=np.float64) - self.origin_mm
        ijk = _times_rows(p, self.direction) / self.spacing_mm
        return ijk[..., ::-1]

    def axis_coordinates(self, axis: int) -> NDArray[np.float64]:
        """Positions (mm) of voxel centres along one array axis, measured along that
        axis's direction from the origin's projection.  Only meaningful for
        axis-aligned grids: for axis 0 (slices) this is the patient coordinate along
        the slice normal."""
        n = self.shape[axis]
        dicom_axis = 2 - axis
        start = float(self.origin_mm @ self.direction[:, dicom_axis])
        return start + np.arange(n) * self.spacing_mm[dicom_axis]

    def contains(self, points_mm: ArrayLike, *, tol_voxels: float = 0.0) -> NDArray[np.bool_]:
        """Whether points fall within the grid's voxel-centre hull (+/- tolerance)."""
        idx = self.patient_to_index(points_mm)
        upper = np.asarray(self.shape, dtype=np.float64) - 1
        return np.all((idx >= -tol_voxels) & (idx <= upper + tol_voxels), axis=-1)

    def same_grid(self, other: "VolumeGeometry", *, tol_mm: float = 1e-3) -> bool:
        return (
            self.shape == other.shape
            and np.allclose(self.origin_mm, other.origin_mm, atol=tol_mm)
            and np.allclose(self.spacing_mm, other.spacing_mm, atol=tol_mm)
            and np.allclose(self.direction, other.direction, atol=_ORTHO_TOL)
        )

    def to_sitk_parameters(self) -> dict[str, tuple[float, ...]]:
        """Origin, spacing (x, y, z order) and flattened direction for SimpleITK.

        SimpleITK indexes images (i, j, k) while numpy arrays from
        ``GetArrayFromImage`` are (k, j, i); this is the one place that converts.
        """
        return {
            "origin": tuple(self.origin_mm),
            "spacing": tuple(self.spacing_mm),
            "direction": tuple(self.direction.flatten()),
        }

    def __repr__(self) -> str:
        return (f"VolumeGeometry(shape={self.shape}, origin_mm={self.origin_mm.round(3).tolist()}, "
                f"spacing_mm={self.spacing_mm.round(4).tolist()})")


def _times_rows(v: NDArray[np.float64], m: NDArray[np.float64]) -> NDArray[np.float64]:
    """``v @ m`` for ``(..., 3)`` vectors and a 3 x 3 matrix by ``einsum``'s own loops:
    numpy hands a large ``@`` to the BLAS library, whose idle threads then spin on
    every core and slow the processes that share the work of a DVH run."""
    return np.einsum("...j,jk->...k", v, m)
