"""The spine around a target: vertebra masks, the spinal canal and the cord on one grid.

:class:`SpineAnatomy` is what the sector analysis consumes.  It is built either from
the structure set (vertebra ROIs; canal, thecal sac and cord ROIs) or, when no
vertebra ROI is contoured, from the CT (:mod:`contourqa.anatomy.ct`).  All masks
share one :class:`~contourqa.geometry.VolumeGeometry`, usually a crop of the CT grid
around the targets.

The canal is, in order of preference:

1. the ``SpinalCanal`` ROI (TG-263: the bony canal, epidural space included);
2. the hole enclosed by the vertebral ring on each slice where the ring is closed
   (the bony canal by definition), completed on the other slices by the thecal sac
   or, failing that, the cord ROI (narrower: the report names the source).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from contourqa.findings import Finding
from contourqa.geometry import VolumeGeometry

__all__ = ["SpineAnatomy", "Vertebra", "canal_from_ring", "slice_disk", "slice_structure"]


def slice_structure(connectivity: int = 1) -> NDArray[np.bool_]:
    """A 3x3x3 structuring element that connects voxels within a slice only."""
    s = np.zeros((3, 3, 3), dtype=bool)
    s[1] = ndimage.generate_binary_structure(2, connectivity)
    return s


def slice_disk(radius_mm: float, geometry: VolumeGeometry) -> NDArray[np.bool_]:
    """A structuring element (3, R, C) that is a disk of ``radius_mm`` on the middle
    slice of ``geometry``'s grid (its pixel spacing), empty on the others."""
    dx, dy = float(geometry.spacing_mm[0]), float(geometry.spacing_mm[1])
    ri, rj = max(int(radius_mm / dx), 0), max(int(radius_mm / dy), 0)
    j, i = np.mgrid[-rj:rj + 1, -ri:ri + 1]
    s = np.zeros((3, 2 * rj + 1, 2 * ri + 1), dtype=bool)
    s[1] = (j * dy) ** 2 + (i * dx) ** 2 <= radius_mm ** 2 + 1e-9
    return s


@dataclass(frozen=True, eq=False)
class Vertebra:
    """One vertebra on the anatomy grid.

    Attributes
    ----------
    mask : ndarray of shape (S, R, C), bool
        Its bone (cortex and marrow, lytic tumour included).
    known_level : str or None
        Level read from its ROI name.
    roi_name : str or None
        The ROI it came from (None when segmented from the CT).
    source : {"structure_set", "ct"}
    """

    mask: NDArray[np.bool_]
    known_level: str | None
    roi_name: str | None
    source: str

    @property
    def volume_voxels(self) -> int:
        return int(np.count_nonzero(self.mask))


@dataclass(frozen=True, eq=False)
class SpineAnatomy:
    """Vertebrae (inferior to superior), canal and cord on one grid.

    Attributes
    ----------
    geometry : VolumeGeometry
        Grid of every mask (axial slices).
    vertebrae : tuple of Vertebra
        Sorted by the mean patient z of their voxels, inferior first.
    canal : ndarray of shape (S, R, C), bool
        Spinal canal (may be empty: the analysis then reports ``canal_not_found``).
    canal_source : str or None
        How the canal was found (``"roi:SpinalCanal"``, ``"vertebral_ring"``,
        ``"vertebral_ring+roi:ThecalSac"``, ``"ct"`` ...).
    cord : ndarray of shape (S, R, C), bool, or None
    problems : tuple of Finding
        What could not be found, with reasons.
    """

    geometry: VolumeGeometry
    vertebrae: tuple[Vertebra, ...]
    canal: NDArray[np.bool_]
    canal_source: str | None
    cord: NDArray[np.bool_] | None = None
    problems: tuple[Finding, ...] = field(default=())

    @staticmethod
    def sort_inferior_first(vertebrae: Sequence[Vertebra],
                            geometry: VolumeGeometry) -> tuple[Vertebra, ...]:
        """Vertebrae ordered by the patient z of their centroid (inferior first);
        empty masks are dropped."""
        keyed = []
        for v in vertebrae:
            idx = np.argwhere(v.mask)
            if len(idx):
                keyed.append((float(geometry.index_to_patient(idx.mean(axis=0))[2]), v))
        keyed.sort(key=lambda t: t[0])
        return tuple(v for _, v in keyed)


def canal_from_ring(bone: NDArray[np.bool_], geometry: VolumeGeometry, *,
                    min_area_mm2: float, fallback: Sequence[tuple[str, NDArray[np.bool_] | None]] = ()
                    ) -> tuple[NDArray[np.bool_], str | None]:
    """The spinal canal as the hole enclosed by the vertebral ring, slice by slice.

    Parameters
    ----------
    bone : ndarray of shape (S, R, C), bool
        Union of the vertebrae.
    geometry : VolumeGeometry
        Grid of ``bone`` (for the pixel area).
    min_area_mm2 : float
        Smallest hole taken for a canal (smaller holes are marrow pockets, foramina).
    fallback : sequence of (name, mask or None)
        Masks (thecal sac, cord) used, in order, on slices where the ring is open.

    Returns
    -------
    canal : ndarray of shape (S, R, C), bool
    source : str or None
        ``"vertebral_ring"`` plus ``"+<name>"`` for each fallback used; None if empty.
    """
    filled = ndimage.binary_fill_holes(bone, structure=slice_structure(1))
    holes = np.asarray(filled, dtype=bool) & ~bone
    labels, n = ndimage.label(holes, structure=slice_structure(1))
    canal = np.zeros_like(bone)
    if n:
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        pixel_mm2 = float(geometry.spacing_mm[0] * geometry.spacing_mm[1])
        big = sizes * pixel_mm2 >= min_area_mm2
        big[0] = False
        # components connect in-plane only, so each lies on one slice
        comp_slice = [o[0].start if o is not None else -1 for o in ndimage.find_objects(labels)]
        best: dict[int, int] = {}
        for lab in np.nonzero(big[1:])[0] + 1:
            k = int(comp_slice[lab - 1])
            if k not in best or sizes[lab] > sizes[best[k]]:
                best[k] = int(lab)
        if best:
            canal = np.isin(labels, np.fromiter(best.values(), dtype=np.int64))
    parts = ["vertebral_ring"] if canal.any() else []
    has = canal.any(axis=(1, 2))
    for name, mask in fallback:
        if mask is None:
            continue
        use = ~has & mask.any(axis=(1, 2))
        if use.any():
            canal[use] = mask[use]
            has |= use
            parts.append(name)
    return canal, "+".join(parts) if parts else None
