"""The ISRC table never demands what another rule forbids.

For every non-empty set of GTV sectors (63), every body laterality, lamina or
transverse-process sub-labels (known or not) and with the optional ISRC-05 vendor
variant on or off, a CTV covering exactly the sectors ``ctv.missing_sector`` requires
must pass ``ctv.missing_sector``, ``ctv.unjustified_sector`` and
``ctv.circumferential`` alike: no GTV pattern yields requirements no CTV can meet.
The expected sector sets of a few patterns are worked out by hand from the knowledge
base (section 1b and the ISRC-C3 rule of section 0.2).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from contourqa.findings import Status
from contourqa.rules import RuleOptions, rule_data
from contourqa.rules.context import RuleContext
from contourqa.rules.model import Mode
from contourqa.rules.upfront import (
    check_circumferential,
    check_missing_sector,
    check_unjustified_sector,
    expected_ctv_sectors,
)
from contourqa.sectors import SectorAnalysis, SectorOptions, VertebraSectors

_GTV_SETS = [frozenset(c) for n in range(1, 7) for c in itertools.combinations(range(1, 7), n)]


def _vertebra(gtv: frozenset[int], *, body: str, parts: tuple[str, ...] | None,
              ctv: frozenset[int] = frozenset()) -> VertebraSectors:
    cov = tuple(100.0 if s in ctv else 0.0 for s in range(1, 7))
    return VertebraSectors(
        index=0, level="T10", level_source="user", vertebra_source="test",
        frame=None,  # type: ignore[arg-type]  # not read by the rules
        sector_volume_cc=(10.0,) * 6,
        gtv_sector_cc=tuple(1.0 if s in gtv else 0.0 for s in range(1, 7)),
        gtv_sectors=tuple(sorted(gtv)), body_laterality=body, epidural=False, epidural_cc=0.0,
        epidural_extent_deg=0.0, epidural_circumferential=False, paraspinal=False,
        paraspinal_cc=0.0, ctv_sector_cc=tuple(c / 10 for c in cov), ctv_sector_coverage_pct=cov,
        ctv_sectors=tuple(sorted(ctv)), ctv_epidural_cc=0.0, gtv_parts=parts)


def _context(v: VertebraSectors, variants: tuple[str, ...]) -> RuleContext:
    sec = SectorAnalysis(vertebrae=(v,), findings=(), options=SectorOptions())
    return RuleContext(case=None, roles=None, sectors=sec,  # type: ignore[arg-type]
                       options=RuleOptions(mode="upfront", variants=variants),
                       mode=Mode.UPFRONT, mode_evidence="test")


def _parts_options(gtv: frozenset[int]) -> list[tuple[str, ...] | None]:
    """Unknown parts, and every known labelling of sectors 3 and 5 (lamina, process, both)."""
    sides = []
    for sector, side in ((3, "left"), (5, "right")):
        if sector in gtv:
            sides.append([(f"lamina_{side}",), (f"transverse_process_{side}",),
                          (f"lamina_{side}", f"transverse_process_{side}")])
        else:
            sides.append([()])
    return [None, *[tuple(a + b) for a, b in itertools.product(*sides)]]


def _cases() -> list[Any]:
    out = []
    for gtv in _GTV_SETS:
        bodies = ["central", "left", "right", "diffuse"] if 1 in gtv else ["none"]
        for body, parts, variants in itertools.product(bodies, _parts_options(gtv),
                                                       [(), ("isrc05_vendor",)]):
            out.append((gtv, body, parts, variants))
    return out


def test_no_gtv_pattern_yields_contradictory_requirements() -> None:
    table_params: dict[str, Any] = {}
    checked = 0
    for gtv, body, parts, variants in _cases():
        probe = _vertebra(gtv, body=body, parts=parts)
        ctx = _context(probe, variants)
        table = ctx.data("upfront", "isrc_table")
        need, rows, _ = expected_ctv_sectors(probe, table)
        v = _vertebra(gtv, body=body, parts=parts, ctv=need)
        ctx = _context(v, variants)
        for check, code in ((check_missing_sector, "ctv.missing_sector"),
                            (check_unjustified_sector, "ctv.unjustified_sector"),
                            (check_circumferential, "ctv.circumferential")):
            params = table_params.setdefault(code, rule_data("upfront")[code])
            found = check(ctx, params)
            bad = [f.message for f in found if f.status is not Status.PASS]
            assert not bad, (sorted(gtv), body, parts, variants, sorted(need), rows, bad)
        checked += 1
    # 63 sector sets; body laterality and sub-labels multiply them
    assert checked > 63 * 2


@pytest.mark.parametrize(("gtv", "body", "parts", "expected", "note"), [
    # KB 1b ISRC-04: body + left pedicle -> body, pedicle, left TP/lamina
    ({1, 2}, "left", None, {1, 2, 3}, None),
    # ISRC-05 default {1,2,3,5,6} (KB 0.2: no spinous process): with sectors 3 and 5
    # taken as laminae, ISRC-07 would add 4 and close the ring; ISRC-C3 takes precedence
    ({1, 2, 3, 5, 6}, "diffuse", None, {1, 2, 3, 5, 6}, "ISRC-C3"),
    ({1, 2, 6}, "diffuse", None, {1, 2, 3, 5, 6}, None),
    # ISRC-07 is the lamina: a transverse-process GTV does not call for the spinous process
    ({3}, "none", ("transverse_process_left",), {3}, None),
    ({3}, "none", ("lamina_left",), {2, 3, 4}, None),
    ({3}, "none", None, {2, 3, 4}, "taken as left lamina"),
    # ISRC-C3: body, both sides and the spinous process: all six
    ({1, 2, 4, 6}, "diffuse", None, {1, 2, 3, 4, 5, 6}, None),
])
def test_expected_sectors_by_hand(gtv: set[int], body: str, parts: tuple[str, ...] | None,
                                  expected: set[int], note: str | None) -> None:
    v = _vertebra(frozenset(gtv), body=body, parts=parts)
    need, _, notes = expected_ctv_sectors(v, _context(v, ()).data("upfront", "isrc_table"))
    assert need == expected
    if note is None:
        assert not any("lamina" in n or "ISRC-C3" in n for n in notes), notes
    else:
        assert any(note in n for n in notes), notes


def test_missing_sector_says_when_the_lamina_was_assumed() -> None:
    v = _vertebra(frozenset({3}), body="none", parts=None, ctv=frozenset({3}))
    ctx = _context(v, ())
    (f,) = check_missing_sector(ctx, rule_data("upfront")["ctv.missing_sector"])
    assert f.status is Status.FAIL and "taken as left lamina" in f.message
    assert "2 (left pedicle)" in f.message and "4 (spinous process)" in f.message
