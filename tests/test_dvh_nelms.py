"""A representative subset of the Nelms et al. 2015 analytical DVH benchmark.

Truth: ``../shared/data/nelms_analytical_dvh/ANALYTICAL/analytical_values.csv`` (cGy,
converted to Gy here).  The full 630-value run is ``benchmarks/bench_dvh_accuracy.py``.
"""

from __future__ import annotations

import csv
from functools import cache

import pytest
from _dvh_phantoms import SHARED_DATA

from contourqa.dvh import compute_dvh
from contourqa.io.rtdose import DoseGrid, read_dose
from contourqa.io.rtstruct import read_structure_set

NELMS = SHARED_DATA / "nelms_analytical_dvh"
COLUMNS = {"volume": "Total Volume (cc)", "Dmin": "Dmin", "Dmax": "Dmax", "Dmean": "Dmean",
           "D99%": "D99", "D95%": "D95", "D5%": "D5", "D1%": "D1", "D0.03cc": "D0.03cc"}
CASES = [  # structure, dose voxel mm, gradient: spheres, cylinders, cones, rotated, shifted
    ("Sphere_10_0", 1, "SI"), ("Sphere_30_0", 3, "SI"), ("Sphere_30_X15", 3, "AP"),
    ("Cylinder_10_X05", 1, "AP"), ("Cylinder_30_X15Z15", 3, "SI"), ("Cone_30_0", 3, "SI"),
    ("Cone_10_X05Z05", 1, "SI"), ("RtCone_10_X05", 1, "AP"), ("RtCylinder_10_X05Z05", 1, "SI"),
    ("Sphere_02_0", 2, "AP"), ("RtCylinder_30_X15Z15", 3, "SI"), ("RtCylinder_30_0", 3, "AP"),
    ("RtCone_30_0", 3, "SI"),
]

pytestmark = pytest.mark.skipif(not NELMS.is_dir(), reason=f"{NELMS} not present")


def truth(structure: str, voxel: int, gradient: str) -> dict[str, float]:
    with open(NELMS / "ANALYTICAL" / "analytical_values.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if (row["Structure name"] == structure and row["Dose Voxel (mm)"] == str(voxel)
                    and gradient in row["Gradient direction"]):
                return {m: float(row[c]) / (1 if m == "volume" else 100) for m, c in COLUMNS.items()}
    raise LookupError(structure)


@cache
def dose(voxel: int, gradient: str) -> DoseGrid:
    name = "AntPost" if gradient == "AP" else "SupInf"
    return read_dose(NELMS / "DOSE GRIDS" / f"Linear_{name}_{voxel}mm_Aligned.dcm")


@pytest.mark.parametrize("structure, voxel, gradient", CASES)
def test_nelms_case_within_3_percent(structure: str, voxel: int, gradient: str) -> None:
    ss = read_structure_set(NELMS / "STRUCTURES" / f"{structure}.dcm")
    (roi,) = [r for r in ss.rois if not r.is_empty]
    dvh = compute_dvh(roi, dose(voxel, gradient))
    for metric, expected in truth(structure, voxel, gradient).items():
        assert dvh.metric(metric) == pytest.approx(expected, rel=0.03), metric
