"""Vertebrae and spinal canal segmented from the CT, for cases without vertebra ROIs.

Steps (all on the analysed crop, axial slices):

1. **Bone**: HU >= ``bone_min_hu``, closed in-plane by ``closing_mm``; inside the
   lesion (the GTV, when given) gaps up to ``2 * lytic_bridge_mm`` wide are bridged
   too, so that a lytic metastasis that destroyed the cortex or a lamina still
   belongs to its vertebra and the ring around the canal stays closed.
2. **Canal**: on each slice, the hole enclosed by the bone (the vertebral ring) with
   an area in ``[min_canal_area_mm2, max_canal_area_mm2]`` nearest to the canal hint
   (a canal, thecal sac or cord ROI, when given) or to the previous slice's canal;
   slices where the ring is open take the nearest slice's canal centre.
3. **Column**: bone within ``column_radius_mm`` of the canal centre, connected in 3D
   to the bone next to the canal (ribs and pelvis far from the column drop out).
4. **Lytic holes**: every other hole of the column's bone, slice by slice, is filled:
   a lytic metastasis replaces bone with soft tissue, and the vertebra's outline must
   still hold it.
5. **Discs**: the bone area anterior to the canal (the bodies) along z; slices where
   it drops below ``disc_area_fraction`` of its median are disc levels.  Runs of body
   slices at least ``min_vertebra_height_mm`` high are vertebrae; bone on disc slices
   (posterior elements) goes to the nearer run, split at the disc's middle.

Levels are not known from the CT alone; :mod:`contourqa.anatomy.levels` names them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from contourqa.anatomy.spine import Vertebra, slice_structure
from contourqa.findings import Finding, Status
from contourqa.geometry import VolumeGeometry

__all__ = ["CTSegmentation", "CTSegmentationOptions", "segment_spine"]


@dataclass(frozen=True, kw_only=True)
class CTSegmentationOptions:
    """Thresholds of the CT segmentation (HU, mm, mm2).

    Parameters
    ----------
    bone_min_hu : float
        Bone threshold (110 HU: cancellous bone of older patients is 110-250 HU, muscle
        below 80; the closed cortex and hole filling recover darker marrow).
    closing_mm : float
        In-plane closing radius that seals thin cortex gaps.
    column_radius_mm : float
        In-plane distance from the canal centre beyond which bone is not vertebra.
    min_canal_area_mm2, max_canal_area_mm2 : float
        Area of a ring hole taken for the canal.
    disc_area_fraction : float
        Body bone area, relative to its median, below which a slice is a disc.
    lytic_bridge_mm : float
        Closing radius applied within the lesion mask (lytic bone).
    min_vertebra_height_mm : float
        Shortest run of body slices kept as a vertebra (partial ones at the crop's
        ends are kept when at least half this).
    """

    bone_min_hu: float = 110.0
    closing_mm: float = 1.0
    column_radius_mm: float = 55.0
    min_canal_area_mm2: float = 20.0
    max_canal_area_mm2: float = 900.0
    disc_area_fraction: float = 0.35
    min_vertebra_height_mm: float = 8.0
    lytic_bridge_mm: float = 5.0


@dataclass(frozen=True, eq=False)
class CTSegmentation:
    """Vertebrae (unordered, no levels), canal and problems from :func:`segment_spine`."""

    vertebrae: tuple[Vertebra, ...]
    canal: NDArray[np.bool_] | None
    problems: tuple[Finding, ...] = field(default=())


def _disk(radius_mm: float, geometry: VolumeGeometry) -> NDArray[np.bool_]:
    dx, dy = float(geometry.spacing_mm[0]), float(geometry.spacing_mm[1])
    ri, rj = max(int(radius_mm / dx), 0), max(int(radius_mm / dy), 0)
    j, i = np.mgrid[-rj:rj + 1, -ri:ri + 1]
    s = np.zeros((3, 2 * rj + 1, 2 * ri + 1), dtype=bool)
    s[1] = (j * dy) ** 2 + (i * dx) ** 2 <= radius_mm ** 2 + 1e-9
    return s


def _problem(message: str) -> Finding:
    return Finding(code="sectors.ct_segmentation", status=Status.WARN, message=message,
                   source="contourqa CT vertebra segmentation")


def segment_spine(pixels: NDArray[np.int16] | NDArray[np.float32], geometry: VolumeGeometry, *,
                  canal_hint: NDArray[np.bool_] | None = None,
                  lesion: NDArray[np.bool_] | None = None,
                  options: CTSegmentationOptions = CTSegmentationOptions()) -> CTSegmentation:
    """Segment the vertebrae and the canal from a CT crop.

    Parameters
    ----------
    pixels : ndarray of shape (S, R, C), HU
    geometry : VolumeGeometry
        Grid of ``pixels`` (axial slices).
    canal_hint : ndarray of shape (S, R, C), bool, optional
        Canal, thecal sac or cord mask: picks the canal among the ring's holes.
    lesion : ndarray of shape (S, R, C), bool, optional
        The GTV: bone gaps inside it are bridged (lytic tumour).
    options : CTSegmentationOptions

    Returns
    -------
    CTSegmentation
        Empty vertebrae (and a WARN finding saying why) when no canal or no
        vertebral body is found.
    """
    o = options
    shape = pixels.shape
    px_mm2 = float(geometry.spacing_mm[0] * geometry.spacing_mm[1])
    bone: NDArray[np.bool_] = np.asarray(pixels, dtype=np.float64) >= o.bone_min_hu
    if o.closing_mm > 0:
        bone = ndimage.binary_closing(bone, structure=_disk(o.closing_mm, geometry)) | bone
    if lesion is not None and lesion.any() and o.lytic_bridge_mm > 0:
        wide = ndimage.binary_closing(bone, structure=_disk(o.lytic_bridge_mm, geometry))
        bone = bone | (wide & lesion)
    filled = np.asarray(ndimage.binary_fill_holes(bone, structure=slice_structure(1)), bool)
    holes, n = ndimage.label(filled & ~bone, structure=slice_structure(1))
    canal = np.zeros(shape, dtype=bool)
    if n == 0:
        return CTSegmentation((), None, (_problem("No hole enclosed by bone: the canal was not "
                                                   "found on the CT."),))
    sizes = np.bincount(holes.ravel(), minlength=n + 1) * px_mm2
    objs = ndimage.find_objects(holes)
    com = np.asarray(ndimage.center_of_mass(np.ones(shape), holes, np.arange(1, n + 1)))
    hint_c = None
    if canal_hint is not None and canal_hint.any():
        hint_c = np.asarray(ndimage.center_of_mass(canal_hint))
    ok = (sizes[1:] >= o.min_canal_area_mm2) & (sizes[1:] <= o.max_canal_area_mm2)
    by_slice: dict[int, list[int]] = {}
    for lab in np.nonzero(ok)[0] + 1:
        sl = objs[lab - 1]
        if sl is not None:
            by_slice.setdefault(sl[0].start, []).append(int(lab))
    if hint_c is None and by_slice:
        # no hint: the canal is the hole present on most slices near one place;
        # take the candidates' median position as the start
        allc = com[np.concatenate([np.asarray(v) for v in by_slice.values()]) - 1]
        hint_c = np.median(allc, axis=0)
    chosen = []
    ref = hint_c
    for k in sorted(by_slice):
        cands = by_slice[k]
        d = [np.hypot(*(com[c - 1][1:] - ref[1:])) for c in cands]  # type: ignore[index]
        best = cands[int(np.argmin(d))]
        # a hole farther than 15 mm from the reference is not the canal
        if min(d) * float(geometry.spacing_mm[0]) <= 15.0:
            chosen.append(best)
    if chosen:
        canal = np.isin(holes, chosen)
    if not canal.any():
        return CTSegmentation((), None, (_problem("No vertebral ring encloses a canal on the "
                                                   "CT: the vertebrae were not segmented."),))
    # canal centre per slice (filled from the nearest slice)
    kk = np.arange(shape[0])
    have = np.nonzero(canal.any(axis=(1, 2)))[0]
    cent = np.zeros((shape[0], 2))
    for kh in have:
        j, i = np.nonzero(canal[kh])
        cent[kh] = (j.mean(), i.mean())
    near = have[np.abs(kk[:, None] - have[None, :]).argmin(axis=1)]
    cent = cent[near]
    jj, ii = np.mgrid[0:shape[1], 0:shape[2]]
    dy, dx = float(geometry.spacing_mm[1]), float(geometry.spacing_mm[0])
    rj = (jj[None] - cent[:, 0, None, None]) * dy
    ri = (ii[None] - cent[:, 1, None, None]) * dx
    r2 = rj ** 2 + ri ** 2
    column = bone & (r2 <= o.column_radius_mm ** 2)
    # keep bone connected to the bone next to the canal
    ring = ndimage.binary_dilation(canal, structure=_disk(3.0, geometry)) & column
    lab3, _ = ndimage.label(column)
    keep = np.unique(lab3[ring])
    keep = keep[keep > 0]
    column = np.isin(lab3, keep)
    column = np.asarray(ndimage.binary_fill_holes(column | canal, structure=slice_structure(1)),
                        bool) & ~canal
    # body profile: bone anterior to the canal (direction: canal -> bone centroid)
    area = np.zeros(shape[0])
    for k in range(shape[0]):
        j, i = np.nonzero(column[k])
        if len(j) == 0:
            continue
        a = np.array([(j.mean() - cent[k, 0]) * dy, (i.mean() - cent[k, 1]) * dx])
        if not np.linalg.norm(a) > 0:
            continue
        a /= np.linalg.norm(a)
        u = (j - cent[k, 0]) * dy * a[0] + (i - cent[k, 1]) * dx * a[1]
        area[k] = np.count_nonzero(u > 10.0) * px_mm2
    if not (area > 0).any():
        return CTSegmentation((), canal, (_problem("No vertebral body anterior to the canal "
                                                    "on the CT."),))
    body_slice = area >= o.disc_area_fraction * float(np.median(area[area > 0]))
    dz = float(geometry.spacing_mm[2])
    runs = []
    k = 0
    n_slices = int(shape[0])
    while k < n_slices:
        if body_slice[k]:
            s = k
            while k < n_slices and body_slice[k]:
                k += 1
            edge = s == 0 or k == n_slices
            height = (k - s) * dz
            if height >= o.min_vertebra_height_mm or (edge and height >= o.min_vertebra_height_mm / 2):
                runs.append((s, k))
        else:
            k += 1
    if not runs:
        return CTSegmentation((), canal, (_problem("No vertebral body run found along z."),))
    # every slice to its nearest run, split at the middle of gaps
    owner = np.full(shape[0], -1)
    mids = [(s + e - 1) / 2 for s, e in runs]
    for k in range(shape[0]):
        inside = [r for r, (s, e) in enumerate(runs) if s <= k < e]
        owner[k] = inside[0] if inside else int(np.argmin([min(abs(k - s), abs(k - (e - 1)))
                                                           + 1e-3 * abs(k - m) for (s, e), m
                                                           in zip(runs, mids, strict=True)]))
    vertebrae = tuple(Vertebra(mask=column & (owner == r)[:, None, None], known_level=None,
                               roi_name=None, source="ct") for r in range(len(runs)))
    return CTSegmentation(vertebrae, canal)
