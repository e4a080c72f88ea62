"""Shared state of one dose-check run: DVHs and uncertainty bands, computed once."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace

from contourqa.case import Case
from contourqa.constraints.library import load_rules
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
