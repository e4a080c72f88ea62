"""Running checks away from the association threads.

:func:`check_study` is what a worker runs: it checks every case of one study folder
through the public API (:func:`contourqa.api.check`) and renders the reports to
bytes.  The node writes those bytes itself (atomically, within its storage bound),
so a worker killed half-way leaves nothing behind.  The same objects give the same
report bytes apart from the timings, so re-running a study is idempotent.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contourqa.check import CheckOptions
from contourqa.findings import Finding, Status
from contourqa.parallel import process_pool_context

__all__ = ["REPORT_SUFFIX", "CaseOutcome", "StudyOutcome", "WorkerPool", "case_key", "check_study",
           "describe_exception"]

#: File name extension of each report format.
REPORT_SUFFIX = {"json": "json", "html": "html", "pdf": "pdf", "csv": "csv", "sarif": "sarif.json"}


@dataclass(frozen=True)
class CaseOutcome:
    """One case's check, rendered.

    Attributes
    ----------
    key : str
        The plan's SOP instance UID (else the structure set's, else the dose's):
        the name of the case's report folder.
    name, status : str
    failed : tuple of (code, structure, message)
        The failed checks, for the document sent back to the DICOM world.
    reports : dict of format to bytes
    plan_uid : str or None
    record : object or None
        The audit database row (``contourqa.audit.db.CaseRecord``) when asked for.
    anchor_path : str or None
        The plan's file (else the structure set's): patient and study attributes of
        the document sent back are copied from it.
    error : str or None
        Why this case has no reports (status ``error``): its check or its rendering
        raised.
    """

    key: str
    name: str
    status: str
    failed: tuple[tuple[str, str | None, str], ...]
    reports: dict[str, bytes]
    plan_uid: str | None = None
    record: Any = None
    anchor_path: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class StudyOutcome:
    """Every case of one study; ``error`` when the study could not be checked at all."""

    study_uid: str
    generation: int
    cases: tuple[CaseOutcome, ...]
    check_s: float
    error: str | None = None


def case_key(report_files: Any) -> str:
    """Report folder name of a case: plan UID, else structure set UID, else dose UID."""
    for obj in (report_files.plan, report_files.structure_set,
                *(report_files.doses or ())):
        if obj is not None and obj.sop_instance_uid:
            return str(obj.sop_instance_uid)
    return "case"


def _anchor(files: Any) -> str | None:
    obj = files.plan or files.structure_set or (files.doses[0] if files.doses else None)
    return str(obj.path) if obj is not None else None


def _render(report: Any, formats: tuple[str, ...]) -> dict[str, bytes]:
    from contourqa.report import FILE_FORMATTERS

    out: dict[str, bytes] = {}
    by_name = {f.name: f for f in FILE_FORMATTERS}
    with tempfile.TemporaryDirectory(prefix="contourqa-node-") as tmp:
        for fmt in formats:
            path = Path(tmp) / f"report.{REPORT_SUFFIX[fmt]}"
            by_name[fmt]().write([report], path)
            out[fmt] = path.read_bytes()
    return out


def _audit_record(report: Any, key: str, study_uid: str, plan_uid: str | None,
                  options: CheckOptions) -> Any:
    from contourqa import __version__
    from contourqa.audit.db import utc_now
    from contourqa.audit.runner import options_json, record_from_report

    text = options_json(options)
    import hashlib

    base = {"case_key": f"node:{study_uid}:{key}", "unit_id": f"node:{study_uid}",
            "unit_stamp": None, "tool_version": __version__,
            "options_hash": hashlib.sha256(text.encode()).hexdigest()[:16],
            "options_json": text, "run_id": None, "checked_at": utc_now(),
            "plan_uid": plan_uid}
    return record_from_report(report, base)


def check_study(study_uid: str, generation: int, objects_dir: str, *, options: CheckOptions,
                formats: tuple[str, ...], missing: tuple[str, ...] = (),
                audit: bool = False) -> StudyOutcome:
    """Check every case in one study's folder and render its reports.

    Parameters
    ----------
    study_uid : str
    generation : int
        Echoed back, so the node knows which state of the study was checked.
    objects_dir : str
        Folder with the study's objects.
    options : CheckOptions
    formats : tuple of str
        Report formats to render.
    missing : tuple of str
        What the study lacked when it was checked (after the idle timeout); added to
        every case as a ``node.incomplete_study`` finding.
    audit : bool
        Also build the audit database row of each case.

    Returns
    -------
    StudyOutcome
        Never raises for bad input: an unusable study gives ``error``.
    """
    from contourqa.api import check_cases

    t0 = time.perf_counter()
    try:
        pairs = check_cases(objects_dir, options=options)
    except Exception as exc:  # noqa: BLE001
        # Whatever a hostile study makes the check raise is that study's error; the
        # node goes on with the next one.
        return StudyOutcome(study_uid, generation, (), time.perf_counter() - t0,
                            error=describe_exception(exc))
    cases = []
    for files, report in pairs:
        try:
            cases.append(_case_outcome(files, report, study_uid, options=options,
                                       formats=formats, missing=missing, audit=audit))
        except Exception as exc:  # noqa: BLE001
            cases.append(CaseOutcome(key=case_key(files), name=str(files.name),
                                     status="error", failed=(), reports={},
                                     error=describe_exception(exc)))
    return StudyOutcome(study_uid, generation, tuple(cases), time.perf_counter() - t0)


def describe_exception(exc: BaseException) -> str:
    """``Type: message (at file.py:line)``: an exception for a log line or an error row."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _case_outcome(files: Any, report: Any, study_uid: str, *, options: CheckOptions,
                  formats: tuple[str, ...], missing: tuple[str, ...],
                  audit: bool) -> CaseOutcome:
    """One case's outcome: the node's incomplete-study note, reports and audit row."""
    if missing:
        note = Finding(
            code="node.incomplete_study", status=Status.NOT_EVALUATED,
            message="The study was checked after its idle time without being complete: "
                    + "; ".join(missing) + ".", source="contourqa listen")
        report = dataclasses.replace(report, checks=(*report.checks, note))
    key = case_key(files)
    plan_uid = files.plan.sop_instance_uid if files.plan is not None else None
    failed = tuple((c.code, c.structure, c.message) for c in report.checks
                   if c.status is Status.FAIL)
    record = _audit_record(report, key, study_uid, plan_uid, options) if audit else None
    return CaseOutcome(key=key, name=report.case.name, status=report.status,
                       failed=failed, reports=_render(report, formats),
                       plan_uid=plan_uid, record=record, anchor_path=_anchor(files))


class WorkerPool:
    """A pool of check workers (processes by default) that can be rebuilt after a crash.

    Parameters
    ----------
    jobs : int
    kind : {"process", "thread"}
        Processes start with ``forkserver`` (never ``fork``: the node is
        multi-threaded).
    """

    def __init__(self, *, jobs: int, kind: str) -> None:
        self.jobs = jobs
        self.kind = kind
        self._pool = self._new()

    def _new(self) -> cf.Executor:
        if self.kind == "thread":
            return cf.ThreadPoolExecutor(self.jobs, thread_name_prefix="contourqa-check")
        return cf.ProcessPoolExecutor(self.jobs, mp_context=process_pool_context())

    def submit(self, *args: Any, **kwargs: Any) -> cf.Future[StudyOutcome]:
        return self._pool.submit(check_study, *args, **kwargs)

    def restart(self) -> None:
        """Replace a broken pool (a worker died)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new()

    def shutdown(self, *, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
