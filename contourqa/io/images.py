"""Image series reader (CT, MR): slices sorted along the normal, one geometry, HU.

Slices are ordered by the projection of ImagePositionPatient on the slice normal
(row x column of ImageOrientationPatient), never by SliceLocation or file name.  The
series must be a stack of parallel slices whose positions advance along the normal;
a gantry-tilted or non-parallel series is refused with :class:`GeometryError`.
Unequal spacing is allowed only within a tolerance; gaps (missing slices) are
reported as findings.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from numpy.typing import NDArray
from pydicom.datadict import tag_for_keyword
from pydicom.tag import Tag
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from contourqa.errors import DicomReadError, GeometryError, UnsupportedDicomError
from contourqa.findings import Finding, Status, input_problem
from contourqa.geometry import VolumeGeometry
from contourqa.io._read import check_grid_size, malformed_values_named, read_dataset, uid_of

__all__ = ["ImageSeries", "read_image_series", "SPACING_TOLERANCE_MM"]

#: Largest deviation of one slice step from the median step that still counts as
#: uniform (mm).  Larger deviations are reported; a step of ~2x the median is a gap.
SPACING_TOLERANCE_MM = 0.01
_ORIENTATION_TOL = 1e-4
_TILT_TOL_MM = 0.01


@dataclass(frozen=True, eq=False)
class ImageSeries:
    """A sorted image volume.

    Attributes
    ----------
    pixels : ndarray of shape (S, R, C), int16 or float32
        HU for CT (RescaleSlope/Intercept applied); rescaled values for MR.  int16
        when the rescale is exact in integers (slope 1, integral intercept, values in
        range: the usual CT), else float32.
    geometry : VolumeGeometry
        Slice axis along the direction of increasing ImagePositionPatient
        projection.
    slice_positions_mm : ndarray of shape (S,)
        Positions of the sorted slices along the slice normal.
    slice_spacing_mm : float
        Median distance between slice centres (the real spacing).
    slice_thickness_mm : float or None
        SliceThickness as stated in the files (may differ from the spacing).
    """

    paths: tuple[Path, ...]
    modality: str
    series_instance_uid: str | None
    study_instance_uid: str | None
    frame_of_reference_uid: str | None
    sop_instance_uids: tuple[str, ...]
    patient_id: str | None
    patient_position: str | None
    geometry: VolumeGeometry
    pixels: NDArray[np.int16] | NDArray[np.float32]
    slice_positions_mm: NDArray[np.float64]
    slice_spacing_mm: float
    slice_thickness_mm: float | None
    uniform_spacing: bool
    series_description: str | None = None
    problems: tuple[Finding, ...] = field(default=())

    @property
    def n_slices(self) -> int:
        return int(self.pixels.shape[0])


def _raw_bytes(ds: Dataset, keyword: str) -> bytes | None:
    """An element's undecoded value bytes, or None once pydicom has decoded it."""
    tag = tag_for_keyword(keyword)
    elem = ds._dict.get(Tag(tag)) if tag is not None else None
    if isinstance(elem, RawDataElement) and isinstance(elem.value, bytes):
        return elem.value
    return None


def _same_as_first(ds: Dataset, first: Dataset, keyword: str) -> bool:
    """Cheap identity test of a text element against the first slice's (byte-equal);
    False means 'compare the numbers', not 'different'."""
    a, b = _raw_bytes(ds, keyword), _raw_bytes(first, keyword)
    return a is not None and a == b


def _floats(ds: Dataset, keyword: str, n: int, path: Path) -> NDArray[np.float64]:
    raw = _raw_bytes(ds, keyword)
    if raw is not None:
        try:
            values = np.array(raw.rstrip(b"\x00 ").split(b"\\"), dtype=np.float64)
        except ValueError:
            values = None  # non-conformant text: let pydicom decode and report it
        if values is not None and len(values) == n:
            return values
    value = ds.get(keyword, None)
    if value is None or len(value) != n:
        raise GeometryError(f"{path}: {keyword} is missing or does not have {n} values.")
    return np.asarray([float(v) for v in value], dtype=np.float64)


_NATIVE_LITTLE_ENDIAN = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}


def _stored_pixels(ds: Dataset, path: Path) -> NDArray[Any]:
    """Stored pixel values of one frame, shape (R, C).

    Uncompressed little-endian frames whose stored bits fill their allocation are
    viewed straight from the bytes (no copy); everything else goes through pydicom's
    pixel handlers (compressed syntaxes, big endian, packed or masked bits)."""
    meta = getattr(ds, "file_meta", None)
    syntax = str(getattr(meta, "TransferSyntaxUID", "") or "")
    bits = ds.get("BitsAllocated", None)
    if (syntax in _NATIVE_LITTLE_ENDIAN and bits in (8, 16, 32)
            and ds.get("BitsStored", None) == bits and int(ds.get("SamplesPerPixel", 1)) == 1
            and int(ds.get("NumberOfFrames", 1) or 1) == 1):
        dtype = np.dtype(f"<{'i' if ds.get('PixelRepresentation', 0) == 1 else 'u'}{bits // 8}")
        n = int(ds.Rows) * int(ds.Columns)
        data = ds.PixelData
        if isinstance(data, bytes) and len(data) >= n * dtype.itemsize:
            return np.frombuffer(data, dtype=dtype, count=n).reshape(int(ds.Rows), int(ds.Columns))
    try:
        return ds.pixel_array
    except Exception as exc:  # decoders raise many types; name the file and syntax
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
        raise DicomReadError(path, f"pixel data cannot be decoded (transfer syntax {ts}: {exc})") from exc


