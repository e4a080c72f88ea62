"""Target contouring rules: upfront ISRC consensus (Cox et al. 2012), post-operative
consensus (Redmond et al. 2017), CTV-to-PTV and cord PRV margins.

Each rule is one function ``check(ctx, params) -> list[Finding]`` registered in an
explicit list below (:data:`UPFRONT_RULES`, :data:`MARGIN_RULES`,
:data:`POSTOP_RULES`) with its code, name, citation and severity; thresholds come
from ``contourqa/rules/data/{upfront,margins,postop}.toml``.  The sector rules read
the ISRC sector map of :func:`contourqa.sectors.analyse_sectors`; the volume rules
use voxel-centre masks on the CT grid (or on a grid built from the contours when the
case has no CT); the margin rules use :func:`contourqa.margins.surface_distances`.

A rule that cannot run (no CTV, no sectors, no CT) says so with not_evaluated and
the reason, never pass.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from contourqa.findings import Finding, Status
from contourqa.io.rtstruct import ROI
from contourqa.margins import MarginStats, surface_distances
from contourqa.rules.context import RuleContext
from contourqa.rules.model import Mode, Rule
from contourqa.sectors import SECTOR_NAMES, SectorAnalysis, VertebraSectors, analyse_sectors
from contourqa.structures import Role, RoleTable

__all__ = ["MARGIN_RULES", "POSTOP_RULES", "UPFRONT_RULES", "expected_ctv_sectors"]

_BOTH = frozenset({Mode.UPFRONT, Mode.POSTOP})
_UPFRONT = frozenset({Mode.UPFRONT})
_POSTOP = frozenset({Mode.POSTOP})


def _f(code: str, status: Status, message: str, params: Mapping[str, Any], **kw: Any) -> Finding:
    return Finding(code=code, status=status, message=message,
                   source=str(params.get("source", "")) or None, **kw)


def _ne(code: str, reason: str, params: Mapping[str, Any], **kw: Any) -> list[Finding]:
    return [_f(code, Status.NOT_EVALUATED, reason, params, **kw)]


def _lvl(v: VertebraSectors) -> str:
    return v.level or f"vertebra #{v.index}"


def _sectors_text(sectors: Iterable[int]) -> str:
    return "{" + ",".join(str(s) for s in sorted(sectors)) + "}"


def _sector_problem(ctx: RuleContext) -> str | None:
    """Why the sector rules cannot run, or None."""
    sec = ctx.sectors
    if sec is None:
        return "no ISRC sector analysis for this case"
    if not sec.evaluated or not sec.vertebrae:
        why = "; ".join(f.message for f in sec.findings if f.status is Status.NOT_EVALUATED)
        return f"the ISRC sector analysis was not evaluated ({why or 'no vertebra analysed'})"
    return None


# --------------------------------------------------------------------------- ISRC table

def _row_matches(row: Mapping[str, Any], gtv: frozenset[int], body: str) -> bool:
    if not set(row.get("all", ())) <= gtv:
        return False
    if set(row.get("none", ())) & gtv:
        return False
    if any(not set(group) & gtv for group in row.get("any", ())):
        return False
    return not ("body" in row and body not in row["body"])


def expected_ctv_sectors(v: VertebraSectors, table: Mapping[str, Any]
                         ) -> tuple[frozenset[int], tuple[str, ...]]:
    """Bony CTV sectors the ISRC table (``upfront.toml`` ``[isrc_table]``) calls for.

    Parameters
    ----------
    v : VertebraSectors
        GTV involvement of one vertebra.
    table : mapping
        The ``isrc_table`` data (rows, and ``extra_rows`` of enabled variants).

    Returns
    -------
    sectors : frozenset of int
        The GTV's own sectors united with the CTV of every matching row.
    rows : tuple of str
        Ids of the matching rows.
    """
    gtv = frozenset(v.gtv_sectors)
    out = set(gtv)
    ids: list[str] = []
    for row in (*table.get("row", ()), *table.get("extra_rows", ())):
        if _row_matches(row, gtv, v.body_laterality):
            out |= set(row["ctv"])
            ids.append(str(row["id"]))
    return frozenset(out), tuple(dict.fromkeys(ids))


def _coverage_text(v: VertebraSectors, sectors: Iterable[int]) -> str:
    return ", ".join(f"{s} {v.ctv_sector_coverage_pct[s - 1]:.0f}%" for s in sorted(sectors))


def _encircles(v: VertebraSectors, params: Mapping[str, Any]) -> bool:
    need = [int(s) for s in params["encircling_sectors"]]
    return all(v.ctv_sector_coverage_pct[s - 1] >= float(params["min_coverage_pct"]) for s in need)


def _circumferential_justified(v: VertebraSectors) -> str | None:
    g = set(v.gtv_sectors)
    if 1 in g and 4 in g and g & {2, 3} and g & {5, 6}:
        return "the GTV involves the body, both sides and the spinous process (ISRC-C3)"
    if v.epidural_circumferential:
        return f"the epidural disease is circumferential ({v.epidural_extent_deg:.0f} deg)"
    return None


# --------------------------------------------------------------------------- upfront

def check_missing_sector(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``ctv.missing_sector``: a sector the ISRC table requires is not covered.

    Anti-pattern: GTV in the left pedicle and body, CTV = body only.  Best practice:
    CTV = body + left pedicle + left transverse process/lamina (ISRC-04).
    """
    code = "ctv.missing_sector"
    why = _sector_problem(ctx)
    if why:
        return _ne(code, f"Not evaluated: {why}.", params)
    assert ctx.sectors is not None
    table = ctx.data("upfront", "isrc_table")
    limit = float(params["min_coverage_pct"])
    out = []
    for v in ctx.sectors.vertebrae:
        if not v.gtv_sectors:
            continue
        need, rows = expected_ctv_sectors(v, table)
        missing = [s for s in sorted(need) if v.ctv_sector_coverage_pct[s - 1] < limit]
        detail = (f"{_lvl(v)}: GTV in {_sectors_text(v.gtv_sectors)} (body {v.body_laterality}) "
                  f"-> ISRC {', '.join(rows) or 'GTV sectors'} require {_sectors_text(need)}; "
                  f"CTV coverage {_coverage_text(v, need)}")
        if missing:
            names = ", ".join(f"{s} ({SECTOR_NAMES[s]})" for s in missing)
            out.append(_f(code, Status.FAIL, f"{detail}. Not covered (< {limit:g}%): {names}.",
                          params, value=float(min(v.ctv_sector_coverage_pct[s - 1]
                                                  for s in missing)), limit=limit, unit="%"))
        else:
            out.append(_f(code, Status.PASS, f"{detail}.", params, limit=limit, unit="%"))
    return out or _ne(code, "Not evaluated: the GTV involves no bone sector of an analysed "
                      "vertebra (no ISRC row applies).", params)


