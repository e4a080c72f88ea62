"""Results of the sector analysis and the ``sectors`` section of the JSON report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from contourqa.anatomy.density import BoneDensity, DensityClass
from contourqa.findings import Finding, Status
from contourqa.geometry import VolumeGeometry
from contourqa.sectors.frame import SECTORS, VertebraFrame
from contourqa.sectors.options import SectorOptions
from contourqa.sectors.partition import VertebraPartition

if TYPE_CHECKING:
    from contourqa.sectors.levels import LevelClaim

#: findings of the level verification (:mod:`contourqa.sectors.levels`)
_LEVEL_CODES = frozenset({"sectors.level_mismatch", "sectors.level_unverified"})


@dataclass(frozen=True)
class VertebraSectors:
    """GTV and CTV involvement of one vertebra.

    Sector-indexed tuples have six entries, sectors 1-6 in order.

    Attributes
    ----------
    index : int
        Position in the analysed column, inferior first (0 = most inferior).
    level : str or None
        Vertebral level, None when it cannot be known.
    level_source : str
        ``roi_name``, ``user``, ``plan``, ``counted``, ``image`` or ``unknown``: where
        ``level`` was taken from.
    vertebra_source : str
        ``roi:<name>`` or ``ct``.
    frame : VertebraFrame
    sector_volume_cc : tuple of float
    gtv_sector_cc : tuple of float
    gtv_sectors : tuple of int
        Involved sectors, sorted.
    body_laterality : {"left", "right", "diffuse", "central", "none"}
    epidural, epidural_cc, epidural_extent_deg, epidural_circumferential
        Epidural component (GTV in the canal) of this level.
    paraspinal, paraspinal_cc
        Paraspinal component (GTV outside bone and canal) of this level.
    ctv_sector_cc, ctv_sector_coverage_pct : tuple of float
    ctv_sectors : tuple of int
        Sectors the CTV covers (``ctv_covered_min_pct``).
    ctv_epidural_cc : float
        CTV inside the canal at this level.
    density : BoneDensity or None
        CT density of the GTV's bone against the rest of this vertebra's bone
        (lytic, blastic, mixed); None when not measured.
    gtv_parts : tuple of str or None
        Anatomical parts the GTV involves, among ``body``, ``pedicle_left``,
        ``pedicle_right``, ``lamina_left``, ``lamina_right``,
        ``transverse_process_left``, ``transverse_process_right``, ``spinous``, in
        part order; None when not known (the ISRC-07 lamina rows then read sectors 3
        and 5).
    level_sources : tuple of LevelClaim
        What each source says about this vertebra's level.

    :meth:`to_json` writes the entry of the report's ``sectors`` section
    (:attr:`contourqa.report.record.CaseReport.sectors`).
    """

    index: int
    level: str | None
    level_source: str
    vertebra_source: str
    frame: VertebraFrame
    sector_volume_cc: tuple[float, ...]
    gtv_sector_cc: tuple[float, ...]
    gtv_sectors: tuple[int, ...]
    body_laterality: str
    epidural: bool
    epidural_cc: float
    epidural_extent_deg: float
    epidural_circumferential: bool
    paraspinal: bool
    paraspinal_cc: float
    ctv_sector_cc: tuple[float, ...]
    ctv_sector_coverage_pct: tuple[float, ...]
    ctv_sectors: tuple[int, ...]
    ctv_epidural_cc: float
    density: BoneDensity | None = None
    gtv_parts: tuple[str, ...] | None = None
    level_sources: tuple[LevelClaim, ...] = ()

    @property
    def gtv_sector_pct(self) -> tuple[float, ...]:
        """GTV volume in each sector as % of the sector's bone."""
        return tuple(100.0 * g / s if s > 0 else 0.0
                     for g, s in zip(self.gtv_sector_cc, self.sector_volume_cc, strict=True))

    def to_json(self) -> dict[str, Any]:
        """The report entry (field names as in issue 4; extra fields after them)."""
        def per_sector(values: Sequence[float], nd: int) -> dict[str, float]:
            return {str(s): round(float(v), nd) for s, v in zip(SECTORS, values, strict=True)}

        return {
            "level": self.level,
            "index": self.index,
            "gtv_sectors": list(self.gtv_sectors),
            "gtv_parts": None if self.gtv_parts is None else list(self.gtv_parts),
            "gtv_sector_cc": per_sector(self.gtv_sector_cc, 4),
            "body_laterality": self.body_laterality,
            "epidural": self.epidural,
            "epidural_extent_deg": round(self.epidural_extent_deg, 1),
            "paraspinal": self.paraspinal,
            "ctv_sectors": list(self.ctv_sectors),
            "ctv_sector_coverage_pct": per_sector(self.ctv_sector_coverage_pct, 1),
            "level_source": self.level_source,
            "level_sources": [c.to_json() for c in self.level_sources],
            "vertebra_source": self.vertebra_source,
            "gtv_sector_pct": per_sector(self.gtv_sector_pct, 2),
            "sector_volume_cc": per_sector(self.sector_volume_cc, 3),
            "epidural_cc": round(self.epidural_cc, 4),
            "epidural_circumferential": self.epidural_circumferential,
            "paraspinal_cc": round(self.paraspinal_cc, 4),
            "ctv_sector_cc": per_sector(self.ctv_sector_cc, 4),
            "ctv_epidural_cc": round(self.ctv_epidural_cc, 4),
            "frame": self.frame.to_json(),
            **self._density_json(),
        }

    def _density_json(self) -> dict[str, Any]:
        d = self.density or BoneDensity.unknown("not measured")
        return {
            "gtv_density": d.category.value,
            "gtv_median_hu": None if d.gtv_median_hu is None else round(d.gtv_median_hu, 1),
            "bone_median_hu": None if d.bone_median_hu is None else round(d.bone_median_hu, 1),
            "gtv_density_reason": d.reason if d.category is DensityClass.UNKNOWN else None,
        }


