"""Settings of one DICOM node (``contourqa listen``): a frozen, per-node object."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from contourqa.check import CheckOptions
from contourqa.errors import NodeConfigError

__all__ = ["DEFAULT_ACSE_TIMEOUT_S", "DEFAULT_MAX_ASSOCIATIONS", "DEFAULT_MAX_OBJECT_BYTES",
           "DEFAULT_MAX_PER_ADDRESS", "DEFAULT_NETWORK_TIMEOUT_S", "REPORT_FORMATS",
           "AllowedPeer", "Destination", "NodeConfig", "parse_size"]

#: Report formats the node can write next to each case.
REPORT_FORMATS: tuple[str, ...] = ("json", "html", "pdf", "csv", "sarif")

# Defaults of the node's door.  Operational limits, not clinical policy: a planning
# system sends one association at a time, objects of at most a few hundred MiB
# (an RT Dose or an enhanced multi-frame CT), with sub-second gaps between them.
#: Bytes of one received object; a larger one aborts its association while it arrives.
DEFAULT_MAX_OBJECT_BYTES = 1 << 30
#: Associations (TCP connections) open at once, from every address together.
DEFAULT_MAX_ASSOCIATIONS = 32
#: Connections open at once from one IP address; more are closed on accept.
DEFAULT_MAX_PER_ADDRESS = 8
#: Seconds a new connection may stay silent before its A-ASSOCIATE-RQ (and ACSE replies).
DEFAULT_ACSE_TIMEOUT_S = 10.0
#: Seconds an established association may stay silent between messages.
DEFAULT_NETWORK_TIMEOUT_S = 30.0

# PS3.5 6.2: AE titles are up to 16 characters of the default repertoire, no backslash
# or control characters; leading and trailing spaces are not significant.
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmMgGtT]?)i?[bB]?\s*$")


def _ae_title(value: str, what: str) -> str:
    title = value.strip()
    if not title or not _AE_TITLE.match(title):
        raise NodeConfigError(f"{what} {value!r}: an AE title has 1 to 16 printable characters "
                              "(no backslash), e.g. CONTOURQA")
    return title


@dataclass(frozen=True)
class AllowedPeer:
    """A calling AE title allowed to associate, optionally bound to one IP address.

    Attributes
    ----------
    ae_title : str
    address : str or None
        IPv4 or IPv6 address the association must come from; ``None``: any.
    """

    ae_title: str
    address: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ae_title", _ae_title(self.ae_title, "Allowed AE title"))
        if self.address is not None:
            try:
                ipaddress.ip_address(self.address)
            except ValueError as exc:
                raise NodeConfigError(f"Allowed peer {self.ae_title}: {self.address!r} is not "
                                      "an IP address (write TITLE@192.0.2.10)") from exc

    @classmethod
    def parse(cls, text: str) -> AllowedPeer:
        """``"TPS"`` or ``"TPS@10.0.0.5"``."""
        title, sep, address = text.strip().partition("@")
        return cls(title, address.strip() if sep else None)

    def admits(self, ae_title: str, address: str) -> bool:
        return ae_title.strip() == self.ae_title and (
            self.address is None or ipaddress.ip_address(address) == ipaddress.ip_address(
                self.address))


@dataclass(frozen=True)
class Destination:
    """A DICOM node the results go back to (C-STORE of an Encapsulated PDF or an SR).

    Attributes
    ----------
    ae_title, host : str
    port : int
    document : {"pdf", "sr"}
        Encapsulated PDF of the report, or a Comprehensive SR listing the failed checks.
    """

    ae_title: str
    host: str
    port: int
    document: str = "pdf"

    def __post_init__(self) -> None:
        object.__setattr__(self, "ae_title", _ae_title(self.ae_title, "Destination AE title"))
        if not 0 < self.port < 65536:
            raise NodeConfigError(f"Destination port {self.port}: must be 1 to 65535")
        if self.document not in ("pdf", "sr"):
            raise NodeConfigError(f"Destination document {self.document!r}: 'pdf' or 'sr'")

    @classmethod
    def parse(cls, text: str, *, document: str = "pdf") -> Destination:
        """``"PACS@127.0.0.1:11112"``."""
        title, sep, rest = text.partition("@")
        host, sep2, port = rest.rpartition(":")
        if not (sep and sep2 and port.isdigit()):
            raise NodeConfigError(f"Destination {text!r}: write AE@HOST:PORT, "
                                  "e.g. PACS@127.0.0.1:11112")
        return cls(title, host.strip("[]"), int(port), document)


def parse_size(text: str) -> int:
    """Bytes from ``"500M"``, ``"20 GB"``, ``"1.5G"`` or a plain number of bytes."""
    m = _SIZE.match(text)
    if not m:
        raise NodeConfigError(f"Storage size {text!r}: write a number with an optional unit "
                              "K, M, G or T, e.g. 20G")
    factor = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}[m.group(2).lower()]
    return int(float(m.group(1)) * factor)


@dataclass(frozen=True)
class NodeConfig:
    """Everything one node needs; nothing is read from global state.

    Attributes
    ----------
    storage_dir : Path
        Received objects go to ``<storage>/<StudyInstanceUID>/objects/``, reports to
        ``<storage>/<StudyInstanceUID>/reports/``.
    ae_title : str
        The node's own (called) AE title.
    host : str
        Address to bind; loopback by default.
    port : int
        TCP port; 0 picks a free one (read it back from :attr:`DicomNode.port`).
    allowed : tuple of AllowedPeer
        Calling AE titles (and optional addresses) that may associate; empty: any.
    tls_cert, tls_key : Path or None
        PEM certificate and key: the node then accepts only TLS connections.
    tls_ca : Path or None
        Client certificates must be signed by this CA (mutual TLS) when given.
    max_storage_bytes : int or None
        Objects that would make the storage folder larger are refused
        (status A700, out of resources).
    idle_s : float
        A study that is not complete is checked with what it has this many seconds
        after its last object.
    report_formats : tuple of str
        Any of :data:`REPORT_FORMATS`.
    check_options : CheckOptions
        Options of every check (constraint sets, role mapping ...).
    jobs : int
        Checks run at the same time.
    worker_kind : {"process", "thread"}
        Processes isolate a crashing or memory-hungry check from the node.
    audit_db : str or Path or None
        Also store every result in this audit database (see ``contourqa audit``).
    destination : Destination or None
        Where to send the Encapsulated PDF (or SR) of each checked case.
    max_object_bytes : int
        Largest object accepted, bytes (default :data:`DEFAULT_MAX_OBJECT_BYTES`, 1 GiB).
        Objects are streamed to a temporary file as they arrive, and an association
        whose object grows past this is aborted there, before the rest is read.
    max_associations : int
        Associations open at once (default :data:`DEFAULT_MAX_ASSOCIATIONS`).
    max_per_address : int
        TCP connections open at once from one IP address
        (default :data:`DEFAULT_MAX_PER_ADDRESS`); more are closed as they are accepted.
    acse_timeout_s : float
        A connection that sends no association request within this many seconds is
        closed (default :data:`DEFAULT_ACSE_TIMEOUT_S`).
    network_timeout_s : float
        An association silent this many seconds is aborted
        (default :data:`DEFAULT_NETWORK_TIMEOUT_S`).
    accept_deflated : bool
        Accept the deflated transfer syntaxes (off by default: a small deflated object
        can inflate to gigabytes in memory).
    """

    storage_dir: Path
    ae_title: str = "CONTOURQA"
    host: str = "127.0.0.1"
    port: int = 11112
    allowed: tuple[AllowedPeer, ...] = ()
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    max_storage_bytes: int | None = None
    idle_s: float = 60.0
    report_formats: tuple[str, ...] = ("json", "html", "pdf")
    check_options: CheckOptions = field(default_factory=CheckOptions)
    jobs: int = 1
    worker_kind: str = "process"
    audit_db: str | Path | None = None
    destination: Destination | None = None
    max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES
    max_associations: int = DEFAULT_MAX_ASSOCIATIONS
    max_per_address: int = DEFAULT_MAX_PER_ADDRESS
    acse_timeout_s: float = DEFAULT_ACSE_TIMEOUT_S
    network_timeout_s: float = DEFAULT_NETWORK_TIMEOUT_S
    accept_deflated: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "storage_dir", Path(self.storage_dir))
        object.__setattr__(self, "ae_title", _ae_title(self.ae_title, "AE title"))
        if not 0 <= self.port < 65536:
            raise NodeConfigError(f"port {self.port}: must be 0 (any free port) to 65535")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise NodeConfigError("TLS needs both --tls-cert and --tls-key")
        for name in ("tls_cert", "tls_key", "tls_ca"):
            p = getattr(self, name)
            if p is not None:
                object.__setattr__(self, name, Path(p))
                if not Path(p).is_file():
                    raise NodeConfigError(f"{name.replace('_', '-')} {p}: no such file")
        if self.tls_ca is not None and self.tls_cert is None:
            raise NodeConfigError("--tls-ca needs --tls-cert and --tls-key")
        if self.max_storage_bytes is not None and self.max_storage_bytes <= 0:
            raise NodeConfigError(f"max storage {self.max_storage_bytes}: must be positive")
        if not self.idle_s > 0:
            raise NodeConfigError(f"idle seconds {self.idle_s}: must be positive")
        unknown = [f for f in self.report_formats if f not in REPORT_FORMATS]
        if unknown:
            raise NodeConfigError(f"report formats {', '.join(unknown)}: choose from "
                                  f"{', '.join(REPORT_FORMATS)}")
        if self.jobs < 1:
            raise NodeConfigError(f"jobs {self.jobs}: at least 1")
        if self.worker_kind not in ("process", "thread"):
            raise NodeConfigError(f"worker kind {self.worker_kind!r}: 'process' or 'thread'")
        if self.max_object_bytes <= 0:
            raise NodeConfigError(f"max object size {self.max_object_bytes}: must be positive")
        if self.max_associations < 1 or self.max_per_address < 1:
            raise NodeConfigError(f"max associations {self.max_associations} and per address "
                                  f"{self.max_per_address}: at least 1 each")
        for name in ("acse_timeout_s", "network_timeout_s"):
            if not getattr(self, name) > 0:
                raise NodeConfigError(f"{name.removesuffix('_s').replace('_', ' ')} "
                                      f"{getattr(self, name)} s: must be positive")

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def admits(self, ae_title: str, address: str) -> bool:
        """Whether a calling AE title from ``address`` may associate."""
        return not self.allowed or any(p.admits(ae_title, address) for p in self.allowed)
