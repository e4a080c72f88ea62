"""Batch audit of archived plans into a results database (``contourqa audit``).

:func:`run_audit` checks every case of a folder tree, an Orthanc server or a
DICOMweb server in parallel and stores one row per case, per check and per ROI
(schema in :mod:`contourqa.audit.db`); :func:`write_audit_report` summarises a
database as HTML and CSV.
"""

from contourqa.audit.db import SCHEMA_VERSION, AuditDatabase
from contourqa.audit.runner import AuditProgress, AuditResult, TextProgress, run_audit
from contourqa.audit.sources import DicomWebSource, FolderSource, OrthancSource
from contourqa.audit.summary import AuditSummary, summarize, write_audit_report

__all__ = [
    "SCHEMA_VERSION",
    "AuditDatabase",
    "AuditProgress",
    "AuditResult",
    "AuditSummary",
    "DicomWebSource",
    "FolderSource",
    "OrthancSource",
    "TextProgress",
    "run_audit",
    "summarize",
    "write_audit_report",
]
