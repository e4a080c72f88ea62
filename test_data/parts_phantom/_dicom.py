"""DICOM writers of the parts phantom: CT series, RTSTRUCT, RTPLAN, RTDOSE.

UIDs come from :func:`pydicom.uid.generate_uid` with entropy made of the case spec and
the object's role, dates are fixed: the same spec writes the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from skimage.measure import find_contours

__all__ = ["RoiPlanes", "contours_from_mask", "write_dicom"]

_CT, _RS = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.481.3"
_RP, _RD = "1.2.840.10008.5.1.4.1.1.481.5", "1.2.840.10008.5.1.4.1.1.481.2"
_STUDY_CLASS = "1.2.840.10008.3.1.2.3.1"
_DATE, _TIME = "20250301", "100000"
_GANTRY = (140.0, 160.0, 180.0, 200.0, 220.0)


def _ds(v: float) -> str:
    s = f"{v:.4f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _dl(values: Sequence[float] | NDArray[np.float64]) -> list[str]:
    return [_ds(float(v)) for v in values]


_CONTOUR_DATA = Tag(0x30060050)


def _raw_ds(tag: BaseTag, values: NDArray[np.float64]) -> RawDataElement:
    """A DS element already encoded: pydicom writes it as is, instead of making (and
    validating) one DS object per coordinate, which dominated the writing time."""
    b = "\\".join(_dl(values)).encode("ascii")
    if len(b) % 2:
        b += b" "
    return RawDataElement(tag, "DS", len(b), b, 0, False, True)


def _item(**kw: object) -> Dataset:
    ds = Dataset()
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


@dataclass(frozen=True)
class RoiPlanes:
    """One ROI: name, RT ROI Interpreted Type, colour and its polygons per CT slice
    (``{slice index: [array (N, 3) of LPS mm]}``)."""

    name: str
    interpreted_type: str
    color: tuple[int, int, int]
    planes: dict[int, list[NDArray[np.float64]]]


def contours_from_mask(mask: NDArray[np.bool_], *, origin_mm: NDArray[np.float64],
                       spacing_mm: NDArray[np.float64]) -> dict[int, list[NDArray[np.float64]]]:
    """Closed polygons (LPS mm) around a (slice, row, column) mask, per slice.

    Each polygon runs halfway between voxel centres inside and outside, so that the
    voxel centres inside the polygons (even-odd) are the mask's voxels.
    """
    out: dict[int, list[NDArray[np.float64]]] = {}
    for k in np.flatnonzero(mask.any(axis=(1, 2))):
        sl = mask[k]
        rows = np.flatnonzero(sl.any(axis=1))
        cols = np.flatnonzero(sl.any(axis=0))
        r0, c0 = rows[0] - 1, cols[0] - 1
        sub = np.zeros((rows[-1] - rows[0] + 3, cols[-1] - cols[0] + 3), dtype=float)
        sub[1:-1, 1:-1] = sl[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        polys = []
        for c in find_contours(sub, 0.5):
            if len(c) < 4:
                continue
            c = c[:-1] if np.allclose(c[0], c[-1]) else c
            x = origin_mm[0] + (c[:, 1] + c0) * spacing_mm[0]
            y = origin_mm[1] + (c[:, 0] + r0) * spacing_mm[1]
            z = np.full(len(c), origin_mm[2] + k * spacing_mm[2])
            polys.append(np.column_stack([x, y, z]))
        if polys:
            out[int(k)] = polys
    return out


class _Uids:
    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, role: str, *index: int) -> str:
        return generate_uid(entropy_srcs=["contourqa parts phantom", self.key, role,
                                          *map(str, index)])


def _base(uids: _Uids, *, sop_class: str, sop: str, modality: str, series: str,
          number: int, description: str, patient: str) -> Dataset:
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(generate_uid(entropy_srcs=["contourqa parts phantom"]))
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.InstanceCreationDate, ds.InstanceCreationTime = _DATE, _TIME
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop
    ds.StudyDate, ds.StudyTime = _DATE, _TIME
    ds.AccessionNumber = ""
    ds.Modality = modality
    ds.Manufacturer = "contourqa"
    ds.ManufacturerModelName = "parts phantom"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "contourqa parts phantom"
    ds.SeriesDescription = description
    ds.PatientName = f"Parts^{patient}"[:64]
    ds.PatientID = f"CQP-{patient}"[:64]
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyInstanceUID = uids("study")
    ds.SeriesInstanceUID = series
    ds.StudyID = "1"
    ds.SeriesNumber = str(number)
    ds.FrameOfReferenceUID = uids("frame")
    ds.PositionReferenceIndicator = ""
    return ds


def write_dicom(folder: Path, *, key: str, patient: str, hu: NDArray[np.int16],
                origin_mm: NDArray[np.float64], spacing_mm: NDArray[np.float64],
                rois: Sequence[RoiPlanes], target_roi: str, plan_label: str,
                prescription_gy: float, n_fractions: int, isocentre_mm: Sequence[float],
                dose_gy: NDArray[np.float64], dose_origin_mm: NDArray[np.float64],
                dose_spacing_mm: NDArray[np.float64]) -> dict[str, object]:
    """Write CT_nnn.dcm, RS.dcm, RP.dcm and RD.dcm into ``folder``; return file names."""
    folder.mkdir(parents=True, exist_ok=True)
    uids = _Uids(key)
    nz, ny, nx = hu.shape
    ct_series = uids("ct_series")
    ct = []
    for k in range(nz):
        sop = uids("ct", k)
        ds = _base(uids, sop_class=_CT, sop=sop, modality="CT", series=ct_series, number=1,
                   description="parts phantom CT", patient=patient)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ContentDate, ds.ContentTime = _DATE, _TIME
        ds.InstanceNumber = str(k + 1)
        ds.PatientPosition = "HFS"
        ds.KVP = "120"
        ds.SliceThickness = _ds(float(spacing_mm[2]))
        pos = [origin_mm[0], origin_mm[1], origin_mm[2] + k * spacing_mm[2]]
        ds.ImagePositionPatient = _dl(pos)
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.SliceLocation = _ds(pos[2])
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = ny, nx
        ds.PixelSpacing = _dl([spacing_mm[1], spacing_mm[0]])
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 0
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
        ds.WindowCenter, ds.WindowWidth = "40", "400"
        ds.PixelData = (hu[k].astype(np.int32) + 1024).astype("<u2").tobytes()
        path = folder / f"CT_{k + 1:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        ct.append(sop)
    # structure set
    rs_sop = uids("rtstruct")
    ds = _base(uids, sop_class=_RS, sop=rs_sop, modality="RTSTRUCT",
               series=uids("rtstruct_series"), number=2, description="parts phantom ROIs",
               patient=patient)
    ds.OperatorsName = ""
    ds.InstanceNumber = "1"
    ds.StructureSetLabel = "PARTS"
    ds.StructureSetDate, ds.StructureSetTime = _DATE, _TIME
    frame = uids("frame")
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([_item(
        FrameOfReferenceUID=frame,
        RTReferencedStudySequence=DicomSequence([_item(
            ReferencedSOPClassUID=_STUDY_CLASS, ReferencedSOPInstanceUID=uids("study"),
            RTReferencedSeriesSequence=DicomSequence([_item(
                SeriesInstanceUID=ct_series,
                ContourImageSequence=DicomSequence([
                    _item(ReferencedSOPClassUID=_CT, ReferencedSOPInstanceUID=u)
                    for u in ct]))]))]))])
    ssroi, contours, obs = [], [], []
    numbers = {}
    for n, roi in enumerate(rois, start=1):
        numbers[roi.name] = n
        ssroi.append(_item(ROINumber=n, ReferencedFrameOfReferenceUID=frame, ROIName=roi.name,
                           ROIGenerationAlgorithm="AUTOMATIC"))
        seq = []
        cn = 1
        for k in sorted(roi.planes):
            for poly in roi.planes[k]:
                c_item = _item(
                    ContourImageSequence=DicomSequence([_item(
                        ReferencedSOPClassUID=_CT, ReferencedSOPInstanceUID=ct[k])]),
                    ContourGeometricType="CLOSED_PLANAR", NumberOfContourPoints=len(poly),
                    ContourNumber=cn)
                c_item[_CONTOUR_DATA] = _raw_ds(_CONTOUR_DATA, poly.ravel())
                seq.append(c_item)
                cn += 1
        item = _item(ROIDisplayColor=list(roi.color), ReferencedROINumber=n)
        if seq:
            item.ContourSequence = DicomSequence(seq)
        contours.append(item)
        obs.append(_item(ObservationNumber=n, ReferencedROINumber=n,
                         RTROIInterpretedType=roi.interpreted_type, ROIInterpreter=""))
    ds.StructureSetROISequence = DicomSequence(ssroi)
    ds.ROIContourSequence = DicomSequence(contours)
    ds.RTROIObservationsSequence = DicomSequence(obs)
    ds.save_as(folder / "RS.dcm", enforce_file_format=True)
    # plan
    rp_sop = uids("rtplan")
    ds = _base(uids, sop_class=_RP, sop=rp_sop, modality="RTPLAN", series=uids("rtplan_series"),
               number=3, description="parts phantom plan", patient=patient)
    ds.OperatorsName = ""
    ds.InstanceNumber = "1"
    ds.RTPlanLabel = plan_label[:16]
    ds.RTPlanName = f"{plan_label} {_ds(prescription_gy)}Gy/{n_fractions}fx"[:64]
    ds.RTPlanDate, ds.RTPlanTime = _DATE, _TIME
    ds.PlanIntent = "PALLIATIVE"
    ds.RTPlanGeometry = "PATIENT"
    ds.ReferencedStructureSetSequence = DicomSequence([_item(
        ReferencedSOPClassUID=_RS, ReferencedSOPInstanceUID=rs_sop)])
    ds.DoseReferenceSequence = DicomSequence([_item(
        DoseReferenceNumber=1, DoseReferenceUID=uids("dose_reference"),
        DoseReferenceStructureType="VOLUME", ReferencedROINumber=numbers[target_roi],
        DoseReferenceDescription=target_roi, DoseReferenceType="TARGET",
        TargetPrescriptionDose=_ds(prescription_gy))])
    ds.PatientSetupSequence = DicomSequence([_item(
        PatientPosition="HFS", PatientSetupNumber=1, SetupTechnique="ISOCENTRIC")])
    per_fx = prescription_gy / n_fractions
    nb = len(_GANTRY)
    ds.FractionGroupSequence = DicomSequence([_item(
        FractionGroupNumber=1, NumberOfFractionsPlanned=n_fractions, NumberOfBeams=nb,
        NumberOfBrachyApplicationSetups=0,
        ReferencedBeamSequence=DicomSequence([
            _item(BeamDose=_ds(per_fx / nb), BeamMeterset=_ds(2.2 * per_fx * 100 / nb),
                  ReferencedBeamNumber=b + 1) for b in range(nb)]))])
    beams = []
    for b, g in enumerate(_GANTRY):
        cp0 = _item(
            ControlPointIndex=0, NominalBeamEnergy="6", DoseRateSet="1400",
            BeamLimitingDevicePositionSequence=DicomSequence([
                _item(RTBeamLimitingDeviceType="ASYMX", LeafJawPositions=["-35", "35"]),
                _item(RTBeamLimitingDeviceType="ASYMY", LeafJawPositions=["-30", "30"])]),
            GantryAngle=_ds(g), GantryRotationDirection="NONE", BeamLimitingDeviceAngle="0",
            BeamLimitingDeviceRotationDirection="NONE", PatientSupportAngle="0",
            PatientSupportRotationDirection="NONE", TableTopEccentricAngle="0",
            TableTopEccentricRotationDirection="NONE", IsocenterPosition=_dl(isocentre_mm),
            SourceToSurfaceDistance="900", CumulativeMetersetWeight="0")
        cp1 = _item(ControlPointIndex=1, CumulativeMetersetWeight="1")
        beams.append(_item(
            BeamNumber=b + 1, BeamName=f"G{int(g):03d}", BeamType="STATIC",
            RadiationType="PHOTON", TreatmentMachineName="PHANTOM_LINAC",
            PrimaryDosimeterUnit="MU", SourceAxisDistance="1000",
            BeamLimitingDeviceSequence=DicomSequence([
                _item(RTBeamLimitingDeviceType="ASYMX", NumberOfLeafJawPairs=1),
                _item(RTBeamLimitingDeviceType="ASYMY", NumberOfLeafJawPairs=1)]),
            TreatmentDeliveryType="TREATMENT", NumberOfWedges=0, NumberOfCompensators=0,
            NumberOfBoli=0, NumberOfBlocks=0, FinalCumulativeMetersetWeight="1",
            NumberOfControlPoints=2, ReferencedPatientSetupNumber=1,
            ControlPointSequence=DicomSequence([cp0, cp1])))
    ds.BeamSequence = DicomSequence(beams)
    ds.ApprovalStatus = "UNAPPROVED"
    ds.save_as(folder / "RP.dcm", enforce_file_format=True)
    # dose
    rd_sop = uids("rtdose")
    ds = _base(uids, sop_class=_RD, sop=rd_sop, modality="RTDOSE", series=uids("rtdose_series"),
               number=4, description="parts phantom dose", patient=patient)
    ds.OperatorsName = ""
    ds.ContentDate, ds.ContentTime = _DATE, _TIME
    ds.InstanceNumber = "1"
    ds.ImagePositionPatient = _dl(dose_origin_mm)
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.SliceThickness = ""
    ds.PixelSpacing = _dl([dose_spacing_mm[1], dose_spacing_mm[0]])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    dz_, dy_, dx_ = dose_gy.shape
    ds.NumberOfFrames = str(dz_)
    ds.FrameIncrementPointer = Tag("GridFrameOffsetVector")
    ds.Rows, ds.Columns = dy_, dx_
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 0
    ds.DoseUnits, ds.DoseType, ds.DoseSummationType = "GY", "PHYSICAL", "PLAN"
    ds.ReferencedRTPlanSequence = DicomSequence([_item(
        ReferencedSOPClassUID=_RP, ReferencedSOPInstanceUID=rp_sop)])
    ds.GridFrameOffsetVector = _dl(np.arange(dz_) * dose_spacing_mm[2])
    ds.DoseGridScaling = "0.001"
    ds.TissueHeterogeneityCorrection = "IMAGE"
    ds.PixelData = np.clip(np.rint(dose_gy / 0.001), 0, 65535).astype("<u2").tobytes()
    ds.save_as(folder / "RD.dcm", enforce_file_format=True)
    return {"ct": [f"CT_{k + 1:03d}.dcm" for k in range(nz)], "rtstruct": "RS.dcm",
            "rtplan": "RP.dcm", "rtdose": "RD.dcm",
            "uids": {"study": uids("study"), "frame_of_reference": frame,
                     "ct_series": ct_series, "rtstruct": rs_sop, "rtplan": rp_sop,
                     "rtdose": rd_sop}}
