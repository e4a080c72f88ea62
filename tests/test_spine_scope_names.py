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
