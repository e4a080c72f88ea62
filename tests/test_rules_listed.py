"""Every check a report can hold is listed by ``contourqa rules`` (issue "Verdicts you
can trust": "contourqa rules lists every rule"), or belongs to a documented family of
findings about the input data.  Found two ways: every finding code written in the
source, and every code of real reports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from contourqa.rules import all_rules
from contourqa.rules.analysis import data_finding_families
from contourqa.rules.model import FAMILIES

REPO = Path(__file__).resolve().parents[1]
ENTRY = [sys.executable, "-c", "from contourqa.cli import run; run()"]
DEMO = REPO / "test_data" / "demo_case" / "dicom"

# a finding code as written: code="a.b", Finding("a.b", ...), not_evaluated("a.b", ...)
_CODE = re.compile(r'(?:code\s*=\s*|\b(?:not_applicable|not_evaluated|Finding)\(\s*)'
                   r'(f?)"([a-z0-9_]+\.[a-z0-9_.{}]+)"')


def _listed(code: str, codes: set[str]) -> bool:
    return code in codes or code.split(".")[0] in data_finding_families()


def test_every_code_in_the_source_is_listed() -> None:
    codes = {r.code for r in all_rules()}
    unlisted = []
    for path in sorted((REPO / "contourqa").rglob("*.py")):
        for m in _CODE.finditer(path.read_text("utf-8")):
            code = m.group(2)
            if m.group(1) and "{" in code:  # an f-string: some listed code has its stem
                stem = code[:code.index("{")]
                ok = any(c.startswith(stem) for c in codes) or \
                    stem.split(".")[0] in data_finding_families()
            else:
                ok = _listed(code, codes)
            if not ok:
                unlisted.append(f"{path.relative_to(REPO)}: {code}")
    assert not unlisted, unlisted


def test_every_code_of_a_report_is_listed() -> None:
    import contourqa

    codes = {r.code for r in all_rules()}
    reports = [*contourqa.check(DEMO),
               *contourqa.check(DEMO, options=contourqa.options.build_check_options(
                   mode="postop", prior_courses=["30Gy/10fx,date=2023-05-01"],
                   constraints="bmc2025,hytec2021,quantec2010,redmond2017,rtog0631,sahgal2013,tg101"))]
    emitted = {c.code for r in reports for c in r.checks}
    assert len(emitted) > 40
    assert sorted(c for c in emitted if not _listed(c, codes)) == []


def test_rules_command_lists_the_analysis_checks_and_the_data_findings() -> None:
    proc = subprocess.run([*ENTRY, "rules"], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    for code in ("sectors.level_mismatch  (fail)", "prescription.consistency  (fail)",
                 "contour.oar_extent  (warn)", "dose.tg101.fractions  (report)",
                 "input.*", "dvh.*"):
        assert code in proc.stdout, code
    proc = subprocess.run([*ENTRY, "rules", "--family", "analysis"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert "rules.spine_scope" in proc.stdout and "input.*" not in proc.stdout


@pytest.mark.parametrize("family", FAMILIES)
def test_family_option_takes_every_family(family: str) -> None:
    from contourqa.cli import build_parser

    args = build_parser().parse_args(["rules", "--family", family])
    assert args.family == family
