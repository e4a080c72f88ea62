"""Report formatters over the one canonical record (:class:`CaseReport`).

:data:`FILE_FORMATTERS` lists the file formats explicitly; the command line offers
``--<name> FILE`` for each and writes every one that was asked for.
"""

from contourqa.report.base import FileFormatter
from contourqa.report.csv_report import CsvFormatter
from contourqa.report.html import HtmlFormatter
from contourqa.report.json_report import (
    JsonFormatter,
    report_document,
    validate_case,
    validate_report,
)
from contourqa.report.media import ReportMedia, SectorPicture
from contourqa.report.pdf import PdfFormatter
from contourqa.report.record import CaseInfo, CaseReport, StructureInfo
from contourqa.report.sarif import SarifFormatter, validate_sarif
from contourqa.report.terminal import TerminalFormatter

#: Every file format, in the order they are written.
FILE_FORMATTERS: tuple[type[FileFormatter], ...] = (
    JsonFormatter, CsvFormatter, SarifFormatter, HtmlFormatter, PdfFormatter)

__all__ = ["FILE_FORMATTERS", "CaseInfo", "CaseReport", "CsvFormatter", "FileFormatter",
           "HtmlFormatter", "JsonFormatter", "PdfFormatter", "ReportMedia", "SarifFormatter",
           "SectorPicture", "StructureInfo", "TerminalFormatter", "report_document",
           "validate_case", "validate_report", "validate_sarif"]
