"""Vertebrae and spinal canal segmented from the CT, for cases without vertebra ROIs.

Steps (all on the analysed crop; positions in LPS mm, so that any slice order,
patient position or in-plane flip of the grid gives the same result):

0. **Noise** (:mod:`contourqa.anatomy.noise`): a CT noisier than
   ``noise_target_hu`` in soft tissue (thin slices, fine pixels) is median-filtered
   in-plane first, or its muscle speckles above the bone threshold.
1. **Bone**: HU >= ``bone_min_hu``, closed in-plane by ``closing_mm``; inside the
   lesion (the GTV, when given) gaps up to ``2 * lytic_bridge_mm`` wide are bridged
   too, so that a lytic metastasis that destroyed the cortex or a lamina still
   belongs to its vertebra and the ring around the canal stays closed.
2. **Canal**: on each slice, the candidates are the holes enclosed by bone with an
   area in ``[min_canal_area_mm2, max_canal_area_mm2]`` whose centroid lies at least
   ``canal_min_posterior_mm`` posterior (+y, LPS) of, and within
   ``canal_max_lateral_mm`` left-right of, the centroid of the bone ring that
   encloses it: the canal lies behind the vertebral body on the vertebra's plane
   of symmetry, whereas the dark marrow of an osteoporotic or lytic body is a hole
   at or in front of the ring's centroid; and whose mean HU is at most
   ``canal_max_mean_hu`` (CSF, fat and cord, not a disc ringed by its endplate rim
   on an oblique slice).  With a canal hint (a canal, thecal sac
   or cord ROI) each slice takes the candidate nearest the hint's centroid on that
   slice (within ``canal_max_offset_mm``).  Without one, the canal is the chain of
   candidates, at most one per slice, that runs along the column
   (:func:`_longest_canal_chain`): the ring is closed only at the pedicles on thick
   slices, so the chain bridges open slices, and it outscores holes of the
   pelvis, ribs or posterior elements by its span and its area.  Between the slices
   where it is found, its centre is interpolated.
3. **Column**: bone within ``column_radius_mm`` of the canal centre, connected in 3D
   to the bone next to the canal (ribs and pelvis far from the column drop out).
   A contrast-filled aorta or cava against a body (its lumen is above the bone
   threshold) leaves it with its wall (:mod:`contourqa.anatomy.vessels`): a
   homogeneous region of blood HU, its border mostly outside the bone outline and
   away from the canal, unlike the marrow enclosed by the cortex.
4. **Lytic holes and dark marrow**: every other hole of the column's bone is
   filled, slice by slice and on the grid's two other planes (marrow behind a cortex
   open on the axial slice is enclosed by the endplates): a lytic metastasis
   replaces bone with soft tissue, and the vertebra's outline must still hold it.
   The foramina transversaria of the cervical vertebrae are opened again once the
   anterior direction is known (step 5; :mod:`contourqa.anatomy.foramina`): mirror
   pairs of small soft-tissue holes beside the canal and lateral to the body, none
   holding the lesion (thresholds in ``anatomy/data/ct_segmentation.toml``), so that
   the sector partition finds the cervical pedicle beside them as on a vertebra ROI.
5. **Body centreline**: on each slice, the centroid of the column's bone anterior to
   the canal (the body), smoothed in-plane along the spine
   (``centreline_smoothing_mm``), as is the anterior direction; the spine's curve
   (lordosis, kyphosis, scoliosis) is followed through its arc length ``s`` and
   tangent, not assumed to run along the slice axis.
6. **Discs** (:mod:`contourqa.anatomy.discs`): the voxels within
   ``disc_probe_radius_mm`` of the centreline are profiled along planes tilted
   against the centreline's normal plane (up to ``disc_max_tilt_deg`` about the
   lateral axis: lordosis wedges the lumbosacral disc); the black top-hat of each
   mean-HU profile keeps dips thinner than ``disc_max_thickness_mm`` (a disc between
   its endplates, not the wider dark marrow of an osteoporotic body).  Among the
   dips, the discs are the set that best balances contrast against vertebral
   heights (disc to disc) that match the size of the bodies (``height_per_reach``
   times how far the body reaches in front of the canal) and their neighbours.
   A disc cut by an end of the crop is half a dip: a dark slab, no thicker than
   ``disc_max_thickness_mm`` and darker than the bone inside it by
   ``end_disc_min_contrast_hu``, that the profile enters and does not leave before
   the crop ends, and darker than the vertebra inside it; it competes with the
   other dips, and its plane is fitted to the slab's inner edge (the endplate).
   Each chosen plane of a whole disc is fitted to the darkest voxels of the disc
   across the body.  Marrow that the slices above and below enclose once
   their axial holes are filled (on the sagittal and coronal grid planes) joins the
   column when farther than ``marrow_disc_margin_mm`` from every disc plane
   (:mod:`contourqa.anatomy.marrow`): dark marrow on a slice where the cortex is
   open, not a disc between its endplates.
7. **Vertebrae**: body bone farther than ``seed_margin_mm`` from every disc plane
   seeds one vertebra per inter-disc segment (segments at the crop's ends are kept
   when at least a quarter of ``min_vertebra_height_mm`` long and not beyond a
   disc cut by the crop, and so is a vertebra between two cut discs, measured
   between their edges rather than their middles, when the crop holds no other
   vertebra; the body voxels of an end segment not kept
   leave the column unless they are bone: the disc, which the hole filling put
   into the column, does not join the end vertebra, whose endplate rim and arch
   stay, and a sliver of the next endplate beyond it is cut off), and so does all
   the column's bone in the caudal part of the segment (farther below the cranial disc
   than ``arch_seed_fraction`` of the height of the vertebra above it, and not
   farther than ``arch_seed_depth_mm`` behind the canal; :func:`_caudal_seeds`):
   a vertebra's arch leaves the body at the pedicles and hangs caudally, so that
   level with the caudal half of a body the lamina and the root of the spinous
   process are its own, whereas level with the cranial half the processes of the
   vertebra above touch them at the facet joints.  The rest
   of the column (the pedicles, the processes about the discs, and body bone next
   to the discs) is flooded from the seeds through bone, brightest first
   (watershed of the HU smoothed over ``watershed_smoothing_mm``): the boundaries
   fall on the low-density discs and facet joints.  Before the flooding, voxels on
   the column's outer edge that are less than half bone by their HU
   (``edge_fraction``; :func:`partial_volume_edge`) leave the column: the
   threshold keeps partial-volume voxels that a 3 mm grid makes thick.  Ribs and
   ilia jointed to the column leave it too (:mod:`contourqa.anatomy.ribs`): bone
   farther than ``rib_min_lateral_mm`` to the side of the canal centre whose
   connected part there runs on to ``rib_reach_mm`` from it (a transverse process
   ends free).  The caudal end segment, when longer than ``end_height_ratio``
   vertebrae without a disc, is the fused sacrum: all its bone below the
   ``arch_seed_fraction`` mark seeds it, at any depth behind the canal.
8. **Sacral alae** (:mod:`contourqa.anatomy.sacrum`): the sacral vertebrae (that
   fused end and S1 above it) keep the bone within ``sacral_width_ratio`` times the
   half-width of the other vertebrae's bodies (left-right of the canal centre): a
   sacral vertebra is its body and the ring about the canal; the alae (and the
   iliac bone joined to them) are the sacrum's.

Levels are not known from the CT alone; :mod:`contourqa.anatomy.levels` names them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.segmentation import watershed

from contourqa.anatomy.discs import END_VERTEBRA_SHARE, Centreline, disc_planes
from contourqa.anatomy.edge import partial_volume_edge
from contourqa.anatomy.foramina import transverse_foramina
from contourqa.anatomy.marrow import enclosed_marrow, plane_fill
from contourqa.anatomy.noise import denoise
from contourqa.anatomy.ribs import jointed_bone
from contourqa.anatomy.sacrum import alae, sacral_segments
from contourqa.anatomy.options import CTSegmentationOptions
from contourqa.anatomy.spine import Vertebra, slice_disk, slice_structure
from contourqa.anatomy.vessels import vessel_lumen
from contourqa.findings import Finding, Status
from contourqa.geometry import VolumeGeometry

__all__ = ["CTSegmentation", "CTSegmentationOptions", "segment_spine"]


@dataclass(frozen=True, eq=False)
class CTSegmentation:
    """Vertebrae (unordered, no levels), canal and problems from :func:`segment_spine`,
    with the CT's noise in soft tissue (HU) and the in-plane median window (mm across,
    0: none) it was filtered with before the segmentation.

    ``sacral`` flags, per vertebra, the sacral segments (the fused caudal end and S1
    above it, :func:`contourqa.anatomy.sacrum.sacral_segments`); ``jointed`` is the
    bone of the ribs and ilia jointed to the column that left it
    (:func:`contourqa.anatomy.ribs.jointed_bone`), None when that step is off.  Both
    are read by :mod:`contourqa.anatomy.anchors` to count levels on the image."""

    vertebrae: tuple[Vertebra, ...]
    canal: NDArray[np.bool_] | None
    problems: tuple[Finding, ...] = field(default=())
    noise_hu: float = 0.0
    denoise_window_mm: float = 0.0
    sacral: tuple[bool, ...] = ()
    jointed: NDArray[np.bool_] | None = None


class _Noise(TypedDict):
    noise_hu: float
    denoise_window_mm: float


def _problem(message: str) -> Finding:
    return Finding(code="sectors.ct_segmentation", status=Status.WARN, message=message,
                   source="contourqa CT vertebra segmentation")


def _fill_from_nearest(values: NDArray[np.float64], present: NDArray[np.bool_]
                       ) -> NDArray[np.float64]:
    """``values`` (S, ...) with rows where ``present`` is False taken from the nearest
    present row."""
    have = np.nonzero(present)[0]
    k = np.arange(len(present))
    return values[have[np.abs(k[:, None] - have[None, :]).argmin(axis=1)]]


def _fill_linear(values: NDArray[np.float64], present: NDArray[np.bool_]
                 ) -> NDArray[np.float64]:
    """``values`` (S, D) with rows where ``present`` is False interpolated linearly
    between the present rows (held constant beyond the first and the last)."""
    have = np.nonzero(present)[0]
    k = np.arange(len(present), dtype=np.float64)
    return np.stack([np.interp(k, have, values[have, d]) for d in range(values.shape[1])],
                    axis=1)


def _slice_xy(geometry: VolumeGeometry, k: NDArray[np.int64] | int,
              j: NDArray[np.float64], i: NDArray[np.float64]) -> NDArray[np.float64]:
    """LPS points (N, 3) of voxel indices (slice k, row j, column i)."""
    kk = np.broadcast_to(np.asarray(k, dtype=np.float64), np.shape(j))
    return geometry.index_to_patient(np.stack([kk, j, i], axis=-1))


def _per_slice_mean(k: NDArray[np.int64], values: NDArray[np.float64], n: int
                    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Mean of ``values`` (N, D) grouped by slice index ``k`` (N,): ``(S, D)`` and the
    slices that have any."""
    counts = np.bincount(k, minlength=n).astype(np.float64)
    sums = np.stack([np.bincount(k, values[:, d], minlength=n) for d in range(values.shape[1])],
                    axis=1)
    present = counts > 0
    out = np.full((n, values.shape[1]), np.nan)
    out[present] = sums[present] / counts[present, None]
    return out, present


