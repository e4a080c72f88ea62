"""The DICOM node: a Storage SCP that checks every plan it receives.

:class:`DicomNode` accepts CT, MR, PET, RT Structure Set, RT Plan, RT Dose and
spatial registration objects (and C-ECHO) from the calling AE titles it allows.  The
C-STORE handler validates the UIDs, writes the file atomically
(:class:`~contourqa.node.store.ObjectStore`), answers and records the object in the
:class:`~contourqa.node.completion.StudyTracker`; a scheduler thread hands complete
(or idle) studies to a :class:`~contourqa.node.worker.WorkerPool` and writes the
reports next to the study.

Every association, object, case and check run is one JSON line on the
``contourqa.node`` logger.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import hashlib
import json
import logging
import os
import signal
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pydicom.errors import InvalidDicomError

from contourqa.errors import ContourQAError, InvalidUIDError, StorageFullError, require
from contourqa.node.completion import DueStudy, StudyTracker
from contourqa.node.config import NodeConfig
from contourqa.node.store import ObjectStore, validate_uid
from contourqa.node.worker import _SUFFIX, StudyOutcome, WorkerPool

__all__ = ["STORAGE_CLASSES", "DicomNode", "serve"]

log = logging.getLogger("contourqa.node")

#: SOP classes the node stores (name -> UID).
STORAGE_CLASSES: dict[str, str] = {
    "CT Image": "1.2.840.10008.5.1.4.1.1.2",
    "Enhanced CT Image": "1.2.840.10008.5.1.4.1.1.2.1",
    "MR Image": "1.2.840.10008.5.1.4.1.1.4",
    "Enhanced MR Image": "1.2.840.10008.5.1.4.1.1.4.1",
    "PET Image": "1.2.840.10008.5.1.4.1.1.128",
    "RT Structure Set": "1.2.840.10008.5.1.4.1.1.481.3",
    "RT Plan": "1.2.840.10008.5.1.4.1.1.481.5",
    "RT Ion Plan": "1.2.840.10008.5.1.4.1.1.481.8",
    "RT Dose": "1.2.840.10008.5.1.4.1.1.481.2",
    "Spatial Registration": "1.2.840.10008.5.1.4.1.1.66.1",
    "Deformable Spatial Registration": "1.2.840.10008.5.1.4.1.1.66.3",
}
_VERIFICATION = "1.2.840.10008.1.1"

# C-STORE statuses (PS3.4 B.2.3).
_SUCCESS = 0x0000
_OUT_OF_RESOURCES = 0xA700
_CANNOT_UNDERSTAND = 0xC000     # malformed data set
_INVALID_UID = 0xC001           # a UID that would not make a safe path
_UID_MISMATCH = 0xA900          # data set does not match the request

# What decoding a malformed data set raises inside pydicom.
_DECODE_ERRORS = (InvalidDicomError, OSError, ValueError, TypeError, KeyError, AttributeError,
                  EOFError, IndexError, struct.error, OverflowError, NotImplementedError)

_STATE_FILE = "state.json"


def _event(kind: str, **fields: Any) -> None:
    """One structured log line."""
    record = {"ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
              "event": kind, **fields}
    log.info(json.dumps(record, default=str))


def _fingerprint(objects_dir: Path) -> str:
    """Names and sizes of a study's objects: same fingerprint, same report."""
    h = hashlib.sha256()
    for dirpath, _, names in sorted(os.walk(objects_dir)):
        for name in sorted(names):
            if name.startswith("."):
                continue
            p = Path(dirpath) / name
            h.update(f"{p.relative_to(objects_dir)}\0{p.stat().st_size}\n".encode())
    return h.hexdigest()


@dataclass
class _Association:
    calling_ae: str
    address: str
    started: float
    n_stored: int = 0
    n_failed: int = 0
    n_bytes: int = 0
    studies: set[str] = field(default_factory=set)
    in_flight: int = 0  # C-STOREs being handled (their thread is not the one that ends it)


