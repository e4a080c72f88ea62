"""Contrast-filled vessels against the bodies, cut from the column of :mod:`contourqa.anatomy.ct`.

On a contrast-enhanced CT the lumen of the aorta or the inferior vena cava is
120-250 HU, above the bone threshold, and where it lies against a vertebral body
(often through a calcified wall, 600-1200 HU) it joins the column: the watershed
gives it to the vertebra.  The lumen is told from the body's marrow, which has
the same HU, by three things (:func:`vessel_lumen`):

* **texture**: blood is homogeneous (local standard deviation about 13 HU on a
  1 mm grid), cancellous bone is not (about 30 HU, trabeculae); the lumen's core
  is the voxels of homogeneous mid HU (by the local mean, so that voxels of noise
  do not hole it) that hold a disk of ``vessel_min_radius_mm`` (an in-plane
  opening), grown back by ``vessel_grow_mm`` through voxels of mid HU to the
  lumen's edge;
* **enclosure**: marrow lies inside the body's cortical outline, so that where a
  marrow region ends it meets cortex, darker marrow or the canal, all within the
  bone outline with its holes filled (on the axial planes, and on the sagittal and
  coronal planes for marrow behind a cortex open on one slice); where a lumen
  ends it mostly meets the fat or soft tissue about the vessel, outside that
  outline.  A region whose border lies outside the outline for less than
  ``vessel_min_exterior`` of its voxels is kept (the lesion, a lytic tumour that
  opened the cortex, counts as inside);
* **position**: a lumen lies in front of or beside the body, away from the canal;
  a region that comes within ``vessel_min_canal_mm`` of the canal centre is bone
  of the ring about the canal (a body without a distinct cortex, as on a coarse
  grid or a synthetic phantom, is one region with its pedicles) and is kept.

The core regions are labelled in 3D, so that the decisions gather the border of
the whole vessel segment in the crop (the aorta is a tube across the slices).
The wall (a calcified crescent against the body, the lumen's partial-volume rim)
is the thin shell of the column within ``vessel_wall_mm`` of the lumen: it goes
with the lumen, whereas the body, thick, stays to its surface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from contourqa.anatomy.marrow import plane_fill
from contourqa.anatomy.spine import slice_disk, slice_structure
from contourqa.geometry import VolumeGeometry

if TYPE_CHECKING:
    from contourqa.anatomy.options import CTSegmentationOptions

__all__ = ["vessel_lumen"]


def _local_stats(hu: NDArray[np.float64], sigma_mm: float, geometry: VolumeGeometry
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """In-plane local mean and standard deviation (HU) under a Gaussian window of
    ``sigma_mm`` (at least one pixel wide, so that a coarse grid still measures a
    neighbourhood)."""
    sig = (0.0, max(sigma_mm / float(geometry.spacing_mm[1]), 1.0),
           max(sigma_mm / float(geometry.spacing_mm[0]), 1.0))
    mean = ndimage.gaussian_filter(hu, sig)
    mean_sq = ndimage.gaussian_filter(hu * hu, sig)
    return mean, np.asarray(np.sqrt(np.maximum(mean_sq - mean * mean, 0.0)), dtype=np.float64)


def _grow_labels(labels: NDArray[np.int32], within: NDArray[np.bool_], steps: int
                 ) -> NDArray[np.int32]:
    """``labels`` grown in-plane (4-connected) by ``steps`` pixels through ``within``;
    where two labels meet, the larger one wins."""
    cross = slice_structure(1)
    out = labels.copy()
    for _ in range(steps):
        grown = ndimage.grey_dilation(out, footprint=cross)
        new = (out == 0) & within & (grown > 0)
        if not new.any():
            break
        out[new] = grown[new]
    return out


def vessel_lumen(hu: NDArray[np.float64], bone: NDArray[np.bool_], column: NDArray[np.bool_],
                  lesion: NDArray[np.bool_] | None, canal_distance_mm: NDArray[np.float64],
                  geometry: VolumeGeometry, o: CTSegmentationOptions) -> NDArray[np.bool_]:
    """Lumina of contrast-filled vessels: homogeneous mid-HU regions outside the bone
    outline, away from the canal.

    Parameters
    ----------
    hu : ndarray of shape (S, R, C), float64, HU
    bone : ndarray of shape (S, R, C), bool
        The bone mask of the segmentation (HU >= ``bone_min_hu``, closed).
    column : ndarray of shape (S, R, C), bool
        The column (bone about the canal, holes filled): the vessel's wall is cut
        from it where it is thin.
    lesion : ndarray of shape (S, R, C), bool, or None
        The GTV: counts as inside the bone outline.
    canal_distance_mm : ndarray of shape (S, R, C), float64, mm
        In-plane distance of every voxel from its slice's canal centre.
    geometry : VolumeGeometry
    o : CTSegmentationOptions
        ``bone_min_hu``, ``vessel_max_hu``, ``vessel_max_sd_hu``, ``vessel_sd_mm``,
        ``vessel_min_radius_mm``, ``vessel_grow_mm``, ``vessel_min_exterior``,
        ``vessel_min_canal_mm``, ``vessel_wall_mm`` and ``column_radius_mm``.

    Returns
    -------
    ndarray of shape (S, R, C), bool
        The lumen voxels with the wall's voxels of the column (none when
        ``vessel_min_radius_mm`` is 0).
    """
    out = np.zeros(hu.shape, dtype=bool)
    if o.vessel_min_radius_mm <= 0:
        return out
    found = ndimage.find_objects(column.astype(np.int8))
    if not found or found[0] is None:
        return out
    # only a vessel touching the column matters: the column's box, widened in-plane
    # by ``column_radius_mm`` (more than a vessel's width)
    pad = (0, int(np.ceil(o.column_radius_mm / float(geometry.spacing_mm[1]))),
           int(np.ceil(o.column_radius_mm / float(geometry.spacing_mm[0]))))
    box = tuple(slice(max(sl.start - p, 0), sl.stop + p) for sl, p in zip(found[0], pad))
    out[box] = _lumen_in_box(hu[box], bone[box], column[box],
                             None if lesion is None else lesion[box],
                             canal_distance_mm[box], geometry, o)
    return out


def _lumen_in_box(hu: NDArray[np.float64], bone: NDArray[np.bool_], column: NDArray[np.bool_],
                  lesion: NDArray[np.bool_] | None, canal_distance_mm: NDArray[np.float64],
                  geometry: VolumeGeometry, o: CTSegmentationOptions) -> NDArray[np.bool_]:
    """:func:`vessel_lumen` on a box of the grid (the same arguments, cropped)."""
    out = np.zeros(hu.shape, dtype=bool)
    mid = (hu >= o.bone_min_hu) & (hu < o.vessel_max_hu)
    # the core by the local mean: single voxels of noise below the bone threshold
    # do not hole it
    mean, sd = _local_stats(hu, o.vessel_sd_mm, geometry)
    smooth = (mean >= o.bone_min_hu) & (mean < o.vessel_max_hu) & (sd <= o.vessel_max_sd_hu)
    if lesion is not None:
        mid &= ~lesion
        smooth &= ~lesion
    core = np.asarray(ndimage.binary_opening(
        smooth, structure=slice_disk(o.vessel_min_radius_mm, geometry)), dtype=bool)
    labels, n = ndimage.label(core)
    if n == 0:
        return out
    steps = round(o.vessel_grow_mm / float(min(geometry.spacing_mm[:2])))
    labels = _grow_labels(labels.astype(np.int32), mid, steps)
    region = labels > 0
    cross = slice_structure(1)
    # the border: one pixel (in-plane) outside each region, taken by its label, where
    # the region ends (not where the growth stopped inside the same HU range, nor a
    # voxel of noise enclosed by the region)
    border = _grow_labels(labels, ~mid, 1)
    border[np.asarray(ndimage.binary_fill_holes(region, structure=cross), dtype=bool)] = 0
    # marrow behind a cortex open on the axial slice is enclosed on the grid's
    # sagittal and coronal planes (by the slices above and below)
    outline = np.asarray(ndimage.binary_fill_holes(bone, structure=cross), dtype=bool) \
        | plane_fill(bone)
    if lesion is not None:
        outline |= lesion
    idx = border.ravel()
    n_border = np.bincount(idx, minlength=n + 1)[1:]
    n_out = np.bincount(idx, (~outline).ravel(), minlength=n + 1)[1:]
    near = ndimage.minimum(canal_distance_mm, labels, index=np.arange(1, n + 1))
    exterior = n_out / np.maximum(n_border, 1)
    vessel = (exterior >= o.vessel_min_exterior) & (np.asarray(near) >= o.vessel_min_canal_mm)
    lumen = np.asarray(np.isin(labels, np.nonzero(vessel)[0] + 1), dtype=bool)
    # specks the core missed inside the lumen (a bright voxel of noise) are lumen too
    lumen = np.asarray(ndimage.binary_fill_holes(lumen, structure=cross), dtype=bool)
    if o.vessel_wall_mm > 0 and lumen.any():
        # the wall (calcified or not, with the lumen's partial-volume rim) is a shell
        # about the lumen thinner than a disk of its thickness: column voxels within
        # that distance of the lumen are wall unless such a disk fits into the
        # column there (a body against the vessel)
        disk = slice_disk(o.vessel_wall_mm, geometry)
        shell = np.asarray(ndimage.binary_dilation(lumen, structure=disk), dtype=bool) & column
        rest = column & ~lumen
        thick = np.asarray(ndimage.binary_opening(rest, structure=disk), dtype=bool)
        lumen |= shell & ~thick
    return lumen
