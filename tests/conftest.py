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


@pytest.fixture(scope="session")
def audit_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The audit tests' archive (tests/_audit_archive.py), generated once per session."""
    from _audit_archive import build_archive
    from datapaths import SHARED_DATA

    return build_archive(tmp_path_factory.mktemp("audit") / "archive", shared_root=SHARED_DATA)


@pytest.fixture(scope="session")
def audited_db(audit_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """The archive audited once, uninterrupted, with 2 worker processes: (db path, result)."""
    from contourqa.audit import run_audit

    db = tmp_path_factory.mktemp("audit_db") / "audit.sqlite"
    return db, run_audit(audit_archive, db, jobs=2)
