"""GTV and CTV involvement of each vertebra: sectors, body laterality, epidural, paraspinal."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from contourqa.anatomy.levels import levels_in_text, name_levels
from contourqa.anatomy.spine import SpineAnatomy
from contourqa.case import Case
from contourqa.findings import Finding, Status
from contourqa.geometry import VolumeGeometry
from contourqa.sectors.envelope import adjacent_level_template
from contourqa.sectors.frame import (
    SECTOR_NAMES,
    SECTOR_SOURCE,
    SECTORS,
    VertebraFrame,
    frame_coordinates,
    slice_centroids,
)
from contourqa.sectors.options import SectorOptions
from contourqa.sectors.partition import VertebraPartition, partition_vertebra
from contourqa.sectors.parts import PART_NAMES, PART_SECTOR
from contourqa.sectors.results import SectorAnalysis, VertebraSectors
from contourqa.structures import RoleTable

__all__ = ["measure_involvement", "sectors_beyond_band"]


def _angular_extent_deg(theta: NDArray[np.float64], gap_deg: float) -> float:
    """Angle covered by a set of directions, gaps narrower than ``gap_deg`` bridged."""
    if len(theta) == 0:
        return 0.0
    t = np.sort(np.unique(np.round(np.mod(theta, 360.0), 3)))
    gaps = np.diff(np.concatenate([t, [t[0] + 360.0]]))
    empty = float(gaps[gaps > gap_deg].sum())
    return 360.0 - empty if empty > 0 else 360.0 if len(t) > 1 else 0.0


def _laterality(v: NDArray[np.float64], n_body_slices: int, body_voxels: int,
                body_half_width_mm: float, o: SectorOptions) -> str:
    if len(v) == 0:
        return "none"
    left = float(np.mean(v > 0))
    right = float(np.mean(v < 0))
    if body_voxels and len(v) / body_voxels >= o.diffuse_body_fraction:
        return "diffuse"
    if left >= o.lateral_share:
        return "left"
    if right >= o.lateral_share:
        return "right"
    if body_half_width_mm > 0 and float(np.abs(v).max()) <= \
            o.central_half_width_fraction * body_half_width_mm:
        return "central"
    return "diffuse"


def _per_sector(lab: NDArray[np.int16], m: NDArray[np.bool_] | None) -> NDArray[np.float64]:
    """Voxels of ``m`` in each sector 1-6 of the label plane ``lab``."""
    if m is None:
        return np.zeros(6)
    return np.bincount(lab[m].ravel(), minlength=7)[1:7].astype(float)


def sectors_beyond_band(lab: NDArray[np.int16], gtv: NDArray[np.bool_], sectors: list[int],
                    geometry: VolumeGeometry, band_mm: float, *, min_cc: float = 0.0
                    ) -> dict[int, bool]:
    """Whether the GTV reaches into each of ``sectors`` of the label plane ``lab`` farther
    than ``band_mm`` (in-plane, at least 1.5 pixels) from the bone of the other sectors,
    with at least ``min_cc`` there (and at least one voxel).

    The partition's boundaries are found to about a pixel: GTV only within that band
    of another sector is a sliver along the boundary, not involvement; nor are a few
    voxels past the band (a boundary one pixel off along its whole length leaves
    them).  When the GTV
    reaches beyond the band in none of ``sectors`` (a small lesion astride a
    boundary), all of them count; ``band_mm`` 0 counts every sector.

    Parameters
    ----------
    lab : ndarray of shape (S, R, C), int
        One vertebra's sector labels (1-6, 0 elsewhere) on ``geometry``.
    gtv : ndarray of shape (S, R, C), bool
    sectors : list of int
        The sectors holding enough GTV.
    geometry : VolumeGeometry
    band_mm : float
    min_cc : float, optional
        Volume of GTV beyond the band from which a sector counts (0: one voxel).

    Returns
    -------
    dict of int to bool
        For each of ``sectors``, whether it counts as involved.
    """
    px = float(min(geometry.spacing_mm[0], geometry.spacing_mm[1]))
    band = max(band_mm, 1.5 * px)
    vcc = float(np.prod(geometry.spacing_mm)) / 1000.0
    inside = gtv & (lab > 0)
    out = {s: True for s in sectors}
    if band_mm <= 0 or not inside.any():
        return out
    idx = np.argwhere(inside)
    pad = int(np.ceil(band / px)) + 1
    lo = np.maximum(idx.min(axis=0) - np.array([0, pad, pad]), 0)
    hi = np.minimum(idx.max(axis=0) + 1 + np.array([0, pad, pad]), np.asarray(lab.shape))
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    lb, gb = lab[box], gtv[box]
    # in-plane distances: slices far apart along z
    sampling = (1e6, float(geometry.spacing_mm[1]), float(geometry.spacing_mm[0]))
    for s in sectors:
        other = (lb > 0) & (lb != s)
        if not other.any():
            continue
        dist = ndimage.distance_transform_edt(~other, sampling=sampling)
        deep = np.count_nonzero(gb & (lb == s) & (dist > band))
        out[s] = bool(deep > 0 and deep * vcc >= min_cc)
    return out if any(out.values()) else {s: True for s in sectors}


def _gtv_parts(parts: NDArray[np.integer], gtv: NDArray[np.bool_] | None,
               gtv_sectors: tuple[int, ...], vcc: float, min_cc: float) -> tuple[str, ...] | None:
    """Parts the GTV involves: those of an involved sector holding ``min_cc``, and in an
    involved sector none of whose parts does, its part holding most GTV (so the parts
    name every sector and no other)."""
    if gtv is None:
        return None
    cc = np.bincount(parts[gtv].ravel().astype(np.int64), minlength=9)[:9] * vcc
    chosen = {c for c in PART_NAMES if cc[c] >= min_cc and PART_SECTOR[c] in gtv_sectors}
    for s in gtv_sectors:
        mine = [c for c in PART_NAMES if PART_SECTOR[c] == s]
        if not any(c in chosen for c in mine):
            chosen.add(max(mine, key=lambda c: cc[c]))
    return tuple(PART_NAMES[c] for c in sorted(chosen))


def _beyond_bone(soft: NDArray[np.bool_], bone: NDArray[np.bool_], geometry: VolumeGeometry,
                 margin_mm: float) -> NDArray[np.bool_]:
    """The voxels of ``soft`` farther than ``margin_mm``, and than one pixel, in-plane
    from ``bone`` on their slice (all of them on a slice without bone): a contour's
    rasterisation rim is a voxel wide whatever the pixel size."""
    out = soft.copy()
    if margin_mm <= 0:
        return out
    sampling = (float(geometry.spacing_mm[1]), float(geometry.spacing_mm[0]))
    limit = max(margin_mm, *sampling)
    for k in np.nonzero(soft.any(axis=(1, 2)))[0]:
        if bone[k].any():
            dist = ndimage.distance_transform_edt(~bone[k], sampling=sampling)
            out[k] &= dist > limit
    return out


def _fill_canal_gaps(canal: NDArray[np.bool_], geometry: VolumeGeometry, gap_mm: float
                     ) -> NDArray[np.bool_]:
    """Slices without canal between two slices with one (discs) take the nearer one's,
    across gaps up to ``gap_mm``."""
    has = canal.any(axis=(1, 2))
    ks = np.nonzero(has)[0]
    if len(ks) < 2:
        return canal
    out = canal.copy()
    dz = float(geometry.spacing_mm[2])
    for a, b in zip(ks[:-1], ks[1:], strict=True):
        if b - a <= 1 or (b - a) * dz > gap_mm + 1e-6:
            continue
        for k in range(a + 1, b):
            out[k] = canal[a] if k - a <= b - k else canal[b]
    return out


def _partitions(anatomy: SpineAnatomy, gtv: NDArray[np.bool_] | None, geometry: VolumeGeometry,
                o: SectorOptions) -> list[VertebraPartition | None]:
    """Every vertebra's partition; vertebrae whose GTV still lies outside their outline
    and canal are partitioned again with their neighbours' outlines (lytic defects
    through the whole vertebra)."""
    parts = [partition_vertebra(v.mask, anatomy.canal, geometry, options=o, lesion=gtv)
             for v in anatomy.vertebrae]
    if gtv is None or not gtv.any() or not o.partition.envelope_use_adjacent_levels:
        return parts
    covered = np.zeros(geometry.shape, dtype=bool)
    for v, p in zip(anatomy.vertebrae, parts, strict=True):
        covered |= v.mask
        if p is not None:
            covered |= p.restored | p.canal
    covered |= anatomy.canal
    out = list(parts)
    for i, (vert, p) in enumerate(zip(anatomy.vertebrae, parts, strict=True)):
        if p is None:
            continue
        on: NDArray[np.bool_] = np.asarray(vert.mask.any(axis=(1, 2)), dtype=bool)
        left = gtv & ~covered & on[:, None, None]
        if np.count_nonzero(left) * geometry.voxel_volume_cc < o.min_paraspinal_cc:
            continue
        templates = []
        for j in (i - 1, i + 1):
            q = parts[j] if 0 <= j < len(parts) else None
            if q is None:
                continue
            t_box = adjacent_level_template(vert.mask[p.coords.box], p.coords,
                                            anatomy.vertebrae[j].mask[q.coords.box], q.coords)
            t = np.zeros(geometry.shape, dtype=bool)
            t[p.coords.box] = t_box
            templates.append(t)
        if templates:
            out[i] = partition_vertebra(vert.mask, anatomy.canal, geometry, options=o,
                                        lesion=gtv, templates=templates)
    return out


def measure_involvement(case: Case, roles: RoleTable, anatomy: SpineAnatomy,
                 gtv: NDArray[np.bool_] | None, ctv: NDArray[np.bool_] | None,
                 geometry: VolumeGeometry, start: tuple[int, int, int], options: SectorOptions,
                 problems: list[Finding]) -> SectorAnalysis:
    o = options
    vcc = geometry.voxel_volume_cc
    n_v = len(anatomy.vertebrae)
    labels = np.zeros(geometry.shape, dtype=np.int16)
    part_labels = np.zeros(geometry.shape, dtype=np.int16)
    owner_bone = np.full(geometry.shape, -1, dtype=np.int16)
    own_bone = np.zeros(geometry.shape, dtype=bool)
    frames: list[VertebraFrame | None] = []
    partitions = _partitions(anatomy, gtv, geometry, o)
    bony_canal = anatomy.canal.copy()
    for i, (vert, res) in enumerate(zip(anatomy.vertebrae, partitions, strict=True)):
        own_bone |= vert.mask
        if res is None:
            frames.append(None)
            problems.append(Finding(
                code="sectors.canal_not_found", status=Status.NOT_EVALUATED,
                structure=vert.roi_name,
                message=f"No spinal canal near vertebra {vert.known_level or vert.roi_name or i}:"
                        " its sectors are not evaluated.", source=SECTOR_SOURCE))
            continue
        frames.append(res.frame)
        free = (res.parts > 0) & (owner_bone < 0)
        labels[free] = 10 * (i + 1) + res.sectors[free]
        part_labels[free] = 10 * (i + 1) + res.parts[free]
        owner_bone[free] = i
        bony_canal |= res.canal
    bone = owner_bone >= 0
    # slice owner: the vertebra with most bone on the slice (nearest slice otherwise)
    counts = np.stack([np.count_nonzero(owner_bone == i, axis=(1, 2)) for i in range(n_v)],
                      axis=1) if n_v else np.zeros((geometry.shape[0], 0), int)
    has = counts.sum(axis=1) > 0
    slice_owner = np.full(geometry.shape[0], -1)
    if has.any():
        have = np.nonzero(has)[0]
        near = have[np.abs(np.arange(len(has))[:, None] - have[None, :]).argmin(axis=1)]
        slice_owner = counts[near].argmax(axis=1)
    owner = np.where(bone, owner_bone, slice_owner[:, None, None].astype(np.int16))
    # the epidural space is bounded by bone: the vertebrae's bony canals (discs
    # bridged), with the canal ROIs or CT canal as a complement, never alone
    canal = _fill_canal_gaps(bony_canal, geometry, o.partition.bony_canal_gap_fill_mm) & ~bone
    centres, _ = slice_centroids(canal, geometry)
    paraspinal = _beyond_bone(gtv & ~bone & ~canal, bone, geometry,
                              o.paraspinal_margin_mm) if gtv is not None else None

    # level names
    gtv_bone_per_v = np.zeros(n_v)
    if gtv is not None:
        gtv_bone_per_v = np.bincount(owner_bone[gtv & bone], minlength=n_v)[:n_v].astype(float)
    treated = int(np.argmax(gtv_bone_per_v)) if gtv_bone_per_v.sum() > 0 else None
    texts = [case.plan.label if case.plan else None, *(case.plan.target_names if case.plan else ()),
             *(a.roi_name for a in roles if a.role.is_target)]
    levels, sources = name_levels([v.known_level for v in anatomy.vertebrae], treated=treated,
                                  user_level=o.level, text_levels=levels_in_text(texts))
    if gtv is not None and gtv.any() and gtv_bone_per_v.sum() * vcc < o.min_involved_cc \
            and not (gtv & canal).any():
        problems.append(Finding(
            code="sectors.gtv_outside_vertebrae", status=Status.NOT_EVALUATED,
            message="The GTV does not involve any vertebra found (no bone, no canal): its "
                    "ISRC sectors are not evaluated. Check the GTV and the vertebra contours.",
            value=round(float(gtv_bone_per_v.sum() * vcc), 4), unit="cc", source=SECTOR_SOURCE))

    entries: list[VertebraSectors] = []
    for i, vert in enumerate(anatomy.vertebrae):
        vframe = frames[i]
        if vframe is None:
            continue
        frame: VertebraFrame = vframe
        lab = np.where(owner_bone == i, labels - 10 * (i + 1), 0)
        sector_vox = np.bincount(lab.ravel(), minlength=7)[1:7]
        a = np.array(frame.anterior[:2])

        g_vox = _per_sector(lab, gtv)
        c_vox = _per_sector(lab, ctv)
        in_v = owner == i
        epi = (gtv & canal & in_v) if gtv is not None else None
        para = (paraspinal & in_v) if paraspinal is not None else None
        epi_cc = float(np.count_nonzero(epi)) * vcc if epi is not None else 0.0
        para_cc = float(np.count_nonzero(para)) * vcc if para is not None else 0.0
        ctv_epi_cc = float(np.count_nonzero(ctv & canal & in_v)) * vcc if ctv is not None else 0.0
        touched = max(g_vox.sum() * vcc, epi_cc, para_cc, c_vox.sum() * vcc)
        if touched < o.min_involved_cc:
            continue
        g_cc = g_vox * vcc
        held = [int(s) for s, v in zip(SECTORS, g_cc, strict=True) if v >= o.min_involved_cc]
        deep = sectors_beyond_band(lab, gtv, held, geometry, o.sector_boundary_band_mm,
                                   min_cc=o.sector_boundary_min_cc) \
            if gtv is not None and len(held) > 1 else {s: True for s in held}
        gtv_sectors = tuple(s for s in held if deep[s])
        sliver = [s for s in held if not deep[s]]
        if sliver:
            problems.append(Finding(
                code="sectors.boundary_sliver", status=Status.PASS,
                structure=vert.roi_name,
                message=f"GTV in sector(s) {', '.join(f'{s} ({SECTOR_NAMES[s]})' for s in sliver)}"
                        f" of {levels[i] or f'vertebra {i}'} "
                        f"({', '.join(f'{g_cc[s - 1]:.3f}' for s in sliver)} cc) lies within "
                        f"{o.sector_boundary_band_mm:g} mm of the other sectors' bone (less "
                        f"than {o.sector_boundary_min_cc:g} cc beyond it): a "
                        "sliver along the partition's boundary, not counted as involvement. "
                        "Check the GTV there if it is meant to reach that sector.",
                value=round(float(sum(g_cc[s - 1] for s in sliver)), 4), unit="cc",
                source=SECTOR_SOURCE))
        gtv_parts = _gtv_parts(np.where(owner_bone == i, part_labels - 10 * (i + 1), 0), gtv,
                               gtv_sectors, vcc, o.min_involved_cc)
        # epidural extent about the canal centre, in the vertebra frame
        extent = 0.0
        if epi is not None and epi_cc >= o.min_epidural_cc:
            eidx = np.argwhere(epi)
            _, _, th = frame_coordinates(geometry.index_to_patient(eidx)[:, :2],
                                          centres[eidx[:, 0]], a)
            extent = _angular_extent_deg(th, o.epidural_gap_deg)
        # body laterality
        laterality = "none"
        if 1 in gtv_sectors and gtv is not None:
            body_m = lab == 1
            gb = np.argwhere(gtv & body_m)
            bidx = np.argwhere(body_m)
            _, v_, _ = frame_coordinates(geometry.index_to_patient(gb)[:, :2],
                                           centres[gb[:, 0]], a)
            on_slices = np.isin(bidx[:, 0], np.unique(gb[:, 0]))
            _, vb_, _ = frame_coordinates(geometry.index_to_patient(bidx[on_slices])[:, :2],
                                           centres[bidx[on_slices][:, 0]], a)
            half_w = float(np.abs(vb_).max()) if len(vb_) else 0.0
            laterality = _laterality(v_, 0, int(on_slices.sum()), half_w, o)
        c_pct = np.where(sector_vox > 0, 100.0 * c_vox / np.maximum(sector_vox, 1), 0.0)
        entries.append(VertebraSectors(
            index=i, level=levels[i], level_source=sources[i],
            vertebra_source=f"roi:{vert.roi_name}" if vert.roi_name else vert.source,
            frame=frame,
            sector_volume_cc=tuple(float(v) for v in sector_vox * vcc),
            gtv_sector_cc=tuple(float(v) for v in g_cc),
            gtv_sectors=gtv_sectors,
            gtv_parts=gtv_parts,
            body_laterality=laterality,
            epidural=epi_cc >= o.min_epidural_cc, epidural_cc=epi_cc,
            epidural_extent_deg=extent,
            epidural_circumferential=extent >= o.circumferential_min_deg,
            paraspinal=para_cc >= o.min_paraspinal_cc, paraspinal_cc=para_cc,
            ctv_sector_cc=tuple(float(v) for v in c_vox * vcc),
            ctv_sector_coverage_pct=tuple(float(v) for v in c_pct),
            ctv_sectors=tuple(int(s) for s, p in zip(SECTORS, c_pct, strict=True)
                              if p >= o.ctv_covered_min_pct),
            ctv_epidural_cc=ctv_epi_cc))
    return SectorAnalysis(vertebrae=tuple(entries), findings=tuple(problems), options=o,
                          canal_source=anatomy.canal_source, geometry=geometry,
                          crop_start_kji=start, labels=labels, gtv=gtv, ctv=ctv,
                          canal=canal, cord=anatomy.cord, frames=tuple(frames),
                          part_labels=part_labels,
                          partitions=tuple(partitions))
