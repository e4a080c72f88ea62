"""Every option of ``contourqa check`` reaches the report, through the console entry point.

A review found ten documented rule options parsed and then dropped.  Here every
argparse destination of ``check`` is listed with a run that sets it and a property of
the JSON report that holds with the option and not without it (the baseline run, or
a run differing only in that option).  The runs use the bundled demo phantom (24 Gy in
2 fractions, T10, consensus CTV, PTV = CTV + 2 mm, no MR, 2 mm dose grid) and, for
``--level``, the same case with its vertebra ROIs removed (levels then come from the
CT, where only the user can name them).  The profile and waiver files are the
README's examples, run as written.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
import pytest

from contourqa.cli import CHECK_OPTION_KEYWORDS, build_parser

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "test_data" / "demo_case" / "dicom"
ENTRY = [sys.executable, "-c", "from contourqa.cli import run; run()"]
REPORT_DESTS = {"json", "html", "pdf", "csv", "sarif"}

Report = dict[str, Any]


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ENTRY, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, check=False)


def _report(*args: str, cwd: Path = REPO) -> Report:
    proc = _cli("check", *args, "--json", "-", cwd=cwd)
    assert proc.returncode in (0, 1), proc.stderr
    data = json.loads(proc.stdout)
    return data["cases"][0]


def _readme_files(folder: Path) -> dict[str, str]:
    """The README's example files (TOML blocks whose first line names the file under
    ``docs/examples``) written into ``folder`` as the README shows them, and its example
    command lines.  The shipped files must be what the README shows."""
    text = (REPO / "README.md").read_text("utf-8")
    (folder / "docs" / "examples").mkdir(parents=True)
    for block in re.findall(r"```toml\n(.*?)```", text, re.S):
        m = re.match(r"# (docs/examples/(?:profile|waivers)\.toml)\b", block)
        if m:
            assert (REPO / m.group(1)).read_text("utf-8") == block, m.group(1)
            (folder / m.group(1)).write_text(block, "utf-8")
    section = text[text.index("### Profiles, waivers and modes"):text.index("### Check options")]
    commands = re.findall(r"^contourqa check .*$", section, re.M)
    assert len(commands) == 2 and (folder / PROFILE).is_file() and (folder / WAIVERS).is_file()
    return {"profile": commands[0], "postop": commands[1]}


PROFILE, WAIVERS = "docs/examples/profile.toml", "docs/examples/waivers.toml"


_OURS_SET = '''[set]
name = "ours"
title = "Institutional cord limit"
citation = "Department protocol 2026 (test)"
kb_section = "3a"
point_volume_cc = 0.0
point_definition = "true maximum"
point_status = "C"
auto = false

[[constraint]]
id = "cord_pmax_2fx"
check = "cord_pmax"
roles = ["spinal_cord"]
metric = "Dpoint"
comparison = "<="
limit_gy = 16.0
fractions = [2]
source = "department protocol"
table = "1"
status = "U"
'''


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Report]:
    tmp = tmp_path_factory.mktemp("options_live")
    shutil.copytree(REPO / "test_data", tmp / "test_data")  # the README's relative paths
    readme = _readme_files(tmp)
    (tmp / "roles.toml").write_text('[roles]\n"SpinalCanal" = "thecal_sac"\n', "utf-8")
    (tmp / "ours_set.toml").write_text(_OURS_SET, "utf-8")
    demo = str(tmp / "test_data" / "demo_case" / "dicom")
    # the README's profile/waiver example with every other option of this run added
    everything = [*shlex.split(readme["postop"])[2:], "--profile", PROFILE, "--waivers",
                  WAIVERS, "--waiver", "vcf.risk=factors reviewed with the surgeon",
                  "--prescription", "22", "--roles", "roles.toml", "--metrics", "Dmax,D2cc",
                  "--constraints", "hytec2021,rtog0631", "--constraint-file", "ours_set.toml",
                  "--use-unconfirmed", "--prior", "30Gy/10fx,date=2023-05-01",
                  "--prior-dose", str(DEMO / "RD.dcm"), "--alpha-beta", "tumour=10",
                  "--gtv-dmin", "lovelock2010", "--ptv-coverage", "rtog0631",
                  "--dose-grid-max-mm", "3", "--age", "70", "--sins", "8", "--vb-involved",
                  "50", "--lytic", "--baseline-vcf", "--deformity"]
    assert everything[0] == "test_data/demo_case/dicom"
    # no vertebra ROIs: the sector analysis finds the vertebrae on the CT, unnamed
    bare = tmp / "no_vertebra_rois"
    shutil.copytree(DEMO, bare)
    ds = pydicom.dcmread(bare / "RS.dcm")
    drop = {r.ROINumber for r in ds.StructureSetROISequence if r.ROIName.startswith("VB_")}
    for seq, key in (("StructureSetROISequence", "ROINumber"),
                     ("ROIContourSequence", "ReferencedROINumber"),
                     ("RTROIObservationsSequence", "ReferencedROINumber")):
        setattr(ds, seq, [item for item in getattr(ds, seq) if getattr(item, key) not in drop])
    ds.save_as(bare / "RS.dcm")
    return {
        "baseline": _report(demo),
        "everything": _report(*everything, cwd=tmp),
        # the institutional set without --use-unconfirmed; the Redmond "cord compromise" row
        "other": _report(demo, "--constraint-file", str(tmp / "ours_set.toml"),
                         "--constraints", "redmond2017", "--cord-compromise"),
        # (a prior course without its cord maximum: assumed only on request)
        "level": _report(str(bare), "--level", "T10", "--constraints", "hytec2021",
                         "--prior", "30Gy/10fx,date=2023-05-01", "--assume-prior-cord-max"),
        "no_level": _report(str(bare), "--constraints", "hytec2021",
                            "--prior", "30Gy/10fx,date=2023-05-01"),
        "profile_readme": _report(*shlex.split(readme["profile"])[2:], cwd=tmp),
        "demo_inputs": _report(demo, *_demo_flags()),
    }


def _demo_flags() -> list[str]:
    """The demo patient's clinical inputs (contourqa.demo) as command-line options."""
    from contourqa.demo import DEMO_CLINICAL_INPUTS

    flags = {"age_years": "--age", "lytic": "--lytic", "baseline_vcf": "--baseline-vcf",
             "deformity": "--deformity"}
    out = []
    for key, value in DEMO_CLINICAL_INPUTS.items():
        flag = flags[key]
        if isinstance(value, bool):
            out.append(flag if value else flag.replace("--", "--no-", 1))
        else:
            out += [flag, str(value)]
    return out


