"""Faults and hostile input: one test per item of the issue (reader and report parts).

Each test drives the public entry points (the console script, the readers, the report
formatters) with a file made hostile in exactly one way and checks the outcome a user
sees: an exit code of 0, 1 or 2, a finding or a one-line error naming the file, no
traceback, and text drawn as it reads.  The corpus-wide fuzz test is in
``test_fuzz_hostile.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from datapaths import REPO
from fuzz_corpus import deflate_bomb, deflated

from contourqa.errors import DicomReadError, GeometryError
from contourqa.io import read_dose, read_structure_set

DEMO = REPO / "test_data" / "demo_case" / "dicom"


def _cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from contourqa.cli import run; run()", *args],
                          capture_output=True, text=True, timeout=timeout)


def _case(tmp_path: Path, name: str = "case") -> Path:
    """A copy of the demo case whose files are links, to be replaced one by one."""
    d = tmp_path / name
    d.mkdir()
    for f in DEMO.iterdir():
        (d / f.name).symlink_to(f)
    return d


def _write(ds: pydicom.Dataset, path: Path) -> None:
    path.unlink(missing_ok=True)
    ds.save_as(path, enforce_file_format=False)


def _raw_contour_data(ds: pydicom.Dataset, roi_name: str, text: str) -> None:
    """Replace the first contour of ``roi_name`` with ContourData ``text`` (raw: pydicom
    would refuse "NaN" as a value)."""
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    number = next(r.ROINumber for r in ds.StructureSetROISequence if r.ROIName == roi_name)
    item = next(i for i in ds.ROIContourSequence if i.ReferencedROINumber == number)
    value = text.encode("ascii") + (b" " if len(text) % 2 else b"")
    tag = Tag(0x30060050)
    item.ContourSequence[0]._dict[tag] = RawDataElement(tag, "DS", len(value), value, 0, False, True)


# ---------------------------------------------------------------------- 1. coordinates
@pytest.mark.parametrize("bad", ["NaN", "inf", "-inf", "1e308", "100001"])
def test_non_finite_or_absurd_coordinates_are_a_finding_not_a_crash(tmp_path, bad):
    """One NaN, inf or 1e308 in ContourData segfaulted `dvh` (exit 139) and `check`."""
    ds = pydicom.dcmread(DEMO / "RS.dcm")
    gtv_number = next(r.ROINumber for r in ds.StructureSetROISequence if r.ROIName == "GTV")
    original = next(i for i in ds.ROIContourSequence
                    if i.ReferencedROINumber == gtv_number).ContourSequence[0].ContourData
    _raw_contour_data(ds, "GTV", "\\".join([bad, *(str(v) for v in original[1:])]))
    case = _case(tmp_path)
    _write(ds, case / "RS.dcm")

    ss = read_structure_set(case / "RS.dcm")
    gtv = ss.roi("GTV")
    assert len(gtv.contours) == 7  # 8 contours, the corrupt one dropped
    assert all(np.isfinite(c.points_mm).all() for c in gtv.contours)
    found = [p for p in ss.problems if p.code == "input.absurd_coordinates"]
    assert len(found) == 1 and found[0].structure == "GTV" and "1 of 8" in found[0].message
    assert "limits.toml" in found[0].message

    proc = _cli("dvh", "--structures", str(case / "RS.dcm"), "--dose", str(case / "RD.dcm"),
                "--roi", "GTV", "--json", "-")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "absurd_coordinates" not in proc.stdout and "Traceback" not in proc.stderr
    assert "1 of 8 contour(s)" in proc.stderr


def test_a_far_vertex_within_the_coordinate_limit_is_dropped_by_the_roi_extent(tmp_path):
    ds = pydicom.dcmread(DEMO / "RS.dcm")
    gtv_number = next(r.ROINumber for r in ds.StructureSetROISequence if r.ROIName == "GTV")
    data = list(next(i for i in ds.ROIContourSequence
                     if i.ReferencedROINumber == gtv_number).ContourSequence[0].ContourData)
    data[0] = float(data[0]) + 5000.0  # 5 m from the rest of the GTV, inside 1e5 mm
    _raw_contour_data(ds, "GTV", "\\".join(str(v) for v in data))
    _write(ds, tmp_path / "RS.dcm")
    ss = read_structure_set(tmp_path / "RS.dcm")
    assert len(ss.roi("GTV").contours) == 7
    assert any(p.code == "input.absurd_coordinates" for p in ss.problems)


def test_mask_and_scanline_casts_are_bounded():
    """The casts that crashed: a NaN vertex raises a named error; a vertex far beyond
    the grid costs nothing beyond the grid's rows."""
    from contourqa.dvh.occupancy import scanline_runs
    from contourqa.masks import polygon_rows

    nan_square = np.array([[0.0, 0.0], [np.nan, 4.0], [4.0, 4.0], [4.0, 0.0]])
    with pytest.raises(GeometryError, match="not finite"):
        polygon_rows([(0, nan_square)])
    with pytest.raises(GeometryError, match="not finite"):
        scanline_runs([(0, nan_square)], 2)
    # a triangle reaching row 1e9: the rows inside a 10-row grid are those of the
    # unbounded scan that fall in [0, 10) (checked against one reaching row 1e3)
    tall = np.array([[0.2, 0.2], [1e9, 3.0], [0.2, 5.8]])
    g, q, c0, c1 = polygon_rows([(0, tall)], n_rows=10)
    assert q.min() >= 1 and q.max() == 9 and len(q) == 9
    short = np.array([[0.2, 0.2], [1e3, 3.0], [0.2, 5.8]])
    gs, qs, s0, s1 = polygon_rows([(0, short)])
    keep = qs < 10
    # same rows; columns differ only through the slope (1e9 vs 1e3 far vertex)
    assert np.array_equal(q, qs[keep])
    assert np.all(c0 <= s0[keep]) and np.all(c1 >= s1[keep])