def _longest_canal_chain(k: NDArray[np.int64], xy: NDArray[np.float64],
                         area_mm2: NDArray[np.float64], geometry: VolumeGeometry,
                         o: CTSegmentationOptions) -> NDArray[np.int64]:
    """Indices of the canal candidates forming the longest chain along the spine.

    A chain takes at most one candidate per slice, in slice order; consecutive
    members lie within ``canal_max_offset_mm`` in-plane and ``canal_max_gap_mm``
    along the slices (that step grows with the distance along the slices by
    ``canal_max_tilt_deg``).  The chain with the largest score wins: the volume of
    its holes plus its span along the slices times ``min_canal_area_mm2``.  The
    canal runs along the whole column, even where its ring is closed only at the
    pedicles, and is wider than the holes between the posterior elements; holes in
    the pelvis or the ribs recur over a short stretch.
    """
    n = len(k)
    order = np.argsort(k, kind="stable")
    k, xy, area = k[order], xy[order], area_mm2[order]
    dz = float(geometry.spacing_mm[2])
    step = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    gap = (k[None, :] - k[:, None]) * dz  # gap[i, j]: from i to j
    reach = o.canal_max_offset_mm + gap * np.tan(np.radians(o.canal_max_tilt_deg))
    link = (gap > 0) & (gap <= o.canal_max_gap_mm) & (step <= reach)
    w = area * dz
    best = w.copy()
    prev = np.full(n, -1)
    for j in range(n):
        src = np.nonzero(link[:, j])[0]
        if len(src):
            gain = best[src] + gap[src, j] * o.min_canal_area_mm2
            i = int(src[np.argmax(gain)])
            if float(gain.max()) + w[j] > best[j]:
                best[j], prev[j] = float(gain.max()) + w[j], i
    chain = []
    j = int(np.argmax(best))
    while j >= 0:
        chain.append(j)
        j = int(prev[j])
    members = np.asarray(chain[::-1], dtype=np.int64)
    # a member off the median of its neighbours is a marrow or arch hole on a slice
    # where the canal is open
    med = ndimage.median_filter(xy[members], size=(5, 1), mode="nearest")
    ok = np.hypot(*(xy[members] - med).T) <= o.canal_outlier_mm
    return np.asarray(order[members[ok]], dtype=np.int64)


