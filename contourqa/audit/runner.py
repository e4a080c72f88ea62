"""Run the full check over an archive, in parallel, resumably, into the results database.

:func:`run_audit` lists the source's work units, skips those already stored with the
same stamp, tool version and options, and hands the others to a process pool (or a
dask.distributed cluster).  Each worker fetches one unit, hashes each case's files,
checks the cases whose hash changed (:func:`contourqa.check.check_case`, one case in
memory at a time) and returns plain records; the main process alone writes them, one
transaction per case, as they arrive.  Ctrl-C stops submitting, lets the cases in
progress finish and be stored, and returns; the next run resumes from there.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import enum
import hashlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from contourqa import __version__
from contourqa.audit.db import AuditDatabase, CaseRecord, CheckRow, RoiRow, redact_url, utc_now
from contourqa.audit.sources import AuditSource, WorkUnit, source_from_spec
from contourqa.check import CheckOptions, check_case
from contourqa.dose_checks import DoseCheckOptions
from contourqa.errors import AuditSourceError, ContourQAError
from contourqa.findings import Status
from contourqa.io.discovery import CaseFiles
from contourqa.parallel import process_pool_context
from contourqa.report.record import CaseReport
from contourqa.report.text import printable

__all__ = ["AuditProgress", "AuditResult", "TextProgress", "audit_unit", "options_json",
           "record_from_report", "run_audit"]

#: error kinds that are not a property of the inputs, so a later run retries them
RETRY_KINDS = frozenset({"crash"})
#: error kinds where the tool, not the case's data, failed: the case was not checked
UNCHECKED_KINDS = frozenset({"crash", "exception"})


@dataclass(frozen=True)
class AuditResult:
    """What one :func:`run_audit` call did.

    Attributes
    ----------
    n_cases : int
        Cases found (skipped ones included); equals the ``cases`` rows of this source.
    n_checked, n_skipped, n_errors : int
        Cases checked in this run, skipped as unchanged, and stored with status error
        in this run.
    interrupted : bool
        Ctrl-C (or SIGINT) stopped the run; the next run resumes.
    """

    db_url: str  # the database, its password (if any) replaced by ***
    run_id: int
    n_units: int
    n_cases: int
    n_checked: int
    n_skipped: int
    n_errors: int
    interrupted: bool
    elapsed_s: float
    #: largest peak resident memory reported by a worker process (MiB; None if unknown)
    peak_worker_rss_mb: float | None = None
    #: cases of this run that could not be checked (error kind ``crash`` or
    #: ``exception``: the tool failed, not the case's data), and the first reason
    n_unchecked: int = 0
    first_unchecked_reason: str | None = None


@dataclass(frozen=True)
class AuditProgress:
    """Progress after each finished unit (units are cases for a folder source)."""

    units_done: int
    units_total: int
    n_checked: int
    n_skipped: int
    n_errors: int
    elapsed_s: float
    label: str

    @property
    def cases_per_min(self) -> float:
        return 60.0 * self.n_checked / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate of the units worked on so far (None before one)."""
        worked = self.units_done - self._skipped_units
        left = self.units_total - self.units_done
        if worked <= 0 or self.elapsed_s <= 0:
            return None if left else 0.0
        return left * self.elapsed_s / worked

    @property
    def _skipped_units(self) -> int:
        return min(self.n_skipped, self.units_done)


