"""The one place where the options of a check run are built from plain values.

Every entry point uses :func:`build_check_options`: the command line (``check``,
``demo``, ``audit``, ``listen``, which only parse their arguments) and the Python API.
It validates everything eagerly: a profile or waiver naming an unknown rule code,
threshold key or variant, an unknown constraint set, a malformed prior course, ...
raise :class:`OptionsError` (or its subclass for rules,
:class:`~contourqa.rules.RuleConfigError`) with a message naming the option or file
and the key.

>>> from contourqa.options import build_check_options
>>> opts = build_check_options(mode="upfront", variants=["isrc_p1_3mm"], level="T10")
>>> opts.rules.mode.value, opts.level
('upfront', 'T10')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from typing import TYPE_CHECKING

from contourqa.check import CheckOptions
from contourqa.errors import ContourQAError

if TYPE_CHECKING:
    from contourqa.rules.model import Profile
    from contourqa.sectors import SectorOptions

__all__ = ["OptionsError", "build_check_options", "build_sector_options"]

PathLike = str | Path


class OptionsError(ContourQAError, ValueError):
    """An option value that cannot be used (the message names the option)."""


def _alpha_beta(items: Iterable[str] | Mapping[str, float]) -> dict[str, float]:
    if isinstance(items, Mapping):
        return {str(k): float(v) for k, v in items.items()}
    out: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise OptionsError(f"--alpha-beta {item!r}: expected KEY=GY, e.g. tumour=10")
        try:
            out[key.strip()] = float(value)
        except ValueError as exc:
            raise OptionsError(f"--alpha-beta {item!r}: {value!r} is not a dose in Gy") from exc
    return out


def build_check_options(
        *, prescription_gy: float | None = None, roles: PathLike | None = None,
        metrics: Sequence[str] | None = None, level: str | None = None,
        compute_dvh: bool = True, keep_media: bool = False,
        # dose constraints
        constraints: str | Sequence[str] = "auto", constraint_files: Sequence[PathLike] = (),
        prior_courses: Sequence[str] = (), prior_doses: Sequence[PathLike] = (),
        assume_prior_cord_max: bool = False, use_unconfirmed: bool = False,
        alpha_beta_gy: Iterable[str] | Mapping[str, float] = (),
        gtv_dmin_variant: str = "review", ptv_coverage_variant: str = "review",
        cord_compromise: bool = False, dose_grid_max_spacing_mm: float | None = None,
        # contouring rules
        mode: str = "auto", profile: PathLike | None = None, waivers: Sequence[str] = (),
        waiver_files: Sequence[PathLike] = (), variants: Sequence[str] = (),
        asia_grade: str | None = None, bilsky_grade: str | None = None,
        histology: str | None = None, prior_rt_overlap: bool | None = None,
        # VCF risk factors
        age_years: float | None = None, sins_total: int | None = None,
        vertebral_body_involved_percent: float | None = None, lytic: bool | None = None,
        baseline_vcf: bool | None = None, deformity: bool | None = None) -> CheckOptions:
    """The :class:`~contourqa.check.CheckOptions` of one run, validated.

    Parameters
    ----------
    prescription_gy : float, optional
        Prescription dose in Gy (overrides the plan's; scales RELATIVE doses).
    roles : path, optional
        TOML file mapping ROI names to roles.
    metrics : sequence of str, optional
        DVH metrics (default: the engine's).
    level : str, optional
        Treated vertebra (``"T10"``) when the ROI names do not say.
    compute_dvh : bool
        False for a contouring review without dose (no dose checks).
    keep_media : bool
        Keep the arrays the HTML and PDF pictures need.
    constraints : str or sequence of str
        Constraint set names, comma-separated or a sequence; ``"auto"``.
    constraint_files : sequence of path
        Institutional constraint sets.
    prior_courses : sequence of str
        Prior courses, ``"30Gy/10fx,cord_max=28Gy,date=2023-05-01"``.
    prior_doses : sequence of path
        Prior RTDOSE files, one per prior course.
    assume_prior_cord_max : bool
        For a prior course without ``cord_max`` or RTDOSE, assume a conservative
        prior cord maximum (labelled; see ``DoseCheckOptions``).
    use_unconfirmed : bool
    alpha_beta_gy : ``KEY=GY`` strings or mapping
        alpha/beta overrides (``tumour=10``), Gy.
    gtv_dmin_variant, ptv_coverage_variant : str
    cord_compromise : bool
    dose_grid_max_spacing_mm : float, optional
    mode : {"auto", "upfront", "postop"}
    profile : path, optional
        Institutional rule profile (TOML).
    waivers : sequence of str
        ``CODE[@ROI]=REASON``.
    waiver_files : sequence of path
        TOML files of ``[[waiver]]`` tables.
    variants : sequence of str
        Optional rule variants.
    asia_grade, bilsky_grade, histology, prior_rt_overlap
        Clinical inputs of the post-operative rules.
    age_years, sins_total, vertebral_body_involved_percent, lytic, baseline_vcf, deformity
        VCF risk factors (None: unknown or measured from the images).

    Raises
    ------
    OptionsError
        A value that cannot be used; :class:`~contourqa.rules.RuleConfigError` for
        the rule options (unknown rule code, key or variant, a waiver without reason).
    """
    from contourqa.dose_checks import DoseCheckOptions, PatientFactors, selected_sets
    from contourqa.radiobiology import Course
    from contourqa.rules import (
        RuleConfigError,
        RuleOptions,
        load_profile,
        load_waivers,
        parse_waiver,
        validate_rule_options,
    )
    from contourqa.rules.model import Profile
    from contourqa.structures import load_mapping

    sets = tuple(s.strip() for s in constraints.split(",") if s.strip()) \
        if isinstance(constraints, str) else tuple(constraints)
    try:
        dose = DoseCheckOptions(
            constraint_sets=sets or ("auto",),
            constraint_files=tuple(Path(f) for f in constraint_files),
            prior_courses=tuple(Course.parse(c) for c in prior_courses),
            prior_dose_paths=tuple(Path(f) for f in prior_doses),
            assume_prior_cord_max=assume_prior_cord_max,
            use_unconfirmed=use_unconfirmed, cord_compromise=cord_compromise,
            alpha_beta_gy=_alpha_beta(alpha_beta_gy), gtv_dmin_variant=gtv_dmin_variant,
            ptv_coverage_variant=ptv_coverage_variant,
            dose_grid_max_spacing_mm=dose_grid_max_spacing_mm,
            patient=PatientFactors(age_years=age_years, lytic=lytic, baseline_vcf=baseline_vcf,
                                   deformity=deformity, sins_total=sins_total,
                                   vertebral_body_involved_percent=vertebral_body_involved_percent))
        selected_sets(dose)
    except RuleConfigError:
        raise
    except ValueError as exc:
        raise OptionsError(str(exc)) from exc
    all_waivers = [parse_waiver(w) for w in waivers]
    for path in waiver_files:
        all_waivers += load_waivers(path)
    try:
        rules = RuleOptions(mode=mode, profile=load_profile(profile) if profile else Profile(),
                            waivers=all_waivers, variants=tuple(variants), asia_grade=asia_grade,
                            bilsky_grade=bilsky_grade, histology=histology,
                            prior_rt_overlap=prior_rt_overlap)
    except RuleConfigError:
        raise
    except ValueError as exc:
        raise RuleConfigError(str(exc)) from exc
    validate_rule_options(rules, constraint_files=constraint_files)
    sectors = build_sector_options(level=level, profile=rules.profile) \
        if level is not None or rules.profile.sectors else None
    return CheckOptions(prescription_gy=prescription_gy,
                        role_mapping=load_mapping(roles) if roles is not None else None,
                        metrics=tuple(metrics) if metrics else None, compute_dvh=compute_dvh,
                        dose_checks=dose, level=level, rules=rules, keep_media=keep_media,
                        sectors=sectors)


def build_sector_options(*, level: str | None = None, profile: Profile | str | Path | None = None
                         ) -> SectorOptions:
    """The sector analysis's options (``contourqa check`` and ``contourqa sectors``):
    ``--level`` and a profile's ``[sectors]`` table over the built-in values.

    Raises
    ------
    OptionsError
        A level that is not a vertebra.
    RuleConfigError
        An unreadable profile, or an unknown key or bad value in its ``[sectors]``
        table (named with the file).
    """
    from contourqa.rules import RuleConfigError, load_profile
    from contourqa.rules.model import Profile
    from contourqa.sectors import SectorOptions

    try:
        base = SectorOptions(level=level)
    except ValueError as exc:
        raise OptionsError(f"--level: {exc}") from exc
    if profile is None:
        return base
    loaded = profile if isinstance(profile, Profile) else load_profile(profile)
    if not loaded.sectors:
        return base
    try:
        return SectorOptions.from_mapping(loaded.sectors, level=base.level,
                                          where=f"Profile {loaded.origin}: [sectors]")
    except ValueError as exc:
        raise RuleConfigError(str(exc)) from exc
