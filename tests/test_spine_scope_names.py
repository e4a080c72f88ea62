"""Spine scope from names when the image cannot tell (no CT, no vertebra ROI)."""

from __future__ import annotations

import pytest

from contourqa.rules.model import rule_data
from contourqa.rules.scope import spine_target

PARAMS = rule_data("mode")["spine_target"]


@pytest.mark.parametrize(("names", "expected"), [
    (["PTV_LUNG_R", "GTV"], False),
    (["PTV_BREAST", "CTV-LUMPECTOMY"], False),
    (["PTV_PRIMARY", "PTV_LN"], False),
    (["PTV_Prostate"], False),
    (["PTV_T10", "GTV"], None),          # a vertebral level: the names cannot say "not spine"
    (["PTV_spine", "PTV_LN"], None),     # a spine name wins over a nodal one
    (["PTV_L3_lung_side"], None),
    (["PTV", "GTV1", "CTV"], None),      # nothing said
    ([], None),
])
def test_names_decide_only_for_a_named_non_spine_site(names: list[str],
                                                      expected: bool | None) -> None:
    verdict, why = spine_target(None, PARAMS, names)
    assert verdict is expected
    if expected is False:
        assert "name a site other than the spine" in why
    else:
        assert why == "no ISRC sector analysis"


def test_a_profile_can_switch_the_name_evidence_off() -> None:
    assert spine_target(None, {**PARAMS, "non_spine_site_pattern": ""}, ["PTV_LUNG"])[0] is None


def test_a_breast_plan_folds_every_spine_check() -> None:
    """dicompyler-core's breast plan (no CT): the spine checks outside the contouring
    rules (sector analysis, VCF risk, epidural geometry, MR imaging) are not applicable
    too, with the reason; the breast's own problems stay."""
    from datapaths import shared

    from contourqa.check import check

    (report,) = check(shared("dicompyler_core_example")).reports
    by: dict[str, list[str]] = {}
    for f in report.checks:
        by.setdefault(f.code, []).append(f.status.value)
    assert by["rules.spine_scope"] == ["not_applicable"]
    for code in ("sectors.no_vertebra", "vcf.risk", "imaging.mr_sequences"):
        assert set(by[code]) == {"not_applicable"}, code
    assert not any(s != "not_applicable" for c, ss in by.items() for s in ss
                   if c.startswith(("ctv.missing", "ptv.margin", "epidural.", "conus.")))
    assert "not_evaluated" in by["dose.ptv_coverage"]  # a breast check still incomplete


def test_scope_patterns_of_a_profile_change_the_report_through_the_console(tmp_path) -> None:
    """The ``[rules."mode.spine_target"]`` keys of a profile reach the report: without
    the name evidence the breast plan is checked as a spine plan (its spine rules run
    and fail or cannot be evaluated) instead of folding them."""
    import json
    import subprocess
    import sys

    from datapaths import shared

    case = str(shared("dicompyler_core_example"))
    profile = tmp_path / "as_spine.toml"
    profile.write_text('[rules."mode.spine_target"]\nnon_spine_site_pattern = ""\n', "utf-8")
    entry = [sys.executable, "-c", "from contourqa.cli import run; run()", "check", case,
             "--json", "-"]
    runs = {}
    for name, extra in (("shipped", []), ("as_spine", ["--profile", str(profile)])):
        proc = subprocess.run([*entry, *extra], capture_output=True, text=True, timeout=300,
                              check=False)
        assert proc.returncode in (0, 1), proc.stderr
        (r,) = json.loads(proc.stdout)["cases"]
        runs[name] = {c["code"]: c["status"] for c in r["checks"]}
    assert runs["shipped"]["rules.spine_scope"] == "not_applicable"
    assert "ptv.margin" not in runs["shipped"]
    assert "rules.spine_scope" not in runs["as_spine"]
    assert runs["as_spine"]["ptv.margin"] in ("fail", "not_evaluated")
    assert runs["as_spine"]["vcf.risk"] != "not_applicable"
