"""Conus and cauda: cords ending at L1 and at L3 over a lumbar column whose vertebrae
are 28 mm tall with 2 mm disc spaces (T11: z 2..30 mm, T12: -28..0, L1: -58..-30,
L2: -88..-60, L3: -118..-90, L4: -148..-120, L5: -178..-150); a target at L3-L4."""

from __future__ import annotations

import numpy as np

from contourqa.conus import read_conus
from contourqa.findings import Status
from contourqa.rules import RuleOptions
from contourqa.rules.conus import conus_findings
from _dvh_phantoms import circle, make_roi

LEVELS = ["T11", "T12", "L1", "L2", "L3", "L4", "L5"]
# level i spans z in [top - 28, top], top = 30 - 30 i (2 mm disc spaces between)
RANGES = [(lv, 30.0 - 30 * i - 28, 30.0 - 30 * i) for i, lv in enumerate(LEVELS)]


def _tube(z0: float, z1: float, name: str):
    return make_roi([(float(z), [circle(0, 0, 4.0, 72)]) for z in np.arange(z0, z1 + 1e-9, 2.0)],
                    name=name)


def _target():  # L3-L4
    return _tube(-146.0, -92.0, "PTV")


def test_cord_ending_at_l1_with_a_lumbar_target() -> None:
    # cord down to z = -40 (inside L1: -58..-30)
    r = read_conus(cord=_tube(-40.0, 40.0, "Cord"), levels=RANGES, targets=[_target()])
    assert r.conus_level == "L1"
    assert r.levels_below == ("L2", "L3", "L4", "L5")
    assert r.target_levels_below == ("L3", "L4") and r.target_below_only
    f = {x.code: x for x in conus_findings(r, has_cauda_roi=True, options=RuleOptions())}
    assert f["conus.cord_in_cauda"].status is Status.PASS
    assert f["conus.target_below"].status is Status.PASS
    assert "cauda equina / thecal sac limits apply" in f["conus.target_below"].message
    # without a cauda equina or thecal-sac ROI the limits cannot be checked
    g = {x.code: x for x in conus_findings(r, has_cauda_roi=False, options=RuleOptions())}
    assert g["conus.target_below"].status is Status.NOT_EVALUATED


def test_cord_drawn_into_l3_is_a_finding() -> None:
    # cord down to z = -100 (inside L3: -118..-90)
    r = read_conus(cord=_tube(-100.0, 40.0, "Cord"), levels=RANGES, targets=[_target()])
    assert r.conus_level == "L3"
    f = {x.code: x for x in conus_findings(r, has_cauda_roi=True, options=RuleOptions())}
    assert f["conus.cord_in_cauda"].status is Status.WARN
    assert "through the cauda equina" in f["conus.cord_in_cauda"].message


def test_cord_end_in_a_disc_space_takes_the_level_above() -> None:
    # z = -59 lies in the L1-L2 disc space (-60..-58): the conus is at L1
    r = read_conus(cord=_tube(-59.0, 41.0, "Cord"), levels=RANGES, targets=[_target()])
    assert r.conus_level == "L1"