def _rescaled_volume(dss: list[Dataset], paths: list[Path], order: NDArray[np.intp],
                     rows: int, cols: int) -> NDArray[np.int16] | NDArray[np.float32]:
    """Decode and rescale the slices in sorted order into one volume."""
    slopes = np.array([float(dss[i].get("RescaleSlope", 1.0) or 1.0) for i in order])
    intercepts = np.array([float(dss[i].get("RescaleIntercept", 0.0) or 0.0) for i in order])
    exact = bool(np.all(slopes == 1.0) and np.all(intercepts == np.round(intercepts)))
    volume: NDArray = np.empty((len(order), rows, cols), dtype=np.int16 if exact else np.float32)
    for dst, src in enumerate(order):
        raw = _stored_pixels(dss[src], paths[src])
        if exact:
            shift = int(intercepts[dst])
            lo, hi = _stored_range(dss[src], raw)
            if lo + shift < -32768 or hi + shift > 32767:
                # Out of int16 range after rescale: start again in float32.
                return _float_volume(dss, paths, order, rows, cols, slopes, intercepts)
            # Same-type arithmetic (no int32 temporaries): copy, then shift in place.
            volume[dst] = raw
            if shift:
                volume[dst] += np.int16(shift)
        else:
            volume[dst] = raw * np.float32(slopes[dst]) + np.float32(intercepts[dst])
    return volume


def _stored_range(ds: Dataset, raw: NDArray[Any]) -> tuple[int, int]:
    """Bounds of the stored values: from BitsStored when it guarantees them (no scan),
    else the array's own minimum and maximum."""
    bits = int(ds.get("BitsStored", 16) or 16)
    if raw.dtype.kind == "u" and bits <= 15:
        return 0, (1 << bits) - 1
    if raw.dtype.kind == "i" and bits <= 15:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return int(raw.min()), int(raw.max())


def _float_volume(dss: list[Dataset], paths: list[Path], order: NDArray[np.intp], rows: int,
                  cols: int, slopes: NDArray[np.float64],
                  intercepts: NDArray[np.float64]) -> NDArray[np.float32]:
    volume = np.empty((len(order), rows, cols), dtype=np.float32)
    for dst, src in enumerate(order):
        volume[dst] = _stored_pixels(dss[src], paths[src]) * np.float32(slopes[dst]) \
            + np.float32(intercepts[dst])
    return volume


def read_image_series(paths: Sequence[str | Path], *,
                      datasets: Sequence[Dataset] | None = None) -> ImageSeries:
    """Read the slices of one series into a sorted volume.

    Parameters
    ----------
    paths : the files of one series (any order).
    datasets : already-read datasets of those files (with pixel data), optional.

    Raises
    ------
    GeometryError
        Slices that are not parallel, gantry-tilted stacks, duplicate positions,
        different matrix sizes or pixel spacings.
    DicomReadError
        A file that cannot be read or decoded (named).
    """
    files = [Path(p) for p in paths]
    if not files:
        raise ValueError('Argument "paths" must name at least one image file.')
    # pydicom decodes elements lazily and warns on non-conformant values: the whole
    # reader runs under one filter instead of decoding every element of every slice.
    with warnings.catch_warnings(), malformed_values_named(files[0]):
        warnings.simplefilter("ignore")
        return _read_series(files, datasets)


