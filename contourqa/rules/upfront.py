"""Upfront (intact spine) target rules: the ISRC consensus of Cox et al. 2012.

Each rule is one function ``check(ctx, params) -> list[Finding]`` registered in the
explicit list :data:`UPFRONT_RULES` with its code, name, citation and severity;
thresholds come from ``contourqa/rules/data/upfront.toml``.  The sector rules read the
ISRC sector map of :func:`contourqa.sectors.analyse_sectors`; the volume rules use
voxel-centre masks on the CT grid (or on a grid built from the contours when the case
has no CT).

A rule that cannot run (no CTV, no sectors, no CT) says so with not_evaluated and
the reason, never pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from contourqa.findings import Finding, Status
from contourqa.rules.common import (
    canal_roi,
    finding,
    level_name,
    nest,
    not_evaluated,
    outside_findings,
    sector_problem,
    sectors_text,
    target_rois,
    z_extent,
)
from contourqa.rules.context import RuleContext
from contourqa.rules.model import Mode, Rule
from contourqa.sectors import SECTOR_NAMES, VertebraSectors
from contourqa.structures import Role

__all__ = ["CIRCUMFERENTIAL", "UPFRONT_RULES", "circumferential_justified", "coverage_text",
           "encircles", "expected_ctv_sectors"]

_BOTH = frozenset({Mode.UPFRONT, Mode.POSTOP})
_UPFRONT = frozenset({Mode.UPFRONT})
_REDMOND = "Redmond et al. 2017, knowledge base 0.5, 2"


# --------------------------------------------------------------------------- ISRC table

_LAMINA_SECTOR = {"left": 3, "right": 5}


def _lamina(v: VertebraSectors, side: str) -> tuple[bool, str | None]:
    """Does the GTV involve the ``side`` lamina?  With a note when assumed.

    The lamina and the transverse process share a sector (3 left, 5 right); ISRC-07
    concerns the lamina only.  When the sector analysis labels the parts
    (``gtv_parts``) that is read; otherwise involvement of the sector is taken as
    lamina involvement, and the note says so.
    """
    if v.gtv_parts is not None:
        return f"lamina_{side}" in v.gtv_parts, None
    sector = _LAMINA_SECTOR[side]
    if sector in v.gtv_sectors:
        return True, (f"sector {sector} involvement taken as {side} lamina (the sector analysis "
                      "did not tell lamina from transverse process)")
    return False, None


def _row_matches(row: Mapping[str, Any], v: VertebraSectors, gtv: frozenset[int]
                 ) -> tuple[bool, str | None]:
    if not set(row.get("all", ())) <= gtv:
        return False, None
    if set(row.get("none", ())) & gtv:
        return False, None
    if any(not set(group) & gtv for group in row.get("any", ())):
        return False, None
    if "body" in row and v.body_laterality not in row["body"]:
        return False, None
    if "lamina" in row:
        return _lamina(v, str(row["lamina"]))
    return True, None


def c3_involvement(gtv: Iterable[int]) -> bool:
    """ISRC-C3, first clause: the GTV involves the body, both sides (pedicle or
    lamina/transverse process) and the spinous process."""
    g = set(gtv)
    return bool(1 in g and 4 in g and g & {2, 3} and g & {5, 6})


def expected_ctv_sectors(v: VertebraSectors, table: Mapping[str, Any], *,
                         encircling: Iterable[int] = (1, 2, 3, 4, 5, 6)
                         ) -> tuple[frozenset[int], tuple[str, ...], tuple[str, ...]]:
    """Bony CTV sectors the ISRC table (``upfront.toml`` ``[isrc_table]``) calls for.

    The GTV's own sectors united with the CTV of every matching row, with one
    precedence that keeps the table consistent with the circumferential rule
    (ISRC-C3, KB 0.2): the spinous process that ISRC-07 (lamina) adds is not
    required when it would close a ring around the canal that ISRC-C3 does not
    allow (no spinous-process involvement, no circumferential epidural disease).
    So no GTV pattern yields a requirement that ``ctv.circumferential`` fails.

    Parameters
    ----------
    v : VertebraSectors
        GTV involvement of one vertebra (``gtv_parts`` read for the lamina rows).
    table : mapping
        The ``isrc_table`` data (rows, and ``extra_rows`` of enabled variants).
    encircling : iterable of int
        The sectors whose coverage makes a CTV circumferential.

    Returns
    -------
    sectors : frozenset of int
    rows : tuple of str
        Ids of the matching rows.
    notes : tuple of str
        Assumptions and precedences applied (for the finding's message).
    """
    gtv = frozenset(v.gtv_sectors)
    out = set(gtv)
    ids: list[str] = []
    notes: list[str] = []
    spinous_from_lamina = False
    for row in (*table.get("row", ()), *table.get("extra_rows", ())):
        hit, note = _row_matches(row, v, gtv)
        if hit:
            out |= set(row["ctv"])
            ids.append(str(row["id"]))
            if note:
                notes.append(note)
            spinous_from_lamina |= "lamina" in row and 4 in row["ctv"]
    ring = set(encircling)
    if (spinous_from_lamina and ring <= out and 4 not in gtv and not c3_involvement(gtv)
            and not v.epidural_circumferential):
        out.discard(4)
        notes.append("ISRC-07 would add the spinous process (4), closing a ring that ISRC-C3 "
                     "allows only with spinous-process involvement: 4 not required")
    return frozenset(out), tuple(dict.fromkeys(ids)), tuple(dict.fromkeys(notes))


def coverage_text(v: VertebraSectors, sectors: Iterable[int]) -> str:
    return ", ".join(f"{s} {v.ctv_sector_coverage_pct[s - 1]:.0f}%" for s in sorted(sectors))


def encircles(v: VertebraSectors, params: Mapping[str, Any]) -> bool:
    need = [int(s) for s in params["encircling_sectors"]]
    return all(v.ctv_sector_coverage_pct[s - 1] >= float(params["min_coverage_pct"]) for s in need)


def circumferential_justified(v: VertebraSectors, *, required: Iterable[int] = (),
                              encircling: Iterable[int] = (1, 2, 3, 4, 5, 6)) -> str | None:
    """Why a circumferential CTV at this vertebra is justified, or None.

    ISRC-C3 (body, both sides and spinous process involved), circumferential
    epidural disease, or the ISRC table itself requiring every encircling sector
    (``required``: e.g. an enabled variant's row).
    """
    if c3_involvement(v.gtv_sectors):
        return "the GTV involves the body, both sides and the spinous process (ISRC-C3)"
    if v.epidural_circumferential:
        return f"the epidural disease is circumferential ({v.epidural_extent_deg:.0f} deg)"
    if set(encircling) <= set(required):
        return "the ISRC table requires every sector for this GTV"
    return None


# --------------------------------------------------------------------------- upfront

def check_missing_sector(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``ctv.missing_sector``: a sector the ISRC table requires is not covered.

    Anti-pattern: GTV in the left pedicle and body, CTV = body only.  Best practice:
    CTV = body + left pedicle + left transverse process/lamina (ISRC-04).
    """
    code = "ctv.missing_sector"
    why = sector_problem(ctx)
    if why:
        return not_evaluated(code, f"Not evaluated: {why}.", params)
    assert ctx.sectors is not None
    table = ctx.data("upfront", "isrc_table")
    limit = float(params["min_coverage_pct"])
    out = []
    for v in ctx.sectors.vertebrae:
        if not v.gtv_sectors:
            continue
        need, rows, notes = expected_ctv_sectors(
            v, table, encircling=ctx.params(CIRCUMFERENTIAL)["encircling_sectors"])
        missing = [s for s in sorted(need) if v.ctv_sector_coverage_pct[s - 1] < limit]
        detail = (f"{level_name(v)}: GTV in {sectors_text(v.gtv_sectors)} (body "
                  f"{v.body_laterality}) -> ISRC {', '.join(rows) or 'GTV sectors'} require "
                  f"{sectors_text(need)}" + (f" ({'; '.join(notes)})" if notes else "")
                  + f"; CTV coverage {coverage_text(v, need)}")
        if missing:
            names = ", ".join(f"{s} ({SECTOR_NAMES[s]})" for s in missing)
            out.append(finding(code, Status.FAIL, f"{detail}. Not covered (< {limit:g}%): {names}.",
                          params, value=float(min(v.ctv_sector_coverage_pct[s - 1]
                                                  for s in missing)), limit=limit, unit="%"))
        else:
            out.append(finding(code, Status.PASS, f"{detail}.", params, limit=limit, unit="%"))
    return out or not_evaluated(code, "Not evaluated: the GTV involves no bone sector of an "
                                "analysed "
                      "vertebra (no ISRC row applies).", params)


def check_unjustified_sector(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``ctv.unjustified_sector``: the CTV covers a sector the ISRC table does not call for.

    A warning, not a failure: the physician may have seen abnormal marrow signal on MRI
    that the tool cannot see (ISRC-C1).  Vertebrae whose CTV encircles the canal are
    reported by ``ctv.circumferential`` instead.
    """
    code = "ctv.unjustified_sector"
    why = sector_problem(ctx)
    if why:
        return not_evaluated(code, f"Not evaluated: {why}.", params)
    assert ctx.sectors is not None
    table = ctx.data("upfront", "isrc_table")
    circ = ctx.params(CIRCUMFERENTIAL)
    limit = float(params["min_coverage_pct"])
    out = []
    for v in ctx.sectors.vertebrae:
        if not v.gtv_sectors:
            continue
        need, _, _ = expected_ctv_sectors(v, table, encircling=circ["encircling_sectors"])
        if encircles(v, circ):
            out.append(finding(code, Status.PASS, f"{level_name(v)}: the CTV encircles the "
                               "canal; judged by "
                          "ctv.circumferential.", params))
            continue
        extra = [s for s in range(1, 7) if s not in need
                 and v.ctv_sector_coverage_pct[s - 1] >= limit]
        if extra:
            out.append(finding(code, Status.WARN, (
                f"{level_name(v)}: the CTV covers sector(s) {sectors_text(extra)} "
                f"({coverage_text(v, extra)}) that the ISRC table does not call for "
                f"(expected {sectors_text(need)}). Justified only by abnormal marrow signal "
                "the tool cannot see: confirm on MRI."), params,
                value=float(max(v.ctv_sector_coverage_pct[s - 1] for s in extra)), limit=limit,
                unit="%"))
        else:
            out.append(finding(code, Status.PASS, f"{level_name(v)}: no CTV sector beyond "
                          f"{sectors_text(need)}.", params))
    return out or not_evaluated(code, "Not evaluated: the GTV involves no bone sector.", params)


def check_circumferential(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``ctv.circumferential``: a CTV encircling the canal without ISRC-C3 justification."""
    code = "ctv.circumferential"
    why = sector_problem(ctx)
    if why:
        return not_evaluated(code, f"Not evaluated: {why}.", params)
    assert ctx.sectors is not None
    table = ctx.data("upfront", "isrc_table")
    ring = params["encircling_sectors"]
    out = []
    for v in ctx.sectors.vertebrae:
        if not encircles(v, params):
            continue
        need, _, _ = expected_ctv_sectors(v, table, encircling=ring)
        reason = circumferential_justified(v, required=need, encircling=ring)
        if reason:
            out.append(finding(code, Status.PASS, f"{level_name(v)}: circumferential CTV; "
                               f"{reason}.", params))
        else:
            out.append(finding(code, Status.FAIL, (
                f"{level_name(v)}: the CTV encircles the canal (sectors 1-6 covered: "
                f"{coverage_text(v, range(1, 7))}) but the GTV involves only "
                f"{sectors_text(v.gtv_sectors) if v.gtv_sectors else 'no sector'} and the "
                "epidural disease is not circumferential."), params))
    return out or [finding(code, Status.PASS, "No CTV encircles the canal.", params)]


def check_epidural_without_disease(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``ctv.epidural_without_disease``: CTV in the canal at a level without epidural GTV."""
    code = "ctv.epidural_without_disease"
    why = sector_problem(ctx)
    if why:
        return not_evaluated(code, f"Not evaluated: {why}.", params)
    assert ctx.sectors is not None
    limit = float(params["min_epidural_cc"])
    out = []
    for v in ctx.sectors.vertebrae:
        if v.ctv_epidural_cc >= limit and not v.epidural:
            out.append(finding(code, Status.FAIL, (
                f"{level_name(v)}: {v.ctv_epidural_cc:.2f} cc of CTV in the spinal canal but the "
                "GTV "
                "has no epidural component at this level."), params,
                value=round(v.ctv_epidural_cc, 3), limit=limit, unit="cc"))
    return out or [finding(code, Status.PASS, "No CTV in the canal without epidural GTV "
                      f"(tolerance {limit:g} cc).", params, limit=limit, unit="cc")]


def check_gtv_not_covered(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``ctv.gtv_not_covered``: GTV volume outside its CTV (beyond a voxel tolerance);
    each GTV is checked against the CTV that holds most of it (several targets)."""
    code = "ctv.gtv_not_covered"
    ctvs = ctx.rois(Role.CTV)
    gtvs, _ = target_rois(ctx)
    if not ctvs:
        return not_evaluated(code, "Not evaluated: no non-empty ctv ROI.", params)
    if not gtvs:
        return not_evaluated(code, "Not evaluated: no non-empty GTV ROI.", params,
                             structure=ctvs[0].name)
    out: list[Finding] = []
    for gtv, ctv in nest(ctx, gtvs, ctvs):
        chosen = ctv if ctv is not None else ctvs[0]
        note = None if len(ctvs) == 1 else (
            "its CTV: the one holding most of it" if ctv is not None
            else f"no CTV holds any of it; compared with {chosen.name}")
        out += outside_findings(ctx, code, [gtv], chosen, params, what="", note=note)
    return out


def check_cranio_caudal(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``ctv.cranio_caudal``: CTV extent in levels; post-operative: the epidural CTV
    extends at least ``postop_min_epidural_extension_mm`` beyond the epidural disease.

    Upfront, a CTV covering bone of a level without GTV is a warning (the ISRC gives
    no cranio-caudal bony margin, KB 1c ISRC-CC, status U).
    """
    code = "ctv.cranio_caudal"
    out: list[Finding] = []
    why = sector_problem(ctx)
    if why:
        out += not_evaluated(code, f"CTV extent in levels not evaluated: {why}.", params)
    else:
        assert ctx.sectors is not None
        levels = [v for v in ctx.sectors.vertebrae if v.ctv_sectors]
        gtv_levels = [v for v in ctx.sectors.vertebrae if v.gtv_sectors or v.epidural
                      or v.paraspinal]
        extra = [v for v in levels if v not in gtv_levels]
        text = (f"CTV covers bone of {len(levels)} level(s) "
                f"({', '.join(level_name(v) for v in levels) or 'none'}); GTV at "
                f"{', '.join(level_name(v) for v in gtv_levels) or 'none'}")
        if extra and ctx.mode is Mode.UPFRONT:
            names = ", ".join(level_name(v) for v in extra)
            out.append(finding(code, Status.WARN, text + f". {names} "
                          "hold(s) no GTV: the ISRC consensus contours the involved level(s) "
                          "only (no numeric cranio-caudal bony margin, KB 1c ISRC-CC, status U).",
                          params, value=float(len(levels)), unit="levels"))
        else:
            out.append(finding(code, Status.PASS, text + ".", params, value=float(len(levels)),
                          unit="levels"))
    if ctx.mode is not Mode.POSTOP:
        return out
    need = float(params["postop_min_epidural_extension_mm"])
    ctv, _ = ctx.roi(Role.CTV)
    canal = canal_roi(ctx)
    gtvs, pre = target_rois(ctx)
    if ctv is None or canal is None or not (gtvs or pre):
        missing = "CTV" if ctv is None else "spinal canal / thecal sac ROI" if canal is None \
            else "GTV"
        return out + not_evaluated(code, "Epidural cranio-caudal extension not evaluated: no "
                                   f"{missing}.",
                         params)
    # the canal minus the vertebrae, as in the sector analysis: a bony GTV (or CTV)
    # abutting the canal shares a few boundary voxels with it, which are not epidural
    c = ctx.mask(canal).copy()
    for v in ctx.rois(Role.VERTEBRA):
        c &= ~ctx.mask(v)
    disease = np.zeros_like(c)
    for r in (*gtvs, *pre):
        disease |= ctx.mask(r) & c
    dz = z_extent(disease, ctx)
    cz = z_extent(ctx.mask(ctv) & c, ctx)
    if dz is None:
        return out + [finding(code, Status.PASS, "No epidural disease (GTV or pre-operative GTV in "
                         "the canal): no epidural cranio-caudal extension required.", params)]
    # KB 0.5: "consider up to 5 mm further expansion cranio-caudally": a warning to
    # review, not a required minimum
    if cz is None:
        return out + [finding(code, Status.WARN, f"Epidural disease at z {dz[0]:.1f}.."
                              f"{dz[1]:.1f} mm but {ctv.name} has no part in the canal "
                              f"(consider up to {need:g} mm beyond it).", params,
                              structure=ctv.name, value=0.0, limit=need, unit="mm")]
    geo, _ = ctx.grid
    assert geo is not None
    tol = float(params["extension_tolerance_fraction"]) * float(geo.spacing_mm[2])
    sup, inf = cz[1] - dz[1], dz[0] - cz[0]
    worst = min(sup, inf)
    ok = worst >= need - tol
    return out + [finding(code, Status.PASS if ok else Status.WARN, (
        f"Epidural CTV extends {sup:.1f} mm superior and {inf:.1f} mm inferior of the epidural "
        f"disease (consider up to {need:g} mm, Redmond 2017; tolerance {tol:.2f} mm: half a "
        "slice)."), params, structure=ctv.name, value=round(worst, 2), limit=need, unit="mm")]


# --------------------------------------------------------------------------- the list

_COX = "Cox et al. 2012 (ISRC), knowledge base 0.2, 1b, 1c"

MISSING_SECTOR = Rule(code="ctv.missing_sector", name="CTV misses an ISRC sector",
                      citation=f"{_COX} (bony CTV table)", severity=Status.FAIL,
                      rule_set="upfront", check=check_missing_sector, modes=_UPFRONT,
                      spine_only=True)
UNJUSTIFIED_SECTOR = Rule(code="ctv.unjustified_sector", name="CTV covers an uncalled-for sector",
                          citation=f"{_COX} (bony CTV table, ISRC-C1)", severity=Status.WARN,
                          rule_set="upfront", check=check_unjustified_sector, modes=_UPFRONT,
                          spine_only=True)
CIRCUMFERENTIAL = Rule(code="ctv.circumferential", name="Circumferential CTV without cause",
                       citation=f"{_COX} (ISRC-C3)", severity=Status.FAIL, rule_set="upfront",
                       check=check_circumferential, modes=_UPFRONT, spine_only=True)
EPIDURAL = Rule(code="ctv.epidural_without_disease", name="Epidural CTV without epidural GTV",
                citation=f"{_COX} (ISRC-C2)", severity=Status.FAIL, rule_set="upfront",
                check=check_epidural_without_disease, modes=_UPFRONT, spine_only=True)
GTV_COVERED = Rule(code="ctv.gtv_not_covered", name="GTV outside the CTV",
                   citation=f"{_COX} (ISRC-G1/C1); {_REDMOND} (CTV includes the GTV)",
                   severity=Status.FAIL, rule_set="upfront", check=check_gtv_not_covered,
                   modes=_BOTH)
CRANIO_CAUDAL = Rule(code="ctv.cranio_caudal", name="CTV cranio-caudal extent",
                     citation=f"{_COX} (ISRC-CC, U); {_REDMOND} (PO-04)", severity=Status.WARN,
                     rule_set="upfront", check=check_cranio_caudal, modes=_BOTH, spine_only=True)
#: Upfront (ISRC) target rules, in report order.
UPFRONT_RULES: tuple[Rule, ...] = (MISSING_SECTOR, UNJUSTIFIED_SECTOR, CIRCUMFERENTIAL, EPIDURAL,
                                   GTV_COVERED, CRANIO_CAUDAL)
