"""Spine anatomy for the sector analysis: vertebrae, canal and cord, and their levels.

Public surface::

    SpineAnatomy, Vertebra          masks on one grid (inferior first)
    canal_from_ring(bone, ...)      the canal as the hole of the vertebral ring
    segment_spine(pixels, ...)      vertebrae and canal from the CT (no vertebra ROIs)
    CTSegmentationOptions           its thresholds (anatomy/options.py)
    name_levels(...), levels_in_text(...)
"""

from contourqa.anatomy.ct import CTSegmentation, segment_spine
from contourqa.anatomy.options import CTSegmentationOptions
from contourqa.anatomy.levels import levels_in_text, name_levels
from contourqa.anatomy.spine import SpineAnatomy, Vertebra, canal_from_ring

__all__ = [
    "CTSegmentation", "CTSegmentationOptions", "SpineAnatomy", "Vertebra", "canal_from_ring",
    "levels_in_text", "name_levels", "segment_spine",
]
