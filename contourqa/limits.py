"""Input limits: what a file may cost to read, and values no real DICOM-RT object holds.

The numbers live in ``contourqa/data/limits.toml``, each with its rationale; readers
check them before decoding, and every error they raise names that file so that the
limit can be found and, for a legitimate object, raised.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["LIMITS_FILE", "InputLimits", "input_limits"]

#: Where the limits are, as named in error messages.
LIMITS_FILE = "contourqa/data/limits.toml"


@dataclass(frozen=True)
class InputLimits:
    """The limits of ``contourqa/data/limits.toml`` (see its rationales).

    Attributes
    ----------
    max_coordinate_mm : float
        Largest magnitude of a contour point or grid position, mm.
    max_roi_extent_mm : float
        Largest distance of a contour point from its ROI's median point, per axis, mm.
    min_spacing_mm, max_spacing_mm : float
        Bounds of pixel, slice and dose-grid spacings, mm.
    max_contours_per_roi, max_points_per_roi : int
        Contours and contour points of one ROI.
    max_inflated_bytes : int
        Size of a deflated file once inflated, bytes.
    max_voxels : int
        Rows x Columns x Frames (or slices) of one grid, checked before decoding.
    max_dose_gy : float
        Largest dose value of a dose grid, Gy.
    """

    max_coordinate_mm: float
    max_roi_extent_mm: float
    min_spacing_mm: float
    max_spacing_mm: float
    max_contours_per_roi: int
    max_points_per_roi: int
    max_inflated_bytes: int
    max_voxels: int
    max_dose_gy: float

    def where(self, key: str) -> str:
        """``"max_voxels = 400000000 (contourqa/data/limits.toml)"``: a limit as named in
        messages."""
        return f"{key} = {getattr(self, key)} ({LIMITS_FILE})"


@cache
def input_limits() -> InputLimits:
    """The built-in input limits (read once).

    Raises
    ------
    ValueError
        The data file lacks a limit or has one this version does not know.
    """
    text = resources.files("contourqa").joinpath("data", "limits.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    fields = set(InputLimits.__dataclass_fields__)
    if set(data) != fields:
        raise ValueError(f"{LIMITS_FILE}: expected the limits {sorted(fields)}, "
                         f"found {sorted(data)}.")
    values: dict[str, Any] = {}
    for name, f in InputLimits.__dataclass_fields__.items():
        value = data[name].get("value") if isinstance(data[name], dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{LIMITS_FILE}: [{name}] value must be a positive number.")
        values[name] = int(value) if f.type == "int" else float(value)
    return InputLimits(**values)
