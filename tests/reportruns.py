"""Check runs shared by the report tests, each made once per test session."""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path

import pytest
from datapaths import REPO, shared

from contourqa.check import CheckOptions, CheckRun, check

DEMO_CASE = REPO / "test_data" / "demo_case" / "dicom"


@cache
def _run(path: str) -> CheckRun:
    return check(path, options=CheckOptions(keep_media=True))


def demo_run() -> CheckRun:
    """The bundled spine phantom, checked with pictures kept."""
    return _run(str(DEMO_CASE))


def dicompyler_run() -> CheckRun:
    """dicompyler-core's example plan (a breast plan: the spine rules are folded)."""
    return _run(str(shared("dicompyler_core_example")))


def tool(name: str, package: str) -> str:
    """Path of an external program; the test is skipped (naming the package) if absent."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (Debian package {package}; "
                    "scripts/install-tools.sh installs it)")
    return path


def png_variance(path: Path) -> float:
    """Variance of the grey levels of a PNG (0 for a blank image)."""
    import numpy as np
    from PIL import Image  # pillow: a matplotlib dependency

    with Image.open(path) as im:
        grey = np.asarray(im.convert("L"), dtype=np.float64)
    return float(grey.var())
