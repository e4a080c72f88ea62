"""Paths to ../shared/data and to pydicom's bundled test files (never the network).

The real third-party DICOM data (see ``../shared/data/README.md``) is not in the
repository (licences differ); it is looked for beside the clone, in ``../shared/data``,
or where ``CONTOURQA_SHARED_DATA`` points.  Without it, the tests that need it skip
with the path they looked for.
"""

from __future__ import annotations

import os
from pathlib import Path

import pydicom
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CONTOURQA_SHARED_DATA") or REPO.parent / "shared" / "data")
PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def shared(*parts: str) -> Path:
    """A path under ../shared/data; the test is skipped (with the path) if absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not present: {path}")
    return path


def pydicom_file(name: str) -> Path:
    """A file bundled with pydicom (get_testdata_file would download missing ones)."""
    path = PYDICOM_FILES / name
    if not path.exists():
        pytest.skip(f"pydicom test file not bundled: {name}")
    return path
