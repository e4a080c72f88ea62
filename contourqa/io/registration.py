"""Spatial Registration reader: rigid matrices between frames of reference."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from contourqa.errors import UnsupportedDicomError
from contourqa.findings import Finding, Status, input_problem
from contourqa.io._read import malformed_values_named, read_dataset, uid_of

__all__ = ["RigidTransform", "Registration", "read_registration"]

REG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.1"
_RIGID_TYPES = {"RIGID", "RIGID_SCALE"}


@dataclass(frozen=True, eq=False)
class RigidTransform:
    """Maps points of ``source_frame_uid`` into the registration's own frame.

    ``matrix`` is the 4x4 FrameOfReferenceTransformationMatrix (PS3.3 C.20.2.1.1):
    ``p_registered = matrix @ p_source`` in LPS mm, homogeneous coordinates.
    """

    source_frame_uid: str
    matrix: NDArray[np.float64]
    matrix_type: str


@dataclass(frozen=True, eq=False)
class Registration:
    path: Path
    sop_instance_uid: str
    frame_of_reference_uid: str | None
    transforms: tuple[RigidTransform, ...]
    problems: tuple[Finding, ...] = field(default=())

    def linked_frames(self) -> tuple[str, ...]:
        """Frames of reference this registration links to its own."""
        return tuple(t.source_frame_uid for t in self.transforms
                     if t.source_frame_uid != self.frame_of_reference_uid)


def read_registration(path: str | Path, *, dataset: Dataset | None = None) -> Registration:
    """Read a Spatial Registration object (rigid only; deformable ones are flagged)."""
    path = Path(path)
    with malformed_values_named(path):
        return _read_registration(path, dataset=dataset)


def _read_registration(path: Path, *, dataset: Dataset | None = None) -> Registration:
    ds = dataset if dataset is not None else read_dataset(path)
    if uid_of(ds, "SOPClassUID") != REG_SOP_CLASS and ds.get("Modality") != "REG":
        raise UnsupportedDicomError(f"{path}: not a Spatial Registration object.")
    problems: list[Finding] = []
    transforms = []
    for reg in ds.get("RegistrationSequence", []):
        frame = uid_of(reg, "FrameOfReferenceUID")
        for mreg in reg.get("MatrixRegistrationSequence", []):
            for m in mreg.get("MatrixSequence", []):
                values = m.get("FrameOfReferenceTransformationMatrix", None)
                kind = str(m.get("FrameOfReferenceTransformationMatrixType", "RIGID")).upper()
                if values is None or len(values) != 16 or frame is None:
                    problems.append(input_problem(
                        "malformed_registration", "a registration matrix is missing, has not "
                        "16 values, or names no frame of reference.", path))
                    continue
                matrix = np.asarray([float(v) for v in values]).reshape(4, 4)
                if kind not in _RIGID_TYPES:
                    problems.append(input_problem(
                        "non_rigid_registration", f"matrix type {kind} is not rigid; "
                        "contourqa uses only rigid registrations.", path, status=Status.WARN))
                rot = matrix[:3, :3]
                if kind == "RIGID" and not np.allclose(rot.T @ rot, np.eye(3), atol=1e-3):
                    problems.append(input_problem(
                        "registration_not_rigid", "a matrix declared RIGID is not orthonormal.",
                        path, status=Status.WARN))
                transforms.append(RigidTransform(source_frame_uid=frame, matrix=matrix,
                                                 matrix_type=kind))
    return Registration(path=path, sop_instance_uid=uid_of(ds, "SOPInstanceUID") or "",
                        frame_of_reference_uid=uid_of(ds, "FrameOfReferenceUID"),
                        transforms=tuple(transforms), problems=tuple(problems))
