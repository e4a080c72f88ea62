"""RT Dose reader: a 3D dose grid in Gy on a :class:`~contourqa.geometry.VolumeGeometry`."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from contourqa.errors import DicomReadError, DoseUnitsError, GeometryError, UnsupportedDicomError
from contourqa.findings import Finding, Status, input_problem
from contourqa.geometry import VolumeGeometry
from contourqa.io._read import check_grid_size, malformed_values_named, read_dataset, uid_of
from contourqa.io.rawdicom import RawDataset, read_raw_or_none
from contourqa.limits import input_limits

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["DoseGrid", "PlanningSystemDVH", "read_dose", "sum_doses"]

RTDOSE_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.2"
_OFFSET_TOL_MM = 1e-3


@dataclass(frozen=True, eq=False)
class PlanningSystemDVH:
    """One item of the RTDOSE DVHSequence, kept as the planning system wrote it.

    ``dose_bins_gy`` are the bin upper edges (cumulative sum of the DICOM bin
    widths, converted to Gy); ``volumes`` are in ``volume_units`` (``"CM3"``,
    ``"PERCENT"``, ``"PER_U"``).
    """

    referenced_roi_number: int
    dvh_type: str
    volume_units: str
    dose_bins_gy: NDArray[np.float64]
    volumes: NDArray[np.float64]
    minimum_gy: float | None
    maximum_gy: float | None
    mean_gy: float | None


@dataclass(frozen=True, eq=False)
class DoseGrid:
    """A dose distribution.

    Attributes
    ----------
    dose_gy : ndarray of shape (S, R, C), float64, Gy
    geometry : VolumeGeometry
    summation_type : str
        DoseSummationType (``PLAN``, ``FRACTION``, ``BEAM``, ...).
    dose_type : str
        DoseType (``PHYSICAL``, ``EFFECTIVE``, ``ERROR``).
    referenced_plan_uids : tuple of str
    relative_reference_gy : float or None
        Set when the file's DoseUnits is ``RELATIVE``: the dose (Gy) its value 1.0 was
        taken to mean (the prescription given to :func:`read_dose`); ``None`` for a
        dose in Gy.  Every absolute dose read from the grid rests on that assumption.
    """

    paths: tuple[Path, ...]
    sop_instance_uids: tuple[str, ...]
    frame_of_reference_uid: str | None
    geometry: VolumeGeometry
    dose_gy: NDArray[np.float64]
    summation_type: str
    dose_type: str
    referenced_plan_uids: tuple[str, ...]
    referenced_beam_numbers: tuple[int, ...] = ()
    planning_system_dvhs: tuple[PlanningSystemDVH, ...] = ()
    problems: tuple[Finding, ...] = field(default=())
    relative_reference_gy: float | None = None

    @property
    def max_gy(self) -> float:
        return float(self.dose_gy.max())


def _dvh_sequence(ds: Dataset | RawDataset, path: Path,
                  problems: list[Finding]) -> tuple[PlanningSystemDVH, ...]:
    out = []
    inconsistent: list[int] = []
    for item in ds.get("DVHSequence", []):
        data = np.asarray([float(v) for v in item.get("DVHData", [])], dtype=np.float64)
        if data.size < 2:
            continue
        units = str(item.get("DoseUnits", "GY")).upper()
        to_gy = 1.0 if units == "GY" else float("nan")
        dvh_scale = float(item.get("DVHDoseScaling", 1.0) or 1.0)
        widths, volumes = data[0::2], data[1::2]
        refs = item.get("DVHReferencedROISequence", [])
        number = int(refs[0].get("ReferencedROINumber", -1)) if refs else -1

        def opt(keyword: str) -> float | None:
            v = item.get(keyword, None)
            return float(v) * to_gy if v not in (None, "") else None

        bins = np.cumsum(widths) * dvh_scale * to_gy
        stats = [opt("DVHMinimumDose"), opt("DVHMaximumDose"), opt("DVHMeanDose")]
        if any(v is not None and v > 1.1 * bins[-1] + 0.01 for v in stats):
            # Seen in Eclipse exports: statistics in percent of the prescription
            # while DoseUnits says GY.  Dropped, and said, rather than misread.
            inconsistent.append(number)
            stats = [None, None, None]
        out.append(PlanningSystemDVH(
            referenced_roi_number=number, dvh_type=str(item.get("DVHType", "CUMULATIVE")).upper(),
            volume_units=str(item.get("DVHVolumeUnits", "CM3")).upper(),
            dose_bins_gy=bins, volumes=volumes,
            minimum_gy=stats[0], maximum_gy=stats[1], mean_gy=stats[2]))
    if inconsistent:
        problems.append(input_problem(
            "planning_dvh_statistics_inconsistent",
            f"the planning system's DVHs of ROI numbers {', '.join(map(str, inconsistent))} state "
            "a minimum, maximum or mean dose above the histogram's last bin (probably percent "
            "of prescription although DoseUnits is GY); those statistics are ignored, the "
            "histograms are kept.", path, status=Status.WARN))
    return tuple(out)


def _slice_positions(ds: Dataset | RawDataset, path: Path, n_frames: int) -> NDArray[np.float64]:
    """Frame offsets (mm) along the slice normal, relative to ImagePositionPatient."""
    raw = ds.get("GridFrameOffsetVector", None)
    if raw is None or len(raw) == 0:
        if n_frames == 1:
            return np.zeros(1)
        raise GeometryError(f"{path}: multi-frame RT Dose without GridFrameOffsetVector.")
    offsets = np.asarray([float(v) for v in raw], dtype=np.float64)
    if not np.all(np.abs(offsets) <= input_limits().max_coordinate_mm):
        raise GeometryError(f"{path}: GridFrameOffsetVector holds values that are not finite "
                            f"or beyond {input_limits().where('max_coordinate_mm')} mm.")
    if len(offsets) != n_frames:
        raise GeometryError(f"{path}: GridFrameOffsetVector has {len(offsets)} entries for "
                            f"{n_frames} frames.")
    if offsets[0] != 0.0:
        # Absolute form (PS3.3 C.8.8.3.2): offsets are positions along the normal;
        # the first equals ImagePositionPatient's component along it.
        iop = np.asarray([float(v) for v in ds.ImageOrientationPatient])
        normal = np.cross(iop[:3], iop[3:])
        ipp = np.asarray([float(v) for v in ds.ImagePositionPatient])
        first = float(ipp @ normal)
        if abs(offsets[0] - first) > 0.01:
            raise GeometryError(
                f"{path}: GridFrameOffsetVector starts at {offsets[0]} mm, which is neither 0 "
                f"(relative) nor the position of the first frame ({first:.3f} mm, absolute).")
        offsets = offsets - offsets[0]
    return offsets


def read_dose(path: str | Path, *, prescription_gy: float | None = None,
              dataset: Dataset | None = None) -> DoseGrid:
    """Read one RT Dose file into Gy.

    Parameters
    ----------
    path : path to an RTDOSE file.
    prescription_gy : float, optional
        Needed only when DoseUnits is ``RELATIVE``: relative values are then
        multiplied by it (PS3.3 C.8.8.3: relative to an implicit reference).

    Raises
    ------
    DoseUnitsError
        DoseUnits is RELATIVE and no prescription was given.
    GeometryError
        Frame offsets that are not uniform or cannot be interpreted.
    """
    path = Path(path)
    if dataset is None and (grid := read_raw_or_none(
            path, lambda raw: _read_dose(path, raw, prescription_gy=prescription_gy))) is not None:
        return grid
    with malformed_values_named(path):
        ds = dataset if dataset is not None else read_dataset(path)
        return _read_dose(path, ds, prescription_gy=prescription_gy)


def _read_dose(path: Path, ds: Dataset | RawDataset, *,
               prescription_gy: float | None = None) -> DoseGrid:
    if uid_of(ds, "SOPClassUID") != RTDOSE_SOP_CLASS and ds.get("Modality") != "RTDOSE":
        raise UnsupportedDicomError(f"{path}: not an RT Dose object (Modality {ds.get('Modality')!r}).")
    if "PixelData" not in ds:
        raise UnsupportedDicomError(f"{path}: RT Dose without a dose grid (DVH-only or point dose).")
    units = str(ds.get("DoseUnits", "")).upper()
    if units == "RELATIVE" and prescription_gy is None:
        raise DoseUnitsError(
            f"{path}: DoseUnits is RELATIVE; give the prescription dose in Gy "
            "(--prescription) so that the grid can be scaled to Gy.")
    if units not in ("GY", "RELATIVE"):
        raise DoseUnitsError(f"{path}: DoseUnits {units!r} is neither GY nor RELATIVE.")
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    check_grid_size(path, rows=ds.get("Rows"), columns=ds.get("Columns"), frames=n_frames)
    scaling = float(ds.get("DoseGridScaling", 1.0) or 1.0)
    if not math.isfinite(scaling):
        raise DicomReadError(path, f"DoseGridScaling {scaling} is not a finite number")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pixels = ds.pixel_array
    except Exception as exc:  # pixel decoders raise many types; name the file
        raise DicomReadError(path, f"dose pixel data cannot be decoded ({exc})") from exc
    pixels = np.asarray(pixels, dtype=np.float64).reshape(n_frames, int(ds.Rows), int(ds.Columns))
    with np.errstate(over="ignore", invalid="ignore"):  # checked against max_dose_gy below
        dose = pixels * scaling
        if units == "RELATIVE":
            dose = dose * float(prescription_gy)  # type: ignore[arg-type]
    limit = input_limits().max_dose_gy
    if dose.size and not float(np.max(np.abs(dose))) <= limit:  # also catches NaN
        raise DicomReadError(
            path, f"dose values reach {float(np.max(np.abs(dose))):.4g} Gy (DoseGridScaling "
            f"{scaling:g}), not finite or beyond {input_limits().where('max_dose_gy')} Gy: "
            "corrupt scaling or pixel data")

    offsets = _slice_positions(ds, path, n_frames)
    if n_frames > 1:
        steps = np.diff(offsets)
        if np.any(np.abs(steps - steps[0]) > _OFFSET_TOL_MM) or np.any(steps == 0):
            raise GeometryError(f"{path}: dose frames are not evenly spaced "
                                f"(steps {np.unique(steps.round(3)).tolist()} mm).")
        step = float(steps.mean())
    else:
        step = float(ds.get("SliceThickness", 1.0) or 1.0)
    try:
        geometry = VolumeGeometry.from_dicom(
            image_position=[float(v) for v in ds.ImagePositionPatient],
            image_orientation=[float(v) for v in ds.ImageOrientationPatient],
            pixel_spacing=[float(v) for v in ds.PixelSpacing],
            slice_spacing_mm=step, shape=(n_frames, int(ds.Rows), int(ds.Columns)))
    except GeometryError as exc:  # name the file
        raise GeometryError(f"{path}: {exc}") from exc
    dose.flags.writeable = False
    problems: list[Finding] = []
    reference = None
    if units == "RELATIVE":
        reference = float(prescription_gy)  # type: ignore[arg-type]
        problems.append(input_problem(
            "relative_dose_scaled",
            f"DoseUnits is RELATIVE: the grid was multiplied by {reference:g} Gy, assuming that "
            "1.0 means the prescription (PS3.3 C.8.8.3 leaves the reference implicit). Every "
            "absolute dose read from it (organ-at-risk maxima, V<x>Gy, GTV Dmin, "
            "re-irradiation EQD2) scales with this assumption: were 1.0 another dose, each "
            "would be off by the same factor; limits in percent of the prescription are not "
            "affected.", path, status=Status.WARN))
    dvhs = _dvh_sequence(ds, path, problems)
    plans = tuple(u for item in ds.get("ReferencedRTPlanSequence", [])
                  if (u := uid_of(item, "ReferencedSOPInstanceUID")))
    beams: list[int] = []
    for item in ds.get("ReferencedRTPlanSequence", []):
        for fg in item.get("ReferencedFractionGroupSequence", []):
            for b in fg.get("ReferencedBeamSequence", []):
                beams.append(int(b.get("ReferencedBeamNumber", -1)))
    return DoseGrid(
        paths=(path,), sop_instance_uids=(uid_of(ds, "SOPInstanceUID") or "",),
        frame_of_reference_uid=uid_of(ds, "FrameOfReferenceUID"), geometry=geometry,
        dose_gy=dose, summation_type=str(ds.get("DoseSummationType", "PLAN")).upper(),
        dose_type=str(ds.get("DoseType", "PHYSICAL")).upper(), referenced_plan_uids=plans,
        referenced_beam_numbers=tuple(beams), planning_system_dvhs=dvhs, problems=tuple(problems),
        relative_reference_gy=reference)


def sum_doses(doses: list[DoseGrid]) -> DoseGrid:
    """Sum several dose grids (beam or fraction doses) that share one grid.

    Raises
    ------
    GeometryError
        The grids differ; contourqa does not resample doses silently.
    """
    if not doses:
        raise ValueError('Argument "doses" must hold at least one DoseGrid.')
    first = doses[0]
    for d in doses[1:]:
        if not d.geometry.same_grid(first.geometry):
            raise GeometryError(f"Cannot sum {d.paths[0].name} with {first.paths[0].name}: "
                                "their dose grids differ.")
        if d.frame_of_reference_uid != first.frame_of_reference_uid:
            raise GeometryError(f"Cannot sum {d.paths[0].name} with {first.paths[0].name}: "
                                "different frames of reference.")
    total = np.sum([d.dose_gy for d in doses], axis=0)
    total.flags.writeable = False
    kinds = {d.summation_type for d in doses}
    return DoseGrid(
        paths=tuple(p for d in doses for p in d.paths),
        sop_instance_uids=tuple(u for d in doses for u in d.sop_instance_uids),
        frame_of_reference_uid=first.frame_of_reference_uid, geometry=first.geometry,
        dose_gy=total, summation_type="PLAN" if kinds <= {"BEAM", "PLAN"} else "MULTI_PLAN",
        dose_type=first.dose_type,
        referenced_plan_uids=tuple(dict.fromkeys(u for d in doses for u in d.referenced_plan_uids)),
        referenced_beam_numbers=tuple(b for d in doses for b in d.referenced_beam_numbers),
        planning_system_dvhs=(),
        relative_reference_gy=next((d.relative_reference_gy for d in doses
                                    if d.relative_reference_gy is not None), None))