# How long the end of an association waits for C-STOREs still being written, s.
_END_WAIT_S = 30.0


@dataclass
class _Running:
    due: DueStudy
    future: cf.Future[StudyOutcome]
    fingerprint: str
    submitted: float


class DicomNode:
    """A Storage SCP that checks every complete study it receives.

    Parameters
    ----------
    config : NodeConfig

    Examples
    --------
    >>> from contourqa.node import DicomNode, NodeConfig
    >>> with DicomNode(NodeConfig(storage_dir=tmp, port=0)) as node:  # doctest: +SKIP
    ...     print(node.port)
    """

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.store = ObjectStore(config.storage_dir, max_bytes=config.max_storage_bytes)
        self.tracker = StudyTracker(idle_s=config.idle_s)
        self._pool: WorkerPool | None = None
        self._server: Any = None
        self._ae: Any = None
        self._assocs: dict[int, _Association] = {}
        self._assoc_lock = threading.Lock()
        self._store_done = threading.Condition(self._assoc_lock)
        self._running: dict[str, _Running] = {}
        self._stopping = threading.Event()
        self._sched_lock = threading.Lock()   # held while studies move from due to running
        self._scheduler: threading.Thread | None = None
        self._options = config.check_options
        if {"html", "pdf"} & set(config.report_formats) or (
                config.destination is not None and config.destination.document == "pdf"):
            import dataclasses

            self._options = dataclasses.replace(self._options, keep_media=True)
        self._formats = config.report_formats
        if config.destination is not None and config.destination.document == "pdf" \
                and "pdf" not in self._formats:
            self._formats = (*self._formats, "pdf")
        self.n_checked = 0

    # -- lifecycle -------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port (the free one picked when ``config.port`` is 0)."""
        if self._server is None:
            raise RuntimeError("the node is not started")
        return int(self._server.server_address[1])

    def _ssl_context(self) -> ssl.SSLContext | None:
        c = self.config
        if not c.tls:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(c.tls_cert), str(c.tls_key))
        if c.tls_ca is not None:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(str(c.tls_ca))
        return ctx

    def start(self) -> DicomNode:
        """Bind, listen and start the scheduler; returns once connections are accepted.

        Raises
        ------
        MissingDependencyError
            pynetdicom (the ``node`` extra) is not installed.
        """
        require("pynetdicom", extra="node", feature="the DICOM node")
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt

        self._resume_stored_studies()
        self._pool = WorkerPool(jobs=self.config.jobs, kind=self.config.worker_kind)
        ae = AE(ae_title=self.config.ae_title)
        for uid in STORAGE_CLASSES.values():
            ae.add_supported_context(uid, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(_VERIFICATION)
        ae.maximum_associations = 32
        self._ae = ae
        handlers: list[Any] = [(evt.EVT_REQUESTED, self._on_requested), (evt.EVT_C_STORE, self._on_store),
                    (evt.EVT_RELEASED, self._on_ended), (evt.EVT_ABORTED, self._on_ended),
                    (evt.EVT_CONN_CLOSE, self._on_ended)]
        # start_server binds and listens before it returns (a connect succeeds from then on).
        self._server = ae.start_server((self.config.host, self.config.port), block=False,
                                       evt_handlers=handlers, ssl_context=self._ssl_context())
        self._scheduler = threading.Thread(target=self._schedule_loop, name="contourqa-scheduler",
                                           daemon=True)
        self._scheduler.start()
        _event("node_started", ae_title=self.config.ae_title, host=self.config.host,
               port=self.port, storage=str(self.store.root), tls=self.config.tls,
               allowed=[p.ae_title + (f"@{p.address}" if p.address else "")
                        for p in self.config.allowed],
               idle_s=self.config.idle_s, jobs=self.config.jobs,
               used_bytes=self.store.used_bytes)
        return self

    def stop(self, *, timeout_s: float = 30.0) -> None:
        """Stop accepting associations, let open ones finish (up to ``timeout_s``), finish
        the checks already running and write their reports.  Studies not yet due are
        left on disk; the next start checks them."""
        if self._server is None:
            return
        self._server.shutdown()
        deadline = time.monotonic() + timeout_s
        while self._server.active_associations and time.monotonic() < deadline:
            time.sleep(0.05)
        for assoc in list(self._server.active_associations):
            assoc.abort()
        self._stopping.set()
        self.tracker.changed.set()
        if self._scheduler is not None:
            self._scheduler.join()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        _event("node_stopped", checked=self.n_checked, pending=self.tracker.pending())
        self._server = None

    def __enter__(self) -> DicomNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Wait until no study is pending or being checked; True if reached."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._sched_lock:
                if not self.tracker.pending() and not self._running:
                    return True
            time.sleep(0.05)
        return False

    # -- association handlers (run in pynetdicom's threads) --------------------------------

    def _on_requested(self, event: Any) -> None:
        assoc = event.assoc
        calling = str(assoc.requestor.primitive.calling_ae_title).strip()
        address = str(assoc.requestor.address)
        if not self.config.admits(calling, address):
            _event("association", outcome="rejected", calling_ae=calling, address=address,
                   reason="calling AE title (or its address) not in the allow list")
            # Permanent rejection by the service user: calling AE title not recognised.
            assoc.acse.send_reject(0x01, 0x01, 0x03)
            # As pynetdicom's own rejection does: stop the DUL, which flushes the
            # A-ASSOCIATE-RJ before the socket is closed.
            assoc.kill()
            return
        with self._assoc_lock:
            self._assocs[id(assoc)] = _Association(calling, address, time.monotonic())

    def _on_ended(self, event: Any) -> None:
        assoc = event.assoc
        with self._assoc_lock:
            rec = self._assocs.get(id(assoc))
            # An abort or a closed connection is signalled on another thread than the
            # one handling C-STOREs: wait for a store being written, so that the
            # association's counts include every object it left on disk.
            self._store_done.wait_for(lambda: rec is None or rec.in_flight == 0,
                                      timeout=_END_WAIT_S)
            rec = self._assocs.pop(id(assoc), None)
        if rec is None:
            return
        outcome = "released" if assoc.is_released else "aborted" if assoc.is_aborted else \
            "closed"
        self.tracker.association_ended(id(assoc))
        _event("association", outcome=outcome, calling_ae=rec.calling_ae, address=rec.address,
               stored=rec.n_stored, failed=rec.n_failed, bytes=rec.n_bytes,
               studies=sorted(rec.studies),
               duration_s=round(time.monotonic() - rec.started, 3))

    def _on_store(self, event: Any) -> int:
        t0 = time.monotonic()
        assoc_id = id(event.assoc)
        with self._assoc_lock:
            rec = self._assocs.get(assoc_id)
            if rec is not None:
                rec.in_flight += 1
        fields: dict[str, Any] = {"calling_ae": rec.calling_ae if rec else None,
                                  "sop_class": str(event.request.AffectedSOPClassUID)}
        status: int | None = None  # an exception in _store counts as a failed store
        try:
            if rec is None:
                # the association already ended (its abort arrived on another thread
                # before this C-STORE's handler ran): nothing is written that its
                # counts would not hold; the sender never sees a response and resends
                fields["error"] = "the association ended before this object was handled"
                status, result = _OUT_OF_RESOURCES, "association_ended"
            else:
                status, result = self._store(event, fields)
        finally:
            with self._assoc_lock:
                if rec is not None:
                    rec.in_flight -= 1
                    if status == _SUCCESS:
                        rec.n_stored += 1
                        rec.n_bytes += fields.get("bytes", 0)
                        rec.studies.add(fields["study"])
                    else:
                        rec.n_failed += 1
                    self._store_done.notify_all()
        _event("object", outcome=result, status=f"0x{status:04X}",
               ms=round(1000 * (time.monotonic() - t0), 1), **fields)
        return status

    def _store(self, event: Any, fields: dict[str, Any]) -> tuple[int, str]:
        from contourqa.io.discovery import _index_one

        request_uid = str(event.request.AffectedSOPInstanceUID or "")
        fields["sop_instance"] = request_uid
        try:
            ds = event.dataset
            sop = validate_uid(ds.get("SOPInstanceUID"), what="SOPInstanceUID")
            study = validate_uid(ds.get("StudyInstanceUID"), what="StudyInstanceUID")
            series = validate_uid(ds.get("SeriesInstanceUID"), what="SeriesInstanceUID")
            fields.update(study=study, series=series,
                          modality=str(ds.get("Modality", "") or ""))
            if sop != validate_uid(request_uid, what="Affected SOP Instance UID"):
                fields["error"] = (f"the data set's SOP Instance UID {sop} differs from the "
                                   f"request's {request_uid}")
                return _UID_MISMATCH, "refused"
            ds.file_meta = event.file_meta
            path = self.store.path_for(study, series, sop)
            obj = _index_one(path, ds)
            data = event.encoded_dataset(include_meta=True)
        except InvalidUIDError as exc:
            fields["error"] = str(exc)
            return _INVALID_UID, "refused"
        except _DECODE_ERRORS as exc:
            fields["error"] = f"malformed data set: {type(exc).__name__}: {exc}"
            return _CANNOT_UNDERSTAND, "refused"
        try:
            stored = self.store.write(study, series, sop, lambda fh: fh.write(data), len(data))
        except StorageFullError as exc:
            fields["error"] = str(exc)
            return _OUT_OF_RESOURCES, "storage_full"
        except OSError as exc:
            fields["error"] = f"could not write: {exc}"
            return _OUT_OF_RESOURCES, "write_failed"
        fields.update(bytes=stored.n_bytes, replaced=stored.replaced,
                      path=str(stored.path.relative_to(self.store.root)))
        self.tracker.add(study, obj, association=id(event.assoc))
        return _SUCCESS, "stored"

    # -- scheduling and results (one thread) ---------------------------------------------

    def _resume_stored_studies(self) -> None:
        """Studies already on disk: checked again when their objects changed since."""
        from contourqa.io.discovery import index_folder

        for study in self.store.studies():
            objects_dir = self.store.objects_dir(study)
            state_path = self.store.reports_dir(study) / _STATE_FILE
            try:
                state = json.loads(state_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                state = {}
            index = index_folder(objects_dir)
            gen = 0
            for obj in index.objects:
                gen = self.tracker.add(study, obj)
            if state.get("fingerprint") == _fingerprint(objects_dir):
                self.tracker.mark_checked(study, gen)
            _event("study_resumed", study=study, objects=len(index.objects),
                   up_to_date=state.get("fingerprint") == _fingerprint(objects_dir))

    def _schedule_loop(self) -> None:
        while True:
            deadline = self.tracker.next_deadline()
            self.tracker.changed.wait(timeout=min(deadline if deadline is not None else 0.5,
                                                  0.5))
            self.tracker.changed.clear()
            self._collect(block=False)
            if self._stopping.is_set():
                self._collect(block=True)
                return
            with self._sched_lock:
                for due in self.tracker.due(busy=set(self._running)):
                    self._submit(due)

    def _submit(self, due: DueStudy) -> None:
        assert self._pool is not None
        objects_dir = self.store.objects_dir(due.study_uid)
        fut = self._pool.submit(
            due.study_uid, due.generation, str(objects_dir), options=self._options,
            formats=self._formats, missing=due.missing,
            audit=self.config.audit_db is not None)
        self._running[due.study_uid] = _Running(due, fut, _fingerprint(objects_dir),
                                                time.monotonic())
        fut.add_done_callback(lambda _: self.tracker.changed.set())
        _event("check_started", study=due.study_uid, generation=due.generation,
               complete=due.complete, missing=list(due.missing),
               objects=self.tracker.n_objects(due.study_uid))

    def _collect(self, *, block: bool) -> None:
        for study, run in list(self._running.items()):
            if not block and not run.future.done():
                continue
            try:
                outcome = run.future.result()
            except cf.process.BrokenProcessPool as exc:
                assert self._pool is not None
                self._pool.restart()
                outcome = StudyOutcome(study, run.due.generation, (), 0.0,
                                       error=f"the check worker died: {exc}")
            self._finish(run, outcome)
            with self._sched_lock:
                del self._running[study]

    def _finish(self, run: _Running, outcome: StudyOutcome) -> None:
        study = outcome.study_uid
        reports_dir = self.store.reports_dir(study)
        written: list[str] = []
        for case in outcome.cases:
            key = validate_uid(case.key, what="case key") if case.key != "case" else "case"
            for fmt, data in case.reports.items():
                path = reports_dir / key / f"report.{_SUFFIX[fmt]}"
                try:
                    self.store.write_report(path, data)
                    written.append(str(path.relative_to(self.store.root)))
                except (StorageFullError, OSError) as exc:
                    _event("report_not_written", study=study, case=key, format=fmt,
                           error=str(exc))
            if case.record is not None:
                self._audit(case.record, study)
            sent = self._send_back(case, study) if self.config.destination else None
            _event("case", study=study, case=key, name=case.name, status=case.status,
                   failed=[c for c, _, _ in case.failed], generation=outcome.generation,
                   complete=run.due.complete, missing=list(run.due.missing),
                   latency_s=round(time.monotonic() - run.due.last_object_at, 3),
                   reports=[w for w in written if f"/{key}/" in w], sent=sent)
        if outcome.error is None:
            state = {"fingerprint": run.fingerprint, "generation": outcome.generation,
                     "complete": run.due.complete, "missing": list(run.due.missing),
                     "cases": [c.key for c in outcome.cases]}
            try:
                self.store.write_report(reports_dir / _STATE_FILE,
                                        json.dumps(state, indent=1).encode())
            except (StorageFullError, OSError) as exc:
                _event("report_not_written", study=study, error=str(exc))
        self.n_checked += 1
        _event("check_run", study=study, generation=outcome.generation,
               cases=len(outcome.cases), check_s=round(outcome.check_s, 3),
               wall_s=round(time.monotonic() - run.submitted, 3), error=outcome.error)

    def _audit(self, record: Any, study: str) -> None:
        from contourqa.audit.db import AuditDatabase

        try:
            with AuditDatabase(self.config.audit_db) as db:  # type: ignore[arg-type]
                db.write_case(record)
                db.commit()
        except ContourQAError as exc:
            _event("audit_not_written", study=study, error=str(exc))

    def _send_back(self, case: Any, study: str) -> dict[str, Any]:
        from contourqa.node.sendback import send_result

        return send_result(case, self.store.objects_dir(study), self.config)


def serve(config: NodeConfig, *, out: TextIO | None = None,
          ready: Callable[[DicomNode], None] | None = None) -> int:
    """Run a node until SIGINT or SIGTERM, then shut it down gracefully.

    Prints the bound address (and so the port picked for ``port=0``) to ``out``.
    Returns 0.
    """
    stop = threading.Event()

    def _signal(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, _signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with DicomNode(config) as node:
            if out is not None:
                print(f"contourqa listen: {config.ae_title} on {config.host}:{node.port}"
                      f"{' (TLS)' if config.tls else ''}, storage {config.storage_dir}",
                      file=out, flush=True)
            if ready is not None:
                ready(node)
            while not stop.wait(0.5):
                pass
            if out is not None:
                print("contourqa listen: stopping (finishing running checks)", file=out,
                      flush=True)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    return 0
