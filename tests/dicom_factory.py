"""Tiny DICOM writers for reader tests: image stacks with chosen geometry."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

STUDY = "1.2.826.0.1.3680043.8.498.1"
FRAME = "1.2.826.0.1.3680043.8.498.2"


def ct_slice(*, position: Sequence[float], orientation: Sequence[float] = (1, 0, 0, 0, 1, 0),
             pixel_spacing: Sequence[float] = (1.0, 1.0), rows: int = 6, cols: int = 8,
             value: int = 0, thickness: float | None = 1.0, series_uid: str = "1.2.3.4",
             patient_position: str = "HFS", frame_uid: str | None = FRAME,
             modality: str = "CT") -> Dataset:
    meta = FileMetaDataset()
    sop_class = CTImageStorage if modality == "CT" else MRImageStorage
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientID = "TEST"
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = series_uid
    if frame_uid:
        ds.FrameOfReferenceUID = frame_uid
    ds.PatientPosition = patient_position
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.PixelSpacing = [float(v) for v in pixel_spacing]
    if thickness is not None:
        ds.SliceThickness = thickness
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleSlope = 1
    ds.RescaleIntercept = -1024
    arr = np.full((rows, cols), value + 1024, dtype=np.int16)
    arr[0, 0] = 0  # -1024 HU marker at the first stored pixel
    ds.PixelData = arr.tobytes()
    return ds


def write_stack(folder: Path, positions: Sequence[Sequence[float]], **kwargs: object) -> list[Path]:
    """Write one slice per position; slice n holds the value 10*n HU. Returns the paths
    in a shuffled order so that readers cannot rely on file order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, pos in enumerate(positions):
        ds = ct_slice(position=pos, value=10 * n, **kwargs)  # type: ignore[arg-type]
        p = folder / f"img{(n * 7919) % 1000:04d}.dcm"
        ds.save_as(p, enforce_file_format=True)
        paths.append(p)
    rng = np.random.default_rng(0)
    return [paths[i] for i in rng.permutation(len(paths))]


def registration(*, own_frame: str, moving_frame: str, shift_mm: Sequence[float]) -> Dataset:
    """A rigid Spatial Registration object mapping ``moving_frame`` into ``own_frame``."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.66.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "REG"
    ds.PatientID = "TEST"
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = own_frame
    items = []
    for frame, shift in ((own_frame, (0.0, 0.0, 0.0)), (moving_frame, tuple(shift_mm))):
        m = Dataset()
        m.FrameOfReferenceTransformationMatrixType = "RIGID"
        matrix = np.eye(4)
        matrix[:3, 3] = shift
        m.FrameOfReferenceTransformationMatrix = [float(v) for v in matrix.flatten()]
        mreg = Dataset()
        mreg.MatrixSequence = [m]
        reg = Dataset()
        reg.FrameOfReferenceUID = frame
        reg.MatrixRegistrationSequence = [mreg]
        items.append(reg)
    ds.RegistrationSequence = items
    return ds
