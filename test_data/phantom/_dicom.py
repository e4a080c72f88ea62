"""Write a :class:`~._build.CaseModel` as DICOM: CT series, RTSTRUCT, RTPLAN, RTDOSE.

Every UID comes from :func:`pydicom.uid.generate_uid` with entropy sources made of the
recipe and the object's role, and every date is fixed, so the same recipe always
gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from ._build import CaseModel

__all__ = ["SOP_CLASS", "CaseUids", "write_case_dicom"]

SOP_CLASS = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "RTSTRUCT": "1.2.840.10008.5.1.4.1.1.481.3",
    "RTPLAN": "1.2.840.10008.5.1.4.1.1.481.5",
    "RTDOSE": "1.2.840.10008.5.1.4.1.1.481.2",
}
_STUDY_COMPONENT_CLASS = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (retired), as TPSs write
_DATE, _TIME = "20240102", "090000"
_N_BEAMS = 7
_GANTRY_DEG = (130.0, 150.0, 165.0, 180.0, 195.0, 210.0, 230.0)
_MANUFACTURER = "contourqa"
_MODEL = "digital spine phantom"


def _ds_text(v: float) -> str:
    s = f"{v:.6f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _ds_list(values: Sequence[float] | np.ndarray) -> list[str]:
    return [_ds_text(float(v)) for v in values]


class CaseUids:
    """Deterministic UIDs for one recipe: same recipe, same UIDs."""

    def __init__(self, recipe_key: str) -> None:
        self._key = recipe_key

    def uid(self, role: str, *index: int) -> str:
        return generate_uid(entropy_srcs=["contourqa digital spine phantom", self._key, role,
                                          *map(str, index)])

    @property
    def implementation_class(self) -> str:
        return generate_uid(entropy_srcs=["contourqa digital spine phantom implementation"])


def _file_meta(sop_class: str, sop_instance: str, uids: CaseUids) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(uids.implementation_class)
    meta.ImplementationVersionName = "CQA_PHANTOM_1"
    return meta


def _common(case: CaseModel, uids: CaseUids, *, modality: str, sop_instance: str,
            series_uid: str, series_number: int, series_description: str) -> Dataset:
    r = case.recipe
    ds = Dataset()
    ds.file_meta = _file_meta(SOP_CLASS[modality], sop_instance, uids)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.InstanceCreationDate = _DATE
    ds.InstanceCreationTime = _TIME
    ds.SOPClassUID = SOP_CLASS[modality]
    ds.SOPInstanceUID = sop_instance
    ds.StudyDate = _DATE
    ds.StudyTime = _TIME
    ds.AccessionNumber = ""
    ds.Modality = modality
    ds.Manufacturer = _MANUFACTURER
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "contourqa digital spine phantom"
    ds.SeriesDescription = series_description
    ds.ManufacturerModelName = _MODEL
    ds.PatientName = f"Phantom^{r.name}"
    ds.PatientID = f"CQA-{r.name}"[:64]
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.DeviceSerialNumber = "1"
    ds.SoftwareVersions = "contourqa phantom 1"
    ds.StudyInstanceUID = uids.uid("study")
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = str(series_number)
    return ds


def _frame_of_reference(ds: Dataset, uids: CaseUids) -> None:
    ds.FrameOfReferenceUID = uids.uid("frame_of_reference")
    ds.PositionReferenceIndicator = ""


def _write(ds: Dataset, path: Path) -> None:
    ds.save_as(path, enforce_file_format=True)


def _write_ct(case: CaseModel, uids: CaseUids, folder: Path) -> list[tuple[str, Path]]:
    r, grid = case.recipe, case.ct_grid
    series = uids.uid("ct_series")
    out = []
    iop = _ds_list(list(grid.row_dir) + list(grid.col_dir))
    width = max(3, len(str(grid.shape[0])))
    for k in range(grid.shape[0]):
        sop = uids.uid("ct_image", k)
        ds = _common(case, uids, modality="CT", sop_instance=sop, series_uid=series,
                     series_number=1, series_description="phantom CT")
        _frame_of_reference(ds, uids)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ContentDate = _DATE
        ds.ContentTime = _TIME
        ds.AcquisitionNumber = "1"
        ds.BodyPartExamined = {"C": "CSPINE", "T": "TSPINE", "L": "LSPINE",
                               "S": "SSPINE"}[r.treated_level[0]]
        ds.InstanceNumber = str(k + 1)
        ds.PatientPosition = r.patient_position
        ds.KVP = "120"
        ds.SliceThickness = _ds_text(r.ct_slice_thickness_mm)
        ds.SpacingBetweenSlices = _ds_text(r.ct_slice_thickness_mm)
        ds.ImagePositionPatient = _ds_list(grid.frame_position(k))
        ds.ImageOrientationPatient = iop
        ds.SliceLocation = _ds_text(float(grid.frame_z[k]))
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = grid.shape[1], grid.shape[2]
        ds.PixelSpacing = _ds_list([grid.spacing("y"), grid.spacing("x")])
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.WindowCenter = "40"
        ds.WindowWidth = "400"
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.PixelData = (case.ct_hu[k].astype(np.int32) + 1024).astype("<u2").tobytes()
        path = folder / f"CT_{k + 1:0{width}d}.dcm"
        _write(ds, path)
        out.append((sop, path))
    return out


def _item(**kwargs: object) -> Dataset:
    ds = Dataset()
    for k, v in kwargs.items():
        setattr(ds, k, v)
    return ds


def _write_rtstruct(case: CaseModel, uids: CaseUids, folder: Path,
                    ct: list[tuple[str, Path]]) -> tuple[str, Path]:
    sop = uids.uid("rtstruct")
    ds = _common(case, uids, modality="RTSTRUCT", sop_instance=sop,
                 series_uid=uids.uid("rtstruct_series"), series_number=2,
                 series_description="phantom structures")
    _frame_of_reference(ds, uids)
    ds.OperatorsName = ""
    ds.InstanceNumber = "1"
    ds.StructureSetLabel = "PHANTOM"
    ds.StructureSetName = case.recipe.name[:64]
    ds.StructureSetDate = _DATE
    ds.StructureSetTime = _TIME
    frame = uids.uid("frame_of_reference")
    ct_class = SOP_CLASS["CT"]
    images = [_item(ReferencedSOPClassUID=ct_class, ReferencedSOPInstanceUID=u) for u, _ in ct]
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([_item(
        FrameOfReferenceUID=frame,
        RTReferencedStudySequence=DicomSequence([_item(
            ReferencedSOPClassUID=_STUDY_COMPONENT_CLASS,
            ReferencedSOPInstanceUID=uids.uid("study"),
            RTReferencedSeriesSequence=DicomSequence([_item(
                SeriesInstanceUID=uids.uid("ct_series"),
                ContourImageSequence=DicomSequence(images))]))]))])
    rois, contours, observations = [], [], []
    for roi in case.rois:
        rois.append(_item(ROINumber=roi.number, ReferencedFrameOfReferenceUID=frame,
                          ROIName=roi.name, ROIDescription=roi.description,
                          ROIGenerationAlgorithm="AUTOMATIC"))
        seq = []
        number = 1
        for k in sorted(roi.planes):
            for text, _ in roi.planes[k]:
                seq.append(_item(
                    ContourImageSequence=DicomSequence([_item(
                        ReferencedSOPClassUID=ct_class, ReferencedSOPInstanceUID=ct[k][0])]),
                    ContourGeometricType="CLOSED_PLANAR",
                    NumberOfContourPoints=len(text) // 3,
                    ContourNumber=number,
                    ContourData=text))
                number += 1
        item = _item(ROIDisplayColor=list(roi.color), ReferencedROINumber=roi.number)
        if seq:
            item.ContourSequence = DicomSequence(seq)
        contours.append(item)
        observations.append(_item(ObservationNumber=roi.number, ReferencedROINumber=roi.number,
                                  RTROIInterpretedType=roi.interpreted_type, ROIInterpreter=""))
    ds.StructureSetROISequence = DicomSequence(rois)
    ds.ROIContourSequence = DicomSequence(contours)
    ds.RTROIObservationsSequence = DicomSequence(observations)
    path = folder / "RS.dcm"
    _write(ds, path)
    return sop, path


def _write_rtplan(case: CaseModel, uids: CaseUids, folder: Path, rtstruct_sop: str,
                  isocentre_mm: Sequence[float]) -> tuple[str, Path]:
    r = case.recipe
    sop = uids.uid("rtplan")
    ds = _common(case, uids, modality="RTPLAN", sop_instance=sop,
                 series_uid=uids.uid("rtplan_series"), series_number=3,
                 series_description="phantom plan")
    _frame_of_reference(ds, uids)
    ds.OperatorsName = ""
    ds.InstanceNumber = "1"
    ds.RTPlanLabel = f"{r.treated_level} SBRT"[:16]
    ds.RTPlanName = f"{r.treated_level} SBRT {_ds_text(r.prescription_gy)}Gy/{r.n_fractions}fx"[:64]
    ds.RTPlanDate = _DATE
    ds.RTPlanTime = _TIME
    ds.PlanIntent = "PALLIATIVE"
    ds.RTPlanGeometry = "PATIENT"
    ds.ReferencedStructureSetSequence = DicomSequence([_item(
        ReferencedSOPClassUID=SOP_CLASS["RTSTRUCT"], ReferencedSOPInstanceUID=rtstruct_sop)])
    ptv = next(roi for roi in case.rois if roi.interpreted_type == "PTV")
    ds.DoseReferenceSequence = DicomSequence([_item(
        DoseReferenceNumber=1, DoseReferenceUID=uids.uid("dose_reference"),
        DoseReferenceStructureType="VOLUME", ReferencedROINumber=ptv.number,
        DoseReferenceDescription=ptv.name, DoseReferenceType="TARGET",
        TargetPrescriptionDose=_ds_text(r.prescription_gy))])
    ds.PatientSetupSequence = DicomSequence([_item(
        PatientPosition=r.patient_position, PatientSetupNumber=1, SetupTechnique="ISOCENTRIC")])
    per_fraction_gy = r.prescription_gy / r.n_fractions
    meterset = 2.0 * per_fraction_gy * 100.0 / _N_BEAMS
    ds.FractionGroupSequence = DicomSequence([_item(
        FractionGroupNumber=1, NumberOfFractionsPlanned=r.n_fractions,
        NumberOfBeams=_N_BEAMS, NumberOfBrachyApplicationSetups=0,
        ReferencedBeamSequence=DicomSequence([
            _item(BeamDose=_ds_text(per_fraction_gy / _N_BEAMS), BeamMeterset=_ds_text(meterset),
                  ReferencedBeamNumber=b + 1) for b in range(_N_BEAMS)]))])
    iso = _ds_list(isocentre_mm)
    beams = []
    for b, gantry in enumerate(_GANTRY_DEG):
        jaws = [_item(RTBeamLimitingDeviceType="ASYMX", NumberOfLeafJawPairs=1),
                _item(RTBeamLimitingDeviceType="ASYMY", NumberOfLeafJawPairs=1)]
        cp0 = _item(
            ControlPointIndex=0, NominalBeamEnergy="6", DoseRateSet="1400",
            BeamLimitingDevicePositionSequence=DicomSequence([
                _item(RTBeamLimitingDeviceType="ASYMX", LeafJawPositions=["-30", "30"]),
                _item(RTBeamLimitingDeviceType="ASYMY", LeafJawPositions=["-25", "25"])]),
            GantryAngle=_ds_text(gantry), GantryRotationDirection="NONE",
            BeamLimitingDeviceAngle="0", BeamLimitingDeviceRotationDirection="NONE",
            PatientSupportAngle="0", PatientSupportRotationDirection="NONE",
            TableTopEccentricAngle="0", TableTopEccentricRotationDirection="NONE",
            IsocenterPosition=iso, SourceToSurfaceDistance="900",
            CumulativeMetersetWeight="0")
        cp1 = _item(ControlPointIndex=1, CumulativeMetersetWeight="1")
        beams.append(_item(
            BeamNumber=b + 1, BeamName=f"G{int(gantry):03d}", BeamType="STATIC",
            RadiationType="PHOTON", TreatmentMachineName="PHANTOM_LINAC",
            PrimaryDosimeterUnit="MU", SourceAxisDistance="1000",
            BeamLimitingDeviceSequence=DicomSequence(jaws),
            TreatmentDeliveryType="TREATMENT", NumberOfWedges=0, NumberOfCompensators=0,
            NumberOfBoli=0, NumberOfBlocks=0, FinalCumulativeMetersetWeight="1",
            NumberOfControlPoints=2, ReferencedPatientSetupNumber=1,
            ControlPointSequence=DicomSequence([cp0, cp1])))
    ds.BeamSequence = DicomSequence(beams)
    ds.ApprovalStatus = "UNAPPROVED"
    path = folder / "RP.dcm"
    _write(ds, path)
    return sop, path


def _write_rtdose(case: CaseModel, uids: CaseUids, folder: Path,
                  rtplan_sop: str) -> tuple[str, Path]:
    grid = case.dose_grid
    sop = uids.uid("rtdose")
    ds = _common(case, uids, modality="RTDOSE", sop_instance=sop,
                 series_uid=uids.uid("rtdose_series"), series_number=4,
                 series_description="phantom dose")
    _frame_of_reference(ds, uids)
    ds.OperatorsName = ""
    ds.ContentDate = _DATE
    ds.ContentTime = _TIME
    ds.InstanceNumber = "1"
    ds.ImagePositionPatient = _ds_list(grid.first_position())
    ds.ImageOrientationPatient = _ds_list(list(grid.row_dir) + list(grid.col_dir))
    ds.SliceThickness = ""
    ds.PixelSpacing = _ds_list([grid.spacing("y"), grid.spacing("x")])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames = str(grid.shape[0])
    ds.FrameIncrementPointer = Tag("GridFrameOffsetVector")
    ds.Rows, ds.Columns = grid.shape[1], grid.shape[2]
    bits = case.recipe.dose_bits
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = "PLAN"
    ds.ReferencedRTPlanSequence = DicomSequence([_item(
        ReferencedSOPClassUID=SOP_CLASS["RTPLAN"], ReferencedSOPInstanceUID=rtplan_sop)])
    ds.GridFrameOffsetVector = _ds_list(np.arange(grid.shape[0]) * grid.spacing("z"))
    ds.DoseGridScaling = case.dose_scaling_text
    ds.TissueHeterogeneityCorrection = "IMAGE"
    dtype = "<u2" if bits == 16 else "<u4"
    ds.PixelData = case.dose_int.astype(dtype).tobytes()
    path = folder / "RD.dcm"
    _write(ds, path)
    return sop, path


def write_case_dicom(case: CaseModel, folder: Path, *, isocentre_mm: Sequence[float]
                     ) -> dict[str, object]:
    """Write all DICOM files of ``case`` into ``folder``; return their UIDs and names."""
    uids = CaseUids(json.dumps(case.recipe.to_dict(), sort_keys=True))
    folder.mkdir(parents=True, exist_ok=True)
    ct = _write_ct(case, uids, folder)
    rs_sop, rs_path = _write_rtstruct(case, uids, folder, ct)
    rp_sop, rp_path = _write_rtplan(case, uids, folder, rs_sop, isocentre_mm)
    rd_sop, rd_path = _write_rtdose(case, uids, folder, rp_sop)
    return {
        "uids": {
            "study": uids.uid("study"), "frame_of_reference": uids.uid("frame_of_reference"),
            "ct_series": uids.uid("ct_series"), "rtstruct": rs_sop, "rtplan": rp_sop,
            "rtdose": rd_sop,
        },
        "files": {
            "ct": [p.name for _, p in ct], "rtstruct": rs_path.name, "rtplan": rp_path.name,
            "rtdose": rd_path.name,
        },
        "ct_sop_instance_uids": [u for u, _ in ct],
    }
