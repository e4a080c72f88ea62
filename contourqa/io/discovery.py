"""Case discovery: index every DICOM object under a folder and group them into cases.

A *case* is what one check evaluates: normally one RT Plan with the structure set
it references, the image series the structure set references, the dose(s) that
reference the plan, and the registrations and secondary (MR) series linked to the
planning CT's frame of reference.  Structure sets that no plan references become
cases of their own (a contouring check without dose), as do doses whose plan is
absent.  Every broken link is reported as a finding naming the files.

Only headers are read here (no pixel data); readers in :mod:`contourqa.io` load
the objects of a case afterwards.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from pydicom.dataset import Dataset

from contourqa.errors import DicomReadError
from contourqa.findings import Finding, Status, input_problem
from contourqa.io._read import read_dataset, uid_of

__all__ = ["IndexedObject", "DicomIndex", "CaseFiles", "index_folder", "find_cases", "discover",
           "index_object"]

_IMAGE_MODALITIES = {"CT", "MR", "PT"}
_HEADER_TAGS = [
    "SOPClassUID", "SOPInstanceUID", "Modality", "SeriesInstanceUID", "StudyInstanceUID",
    "FrameOfReferenceUID", "PatientID", "SeriesDescription", "RTPlanLabel",
    "ReferencedFrameOfReferenceSequence", "ReferencedStructureSetSequence",
    "ReferencedRTPlanSequence", "RegistrationSequence", "DoseSummationType",
    "StructureSetLabel", "InstanceNumber", "ImagePositionPatient", "SliceThickness",
    "StudyDate", "DirectoryRecordSequence", "MediaStorageSOPClassUID",
]
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
_SKIP_SUFFIXES = {".txt", ".md", ".json", ".csv", ".nii", ".gz", ".xz", ".zip", ".png", ".jpg",
                  ".pdf", ".html", ".xlsx", ".docx", ".py", ".nrrd", ".npy", ".toml"}


@dataclass(frozen=True)
class IndexedObject:
    """Header facts of one DICOM file, enough to link it to others."""

    path: Path
    modality: str
    sop_class_uid: str
    sop_instance_uid: str | None
    series_instance_uid: str | None
    study_instance_uid: str | None
    frame_of_reference_uid: str | None
    patient_id: str | None
    #: SOP instance UIDs this object refers to (structure set of a plan, plan of a dose,
    #: contour images of a structure set).
    referenced_instances: tuple[str, ...] = ()
    #: Series a structure set refers to.
    referenced_series: tuple[str, ...] = ()
    #: Frames of reference a structure set or a registration refers to.
    referenced_frames: tuple[str, ...] = ()
    label: str | None = None
    dose_summation_type: str | None = None

    @property
    def series_key(self) -> str:
        """Series UID, or a folder-based key when the UID is missing (never invented)."""
        return self.series_instance_uid or f"no-series-uid:{self.path.parent}:{self.modality}"


@dataclass(frozen=True)
class DicomIndex:
    """Every DICOM object found under ``root``, and every file that could not be read."""

    root: Path
    objects: tuple[IndexedObject, ...]
    problems: tuple[Finding, ...] = ()
    n_ignored_files: int = 0

    def by_modality(self, *modalities: str) -> list[IndexedObject]:
        return [o for o in self.objects if o.modality in modalities]

    def series(self) -> dict[str, list[IndexedObject]]:
        out: dict[str, list[IndexedObject]] = defaultdict(list)
        for o in self.objects:
            if o.modality in _IMAGE_MODALITIES:
                out[o.series_key].append(o)
        return dict(out)


@dataclass(frozen=True)
class CaseFiles:
    """The files of one case, as linked by their references."""

    name: str
    plan: IndexedObject | None
    structure_set: IndexedObject | None
    image_series: tuple[IndexedObject, ...] = ()       # the planning series' slices
    doses: tuple[IndexedObject, ...] = ()
    registrations: tuple[IndexedObject, ...] = ()
    secondary_series: tuple[tuple[IndexedObject, ...], ...] = ()  # e.g. MR, by series
    problems: tuple[Finding, ...] = field(default=())

    @property
    def files(self) -> tuple[Path, ...]:
        objs: list[IndexedObject] = [o for o in (self.plan, self.structure_set) if o is not None]
        objs += list(self.doses) + list(self.registrations) + list(self.image_series)
        objs += [o for s in self.secondary_series for o in s]
        return tuple(o.path for o in objs)


# what contours without images are measured on (the case may have no dose grid either)
_ON_DOSE = " (DVHs on the dose grid, where there is one)"

def _candidate_files(root: Path) -> Iterable[tuple[Path, bool]]:
    """Every file under ``root`` and whether it may be DICOM (by name alone)."""
    if not root.is_dir():
        yield root, True  # one file named on the command line: read_dataset says what it is
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            # Regular files only: opening a FIFO blocks until a writer comes, a device
            # may never end (a symbolic link to a regular file is followed).
            maybe = not (name.upper() == "DICOMDIR" or name.startswith(".")
                         or Path(name).suffix.lower() in _SKIP_SUFFIXES) and path.is_file()
            yield path, maybe


def _looks_like_dicom(path: Path) -> bool:
    """Cheap test: 'DICM' at 128, or a plausible little-endian group 0x0002/0x0008 tag."""
    if not path.is_file():
        return True  # read_dataset refuses it, naming the file (see _candidate_files)
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    # Files without preamble start with a tag: group 0x0002 (meta) or 0x0008.
    return len(head) >= 8 and head[1] == 0 and head[0] in (0x02, 0x08) and head[3] == 0


def _index_one(path: Path, ds: Dataset) -> IndexedObject:
    modality = str(ds.get("Modality", "") or "").upper()
    refs: list[str] = []
    series: list[str] = []
    frames: list[str] = []
    for item in ds.get("ReferencedStructureSetSequence", []):
        if (u := uid_of(item, "ReferencedSOPInstanceUID")):
            refs.append(u)
    for item in ds.get("ReferencedRTPlanSequence", []):
        if (u := uid_of(item, "ReferencedSOPInstanceUID")):
            refs.append(u)
    for rfor in ds.get("ReferencedFrameOfReferenceSequence", []):
        if (u := uid_of(rfor, "FrameOfReferenceUID")):
            frames.append(u)
        for study in rfor.get("RTReferencedStudySequence", []):
            for s in study.get("RTReferencedSeriesSequence", []):
                if (u := uid_of(s, "SeriesInstanceUID")):
                    series.append(u)
                for img in s.get("ContourImageSequence", []):
                    if (u := uid_of(img, "ReferencedSOPInstanceUID")):
                        refs.append(u)
    for reg in ds.get("RegistrationSequence", []):
        if (u := uid_of(reg, "FrameOfReferenceUID")):
            frames.append(u)
    label = ds.get("RTPlanLabel", None) or ds.get("StructureSetLabel", None) \
        or ds.get("SeriesDescription", None)
    return IndexedObject(
        path=path, modality=modality, sop_class_uid=uid_of(ds, "SOPClassUID") or "",
        sop_instance_uid=uid_of(ds, "SOPInstanceUID"),
        series_instance_uid=uid_of(ds, "SeriesInstanceUID"),
        study_instance_uid=uid_of(ds, "StudyInstanceUID"),
        # A structure set has no top-level FrameOfReferenceUID: use the one it references.
        frame_of_reference_uid=uid_of(ds, "FrameOfReferenceUID") or (
            frames[0] if modality == "RTSTRUCT" and frames else None),
        patient_id=str(ds.get("PatientID", "") or "").strip() or None,
        referenced_instances=tuple(dict.fromkeys(refs)),
        referenced_series=tuple(dict.fromkeys(series)),
        referenced_frames=tuple(dict.fromkeys(frames)),
        label=str(label).strip() if label else None,
        dose_summation_type=str(ds.get("DoseSummationType", "") or "").upper() or None)


def index_folder(root: str | Path) -> DicomIndex:
    """Read the header of every DICOM file under ``root`` (a folder or one file).

    Non-DICOM files and DICOMDIR are ignored; files without preamble are read.
    Unreadable DICOM files become findings (``input.unreadable_file``) and do not
    stop the walk.  Duplicate SOP instances (the same object twice) keep the first
    copy and are reported.
    """
    root = Path(root)
    if not root.exists():
        raise DicomReadError(root, "no such file or folder")
    objects: list[IndexedObject] = []
    problems: list[Finding] = []
    ignored = 0
    seen: dict[str, Path] = {}
    for path, maybe in _candidate_files(root):
        if not maybe or not _looks_like_dicom(path):
            ignored += 1
            continue
        try:
            ds = read_dataset(path, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
        except DicomReadError as exc:
            problems.append(input_problem("unreadable_file", exc.problem, path, status=Status.WARN))
            continue
        if uid_of(ds, "SOPClassUID") == _DICOMDIR_CLASS or "DirectoryRecordSequence" in ds:
            ignored += 1
            continue
        try:
            obj = _index_one(path, ds)
        except Exception as exc:  # noqa: BLE001 - any defect of one header is that file's finding
            problems.append(input_problem("unreadable_file", f"malformed header "
                                          f"({type(exc).__name__}: {exc})", path,
                                          status=Status.WARN))
            continue
        uid = obj.sop_instance_uid
        if uid and uid in seen:
            # Both files are kept as objects; references to the UID resolve to the first.
            problems.append(input_problem(
                "duplicate_instance", f"SOP instance UID {uid} is used by two files; references "
                f"to it resolve to {seen[uid].name}.", seen[uid], path, status=Status.WARN))
        elif uid:
            seen[uid] = path
        objects.append(obj)
    return DicomIndex(root=root, objects=tuple(objects), problems=tuple(problems),
                      n_ignored_files=ignored)


def _case_name(plan: IndexedObject | None, ss: IndexedObject | None, dose: IndexedObject | None) -> str:
    obj = plan or ss or dose
    assert obj is not None
    kind = "plan" if plan else "structure set" if ss else "dose"
    return f"{obj.patient_id or 'unknown patient'} / {kind} {obj.label or obj.path.name}"


def find_cases(index: DicomIndex) -> list[CaseFiles]:
    """Group an index into cases (see module docstring)."""
    by_uid: dict[str, IndexedObject] = {}
    for o in index.objects:
        if o.sop_instance_uid:
            by_uid.setdefault(o.sop_instance_uid, o)
    series = index.series()
    series_by_uid = {k: v for k, v in series.items()}
    plans = index.by_modality("RTPLAN", "RTIONPLAN")
    structs = index.by_modality("RTSTRUCT")
    doses = index.by_modality("RTDOSE")
    regs = index.by_modality("REG")
    used_structs: set[int] = set()
    used_doses: set[str] = set()
    cases: list[CaseFiles] = []

    def image_series_for(ss: IndexedObject, problems: list[Finding]) -> tuple[IndexedObject, ...]:
        chosen: list[IndexedObject] = []
        for s_uid in ss.referenced_series:
            if s_uid in series_by_uid:
                chosen = series_by_uid[s_uid]
                break
        if not chosen and ss.referenced_series:
            problems.append(input_problem(
                "missing_image_series", f"the structure set references image series "
                f"{', '.join(ss.referenced_series)}, which is not in the folder; contours are "
                f"checked without their images{_ON_DOSE}.", ss.path, status=Status.WARN))
        if not chosen and ss.frame_of_reference_uid is None:
            frames = ss.referenced_frames
        else:
            frames = (ss.frame_of_reference_uid,) if ss.frame_of_reference_uid else ss.referenced_frames
        if not chosen:
            # Fall back on a CT series in the same frame of reference, saying so.
            same = [v for v in series.values() if v[0].modality == "CT"
                    and v[0].frame_of_reference_uid in frames and v[0].frame_of_reference_uid]
            if len(same) == 1 and not ss.referenced_series:
                chosen = same[0]
                problems.append(input_problem(
                    "series_by_frame_of_reference", "the structure set names no image series; "
                    "the only CT series in its frame of reference is used.", ss.path,
                    status=Status.WARN))
        if chosen:
            img_frame = chosen[0].frame_of_reference_uid
            if ss.referenced_frames and img_frame and img_frame not in ss.referenced_frames:
                problems.append(input_problem(
                    "frame_of_reference_mismatch", f"the structure set's frame of reference "
                    f"({', '.join(ss.referenced_frames)}) differs from its image series' "
                    f"({img_frame}).", ss.path, chosen[0].path))
            have = {o.sop_instance_uid for o in chosen}
            missing = [u for u in ss.referenced_instances if u not in have and u not in by_uid]
            if missing:
                problems.append(input_problem(
                    "missing_referenced_images", f"{len(missing)} of the images the contours "
                    f"reference are not in the folder (e.g. {missing[0]}).", ss.path,
                    status=Status.WARN))
        elif not ss.referenced_series:
            problems.append(input_problem(
                "no_image_series", "the structure set references no image series and none "
                f"was found in its frame of reference; contours are checked without images"
                f"{_ON_DOSE}.",
                ss.path, status=Status.WARN))
        return tuple(chosen)

    def linked(ct_frame: str | None) -> tuple[tuple[IndexedObject, ...], tuple[tuple[IndexedObject, ...], ...]]:
        if not ct_frame:
            return (), ()
        my_regs = [r for r in regs if ct_frame in r.referenced_frames or r.frame_of_reference_uid == ct_frame]
        frames = {f for r in my_regs for f in r.referenced_frames} - {ct_frame}
        secondary = tuple(tuple(v) for v in series.values()
                          if v[0].modality in ("MR", "PT") and (
                              v[0].frame_of_reference_uid in frames
                              or v[0].frame_of_reference_uid == ct_frame))
        return tuple(my_regs), secondary

    for plan in plans:
        problems: list[Finding] = []
        ss = None
        if plan.referenced_instances:
            ss = by_uid.get(plan.referenced_instances[0])
            if ss is None:
                problems.append(input_problem(
                    "dangling_reference", f"the plan references structure set "
                    f"{plan.referenced_instances[0]}, which is not in the folder.", plan.path))
            elif ss.modality != "RTSTRUCT":
                problems.append(input_problem(
                    "dangling_reference", f"the plan's referenced structure set is a "
                    f"{ss.modality} object.", plan.path, ss.path))
                ss = None
        else:
            problems.append(input_problem("dangling_reference",
                                          "the plan references no structure set.", plan.path))
        if ss is not None:
            used_structs.add(id(ss))
        images = image_series_for(ss, problems) if ss is not None else ()
        my_doses = [d for d in doses if plan.sop_instance_uid in d.referenced_instances]
        used_doses.update(d.sop_instance_uid or "" for d in my_doses)
        if not my_doses:
            problems.append(input_problem("missing_dose", "no RT Dose references this plan; "
                                          "dose checks cannot be evaluated.", plan.path))
        frame = plan.frame_of_reference_uid or (ss.frame_of_reference_uid if ss else None)
        for d in my_doses:
            if frame and d.frame_of_reference_uid and d.frame_of_reference_uid != frame:
                problems.append(input_problem(
                    "frame_of_reference_mismatch", "the dose's frame of reference differs from "
                    "the plan's.", plan.path, d.path))
        if ss is not None and frame and ss.frame_of_reference_uid and ss.frame_of_reference_uid != frame:
            problems.append(input_problem(
                "frame_of_reference_mismatch", "the structure set's frame of reference differs "
                "from the plan's.", plan.path, ss.path))
        my_regs, secondary = linked(images[0].frame_of_reference_uid if images else frame)
        cases.append(CaseFiles(name=_case_name(plan, ss, None), plan=plan, structure_set=ss,
                               image_series=images, doses=tuple(my_doses),
                               registrations=my_regs, secondary_series=secondary,
                               problems=tuple(problems)))

    for ss in structs:
        if id(ss) in used_structs:
            continue
        problems = [input_problem("missing_plan", "no RT Plan references this structure set: "
                                  "contouring checks only, dose checks not evaluated.", ss.path,
                                  status=Status.NOT_EVALUATED)]
        images = image_series_for(ss, problems)
        frame = images[0].frame_of_reference_uid if images else ss.frame_of_reference_uid
        candidates = [d for d in doses if not any(r in by_uid for r in d.referenced_instances)
                      and d.frame_of_reference_uid
                      and d.frame_of_reference_uid == ss.frame_of_reference_uid]
        my_doses = []
        if len(candidates) == 1:
            my_doses = candidates
            problems.append(input_problem(
                "dose_by_frame_of_reference", "no plan links dose and structure set; the only "
                "dose in the same frame of reference is used.", ss.path, candidates[0].path,
                status=Status.WARN))
            used_doses.add(candidates[0].sop_instance_uid or "")
        elif candidates:
            problems.append(input_problem(
                "ambiguous_dose", f"no plan links a dose to this structure set and "
                f"{len(candidates)} doses share its frame of reference; none is chosen "
                "(name one with --dose).", ss.path, *[d.path for d in candidates]))
        my_regs, secondary = linked(frame)
        cases.append(CaseFiles(name=_case_name(None, ss, None), plan=None, structure_set=ss,
                               image_series=images, doses=tuple(my_doses), registrations=my_regs,
                               secondary_series=secondary, problems=tuple(problems)))

    for d in doses:
        if (d.sop_instance_uid or "") in used_doses:
            continue
        msg = ("the dose references plan " + ", ".join(d.referenced_instances) + ", which is "
               "not in the folder" if d.referenced_instances else "the dose references no plan")
        cases.append(CaseFiles(name=_case_name(None, None, d), plan=None, structure_set=None,
                               doses=(d,), problems=(input_problem(
                                   "dangling_reference", msg + "; no structures to evaluate.",
                                   d.path),)))
    return cases


def discover(root: str | Path) -> tuple[DicomIndex, list[CaseFiles]]:
    """Index ``root`` and group it into cases."""
    index = index_folder(root)
    return index, find_cases(index)


def index_object(path: Path, ds: Dataset) -> IndexedObject:
    """The index entry of one data set already read (the DICOM node indexes what it
    receives, before writing it to ``path``).

    Parameters
    ----------
    path : Path
        Where the object is (or will be) stored.
    ds : pydicom.Dataset
        Its header; pixel data is not needed.
    """
    return _index_one(path, ds)
