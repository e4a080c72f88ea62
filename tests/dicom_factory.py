"""Tiny DICOM writers for reader tests: image stacks with chosen geometry."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

STUDY = "1.2.826.0.1.3680043.8.498.1"
FRAME = "1.2.826.0.1.3680043.8.498.2"


def ct_slice(*, position: Sequence[float], orientation: Sequence[float] = (1, 0, 0, 0, 1, 0),
             pixel_spacing: Sequence[float] = (1.0, 1.0), rows: int = 6, cols: int = 8,
             value: int = 0, thickness: float | None = 1.0, series_uid: str = "1.2.3.4",
             patient_position: str = "HFS", frame_uid: str | None = FRAME) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
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
