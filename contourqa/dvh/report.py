"""The ``dvh`` section of contourqa's report: metrics of many ROIs with their conventions."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from contourqa.dvh.engine import DEFAULT_OPTIONS, DVH, compute_dvhs, compute_dvhs_with_bands
from contourqa.dvh.metrics import DEFAULT_METRICS, DVHMetric
from contourqa.dvh.options import DVHOptions
from contourqa.dvh.reconcile import Reconciliation, reconcile
from contourqa.errors import MetricError
from contourqa.findings import Finding, Status
from contourqa.io.rtdose import DoseGrid
from contourqa.io.rtstruct import StructureSet

__all__ = ["DVHReport", "dvh_report"]


@dataclass(frozen=True, eq=False)
class DVHReport:
    """Metrics of several ROIs.

    Attributes
    ----------
    values : dict of ROI name to dict of metric string to float or None
        Gy, cc or % (see each metric's unit); ``None`` when not evaluable, with the
        reason in ``not_evaluated``.  Metric strings are as requested.
    bands : dict of ROI name to dict of metric string to (low, high)
        Discretisation band of each value (empty when not computed).
    not_evaluated : dict of ROI name to dict of metric string to reason
    conventions : dict
    problems : tuple of Finding
    reconciliations : tuple of Reconciliation
    dvhs : dict of ROI name to DVH
    """

    values: dict[str, dict[str, float | None]]
    bands: dict[str, dict[str, tuple[float, float]]]
    not_evaluated: dict[str, dict[str, str]]
    conventions: dict[str, Any]
    problems: tuple[Finding, ...] = ()
    reconciliations: tuple[Reconciliation, ...] = ()
    dvhs: dict[str, DVH] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON object: ``rois`` (ROI name -> metric string -> number or null),
        ``uncertainty`` (ROI -> metric -> [low, high]), ``not_evaluated``,
        ``conventions``, ``problems``, ``reconciliation``."""
        def num(v: float | None) -> float | None:
            return None if v is None or not math.isfinite(v) else round(float(v), 6)

        return {
            "rois": {r: {m: num(v) for m, v in vals.items()} for r, vals in self.values.items()},
            "uncertainty": {r: {m: [num(lo), num(hi)] for m, (lo, hi) in b.items()}
                            for r, b in self.bands.items()},
            "not_evaluated": self.not_evaluated,
            "conventions": self.conventions,
            "problems": [p.to_json() for p in self.problems],
            "reconciliation": [r.to_json() for r in self.reconciliations],
        }


def dvh_report(structure_set: StructureSet, dose: DoseGrid, *,
               roi_names: Iterable[str] | None = None,
               metrics: Iterable[DVHMetric | str] = DEFAULT_METRICS,
               options: DVHOptions = DEFAULT_OPTIONS, prescription_gy: float | None = None,
               uncertainty: bool = False, reconcile_with_planning_system: bool = True,
               workers: int = 1) -> DVHReport:
    """Evaluate DVH metrics for ROIs of a structure set.

    Parameters
    ----------
    structure_set, dose
    roi_names : iterable of str, optional
        ROIs to evaluate (exact name, else case-insensitive); default every ROI with
        closed contours.  An unknown name raises ``KeyError`` listing the ROIs.
    metrics : iterable of DVHMetric or str
        Parsed eagerly (``MetricError`` for bad strings); reported under the string
        given.
    options : DVHOptions
    prescription_gy : float, optional
        Needed by ``V<x>%`` metrics.
    uncertainty : bool
        Also compute each metric's discretisation band (about 3x the time).
    reconcile_with_planning_system : bool
        Compare with the RTDOSE's DVHSequence where it has the ROI.
    workers : int
        Processes sharing the ROIs (forked; results do not depend on it).
    """
    requested = list(metrics)
    parsed = [(m if isinstance(m, str) else str(m), DVHMetric.parse(m)) for m in requested]
    if roi_names is None:
        rois = [r for r in structure_set.rois if not r.is_empty]
    else:
        rois = [structure_set.roi(n) for n in roi_names]
    if uncertainty:
        dvhs, bands_all = compute_dvhs_with_bands(rois, dose, [p for _, p in parsed], options=options,
                                                  prescription_gy=prescription_gy, workers=workers)
    else:
        dvhs, bands_all = compute_dvhs(rois, dose, options=options, workers=workers), {}
    values: dict[str, dict[str, float | None]] = {}
    bands: dict[str, dict[str, tuple[float, float]]] = {}
    missing: dict[str, dict[str, str]] = {}
    problems: list[Finding] = []
    for name, d in dvhs.items():
        problems.extend(d.problems)
        row: dict[str, float | None] = {}
        for text, metric in parsed:
            try:
                v = d.metric(metric, prescription_gy=prescription_gy)
                row[text] = v if math.isfinite(v) else None
                if not math.isfinite(v):
                    missing.setdefault(name, {})[text] = "no dose inside the structure"
            except MetricError as exc:
                row[text] = None
                missing.setdefault(name, {})[text] = str(exc)
        values[name] = row
        b = bands_all.get(name, {})
        bands[name] = {text: b[str(metric)] for text, metric in parsed if str(metric) in b}
    for name, reasons in missing.items():
        for text, reason in reasons.items():
            problems.append(Finding(code="dvh.metric_not_evaluated", status=Status.NOT_EVALUATED,
                                    structure=name, message=f"{text}: {reason}"))
    recs = []
    if reconcile_with_planning_system and dose.planning_system_dvhs:
        by_number = {d.roi_number: d for d in dvhs.values()}
        for tps in dose.planning_system_dvhs:
            if tps.referenced_roi_number in by_number:
                recs.append(reconcile(by_number[tps.referenced_roi_number], tps))
    conv = options.conventions()
    conv["uncertainty_band"] = ("min/max over the nominal result, coarser sampling, the other "
                                "end-cap convention and the other shape-interpolation setting"
                                if uncertainty else "not computed")
    return DVHReport(values=values, bands=bands, not_evaluated=missing, conventions=conv,
                     problems=tuple(problems), reconciliations=tuple(recs), dvhs=dvhs)
