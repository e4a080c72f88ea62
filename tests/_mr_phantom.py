"""A phantom MR built from a phantom CT, for the fusion tests.

The MR is the CT's anatomy with an MR-like contrast (a lookup on the phantom's tissue
HU values: cortical bone dark, CSF and discs bright, as on a T2 image; none of it a
monotonic function of HU, so only mutual information can match the two), sampled on
its own grid in its own frame of reference, which differs from the CT's by a known
rigid transform (the REG matrix).  Inside one slab (the treated vertebra, between the
mid-planes of its discs) the anatomy is moved by a known local rigid transform: the
registration is exact everywhere but there.

The truth is the local transform handed in: the registered MR shows the vertebra at
``R (p - centre) + centre + t`` where the CT shows it at ``p``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import map_coordinates

from contourqa.geometry import VolumeGeometry
from contourqa.io.images import ImageSeries

# phantom HU (test_data/phantom truth "hu") -> T2-like signal
T2_SIGNAL = {-1000: 0.0, 10: 1000.0, 35: 450.0, 40: 350.0, 45: 650.0, 80: 700.0,
             250: 550.0, 700: 40.0}


def rotation(axis: str, deg: float) -> NDArray[np.float64]:
    """Rotation matrix about a patient axis ``x``, ``y`` or ``z`` (right-handed, LPS)."""
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def rigid(r: NDArray[np.float64], t: NDArray[np.float64] | list[float]) -> NDArray[np.float64]:
    m = np.eye(4)
    m[:3, :3] = r
    m[:3, 3] = t
    return m


#: CT frame -> MR frame (p_mr = MR_FROM_CT @ p_ct): the scanners' frames differ by this
MR_FROM_CT = rigid(rotation("z", 4.0) @ rotation("x", 2.0), [11.0, -6.0, 35.0])


@dataclass(frozen=True)
class LocalMove:
    """The treated vertebra's displacement in the MR: rotation ``r`` about ``centre``
    then translation ``t`` (LPS mm), applied to the CT points in ``z0 <= z <= z1``."""

    centre: NDArray[np.float64]
    r: NDArray[np.float64]
    t: NDArray[np.float64]
    z0: float
    z1: float


def mr_pixels(ct: ImageSeries, *, move: LocalMove | None, spacing_mm: tuple[float, float, float]
              = (0.9, 0.9, 1.5), noise: float = 15.0, seed: int = 0,
              direction: NDArray[np.float64] | None = None
              ) -> tuple[NDArray[np.float32], VolumeGeometry]:
    """The MR volume (S, R, C) and its grid in the MR frame (axial in that frame, or
    along ``direction``'s columns: column, row and slice directions, e.g. sagittal)."""
    g = ct.geometry
    hu = np.asarray(ct.pixels)
    signal = np.zeros(hu.shape, np.float32)
    for v, s in T2_SIGNAL.items():
        signal[hu == v] = s
    if not np.isin(hu, list(T2_SIGNAL)).all():
        raise ValueError("the CT holds values that are not phantom tissues")
    # MR grid: the CT volume's bounding box in the MR frame
    n = np.asarray(g.shape) - 1
    corners_kji = np.array([[a, b, c] for a in (0, n[0]) for b in (0, n[1]) for c in (0, n[2])],
                           float)
    c_ct = g.index_to_patient(corners_kji)
    c_mr = c_ct @ MR_FROM_CT[:3, :3].T + MR_FROM_CT[:3, 3]
    d = np.eye(3) if direction is None else np.asarray(direction, float)
    c_grid = c_mr @ d  # coordinates along the grid's axes
    lo, hi = c_grid.min(axis=0), c_grid.max(axis=0)
    sp = np.asarray(spacing_mm, float)
    shape_ijk = np.floor((hi - lo) / sp).astype(int) + 1
    geom = VolumeGeometry(shape=(int(shape_ijk[2]), int(shape_ijk[1]), int(shape_ijk[0])),
                          origin_mm=d @ lo, spacing_mm=sp, direction=d)
    kji = np.stack(np.meshgrid(*(np.arange(s) for s in geom.shape), indexing="ij"),
                   axis=-1).reshape(-1, 3)
    p_mr = geom.index_to_patient(kji.astype(float))
    ct_from_mr = np.linalg.inv(MR_FROM_CT)
    p = p_mr @ ct_from_mr[:3, :3].T + ct_from_mr[:3, 3]  # where the MR voxel is, in CT space
    if move is not None:
        # the MR shows at p what the CT shows at D^-1(p), D(q) = R (q - c) + c + t
        inside = (p[:, 2] >= move.z0) & (p[:, 2] <= move.z1)
        q = (p[inside] - move.centre - move.t) @ move.r + move.centre  # R^-1 = R^T
        p = p.copy()
        p[inside] = q
    # a slice integrates its thickness (partial volume): average samples across it
    n_sub = max(1, int(np.ceil(sp[2] / float(g.spacing_mm[2]))) * 2 - 1)
    normal = ct_from_mr[:3, :3] @ d[:, 2]  # the MR slice normal, in CT space
    vals = np.zeros(len(p))
    for off in (np.arange(n_sub) - (n_sub - 1) / 2) * (sp[2] / n_sub):
        idx = g.patient_to_index(p + off * normal)
        # beyond the CT the anatomy continues as its edge (a real MR field of view goes on)
        vals += map_coordinates(signal, idx.T, order=1, mode="nearest")
    vals /= n_sub
    rng = np.random.default_rng(seed)
    vals = vals + rng.normal(0.0, noise, vals.shape)
    return np.clip(vals, 0, None).reshape(geom.shape).astype(np.float32), geom


def mr_series(ct: ImageSeries, *, move: LocalMove | None, frame_uid: str = "1.2.3.4.5.6",
              **kw: object) -> ImageSeries:
    """The MR as an in-memory :class:`ImageSeries` (no files)."""
    px, geom = mr_pixels(ct, move=move, **kw)  # type: ignore[arg-type]
    return replace(ct, modality="MR", frame_of_reference_uid=frame_uid, pixels=px,
                   geometry=geom, paths=(Path("MR"),), sop_instance_uids=(),
                   slice_positions_mm=geom.axis_coordinates(0),
                   slice_spacing_mm=float(geom.spacing_mm[2]), slice_thickness_mm=None)


def crop_ct(ct: ImageSeries, *, lower_mm: tuple[float, float], upper_mm: tuple[float, float]
            ) -> ImageSeries:
    """The CT cut to ``lower <= (x, y) <= upper`` (axial, axis-aligned CT), every slice:
    a smaller MR field of view, and a faster phantom."""
    g = ct.geometry
    x = g.origin_mm[0] + np.arange(g.shape[2]) * g.spacing_mm[0]
    y = g.origin_mm[1] + np.arange(g.shape[1]) * g.spacing_mm[1]
    i = np.nonzero((x >= lower_mm[0]) & (x <= upper_mm[0]))[0]
    j = np.nonzero((y >= lower_mm[1]) & (y <= upper_mm[1]))[0]
    px = np.asarray(ct.pixels)[:, j[0]:j[-1] + 1, i[0]:i[-1] + 1]
    geom = VolumeGeometry(shape=px.shape, origin_mm=np.array([x[i[0]], y[j[0]], g.origin_mm[2]]),
                          spacing_mm=g.spacing_mm, direction=g.direction)
    return replace(ct, pixels=px, geometry=geom)


def _uid(*parts: object) -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=["contourqa fusion test phantom", *map(str, parts)]))


