"""Bone density of the GTV against the rest of its vertebra: lytic, blastic or mixed.

A lytic metastasis replaces bone with soft tissue, a blastic one adds bone; the CT shows
either as a change of HU inside the GTV's bone relative to the same vertebra's bone
elsewhere.  The comparison uses medians (robust to the GTV's edge and to noise) and
leaves out the bone near the bone's edge (cortex, end plates, partial volume) so that
marrow is compared with marrow.  The thresholds are contourqa's own (knowledge-base
status D, not published) and live in ``constraints/data/rules/vcf.toml``
``[gtv_density]``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from contourqa.geometry import VolumeGeometry

__all__ = ["BoneDensity", "DensityClass", "DensityThresholds", "classify_density",
           "gtv_bone_density", "lytic_factor"]


class DensityClass(str, enum.Enum):
    """CT appearance of the GTV's bone relative to the rest of its vertebra."""

    LYTIC = "lytic"
    BLASTIC = "blastic"
    MIXED = "mixed"        # mixed or isodense: no change beyond the margin
    UNKNOWN = "unknown"    # not measurable (no CT, regions too small)


@dataclass(frozen=True, kw_only=True)
class DensityThresholds:
    """Thresholds of the density comparison (``vcf.toml`` ``[gtv_density]``).

    Parameters
    ----------
    cortex_exclusion_mm : float
        Bone voxels whose centre lies within this distance of the nearest non-bone
        voxel centre (3D, mm) are left out of both regions.
    reference_gap_mm : float
        The reference bone lies farther than this from the GTV (mm).
    min_region_cc : float
        Each region must hold at least this volume for a measurement (cc).
    min_margin_hu : float
        Smallest HU difference that counts as lytic or blastic.
    margin_fraction : float
        The margin is ``max(min_margin_hu, margin_fraction * |bone median HU|)``.
    source, status : str
        Where the numbers come from (status ``"D"``: derived, not published).
    """

    cortex_exclusion_mm: float
    reference_gap_mm: float
    min_region_cc: float
    min_margin_hu: float
    margin_fraction: float
    source: str = ""
    status: str = "D"

    def __post_init__(self) -> None:
        for name in ("cortex_exclusion_mm", "reference_gap_mm", "min_region_cc",
                     "min_margin_hu", "margin_fraction"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f'Argument "{name}" must be >= 0, got {getattr(self, name)!r}.')

    @classmethod
    def builtin(cls) -> DensityThresholds:
        """The thresholds of the built-in rule file ``vcf.toml``."""
        from contourqa.constraints.library import load_rules

        t: dict[str, Any] = load_rules("vcf")["gtv_density"]
        return cls(cortex_exclusion_mm=float(t["cortex_exclusion_mm"]),
                   reference_gap_mm=float(t["reference_gap_mm"]),
                   min_region_cc=float(t["min_region_cc"]),
                   min_margin_hu=float(t["min_margin_hu"]),
                   margin_fraction=float(t["margin_fraction"]),
                   source=str(t["source"]), status=str(t["status"]))

    def margin_hu(self, bone_median_hu: float) -> float:
        """HU difference from the bone median beyond which the GTV is lytic or blastic."""
        return max(self.min_margin_hu, self.margin_fraction * abs(bone_median_hu))


@dataclass(frozen=True)
class BoneDensity:
    """Density of one vertebra's GTV bone compared with the rest of its bone.

    Attributes
    ----------
    category : DensityClass
    gtv_median_hu, bone_median_hu : float or None
        Median HU of the GTV's bone and of the reference bone (None when unknown).
    gtv_cc, bone_cc : float
        Volumes of the two measured regions, cc.
    margin_hu : float or None
        The margin the difference was compared with.
    reason : str or None
        Why the category is ``unknown``.
    """

    category: DensityClass
    gtv_median_hu: float | None = None
    bone_median_hu: float | None = None
    gtv_cc: float = 0.0
    bone_cc: float = 0.0
    margin_hu: float | None = None
    reason: str | None = None

    @classmethod
    def unknown(cls, reason: str) -> BoneDensity:
        """A density that could not be measured, with the reason."""
        return cls(category=DensityClass.UNKNOWN, reason=reason)

    def describe(self) -> str:
        """``"GTV median 45 HU vs bone 250 HU"``, or the reason it is unknown."""
        if self.gtv_median_hu is None or self.bone_median_hu is None:
            return self.reason or "not measured"
        return (f"GTV median {self.gtv_median_hu:.0f} HU vs bone "
                f"{self.bone_median_hu:.0f} HU")