def check_unjustified_sector(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``ctv.unjustified_sector``: the CTV covers a sector the ISRC table does not call for.

    A warning, not a failure: the physician may have seen abnormal marrow signal on MRI
    that the tool cannot see (ISRC-C1).  Vertebrae whose CTV encircles the canal are
    reported by ``ctv.circumferential`` instead.
    """
    code = "ctv.unjustified_sector"
    why = _sector_problem(ctx)
    if why:
        return _ne(code, f"Not evaluated: {why}.", params)
    assert ctx.sectors is not None
    table = ctx.data("upfront", "isrc_table")
    circ = ctx.params(CIRCUMFERENTIAL)
    limit = float(params["min_coverage_pct"])
    out = []
    for v in ctx.sectors.vertebrae:
        if not v.gtv_sectors:
            continue
        need, _ = expected_ctv_sectors(v, table)
        if _encircles(v, circ):
            out.append(_f(code, Status.PASS, f"{_lvl(v)}: the CTV encircles the canal; judged by "
                          "ctv.circumferential.", params))
            continue
        extra = [s for s in range(1, 7) if s not in need
                 and v.ctv_sector_coverage_pct[s - 1] >= limit]
        if extra:
            out.append(_f(code, Status.WARN, (
                f"{_lvl(v)}: the CTV covers sector(s) {_sectors_text(extra)} "
                f"({_coverage_text(v, extra)}) that the ISRC table does not call for "
                f"(expected {_sectors_text(need)}). Justified only by abnormal marrow signal "
                "the tool cannot see: confirm on MRI."), params,
                value=float(max(v.ctv_sector_coverage_pct[s - 1] for s in extra)), limit=limit,
                unit="%"))
        else:
            out.append(_f(code, Status.PASS, f"{_lvl(v)}: no CTV sector beyond "
                          f"{_sectors_text(need)}.", params))
    return out or _ne(code, "Not evaluated: the GTV involves no bone sector.", params)


def check_circumferential(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``ctv.circumferential``: a CTV encircling the canal without ISRC-C3 justification."""
    code = "ctv.circumferential"
    why = _sector_problem(ctx)
    if why:
        return _ne(code, f"Not evaluated: {why}.", params)
    assert ctx.sectors is not None
    out = []
    for v in ctx.sectors.vertebrae:
        if not _encircles(v, params):
            continue
        reason = _circumferential_justified(v)
        if reason:
            out.append(_f(code, Status.PASS, f"{_lvl(v)}: circumferential CTV; {reason}.", params))
        else:
            out.append(_f(code, Status.FAIL, (
                f"{_lvl(v)}: the CTV encircles the canal (sectors 1-6 covered: "
                f"{_coverage_text(v, range(1, 7))}) but the GTV involves only "
                f"{_sectors_text(v.gtv_sectors) if v.gtv_sectors else 'no sector'} and the "
                "epidural disease is not circumferential."), params))
    return out or [_f(code, Status.PASS, "No CTV encircles the canal.", params)]


def check_epidural_without_disease(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``ctv.epidural_without_disease``: CTV in the canal at a level without epidural GTV."""
    code = "ctv.epidural_without_disease"
    why = _sector_problem(ctx)
    if why:
        return _ne(code, f"Not evaluated: {why}.", params)
    assert ctx.sectors is not None
    limit = float(params["min_epidural_cc"])
    out = []
    for v in ctx.sectors.vertebrae:
        if v.ctv_epidural_cc >= limit and not v.epidural:
            out.append(_f(code, Status.FAIL, (
                f"{_lvl(v)}: {v.ctv_epidural_cc:.2f} cc of CTV in the spinal canal but the GTV "
                "has no epidural component at this level."), params,
                value=round(v.ctv_epidural_cc, 3), limit=limit, unit="cc"))
    return out or [_f(code, Status.PASS, "No CTV in the canal without epidural GTV "
                      f"(tolerance {limit:g} cc).", params, limit=limit, unit="cc")]


def _outside(ctx: RuleContext, inner: ROI, outer: ROI, tolerance_mm: float
             ) -> tuple[float, float, NDArray[np.bool_]]:
    """(cc of ``inner`` outside ``outer`` beyond ``tolerance_mm``, % of ``inner``, mask)."""
    a = ctx.mask(inner)
    far = a & ~ctx.mask(outer)
    if far.any():
        far &= ctx.distance_mm(outer) > tolerance_mm
    n_in = int(a.sum())
    cc = float(far.sum()) * ctx.voxel_cc
    return cc, (100.0 * float(far.sum()) / n_in if n_in else 0.0), far


def _gtv_rois(ctx: RuleContext) -> tuple[list[ROI], list[ROI]]:
    """(residual / intact GTVs, pre-operative GTVs), by the post-operative name pattern."""
    pat = re.compile(str(ctx.params(PREOP_EXTENT)["preop_name_pattern"]), re.IGNORECASE)
    gtvs = ctx.rois(Role.GTV)
    named = [r for r in (ctx.case.structure_set.rois if ctx.case.structure_set else ())
             if not r.is_empty and pat.search(r.name) and "gtv" in r.name.lower()]
    pre_numbers = {r.number for r in named}
    return [r for r in gtvs if r.number not in pre_numbers], named


def _outside_findings(ctx: RuleContext, code: str, inner: Sequence[ROI], outer: ROI,
                      params: Mapping[str, Any], *, what: str, note: str | None) -> list[Finding]:
    """One finding per ``inner`` ROI: its volume more than ``tolerance_mm`` outside
    ``outer`` fails from ``min_outside_cc``."""
    tol, limit = float(params["tolerance_mm"]), float(params["min_outside_cc"])
    out = []
    for roi in inner:
        cc, pct, _ = _outside(ctx, roi, outer, tol)
        msg = (f"{cc:.3f} cc ({pct:.1f}%) of {what}{roi.name} lies more than {tol:g} mm "
               f"outside {outer.name}" + (f" ({note})" if note else "") + ".")
        out.append(_f(code, Status.FAIL if cc >= limit else Status.PASS, msg, params,
                      structure=roi.name, value=round(cc, 4), limit=limit, unit="cc"))
    return out


def check_gtv_not_covered(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``ctv.gtv_not_covered``: GTV volume outside the CTV (beyond a voxel tolerance)."""
    code = "ctv.gtv_not_covered"
    ctv, note = ctx.roi(Role.CTV)
    gtvs, _ = _gtv_rois(ctx)
    if ctv is None:
        return _ne(code, f"Not evaluated: {note}.", params)
    if not gtvs:
        return _ne(code, "Not evaluated: no non-empty GTV ROI.", params, structure=ctv.name)
    return _outside_findings(ctx, code, gtvs, ctv, params, what="", note=note)


def _canal_roi(ctx: RuleContext) -> ROI | None:
    for role in (Role.SPINAL_CANAL, Role.THECAL_SAC):
        roi, _ = ctx.roi(role)
        if roi is not None:
            return roi
    return None


def _z_extent(mask: NDArray[np.bool_], ctx: RuleContext) -> tuple[float, float] | None:
    geo, _ = ctx.grid
    assert geo is not None
    ks = np.nonzero(mask.any(axis=(1, 2)))[0]
    if ks.size == 0:
        return None
    z = geo.index_to_patient(np.array([[ks[0], 0, 0], [ks[-1], 0, 0]], dtype=float))[:, 2]
    return float(z.min()), float(z.max())


def check_cranio_caudal(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``ctv.cranio_caudal``: CTV extent in levels; post-operative: the epidural CTV
    extends at least ``postop_min_epidural_extension_mm`` beyond the epidural disease.

    Upfront, a CTV covering bone of a level without GTV is a warning (the ISRC gives
    no cranio-caudal bony margin, KB 1c ISRC-CC, status U).
    """
    code = "ctv.cranio_caudal"
    out: list[Finding] = []
    why = _sector_problem(ctx)
    if why:
        out += _ne(code, f"CTV extent in levels not evaluated: {why}.", params)
    else:
        assert ctx.sectors is not None
        levels = [v for v in ctx.sectors.vertebrae if v.ctv_sectors]
        gtv_levels = [v for v in ctx.sectors.vertebrae if v.gtv_sectors or v.epidural
                      or v.paraspinal]
        extra = [v for v in levels if v not in gtv_levels]
        text = (f"CTV covers bone of {len(levels)} level(s) "
                f"({', '.join(_lvl(v) for v in levels) or 'none'}); GTV at "
                f"{', '.join(_lvl(v) for v in gtv_levels) or 'none'}")
        if extra and ctx.mode is Mode.UPFRONT:
            out.append(_f(code, Status.WARN, text + f". {', '.join(_lvl(v) for v in extra)} "
                          "hold(s) no GTV: the ISRC consensus contours the involved level(s) "
                          "only (no numeric cranio-caudal bony margin, KB 1c ISRC-CC, status U).",
                          params, value=float(len(levels)), unit="levels"))
        else:
            out.append(_f(code, Status.PASS, text + ".", params, value=float(len(levels)),
                          unit="levels"))
    if ctx.mode is not Mode.POSTOP:
        return out
    need = float(params["postop_min_epidural_extension_mm"])
    ctv, _ = ctx.roi(Role.CTV)
    canal = _canal_roi(ctx)
    gtvs, pre = _gtv_rois(ctx)
    if ctv is None or canal is None or not (gtvs or pre):
        missing = "CTV" if ctv is None else "spinal canal / thecal sac ROI" if canal is None \
            else "GTV"
        return out + _ne(code, f"Epidural cranio-caudal extension not evaluated: no {missing}.",
                         params)
    # the canal minus the vertebrae, as in the sector analysis: a bony GTV (or CTV)
    # abutting the canal shares a few boundary voxels with it, which are not epidural
    c = ctx.mask(canal).copy()
    for v in ctx.rois(Role.VERTEBRA):
        c &= ~ctx.mask(v)
    disease = np.zeros_like(c)
    for r in (*gtvs, *pre):
        disease |= ctx.mask(r) & c
    dz = _z_extent(disease, ctx)
    cz = _z_extent(ctx.mask(ctv) & c, ctx)
    if dz is None:
        return out + [_f(code, Status.PASS, "No epidural disease (GTV or pre-operative GTV in "
                         "the canal): no epidural cranio-caudal extension required.", params)]
    if cz is None:
        return out + [_f(code, Status.FAIL, f"Epidural disease at z {dz[0]:.1f}..{dz[1]:.1f} mm "
                         f"but {ctv.name} has no part in the canal.", params, structure=ctv.name,
                         value=0.0, limit=need, unit="mm")]
    geo, _ = ctx.grid
    assert geo is not None
    tol = float(params["extension_tolerance_fraction"]) * float(geo.spacing_mm[2])
    sup, inf = cz[1] - dz[1], dz[0] - cz[0]
    worst = min(sup, inf)
    ok = worst >= need - tol
    return out + [_f(code, Status.PASS if ok else Status.FAIL, (
        f"Epidural CTV extends {sup:.1f} mm superior and {inf:.1f} mm inferior of the epidural "
        f"disease (required {need:g} mm, tolerance {tol:.2f} mm: half a slice)."), params,
        structure=ctv.name, value=round(worst, 2), limit=need, unit="mm")]


# --------------------------------------------------------------------------- PTV and PRV

def _cord_avoidance(ctx: RuleContext) -> ROI | None:
    prv, _ = ctx.roi(Role.CORD_PRV)
    if prv is not None:
        return prv
    cord, _ = ctx.roi(Role.SPINAL_CORD)
    return cord


def _cutback(ctx: RuleContext, ctv: ROI, ptv: ROI, zone_mm: float, tol_mm: float
             ) -> tuple[float, float, ROI | None]:
    """(cc of CTV outside the PTV within ``zone_mm`` of the cord avoidance structure,
    cc outside the PTV elsewhere (beyond ``tol_mm``), that structure)."""
    key = ("cutback", ctv.number, ptv.number, zone_mm, tol_mm)
    if key not in ctx.memo:
        _, _, far = _outside(ctx, ctv, ptv, tol_mm)
        avoid = _cord_avoidance(ctx)
        if avoid is None:
            ctx.memo[key] = (0.0, float(far.sum()) * ctx.voxel_cc, None)
        else:
            out_all = ctx.mask(ctv) & ~ctx.mask(ptv)
            near = ctx.distance_mm(avoid) <= zone_mm if out_all.any() else out_all
            ctx.memo[key] = (float((out_all & near).sum()) * ctx.voxel_cc,
                             float((far & ~near).sum()) * ctx.voxel_cc, avoid)
    return ctx.memo[key]


def check_ptv_covers_ctv(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``ptv.ctv_not_covered``: CTV outside the PTV other than the cut-back at the cord."""
    code = "ptv.ctv_not_covered"
    ctv, n1 = ctx.roi(Role.CTV)
    ptv, n2 = ctx.roi(Role.PTV)
    if ctv is None or ptv is None:
        return _ne(code, f"Not evaluated: {n1 or n2}.", params)
    limit = float(params["min_uncovered_cc"])
    cut, cc, avoid = _cutback(ctx, ctv, ptv, float(params["cutback_zone_mm"]),
                              float(params["tolerance_mm"]))
    where = f" (cut-back of {cut:.3f} cc within {params['cutback_zone_mm']:g} mm of " \
            f"{avoid.name} reported by ptv.cord_cutback)" if avoid is not None else ""
    notes = "; ".join(n for n in (n1, n2) if n)
    return [_f(code, Status.FAIL if cc >= limit else Status.PASS,
               f"{cc:.3f} cc of {ctv.name} lies outside {ptv.name} away from the cord{where}"
               + (f"; {notes}" if notes else "") + ".", params, structure=ptv.name,
               value=round(cc, 4), limit=limit, unit="cc")]


def check_cord_cutback(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``ptv.cord_cutback``: the PTV cut back at the cord (reported, not judged)."""
    code = "ptv.cord_cutback"
    ctv, n1 = ctx.roi(Role.CTV)
    ptv, n2 = ctx.roi(Role.PTV)
    if ctv is None or ptv is None:
        return _ne(code, f"Not evaluated: {n1 or n2}.", params)
    zone = float(ctx.params(PTV_COVERS)["cutback_zone_mm"])
    cut, _, avoid = _cutback(ctx, ctv, ptv, zone, float(ctx.params(PTV_COVERS)["tolerance_mm"]))
    if avoid is None:
        return _ne(code, "Not evaluated: no spinal cord or cord PRV ROI.", params,
                   structure=ptv.name)
    overlap = float((ctx.mask(ptv) & ctx.mask(avoid)).sum()) * ctx.voxel_cc
    return [_f(code, Status.PASS, (
        f"{ptv.name} is cut back at {avoid.name}: {cut:.3f} cc of {ctv.name} outside the PTV "
        f"within {zone:g} mm of it; PTV overlaps {avoid.name} by {overlap:.3f} cc."), params,
        structure=ptv.name, value=round(cut, 4), unit="cc")]


def _margin_limits(ctx: RuleContext, params: Mapping[str, Any]) -> tuple[float, Status, str]:
    key = "postop" if ctx.mode is Mode.POSTOP else "upfront"
    status = Status(str(params[f"{key}_outside_range"]))
    return float(params[f"{key}_max_mm"]), status, str(params[f"{key}_source"])


def check_ptv_margin(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``ptv.margin``: CTV-to-PTV margin (min, mean, max) from every PTV vertex, the
    cut-back at the cord excluded; non-uniform or beyond the mode's range."""
    code = "ptv.margin"
    ctv, n1 = ctx.roi(Role.CTV)
    ptv, n2 = ctx.roi(Role.PTV)
    if ctv is None or ptv is None:
        return _ne(code, f"Not evaluated: {n1 or n2}.", params)
    meas = ctx.data("margins", "measure")
    px, search = float(meas["pixel_mm"]), float(meas["search_mm"])
    cap_px = int(meas["max_plane_pixels"])
    sd = surface_distances(ptv, ctv, pixel_mm=px, search_mm=search, max_plane_pixels=cap_px)
    assert sd is not None
    keep = np.isfinite(sd.distance_mm)
    avoid = _cord_avoidance(ctx)
    excl = float(params["cutback_exclusion_mm"])
    if avoid is not None:
        to_avoid = surface_distances(ptv, avoid, pixel_mm=px, search_mm=search,
                                     max_plane_pixels=cap_px)
        assert to_avoid is not None
        keep &= to_avoid.distance_mm > excl
    ax = sd.distance_mm[keep & sd.axial]
    stats = MarginStats.of(ax)
    if stats is None:
        return _ne(code, f"Not evaluated: no {ptv.name} vertex on a plane of {ctv.name} away "
                   "from the cord.", params, structure=ptv.name)
    cap = MarginStats.of(sd.distance_mm[keep & ~sd.axial])
    margin = float(np.median(ax))
    max_mm, outside_status, src = _margin_limits(ctx, params)
    uni = float(params["uniformity_tolerance_mm"])
    dev = float(params["deviation_tolerance_mm"])
    spread = stats.p95_mm - stats.p05_mm
    off = keep & sd.axial & (np.abs(sd.distance_mm - margin) > uni / 2)
    where = sd.directions(off)
    text = (f"{ctv.name} -> {ptv.name} axial margin {stats.text()}, median {margin:.2f} mm"
            + (f"; cranio-caudal {cap.min_mm:.1f}-{cap.max_mm:.1f} mm (+/- "
               f"{sd.plane_spacing_mm / 2:.2f} mm: plane spacing)" if cap else "")
            + (f"; vertices within {excl:g} mm of {avoid.name} (cut-back) excluded"
               if avoid is not None else "") + ".")
    problems = []
    status = Status.PASS
    if spread > uni:
        status = Status.FAIL
        problems.append(f"not uniform: 5-95 % spread {spread:.1f} mm > {uni:g} mm"
                        + (f", deviating {', '.join(where)}" if where else ""))
    if margin > max_mm + dev:
        problems.append(f"beyond the {ctx.mode.value} range 0-{max_mm:g} mm ({src})")
        if status is Status.PASS:
            status = outside_status
    msg = text + (" " + "; ".join(problems).capitalize() + "." if problems else
                  f" Uniform and within 0-{max_mm:g} mm ({src}).")
    return [_f(code, status, msg, params, structure=ptv.name, value=round(margin, 2),
               limit=max_mm, unit="mm")]


def check_prv_margin(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``cord.prv_margin``: each cord PRV is a uniform expansion of the cord, by the
    margin its name states, within 0-2 mm."""
    code = "cord.prv_margin"
    cord, note = ctx.roi(Role.SPINAL_CORD)
    prvs = ctx.rois(Role.CORD_PRV)
    if not prvs:
        return _ne(code, "Not evaluated: no cord PRV ROI.", params)
    if cord is None:
        return _ne(code, f"Not evaluated: {note}.", params)
    meas = ctx.data("margins", "measure")
    uni = float(params["uniformity_tolerance_mm"])
    lo, hi = float(params["min_mm"]), float(params["max_mm"])
    key = "postop" if ctx.mode is Mode.POSTOP else "upfront"
    outside_status = Status(str(params[f"{key}_outside_range"]))
    out = []
    for prv in prvs:
        sd = surface_distances(prv, cord, pixel_mm=float(meas["pixel_mm"]),
                               search_mm=float(meas["search_mm"]),
                               max_plane_pixels=int(meas["max_plane_pixels"]))
        assert sd is not None
        ok = np.isfinite(sd.distance_mm) & sd.axial
        stats = MarginStats.of(sd.distance_mm[ok])
        if stats is None:
            out += _ne(code, f"Not evaluated: {prv.name} has no plane within {cord.name}'s "
                       "extent.", params, structure=prv.name)
            continue
        margin = float(np.median(sd.distance_mm[ok]))
        spread = stats.p95_mm - stats.p05_mm
        problems = []
        status = Status.PASS
        if spread > uni:
            status = Status.FAIL
            off = ok & (np.abs(sd.distance_mm - margin) > uni / 2)
            problems.append(f"not uniform: 5-95 % spread {spread:.1f} mm > {uni:g} mm, "
                            f"deviating {', '.join(sd.directions(off))}")
        declared = ctx.roles.of(prv.name).margin_mm
        if declared is not None and abs(declared - margin) > float(params["name_tolerance_mm"]):
            status = Status.FAIL
            problems.append(f"the name states {declared:g} mm")
        if not lo - float(params["name_tolerance_mm"]) <= margin <= hi + \
                float(params["name_tolerance_mm"]):
            problems.append(f"outside the {lo:g}-{hi:g} mm of Redmond 2017 (PO-07)")
            if status is Status.PASS:
                status = outside_status
        msg = f"{cord.name} -> {prv.name} margin {stats.text()}, median {margin:.2f} mm"
        msg += ("; " + "; ".join(problems) + "." if problems else
                ": uniform" + (f", as named ({declared:g} mm)" if declared is not None else "")
                + ".")
        out.append(_f(code, status, msg, params, structure=prv.name, value=round(margin, 2),
                      limit=declared if declared is not None else hi, unit="mm"))
    return out


# --------------------------------------------------------------------------- post-operative

def check_preop_extent(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``postop.preop_extent``: the CTV covers the pre-operative GTV (PO-02)."""
    code = "postop.preop_extent"
    ctv, note = ctx.roi(Role.CTV)
    _, pre = _gtv_rois(ctx)
    if ctv is None:
        return _ne(code, f"Not evaluated: {note}.", params)
    if not pre:
        return _ne(code, "Not evaluated: no pre-operative GTV ROI (a GTV whose name matches "
                   f"{params['preop_name_pattern']!r}); registered pre-operative images are not "
                   "used by this version.", params, structure=ctv.name)
    return _outside_findings(ctx, code, pre, ctv, params, what="the pre-operative ", note=note)


def check_hardware_in_ctv(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``postop.hardware_in_ctv``: instrumentation (hardware-density voxels) inside the
    CTV; a warning, since involved hardware may be included (PO-05)."""
    code = "postop.hardware_in_ctv"
    ctv, note = ctx.roi(Role.CTV)
    if ctv is None:
        return _ne(code, f"Not evaluated: {note}.", params)
    if ctx.case.image is None:
        return _ne(code, "Not evaluated: no CT to find hardware by density.", params,
                   structure=ctv.name)
    hu = float(ctx.data("mode", "auto")["hardware_hu"])
    geo, _ = ctx.grid
    assert geo is not None
    start = np.rint(ctx.case.image.geometry.patient_to_index(geo.origin_mm[None])[0]).astype(int)
    k, j, i = start
    s = geo.shape
    hw = ctx.case.image.pixels[k:k + s[0], j:j + s[1], i:i + s[2]] > hu
    n = int((hw & ctx.mask(ctv)).sum())
    limit = int(params["min_voxels"])
    status = Status.WARN if n >= limit else Status.PASS
    return [_f(code, status, (f"{n} voxel(s) ({n * ctx.voxel_cc:.3f} cc) above {hu:g} HU "
                              f"(instrumentation) inside {ctv.name}"
                              + (": hardware is not included in the CTV unless involved; "
                                 "confirm involvement." if status is Status.WARN else ".")),
               params, structure=ctv.name, value=float(n), limit=float(limit), unit="voxels")]


def _preop_sectors(ctx: RuleContext, pre: Sequence[ROI]) -> SectorAnalysis | None:
    """The sector analysis with the pre-operative GTV(s) as the GTV."""
    if ctx.sectors is None:
        return None
    numbers = {r.number for r in pre}
    assignments = tuple(
        dataclasses.replace(a, role=Role.GTV) if a.roi_number in numbers
        else dataclasses.replace(a, role=Role.OTHER) if a.role is Role.GTV else a
        for a in ctx.roles)
    return analyse_sectors(ctx.case, RoleTable(assignments), options=ctx.sectors.options)


def check_postop_circumferential(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``postop.circumferential``: a donut CTV needs pre-operative circumferential
    osseous or epidural involvement (PO-03)."""
    code = "postop.circumferential"
    why = _sector_problem(ctx)
    if why:
        return _ne(code, f"Not evaluated: {why}.", params)
    assert ctx.sectors is not None
    circ = ctx.params(CIRCUMFERENTIAL)
    rings = [v for v in ctx.sectors.vertebrae if _encircles(v, circ)]
    if not rings:
        return [_f(code, Status.PASS, "No CTV encircles the canal.", params)]
    _, pre = _gtv_rois(ctx)
    pre_sec = _preop_sectors(ctx, pre) if pre else None
    pre_by_level = {v.level: v for v in pre_sec.vertebrae} if pre_sec is not None else {}
    out = []
    for v in rings:
        reason = _circumferential_justified(v)
        pv = pre_by_level.get(v.level)
        if reason is None and pv is not None:
            reason = _circumferential_justified(pv)
            reason = f"pre-operatively {reason}" if reason else None
        if reason:
            out.append(_f(code, Status.PASS, f"{_lvl(v)}: circumferential CTV; {reason}.", params))
        elif pre:
            out.append(_f(code, Status.FAIL, f"{_lvl(v)}: circumferential CTV but neither the "
                          "residual nor the pre-operative GTV involves the canal circumference.",
                          params))
        else:
            out.append(_f(code, Status.WARN, f"{_lvl(v)}: circumferential CTV, not justified by "
                          "the residual GTV; no pre-operative GTV ROI to confirm pre-operative "
                          "circumferential involvement.", params))
    return out


def check_contiguous_levels(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``postop.contiguous_levels``: more than 3 contiguous vertebral bodies in the
    target is a contraindication (PO-09)."""
    code = "postop.contiguous_levels"
    why = _sector_problem(ctx)
    if why:
        return _ne(code, f"Not evaluated: {why}.", params)
    assert ctx.sectors is not None
    idx = sorted(v.index for v in ctx.sectors.vertebrae if 1 in v.ctv_sectors or 1 in v.gtv_sectors)
    run = best = 0
    prev = None
    for i in idx:
        run = run + 1 if prev is not None and i == prev + 1 else 1
        best = max(best, run)
        prev = i
    limit = int(params["max_contiguous_bodies"])
    return [_f(code, Status.FAIL if best > limit else Status.PASS,
               f"{best} contiguous vertebral bod{'y' if best == 1 else 'ies'} in the target "
               f"(contraindication above {limit}).", params, value=float(best),
               limit=float(limit), unit="levels")]


def _grade_rule(code: str, given: str | None, what: str, params: Mapping[str, Any]
                ) -> list[Finding]:
    if given is None:
        return _ne(code, f"Not evaluated: the {what} is not in the DICOM data; give it as an "
                   "option to check this contraindication.", params)
    bad = given in {str(g) for g in params["contraindicated"]}
    return [_f(code, Status.FAIL if bad else Status.PASS,
               f"{what} {given}" + (": a contraindication to post-operative SBRT." if bad
                                    else ": not a contraindication."), params)]


def check_asia(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``postop.asia``: ASIA grade A is a contraindication (PO-09)."""
    return _grade_rule("postop.asia", ctx.options.asia_grade, "ASIA grade", params)


def check_bilsky(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``postop.bilsky``: post-operative Bilsky grade 3 residual is a contraindication."""
    return _grade_rule("postop.bilsky", ctx.options.bilsky_grade,
                       "post-operative Bilsky grade", params)


def check_indication(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``postop.indication``: at least one indication (radio-resistant primary, 1-2
    levels of adjacent disease, prior overlapping radiation) when the inputs are given."""
    code = "postop.indication"
    o = ctx.options
    found, unknown = [], []
    if o.histology is None:
        unknown.append("histology")
    else:
        h = o.histology.lower()
        if any(w in h for w in params["radioresistant"]):
            found.append(f"radio-resistant histology ({o.histology})")
    if o.prior_rt_overlap is None:
        unknown.append("prior overlapping radiation")
    elif o.prior_rt_overlap:
        found.append("prior overlapping radiation")
    if _sector_problem(ctx) is None and ctx.sectors is not None:
        n = sum(1 for v in ctx.sectors.vertebrae if v.gtv_sectors or v.epidural)
        if 1 <= n <= int(params["max_adjacent_levels"]):
            found.append(f"{n} level(s) of disease")
    if found:
        return [_f(code, Status.PASS, "Indication: " + "; ".join(found) + ".", params)]
    if unknown:
        return _ne(code, f"Not evaluated: {', '.join(unknown)} not given.", params)
    return [_f(code, Status.WARN, "None of the published indications holds (radio-resistant "
               "primary, 1-2 levels, prior overlapping radiation).", params)]


# --------------------------------------------------------------------------- the lists

_COX = "Cox et al. 2012 (ISRC), knowledge base 0.2, 1b, 1c"
_REDMOND = "Redmond et al. 2017, knowledge base 0.5, 2"

MISSING_SECTOR = Rule(code="ctv.missing_sector", name="CTV misses an ISRC sector",
                      citation=f"{_COX} (bony CTV table)", severity=Status.FAIL,
                      rule_set="upfront", check=check_missing_sector, modes=_UPFRONT)
UNJUSTIFIED_SECTOR = Rule(code="ctv.unjustified_sector", name="CTV covers an uncalled-for sector",
                          citation=f"{_COX} (bony CTV table, ISRC-C1)", severity=Status.WARN,
                          rule_set="upfront", check=check_unjustified_sector, modes=_UPFRONT)
CIRCUMFERENTIAL = Rule(code="ctv.circumferential", name="Circumferential CTV without cause",
                       citation=f"{_COX} (ISRC-C3)", severity=Status.FAIL, rule_set="upfront",
                       check=check_circumferential, modes=_UPFRONT)
EPIDURAL = Rule(code="ctv.epidural_without_disease", name="Epidural CTV without epidural GTV",
                citation=f"{_COX} (ISRC-C2)", severity=Status.FAIL, rule_set="upfront",
                check=check_epidural_without_disease, modes=_UPFRONT)
GTV_COVERED = Rule(code="ctv.gtv_not_covered", name="GTV outside the CTV",
                   citation=f"{_COX} (ISRC-G1/C1); {_REDMOND} (CTV includes the GTV)",
                   severity=Status.FAIL, rule_set="upfront", check=check_gtv_not_covered,
                   modes=_BOTH)
CRANIO_CAUDAL = Rule(code="ctv.cranio_caudal", name="CTV cranio-caudal extent",
                     citation=f"{_COX} (ISRC-CC, U); {_REDMOND} (PO-04)", severity=Status.WARN,
                     rule_set="upfront", check=check_cranio_caudal, modes=_BOTH)
PTV_COVERS = Rule(code="ptv.ctv_not_covered", name="CTV outside the PTV",
                  citation=f"{_REDMOND} (PTV includes GTV and CTV); ISRC-P2 (KB 1c, U)",
                  severity=Status.FAIL, rule_set="margins", check=check_ptv_covers_ctv,
                  modes=_BOTH)
CORD_CUTBACK = Rule(code="ptv.cord_cutback", name="PTV cut back at the cord",
                    citation=f"{_REDMOND} (modified PTV at the cord)", severity=Status.WARN,
                    rule_set="margins", check=check_cord_cutback, modes=_BOTH)
PTV_MARGIN = Rule(code="ptv.margin", name="CTV-to-PTV margin",
                  citation=f"{_REDMOND} (PO-06 0-2 mm); Radiat Oncol 2016 practice 0-2 mm (KB 1c, "
                  "C); ISRC-P1 <= 3 mm as optional variant (U)", severity=Status.FAIL,
                  rule_set="margins", check=check_ptv_margin, modes=_BOTH)
PRV_MARGIN = Rule(code="cord.prv_margin", name="Cord PRV margin",
                  citation=f"{_REDMOND} (PO-07 0-2 mm); TG-263 SpinalCord_PRVxx (KB 8)",
                  severity=Status.FAIL, rule_set="margins", check=check_prv_margin, modes=_BOTH)
PREOP_EXTENT = Rule(code="postop.preop_extent", name="CTV covers the pre-operative extent",
                    citation=f"{_REDMOND} (PO-02)", severity=Status.FAIL, rule_set="postop",
                    check=check_preop_extent, modes=_POSTOP)

#: Upfront (ISRC) target rules, in report order.
UPFRONT_RULES: tuple[Rule, ...] = (MISSING_SECTOR, UNJUSTIFIED_SECTOR, CIRCUMFERENTIAL, EPIDURAL,
                                   GTV_COVERED, CRANIO_CAUDAL)
#: PTV and PRV rules (both modes).
MARGIN_RULES: tuple[Rule, ...] = (PTV_COVERS, CORD_CUTBACK, PTV_MARGIN, PRV_MARGIN)
#: Post-operative (Redmond 2017) rules.
POSTOP_RULES: tuple[Rule, ...] = (
    PREOP_EXTENT,
    Rule(code="postop.hardware_in_ctv", name="Instrumentation inside the CTV",
         citation=f"{_REDMOND} (PO-05)", severity=Status.WARN, rule_set="postop",
         check=check_hardware_in_ctv, modes=_POSTOP),
    Rule(code="postop.circumferential", name="Post-operative circumferential CTV",
         citation=f"{_REDMOND} (PO-03)", severity=Status.FAIL, rule_set="postop",
         check=check_postop_circumferential, modes=_POSTOP),
    Rule(code="postop.contiguous_levels", name="More than 3 contiguous vertebral bodies",
         citation=f"{_REDMOND} (PO-09, contraindication)", severity=Status.FAIL,
         rule_set="postop", check=check_contiguous_levels, modes=_POSTOP),
    Rule(code="postop.asia", name="ASIA grade A", citation=f"{_REDMOND} (PO-09)",
         severity=Status.FAIL, rule_set="postop", check=check_asia, modes=_POSTOP),
    Rule(code="postop.bilsky", name="Post-operative Bilsky grade 3",
         citation=f"{_REDMOND} (PO-09)", severity=Status.FAIL, rule_set="postop",
         check=check_bilsky, modes=_POSTOP),
    Rule(code="postop.indication", name="Post-operative SBRT indication",
         citation="WFNS review 0.5 (Redmond): indications", severity=Status.WARN,
         rule_set="postop", check=check_indication, modes=_POSTOP),
)
