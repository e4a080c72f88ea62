"""The anatomical partition of one vertebra, as a visible pipeline of steps.

:func:`partition_vertebra` runs, for one vertebra's bone (see :mod:`contourqa.sectors`
for the geometry):

1. :func:`vertebra_box` - the region around the vertebra that every step works on;
2. :func:`vertebra_axis` - the frame: canal centre per slice, anterior axis;
3. :func:`contourqa.sectors.envelope.mirrored` and
   :func:`contourqa.sectors.canal.bony_canal` - the bony canal from the vertebra's
   own ring (closed across gaps with its mirror image and angular interpolation);
   the frame is re-centred on it;
4. :func:`contourqa.sectors.landmarks.find_landmarks` - body wall, pedicle end and
   outer surface, spinous width;
5. :func:`contourqa.sectors.envelope.restore_envelope` - the lesion voxels where
   bone was (lytic);
6. :func:`contourqa.sectors.landmarks.label_parts` - a part for every voxel of the
   bone and the restored outline, and its ISRC sector; a restored voxel whose mirror
   image is the vertebra's own bone takes that bone's part (sides swapped).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from contourqa.geometry import VolumeGeometry
from contourqa.sectors.canal import bony_canal
from contourqa.sectors.envelope import mirrored, mirrored_values, restore_envelope
from contourqa.sectors.frame import (
    BoxCoordinates,
    VertebraFrame,
    box_coordinates,
    frame_coordinates,
    slice_centroids,
)
from contourqa.sectors.landmarks import VertebraLandmarks, find_landmarks, label_parts
from contourqa.sectors.options import DEFAULT_OPTIONS, SectorOptions
from contourqa.sectors.parts import parts_to_sectors

__all__ = ["VertebraPartition", "partition_vertebra", "symmetry_axis", "vertebra_axis",
           "vertebra_box"]

#: part code -> the code of the same part on the other side (PART_NAMES)
_MIRROR_PART = np.array([0, 1, 8, 6, 7, 5, 3, 4, 2], dtype=np.int8)


@dataclass(frozen=True, eq=False)
class VertebraPartition:
    """Result of :func:`partition_vertebra` (arrays on the full analysis grid).

    Attributes
    ----------
    sectors : ndarray of shape (S, R, C), int8
        ISRC sector 1-6 of the vertebra's bone and restored outline, 0 elsewhere.
    parts : ndarray of shape (S, R, C), int8
        Part code 1-8 (:data:`contourqa.sectors.parts.PART_NAMES`), 0 elsewhere.
    restored : ndarray of shape (S, R, C), bool
        Lesion voxels assigned to the vertebra where its bone was (not in its mask).
    canal : ndarray of shape (S, R, C), bool
        Its bony canal (on its slices with a ring).
    frame : VertebraFrame
    landmarks : VertebraLandmarks
    coords : BoxCoordinates
        Frame coordinates of the box the steps worked on.
    """

    sectors: NDArray[np.int8]
    parts: NDArray[np.int8]
    restored: NDArray[np.bool_]
    canal: NDArray[np.bool_]
    frame: VertebraFrame
    landmarks: VertebraLandmarks
    coords: BoxCoordinates

    def bone_on_box(self) -> NDArray[np.bool_]:
        """The labelled voxels (bone and restored outline) on the box."""
        return self.parts[self.coords.box] > 0


def vertebra_box(mask: NDArray[np.bool_], geometry: VolumeGeometry, *, margin_mm: float,
                 pad_slices: int = 3) -> tuple[tuple[int, int, int], tuple[int, int, int]] | None:
    """Box (start, shape) around ``mask``: ``margin_mm`` in-plane, ``pad_slices`` along z."""
    idx = np.argwhere(mask)
    if len(idx) == 0:
        return None
    lo = idx.min(axis=0)
    hi = idx.max(axis=0) + 1
    m = np.array([pad_slices, int(np.ceil(margin_mm / geometry.spacing_mm[1])),
                  int(np.ceil(margin_mm / geometry.spacing_mm[0]))])
    lo = np.maximum(lo - m, 0)
    hi = np.minimum(hi + m, np.asarray(geometry.shape))
    return (int(lo[0]), int(lo[1]), int(lo[2])), tuple(int(x) for x in hi - lo)  # type: ignore[return-value]


def vertebra_axis(bone_xy: NDArray[np.float64], bone_k: NDArray[np.int64],
                  canal_xy: NDArray[np.float64], canal_k: NDArray[np.int64],
                  origins_xy: NDArray[np.float64], half_pixel_mm: float,
                  iterations: int = 3) -> NDArray[np.float64] | None:
    """Unit anterior axis: from the canal towards the vertebral body.

    First the centroid of the whole vertebra about the canal centres, then that of
    the bone in front of the canal's anterior extent (the body), ``iterations``
    times.  Points are patient (x, y) with their box slice index.
    """
    a = (bone_xy - origins_xy[bone_k]).mean(axis=0)
    if not np.linalg.norm(a) > 0:
        return None
    a = a / np.linalg.norm(a)
    n = len(origins_xy)
    for _ in range(iterations):
        u, _, _ = frame_coordinates(bone_xy, origins_xy[bone_k], a)
        cu, _, _ = frame_coordinates(canal_xy, origins_xy[canal_k], a)
        wall = np.full(n, -np.inf)
        np.maximum.at(wall, canal_k, cu)
        body = u >= wall[bone_k] + half_pixel_mm
        if not body.any():
            break
        a_new = (bone_xy[body] - origins_xy[bone_k][body]).mean(axis=0)
        if not np.linalg.norm(a_new) > 0:
            break
        a = a_new / np.linalg.norm(a_new)
    return a


def symmetry_axis(bone: NDArray[np.bool_], sub: VolumeGeometry, origins_xy: NDArray[np.float64],
                  a: NDArray[np.float64], *, span_deg: float, step_deg: float,
                  lesion: NDArray[np.bool_] | None = None, max_points: int = 20000
                  ) -> NDArray[np.float64]:
    """The anterior axis within ``span_deg`` of ``a`` about which ``bone`` best covers its
    own mirror image.

    Each slice's bone is reflected about the line through its canal centre along the
    candidate axis; the axis whose reflection lands on the most bone (or lesion: the
    place of bone a lytic lesion replaced) wins (a step of ``step_deg``, then a tenth
    of it about the best).  A vertebra is bilaterally symmetric: a lesion, a lost lytic
    half or slices that cut the two sides of a rotated, tilted vertebra at different
    heights move the bone's centroid, but not its plane of symmetry.

    Parameters
    ----------
    bone : ndarray of shape sub.shape, bool
    sub : VolumeGeometry
        The grid of ``bone``.
    origins_xy : ndarray of shape (S, 2), float64
        Canal centre of each slice (patient x, y; mm).
    a : ndarray of shape (2,), float64
        First axis (unit, patient x, y).
    span_deg, step_deg : float
    lesion : ndarray of shape sub.shape, bool, optional
        The GTV: bone mirrored onto it counts as covered.
    max_points : int
        Bone voxels evaluated (evenly subsampled beyond this).

    Returns
    -------
    ndarray of shape (2,), float64
        Unit axis; ``a`` when ``span_deg`` is 0 or the bone is empty.
    """
    idx = np.argwhere(bone)
    if span_deg <= 0 or len(idx) == 0:
        return a
    if len(idx) > max_points:
        idx = idx[np.linspace(0, len(idx) - 1, max_points).astype(np.int64)]
    pts = sub.index_to_patient(idx)
    org = origins_xy[idx[:, 0]]
    rel = pts[:, :2] - org
    shape = np.asarray(bone.shape)
    target = bone if lesion is None else bone | lesion

    def turned(delta_deg: float) -> NDArray[np.float64]:
        t = np.radians(delta_deg)
        return np.array([np.cos(t) * a[0] - np.sin(t) * a[1], np.sin(t) * a[0] + np.cos(t) * a[1]])

    def cover(delta_deg: float) -> int:
        ad = turned(delta_deg)
        left = np.array([-ad[1], ad[0]])
        u, v = rel @ ad, rel @ left
        xy = org + u[:, None] * ad[None, :] - v[:, None] * left[None, :]
        ij = np.rint(sub.patient_to_index(np.column_stack([xy, pts[:, 2]]))).astype(np.int64)
        ij[:, 0] = idx[:, 0]
        ok = np.all((ij >= 0) & (ij < shape), axis=1)
        return int(np.count_nonzero(target[tuple(ij[ok].T)]))

    coarse = np.arange(-span_deg, span_deg + 0.5 * step_deg, step_deg)
    best = float(coarse[int(np.argmax([cover(d) for d in coarse]))])
    fine = best + np.arange(-step_deg, step_deg + 0.05 * step_deg, 0.1 * step_deg)
    scores = np.array([cover(d) for d in fine])
    # the middle of the best plateau (a coarse grid gives ties across a pixel)
    top = np.nonzero(scores == scores.max())[0]
    out = turned(float(fine[top].mean()))
    return np.asarray(out / np.linalg.norm(out), dtype=np.float64)


def partition_vertebra(mask: NDArray[np.bool_], canal: NDArray[np.bool_],
                       geometry: VolumeGeometry, *, options: SectorOptions = DEFAULT_OPTIONS,
                       lesion: NDArray[np.bool_] | None = None,
                       templates: Sequence[NDArray[np.bool_]] = ()) -> VertebraPartition | None:
    """Label every voxel of one vertebra (and the lesion where its bone was) by part.

    Parameters
    ----------
    mask : ndarray of shape (S, R, C), bool
        The vertebra's bone.
    canal : ndarray of shape (S, R, C), bool
        Canal seed (canal, thecal sac or cord ROI, or the CT's canal): it places the
        first canal centre; the canal itself comes from the vertebra's ring.
    geometry : VolumeGeometry
        Grid of both masks (axial slices).
    options : SectorOptions
    lesion : ndarray of shape (S, R, C), bool, optional
        The GTV: where it lies inside the vertebra's restored outline it is labelled.
    templates : sequence of ndarray of shape (S, R, C), bool
        Adjacent vertebrae mapped onto this one's grid (for the restored outline).

    Returns
    -------
    VertebraPartition or None
        None when the canal seed is absent from every slice near the vertebra.
    """
    po = options.partition
    found = vertebra_box(mask, geometry, margin_mm=po.bony_canal_max_radius_mm + 5.0)
    if found is None:
        return None
    start, shape = found
    k0, j0, i0 = start
    box = (slice(k0, k0 + shape[0]), slice(j0, j0 + shape[1]), slice(i0, i0 + shape[2]))
    bone = mask[box]
    seed = canal[box] & ~bone
    if not seed.any():
        return None
    sub = _sub_geometry(geometry, start, shape)
    origins, _ = slice_centroids(seed, sub)
    px = float(min(geometry.spacing_mm[0], geometry.spacing_mm[1]))
    bidx = np.argwhere(bone)
    cidx = np.argwhere(seed)
    cxy = sub.index_to_patient(cidx)[:, :2]
    # first the bone and all the lesion on its slices: a vertebra contoured without its
    # lytic half (or segmented from the CT) would turn the bone's own axis
    on_slices = np.asarray(bone.any(axis=(1, 2)), dtype=bool)[:, None, None]
    solid = bone | (lesion[box] & on_slices & ~seed) if lesion is not None else bone
    sidx = np.argwhere(solid)
    a = vertebra_axis(sub.index_to_patient(sidx)[:, :2], sidx[:, 0], cxy, cidx[:, 0],
                      origins, 0.5 * px)
    if a is None:
        return None
    if lesion is not None:
        a = _axis_with_lesion(mask, bone, lesion[box] & ~seed, seed, cxy, cidx[:, 0], origins,
                              a, geometry, start, shape, sub, 0.5 * px,
                              margin_mm=options.paraspinal_margin_mm)
    a = symmetry_axis(bone, sub, origins, a, span_deg=po.axis_symmetry_span_deg,
                      step_deg=po.axis_symmetry_step_deg,
                      lesion=lesion[box] & ~seed if lesion is not None else None)
    # steps 3: bony canal, twice (the second about the first's centre)
    coords = box_coordinates(geometry, start, shape, origins, a)
    ring = np.zeros_like(bone)
    mirror = np.zeros_like(bone)
    for _ in range(2):
        mirror = mirrored(mask, coords, geometry)
        ring = bony_canal(bone | mirror, coords, options=po,
                          slice_mm=float(geometry.spacing_mm[2]))
        used = np.where(np.asarray(ring.any(axis=(1, 2)))[:, None, None], ring, seed)
        if not used.any():
            break
        origins, _ = slice_centroids(used, sub)
        coords = box_coordinates(geometry, start, shape, origins, a)
    used = np.where(np.asarray(ring.any(axis=(1, 2)))[:, None, None], ring, seed)
    landmarks = find_landmarks(bone, used, coords, options=po,
                               lesion=lesion[box] & ~used if lesion is not None else None)
    if landmarks is None:
        return None
    restored = np.zeros_like(bone)
    if lesion is not None:
        restored = restore_envelope(
            bone, mirror if po.envelope_use_mirror else np.zeros_like(bone), lesion[box], used,
            landmarks.body_wall_u, coords, slice_mm=float(geometry.spacing_mm[2]),
            neighbour_mm=po.envelope_neighbour_mm, closing_mm=po.envelope_closing_mm,
            use_body_hull=po.envelope_use_body_hull,
            templates=tuple(t[box] for t in templates) if po.envelope_use_adjacent_levels
            else ())
    parts_box = label_parts(bone | restored, coords, landmarks)
    if restored.any() and po.envelope_use_mirror:
        # bone a lesion replaced takes the part of its mirror image, where that is the
        # vertebra's own bone (the opposite side's anatomy, not the landmarks' lines)
        own = np.zeros(mask.shape, dtype=np.int8)
        own[box] = np.where(bone, parts_box, 0)
        mp = _MIRROR_PART[mirrored_values(own, coords, geometry)]
        use = restored & ~bone & (mp > 0)
        parts_box[use] = mp[use]
    parts = np.zeros(mask.shape, dtype=np.int8)
    parts[box] = parts_box
    full_restored = np.zeros(mask.shape, dtype=bool)
    full_restored[box] = restored
    full_canal = np.zeros(mask.shape, dtype=bool)
    full_canal[box] = ring
    on = bone.any(axis=(1, 2))
    centre = origins[on].mean(axis=0) if on.any() else origins.mean(axis=0)
    zc = float(sub.index_to_patient(bidx.mean(axis=0))[2])
    frame = VertebraFrame(canal_centre_mm=(float(centre[0]), float(centre[1]), zc),
                          anterior=(float(a[0]), float(a[1]), 0.0),
                          left=(float(-a[1]), float(a[0]), 0.0))
    return VertebraPartition(sectors=parts_to_sectors(parts), parts=parts,
                             restored=full_restored, canal=full_canal, frame=frame,
                             landmarks=landmarks, coords=coords)


def _axis_with_lesion(mask: NDArray[np.bool_], bone: NDArray[np.bool_],
                      lesion: NDArray[np.bool_], seed: NDArray[np.bool_],
                      canal_xy: NDArray[np.float64], canal_k: NDArray[np.int64],
                      origins: NDArray[np.float64], a: NDArray[np.float64],
                      geometry: VolumeGeometry, start: tuple[int, int, int],
                      shape: tuple[int, int, int], sub: VolumeGeometry, half_pixel_mm: float,
                      margin_mm: float, iterations: int = 1) -> NDArray[np.float64]:
    """The anterior axis ``a`` (from the bone and all the lesion on its slices) refined:
    the lesion joins the bone only where the bone's mirror image about the current axis
    has bone (the place of a lost lytic half).  A soft-tissue (paraspinal) extension of
    the lesion has no bone in its mirror image and no longer turns the axis.
    """
    on_slices = np.asarray(bone.any(axis=(1, 2)), dtype=bool)[:, None, None]
    cand = lesion & on_slices & ~bone
    if not cand.any():
        return a
    margin_px = max(1, int(np.floor(margin_mm / (2.0 * half_pixel_mm) + 1e-6)))
    for _ in range(iterations):
        coords = box_coordinates(geometry, start, shape, origins, a)
        solid = bone | (cand & _grown(mirrored(mask, coords, geometry) | bone, margin_px))
        sidx = np.argwhere(solid)
        a_new = vertebra_axis(sub.index_to_patient(sidx)[:, :2], sidx[:, 0], canal_xy,
                              canal_k, origins, half_pixel_mm)
        if a_new is None:
            break
        a = a_new
    return a


def _grown(mask: NDArray[np.bool_], r_px: int) -> NDArray[np.bool_]:
    """``mask`` dilated in-plane by a disk of radius ``r_px`` pixels."""
    yy, xx = np.mgrid[-r_px:r_px + 1, -r_px:r_px + 1]
    structure = np.zeros((1, 2 * r_px + 1, 2 * r_px + 1), dtype=bool)
    structure[0] = np.hypot(yy, xx) <= r_px + 1e-9
    return np.asarray(ndimage.binary_dilation(mask, structure=structure), dtype=bool)


def _sub_geometry(geometry: VolumeGeometry, start: tuple[int, int, int],
                  shape: tuple[int, int, int]) -> VolumeGeometry:
    from contourqa.masks import crop_geometry

    stop = (start[0] + shape[0], start[1] + shape[1], start[2] + shape[2])
    return crop_geometry(geometry, start, stop)
