"""Data behind a report's pictures: kept beside the canonical record, never serialised.

The JSON record (:class:`~contourqa.report.record.CaseReport`) holds numbers; the
HTML and PDF reports also draw DVH curves and CT slices, which need the arrays.
:func:`contourqa.check.check_case` attaches a :class:`ReportMedia` to the report
when asked to (``CheckOptions(keep_media=True)``), so that a run over many cases
keeps no volumes in memory unless a picture format was requested.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imports for annotations only: media must stay cheap to import
    from contourqa.case import Case
    from contourqa.dvh import DVH

__all__ = ["ReportMedia", "SectorPicture"]


@dataclass(frozen=True)
class SectorPicture:
    """A rendered sector map of one vertebral level.

    Attributes
    ----------
    level : str or None
        Vertebral level (``"T10"``), None when unknown.
    png : bytes
        PNG image.
    caption : str
        One sentence saying what the picture shows.
    """

    level: str | None
    png: bytes
    caption: str = ""


@dataclass(frozen=True, eq=False)
class ReportMedia:
    """What the picture-drawing formatters need besides the record.

    Attributes
    ----------
    case : Case or None
        The loaded case (CT, structure set, dose) for slice pictures.
    dvhs : mapping of ROI name to DVH
        Cumulative DVHs computed for the report (dose edges in Gy, volumes in cc).
    sector_pictures : tuple of SectorPicture
        Sector maps rendered by the sector analysis, one per involved level.  When
        empty and the record has a ``sectors`` section, the formatters draw a
        schematic from the record instead.
    """

    case: Case | None = None
    dvhs: Mapping[str, DVH] = field(default_factory=dict)
    sector_pictures: tuple[SectorPicture, ...] = ()
