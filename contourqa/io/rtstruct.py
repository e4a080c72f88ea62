"""RT Structure Set reader.

Returns :class:`StructureSet` with one :class:`ROI` per StructureSetROISequence item.
Contours are kept as they are stored: several per plane (islands and holes are told
apart later, by even-odd combination), POINT and open contours kept and flagged.
"""

from __future__ import annotations

import enum
import warnings
from collections import abc, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from contourqa.errors import UnsupportedDicomError
from contourqa.findings import Finding, input_problem
from contourqa.limits import input_limits
from contourqa.io._read import malformed_values_named, read_dataset, uid_of
from contourqa.io.rawdicom import (
    RawDataset,
    RawFallback,
    RawValue,
    is_implicit_vr,
    items_of,
    raw_items,
    raw_text,
    read_raw_or_none,
)
from contourqa.parallel import map_forked, shared_array

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["ContourType", "Contour", "ROI", "StructureSet", "read_structure_set",
           "screen_contours"]

RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
_PLANE_TOL_MM = 1e-3


class ContourType(str, enum.Enum):
    """DICOM ContourGeometricType (PS3.3 C.8.8.6.1)."""

    CLOSED_PLANAR = "CLOSED_PLANAR"
    OPEN_PLANAR = "OPEN_PLANAR"
    OPEN_NONPLANAR = "OPEN_NONPLANAR"
    POINT = "POINT"
    CLOSEDPLANAR_XOR = "CLOSEDPLANAR_XOR"  # 2024 addition: explicit XOR combination

    @classmethod
    def parse(cls, value: object) -> "ContourType":
        text = str(value or "CLOSED_PLANAR").strip().upper()
        try:
            return cls(text)
        except ValueError:
            return cls.CLOSED_PLANAR


@dataclass(frozen=True, eq=False)
class Contour:
    """One contour of an ROI.

    Attributes
    ----------
    points_mm : ndarray of shape (N, 3), float64, LPS mm
    geometric_type : ContourType
    referenced_sop_uids : tuple of str
        ContourImageSequence entries (may be empty: the link is optional).
    """

    points_mm: NDArray[np.float64]
    geometric_type: ContourType
    referenced_sop_uids: tuple[str, ...] = ()

    @property
    def is_closed_polygon(self) -> bool:
        return self.geometric_type in (ContourType.CLOSED_PLANAR, ContourType.CLOSEDPLANAR_XOR) \
            and len(self.points_mm) >= 3

    def is_planar(self, normal: NDArray[np.float64] | None = None) -> bool:
        """Whether all points lie in one plane perpendicular to ``normal`` (default z)."""
        n = np.array([0.0, 0.0, 1.0]) if normal is None else np.asarray(normal, float)
        d = self.points_mm @ n
        return bool(np.ptp(d) <= _PLANE_TOL_MM) if len(d) else True


@dataclass(frozen=True, eq=False)
class ROI:
    """A region of interest with its contours.

    ``interpreted_type`` is RTROIInterpretedType (e.g. ``"PTV"``, ``"ORGAN"``,
    ``"EXTERNAL"``) or ``None``; ``color`` is ROIDisplayColor as RGB 0-255.
    """

    number: int
    name: str
    interpreted_type: str | None
    color: tuple[int, int, int] | None
    contours: tuple[Contour, ...]
    frame_of_reference_uid: str | None = None
    generation_algorithm: str | None = None

    @property
    def closed_contours(self) -> tuple[Contour, ...]:
        return tuple(c for c in self.contours if c.is_closed_polygon)

    @property
    def is_empty(self) -> bool:
        return not self.closed_contours

    @property
    def has_points_only(self) -> bool:
        return bool(self.contours) and all(c.geometric_type == ContourType.POINT for c in self.contours)

    def planes(self, normal: NDArray[np.float64] | None = None) -> dict[float, list[NDArray[np.float64]]]:
        """Closed polygons grouped by plane position along ``normal`` (default z), mm.

        Keys are rounded to 1 µm so that polygons on the same plane group together.
        """
        n = np.array([0.0, 0.0, 1.0]) if normal is None else np.asarray(normal, float)
        out: dict[float, list[NDArray[np.float64]]] = defaultdict(list)
        for c in self.closed_contours:
            key = round(float(np.mean(c.points_mm @ n)), 3)
            out[key].append(c.points_mm)
        return dict(sorted(out.items()))


