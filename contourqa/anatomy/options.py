"""Options of the CT spine segmentation (:func:`contourqa.anatomy.segment_spine`).

One frozen dataclass holds every threshold of the segmentation's steps, so the steps
(in :mod:`contourqa.anatomy.ct`, :mod:`~contourqa.anatomy.discs`,
:mod:`~contourqa.anatomy.vessels`, :mod:`~contourqa.anatomy.ribs`,
:mod:`~contourqa.anatomy.sacrum` ...) take it without importing the pipeline.
The thresholds of the newer steps are data: ``anatomy/data/ct_segmentation.toml``
(one table per step, each with its source and knowledge-base status; field
``<table>_<key>``), read once here as the fields' defaults.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from contourqa.errors import ContourQAError

__all__ = ["CTSegmentationOptions", "CTSegmentationOptionsError"]

#: Tables of ``ct_segmentation.toml`` and their keys (besides ``source`` and ``status``).
_DATA_KEYS: dict[str, tuple[str, ...]] = {
    "foramen": ("min_area_mm2", "max_area_mm2", "max_mean_hu", "max_behind_mm",
                "max_ahead_mm", "front_depth_mm", "max_front_fraction", "pair_tolerance_mm"),
}


class CTSegmentationOptionsError(ContourQAError, ValueError):
    """``anatomy/data/ct_segmentation.toml`` lacks a table or key, or names an unknown one."""


def _data_defaults() -> dict[str, float]:
    """``{<table>_<key>: value}`` from ``anatomy/data/ct_segmentation.toml``."""
    where = "contourqa/anatomy/data/ct_segmentation.toml"
    item = resources.files("contourqa.anatomy").joinpath("data", "ct_segmentation.toml")
    data: dict[str, Any] = tomllib.loads(item.read_text(encoding="utf-8"))
    out: dict[str, float] = {}
    for table, entries in data.items():
        if table not in _DATA_KEYS or not isinstance(entries, dict):
            raise CTSegmentationOptionsError(
                f"{where}: unknown table [{table}]; tables are {list(_DATA_KEYS)}.")
        for key, value in entries.items():
            if key in ("source", "status"):
                continue
            if key not in _DATA_KEYS[table]:
                raise CTSegmentationOptionsError(f"{where}: unknown key {key!r} in [{table}].")
            out[f"{table}_{key}"] = float(value)
    missing = sorted(f"[{t}] {k}" for t, keys in _DATA_KEYS.items() for k in keys
                     if f"{t}_{k}" not in out)
    if missing:
        raise CTSegmentationOptionsError(f"{where}: missing keys {missing}.")
    return out


_DATA = _data_defaults()


@dataclass(frozen=True, kw_only=True)
class CTSegmentationOptions:
    """Thresholds of the CT segmentation (HU, mm, mm2).

    Parameters
    ----------
    bone_min_hu : float
        Bone threshold (110 HU: cancellous bone of older patients is 110-250 HU, muscle
        below 80; the closed cortex and hole filling recover darker marrow).
    noise_target_hu, max_denoise_mm : float
        A CT whose noise in soft tissue (standard deviation, HU) exceeds
        ``noise_target_hu`` (20 HU: muscle then crosses the bone threshold at 3
        standard deviations) is median-filtered on each slice, with windows of 3, 5,
        7 ... voxels up to ``max_denoise_mm`` across (3 mm), until the target is met
        (:func:`contourqa.anatomy.noise.denoise`; a grid coarser than a third of it
        still gets a 3-voxel window).  A 0.6 mm pixel, 1.25 mm slice chest CT has
        about 60 HU; planning CTs 8-16 HU and are not filtered.  A CT still above the
        target after the widest window gets a ``sectors.ct_segmentation`` warning.
        ``max_denoise_mm`` 0 disables the filter.
    closing_mm : float
        In-plane closing radius that seals thin cortex gaps.
    column_radius_mm : float
        In-plane distance from the canal centre beyond which bone is not vertebra.
    min_canal_area_mm2, max_canal_area_mm2 : float
        Area of a ring hole taken for the canal.
    canal_min_posterior_mm : float
        How far (mm, patient posterior) a hole's centroid must lie behind the
        centroid of the bone ring enclosing it to be a canal candidate (3 mm; the
        canal lies 15-30 mm behind the centroid of a vertebra's bone).
    canal_max_lateral_mm : float
        Largest left-right distance (mm) of a candidate from its ring's centroid:
        the canal lies on the vertebra's plane of symmetry (an axial rotation of
        20 degrees moves it about 5 mm), holes in the ilium or a rib do not.
    canal_max_mean_hu : float
        Largest mean HU of a canal candidate (55 HU: the canal holds CSF, fat and
        the cord, 0-40 HU with some bone partial volume; a disc ringed by its
        endplate rim on an oblique or thick slice is 70-120 HU, the dark marrow
        of a body 90 HU or more).
    canal_max_gap_mm : float
        Longest run of slices (mm) without a closed ring that the canal's chain of
        holes may bridge (45 mm: more than a lumbar vertebra with its disc; the ring
        is closed only at the pedicles on thick slices).
    canal_max_offset_mm : float
        In-plane distance from the path beyond which a hole is not the canal.
    canal_max_tilt_deg : float
        Angle of the canal to the slice normal (lordosis, kyphosis, scoliosis) by
        which the in-plane step allowed between two holes of the chain grows with
        their distance along the slices.
    canal_core_fraction : float
        Voxels below the bone threshold within this fraction of the canal's radius
        (from its median area) about the canal centre are never filled into the
        column, on slices where the canal was not found either (0.8; 0 fills all).
    canal_outlier_mm : float
        A hole of the chain farther than this (in-plane) from the median position of
        the five nearest chain members is dropped.
    body_min_depth_mm : float
        Bone at least this far anterior of the canal's anterior wall is body bone for
        the centreline (2 mm: clear of the posterior longitudinal ligament's
        partial volume).
    centreline_smoothing_mm : float
        Gaussian sigma, along the slices, of the body centreline (10 mm: follows the
        lordosis, not the bulges of single bodies).
    centreline_half_width_mm : float
        Only body bone within this distance (mm) left-right of the canal centre
        makes the centreline (20 mm: most of a lumbar body, not the sacral alae).
    disc_probe_radius_mm : float
        Radius of the tube about the centreline whose mean HU gives the disc profiles
        (10 mm: inside the bodies' cortex in the thoracic and lumbar spine).
    disc_sample_mm : float
        In-plane spacing of the HU samples of the disc profiles and fits (1 mm):
        finer pixels are subsampled (:func:`contourqa.anatomy.discs._tube_samples`).
    profile_smoothing_mm : float
        Gaussian sigma of the HU profiles along the arc length (the profiles are at
        least as smooth as half the slice spacing).
    disc_profile_min_hu, disc_profile_max_hu : float
        HU clipped to this range before profiling (-50, 350): cortical endplates,
        osteophytes and gas do not outweigh the marrow and the disc.
    disc_max_tilt_deg : float
        Largest angle (about the lateral axis) between a disc plane and the plane
        normal to the centreline (45 degrees: the lumbosacral disc of a lordotic
        spine is wedged and tilted against the bodies' centreline).
    disc_max_lateral_tilt_deg : float
        Largest angle about the anterior axis (15 degrees: wedged discs of a
        scoliosis).
    disc_tilt_step_deg : float
        Step of the tilts tried.
    disc_max_thickness_mm : float
        Width of the black top-hat of the profiles (14 mm): a disc (3-12 mm, widened
        by the slice thickness) is a dip narrower than this between its endplates,
        the dark marrow of an osteoporotic body a wider one.
    disc_min_contrast_hu : float
        Smallest top-hat (HU) of a disc candidate.
    end_disc_min_contrast_hu : float
        Smallest contrast (HU) of a disc cut by an end of the crop: the dark slab at
        the end of the profile against the brightest HU within twice
        ``disc_max_thickness_mm`` inside it
        (:func:`contourqa.anatomy.discs._end_disc_candidates`; 50 HU: half a dip is
        weaker evidence than a whole one, so more than ``disc_min_contrast_hu``;
        the T12/L1 disc cut by the TotalSegmentator example DICOM crop is 130 HU
        darker than the T12 endplate).
    disc_height_penalty_hu, disc_spacing_penalty_hu : float
        Weights (HU) of the squared log ratios of a vertebra's height to the expected
        one and to its neighbour's in the choice among the candidates
        (:func:`contourqa.anatomy.discs._choose_discs`; 100 and 30 HU: halving a
        body costs about 100 HU, more than the dip of its marrow, whereas a weak
        disc between two vertebrae of the expected height is kept).
    end_height_ratio : float
        A partial vertebra at the crop's ends longer than this times the expected
        height is penalised like a whole one (a disc was missed).
    height_per_reach : float
        Expected height of a vertebra with its disc over the distance from the canal
        centre to the front of the body (0.8: about 38/47 mm in the lumbar spine,
        25/33 mm at T10, 19/22 mm at C6).
    height_window_mm : float
        Length of the running median of that distance along the slices.
    body_reach_half_width_mm : float
        Half-width of the midline band in which the front of the body is measured.
    min_vertebra_height_mm : float
        Shortest distance between two discs, and shortest vertebra kept (partial
        ones at the crop's ends are kept when at least a quarter of this); 15 mm is
        below the shortest adult cervical body plus its disc.
    seed_margin_mm : float
        Body bone within this distance of a disc plane does not seed a vertebra
        (the plane is an approximation of the oblique, wedge-shaped disc).
    arch_seed_fraction : float
        All column bone (body and posterior elements) farther below a disc than this
        fraction of the height of the vertebra above it seeds the vertebra below
        (:func:`_caudal_seeds`; 0.5): an arch hangs caudally from its body, about
        half the vertebra's height below its caudal disc.
    arch_seed_depth_mm : float
        How far behind the canal centre that bone seeds (20 mm: the lamina and the
        root of the spinous process; a thoracic spinous process slopes down over
        the vertebra below).
    edge_fraction : float
        A voxel on the column's outer edge darker than this fraction of the way from
        its soft-tissue neighbours' mean HU to its column neighbours' is dropped
        (:func:`partial_volume_edge`; 0.5: the edge at half maximum; 0 keeps
        them all).
    watershed_smoothing_mm : float
        In-plane Gaussian sigma of the HU flooded by the watershed.
    lytic_bridge_mm : float
        Closing radius applied within the lesion mask (lytic bone).
    sacral_width_ratio : float
        The sacral vertebrae (the caudal end segment when longer than
        ``end_height_ratio`` vertebrae without a disc, and S1 above it) keep their
        bone within this ratio times the half-width of the other vertebrae's bodies
        left and right of the canal centre (1.4; :func:`contourqa.anatomy.sacrum.alae`):
        the alae and the ilia joined to them are the sacrum's, not S1's.  0 keeps
        them.
    marrow_disc_margin_mm : float
        Marrow enclosed on a sagittal or coronal grid plane by the column with its
        axial holes filled (the slices above and below) joins the column when
        farther than this from every disc plane (6 mm: half the thickest disc;
        :func:`contourqa.anatomy.marrow.enclosed_marrow`); 0 adds none.
    rib_min_lateral_mm, rib_reach_mm : float
        Bone farther than ``rib_min_lateral_mm`` left or right of the canal centre
        whose connected part there reaches ``rib_reach_mm`` from the canal centre is
        a rib or an ilium, jointed to the vertebra, and leaves the column
        (:func:`contourqa.anatomy.ribs.jointed_bone`; 28 and 70 mm: beyond the
        widest lumbar body, 27 mm on the TotalSegmentator example CT, and the
        thoracic transverse-process tips, 24 mm, whereas the lumbar transverse
        processes end free within about 50 mm).  The sacral vertebrae are exempt
        (``sacral_width_ratio`` limits them).  0 keeps all.
    vessel_min_radius_mm : float
        A contrast-filled vessel lumen (aorta, inferior vena cava) joined to a body
        leaves the column (:func:`contourqa.anatomy.vessels.vessel_lumen`): its core
        holds a disk of this radius (in-plane) of voxels whose local mean HU is from
        ``bone_min_hu`` up to ``vessel_max_hu`` and whose local standard deviation
        is at most ``vessel_max_sd_hu`` (5 mm: the aorta's radius is 10-15 mm and
        the core keeps 3-5 mm clear of the lumen's edge, where the deviation rises;
        on the DICOM example 7 mm misses slices of the aorta, 4 mm holds cores of
        marrow on the 3 mm example; a narrower cava may hold no core and stays).
        0 keeps them.
    vessel_max_hu : float
        Upper HU of a lumen (350 HU: contrast blood of the portal-venous phase is
        120-250 HU; the cortex and a calcified wall are brighter).
    vessel_max_sd_hu, vessel_sd_mm : float
        Largest local standard deviation (HU) of a lumen's core, under an in-plane
        Gaussian window of sigma ``vessel_sd_mm`` (at least one pixel; 25 HU at
        1.5 mm: the aortic lumen has a median of 13 HU on the 1 mm TotalSegmentator
        DICOM example, cancellous bone 31 HU).
    vessel_grow_mm : float
        How far (in-plane) the core grows back, through voxels of HU from
        ``bone_min_hu`` up to ``vessel_max_hu``, to the lumen's edge (6 mm).
    vessel_min_exterior : float
        Smallest fraction of a region's border (where the region's HU range ends)
        outside the slices' bone outline, its holes filled on the axial, sagittal
        and coronal planes, for a lumen (0.3: a lumen's border mostly faces the fat
        and soft tissue about the vessel, 0.47 on the DICOM example, where a
        calcified wall faces the body; the marrow of a body is enclosed by its
        cortex, 0 there and at most 0.17 on the 3 mm example).
    vessel_min_canal_mm : float
        A region that comes closer to the canal centre than this (in-plane) is the
        bone of the ring about the canal, not a vessel (15 mm: the back of a body is
        8-12 mm from the canal centre, so that marrow grown to it is kept even where
        its cortex is open; the aorta lies in front of or beside the body, 43 mm
        from the canal centre on the DICOM example).
    vessel_wall_mm : float
        The vessel's wall (calcified or not, with the lumen's partial-volume rim):
        column voxels within this distance (in-plane) of a lumen go with it unless
        a disk of this radius fits into the column there, i.e. they are a thin
        shell, not the body against the vessel (4 mm).  0 cuts the lumen alone.
    foramen_min_area_mm2, foramen_max_area_mm2 : float
        Area (mm2) of an axial hole of the column's bone kept open as a foramen
        transversarium (:func:`contourqa.anatomy.foramina.transverse_foramina`), from
        ``ct_segmentation.toml`` ``[foramen]`` (3 and 80 mm2).  ``foramen_max_area_mm2``
        0 fills every hole.
    foramen_max_mean_hu : float
        Largest mean HU of a foramen (70 HU: vessels and fat with the partial-volume
        rim; holes of dark marrow below the bone threshold are 80-110 HU).
    foramen_max_behind_mm, foramen_max_ahead_mm : float
        The midpoint of a pair of foramina lies between this far behind and this far
        in front of the canal's front, along the anterior direction (4 and 8 mm:
        beside the pedicle, as in the partition's landmark).
    foramen_front_depth_mm, foramen_max_front_fraction : float
        A foramen lies lateral to the body: of the voxels up to
        ``foramen_front_depth_mm`` in front of it (as wide as the hole), at most
        ``foramen_max_front_fraction`` are the column's (8 mm, 0.6: 0.28-0.34 for
        the parts phantom's cervical foramina, 1.0 for the fatty marrow of the L4
        pedicles on the TotalSegmentator 3 mm CT, 19-57 HU, mirrored, with the body
        in front of it).
    foramen_pair_tolerance_mm : float
        A foramen has its mirror image on the same slice: a hole on the other side
        whose distance from the canal centre differs by at most this (3 mm).
    """

    bone_min_hu: float = 110.0
    noise_target_hu: float = 20.0
    max_denoise_mm: float = 3.0
    closing_mm: float = 1.0
    column_radius_mm: float = 55.0
    min_canal_area_mm2: float = 20.0
    max_canal_area_mm2: float = 900.0
    canal_min_posterior_mm: float = 2.0
    canal_max_lateral_mm: float = 6.0
    canal_max_mean_hu: float = 55.0
    canal_max_gap_mm: float = 60.0
    canal_max_offset_mm: float = 8.0
    canal_max_tilt_deg: float = 30.0
    canal_outlier_mm: float = 7.5
    canal_core_fraction: float = 0.8
    body_min_depth_mm: float = 2.0
    centreline_smoothing_mm: float = 10.0
    centreline_half_width_mm: float = 20.0
    disc_probe_radius_mm: float = 10.0
    disc_sample_mm: float = 1.0
    profile_smoothing_mm: float = 1.0
    disc_profile_min_hu: float = -50.0
    disc_profile_max_hu: float = 350.0
    disc_max_tilt_deg: float = 45.0
    disc_max_lateral_tilt_deg: float = 15.0
    disc_tilt_step_deg: float = 5.0
    disc_max_thickness_mm: float = 14.0
    disc_min_contrast_hu: float = 20.0
    end_disc_min_contrast_hu: float = 50.0
    disc_fit_radius_mm: float = 15.0
    disc_fit_cell_mm: float = 4.0
    disc_fit_bin_mm: float = 1.5
    disc_fit_max_residual_mm: float = 4.0
    disc_height_penalty_hu: float = 100.0
    disc_spacing_penalty_hu: float = 30.0
    end_height_ratio: float = 1.5
    height_per_reach: float = 0.8
    height_window_mm: float = 80.0
    body_reach_half_width_mm: float = 8.0
    min_vertebra_height_mm: float = 15.0
    seed_margin_mm: float = 3.0
    arch_seed_fraction: float = 0.5
    edge_fraction: float = 0.5
    arch_seed_depth_mm: float = 20.0
    watershed_smoothing_mm: float = 1.0
    lytic_bridge_mm: float = 5.0
    sacral_width_ratio: float = 1.4
    marrow_disc_margin_mm: float = 6.0
    rib_min_lateral_mm: float = 28.0
    rib_reach_mm: float = 70.0
    vessel_min_radius_mm: float = 5.0
    vessel_max_hu: float = 350.0
    vessel_max_sd_hu: float = 25.0
    vessel_sd_mm: float = 1.5
    vessel_grow_mm: float = 6.0
    vessel_min_exterior: float = 0.3
    vessel_min_canal_mm: float = 15.0
    vessel_wall_mm: float = 4.0
    foramen_min_area_mm2: float = _DATA["foramen_min_area_mm2"]
    foramen_max_area_mm2: float = _DATA["foramen_max_area_mm2"]
    foramen_max_mean_hu: float = _DATA["foramen_max_mean_hu"]
    foramen_max_behind_mm: float = _DATA["foramen_max_behind_mm"]
    foramen_max_ahead_mm: float = _DATA["foramen_max_ahead_mm"]
    foramen_front_depth_mm: float = _DATA["foramen_front_depth_mm"]
    foramen_max_front_fraction: float = _DATA["foramen_max_front_fraction"]
    foramen_pair_tolerance_mm: float = _DATA["foramen_pair_tolerance_mm"]

    def __post_init__(self) -> None:
        for name in ("noise_target_hu", "max_denoise_mm", "closing_mm", "column_radius_mm",
                     "min_canal_area_mm2",
                     "canal_max_gap_mm", "canal_max_offset_mm", "disc_probe_radius_mm",
                     "profile_smoothing_mm", "min_vertebra_height_mm", "seed_margin_mm",
                     "centreline_half_width_mm",
                     "watershed_smoothing_mm", "lytic_bridge_mm", "centreline_smoothing_mm",
                     "canal_outlier_mm", "disc_max_tilt_deg", "disc_max_lateral_tilt_deg",
                     "disc_max_thickness_mm", "disc_min_contrast_hu", "disc_spacing_penalty_hu",
                     "end_disc_min_contrast_hu",
                     "disc_height_penalty_hu", "height_per_reach", "height_window_mm",
                     "body_reach_half_width_mm", "arch_seed_depth_mm", "sacral_width_ratio",
                     "marrow_disc_margin_mm", "rib_min_lateral_mm", "rib_reach_mm",
                     "vessel_min_radius_mm", "vessel_max_sd_hu", "vessel_sd_mm",
                     "vessel_grow_mm", "vessel_min_canal_mm", "vessel_wall_mm",
                     "foramen_min_area_mm2", "foramen_max_area_mm2",
                     "foramen_max_behind_mm", "foramen_max_ahead_mm",
                     "foramen_front_depth_mm", "foramen_pair_tolerance_mm"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f'Argument "{name}" must be >= 0.')
        for name in ("arch_seed_fraction", "edge_fraction", "vessel_min_exterior",
                     "canal_core_fraction", "foramen_max_front_fraction"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ValueError(f'Argument "{name}" must be within [0, 1].')
        if not self.end_height_ratio >= 1.0:
            raise ValueError('Argument "end_height_ratio" must be >= 1.')
        if not self.disc_sample_mm > 0:
            raise ValueError('Argument "disc_sample_mm" must be > 0.')
        if not self.disc_tilt_step_deg > 0:
            raise ValueError('Argument "disc_tilt_step_deg" must be > 0.')
        if not self.disc_profile_max_hu > self.disc_profile_min_hu:
            raise ValueError('Argument "disc_profile_max_hu" must exceed "disc_profile_min_hu".')
        if not self.vessel_max_hu > self.bone_min_hu:
            raise ValueError('Argument "vessel_max_hu" must exceed "bone_min_hu".')
        if not self.max_canal_area_mm2 > self.min_canal_area_mm2:
            raise ValueError('Argument "max_canal_area_mm2" must exceed "min_canal_area_mm2".')
