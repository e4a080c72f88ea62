"""Helpers shared by the rule families (findings, sector-analysis state, volumes
outside another ROI, the target ROIs of a case)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from contourqa.findings import Finding, Status
from contourqa.io.rtstruct import ROI
from contourqa.rules.context import RuleContext
from contourqa.sectors import VertebraSectors
from contourqa.structures import Role

__all__ = ["canal_roi", "finding", "level_name", "nest", "not_evaluated", "outside",
           "outside_findings", "sector_problem", "sectors_text", "target_pairs", "target_rois",
           "z_extent"]


def finding(code: str, status: Status, message: str, params: Mapping[str, Any], **kw: Any
            ) -> Finding:
    """A finding of rule ``code`` citing its data table's ``source``."""
    return Finding(code=code, status=status, message=message,
                   source=str(params.get("source", "")) or None, **kw)


def not_evaluated(code: str, reason: str, params: Mapping[str, Any], **kw: Any
                  ) -> list[Finding]:
    """One not_evaluated finding of rule ``code`` with ``reason``."""
    return [finding(code, Status.NOT_EVALUATED, reason, params, **kw)]


def level_name(v: VertebraSectors) -> str:
    """The vertebra's level, or its position when the level is unknown."""
    return v.level or f"vertebra #{v.index}"


def sectors_text(sectors: Iterable[int]) -> str:
    """``{1,2,3}``."""
    return "{" + ",".join(str(s) for s in sorted(sectors)) + "}"


def sector_problem(ctx: RuleContext) -> str | None:
    """Why the sector rules cannot run, or None."""
    sec = ctx.sectors
    if sec is None:
        return "no ISRC sector analysis for this case"
    if not sec.evaluated or not sec.vertebrae:
        why = "; ".join(f.message for f in sec.findings if f.status is Status.NOT_EVALUATED)
        return f"the ISRC sector analysis was not evaluated ({why or 'no vertebra analysed'})"
    return None


def outside(ctx: RuleContext, inner: ROI, outer: ROI, tolerance_mm: float
            ) -> tuple[float, float, NDArray[np.bool_]]:
    """(cc of ``inner`` outside ``outer`` beyond ``tolerance_mm``, % of ``inner``, mask)."""
    a = ctx.mask(inner)
    far = a & ~ctx.mask(outer)
    if far.any():
        far &= ctx.distance_mm(outer) > tolerance_mm
    n_in = int(a.sum())
    cc = float(far.sum()) * ctx.voxel_cc
    return cc, (100.0 * float(far.sum()) / n_in if n_in else 0.0), far


def target_rois(ctx: RuleContext) -> tuple[list[ROI], list[ROI]]:
    """(residual / intact GTVs, pre-operative GTVs), by the post-operative name pattern."""
    pattern = ctx.params_for("postop", "postop.preop_extent")["preop_name_pattern"]
    pat = re.compile(str(pattern), re.IGNORECASE)
    gtvs = ctx.rois(Role.GTV)
    named = [r for r in (ctx.case.structure_set.rois if ctx.case.structure_set else ())
             if not r.is_empty and pat.search(r.name) and "gtv" in r.name.lower()]
    pre_numbers = {r.number for r in named}
    return [r for r in gtvs if r.number not in pre_numbers], named


def outside_findings(ctx: RuleContext, code: str, inner: Sequence[ROI], outer: ROI,
                     params: Mapping[str, Any], *, what: str, note: str | None) -> list[Finding]:
    """One finding per ``inner`` ROI: its volume more than ``tolerance_mm`` outside
    ``outer`` fails from ``min_outside_cc``."""
    tol, limit = float(params["tolerance_mm"]), float(params["min_outside_cc"])
    out = []
    for roi in inner:
        cc, pct, _ = outside(ctx, roi, outer, tol)
        msg = (f"{cc:.3f} cc ({pct:.1f}%) of {what}{roi.name} lies more than {tol:g} mm "
               f"outside {outer.name}" + (f" ({note})" if note else "") + ".")
        out.append(finding(code, Status.FAIL if cc >= limit else Status.PASS, msg, params,
                           structure=roi.name, value=round(cc, 4), limit=limit, unit="cc"))
    return out