def _base(ct: Any, sop_class: str, sop: str, modality: str) -> Any:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = sop_class, sop, modality
    for kw in ("PatientID", "PatientName", "PatientBirthDate", "PatientSex",
               "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID"):
        if kw in ct:
            setattr(ds, kw, ct.get(kw))
    return ds


def write_mr(folder: Path, *, ct_file: Path, pixels: NDArray[np.float32],
             geometry: VolumeGeometry, key: str) -> tuple[str, list[Path]]:
    """Write the MR as an axial T2 series (one file per slice) in its own frame of
    reference; returns that frame's UID and the files."""
    import pydicom

    ct = pydicom.dcmread(ct_file, stop_before_pixels=True)
    mr_frame = _uid(key, "frame")
    series = _uid(key, "series")
    px = np.clip(np.rint(pixels), 0, 65535).astype(np.uint16)
    sx, sy, sz = (float(v) for v in geometry.spacing_mm)
    written = []
    for k in range(geometry.shape[0]):
        ds = _base(ct, "1.2.840.10008.5.1.4.1.1.4", _uid(key, "mr", k), "MR")
        ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = series, 301, k + 1
        ds.SeriesDescription = "AX T2 phantom"
        ds.ScanningSequence, ds.SequenceVariant = "SE", "NONE"
        ds.FrameOfReferenceUID = mr_frame
        ds.PatientPosition = ct.get("PatientPosition", "HFS")
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [round(float(v), 4) for v in
                                   geometry.index_to_patient(np.array([k, 0.0, 0.0]))]
        ds.PixelSpacing = [sy, sx]
        ds.SliceThickness = sz
        ds.Rows, ds.Columns = int(geometry.shape[1]), int(geometry.shape[2])
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = px[k].tobytes()
        path = folder / f"MR_{k + 1:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        written.append(path)
    return mr_frame, written