# ------------------------------------------------------------ 2. figures and per-case catch
MATHTEXT = "GTV $\\frac{a$"


def test_mathtext_roi_name_is_drawn_literally_in_pdf_and_html(tmp_path):
    """A ROI named with unbalanced mathtext made `check --pdf` exit 1 with a traceback."""
    ds = pydicom.dcmread(DEMO / "RS.dcm")
    for r in ds.StructureSetROISequence:
        if r.ROIName in ("GTV", "PTV"):
            r.ROIName = MATHTEXT if r.ROIName == "GTV" else "PTV $x^2$"
    case = _case(tmp_path)
    _write(ds, case / "RS.dcm")
    # in process (the fuzz test runs the same case through `check --pdf --html`)
    from contourqa.check import CheckOptions, check
    from contourqa.report import HtmlFormatter, PdfFormatter

    run = check(case, options=CheckOptions(keep_media=True))
    assert MATHTEXT in [s.name for s in run.reports[0].structures]
    pdf = PdfFormatter(dpi=40).render(run.reports)
    assert pdf.startswith(b"%PDF") and len(pdf) > 50_000
    html = HtmlFormatter(dpi=40).render(run.reports)
    assert "could not be drawn" not in html  # literal text: every picture was drawn
    assert "GTV $\\frac{a$" in html  # the name as it reads (HTML-escaped only for <>&)


def test_literal_text_renders_what_would_raise():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from contourqa.report.text import mpl_literal

    for raw in (MATHTEXT, "$x^{2}$ and $", "a\\$b$", "$\\undefinedcommand$"):
        fig = Figure()
        FigureCanvasAgg(fig)
        t = fig.text(0.1, 0.5, mpl_literal(raw))
        fig.canvas.draw()
        # what is drawn is the text itself (matplotlib turns \$ back into $)
        assert t._get_layout(fig.canvas.get_renderer())  # laid out without mathtext
        assert mpl_literal(raw).replace("\\$", "$") == raw


