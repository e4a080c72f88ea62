"""Noise of the CT and its in-plane median filter before the vertebra segmentation
(:mod:`contourqa.anatomy.noise`).

A thin-slice chest CT with 0.6 mm pixels has about 60 HU of noise: one muscle voxel in
six crosses the 110 HU bone threshold, and the column spreads into the muscles.  The
phantom with 60 HU of white noise added must still give its truth, and the filter
must not move the bone's edge.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from contourqa.anatomy import segment_spine
from contourqa.anatomy.ct import CTSegmentationOptions
from contourqa.anatomy.noise import denoise, estimate_noise_hu
from contourqa.geometry import VolumeGeometry
from contourqa.sectors import SectorOptions, analyse_sectors
from contourqa.structures import Role, assign_roles
from phantom_loading import generate_and_load
from test_data.phantom import PhantomRecipe


def _grid(spacing_mm: float, shape: tuple[int, int, int]) -> VolumeGeometry:
    return VolumeGeometry(shape=shape, origin_mm=np.zeros(3),
                          spacing_mm=np.array([spacing_mm, spacing_mm, 2.0]),
                          direction=np.eye(3))


@pytest.mark.parametrize("sd", [8.0, 30.0, 60.0])
def test_white_noise_in_soft_tissue_is_estimated(sd: float) -> None:
    rng = np.random.default_rng(1)
    hu = 40.0 + rng.normal(0.0, sd, (4, 120, 120))
    hu[:, :, :20] = 700.0  # bone and air are not soft tissue: left out
    hu[:, :, -20:] = -1000.0
    assert estimate_noise_hu(hu) == pytest.approx(sd, rel=0.05)


def test_no_soft_tissue_no_estimate() -> None:
    assert estimate_noise_hu(np.full((2, 50, 50), -1000.0)) == 0.0
    assert estimate_noise_hu(np.full((2, 50, 50), 40.0)) == 0.0  # noise-free


def test_quiet_ct_is_not_filtered() -> None:
    rng = np.random.default_rng(2)
    hu = 40.0 + rng.normal(0.0, 12.0, (3, 80, 80))
    out = denoise(hu, _grid(1.0, hu.shape), target_hu=20.0, max_window_mm=3.0)
    assert out.hu is hu and out.window_mm == 0.0
    assert out.noise_hu == out.noise_after_hu == pytest.approx(12.0, rel=0.08)


def test_median_window_grows_to_the_target_and_keeps_the_edge() -> None:
    rng = np.random.default_rng(3)
    clean = np.full((3, 120, 120), 40.0)
    clean[:, 30:90, 30:90] = 700.0
    hu = clean + rng.normal(0.0, 60.0, clean.shape)
    g = _grid(0.6, hu.shape)
    out = denoise(hu, g, target_hu=20.0, max_window_mm=3.0)
    assert out.noise_hu == pytest.approx(60.0, rel=0.05)
    assert out.noise_after_hu <= 20.0
    assert out.window_mm == pytest.approx(0.6 * 3)  # 3 voxels were enough
    # the block's outline at the bone threshold stays (a 3 x 3 median takes only
    # the block's 4 corners on each slice) and the speckle outside is gone
    bone, block = out.hu >= 110.0, clean >= 110.0
    assert np.count_nonzero(block & ~bone) <= 4 * 3
    speckle_before = np.count_nonzero((hu >= 110.0) & ~block)
    assert speckle_before > 3000
    assert np.count_nonzero(bone & ~block) <= 0.05 * speckle_before
    # a grid too coarse for a window within 3 mm still gets 3 voxels; 0 filters nothing
    assert denoise(hu, _grid(1.5, hu.shape), target_hu=20.0,
                   max_window_mm=3.0).window_mm == pytest.approx(4.5)
    unfiltered = denoise(hu, g, target_hu=20.0, max_window_mm=0.0)
    assert unfiltered.hu is hu and unfiltered.noise_after_hu == unfiltered.noise_hu


def test_noisy_phantom_gives_its_truth_from_the_ct(tmp_path: Path) -> None:
    recipe = PhantomRecipe(name="noisy", gtv_sectors=(1, 2), epidural=True, levels=("T10",),
                           ct_matrix=150)
    case, truth = generate_and_load({"n": recipe}, tmp_path)["n"]
    assert case.image is not None and case.structure_set is not None
    rng = np.random.default_rng(7)
    pixels = case.image.pixels.astype(np.float32)
    noisy = pixels + rng.normal(0.0, 60.0, pixels.shape).astype(np.float32)
    g = case.image.geometry

    def bone(p: np.ndarray, **options: float) -> tuple[np.ndarray, tuple[str, ...]]:
        seg = segment_spine(p, g, options=CTSegmentationOptions(**options))
        out = np.zeros(g.shape, dtype=bool)
        for v in seg.vertebrae:
            out |= v.mask
        return out, tuple(f.message for f in seg.problems)

    clean, problems = bone(pixels)
    assert problems == ()
    dice, said = {}, {}
    for name, opts in (("filtered", {}), ("unfiltered", {"max_denoise_mm": 0.0})):
        b, said[name] = bone(noisy, **opts)
        dice[name] = 2.0 * np.count_nonzero(b & clean) / (b.sum() + clean.sum())
    assert dice["filtered"] >= 0.97 and dice["unfiltered"] < 0.9, dice
    # left unfiltered, the CT's noise is said, with its figure
    assert said["filtered"] == ()
    assert len(said["unfiltered"]) == 1 and "noise in soft tissue is 60 HU" in said["unfiltered"][0]

    table = assign_roles(case.structure_set.rois)
    drop = {a.roi_number for a in table if a.role in (Role.VERTEBRA, Role.SPINAL_CANAL)}
    ss = dataclasses.replace(case.structure_set, rois=tuple(
        r for r in case.structure_set.rois if r.number not in drop))
    noisy_case = dataclasses.replace(case, structure_set=ss,
                                     image=dataclasses.replace(case.image, pixels=noisy))
    result = analyse_sectors(noisy_case, assign_roles(ss.rois), options=SectorOptions())
    assert result.canal_source == "ct"
    entry = result.entry(truth["treated_level"])
    assert list(entry.gtv_sectors) == truth["gtv"]["sectors"]
    assert entry.epidural == truth["gtv"]["epidural"]
    assert entry.paraspinal == truth["gtv"]["paraspinal"]
