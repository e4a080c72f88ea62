"""Tolerant reading of one DICOM file, with errors that name the file."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contourqa.errors import ContourQAError, DicomReadError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["malformed_values_named", "read_dataset", "uid_of"]

# pydicom is imported where a file is read with it, not with this module: its import
# (~0.1 s) would double the time of a DVH run that reads its files with
# contourqa.io.rawdicom.


def read_dataset(path: str | Path, *, stop_before_pixels: bool = False,
                 specific_tags: list[str] | None = None, convert_all: bool = True) -> Dataset:
    """Read one DICOM file.

    Files without the 128-byte preamble or without file meta are read (``force``),
    but a file that does not decode to a dataset with an SOP Class is refused.
    With ``convert_all`` (default) every element is decoded here, so that malformed
    values fail with the file's name; readers of many small files (image slices)
    turn it off and decode the few elements they use under their own warning filter.

    Raises
    ------
    DicomReadError
        The file is missing, truncated, or not DICOM.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    try:
        with warnings.catch_warnings():
            # pydicom warns on non-conformant values (invalid VR content, missing
            # meta); contourqa reports what it needs as findings instead.
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=True, stop_before_pixels=stop_before_pixels,
                                 specific_tags=specific_tags)
            _check_not_truncated(ds, path)
            # Convert every raw element now, so that a truncation or a malformed value
            # shows up here with the file's name, and pydicom's lazy validation
            # warnings are not raised later in unrelated code.
            if convert_all:
                for _ in ds.iterall():
                    pass
            sop_class = ds.get("SOPClassUID", None)
    except DicomReadError:
        raise
    except FileNotFoundError as exc:
        raise DicomReadError(path, "file not found") from exc
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError,
            AttributeError, IndexError, NotImplementedError) as exc:
        raise DicomReadError(path, f"not a readable DICOM file ({type(exc).__name__}: {exc})") from exc
    if sop_class is None:
        raise DicomReadError(path, "not a DICOM object: no SOP Class UID")
    return ds


def _check_not_truncated(ds: Dataset, path: Path) -> None:
    """pydicom silently shortens a file's last element when the file ends early;
    compare that element's declared end with the file size."""
    from pydicom.dataelem import RawDataElement

    ends = [(int(e.value_tell), int(e.length), e.tag) for e in ds._dict.values()
            if isinstance(e, RawDataElement) and e.value_tell is not None]
    if not ends:
        return
    tell, length, tag = max(ends)
    if length == 0xFFFFFFFF:
        return
    size = path.stat().st_size
    if tell + length > size:
        raise DicomReadError(
            path, f"truncated file: element {tag} needs {length} bytes from offset "
            f"{tell} but the file ends at byte {size}")


def uid_of(ds: Any, keyword: str) -> str | None:
    """A UID element's value as a stripped string, or None when absent or empty."""
    value = ds.get(keyword, None)
    if value is None:
        return None
    text = str(value).strip().rstrip("\x00")
    return text or None


@contextmanager
def malformed_values_named(path: Path) -> Iterator[None]:
    """Turn a malformed value met while interpreting a dataset (text in a numeric
    element, a missing mandatory attribute, a wrong VR) into a :class:`DicomReadError`
    naming the file, so that one bad file never surfaces as a traceback."""
    try:
        yield
    except ContourQAError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        raise DicomReadError(path, f"malformed or missing DICOM attribute "
                                   f"({type(exc).__name__}: {exc})") from exc
