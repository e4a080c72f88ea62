"""Where an audit finds its cases: a folder tree, an Orthanc server (REST) or any DICOMweb server.

A source lists *work units* in the main process, cheaply; a worker process then
*fetches* one unit into a temporary folder (nothing, for a folder) and gets its cases
from the project's case discovery.  A folder's unit is one case (discovery already ran
over the whole tree, however its files are scattered); a PACS unit is one study that
holds an RT Plan, RT Structure Set or RT Dose, pulled instance by instance, so a
worker holds one study on disk and one case in memory.

Each unit carries a *stamp*, a cheap change marker (file paths, sizes and
modification times; Orthanc's ``LastUpdate``; none for DICOMweb):
a unit whose stamp, tool version and options are those stored is skipped without
being read.  Otherwise its contents are hashed and only cases whose content hash
changed are checked again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from contourqa.errors import AuditSourceError
from contourqa.io.discovery import CaseFiles, IndexedObject, discover

__all__ = ["AuditSource", "DicomWebSource", "FolderSource", "OrthancSource", "WorkUnit",
           "case_key", "source_from_spec"]

_RT_MODALITIES = ("RTPLAN", "RTSTRUCT", "RTDOSE")
_HTTP_TIMEOUT_S = 60.0
# What a server-given identifier may look like before it goes into a URL path.
# Orthanc's are SHA-1 digests in five dash-separated groups; DICOMweb's are UIDs.
_ORTHANC_ID = re.compile(r"^[0-9A-Za-z-]{1,128}$")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def _checked_id(value: object, *, what: str, pattern: re.Pattern[str]) -> str:
    """``value`` if it is an identifier of the expected form, else AuditSourceError.

    A hostile or broken server could answer ``../`` or an absolute path; such a value
    never reaches a URL or a file name."""
    text = value if isinstance(value, str) else ""
    if not pattern.match(text) or len(text) > 128:
        raise AuditSourceError(f"the server gave {what} {value!r}, which is not an "
                               "identifier of the expected form; refused")
    return text


class _Fetch(Protocol):
    def fetch(self, workdir: Path) -> list[tuple[str, CaseFiles]]: ...


@dataclass(frozen=True)
class WorkUnit:
    """One unit of work: what a worker fetches and checks in one go (picklable).

    Attributes
    ----------
    unit_id : str
        Stable identifier within its source (``case:...`` or ``orthanc:<study id>``).
    stamp : str or None
        Cheap change marker; None when the source has none (contents are hashed).
    label : str
        For progress display.
    payload : object
        Has ``fetch(workdir) -> [(case_key, CaseFiles), ...]``, run in the worker.
    """

    unit_id: str
    stamp: str | None
    label: str
    payload: _Fetch


class AuditSource(Protocol):
    """A place to audit: lists its work units (main process, cheap)."""

    description: str

    def units(self) -> list[WorkUnit]: ...


def _anchor(files: CaseFiles) -> tuple[str, IndexedObject]:
    for kind, obj in (("plan", files.plan), ("structure_set", files.structure_set),
                      ("dose", files.doses[0] if files.doses else None)):
        if obj is not None:
            return kind, obj
    raise AuditSourceError(f"case {files.name!r} has no plan, structure set or dose")


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def case_key(files: CaseFiles, root: Path) -> str:
    """A case's database key: its plan (or structure set, or dose) SOP instance UID.

    UID based, so the same case pulled from a PACS or moved to another folder keeps
    its key; ``path:<relative path>`` when the anchor object has no UID.
    """
    kind, obj = _anchor(files)
    if obj.sop_instance_uid:
        return f"{kind}:{obj.sop_instance_uid}"
    return f"path:{_relative(obj.path, root)}"


def unique_case_keys(cases: Sequence[CaseFiles], root: Path) -> list[str]:
    """:func:`case_key` of each case; a second copy of the same anchor UID gets ``@path``."""
    keys: list[str] = []
    seen: set[str] = set()
    for files in cases:
        key = case_key(files, root)
        if key in seen:
            key = f"{key}@{_relative(_anchor(files)[1].path, root)}"
        seen.add(key)
        keys.append(key)
    return keys


# -- folder ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _FolderCase:
    key: str
    files: CaseFiles

    def fetch(self, workdir: Path) -> list[tuple[str, CaseFiles]]:
        return [(self.key, self.files)]


def _discovered(workdir: Path) -> list[tuple[str, CaseFiles]]:
    cases = discover(workdir)[1]
    return list(zip(unique_case_keys(cases, workdir), cases))


def _stat_stamp(paths: Sequence[Path], root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        st = p.stat()
        h.update(f"{_relative(p, root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


class FolderSource:
    """Every case under a folder tree, found by :func:`contourqa.io.discovery.discover`.

    Parameters
    ----------
    root : str or Path
        The archive folder (any layout).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.exists():
            raise AuditSourceError(f"{self.root}: no such folder; name the archive to audit.")
        self.description = f"folder {self.root.resolve()}"

    def units(self) -> list[WorkUnit]:
        cases = discover(self.root)[1]
        keys = unique_case_keys(cases, self.root)
        return [WorkUnit(unit_id=key, stamp=_stat_stamp(files.files, self.root),
                         label=files.name, payload=_FolderCase(key, files))
                for key, files in zip(keys, cases)]


