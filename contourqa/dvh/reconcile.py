"""Reconciliation of contourqa's DVHs with the planning system's DVHSequence."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from contourqa.dvh.engine import DVH
from contourqa.dvh.occupancy import median
from contourqa.errors import MetricError
from contourqa.io.rtdose import PlanningSystemDVH

__all__ = ["MetricComparison", "Reconciliation", "reconcile"]

_COMPARED = ("volume", "Dmin", "Dmax", "Dmean", "D98%", "D95%", "D50%", "D2%")


@dataclass(frozen=True)
class MetricComparison:
    """One metric from both engines; ``difference = contourqa - planning system``."""

    metric: str
    contourqa: float
    planning_system: float
    difference: float
    unit: str


@dataclass(frozen=True)
class Reconciliation:
    """Comparison of one ROI.

    Attributes
    ----------
    roi_name : str
    comparisons : tuple of MetricComparison
    likely_causes : tuple of str
        Plain-language explanations, most likely first.
    """

    roi_name: str
    comparisons: tuple[MetricComparison, ...]
    likely_causes: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"roi": self.roi_name,
                "comparisons": [c.__dict__ for c in self.comparisons],
                "likely_causes": list(self.likely_causes)}


class _TPSCurve:
    """The planning system's cumulative DVH in cc (or % when only % is given)."""

    def __init__(self, tps: PlanningSystemDVH, volume_cc_hint: float) -> None:
        edges = np.concatenate([[0.0], np.asarray(tps.dose_bins_gy, float)])
        vols = np.asarray(tps.volumes, float)
        if tps.dvh_type.startswith("DIFF"):
            cum = np.concatenate([np.cumsum(vols[::-1])[::-1], [0.0]])
        else:
            # cumulative values belong to the bins' lower edges
            cum = np.concatenate([vols, [vols[-1] if len(vols) else 0.0]])
        if tps.volume_units in ("PERCENT", "PER_U"):
            scale = 100.0 if tps.volume_units == "PERCENT" else 1.0
            cum = cum / scale * volume_cc_hint
        self.edges, self.cum = edges, np.minimum.accumulate(cum)
        self.tps = tps

    @property
    def volume_cc(self) -> float:
        return float(self.cum[0])

    def dose_at_volume(self, v: float) -> float:
        if v <= 0:  # the upper edge of the last bin holding volume
            nz = np.nonzero(self.cum > 0)[0]
            return float(self.edges[min(nz[-1] + 1, len(self.edges) - 1)]) if len(nz) else 0.0
        if not np.any(self.cum < v):
            return float(self.edges[-1])
        idx = int(np.argmax(self.cum < v))
        if idx == 0:
            return float(self.edges[0])
        v0, v1 = self.cum[idx - 1], self.cum[idx]
        e0, e1 = self.edges[idx - 1], self.edges[idx]
        return float(e0 + (v0 - v) / (v0 - v1) * (e1 - e0)) if v0 > v1 else float(e0)

    def value(self, metric: str) -> float:
        t = self.tps
        if metric == "volume":
            return self.volume_cc
        if metric == "Dmin":
            return t.minimum_gy if t.minimum_gy is not None else self.dose_at_volume(self.volume_cc)
        if metric == "Dmax":
            # some systems write 0 when they did not compute it
            return t.maximum_gy if t.maximum_gy else self.dose_at_volume(0.0)
        if metric == "Dmean":
            if t.mean_gy is not None:
                return t.mean_gy
            diff = self.cum[:-1] - self.cum[1:]
            mids = 0.5 * (self.edges[:-1] + self.edges[1:])
            return float(np.sum(diff * mids) / max(diff.sum(), 1e-12))
        pct = float(metric[1:-1])
        return self.dose_at_volume(pct / 100.0 * self.volume_cc)


def reconcile(dvh: DVH, tps: PlanningSystemDVH) -> Reconciliation:
    """Compare one contourqa DVH with the planning system's DVH of the same ROI.

    Likely causes are inferred from the pattern of differences: a volume difference
    near the end-cap volume points to end caps; a Dmax/Dmin difference within the
    planning system's bin width to its binning; dose differences with matching volume
    to sampling (the planning system supersamples differently).
    """
    curve = _TPSCurve(tps, dvh.volume_cc)
    comps = []
    for m in _COMPARED:
        try:
            ours = dvh.metric(m)
            theirs = curve.value(m)
        except (MetricError, ValueError):
            continue
        if not (math.isfinite(ours) and math.isfinite(theirs)):
            continue
        comps.append(MetricComparison(m, ours, theirs, ours - theirs, "cc" if m == "volume" else "Gy"))
    causes: list[str] = []
    by = {c.metric: c for c in comps}
    bin_w = median(np.diff(curve.edges)) if len(curve.edges) > 1 else 0.0
    vol = by.get("volume")
    if vol is not None and vol.planning_system > 0:
        rel = vol.difference / vol.planning_system
        cap = dvh.cap_volume_cc
        if abs(rel) > 0.01:
            if cap > 0 and abs(abs(vol.difference) - cap) < 0.35 * cap:
                causes.append(f"End caps: the volumes differ by {vol.difference:+.3g} cc, close to "
                              f"contourqa's end-cap volume ({cap:.3g} cc); the planning system "
                              f"appears to {'omit' if vol.difference > 0 else 'extend'} end caps.")
            elif abs(rel) > 0.05 and dvh.volume_cc < 5:
                causes.append(f"Small-structure sampling: volumes differ by {100 * rel:+.1f}% on a "
                              f"{dvh.volume_cc:.3g} cc structure; the planning system's voxel-based "
                              "occupancy is coarse at this size.")
            else:
                causes.append(f"Structure model: volumes differ by {100 * rel:+.1f}% (contour "
                              "rasterisation or interpolation between planes).")
    for m in ("Dmax", "Dmin"):
        c = by.get(m)
        if c is not None and bin_w > 0 and abs(c.difference) <= 1.5 * bin_w and abs(c.difference) > 1e-6:
            causes.append(f"Binning: {m} differs by {c.difference:+.3g} Gy, within the planning "
                          f"system's {bin_w:.3g} Gy bin width.")
    doses = [c for c in comps if c.unit == "Gy" and c.planning_system > 0]
    big = [c for c in doses if abs(c.difference) > max(0.02 * c.planning_system, 1.5 * bin_w)]
    if big and (vol is None or abs(vol.difference) <= 0.02 * max(vol.planning_system, 1e-9)):
        causes.append("Dose sampling: volumes agree but " + ", ".join(c.metric for c in big)
                      + " differ by more than 2%; the engines sample the dose gradient at the "
                      "structure edge differently (supersampling, interpolation).")
    if not causes:
        causes.append("Agreement within 1% in volume and 2% in dose (or one bin).")
    return Reconciliation(dvh.roi_name, tuple(comps), tuple(causes))