class TextProgress:
    """Progress line with rate and ETA on a stream (a terminal: redrawn in place).

    Parameters
    ----------
    stream : text stream
        Usually ``sys.stderr``.
    every_s : float
        Minimum interval between lines when the stream is not a terminal.
    """

    def __init__(self, stream: IO[str], *, every_s: float = 10.0) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.every_s = every_s
        self._last = -1e9

    def __call__(self, p: AuditProgress) -> None:
        now = time.monotonic()
        final = p.units_done == p.units_total
        if not self.tty and not final and now - self._last < self.every_s:
            return
        self._last = now
        eta = "--:--" if p.eta_s is None else _mmss(p.eta_s)
        line = (f"[{p.units_done}/{p.units_total}] {p.cases_per_min:5.1f} cases/min  ETA {eta}  "
                f"checked {p.n_checked}  skipped {p.n_skipped}  errors {p.n_errors}  "
                f"{printable(p.label[:40])}")  # a label from the files: no escapes
        if self.tty:
            end = "\n" if final else ""
            self.stream.write(f"\r{line:<120}{end}")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _mmss(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


# -- options and hashes ------------------------------------------------------------------
def _file_digest(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def _canonical(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.metadata.get("result_neutral")}
    if isinstance(value, enum.Enum):
        return _canonical(value.value)
    if isinstance(value, Path):
        # A file named in the options counts by its contents (a changed constraint file
        # must re-run the audit).
        digest = _file_digest(value)[0] if value.is_file() else None
        return {"path": str(value), "sha256": digest}
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_canonical(v) for v in value]
        return sorted(items, key=json.dumps) if isinstance(value, (set, frozenset)) else items
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def options_json(options: CheckOptions) -> str:
    """Canonical JSON of the check options (files they name count by their SHA-256).

    ``dose_checks=None`` means the defaults and is written as them, so a run from
    the command line and one from Python with the same effective options match.
    """
    if options.dose_checks is None:
        options = dataclasses.replace(options, dose_checks=DoseCheckOptions())
    if options.rules is None:
        from contourqa.rules import RuleOptions

        options = dataclasses.replace(options, rules=RuleOptions())
    return json.dumps(_canonical(options), sort_keys=True, separators=(",", ":"))


def _content_hash(paths: Sequence[Path]) -> tuple[str, int, int]:
    """SHA-256 over the sorted per-file digests (path independent), file count, bytes."""
    digests, total = [], 0
    for p in paths:
        d, n = _file_digest(p)
        digests.append(d)
        total += n
    h = hashlib.sha256()
    for d in sorted(digests):
        h.update(d.encode())
    return h.hexdigest(), len(digests), total


# -- the worker --------------------------------------------------------------------------
@dataclass(frozen=True)
class UnitOutcome:
    """What a worker returns for one unit: new records, and keys found unchanged."""

    unit_id: str
    records: tuple[CaseRecord, ...]
    unchanged: tuple[str, ...] = ()
    peak_rss_mb: float | None = None


@dataclass(frozen=True)
class _RunContext:
    options: CheckOptions
    options_json: str
    options_hash: str
    tool_version: str
    run_id: int


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _input_errors(report: CaseReport) -> list[str]:
    """Case-level input problems that left part of the check unevaluated.

    A missing or unreadable dose, structure set, plan or image series, or a frame of
    reference mismatch; a per-ROI finding (an empty ROI) is a QA result, not an error.
    """
    return [f"{c.code}: {c.message}" for c in report.checks
            if c.code.startswith("input.") and c.status is Status.NOT_EVALUATED
            and c.structure is None]


def _base(ctx: _RunContext, unit: WorkUnit, key: str, files: CaseFiles | None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "case_key": key, "unit_id": unit.unit_id, "unit_stamp": unit.stamp,
        "tool_version": ctx.tool_version, "options_hash": ctx.options_hash,
        "options_json": ctx.options_json, "run_id": ctx.run_id, "checked_at": utc_now()}
    if files is not None:
        anchor = files.plan or files.structure_set or (files.doses[0] if files.doses else None)
        fields.update(
            name=files.name, patient_id=anchor.patient_id if anchor else None,
            plan_label=files.plan.label if files.plan else None,
            plan_uid=files.plan.sop_instance_uid if files.plan else None,
            structure_set_uid=(files.structure_set.sop_instance_uid
                               if files.structure_set else None))
    return fields


def record_from_report(report: CaseReport, base: dict[str, Any]) -> CaseRecord:
    """The audit database row of one checked case.

    Parameters
    ----------
    report : CaseReport
    base : dict
        The row's identity and provenance columns (``case_key``, ``unit_id``,
        ``tool_version``, ``options_hash`` ...), as the runner and the node build them.
    """
    j = report.to_json()
    info = j["case"]
    errors = _input_errors(report)
    checks = tuple(CheckRow(code=c.code, status=c.status.value, structure=c.structure,
                            value=_number(c.value), limit_value=_number(c.limit), unit=c.unit,
                            message=c.message, source=c.source) for c in report.checks)
    rois = []
    for s in report.structures:
        metrics = dict(report.dvh.get(s.name, {}))
        rois.append(RoiRow(
            roi_name=s.name, roi_number=s.number, role=s.role,
            volume_cc=_number(s.volume_cc if s.volume_cc is not None else metrics.get("volume")),
            dmin_gy=_number(metrics.get("Dmin")), dmax_gy=_number(metrics.get("Dmax")),
            dmean_gy=_number(metrics.get("Dmean")), metrics=metrics))
    statuses = [c.status for c in report.checks]
    return CaseRecord(
        **{**base, "name": info["name"], "patient_id": info["patient_id"],
           "plan_label": info["plan_label"]},
        frame_of_reference_uid=info["frame_of_reference_uid"],
        n_fractions=info["n_fractions"], prescription_gy=_number(info["prescription_gy"]),
        status="error" if errors else "ok", error_kind="input" if errors else None,
        error_message="; ".join(errors) or None, qa_status=report.status,
        n_fail=statuses.count(Status.FAIL), n_warn=statuses.count(Status.WARN),
        n_not_evaluated=statuses.count(Status.NOT_EVALUATED),
        n_not_applicable=statuses.count(Status.NOT_APPLICABLE),
        timings_json=json.dumps(report.timings_s, sort_keys=True), checks=checks,
        rois=tuple(rois), report_json=json.dumps(j, sort_keys=True))


def _peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def audit_unit(unit: WorkUnit, ctx: _RunContext, known: Mapping[str, str]) -> UnitOutcome:
    """Fetch one unit, hash its cases and check those not in ``known`` (runs in a worker).

    Parameters
    ----------
    unit : WorkUnit
    ctx : _RunContext
        Options, their JSON and hash, tool version and run id.
    known : mapping of str to str
        case_key -> content hash stored with the same tool version and options.

    Returns
    -------
    UnitOutcome
        Never raises for bad input: a unit that cannot be fetched or a case whose
        check raises gets an error record.
    """
    records: list[CaseRecord] = []
    unchanged: list[str] = []
    t_unit = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="contourqa-audit-") as tmp:
        try:
            cases = unit.payload.fetch(Path(tmp))
            if not cases:
                raise AuditSourceError(f"{unit.label}: no plan, structure set or dose found")
        except (ContourQAError, OSError) as exc:
            records.append(CaseRecord(
                **_base(ctx, unit, f"unit:{unit.unit_id}", None), name=unit.label,
                status="error", error_kind="source", error_message=f"{type(exc).__name__}: {exc}",
                wall_s=time.perf_counter() - t_unit))
            return UnitOutcome(unit.unit_id, tuple(records), peak_rss_mb=_peak_rss_mb())
        for key, files in cases:
            t0 = time.perf_counter()
            base = _base(ctx, unit, key, files)
            try:
                digest, n_files, n_bytes = _content_hash(files.files)
            except OSError as exc:
                records.append(CaseRecord(**base, status="error", error_kind="exception",
                                          error_message=f"{type(exc).__name__}: {exc}"))
                continue
            if known.get(key) == digest:
                unchanged.append(key)
                continue
            base.update(content_hash=digest, n_files=n_files, n_bytes=n_bytes)
            t1 = time.perf_counter()
            try:
                report = check_case(files, options=ctx.options)
            except Exception as exc:  # noqa: BLE001
                # Any defect in one case must end as that case's error row, never stop
                # the audit of thousands; the traceback's last line locates it.
                frame = traceback.extract_tb(exc.__traceback__)[-1]
                records.append(CaseRecord(
                    **base, status="error", error_kind="exception",
                    error_message=(f"{type(exc).__name__}: {exc} (at {Path(frame.filename).name}"
                                   f":{frame.lineno})"),
                    check_s=time.perf_counter() - t1, wall_s=time.perf_counter() - t0))
                continue
            check_s = time.perf_counter() - t1
            rec = record_from_report(report, base)
            records.append(dataclasses.replace(rec, check_s=check_s,
                                               wall_s=time.perf_counter() - t0))
    return UnitOutcome(unit.unit_id, tuple(records), tuple(unchanged), _peak_rss_mb())