# -- HTTP helpers ------------------------------------------------------------------------
def _split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """URL without user:password, and the Authorization header they make."""
    parts = urllib.parse.urlsplit(url)
    headers: dict[str, str] = {}
    if parts.username is not None:
        token = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        parts = parts._replace(netloc=netloc)
    return urllib.parse.urlunsplit(parts).rstrip("/"), headers


@dataclass(frozen=True)
class _Http:
    base: str
    headers: tuple[tuple[str, str], ...] = ()

    def open(self, path: str, *, data: bytes | None = None, accept: str | None = None) -> Any:
        headers = dict(self.headers)
        if accept:
            headers["Accept"] = accept
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, headers=headers)
        try:
            return urllib.request.urlopen(req, timeout=_HTTP_TIMEOUT_S)
        except (urllib.error.URLError, OSError) as exc:
            raise AuditSourceError(f"{self.base}{path}: request failed ({exc})") from exc

    def json(self, path: str, *, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        with self.open(path, data=data, accept="application/json") as resp:
            payload = resp.read()
        return json.loads(payload) if payload.strip() else []


# -- Orthanc REST ------------------------------------------------------------------------
@dataclass(frozen=True)
class _OrthancStudy:
    http: _Http
    study_id: str

    def fetch(self, workdir: Path) -> list[tuple[str, CaseFiles]]:
        study = _checked_id(self.study_id, what="study ID", pattern=_ORTHANC_ID)
        listing = self.http.json(f"/studies/{study}/instances")
        ids = [_checked_id(inst.get("ID") if isinstance(inst, dict) else None,
                           what="instance ID", pattern=_ORTHANC_ID) for inst in listing]
        # files are named by position, never by what the server says
        for n, inst_id in enumerate(ids):
            with self.http.open(f"/instances/{inst_id}/file") as resp, \
                    open(workdir / f"{n:06d}.dcm", "wb") as out:
                shutil.copyfileobj(resp, out)
        return _discovered(workdir)


class OrthancSource:
    """The RT studies of an Orthanc server, through its REST API.

    Parameters
    ----------
    url : str
        Orthanc's REST root, e.g. ``http://user:password@pacs:8042``.
    """

    def __init__(self, url: str) -> None:
        base, headers = _split_credentials(url)
        self.http = _Http(base, tuple(headers.items()))
        self.description = f"orthanc {base}"

    def units(self) -> list[WorkUnit]:
        studies: set[str] = set()
        for modality in _RT_MODALITIES:
            found = self.http.json("/tools/find", body={
                "Level": "Series", "Query": {"Modality": modality}, "Expand": True})
            studies.update(s["ParentStudy"] for s in found)
        units = []
        for sid in sorted(studies, key=str):
            if not (isinstance(sid, str) and _ORTHANC_ID.match(sid)):
                # its fetch refuses it: one error row, the other studies go on
                units.append(WorkUnit(unit_id=f"orthanc:{sid!r}", stamp=None,
                                      label=f"study {sid!r}", payload=_OrthancStudy(
                                          self.http, str(sid))))
                continue
            info = self.http.json(f"/studies/{sid}")
            tags = info.get("PatientMainDicomTags", {})
            units.append(WorkUnit(
                unit_id=f"orthanc:{sid}",
                stamp=f"{info.get('LastUpdate')}/{len(info.get('Series', []))}",
                label=f"{tags.get('PatientID', '?')} / study {sid[:8]}",
                payload=_OrthancStudy(self.http, sid)))
        return units


# -- DICOMweb ----------------------------------------------------------------------------
def _qido_value(item: dict[str, Any], tag: str) -> Any:
    values = item.get(tag, {}).get("Value") or [None]
    return values[0]


def _multipart_parts(body: bytes, content_type: str) -> list[bytes]:
    """The bodies of a multipart/related response (PS3.18 WADO-RS)."""
    boundary = None
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip('"')
    if not boundary:
        raise AuditSourceError(f"WADO-RS response without a multipart boundary ({content_type})")
    parts = []
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        _head, sep, data = chunk.partition(b"\r\n\r\n")
        if sep:
            parts.append(data[:-2] if data.endswith(b"\r\n") else data)
    return parts


@dataclass(frozen=True)
class _DicomWebStudy:
    http: _Http
    study_uid: str

    def fetch(self, workdir: Path) -> list[tuple[str, CaseFiles]]:
        study = _checked_id(self.study_uid, what="Study Instance UID", pattern=_UID)
        for n, item in enumerate(self.http.json(f"/studies/{study}/instances")):
            series = _checked_id(_qido_value(item, "0020000E"), what="Series Instance UID",
                                 pattern=_UID)
            sop = _checked_id(_qido_value(item, "00080018"), what="SOP Instance UID",
                              pattern=_UID)
            path = f"/studies/{study}/series/{series}/instances/{sop}"
            with self.http.open(path, accept='multipart/related; type="application/dicom"') as r:
                parts = _multipart_parts(r.read(), r.headers.get("Content-Type", ""))
            for k, data in enumerate(parts):
                (workdir / f"{n:06d}_{k}.dcm").write_bytes(data)
        return _discovered(workdir)


class DicomWebSource:
    """The RT studies of any DICOMweb server (QIDO-RS to find, WADO-RS to retrieve).

    Parameters
    ----------
    url : str
        The DICOMweb root, e.g. ``http://pacs:8042/dicom-web``.
    """

    def __init__(self, url: str) -> None:
        base, headers = _split_credentials(url)
        self.http = _Http(base, tuple(headers.items()))
        self.description = f"dicomweb {base}"

    def units(self) -> list[WorkUnit]:
        studies: dict[str, dict[str, Any]] = {}
        for modality in _RT_MODALITIES:
            for item in self.http.json(f"/studies?ModalitiesInStudy={modality}"):
                uid = _qido_value(item, "0020000D")
                if uid:
                    studies[uid] = item
        # QIDO-RS gives no modification time: every study is fetched and hashed.
        return [WorkUnit(unit_id=f"dicomweb:{uid}", stamp=None,
                         label=f"{_qido_value(item, '00100020') or '?'} / study {uid[-12:]}",
                         payload=_DicomWebStudy(self.http, uid))
                for uid, item in sorted(studies.items())]


def source_from_spec(spec: str | Path | AuditSource) -> AuditSource:
    """A source from a folder path, ``orthanc+http://...`` or ``dicomweb+http://...``."""
    if not isinstance(spec, (str, Path)):
        return spec
    text = str(spec)
    if text.startswith("orthanc+"):
        return OrthancSource(text[len("orthanc+"):])
    if text.startswith("dicomweb+"):
        return DicomWebSource(text[len("dicomweb+"):])
    return FolderSource(text)
