"""The DICOM node: a Storage SCP that checks every plan it receives.

:class:`DicomNode` accepts CT, MR, PET, RT Structure Set, RT Plan, RT Dose and
spatial registration objects (and C-ECHO) from the calling AE titles it allows.  The
C-STORE handler validates the UIDs, writes the file atomically
(:class:`~contourqa.node.store.ObjectStore`), answers and records the object in the
:class:`~contourqa.node.completion.StudyTracker`; a scheduler thread hands complete
(or idle) studies to a :class:`~contourqa.node.worker.WorkerPool` and writes the
reports next to the study.

The door (limits in :class:`~contourqa.node.config.NodeConfig`): a connection over
the total or per-address cap is closed as it is accepted; a silent one is closed after
the ACSE timeout; the called AE title must be the node's and the calling one allowed;
deflated transfer syntaxes are refused unless configured; objects are streamed to a
temporary file and an association whose object grows past the size limit is aborted
as it arrives; a data set whose SOP Class is not its presentation context's is refused.

The scheduler survives what a check raises (the study gets an error outcome); if its
thread dies all the same, objects are refused and :func:`serve` returns non-zero.

Every connection refused, association, object, case and check run is one JSON line on
the ``contourqa.node`` logger.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import signal
import socket
import socketserver
import ssl
import struct
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pydicom.errors import InvalidDicomError

from contourqa.errors import ContourQAError, InvalidUIDError, StorageFullError, require
from contourqa.node.completion import DueStudy, StudyTracker
from contourqa.node.config import NodeConfig
from contourqa.node.store import ObjectStore, validate_uid
from contourqa.node.worker import REPORT_SUFFIX, StudyOutcome, WorkerPool, describe_exception

__all__ = ["DEFLATED_TRANSFER_SYNTAXES", "EXIT_SCHEDULER_DIED", "STORAGE_CLASSES",
           "DicomNode", "serve"]

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
#: Deflated transfer syntaxes (explicit VR little endian, image frames): refused unless
#: ``accept_deflated``, since a 1 MB object can inflate to gigabytes in memory.
DEFLATED_TRANSFER_SYNTAXES = ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1")

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

#: What :func:`serve` returns when the scheduler thread died: the node stops, so that
#: its supervisor (systemd ``Restart=on-failure``) starts it again.
EXIT_SCHEDULER_DIED = 3


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


@dataclass
class _Receiving:
    """Bytes of the data set arriving on one association (counted per PDU)."""

    n_bytes: int = 0
    refused: bool = False


def _door_server_class(node: DicomNode) -> type:
    """pynetdicom's threaded server with the node's door policy.

    * a connection over ``max_associations`` in all, or over ``max_per_address`` from
      one IP address, is closed as it is accepted (before a thread is spent on it);
    * an accepted socket gets the ACSE timeout, so a silent peer cannot hold a read;
    * the TLS handshake runs in the connection's own thread (pynetdicom runs it in the
      accept loop, where one silent TLS client would block every other connection).
    """
    from pynetdicom.transport import ThreadedAssociationServer

    class _DoorServer(ThreadedAssociationServer):  # type: ignore[misc]
        # listen() backlog: connections beyond it wait for SYN retries (1 s, 3 s ...)
        # before the door even sees them
        request_queue_size = 64

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._pending: dict[str, int] = {}  # admitted, association thread not yet up
            self._door_lock = threading.Lock()
            super().__init__(*args, **kwargs)

        def get_request(self) -> tuple[socket.socket, Any]:
            assert self.socket is not None
            sock, address = self.socket.accept()
            sock.settimeout(node.config.acse_timeout_s)
            if self.ssl_context:
                sock = self.ssl_context.wrap_socket(sock, server_side=True,
                                                    do_handshake_on_connect=False)
            return sock, address

        def verify_request(self, request: Any, client_address: Any) -> bool:
            ip = str(client_address[0])
            with self._door_lock:
                live = self.active_associations
                n_all = len(live) + sum(self._pending.values())
                n_ip = self._pending.get(ip, 0) + sum(
                    1 for a in live if _peer_ip(a) == ip)
                if n_all >= node.config.max_associations or \
                        n_ip >= node.config.max_per_address:
                    admitted = False
                else:
                    self._pending[ip] = self._pending.get(ip, 0) + 1
                    admitted = True
            if not admitted:
                _event("connection", outcome="refused", address=ip, open_from_address=n_ip,
                       open=n_all, reason="too many connections open"
                       + (" from this address" if n_ip >= node.config.max_per_address else ""))
            return admitted

        def process_request_thread(self, request: Any, client_address: Any) -> None:
            ip = str(client_address[0])
            try:
                super().process_request_thread(request, client_address)
            finally:
                # the association's own thread runs from now on, and counts
                with self._door_lock:
                    self._pending[ip] -= 1
                    if not self._pending[ip]:
                        del self._pending[ip]

        def shutdown(self) -> None:
            # pynetdicom's shutdown also drops the server from the AE's list, where
            # make_server does not put it
            socketserver.BaseServer.shutdown(self)
            self.server_close()

    return _DoorServer


def _drop_partial_object(assoc: Any, *, close: bool) -> None:
    """Remove the temporary file of a data set whose association ended mid-transfer.

    pynetdicom removes it after the C-STORE handler ran, but an aborted transfer never
    reaches the handler and its file would stay in the temporary folder.  ``close``
    only when the connection has closed: the connection's reader thread (the one that
    signals that) is the one writing to the file."""
    message = getattr(getattr(assoc, "dimse", None), "message", None)
    fh = getattr(message, "_data_set_file", None)
    if fh is None:
        return
    try:
        if close:
            fh.close()
        os.unlink(fh.name)
    except OSError:
        pass


def _peer_ip(assoc: Any) -> str | None:
    try:
        return str(assoc.requestor.address)
    except (AttributeError, TypeError):
        return None


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
        self._scheduler_died = threading.Event()
        self._receiving: dict[int, _Receiving] = {}
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

        from pynetdicom import _config as pynetdicom_config

        c = self.config
        self._resume_stored_studies()
        self._pool = WorkerPool(jobs=c.jobs, kind=c.worker_kind)
        # Received data sets go to a temporary file as they arrive, never whole into
        # memory.  pynetdicom offers this only as a process-wide switch; the node is
        # the process's only Storage SCP.
        pynetdicom_config.STORE_RECV_CHUNKED_DATASET = True
        syntaxes = [ts for ts in ALL_TRANSFER_SYNTAXES
                    if c.accept_deflated or ts not in DEFLATED_TRANSFER_SYNTAXES]
        ae = AE(ae_title=c.ae_title)
        for uid in STORAGE_CLASSES.values():
            ae.add_supported_context(uid, syntaxes)
        ae.add_supported_context(_VERIFICATION)
        ae.require_called_aet = True
        ae.acse_timeout = c.acse_timeout_s
        ae.dimse_timeout = c.network_timeout_s
        ae.network_timeout = c.network_timeout_s
        self._ae = ae
        handlers: list[Any] = [
            (evt.EVT_REQUESTED, self._on_requested), (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_PDU_RECV, self._on_pdu), (evt.EVT_RELEASED, self._on_ended),
            (evt.EVT_ABORTED, self._on_ended), (evt.EVT_CONN_CLOSE, self._on_ended)]
        server = ae.make_server((c.host, c.port), ssl_context=self._ssl_context(),
                                evt_handlers=handlers, server_class=_door_server_class(self))
        # make_server binds and listens before it returns (a connect succeeds from then on).
        self._server = server
        threading.Thread(target=server.serve_forever, name="contourqa-acceptor",
                         daemon=True).start()
        self._scheduler = threading.Thread(target=self._schedule_loop, name="contourqa-scheduler",
                                           daemon=True)
        self._scheduler.start()
        _event("node_started", ae_title=self.config.ae_title, host=self.config.host,
               port=self.port, storage=str(self.store.root), tls=self.config.tls,
               allowed=[p.ae_title + (f"@{p.address}" if p.address else "")
                        for p in self.config.allowed],
               idle_s=self.config.idle_s, jobs=self.config.jobs,
               used_bytes=self.store.used_bytes, max_object_bytes=c.max_object_bytes,
               max_associations=c.max_associations, max_per_address=c.max_per_address,
               acse_timeout_s=c.acse_timeout_s, network_timeout_s=c.network_timeout_s,
               accept_deflated=c.accept_deflated)
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
        called = str(assoc.requestor.primitive.called_ae_title).strip()
        address = str(assoc.requestor.address)
        reject: tuple[str, int] | None = None
        if called != self.config.ae_title:
            # Permanent rejection by the service user: called AE title not recognised.
            reject = (f"called AE title {called!r} is not this node's "
                      f"({self.config.ae_title})", 0x07)
        elif not self.config.admits(calling, address):
            # Permanent rejection by the service user: calling AE title not recognised.
            reject = ("calling AE title (or its address) not in the allow list", 0x03)
        if reject is not None:
            _event("association", outcome="rejected", calling_ae=calling, called_ae=called,
                   address=address, reason=reject[0])
            assoc.acse.send_reject(0x01, 0x01, reject[1])
            # As pynetdicom's own rejection does: stop the DUL, which flushes the
            # A-ASSOCIATE-RJ before the socket is closed.
            assoc.kill()
            return
        with self._assoc_lock:
            self._assocs[id(assoc)] = _Association(calling, address, time.monotonic())

    def _on_pdu(self, event: Any) -> None:
        """Count the data set bytes of the object arriving; abort past the limit.

        Runs in the association's reader thread for every PDU, before the DIMSE layer
        gathers it, so an oversized object is refused as it arrives, not once whole."""
        items = getattr(event.pdu, "presentation_data_value_items", None)
        if not items:
            return
        assoc = event.assoc
        abort = False
        with self._assoc_lock:
            rx = self._receiving.setdefault(id(assoc), _Receiving())
            for item in items:
                data = item.presentation_data_value or b"\x00"
                if data[0] & 1:  # a command fragment: a new message starts
                    rx.n_bytes = 0
                    continue
                rx.n_bytes += len(data) - 1
                if rx.n_bytes > self.config.max_object_bytes and not rx.refused:
                    rx.refused = abort = True
                    rec = self._assocs.get(id(assoc))
                    if rec is not None:
                        rec.n_failed += 1
                if data[0] & 2:  # the data set's last fragment
                    rx.n_bytes = 0
        if abort:
            _event("object", outcome="too_large", status="abort",
                   calling_ae=rec.calling_ae if rec else None,
                   error=f"object over {self.config.max_object_bytes} bytes (the node's "
                         "max object size); association aborted as it arrived")
            assoc.abort(block=False)

    def _on_ended(self, event: Any) -> None:
        assoc = event.assoc
        with self._assoc_lock:
            self._receiving.pop(id(assoc), None)
            rec = self._assocs.get(id(assoc))
            # An abort or a closed connection is signalled on another thread than the
            # one handling C-STOREs: wait for a store being written, so that the
            # association's counts include every object it left on disk.
            self._store_done.wait_for(lambda: rec is None or rec.in_flight == 0,
                                      timeout=_END_WAIT_S)
            rec = self._assocs.pop(id(assoc), None)
        _drop_partial_object(assoc, close=getattr(event.event, "name", "") == "EVT_CONN_CLOSE")
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
            if self._scheduler_died.is_set():
                # nothing would check it: the sender must not believe it was
                fields["error"] = "the node's scheduler stopped; nothing is being checked"
                status, result = _OUT_OF_RESOURCES, "not_checking"
            elif rec is None:
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
        from pydicom import dcmread

        from contourqa.io.discovery import index_object

        request_uid = str(event.request.AffectedSOPInstanceUID or "")
        request_class = str(event.request.AffectedSOPClassUID or "")
        fields["sop_instance"] = request_uid
        try:
            source = Path(event.dataset_path)
        except AttributeError:  # the data set was received in memory
            source = None
        try:
            if source is not None:
                n_bytes = source.stat().st_size
                if n_bytes > self.config.max_object_bytes:
                    fields["error"] = (f"object of {n_bytes} bytes over the node's max "
                                       f"object size ({self.config.max_object_bytes})")
                    return _OUT_OF_RESOURCES, "too_large"
                # Only what the checks index: large values stay on disk.
                ds = dcmread(source, stop_before_pixels=True, defer_size=1 << 16)
            else:
                ds = event.dataset
            sop = validate_uid(ds.get("SOPInstanceUID"), what="SOPInstanceUID")
            study = validate_uid(ds.get("StudyInstanceUID"), what="StudyInstanceUID")
            series = validate_uid(ds.get("SeriesInstanceUID"), what="SeriesInstanceUID")
            sop_class = validate_uid(ds.get("SOPClassUID"), what="SOPClassUID")
            fields.update(study=study, series=series,
                          modality=str(ds.get("Modality", "") or ""))
            if sop != validate_uid(request_uid, what="Affected SOP Instance UID"):
                fields["error"] = (f"the data set's SOP Instance UID {sop} differs from the "
                                   f"request's {request_uid}")
                return _UID_MISMATCH, "refused"
            negotiated = str(event.context.abstract_syntax)
            if sop_class != negotiated or request_class != negotiated:
                fields["error"] = (f"the data set's SOP Class UID {sop_class} (request: "
                                   f"{request_class}) differs from the negotiated {negotiated}")
                return _UID_MISMATCH, "refused"
            path = self.store.path_for(study, series, sop)
            obj = index_object(path, ds)
            data = None if source is not None else event.encoded_dataset(include_meta=True)
        except InvalidUIDError as exc:
            fields["error"] = str(exc)
            return _INVALID_UID, "refused"
        except _DECODE_ERRORS as exc:
            fields["error"] = f"malformed data set: {type(exc).__name__}: {exc}"
            return _CANNOT_UNDERSTAND, "refused"

        def write(fh: Any) -> None:
            if data is not None:
                fh.write(data)
                return
            assert source is not None
            with open(source, "rb") as src:
                shutil.copyfileobj(src, fh, 1 << 20)

        try:
            stored = self.store.write(study, series, sop, write,
                                      len(data) if data is not None else n_bytes)
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
            try:
                index = index_folder(objects_dir)
                gen = 0
                for obj in index.objects:
                    gen = self.tracker.add(study, obj)
                up_to_date = state.get("fingerprint") == _fingerprint(objects_dir)
            except Exception as exc:  # noqa: BLE001
                # one unreadable study must not keep the node from starting
                _event("study_not_resumed", study=study, error=describe_exception(exc))
                continue
            if up_to_date:
                self.tracker.mark_checked(study, gen)
            _event("study_resumed", study=study, objects=len(index.objects),
                   up_to_date=up_to_date)

    @property
    def healthy(self) -> bool:
        """False once the scheduler thread has died: objects are then refused (A700)."""
        return not self._scheduler_died.is_set()

    def _schedule_loop(self) -> None:
        """Hand due studies to the workers and collect results until the node stops.

        An exception in one round is logged and the loop goes on (after a pause that
        grows while rounds keep failing); if the thread still ends otherwise, the node
        refuses objects and :func:`serve` exits non-zero for its supervisor to restart it."""
        failures = 0
        try:
            while True:
                try:
                    if self._schedule_round():
                        return
                    failures = 0
                except Exception as exc:  # noqa: BLE001
                    failures += 1
                    _event("scheduler_error", error=describe_exception(exc),
                           consecutive=failures)
                    if self._stopping.wait(min(0.1 * 2 ** min(failures, 6), 5.0)) \
                            and failures > 1:
                        return  # stopping, and the rounds keep failing: give up
        finally:
            if not self._stopping.is_set():
                self._scheduler_died.set()
                _event("scheduler_died", pending=self.tracker.pending())

    def _schedule_round(self) -> bool:
        """One round of the scheduler; True when the node is stopping and all is done."""
        deadline = self.tracker.next_deadline()
        self.tracker.changed.wait(timeout=min(deadline if deadline is not None else 0.5, 0.5))
        self.tracker.changed.clear()
        self._collect(block=False)
        if self._stopping.is_set():
            self._collect(block=True)
            return True
        with self._sched_lock:
            for due in self.tracker.due(busy=set(self._running)):
                try:
                    self._submit(due)
                except Exception as exc:  # noqa: BLE001
                    _event("check_run", study=due.study_uid, generation=due.generation,
                           cases=0, error=f"could not start the check: {describe_exception(exc)}")
        return False

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
                try:
                    outcome = run.future.result()
                except BrokenProcessPool as exc:
                    assert self._pool is not None
                    self._pool.restart()
                    outcome = StudyOutcome(study, run.due.generation, (), 0.0,
                                           error=f"the check worker died: {exc}")
                except Exception as exc:  # noqa: BLE001
                    # a defect of the check (or of one hostile study) ends as that
                    # study's error, never as the scheduler's
                    outcome = StudyOutcome(study, run.due.generation, (), 0.0,
                                           error=f"the check raised {describe_exception(exc)}")
                self._finish(run, outcome)
            finally:
                # collected once, whatever happened: a run left here would be retried
                # (and fail) on every round
                with self._sched_lock:
                    del self._running[study]

    def _finish(self, run: _Running, outcome: StudyOutcome) -> None:
        study = outcome.study_uid
        reports_dir = self.store.reports_dir(study)
        written: list[str] = []
        failed_cases = 0
        for case in outcome.cases:
            try:
                self._finish_case(run, outcome, case, reports_dir, written)
            except Exception as exc:  # noqa: BLE001
                failed_cases += 1
                _event("case", study=study, case=case.key, name=case.name, status="error",
                       error=f"its results could not be recorded: {describe_exception(exc)}",
                       generation=outcome.generation)
        if outcome.error is None and not failed_cases:
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

    def _finish_case(self, run: _Running, outcome: StudyOutcome, case: Any,
                     reports_dir: Path, written: list[str]) -> None:
        study = outcome.study_uid
        key = validate_uid(case.key, what="case key") if case.key != "case" else "case"
        for fmt, data in case.reports.items():
            path = reports_dir / key / f"report.{REPORT_SUFFIX[fmt]}"
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
               reports=[w for w in written if f"/{key}/" in w], sent=sent,
               **({"error": case.error} if case.error else {}))

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
    Returns 0, or :data:`EXIT_SCHEDULER_DIED` when the scheduler thread died (the node
    then stops, so that systemd's ``Restart=on-failure`` starts it again: studies
    stored meanwhile are checked at the next start).
    """
    stop = threading.Event()

    def _signal(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, _signal) for s in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        with DicomNode(config) as node:
            if out is not None:
                print(f"contourqa listen: {config.ae_title} on {config.host}:{node.port}"
                      f"{' (TLS)' if config.tls else ''}, storage {config.storage_dir}",
                      file=out, flush=True)
            if ready is not None:
                ready(node)
            while not stop.wait(0.5):
                if not node.healthy:
                    code = EXIT_SCHEDULER_DIED
                    break
            if out is not None:
                print("contourqa listen: stopping"
                      + (" (the scheduler died; restart the node)" if code else
                         " (finishing running checks)"), file=out, flush=True)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    return code
