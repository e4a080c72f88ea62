"""Sources for the audit fault tests (tests/test_audit_faults.py).

A work unit's payload is fetched in the worker process, so a payload whose ``fetch``
calls ``os._exit`` kills its worker the way a segfault or the kernel's OOM killer
would; the production code needs no test hook for it.  Imported by plain name by
the workers (this folder is on their ``sys.path``, as on pytest's).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from contourqa.audit.sources import FolderSource, WorkUnit
from contourqa.io.discovery import CaseFiles


@dataclass(frozen=True)
class KillsItsWorker:
    """A unit whose fetch ends its worker process at once (exit status 70)."""

    def fetch(self, workdir: Path) -> list[tuple[str, CaseFiles]]:
        os._exit(70)


class WithACrashingUnit:
    """The cases of a folder, and one unit that kills the worker fetching it, second."""

    def __init__(self, root: Path) -> None:
        self.folder = FolderSource(root)
        self.description = f"{self.folder.description} + a crashing unit"

    def units(self) -> list[WorkUnit]:
        good = self.folder.units()
        crash = WorkUnit(unit_id="crash:worker", stamp=None, label="kills its worker",
                         payload=KillsItsWorker())
        return [*good[:1], crash, *good[1:]]
