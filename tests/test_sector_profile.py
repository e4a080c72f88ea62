"""A profile's ``[sectors]`` table reaches the sector analysis, through the console.

The sector analysis's options and the partition's landmark thresholds
(``contourqa/sectors/data/partition.toml``) are data a profile may change:
``[sectors]`` takes any option of :class:`contourqa.sectors.SectorOptions` and
``[sectors.partition.<table>]`` any threshold of the partition.  Parts-phantom cases
(truth by anatomical part) show each changing the report's GTV sectors:

* T7, a body lesion with a right paraspinal extension: truth {1}.  0.09 cc of it lies
  in sector 6 along the body's edge only (within 1.5 mm of the body's bone); the
  default boundary band reports it as a sliver (``sectors.boundary_sliver``) and reads
  {1}; ``sector_boundary_band_mm = 0`` counts it and reads {1, 6}.
* L4, a lesion of the left articular pillar: truth {3}.  The pedicle's end runs
  obliquely, half-way from the transverse process's anterior surface to the medial
  end's depth at its outer surface (``[pedicle] lateral_end_fraction = 0.5``) and
  the pillar reads {3}; ``lateral_end_fraction = 1`` (one depth across the pedicle)
  reads its front as pedicle, {2, 3}.  On the drawn suite's L4 shape, a few voxels of
  GTV past the band in sector 2 are a sliver under ``sector_boundary_min_cc`` and
  count with 0.
* C5 turned by 11.5 degrees and tilted: the axis from the vertebra's symmetry reads
  {1,2,3}; ``[sectors.partition.axis] symmetry_span_deg = 0`` (the centroid's axis) {1};
  a coarse ``symmetry_step_deg`` moves the reported frame's rotation.
An unknown key is an error naming it (exit 2).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # test_data/ is not installed with the package
    sys.path.insert(0, str(REPO))

from test_data.parts_phantom import SUITE, draw_shape, write_case  # noqa: E402

ENTRY = [sys.executable, "-c", "from contourqa.cli import run; run()"]


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    out = {}
    for name in ("T7_body_right_paraspinal", "L4_articular_left",
                 "C5_body_paraspinal_rot11_tiltm4"):
        folder = tmp_path_factory.mktemp(name)
        truth = write_case(SUITE[name], folder, name=name)
        out[name] = (folder / "dicom", truth.level)
    # the L4 pillar on the drawn suite's shape (benchmarks/bench_sectors_parts.py
    # --suite drawn: seed 1000 + the case's index in SUITE)
    name = "L4_articular_left"
    spec = replace(SUITE[name], anatomy=draw_shape("lumbar", seed=1000 + list(SUITE).index(name)))
    folder = tmp_path_factory.mktemp(f"{name}_drawn")
    truth = write_case(spec, folder, name=name)
    out[f"{name}_drawn"] = (folder / "dicom", truth.level)
    # without vertebra ROIs: the CT path
    name = "L2_body_bilateral_pedicles"
    folder = tmp_path_factory.mktemp(name)
    truth = write_case(replace(SUITE[name], vertebra_roi=None), folder, name=name)
    out[f"{name}_ct"] = (folder / "dicom", truth.level)
    return out


def _check(folder: Path, tmp: Path, profile: str | None) -> dict[str, Any]:
    args = ["check", str(folder), "--json", "-"]
    if profile is not None:
        path = tmp / "profile.toml"
        path.write_text(profile, "utf-8")
        args += ["--profile", str(path)]
    proc = subprocess.run([*ENTRY, *args], capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)["cases"][0]  # type: ignore[no-any-return]


def _sectors(report: dict[str, Any], level: str) -> list[int]:
    entry = next(e for e in report["sectors"] if e["level"] == level)
    return list(entry["gtv_sectors"])


def _sliver_then_counted(case: tuple[Path, str], tmp: Path, key: str, sector: int,
                         default_sectors: list[int], counted_sectors: list[int]) -> None:
    """By default ``sector`` is a reported sliver (``sectors.boundary_sliver``) outside
    the GTV's sectors; ``[sectors] key = 0`` counts it."""
    folder, level = case
    default = _check(folder, tmp, None)
    assert _sectors(default, level) == default_sectors
    sliver = [c for c in default["checks"] if c["code"] == "sectors.boundary_sliver"]
    assert len(sliver) == 1 and f"sector(s) {sector}" in sliver[0]["message"]
    counted = _check(folder, tmp, f"[sectors]\n{key} = 0\n")
    assert _sectors(counted, level) == counted_sectors
    assert not any(c["code"] == "sectors.boundary_sliver" for c in counted["checks"])


