"""Label every bone voxel of one vertebra with its ISRC sector."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from contourqa.geometry import VolumeGeometry
from contourqa.sectors.frame import VertebraFrame, _frame_coordinates, _slice_centroids
from contourqa.sectors.options import _DEFAULT_OPTIONS, SectorOptions


def _wrap_deg(theta: NDArray[np.float64], start: float) -> NDArray[np.float64]:
    return (theta - start) % 360.0 + start


def _sector_of(theta: NDArray[np.float64], u: NDArray[np.float64], u_wall: NDArray[np.float64],
               d_canal: NDArray[np.float64], o: SectorOptions) -> NDArray[np.int8]:
    """Sector (1-6) of bone points from their frame coordinates (:mod:`contourqa.sectors`)."""
    lo = -90.0 - o.body_half_angle_deg
    t = _wrap_deg(theta, lo)
    hi_body = -90.0 + o.body_half_angle_deg
    pl = o.pedicle_lamina_angle_deg
    sp = o.spinous_half_angle_deg
    psp = o.process_spinous_half_angle_deg
    ring = np.select(
        [t < pl, t < 90.0 - sp, t <= 90.0 + sp, t <= 180.0 - pl],
        [2, 3, 4, 5], default=6).astype(np.int8)
    process = np.select([t < 90.0 - psp, t <= 90.0 + psp], [3, 4], default=5).astype(np.int8)
    out = np.where(d_canal <= o.arch_thickness_mm, ring, process)
    body = (u >= u_wall) | (t <= hi_body)
    return np.where(body, np.int8(1), out).astype(np.int8)


def partition_vertebra(mask: NDArray[np.bool_], canal: NDArray[np.bool_],
                       geometry: VolumeGeometry, *, options: SectorOptions = _DEFAULT_OPTIONS
                       ) -> tuple[NDArray[np.int8], VertebraFrame] | None:
    """Label every bone voxel of one vertebra with its ISRC sector.

    Parameters
    ----------
    mask : ndarray of shape (S, R, C), bool
        The vertebra's bone.
    canal : ndarray of shape (S, R, C), bool
        Spinal canal (at least on some of the vertebra's slices).
    geometry : VolumeGeometry
        Grid of both masks (axial slices).
    options : SectorOptions

    Returns
    -------
    (sectors, frame) or None
        ``sectors``: ndarray of shape (S, R, C), int8, 1-6 on the vertebra's voxels and
        0 elsewhere; None when the canal is absent from every slice of the vertebra.
    """
    idx = np.argwhere(mask)
    if len(idx) == 0:
        return None
    ks = np.unique(idx[:, 0])
    k0, k1 = int(ks[0]), int(ks[-1]) + 1
    # canal slices near the vertebra (its slices, plus a few for vertebrae whose
    # canal is only contoured between them)
    pad = 3
    s0, s1 = max(k0 - pad, 0), min(k1 + pad, mask.shape[0])
    canal_slab = canal[s0:s1]
    if not canal_slab.any():
        return None
    centres, present = _slice_centroids(canal_slab, geometry)
    # fill canal-less slices with the nearest canal slice (for distances)
    have = np.nonzero(present)[0]
    nearest = have[np.abs(np.arange(len(present))[:, None] - have[None, :]).argmin(axis=1)]
    filled = canal_slab[nearest]
    centres_k = centres - 0.0  # (slab slices, 2)

    pts = geometry.index_to_patient(idx)
    xy = pts[:, :2]
    origin = centres_k[idx[:, 0] - s0]
    cidx = np.argwhere(filled)
    cxy = geometry.index_to_patient(cidx + np.array([s0, 0, 0]))[:, :2]
    corigin = centres_k[cidx[:, 0]]
    half_pixel = 0.5 * float(min(geometry.spacing_mm[0], geometry.spacing_mm[1]))

    a = (xy - origin).mean(axis=0)
    if not np.linalg.norm(a) > 0:
        return None
    a = a / np.linalg.norm(a)
    sampling = (1e4 * float(geometry.spacing_mm[2]), float(geometry.spacing_mm[1]),
                float(geometry.spacing_mm[0]))
    dist = ndimage.distance_transform_edt(~filled, sampling=sampling)
    d_canal = dist[idx[:, 0] - s0, idx[:, 1], idx[:, 2]]
    for _ in range(3):
        u, _, _ = _frame_coordinates(xy, origin, a)
        cu, _, _ = _frame_coordinates(cxy, corigin, a)
        u_wall = np.full(len(present), -np.inf)
        np.maximum.at(u_wall, cidx[:, 0], cu)
        u_wall_pt = u_wall[idx[:, 0] - s0] + half_pixel
        body = u >= u_wall_pt
        if not body.any():
            break
        a_new = (xy[body] - origin[body]).mean(axis=0)
        if not np.linalg.norm(a_new) > 0:
            break
        a = a_new / np.linalg.norm(a_new)
    u, _, theta = _frame_coordinates(xy, origin, a)
    sectors = _sector_of(theta, u, u_wall_pt, d_canal, options)
    out = np.zeros(mask.shape, dtype=np.int8)
    out[idx[:, 0], idx[:, 1], idx[:, 2]] = sectors
    in_vertebra = np.zeros(len(present), dtype=bool)
    in_vertebra[ks - s0] = True
    cc = centres_k[in_vertebra & present].mean(axis=0) if (in_vertebra & present).any() \
        else centres_k[in_vertebra].mean(axis=0)
    zc = float(pts[:, 2].mean())
    frame = VertebraFrame(canal_centre_mm=(float(cc[0]), float(cc[1]), zc),
                          anterior=(float(a[0]), float(a[1]), 0.0),
                          left=(float(-a[1]), float(a[0]), 0.0))
    return out, frame
