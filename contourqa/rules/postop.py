"""Post-operative target rules: the consensus of Redmond et al. 2017 (knowledge base
0.5 and 2), in the explicit list :data:`POSTOP_RULES`; thresholds in
``contourqa/rules/data/postop.toml``.  They run in post-operative mode only (``--mode
postop``, or ``auto`` with surgical evidence); in upfront mode they are not applicable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from contourqa.findings import Finding, Status
from contourqa.io.rtstruct import ROI
from contourqa.rules.common import (
    finding,
    level_name,
    nest,
    not_evaluated,
    outside_findings,
    sector_problem,
    target_rois,
)
from contourqa.rules.context import RuleContext
from contourqa.rules.model import Mode, Rule
from contourqa.rules.upfront import CIRCUMFERENTIAL, circumferential_justified, encircles
from contourqa.sectors import SectorAnalysis, analyse_sectors
from contourqa.structures import Role, RoleTable

__all__ = ["POSTOP_RULES"]

_POSTOP = frozenset({Mode.POSTOP})


def check_preop_extent(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``postop.preop_extent``: the CTV covers the pre-operative GTV (PO-02); each
    pre-operative GTV against the CTV that holds most of it (several targets)."""
    code = "postop.preop_extent"
    ctvs = ctx.rois(Role.CTV)
    _, pre = target_rois(ctx)
    if not ctvs:
        return not_evaluated(code, "Not evaluated: no non-empty ctv ROI.", params)
    if not pre:
        return not_evaluated(code, "Not evaluated: no pre-operative GTV ROI (a GTV whose name "
                             f"matches {params['preop_name_pattern']!r}); registered "
                             "pre-operative images are not used by this version.", params,
                             structure=ctvs[0].name)
    out: list[Finding] = []
    for roi, ctv in nest(ctx, pre, ctvs):
        chosen = ctv if ctv is not None else ctvs[0]
        note = None if len(ctvs) == 1 or ctv is not None else \
            f"no CTV holds any of it; compared with {chosen.name}"
        out += outside_findings(ctx, code, [roi], chosen, params, what="the pre-operative ",
                                note=note)
    return out


