"""Tolerant reading of one DICOM file, with errors that name the file."""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from contourqa.errors import DicomReadError

__all__ = ["read_dataset", "uid_of"]


def read_dataset(path: str | Path, *, stop_before_pixels: bool = False,
                 specific_tags: list[str] | None = None) -> Dataset:
    """Read one DICOM file.

    Files without the 128-byte preamble or without file meta are read (``force``),
    but a file that does not decode to a dataset with an SOP Class is refused.

    Raises
    ------
    DicomReadError
        The file is missing, truncated, or not DICOM.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            # pydicom warns on non-conformant values (invalid VR content, missing
            # meta); contourqa reports what it needs as findings instead.
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=True, stop_before_pixels=stop_before_pixels,
                                 specific_tags=specific_tags)
            # Touch the elements every reader needs so that a truncation or a
            # malformed element shows up here, with the file's name.
            sop_class = ds.get("SOPClassUID", None)
            ds.get("Modality", None)
    except FileNotFoundError as exc:
        raise DicomReadError(path, "file not found") from exc
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError,
            AttributeError, IndexError, NotImplementedError) as exc:
        raise DicomReadError(path, f"not a readable DICOM file ({type(exc).__name__}: {exc})") from exc
    if sop_class is None:
        raise DicomReadError(path, "not a DICOM object: no SOP Class UID")
    return ds


def uid_of(ds: Dataset, keyword: str) -> str | None:
    """A UID element's value as a stripped string, or None when absent or empty."""
    value = ds.get(keyword, None)
    if value is None:
        return None
    text = str(value).strip().rstrip("\x00")
    return text or None
