"""Machine-readable reports: JSON (schema), CSV (csv module), SARIF 2.1.0 (bundled
schema), the terminal summary, and the CLI options that pick them."""

from __future__ import annotations

import csv
import io
import json

import jsonschema
import pytest
from reportruns import DEMO_CASE, demo_run

from contourqa.cli import main
from contourqa.report import (
    FILE_FORMATTERS,
    CsvFormatter,
    JsonFormatter,
    SarifFormatter,
    TerminalFormatter,
    validate_report,
    validate_sarif,
)
from contourqa.report.csv_report import CSV_COLUMNS
from contourqa.report.figures import constraint_points


def test_json_is_the_canonical_record_without_arrays():
    r = demo_run().reports[0]
    assert r.media is not None and r.media.dvhs  # arrays kept beside the record ...
    doc = json.loads(JsonFormatter().render([r]))
    validate_report(doc)
    (obj,) = doc["cases"]
    assert "media" not in obj  # ... never inside it
    assert len(json.dumps(obj)) < 100_000


def test_csv_has_one_tidy_row_per_check_and_roi_metric():
    r = demo_run().reports[0]
    rows = list(csv.DictReader(io.StringIO(CsvFormatter().render([r]))))
    assert list(rows[0]) == list(CSV_COLUMNS)
    checks = [x for x in rows if x["kind"] == "check"]
    metrics = [x for x in rows if x["kind"] == "dvh_metric"]
    assert len(checks) == len(r.checks)
    assert len(metrics) == sum(len(v) for v in r.dvh.values())
    cord = next(x for x in checks if x["code"] == "dose.hytec2021.cord_pmax"
                and x["structure"] == "SpinalCord")
    assert cord["role"] == "spinal_cord" and float(cord["limit"]) == 17.0
    dmax = next(x for x in metrics if x["structure"] == "SpinalCord" and x["metric"] == "Dmax")
    assert dmax["unit"] == "Gy" and float(dmax["band_low"]) <= float(dmax["value"]) \
        <= float(dmax["band_high"])
    assert {x["case"] for x in rows} == {r.case.name}


def test_sarif_validates_against_the_bundled_2_1_0_schema():
    reports = demo_run().reports
    log = json.loads(SarifFormatter().render(reports))
    validate_sarif(log)
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    results = run["results"]
    assert len(results) == len(reports[0].checks)
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert len(rule_ids) == len(set(rule_ids))
    for res in results:
        assert rule_ids[res["ruleIndex"]] == res["ruleId"]
        # SARIF 3.27.10: only kind "fail" may carry a level other than "none".
        assert res["kind"] == "fail" or res["level"] == "none"
    warn = next(x for x in results if x["ruleId"] == "dose.ptv_coverage")
    assert (warn["kind"], warn["level"]) == ("fail", "warning")
    # The validator does reject what is not SARIF.
    with pytest.raises(jsonschema.ValidationError):
        validate_sarif({**log, "version": "2.0.0"})


def test_terminal_is_plain_when_piped_and_coloured_on_request():
    reports = demo_run().reports
    plain = TerminalFormatter(colour=False).render(reports)
    assert "\x1b[" not in plain
    first = plain.splitlines()[0]
    # rules that do not concern the demo (a first course, upfront, 2 fx: post-operative,
    # re-irradiation, sets for other fraction numbers) are folded; checked without the
    # clinical inputs the DICOM cannot hold, only the VCF risk is not evaluated
    assert first.startswith("INCOMPLETE") and reports[0].case.name in first
    assert [f.code for f in reports[0].checks if f.status.value == "not_evaluated"] == \
        ["vcf.risk"]
    assert "dose.ptv_coverage" in plain and "68.18 % vs 85 %" in plain
    counts = {s: sum(f.status.value == s for f in reports[0].checks)
              for s in ("pass", "fail", "warn", "not_evaluated", "not_applicable")}
    assert counts["not_evaluated"] == 1 and counts["not_applicable"] >= 7
    assert ", ".join(f"{n} {s}" for s, n in counts.items()) in plain
    assert f"{counts['not_applicable']} not applicable to this case (folded" in plain
    assert "postop.asia" not in plain  # folded, not listed
    assert "\x1b[" in TerminalFormatter(colour=True).render(reports)


def test_constraint_points_come_from_the_findings():
    r = demo_run().reports[0]
    points = constraint_points(r, dict(r.media.dvhs))
    by_roi = {(p.finding.code, p.finding.structure): p for p in points}
    cord = by_roi[("dose.hytec2021.cord_pmax", "SpinalCord")]
    assert str(cord.metric) == "Dmax" and cord.dose_gy == 17.0
    ptv = by_roi[("dose.ptv_coverage", "PTV")]
    vol = r.media.dvhs["PTV"].volume_in_dose_cc
    assert ptv.dose_gy == pytest.approx(24.0) and ptv.volume_cc == pytest.approx(0.85 * vol)


def test_cli_writes_every_requested_format(tmp_path, capsys):
    names = [f.name for f in FILE_FORMATTERS]
    assert names == ["json", "csv", "sarif", "html", "pdf"]
    args = ["check", str(DEMO_CASE), "--no-colour", "--csv", str(tmp_path / "r.csv"),
            "--sarif", str(tmp_path / "r.sarif")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("INCOMPLETE ")  # the VCF factors: see the demo command
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.sarif"]
    sarif = json.loads((tmp_path / "r.sarif").read_text())
    validate_sarif(sarif)
    kinds = {r["ruleId"]: r["kind"] for r in sarif["runs"][0]["results"]}
    assert kinds["dose.reirradiation"] == kinds["postop.asia"] == "notApplicable"
    assert "not_applicable" in (tmp_path / "r.csv").read_text()


def test_cli_sarif_to_stdout_replaces_the_terminal_summary(capsys):
    assert main(["check", str(DEMO_CASE), "--sarif", "-"]) == 0
    validate_sarif(json.loads(capsys.readouterr().out))


def test_demo_writes_every_format(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--no-colour"]) == 0
    # the demo (with its patient's stated clinical inputs, contourqa.demo) reads WARN
    # (PTV coverage, VCF age, dose grid, no MR), never INCOMPLETE: what does not concern
    # it is folded as not applicable
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("  the demo patient's clinical inputs (not in DICOM): age=62")
    assert lines[2].startswith("WARN ")
    assert sorted(p.name for p in out.iterdir()) == [
        "report.csv", "report.html", "report.json", "report.pdf", "report.sarif"]
    validate_report(json.loads((out / "report.json").read_text()))
    validate_sarif(json.loads((out / "report.sarif").read_text()))
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")
    html = (out / "report.html").read_text()
    assert 'id="dvh-plot-0"' in html
    assert '<details class="callout" id="not-applicable-0">' in html  # collapsed
    assert json.loads((out / "report.json").read_text())["cases"][0]["status"] == "warn"