def _checks(r: Report, code: str) -> list[dict[str, Any]]:
    return [c for c in r["checks"] if c["code"] == code]


def _msg(r: Report, code: str) -> str:
    return " ".join(c["message"] for c in _checks(r, code))


def _limit(r: Report, code: str) -> float | None:
    return next((c["limit"] for c in _checks(r, code)), None)


# destination -> (run setting it, run without it, property of the report)
EFFECTS: dict[str, tuple[str, str, Callable[[Report], bool]]] = {
    "prescription": ("everything", "baseline", lambda r: r["case"]["prescription_gy"] == 22),
    "roles": ("everything", "baseline", lambda r: any(
        s["name"] == "SpinalCanal" and s["role"] == "thecal_sac" for s in r["structures"])),
    "metrics": ("everything", "baseline", lambda r: set(r["dvh"]["SpinalCord"]) ==
                {"Dmax", "D2cc"}),
    "level": ("level", "no_level", lambda r: [(s["level"], s["level_source"])
                                              for s in r["sectors"]] == [("T10", "user")]),
    "constraints": ("everything", "baseline", lambda r: bool(_checks(r, "dose.rtog0631.fractions"))
                    and not any(c["code"].startswith("dose.tg101") for c in r["checks"])),
    "constraint_file": ("everything", "baseline",
                        lambda r: bool(_checks(r, "dose.ours.cord_pmax"))),
    "assume_prior_cord_max": ("level", "no_level", lambda r: all(
        c["status"] in ("pass", "fail", "warn")
        for c in _checks(r, "dose.reirradiation_cumulative_eqd2")) and bool(
        _checks(r, "dose.reirradiation_cumulative_eqd2"))),
    "use_unconfirmed": ("everything", "other",
                        lambda r: "UNCONFIRMED" in _msg(r, "dose.ours.cord_pmax")),
    "prior": ("everything", "baseline", lambda r: bool(_checks(r, "dose.reirradiation_interval"))),
    "prior_dose": ("everything", "baseline",
                   lambda r: "prior RTDOSE RD.dcm" in _msg(r, "dose.reirradiation_sbrt_eqd2")),
    "alpha_beta": ("everything", "baseline",
                   lambda r: "tumour alpha/beta 10 Gy" in _msg(r, "dose.gtv_dmin")),
    "gtv_dmin": ("everything", "baseline", lambda r: "15 Gy/1 fx" in _msg(r, "dose.gtv_dmin")),
    "ptv_coverage": ("everything", "baseline", lambda r: _limit(r, "dose.ptv_coverage") == 90),
    "cord_compromise": ("other", "baseline",
                        lambda r: "none_cord_compromise" in _msg(r, "dose.redmond2017.cord_dmax")),
    "dose_grid_max_mm": ("everything", "baseline",
                         lambda r: _limit(r, "dose.grid_resolution") == 3),
    "mode": ("everything", "baseline", lambda r: "in postop mode" in _msg(r, "rules.mode")),
    "profile": ("everything", "baseline", lambda r: all(
        c["status"] == "not_applicable" and "switched off by profile" in c["message"]
        for c in _checks(r, "contour.name"))),
    "waiver": ("everything", "baseline", lambda r: _msg(r, "vcf.risk").startswith(
        "WAIVED (warn): factors reviewed with the surgeon")),
    "waivers": ("everything", "baseline", lambda r: _msg(r, "dose.ptv_coverage").startswith(
        "WAIVED by A. Physicist (warn): coverage traded for cord sparing")),
    "variant": ("everything", "baseline", lambda r: _limit(r, "ptv.margin") == 2.5),
    "asia": ("everything", "baseline", lambda r: "ASIA grade D" in _msg(r, "postop.asia")),
    "bilsky": ("everything", "baseline", lambda r: "grade 1b" in _msg(r, "postop.bilsky")),
    "histology": ("everything", "baseline", lambda r: "(renal)" in _msg(r, "postop.indication")),
    "prior_rt": ("everything", "baseline",
                 lambda r: "prior overlapping radiation" in _msg(r, "postop.indication")),
    "age": ("everything", "baseline", lambda r: "age 70 years" in _msg(r, "vcf.risk")),
    "sins": ("everything", "baseline", lambda r: "SINS 8" in _msg(r, "vcf.risk")),
    "vb_involved": ("everything", "baseline", lambda r: "involved 50%" in _msg(r, "vcf.risk")),
    "lytic": ("everything", "baseline", lambda r: "lytic lesion (stated)" in _msg(r, "vcf.risk")),
    "baseline_vcf": ("everything", "baseline",
                     lambda r: "baseline VCF (stated)" in _msg(r, "vcf.risk")),
    "deformity": ("everything", "baseline",
                  lambda r: "spinal deformity (stated)" in _msg(r, "vcf.risk")),
}