def check_hardware_in_ctv(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``postop.hardware_in_ctv``: instrumentation (hardware-density voxels) inside a
    CTV (each CTV); a warning, since involved hardware may be included (PO-05)."""
    code = "postop.hardware_in_ctv"
    ctvs = ctx.rois(Role.CTV)
    if not ctvs:
        return not_evaluated(code, "Not evaluated: no non-empty ctv ROI.", params)
    if ctx.case.image is None:
        return not_evaluated(code, "Not evaluated: no CT to find hardware by density.", params,
                             structure=ctvs[0].name)
    hu = float(ctx.data("mode", "auto")["hardware_hu"])
    geo, _ = ctx.grid
    assert geo is not None
    start = np.rint(ctx.case.image.geometry.patient_to_index(geo.origin_mm[None])[0]).astype(int)
    k, j, i = start
    s = geo.shape
    hw = ctx.case.image.pixels[k:k + s[0], j:j + s[1], i:i + s[2]] > hu
    limit = int(params["min_voxels"])
    out = []
    for ctv in ctvs:
        n = int((hw & ctx.mask(ctv)).sum())
        status = Status.WARN if n >= limit else Status.PASS
        out.append(finding(code, status, (
            f"{n} voxel(s) ({n * ctx.voxel_cc:.3f} cc) above {hu:g} HU (instrumentation) "
            f"inside {ctv.name}" + (": hardware is not included in the CTV unless involved; "
                                    "confirm involvement." if status is Status.WARN else ".")),
            params, structure=ctv.name, value=float(n), limit=float(limit), unit="voxels"))
    return out


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
    why = sector_problem(ctx)
    if why:
        return not_evaluated(code, f"Not evaluated: {why}.", params)
    assert ctx.sectors is not None
    circ = ctx.params(CIRCUMFERENTIAL)
    rings = [v for v in ctx.sectors.vertebrae if encircles(v, circ)]
    if not rings:
        return [finding(code, Status.PASS, "No CTV encircles the canal.", params)]
    _, pre = target_rois(ctx)
    pre_sec = _preop_sectors(ctx, pre) if pre else None
    pre_by_level = {v.level: v for v in pre_sec.vertebrae} if pre_sec is not None else {}
    near_deg = float(params["near_circumferential_min_deg"])
    out = []
    for v in rings:
        reason = circumferential_justified(v)
        pv = pre_by_level.get(v.level)
        if reason is None and pv is not None:
            reason = circumferential_justified(pv)
            reason = f"pre-operatively {reason}" if reason else None
        extent = max(v.epidural_extent_deg, pv.epidural_extent_deg if pv is not None else 0.0)
        if reason:
            out.append(finding(code, Status.PASS, f"{level_name(v)}: circumferential CTV; "
                               f"{reason}.", params))
        elif extent >= near_deg:
            # "may be considered" for near-circumferential epidural disease: a warning
            out.append(finding(code, Status.WARN, (
                f"{level_name(v)}: circumferential CTV for near-circumferential epidural "
                f"disease ({extent:.0f} deg, from {near_deg:g} deg): it may be considered "
                "(Redmond 2017); confirm the intent."), params, value=round(extent, 1),
                limit=near_deg, unit="deg"))
        elif pre:
            out.append(finding(code, Status.FAIL, f"{level_name(v)}: circumferential CTV but "
                               "neither the residual nor the pre-operative GTV involves the "
                               f"canal circumference (epidural extent {extent:.0f} deg).",
                               params, value=round(extent, 1), limit=near_deg, unit="deg"))
        else:
            out.append(finding(code, Status.WARN, f"{level_name(v)}: circumferential CTV, not "
                               "justified by the residual GTV; no pre-operative GTV ROI to "
                               "confirm pre-operative circumferential involvement.", params))
    return out


def check_contiguous_levels(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``postop.contiguous_levels``: more than 3 contiguous vertebral bodies in the
    target is a contraindication (PO-09)."""
    code = "postop.contiguous_levels"
    why = sector_problem(ctx)
    if why:
        return not_evaluated(code, f"Not evaluated: {why}.", params)
    assert ctx.sectors is not None
    idx = sorted(v.index for v in ctx.sectors.vertebrae if 1 in v.ctv_sectors or 1 in v.gtv_sectors)
    run = best = 0
    prev = None
    for i in idx:
        run = run + 1 if prev is not None and i == prev + 1 else 1
        best = max(best, run)
        prev = i
    limit = int(params["max_contiguous_bodies"])
    return [finding(code, Status.FAIL if best > limit else Status.PASS,
               f"{best} contiguous vertebral bod{'y' if best == 1 else 'ies'} in the target "
               f"(contraindication above {limit}).", params, value=float(best),
               limit=float(limit), unit="levels")]


def _grade_rule(code: str, given: str | None, what: str, params: Mapping[str, Any]
                ) -> list[Finding]:
    if given is None:
        return not_evaluated(code, f"Not evaluated: the {what} is not in the DICOM data; give "
                             "it as an "
                   "option to check this contraindication.", params)
    bad = given in {str(g) for g in params["contraindicated"]}
    return [finding(code, Status.FAIL if bad else Status.PASS,
               f"{what} {given}" + (": a contraindication to post-operative SBRT." if bad
                                    else ": not a contraindication."), params)]


def check_asia(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``postop.asia``: ASIA grade A is a contraindication (PO-09)."""
    return _grade_rule("postop.asia", ctx.options.asia_grade, "ASIA grade", params)


def check_bilsky(ctx: RuleContext, params: Mapping[str, Any]) -> list[Finding]:
    """``postop.bilsky``: post-operative Bilsky grade 3 residual is a contraindication."""
    what = "post-operative Bilsky grade" + (
        " (ESTIMATED from contours, not read on axial T2 MRI; see epidural.bilsky_estimate)"
        if ctx.options.bilsky_estimated else "")
    return _grade_rule("postop.bilsky", ctx.options.bilsky_grade, what, params)


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
    if sector_problem(ctx) is None and ctx.sectors is not None:
        n = sum(1 for v in ctx.sectors.vertebrae if v.gtv_sectors or v.epidural)
        if 1 <= n <= int(params["max_adjacent_levels"]):
            found.append(f"{n} level(s) of disease")
    if found:
        return [finding(code, Status.PASS, "Indication: " + "; ".join(found) + ".", params)]
    if unknown:
        return not_evaluated(code, f"Not evaluated: {', '.join(unknown)} not given.", params)
    return [finding(code, Status.WARN, "None of the published indications holds (radio-resistant "
               "primary, 1-2 levels, prior overlapping radiation).", params)]


# --------------------------------------------------------------------------- the list

_REDMOND = "Redmond et al. 2017, knowledge base 0.5, 2"

PREOP_EXTENT = Rule(code="postop.preop_extent", name="CTV covers the pre-operative extent",
                    citation=f"{_REDMOND} (PO-02)", severity=Status.FAIL, rule_set="postop",
                    check=check_preop_extent, modes=_POSTOP, spine_only=True)

#: Post-operative (Redmond 2017) rules.
POSTOP_RULES: tuple[Rule, ...] = (
    PREOP_EXTENT,
    Rule(code="postop.hardware_in_ctv", name="Instrumentation inside the CTV",
         citation=f"{_REDMOND} (PO-05)", severity=Status.WARN, rule_set="postop",
         check=check_hardware_in_ctv, modes=_POSTOP, spine_only=True),
    Rule(code="postop.circumferential", name="Post-operative circumferential CTV",
         citation=f"{_REDMOND} (PO-03)", severity=Status.FAIL, rule_set="postop",
         check=check_postop_circumferential, modes=_POSTOP, spine_only=True),
    Rule(code="postop.contiguous_levels", name="More than 3 contiguous vertebral bodies",
         citation=f"{_REDMOND} (PO-09, contraindication)", severity=Status.FAIL,
         rule_set="postop", check=check_contiguous_levels, modes=_POSTOP, spine_only=True),
    Rule(code="postop.asia", name="ASIA grade A", citation=f"{_REDMOND} (PO-09)",
         severity=Status.FAIL, rule_set="postop", check=check_asia, modes=_POSTOP, spine_only=True),
    Rule(code="postop.bilsky", name="Post-operative Bilsky grade 3",
         citation=f"{_REDMOND} (PO-09)", severity=Status.FAIL, rule_set="postop",
         check=check_bilsky, modes=_POSTOP, spine_only=True),
    Rule(code="postop.indication", name="Post-operative SBRT indication",
         citation="WFNS review 0.5 (Redmond): indications", severity=Status.WARN,
         rule_set="postop", check=check_indication, modes=_POSTOP, spine_only=True),
)
