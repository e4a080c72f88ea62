"""Dose-volume histograms: exact on analytic benchmarks, every convention stated.

Public surface::

    DVHMetric.parse("D0.03cc")           typed metric, str() round-trips
    DVHOptions(end_caps=..., ...)        every option echoed in results' conventions
    compute_dvh(roi, dose, options=...)  -> DVH (cumulative/differential, metrics)
    compute_dvhs(rois, dose, ...)        several ROIs sharing the dose lookup
    metric_band(roi, dose, metrics)      discretisation band (low, high) per metric
    reconcile(dvh, planning_system_dvh)  comparison with the planning system's DVH
    dvh_report(structure_set, dose, ...) the report section (what the CLI calls)
"""

from contourqa.dvh.engine import (
    DVH,
    compute_dvh,
    compute_dvhs,
    compute_dvhs_with_bands,
    metric_band,
)
from contourqa.dvh.metrics import DEFAULT_METRICS, DVHMetric, MetricKind
from contourqa.dvh.options import DVHOptions
from contourqa.dvh.reconcile import Reconciliation, reconcile
from contourqa.dvh.report import DVHReport, dvh_report
from contourqa.dvh.volume import structure_volumes_cc

__all__ = [
    "DEFAULT_METRICS", "DVH", "DVHMetric", "DVHOptions", "DVHReport", "MetricKind",
    "Reconciliation", "compute_dvh", "compute_dvhs", "compute_dvhs_with_bands", "dvh_report",
    "metric_band", "reconcile", "structure_volumes_cc",
]
