"""Tolerant reading of one DICOM file, with errors that name the file."""

from __future__ import annotations

import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from contourqa.errors import ContourQAError, DicomReadError

__all__ = ["RawFallback", "items_of", "malformed_values_named", "raw_items", "raw_text", "read_dataset",
           "uid_of"]


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


def uid_of(ds: Dataset, keyword: str) -> str | None:
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


# -- raw sequence parsing ------------------------------------------------------------
# Converting a large sequence through pydicom builds a Dataset per item and validates
# every value (~60 us an item); an RTSTRUCT of a thousand contours spends most of its
# reading time there.  The readers walk the undecoded bytes of the few sequences they
# need instead, and fall back to pydicom for anything this walker does not expect, so
# that what is read (and every finding about it) stays the same.

RawValue = bytes | list[dict[int, "RawValue"]]

# explicit VR little endian: these VRs have 2 reserved bytes and a 4-byte length
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN",
                       b"UR", b"UT", b"UV"})
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xE000, 0xE00D, 0xE0DD


class RawFallback(Exception):
    """Raised by the raw walker where pydicom must decode instead."""


def raw_items(ds: Dataset, tag: int) -> list[dict[int, RawValue]]:
    """Items of the sequence ``tag`` of ``ds``, parsed from its undecoded bytes.

    Each item maps element tags (``0xGGGGEEEE``) to their value bytes; nested sequences
    of undefined length are lists of items, those of defined length stay bytes (pass
    them to :func:`items_of`).  An absent element gives no items.

    Raises
    ------
    RawFallback
        The element is already decoded, big endian, or not a plain well-formed sequence.
    """
    elem = ds._dict.get(tag)  # type: ignore[call-overload]
    if elem is None:
        return []
    if not isinstance(elem, RawDataElement) or not isinstance(elem.value, bytes) \
            or not elem.is_little_endian or elem.length == _UNDEFINED:
        raise RawFallback
    return _walk_items(elem.value, bool(elem.is_implicit_VR), 0, len(elem.value))[0]


def items_of(value: RawValue | None, implicit_vr: bool) -> list[dict[int, RawValue]]:
    """Items of a nested sequence value returned by :func:`raw_items`."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return _walk_items(value, implicit_vr, 0, len(value))[0]


def raw_text(value: RawValue | None) -> str | None:
    """A single-valued ASCII text value (CS, UI, IS, LO without specific characters),
    trailing spaces and NULs removed; ``None`` when absent."""
    if value is None:
        return None
    if not isinstance(value, bytes) or b"\\" in value:
        raise RawFallback
    try:
        text = value.decode("ascii").rstrip("\x00 ")
    except UnicodeDecodeError as exc:
        raise RawFallback from exc
    if "\x00" in text or not text.isprintable():
        raise RawFallback
    return text


def _walk_items(buf: bytes, implicit: bool, pos: int = 0, end: int | None = None
                ) -> tuple[list[dict[int, RawValue]], int]:
    """Sequence items from ``pos`` to ``end`` (``None``: to the sequence delimiter)."""
    stop = len(buf) if end is None else end
    items: list[dict[int, RawValue]] = []
    while end is None or pos < end:
        if pos + 8 > stop:
            raise RawFallback
        group, element, length = _ITEM_HEADER.unpack_from(buf, pos)
        pos += 8
        if group != 0xFFFE:
            raise RawFallback
        if element == _SEQ_END and end is None:
            return items, pos
        if element != _ITEM:
            raise RawFallback
        if length == _UNDEFINED:
            item, pos = _walk_elements(buf, implicit, pos, None, stop)
        else:
            if pos + length > stop:
                raise RawFallback
            item, _ = _walk_elements(buf, implicit, pos, pos + length, pos + length)
            pos += length
        items.append(item)
    return items, pos


def _walk_elements(buf: bytes, implicit: bool, pos: int, end: int | None, stop: int
                   ) -> tuple[dict[int, RawValue], int]:
    """Elements of one item from ``pos`` to ``end`` (``None``: to the item delimiter)."""
    out: dict[int, RawValue] = {}
    while end is None or pos < end:
        if pos + 8 > stop:
            raise RawFallback
        group, element = _TAG.unpack_from(buf, pos)
        if group == 0xFFFE:
            if element == _ITEM_END and end is None:
                return out, pos + 8
            raise RawFallback
        if implicit:
            (length,) = _U32.unpack_from(buf, pos + 4)
            pos += 8
            long_or_sq = True
        else:
            vr = buf[pos + 4:pos + 6]
            if vr in _LONG_VRS:
                if pos + 12 > stop:
                    raise RawFallback
                (length,) = _U32.unpack_from(buf, pos + 8)
                pos += 12
            elif vr.isalpha() and vr.isupper():
                (length,) = _U16.unpack_from(buf, pos + 6)
                pos += 8
            else:
                raise RawFallback
            long_or_sq = vr in (b"SQ", b"UN")
        tag = (group << 16) | element
        if length == _UNDEFINED:
            if not long_or_sq:
                raise RawFallback
            out[tag], pos = _walk_items(buf, implicit, pos, None)
            continue
        if pos + length > stop:
            raise RawFallback
        out[tag] = buf[pos:pos + length]
        pos += length
    return out, pos


_ITEM_HEADER = struct.Struct("<HHL")
_TAG = struct.Struct("<HH")
_U32 = struct.Struct("<L")
_U16 = struct.Struct("<H")
