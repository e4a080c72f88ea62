"""Reading conformant RT Structure Sets and RT Doses from their bytes, without pydicom.

Two costs of pydicom matter when a DVH run takes a fraction of a second: importing it
(about 0.1 s, most of it the pixel-data plugins) and converting large sequences
(a Dataset per item, every value validated: ~60 us an item; an RTSTRUCT of a
thousand contours spends most of its reading time there).  For the files that need
nothing more, this module walks the undecoded bytes instead:

* :func:`read_raw` reads a whole file with the 128-byte preamble and file meta, in
  implicit or explicit VR little endian, into a :class:`RawDataset`, a read-only view
  that answers the keywords the RTSTRUCT and RTDOSE readers ask for
  (:data:`KEYWORDS`) with the values pydicom would give;
* :func:`raw_items` walks the items of one sequence of a dataset pydicom has read.

Anything else raises :class:`RawFallback` (other transfer syntaxes, compressed or
big-endian pixels, a value that is not plain ASCII, a malformed or truncated
element, a keyword outside the table), and the reader starts again with pydicom:
what is read, and every finding or error about it, stays the same
(``tests/test_io_rawdicom.py`` compares both paths on every RT file of the shared
data).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

__all__ = ["KEYWORDS", "RawDataset", "RawFallback", "RawValue", "dataset_offset", "items_of",
           "raw_items", "raw_text", "read_raw", "read_raw_or_none"]

RawValue = bytes | list[dict[int, "RawValue"]]
T = TypeVar("T")

#: Keywords a :class:`RawDataset` answers: tag and value representation (PS3.6).
KEYWORDS: dict[str, tuple[int, str]] = {
    "BitsAllocated": (0x00280100, "US"),
    "BitsStored": (0x00280101, "US"),
    "Columns": (0x00280011, "US"),
    "ContourData": (0x30060050, "DS"),
    "ContourGeometricType": (0x30060042, "CS"),
    "ContourImageSequence": (0x30060016, "SQ"),
    "ContourSequence": (0x30060040, "SQ"),
    "DVHData": (0x30040058, "DS"),
    "DVHDoseScaling": (0x30040052, "DS"),
    "DVHMaximumDose": (0x30040072, "DS"),
    "DVHMeanDose": (0x30040074, "DS"),
    "DVHMinimumDose": (0x30040070, "DS"),
    "DVHReferencedROISequence": (0x30040060, "SQ"),
    "DVHSequence": (0x30040050, "SQ"),
    "DVHType": (0x30040001, "CS"),
    "DVHVolumeUnits": (0x30040054, "CS"),
    "DoseGridScaling": (0x3004000E, "DS"),
    "DoseSummationType": (0x3004000A, "CS"),
    "DoseType": (0x30040004, "CS"),
    "DoseUnits": (0x30040002, "CS"),
    "FrameOfReferenceUID": (0x00200052, "UI"),
    "GridFrameOffsetVector": (0x3004000C, "DS"),
    "ImageOrientationPatient": (0x00200037, "DS"),
    "ImagePositionPatient": (0x00200032, "DS"),
    "Modality": (0x00080060, "CS"),
    "NumberOfFrames": (0x00280008, "IS"),
    "PatientID": (0x00100020, "LO"),
    "PixelData": (0x7FE00010, "OW"),
    "PixelRepresentation": (0x00280103, "US"),
    "PixelSpacing": (0x00280030, "DS"),
    "ROIContourSequence": (0x30060039, "SQ"),
    "ROIDisplayColor": (0x3006002A, "IS"),
    "ROIGenerationAlgorithm": (0x30060036, "CS"),
    "ROIName": (0x30060026, "LO"),
    "ROINumber": (0x30060022, "IS"),
    "RTROIInterpretedType": (0x300600A4, "CS"),
    "RTROIObservationsSequence": (0x30060080, "SQ"),
    "RTReferencedSeriesSequence": (0x30060014, "SQ"),
    "RTReferencedStudySequence": (0x30060012, "SQ"),
    "ReferencedBeamNumber": (0x300C0006, "IS"),
    "ReferencedBeamSequence": (0x300C0004, "SQ"),
    "ReferencedFractionGroupSequence": (0x300C0020, "SQ"),
    "ReferencedFrameOfReferenceSequence": (0x30060010, "SQ"),
    "ReferencedFrameOfReferenceUID": (0x30060024, "UI"),
    "ReferencedROINumber": (0x30060084, "IS"),
    "ReferencedRTPlanSequence": (0x300C0002, "SQ"),
    "ReferencedSOPInstanceUID": (0x00081155, "UI"),
    "Rows": (0x00280010, "US"),
    "SOPClassUID": (0x00080016, "UI"),
    "SOPInstanceUID": (0x00080018, "UI"),
    "SamplesPerPixel": (0x00280002, "US"),
    "SeriesInstanceUID": (0x0020000E, "UI"),
    "SliceThickness": (0x00180050, "DS"),
    "SpecificCharacterSet": (0x00080005, "CS"),
    "StructureSetLabel": (0x30060002, "SH"),
    "StructureSetROISequence": (0x30060020, "SQ"),
    "StudyInstanceUID": (0x0020000D, "UI"),
}

_IMPLICIT_LE = "1.2.840.10008.1.2"
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
# explicit VR little endian: these VRs have 2 reserved bytes and a 4-byte length
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN",
                       b"UR", b"UT", b"UV"})
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xE000, 0xE00D, 0xE0DD
_BINARY = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d"}


class RawFallback(Exception):
    """Raised where the raw walker stops and pydicom must decode instead."""


class RawDataset:
    """Read-only view of a dataset walked from its bytes.

    ``get(keyword, default)``, attribute access and ``keyword in ds`` give what pydicom
    gives for the keywords of :data:`KEYWORDS`: ``str`` for text (trailing spaces and
    NULs removed), ``int`` or ``float`` for IS, DS and binary numbers (a list when
    multi-valued, ``None`` when empty), a list of :class:`RawDataset` for sequences.
    Other keywords raise :class:`RawFallback`.
    """

    __slots__ = ("elements", "implicit_vr")

    def __init__(self, elements: dict[int, RawValue], implicit_vr: bool) -> None:
        self.elements = elements
        self.implicit_vr = implicit_vr

    def get(self, keyword: str, default: Any = None) -> Any:
        tag, vr = _entry(keyword)
        value = self.elements.get(tag)
        if value is None:
            return default
        if vr == "SQ":
            return [RawDataset(item, self.implicit_vr) for item in items_of(value, self.implicit_vr)]
        if not isinstance(value, bytes):
            raise RawFallback
        return _convert(value, vr)

    def __contains__(self, keyword: str) -> bool:
        return _entry(keyword)[0] in self.elements

    def __getattr__(self, keyword: str) -> Any:
        if keyword.startswith("_") or keyword not in KEYWORDS:
            raise AttributeError(keyword)
        if keyword not in self:
            raise AttributeError(f"the dataset has no element {keyword}")
        return self.get(keyword)

    @property
    def pixel_array(self) -> NDArray[Any]:
        """Native (uncompressed) little-endian pixels, one sample per pixel, as pydicom's
        ``pixel_array`` gives them: shape (frames, rows, columns), or (rows, columns)
        for one frame."""
        bits, stored = self.get("BitsAllocated"), self.get("BitsStored")
        signed, samples = self.get("PixelRepresentation"), self.get("SamplesPerPixel", 1)
        rows, cols = self.get("Rows"), self.get("Columns")
        frames = self.get("NumberOfFrames", 1) or 1
        data = self.elements.get(KEYWORDS["PixelData"][0])
        if bits not in (8, 16, 32) or stored != bits or signed not in (0, 1) or samples != 1 \
                or not isinstance(data, bytes) or not isinstance(frames, int) \
                or not isinstance(rows, int) or not isinstance(cols, int):
            raise RawFallback
        n = frames * rows * cols
        if len(data) < n * bits // 8:
            raise RawFallback
        dtype = np.dtype(f"<{'i' if signed else 'u'}{bits // 8}")
        pixels = np.frombuffer(data, dtype=dtype, count=n)
        return pixels.reshape((frames, rows, cols) if frames > 1 else (rows, cols))


def _entry(keyword: str) -> tuple[int, str]:
    try:
        return KEYWORDS[keyword]
    except KeyError as exc:
        raise RawFallback from exc


def _convert(value: bytes, vr: str) -> Any:
    if vr in _BINARY:
        fmt = _BINARY[vr]
        size = struct.calcsize(fmt)
        if len(value) % size:
            raise RawFallback
        numbers = struct.unpack(f"<{len(value) // size}{fmt}", value)
        return None if not numbers else numbers[0] if len(numbers) == 1 else list(numbers)
    if vr in ("OB", "OW"):
        return value
    text = raw_text(value, multi=vr in ("DS", "IS")) or ""
    if vr in ("DS", "IS"):
        parts = [p.strip() for p in text.split("\\")]
        if parts == [""]:
            return None
        try:
            values = [float(p) if vr == "DS" else int(p) for p in parts]
        except ValueError as exc:  # pydicom words the finding for malformed values
            raise RawFallback from exc
        return values[0] if len(values) == 1 else values
    return text


def dataset_offset(head: bytes) -> tuple[int, str] | None:
    """Where the dataset starts after the file meta, and the transfer syntax UID, from
    the first bytes of a file (enough to hold its file meta); None when they do not
    hold a well-formed file meta with a transfer syntax."""
    start = 132 if len(head) >= 132 and head[128:132] == b"DICM" else 0
    try:
        meta, end = _walk_elements(head, False, start, None, len(head), group=0x0002)
        syntax = raw_text(meta.get(0x00020010))
    except (RawFallback, struct.error):
        return None
    if syntax is None or end >= len(head):
        return None
    return end, syntax


def read_raw(path: str | Path) -> RawDataset:
    """Walk a whole DICOM file (preamble, file meta, implicit or explicit VR little
    endian) into a :class:`RawDataset`.

    Raises
    ------
    RawFallback
        The file is anything else, or is not well formed (pydicom then says why).
    OSError
        The file cannot be read.
    """
    path = Path(path)
    if not path.is_file():  # a FIFO or a device would block or never end
        raise RawFallback
    buf = path.read_bytes()
    if len(buf) < 144 or buf[128:132] != b"DICM":
        raise RawFallback
    meta, end = _walk_elements(buf, False, 132, None, len(buf), group=0x0002)
    syntax = raw_text(meta.get(0x00020010))
    if syntax not in (_IMPLICIT_LE, _EXPLICIT_LE):
        raise RawFallback
    implicit = syntax == _IMPLICIT_LE
    elements, _ = _walk_elements(buf, implicit, end, len(buf), len(buf))
    ds = RawDataset(elements, implicit)
    charset = ds.get("SpecificCharacterSet")
    if charset not in (None, "", "ISO_IR 6", "ISO_IR 100", "ISO_IR 192") \
            or KEYWORDS["SOPClassUID"][0] not in elements:
        raise RawFallback  # raw_text refuses non-ASCII bytes whatever the character set
    return ds


def read_raw_or_none(path: Path, interpret: Callable[[RawDataset], T]) -> T | None:
    """``interpret(read_raw(path))``, or ``None`` where that fails in any way: the
    caller then reads the file with pydicom, which reads it or words the error (so a
    bad file is read twice; a good one once, and without pydicom)."""
    try:
        return interpret(read_raw(path))
    except Exception:  # noqa: BLE001 - the pydicom path is the reference for every error
        return None


def raw_items(ds: Any, tag: int) -> list[dict[int, RawValue]]:
    """Items of the sequence ``tag`` of ``ds`` (a pydicom Dataset or a
    :class:`RawDataset`), parsed from its undecoded bytes.

    Each item maps element tags (``0xGGGGEEEE``) to their value bytes; nested sequences
    of undefined length are lists of items, those of defined length stay bytes (pass
    them to :func:`items_of`).  An absent element gives no items.

    Raises
    ------
    RawFallback
        The element is already decoded, big endian, or not a plain well-formed sequence.
    """
    if isinstance(ds, RawDataset):
        return items_of(ds.elements.get(tag), ds.implicit_vr)
    from pydicom.dataelem import RawDataElement  # a pydicom Dataset: pydicom is loaded

    elem = ds._dict.get(tag)
    if elem is None:
        return []
    if not isinstance(elem, RawDataElement) or not isinstance(elem.value, bytes) \
            or not elem.is_little_endian or elem.length == _UNDEFINED:
        raise RawFallback
    return _walk_items(elem.value, bool(elem.is_implicit_VR), 0, len(elem.value))[0]


def is_implicit_vr(ds: Any, tag: int) -> bool:
    """Whether element ``tag`` of ``ds`` (pydicom Dataset or :class:`RawDataset`) was
    encoded with implicit VR."""
    if isinstance(ds, RawDataset):
        return ds.implicit_vr
    elem = ds._dict.get(tag)
    return bool(getattr(elem, "is_implicit_VR", True))


def items_of(value: RawValue | None, implicit_vr: bool) -> list[dict[int, RawValue]]:
    """Items of a nested sequence value returned by :func:`raw_items`."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return _walk_items(value, implicit_vr, 0, len(value))[0]


def raw_text(value: RawValue | None, *, multi: bool = False) -> str | None:
    """An ASCII text value (CS, UI, IS, LO, ... without specific characters), trailing
    spaces and NULs removed; ``None`` when absent.  Several values (backslash) only
    with ``multi``."""
    if value is None:
        return None
    if not isinstance(value, bytes) or (not multi and b"\\" in value):
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


def _walk_elements(buf: bytes, implicit: bool, pos: int, end: int | None, stop: int,
                   group: int | None = None) -> tuple[dict[int, RawValue], int]:
    """Elements of one item from ``pos`` to ``end`` (``None``: to the item delimiter,
    or with ``group`` to the first element of another group)."""
    out: dict[int, RawValue] = {}
    while end is None or pos < end:
        if pos + 8 > stop:
            if group is not None:
                return out, pos
            raise RawFallback
        grp, element = _TAG.unpack_from(buf, pos)
        if group is not None and grp != group:
            return out, pos
        if grp == 0xFFFE:
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
        tag = (grp << 16) | element
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
