"""Structure volumes without a dose: the DVH engine's slab model on an empty grid.

A structure set checked without an RT Dose (contouring review only) still needs each
ROI's volume, computed with the same conventions as the DVH (slabs reaching halfway to
the neighbouring planes, even-odd combination, end caps, shape interpolation), so that
a volume never means two things in one report.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from contourqa.dvh.engine import compute_dvhs
from contourqa.dvh.options import DVHOptions
from contourqa.geometry import VolumeGeometry
from contourqa.io.rtdose import DoseGrid
from contourqa.io.rtstruct import StructureSet

__all__ = ["structure_volumes_cc"]

#: Spacing of the empty grid (mm); it sets the in-plane sampling lattice, not the
#: volume model (sampling is refined adaptively per structure).
_GRID_MM = 2.0


def structure_volumes_cc(structure_set: StructureSet, *,
                         options: DVHOptions = DVHOptions()) -> dict[int, float]:
    """Volume (cc) of every ROI with closed contours, by ROI number.

    Contours must lie on axial planes (as the DVH engine requires); an empty dict when
    no ROI has closed contours.
    """
    rois = [r for r in structure_set.rois if not r.is_empty]
    if not rois:
        return {}
    pts = np.concatenate([c.points_mm for r in rois for c in r.closed_contours])
    lo = pts.min(axis=0) - _GRID_MM
    hi = pts.max(axis=0) + _GRID_MM
    spacing = np.full(3, _GRID_MM)
    shape = tuple(int(n) for n in (np.ceil((hi - lo) / spacing) + 1)[::-1])
    geometry = VolumeGeometry(shape=(shape[0], shape[1], shape[2]), origin_mm=lo,
                              spacing_mm=spacing)
    zero = np.zeros(geometry.shape)
    zero.flags.writeable = False
    empty = DoseGrid(paths=(Path("<no dose>"),), sop_instance_uids=("",),
                     frame_of_reference_uid=structure_set.frame_of_reference_uid,
                     geometry=geometry, dose_gy=zero, summation_type="PLAN",
                     dose_type="PHYSICAL", referenced_plan_uids=())
    dvhs = compute_dvhs(rois, empty, options=options)
    return {d.roi_number: d.volume_cc for d in dvhs.values()}
