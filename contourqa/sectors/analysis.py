"""Entry point of the sector analysis: targets, analysed grid, vertebrae and canal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from contourqa.anatomy.density import BoneDensity, DensityThresholds, gtv_bone_density
from contourqa.anatomy.spine import SpineAnatomy, Vertebra, canal_from_ring
from contourqa.case import Case
from contourqa.errors import ContourQAError
from contourqa.findings import Finding, Status
from contourqa.geometry import VolumeGeometry
from contourqa.io.rtstruct import ROI
from contourqa.masks import crop_geometry, roi_mask
from contourqa.sectors.frame import _SOURCE
from contourqa.sectors.involvement import _involvement
from contourqa.sectors.levels import verify_levels
from contourqa.sectors.options import _DEFAULT_OPTIONS, SectorOptions
from contourqa.sectors.results import SectorAnalysis
from contourqa.structures import Role, RoleTable

#: ``SectorAnalysis.labels`` holds ``10 * (column index + 1) + sector``.
_LABEL_LEVEL_STEP = 10


def _not_evaluated(code: str, message: str, options: SectorOptions,
                   extra: Sequence[Finding] = ()) -> SectorAnalysis:
    f = Finding(code=f"sectors.{code}", status=Status.NOT_EVALUATED, message=message,
                source=_SOURCE)
    return SectorAnalysis(vertebrae=(), findings=(*extra, f), options=options)


def _rois(case: Case, roles: RoleTable, role: Role) -> list[ROI]:
    if case.structure_set is None:
        return []
    by_number = {r.number: r for r in case.structure_set.rois}
    return [by_number[a.roi_number] for a in roles.by_role(role)
            if a.roi_number in by_number and not by_number[a.roi_number].is_empty]


def _grid_from_contours(rois: Sequence[ROI], pixel_mm: float) -> VolumeGeometry | None:
    """A 1 mm axial grid over the ROIs' contours, slices on their planes (no CT)."""
    pts = [c.points_mm for r in rois for c in r.closed_contours]
    if not pts:
        return None
    allp = np.concatenate(pts)
    zs = np.unique(np.round(allp[:, 2], 3))
    dz = float(np.median(np.diff(zs))) if len(zs) > 1 else 1.0
    lo = allp.min(axis=0)
    hi = allp.max(axis=0)
    n_xy = np.ceil((hi[:2] - lo[:2]) / pixel_mm).astype(int) + 3
    nz = round(float((zs[-1] - zs[0]) / dz)) + 1
    origin = np.array([lo[0] - pixel_mm, lo[1] - pixel_mm, zs[0]])
    return VolumeGeometry(shape=(nz, int(n_xy[1]), int(n_xy[0])), origin_mm=origin,
                          spacing_mm=np.array([pixel_mm, pixel_mm, dz]))


def _crop_box(rois: Sequence[ROI], geometry: VolumeGeometry, options: SectorOptions
              ) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    pts = np.concatenate([c.points_mm for r in rois for c in r.closed_contours])
    idx = geometry.patient_to_index(pts)
    sp = geometry.spacing_mm[::-1]  # (slice, row, column) mm
    margin = np.array([options.crop_margin_mm[0], options.crop_margin_mm[1],
                       options.crop_margin_mm[1]]) / sp
    lo = np.floor(idx.min(axis=0) - margin).astype(int)
    hi = np.ceil(idx.max(axis=0) + margin).astype(int) + 1
    shape = np.asarray(geometry.shape)
    lo = np.clip(lo, 0, shape - 1)
    hi = np.clip(hi, lo + 1, shape)
    return (int(lo[0]), int(lo[1]), int(lo[2])), (int(hi[0]), int(hi[1]), int(hi[2]))


def _union_mask(rois: Sequence[ROI], geometry: VolumeGeometry) -> NDArray[np.bool_] | None:
    if not rois:
        return None
    m = np.zeros(geometry.shape, dtype=bool)
    for r in rois:
        m |= roi_mask(r, geometry)
    return m