def classify_density(gtv_median_hu: float, bone_median_hu: float, *,
                     thresholds: DensityThresholds) -> DensityClass:
    """Lytic, blastic or mixed from the two medians (HU)."""
    margin = thresholds.margin_hu(bone_median_hu)
    if gtv_median_hu < bone_median_hu - margin:
        return DensityClass.LYTIC
    if gtv_median_hu > bone_median_hu + margin:
        return DensityClass.BLASTIC
    return DensityClass.MIXED


def gtv_bone_density(hu: NDArray[Any], bone: NDArray[np.bool_], gtv: NDArray[np.bool_],
                     geometry: VolumeGeometry, *,
                     thresholds: DensityThresholds) -> BoneDensity:
    """Compare the HU of a vertebra's bone inside the GTV with the rest of its bone.

    Parameters
    ----------
    hu : ndarray of shape (S, R, C), HU
        CT on ``geometry``.
    bone : ndarray of shape (S, R, C), bool
        The vertebra's bone (lytic tumour included).
    gtv : ndarray of shape (S, R, C), bool
    geometry : VolumeGeometry
        Grid of the three arrays (axis order slice, row, column).
    thresholds : DensityThresholds

    Returns
    -------
    BoneDensity
        ``unknown`` with a reason when either region is smaller than
        ``thresholds.min_region_cc``.
    """
    if not (hu.shape == bone.shape == gtv.shape == tuple(geometry.shape)):
        raise ValueError(f'Arguments "hu", "bone" and "gtv" must have the grid\'s shape '
                         f"{tuple(geometry.shape)}, got {hu.shape}, {bone.shape}, {gtv.shape}.")
    if not (bone & gtv).any():
        return BoneDensity.unknown("no GTV in this vertebra's bone")
    # Work in the vertebra's bounding box (one voxel of padding keeps its edge visible).
    idx = np.argwhere(bone)
    lo = np.maximum(idx.min(axis=0) - 1, 0)
    hi = np.minimum(idx.max(axis=0) + 2, bone.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    b, g, h = bone[box], gtv[box], hu[box]
    sampling = geometry.spacing_mm[::-1]  # (slice, row, column) mm
    depth = ndimage.distance_transform_edt(np.pad(b, 1), sampling=sampling)[1:-1, 1:-1, 1:-1]
    interior = b & (depth > thresholds.cortex_exclusion_mm)
    gap = ndimage.distance_transform_edt(~g, sampling=sampling)
    inside = interior & g
    reference = interior & ~g & (gap > thresholds.reference_gap_mm)
    vcc = geometry.voxel_volume_cc
    gtv_cc = float(np.count_nonzero(inside)) * vcc
    bone_cc = float(np.count_nonzero(reference)) * vcc
    if gtv_cc < thresholds.min_region_cc or bone_cc < thresholds.min_region_cc:
        return BoneDensity(
            category=DensityClass.UNKNOWN, gtv_cc=gtv_cc, bone_cc=bone_cc,
            reason=(f"too little marrow to compare (GTV bone {gtv_cc:.2f} cc, other bone "
                    f"{bone_cc:.2f} cc deeper than {thresholds.cortex_exclusion_mm:g} mm; "
                    f"{thresholds.min_region_cc:g} cc needed)"))
    gtv_median = float(np.median(h[inside]))
    bone_median = float(np.median(h[reference]))
    return BoneDensity(category=classify_density(gtv_median, bone_median, thresholds=thresholds),
                       gtv_median_hu=gtv_median, bone_median_hu=bone_median,
                       gtv_cc=gtv_cc, bone_cc=bone_cc,
                       margin_hu=thresholds.margin_hu(bone_median))


def lytic_factor(measured: Sequence[tuple[str | None, BoneDensity]]
                 ) -> tuple[bool | None, str | None]:
    """The VCF "lytic lesion" factor from the densities of the involved vertebrae.

    Parameters
    ----------
    measured : sequence of (level, BoneDensity)
        One entry per vertebra holding GTV bone; level None when unknown.

    Returns
    -------
    lytic : bool or None
        True when any vertebra reads lytic; False when every measured one reads
        blastic; None otherwise (mixed or isodense may still hide lytic parts).
    evidence : str or None
        ``"from CT density at T10: GTV median 45 HU vs bone 250 HU"`` (the vertebrae
        that decided), None when nothing was measured.
    """
    known = [(level, d) for level, d in measured if d.category is not DensityClass.UNKNOWN]
    if not known:
        return None, None

    def text(items: Sequence[tuple[str | None, BoneDensity]]) -> str:
        return "; ".join(f"{level or 'unnamed vertebra'}: {d.describe()}" for level, d in items)

    lytic = [(level, d) for level, d in known if d.category is DensityClass.LYTIC]
    if lytic:
        return True, f"from CT density, {text(lytic)}"
    if all(d.category is DensityClass.BLASTIC for _, d in known):
        return False, f"CT density blastic, {text(known)}"
    return None, f"CT density neither lytic nor blastic, {text(known)}"
