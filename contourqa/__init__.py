"""contourqa: quality assurance of spine SBRT plans.

The public surface, imported lazily (``import contourqa`` stays fast)::

    contourqa.check(path_or_files, ...) -> list[CaseReport]
    contourqa.dvh(structures, dose, ...) -> DVHReport
    CheckOptions, CaseReport, Finding, Status, DVHReport, ContourQAError,
    VertebraSectors (an entry of ``CaseReport.sectors``),
    NodeConfig, DicomNode (the DICOM node of ``contourqa listen``)
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # re-exported names, for type checkers and IDEs
    __version__: str
    from contourqa.api import check, dvh
    from contourqa.check import CheckOptions
    from contourqa.dvh import DVHReport
    from contourqa.errors import ContourQAError
    from contourqa.findings import Finding, Status
    from contourqa.node import DicomNode, NodeConfig
    from contourqa.report.record import CaseReport
    from contourqa.sectors import VertebraSectors

#: Public name -> module that defines it.
_LAZY = {
    "check": "contourqa.api",
    "dvh": "contourqa.api",
    "CheckOptions": "contourqa.check",
    "CaseReport": "contourqa.report.record",
    "Finding": "contourqa.findings",
    "Status": "contourqa.findings",
    "DVHReport": "contourqa.dvh",
    "ContourQAError": "contourqa.errors",
    "NodeConfig": "contourqa.node",
    "DicomNode": "contourqa.node",
    "VertebraSectors": "contourqa.sectors",
}

__all__ = ["CaseReport", "CheckOptions", "ContourQAError", "DVHReport", "DicomNode", "Finding",
           "NodeConfig", "Status", "VertebraSectors", "__version__", "check", "dvh"]


def _version() -> str:
    # importlib.metadata costs 20-35 ms: resolved on first use, not at import.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("contourqa")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0.0.0+unknown"


def __getattr__(name: str) -> Any:
    # PEP 562: the heavy modules (numpy, pydicom, pynetdicom) load on first use.
    if name == "__version__":
        globals()[name] = value = _version()
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'contourqa' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """The package module; its API functions ``check`` and ``dvh`` share their names
    with the submodules ``contourqa.check`` and ``contourqa.dvh``."""

    def __setattr__(self, name: str, value: Any) -> None:
        # Importing a submodule binds it on the package; for these two names the API
        # function must win, so ``contourqa.check(...)`` works whatever was imported first.
        # ``from contourqa.check import ...`` is unaffected (it reads sys.modules).
        if name in ("check", "dvh") and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
