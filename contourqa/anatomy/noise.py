"""Image noise of the CT and the in-plane median filter that brings it under the bone threshold.

The CT segmentation (:mod:`contourqa.anatomy.ct`) thresholds bone at 110 HU, about
60 HU above muscle.  A thin-slice, fine-pixel CT (a 0.6 mm, 1.25 mm chest CT) has
60 HU of quantum noise: one muscle voxel in six then reads as bone, the speckle joins
the column through the closing and the hole filling, and the column spreads into
the paraspinal muscles.  Typical planning CTs (1 mm pixels, 2-3 mm slices) have
8-16 HU and are left as they are.

The noise is estimated from the differences of horizontally adjacent voxels inside
soft tissue (median absolute difference, scaled to a standard deviation of white
noise): edges, bone and air stay out, and the estimate needs no segmentation.  The
filter is a median on each slice (never across slices, which may be thick), its
window widened (3, 5, 7 ... voxels) until the estimate falls to the target.  A
median keeps the edges where they are; a Gaussian of the same effect spreads the
700 HU cortex outwards over the 110 HU threshold by about a millimetre (on the
phantom with 60 HU noise: bone Dice 0.93 against the noise-free segmentation with a
Gaussian, 0.98 with a 3-voxel median, and a false sector 3 with the Gaussian).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from contourqa.geometry import VolumeGeometry

__all__: list[str] = []

#: Soft tissue for the noise estimate: HU of the locally averaged image (fat is
#: excluded: its interface with muscle is an edge, not noise).
_SOFT_TISSUE_HU = (0.0, 100.0)
#: Side of the in-plane averaging window that decides what is soft tissue (voxels).
_SOFT_WINDOW = 7
#: Fewer soft-tissue voxel pairs than this: the noise is not estimated (0).
_MIN_PAIRS = 1000
#: Median absolute difference of two N(0, s) voxels is 0.6745 * sqrt(2) * s.
_MAD_TO_SD = 1.0 / (0.6745 * np.sqrt(2.0))


@dataclass(frozen=True)
class Denoised:
    """The filtered image, the median window used (mm across, 0: none) and the noise
    estimates before and after (HU, standard deviation)."""

    hu: NDArray[np.float64]
    window_mm: float
    noise_hu: float
    noise_after_hu: float


def estimate_noise_hu(hu: NDArray[np.float64]) -> float:
    """Standard deviation of the noise in soft tissue (HU); 0 when the image holds too
    little soft tissue to tell.

    Parameters
    ----------
    hu : ndarray of shape (S, R, C)

    Returns
    -------
    float
        ``median(|hu[..., i + 1] - hu[..., i]|) / (0.6745 sqrt 2)`` over the pairs of
        horizontally adjacent voxels both inside soft tissue (local mean within
        ``[0, 100]`` HU): exact for white noise, lower for noise correlated by a smooth
        reconstruction kernel or a filter.
    """
    img = np.asarray(hu, dtype=np.float32)
    if img.shape[2] < 2:
        return 0.0
    local = ndimage.uniform_filter(img, size=(1, _SOFT_WINDOW, _SOFT_WINDOW))
    soft = (local > _SOFT_TISSUE_HU[0]) & (local < _SOFT_TISSUE_HU[1])
    pair = soft[:, :, 1:] & soft[:, :, :-1]
    if np.count_nonzero(pair) < _MIN_PAIRS:
        return 0.0
    diff = np.abs(np.diff(img, axis=2)[pair])
    return float(np.median(diff)) * _MAD_TO_SD


def denoise(hu: NDArray[np.float64], geometry: VolumeGeometry, *, target_hu: float,
            max_window_mm: float) -> Denoised:
    """``hu`` median-filtered in-plane until its noise is at most ``target_hu``.

    Parameters
    ----------
    hu : ndarray of shape (S, R, C)
    geometry : VolumeGeometry
        Grid of ``hu`` (its pixel spacing turns mm into voxels).
    target_hu : float
        Noise (standard deviation, HU) from which no filtering is needed.
    max_window_mm : float
        Widest median window (mm across, along the coarser pixel spacing); windows
        of 3, 5, 7 ... voxels are tried up to it, and a 3-voxel window on a grid too
        coarse for any; 0 filters nothing.

    Returns
    -------
    Denoised
        ``hu`` itself with ``window_mm`` 0 when its noise is within the target or
        cannot be estimated; otherwise the first window that reaches the target (or
        the widest).  ``noise_after_hu`` is the same estimate on the filtered image:
        a median makes neighbouring voxels alike, so it reads low (white noise of
        60 HU after a 3-voxel median: 24.5 HU, read as 11); it is a stopping rule
        and a figure to compare, not the residual noise itself.
    """
    noise = estimate_noise_hu(hu)
    pixel = float(max(geometry.spacing_mm[0], geometry.spacing_mm[1]))
    if noise <= target_hu or max_window_mm <= 0 or not pixel > 0:
        return Denoised(hu, 0.0, noise, noise)
    sizes = range(3, max(int(max_window_mm / pixel), 3) + 1, 2)
    img = np.asarray(hu, dtype=np.float32)
    out, after, size = hu, noise, 0
    for size in sizes:
        out = ndimage.median_filter(img, size=(1, size, size)).astype(np.float64)
        after = estimate_noise_hu(out)
        if after <= target_hu:
            break
    return Denoised(out, size * pixel, noise, after)
