"""The report's ``sectors`` section is typed (issue 14 item 6).

``CaseReport.sectors`` holds :class:`contourqa.sectors.VertebraSectors`, one per
vertebra; the JSON writes each with its ``to_json`` and the figures and HTML read its
attributes, never dict keys.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reportruns import demo_run

from contourqa import VertebraSectors
from contourqa.report import HtmlFormatter, validate_case
from contourqa.report.figures import figure_png, sector_pictures
from contourqa.report.json_report import json_safe
from contourqa.report.record import CaseInfo, CaseReport
from contourqa.sectors import VertebraFrame

REPO = Path(__file__).resolve().parents[1]
DEMO_TRUTH = REPO / "test_data" / "demo_case" / "truth" / "truth.json"


def _entry(*, level: str | None = "T10", gtv: tuple[int, ...] = (1, 2),
           ctv: tuple[int, ...] = (1, 2, 3), epidural: bool = True) -> VertebraSectors:
    """One vertebra by hand: 10 cc of bone per sector, 2 cc of GTV in each GTV sector."""
    return VertebraSectors(
        index=0, level=level, level_source="user", vertebra_source="ct",
        frame=VertebraFrame(canal_centre_mm=(0.0, 15.0, 0.0), anterior=(0.0, -1.0, 0.0),
                            left=(1.0, 0.0, 0.0)),
        sector_volume_cc=(10.0,) * 6,
        gtv_sector_cc=tuple(2.0 if s in gtv else 0.0 for s in range(1, 7)),
        gtv_sectors=gtv, body_laterality="central" if 1 in gtv else "none",
        epidural=epidural, epidural_cc=0.5 if epidural else 0.0,
        epidural_extent_deg=90.0 if epidural else 0.0, epidural_circumferential=False,
        paraspinal=False, paraspinal_cc=0.0,
        ctv_sector_cc=tuple(9.0 if s in ctv else 0.0 for s in range(1, 7)),
        ctv_sector_coverage_pct=tuple(90.0 if s in ctv else 0.0 for s in range(1, 7)),
        ctv_sectors=ctv, ctv_epidural_cc=0.0, gtv_parts=("body", "pedicle_left"))


def _report(*entries: VertebraSectors) -> CaseReport:
    info = CaseInfo(name="typed", patient_id=None, plan_label=None, n_fractions=None,
                    prescription_gy=None, prescription_source=None,
                    frame_of_reference_uid=None, files=())
    return CaseReport(case=info, structures=(), checks=(), sectors=entries)


def test_demo_sectors_section_against_the_phantom_truth() -> None:
    """The demo's ``sectors`` section, written from the typed entries, against the
    demo phantom's truth (its recipe, and its ROI volumes measured on the polygons):
    the treated level, GTV and CTV sectors, laterality, no epidural or paraspinal
    disease; the GTV's sector volumes add up to the GTV and the sectors' to T10's."""
    truth = json.loads(DEMO_TRUTH.read_text("utf-8"))
    (report,) = demo_run().reports
    assert isinstance(report.sectors, tuple)
    assert all(isinstance(v, VertebraSectors) for v in report.sectors)
    record = json_safe(report.to_json())
    validate_case(record)
    entry = next(e for e in record["sectors"] if e["gtv_sectors"])
    assert entry["level"] == truth["treated_level"] == "T10"
    assert entry["gtv_sectors"] == truth["gtv"]["sectors"]
    assert entry["body_laterality"] == truth["gtv"]["body_position"]
    assert (entry["epidural"], entry["paraspinal"]) == (truth["gtv"]["epidural"],
                                                        truth["gtv"]["paraspinal"])
    assert entry["ctv_sectors"] == truth["ctv"]["written_sectors"]
    assert sum(entry["gtv_sector_cc"].values()) == pytest.approx(
        truth["rois"]["GTV"]["volume_cc"], rel=0.02)
    assert sum(entry["sector_volume_cc"].values()) == pytest.approx(
        truth["rois"]["VB_T10"]["volume_cc"], rel=0.03)
    # the JSON is the typed entry's, value for value
    typed = next(v for v in report.sectors if v.gtv_sectors)
    assert entry == json_safe(typed.to_json())


def test_record_json_of_a_hand_made_entry() -> None:
    record = json_safe(_report(_entry()).to_json())
    validate_case(record)
    (e,) = record["sectors"]
    # 2 cc of GTV in 10 cc of bone: 20 % of sectors 1 and 2
    assert e["gtv_sector_pct"] == {"1": 20.0, "2": 20.0, "3": 0.0, "4": 0.0, "5": 0.0,
                                   "6": 0.0}
    assert (e["gtv_sectors"], e["ctv_sectors"], e["epidural_extent_deg"]) == ([1, 2],
                                                                            [1, 2, 3], 90.0)
    assert list(e).count("gtv_parts") == 1 and e["gtv_parts"] == ["body", "pedicle_left"]
    assert _report().to_json()["sectors"] == []
    assert CaseReport(case=_report().case, structures=(), checks=()).to_json()["sectors"] is None


def test_schematic_and_html_read_the_typed_entries() -> None:
    uninvolved = _entry(level="T11", gtv=(), ctv=(), epidural=False)
    report = _report(_entry(), uninvolved)
    (pic,) = sector_pictures(report)  # the uninvolved T11 draws no map
    assert pic.title == "Sector map T10"
    assert "Also epidural." in pic.caption
    assert figure_png(pic, dpi=40).startswith(b"\x89PNG")
    html = HtmlFormatter(dpi=40).render([report])
    assert ("<tr><td>T10</td><td>1, 2</td><td>1, 2, 3</td><td>central</td><td>yes</td>"
            "<td>no</td></tr>") in html
    assert ("<tr><td>T11</td><td></td><td></td><td>none</td><td>no</td><td>no</td></tr>"
            in html)
