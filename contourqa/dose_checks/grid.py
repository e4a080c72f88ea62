"""Dose-grid adequacy for the structures that decide the plan.

No grid-spacing threshold is in the knowledge base: the default (``rules/dose_grid.toml``,
status D) warns when the grid is coarser than 1.5 mm while the cord lies within 5 mm of
the PTV, where small-volume cord metrics depend most on the grid; a run can set its own
spacing with ``dose_grid_max_spacing_mm``.  Every constraint result also carries the
DVH engine's uncertainty band, and warns when the band crosses the limit: that is the
grid's effect on the decision itself.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from contourqa.constraints.library import load_rules
from contourqa.dose_checks._context import DoseContext, fmt, not_evaluated
from contourqa.findings import Finding, Status
from contourqa.structures import Role

__all__ = ["evaluate_dose_grid"]


def _points(ctx: DoseContext, role: Role) -> np.ndarray | None:
    ss = ctx.case.structure_set
    if ss is None:
        return None
    names = {a.roi_name for a in ctx.rois_with(role)}
    pts = [c.points_mm for r in ss.rois if r.name in names for c in r.closed_contours]
    return np.concatenate(pts) if pts else None


def evaluate_dose_grid(ctx: DoseContext) -> list[Finding]:
    """One ``dose.grid_resolution`` finding."""
    dose = ctx.case.dose
    code = "dose.grid_resolution"
    if dose is None:
        return [not_evaluated(code, "No dose grid.")]
    spacing = np.asarray(dose.geometry.spacing_mm, dtype=float)
    coarsest = float(spacing.max())
    cord = _points(ctx, Role.SPINAL_CORD)
    ptv = _points(ctx, Role.PTV)
    dist = None
    if cord is not None and ptv is not None:
        dist = float(cKDTree(ptv).query(cord, k=1)[0].min())
    text = (f"Dose grid spacing {fmt(float(spacing[0]))} x {fmt(float(spacing[1]))} x "
            f"{fmt(float(spacing[2]))} mm (column, row, slice)"
            + (f"; closest cord-to-PTV contour distance {fmt(dist, 'mm')}" if dist is not None
               else "") + ".")
    limit = ctx.options.dose_grid_max_spacing_mm
    if limit is not None:
        ok = coarsest <= limit
        return [Finding(code=code, status=Status.PASS if ok else Status.WARN, value=coarsest,
                        limit=limit, unit="mm", source="user option dose_grid_max_spacing_mm",
                        message=text + (" Within" if ok else " Coarser than")
                        + f" the {limit:g} mm chosen for this run.")]
    rule = load_rules("dose_grid")["dose_grid"]
    limit, near = float(rule["max_spacing_mm"]), float(rule["cord_ptv_distance_mm"])
    source = f"{rule['source']} (status {rule['status']})"
    if coarsest <= limit:
        return [Finding(code=code, status=Status.PASS, value=coarsest, limit=limit, unit="mm",
                        source=source, message=text + f" Within {limit:g} mm.")]
    if dist is not None and dist > near:
        return [Finding(code=code, status=Status.PASS, value=coarsest, limit=limit, unit="mm",
                        source=source, message=text + f" Coarser than {limit:g} mm, but the cord "
                        f"is more than {near:g} mm from the PTV.")]
    where = (f"the cord lies within {near:g} mm of the PTV" if dist is not None
             else "the cord-to-PTV distance is unknown (no cord or no PTV ROI)")
    return [Finding(code=code, status=Status.WARN, value=coarsest, limit=limit, unit="mm",
                    source=source, message=text + f" Coarser than {limit:g} mm while {where}: "
                    "cord D0.03cc and Dmax depend on the grid here; see each constraint's "
                    "uncertainty band, or recalculate on a finer grid.")]
