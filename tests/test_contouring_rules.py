"""Contouring rules against the spine phantom's truth, rule cases as data.

Each file in ``tests/rule_cases`` lists phantom recipes (presets, recipe fields,
planted errors) and the exact set of codes that must come out as fail or warn; the
phantom's recipe is the truth (planted errors change it in documented ways, see
``_rule_phantoms.py``).  Margins are checked against the recipe's margin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from _rule_phantoms import PhantomCache

from contourqa.findings import Finding, Status
from contourqa.rules import (
    Profile,
    RuleConfigError,
    RuleLevel,
    RuleOptions,
    Waiver,
    builtin_rules,
    evaluate_contouring_rules,
    load_profile,
    load_waivers,
    parse_waiver,
)
from contourqa.sectors import SectorOptions, analyse_sectors
from contourqa.structures import assign_roles

CASES_DIR = Path(__file__).parent / "rule_cases"
RAISED = (Status.FAIL, Status.WARN)


def _load_cases() -> list[Any]:
    params = []
    for path in sorted(CASES_DIR.glob("*.yml")):
        data = yaml.safe_load(path.read_text("utf-8"))
        for case in data["cases"]:
            rule = case.get("rule", data["rule"])
            params.append(pytest.param(rule, case, id=f"{path.stem}:{case['name']}"))
    return params


_STATUS_ORDER = [Status.NOT_APPLICABLE, Status.PASS, Status.NOT_EVALUATED, Status.WARN,
                 Status.FAIL]


@pytest.fixture(scope="session")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> PhantomCache:
    return PhantomCache(tmp_path_factory.mktemp("rule_phantoms"))


_RUNS: dict[str, list[Finding]] = {}


def _run(phantoms: PhantomCache, spec: dict[str, Any]) -> list[Finding]:
    key = repr(sorted(spec.items()))
    if key not in _RUNS:
        case = phantoms.get(spec.get("recipe", "demo"), overrides=spec.get("set"),
                            plant=spec.get("plant"), hardware=bool(spec.get("hardware")))
        assert case.structure_set is not None
        roles = assign_roles(case.structure_set.rois)
        sec = analyse_sectors(case, roles, options=SectorOptions())
        options = RuleOptions(mode=spec.get("mode", "auto"), **spec.get("options", {}))
        _RUNS[key] = evaluate_contouring_rules(case, roles, sec, options=options)
    return _RUNS[key]


def _spec(case: dict[str, Any]) -> dict[str, Any]:
    keys = ("recipe", "set", "plant", "hardware", "mode", "options")
    return {k: case[k] for k in keys if k in case}


@pytest.mark.parametrize(("rule", "case"), _load_cases())
def test_rule_case(phantoms: PhantomCache, rule: str, case: dict[str, Any]) -> None:
    findings = _run(phantoms, _spec(case))
    raised = {f.code for f in findings if f.status in RAISED}
    if "raises" in case:
        detail = [f"{f.code}: {f.message}" for f in findings if f.status in RAISED]
        assert raised == set(case["raises"]), detail
    mine = [f for f in findings if f.code == rule]
    assert mine, f"rule {rule} gave no finding"
    if "status" in case:
        worst = max(mine, key=lambda f: _STATUS_ORDER.index(f.status))
        assert worst.status is Status(case["status"]), [f.message for f in mine]
    # a rule never reports worse than its declared severity
    declared = {r.code: r.severity for r in builtin_rules()}
    for f in findings:
        if f.code in declared and f.status in RAISED:
            assert _STATUS_ORDER.index(f.status) <= _STATUS_ORDER.index(declared[f.code]), \
                (f.code, f.status, declared[f.code], f.message)
    if "value" in case:
        values = [f.value for f in mine if f.value is not None]
        assert values, [f.message for f in mine]
        assert values[0] == pytest.approx(case["value"], abs=case.get("value_tol", 0.0)), \
            [f.message for f in mine]


def test_every_rule_has_a_failing_and_a_passing_case() -> None:
    """Every rule: a case whose worst status for it is its declared severity (fail, or
    warn for a warning rule) and one where it passes; reported-only rules (severity
    pass, the cut-backs) a passing one."""
    seen: dict[str, set[str]] = {}
    for param in _load_cases():
        rule, case = param.values
        if "status" in case:
            seen.setdefault(rule, set()).add(case["status"])
    for r in builtin_rules():
        statuses = seen.get(r.code, set())
        assert "pass" in statuses, f"{r.code}: no passing rule case"
        if r.severity is not Status.PASS:
            assert r.severity.value in statuses, f"{r.code}: no {r.severity.value} rule case"


def test_every_rule_reports_on_every_case(phantoms: PhantomCache) -> None:
    findings = _run(phantoms, {"recipe": "demo"})
    codes = {f.code for f in findings}
    for rule in builtin_rules():
        assert rule.code in codes
        assert rule.citation
    # postop rules are not applicable in upfront mode, with the mode evidence
    hw = [f for f in findings if f.code == "postop.hardware_in_ctv"]
    assert hw[0].status is Status.NOT_APPLICABLE and "upfront" in hw[0].message
    assert all(f.source for f in findings)


def test_codes_are_unique_and_dotted() -> None:
    import re

    codes = [r.code for r in builtin_rules()]
    assert len(codes) == len(set(codes))
    assert all(re.match(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$", c) for c in codes)


def test_auto_mode_names_its_evidence(phantoms: PhantomCache) -> None:
    findings = _run(phantoms, {"recipe": "demo", "hardware": True})
    mode = next(f for f in findings if f.code == "rules.mode")
    assert "post-operative" in mode.message and "HU" in mode.message


def test_profile_relevels_disables_and_waives(phantoms: PhantomCache, tmp_path: Path) -> None:
    case = phantoms.get("error_extra_sector")
    assert case.structure_set is not None
    roles = assign_roles(case.structure_set.rois)
    sec = analyse_sectors(case, roles, options=SectorOptions())
    prof = tmp_path / "inst.toml"
    prof.write_text('name = "inst"\n[rules."ctv.unjustified_sector"]\nlevel = "fail"\n'
                    '[rules."contour.name"]\nlevel = "off"\n', "utf-8")
    fs = evaluate_contouring_rules(case, roles, sec,
                                   options=RuleOptions(mode="upfront", profile=load_profile(prof)))
    by = {f.code: f for f in fs}
    assert by["ctv.unjustified_sector"].status is Status.FAIL
    assert by["contour.name"].status is Status.NOT_APPLICABLE
    assert "switched off" in by["contour.name"].message
    waiver = Waiver(code="ctv.unjustified_sector", reason="marrow signal on MRI in sector 2")
    fs = evaluate_contouring_rules(case, roles, sec, options=RuleOptions(
        mode="upfront", profile=load_profile(prof), waivers=[waiver]))
    f = next(f for f in fs if f.code == "ctv.unjustified_sector")
    assert f.status is Status.WARN and "marrow signal on MRI" in f.message
    assert "WAIVED" in f.message


def test_waivers_need_a_reason(tmp_path: Path) -> None:
    with pytest.raises(RuleConfigError, match="reason"):
        Waiver(code="ptv.margin", reason="  ")
    with pytest.raises(RuleConfigError, match="REASON"):
        parse_waiver("ptv.margin")
    w = parse_waiver("cord.prv_margin@SC PRV=institutional 3 mm PRV")
    assert w.structure == "SC PRV" and w.reason == "institutional 3 mm PRV"
    path = tmp_path / "w.toml"
    path.write_text('[[waiver]]\ncode = "ptv.margin"\n', "utf-8")
    with pytest.raises(RuleConfigError, match="reason"):
        load_waivers(path)
    path.write_text('[[waiver]]\ncode = "ptv.margin"\nreason = "3 mm by protocol"\n'
                    'author = "JS"\n', "utf-8")
    assert load_waivers(path)[0].author == "JS"


def test_bad_options_are_named() -> None:
    with pytest.raises(RuleConfigError, match="mode"):
        RuleOptions(mode="sideways")
    with pytest.raises(RuleConfigError, match="asia_grade"):
        RuleOptions(asia_grade="F")
    assert Profile().levels == {} and RuleLevel("off") is RuleLevel.OFF


def test_rules_without_sectors_are_not_evaluated(phantoms: PhantomCache) -> None:
    case = phantoms.get("demo")
    assert case.structure_set is not None
    fs = evaluate_contouring_rules(case, assign_roles(case.structure_set.rois), None,
                                   options=RuleOptions(mode="upfront"))
    f = next(f for f in fs if f.code == "ctv.missing_sector")
    assert f.status is Status.NOT_EVALUATED and "sector" in f.message


@pytest.mark.parametrize(("extent_deg", "expected"), [(200.0, Status.FAIL), (270.0, Status.WARN)])
def test_postop_ring_for_near_circumferential_disease_warns(
        phantoms: PhantomCache, extent_deg: float, expected: Status) -> None:
    """KB 0.5: a circumferential CTV "may be considered for near-circumferential epidural
    disease": a warning from ``near_circumferential_min_deg`` (240 deg), below it (and
    below the 330 deg of circumferential disease) a failure.  The ring_preop_body_only
    case (CTV = sectors 1-6, pre-operative GTV in the body) with its epidural extent
    set to the value under test."""
    import dataclasses

    from contourqa.rules.context import RuleContext
    from contourqa.rules.model import Mode
    from contourqa.rules.postop import check_postop_circumferential

    case = phantoms.get("error_circumferential", plant="preop_gtv_body")
    assert case.structure_set is not None
    roles = assign_roles(case.structure_set.rois)
    sec = analyse_sectors(case, roles, options=SectorOptions())
    vertebrae = tuple(dataclasses.replace(v, epidural=True, epidural_extent_deg=extent_deg)
                      if v.ctv_sectors else v for v in sec.vertebrae)
    sec = dataclasses.replace(sec, vertebrae=vertebrae)
    ctx = RuleContext(case=case, roles=roles, sectors=sec, options=RuleOptions(mode="postop"),
                      mode=Mode.POSTOP, mode_evidence="test")
    from contourqa.rules import rule_data

    found = check_postop_circumferential(ctx, rule_data("postop")["postop.circumferential"])
    assert [f.status for f in found] == [expected], [f.message for f in found]
    if expected is Status.WARN:
        assert "may be considered" in found[0].message
