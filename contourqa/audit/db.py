"""The audit results database: schema, migrations and the few writes the runner makes.

SQLite by default (a file the user names); PostgreSQL for a shared department
database (``postgresql://user@host/db``, through psycopg 3).  Only the runner's main
process writes, one transaction per case, so an interrupted run leaves every finished
case in place and nothing half-written.

Schema (version 3)
------------------
``schema_meta(key, value)``
    ``schema_version`` -> the version below; migrations run in order on open.
``runs`` -- one row per ``run_audit`` call
    ``run_id``, ``started_at`` / ``finished_at`` (ISO 8601 UTC), ``source``,
    ``tool_version``, ``options_hash``, ``jobs``, ``executor`` (``process`` | ``dask``),
    ``n_cases`` (found), ``n_checked``, ``n_skipped``, ``n_errors``,
    ``state`` (``running`` | ``done`` | ``interrupted``); from version 3 ``host`` and
    ``pid`` of the process running it: a ``running`` run whose process is gone (killed)
    is marked ``interrupted`` when the next run starts.
``cases`` -- exactly one row per case found (primary key ``case_key``)
    ``case_key``
        ``plan:<SOPInstanceUID>`` (or ``structure_set:`` / ``dose:`` for cases without
        a plan; ``path:<relative path>`` when the UID is missing, ``unit:<id>`` for a
        source unit -- an Orthanc study -- that could not be fetched at all).
    ``unit_id``, ``unit_stamp``
        The source's work unit (a case folder's anchor file, an Orthanc study) and its
        cheap change stamp (file paths + sizes + mtimes; the study's LastUpdate).
    ``name``, ``patient_id``, ``plan_label``, ``plan_uid``, ``structure_set_uid``,
    ``frame_of_reference_uid``, ``n_fractions``, ``prescription_gy``
    ``status``
        ``ok`` (every input part was usable and the check ran) or ``error``.
    ``error_kind``
        ``exception`` (the check raised), ``input`` (a case-level ``input.*`` finding,
        status not_evaluated, left part of the case unevaluated: unreadable or missing
        structure set, dose or images, frame of reference mismatch), ``source`` (the unit could not be fetched), ``crash``
        (the worker process died); NULL when ok.  ``crash`` rows are retried.
    ``error_message``, ``qa_status`` (the report's pass | warn | fail | incomplete),
    ``n_fail``, ``n_warn``, ``n_not_evaluated``, ``n_not_applicable`` (schema 3)
    ``tool_version``, ``options_hash`` (SHA-256 of ``options_json``), ``options_json``
    ``content_hash``
        SHA-256 over the sorted SHA-256 digests of the case's files (independent of
        paths, so a moved archive or a PACS copy hashes the same).
    ``n_files``, ``n_bytes``, ``checked_at``, ``wall_s`` (worker time for the case,
        hashing and reading included), ``check_s`` (``check_case`` alone),
        ``timings_json`` (the report's per-step timings), ``run_id``
``checks`` -- one row per finding: ``case_key``, ``seq`` (order in the report),
    ``code``, ``status``, ``structure``, ``value``, ``limit_value``, ``unit``,
    ``message``, ``source``
``rois`` -- one row per ROI: ``case_key``, ``seq``, ``roi_name``, ``roi_number``,
    ``role``, ``volume_cc``, ``dmin_gy``, ``dmax_gy``, ``dmean_gy``, ``metrics_json``
    (every DVH metric computed: metric -> Gy, cc or NULL)
``reports`` (from version 2) -- ``case_key``, ``report_json`` (the canonical JSON
    report, for the audit report's links)

A case already stored with the same ``content_hash`` (or the same ``unit_stamp``),
``tool_version`` and ``options_hash`` is skipped; otherwise its rows are replaced.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import socket
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contourqa.errors import AuditDatabaseError

__all__ = ["SCHEMA_VERSION", "AuditDatabase", "CaseRecord", "CheckRow", "RoiRow", "StoredCase",
           "redact_url", "utc_now"]

#: Version the migrations below bring a database to.
SCHEMA_VERSION = 4


def utc_now() -> str:
    """The current time, ISO 8601 UTC to the second."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_CASE_COLUMNS: tuple[str, ...] = (
    "case_key", "unit_id", "unit_stamp", "name", "patient_id", "plan_label", "plan_uid",
    "structure_set_uid", "frame_of_reference_uid", "n_fractions", "prescription_gy", "status",
    "error_kind", "error_message", "qa_status", "n_fail", "n_warn", "n_not_evaluated",
    "n_not_applicable",
    "tool_version", "options_hash", "options_json", "content_hash", "n_files", "n_bytes",
    "checked_at", "wall_s", "check_s", "timings_json", "run_id")
