"""A loaded case: the plan, structure set, images, dose and registrations of one check.

:func:`load_case` never raises for bad content: every object that cannot be read
becomes a finding and the case goes on without it, so that the report says what
could not be evaluated.  Only a case with nothing usable at all is refused by the
caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from contourqa.errors import ContourQAError
from contourqa.findings import Finding, Status, input_problem
from contourqa.io.discovery import CaseFiles
from contourqa.io.images import ImageSeries, read_image_series
from contourqa.io.registration import Registration, read_registration
from contourqa.io.rtdose import DoseGrid, read_dose, sum_doses
from contourqa.io.rtplan import Plan, PrescriptionSource, read_plan
from contourqa.io.rtstruct import StructureSet, read_structure_set

__all__ = ["Case", "SeriesCache", "load_case"]


@dataclass(frozen=True, eq=False)
class Case:
    """Everything one check evaluates.  Any part may be missing (``None``); the
    findings in ``problems`` say why."""

    files: CaseFiles
    plan: Plan | None
    structure_set: StructureSet | None
    image: ImageSeries | None
    dose: DoseGrid | None
    registrations: tuple[Registration, ...] = ()
    secondary_images: tuple[ImageSeries, ...] = ()
    problems: tuple[Finding, ...] = field(default=())

    @property
    def n_fractions(self) -> int | None:
        return self.plan.n_fractions if self.plan else None

    @property
    def prescription_gy(self) -> float | None:
        return self.plan.prescription_gy if self.plan else None

    @property
    def frame_of_reference_uid(self) -> str | None:
        for obj in (self.image, self.structure_set, self.plan, self.dose):
            if obj is not None and obj.frame_of_reference_uid:
                return obj.frame_of_reference_uid
        return None

    @property
    def patient_id(self) -> str | None:
        for obj in (self.plan, self.structure_set, self.image):
            if obj is not None and obj.patient_id:
                return obj.patient_id
        return None


def _unreadable(kind: str, exc: ContourQAError, path: Path) -> Finding:
    return input_problem(f"unreadable_{kind}", str(exc), path)


def _beam_doses_incomplete(doses: list[DoseGrid], plan: Plan | None) -> str | None:
    """Why the beam doses do not make up the plan's fraction group, or ``None``.

    Each beam dose must name its beam (ReferencedRTPlanSequence >
    ReferencedFractionGroupSequence > ReferencedBeamSequence), every beam of the
    plan's first fraction group must have exactly one dose, and no other dose kind
    may be mixed in.
    """
    kinds = sorted({d.summation_type for d in doses})
    if kinds != ["BEAM"]:
        return f"beam doses are mixed with {', '.join(k for k in kinds if k != 'BEAM')} doses"
    if plan is None or not plan.beam_numbers:
        return ("the plan's beams are unknown (no RT Plan, or no ReferencedBeamSequence in its "
                "first fraction group), so the beam doses cannot be shown to be complete")
    unnamed = [d.paths[0].name for d in doses
               if not [b for b in d.referenced_beam_numbers if b >= 0]]
    if unnamed:
        return f"beam dose(s) {', '.join(unnamed)} name no beam of the plan"
    counts: dict[int, int] = {}
    for d in doses:
        for b in set(d.referenced_beam_numbers):
            counts[b] = counts.get(b, 0) + 1
    planned = set(plan.beam_numbers)
    problems = []
    if (absent := sorted(planned - set(counts))):
        problems.append("no dose for " + ", ".join(f"beam {b}" for b in absent)
                        + f" of the plan's {len(planned)} beams")
    if (twice := sorted(b for b, k in counts.items() if k > 1)):
        problems.append("more than one dose for " + ", ".join(f"beam {b}" for b in twice))
    if (foreign := sorted(set(counts) - planned)):
        problems.append("doses for " + ", ".join(f"beam {b}" for b in foreign)
                        + ", which the plan's first fraction group does not list")
    return "; ".join(problems) or None


def _choose_dose(doses: list[DoseGrid], plan: Plan | None, problems: list[Finding]) -> DoseGrid | None:
    """The plan's total dose: a PLAN dose if there is one, else the sum of beam doses,
    scaled by the number of fractions when the grid holds one fraction's dose."""
    if not doses:
        return None
    plan_doses = [d for d in doses if d.summation_type in ("PLAN", "MULTI_PLAN")]
    if len(plan_doses) > 1:
        problems.append(input_problem(
            "ambiguous_dose", f"{len(plan_doses)} plan doses reference this plan; none is chosen.",
            *[d.paths[0] for d in plan_doses]))
        return None
    if plan_doses:
        if len(doses) > 1:
            problems.append(input_problem(
                "extra_doses", f"{len(doses) - 1} beam or fraction doses ignored: the plan dose "
                "is used.", *[p for d in doses if d not in plan_doses for p in d.paths],
                status=Status.WARN))
        dose = plan_doses[0]
    else:
        if any(d.summation_type == "BEAM" for d in doses):
            missing = _beam_doses_incomplete(doses, plan)
            if missing:
                problems.append(input_problem(
                    "incomplete_beam_doses", f"{missing}: the beam doses are not summed and "
                    "dose checks are not evaluated (a partial dose would understate every "
                    "organ-at-risk dose).", *[d.paths[0] for d in doses]))
                return None
        try:
            dose = sum_doses(doses) if len(doses) > 1 else doses[0]
        except ContourQAError as exc:
            problems.append(input_problem("dose_sum_failed", str(exc), *[d.paths[0] for d in doses]))
            return None
        if len(doses) > 1:
            problems.append(input_problem(
                "summed_doses", f"{len(doses)} {doses[0].summation_type} doses summed into the "
                "plan dose.", *[d.paths[0] for d in doses], status=Status.WARN))
    if dose.summation_type == "FRACTION":
        if plan is None or not plan.n_fractions:
            problems.append(input_problem(
                "fraction_dose_unscaled", "the dose grid holds one fraction's dose and the number "
                "of fractions is unknown: dose checks are not evaluated.", *dose.paths))
            return None
        scaled = dose.dose_gy * plan.n_fractions
        scaled.flags.writeable = False
        dose = replace(dose, dose_gy=scaled, summation_type="PLAN")
        problems.append(input_problem(
            "fraction_dose_scaled", f"the dose grid holds one fraction's dose; multiplied by "
            f"{plan.n_fractions} fractions.", *dose.paths, status=Status.WARN))
    return dose