def canal_roi(ctx: RuleContext) -> ROI | None:
    """The spinal canal ROI, else the thecal sac, else None."""
    for role in (Role.SPINAL_CANAL, Role.THECAL_SAC):
        roi, _ = ctx.roi(role)
        if roi is not None:
            return roi
    return None


def z_extent(mask: NDArray[np.bool_], ctx: RuleContext) -> tuple[float, float] | None:
    """(lowest, highest) z (mm) of the planes of ``mask`` on the context grid, or None."""
    geo, _ = ctx.grid
    assert geo is not None
    ks = np.nonzero(mask.any(axis=(1, 2)))[0]
    if ks.size == 0:
        return None
    z = geo.index_to_patient(np.array([[ks[0], 0, 0], [ks[-1], 0, 0]], dtype=float))[:, 2]
    return float(z.min()), float(z.max())


def _stem(name: str) -> str:
    """The name without its target prefix (``CTV_T10`` and ``PTV_T10`` -> ``_t10``)."""
    return re.sub(r"^(gtv|ctv|itv|ptv)", "", name.strip().lower())


def nest(ctx: RuleContext, inner: Sequence[ROI], outer: Sequence[ROI]
         ) -> list[tuple[ROI, ROI | None]]:
    """Each ``inner`` ROI with the ``outer`` ROI that holds most of its volume.

    Ties (and ROIs with no voxel in any ``outer``) go to the ``outer`` ROI of the same
    name stem (``GTV_T10`` -> ``CTV_T10``); an ``inner`` ROI that no ``outer`` holds and
    none matches by name gets None.
    """
    out: list[tuple[ROI, ROI | None]] = []
    for roi in inner:
        m = ctx.mask(roi)
        scored = [(int((m & ctx.mask(o)).sum()), _stem(o.name) == _stem(roi.name), o)
                  for o in outer]
        best = max(scored, key=lambda t: (t[0], t[1]), default=None)
        out.append((roi, best[2] if best is not None and (best[0] > 0 or best[1]) else None))
    return out


def target_pairs(ctx: RuleContext) -> tuple[list[tuple[ROI, ROI]], list[str], str]:
    """Every (CTV, PTV) pair to check: each PTV with the CTV it nests (most of the
    CTV's volume inside it; ties by name stem).

    Returns
    -------
    pairs : list of (ROI, ROI)
    unchecked : list of str
        CTVs and PTVs in no pair (no nesting partner).
    reason : str
        Why there is no pair at all ('' when there are pairs).
    """
    ctvs, ptvs = ctx.rois(Role.CTV), ctx.rois(Role.PTV)
    if not ctvs or not ptvs:
        return [], [], f"no non-empty {'ctv' if not ctvs else 'ptv'} ROI"
    if len(ctvs) == 1 and len(ptvs) == 1:
        return [(ctvs[0], ptvs[0])], [], ""
    pairs: list[tuple[ROI, ROI]] = []
    lone: list[str] = []
    for ptv in ptvs:
        scored = []
        for c in ctvs:
            n = int(ctx.mask(c).sum())
            inside = int((ctx.mask(c) & ctx.mask(ptv)).sum())
            scored.append((inside / n if n else 0.0, _stem(c.name) == _stem(ptv.name), c))
        frac, same, ctv = max(scored, key=lambda t: (t[0], t[1]))
        if frac > 0 or same:
            pairs.append((ctv, ptv))
        else:
            lone.append(ptv.name)
    paired = {c.number for c, _ in pairs}
    lone += [c.name for c in ctvs if c.number not in paired]
    return pairs, lone, "" if pairs else "no PTV holds any CTV"
