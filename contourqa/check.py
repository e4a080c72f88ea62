"""The check pipeline: discover cases under a path, load each, evaluate, report.

One broken case never stops the others: each case ends with a :class:`CaseReport`,
and a case that could not be loaded at all gets a report whose checks say why.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from contourqa.anatomy.density import lytic_factor
from contourqa.case import Case, SeriesCache, load_case
from contourqa.errors import ContourQAError, NoCaseFoundError
from contourqa.findings import Finding, Status
from contourqa.io.discovery import CaseFiles, DicomIndex, discover
from contourqa.dose_checks import DoseCheckOptions, evaluate_dose_checks
from contourqa.report.media import SectorPicture
from contourqa.report.record import CaseInfo, CaseReport, StructureInfo
from contourqa.rules import RuleOptions, apply_profile, evaluate_contouring_rules
from contourqa.sectors import SectorAnalysis, SectorOptions, analyse_sectors
from contourqa.structures import RoleTable, assign_roles

__all__ = ["CheckOptions", "CheckRun", "check", "check_case"]


@dataclass(frozen=True)
class CheckOptions:
    """Per-run options (no global settings: several checks may run at once)."""

    prescription_gy: float | None = None
    role_mapping: Mapping[str, Any] | None = None
    metrics: tuple[str, ...] | None = None       # None: the DVH engine's defaults
    compute_dvh: bool = True
    dvh_uncertainty: bool = True                 # discretisation band per metric
    dose_checks: DoseCheckOptions | None = None  # None: DoseCheckOptions() defaults
    level: str | None = None                     # treated vertebra, e.g. "T10" (--level)
    # sector analysis (a profile's [sectors] table); None: SectorOptions(level=level)
    sectors: SectorOptions | None = None
    rules: RuleOptions | None = None             # None: RuleOptions() (mode auto)
    keep_media: bool = False                     # attach ReportMedia (HTML/PDF pictures)
    # processes sharing the DVH step (forked; the results do not depend on it, so the
    # audit leaves it out of its options hash); the audit and the node run cases in
    # parallel instead and keep 1
    dvh_workers: int = field(default=1, metadata={"result_neutral": True})


@dataclass(frozen=True)
class CheckRun:
    """All cases found under one path."""

    root: Path
    index: DicomIndex
    reports: tuple[CaseReport, ...]
    problems: tuple[Finding, ...] = field(default=())

    @property
    def failed(self) -> bool:
        return any(r.failed for r in self.reports)


def _sector_options(options: CheckOptions) -> SectorOptions:
    """``options.sectors`` with ``options.level`` where the sector options name none."""
    sectors = options.sectors if options.sectors is not None else SectorOptions()
    if options.level is not None and sectors.level is None:
        sectors = replace(sectors, level=options.level)
    return sectors


def _case_info(case: Case) -> CaseInfo:
    image = None
    if case.image is not None:
        im = case.image
        image = {"modality": im.modality, "n_slices": im.n_slices,
                 "series_instance_uid": im.series_instance_uid,
                 "patient_position": im.patient_position,
                 "slice_spacing_mm": round(im.slice_spacing_mm, 4),
                 "slice_thickness_mm": im.slice_thickness_mm,
                 "pixel_spacing_mm": [round(float(v), 4) for v in im.geometry.spacing_mm[:2]],
                 "uniform_spacing": im.uniform_spacing}
    dose = None
    if case.dose is not None:
        g = case.dose.geometry
        # shape and spacing in one order: columns, rows, frames (x, y, z)
        dose = {"shape": [int(v) for v in g.shape[::-1]],
                "spacing_mm": [round(float(v), 4) for v in g.spacing_mm],
                "max_gy": round(case.dose.max_gy, 4), "summation_type": case.dose.summation_type}
    return CaseInfo(
        name=case.files.name, patient_id=case.patient_id,
        plan_label=case.plan.label if case.plan else None, n_fractions=case.n_fractions,
        prescription_gy=case.prescription_gy,
        prescription_source=case.plan.prescription_source.value if case.plan else None,
        frame_of_reference_uid=case.frame_of_reference_uid,
        files=tuple(str(p) for p in case.files.files), image=image, dose_grid=dose)


def _roles(case: Case, options: CheckOptions) -> RoleTable:
    if case.structure_set is None:
        return RoleTable(())
    return assign_roles(case.structure_set.rois, mapping=options.role_mapping)


def check_case(files: CaseFiles, *, options: CheckOptions = CheckOptions(),
               series_cache: SeriesCache | None = None) -> CaseReport:
    """Load and check one case; never raises for bad input."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    case = load_case(files, prescription_gy=options.prescription_gy, series_cache=series_cache)
    timings["load"] = time.perf_counter() - t0
    checks: list[Finding] = list(case.problems)
    rule_options = options.rules or RuleOptions()

    t0 = time.perf_counter()
    table = _roles(case, options)
    roles = {a.roi_number: a for a in table.assignments if a.roi_number is not None}
    checks += list(table.problems)
    timings["roles"] = time.perf_counter() - t0

    sec = None
    not_spine = False
    extra: dict[str, Any] = {}
    if case.structure_set is not None:
        t0 = time.perf_counter()
        sec = analyse_sectors(case, table, options=_sector_options(options))
        checks += list(sec.findings)
        timings["sectors"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        rule_options = _with_epidural(case, table, rule_options, checks, extra)
        timings["epidural"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        checks += _fusion(case, table, rule_options, options, extra)
        timings["fusion"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        rule_findings = evaluate_contouring_rules(case, table, sec, options=rule_options,
                                                  apply_levels=False)
        # not a spine target: the sector findings (a GTV outside the vertebrae is
        # expected, not missing data) fold with the other spine checks, below
        not_spine = any(f.code == "rules.spine_scope" for f in rule_findings)
        checks += rule_findings
        timings["contouring_rules"] = time.perf_counter() - t0

    result = None
    dvh_values: dict[str, dict[str, float | None]] = {}
    conventions: dict[str, Any] = {}
    volumes: dict[int, float] = {}
    if case.structure_set is not None and case.dose is not None and options.compute_dvh:
        from contourqa.dvh import DEFAULT_METRICS, dvh_report

        t0 = time.perf_counter()
        try:
            result = dvh_report(case.structure_set, case.dose,
                                metrics=options.metrics or DEFAULT_METRICS,
                                prescription_gy=case.prescription_gy,
                                uncertainty=options.dvh_uncertainty, workers=options.dvh_workers)
        except (ContourQAError, ValueError, MemoryError) as exc:
            # Scoped to the DVH step and reported: the rest of the case still stands.
            checks.append(Finding(code="dvh.failed", status=Status.NOT_EVALUATED,
                                  message=f"DVH computation failed: {type(exc).__name__}: {exc}",
                                  files=case.dose.paths))
            result = None
    if result is not None:
        dvh_values = result.values
        conventions = dict(result.conventions)
        extra["dvh_uncertainty"] = result.to_json()["uncertainty"]
        extra["dvh_reconciliation"] = [r.to_json() for r in result.reconciliations]
        volumes = {d.roi_number: d.volume_cc for d in result.dvhs.values()}
        checks += list(result.problems)
        timings["dvh"] = time.perf_counter() - t0
    elif case.structure_set is not None and case.dose is None:
        from contourqa.dvh import structure_volumes_cc

        try:
            volumes = structure_volumes_cc(case.structure_set)
        except (ContourQAError, ValueError) as exc:
            checks.append(Finding(code="dvh.volume_failed", status=Status.NOT_EVALUATED,
                                  message=f"ROI volumes could not be computed: {exc}"))
        checks.append(Finding(
            code="dvh.no_dose", status=Status.NOT_EVALUATED,
            message="No usable dose grid: DVH metrics and dose checks are not evaluated."))

    t0 = time.perf_counter()
    checks += evaluate_dose_checks(case, table, result,
                                   options=_with_image_findings(options.dose_checks, sec))
    timings["dose_checks"] = time.perf_counter() - t0
    if case.structure_set is not None and case.dose is not None and options.compute_dvh:
        t0 = time.perf_counter()
        checks += _plan_quality(case, table, rule_options, options, extra)
        timings["plan_quality"] = time.perf_counter() - t0
    if not_spine:
        checks = _fold_spine_checks(checks)
    # the profile's levels and the waivers, once, on every finding (dose checks too)
    checks = apply_profile(checks, rule_options)

    structures = []
    if case.structure_set is not None:
        for roi in case.structure_set.rois:
            a = roles.get(roi.number)
            structures.append(StructureInfo(
                name=roi.name, number=roi.number, role=a.role.value if a else None,
                volume_cc=volumes.get(roi.number), interpreted_type=roi.interpreted_type,
                level=getattr(a, "level", None), evidence=getattr(a, "evidence", None)))
    media = None
    if options.keep_media:
        from contourqa.report.media import ReportMedia

        media = ReportMedia(case=case, dvhs=dict(result.dvhs) if result is not None else {},
                            sector_pictures=_sector_pictures(sec, case))
    return CaseReport(case=_case_info(case), structures=tuple(structures), checks=tuple(checks),
                      dvh=dvh_values, dvh_conventions=conventions,
                      sectors=None if sec is None else sec.vertebrae,
                      extra=extra, timings_s=timings, media=media)


def _fold_spine_checks(checks: list[Finding]) -> list[Finding]:
    """The checks outside the contouring rules that concern spine targets only
    (``[spine_target] spine_only_checks`` of ``rules/data/mode.toml``), folded as not
    applicable on a target that involves no vertebra."""
    from contourqa.rules.model import rule_data

    prefixes = tuple(rule_data("mode")["spine_target"].get("spine_only_checks", ()))
    return [replace(f, status=Status.NOT_APPLICABLE, message=f"Not a spine target (see "
                    f"rules.spine_scope): not applicable. {f.message}")
            if f.code.startswith(prefixes) and f.status is not Status.NOT_APPLICABLE else f
            for f in checks]


def _with_epidural(case: Case, table: RoleTable, rule_options: RuleOptions,
                   checks: list[Finding], extra: dict[str, Any]) -> RuleOptions:
    """Measure the epidural geometry (findings appended to ``checks``, the section into
    ``extra``) and, when the user gave no Bilsky grade, the rule options with the grade
    estimated from the contours (labelled as such in the findings that use it)."""
    from contourqa.rules.epidural import compute_epidural_geometry, epidural_findings

    try:
        eg = compute_epidural_geometry(case, table, options=rule_options)
    except (ContourQAError, ValueError, MemoryError) as exc:
        checks.append(Finding(code="epidural.cord_gap", status=Status.NOT_EVALUATED,
                              message=f"Epidural geometry could not be measured: "
                                      f"{type(exc).__name__}: {exc}"))
        return rule_options
    if eg is None:
        return rule_options
    extra["epidural_geometry"] = eg.to_json()
    checks += epidural_findings(eg, options=rule_options)
    from contourqa.rules.conus import compute_conus, conus_findings

    try:
        reading, has_cauda = compute_conus(case, table)
    except (ContourQAError, ValueError) as exc:
        checks.append(Finding(code="conus.level", status=Status.NOT_EVALUATED,
                              message=f"The conus could not be located: {exc}"))
        return rule_options if rule_options.bilsky_grade is not None or eg.worst_bilsky is None \
            else replace(rule_options, bilsky_grade=eg.worst_bilsky, bilsky_estimated=True)
    if reading is not None:
        extra["conus"] = reading.to_json()
        checks += conus_findings(reading, has_cauda_roi=has_cauda, options=rule_options)
    if rule_options.bilsky_grade is None and eg.worst_bilsky is not None:
        return replace(rule_options, bilsky_grade=eg.worst_bilsky, bilsky_estimated=True)
    return rule_options


def _fusion(case: Case, table: RoleTable, rule_options: RuleOptions, options: CheckOptions,
            extra: dict[str, Any]) -> list[Finding]:
    """The MR-CT fusion findings at the treated level; the section into ``extra``."""
    from contourqa.rules.fusion import FUSION_CODE, compute_fusion, fusion_findings

    try:
        reading = compute_fusion(case, table, level=options.level, options=rule_options)
    except (ContourQAError, ValueError, MemoryError) as exc:
        return [Finding(code=FUSION_CODE, status=Status.NOT_EVALUATED,
                        message=f"The MR-CT fusion could not be measured: "
                                f"{type(exc).__name__}: {exc}")]
    extra["fusion"] = reading.to_json()
    return fusion_findings(reading, options=rule_options)


def _plan_quality(case: Case, table: RoleTable, rule_options: RuleOptions,
                  options: CheckOptions, extra: dict[str, Any]) -> list[Finding]:
    """The plan-quality findings (reported, never judged); the section into ``extra``."""
    from contourqa.rules.plan_quality import compute_plan_quality, plan_quality_findings

    try:
        pq = compute_plan_quality(case, table, options=rule_options, workers=options.dvh_workers)
    except (ContourQAError, ValueError, MemoryError) as exc:
        # reported quantities only: a failure is shown, and judges nothing
        return [Finding(code="plan.conformity", status=Status.NOT_APPLICABLE,
                        message=f"Plan quality could not be computed: {type(exc).__name__}: "
                                f"{exc}")]
    if pq is None:
        return []
    extra["plan_quality"] = pq.to_json()
    return plan_quality_findings(pq)


def _with_image_findings(dose_options: DoseCheckOptions | None,
                         sec: SectorAnalysis | None) -> DoseCheckOptions:
    """Fill the VCF factors the images show unless the user stated them: the share of the
    vertebral body taken by the GTV (sector analysis) and a lytic GTV (CT density).  Each
    filled factor carries its evidence, so the flag says where it came from."""
    opts = dose_options or DoseCheckOptions()
    if sec is None:
        return opts
    patient = opts.patient
    evidence = dict(patient.evidence)
    body = [(v.gtv_sector_pct[0], v.level) for v in sec.vertebrae if v.gtv_sector_cc[0] > 0]
    if body and patient.vertebral_body_involved_percent is None:
        pct, level = max(body, key=lambda b: b[0])
        patient = replace(patient, vertebral_body_involved_percent=round(pct, 1))
        evidence["vertebral_body_involved_percent"] = \
            f"from the sector analysis, {level or 'unnamed vertebra'}"
    lytic, how = lytic_factor([(v.level, v.density) for v in sec.vertebrae
                               if v.density is not None])
    if how is not None and patient.lytic is None:
        patient = replace(patient, lytic=lytic)
        evidence["lytic"] = how
    elif how is not None and lytic is not None and lytic != patient.lytic:
        evidence["lytic"] = f"stated; the images disagree: {how}"
    return replace(opts, patient=replace(patient, evidence=evidence))


def _sector_pictures(sec: SectorAnalysis | None, case: Case) -> tuple[SectorPicture, ...]:
    """Sector maps of the involved levels, rendered by the sector analysis."""
    if sec is None or not sec.vertebrae:
        return ()
    import tempfile

    from contourqa.report.media import SectorPicture
    from contourqa.sector_figure import sector_png

    pictures = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = sector_png(sec, tmp, ct=case.image.pixels if case.image is not None else None)
        for v, path in zip(sec.vertebrae, paths):
            pictures.append(SectorPicture(
                level=v.level, png=Path(path).read_bytes(),
                caption=f"ISRC sectors of {v.level or 'an unnamed vertebra'} on the slice with "
                        f"most GTV; GTV sectors {', '.join(map(str, v.gtv_sectors)) or 'none'}."))
    return tuple(pictures)


def _broken_case_report(files: CaseFiles, exc: Exception) -> CaseReport:
    info = CaseInfo(name=files.name, patient_id=None, plan_label=None, n_fractions=None,
                    prescription_gy=None, prescription_source=None, frame_of_reference_uid=None,
                    files=tuple(str(p) for p in files.files))
    what = str(exc) if isinstance(exc, ContourQAError) else f"{type(exc).__name__}: {exc}"
    finding = Finding(code="input.case_unusable", status=Status.NOT_EVALUATED,
                      message=f"The case could not be checked: {what[:500]}",
                      files=tuple(files.files[:3]))
    return CaseReport(case=info, structures=(), checks=(*files.problems, finding))


def check(path: str | Path, *, options: CheckOptions = CheckOptions(),
          progress: Callable[[int, int, str], None] | None = None) -> CheckRun:
    """Check every case under ``path``.

    Raises
    ------
    NoCaseFoundError
        ``path`` holds no plan, structure set or dose.
    DicomReadError
        ``path`` does not exist.
    """
    root = Path(path)
    index, cases = discover(root)
    if not cases:
        what = ", ".join(sorted({o.modality for o in index.objects})) or "no DICOM objects"
        raise NoCaseFoundError(
            f"{root}: no RT Plan, RT Structure Set or RT Dose found (found: {what}); "
            "there is nothing to check.")
    reports = []
    cache = SeriesCache()
    for n, files in enumerate(cases):
        if progress:
            progress(n, len(cases), files.name)
        try:
            reports.append(check_case(files, options=options, series_cache=cache))
        except Exception as exc:  # noqa: BLE001
            # A defect in one case's data that a reader did not turn into a finding, or
            # one of contourqa's own met on it: record it on that case (an error
            # outcome: the check of this case did not complete) and go on with the others.
            reports.append(_broken_case_report(files, exc))
    return CheckRun(root=root, index=index, reports=tuple(reports), problems=index.problems)