def write_reg(path: Path, *, ct_file: Path, mr_frame: str, key: str,
              ct_from_mr: NDArray[np.float64] | None = None, reg_in_mr_frame: bool = False
              ) -> Path:
    """Write a Spatial Registration linking the MR frame to the CT's.

    ``ct_from_mr`` (default ``inv(MR_FROM_CT)``) is the truth, ``p_ct = ct_from_mr @
    p_mr``.  The REG's own frame is the CT's (the usual export: CT item identity, MR
    item ``ct_from_mr``), or the MR's with ``reg_in_mr_frame`` (MR item identity, CT
    item ``inv(ct_from_mr)``): PS3.3 C.20.2.1.1, each matrix maps its item's frame into
    the REG's frame.
    """
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ct = pydicom.dcmread(ct_file, stop_before_pixels=True)
    ct_frame = str(ct.FrameOfReferenceUID)
    m = np.linalg.inv(MR_FROM_CT) if ct_from_mr is None else np.asarray(ct_from_mr, float)

    def item(frame: str, matrix: NDArray[np.float64]) -> Dataset:
        mat = Dataset()
        mat.FrameOfReferenceTransformationMatrixType = "RIGID"
        mat.FrameOfReferenceTransformationMatrix = [float(v) for v in matrix.ravel()]
        mreg = Dataset()
        mreg.MatrixSequence = Sequence([mat])
        it = Dataset()
        it.FrameOfReferenceUID = frame
        it.MatrixRegistrationSequence = Sequence([mreg])
        return it

    reg = _base(ct, "1.2.840.10008.5.1.4.1.1.66.1", _uid(key, "reg"), "REG")
    reg.SeriesInstanceUID, reg.SeriesNumber = _uid(key, "reg series"), 401
    if reg_in_mr_frame:
        reg.FrameOfReferenceUID = mr_frame
        reg.RegistrationSequence = Sequence([item(mr_frame, np.eye(4)),
                                             item(ct_frame, np.linalg.inv(m))])
    else:
        reg.FrameOfReferenceUID = ct_frame
        reg.RegistrationSequence = Sequence([item(ct_frame, np.eye(4)), item(mr_frame, m)])
    reg.save_as(path, enforce_file_format=True)
    return path
