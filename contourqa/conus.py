"""The conus: where the spinal-cord ROI ends, which levels lie below it, whether the
target lies below it, and whether the cord ROI reaches into the cauda equina."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from contourqa.io.rtstruct import ROI
from contourqa.structures.levels import level_index

__all__ = ["ConusReading", "below_level", "read_conus"]


@dataclass(frozen=True)
class ConusReading:
    """Where the cord ends.

    Attributes
    ----------
    cord_end_z_mm : float
        z of the cord ROI's most inferior contour (LPS, mm; smaller is inferior).
    conus_level : str or None
        Vertebral level whose z range holds the cord end (the next level above when it
        lies in a disc space); None without vertebra ROIs at that height.
    levels_below : tuple of str
        Vertebra ROIs wholly below the cord end, superior first.
    target_levels_below : tuple of str
        Those of ``levels_below`` the target (GTV/CTV/PTV) reaches.
    target_below_only : bool
        Every level the target reaches lies below the conus.
    """

    cord_end_z_mm: float
    conus_level: str | None
    levels_below: tuple[str, ...]
    target_levels_below: tuple[str, ...]
    target_below_only: bool

    def to_json(self) -> dict[str, Any]:
        return {"cord_end_z_mm": self.cord_end_z_mm, "conus_level": self.conus_level,
                "levels_below": list(self.levels_below),
                "target_levels_below": list(self.target_levels_below),
                "target_below_only": self.target_below_only}


def _z(roi: ROI) -> list[float]:
    return [float(c.points_mm[0, 2]) for c in roi.closed_contours]


def read_conus(*, cord: ROI, levels: Sequence[tuple[str | None, float, float]],
               targets: Sequence[ROI]) -> ConusReading:
    """Where ``cord`` ends among ``levels`` ((level, z_min, z_max) mm, any order).

    Parameters
    ----------
    cord : ROI
    levels : sequence of (str or None, float, float)
        Vertebra z ranges (from :func:`contourqa.epidural.level_ranges`).
    targets : sequence of ROI
        GTV, CTV and PTV ROIs.
    """
    zc = min(_z(cord))
    named = sorted([lv for lv in levels if lv[0]], key=lambda t: t[1])
    conus = next((lv for lv, z0, z1 in named if z0 - 1e-6 <= zc <= z1 + 1e-6), None)
    if conus is None:  # in a disc space: the level just above
        above = [lv for lv, z0, _ in named if z0 > zc]
        conus = above[0] if above else None
    below = tuple(str(lv) for lv, _, z1 in reversed(named) if z1 < zc)
    tz = [z for t in targets for z in _z(t)]
    reached = [str(lv) for lv, z0, z1 in named if tz and z0 <= max(tz) and z1 >= min(tz)]
    t_below = tuple(lv for lv in below if lv in reached)
    return ConusReading(cord_end_z_mm=zc, conus_level=conus, levels_below=below,
                        target_levels_below=t_below,
                        target_below_only=bool(reached) and set(reached) <= set(below))


def below_level(level: str, limit: str) -> bool:
    """``level`` lies below ``limit`` (e.g. L3 below L2)."""
    return level_index(level) > level_index(limit)
