"""The DVH metric grammar: parsing, canonical spelling, errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contourqa.dvh import DEFAULT_METRICS, DVHMetric, DVHOptions, MetricKind
from contourqa.errors import MetricError


@pytest.mark.parametrize("text, kind, x", [
    ("volume", MetricKind.VOLUME, None),
    ("Dmin", MetricKind.DMIN, None),
    ("Dmax", MetricKind.DMAX, None),
    ("Dmean", MetricKind.DMEAN, None),
    ("D95%", MetricKind.DOSE_AT_PERCENT, 95.0),
    ("D0.03cc", MetricKind.DOSE_AT_CC, 0.03),
    ("D0.035cc", MetricKind.DOSE_AT_CC, 0.035),
    ("V20Gy", MetricKind.VOLUME_CC_AT_GY, 20.0),
    ("V12.5Gy%", MetricKind.VOLUME_PERCENT_AT_GY, 12.5),
    ("V100%", MetricKind.VOLUME_PERCENT_AT_RX_PERCENT, 100.0),
])
def test_parse_and_round_trip(text: str, kind: MetricKind, x: float | None) -> None:
    m = DVHMetric.parse(text)
    assert m.kind is kind and m.x == x
    assert str(m) == text
    assert DVHMetric.parse(str(m)) == m


def test_case_insensitive_input_canonical_output() -> None:
    assert str(DVHMetric.parse("dmax")) == "Dmax"
    assert str(DVHMetric.parse("d2%")) == "D2%"
    assert str(DVHMetric.parse("v20gy")) == "V20Gy"


@pytest.mark.parametrize("bad", ["D95", "V20", "Dfoo", "D-1%", "D101%", "", "mean", "D95 %%"])
def test_bad_metrics_raise_with_the_grammar(bad: str) -> None:
    with pytest.raises(MetricError, match="DVH metric|cannot exceed|Add a unit"):
        DVHMetric.parse(bad)


def test_units() -> None:
    assert DVHMetric.parse("D2%").unit == "Gy"
    assert DVHMetric.parse("V20Gy").unit == "cc"
    assert DVHMetric.parse("V20Gy%").unit == "%"
    assert DVHMetric.parse("volume").unit == "cc"


def test_default_metrics_are_those_of_the_issue() -> None:
    assert [str(m) for m in DEFAULT_METRICS] == [
        "volume", "Dmin", "Dmax", "Dmean", "D99%", "D98%", "D95%", "D50%", "D2%", "D1%",
        "D0.03cc", "D0.035cc"]


def test_options_validate_and_echo() -> None:
    with pytest.raises(ValueError, match="end_caps"):
        DVHOptions(end_caps="full")  # type: ignore[arg-type]
    conv = DVHOptions().conventions()
    assert conv["end_caps"] == "half_slice"
    assert all(isinstance(v, (str, int, float)) for v in conv.values())


@given(st.decimals(min_value=0, max_value=100, places=3))
def test_round_trip_numbers(x: object) -> None:
    m = DVHMetric.parse(f"D{x}%")
    assert DVHMetric.parse(str(m)) == m
