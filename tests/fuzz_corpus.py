"""A corpus of hostile and careless mutations of the bundled demo case, for fuzz tests.

:func:`build_corpus` writes, under a folder, one case folder per mutation: the demo
case's files as symbolic links, except the one mutated file (RS.dcm, RD.dcm, RP.dcm or
one CT slice), written in full.  The mutations are fixed by the seed, so a failure
names a mutation that can be rebuilt.  Categories:

``coordinates``
    Non-finite (NaN, inf, -inf), huge (1e308, 1e5+1 mm) and far (one vertex 5,000 mm
    from its ROI) contour points, a whole ROI scaled by 1,000, non-numeric and
    odd-length ContourData, an ROI with more contours than the limit.
``truncation``
    RS, RD, RP and a CT slice cut at several offsets (in the preamble, the file meta,
    the dataset, one byte short).
``header_bomb``
    RD and CT headers declaring huge Rows, Columns or NumberOfFrames, a
    GridFrameOffsetVector that is huge, non-finite or of the wrong length, a non-finite
    or huge DoseGridScaling, zero, tiny or non-finite spacings and positions; RP with a
    NaN or huge prescription, zero or huge fractions.
``deflate_bomb``
    An RT Dose in the deflated transfer syntax whose dataset inflates beyond
    ``max_inflated_bytes`` (about 1 MB on disk).
``names``
    ROI names, labels and IDs with HTML markup, SQL, paths, mathtext, rich markup,
    spreadsheet formulas, ANSI escapes and other control characters, bidirectional
    overrides, invalid UTF-8 bytes, 10,000 characters.
``bytes``
    Random byte flips in the headers of each file and anywhere in RS and RD, a zero
    file meta group length, and one whose length pydicom cannot parse.

The node helper's test can feed the same mutated files to the DICOM node
(``Mutation.mutated`` is the file to send).
"""

from __future__ import annotations

import random
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

DEMO = Path(__file__).resolve().parents[1] / "test_data" / "demo_case" / "dicom"
SEED = 20261207
_DEFLATED = "1.2.840.10008.1.2.1.99"


@dataclass(frozen=True)
class Mutation:
    """One mutated case.

    Attributes
    ----------
    name : str
        Unique, e.g. ``"coordinates-nan"``.
    category : str
        One of the categories of the module docstring.
    case_dir : Path
        A complete case folder (unmutated files are symbolic links to the demo case).
    mutated : Path
        The mutated file in ``case_dir``.
    """

    name: str
    category: str
    case_dir: Path
    mutated: Path


class _Builder:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.out: list[Mutation] = []

    def case(self, name: str, category: str, target: str, data: bytes) -> None:
        d = self.root / name
        d.mkdir(parents=True)
        for f in sorted(DEMO.iterdir()):
            if f.name != target:
                (d / f.name).symlink_to(f)
        (d / target).write_bytes(data)
        self.out.append(Mutation(name, category, d, d / target))


def _set_raw(ds: Dataset, tag: int, vr: str, text: str) -> None:
    """Set an element to text pydicom would refuse to hold as a value ("NaN", "abc")."""
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    value = text.encode("latin-1")
    if len(value) % 2:
        value += b" "
    ds._dict[Tag(tag)] = RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)


def _save(ds: Dataset) -> bytes:
    from io import BytesIO

    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=False)
    return buf.getvalue()