def _read_series(paths: list[Path], datasets: Sequence[Dataset] | None) -> ImageSeries:
    dss = list(datasets) if datasets is not None else [read_dataset(p, convert_all=False)
                                                       for p in paths]
    problems: list[Finding] = []
    first, first_path = dss[0], paths[0]
    modality = str(first.get("Modality", "") or "")
    if "PixelData" not in first:
        raise UnsupportedDicomError(f"{first_path}: image without pixel data.")
    if int(first.get("NumberOfFrames", 1) or 1) > 1:
        raise UnsupportedDicomError(f"{first_path}: multi-frame images are not supported; "
                                    "export the series as single-frame slices.")

    iop = _floats(first, "ImageOrientationPatient", 6, first_path)
    spacing = _floats(first, "PixelSpacing", 2, first_path)
    check_grid_size(first_path, rows=first.get("Rows"), columns=first.get("Columns"),
                    frames=len(dss))
    rows, cols = int(first.Rows), int(first.Columns)
    row_dir, col_dir = iop[:3] / np.linalg.norm(iop[:3]), iop[3:] / np.linalg.norm(iop[3:])
    if abs(float(row_dir @ col_dir)) > 1e-3:
        raise GeometryError(f"{first_path}: ImageOrientationPatient row and column directions "
                            "are not perpendicular.")
    normal = np.cross(row_dir, col_dir)

    positions = np.empty((len(dss), 3))
    for n, (ds, p) in enumerate(zip(dss, paths)):
        if not _same_as_first(ds, first, "ImageOrientationPatient") and not np.allclose(
                _floats(ds, "ImageOrientationPatient", 6, p), iop, atol=_ORIENTATION_TOL):
            raise GeometryError(f"{p}: slice orientation differs from {first_path.name}; "
                                "the series is not a stack of parallel slices.")
        if int(ds.Rows) != rows or int(ds.Columns) != cols:
            raise GeometryError(f"{p}: matrix {ds.Rows}x{ds.Columns} differs from "
                                f"{first_path.name} ({rows}x{cols}).")
        if not _same_as_first(ds, first, "PixelSpacing") and not np.allclose(
                _floats(ds, "PixelSpacing", 2, p), spacing, atol=1e-4):
            raise GeometryError(f"{p}: PixelSpacing differs from {first_path.name}.")
        positions[n] = _floats(ds, "ImagePositionPatient", 3, p)

    along = positions @ normal
    order = np.argsort(along, kind="stable")
    along = along[order]
    positions = positions[order]
    if len(along) > 1 and np.any(np.diff(along) < 1e-3):
        dup = np.flatnonzero(np.diff(along) < 1e-3)[0]
        raise GeometryError(
            f"{paths[order[dup]]} and {paths[order[dup + 1]]}: two slices at the same position "
            f"({along[dup]:.3f} mm); the folder holds duplicates or more than one series.")
    # Positions must advance along the normal: an in-plane drift is a gantry tilt.
    in_plane = positions - np.outer(along - along[0], normal) - positions[0]
    if np.abs(in_plane).max(initial=0.0) > _TILT_TOL_MM + 1e-6 * np.abs(along).max(initial=0.0):
        raise GeometryError(
            f"{first_path}: slice positions drift in-plane by up to {np.abs(in_plane).max():.2f} mm "
            "from slice to slice (gantry tilt or sheared stack); resample the series to "
            "an orthogonal grid before checking.")

    thickness = first.get("SliceThickness", None)
    thickness_mm = float(thickness) if thickness not in (None, "") else None
    if len(along) > 1:
        steps = np.diff(along)
        step = float(np.median(steps))
        uniform = bool(np.all(np.abs(steps - step) <= SPACING_TOLERANCE_MM))
        if not uniform:
            gaps = np.flatnonzero(steps > 1.5 * step)
            files = [paths[order[g]] for g in gaps[:5]]
            if len(gaps):
                problems.append(input_problem(
                    "missing_slices",
                    f"{len(gaps)} gap(s) in the {modality} series: slice step of up to "
                    f"{steps.max():.2f} mm against {step:.2f} mm elsewhere, e.g. after "
                    f"position {along[gaps[0]]:.2f} mm.", *files, status=Status.WARN))
            else:
                problems.append(input_problem(
                    "irregular_slice_spacing",
                    f"slice spacing varies from {steps.min():.3f} to {steps.max():.3f} mm "
                    f"(median {step:.3f} mm).", first_path, status=Status.WARN))
    else:
        step = thickness_mm or 1.0
        uniform = True

    volume = _rescaled_volume(dss, paths, order, rows, cols)
    volume.flags.writeable = False

    try:
        geometry = VolumeGeometry.from_dicom(
            image_position=positions[0].tolist(), image_orientation=iop.tolist(),
            pixel_spacing=spacing.tolist(),
            slice_spacing_mm=step, shape=(len(dss), rows, cols))
    except GeometryError as exc:  # name the file
        raise GeometryError(f"{first_path}: {exc}") from exc
    series_uid = uid_of(first, "SeriesInstanceUID")
    if series_uid is None:
        problems.append(input_problem(
            "missing_uid", f"the {modality} series has no SeriesInstanceUID; contourqa groups "
            "its files by folder and does not invent one.", first_path, status=Status.WARN))
    return ImageSeries(
        paths=tuple(paths[i] for i in order), modality=modality, series_instance_uid=series_uid,
        study_instance_uid=uid_of(first, "StudyInstanceUID"),
        frame_of_reference_uid=uid_of(first, "FrameOfReferenceUID"),
        sop_instance_uids=tuple(uid_of(dss[i], "SOPInstanceUID") or "" for i in order),
        patient_id=str(first.get("PatientID", "") or "") or None,
        patient_position=str(first.get("PatientPosition", "") or "") or None,
        geometry=geometry, pixels=volume, slice_positions_mm=along, slice_spacing_mm=step,
        slice_thickness_mm=thickness_mm, uniform_spacing=uniform,
        series_description=str(first.get("SeriesDescription", "") or "") or None,
        problems=tuple(problems))
