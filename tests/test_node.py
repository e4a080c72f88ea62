"""The DICOM node (``contourqa listen``) against real peers: dcmtk's echoscu and storescu.

Every node binds port 0 on loopback and the test reads the port back; readiness is
``DicomNode.start()`` returning (the socket listens by then), and results are waited
for through the node's structured log, never with a fixed sleep.  Tests needing dcmtk
are skipped with the reason when it is absent (``scripts/install-tools.sh``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest

from contourqa.errors import InvalidUIDError, StorageFullError
from contourqa.node import AllowedPeer, DicomNode, NodeConfig
from contourqa.node.completion import missing_parts
from contourqa.node.store import ObjectStore, validate_uid
from contourqa.report import validate_report

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "test_data" / "demo_case" / "dicom"


def dcmtk(tool: str) -> str:
    """Path of a dcmtk program; pynetdicom installs Python look-alikes of the same name
    into the virtual environment, which are skipped."""
    for d in os.get_exec_path():
        p = Path(d) / tool
        if p.is_file() and os.access(p, os.X_OK):
            with open(p, "rb") as fh:
                if fh.read(2) == b"#!":
                    continue  # a script: pynetdicom's storescu/echoscu, not dcmtk's
            return str(p)
    pytest.skip(f"dcmtk {tool} not installed (Debian package dcmtk; scripts/install-tools.sh)")


class LogLines(logging.Handler):
    """Collects the node's JSON log lines and lets a test wait for one."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.events: list[dict] = []
        self._cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._cond:
            self.events.append(json.loads(record.getMessage()))
            self._cond.notify_all()

    def wait_for(self, pred: Callable[[dict], bool], *, timeout: float = 30.0,
                 start: int = 0) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events[start:]:
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching log line in {timeout} s; last: "
                                         f"{self.events[-5:]}")
                self._cond.wait(left)

    def of(self, kind: str) -> list[dict]:
        with self._cond:
            return [e for e in self.events if e["event"] == kind]


@pytest.fixture
def lines() -> Iterator[LogLines]:
    h = LogLines()
    logger = logging.getLogger("contourqa.node")
    logger.addHandler(h)
    old = logger.level
    logger.setLevel(logging.INFO)
    yield h
    logger.removeHandler(h)
    logger.setLevel(old)


def _config(tmp: Path, **kw: object) -> NodeConfig:
    base: dict[str, object] = {
        "storage_dir": tmp / "storage", "port": 0, "idle_s": 1.5,
        "allowed": (AllowedPeer("TPS"), AllowedPeer("TPS2", "127.0.0.1")),
        "report_formats": ("json",), "worker_kind": "thread"}
    base.update(kw)
    return NodeConfig(**base)  # type: ignore[arg-type]


def storescu(port: int, *paths: Path | str, aet: str = "TPS") -> list[str]:
    return [dcmtk("storescu"), "-aet", aet, "-aec", "CONTOURQA", "+sd", "+r", "-nh",
            "127.0.0.1", str(port), *map(str, paths)]


def _strip(obj: object) -> object:
    """A report without what legitimately differs between runs and folders."""
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in ("timings_s", "files")}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _report(node: DicomNode, case_event: dict) -> dict:
    """The one case of a report.json the node wrote (the document of `check --json`)."""
    path = node.store.root / case_event["reports"][0]
    doc = json.loads(path.read_text(encoding="utf-8"))
    validate_report(doc)
    (case,) = doc["cases"]
    return case


# -- units: no network -------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["", "..", "1.2.3.", ".1.2", "1..2", "1.2/../../etc",
                                 "1.2.3\\x", "1.2.a", "1." + "2" * 63, "1.2\n3"])
def test_uids_that_are_not_uids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidUIDError):
        validate_uid(bad)


def test_uid_pad_byte_is_not_part_of_the_uid() -> None:
    assert validate_uid("1.2.840.10008.1.1\x00") == "1.2.840.10008.1.1"


