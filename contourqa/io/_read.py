"""Tolerant reading of one DICOM file, with errors that name the file."""

from __future__ import annotations

import stat
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contourqa.errors import ContourQAError, DicomReadError
from contourqa.limits import input_limits

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["DEFLATED_SYNTAX", "check_grid_size", "check_regular_file", "inflated_size",
           "malformed_values_named", "read_dataset", "uid_of"]

#: Deflated Explicit VR Little Endian (PS3.5 A.5): the dataset after the file meta is
#: one raw deflate stream.
DEFLATED_SYNTAX = "1.2.840.10008.1.2.1.99"
_INFLATE_CHUNK = 1 << 20
_META_HEAD = 1 << 14  # bytes read to find the file meta's end (real ones: < 1 KiB)

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

    path = Path(path)
    try:
        check_regular_file(path)
        # A deflated file is inflated whole by pydicom: measure it first, within the cap.
        inflated = inflated_size(path)
        with warnings.catch_warnings():
            # pydicom warns on non-conformant values (invalid VR content, missing
            # meta); contourqa reports what it needs as findings instead.
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=True, stop_before_pixels=stop_before_pixels,
                                 specific_tags=specific_tags)
            _check_not_truncated(ds, path, inflated)
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
    except Exception as exc:  # noqa: BLE001
        # pydicom raises many types on malformed bytes (struct.error, its own
        # BytesLengthException, RecursionError on nested sequences, MemoryError ...):
        # whatever it is, it is this file's problem and becomes a finding naming it.
        raise DicomReadError(path, f"not a readable DICOM file ({type(exc).__name__}: "
                                   f"{str(exc)[:300]})") from exc
    if sop_class is None:
        raise DicomReadError(path, "not a DICOM object: no SOP Class UID")
    return ds


def check_regular_file(path: Path) -> None:
    """Refuse what is not a regular file (a FIFO or a device would block or never end).

    Raises
    ------
    DicomReadError
        ``path`` is missing or is not a regular file.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise DicomReadError(path, "file not found") from exc
    if not stat.S_ISREG(mode):
        raise DicomReadError(path, "not a regular file (a FIFO, device or socket); not read")


def inflated_size(path: Path) -> int | None:
    """Size in bytes of the dataset of a deflated file once inflated, or None when the
    file is not deflated.  Inflates in chunks, keeping none of it, and stops at the cap.

    Raises
    ------
    DicomReadError
        The inflated dataset would exceed ``max_inflated_bytes`` (a deflate bomb), or
        the deflate stream is corrupt.
    """
    from contourqa.io.rawdicom import dataset_offset

    with open(path, "rb") as fh:
        head = fh.read(_META_HEAD)
        found = dataset_offset(head)
        if found is None and DEFLATED_SYNTAX.encode() in head:
            # deflated, but the file meta does not end within the first bytes (padded
            # with large elements): its dataset cannot be measured, so it is not read
            raise DicomReadError(path, "deflated file whose file meta group exceeds "
                                       f"{_META_HEAD} bytes; not read")
        if found is None or found[1] != DEFLATED_SYNTAX:
            return None
        fh.seek(found[0])
        cap = input_limits().max_inflated_bytes
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        total = 0
        while True:
            chunk = inflater.unconsumed_tail or fh.read(_INFLATE_CHUNK)
            if not chunk:
                break
            try:
                total += len(inflater.decompress(chunk, _INFLATE_CHUNK))
            except zlib.error as exc:
                raise DicomReadError(path, f"corrupt deflated dataset ({exc})") from exc
            if total > cap:
                raise DicomReadError(
                    path, f"the deflated dataset inflates to more than "
                    f"{input_limits().where('max_inflated_bytes')} bytes; not read "
                    "(a deflate bomb, or raise the limit for a legitimate file)")
            if inflater.eof:
                break
        return total + len(inflater.flush())


def _check_not_truncated(ds: Dataset, path: Path, inflated: int | None = None) -> None:
    """pydicom silently shortens a file's last element when the file ends early;
    compare that element's declared end with the file size (of a deflated file: with
    the inflated dataset's size, where pydicom's offsets count)."""
    from pydicom.dataelem import RawDataElement

    ends = [(int(e.value_tell), int(e.length), e.tag) for e in ds._dict.values()
            if isinstance(e, RawDataElement) and e.value_tell is not None]
    if not ends:
        return
    tell, length, tag = max(ends)
    if length == 0xFFFFFFFF:
        return
    size = path.stat().st_size if inflated is None else inflated
    if tell + length > size:
        raise DicomReadError(
            path, f"truncated file: element {tag} needs {length} bytes from offset "
            f"{tell} but the file ends at byte {size}")


def check_grid_size(path: Path, *, rows: object, columns: object, frames: object) -> None:
    """Refuse a grid whose Rows x Columns x Frames (or slices) exceeds ``max_voxels``
    before any pixel is decoded: a header may declare a grid far larger than its
    pixel data, and a compressed or deflated one can decode to it.

    Raises
    ------
    DicomReadError
        A size that is not a positive integer, or a grid beyond the limit.
    """
    sizes = []
    for name, value in (("Rows", rows), ("Columns", columns), ("NumberOfFrames", frames)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) \
                or int(value) < 1:
            raise DicomReadError(path, f"{name} {value!r} is not a positive integer")
        sizes.append(int(value))
    n = sizes[0] * sizes[1] * sizes[2]
    if n > input_limits().max_voxels:
        raise DicomReadError(
            path, f"the grid of {sizes[2]} x {sizes[0]} x {sizes[1]} = {n} voxels exceeds "
            f"{input_limits().where('max_voxels')}; not decoded")


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
    except Exception as exc:  # noqa: BLE001 - pydicom's lazy decoding raises many types
        raise DicomReadError(path, f"malformed or missing DICOM attribute "
                                   f"({type(exc).__name__}: {str(exc)[:300]})") from exc
