"""Vertebral levels counted on the CT from an anchor in the field of view.

The CT column is segmented over the CT's whole cranio-caudal extent
(:func:`contourqa.anatomy.ct.segment_spine`, on a grid of at least
``[grid] voxel_mm``; thresholds in ``contourqa/data/level_anchors.toml``), and its
vertebrae, ordered inferior first, are named from the anchors found:

* **lumbosacral junction**: the lowest mobile vertebra above the sacral segments
  (the fused sacrum and S1 above it, found by the segmentation from the discs) is L5,
  when the top sacral segment's bone joins the ilia through its alae (it reaches
  ``s1_min_reach_mm`` to each side) and that vertebra's does not: a missed S1/S2
  remnant disc or an extra split of the sacrum would shift the count by one;
* **last rib-bearing vertebra**: the vertebra of the lowest pair of ribs (bone
  jointed to the column far to its side, :mod:`contourqa.anatomy.ribs`, that is not
  an iliac wing: small, short and touching no sacral segment; the lowest rib of each
  side, at the same height) is T12, when a vertebra lies below it in the field
  (else the ribs of the vertebrae below may be out of it); a lowest rib without its
  fellow (a lumbar rib, or a 12th rib not found) gives no anchor.

With both anchors in the field, counting from either must give the same levels (T12
five vertebrae above L5); otherwise the anatomy is transitional (11 or 13 rib pairs, a lumbar rib, a
sacralised L5 or lumbarised S1) or a vertebra was missed, and the image level is
*uncertain*: no level is counted.  No level is counted across a vertebra that may be
two (taller than ``max_height_ratio`` times the median) or a step that may hide a
missed one.  C2 (by its dens) is not sought yet: a cervical CT without the
lumbosacral junction or the ribs gives no image level.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from contourqa.anatomy.ct import CTSegmentation, CTSegmentationOptions, segment_spine
from contourqa.geometry import VolumeGeometry
from contourqa.structures import level_index

__all__ = ["Anchor", "ImageLevels", "Rib", "coarse_factors", "count_levels", "grid_sizes_mm",
           "image_levels", "last_rib_pair"]

_ALL_LEVELS = tuple(f"{r}{i}" for r, n in (("C", 7), ("T", 12), ("L", 5), ("S", 5))
                    for i in range(1, n + 1))


@cache
def _params() -> dict[str, Any]:
    raw = resources.files("contourqa.data").joinpath("level_anchors.toml").read_text("utf-8")
    return tomllib.loads(raw)


@dataclass(frozen=True)
class Anchor:
    """A vertebra whose level the image shows.

    Attributes
    ----------
    kind : {"lumbosacral_junction", "last_rib"}
    index : int
        The CT vertebra (inferior first).
    level : str
        The level it fixes (``"L5"``, ``"T12"``).
    evidence : str
    """

    kind: str
    index: int
    level: str
    evidence: str


@dataclass(frozen=True, eq=False)
class ImageLevels:
    """The CT column, its vertebrae and the levels counted from the anchors.

    Attributes
    ----------
    geometry : VolumeGeometry
        Grid of ``labels`` (a coarsened crop of the CT grid).
    labels : ndarray of shape (S, R, C), int16
        ``1 + index`` of the CT vertebra (inferior first) on its bone, 0 elsewhere.
    levels : tuple of (str or None)
        Level of each CT vertebra counted from the anchors; None when not counted.
    anchors : tuple of Anchor
        Every anchor found (also when they disagree).
    status : {"counted", "no_anchor", "anchors_disagree", "no_vertebrae", "no_ct"}
    message : str
        What the image says, for the report.
    """

    geometry: VolumeGeometry | None
    labels: NDArray[np.int16] | None
    levels: tuple[str | None, ...]
    anchors: tuple[Anchor, ...]
    status: str
    message: str

    def vertebra_at(self, points_mm: NDArray[np.float64]) -> int | None:
        """The CT vertebra holding at least ``min_overlap_fraction`` of the points.

        Parameters
        ----------
        points_mm : ndarray of shape (N, 3), float64, LPS mm
            Voxel centres of an analysed vertebra.

        Returns
        -------
        int or None
            Index (inferior first) of the CT vertebra, None when none holds enough.
        """
        if self.labels is None or self.geometry is None or len(points_mm) == 0:
            return None
        idx = np.rint(self.geometry.patient_to_index(points_mm)).astype(np.int64)
        inside = np.all((idx >= 0) & (idx < np.asarray(self.geometry.shape)), axis=1)
        lab = self.labels[tuple(idx[inside].T)]
        counts = np.bincount(lab[lab > 0], minlength=len(self.levels) + 1)
        if counts.sum() == 0:
            return None
        best = int(np.argmax(counts))
        share = counts[best] / len(points_mm)
        return best - 1 if share >= float(_params()["match"]["min_overlap_fraction"]) else None


def coarse_factors(geometry: VolumeGeometry, voxel_mm: float) -> tuple[int, int, int]:
    """Whole voxels (column, row, slice) per block for voxels of at least ``voxel_mm``."""
    sp = np.asarray(geometry.spacing_mm, dtype=np.float64)
    fi, fj, fk = (max(1, int(np.ceil(voxel_mm / float(v) - 1e-6))) for v in sp)
    return fi, fj, fk


def _coarse(hu: NDArray[Any], geometry: VolumeGeometry, voxel_mm: float
            ) -> tuple[NDArray[np.float32], VolumeGeometry]:
    """Block means of whole voxels, to voxels of at least ``voxel_mm`` on each axis."""
    sp = np.asarray(geometry.spacing_mm, dtype=np.float64)  # x (column), y (row), z (slice)
    fi, fj, fk = coarse_factors(geometry, voxel_mm)
    arr = np.asarray(hu, dtype=np.float32)
    if fi == fj == fk == 1:
        return arr, geometry
    s, r, c = arr.shape
    s2, r2, c2 = max(s // fk, 1), max(r // fj, 1), max(c // fi, 1)
    fk, fj, fi = min(fk, s), min(fj, r), min(fi, c)
    arr = arr[:s2 * fk, :r2 * fj, :c2 * fi].reshape(s2, fk, r2, fj, c2, fi).mean(axis=(1, 3, 5))
    origin = geometry.index_to_patient(np.array([(fk - 1) / 2.0, (fj - 1) / 2.0,
                                                 (fi - 1) / 2.0]))
    return arr.astype(np.float32), VolumeGeometry(
        shape=(s2, r2, c2), origin_mm=origin, spacing_mm=sp * np.array([fi, fj, fk]),
        direction=geometry.direction)


@dataclass(frozen=True, eq=False)
class Rib:
    """A rib jointed to the column.

    Attributes
    ----------
    side : {"L", "R"}
        Patient left (+x in LPS) or right of the vertebra it touches most.
    z_mm : tuple of float
        Its cranio-caudal extent (lowest, highest patient z, mm).
    contact : ndarray of shape (V,), int64
        Voxels touching each CT vertebra (inferior first).
    """

    side: str
    z_mm: tuple[float, float]
    contact: NDArray[np.int64]


def _ribs(seg: CTSegmentation, labels: NDArray[np.int16], geometry: VolumeGeometry,
          sacral: NDArray[np.bool_]) -> list[Rib]:
    """The ribs jointed to the column (iliac wings left out), with the vertebrae they
    touch."""
    out: list[Rib] = []
    if seg.jointed is None or not seg.jointed.any():
        return out
    p = _params()["ribs"]
    parts, _ = ndimage.label(seg.jointed)
    vcc = geometry.voxel_volume_cc
    for lab, sl in enumerate(ndimage.find_objects(parts), start=1):
        if sl is None:
            continue
        grown = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in sl)
        part = parts[grown] == lab
        if part.sum() * vcc < float(p["min_volume_cc"]):
            continue
        offset = [g.start for g in grown]
        pts = geometry.index_to_patient(np.argwhere(part) + offset)
        if float(np.ptp(pts[:, 2])) > float(p["max_height_mm"]):
            continue
        ring = ndimage.binary_dilation(part) & ~part
        touched = labels[grown][ring]
        counts = np.bincount(touched[touched > 0], minlength=len(sacral) + 1)[1:]
        if counts.sum() < int(p["min_contact_voxels"]) or (counts[sacral] > 0).any():
            continue
        mine = np.argwhere(labels[grown] == int(np.argmax(counts)) + 1) + offset
        x_own = float(geometry.index_to_patient(mine)[:, 0].mean())
        out.append(Rib("L" if float(pts[:, 0].mean()) > x_own else "R",
                        (float(pts[:, 2].min()), float(pts[:, 2].max())), counts))
    return out


def last_rib_pair(ribs: list[Rib]) -> tuple[int | None, str | None]:
    """The CT vertebra of the lowest pair of ribs, or why there is none.

    The lowest rib of each side; they are a pair when their cranio-caudal extents
    overlap over half of the shorter, and their vertebra is the one they touch most
    together (a 12th rib may touch the vertebra above on a coarse grid).  A lowest rib
    on one side without its fellow is a lumbar rib or a 12th rib not found: no anchor.
    """
    lowest = {}
    for side in ("L", "R"):
        mine = [r for r in ribs if r.side == side]
        if mine:
            lowest[side] = min(mine, key=lambda r: r.z_mm[0] + r.z_mm[1])
    if not lowest:
        return None, None
    if len(lowest) < 2:
        return None, "ribs are found on one side only"
    left, right = lowest["L"], lowest["R"]
    overlap = min(left.z_mm[1], right.z_mm[1]) - max(left.z_mm[0], right.z_mm[0])
    shorter = min(left.z_mm[1] - left.z_mm[0], right.z_mm[1] - right.z_mm[0])
    if overlap < 0.5 * shorter:
        low = "left" if left.z_mm[0] + left.z_mm[1] < right.z_mm[0] + right.z_mm[1] else "right"
        return None, (f"the lowest {low} rib has no fellow on the other side at its height "
                      f"(a lumbar rib, or a 12th rib not found)")
    return int(np.argmax(left.contact + right.contact)), None


def _lateral_reach_mm(hu: NDArray[np.float32], labels: NDArray[np.int16],
                      geometry: VolumeGeometry, index: int) -> float:
    """How far (mm, median over the vertebra's main slices, the shorter side) the bone
    joined in-plane to CT vertebra ``index`` reaches left and right of its centre: S1's
    alae join the ilia (88 mm on the example CT), L5's transverse processes end free
    (41 mm)."""
    bone = hu >= CTSegmentationOptions().bone_min_hu
    mine = labels == index + 1
    per_slice = mine.sum(axis=(1, 2))
    reach = []
    # the slices that hold a quarter of its widest slice or more: not the tips of its
    # processes, nor the rim of a tilted neighbour's slices it shares
    for k in np.nonzero(per_slice >= max(0.25 * per_slice.max(), 1))[0]:
        parts, _ = ndimage.label(bone[k] | mine[k])
        ids = np.unique(parts[mine[k]])
        comp = np.argwhere(np.isin(parts, ids[ids > 0]))
        x = geometry.index_to_patient(np.column_stack([np.full(len(comp), k), comp]))[:, 0]
        own = np.argwhere(mine[k])
        xc = float(geometry.index_to_patient(
            np.column_stack([np.full(len(own), k), own]))[:, 0].mean())
        reach.append(min(float(x.max()) - xc, xc - float(x.min())))
    return float(np.median(reach)) if reach else 0.0


def _suspects(labels: NDArray[np.int16], geometry: VolumeGeometry, n: int,
              sacral: NDArray[np.bool_]) -> tuple[set[int], set[int]]:
    """Vertebrae that may be two, and steps ``i -> i + 1`` that may hide one."""
    p = _params()["count"]
    zc = np.zeros(n)
    height = np.zeros(n)
    for i in range(n):
        idx = np.argwhere(labels == i + 1)
        z = geometry.index_to_patient(idx)[:, 2]
        zc[i], height[i] = float(z.mean()), float(z.max() - z.min())
    mobile = ~sacral
    tall: set[int] = set()
    if mobile.sum() >= 3:
        med = float(np.median(height[mobile]))
        tall = {i for i in range(n) if mobile[i] and height[i] > p["max_height_ratio"] * med}
    steps = np.diff(zc)
    gaps: set[int] = set()
    if len(steps) >= 2:
        med_step = float(np.median(np.abs(steps)))
        gaps = {i for i, st in enumerate(np.abs(steps)) if st > p["max_step_ratio"] * med_step
                and not (sacral[i] and sacral[i + 1])}
    return tall, gaps


def count_levels(n: int, anchors: tuple[Anchor, ...], tall: set[int], gaps: set[int],
                 sacral: tuple[bool, ...]) -> tuple[tuple[str | None, ...], str, str]:
    """Levels of ``n`` vertebrae (inferior first) counted from the anchors.

    Parameters
    ----------
    n : int
    anchors : tuple of Anchor
    tall : set of int
        Vertebrae that may be two.
    gaps : set of int
        Steps ``i -> i + 1`` that may hide a vertebra.
    sacral : tuple of bool
        Sacral segments (the lowest, fused, one is named ``S2-S5``).

    Returns
    -------
    levels : tuple of (str or None)
    status : str
        ``counted``, ``no_anchor`` or ``anchors_disagree``.
    message : str
    """
    if not anchors:
        return (None,) * n, "no_anchor", (
            "no anchor in the CT's field of view (neither the lumbosacral junction nor "
            "the last rib-bearing vertebra was found; C2 is not sought)")
    versions = []
    for a in anchors:
        out: list[str | None] = []
        for i in range(n):
            lo, hi = min(i, a.index), max(i, a.index)
            crossed = any(lo <= t <= hi for t in tall) or any(lo <= g < hi for g in gaps)
            k = level_index(a.level) - (i - a.index)
            out.append(None if crossed or not 0 <= k < len(_ALL_LEVELS) else _ALL_LEVELS[k])
        if n and sacral and sacral[0] and out[0] == "S2":
            out[0] = "S2-S5"  # the fused caudal end
        versions.append(tuple(out))
    said = "; ".join(f"{a.evidence}: vertebra {a.index + 1} from below is {a.level}"
                     for a in anchors)
    # a vertebra counted from two anchors must get one level; a count stopped by a
    # vertebra that may be two is no disagreement, the other anchor names it
    merged: list[str | None] = [None] * n
    for i in range(n):
        named = {v[i] for v in versions if v[i] is not None}
        if len(named) > 1:
            return (None,) * n, "anchors_disagree", (
                f"the anchors disagree ({said}): transitional anatomy (11 or 13 rib pairs, "
                "a lumbar rib, a sacralised L5 or lumbarised S1) or a vertebra missed by "
                "the segmentation; the image level is uncertain")
        merged[i] = named.pop() if named else None
    return tuple(merged), "counted", f"counted from {said}"


def grid_sizes_mm() -> tuple[float, ...]:
    """The grids (voxel size, mm) the count is made on; it holds when they agree."""
    return tuple(float(v) for v in _params()["grid"]["voxel_mm"])


def image_levels(hu: NDArray[Any], geometry: VolumeGeometry, *,
                 voxel_mm: float | None = None) -> ImageLevels:
    """Segment the CT column and count its levels from the anchors in the field.

    Parameters
    ----------
    hu : ndarray of shape (S, R, C), HU
        The CT (or an in-plane crop of it about the spine, all its slices).
    geometry : VolumeGeometry
        Grid of ``hu``.
    voxel_mm : float, optional
        Smallest voxel size of the grid segmented (block means of whole voxels);
        the first of :func:`grid_sizes_mm` by default.

    Returns
    -------
    ImageLevels
    """
    params = _params()
    arr, grid = _coarse(hu, geometry, grid_sizes_mm()[0] if voxel_mm is None else voxel_mm)
    seg = segment_spine(arr, grid)
    if not seg.vertebrae:
        return ImageLevels(grid, None, (), (), "no_vertebrae",
                           "no vertebra was segmented on the CT")
    zc = [float(grid.index_to_patient(np.argwhere(v.mask).mean(axis=0))[2])
          for v in seg.vertebrae]
    order = np.argsort(zc)
    n = len(order)
    labels = np.zeros(grid.shape, dtype=np.int16)
    for rank, j in enumerate(order):
        labels[seg.vertebrae[int(j)].mask] = rank + 1
    sac_flags = seg.sacral if len(seg.sacral) == n else (False,) * n
    sacral = np.array([sac_flags[int(j)] for j in order], dtype=bool)
    anchors: list[Anchor] = []
    notes: list[str] = []
    if sacral.any() and not sacral.all():
        top_sacral = int(np.nonzero(sacral)[0].max())
        if top_sacral + 1 < n and sacral[:top_sacral + 1].all():
            s1 = _lateral_reach_mm(arr, labels, grid, top_sacral)
            l5 = _lateral_reach_mm(arr, labels, grid, top_sacral + 1)
            limit = float(params["sacrum"]["s1_min_reach_mm"])
            if s1 >= limit > l5:
                anchors.append(Anchor("lumbosacral_junction", top_sacral + 1, "L5",
                                      "the lumbosacral junction (lowest mobile vertebra above "
                                      "the sacrum)"))
            else:
                notes.append(
                    f"the lumbosacral junction is not used: the top sacral segment's bone "
                    f"reaches {s1:.0f} mm to each side and the vertebra above {l5:.0f} mm "
                    f"(S1 with its alae reaches {limit:g} mm or more, L5 less)")
    last, why_not = last_rib_pair(_ribs(seg, labels, grid, sacral))
    if why_not is not None:
        notes.append(f"the last rib-bearing vertebra is not used: {why_not}")
    elif last is not None and last > 0:
        anchors.append(Anchor("last_rib", last, "T12",
                              "the last rib-bearing vertebra (its pair of ribs)"))
    tall, gaps = _suspects(labels, grid, n, sacral)
    levels, status, message = count_levels(n, tuple(anchors), tall, gaps,
                                           tuple(bool(s) for s in sacral))
    if notes:
        message = f"{message}; {'; '.join(notes)}"
    return ImageLevels(grid, labels, levels, tuple(anchors), status, message)