def _contour_mutations(b: _Builder) -> None:
    rs = pydicom.dcmread(DEMO / "RS.dcm")
    gtv = next(i for i, r in enumerate(rs.StructureSetROISequence) if r.ROIName == "GTV")
    seq = rs.ROIContourSequence[gtv].ContourSequence
    original = [list(c.ContourData) for c in seq]

    def one(name: str, values: list[object], index: int = 0) -> None:
        _set_raw(seq[index], 0x30060050, "DS", "\\".join(str(v) for v in values))
        b.case(f"coordinates-{name}", "coordinates", "RS.dcm", _save(rs))
        seq[index].ContourData = original[index]

    first = original[0]
    for label, bad in (("nan", "NaN"), ("inf", "inf"), ("minus-inf", "-inf"),
                       ("1e308", "1e308"), ("beyond-limit", "100001")):
        one(label, [bad, *first[1:]])
    one("far-vertex", [float(first[0]) + 5000.0, *first[1:]])
    one("non-numeric", ["abc", *first[1:]])
    one("odd-length", first[:-1])
    one("empty", [])
    # a whole ROI 1,000 times larger (inside the coordinate limit, far beyond a patient)
    for c, values in zip(seq, original):
        c.ContourData = [f"{float(v) * 1000.0:.6g}" for v in values]
    b.case("coordinates-roi-scaled-1000", "coordinates", "RS.dcm", _save(rs))
    for c, values in zip(seq, original):
        c.ContourData = values
    # more contours than max_contours_per_roi (10,000): small squares on the GTV planes
    zs = sorted({float(v[2]) for v in original})
    many = []
    for n in range(10_001):
        z = zs[n % len(zs)]
        x, y = (n % 100) * 0.5, (n // 100) * 0.5
        c = Dataset()
        c.ContourGeometricType = "CLOSED_PLANAR"
        c.NumberOfContourPoints = 4
        c.ContourData = [f"{v:.2f}" for v in (x, y, z, x + 0.4, y, z, x + 0.4, y + 0.4, z,
                                               x, y + 0.4, z)]
        many.append(c)
    rs.ROIContourSequence[gtv].ContourSequence = Sequence(many)
    b.case("coordinates-too-many-contours", "coordinates", "RS.dcm", _save(rs))


def _name_mutations(b: _Builder) -> None:
    rs = pydicom.dcmread(DEMO / "RS.dcm")
    names = {
        "html": "<script>alert('x')</script><b>GTV",
        "sql": "GTV'; DROP TABLE cases;--",
        "path": "../../../etc/passwd",
        "mathtext": "GTV $\\frac{a$",
        "mathtext-pair": "$x^{2}$ GTV $",
        "rich-markup": "[/][bold red]GTV[/bold red",
        "formula": "=HYPERLINK(\"http://x\",\"GTV\")",
        "formula-plus-at": "+cmd|' /C calc'!A0",
        "ansi": "\x1b[31mGTV\x1b[0m\x1b]0;title\x07",
        "control": "GTV\x00\x08\x0d\x7f\x9b",
        "bidi": "GTV\u202eVTG\u200b",
        "long": "G" * 10_000,
    }
    roi = rs.StructureSetROISequence
    keep = [r.ROIName for r in roi]
    for label, text in names.items():
        # two ROIs renamed: the GTV (drawn, checked) and the cord (an OAR)
        for r in roi:
            if r.ROIName in ("GTV", "SpinalCord"):
                r.ROIName = text if r.ROIName == "GTV" else text[::-1]
        rs.SpecificCharacterSet = "ISO_IR 192"
        rs.StructureSetLabel = text[:16]
        b.case(f"names-{label}", "names", "RS.dcm", _save(rs))
        for r, k in zip(roi, keep):
            r.ROIName = k
    # invalid UTF-8 bytes in a UTF-8 ROI name, written at the byte level
    data = _save(rs)
    tag = b"\x06\x30\x26\x00LO\x04\x00PTV "
    assert tag in data
    b.case("names-bad-bytes", "names", "RS.dcm",
           data.replace(tag, b"\x06\x30\x26\x00LO\x04\x00\xff\xfe\xc3\x28", 1))
    rp = pydicom.dcmread(DEMO / "RP.dcm")
    rp.RTPlanLabel = "=1+1\x1b[2J$\\x$"
    rp.PatientID = "\x1b[31m../../id"
    b.case("names-plan-label", "names", "RP.dcm", _save(rp))


def _set(ds: Dataset, keyword: str, value: object) -> None:
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    tag = tag_for_keyword(keyword)
    assert tag is not None
    vr = dictionary_VR(tag)
    if vr in ("DS", "IS"):
        values = value if isinstance(value, list) else [value]
        _set_raw(ds, tag, vr, "\\".join(str(v) for v in values))
    else:
        setattr(ds, keyword, value)


def _dose_bombs(b: _Builder) -> None:
    rd = pydicom.dcmread(DEMO / "RD.dcm")
    keep = {k: rd.get(k) for k in ("Rows", "Columns", "NumberOfFrames", "GridFrameOffsetVector",
                                    "DoseGridScaling", "PixelSpacing", "ImagePositionPatient")}
    bombs: dict[str, dict[str, object]] = {
        "rows": {"Rows": 65535},
        "rows-columns": {"Rows": 65535, "Columns": 65535},
        "frames": {"NumberOfFrames": 2**31 - 1},
        "frames-zero": {"NumberOfFrames": 0},
        "offsets-long": {"GridFrameOffsetVector": [float(i) for i in range(100_000)]},
        "offsets-nan": {"GridFrameOffsetVector": ["NaN"] * int(rd.NumberOfFrames)},
        "offsets-huge": {"GridFrameOffsetVector": [i * 1e300 for i in range(int(rd.NumberOfFrames))]},
        "scaling-huge": {"DoseGridScaling": "1e308"},
        "scaling-nan": {"DoseGridScaling": "NaN"},
        "scaling-inf": {"DoseGridScaling": "-inf"},
        "spacing-zero": {"PixelSpacing": [0, 0]},
        "spacing-tiny": {"PixelSpacing": ["1e-30", "1e-30"]},
        "spacing-nan": {"PixelSpacing": ["NaN", "2.5"]},
        "position-nan": {"ImagePositionPatient": ["NaN", "0", "0"]},
        "position-huge": {"ImagePositionPatient": ["1e308", "0", "0"]},
    }
    for label, changes in bombs.items():
        for k, v in changes.items():
            _set(rd, k, v)
        b.case(f"header_bomb-rd-{label}", "header_bomb", "RD.dcm", _save(rd))
        for k, v in keep.items():
            setattr(rd, k, v)
    for label, (keyword, value, where) in {
            "rx-nan": ("TargetPrescriptionDose", "NaN", "dose reference"),
            "rx-huge": ("TargetPrescriptionDose", "1e308", "dose reference"),
            "fx-zero": ("NumberOfFractionsPlanned", "0", "fraction group"),
            "fx-huge": ("NumberOfFractionsPlanned", "2147483647", "fraction group")}.items():
        rp = pydicom.dcmread(DEMO / "RP.dcm")
        item = rp.DoseReferenceSequence[0] if where == "dose reference" \
            else rp.FractionGroupSequence[0]
        _set(item, keyword, value)
        b.case(f"header_bomb-rp-{label}", "header_bomb", "RP.dcm", _save(rp))
    ct = pydicom.dcmread(DEMO / "CT_010.dcm")
    for label, changes in {"rows": {"Rows": 65535, "Columns": 65535},
                           "spacing-zero": {"PixelSpacing": [0, 0]},
                           "position-inf": {"ImagePositionPatient": ["inf", "0", "0"]}}.items():
        saved = {k: ct.get(k) for k in changes}
        for k, v in changes.items():
            _set(ct, k, v)
        b.case(f"header_bomb-ct-{label}", "header_bomb", "CT_010.dcm", _save(ct))
        for k, v in saved.items():
            setattr(ct, k, v)


def deflate_bomb(*, inflated_bytes: int) -> bytes:
    """The demo RT Dose in the deflated transfer syntax, its dataset padded (a private
    element of zeros at the end) to inflate to more than ``inflated_bytes``."""
    rd = pydicom.dcmread(DEMO / "RD.dcm")
    rd.file_meta.TransferSyntaxUID = _DEFLATED
    head = bytearray(_save_meta_only(rd))
    body = _save_dataset_only(rd)
    chunk_size = 1 << 20
    n_chunks = inflated_bytes // chunk_size + 1
    pad = n_chunks * chunk_size
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    # private tag (0x7FE1,0x0010) OB of `pad` zero bytes, explicit VR little endian
    out = [comp.compress(body + b"\xe1\x7f\x10\x00OB\x00\x00" + pad.to_bytes(4, "little")),
           comp.flush(zlib.Z_FULL_FLUSH)]
    # After a full flush the deflate state starts afresh and byte-aligned, so the
    # compressed form of one chunk of zeros can be repeated: the stream stays valid.
    zeros = comp.compress(bytes(chunk_size)) + comp.flush(zlib.Z_FULL_FLUSH)
    out += [zeros * n_chunks, comp.flush()]
    return bytes(head) + b"".join(out)


def deflated(path: Path) -> bytes:
    """The file at ``path`` rewritten in the deflated transfer syntax (a legitimate one)."""
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = _DEFLATED
    comp = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return _save_meta_only(ds) + comp.compress(_save_dataset_only(ds)) + comp.flush()


def _save_meta_only(ds: Dataset) -> bytes:
    from io import BytesIO

    from pydicom.filewriter import write_file_meta_info

    buf = BytesIO()
    buf.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buf, ds.file_meta, enforce_standard=True)  # type: ignore[arg-type]
    return buf.getvalue()