_CHECK_COLUMNS = ("case_key", "seq", "code", "status", "structure", "value", "limit_value",
                  "unit", "message", "source")
_ROI_COLUMNS = ("case_key", "seq", "roi_name", "roi_number", "role", "volume_cc", "dmin_gy",
                "dmax_gy", "dmean_gy", "metrics_json")

# Each migration: the statements that bring version n-1 to n.  ``{real}`` and
# ``{serial}`` are filled per dialect.  Never edit a released migration; add one.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE runs (
            run_id {serial}, started_at TEXT NOT NULL, finished_at TEXT, source TEXT NOT NULL,
            tool_version TEXT NOT NULL, options_hash TEXT NOT NULL, jobs INTEGER,
            executor TEXT, n_cases INTEGER, n_checked INTEGER, n_skipped INTEGER,
            n_errors INTEGER, state TEXT NOT NULL)""",
        """CREATE TABLE cases (
            case_key TEXT PRIMARY KEY, unit_id TEXT NOT NULL, unit_stamp TEXT, name TEXT,
            patient_id TEXT, plan_label TEXT, plan_uid TEXT, structure_set_uid TEXT,
            frame_of_reference_uid TEXT, n_fractions INTEGER, prescription_gy {real},
            status TEXT NOT NULL CHECK (status IN ('ok', 'error')), error_kind TEXT,
            error_message TEXT, qa_status TEXT, n_fail INTEGER, n_warn INTEGER,
            n_not_evaluated INTEGER, tool_version TEXT NOT NULL, options_hash TEXT NOT NULL,
            options_json TEXT NOT NULL, content_hash TEXT, n_files INTEGER, n_bytes INTEGER,
            checked_at TEXT, wall_s {real}, check_s {real}, timings_json TEXT,
            run_id INTEGER)""",
        """CREATE TABLE checks (
            case_key TEXT NOT NULL, seq INTEGER NOT NULL, code TEXT NOT NULL,
            status TEXT NOT NULL, structure TEXT, value {real}, limit_value {real}, unit TEXT,
            message TEXT, source TEXT, PRIMARY KEY (case_key, seq))""",
        """CREATE TABLE rois (
            case_key TEXT NOT NULL, seq INTEGER NOT NULL, roi_name TEXT NOT NULL,
            roi_number INTEGER, role TEXT, volume_cc {real}, dmin_gy {real}, dmax_gy {real},
            dmean_gy {real}, metrics_json TEXT, PRIMARY KEY (case_key, seq))""",
        "CREATE INDEX cases_unit ON cases (unit_id)",
    ),
    2: (
        "CREATE TABLE reports (case_key TEXT PRIMARY KEY, report_json TEXT NOT NULL)",
        "CREATE INDEX checks_code_status ON checks (code, status)",
        "CREATE INDEX rois_role ON rois (role)",
    ),
    # checks that do not concern the case (status not_applicable), counted apart
    3: ("ALTER TABLE cases ADD COLUMN n_not_applicable INTEGER",),
    # the audit process of a run, to mark a stale run interrupted
    4: (
        "ALTER TABLE runs ADD COLUMN host TEXT",
        "ALTER TABLE runs ADD COLUMN pid INTEGER",
    ),
}


@dataclass(frozen=True)
class CheckRow:
    """One finding of one case (table ``checks``)."""

    code: str
    status: str
    structure: str | None = None
    value: float | None = None
    limit_value: float | None = None
    unit: str | None = None
    message: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class RoiRow:
    """One ROI of one case with its DVH metrics (table ``rois``); doses in Gy, volume cc."""

    roi_name: str
    roi_number: int | None = None
    role: str | None = None
    volume_cc: float | None = None
    dmin_gy: float | None = None
    dmax_gy: float | None = None
    dmean_gy: float | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class CaseRecord:
    """Everything one case writes: its ``cases`` row, its checks, ROIs and report."""

    case_key: str
    unit_id: str
    status: str
    tool_version: str
    options_hash: str
    options_json: str
    unit_stamp: str | None = None
    name: str | None = None
    patient_id: str | None = None
    plan_label: str | None = None
    plan_uid: str | None = None
    structure_set_uid: str | None = None
    frame_of_reference_uid: str | None = None
    n_fractions: int | None = None
    prescription_gy: float | None = None
    error_kind: str | None = None
    error_message: str | None = None
    qa_status: str | None = None
    n_fail: int | None = None
    n_warn: int | None = None
    n_not_evaluated: int | None = None
    n_not_applicable: int | None = None
    content_hash: str | None = None
    n_files: int | None = None
    n_bytes: int | None = None
    checked_at: str | None = None
    wall_s: float | None = None
    check_s: float | None = None
    timings_json: str | None = None
    run_id: int | None = None
    checks: tuple[CheckRow, ...] = ()
    rois: tuple[RoiRow, ...] = ()
    report_json: str | None = None

    def case_row(self) -> tuple[Any, ...]:
        return tuple(getattr(self, c) for c in _CASE_COLUMNS)


@dataclass(frozen=True)
class StoredCase:
    """What the runner needs to know about a stored case to decide whether to skip it."""

    case_key: str
    unit_id: str
    unit_stamp: str | None
    content_hash: str | None
    tool_version: str
    options_hash: str
    status: str
    error_kind: str | None


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://"))


class AuditDatabase:
    """An open results database, migrated to :data:`SCHEMA_VERSION`.

    Parameters
    ----------
    url : str or Path
        A file path or ``sqlite:///path`` for SQLite (created if absent), or
        ``postgresql://user:password@host:port/dbname`` for PostgreSQL (needs the
        ``psycopg`` package: ``pip install 'contourqa[audit]'``).

    Raises
    ------
    AuditDatabaseError
        The database cannot be opened, or was written by a newer contourqa.
    """

    def __init__(self, url: str | Path) -> None:
        text = str(url)
        self.url = text
        self.dialect = "postgresql" if _is_postgres(text) else "sqlite"
        if self.dialect == "postgresql":
            try:
                import psycopg
            except ImportError as exc:
                raise AuditDatabaseError(
                    f"{redact_url(text)}: a PostgreSQL database needs the psycopg package; "
                    "install it with: pip install 'contourqa[audit]'") from exc
            try:
                self._conn: Any = psycopg.connect(
                    text.replace("postgresql+psycopg://", "postgresql://"))
            except psycopg.Error as exc:
                raise AuditDatabaseError(
                    f"{redact_url(text)}: cannot connect to PostgreSQL ({exc})") from exc
        else:
            path = text.removeprefix("sqlite:///")
            if path != ":memory:":
                parent = Path(path).expanduser().resolve().parent
                if not parent.is_dir():
                    raise AuditDatabaseError(
                        f"{text}: the folder {parent} does not exist; create it first.")
            try:
                self._conn = sqlite3.connect(path, timeout=30.0)
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise AuditDatabaseError(
                    f"{text}: cannot open the audit database ({exc})") from exc
        self.migrate()

    # -- plumbing -------------------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (``?`` placeholders in either dialect); rows if any."""
        cur = self._conn.cursor()
        cur.execute(self._sql(sql), tuple(params))
        rows = cur.fetchall() if cur.description is not None else []
        cur.close()
        return [tuple(r) for r in rows]

    def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            cur = self._conn.cursor()
            cur.executemany(self._sql(sql), rows)
            cur.close()

    def commit(self) -> None:
        self._conn.commit()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> AuditDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema ---------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        """The version stored in ``schema_meta`` (0 for an empty database)."""
        if not self._table_exists("schema_meta"):
            return 0
        rows = self.execute("SELECT value FROM schema_meta WHERE key = 'schema_version'")
        return int(rows[0][0]) if rows else 0

    def _table_exists(self, name: str) -> bool:
        if self.dialect == "sqlite":
            sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        else:
            sql = ("SELECT 1 FROM information_schema.tables WHERE table_name = ? "
                   "AND table_schema = current_schema()")
        return bool(self.execute(sql, (name,)))

    def migrate(self, *, to_version: int = SCHEMA_VERSION) -> None:
        """Apply the migrations from the stored version up to ``to_version``.

        Raises
        ------
        AuditDatabaseError
            The database is newer than this contourqa.
        """
        fill = ({"real": "DOUBLE PRECISION", "serial": "BIGINT GENERATED BY DEFAULT AS "
                 "IDENTITY PRIMARY KEY"} if self.dialect == "postgresql" else
                {"real": "REAL", "serial": "INTEGER PRIMARY KEY AUTOINCREMENT"})
        current = self.schema_version
        if current > SCHEMA_VERSION:
            raise AuditDatabaseError(
                f"{redact_url(self.url)}: schema version {current} was written by a newer "
                f"contourqa (this one knows up to {SCHEMA_VERSION}); upgrade contourqa.")
        if current == 0:
            self.execute("CREATE TABLE schema_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self.execute("INSERT INTO schema_meta (key, value) VALUES ('schema_version', '0')")
        for version in range(current + 1, to_version + 1):
            for statement in _MIGRATIONS[version]:
                self.execute(statement.format(**fill))
            self.execute("UPDATE schema_meta SET value = ? WHERE key = 'schema_version'",
                         (str(version),))
            self.commit()
        self.commit()

    # -- runs -----------------------------------------------------------------------------
    def start_run(self, *, source: str, tool_version: str, options_hash: str, jobs: int,
                  executor: str) -> int:
        """Insert a ``runs`` row in state ``running`` (with this host and process id); its id."""
        rows = self.execute(
            "INSERT INTO runs (started_at, source, tool_version, options_hash, jobs, executor, "
            "state, host, pid) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?) RETURNING run_id",
            (utc_now(), source, tool_version, options_hash, jobs, executor,
             socket.gethostname(), os.getpid()))
        self.commit()
        return int(rows[0][0])

    def mark_stale_runs(self) -> list[int]:
        """Mark ``interrupted`` the runs left ``running`` by a process of this host that
        is gone (killed, or crashed before it could say so); their ids.

        Runs of other hosts are left alone: whether their process lives cannot be told.
        """
        host = socket.gethostname()
        stale = []
        for run_id, pid in self.execute(
                "SELECT run_id, pid FROM runs WHERE state = 'running' AND host = ?", (host,)):
            if pid is None or not _process_alive(int(pid)):
                stale.append(int(run_id))
        for run_id in stale:
            self.execute("UPDATE runs SET state = 'interrupted', finished_at = ? "
                         "WHERE run_id = ?", (utc_now(), run_id))
        self.commit()
        return stale

    def finish_run(self, run_id: int, *, state: str, n_cases: int, n_checked: int,
                   n_skipped: int, n_errors: int) -> None:
        self.execute(
            "UPDATE runs SET finished_at = ?, state = ?, n_cases = ?, n_checked = ?, "
            "n_skipped = ?, n_errors = ? WHERE run_id = ?",
            (utc_now(), state, n_cases, n_checked, n_skipped, n_errors, run_id))
        self.commit()

    # -- cases ----------------------------------------------------------------------------
    def stored_cases(self) -> dict[str, StoredCase]:
        """Every stored case by ``case_key``."""
        rows = self.execute(
            "SELECT case_key, unit_id, unit_stamp, content_hash, tool_version, options_hash, "
            "status, error_kind FROM cases")
        return {r[0]: StoredCase(*r) for r in rows}

    def write_case(self, record: CaseRecord) -> None:
        """Replace every row of ``record.case_key`` by ``record``, in one transaction."""
        key = record.case_key
        try:
            for table in ("checks", "rois", "reports", "cases"):
                self.execute(f"DELETE FROM {table} WHERE case_key = ?", (key,))
            self.execute(f"INSERT INTO cases ({', '.join(_CASE_COLUMNS)}) VALUES "
                         f"({', '.join('?' * len(_CASE_COLUMNS))})", record.case_row())
            self._executemany(
                f"INSERT INTO checks ({', '.join(_CHECK_COLUMNS)}) VALUES "
                f"({', '.join('?' * len(_CHECK_COLUMNS))})",
                [(key, i, c.code, c.status, c.structure, c.value, c.limit_value, c.unit,
                  c.message, c.source) for i, c in enumerate(record.checks)])
            self._executemany(
                f"INSERT INTO rois ({', '.join(_ROI_COLUMNS)}) VALUES "
                f"({', '.join('?' * len(_ROI_COLUMNS))})",
                [(key, i, r.roi_name, r.roi_number, r.role, r.volume_cc, r.dmin_gy, r.dmax_gy,
                  r.dmean_gy, json.dumps(r.metrics, sort_keys=True))
                 for i, r in enumerate(record.rois)])
            if record.report_json is not None:
                self.execute("INSERT INTO reports (case_key, report_json) VALUES (?, ?)",
                             (key, record.report_json))
            self.commit()
        except BaseException:
            self._conn.rollback()
            raise

    def delete_case(self, case_key: str) -> None:
        """Remove every row of a case (one that left its source unit)."""
        for table in ("checks", "rois", "reports", "cases"):
            self.execute(f"DELETE FROM {table} WHERE case_key = ?", (case_key,))
        self.commit()

    def restamp(self, case_key: str, unit_stamp: str | None) -> None:
        """Record a new cheap stamp for a case whose contents were found unchanged."""
        self.execute("UPDATE cases SET unit_stamp = ? WHERE case_key = ?", (unit_stamp, case_key))
        self.commit()

    def count_cases(self) -> int:
        return int(self.execute("SELECT COUNT(*) FROM cases")[0][0])


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process starts a new run: its earlier one ended without a word
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&]*")


def redact_url(url: str | Path) -> str:
    """A database (or server) URL without its password, for every message and summary.

    Examples
    --------
    >>> redact_url("postgresql://qa:s3cret@db:5432/audit")
    'postgresql://qa:***@db:5432/audit'
    >>> redact_url("postgresql://db/audit?user=qa&password=s3cret")
    'postgresql://db/audit?user=qa&password=***'
    >>> redact_url("audit.sqlite")
    'audit.sqlite'
    """
    text = str(url)
    if "://" in text:
        scheme, rest = text.split("://", 1)
        netloc, sep, tail = rest.partition("/")
        if "@" in netloc:
            creds, host = netloc.rsplit("@", 1)
            if ":" in creds:
                netloc = f"{creds.split(':', 1)[0]}:***@{host}"
        text = f"{scheme}://{netloc}{sep}{tail}"
    return _QUERY_PASSWORD.sub(r"\1***", text)


