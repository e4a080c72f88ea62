"""What every rule of one case shares: the case, its roles and sectors, the resolved
mode (with its evidence), the merged thresholds, and masks on one grid (computed once).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from contourqa.case import Case
from contourqa.errors import GeometryError
from contourqa.geometry import VolumeGeometry
from contourqa.io.rtstruct import ROI
from contourqa.masks import crop_geometry, roi_mask
from contourqa.rules.model import Mode, Rule, RuleOptions, rule_data
from contourqa.sectors import SectorAnalysis
from contourqa.structures import Role, RoleTable

__all__ = ["RuleContext", "deep_merge", "resolve_mode"]

_GRID_ROLES = (Role.GTV, Role.CTV, Role.PTV, Role.SPINAL_CORD, Role.CORD_PRV, Role.SPINAL_CANAL,
               Role.THECAL_SAC)


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``over``, tables merged recursively (inputs untouched)."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _rois_of(case: Case, roles: RoleTable, wanted: Sequence[Role]) -> list[ROI]:
    if case.structure_set is None:
        return []
    numbers = {a.roi_number for a in roles if a.role in wanted}
    return [r for r in case.structure_set.rois if r.number in numbers and not r.is_empty]


def _bbox_points(rois: Sequence[ROI]) -> NDArray[np.float64] | None:
    pts = [c.points_mm for r in rois for c in r.closed_contours]
    return np.concatenate(pts) if pts else None


def resolve_mode(case: Case, roles: RoleTable, options: RuleOptions) -> tuple[Mode, str]:
    """The mode of this run and the evidence for it.

    ``auto`` becomes ``postop`` when ROI names (or the plan label) match the
    post-operative pattern of ``rules/data/mode.toml`` or when at least
    ``min_hardware_voxels`` CT voxels above ``hardware_hu`` lie within
    ``search_margin_mm`` of the vertebrae and targets; otherwise ``upfront``.
    """
    if options.mode is not Mode.AUTO:
        return Mode(options.mode), f"mode {Mode(options.mode).value} chosen by the user"
    cfg = deep_merge(rule_data("mode")["auto"], options.profile.params.get("mode.auto", {}))
    pattern = re.compile(str(cfg["name_pattern"]), re.IGNORECASE)
    evidence = []
    if case.structure_set is not None:
        names = [r.name for r in case.structure_set.rois if pattern.search(r.name)]
        if names:
            evidence.append(f"ROI name(s) {', '.join(repr(n) for n in names)}")
    if case.plan is not None and case.plan.label and pattern.search(case.plan.label):
        evidence.append(f"plan label {case.plan.label!r}")
    n_hw = hardware_voxels(case, roles, hu=float(cfg["hardware_hu"]),
                           margin_mm=float(cfg["search_margin_mm"]))
    if n_hw is not None and n_hw >= int(cfg["min_hardware_voxels"]):
        evidence.append(f"{n_hw} CT voxels above {cfg['hardware_hu']:g} HU (hardware density) "
                        "near the vertebrae/targets")
    if evidence:
        return Mode.POSTOP, "auto: post-operative, from " + "; ".join(evidence)
    ct = ("no CT voxel above "f"{cfg['hardware_hu']:g} HU near the target" if n_hw is not None
          else "no CT to search for hardware")
    return Mode.UPFRONT, f"auto: upfront (no post-operative ROI name, {ct})"


def _search_box(case: Case, roles: RoleTable, margin_mm: float
                ) -> tuple[tuple[int, int, int], tuple[int, int, int]] | None:
    if case.image is None:
        return None
    geo = case.image.geometry
    pts = _bbox_points(_rois_of(case, roles, (*_GRID_ROLES, Role.VERTEBRA)))
    if pts is None:
        return (0, 0, 0), geo.shape
    idx = geo.patient_to_index(pts)
    pad = margin_mm / geo.spacing_mm[::-1]
    lo = np.floor(idx.min(axis=0) - pad).astype(int)
    hi = np.ceil(idx.max(axis=0) + pad).astype(int) + 1
    lo = np.clip(lo, 0, np.asarray(geo.shape) - 1)
    hi = np.clip(hi, lo + 1, np.asarray(geo.shape))
    return (int(lo[0]), int(lo[1]), int(lo[2])), (int(hi[0]), int(hi[1]), int(hi[2]))


def hardware_voxels(case: Case, roles: RoleTable, *, hu: float, margin_mm: float) -> int | None:
    """Number of CT voxels above ``hu`` near the vertebrae and targets (None: no CT)."""
    box = _search_box(case, roles, margin_mm)
    if box is None or case.image is None:
        return None
    (k0, j0, i0), (k1, j1, i1) = box
    return int(np.count_nonzero(case.image.pixels[k0:k1, j0:j1, i0:i1] > hu))


@dataclass(eq=False)
class RuleContext:
    """Shared state of one case's rule evaluation (built by the runner)."""

    case: Case
    roles: RoleTable
    sectors: SectorAnalysis | None
    options: RuleOptions
    mode: Mode
    mode_evidence: str
    _masks: dict[int, NDArray[np.bool_]] = field(default_factory=dict)
    _distances: dict[int, NDArray[np.float64]] = field(default_factory=dict)
    #: Results shared between rules (e.g. the cut-back volumes), keyed by the rule module.
    memo: dict[Any, Any] = field(default_factory=dict)

    # -- thresholds ----------------------------------------------------------------
    def params(self, rule: Rule) -> dict[str, Any]:
        """The rule's table from its data file, with enabled variants and the
        profile's overrides merged in."""
        return self.params_for(rule.rule_set, rule.code)

    def params_for(self, rule_set: str, code: str) -> dict[str, Any]:
        """The table of rule ``code`` in the data file ``rule_set``, with enabled
        variants and the profile's overrides merged in."""
        data = rule_data(rule_set)
        table = dict(data.get(code, {}))
        variants = table.pop("variants", {})
        for name in sorted(self.options.all_variants & set(variants)):
            table = deep_merge(table, variants[name])
        return deep_merge(table, self.options.profile.params.get(code, {}))

    def data(self, rule_set: str, key: str) -> dict[str, Any]:
        """Any table of a rule-set file (e.g. the ISRC table), variants merged."""
        table = dict(rule_data(rule_set).get(key, {}))
        variants = table.pop("variants", {})
        for name in sorted(self.options.all_variants & set(variants)):
            table = deep_merge(table, variants[name])
        return table

    # -- structures ----------------------------------------------------------------
    def rois(self, role: Role) -> list[ROI]:
        """Non-empty ROIs with ``role``, in structure-set order."""
        return _rois_of(self.case, self.roles, (role,))

    def roi(self, role: Role) -> tuple[ROI | None, str]:
        """The ROI of ``role`` for the rules and a note on how it was chosen.

        Several ROIs: the unambiguous one if the role table has it, else the one with
        the most contour points (usually the main target).
        """
        rois = self.rois(role)
        if not rois:
            return None, f"no non-empty {role.value} ROI"
        if len(rois) == 1:
            return rois[0], ""
        one = self.roles.one(role)
        if one is not None:
            for r in rois:
                if r.number == one.roi_number:
                    return r, ""
        best = max(rois, key=lambda r: sum(len(c.points_mm) for c in r.closed_contours))
        others = ", ".join(r.name for r in rois if r is not best)
        return best, f"{best.name} used (most contour points; also {others})"

    # -- grid and masks --------------------------------------------------------------
    @cached_property
    def grid(self) -> tuple[VolumeGeometry | None, str]:
        """The mask grid: the CT grid cropped around targets and cord, or (no CT) a
        grid built from the contours; with a note on which."""
        cfg = self.data("margins", "measure")
        margin = float(cfg.get("grid_margin_mm", 10.0))
        rois = _rois_of(self.case, self.roles, _GRID_ROLES)
        pts = _bbox_points(rois)
        if pts is None:
            return None, "no target or cord contours"
        if self.case.image is not None:
            box = _search_box(self.case, self.roles, margin)
            assert box is not None
            return crop_geometry(self.case.image.geometry, *box), "CT grid"
        zs = np.unique(np.round(pts[:, 2], 3))
        dz = float(np.median(np.diff(zs))) if zs.size > 1 else 1.0
        px = float(cfg.get("grid_pixel_mm", 1.0))
        lo = pts.min(axis=0) - np.array([margin, margin, 0.0])
        hi = pts.max(axis=0) + np.array([margin, margin, 0.0])
        shape = (round((hi[2] - lo[2]) / dz) + 1,
                 int(np.ceil((hi[1] - lo[1]) / px)) + 1, int(np.ceil((hi[0] - lo[0]) / px)) + 1)
        geo = VolumeGeometry(shape=shape, origin_mm=lo, spacing_mm=np.array([px, px, dz]))
        return geo, f"grid from the contours ({px:g} mm pixels, {dz:g} mm planes; no CT)"

    def mask(self, roi: ROI) -> NDArray[np.bool_]:
        """Voxel-centre mask of ``roi`` on :attr:`grid` (cached).

        Raises
        ------
        GeometryError
            No grid, or the grid is not axial.
        """
        geo, note = self.grid
        if geo is None:
            raise GeometryError(f"No mask grid: {note}.")
        if roi.number not in self._masks:
            self._masks[roi.number] = roi_mask(roi, geo)
        return self._masks[roi.number]

    def distance_mm(self, roi: ROI) -> NDArray[np.float64]:
        """Distance (mm) from every voxel centre of :attr:`grid` to the nearest voxel of
        ``roi`` (0 inside; ``inf`` everywhere for an ROI with no voxel), cached."""
        if roi.number not in self._distances:
            m = self.mask(roi)
            geo, _ = self.grid
            assert geo is not None
            self._distances[roi.number] = (
                ndimage.distance_transform_edt(~m, sampling=tuple(geo.spacing_mm[::-1]))
                if m.any() else np.full(m.shape, np.inf))
        return self._distances[roi.number]

    @property
    def voxel_cc(self) -> float:
        geo, _ = self.grid
        return geo.voxel_volume_cc if geo is not None else float("nan")