@dataclass(frozen=True, eq=False)
class StructureSet:
    """An RT Structure Set, its references and its ROIs."""

    path: Path
    sop_instance_uid: str
    patient_id: str | None
    study_instance_uid: str | None
    label: str | None
    frame_of_reference_uid: str | None
    referenced_series_uids: tuple[str, ...]
    referenced_image_uids: tuple[str, ...]
    rois: tuple[ROI, ...]
    problems: tuple[Finding, ...] = field(default=())

    def roi(self, name: str) -> ROI:
        """The ROI with this exact name (case-insensitive fallback)."""
        for r in self.rois:
            if r.name == name:
                return r
        matches = [r for r in self.rois if r.name.lower() == name.lower()]
        if len(matches) == 1:
            return matches[0]
        raise KeyError(f"No ROI named {name!r} in {self.path.name}; "
                       f"ROIs are: {', '.join(r.name for r in self.rois)}")


_CONTOUR_DATA_TAG = 0x30060050


def _contour_values(item: Dataset) -> NDArray[np.float64] | None:
    """ContourData as float64, parsed from the raw bytes when pydicom has not decoded
    it yet (decoding each value into a DSfloat costs ~20x more on large sets)."""
    from pydicom.dataelem import RawDataElement  # item is a pydicom Dataset

    raw = item._dict.get(_CONTOUR_DATA_TAG)  # type: ignore[call-overload]
    if raw is None:
        return None
    if isinstance(raw, RawDataElement) and isinstance(raw.value, bytes):
        text = raw.value.rstrip(b"\x00 ")
        if not text:
            return np.empty(0)
        try:
            return np.array(text.split(b"\\"), dtype=np.float64)
        except ValueError:
            pass  # non-conformant text: let pydicom decode it below
    data = item.get("ContourData", None)
    if data is None:
        return None
    return np.asarray([float(v) for v in data], dtype=np.float64)


def _one_text(value: object) -> str:
    """A text element as one string: a backslash in a name (the DICOM value delimiter,
    not allowed in LO) makes pydicom split it; the parts are joined back as written."""
    if isinstance(value, abc.Sequence) and not isinstance(value, (str, bytes)):
        return "\\".join(str(v) for v in value).strip()  # pydicom's MultiValue
    return str(value or "").strip()


def _references(ds: Dataset) -> tuple[list[str], list[str], list[str]]:
    """Frame of reference, series and image UIDs of ReferencedFrameOfReferenceSequence."""
    frame_uids: list[str] = []
    series_uids: list[str] = []
    image_uids: list[str] = []
    for ref_for in ds.get("ReferencedFrameOfReferenceSequence", []):
        if (u := uid_of(ref_for, "FrameOfReferenceUID")):
            frame_uids.append(u)
        for study in ref_for.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                if (u := uid_of(series, "SeriesInstanceUID")):
                    series_uids.append(u)
                for img in series.get("ContourImageSequence", []):
                    if (u := uid_of(img, "ReferencedSOPInstanceUID")):
                        image_uids.append(u)
    return frame_uids, series_uids, image_uids


_REF_FOR_SEQ = 0x30060010
_FOR_UID = 0x00200052
_STUDY_SEQ = 0x30060012
_SERIES_SEQ = 0x30060014
_SERIES_UID = 0x0020000E
_IMAGE_SEQ = 0x30060016
_REF_SOP_UID = 0x00081155
_CONTOUR_SEQ = 0x30060040
_GEOMETRIC_TYPE = 0x30060042


def _raw_uid(item: dict[int, RawValue], tag: int) -> str | None:
    text = raw_text(item.get(tag))
    return (text.strip() or None) if text is not None else None


def _references_raw(ds: Dataset | RawDataset) -> tuple[list[str], list[str], list[str]]:
    """:func:`_references` from the undecoded bytes (raises RawFallback)."""
    implicit = is_implicit_vr(ds, _REF_FOR_SEQ)
    frame_uids: list[str] = []
    series_uids: list[str] = []
    image_uids: list[str] = []
    for ref_for in raw_items(ds, _REF_FOR_SEQ):
        if (u := _raw_uid(ref_for, _FOR_UID)):
            frame_uids.append(u)
        for study in items_of(ref_for.get(_STUDY_SEQ), implicit):
            for series in items_of(study.get(_SERIES_SEQ), implicit):
                if (u := _raw_uid(series, _SERIES_UID)):
                    series_uids.append(u)
                for img in items_of(series.get(_IMAGE_SEQ), implicit):
                    if (u := _raw_uid(img, _REF_SOP_UID)):
                        image_uids.append(u)
    return frame_uids, series_uids, image_uids