# -- executors ---------------------------------------------------------------------------
#: seconds between a worker's checks that the audit process is still there
_PARENT_POLL_S = 1.0


def _init_worker(audit_pid: int) -> None:
    """Initializer of every audit worker process.

    The main process owns Ctrl-C (it stops submitting and lets running cases finish),
    so workers ignore SIGINT.  A worker must not outlive the audit (a ``kill -9`` of it
    left workers blocked on their pipe forever).  Workers are children of
    multiprocessing's fork server, which itself lives as long as they do (each holds
    its keep-alive pipe), so the parent-death signal alone does not reach them: a
    daemon thread ends the worker when the audit process ``audit_pid`` is gone, and
    when the audit is the direct parent (the ``spawn`` method) the kernel sends
    SIGKILL at once (Linux ``PR_SET_PDEATHSIG``).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux") and os.getppid() == audit_pid:
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    threading.Thread(target=_exit_with_audit, args=(audit_pid,), daemon=True,
                     name="contourqa-audit-watch").start()


def _exit_with_audit(audit_pid: int) -> None:
    stat = Path(f"/proc/{audit_pid}/stat")
    while True:
        try:
            os.kill(audit_pid, 0)
        except (ProcessLookupError, PermissionError):  # gone (or its pid reused)
            os._exit(1)
        try:  # Linux: killed but not yet reaped by its own parent is gone too
            if stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                os._exit(1)
        except (OSError, IndexError):
            pass
        time.sleep(_PARENT_POLL_S)


class _ProcessExecutor:
    name = "process"

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self._pool = self._new_pool()

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        ctx = process_pool_context(preload=["contourqa.audit.runner"])
        return cf.ProcessPoolExecutor(max_workers=self.jobs, mp_context=ctx,
                                      initializer=_init_worker, initargs=(os.getpid(),))

    @property
    def window(self) -> int:
        return 2 * self.jobs

    def submit(self, unit: WorkUnit, ctx: _RunContext, known: Mapping[str, str]) -> Any:
        return self._pool.submit(audit_unit, unit, ctx, dict(known))

    def wait(self, futures: Sequence[Any]) -> set[Any]:
        done, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
        return set(done)

    def result(self, fut: Any) -> UnitOutcome:
        return fut.result()  # type: ignore[no-any-return]

    def restart(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def shutdown(self, *, cancel: bool) -> None:
        self._pool.shutdown(wait=True, cancel_futures=cancel)


class _DaskExecutor:
    name = "dask"

    def __init__(self, scheduler: Any) -> None:
        try:
            import distributed
        except ImportError as exc:
            raise ContourQAError(
                "--scheduler needs dask.distributed; install it with: "
                "pip install 'contourqa[audit]'") from exc
        self._distributed = distributed
        if isinstance(scheduler, str):
            try:
                self._client = distributed.Client(scheduler, timeout="30s",
                                                  set_as_default=False)
            except OSError as exc:
                raise AuditSourceError(f"{scheduler}: cannot reach the dask scheduler "
                                       f"({exc})") from exc
            self._own = True
        else:  # an existing distributed.Client
            self._client, self._own = scheduler, False
        self.jobs = max(1, sum(self._client.nthreads().values()))

    @property
    def window(self) -> int:
        return 2 * self.jobs

    def submit(self, unit: WorkUnit, ctx: _RunContext, known: Mapping[str, str]) -> Any:
        return self._client.submit(audit_unit, unit, ctx, dict(known), pure=False)

    def wait(self, futures: Sequence[Any]) -> set[Any]:
        with self._client.as_current():  # wait() looks for a client; ours is not global
            return set(self._distributed.wait(list(futures), return_when="FIRST_COMPLETED").done)

    def result(self, fut: Any) -> UnitOutcome:
        return fut.result()  # type: ignore[no-any-return]

    def restart(self) -> None:
        pass

    def shutdown(self, *, cancel: bool) -> None:
        if self._own:
            self._client.close()


# -- the run -----------------------------------------------------------------------------
def run_audit(source: str | Path | AuditSource, db_url: str | Path, *,
              jobs: int | None = None, options: CheckOptions = CheckOptions(),
              scheduler: Any = None, force: bool = False,
              progress: Callable[[AuditProgress], None] | None = None) -> AuditResult:
    """Audit every case of ``source`` into the database at ``db_url``.

    Parameters
    ----------
    source : str, Path or AuditSource
        A folder, ``orthanc+http://host:8042`` or ``dicomweb+http://host/dicom-web``,
        or a source object (:mod:`contourqa.audit.sources`).
    db_url : str or Path
        SQLite file (created and migrated if needed) or ``postgresql://...``.
    jobs : int, optional
        Worker processes (default: every core).  Ignored with ``scheduler``.
    options : CheckOptions
        The check's options; stored (canonical JSON and hash) with every case.
    scheduler : str or distributed.Client, optional
        ``tcp://host:port`` of a dask.distributed scheduler (or a client) to run the
        checks on instead of a local process pool.
    force : bool
        Check every case again, even unchanged ones.
    progress : callable, optional
        Called with an :class:`AuditProgress` after each unit (see :class:`TextProgress`).

    Returns
    -------
    AuditResult

    Raises
    ------
    AuditSourceError
        The source cannot be listed.
    AuditDatabaseError
        The database cannot be opened or migrated.
    """
    if jobs is not None and jobs < 1:
        raise ValueError(f'Argument "jobs" must be >= 1, got {jobs!r}.')
    t_start = time.perf_counter()
    src = source_from_spec(source)
    opts_json = options_json(options)
    opts_hash = hashlib.sha256(opts_json.encode()).hexdigest()
    db = AuditDatabase(db_url)
    try:
        units = src.units()
        stored = db.stored_cases()
        by_unit: dict[str, list[Any]] = {}
        for row in stored.values():
            by_unit.setdefault(row.unit_id, []).append(row)

        todo: list[tuple[WorkUnit, dict[str, str], set[str]]] = []
        n_skipped = 0
        for unit in units:
            rows = by_unit.get(unit.unit_id, [])
            current = [r for r in rows if r.tool_version == __version__
                       and r.options_hash == opts_hash and r.error_kind not in RETRY_KINDS]
            if (not force and rows and unit.stamp is not None and len(current) == len(rows)
                    and all(r.unit_stamp == unit.stamp for r in rows)):
                n_skipped += len(rows)
                continue
            known = {} if force else {r.case_key: r.content_hash for r in current
                                      if r.content_hash}
            todo.append((unit, known, {r.case_key for r in rows}))

        executor: _ProcessExecutor | _DaskExecutor
        if scheduler is not None:
            executor = _DaskExecutor(scheduler)
        else:
            executor = _ProcessExecutor(min(jobs or os.cpu_count() or 1, max(1, len(todo))))
        db.mark_stale_runs()
        run_id = db.start_run(source=src.description, tool_version=__version__,
                              options_hash=opts_hash, jobs=executor.jobs,
                              executor=executor.name)
        ctx = _RunContext(options, opts_json, opts_hash, __version__, run_id)
        counts = {"checked": 0, "errors": 0, "skipped": n_skipped, "units": len(units) - len(todo),
                  "unchecked": 0}
        unchecked_reasons: list[str] = []
        peak_rss: list[float] = []
        in_flight: dict[Any, tuple[WorkUnit, dict[str, str], set[str]]] = {}
        queue = list(reversed(todo))
        interrupted = False

        def store(outcome: UnitOutcome, previous: set[str], label: str) -> None:
            produced = set()
            for rec in outcome.records:
                db.write_case(rec)
                produced.add(rec.case_key)
                counts["checked"] += 1
                counts["errors"] += rec.status == "error"
                if rec.status == "error" and rec.error_kind in UNCHECKED_KINDS:
                    counts["unchecked"] += 1
                    unchecked_reasons.append(f"{rec.name}: {rec.error_kind}: {rec.error_message}")
            for key in outcome.unchanged:
                db.restamp(key, outcome_stamp[outcome.unit_id])
                produced.add(key)
                counts["skipped"] += 1
            for key in previous - produced:  # a case that left this unit (PACS study)
                db.delete_case(key)
            counts["units"] += 1
            if outcome.peak_rss_mb is not None:
                peak_rss.append(outcome.peak_rss_mb)
            if progress:
                progress(AuditProgress(counts["units"], len(units), counts["checked"],
                                       counts["skipped"], counts["errors"],
                                       time.perf_counter() - t_start, label))

        outcome_stamp = {u.unit_id: u.stamp for u, _, _ in todo}

        def crash_records(unit: WorkUnit, previous: set[str], exc: BaseException) -> UnitOutcome:
            key = unit.unit_id if unit.unit_id.startswith(("plan:", "structure_set:", "dose:",
                                                           "path:")) else f"unit:{unit.unit_id}"
            rec = CaseRecord(**_base(ctx, unit, key, None), name=unit.label, status="error",
                             error_kind="crash",
                             error_message=f"the worker process died checking this unit alone "
                                           f"({type(exc).__name__}: {exc}); out of memory? "
                                           "It is retried next run.")
            return UnitOutcome(unit.unit_id, (rec,))

        # When the pool breaks, every unit in flight fails with it, though one worker
        # died: they are re-run one at a time, and only one that crashes alone is
        # recorded as a crash.
        suspects: list[tuple[WorkUnit, dict[str, str], set[str]]] = []
        alone: set[Any] = set()  # the future of the suspect running by itself

        def collect(done: set[Any]) -> None:
            broken = False
            for fut in done:
                unit, known, previous = in_flight.pop(fut)
                try:
                    outcome = executor.result(fut)
                except BrokenProcessPool as exc:
                    broken = True
                    if fut not in alone:
                        suspects.append((unit, known, previous))
                        continue
                    outcome = crash_records(unit, previous, exc)
                    previous = previous - {outcome.records[0].case_key}
                except cf.CancelledError:
                    continue
                store(outcome, previous, unit.label)
            if broken:
                suspects.extend(in_flight.pop(fut) for fut in list(in_flight))
                alone.clear()
                executor.restart()

        try:
            while queue or in_flight or suspects:
                if suspects:
                    if not in_flight:
                        unit, known, previous = suspects.pop(0)
                        fut = executor.submit(unit, ctx, known)
                        in_flight[fut] = (unit, known, previous)
                        alone.clear()
                        alone.add(fut)
                else:
                    while queue and len(in_flight) < executor.window:
                        unit, known, previous = queue.pop()
                        in_flight[executor.submit(unit, ctx, known)] = (unit, known, previous)
                collect(executor.wait(list(in_flight)))
        except KeyboardInterrupt:
            interrupted = True
            queue.clear()
            suspects.clear()
            try:
                # Let the cases in progress finish and be stored; pending ones are cancelled.
                executor.shutdown(cancel=True)
                collect({f for f in in_flight if f.done() and not f.cancelled()})
            except KeyboardInterrupt:
                pass  # a second Ctrl-C: leave now; unfinished cases are redone next run
        else:
            executor.shutdown(cancel=False)
        n_cases = _count_source_cases(db, units)
        db.finish_run(run_id, state="interrupted" if interrupted else "done", n_cases=n_cases,
                      n_checked=counts["checked"], n_skipped=counts["skipped"],
                      n_errors=counts["errors"])
        return AuditResult(db_url=redact_url(db_url), run_id=run_id, n_units=len(units),
                           n_cases=n_cases, n_checked=counts["checked"],
                           n_skipped=counts["skipped"], n_errors=counts["errors"],
                           interrupted=interrupted, elapsed_s=time.perf_counter() - t_start,
                           peak_worker_rss_mb=max(peak_rss, default=None),
                           n_unchecked=counts["unchecked"],
                           first_unchecked_reason=next(iter(unchecked_reasons), None))
    finally:
        db.close()


def _count_source_cases(db: AuditDatabase, units: Sequence[WorkUnit]) -> int:
    ids = {u.unit_id for u in units}
    return sum(1 for r in db.stored_cases().values() if r.unit_id in ids)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: contourqa audit SOURCE --db FILE")
