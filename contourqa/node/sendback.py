"""Results back into the DICOM world: an Encapsulated PDF or a Basic Text SR.

The document joins the plan's study (patient and study attributes copied from the
plan) in a series of its own.  Its SOP Instance UID is derived from the plan's, so a
re-run replaces the earlier document at the destination instead of adding one.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from contourqa import __version__
from contourqa.node.config import NodeConfig

__all__ = ["BASIC_TEXT_SR", "ENCAPSULATED_PDF", "result_document", "send_result"]

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
_PATIENT_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                  "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName",
                  "StudyID", "AccessionNumber")
# Local codes (PS3.16 8.2: coding scheme designators starting with 99 are private).
_SCHEME = "99CONTOURQA"


def _code(value: str, meaning: str) -> Dataset:
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, _SCHEME, meaning
    return c


def result_document(case: Any, *, document: str, now: dt.datetime | None = None) -> Dataset:
    """The DICOM document of one checked case.

    Parameters
    ----------
    case : CaseOutcome
        Needs ``anchor_path`` (plan file), ``failed`` and, for ``"pdf"``,
        ``reports["pdf"]``.
    document : {"pdf", "sr"}
    now : datetime, optional
        Content date and time (default: now, UTC).
    """
    from pydicom import dcmread

    if case.anchor_path is None:
        raise ValueError("the case has no plan or structure set to take patient data from")
    src = dcmread(case.anchor_path, stop_before_pixels=True)
    now = now or dt.datetime.now(dt.UTC)
    key = case.plan_uid or case.key
    ds = Dataset()
    for kw in _PATIENT_STUDY:
        setattr(ds, kw, src.get(kw, ""))
    ds.SOPClassUID = ENCAPSULATED_PDF if document == "pdf" else BASIC_TEXT_SR
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[key, document, "contourqa-result"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[key, document, "contourqa-series"])
    ds.SeriesNumber, ds.InstanceNumber = 9001, 1
    ds.Manufacturer, ds.SoftwareVersions = "contourqa", __version__
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    title = (f"contourqa: {len(case.failed)} failed check(s), {case.name}"
             if case.failed else f"contourqa: no failed check, {case.name}")[:64]
    if document == "pdf":
        ds.Modality = "DOC"
        ds.ConversionType = "WSD"
        ds.BurnedInAnnotation = "YES"
        ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
        ds.DocumentTitle = title
        ds.ConceptNameCodeSequence = DicomSequence([_code("QA-REPORT", "Plan QA report")])
        ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
        pdf = case.reports["pdf"]
        ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
        ds.EncapsulatedDocumentLength = len(pdf)
    else:
        ds.Modality = "SR"
        ds.ValueType = "CONTAINER"
        ds.ContinuityOfContent = "SEPARATE"
        ds.ConceptNameCodeSequence = DicomSequence([_code("QA-REPORT", "Plan QA report")])
        ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
        items = []
        lines = [f"{code}: {structure + ': ' if structure else ''}{message}"
                 for code, structure, message in case.failed] or ["No check failed."]
        for text in [f"Status: {case.status}", *lines]:
            item = Dataset()
            item.RelationshipType, item.ValueType = "CONTAINS", "TEXT"
            item.ConceptNameCodeSequence = DicomSequence([_code("FINDING", "QA finding")])
            item.TextValue = text[:1024]
            items.append(item)
        ds.ContentSequence = DicomSequence(items)
    if case.plan_uid:
        ref = Dataset()
        ref.ReferencedSOPClassUID = src.SOPClassUID
        ref.ReferencedSOPInstanceUID = case.plan_uid
        ds.ReferencedInstanceSequence = DicomSequence([ref])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, \
        ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def send_result(case: Any, objects_dir: Path, config: NodeConfig) -> dict[str, Any]:
    """C-STORE the case's document to ``config.destination``; returns what happened."""
    from pynetdicom import AE

    dest = config.destination
    assert dest is not None
    out: dict[str, Any] = {"destination": f"{dest.ae_title}@{dest.host}:{dest.port}",
                           "document": dest.document}
    try:
        ds = result_document(case, document=dest.document)
    except (ValueError, OSError) as exc:
        out["error"] = str(exc)
        return out
    ae = AE(ae_title=config.ae_title)
    ae.acse_timeout = ae.network_timeout = ae.dimse_timeout = 10
    ae.add_requested_context(ds.SOPClassUID, ExplicitVRLittleEndian)
    assoc = ae.associate(dest.host, dest.port, ae_title=dest.ae_title)
    if not assoc.is_established:
        out["error"] = "association not accepted"
        return out
    try:
        status = assoc.send_c_store(ds)
        out["status"] = f"0x{int(status.Status):04X}" if "Status" in status else "no response"
        out["sop_instance"] = str(ds.SOPInstanceUID)
    finally:
        assoc.release()
    return out