def test_boundary_band_from_the_profile(cases, tmp_path):  # type: ignore[no-untyped-def]
    _sliver_then_counted(cases["T7_body_right_paraspinal"], tmp_path,
                         "sector_boundary_band_mm", 6, [1], [1, 6])


def test_partition_threshold_from_the_profile(cases, tmp_path):  # type: ignore[no-untyped-def]
    folder, level = cases["L4_articular_left"]
    assert _sectors(_check(folder, tmp_path, None), level) == [3]
    one_depth = _check(folder, tmp_path, "[sectors.partition.pedicle]\nlateral_end_fraction = 1\n")
    assert _sectors(one_depth, level) == [2, 3]


@pytest.mark.parametrize("key, value, expected", [
    # no transverse-process root counts: the pedicle ends at one depth again
    ("tp_root_min_area_mm2", 10000, [2, 3]),
    ("tp_root_max_ahead_mm", 0, [2, 3]),
])
def test_root_keys_from_the_profile(cases, tmp_path, key, value, expected):  # type: ignore[no-untyped-def]
    """The L4 pillar (truth {3}) reads {3} by default; a root window that admits no
    root (a minimum area no root has, or no root allowed in front of the canal
    junction) leaves no transverse-process front, and the pillar's front is pedicle."""
    folder, level = cases["L4_articular_left"]
    changed = _check(folder, tmp_path, f"[sectors.partition.pedicle]\n{key} = {value}\n")
    assert _sectors(changed, level) == expected


def test_process_front_tolerance_from_the_profile(cases, tmp_path):  # type: ignore[no-untyped-def]
    """L2 with both pedicles, CT only (truth {1,2,6}, no GTV in the processes): bone
    just lateral to the pedicles but in front of the transverse processes is pedicle;
    a tolerance larger than the vertebra switches that off and the pedicles' lateral
    edges read as process: the bone of sectors 3 and 5 grows by what sectors 2 and 6
    lose.  (Before the axis was taken from the vertebra's symmetry, the GTV's sector
    set changed too, {1,2,6} to {1,2,3,5,6}; the rule's effect is now a few pixels.)"""
    folder, level = cases["L2_body_bilateral_pedicles_ct"]

    def bone(report: dict[str, Any]) -> dict[str, float]:
        entry = next(e for e in report["sectors"] if e["level"] == level)
        return entry["sector_volume_cc"]  # type: ignore[no-any-return]

    default = _check(folder, tmp_path, None)
    assert _sectors(default, level) == [1, 2, 6]
    loose = _check(folder, tmp_path, "[sectors.partition.pedicle]\ntp_front_tolerance_mm = 100\n")
    before, after = bone(default), bone(loose)
    for process, pedicle in (("3", "2"), ("5", "6")):
        moved = after[process] - before[process]
        assert moved >= 0.005  # 0.016 and 0.009 cc when written
        assert before[pedicle] - after[pedicle] == pytest.approx(moved, abs=0.002)


def test_boundary_min_cc_from_the_profile(cases, tmp_path):  # type: ignore[no-untyped-def]
    """L4, a lesion of the left articular pillar on a drawn shape: truth {3}.  0.07 cc
    of its GTV reads as pedicle along the pedicle's end, of which 0.011 cc lies past the
    1.5 mm band (measured when written): under ``sector_boundary_min_cc`` (0.02 cc) a
    sliver, reported; with 0 it counts."""
    _sliver_then_counted(cases["L4_articular_left_drawn"], tmp_path,
                         "sector_boundary_min_cc", 2, [3], [2, 3])


def test_axis_symmetry_span_from_the_profile(cases, tmp_path):  # type: ignore[no-untyped-def]
    """C5 turned by 11.5 degrees and tilted (truth {1,2,3}): the axis from the
    vertebra's symmetry reads the truth; ``symmetry_span_deg = 0`` keeps the bone's
    centroid axis, off by more than 10 degrees, and the pedicle and transverse process
    read as body."""
    folder, level = cases["C5_body_paraspinal_rot11_tiltm4"]
    assert _sectors(_check(folder, tmp_path, None), level) == [1, 2, 3]
    centroid = _check(folder, tmp_path, "[sectors.partition.axis]\nsymmetry_span_deg = 0\n")
    assert _sectors(centroid, level) == [1]