def test_a_crash_in_one_case_is_that_case_error_outcome(tmp_path, monkeypatch):
    """check(): an unexpected exception in one case's checks is that case's finding."""
    import importlib

    check_module = importlib.import_module("contourqa.check")

    real = check_module.check_case
    calls = []

    def flaky(files, **kw):  # type: ignore[no-untyped-def]
        calls.append(files.name)
        if len(calls) == 1:
            raise TypeError("boom from a rule")
        return real(files, **kw)

    monkeypatch.setattr(check_module, "check_case", flaky)
    two = tmp_path / "two"
    _case(two.parent, "two")
    run = check_module.check(two)
    assert len(run.reports) == 1
    codes = [c.code for c in run.reports[0].checks]
    assert "input.case_unusable" in codes
    msg = next(c.message for c in run.reports[0].checks if c.code == "input.case_unusable")
    assert "TypeError: boom from a rule" in msg
    assert run.reports[0].status == "incomplete"


def test_a_picture_that_cannot_be_drawn_leaves_the_rest_of_the_report(monkeypatch):
    from reportruns import demo_run

    import contourqa.report.figures as figures
    from contourqa.report import HtmlFormatter, PdfFormatter

    def broken(report):  # type: ignore[no-untyped-def]
        raise RuntimeError("font exploded")

    monkeypatch.setattr(figures, "dvh_picture", broken)
    run = demo_run()
    html = HtmlFormatter().render(run.reports)
    assert "The picture could not be drawn (RuntimeError: font exploded)" in html
    assert "dose.cord_dmax" in html or "checks" in html
    pdf = PdfFormatter(dpi=40).render(run.reports)
    assert pdf.startswith(b"%PDF")


# ------------------------------------------------------------------ 3. malformed file
def test_a_file_pydicom_cannot_parse_is_a_finding_and_the_folder_goes_on(tmp_path):
    """A file meta group length whose VR length pydicom refuses raised
    BytesLengthException, which read_dataset did not catch: inspect and check exited 1
    with a traceback and nothing was checked."""
    case = _case(tmp_path)
    rp = bytearray((DEMO / "RP.dcm").read_bytes())
    at = rp.index(b"\x02\x00\x00\x00UL\x04\x00", 128)
    rp[at + 6:at + 8] = b"\x97\x00"
    (case / "RP.dcm").unlink()
    (case / "RP.dcm").write_bytes(bytes(rp))
    from contourqa.io._read import read_dataset

    with pytest.raises(DicomReadError, match="BytesLengthException") as err:
        read_dataset(case / "RP.dcm")
    assert err.value.path == case / "RP.dcm"
    proc = _cli("inspect", str(case))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "RP.dcm" in proc.stdout and "input.unreadable_file" in proc.stdout
    assert "RTSTRUCT" in proc.stdout or "structure set" in proc.stdout


# ------------------------------------------------------------------------ 4. FIFO
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_in_a_folder_does_not_hang_discovery(tmp_path):
    case = _case(tmp_path)
    os.mkfifo(case / "pipe.dcm")
    os.mkfifo(case / "pipe")
    start = time.perf_counter()
    proc = _cli("inspect", str(case), timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert time.perf_counter() - start < 120
    proc = _cli("inspect", str(case / "pipe.dcm"), timeout=60)  # named on its own
    assert proc.returncode == 2 and "not a regular file" in proc.stdout + proc.stderr


# --------------------------------------------------------------- 7. deflate and grid caps
def test_a_deflate_bomb_is_refused_before_inflating_it(tmp_path):
    from contourqa.limits import input_limits

    bomb = tmp_path / "RD.dcm"
    bomb.write_bytes(deflate_bomb(inflated_bytes=input_limits().max_inflated_bytes))
    assert bomb.stat().st_size < 2_000_000
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DicomReadError, match="max_inflated_bytes .*limits.toml"):
        read_dose(bomb)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100  # inflated in chunks, kept nowhere


