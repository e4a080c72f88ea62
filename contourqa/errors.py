"""Named exceptions of contourqa.

Every exception derives from :class:`ContourQAError` and, where one fits, from the
matching builtin, so callers may catch either.  Messages name the file or argument
and, where one exists, the remedy; they are written for a physicist, not a
programmer.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ContourQAError",
    "MissingDependencyError",
    "require",
    "DicomReadError",
    "UnsupportedDicomError",
    "GeometryError",
    "FrameOfReferenceMismatchError",
    "DoseUnitsError",
    "MetricError",
    "NoCaseFoundError",
    "AuditDatabaseError",
    "AuditSourceError",
    "NodeConfigError",
    "InvalidUIDError",
    "StorageFullError",
]


class ContourQAError(Exception):
    """Base class of every error contourqa raises on purpose."""


class DicomReadError(ContourQAError, OSError):
    """A file could not be read as DICOM (truncated, not DICOM, wrong VR ...)."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class UnsupportedDicomError(ContourQAError, ValueError):
    """A DICOM object is readable but uses something contourqa cannot evaluate."""


class GeometryError(ContourQAError, ValueError):
    """Image or dose geometry that cannot be handled (tilted, non-parallel, gaps)."""


class FrameOfReferenceMismatchError(ContourQAError, ValueError):
    """Two objects that must share a frame of reference do not."""


class DoseUnitsError(ContourQAError, ValueError):
    """Dose that is not in Gy and cannot be converted without more information."""


class MetricError(ContourQAError, ValueError):
    """A DVH metric that cannot be parsed, or cannot be evaluated on this DVH."""


class NoCaseFoundError(ContourQAError, LookupError):
    """A folder holds no plan, structure set or dose that could form a case."""


class AuditDatabaseError(ContourQAError, RuntimeError):
    """An audit results database that cannot be opened, migrated or written."""


class AuditSourceError(ContourQAError, OSError):
    """An audit source (folder, Orthanc, DICOMweb server) that cannot be read."""


class NodeConfigError(ContourQAError, ValueError):
    """A DICOM node setting that cannot work (bad AE title, missing TLS key ...)."""


class InvalidUIDError(ContourQAError, ValueError):
    """A received UID that is not a DICOM UID (digits and dots, at most 64 characters).

    The node builds storage paths from UIDs, so anything else is refused rather than
    cleaned up: a cleaned-up UID could collide with another object's.
    """


class StorageFullError(ContourQAError, OSError):
    """The node's storage folder would exceed its configured bound (``--max-storage``)."""


class MissingDependencyError(ContourQAError, ImportError):
    """An optional package a feature needs is not installed; the message names the
    extra that installs it (``pip install 'contourqa[node]'``)."""


def require(module: str, *, extra: str, feature: str) -> None:
    """Raise :class:`MissingDependencyError` when ``module`` cannot be imported.

    Parameters
    ----------
    module : str
        Top-level module to look for (``"pynetdicom"``).
    extra : str
        The contourqa extra that installs it (``"node"``).
    feature : str
        What needs it, for the message (``"contourqa listen"``).
    """
    from importlib import import_module

    try:
        import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs the {module} package, which is not installed; install it "
            f"with: pip install 'contourqa[{extra}]' (from a clone: pip install -e '.[{extra}]').") from exc