def _contours(item: Dataset, name: str, path: Path) -> tuple[list[Contour], list[Finding]]:
    """Contours of one ROIContourSequence item, decoded by pydicom."""
    contours: list[Contour] = []
    problems: list[Finding] = []
    for c in item.get("ContourSequence", []):
        try:
            pts = _contour_values(c)
        except (ValueError, TypeError) as exc:
            problems.append(input_problem(
                "malformed_contour", f"ROI {name!r}: ContourData is not numeric ({exc}); "
                "contour ignored.", path, structure=name))
            continue
        if pts is None or pts.size == 0:
            continue
        if pts.size % 3:
            problems.append(_not_triplets(name, pts.size, path))
            continue
        refs = tuple(u for img in c.get("ContourImageSequence", [])
                     if (u := uid_of(img, "ReferencedSOPInstanceUID")))
        contours.append(Contour(points_mm=pts.reshape(-1, 3),
                                geometric_type=ContourType.parse(c.get("ContourGeometricType")),
                                referenced_sop_uids=refs))
    contours, screened = screen_contours(contours, name, path)
    return contours, problems + screened


def screen_contours(contours: list[Contour], name: str, path: Path
                    ) -> tuple[list[Contour], list[Finding]]:
    """The ROI's contours within :mod:`contourqa.limits`, and findings for the rest.

    An ROI with more contours or points than ``max_contours_per_roi`` or
    ``max_points_per_roi`` keeps none (their cost is unbounded; a real ROI is far
    below).  A contour with a non-finite coordinate (NaN, inf), one beyond
    ``max_coordinate_mm``, or one farther than ``max_roi_extent_mm`` from the ROI's
    median point is dropped: such values have no place in a patient, their casts to
    array indices are undefined, and grids sized to the ROI would not fit in memory.
    Either is a finding on the ROI.
    """
    limits = input_limits()
    n_points = sum(len(c.points_mm) for c in contours)
    if len(contours) > limits.max_contours_per_roi or n_points > limits.max_points_per_roi:
        return [], [input_problem(
            "roi_too_large", f"ROI {name!r} has {len(contours)} contours and {n_points} points, "
            f"beyond {limits.where('max_contours_per_roi')} or "
            f"{limits.where('max_points_per_roi')}; its contours are not evaluated.",
            path, structure=name)]
    if not contours:
        return contours, []
    bound, extent = limits.max_coordinate_mm, limits.max_roi_extent_mm
    points = np.concatenate([c.points_mm for c in contours])
    finite = np.all(np.abs(points) <= bound, axis=1)  # False for NaN
    centre = np.median(points[finite], axis=0) if finite.any() else np.zeros(3)

    def sane(c: Contour) -> bool:
        return bool(np.all(np.abs(c.points_mm) <= bound)
                    and np.all(np.abs(c.points_mm - centre) <= extent))

    if finite.all() and np.all(np.abs(points - centre) <= extent):
        return contours, []
    kept = [c for c in contours if sane(c)]
    n_bad = len(contours) - len(kept)
    return kept, [input_problem(
        "absurd_coordinates", f"ROI {name!r}: {n_bad} of {len(contours)} contour(s) have "
        f"coordinates that are not finite (NaN, inf), beyond {limits.where('max_coordinate_mm')} "
        f"mm, or farther from the ROI's median point than {limits.where('max_roi_extent_mm')} "
        "mm; those contours are ignored and the ROI is incomplete.", path, structure=name)]


def _not_triplets(name: str, size: int, path: Path) -> Finding:
    return input_problem("malformed_contour", f"ROI {name!r}: ContourData has {size} values, "
                         "not a multiple of 3; contour ignored.", path, structure=name)


@dataclass(frozen=True)
class _RawContours:
    """An ROI's contours as walked from the bytes, their ContourData not yet numbers."""

    texts: list[bytes]
    kinds: list[ContourType]
    refs: list[tuple[str, ...]]

    @property
    def joined(self) -> bytes:
        return b"\\".join(self.texts)


