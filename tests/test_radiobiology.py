"""BED/EQD2 against the knowledge base's hand-computed values (sections 3a, 4b, 4c)."""

from __future__ import annotations

import datetime as dt

import pytest

from contourqa.radiobiology import (
    Course,
    bed_gy,
    eqd2_gy,
    eqdx_gy,
    total_dose_for_bed_gy,
    total_dose_for_eqd2_gy,
)


@pytest.mark.parametrize("dose, n, expected", [
    # KB 4c: conversion of prior conventional courses to EQD2 at alpha/beta 2 Gy.
    (8.0, 1, 20.0), (20.0, 5, 30.0), (30.0, 10, 37.5), (37.5, 15, 42.1875), (40.0, 20, 40.0),
    (45.0, 25, 42.75), (50.0, 25, 50.0),
])
def test_eqd2_of_conventional_courses(dose: float, n: int, expected: float) -> None:
    assert eqd2_gy(total_dose_gy=dose, n_fractions=n, alpha_beta_gy=2.0) == pytest.approx(expected)


@pytest.mark.parametrize("dose, n, expected", [
    # KB 3a: the HyTEC EQD2 column (alpha/beta 2 Gy), rounded to 0.1 Gy there.
    (12.4, 1, 44.6), (14.0, 1, 56.0), (17.0, 2, 44.6), (20.3, 3, 44.5), (23.0, 4, 44.6),
    (25.3, 5, 44.7),
])
def test_hytec_eqd2_column(dose: float, n: int, expected: float) -> None:
    assert eqd2_gy(total_dose_gy=dose, n_fractions=n, alpha_beta_gy=2.0) == pytest.approx(
        expected, abs=0.05)


@pytest.mark.parametrize("n, expected", [(1, 9.05), (2, 12.28), (3, 14.58), (4, 16.40),
                                         (5, 17.91)])
def test_dose_giving_25_gy_eqd2(n: int, expected: float) -> None:
    # KB 4b: exact per-course SBRT thecal-sac Pmax giving EQD2 25 Gy.
    total = total_dose_for_eqd2_gy(eqd2_gy=25.0, n_fractions=n, alpha_beta_gy=2.0)
    assert total == pytest.approx(expected, abs=0.005)
    assert eqd2_gy(total_dose_gy=total, n_fractions=n, alpha_beta_gy=2.0) == pytest.approx(25.0)


def test_bed_and_general_forms_agree() -> None:
    # nBED = BED/2 at alpha/beta 2 equals EQD2 (KB 4c); EQDX with X = 2 is EQD2.
    bed = bed_gy(total_dose_gy=24.0, n_fractions=2, alpha_beta_gy=2.0)
    assert bed == pytest.approx(24.0 * (1 + 12.0 / 2.0))
    assert bed / 2 == pytest.approx(eqd2_gy(total_dose_gy=24.0, n_fractions=2, alpha_beta_gy=2.0))
    assert eqdx_gy(total_dose_gy=30.0, n_fractions=5, alpha_beta_gy=3.0,
                   reference_dose_per_fraction_gy=2.0) == pytest.approx(
        eqd2_gy(total_dose_gy=30.0, n_fractions=5, alpha_beta_gy=3.0))
    assert total_dose_for_bed_gy(bed_gy=bed, n_fractions=2, alpha_beta_gy=2.0) == pytest.approx(24)


@pytest.mark.parametrize("kwargs", [
    {"total_dose_gy": -1.0, "n_fractions": 1, "alpha_beta_gy": 2.0},
    {"total_dose_gy": 8.0, "n_fractions": 0, "alpha_beta_gy": 2.0},
    {"total_dose_gy": 8.0, "n_fractions": 1, "alpha_beta_gy": 0.0},
])
def test_invalid_arguments_are_named(kwargs: dict) -> None:
    with pytest.raises(ValueError, match='Argument "'):
        bed_gy(**kwargs)


def test_course_parse() -> None:
    c = Course.parse("30Gy/10fx, cord_max=28Gy, date=2023-05-01")
    assert (c.total_dose_gy, c.n_fractions, c.cord_max_gy) == (30.0, 10, 28.0)
    assert c.end_date == dt.date(2023, 5, 1)
    assert Course.parse("8 Gy in 1").n_fractions == 1
    with pytest.raises(ValueError, match="30Gy/10fx"):
        Course.parse("thirty gray")
    with pytest.raises(ValueError, match="unknown key"):
        Course.parse("30Gy/10fx,colour=red")