def _save_dataset_only(ds: Dataset) -> bytes:
    from io import BytesIO

    from pydicom.filebase import DicomFileLike
    from pydicom.filewriter import write_dataset

    buf = BytesIO()
    fp = DicomFileLike(buf)
    fp.is_little_endian, fp.is_implicit_VR = True, False
    plain = Dataset()
    plain.update(ds)
    write_dataset(fp, plain)
    return buf.getvalue()


def _truncations(b: _Builder, rng: random.Random) -> None:
    for target in ("RS.dcm", "RD.dcm", "RP.dcm", "CT_010.dcm"):
        data = (DEMO / target).read_bytes()
        cuts = sorted({0, 64, 131, 140, 300, len(data) // 2, len(data) - 1,
                       rng.randrange(400, len(data) - 1)})
        for cut in cuts:
            b.case(f"truncation-{target.split('.')[0]}-{cut}", "truncation", target, data[:cut])


def _byte_flips(b: _Builder, rng: random.Random) -> None:
    for target in ("RS.dcm", "RD.dcm", "RP.dcm", "CT_010.dcm"):
        data = (DEMO / target).read_bytes()
        for n in range(4):
            mutated = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                k = rng.randrange(128, min(len(data), 2000))
                mutated[k] = rng.randrange(256)
            b.case(f"bytes-{target.split('.')[0]}-{n}", "bytes", target, bytes(mutated))
    for target in ("RS.dcm", "RD.dcm"):  # anywhere: contour data, pixel data, sequences
        data = (DEMO / target).read_bytes()
        for n in range(2):
            mutated = bytearray(data)
            for _ in range(rng.randint(4, 32)):
                mutated[rng.randrange(128, len(data))] = rng.randrange(256)
            b.case(f"bytes-{target.split('.')[0]}-deep-{n}", "bytes", target, bytes(mutated))
    rp = bytearray((DEMO / "RP.dcm").read_bytes())
    at = rp.index(b"\x02\x00\x00\x00UL\x04\x00", 128)
    rp[at + 8:at + 12] = b"\x00\x00\x00\x00"
    b.case("bytes-meta-group-length-0", "bytes", "RP.dcm", bytes(rp))
    # a group length that breaks pydicom's value parsing (BytesLengthException)
    rp = bytearray((DEMO / "RP.dcm").read_bytes())
    rp[at + 6:at + 8] = b"\x97\x00"
    b.case("bytes-meta-group-length-vr-length", "bytes", "RP.dcm", bytes(rp))