def test_axis_symmetry_step_from_the_profile(cases, tmp_path):  # type: ignore[no-untyped-def]
    """The same C5 (turned by 11.5 degrees): the frame's rotation in the report is the
    turn within a degree with the 1 degree step; a 25 degree step samples the span at
    three angles and its refinement at 2.5 degrees, and lands elsewhere (10.8 against
    11.6 when written).  A step of 0 is an error naming the key."""
    folder, level = cases["C5_body_paraspinal_rot11_tiltm4"]

    def rotation(report: dict[str, Any]) -> float:
        entry = next(e for e in report["sectors"] if e["level"] == level)
        return float(entry["frame"]["rotation_deg"])

    fine = rotation(_check(folder, tmp_path, None))
    coarse = rotation(_check(folder, tmp_path, "[sectors.partition.axis]\nsymmetry_step_deg = 25\n"))
    assert abs(fine - SUITE["C5_body_paraspinal_rot11_tiltm4"].axial_rotation_deg) <= 1.0
    assert abs(coarse - fine) >= 0.5
    path = tmp_path / "step0.toml"
    path.write_text("[sectors.partition.axis]\nsymmetry_step_deg = 0\n", "utf-8")
    proc = subprocess.run([*ENTRY, "check", str(folder), "--profile", str(path)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2
    assert "symmetry_step_deg" in proc.stderr and str(path) in proc.stderr


@pytest.mark.parametrize("table, key, value", [
    ("[sectors]", "min_involved_ml", "1"),
    ("[sectors.partition.pedicle]", "width_mm", "1"),
    # known keys with a value that is no number, or out of range
    ("[sectors.partition.pedicle]", "outer_margin_mm", '"wide"'),
    ("[sectors.partition.pedicle]", "outer_margin_mm", "-1"),
])
def test_unknown_sector_key_is_an_error_naming_it(cases, tmp_path, table, key, value):  # type: ignore[no-untyped-def]
    folder, _ = cases["L4_articular_left"]
    path = tmp_path / "bad.toml"
    path.write_text(f"{table}\n{key} = {value}\n", "utf-8")
    proc = subprocess.run([*ENTRY, "check", str(folder), "--profile", str(path)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2
    assert key in proc.stderr and str(path) in proc.stderr


def test_sectors_command_takes_the_profile(cases, tmp_path):  # type: ignore[no-untyped-def]
    folder, level = cases["T7_body_right_paraspinal"]
    path = tmp_path / "band0.toml"
    path.write_text("[sectors]\nsector_boundary_band_mm = 0\n", "utf-8")
    found = []
    for extra in ([], ["--profile", str(path)]):
        proc = subprocess.run([*ENTRY, "sectors", str(folder), "--json", "-", *extra],
                              capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr
        entries = json.loads(proc.stdout)[0]["sectors"]
        found.append(next(e["gtv_sectors"] for e in entries if e["level"] == level))
    assert found == [[1], [1, 6]]


def test_readme_sectors_table_is_valid() -> None:
    """The README's ``[sectors]`` example builds options with its two values."""
    import re
    import tomllib

    from contourqa.sectors import SectorOptions

    text = (REPO / "README.md").read_text("utf-8")
    block = next(b for b in re.findall(r"```toml\n(.*?)```", text, re.S)
                 if b.startswith("[sectors]"))
    opts = SectorOptions.from_mapping(tomllib.loads(block)["sectors"])
    assert opts.sector_boundary_band_mm == 1.0 != SectorOptions().sector_boundary_band_mm
    assert opts.partition.pedicle_outer_margin_mm == 2.0 \
        != SectorOptions().partition.pedicle_outer_margin_mm


def test_check_options_keep_the_level_beside_sector_options(cases):  # type: ignore[no-untyped-def]
    """``CheckOptions(level=..., sectors=...)`` built by hand: both reach the analysis
    (the user's T6 against the ROI's T7 is a level mismatch; the band 0 counts the
    sliver)."""
    from contourqa.check import CheckOptions, check
    from contourqa.findings import Status
    from contourqa.sectors import SectorOptions

    folder, level = cases["T7_body_right_paraspinal"]
    assert level == "T7"
    run = check(folder, options=CheckOptions(level="T6", compute_dvh=False,
                                             sectors=SectorOptions(sector_boundary_band_mm=0)))
    (report,) = run.reports
    assert any(c.code == "sectors.level_mismatch" and c.status is Status.FAIL
               for c in report.checks)
    assert report.sectors is not None
    assert [1, 6] in [list(v.gtv_sectors) for v in report.sectors]
