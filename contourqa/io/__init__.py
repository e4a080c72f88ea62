"""DICOM reading: one reader per modality, and case discovery over a folder tree."""

from contourqa.io.rtdose import DoseGrid, PlanningSystemDVH, read_dose, sum_doses
from contourqa.io.rtstruct import ROI, Contour, ContourType, StructureSet, read_structure_set

__all__ = [
    "Contour", "ContourType", "DoseGrid", "PlanningSystemDVH", "ROI", "StructureSet",
    "read_dose", "read_structure_set", "sum_doses",
]