def _raw_contours(item: Dataset | RawDataset) -> _RawContours:
    """The contours of one ROIContourSequence item from the undecoded bytes (raises
    RawFallback where pydicom must decode)."""
    implicit = is_implicit_vr(item, _CONTOUR_SEQ)
    out = _RawContours([], [], [])
    for c in raw_items(item, _CONTOUR_SEQ):
        data = c.get(_CONTOUR_DATA_TAG)
        if data is None:
            continue
        if not isinstance(data, bytes):
            raise RawFallback
        text = data.rstrip(b"\x00 ")
        if not text:
            continue
        out.texts.append(text)
        out.kinds.append(ContourType.parse(raw_text(c.get(_GEOMETRIC_TYPE))))
        out.refs.append(tuple(u for img in items_of(c.get(_IMAGE_SEQ), implicit)
                              if (u := _raw_uid(img, _REF_SOP_UID))))
    return out


def _numbers(text: bytes) -> NDArray[np.float64]:
    """Backslash-separated decimal strings as float64 (raises RawFallback for anything
    but numbers, also an empty value: pydicom's path words the finding)."""
    try:  # numpy's text parser: a third faster than float() on each value
        values = np.fromstring(text, dtype=np.float64, sep="\\")
    except ValueError as exc:
        raise RawFallback from exc
    if len(values) != text.count(b"\\") + 1:
        raise RawFallback
    return values


def _all_numbers(texts: list[bytes], workers: int) -> list[NDArray[np.float64]]:
    """:func:`_numbers` of every text; with several workers they write into one array
    they share (the largest texts first), so that no result is pickled."""
    if workers <= 1:
        return [_numbers(t) if t else np.zeros(0) for t in texts]
    counts = [t.count(b"\\") + 1 if t else 0 for t in texts]
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(int).tolist()
    out = shared_array(starts[-1])

    def fill(i: int) -> None:
        out[starts[i]:starts[i + 1]] = _numbers(texts[i])

    order = sorted((i for i, t in enumerate(texts) if t), key=lambda i: -len(texts[i]))
    map_forked(fill, order, workers=workers)
    return [out[starts[i]:starts[i + 1]] for i in range(len(texts))]


def _build_contours(raw: _RawContours, values: NDArray[np.float64], name: str, path: Path
                    ) -> tuple[list[Contour], list[Finding]]:
    """Contours from the ROI's numbers (all its ContourData, in order)."""
    counts = [t.count(b"\\") + 1 for t in raw.texts]
    contours: list[Contour] = []
    problems: list[Finding] = []
    for pts, n, kind, ref in zip(np.split(values, np.cumsum(counts)[:-1]), counts,
                                 raw.kinds, raw.refs):
        if n % 3:
            problems.append(_not_triplets(name, n, path))
            continue
        contours.append(Contour(points_mm=pts.reshape(-1, 3), geometric_type=kind,
                                referenced_sop_uids=ref))
    contours, screened = screen_contours(contours, name, path)
    return contours, problems + screened


def _contours_raw(item: Dataset | RawDataset, name: str, path: Path
                  ) -> tuple[list[Contour], list[Finding]]:
    """:func:`_contours` from the undecoded bytes (raises RawFallback, also for
    non-numeric ContourData, whose finding pydicom's decoding words).  The ROI's
    ContourData are converted to numbers in one call."""
    raw = _raw_contours(item)
    if not raw.texts:
        return [], []
    return _build_contours(raw, _numbers(raw.joined), name, path)


def read_structure_set(path: str | Path, *, dataset: Dataset | None = None,
                       workers: int = 1) -> StructureSet:
    """Read an RT Structure Set file.

    ``workers`` processes share converting the contour data to numbers (forked; the
    result does not depend on it; only for files read without pydicom).

    Raises
    ------
    DicomReadError
        The file is not readable DICOM.
    UnsupportedDicomError
        The file is DICOM but not an RT Structure Set.
    """
    path = Path(path)
    if dataset is None and (ss := read_raw_or_none(
            path, lambda raw: _read(path, raw, workers=workers))) is not None:
        return ss
    # pydicom decodes elements lazily and warns on non-conformant values; this reader
    # decodes what it uses under one filter (problems it cares about become findings).
    with warnings.catch_warnings(), malformed_values_named(path):
        warnings.simplefilter("ignore")
        ds = dataset if dataset is not None else read_dataset(path, convert_all=False)
        return _read(path, ds)