def _choose_canal(bone: NDArray[np.bool_], hu: NDArray[np.float64], geometry: VolumeGeometry,
                  canal_hint: NDArray[np.bool_] | None, o: CTSegmentationOptions
                  ) -> NDArray[np.bool_]:
    """The canal: per slice, the enclosed hole posterior of its ring nearest the path
    (holes darker than ``canal_max_mean_hu`` only)."""
    shape = bone.shape
    px_mm2 = float(geometry.spacing_mm[0] * geometry.spacing_mm[1])
    st = slice_structure(1)
    filled = np.asarray(ndimage.binary_fill_holes(bone, structure=st), dtype=bool)
    holes, n = ndimage.label(filled & ~bone, structure=st)
    canal = np.zeros(shape, dtype=bool)
    if n == 0:
        return canal
    rings, _ = ndimage.label(filled, structure=st)
    labels = np.arange(1, n + 1)
    sizes = np.bincount(holes.ravel(), minlength=n + 1)[1:] * px_mm2
    kji = np.argwhere(holes > 0)
    hole_of = holes[tuple(kji.T)] - 1
    pts = geometry.index_to_patient(kji)
    counts = np.bincount(hole_of, minlength=n)
    hole_xy = np.stack([np.bincount(hole_of, pts[:, d], minlength=n) for d in (0, 1)], 1) \
        / np.maximum(counts, 1)[:, None]
    hole_k = np.zeros(n, dtype=np.int64)
    hole_k[hole_of] = kji[:, 0]
    ring_of_hole = np.zeros(n, dtype=np.int64)
    ring_of_hole[hole_of] = rings[tuple(kji.T)]
    # centroid of the bone of the ring (filled component) enclosing each hole
    bkji = np.argwhere(bone & (rings > 0))
    bring = rings[tuple(bkji.T)]
    bpts = geometry.index_to_patient(bkji)
    n_rings = int(rings.max())
    bcount = np.bincount(bring, minlength=n_rings + 1)
    ring_xy = np.stack([np.bincount(bring, bpts[:, d], minlength=n_rings + 1) for d in (0, 1)],
                       1) / np.maximum(bcount, 1)[:, None]
    offset = hole_xy - ring_xy[ring_of_hole]  # LPS: +x left, +y posterior
    mean_hu = np.bincount(hole_of, hu[tuple(kji.T)], minlength=n) / np.maximum(counts, 1)
    ok = (sizes >= o.min_canal_area_mm2) & (sizes <= o.max_canal_area_mm2) \
        & (offset[:, 1] >= o.canal_min_posterior_mm) \
        & (np.abs(offset[:, 0]) <= o.canal_max_lateral_mm) \
        & (mean_hu <= o.canal_max_mean_hu)
    if not ok.any():
        return canal
    cand = labels[ok] - 1
    if canal_hint is not None and canal_hint.any():
        hk = np.argwhere(canal_hint)
        ref, present = _per_slice_mean(hk[:, 0], geometry.index_to_patient(hk)[:, :2], shape[0])
        ref = _fill_from_nearest(ref, present)
        dist = np.hypot(*(hole_xy[cand] - ref[hole_k[cand]]).T)
        near = dist <= o.canal_max_offset_mm
        cand, dist = cand[near], dist[near]
        order = np.lexsort((dist, hole_k[cand]))
        _, first = np.unique(hole_k[cand][order], return_index=True)
        chosen = cand[order][first]
    else:
        chosen = _longest_canal_chain(hole_k[cand], hole_xy[cand], sizes[cand], geometry, o)
        chosen = cand[chosen]
    return np.isin(holes, chosen + 1)


