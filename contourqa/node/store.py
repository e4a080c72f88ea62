"""Received objects on disk: UID-validated paths, atomic writes, a size bound.

Layout under the storage folder::

    <StudyInstanceUID>/objects/<SeriesInstanceUID>/<SOPInstanceUID>.dcm
    <StudyInstanceUID>/reports/...

Paths are built only from UIDs that match ``^[0-9]+(\\.[0-9]+)*$`` and have at most
64 characters, so no received value can name a path outside the folder.  A file is
written under a hidden temporary name in its final folder and renamed into place, so
an interrupted write never leaves a file that discovery would read.

Received objects and reports hold patient data: files are created ``0640`` and
folders ``0750`` (less if the umask says so; the systemd example sets
``UMask=0027``), so only the node's user and group can read them.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from contourqa.errors import InvalidUIDError, StorageFullError

__all__ = ["DIR_MODE", "FILE_MODE", "ObjectStore", "StoredObject", "validate_uid"]

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_TMP_PREFIX = ".incoming-"
#: Modes of what the store creates (patient data: owner and group only).
FILE_MODE = 0o640
DIR_MODE = 0o750


def _make_dirs(path: Path) -> None:
    """``mkdir -p`` with :data:`DIR_MODE` for every level created."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass


def _open_new(path: Path) -> BinaryIO:
    """A new file, created with :data:`FILE_MODE`, for binary writing."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    return os.fdopen(fd, "wb")


def validate_uid(value: object, *, what: str = "UID") -> str:
    """Return ``value`` as a UID string, or raise.

    Raises
    ------
    InvalidUIDError
        ``value`` is missing, longer than 64 characters or has anything but digits
        and single dots between them.

    Examples
    --------
    >>> validate_uid("1.2.840.10008.1.1")
    '1.2.840.10008.1.1'
    >>> validate_uid("1.2/../../etc")
    Traceback (most recent call last):
    ...
    contourqa.errors.InvalidUIDError: UID '1.2/../../etc' is not a DICOM UID (digits and dots, at most 64 characters); refused
    """
    text = "" if value is None else str(value)
    # pydicom keeps a trailing NUL pad byte of an odd-length UID; it is not part of it.
    text = text.rstrip("\x00 ")
    if not text or len(text) > 64 or not _UID.match(text):
        raise InvalidUIDError(f"{what} {text!r} is not a DICOM UID (digits and dots, at most "
                              "64 characters); refused")
    return text


@dataclass(frozen=True)
class StoredObject:
    """One object written to the store."""

    path: Path
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    n_bytes: int
    replaced: bool


class ObjectStore:
    """Writes received objects under the storage folder.

    Parameters
    ----------
    root : Path
        The storage folder (created when absent).
    max_bytes : int, optional
        Upper bound on the bytes of every file under ``root``, reports included.

    Notes
    -----
    Thread-safe: the node's association threads write concurrently.  Temporary files
    left by a crash are removed when the store is opened.
    """

    def __init__(self, root: str | Path, *, max_bytes: int | None = None) -> None:
        self.root = Path(root)
        _make_dirs(self.root)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._used = 0
        for dirpath, _, names in os.walk(self.root):
            for name in names:
                p = Path(dirpath) / name
                if name.startswith(_TMP_PREFIX):
                    p.unlink(missing_ok=True)
                    continue
                try:
                    self._used += p.stat().st_size
                except OSError:
                    pass

    @property
    def used_bytes(self) -> int:
        return self._used

    def study_dir(self, study_uid: str) -> Path:
        return self.root / validate_uid(study_uid, what="StudyInstanceUID")

    def objects_dir(self, study_uid: str) -> Path:
        return self.study_dir(study_uid) / "objects"

    def reports_dir(self, study_uid: str) -> Path:
        return self.study_dir(study_uid) / "reports"

    def path_for(self, study_uid: str, series_uid: str, sop_instance_uid: str) -> Path:
        """The final path of an object; every part validated."""
        series = validate_uid(series_uid, what="SeriesInstanceUID")
        sop = validate_uid(sop_instance_uid, what="SOPInstanceUID")
        path = self.objects_dir(study_uid) / series / f"{sop}.dcm"
        # Belt and braces: validated UIDs cannot escape, and this says so.
        if self.root.resolve() not in path.resolve().parents:
            raise InvalidUIDError(f"{path}: outside the storage folder; refused")
        return path

    def _reserve(self, n_bytes: int, freed: int) -> None:
        with self._lock:
            if self.max_bytes is not None and self._used - freed + n_bytes > self.max_bytes:
                raise StorageFullError(
                    f"storage {self.root} holds {self._used / 2**20:.1f} MiB of its "
                    f"{self.max_bytes / 2**20:.1f} MiB; an object of {n_bytes / 2**20:.2f} MiB "
                    "does not fit (free space by removing old studies, or raise --max-storage)")
            self._used += n_bytes - freed

    def _release(self, n_bytes: int) -> None:
        with self._lock:
            self._used -= n_bytes

    def write(self, study_uid: str, series_uid: str, sop_instance_uid: str,
              writer: Callable[[BinaryIO], object], n_bytes: int) -> StoredObject:
        """Write one object atomically; a previous copy of the same SOP instance is replaced.

        Parameters
        ----------
        study_uid, series_uid, sop_instance_uid : str
            Validated here.
        writer : callable
            Writes the file's bytes to the binary stream it is given.
        n_bytes : int
            Expected size, for the storage bound (the actual size is accounted after).

        Raises
        ------
        InvalidUIDError, StorageFullError
        """
        path = self.path_for(study_uid, series_uid, sop_instance_uid)
        try:
            old = path.stat().st_size
        except FileNotFoundError:
            old = -1
        self._reserve(n_bytes, max(old, 0))
        _make_dirs(path.parent)
        tmp = path.parent / f"{_TMP_PREFIX}{path.name}.{threading.get_ident()}"
        try:
            with _open_new(tmp) as fh:
                writer(fh)
                fh.flush()
                os.fsync(fh.fileno())
            actual = tmp.stat().st_size
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            self._release(n_bytes - max(old, 0))
            raise
        with self._lock:
            self._used += actual - n_bytes
        return StoredObject(path=path, study_uid=validate_uid(study_uid), series_uid=series_uid,
                            sop_instance_uid=sop_instance_uid, n_bytes=actual, replaced=old >= 0)

    def write_report(self, path: Path, data: bytes) -> None:
        """Write a report file atomically (accounted in the storage bound)."""
        try:
            old = path.stat().st_size
        except FileNotFoundError:
            old = 0
        self._reserve(len(data), old)
        _make_dirs(path.parent)
        tmp = path.parent / f"{_TMP_PREFIX}{path.name}.{threading.get_ident()}"
        try:
            with _open_new(tmp) as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            self._release(len(data) - old)
            raise

    def studies(self) -> list[str]:
        """UIDs of the studies in the store (folders whose names are valid UIDs)."""
        out = []
        for p in sorted(self.root.iterdir()):
            if p.is_dir() and _UID.match(p.name) and (p / "objects").is_dir():
                out.append(p.name)
        return out
