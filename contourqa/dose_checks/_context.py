"""Shared state of one dose-check run: DVHs and uncertainty bands, computed once."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace

from contourqa.case import Case
from contourqa.constraints.library import load_rules
from contourqa.dose_checks.coverage import (
    extent_shortfall,
    grid_bounds_mm,
    near_target,
    planes_outside_grid,
    target_extent_mm,
)
from contourqa.dose_checks.options import DoseCheckOptions
from contourqa.dvh import DVH, DVHMetric, DVHOptions, DVHReport, compute_dvh, metric_band
from contourqa.errors import ContourQAError, MetricError
from contourqa.findings import Finding, Status
from contourqa.io.rtstruct import ROI
from contourqa.structures import Role, RoleAssignment, RoleTable

__all__ = ["DoseContext", "fmt", "not_evaluated"]

Band = tuple[float, float]


def fmt(x: float | None, unit: str = "") -> str:
    """A number for a message: 2 decimals for Gy, cc and %, no trailing noise."""
    if x is None or not math.isfinite(x):
        return "n/a"
    text = f"{x:.2f}".rstrip("0").rstrip(".") if abs(x) < 1e6 else f"{x:.4g}"
    return f"{text} {unit}".rstrip() if unit and unit != "%" else f"{text}{unit}"


def not_evaluated(code: str, message: str, *, structure: str | None = None,
                  source: str | None = None) -> Finding:
    return Finding(code=code, status=Status.NOT_EVALUATED, message=message, structure=structure,
                   source=source)


def not_applicable(code: str, message: str, *, structure: str | None = None,
                   source: str | None = None, value: float | None = None,
                   unit: str | None = None) -> Finding:
    """A check that does not concern this case (never changes the case's verdict)."""
    return Finding(code=code, status=Status.NOT_APPLICABLE, message=message, structure=structure,
                   source=source, value=value, unit=unit)


class DoseContext:
    """DVHs and bands of the ROIs the checks need, reusing the run's DVH report.

    Parameters
    ----------
    case : Case
    roles : RoleTable
    dvh_report : DVHReport or None
        The run's DVH report; ROIs and metrics missing from it are computed here.
    options : DoseCheckOptions
    """

    def __init__(self, case: Case, roles: RoleTable, dvh_report: DVHReport | None, *,
                 options: DoseCheckOptions) -> None:
        self.case = case
        self.roles = roles
        self.report = dvh_report
        self.options = options
        self.dvh_options = DVHOptions()
        self._dvhs: dict[tuple[str, str | None], DVH] = {}
        self._bands: dict[tuple[str, str | None], dict[str, Band]] = {}
        self._errors: dict[tuple[str, str | None], str] = {}
        self._oar_problems: dict[str, str | None] = {}
        self._side_findings: dict[tuple[str, str | None], Finding] = {}

    # ---------------------------------------------------------------- plan facts
    @property
    def n_fractions(self) -> int | None:
        return self.case.n_fractions

    @property
    def prescription_gy(self) -> float | None:
        return self.case.prescription_gy

    @property
    def has_dose(self) -> bool:
        return self.case.dose is not None and self.case.structure_set is not None

    @property
    def relative_reference_gy(self) -> float | None:
        """The dose 1.0 of a RELATIVE RTDOSE was taken to mean (Gy), else ``None``."""
        dose = self.case.dose
        return dose.relative_reference_gy if dose is not None else None

    def side_findings(self) -> list[Finding]:
        """Findings the checks raised on the way (``contour.oar_extent``), once each."""
        return list(self._side_findings.values())

    def rois_with(self, role: Role) -> tuple[RoleAssignment, ...]:
        """ROIs with this role that have closed contours."""
        out = []
        for a in self.roles.by_role(role):
            roi = self._roi(a.roi_name)
            if roi is not None and not roi.is_empty:
                out.append(a)
        return tuple(out)

    def alpha_beta_gy(self, key: str) -> tuple[float | None, str]:
        """alpha/beta of a role value or ``"tumour"`` and where it came from."""
        if key in self.options.alpha_beta_gy:
            return float(self.options.alpha_beta_gy[key]), "user option"
        entry = load_rules("radiobiology")["alpha_beta_gy"].get(key)
        if entry is None:
            return None, "not in the knowledge base"
        return float(entry["value"]), f"{entry['source']} ({entry['status']})"

    # ---------------------------------------------------------------- DVHs
    def _roi(self, name: str) -> ROI | None:
        ss = self.case.structure_set
        if ss is None:
            return None
        for r in ss.rois:
            if r.name == name:
                return r
        return None

    def _subvolume_roi(self, roi: ROI, kind: str) -> ROI:
        """The cord planes within the rule's margin of the target's extent."""
        rule = load_rules("subvolume")[kind]
        margin = float(rule["margin_mm"])
        zs: list[float] = []
        for role_name in rule["target_roles"]:
            for a in self.rois_with(Role(role_name)):
                target = self._roi(a.roi_name)
                if target is not None:
                    zs += [float(z) for z in target.planes()]
            if zs:
                break
        if not zs:
            raise ContourQAError(f"no target ROI ({', '.join(rule['target_roles'])}) to define "
                                 "the cord subvolume")
        lo, hi = min(zs) - margin, max(zs) + margin
        kept = tuple(c for c in roi.closed_contours
                     if lo - 1e-6 <= float(c.points_mm[:, 2].mean()) <= hi + 1e-6)
        if not kept:
            raise ContourQAError(f"{roi.name} has no contour within {margin:g} mm of the target")
        return replace(roi, name=f"{roi.name} [target levels +/-{margin:g} mm]", contours=kept)

    # ---------------------------------------------------------------- OAR coverage
    def _target_extent(self, target_roles: list[str]) -> tuple[tuple[float, float] | None, str]:
        """z range (mm) of the first target role present, and its name."""
        for role_name in target_roles:
            rois = [r for a in self.rois_with(Role(role_name))
                    if (r := self._roi(a.roi_name)) is not None]
            extent = target_extent_mm(rois)
            if extent is not None:
                return extent, ", ".join(r.name for r in rois)
        return None, ""

    def oar_problem(self, roi_name: str, role: Role) -> str | None:
        """Why no constraint on this ROI can be judged from the plan, or ``None``.

        The ROI must reach the margin beyond the target's cranio-caudal extent when
        its role is listed in ``rules/oar_extent.toml`` (else a ``contour.oar_extent``
        finding is added), and its part near the target must lie inside the dose
        grid.  The reason names the part that is missing.
        """
        if roi_name not in self._oar_problems:
            self._oar_problems[roi_name] = (self._extent_problem(roi_name, role)
                                            or self._dose_coverage_problem(roi_name))
        return self._oar_problems[roi_name]

    def _extent_problem(self, roi_name: str, role: Role) -> str | None:
        rule = load_rules("oar_extent")["oar_extent"]
        roi = self._roi(roi_name)
        if role.value not in rule["roles"] or roi is None or roi.is_empty:
            return None
        margin = float(rule["margin_mm"])
        source = f"{rule['source']} (status {rule['status']})"
        extent, targets = self._target_extent(list(rule["target_roles"]))
        code = "contour.oar_extent"
        if extent is None:
            reason = (f"no target ROI ({', '.join(rule['target_roles'])}) shows where "
                      f"{roi_name} must be contoured (at least {margin:g} mm beyond the "
                      "target's cranio-caudal extent)")
            self._side_findings[(code, roi_name)] = Finding(
                code=code, status=Status.NOT_EVALUATED, structure=roi_name, source=source,
                message=f"{reason[0].upper()}{reason[1:]}: its constraints are not evaluated.")
            return f"its cranio-caudal extent cannot be checked: {reason}"
        short = extent_shortfall(roi, target_z_mm=extent, margin_mm=margin)
        if short is None:
            return None
        where = "below" if short.side == "inferior" else "above"
        if short.reach_mm >= 0:
            reach = f"reaches only {fmt(short.reach_mm, 'mm')} {where} the target"
        else:
            reach = (f"stops {fmt(-short.reach_mm, 'mm')} short of the target's "
                     f"{short.side} end")
        text = (f"{roi_name} {reach} ({targets}: z = {fmt(extent[0])} to {fmt(extent[1])} mm; "
                f"{roi_name} {short.side} end at z = {fmt(short.roi_end_mm, 'mm')}); its "
                f"constraints need it contoured at least {margin:g} mm beyond the target's "
                "cranio-caudal extent")
        self._side_findings[(code, roi_name)] = Finding(
            code=code, status=Status.WARN, structure=roi_name, value=short.reach_mm,
            limit=margin, unit="mm", source=source,
            message=f"{text}: its dose constraints are not evaluated (the dose of the part "
                    "contoured is not the organ's).")
        return f"contour extent too short: {text} (contour.oar_extent)"

    def _dose_coverage_problem(self, roi_name: str) -> str | None:
        rule = load_rules("oar_extent")["dose_coverage"]
        dose, roi = self.case.dose, self._roi(roi_name)
        if dose is None or roi is None or roi.is_empty:
            return None
        tol = float(rule["tolerance_cc"])
        try:
            whole = self.dvh(roi_name)
        except ContourQAError:
            return None  # the metric itself says why
        if whole.volume_outside_dose_cc <= tol:
            return None
        margin = float(rule["margin_mm"])
        extent, _ = self._target_extent(list(rule["target_roles"]))
        part, cc = roi, whole.volume_outside_dose_cc
        where = "and no target ROI shows whether that part matters"
        if extent is not None:
            lo, hi = extent[0] - margin, extent[1] + margin
            sub = near_target(roi, z_range_mm=(lo, hi))
            if sub is None:
                return None
            try:
                cc = compute_dvh(sub, dose, options=self.dvh_options).volume_outside_dose_cc
            except (ContourQAError, ValueError) as exc:  # could not tell: no verdict
                return (f"{fmt(whole.volume_outside_dose_cc, 'cc')} of {roi_name} lies outside "
                        f"the dose grid and its part near the target cannot be measured ({exc})")
            if cc <= tol:
                return None
            part = sub
            where = (f"within {margin:g} mm of the target's cranio-caudal extent "
                     f"(z = {fmt(lo)} to {fmt(hi)} mm)")
        bounds = grid_bounds_mm(dose.geometry)
        planes = planes_outside_grid(part, dose.geometry)
        which = (f"; its contour planes z = {fmt(planes[0])} to {fmt(planes[-1])} mm "
                 f"({len(planes)}) lie wholly or partly outside it" if planes else
                 "; the end caps of its planes reach beyond it")
        return (f"{fmt(cc, 'cc')} of {roi_name} {where} lies outside the dose grid (grid z = "
                f"{fmt(bounds[2, 0])} to {fmt(bounds[2, 1])} mm, x = {fmt(bounds[0, 0])} to "
                f"{fmt(bounds[0, 1])} mm, y = {fmt(bounds[1, 0])} to {fmt(bounds[1, 1])} mm)"
                f"{which}")

    def subvolume_description(self, kind: str) -> str:
        rule = load_rules("subvolume")[kind]
        return (f"cord planes within {float(rule['margin_mm']):g} mm of the target's "
                f"cranio-caudal extent ({rule['source']})")

    def dvh(self, roi_name: str, subvolume: str | None = None) -> DVH:
        """The DVH of an ROI (or of its subvolume).

        Raises
        ------
        ContourQAError
            No dose, unknown or empty ROI, or the DVH cannot be computed (the
            message says why).
        """
        key = (roi_name, subvolume)
        if key in self._dvhs:
            return self._dvhs[key]
        if key in self._errors:
            raise ContourQAError(self._errors[key])
        try:
            if subvolume is None and self.report is not None and roi_name in self.report.dvhs:
                d = self.report.dvhs[roi_name]
            else:
                if self.case.dose is None:
                    raise ContourQAError("no usable dose grid")
                roi = self._roi(roi_name)
                if roi is None or roi.is_empty:
                    raise ContourQAError(f"ROI {roi_name!r} has no closed contours")
                if subvolume is not None:
                    roi = self._subvolume_roi(roi, subvolume)
                d = compute_dvh(roi, self.case.dose, options=self.dvh_options)
        except (ContourQAError, ValueError) as exc:
            self._errors[key] = str(exc)
            raise ContourQAError(str(exc)) from exc
        self._dvhs[key] = d
        return d

    def prefetch_bands(self, roi_name: str, metrics: Iterable[DVHMetric],
                       subvolume: str | None = None) -> None:
        """Compute the uncertainty bands of ``metrics`` for one ROI in one pass."""
        if not self.options.uncertainty:
            return
        key = (roi_name, subvolume)
        have = self._bands.setdefault(key, {})
        if subvolume is None and self.report is not None:
            have.update({k: v for k, v in self.report.bands.get(roi_name, {}).items()
                         if k not in have})
        wanted = [m for m in metrics if str(m) not in have]
        if not wanted or self.case.dose is None:
            return
        try:
            nominal = self.dvh(roi_name, subvolume)
        except ContourQAError:
            return
        roi = self._roi(roi_name)
        if roi is None:
            return
        if subvolume is not None:
            try:
                roi = self._subvolume_roi(roi, subvolume)
            except ContourQAError:
                return
        rx = self.prescription_gy
        wanted = [m for m in wanted if not (m.needs_prescription and rx is None)]
        try:
            have.update(metric_band(roi, self.case.dose, wanted, options=self.dvh_options,
                                    prescription_gy=rx, nominal=nominal))
        except (ContourQAError, ValueError):
            return

    def band(self, roi_name: str, metric: DVHMetric, subvolume: str | None = None
             ) -> Band | None:
        """The discretisation band of a metric, if computed."""
        if not self.options.uncertainty:
            return None
        self.prefetch_bands(roi_name, [metric], subvolume)
        return self._bands.get((roi_name, subvolume), {}).get(str(metric))

    def metric(self, roi_name: str, metric: DVHMetric, subvolume: str | None = None
               ) -> float:
        """One metric value (Gy, cc or %).

        Raises
        ------
        ContourQAError
            The DVH or the metric cannot be evaluated (MetricError included).
        """
        v = self.dvh(roi_name, subvolume).metric(metric, prescription_gy=self.prescription_gy)
        if not math.isfinite(v):
            raise MetricError(f"{roi_name}: {metric} is not finite (no dose inside the structure)")
        return v

    def try_metric(self, roi_name: str, text: str, subvolume: str | None = None) -> float | None:
        try:
            return self.metric(roi_name, DVHMetric.parse(text), subvolume)
        except ContourQAError:
            return None
