"""Shared fixtures.

Helper modules live beside this file and are imported by plain name
(``from datapaths import shared``): rt-utils installs a top-level ``tests`` package
into site-packages, so ``tests.*`` imports would be ambiguous.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from datapaths import shared


@pytest.fixture(scope="session")
def rider_ct_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The RIDER feet-first chest CT (236 slices), unpacked once per test session."""
    archive = next(shared("rider_lung_ct_rtstruct_seg").glob("CT_series_*.tar.xz"))
    out = tmp_path_factory.mktemp("rider")
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    return out