def _build_anatomy(case: Case, roles: RoleTable, geometry: VolumeGeometry,
                   start: tuple[int, int, int], options: SectorOptions
                   ) -> tuple[SpineAnatomy | None, list[Finding]]:
    problems: list[Finding] = []
    vert_assign = [a for a in roles.by_role(Role.VERTEBRA) if a.roi_number is not None]
    by_number = {r.number: r for r in case.structure_set.rois} if case.structure_set else {}
    vertebrae: list[Vertebra] = []
    for a in vert_assign:
        roi = by_number.get(a.roi_number)  # type: ignore[arg-type]
        if roi is None or roi.is_empty:
            continue
        level = a.level if a.level and "-" not in a.level else None
        if a.level and "-" in a.level:
            problems.append(Finding(
                code="sectors.vertebra_range_roi", status=Status.WARN, structure=roi.name,
                message=f"ROI {roi.name!r} covers the levels {a.level}: it is analysed as one "
                        "vertebra without a level; contour one ROI per vertebra.",
                source=_SOURCE))
        m = roi_mask(roi, geometry)
        if m.any():
            vertebrae.append(Vertebra(mask=m, known_level=level, roi_name=roi.name,
                                      source="structure_set"))
    canal_roi = _union_mask(_rois(case, roles, Role.SPINAL_CANAL), geometry)
    sac = _union_mask(_rois(case, roles, Role.THECAL_SAC), geometry)
    cord = _union_mask(_rois(case, roles, Role.SPINAL_CORD), geometry)
    canal: NDArray[np.bool_] | None = None
    canal_source = None
    if not vertebrae:
        if case.image is None:
            return None, problems
        from contourqa.anatomy.ct import segment_spine

        k0, j0, i0 = start
        s = geometry.shape
        pixels = case.image.pixels[k0:k0 + s[0], j0:j0 + s[1], i0:i0 + s[2]]
        seg = segment_spine(pixels, geometry, canal_hint=canal_roi if canal_roi is not None
                            else sac if sac is not None else cord,
                            lesion=_union_mask(_rois(case, roles, Role.GTV), geometry))
        vertebrae = list(seg.vertebrae)
        problems.extend(seg.problems)
        if seg.canal is not None and seg.canal.any():
            canal, canal_source = seg.canal, "ct"
    if not vertebrae:
        return None, problems
    if canal_roi is not None and canal_roi.any():
        names = "+".join(r.name for r in _rois(case, roles, Role.SPINAL_CANAL))
        canal, canal_source = canal_roi, f"roi:{names}"
    elif canal is None:
        bone = np.zeros(geometry.shape, dtype=bool)
        for v in vertebrae:
            bone |= v.mask
        fallback = []
        if sac is not None:
            fallback.append(("roi:" + "+".join(r.name for r in _rois(case, roles,
                                                                     Role.THECAL_SAC)), sac))
        if cord is not None:
            fallback.append(("roi:" + "+".join(r.name for r in _rois(case, roles,
                                                                     Role.SPINAL_CORD)), cord))
        canal, canal_source = canal_from_ring(bone, geometry,
                                              min_area_mm2=options.min_canal_area_mm2,
                                              fallback=fallback)
    assert canal is not None
    return SpineAnatomy(geometry=geometry,
                        vertebrae=SpineAnatomy.sort_inferior_first(vertebrae, geometry),
                        canal=canal, canal_source=canal_source, cord=cord,
                        problems=tuple(problems)), problems