@dataclass(frozen=True, eq=False)
class SectorAnalysis:
    """Result of :func:`analyse_sectors`.

    Attributes
    ----------
    vertebrae : tuple of VertebraSectors
        One per vertebra touched by the GTV or CTV, inferior first.
    findings : tuple of Finding
        Why something was not evaluated (``sectors.*`` codes), and warnings.
    options : SectorOptions
    canal_source : str or None
    geometry : VolumeGeometry or None
        The analysed grid (a crop of the CT grid); None when nothing was evaluated.
    crop_start_kji : tuple of int
        Voxel of the CT grid at the crop's (0, 0, 0).
    labels : ndarray of shape (S, R, C), int16, or None
        ``10 * (column index + 1) + sector`` for every bone voxel, 0 elsewhere.
    gtv, ctv, canal, cord : ndarray of shape (S, R, C), bool, or None
        Masks on ``geometry`` (for pictures); ``canal`` is the canal the epidural
        component was measured in (bony canals, disc levels bridged, with the canal
        ROIs).
    frames : tuple of VertebraFrame or None
        One per vertebra of the column (None where it could not be partitioned).
    part_labels : ndarray of shape (S, R, C), int16, or None
        ``10 * (column index + 1) + part code`` (:data:`contourqa.sectors.parts.PART_NAMES`).
    partitions : tuple of VertebraPartition or None
        Each vertebra's partition (landmarks, bony canal, restored outline).
    """

    vertebrae: tuple[VertebraSectors, ...]
    findings: tuple[Finding, ...]
    options: SectorOptions
    canal_source: str | None = None
    geometry: VolumeGeometry | None = None
    crop_start_kji: tuple[int, int, int] = (0, 0, 0)
    labels: NDArray[np.int16] | None = None
    gtv: NDArray[np.bool_] | None = None
    ctv: NDArray[np.bool_] | None = None
    canal: NDArray[np.bool_] | None = None
    cord: NDArray[np.bool_] | None = None
    frames: tuple[VertebraFrame | None, ...] = field(default=())
    part_labels: NDArray[np.int16] | None = None
    partitions: tuple[VertebraPartition | None, ...] = field(default=())

    @property
    def evaluated(self) -> bool:
        """True when the sector map was evaluated (an unverified *level* does not
        stop it: the level findings stand on their own)."""
        return not any(f.status is Status.NOT_EVALUATED and f.code not in _LEVEL_CODES
                       for f in self.findings)

    def entry(self, level: str) -> VertebraSectors:
        """The entry of one level.

        Raises
        ------
        KeyError
            No analysed vertebra has this level.
        """
        for v in self.vertebrae:
            if v.level == level:
                return v
        raise KeyError(f"No analysed vertebra is {level!r}; levels are "
                       f"{[v.level for v in self.vertebrae]}.")

    def to_json(self) -> list[dict[str, Any]]:
        """The ``sectors`` section of the JSON report: one entry per vertebra."""
        return [v.to_json() for v in self.vertebrae]