def test_store_bound_refuses_clearly(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path, max_bytes=1000)
    store.write("1.2", "1.2.3", "1.2.3.4", lambda fh: fh.write(b"x" * 600), 600)
    with pytest.raises(StorageFullError, match="raise --max-storage"):
        store.write("1.2", "1.2.3", "1.2.3.5", lambda fh: fh.write(b"x" * 600), 600)
    # replacing the same object frees its old size first
    store.write("1.2", "1.2.3", "1.2.3.4", lambda fh: fh.write(b"y" * 900), 900)
    assert store.used_bytes == 900
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".incoming-")]


def test_completion_says_what_is_missing() -> None:
    from contourqa.io.discovery import index_folder

    objs = {o.sop_instance_uid: o for o in index_folder(DEMO).objects}
    assert missing_parts(objs) == ()
    no_dose = {k: o for k, o in objs.items() if o.modality != "RTDOSE"}
    assert [m for m in missing_parts(no_dose) if "RT Dose" in m]
    cts = sorted(k for k, o in objs.items() if o.modality == "CT")
    some = {k: o for k, o in objs.items() if k not in cts[:5]}
    assert missing_parts(some) == (
        "5 of the 48 images referenced by the structure set of plan T10 SBRT were not received",)
    assert missing_parts({}) == ("no RT Plan was received",)