def _read(path: Path, ds: Dataset | RawDataset, *, workers: int = 1) -> StructureSet:
    if uid_of(ds, "SOPClassUID") != RTSTRUCT_SOP_CLASS and ds.get("Modality") != "RTSTRUCT":
        raise UnsupportedDicomError(f"{path}: not an RT Structure Set (Modality {ds.get('Modality')!r}).")
    problems: list[Finding] = []

    try:
        frame_uids, series_uids, image_uids = _references_raw(ds)
    except RawFallback:
        if isinstance(ds, RawDataset):
            raise
        frame_uids, series_uids, image_uids = _references(ds)

    roi_for: dict[int, str | None] = {}
    roi_info: dict[int, tuple[str, str | None]] = {}
    for item in ds.get("StructureSetROISequence", []):
        number = int(item.get("ROINumber", -1))
        roi_info[number] = (_one_text(item.get("ROIName", "")) or f"ROI {number}",
                            str(item.get("ROIGenerationAlgorithm", "") or "") or None)
        roi_for[number] = uid_of(item, "ReferencedFrameOfReferenceUID")

    observed: dict[int, str | None] = {}
    for obs in ds.get("RTROIObservationsSequence", []):
        number = int(obs.get("ReferencedROINumber", -1))
        kind = str(obs.get("RTROIInterpretedType", "") or "").strip().upper()
        observed[number] = kind or None

    contours_of: dict[int, tuple[tuple[Contour, ...], tuple[int, ...] | None]] = {}
    items = []
    for item in ds.get("ROIContourSequence", []):
        number = int(item.get("ReferencedROINumber", -1))
        color = item.get("ROIDisplayColor", None)
        rgb = tuple(int(v) for v in color)[:3] if color is not None and len(color) >= 3 else None
        items.append((number, rgb, roi_info.get(number, (f"ROI {number}",))[0], item))
    if isinstance(ds, RawDataset):
        # Converting the contour data to numbers is most of the reading time; with
        # several workers they share it, ROI by ROI, the largest first.
        raws = [_raw_contours(item) for *_, item in items]
        numbers = _all_numbers([r.joined for r in raws], workers)
        for i, (number, rgb, name, _) in enumerate(items):
            contours, found = _build_contours(raws[i], numbers[i], name, path) \
                if raws[i].texts else ([], [])
            problems.extend(found)
            contours_of[number] = (tuple(contours), rgb)
    else:
        for number, rgb, name, item in items:
            try:
                contours, found = _contours_raw(item, name, path)
            except RawFallback:
                contours, found = _contours(item, name, path)
            problems.extend(found)
            contours_of[number] = (tuple(contours), rgb)

    rois = []
    for number, (name, algorithm) in roi_info.items():
        roi_contours, rgb = contours_of.get(number, ((), None))
        rois.append(ROI(number=number, name=name, interpreted_type=observed.get(number),
                        color=(rgb[0], rgb[1], rgb[2]) if rgb else None, contours=roi_contours,
                        frame_of_reference_uid=roi_for.get(number), generation_algorithm=algorithm))
        if not roi_contours and not any(p.structure == name and p.code == "input.roi_too_large"
                                        for p in problems):
            problems.append(input_problem("empty_roi", f"ROI {name!r} has no contours.", path,
                                          structure=name))
    orphan = set(contours_of) - set(roi_info)
    for number in sorted(orphan):
        problems.append(input_problem(
            "orphan_contours", f"ROIContourSequence refers to ROI number {number}, which "
            "StructureSetROISequence does not define; its contours are ignored.", path))

    frame = frame_uids[0] if frame_uids else None
    roi_frames = {r.frame_of_reference_uid for r in rois if r.frame_of_reference_uid}
    if frame is None and len(roi_frames) == 1:
        frame = next(iter(roi_frames))
    if frame and any(f != frame for f in roi_frames):
        problems.append(input_problem(
            "frame_of_reference_mismatch",
            "ROIs of this structure set refer to more than one frame of reference: "
            + ", ".join(sorted(roi_frames | {frame})), path))
    return StructureSet(
        path=path, sop_instance_uid=uid_of(ds, "SOPInstanceUID") or "",
        patient_id=str(ds.get("PatientID", "") or "") or None,
        study_instance_uid=uid_of(ds, "StudyInstanceUID"),
        label=str(ds.get("StructureSetLabel", "") or "") or None,
        frame_of_reference_uid=frame,
        referenced_series_uids=tuple(dict.fromkeys(series_uids)),
        referenced_image_uids=tuple(dict.fromkeys(image_uids)),
        rois=tuple(sorted(rois, key=lambda r: r.number)), problems=tuple(problems))
