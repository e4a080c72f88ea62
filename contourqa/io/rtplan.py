"""RT Plan reader: label, fractions, prescription, referenced structure set."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset

from contourqa.errors import UnsupportedDicomError
from contourqa.findings import Finding, Status, input_problem
from contourqa.io._read import malformed_values_named, read_dataset, uid_of
from contourqa.limits import input_limits

__all__ = ["Plan", "PrescriptionSource", "read_plan"]

_PLAN_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.481.5",  # RT Plan
    "1.2.840.10008.5.1.4.1.1.481.8",  # RT Ion Plan
}


class PrescriptionSource(str, enum.Enum):
    """Where the prescription dose came from, in order of preference."""

    TARGET_PRESCRIPTION_DOSE = "DoseReferenceSequence.TargetPrescriptionDose"
    DELIVERY_MAXIMUM_DOSE = "DoseReferenceSequence.DeliveryMaximumDose"
    BEAM_DOSE_SUM = "FractionGroupSequence.ReferencedBeamSequence.BeamDose x fractions"
    USER = "given by the user (--prescription)"
    NONE = "none"


@dataclass(frozen=True, eq=False)
class Plan:
    """The parts of an RT Plan contourqa uses.

    ``prescription_gy`` is the total prescribed dose over all fractions (Gy);
    ``prescription_source`` says which attribute gave it.  ``beam_numbers`` are the
    beams of the first fraction group (ReferencedBeamSequence.ReferencedBeamNumber),
    against which beam doses are checked before they are summed.
    ``prescription_candidates`` lists every total the plan states, as ``(source, Gy)``
    pairs (each TargetPrescriptionDose, DeliveryMaximumDose, and the beam-dose total
    per dose specification point), for the consistency check.
    """

    path: Path
    sop_instance_uid: str
    patient_id: str | None
    study_instance_uid: str | None
    frame_of_reference_uid: str | None
    label: str | None
    name: str | None
    n_fractions: int | None
    prescription_gy: float | None
    prescription_source: PrescriptionSource
    referenced_structure_set_uid: str | None
    plan_date: str | None = None
    target_names: tuple[str, ...] = ()
    beam_numbers: tuple[int, ...] = ()
    problems: tuple[Finding, ...] = field(default=())
    prescription_candidates: tuple[tuple[PrescriptionSource, float], ...] = ()

    @property
    def dose_per_fraction_gy(self) -> float | None:
        if self.prescription_gy is None or not self.n_fractions:
            return None
        return self.prescription_gy / self.n_fractions


def read_plan(path: str | Path, *, dataset: Dataset | None = None) -> Plan:
    """Read an RT (Ion) Plan.

    The prescription is taken, in order, from TargetPrescriptionDose of TARGET
    dose references (the largest, when several), DeliveryMaximumDose, or the beam
    doses of the first fraction group times its number of fractions; the report
    names which.  Beam doses are summed per dose specification point (beams aimed at
    different targets add nothing to each other's dose) and the largest sum is taken.  A plan without any of these gets ``prescription_gy=None``
    and a finding.
    """
    path = Path(path)
    with malformed_values_named(path):
        return _read_plan(path, dataset=dataset)


def _read_plan(path: Path, *, dataset: Dataset | None = None) -> Plan:
    ds = dataset if dataset is not None else read_dataset(path)
    if uid_of(ds, "SOPClassUID") not in _PLAN_SOP_CLASSES and ds.get("Modality") not in ("RTPLAN", "RTIONPLAN"):
        raise UnsupportedDicomError(f"{path}: not an RT Plan (Modality {ds.get('Modality')!r}).")
    problems: list[Finding] = []

    groups = list(ds.get("FractionGroupSequence", []))
    n_fractions: int | None = None
    if groups:
        value = groups[0].get("NumberOfFractionsPlanned", None)
        n_fractions = int(value) if value not in (None, "") else None
        if n_fractions is not None and n_fractions < 1:
            # 0 or negative: no number of fractions (a division by it would fail)
            problems.append(input_problem(
                "malformed_fraction_number", f"NumberOfFractionsPlanned is {n_fractions}; "
                "ignored.", path))
            n_fractions = None
        if len(groups) > 1:
            problems.append(input_problem(
                "several_fraction_groups", f"the plan has {len(groups)} fraction groups; "
                "contourqa uses the first for the number of fractions.", path, status=Status.WARN))
    if n_fractions is None:
        problems.append(input_problem("no_fraction_number",
                                      "the plan states no NumberOfFractionsPlanned.", path))

    prescription: float | None = None
    source = PrescriptionSource.NONE
    targets: list[str] = []
    target_doses = []
    max_doses = []
    for ref in ds.get("DoseReferenceSequence", []):
        if str(ref.get("DoseReferenceType", "")).upper() != "TARGET":
            continue
        if (desc := str(ref.get("DoseReferenceDescription", "") or "").strip()):
            targets.append(desc)
        if ref.get("TargetPrescriptionDose", None) not in (None, ""):
            target_doses.append(float(ref.TargetPrescriptionDose))
        if ref.get("DeliveryMaximumDose", None) not in (None, ""):
            max_doses.append(float(ref.DeliveryMaximumDose))
    # A NaN, infinite or absurd dose is corrupt, not a prescription (limits.toml).
    dose_limit = input_limits().max_dose_gy
    sane = [d for d in target_doses + max_doses if 0.0 <= d <= dose_limit]
    if len(sane) < len(target_doses) + len(max_doses):
        problems.append(input_problem(
            "malformed_prescription", "a TargetPrescriptionDose or DeliveryMaximumDose is not "
            f"a number between 0 and {input_limits().where('max_dose_gy')} Gy; ignored.", path))
        target_doses = [d for d in target_doses if 0.0 <= d <= dose_limit]
        max_doses = [d for d in max_doses if 0.0 <= d <= dose_limit]
    if target_doses:
        prescription, source = max(target_doses), PrescriptionSource.TARGET_PRESCRIPTION_DOSE
    elif max_doses:
        prescription, source = max(max_doses), PrescriptionSource.DELIVERY_MAXIMUM_DOSE
    candidates = [(PrescriptionSource.TARGET_PRESCRIPTION_DOSE, d) for d in target_doses]
    candidates += [(PrescriptionSource.DELIVERY_MAXIMUM_DOSE, d) for d in max_doses]
    point_sums: dict[object, float] = {}
    if groups and n_fractions:
        for b in groups[0].get("ReferencedBeamSequence", []):
            if b.get("BeamDose", None) in (None, ""):
                continue
            point = b.get("BeamDoseSpecificationPoint", None)
            key: object = (tuple(round(float(v), 1) for v in point) if point
                           else b.get("ReferencedDoseReferenceNumber", None))
            point_sums[key] = point_sums.get(key, 0.0) + float(b.BeamDose)
        # a NaN, infinite or absurd beam dose is corrupt, not a prescription (limits.toml)
        point_sums = {k: v for k, v in point_sums.items()
                      if 0 < v * n_fractions <= dose_limit}
        candidates += [(PrescriptionSource.BEAM_DOSE_SUM, v * n_fractions)
                       for v in point_sums.values()]
    if prescription is None and point_sums and n_fractions:
        prescription = max(point_sums.values()) * n_fractions
        source = PrescriptionSource.BEAM_DOSE_SUM
    if prescription is None:
        problems.append(input_problem(
            "no_prescription", "the plan states no prescription dose (no TargetPrescriptionDose, "
            "DeliveryMaximumDose or BeamDose); give it with --prescription.", path))
    elif source is not PrescriptionSource.TARGET_PRESCRIPTION_DOSE:
        several = ""
        if source is PrescriptionSource.BEAM_DOSE_SUM and len(point_sums) > 1:
            several = (f" (the largest of {len(point_sums)} dose specification points' totals: "
                       + ", ".join(f"{v * (n_fractions or 1):.2f}"
                                   for v in sorted(point_sums.values(), reverse=True))
                       + " Gy)")
        problems.append(input_problem(
            "prescription_fallback", f"prescription {prescription:.2f} Gy taken from "
            f"{source.value}{several}, not from TargetPrescriptionDose.", path,
            status=Status.WARN))

    beams: list[int] = []
    for b in (groups[0].get("ReferencedBeamSequence", []) if groups else []):
        number = b.get("ReferencedBeamNumber", None)
        if number not in (None, ""):
            beams.append(int(number))
    refs = [uid_of(item, "ReferencedSOPInstanceUID")
            for item in ds.get("ReferencedStructureSetSequence", [])]
    return Plan(
        path=path, sop_instance_uid=uid_of(ds, "SOPInstanceUID") or "",
        patient_id=str(ds.get("PatientID", "") or "") or None,
        study_instance_uid=uid_of(ds, "StudyInstanceUID"),
        frame_of_reference_uid=uid_of(ds, "FrameOfReferenceUID"),
        label=str(ds.get("RTPlanLabel", "") or "").strip() or None,
        name=str(ds.get("RTPlanName", "") or "").strip() or None,
        n_fractions=n_fractions, prescription_gy=prescription, prescription_source=source,
        referenced_structure_set_uid=next((r for r in refs if r), None),
        plan_date=str(ds.get("RTPlanDate", "") or "") or None,
        target_names=tuple(targets), beam_numbers=tuple(beams), problems=tuple(problems),
        prescription_candidates=tuple(candidates))