def test_every_check_destination_is_consumed() -> None:
    """Every destination of ``check`` is a report file, the path, the plain-terminal
    switch (tested in test_report_formats) or an option the library builds, and each
    of those has a live effect below; demo, audit and listen share them."""
    sub = next(a for a in build_parser()._actions if isinstance(a, type(
        build_parser()._subparsers._group_actions[0])))  # type: ignore[union-attr]
    dests = {name: {a.dest for a in p._actions if a.dest != "help"}
             for name, p in sub.choices.items()}
    assert dests["check"] == set(CHECK_OPTION_KEYWORDS) | REPORT_DESTS | {"path", "no_colour"}
    assert set(EFFECTS) == set(CHECK_OPTION_KEYWORDS)
    for command in ("demo", "audit", "listen"):
        assert set(CHECK_OPTION_KEYWORDS) <= dests[command], command


@pytest.mark.parametrize("dest", sorted(EFFECTS))
def test_option_changes_the_report(runs: dict[str, Report], dest: str) -> None:
    with_it, without, holds = EFFECTS[dest]
    assert holds(runs[with_it]), dest
    assert not holds(runs[without]), dest


def test_readme_profile_example_runs_as_written(runs: dict[str, Report]) -> None:
    r = runs["profile_readme"]
    assert r["status"] == "incomplete"  # only the VCF factors, not given there
    assert [c["code"] for c in r["checks"] if c["status"] == "not_evaluated"] == ["vcf.risk"]
    waived = {c["code"] for c in r["checks"] if c["message"].startswith("WAIVED")}
    assert waived == {"imaging.mr_sequences", "dose.ptv_coverage", "dose.grid_resolution"}
    assert _limit(r, "ptv.margin") == 3.0  # variant isrc_p1_3mm (upfront)
    assert all(c["status"] == "not_applicable" for c in _checks(r, "contour.name"))


def test_readme_postop_example_reads_incomplete_for_want_of_a_preop_gtv(
        runs: dict[str, Report]) -> None:
    # the "everything" run starts with the README's post-operative command
    r = runs["everything"]
    assert [c["status"] for c in _checks(r, "postop.preop_extent")] == ["not_evaluated"]