def test_a_deflated_dose_reads_as_the_same_grid_not_as_truncated(tmp_path):
    """Deflated doses were misreported as truncated (offsets of the inflated stream
    compared with the size of the file on disk)."""
    path = tmp_path / "RD.dcm"
    path.write_bytes(deflated(DEMO / "RD.dcm"))
    assert path.stat().st_size < (DEMO / "RD.dcm").stat().st_size / 1.5
    plain, dfl = read_dose(DEMO / "RD.dcm"), read_dose(path)
    assert np.array_equal(plain.dose_gy, dfl.dose_gy)
    assert plain.geometry.same_grid(dfl.geometry)


@pytest.mark.parametrize("rows, columns, frames", [(65535, 65535, None), (61, 73, 2**31 - 1)])
def test_a_huge_declared_grid_is_refused_before_decoding(tmp_path, rows, columns, frames):
    ds = pydicom.dcmread(DEMO / "RD.dcm")
    ds.Rows, ds.Columns = rows, columns
    if frames is not None:
        ds.NumberOfFrames = frames
    _write(ds, tmp_path / "RD.dcm")
    with pytest.raises(DicomReadError, match="max_voxels .*limits.toml"):
        read_dose(tmp_path / "RD.dcm")


@pytest.mark.parametrize("scaling", ["1e308", "NaN"])
def test_a_corrupt_dose_scaling_is_refused(tmp_path, scaling):
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    ds = pydicom.dcmread(DEMO / "RD.dcm")
    tag = Tag(0x3004000E)
    value = scaling.encode() + (b" " if len(scaling) % 2 else b"")
    ds._dict[tag] = RawDataElement(tag, "DS", len(value), value, 0, False, True)
    _write(ds, tmp_path / "RD.dcm")
    with pytest.raises(DicomReadError, match="not a finite|max_dose_gy"):
        read_dose(tmp_path / "RD.dcm")


@pytest.mark.parametrize("keyword, value, code", [
    ("TargetPrescriptionDose", "NaN", "input.malformed_prescription"),
    ("NumberOfFractionsPlanned", "0", "input.malformed_fraction_number")])
def test_a_corrupt_plan_is_a_finding_and_every_report_is_valid(tmp_path, keyword, value, code):
    """A NaN prescription made the SARIF writer raise (NaN is not JSON) and 0 fractions
    a ZeroDivisionError in the checks."""
    from pydicom.dataelem import RawDataElement
    from pydicom.datadict import tag_for_keyword
    from pydicom.tag import Tag

    from contourqa.check import check
    from contourqa.report import JsonFormatter, SarifFormatter, validate_sarif

    ds = pydicom.dcmread(DEMO / "RP.dcm")
    item = ds.DoseReferenceSequence[0] if keyword == "TargetPrescriptionDose" \
        else ds.FractionGroupSequence[0]
    tag = Tag(tag_for_keyword(keyword))
    raw = value.encode() + (b" " if len(value) % 2 else b"")
    item._dict[tag] = RawDataElement(tag, "DS" if "Dose" in keyword else "IS", len(raw), raw,
                                     0, False, True)
    case = _case(tmp_path)
    _write(ds, case / "RP.dcm")
    run = check(case)
    (report,) = run.reports
    codes = [c.code for c in report.checks]
    assert code in codes and "input.case_unusable" not in codes
    JsonFormatter().render(run.reports)
    import json

    validate_sarif(json.loads(SarifFormatter().render(run.reports)))


