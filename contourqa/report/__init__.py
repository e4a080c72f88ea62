"""Report formatters over the one canonical record (:class:`CaseReport`)."""

from contourqa.report.json_report import JsonFormatter, validate_report
from contourqa.report.record import CaseInfo, CaseReport, StructureInfo
from contourqa.report.terminal import TerminalFormatter

__all__ = ["CaseInfo", "CaseReport", "JsonFormatter", "StructureInfo", "TerminalFormatter",
           "validate_report"]
