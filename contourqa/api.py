"""The typed Python API: what a script in the clinic's workflow calls.

:func:`check` checks every case in a folder (or in a list of files) and returns one
:class:`~contourqa.report.record.CaseReport` per case; :func:`dvh` evaluates DVH
metrics of a structure set on a dose.  Both are thin facades over
:func:`contourqa.check.check_case` and :func:`contourqa.dvh.dvh_report`; the DICOM
node calls the same functions.

Examples
--------
>>> import contourqa
>>> from contourqa.demo import demo_case_path
>>> reports = contourqa.check(demo_case_path())
>>> [r.case.plan_label for r in reports]
['T10 SBRT']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from contourqa.check import CheckOptions
from contourqa.errors import NoCaseFoundError

if TYPE_CHECKING:
    from contourqa.dvh import DVHMetric, DVHReport
    from contourqa.io.discovery import CaseFiles, DicomIndex
    from contourqa.io.rtdose import DoseGrid
    from contourqa.io.rtstruct import StructureSet
    from contourqa.report.record import CaseReport

__all__ = ["Mode", "check", "check_cases", "dvh"]

#: ``"full"``: every check; ``"contours"``: no DVH, so no dose checks (a contouring
#: review before the dose is calculated).
Mode = Literal["full", "contours"]

PathLike = str | Path


def _options(*, mode: Mode, constraints: str | Sequence[str], prescription_gy: float | None,
             level: str | None, metrics: Sequence[str] | None, roles: PathLike | None,
             keep_media: bool) -> CheckOptions:
    from contourqa.options import build_check_options

    if mode not in ("full", "contours"):
        raise ValueError(f'Argument "mode" must be "full" or "contours", not {mode!r}.')
    return build_check_options(constraints=constraints, prescription_gy=prescription_gy,
                               roles=roles, metrics=metrics, level=level,
                               compute_dvh=mode == "full", keep_media=keep_media)


def _index_files(paths: Sequence[PathLike]) -> DicomIndex:
    """One index over a list of files (duplicate SOP instances keep the first)."""
    import os

    from contourqa.io.discovery import DicomIndex, index_folder

    if not paths:
        raise ValueError('Argument "path_or_files" is an empty list; give a folder or files.')
    from contourqa.findings import Finding
    from contourqa.io.discovery import IndexedObject

    objects: list[IndexedObject] = []
    problems: list[Finding] = []
    ignored = 0
    seen: set[str | None] = set()
    for p in paths:
        if Path(p).is_dir():
            raise ValueError(f'Argument "path_or_files": {p} is a folder; give a list of '
                             "files, or the folder alone.")
        sub = index_folder(p)
        for o in sub.objects:
            if o.sop_instance_uid and o.sop_instance_uid in seen:
                continue
            seen.add(o.sop_instance_uid)
            objects.append(o)
        problems += sub.problems
        ignored += sub.n_ignored_files
    root = Path(os.path.commonpath([str(Path(p).resolve().parent) for p in paths]))
    return DicomIndex(root=root, objects=tuple(objects), problems=tuple(problems),
                      n_ignored_files=ignored)


def check_cases(path_or_files: PathLike | Sequence[PathLike], *,
                options: CheckOptions | None = None
                ) -> list[tuple[CaseFiles, CaseReport]]:
    """Check every case and return each case's files with its report.

    Same as :func:`check`, keeping the :class:`~contourqa.io.discovery.CaseFiles` of
    each case (the DICOM node names report folders after the plan's UID).

    Raises
    ------
    NoCaseFoundError
        No plan, structure set or dose among the inputs.
    DicomReadError
        A path that does not exist.
    """
    from contourqa.case import SeriesCache
    from contourqa.check import _broken_case_report, check_case
    from contourqa.errors import ContourQAError
    from contourqa.io.discovery import find_cases, index_folder

    if isinstance(path_or_files, (str, Path)):
        index = index_folder(path_or_files)
    else:
        index = _index_files(list(path_or_files))
    cases = find_cases(index)
    if not cases:
        what = ", ".join(sorted({o.modality for o in index.objects})) or "no DICOM objects"
        raise NoCaseFoundError(f"{index.root}: no RT Plan, RT Structure Set or RT Dose found "
                               f"(found: {what}); there is nothing to check.")
    options = options if options is not None else CheckOptions()
    cache = SeriesCache()
    out = []
    for files in cases:
        try:
            report = check_case(files, options=options, series_cache=cache)
        except (ContourQAError, ValueError, MemoryError) as exc:
            report = _broken_case_report(files, exc)
        out.append((files, report))
    return out


def check(path_or_files: PathLike | Sequence[PathLike], *, mode: Mode = "full",
          constraints: str | Sequence[str] = "auto", prescription_gy: float | None = None,
          level: str | None = None, metrics: Sequence[str] | None = None,
          roles: PathLike | None = None, keep_media: bool = False,
          options: CheckOptions | None = None) -> list[CaseReport]:
    """Check every case (plan, structure set, images, dose) found in the input.

    Parameters
    ----------
    path_or_files : str, Path or sequence of them
        A folder (searched recursively, any layout) or a list of DICOM files.
    mode : {"full", "contours"}
        ``"contours"`` skips the DVH and so the dose checks, which are then reported
        as not evaluated.
    constraints : str or sequence of str
        Constraint sets by name (``"auto"``: chosen by the number of fractions;
        ``"hytec2021"``, ``"tg101"``, ...).
    prescription_gy : float, optional
        Prescription dose in Gy; overrides the plan's.
    level : str, optional
        Treated vertebra, e.g. ``"T10"``, when the ROI names do not say.
    metrics : sequence of str, optional
        DVH metrics, e.g. ``("Dmax", "D0.035cc", "V12Gy")``; default: the engine's.
    roles : str or Path, optional
        TOML file mapping ROI names to roles.
    keep_media : bool
        Keep the loaded case and DVH curves on each report (HTML/PDF pictures).
    options : CheckOptions, optional
        Every option at once (build it with
        :func:`contourqa.options.build_check_options`: rule mode, profile, waivers,
        variants, prior courses, ...); then the keyword options above must be left
        alone.

    Returns
    -------
    list of CaseReport
        One per case, in discovery order; ``report.status`` is ``"pass"``,
        ``"warn"``, ``"fail"`` or ``"incomplete"``.

    Raises
    ------
    NoCaseFoundError
        Nothing to check in the input.
    DicomReadError
        A path that does not exist.
    ValueError
        An unknown ``mode`` or constraint set, or ``options`` given with other options.

    Examples
    --------
    >>> import contourqa
    >>> from contourqa.demo import demo_case_path
    >>> (report,) = contourqa.check(demo_case_path(), constraints="tg101")
    >>> report.case.n_fractions, report.case.prescription_gy
    (2, 24.0)
    >>> round(report.dvh["SpinalCord"]["Dmax"], 2)
    14.0
    >>> failed = [c.code for c in report.checks if c.status is contourqa.Status.FAIL]

    A list of files works too; a contouring review needs no dose:

    >>> files = sorted(demo_case_path().glob("*.dcm"))
    >>> (report,) = contourqa.check([f for f in files if f.name != "RD.dcm"], mode="contours")
    >>> report.dvh
    {}
    """
    if options is None:
        options = _options(mode=mode, constraints=constraints, prescription_gy=prescription_gy,
                           level=level, metrics=metrics, roles=roles, keep_media=keep_media)
    elif (mode, constraints, prescription_gy, level, metrics, roles, keep_media) != (
            "full", "auto", None, None, None, None, False):
        raise ValueError('Argument "options" replaces every other option; pass either '
                         "options=CheckOptions(...) or keyword options, not both.")
    return [report for _, report in check_cases(path_or_files, options=options)]


def dvh(structures: PathLike | StructureSet, dose: PathLike | DoseGrid, *,
        rois: Iterable[str] | None = None,
        metrics: Iterable[str | DVHMetric] | None = None,
        prescription_gy: float | None = None, uncertainty: bool = False) -> DVHReport:
    """DVH metrics of ROIs of a structure set on a dose grid.

    Parameters
    ----------
    structures : str, Path or StructureSet
        RTSTRUCT file, or one already read (:func:`contourqa.io.read_structure_set`).
    dose : str, Path or DoseGrid
        RTDOSE file, or one already read (:func:`contourqa.io.read_dose`).
    rois : iterable of str, optional
        ROI names; default every ROI with contours.  An unknown name raises
        ``KeyError`` listing the ROIs.
    metrics : iterable of str or DVHMetric, optional
        E.g. ``("Dmax", "D0.035cc", "D95%", "V12Gy")``; default the engine's
        (``contourqa.dvh.DEFAULT_METRICS``).  Doses in Gy, volumes in cc.
    prescription_gy : float, optional
        Needed by ``V<x>%`` metrics; scales RELATIVE doses.
    uncertainty : bool
        Also compute each metric's discretisation band (``report.bands``).

    Returns
    -------
    DVHReport
        ``values[roi][metric]`` (float or None with the reason in
        ``not_evaluated``), ``conventions``, ``dvhs`` (curves).

    Raises
    ------
    MetricError
        A metric string that cannot be parsed.

    Examples
    --------
    >>> import contourqa
    >>> from contourqa.demo import demo_case_path
    >>> case = demo_case_path()
    >>> result = contourqa.dvh(case / "RS.dcm", case / "RD.dcm", rois=["SpinalCord"],
    ...                        metrics=["Dmax", "D0.035cc"])
    >>> round(result.values["SpinalCord"]["Dmax"], 3)
    14.0
    """
    from contourqa.dvh import DEFAULT_METRICS, dvh_report
    from contourqa.io import read_dose, read_structure_set

    ss = read_structure_set(structures) if isinstance(structures, (str, Path)) else structures
    grid = read_dose(dose, prescription_gy=prescription_gy) if isinstance(dose, (str, Path)) \
        else dose
    return dvh_report(ss, grid, roi_names=rois,
                      metrics=DEFAULT_METRICS if metrics is None else metrics,
                      prescription_gy=prescription_gy, uncertainty=uncertainty)