def test_api_docstring_examples_run() -> None:
    import doctest

    import contourqa.api
    import contourqa.node.store
    import contourqa.options

    for module in (contourqa.api, contourqa.node.store, contourqa.options):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_import_is_lazy() -> None:
    code = ("import sys, contourqa; assert 'numpy' not in sys.modules, 'numpy'; "
            "assert 'pynetdicom' not in sys.modules; "
            "assert callable(contourqa.check) and callable(contourqa.dvh); "
            "import contourqa.check; assert callable(contourqa.check); "
            "print(contourqa.Status.FAIL.value)")
    out = subprocess.run([os.sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "fail"


# -- against dcmtk -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_cases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from test_data.phantom import PRESETS, generate_case

    root = tmp_path_factory.mktemp("phantoms")
    a = generate_case(PRESETS["body_lateral_left"].replace(dose_model="analytic"), root / "a")
    b = generate_case(PRESETS["posterior_elements"].replace(dose_model="analytic"), root / "b")
    return a.rtdose_path.parent, b.rtdose_path.parent


def test_echo_and_unknown_calling_ae(tmp_path: Path, lines: LogLines) -> None:
    echoscu = dcmtk("echoscu")
    with DicomNode(_config(tmp_path)) as node:
        ok = subprocess.run([echoscu, "-aet", "TPS", "-aec", "CONTOURQA", "127.0.0.1",
                             str(node.port)], capture_output=True, text=True, timeout=30)
        assert ok.returncode == 0, ok.stderr
        bad = subprocess.run([echoscu, "-aet", "STRANGER", "-aec", "CONTOURQA", "127.0.0.1",
                              str(node.port)], capture_output=True, text=True, timeout=30)
        assert bad.returncode != 0
        assert "Rejected" in bad.stderr or "rejected" in bad.stderr.lower()
    assoc = lines.of("association")
    assert [a["outcome"] for a in assoc] == ["released", "rejected"]
    assert assoc[1]["calling_ae"] == "STRANGER"


def test_sent_case_report_matches_check_command(tmp_path: Path, lines: LogLines) -> None:
    from contourqa.cli import main

    config = _config(tmp_path, worker_kind="process")
    with DicomNode(config) as node:
        out = subprocess.run(storescu(node.port, DEMO), capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        case = lines.wait_for(lambda e: e["event"] == "case", timeout=60)
        assert case["complete"] and case["missing"] == []
        sent = _report(node, case)
    assert lines.of("check_run")[0]["error"] is None
    assoc = lines.of("association")[0]
    assert assoc["outcome"] == "released" and assoc["stored"] == 51 and assoc["failed"] == 0
    assert len(lines.of("object")) == 51
    cli_json = tmp_path / "cli.json"
    assert main(["check", str(DEMO), "--json", str(cli_json)]) in (0, 1)
    (expected,) = json.loads(cli_json.read_text(encoding="utf-8"))["cases"]
    assert _strip(sent) == _strip(expected)
    # files name the stored copies, under the storage folder
    assert all(f.startswith(str(config.storage_dir)) for f in sent["case"]["files"])


def test_two_senders_at_once(tmp_path: Path, lines: LogLines,
                             two_cases: tuple[Path, Path]) -> None:
    with DicomNode(_config(tmp_path, jobs=2)) as node:
        procs = [subprocess.Popen(storescu(node.port, d, aet=aet), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
                 for d, aet in zip(two_cases, ("TPS", "TPS2"))]
        for p in procs:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
        lines.wait_for(lambda e: e["event"] == "case", timeout=60)
        assert node.wait_idle(60)
        cases = lines.of("case")
        assert len({c["study"] for c in cases}) == 2
        assert all(c["complete"] for c in cases)
        for c in cases:
            assert _report(node, c)["case"]["plan_label"]
    assert sorted(a["calling_ae"] for a in lines.of("association")) == ["TPS", "TPS2"]


def _slow_writes(node: DicomNode, delay_s: float) -> None:
    real = node.store.write

    def slow(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(delay_s)
        return real(*args, **kwargs)

    node.store.write = slow  # type: ignore[method-assign]


def test_killed_sender_leaves_nothing_half_written_and_resend_completes(
        tmp_path: Path, lines: LogLines) -> None:
    config = _config(tmp_path, idle_s=1.0)
    with DicomNode(config) as node:
        _slow_writes(node, 0.03)
        proc = subprocess.Popen(storescu(node.port, DEMO), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        lines.wait_for(lambda e: len(lines.of("object")) >= 10, timeout=30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        aborted = lines.wait_for(lambda e: e["event"] == "association", timeout=30)
        assert aborted["outcome"] in ("aborted", "closed")
        # The idle timeout checks what arrived, saying what is missing (storescu sent CT
        # slices first: there is no case to check yet).
        first = lines.wait_for(lambda e: e["event"] == "check_started", timeout=30)
        assert not first["complete"] and first["missing"] == ["no RT Plan was received"]
        assert "nothing to check" in lines.wait_for(
            lambda e: e["event"] == "check_run")["error"]
        files = [p for p in config.storage_dir.rglob("*") if p.is_file()
                 and "objects" in p.parts]
        assert not [p for p in files if p.name.startswith(".")]
        assert len(files) == aborted["stored"] < 51
        for p in files:  # every file counted is whole
            ds = pydicom.dcmread(p)
            assert len(ds.PixelData) == ds.Rows * ds.Columns * 2
        n_before = len(lines.events)
        node.store.write = ObjectStore.write.__get__(node.store)  # type: ignore[method-assign]
        out = subprocess.run(storescu(node.port, DEMO), capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        second = lines.wait_for(lambda e: e["event"] == "case", start=n_before, timeout=60)
        assert second["generation"] > first["generation"]
        assert second["complete"] and second["missing"] == []
        report = _report(node, second)
        assert "node.incomplete_study" not in [c["code"] for c in report["checks"]]
        assert report["case"]["image"]["n_slices"] == 48


def test_malformed_and_crafted_objects_are_refused_and_node_keeps_serving(
        tmp_path: Path, lines: LogLines, monkeypatch: pytest.MonkeyPatch) -> None:
    crafted = tmp_path / "crafted"
    crafted.mkdir()
    ds = pydicom.dcmread(DEMO / "CT_001.dcm")
    ds.StudyInstanceUID = "1.2.3/../../../../escape"
    ds.save_as(crafted / "escape.dcm")
    no_study = pydicom.dcmread(DEMO / "CT_002.dcm")
    del no_study.StudyInstanceUID
    no_study.save_as(crafted / "no_study.dcm")
    config = _config(tmp_path)
    with DicomNode(config) as node:
        cmd = storescu(node.port, crafted / "escape.dcm")
        out = subprocess.run([cmd[0], "-v", *cmd[1:]], capture_output=True, text=True,
                             timeout=30)
        refused = lines.wait_for(lambda e: e["event"] == "object")
        assert refused["outcome"] == "refused" and refused["status"] == "0xC001"
        assert "not a DICOM UID" in refused["error"]
        assert "Error: CannotUnderstand" in out.stderr, out.stderr  # the peer was told
        _send_undecodable(node.port, monkeypatch)
        malformed = lines.wait_for(lambda e: e["event"] == "object" and e is not refused)
        assert malformed["status"] == "0xC000" and "malformed" in malformed["error"]
        subprocess.run(storescu(node.port, crafted / "no_study.dcm"), capture_output=True,
                       timeout=30)
        lines.wait_for(lambda e: e["event"] == "object" and "StudyInstanceUID ''"
                       in e.get("error", ""))
        # still serving
        ok = subprocess.run([dcmtk("echoscu"), "-aet", "TPS", "-aec", "CONTOURQA", "127.0.0.1",
                             str(node.port)],
                            capture_output=True, timeout=30)
        assert ok.returncode == 0
    assert [p for p in tmp_path.rglob("escape*")] == [crafted / "escape.dcm"]
    assert not [p for p in config.storage_dir.rglob("*") if p.is_file()]


def _send_undecodable(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A C-STORE whose data set cannot be decoded (a sequence item that is not one).

    dcmtk's storescu will not send a file it cannot parse, so pynetdicom sends the
    raw bytes of a file with a valid meta header, unparsed (chunked sending)."""
    import struct

    from pydicom.dataset import FileMetaDataset
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import ExplicitVRLittleEndian
    from pynetdicom import AE, _config

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.6"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ae = AE(ae_title="TPS")
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2", ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="CONTOURQA")
    assert assoc.is_established
    import io

    buf = io.BytesIO()
    buf.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(buf, meta)
    for tag, value in (((0x0008, 0x0016), b"1.2.840.10008.5.1.4.1.1.2\0"),
                       ((0x0008, 0x0018), b"1.2.3.4.5.6\0")):
        buf.write(struct.pack("<HH", *tag) + b"UI" + struct.pack("<H", len(value)) + value)
    # (0010,0010) as an undefined-length SQ whose "item" is not an item tag
    buf.write(b"\x10\x00\x10\x00SQ\x00\x00\xff\xff\xff\xff\xfe\xff\x00\xe0\x10\x00\x00\x00garbage")
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"contourqa-bad-{os.getpid()}.dcm"
    path.write_bytes(buf.getvalue())
    try:
        status = assoc.send_c_store(path)
    finally:
        assoc.release()
        path.unlink()
    assert status.Status == 0xC000


def test_storage_bound_refuses_with_out_of_resources(tmp_path: Path, lines: LogLines) -> None:
    with DicomNode(_config(tmp_path, max_storage_bytes=300_000)) as node:
        subprocess.run(storescu(node.port, DEMO), capture_output=True, timeout=60)
        full = lines.wait_for(lambda e: e["event"] == "object" and e["outcome"] ==
                              "storage_full")
        assert full["status"] == "0xA700" and "--max-storage" in full["error"]
        assert node.store.used_bytes <= 300_000


def test_graceful_stop_finishes_the_running_check(tmp_path: Path, lines: LogLines) -> None:
    node = DicomNode(_config(tmp_path)).start()
    try:
        out = subprocess.run(storescu(node.port, DEMO), capture_output=True, timeout=60)
        assert out.returncode == 0
        lines.wait_for(lambda e: e["event"] == "check_started")
    finally:
        node.stop()
    case = lines.of("case")
    assert len(case) == 1 and (node.store.root / case[0]["reports"][0]).is_file()
    # A restart finds the study checked and does not check it again.
    node2 = DicomNode(_config(tmp_path)).start()
    try:
        assert node2.wait_idle(10)
    finally:
        node2.stop()
    assert lines.of("study_resumed")[-1]["up_to_date"] is True
    assert len(lines.of("check_run")) == 1


def _destination_scp(received: list) -> tuple[object, int]:
    """A pynetdicom Storage SCP standing in for the PACS the results go back to."""
    from pynetdicom import AE, evt

    ae = AE(ae_title="PACS")
    for uid in ("1.2.840.10008.5.1.4.1.1.104.1", "1.2.840.10008.5.1.4.1.1.88.11"):
        ae.add_supported_context(uid)

    def on_store(event):  # type: ignore[no-untyped-def]
        received.append(event.dataset)
        return 0x0000

    server = ae.start_server(("127.0.0.1", 0), block=False,
                             evt_handlers=[(evt.EVT_C_STORE, on_store)])
    return server, int(server.server_address[1])


@pytest.mark.parametrize("document", ["pdf", "sr"])
def test_result_goes_back_as_encapsulated_pdf_or_sr(tmp_path: Path, lines: LogLines,
                                                    document: str) -> None:
    from contourqa.node import Destination

    received: list = []
    server, port = _destination_scp(received)
    try:
        config = _config(tmp_path, destination=Destination("PACS", "127.0.0.1", port, document))
        with DicomNode(config) as node:
            out = subprocess.run(storescu(node.port, DEMO), capture_output=True, timeout=60)
            assert out.returncode == 0
            case = lines.wait_for(lambda e: e["event"] == "case", timeout=60)
    finally:
        server.shutdown()  # type: ignore[attr-defined]
    assert case["sent"]["status"] == "0x0000"
    (ds,) = received
    plan = pydicom.dcmread(DEMO / "RP.dcm", stop_before_pixels=True)
    assert ds.StudyInstanceUID == plan.StudyInstanceUID and ds.PatientID == plan.PatientID
    assert ds.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == plan.SOPInstanceUID
    if document == "pdf":
        assert ds.MIMETypeOfEncapsulatedDocument == "application/pdf"
        assert bytes(ds.EncapsulatedDocument).startswith(b"%PDF")
    else:
        assert ds.ContentSequence[0].TextValue.startswith("Status: ")


def test_tls_only_node(tmp_path: Path, lines: LogLines) -> None:
    import ssl

    from pynetdicom import AE

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed: cannot make a test certificate")
    cert, key = tmp_path / "node.pem", tmp_path / "node.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    with DicomNode(_config(tmp_path, tls_cert=cert, tls_key=key)) as node:
        # a silent TCP peer first: its TLS handshake must not hold the accept loop
        import socket

        silent = socket.create_connection(("127.0.0.1", node.port), timeout=10)
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
        ae = AE(ae_title="TPS")
        ae.add_requested_context("1.2.840.10008.1.1")
        assoc = ae.associate("127.0.0.1", node.port, ae_title="CONTOURQA",
                             tls_args=(ctx, "127.0.0.1"))
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0x0000
        assoc.release()
        # a plain (non-TLS) peer gets nowhere
        plain = subprocess.run([dcmtk("echoscu"), "-aet", "TPS", "-to", "5", "127.0.0.1",
                                str(node.port)], capture_output=True, timeout=30)
        assert plain.returncode != 0
        silent.close()
    assert lines.of("association")[0]["outcome"] == "released"


def test_store_after_its_association_ended_writes_nothing(tmp_path: Path) -> None:
    # An abort is signalled on another thread than the C-STORE handler: a handler that
    # runs after the association's end was logged must not leave an uncounted file.
    from types import SimpleNamespace

    config = _config(tmp_path)
    with DicomNode(config) as node:
        writes: list[object] = []
        node.store.write = lambda *a, **k: writes.append(a)  # type: ignore[method-assign]
        ended = SimpleNamespace(assoc=object(), request=SimpleNamespace(
            AffectedSOPClassUID="1.2.840.10008.5.1.4.1.1.2",
            AffectedSOPInstanceUID="1.2.3.4"))
        assert node._on_store(ended) == 0xA700
        assert writes == []
        assert not [p for p in config.storage_dir.rglob("*") if p.is_file()
                    and "objects" in p.parts]


# -- hostile peers and faults (issue "Faults and hostile input") --------------------------

def _big_ct(path: Path, *, n_bytes: int) -> Path:
    """A demo CT slice whose pixel data is about ``n_bytes`` long (a new SOP instance)."""
    import numpy as np
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(DEMO / "CT_001.dcm")
    side = int((n_bytes / 2) ** 0.5)
    ds.Rows = ds.Columns = side
    ds.PixelData = np.full((side, side), 7, dtype=np.uint16).tobytes()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path)
    return path


def test_called_ae_title_must_be_ours(tmp_path: Path, lines: LogLines) -> None:
    echoscu = dcmtk("echoscu")
    with DicomNode(_config(tmp_path)) as node:
        bad = subprocess.run([echoscu, "-aet", "TPS", "-aec", "SOMEONE_ELSE", "127.0.0.1",
                              str(node.port)], capture_output=True, text=True, timeout=30)
        assert bad.returncode != 0
        assert "Called AE Title Not Recognized" in bad.stderr, bad.stderr
    (rejected,) = lines.of("association")
    assert rejected["outcome"] == "rejected" and rejected["called_ae"] == "SOMEONE_ELSE"
    assert "called AE title" in rejected["reason"]


def test_sop_class_other_than_negotiated_is_refused(tmp_path: Path, lines: LogLines,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """An RT Plan data set sent over a CT Image context (the file meta says CT)."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info
    from pydicom.uid import ExplicitVRLittleEndian
    from pynetdicom import AE, _config

    ct_class = "1.2.840.10008.5.1.4.1.1.2"
    plan = pydicom.dcmread(DEMO / "RP.dcm")
    meta = plan.file_meta
    meta.MediaStorageSOPClassUID = ct_class
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, plan)
    head = DicomBytesIO()
    head.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(head, meta)
    disguised = tmp_path / "disguised.dcm"
    disguised.write_bytes(head.getvalue() + body.getvalue())
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)  # send the file as is
    config = _config_for(tmp_path)
    with DicomNode(config) as node:
        ae = AE(ae_title="TPS")
        ae.add_requested_context(ct_class, ExplicitVRLittleEndian)
        assoc = ae.associate("127.0.0.1", node.port, ae_title="CONTOURQA")
        assert assoc.is_established
        try:
            status = assoc.send_c_store(disguised)
        finally:
            assoc.release()
    assert status.Status == 0xA900
    (obj,) = lines.of("object")
    assert obj["outcome"] == "refused" and "differs from the negotiated" in obj["error"]
    assert not [p for p in config.storage_dir.rglob("*.dcm")]


def _config_for(tmp: Path, **kw: object) -> NodeConfig:
    return _config(tmp, **kw)


@pytest.mark.parametrize("accept", [False, True])
def test_deflated_transfer_syntax_only_when_configured(tmp_path: Path, accept: bool) -> None:
    from pydicom.uid import DeflatedExplicitVRLittleEndian
    from pynetdicom import AE

    ct_class = "1.2.840.10008.5.1.4.1.1.2"
    with DicomNode(_config(tmp_path, accept_deflated=accept)) as node:
        ae = AE(ae_title="TPS")
        ae.add_requested_context(ct_class, DeflatedExplicitVRLittleEndian)
        assoc = ae.associate("127.0.0.1", node.port, ae_title="CONTOURQA")
        accepted = [cx.abstract_syntax for cx in assoc.accepted_contexts] \
            if assoc.is_established else []
        if assoc.is_established:
            assoc.release()
    assert accepted == ([ct_class] if accept else [])


def test_oversized_object_aborts_its_association_as_it_arrives(
        tmp_path: Path, lines: LogLines, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    incoming = tmp_path / "tmp"
    incoming.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(incoming))  # where pynetdicom streams to
    big = _big_ct(tmp_path / "big.dcm", n_bytes=3 << 20)
    small = DEMO / "CT_002.dcm"
    config = _config(tmp_path, max_object_bytes=1 << 20)
    with DicomNode(config) as node:
        out = subprocess.run(storescu(node.port, small, big), capture_output=True, text=True,
                             timeout=60)
        assert out.returncode != 0  # storescu saw its association aborted
        too_large = lines.wait_for(lambda e: e["event"] == "object"
                                   and e["outcome"] == "too_large")
        assert "max object size" in too_large["error"]
        assoc = lines.wait_for(lambda e: e["event"] == "association")
        assert assoc["outcome"] in ("aborted", "closed")
        assert (assoc["stored"], assoc["failed"]) == (1, 1)
        # still serving, and nothing of the large object is left anywhere
        ok = subprocess.run([dcmtk("echoscu"), "-aet", "TPS", "-aec", "CONTOURQA",
                             "127.0.0.1", str(node.port)], capture_output=True, timeout=30)
        assert ok.returncode == 0
    stored = [p for p in config.storage_dir.rglob("*.dcm")]
    assert [p.name for p in stored] == [f"{pydicom.dcmread(small).SOPInstanceUID}.dcm"]
    assert list(incoming.iterdir()) == []


def test_objects_are_streamed_to_disk_not_held_in_memory(tmp_path: Path,
                                                         lines: LogLines) -> None:
    """A 24 MiB object costs the node far less than its size in Python memory (before
    streaming it cost three copies: the received bytes, the decoded data set, the
    re-encoded file)."""
    import tracemalloc

    big = _big_ct(tmp_path / "big.dcm", n_bytes=24 << 20)
    with DicomNode(_config(tmp_path, idle_s=60)) as node:
        tracemalloc.start()
        try:
            out = subprocess.run(storescu(node.port, big), capture_output=True, timeout=60)
            assert out.returncode == 0, out.stderr
            obj = lines.wait_for(lambda e: e["event"] == "object")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert obj["outcome"] == "stored" and obj["bytes"] > 23 << 20
    assert peak < 6 << 20, f"peak {peak / 2**20:.1f} MiB of Python memory"


def test_silent_connections_do_not_lock_out_a_sender(tmp_path: Path, lines: LogLines) -> None:
    """40 silent TCP connections from one address: the door keeps 3 of them (and drops
    those after the ACSE timeout); an allowed sender from another address gets in."""
    import socket

    config = _config(tmp_path, max_per_address=3, acse_timeout_s=1.0)
    socks: list[socket.socket] = []
    with DicomNode(config) as node:
        try:
            for _ in range(40):
                s = socket.socket()
                s.bind(("127.0.0.2", 0))
                s.settimeout(10)
                s.connect(("127.0.0.1", node.port))
                socks.append(s)
            t0 = time.monotonic()
            ok = subprocess.run([dcmtk("echoscu"), "-aet", "TPS", "-aec", "CONTOURQA",
                                 "127.0.0.1", str(node.port)], capture_output=True, text=True,
                                timeout=30)
            assert ok.returncode == 0, ok.stderr
            assert time.monotonic() - t0 < 5
            # every silent connection is closed by the node: 37 at once, 3 after 1 s
            for s in socks:
                assert s.recv(1) == b""
            assert time.monotonic() - t0 < 8
        finally:
            for s in socks:
                s.close()
    refused = [e for e in lines.of("connection") if e["outcome"] == "refused"]
    # 37 when all 40 arrive within the ACSE timeout (more are admitted when it elapses)
    assert 20 <= len(refused) < 40 and {e["address"] for e in refused} == {"127.0.0.2"}


def test_stored_objects_and_reports_are_not_world_readable(tmp_path: Path,
                                                           lines: LogLines) -> None:
    import stat

    config = _config(tmp_path)
    old = os.umask(0o022)
    try:
        with DicomNode(config) as node:
            out = subprocess.run(storescu(node.port, DEMO), capture_output=True, timeout=60)
            assert out.returncode == 0
            lines.wait_for(lambda e: e["event"] == "case", timeout=60)
    finally:
        os.umask(old)
    paths = [config.storage_dir, *config.storage_dir.rglob("*")]
    modes = {stat.S_IMODE(p.stat().st_mode) for p in paths if p.is_file()}
    dir_modes = {stat.S_IMODE(p.stat().st_mode) for p in paths if p.is_dir()}
    assert modes == {0o640} and dir_modes == {0o750}
    assert any(p.name == "report.json" for p in paths)


def test_node_keeps_checking_after_a_study_whose_check_raises(
        tmp_path: Path, lines: LogLines, two_cases: tuple[Path, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import contourqa.node.worker as worker

    real = worker.check_study
    hostile: list[str] = []

    def check_study(study_uid: str, *args: object, **kwargs: object) -> object:
        if not hostile:
            hostile.append(study_uid)
            raise RuntimeError("a defect only this study triggers")
        return real(study_uid, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(worker, "check_study", check_study)
    with DicomNode(_config(tmp_path)) as node:
        for case in two_cases:
            out = subprocess.run(storescu(node.port, case), capture_output=True, timeout=60)
            assert out.returncode == 0
            lines.wait_for(lambda e: e["event"] == "check_run"
                           and len(lines.of("check_run")) == len(hostile) + len(
                               lines.of("case")) and e is lines.of("check_run")[-1],
                           timeout=60)
        assert node.wait_idle(60)
        assert node.healthy
    runs = lines.of("check_run")
    assert [r["study"] for r in runs][0] == hostile[0]
    assert "RuntimeError: a defect only this study triggers" in runs[0]["error"]
    (case,) = lines.of("case")
    assert case["study"] != hostile[0] and case["reports"]


# the scenario is a thread dying of an unhandled exception: pytest reports those
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_scheduler_refuses_objects_and_stops_the_node(
        tmp_path: Path, lines: LogLines, monkeypatch: pytest.MonkeyPatch) -> None:
    from contourqa.node.scp import EXIT_SCHEDULER_DIED, serve

    def die(self: DicomNode) -> bool:
        raise SystemExit("scheduler thread ends")

    monkeypatch.setattr(DicomNode, "_schedule_round", die)
    seen: list[int] = []

    def ready(node: DicomNode) -> None:
        deadline = time.monotonic() + 10
        while node.healthy and time.monotonic() < deadline:
            time.sleep(0.02)
        out = subprocess.run(storescu(node.port, DEMO / "CT_001.dcm"), capture_output=True,
                             timeout=30)
        seen.append(out.returncode)

    t0 = time.monotonic()
    assert serve(_config(tmp_path), ready=ready) == EXIT_SCHEDULER_DIED
    assert time.monotonic() - t0 < 20
    assert lines.of("scheduler_died")
    (obj,) = lines.of("object")
    assert (obj["outcome"], obj["status"]) == ("not_checking", "0xA700")
    assert not [p for p in (tmp_path / "storage").rglob("*.dcm")]


def test_listen_limit_flags_reach_the_node_and_defaults_match_the_help(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI's limit flags reach NodeConfig; absent, NodeConfig's defaults apply and
    are the ones the help states."""
    from contourqa.cli import build_parser
    from contourqa.node import config as node_config

    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["listen", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert node_config.DEFAULT_MAX_OBJECT_BYTES == 1 << 30
    assert "as it arrives (default: 1G)" in text
    for flag, value in (("--max-associations", node_config.DEFAULT_MAX_ASSOCIATIONS),
                        ("--max-per-address", node_config.DEFAULT_MAX_PER_ADDRESS),
                        ("--acse-timeout", node_config.DEFAULT_ACSE_TIMEOUT_S),
                        ("--network-timeout", node_config.DEFAULT_NETWORK_TIMEOUT_S)):
        after = text.split(f"{flag} ", 2)[-1]
        assert after.split("(default: ", 1)[1].startswith(f"{value:g})"), flag
    from contourqa.cli import listen_config

    base = ["listen", "--storage", "/tmp/unused-storage"]
    default = listen_config(parser.parse_args(base))
    assert (default.max_object_bytes, default.max_per_address, default.accept_deflated) == (
        node_config.DEFAULT_MAX_OBJECT_BYTES, node_config.DEFAULT_MAX_PER_ADDRESS, False)
    given = listen_config(parser.parse_args([
        *base, "--max-object", "200M", "--max-associations", "5", "--max-per-address", "2",
        "--acse-timeout", "3", "--network-timeout", "7", "--accept-deflated"]))
    assert (given.max_object_bytes, given.max_associations, given.max_per_address,
            given.acse_timeout_s, given.network_timeout_s, given.accept_deflated) == (
        200 << 20, 5, 2, 3.0, 7.0, True)