def build_corpus(root: Path, *, seed: int = SEED, inflated_bytes: int | None = None
                 ) -> list[Mutation]:
    """Write every mutation under ``root`` (created; must not exist) and list them.

    Parameters
    ----------
    root : Path
    seed : int
        Seed of the random truncation offsets and byte flips.
    inflated_bytes : int, optional
        Inflated size of the deflate bomb; default: just over ``max_inflated_bytes``
        of ``contourqa/data/limits.toml``.
    """
    import warnings

    from contourqa.limits import input_limits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns on the invalid values written
        return _build(root, seed, inflated_bytes or input_limits().max_inflated_bytes)


def _build(root: Path, seed: int, inflated_bytes: int) -> list[Mutation]:
    root.mkdir(parents=True)
    rng = random.Random(seed)
    b = _Builder(root)
    _contour_mutations(b)
    _name_mutations(b)
    _dose_bombs(b)
    b.case("deflate_bomb-rd", "deflate_bomb", "RD.dcm",
           deflate_bomb(inflated_bytes=inflated_bytes))
    _truncations(b, rng)
    _byte_flips(b, rng)
    return b.out


def flat_folder(mutations: list[Mutation], folder: Path) -> Path:
    """Every mutated file (not the unmutated links) in one folder, named after its
    mutation, plus a FIFO: the folder ``inspect`` walks once."""
    import os

    folder.mkdir(parents=True)
    for m in mutations:
        shutil.copyfile(m.mutated, folder / f"{m.name}.dcm")
    os.mkfifo(folder / "a-fifo.dcm")
    return folder
