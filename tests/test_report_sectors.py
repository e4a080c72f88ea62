"""The report's ``sectors`` section is typed (issue 14 item 6).

``CaseReport.sectors`` holds :class:`contourqa.sectors.VertebraSectors`, one per
vertebra; the JSON writes each with its ``to_json`` and the figures and HTML read its
attributes, never dict keys.
"""

from __future__ import annotations

import json

from reportruns import demo_run

from contourqa import VertebraSectors
from contourqa.report import HtmlFormatter, validate_case
from contourqa.report.figures import figure_png, sector_pictures
from contourqa.report.json_report import json_safe
from contourqa.report.record import CaseInfo, CaseReport
from contourqa.sectors import VertebraFrame

# The demo case's ``sectors`` section as main wrote it (commit b0c115f) while the
# record still held dicts: a snapshot of the layout (key order, rounding), not a truth
# of the sector engine.  Regenerate it only for a deliberate change of the engine's
# figures on the demo case, never for a change of the report code.
_DEMO_SECTORS_JSON = (
    '[{"level": "T10", "index": 1, "gtv_sectors": [1], "gtv_parts": ["body"], '
    '"gtv_sector_cc": {"1": 1.836, "2": 0.0, "3": 0.0, "4": 0.0, "5": 0.0, "6": 0.0}, '
    '"body_laterality": "central", "epidural": false, "epidural_extent_deg": 0.0, '
    '"paraspinal": false, "ctv_sectors": [1], "ctv_sector_coverage_pct": {"1": 97.2, '
    '"2": 1.2, "3": 0.0, "4": 0.0, "5": 0.0, "6": 1.2}, "level_source": "roi_name", '
    '"level_sources": [{"source": "roi_name", "level": "T10", '
    '"evidence": "ROI \'VB_T10\'"}, {"source": "plan", "level": "T10", '
    '"evidence": "RTPlanLabel \'T10 SBRT\', RTPlanName \'T10 SBRT 24Gy/2fx\'"}], '
    '"vertebra_source": "roi:VB_T10", "gtv_sector_pct": {"1": 14.17, "2": 0.0, '
    '"3": 0.0, "4": 0.0, "5": 0.0, "6": 0.0}, "sector_volume_cc": {"1": 12.96, '
    '"2": 1.548, "3": 2.88, "4": 2.196, "5": 2.88, "6": 1.548}, "epidural_cc": 0.0, '
    '"epidural_circumferential": false, "paraspinal_cc": 0.0, '
    '"ctv_sector_cc": {"1": 12.6, "2": 0.018, "3": 0.0, "4": 0.0, "5": 0.0, '
    '"6": 0.018}, "ctv_epidural_cc": 0.0, "frame": {"canal_centre_mm": [0.0, 15.0, '
    '0.0], "anterior": [0.0, -1.0, 0.0], "left": [1.0, 0.0, 0.0], '
    '"rotation_deg": 0.0}, "gtv_density": "mixed", "gtv_median_hu": 250.0, '
    '"bone_median_hu": 250.0, "gtv_density_reason": null}]'
)


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


def test_demo_sectors_section_json_is_unchanged() -> None:
    (report,) = demo_run().reports
    assert isinstance(report.sectors, tuple)
    assert all(isinstance(v, VertebraSectors) for v in report.sectors)
    section = json_safe(report.to_json())["sectors"]
    assert json.dumps(section) == _DEMO_SECTORS_JSON


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