def analyse_sectors(case: Case, roles: RoleTable, *,
                    options: SectorOptions = _DEFAULT_OPTIONS) -> SectorAnalysis:
    """ISRC sector involvement of the GTV (and coverage by the CTV) per vertebra.

    Parameters
    ----------
    case : Case
        Needs a structure set with a GTV and/or CTV; vertebrae come from vertebra
        ROIs, otherwise from the CT (``case.image``).
    roles : RoleTable
        Roles of the structure set's ROIs (:func:`contourqa.structures.assign_roles`).
    options : SectorOptions

    Returns
    -------
    SectorAnalysis
        Never raises for bad input: what cannot be evaluated is a ``sectors.*``
        finding with status ``not_evaluated`` (``no_structure_set``, ``no_target``,
        ``no_vertebra``, ``canal_not_found``, ``gtv_outside_vertebrae``,
        ``geometry``).  The level of each vertebra is verified against every source
        (:func:`contourqa.sectors.levels.verify_levels`: ``sectors.level_mismatch``,
        ``sectors.level_unverified``).
    """
    if case.structure_set is None:
        return _not_evaluated("no_structure_set", "No structure set: the ISRC sectors of the "
                              "GTV cannot be evaluated.", options)
    gtv_rois = _rois(case, roles, Role.GTV)
    ctv_rois = _rois(case, roles, Role.CTV)
    if not gtv_rois and not ctv_rois:
        return _not_evaluated("no_target", "No GTV or CTV ROI (by role): the ISRC sector "
                              "involvement cannot be evaluated.", options)
    full = case.image.geometry if case.image is not None else None
    if full is None:
        relevant = [*gtv_rois, *ctv_rois, *_rois(case, roles, Role.VERTEBRA)]
        if not _rois(case, roles, Role.VERTEBRA):
            return _not_evaluated("no_vertebra", "No vertebra ROI and no CT image: the "
                                  "vertebrae cannot be found, so the sectors are not "
                                  "evaluated. Contour the vertebrae (e.g. VB_T10) or include "
                                  "the planning CT.", options)
        full = _grid_from_contours(relevant, 1.0)
        assert full is not None
    try:
        start, stop = _crop_box([*gtv_rois, *ctv_rois], full, options)
        geometry = crop_geometry(full, start, stop)
        anatomy, problems = _build_anatomy(case, roles, geometry, start, options)
    except ContourQAError as exc:
        return _not_evaluated("geometry", f"The sector analysis cannot use this grid: {exc}",
                              options)
    if anatomy is None:
        return _not_evaluated(
            "no_vertebra", "No vertebra found: no vertebra ROI is contoured near the targets "
            + ("and none could be segmented from the CT." if case.image is not None
               else "and there is no CT to segment."), options, problems)
    if not anatomy.canal.any():
        return _not_evaluated(
            "canal_not_found", "The spinal canal was not found (no SpinalCanal, thecal sac or "
            "cord ROI, and no closed vertebral ring): the sector frame cannot be built.",
            options, problems)
    gtv = _union_mask(gtv_rois, geometry)
    ctv = _union_mask(ctv_rois, geometry)
    sec = _involvement(case, roles, anatomy, gtv, ctv, geometry, start, options, problems)
    return _with_density(verify_levels(case, roles, anatomy, sec, user_level=options.level),
                         case)


def _with_density(sec: SectorAnalysis, case: Case) -> SectorAnalysis:
    """Each entry with the CT density of its GTV bone (lytic, blastic, mixed)."""
    if not sec.vertebrae or sec.geometry is None or sec.labels is None:
        return sec
    image = case.image
    gtv = sec.gtv
    if gtv is None or not gtv.any():
        return sec
    if image is None or image.modality != "CT":
        why = "no CT image" if image is None else f"the image is {image.modality}, not CT"
        entries = tuple(replace(v, density=BoneDensity.unknown(why)) for v in sec.vertebrae)
        return replace(sec, vertebrae=entries)
    k0, j0, i0 = sec.crop_start_kji
    s = sec.geometry.shape
    hu = image.pixels[k0:k0 + s[0], j0:j0 + s[1], i0:i0 + s[2]]
    thresholds = DensityThresholds.builtin()
    column = sec.labels // _LABEL_LEVEL_STEP  # 1 + index in the column, 0 off bone
    entries = tuple(
        replace(v, density=gtv_bone_density(hu, column == v.index + 1, gtv, sec.geometry,
                                            thresholds=thresholds))
        for v in sec.vertebrae)
    return replace(sec, vertebrae=entries)