def _contours_outside(ss: StructureSet, image: ImageSeries) -> list[Finding]:
    """One finding naming every ROI with contour points beyond the image volume."""
    outside = []
    for roi in ss.rois:
        if roi.is_empty:
            continue
        pts = np.concatenate([c.points_mm for c in roi.closed_contours])
        inside = image.geometry.contains(pts, tol_voxels=0.5)
        if not inside.all():
            outside.append(f"{roi.name} ({1.0 - float(inside.mean()):.0%})")
    if not outside:
        return []
    return [input_problem(
        "contour_outside_image", f"{len(outside)} ROI(s) have contour points outside the image "
        f"volume (share of points): {', '.join(outside)}.", ss.path, image.paths[0],
        status=Status.WARN)]


class SeriesCache:
    """Keeps the most recently read image series, so that cases sharing one CT (several
    plans or structure sets on one scan) read it once.  One entry: memory stays at
    one volume."""

    def __init__(self) -> None:
        self._key: tuple[Path, ...] | None = None
        self._series: ImageSeries | None = None

    def read(self, paths: list[Path]) -> ImageSeries:
        key = tuple(sorted(paths))
        if key != self._key or self._series is None:
            self._series = read_image_series(paths)
            self._key = key
        return self._series


def load_case(files: CaseFiles, *, prescription_gy: float | None = None,
              load_secondary: bool = True, series_cache: SeriesCache | None = None) -> Case:
    """Read every object of a case.  See module docstring for the error policy.

    Parameters
    ----------
    files : a case from :func:`contourqa.io.discovery.find_cases`.
    prescription_gy : float, optional
        Overrides the plan's prescription, and scales RELATIVE doses.
    load_secondary : bool
        Also read MR/PET series linked by registration (memory: one more volume each).
    series_cache : SeriesCache, optional
        Shared between the cases of one run.
    """
    read_series = series_cache.read if series_cache is not None else read_image_series
    problems: list[Finding] = list(files.problems)
    plan = None
    if files.plan is not None:
        try:
            plan = read_plan(files.plan.path)
            problems.extend(plan.problems)
            if prescription_gy is not None:
                plan = replace(plan, prescription_gy=float(prescription_gy),
                               prescription_source=PrescriptionSource.USER)
        except ContourQAError as exc:
            problems.append(_unreadable("plan", exc, files.plan.path))
    ss = None
    if files.structure_set is not None:
        try:
            ss = read_structure_set(files.structure_set.path)
            problems.extend(ss.problems)
        except ContourQAError as exc:
            problems.append(_unreadable("structure_set", exc, files.structure_set.path))
    image = None
    if files.image_series:
        try:
            image = read_series([o.path for o in files.image_series])
            problems.extend(image.problems)
        except ContourQAError as exc:
            problems.append(_unreadable("image_series", exc, files.image_series[0].path))
    doses = []
    rx = prescription_gy if prescription_gy is not None else (plan.prescription_gy if plan else None)
    for obj in files.doses:
        try:
            doses.append(read_dose(obj.path, prescription_gy=rx))
            problems.extend(doses[-1].problems)
        except ContourQAError as exc:
            problems.append(_unreadable("dose", exc, obj.path))
    dose = _choose_dose(doses, plan, problems)
    regs = []
    for obj in files.registrations:
        try:
            reg = read_registration(obj.path)
            regs.append(reg)
            problems.extend(reg.problems)
        except ContourQAError as exc:
            problems.append(_unreadable("registration", exc, obj.path))
    secondary = []
    if load_secondary:
        for series in files.secondary_series:
            try:
                secondary.append(read_image_series([o.path for o in series]))
            except ContourQAError as exc:
                problems.append(_unreadable("image_series", exc, series[0].path))
    if ss is not None and image is not None:
        problems.extend(_contours_outside(ss, image))
    return Case(files=files, plan=plan, structure_set=ss, image=image, dose=dose,
                registrations=tuple(regs), secondary_images=tuple(secondary),
                problems=tuple(problems))