def test_no_check_reports_worse_than_its_declared_severity(runs: dict[str, Report]) -> None:
    from contourqa.rules import all_rules

    order = ["not_applicable", "pass", "not_evaluated", "warn", "fail"]
    declared = {r.code: r.severity.value for r in all_rules()}
    for name, r in runs.items():
        if name in ("everything", "profile_readme"):
            continue  # a profile re-levels rules on purpose
        for c in r["checks"]:
            if c["code"] in declared and c["status"] in ("warn", "fail"):
                assert order.index(c["status"]) <= order.index(declared[c["code"]]), (name, c)


def test_demo_reads_warn_not_incomplete(runs: dict[str, Report]) -> None:
    """The demo phantom with its patient's stated inputs (as ``contourqa demo`` runs it)."""
    r = runs["demo_inputs"]
    assert r["status"] == "warn"
    statuses = {c["status"] for c in r["checks"]}
    assert "not_evaluated" not in statuses and "fail" not in statuses
    folded = {c["code"] for c in r["checks"] if c["status"] == "not_applicable"}
    assert {"dose.reirradiation", "dose.tg101.fractions", "postop.asia"} <= folded


_BAD = [
    ({"p.toml": '[rules."ctv.missing_sectr"]\nlevel = "warn"\n'}, ["--profile", "p.toml"],
     "p.toml: [rules.\"ctv.missing_sectr\"]: unknown rule code"),
    ({"p.toml": '[rules."ptv.margin"]\nmax_mm = 3\n'}, ["--profile", "p.toml"],
     "unknown key(s) max_mm"),
    ({"p.toml": 'variants = ["isrc_p1_4mm"]\n'}, ["--profile", "p.toml"],
     "unknown variant 'isrc_p1_4mm'"),
    ({"p.toml": 'nmae = "x"\n'}, ["--profile", "p.toml"], "unknown key(s) nmae"),
    ({"p.toml": '[rules."dose.hytec2021.cord_pmax"]\nlimit_gy = 18\n'},
     ["--profile", "p.toml"], "a dose rule takes only \"level\""),
    ({"w.toml": '[[waiver]]\ncode = "ptv.margins"\nreason = "x"\n'}, ["--waivers", "w.toml"],
     "w.toml): unknown rule code 'ptv.margins'"),
    ({}, ["--waiver", "dose.ptv_covrage=x"], "unknown rule code 'dose.ptv_covrage'"),
    ({}, ["--variant", "nope"], "--variant: unknown variant 'nope'"),
]


def test_bad_profiles_and_waivers_are_usage_errors(tmp_path: Path) -> None:
    """Exit 2 naming the file and the key; through the entry point for the first
    cases, in process (same code path, faster) for the rest."""
    from contourqa.cli import main

    for n, (files, args, needle) in enumerate(_BAD):
        folder = tmp_path / f"case{n}"
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(text, "utf-8")
        args = [str(folder / a) if a in files else a for a in args]
        if n < 2:
            proc = _cli("check", str(DEMO), *args, cwd=folder)
            code, err = proc.returncode, proc.stderr
        else:
            import contextlib
            import io

            buf = io.StringIO()
            with contextlib.redirect_stderr(buf):
                code = main(["check", str(DEMO), *args])
            err = buf.getvalue()
        assert code == 2, err
        assert needle in err and "Traceback" not in err, err


def test_rules_command_lists_every_rule(tmp_path: Path) -> None:
    from contourqa.rules import all_rules

    proc = _cli("rules", "--json", str(tmp_path / "rules.json"))
    assert proc.returncode == 0, proc.stderr
    listed = json.loads((tmp_path / "rules.json").read_text("utf-8"))
    assert [r["code"] for r in listed] == [r.code for r in all_rules()]
    by = {r["code"]: r for r in listed}
    assert by["ctv.missing_sector"]["severity"] == "fail"
    assert by["ctv.missing_sector"]["thresholds"]["min_coverage_pct"] == 80.0
    assert by["contour.empty"]["severity"] == "fail"  # declared as it reports
    assert by["ptv.cord_cutback"]["severity"] == "report"
    assert by["dose.hytec2021.cord_pmax"]["thresholds"]["cord_pmax_2fx"]["limit"] == 17.0
    assert all(r["citation"] for r in listed)
    text = proc.stdout
    assert "ptv.margin  (fail)" in text and "variant isrc_p1_3mm" in text
    assert "dose.sahgal2013.thecal_sac_pmax  (fail)" in text
