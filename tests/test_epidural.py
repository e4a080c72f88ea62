"""Epidural geometry against constructed truth: a thecal sac (circle r = 8 mm) around
a cord (r = 4 mm) along z, and a GTV disc (r = 5 mm) placed anterior at a known
distance; grades built from the Bilsky definitions (knowledge base section 6c)."""

from __future__ import annotations

import numpy as np
import pytest

from contourqa.epidural import epidural_geometry_of_rois
from contourqa.rules.model import rule_data
from _dvh_phantoms import circle, make_roi

PARAMS = rule_data("epidural")
ZS = np.arange(-30.0, 30.1, 2.0)       # cord and sac
LEVEL_Z = np.arange(-6.0, 6.1, 2.0)    # the GTV's level


def _tube(r: float, name: str, number: int, *, r_level: float | None = None):
    return make_roi([(float(z), [circle(0, 0, r_level if r_level is not None and
                                        abs(z) <= 6 else r, 360)]) for z in ZS],
                    name=name, number=number)


def _gtv(polys_at_level):
    return make_roi([(float(z), polys_at_level) for z in LEVEL_Z], name="GTV", number=3)


def _run(gtv, *, cord_r_level: float | None = None):
    return epidural_geometry_of_rois(
        gtv=gtv, cord=_tube(4.0, "Cord", 1, r_level=cord_r_level), sac=_tube(8.0, "Sac", 2),
        canal=None, levels=[("T10", -8.0, 8.0)], params=PARAMS)


@pytest.mark.parametrize("gap", [0.0, 2.0, 3.0, 5.0])
def test_gtv_cord_gap(gap: float) -> None:
    # GTV disc r = 5 centred at y = -(4 + gap + 5): its edge lies gap mm from the cord
    lv = _run(_gtv([circle(0, -(9 + gap), 5.0, 360)])).levels[0]
    assert lv.level == "T10"
    assert lv.gtv_cord_gap_mm == pytest.approx(gap, abs=0.1)


# (GTV polygons, cord radius at the level, grade): each built from the definition
GRADES = [
    ([circle(0, -25, 5.0, 360)], None, "0"),       # bone only: 12 mm from the sac
    ([circle(0, -13.2, 5.0, 360)], None, "1a"),     # touches the sac (0.2 mm), no deformation
    ([circle(0, -10.5, 5.0, 360)], None, "1b"),     # 2.5 mm into the sac, 1.5 mm from the cord
    ([circle(0, -9.3, 5.0, 360)], None, "1c"),      # 0.3 mm from the cord: abutment
    ([circle(0, -8.0, 5.0, 360)], None, "2"),       # 1 mm into the cord, CSF left
    # circumferential GTV filling the sac around a flattened cord: no CSF
    ([circle(0, 0, 9.0, 360), circle(0, 0, 3.5, 360)], 3.3, "3"),
]


@pytest.mark.parametrize("polys,cord_r,grade", GRADES, ids=[g for _, _, g in GRADES])
def test_bilsky_estimate(polys, cord_r, grade: str) -> None:
    eg = _run(_gtv(polys), cord_r_level=cord_r)
    assert eg.levels[0].bilsky_estimate == grade
    assert eg.worst_bilsky == grade


def test_thecal_share_of_a_half_filled_sac() -> None:
    """GTV: the half-plane y < 0 inside r = 9 (a half disc): it occupies the anterior
    half of the sac, cord included; share 50 %."""
    t = np.linspace(np.pi, 2 * np.pi, 181)
    half = np.column_stack([9 * np.cos(t), 9 * np.sin(t)])
    lv = _run(_gtv([half])).levels[0]
    assert lv.thecal_share_percent == pytest.approx(50.0, abs=1.0)


def test_levels_without_the_gtv_are_not_reported() -> None:
    eg = epidural_geometry_of_rois(
        gtv=_gtv([circle(0, -25, 5.0, 360)]), cord=_tube(4.0, "Cord", 1),
        sac=_tube(8.0, "Sac", 2), canal=None,
        levels=[("T9", 10.0, 30.0), ("T10", -8.0, 8.0), ("T11", -30.0, -10.0)], params=PARAMS)
    assert [lv.level for lv in eg.levels] == ["T10"]
