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
from contourqa.sectors.frame import (
    _SECTORS,
    _SOURCE,
    VertebraFrame,
    _frame_coordinates,
    _slice_centroids,
)
from contourqa.sectors.options import SectorOptions
from contourqa.sectors.partition import partition_vertebra
from contourqa.sectors.results import SectorAnalysis, VertebraSectors
from contourqa.structures import RoleTable


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


def _involvement(case: Case, roles: RoleTable, anatomy: SpineAnatomy,
                 gtv: NDArray[np.bool_] | None, ctv: NDArray[np.bool_] | None,
                 geometry: VolumeGeometry, start: tuple[int, int, int], options: SectorOptions,
                 problems: list[Finding]) -> SectorAnalysis:
    o = options
    vcc = geometry.voxel_volume_cc
    n_v = len(anatomy.vertebrae)
    labels = np.zeros(geometry.shape, dtype=np.int16)
    owner_bone = np.full(geometry.shape, -1, dtype=np.int16)
    frames: list[VertebraFrame | None] = []
    for i, vert in enumerate(anatomy.vertebrae):
        res = partition_vertebra(vert.mask, anatomy.canal, geometry,
                                 options=o.for_level(vert.known_level))
        if res is None:
            frames.append(None)
            problems.append(Finding(
                code="sectors.canal_not_found", status=Status.NOT_EVALUATED,
                structure=vert.roi_name,
                message=f"No spinal canal near vertebra {vert.known_level or vert.roi_name or i}:"
                        " its sectors are not evaluated.", source=_SOURCE))
            continue
        sect, vf = res
        frames.append(vf)
        free = (sect > 0) & (owner_bone < 0)
        labels[free] = 10 * (i + 1) + sect[free]
        owner_bone[free] = i
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
    canal = anatomy.canal & ~bone
    centres, _ = _slice_centroids(anatomy.canal, geometry)
    paraspinal = _beyond_bone(gtv & ~bone & ~anatomy.canal, bone, geometry,
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
    # A level learnt only now (plan label, --level, counting) may change the arch
    # thickness: relabel that vertebra's own bone; ownership does not change.
    for i, vert in enumerate(anatomy.vertebrae):
        if frames[i] is None or o.for_level(levels[i]) == o.for_level(vert.known_level):
            continue
        res = partition_vertebra(vert.mask, anatomy.canal, geometry,
                                 options=o.for_level(levels[i]))
        if res is not None:
            mine = owner_bone == i
            labels[mine] = 10 * (i + 1) + res[0][mine]

    if gtv is not None and gtv.any() and gtv_bone_per_v.sum() * vcc < o.min_involved_cc \
            and not (gtv & canal).any():
        problems.append(Finding(
            code="sectors.gtv_outside_vertebrae", status=Status.NOT_EVALUATED,
            message="The GTV does not involve any vertebra found (no bone, no canal): its "
                    "ISRC sectors are not evaluated. Check the GTV and the vertebra contours.",
            value=round(float(gtv_bone_per_v.sum() * vcc), 4), unit="cc", source=_SOURCE))

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
        gtv_sectors = tuple(int(s) for s, v in zip(_SECTORS, g_cc, strict=True)
                            if v >= o.min_involved_cc)
        # epidural extent about the canal centre, in the vertebra frame
        extent = 0.0
        if epi is not None and epi_cc >= o.min_epidural_cc:
            eidx = np.argwhere(epi)
            _, _, th = _frame_coordinates(geometry.index_to_patient(eidx)[:, :2],
                                          centres[eidx[:, 0]], a)
            extent = _angular_extent_deg(th, o.epidural_gap_deg)
        # body laterality
        laterality = "none"
        if 1 in gtv_sectors and gtv is not None:
            body_m = lab == 1
            gb = np.argwhere(gtv & body_m)
            bidx = np.argwhere(body_m)
            _, v_, _ = _frame_coordinates(geometry.index_to_patient(gb)[:, :2],
                                           centres[gb[:, 0]], a)
            on_slices = np.isin(bidx[:, 0], np.unique(gb[:, 0]))
            _, vb_, _ = _frame_coordinates(geometry.index_to_patient(bidx[on_slices])[:, :2],
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
            body_laterality=laterality,
            epidural=epi_cc >= o.min_epidural_cc, epidural_cc=epi_cc,
            epidural_extent_deg=extent,
            epidural_circumferential=extent >= o.circumferential_min_deg,
            paraspinal=para_cc >= o.min_paraspinal_cc, paraspinal_cc=para_cc,
            ctv_sector_cc=tuple(float(v) for v in c_vox * vcc),
            ctv_sector_coverage_pct=tuple(float(v) for v in c_pct),
            ctv_sectors=tuple(int(s) for s, p in zip(_SECTORS, c_pct, strict=True)
                              if p >= o.ctv_covered_min_pct),
            ctv_epidural_cc=ctv_epi_cc))
    return SectorAnalysis(vertebrae=tuple(entries), findings=tuple(problems), options=o,
                          canal_source=anatomy.canal_source, geometry=geometry,
                          crop_start_kji=start, labels=labels, gtv=gtv, ctv=ctv,
                          canal=anatomy.canal, cord=anatomy.cord, frames=tuple(frames))