def _inplane_offsets(geometry: VolumeGeometry, centre_xy: NDArray[np.float64]
                     ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """In-plane LPS offsets (x, y; each of shape (S, R, C), mm) of every voxel from
    its slice's point ``centre_xy`` (S, 2)."""
    shape = geometry.shape
    jj, ii = np.mgrid[0:shape[1], 0:shape[2]].astype(np.float64)
    plane = geometry.index_to_patient(np.stack([np.zeros_like(jj), jj, ii], -1))[..., :2]
    off0 = geometry.index_to_patient(np.zeros(3))[:2]
    # slices are parallel: the in-plane mapping is the same on every slice up to a shift
    step = geometry.index_to_patient(np.array([1.0, 0.0, 0.0]))[:2] - off0
    kk = np.arange(shape[0], dtype=np.float64)
    dx = plane[None, ..., 0] + kk[:, None, None] * step[0] - centre_xy[:, 0, None, None]
    dy = plane[None, ..., 1] + kk[:, None, None] * step[1] - centre_xy[:, 1, None, None]
    return dx, dy


def _unchosen_canal(holes: NDArray[np.bool_], hu: NDArray[np.float64], dx_mm: NDArray[np.float64],
                    dy_mm: NDArray[np.float64], geometry: VolumeGeometry,
                    o: CTSegmentationOptions) -> NDArray[np.bool_]:
    """On each slice, the hole of ``holes`` that holds the voxel nearest the canal
    centre (``dx_mm``, ``dy_mm``: in-plane offsets from it), when the hole is
    canal-like: its area within the canal's, its mean HU at most
    ``canal_max_mean_hu`` and its centroid within ``canal_max_offset_mm`` of the
    centre."""
    r2_mm2 = dx_mm ** 2 + dy_mm ** 2
    st = slice_structure(1)
    lab, n = ndimage.label(holes, structure=st)
    if n == 0:
        return np.zeros(holes.shape, dtype=bool)
    flat = r2_mm2.reshape(len(r2_mm2), -1)
    at = lab.reshape(len(lab), -1)[np.arange(len(lab)), flat.argmin(axis=1)]
    ids = np.unique(at[at > 0])
    if len(ids) == 0:
        return np.zeros(holes.shape, dtype=bool)
    index = np.arange(1, n + 1)
    area = ndimage.sum_labels(np.ones(holes.shape), lab, index)[ids - 1] \
        * float(geometry.spacing_mm[0] * geometry.spacing_mm[1])
    mean_hu = ndimage.mean(hu, lab, ids)
    offset = np.hypot(ndimage.mean(dx_mm, lab, ids), ndimage.mean(dy_mm, lab, ids))
    ok = (area >= o.min_canal_area_mm2) & (area <= o.max_canal_area_mm2) \
        & (mean_hu <= o.canal_max_mean_hu) & (offset <= o.canal_max_offset_mm)
    return np.isin(lab, ids[ok])


def _column(bone: NDArray[np.bool_], canal: NDArray[np.bool_], hu: NDArray[np.float64],
            geometry: VolumeGeometry, o: CTSegmentationOptions
            ) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_],
                       NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Vertebral bone around the canal (holes filled), the canal, the canal's core,
    the canal centre per slice (S, 2) in LPS mm, filled from the nearest canal slice,
    and every voxel's in-plane offsets ``dx``, ``dy`` (S, R, C) from it.

    The canal gains, on slices where none was chosen, the hole of the column's ring
    at the interpolated centre when it is canal-like (:func:`_unchosen_canal`): a
    ring closed there (its canal passed over, e.g. as the ring's centroid shifted
    with the rib heads) must not have its canal filled as bone.  The core is the
    voxels that are not bone within ``canal_core_fraction`` of the canal's radius
    (that of the median area of its slices) about the centre on every slice: no
    hole filling, axial or on the other grid planes, makes them bone (where the
    ring is open, the canal between two closed rings is enclosed on a coronal plane
    through the pedicles)."""
    shape = canal.shape
    ck = np.argwhere(canal)
    cent, present = _per_slice_mean(ck[:, 0], geometry.index_to_patient(ck)[:, :2], shape[0])
    # the canal moves with the lordosis between the slices where its ring is closed
    cent = _fill_linear(cent, present)
    dx, dy = _inplane_offsets(geometry, cent)
    column = bone & (dx ** 2 + dy ** 2 <= o.column_radius_mm ** 2)
    ring = ndimage.binary_dilation(canal, structure=slice_disk(3.0, geometry)) & column
    lab3, _ = ndimage.label(column)
    keep = np.unique(lab3[ring])
    column = np.isin(lab3, keep[keep > 0])
    filled = np.asarray(ndimage.binary_fill_holes(column | canal, structure=slice_structure(1)),
                        bool)
    r2 = dx ** 2 + dy ** 2
    missing: NDArray[np.bool_] = ~np.any(canal, axis=(1, 2))
    if missing.any():
        canal = canal | _unchosen_canal(filled & ~column & ~canal & missing[:, None, None], hu,
                                        dx, dy, geometry, o)
    areas = np.count_nonzero(canal, axis=(1, 2))
    radius = np.sqrt(float(np.median(areas[areas > 0])) * float(
        geometry.spacing_mm[0] * geometry.spacing_mm[1]) / np.pi)
    core = (r2 <= (o.canal_core_fraction * radius) ** 2) & ~bone
    # dark marrow behind a cortex left open on the axial slice (the basivertebral
    # foramen) is still enclosed by the cortex and the endplates on the sagittal and
    # coronal grid planes; the canal runs through those planes to the crop's ends
    filled |= plane_fill(column)
    return filled & ~canal & ~core, canal, core, cent, dx, dy


def _body_centreline(column: NDArray[np.bool_], canal: NDArray[np.bool_],
                     canal_xy: NDArray[np.float64], geometry: VolumeGeometry,
                     o: CTSegmentationOptions) -> tuple[Centreline, NDArray[np.float64]] | None:
    """The smoothed centreline of the bodies and the unit anterior direction per slice
    (S, 2); None when no slice has body bone."""
    n = column.shape[0]
    kji = np.argwhere(column)
    if len(kji) == 0:
        return None
    pts = geometry.index_to_patient(kji)
    rel = pts[:, :2] - canal_xy[kji[:, 0]]
    # anterior: from the canal centre towards the column's bone (patient -y if unknown)
    mean_rel, present = _per_slice_mean(kji[:, 0], rel, n)
    norm = np.linalg.norm(mean_rel, axis=1)
    # only where the canal itself is seen: elsewhere its centre is interpolated and
    # the bone's centroid may fall behind it
    present &= (norm > 0) & canal.any(axis=(1, 2))
    if not present.any():
        return None
    ant = np.zeros((n, 2))
    ant[present] = mean_rel[present] / norm[present, None]
    ant = _fill_linear(ant, present)
    # the vertebrae turn slowly along the spine; the bone's centroid on one slice
    # shifts with a rib head, an osteophyte or the sacral ala
    sigma_ant = o.centreline_smoothing_mm / float(geometry.spacing_mm[2])
    if sigma_ant > 0:
        ant = ndimage.gaussian_filter1d(ant, sigma_ant, axis=0, mode="nearest")
    ant /= np.maximum(np.linalg.norm(ant, axis=1, keepdims=True), 1e-9)
    ck = np.argwhere(canal)
    crel = geometry.index_to_patient(ck)[:, :2] - canal_xy[ck[:, 0]]
    wall = np.full(n, -np.inf)
    np.maximum.at(wall, ck[:, 0], np.einsum("ij,ij->i", crel, ant[ck[:, 0]]))
    wall = np.where(np.isfinite(wall), wall, 0.0)
    u = np.einsum("ij,ij->i", rel, ant[kji[:, 0]])
    body = u >= wall[kji[:, 0]] + o.body_min_depth_mm
    # near the midline only: the sacral alae, an iliac wing or a rib head on one side
    # would pull the centroid sideways
    lateral = np.abs(rel[:, 0] * ant[kji[:, 0], 1] - rel[:, 1] * ant[kji[:, 0], 0])
    mid = body & (lateral <= o.centreline_half_width_mm)
    if mid.any():
        body = mid
    if not body.any():
        return None
    cen, have = _per_slice_mean(kji[body, 0], pts[body], n)
    cen = _fill_from_nearest(cen, have)
    # slice positions along the slice normal stay exact; in-plane is smoothed
    sigma = o.centreline_smoothing_mm / float(geometry.spacing_mm[2])
    k = np.arange(n, dtype=np.float64)
    centre_k = geometry.index_to_patient(np.stack([k, np.zeros(n), np.zeros(n)], 1))
    normal = geometry.slice_normal
    inplane = cen - centre_k
    inplane -= np.outer(inplane @ normal, normal)
    if sigma > 0:
        # smoothing the slice positions too would pull the ends inwards
        inplane = ndimage.gaussian_filter1d(inplane, sigma, axis=0, mode="nearest")
    cen = centre_k + inplane
    # dense resampling (a quarter of the finest spacing) for the nearest-point search
    step = 0.25 * float(min(geometry.spacing_mm))
    seg = np.linalg.norm(np.diff(cen, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    if arc[-1] <= 0:
        return None
    # extend half a slice beyond both ends so end slices have a normal plane
    ext = float(geometry.spacing_mm[2])
    t0 = (cen[1] - cen[0]) / max(seg[0], 1e-9) if n > 1 else normal
    t1 = (cen[-1] - cen[-2]) / max(seg[-1], 1e-9) if n > 1 else normal
    cen = np.vstack([cen[0] - ext * t0, cen, cen[-1] + ext * t1])
    arc = np.concatenate([[-ext], arc, [arc[-1] + ext]])
    s = np.arange(arc[0], arc[-1] + step / 2, step)
    dense = np.stack([np.interp(s, arc, cen[:, d]) for d in range(3)], axis=1)
    tan = np.gradient(dense, axis=0)
    tan /= np.linalg.norm(tan, axis=1, keepdims=True)
    return Centreline(dense, s, tan), ant


def _caudal_seeds(signed: NDArray[np.float64], segment: NDArray[np.int64],
                  seg_len: NDArray[np.float64], anterior_mm: NDArray[np.float64],
                  line: Centreline, reach: NDArray[np.float64], o: CTSegmentationOptions
                  ) -> NDArray[np.bool_]:
    """Column voxels in the caudal part of their inter-disc segment: all their bone
    (body and posterior elements) seeds that segment's vertebra.

    The arch of a vertebra leaves its body through the pedicles at the cranial half
    of the body and hangs caudally behind the disc below.  Level with the cranial
    part of a body, the inferior articular and spinous processes of the vertebra
    above touch this one's processes (at 3 mm the facet joint is barely darker than
    bone, and a watershed from the bodies alone gives them to either vertebra);
    level with the caudal part, the lamina and the root of the spinous process are
    the vertebra's own.  Seeding them keeps each arch with its body; the processes
    about the discs are still flooded.  Only bone within ``arch_seed_depth_mm``
    behind the canal centre seeds: farther back, a thoracic spinous process slopes
    down over the vertebra below, and its tip must join its own vertebra through
    the process.

    Parameters
    ----------
    signed : ndarray of shape (N, D), float64, mm
        Distance of each voxel to each disc plane, positive up the centreline's arc.
    segment : ndarray of shape (N,), int64
        Inter-disc segment of each voxel, in arc order (0 below the first plane).
    seg_len : ndarray of shape (D + 1,), float64, mm
        Length of the segments along the arc.
    anterior_mm : ndarray of shape (N,), float64, mm
        In-plane offset of each voxel from its slice's canal centre along the
        anterior direction (negative behind the canal centre).
    line : Centreline
        Body centreline (its tangent gives the patient's cranial direction, +z in
        LPS, whatever the slice order).
    reach : ndarray of shape (S,), float64, mm
        How far the body reaches in front of the canal centre per slice (NaN
        without body bone): the height of a vertebra when no segment is whole.
    o : CTSegmentationOptions

    Returns
    -------
    ndarray of shape (N,), bool
        Farther below the cranial disc than ``arch_seed_fraction`` of the height of
        the vertebra above it (whose arch hangs there; a collapsed body is not
        seeded by its neighbour's arch) and farther than ``seed_margin_mm`` from
        both discs, and at most ``arch_seed_depth_mm`` behind the canal centre,
        except in the caudal end segment when it is longer than
        ``end_height_ratio`` times the typical height (the fused sacrum).
        The partial segments at the crop's ends take the median height
        of the whole segments (``height_per_reach`` times the bodies' reach without
        one): the one with no cranial disc is seeded up to
        ``1 - arch_seed_fraction`` of that height above its caudal disc.
    """
    n_disc = signed.shape[1]
    if n_disc == 0:
        return np.zeros(len(signed), dtype=bool)
    # patient superior is +z (LPS); the arc may run either way along the slices
    up = 1.0 if float(np.mean(line.tangent[:, 2])) >= 0 else -1.0
    whole = seg_len[1:-1] if len(seg_len) > 2 else np.zeros(0)
    if len(whole):
        typical = float(np.median(whole))
    elif np.isfinite(reach).any():
        typical = o.height_per_reach * float(np.nanmedian(reach))
    else:
        return np.zeros(len(signed), dtype=bool)
    height = seg_len.astype(np.float64).copy()
    height[[0, -1]] = typical
    rows = np.arange(len(signed))
    pad = np.full((len(signed), 1), np.inf)
    # distance above the plane below (arc order) and below the plane above
    above = np.concatenate([pad, signed], axis=1)[rows, segment]
    below = -np.concatenate([signed, -pad], axis=1)[rows, segment]
    caudal_gap, cranial_gap = (above, below) if up > 0 else (below, above)
    # the arch of the vertebra above hangs in proportion to that vertebra's height
    hang = np.roll(height, -1) if up > 0 else np.roll(height, 1)
    cranial_missing = ~np.isfinite(cranial_gap)
    far = np.where(cranial_missing, caudal_gap <= (1.0 - o.arch_seed_fraction) * typical,
                   cranial_gap >= o.arch_seed_fraction * hang[segment])
    near = anterior_mm >= -o.arch_seed_depth_mm
    caudal_end = 0 if up > 0 else len(seg_len) - 1
    if seg_len[caudal_end] > o.end_height_ratio * typical:
        # a caudal end longer than a vertebra and a half holds no disc: the fused
        # sacrum below S1/S2, which curves back far behind the last closed canal ring
        # (the canal centre is held there), and over which no arch hangs
        near |= segment == caudal_end
    return np.asarray(far & (caudal_gap > o.seed_margin_mm) & (cranial_gap > o.seed_margin_mm)
                      & near, dtype=bool)


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
        Canal, thecal sac or cord mask: gives the canal's path (per slice).
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
    filtered = denoise(np.asarray(pixels, dtype=np.float64), geometry,
                       target_hu=o.noise_target_hu, max_window_mm=o.max_denoise_mm)
    hu = filtered.hu
    noise: _Noise = {"noise_hu": filtered.noise_hu, "denoise_window_mm": filtered.window_mm}
    noisy = [] if filtered.noise_after_hu <= o.noise_target_hu else [_problem(
        f"The CT's noise in soft tissue is {filtered.noise_hu:.0f} HU and "
        f"{filtered.noise_after_hu:.0f} HU after an in-plane median of "
        f"{filtered.window_mm:.1f} mm, above {o.noise_target_hu:.0f} HU: muscle may read as "
        "bone, and the vertebrae segmented from this CT are less reliable.")]
    bone: NDArray[np.bool_] = hu >= o.bone_min_hu
    if o.closing_mm > 0:
        bone = ndimage.binary_closing(bone, structure=slice_disk(o.closing_mm, geometry)) | bone
    if lesion is not None and lesion.any() and o.lytic_bridge_mm > 0:
        wide = ndimage.binary_closing(bone, structure=slice_disk(o.lytic_bridge_mm, geometry))
        bone = bone | (wide & lesion)
    canal = _choose_canal(bone, hu, geometry, canal_hint, o)
    if lesion is not None and lesion.any():
        # on slices without a canal, tumour that replaced bone closes the ring (a
        # lytic half body opens the canal's hole into the soft tissue); elsewhere
        # the lesion stays out of it (epidural disease is in the canal)
        missing = ~canal.any(axis=(1, 2)) & lesion.any(axis=(1, 2))
        if missing.any():
            closed = _choose_canal(bone | lesion, hu, geometry, canal_hint, o)
            canal[missing] = closed[missing]
    if not canal.any():
        return CTSegmentation((), None, (*noisy, _problem(
            "No vertebral ring encloses a canal on the CT: the vertebrae were not "
            "segmented.")), **noise)
    # the holes passed over by the chain join the canal that is reported, not the one
    # that steers the centreline and the seeds (a ring closed by the thin top of a
    # tilted body has its bone centroid level with the hole, not in front of it)
    column, canal_all, core, canal_xy, dx, dy = _column(bone, canal, hu, geometry, o)
    if o.vessel_min_radius_mm > 0:
        # a contrast-filled aorta or cava against a body is not its marrow
        column = column & ~vessel_lumen(hu, bone, column, lesion,
                                         np.hypot(dx, dy),
                                         geometry, o)
    found = _body_centreline(column, canal, canal_xy, geometry, o)
    if found is None:
        return CTSegmentation((), canal_all, (*noisy, _problem(
            "No vertebral body anterior to the canal on the CT.")), **noise)
    line, ant = found
    # the foramina transversaria are soft tissue beside the canal, not marrow: the
    # hole filling gave them to the column
    foramina = transverse_foramina(column, column & bone, canal_all, hu, lesion, dx, dy, ant,
                                   geometry, o)
    column = column & ~foramina
    kji = np.argwhere(column)
    pts = geometry.index_to_patient(kji)
    # body bone (anterior of the canal's anterior wall) seeds its segment
    rel = pts[:, :2] - canal_xy[kji[:, 0]]
    u = np.einsum("ij,ij->i", rel, ant[kji[:, 0]])
    ck = np.argwhere(canal)
    crel = geometry.index_to_patient(ck)[:, :2] - canal_xy[ck[:, 0]]
    wall = np.full(canal.shape[0], -np.inf)
    np.maximum.at(wall, ck[:, 0], np.einsum("ij,ij->i", crel, ant[ck[:, 0]]))
    wall = np.where(np.isfinite(wall), wall, 0.0)
    body = u >= wall[kji[:, 0]] + o.body_min_depth_mm
    # how far the bodies reach in front of the canal centre, near the midline
    lateral = np.abs(rel[:, 0] * ant[kji[:, 0], 1] - rel[:, 1] * ant[kji[:, 0], 0])
    mid = body & (lateral <= o.body_reach_half_width_mm)
    reach = np.full(column.shape[0], np.nan)
    if mid.any():
        np.fmax.at(reach, kji[mid, 0], u[mid])
    discs = disc_planes(hu, line, ant, reach, geometry, o)
    if o.marrow_disc_margin_mm > 0:
        # marrow enclosed by the slices above and below once these are filled
        extra = enclosed_marrow(column, canal_all | core | foramina, geometry, discs.points,
                                 discs.normals, o.marrow_disc_margin_mm)
        if extra.any():
            column = column | extra
            kji = np.argwhere(column)
            pts = geometry.index_to_patient(kji)
            rel = pts[:, :2] - canal_xy[kji[:, 0]]
            u = np.einsum("ij,ij->i", rel, ant[kji[:, 0]])
            body = u >= wall[kji[:, 0]] + o.body_min_depth_mm
    # signed distance of every column voxel to each disc plane
    ends = np.concatenate([[line.arc_mm[0]], discs.arc_mm, [line.arc_mm[-1]]])
    seg_len = np.diff(ends)
    signed = np.einsum("nij,ij->ni", pts[:, None, :] - discs.points[None], discs.normals)
    segment = (signed > 0).sum(axis=1)
    margin = np.abs(signed).min(axis=1) if len(discs.arc_mm) else np.full(len(pts), np.inf)
    edge = np.zeros(len(seg_len), dtype=bool)
    edge[[0, -1]] = True
    partial = seg_len >= END_VERTEBRA_SHARE * o.min_vertebra_height_mm
    keep_seg = (seg_len >= o.min_vertebra_height_mm) | (edge & partial)
    # the end segments with no vertebra of their own: beyond a disc cut by the crop
    # (the rest of that disc and at most a sliver of the next endplate), or too short
    bare = edge & ~keep_seg
    bare[[0, -1]] |= [bool(np.any(discs.end[:1] == -1)), bool(np.any(discs.end[-1:] == 1))]
    keep_seg &= ~bare
    cut_both = len(discs.end) >= 2 and int(discs.end[0]) == -1 and int(discs.end[-1]) == 1
    if not keep_seg.any() and cut_both:
        # a crop that holds one vertebra between two discs it cuts: measured between
        # their edges, not their middles, it may fall short of a whole one
        keep_seg = ~bare & partial
    if len(discs.arc_mm) and bare.any():
        # the body of the bare segments outside the bone (the disc, put into the
        # column by the hole filling) leaves the column: the end vertebra's endplate
        # rim and its arch stay, and a sliver of the next endplate no longer touches
        # it through the disc
        gone = body & bare[segment] & ~bone[tuple(kji.T)]
        column[tuple(kji[gone].T)] = False
    seed = body & (margin > o.seed_margin_mm) & keep_seg[segment]
    seed |= _caudal_seeds(signed, segment, seg_len, u, line, reach, o) & keep_seg[segment]
    if not seed.any():
        return CTSegmentation((), canal_all, (*noisy, _problem(
            "No vertebral body between the discs found on the CT.")), **noise)
    markers = np.zeros(column.shape, dtype=np.int32)
    markers[tuple(kji[seed].T)] = segment[seed] + 1
    # the pedicles join their own body on its slices: the in-plane piece of the column
    # that holds one vertebra's body seeds is that vertebra's in front of the canal
    # centre (the flood from the next body would otherwise reach its pedicles through
    # the facet joints, a blurred millimetre apart)
    pieces, n_pieces = ndimage.label(column, structure=slice_structure(1))
    if n_pieces:
        of = pieces[tuple(kji.T)]
        lo = np.full(n_pieces + 1, np.iinfo(np.int64).max)
        hi = np.full(n_pieces + 1, -1)
        np.minimum.at(lo, of[seed], segment[seed])
        np.maximum.at(hi, of[seed], segment[seed])
        own = (lo[of] == hi[of]) & (hi[of] >= 0) & (u >= 0.0) & keep_seg[np.maximum(hi[of], 0)]
        free = own & (markers[tuple(kji.T)] == 0)
        markers[tuple(kji[free].T)] = hi[of][free] + 1
    up = 1.0 if float(np.mean(line.tangent[:, 2])) >= 0 else -1.0
    sacral = sacral_segments(seg_len, up, o)
    jointed: NDArray[np.bool_] | None = None
    if o.rib_min_lateral_mm > 0:
        jointed = jointed_bone(bone, dx, dy, ant, o)
        # the sacral vertebrae have their own limit: their alae meet the ilia
        jointed[tuple(kji[np.isin(segment, sacral)].T)] = False
        column = column & ~jointed
        markers[jointed] = 0
    if o.edge_fraction > 0:
        column = column & ~partial_volume_edge(column, bone, hu, lesion, o.edge_fraction)
        markers[~column] = 0
    sig = (0.0, o.watershed_smoothing_mm / float(geometry.spacing_mm[1]),
           o.watershed_smoothing_mm / float(geometry.spacing_mm[0]))
    smooth = ndimage.gaussian_filter(hu, sig) if o.watershed_smoothing_mm > 0 else hu
    flooded = watershed(-smooth, markers=markers, mask=column)
    if len(sacral):
        lat = rel[:, 0] * ant[kji[:, 0], 1] - rel[:, 1] * ant[kji[:, 0], 0]
        wings = alae(flooded[tuple(kji.T)].astype(np.int64), lat, body, sacral, o)
        flooded[tuple(kji[wings].T)] = 0
    labs = np.unique(markers[markers > 0])
    vertebrae = tuple(Vertebra(mask=flooded == lab, known_level=None, roi_name=None, source="ct")
                      for lab in labs)
    return CTSegmentation(vertebrae, canal_all, tuple(noisy), **noise,
                          sacral=tuple(bool(np.isin(lab - 1, sacral)) for lab in labs),
                          jointed=jointed)
