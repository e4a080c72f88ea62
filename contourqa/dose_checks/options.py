"""Options of the dose, prescription, re-irradiation, VCF and imaging checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from contourqa.constraints.library import AUTO
from contourqa.radiobiology import Course

__all__ = ["ALL_CHECKS", "DoseCheckOptions", "PatientFactors"]

#: The check groups :func:`evaluate_dose_checks` runs, in report order.
ALL_CHECKS: tuple[str, ...] = ("prescription", "constraints", "target", "reirradiation", "vcf",
                               "imaging", "dose_grid")


@dataclass(frozen=True)
class PatientFactors:
    """What the images cannot show about VCF risk (knowledge base 6a, 6b).

    ``None`` means unknown; the VCF flag lists unknown factors.

    Attributes
    ----------
    age_years : float or None
    baseline_vcf, deformity, lytic : bool or None
        Pre-existing fracture, spinal deformity/misalignment, lytic lesion.
    sins_total : int or None
        Spinal Instability Neoplastic Score, 0-18.
    vertebral_body_involved_percent : float or None
        Share of the vertebral body consumed by tumour, % (e.g. from the sector
        analysis).
    evidence : mapping of str to str
        How a factor was measured when the user did not state it, by attribute name
        (``{"lytic": "from CT density, T10: GTV median 45 HU vs bone 250 HU"}``);
        filled by the check pipeline.  A factor without evidence was stated; a stated
        factor the images contradict gets ``"stated; the images disagree: ..."``.
    """

    age_years: float | None = None
    baseline_vcf: bool | None = None
    deformity: bool | None = None
    lytic: bool | None = None
    sins_total: int | None = None
    vertebral_body_involved_percent: float | None = None
    evidence: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.evidence) - _FACTOR_NAMES)
        if unknown:
            raise ValueError(f'Argument "evidence" names unknown factor(s) {unknown}; known: '
                             f'{", ".join(sorted(_FACTOR_NAMES))}.')
        object.__setattr__(self, "evidence", dict(self.evidence))
        if self.age_years is not None and not 0 <= self.age_years:
            raise ValueError(f'Argument "age_years" must be >= 0, got {self.age_years!r}.')
        if self.vertebral_body_involved_percent is not None and not (
                0 <= self.vertebral_body_involved_percent <= 100):
            raise ValueError('Argument "vertebral_body_involved_percent" must be within 0-100, '
                             f'got {self.vertebral_body_involved_percent!r}.')


_FACTOR_NAMES = frozenset({"age_years", "baseline_vcf", "deformity", "lytic", "sins_total",
                           "vertebral_body_involved_percent"})


@dataclass(frozen=True)
class DoseCheckOptions:
    """Per-run options of :func:`contourqa.dose_checks.evaluate_dose_checks`.

    Attributes
    ----------
    constraint_sets : tuple of str
        Built-in set names (``contourqa.constraints.builtin_sets()``); ``"auto"`` is
        every set marked auto (HyTEC 2021, Sahgal 2013, TG-101).  ``redmond2017`` is
        added automatically when prior courses are given.
    constraint_files : tuple of Path
        Institutional constraint-set TOML files (same format), always applied.
    use_unconfirmed : bool
        Also evaluate constraints and point definitions with knowledge-base status U
        (labelled in each finding).  Off by default.
    prior_courses : tuple of Course
        Prior radiotherapy courses (``Course.parse("30Gy/10fx,date=2023-01-15")``).
    prior_dose_paths : tuple of Path
        RTDOSE files of prior courses in the plan's frame of reference, one per
        entry of ``prior_courses`` (same order): the prior cord/thecal-sac maximum is
        read from them.
    assume_prior_cord_max : bool
        When a prior course states no ``cord_max`` and has no RTDOSE, assume its cord
        Pmax was the labelled conservative multiple of its prescription in
        ``rules/reirradiation.toml`` (``prior_pmax_assumption``, status D).  Off by
        default: the cumulative re-irradiation rules are then not evaluated.
    cord_compromise : bool
        Use the "cord compromise" row of the Redmond 2017 table.
    alpha_beta_gy : mapping of str to float
        alpha/beta overrides by role value (``"spinal_cord"``) or ``"tumour"``, Gy.
        The tumour value is needed to convert the single-fraction GTV Dmin threshold
        to other schedules (the knowledge base gives none).
    gtv_dmin_variant : str
        ``"review"`` (14 Gy, default), ``"lovelock2010"`` (15 Gy) or
        ``"kowalchuk2024"`` (15.3 Gy).
    ptv_coverage_variant : str
        ``"review"`` (>= 85%, default) or ``"rtog0631"`` (> 90%).
    uncertainty : bool
        Attach the DVH engine's discretisation band to each constraint result, and
        warn when the band crosses the limit.
    dose_grid_max_spacing_mm : float or None
        Warn when the dose grid is coarser than this (no cited default: the check
        only reports the spacing without it).
    patient : PatientFactors
    checks : tuple of str
        Check groups to run (default :data:`ALL_CHECKS`).
    """

    constraint_sets: tuple[str, ...] = (AUTO,)
    constraint_files: tuple[Path, ...] = ()
    use_unconfirmed: bool = False
    prior_courses: tuple[Course, ...] = ()
    prior_dose_paths: tuple[Path, ...] = ()
    assume_prior_cord_max: bool = False
    cord_compromise: bool = False
    alpha_beta_gy: Mapping[str, float] = field(default_factory=dict)
    gtv_dmin_variant: str = "review"
    ptv_coverage_variant: str = "review"
    uncertainty: bool = True
    dose_grid_max_spacing_mm: float | None = None
    patient: PatientFactors = field(default_factory=PatientFactors)
    checks: tuple[str, ...] = ALL_CHECKS

    def __post_init__(self) -> None:
        object.__setattr__(self, "constraint_sets", tuple(self.constraint_sets))
        object.__setattr__(self, "constraint_files", tuple(Path(p) for p in self.constraint_files))
        object.__setattr__(self, "prior_dose_paths", tuple(Path(p) for p in self.prior_dose_paths))
        courses = tuple(Course.parse(c) if isinstance(c, str) else c for c in self.prior_courses)
        object.__setattr__(self, "prior_courses", courses)
        if self.prior_dose_paths and len(self.prior_dose_paths) != len(courses):
            raise ValueError(
                f'Argument "prior_dose_paths" has {len(self.prior_dose_paths)} file(s) for '
                f'{len(courses)} prior course(s): give one prior course (fractions, date) per '
                "prior RTDOSE, in the same order.")
        unknown = sorted(set(self.checks) - set(ALL_CHECKS))
        if unknown:
            raise ValueError(f'Argument "checks" has unknown group(s) {unknown}; known: '
                             f'{", ".join(ALL_CHECKS)}.')
        for key, value in dict(self.alpha_beta_gy).items():
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f'Argument "alpha_beta_gy": {key} must be a positive dose in '
                                 f"Gy, got {value!r}.")
        object.__setattr__(self, "alpha_beta_gy", dict(self.alpha_beta_gy))
        if self.dose_grid_max_spacing_mm is not None and not self.dose_grid_max_spacing_mm > 0:
            raise ValueError('Argument "dose_grid_max_spacing_mm" must be positive, got '
                             f"{self.dose_grid_max_spacing_mm!r}.")