# ------------------------------------------------------------ 9. too many contours
def test_an_roi_beyond_the_contour_limit_is_reported_and_not_evaluated(tmp_path):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from contourqa.limits import input_limits

    ds = pydicom.dcmread(DEMO / "RS.dcm")
    gtv_number = next(r.ROINumber for r in ds.StructureSetROISequence if r.ROIName == "GTV")
    item = next(i for i in ds.ROIContourSequence if i.ReferencedROINumber == gtv_number)
    z = float(item.ContourSequence[0].ContourData[2])
    many = []
    for n in range(input_limits().max_contours_per_roi + 1):
        c = Dataset()
        c.ContourGeometricType = "CLOSED_PLANAR"
        x = (n % 100) * 0.5
        c.ContourData = [x, 0, z, x + 0.4, 0, z, x + 0.4, 0.4, z]
        many.append(c)
    item.ContourSequence = Sequence(many)
    case = _case(tmp_path)
    _write(ds, case / "RS.dcm")
    ss = read_structure_set(case / "RS.dcm")
    assert ss.roi("GTV").contours == ()
    found = [p for p in ss.problems if p.structure == "GTV"]
    assert [p.code for p in found] == ["input.roi_too_large"]
    assert "max_contours_per_roi = 10000" in found[0].message


# ------------------------------------------------------------ 16. output injection
def test_formula_names_are_quoted_in_csv_and_escapes_never_reach_the_terminal(tmp_path):
    import csv

    ds = pydicom.dcmread(DEMO / "RS.dcm")
    names = {"GTV": "=HYPERLINK(\"http://x\",\"GTV\")", "CTV": "@SUM(A1)",
             "PTV": "\x1b[31mPTV\x1b[0m[/]", "SpinalCord": "-cord+"}
    for r in ds.StructureSetROISequence:
        r.ROIName = names.get(r.ROIName, r.ROIName)
    case = _case(tmp_path)
    _write(ds, case / "RS.dcm")
    out = tmp_path / "r.csv"
    proc = _cli("check", str(case), "--csv", str(out))
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    structures = {r["structure"] for r in rows if r["structure"]}
    assert "'=HYPERLINK(\"http://x\",\"GTV\")" in structures
    assert "'@SUM(A1)" in structures and "'-cord+" in structures
    for r in rows:
        for key, cell in r.items():
            if key not in ("value", "limit", "band_low", "band_high", "n_fractions",
                           "prescription_gy"):
                assert not cell.startswith(("=", "+", "-", "@")), (key, cell)
            assert "\x1b" not in cell
    # the terminal summary (piped: plain) shows the escape written out, never the byte
    assert "\x1b" not in proc.stdout and "\x1b" not in proc.stderr
    assert "\\x1b[31mPTV" in proc.stdout


def test_printable_escapes_controls_and_keeps_text():
    from contourqa.report.text import printable, spreadsheet_cell

    assert printable("VB_T10 é 日本") == "VB_T10 é 日本"
    assert printable("a\x1b[2Jb\x07\u202ec") == "a\\x1b[2Jb\\x07\\u202ec"
    assert printable("line\nnext", keep_newlines=True) == "line\nnext"
    assert spreadsheet_cell("=1+1") == "'=1+1" and spreadsheet_cell("GTV") == "GTV"


def test_limits_are_data_with_a_rationale():
    import tomllib

    from contourqa.limits import input_limits

    data = tomllib.loads((REPO / "contourqa" / "data" / "limits.toml").read_text())
    limits = input_limits()
    for key, entry in data.items():
        assert entry["value"] == getattr(limits, key)
        assert len(entry["rationale"]) > 60 and entry["status"] == "D", key


def test_an_unexpected_error_outside_a_case_is_one_line_and_exit_2(monkeypatch, capsys):
    """What no reader or check turned into a finding still ends without a traceback."""
    import contourqa.inspect as inspect_module
    from contourqa.cli import main

    def broken(path):  # type: ignore[no-untyped-def]
        raise TypeError("\x1b[31mboom")

    monkeypatch.setattr(inspect_module, "inspect_path", broken)
    assert main(["inspect", str(DEMO)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected TypeError: \\x1b[31mboom" in err
    assert "\x1b" not in err
