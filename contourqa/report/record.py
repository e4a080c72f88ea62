"""The canonical record of one case's check: every output format is made from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from contourqa import __version__
from contourqa.findings import Finding, Status

if TYPE_CHECKING:
    from contourqa.report.media import ReportMedia
    from contourqa.sectors.results import VertebraSectors

__all__ = ["SCHEMA_VERSION", "VERDICT_ORDER", "CaseInfo", "CaseReport", "StructureInfo",
           "overall_status"]

#: Version of the JSON report layout (``contourqa/schemas/report.schema.json``):
#: 2.0 writes one document ``{"schema_version", "contourqa_version", "cases": [...]}``
#: whatever the number of cases (1.x: an object for one case, a list for several).
SCHEMA_VERSION = "2.0"


@dataclass(frozen=True)
class CaseInfo:
    name: str
    patient_id: str | None
    plan_label: str | None
    n_fractions: int | None
    prescription_gy: float | None
    prescription_source: str | None
    frame_of_reference_uid: str | None
    files: tuple[str, ...]
    image: dict[str, Any] | None = None
    dose_grid: dict[str, Any] | None = None


@dataclass(frozen=True)
class StructureInfo:
    name: str
    number: int
    role: str | None
    volume_cc: float | None
    interpreted_type: str | None = None
    level: str | None = None
    evidence: str | None = None


#: Case verdicts, worst first: ``fail > incomplete > warn > pass``.
VERDICT_ORDER: tuple[str, ...] = ("fail", "incomplete", "warn", "pass")


def overall_status(checks: tuple[Finding, ...] | list[Finding]) -> str:
    """The case verdict (:data:`VERDICT_ORDER`): ``fail`` if any check failed;
    ``incomplete`` if any could not be evaluated; ``warn`` if any warned; else
    ``pass``.  Never ``pass`` when something was not evaluated; not-applicable
    checks never change the verdict."""
    statuses = {c.status for c in checks}
    if Status.FAIL in statuses:
        return "fail"
    if Status.NOT_EVALUATED in statuses:
        return "incomplete"
    if Status.WARN in statuses:
        return "warn"
    return "pass"


@dataclass(frozen=True)
class CaseReport:
    """Result of checking one case.

    Attributes
    ----------
    sectors : tuple of VertebraSectors or None
        The ``sectors`` section: the ISRC sector involvement of every vertebra the
        GTV or CTV touches, inferior first (:class:`contourqa.sectors.VertebraSectors`;
        its ``to_json`` writes the section's entries); None when the sector analysis
        did not run (no structure set).
    """

    case: CaseInfo
    structures: tuple[StructureInfo, ...]
    checks: tuple[Finding, ...]
    dvh: dict[str, dict[str, float | None]] = field(default_factory=dict)
    dvh_conventions: dict[str, Any] = field(default_factory=dict)
    sectors: tuple[VertebraSectors, ...] | None = None
    #: further sections by name (``dvh_uncertainty``, ``dvh_reconciliation``, ...)
    extra: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    #: arrays for pictures (DVH curves, the loaded case); not part of the JSON record
    media: ReportMedia | None = field(default=None, compare=False, repr=False)

    @property
    def status(self) -> str:
        return overall_status(self.checks)

    @property
    def failed(self) -> bool:
        return any(c.status is Status.FAIL for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        c = self.case
        return {
            "schema_version": SCHEMA_VERSION,
            "contourqa_version": __version__,
            "status": self.status,
            "case": {
                "name": c.name, "patient_id": c.patient_id, "plan_label": c.plan_label,
                "n_fractions": c.n_fractions, "prescription_gy": c.prescription_gy,
                "prescription_source": c.prescription_source,
                "frame_of_reference_uid": c.frame_of_reference_uid, "files": list(c.files),
                "image": c.image, "dose_grid": c.dose_grid,
            },
            "structures": [
                {"name": s.name, "number": s.number, "role": s.role, "volume_cc": s.volume_cc,
                 "interpreted_type": s.interpreted_type, "level": s.level, "evidence": s.evidence}
                for s in self.structures
            ],
            "checks": [f.to_json() for f in self.checks],
            "dvh": self.dvh,
            "dvh_conventions": self.dvh_conventions,
            "sectors": None if self.sectors is None else [v.to_json() for v in self.sectors],
            **self.extra,
            "timings_s": self.timings_s,
        }
