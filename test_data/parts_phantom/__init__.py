"""Spine phantom built from anatomical parts, with truth labelled by part.

Each vertebra is modelled as separate solids - vertebral body, pedicles, articular
pillars with their superior and inferior processes, laminae, transverse processes,
spinous process (and optionally rib heads) - each labelled by what it is.  The true
ISRC sector of a bone voxel is the sector of its part (:data:`SECTOR_OF_PART`: body 1,
left pedicle 2, left lamina / transverse / articular process 3, spinous process 4,
right lamina / transverse / articular 5, right pedicle 6), never a wedge about the
canal.  Nothing is imported from ``contourqa.sectors`` or ``contourqa.anatomy`` and no
parameter of theirs is reused: the phantom is an independent reference for them.

>>> from test_data.parts_phantom import SUITE, write_case          # doctest: +SKIP
>>> truth = write_case(SUITE["T10_pedicle_left_w8"], tmp_path)      # doctest: +SKIP
>>> truth.gtv_sectors                                               # doctest: +SKIP
(2,)

See ``test_data/parts_phantom/README.md`` for the anatomy, the truth criterion and
the suite.

:data:`SUITE` is the tuning suite (each region's default vertebra shape).
``HELDOUT`` (from :mod:`._heldout`, loaded on first use) holds cases whose vertebra
shapes are drawn from seeded ranges (:func:`draw_shape`): keep it out of any tuning,
and report its figures apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._anatomy import (
    PART_NAMES,
    SECTOR_OF_PART,
    SUB_LABEL,
    CanalSection,
    PartsVertebra,
    VertebraParams,
    build_vertebra,
    canal_section,
)
from ._case import (
    MIN_EPIDURAL_CC,
    MIN_PARASPINAL_CC,
    MIN_SECTOR_CC,
    MIN_SECTOR_PCT,
    PARASPINAL_MARGIN_MM,
    CaseTruth,
    case_truth,
    write_case,
)
from ._lesions import LESIONS
from ._scene import HU, CaseSpec, Scene, build_scene

if TYPE_CHECKING:  # loaded on first use (see __getattr__ below)
    from ._heldout import HELDOUT, SHAPE_RANGES, draw_shape, shape_problems

__all__ = [
    "HELDOUT", "HU", "LESIONS", "MIN_EPIDURAL_CC", "MIN_PARASPINAL_CC", "MIN_SECTOR_CC",
    "MIN_SECTOR_PCT", "PARASPINAL_MARGIN_MM", "PART_NAMES", "SECTOR_OF_PART", "SUB_LABEL",
    "SUITE", "CanalSection", "CaseSpec", "CaseTruth", "PartsVertebra", "Scene",
    "VertebraParams", "build_scene", "build_vertebra", "canal_section", "case_truth",
    "write_case", "draw_shape", "shape_problems", "SHAPE_RANGES",
]

_BV = "Bone_Vertebra_{level}"

#: The named suite: at least one case per region, pedicle width 8/12/18 mm, lesion
#: kind, density, extension, canal ROI style, vertebra ROI spelling, pose and slice
#: thickness.  Names say what each case is; the truth is computed, not declared.
SUITE: dict[str, CaseSpec] = {
    # thoracic body
    "T10_body_central": CaseSpec(level="T10", lesion="body_central"),
    "T10_body_left_lytic": CaseSpec(level="T10", lesion="body_lateral", side="left",
                                    density="lytic"),
    "T10_body_half_right_lytic": CaseSpec(level="T10", lesion="body_half", side="right",
                                          density="lytic", vertebra_roi=_BV),
    "T12_body_diffuse_blastic": CaseSpec(level="T12", lesion="body_diffuse",
                                         density="blastic", vertebra_roi="{level}"),
    # pedicles of three widths
    "T10_pedicle_left_w8": CaseSpec(level="T10", lesion="pedicle", side="left",
                                    pedicle_width_mm=8.0),
    "L3_pedicle_right_w12": CaseSpec(level="L3", lesion="pedicle", side="right",
                                     pedicle_width_mm=12.0),
    "L3_pedicle_whole_left_w18_lytic": CaseSpec(level="L3", lesion="pedicle_whole",
                                                side="left", pedicle_width_mm=18.0,
                                                density="lytic"),
    "T9_pedicle_whole_right_lytic": CaseSpec(level="T9", lesion="pedicle_whole", side="right",
                                             density="lytic", vertebra_roi=_BV),
    "T10_body_pedicle_left_blastic": CaseSpec(level="T10", lesion="body_pedicle",
                                              side="left", density="blastic"),
    "L2_body_bilateral_pedicles": CaseSpec(level="L2", lesion="body_bilateral_pedicles",
                                           pedicle_width_mm=12.0),
    # posterior elements
    "T10_lamina_left": CaseSpec(level="T10", lesion="lamina", side="left"),
    "L3_transverse_right": CaseSpec(level="L3", lesion="transverse_process", side="right"),
    "T8_transverse_left_ribs": CaseSpec(level="T8", lesion="transverse_process", side="left",
                                        ribs=True, vertebra_roi=_BV),
    "L4_articular_left": CaseSpec(level="L4", lesion="articular", side="left",
                                  vertebra_roi="Vertebra_{level}"),
    "T11_spinous_blastic": CaseSpec(level="T11", lesion="spinous", density="blastic"),
    "L1_posterior_arch_lytic": CaseSpec(level="L1", lesion="posterior_arch", density="lytic"),
    "T10_posterolateral_right": CaseSpec(level="T10", lesion="posterolateral", side="right",
                                         ribs=True),
    # lesions across the junctions of parts (clipped to the vertebra's bone only)
    "T10_pedicle_base_left": CaseSpec(level="T10", lesion="pedicle_base", side="left"),
    "T10_pillar_junction_right_lytic": CaseSpec(level="T10", lesion="pillar_junction",
                                                side="right", density="lytic"),
    "L3_lamina_spinous_left": CaseSpec(level="L3", lesion="lamina_spinous", side="left"),
    # cervical
    "C5_body_left": CaseSpec(level="C5", lesion="body_lateral", side="left", pixel_mm=0.7),
    "C6_pedicle_whole_right_lytic": CaseSpec(level="C6", lesion="pedicle_whole",
                                             side="right", density="lytic", pixel_mm=0.7,
                                             vertebra_roi=_BV),
    "C4_lamina_left": CaseSpec(level="C4", lesion="lamina", side="left", pixel_mm=0.6),
    # epidural and paraspinal extension
    "T10_body_epidural_sac": CaseSpec(level="T10", lesion="body_central", epidural=True,
                                      canal_roi="thecal_sac"),
    "L3_body_left_epidural_paraspinal_lytic": CaseSpec(
        level="L3", lesion="body_lateral", side="left", epidural=True, paraspinal=True,
        density="lytic", canal_roi="thecal_sac"),
    "T10_pedicle_right_epidural_lytic": CaseSpec(level="T10", lesion="pedicle_whole",
                                                 side="right", epidural=True, density="lytic"),
    "T7_body_right_paraspinal": CaseSpec(level="T7", lesion="body_lateral", side="right",
                                         paraspinal=True, canal_roi="none"),
    # pose
    "T10_body_left_rot20": CaseSpec(level="T10", lesion="body_lateral", side="left",
                                    axial_rotation_deg=20.0, offset_mm=(12.0, -8.0, 40.0)),
    "L3_pedicle_left_rotm20_tilt10": CaseSpec(level="L3", lesion="pedicle", side="left",
                                              axial_rotation_deg=-20.0, tilt_deg=10.0),
    "C5_spinous_rot15_tiltm8": CaseSpec(level="C5", lesion="spinous", axial_rotation_deg=15.0,
                                        tilt_deg=-8.0, pixel_mm=0.7),
    # slices
    "T10_lamina_right_1mm": CaseSpec(level="T10", lesion="lamina", side="right",
                                     slice_mm=1.0, pixel_mm=0.8),
    "L3_body_half_left_3mm": CaseSpec(level="L3", lesion="body_half", side="left",
                                      slice_mm=3.0, pixel_mm=1.2, density="lytic"),
    "T10_pedicle_left_3mm": CaseSpec(level="T10", lesion="pedicle", side="left",
                                     slice_mm=3.0, pixel_mm=1.0),
    # (added last: the drawn suite's seeds follow the order)
    # turned and tilted: the slices cut the two sides at different heights; the body
    # lesion's paraspinal extension covers the left foramen transversarium (the shape
    # is draw_shape("cervical", seed=7012), written out)
    "C5_body_paraspinal_rot11_tiltm4": CaseSpec(
        level="C5", lesion="body_central", side="left", paraspinal=True,
        axial_rotation_deg=11.5, tilt_deg=-4.4, pixel_mm=0.7, anatomy=(
            ("body_half_width_mm", 8.7), ("body_half_depth_mm", 8.1),
            ("body_height_mm", 13.1), ("body_squareness", 2.19),
            ("body_anterior_exponent", 2.07), ("body_concavity_mm", 1.8),
            ("body_concavity_radius_factor", 1.4), ("body_shift_mm", 3.2),
            ("canal_half_width_mm", 10.6), ("canal_half_depth_mm", 7.1),
            ("canal_posterior_exponent", 2.27), ("pedicle_width_mm", 7.3),
            ("pedicle_width_right_mm", 8.3), ("pedicle_height_mm", 7.5),
            ("pedicle_convergence_deg", 34.0), ("pedicle_z_frac", 0.03),
            ("lamina_thickness_mm", 4.1), ("lamina_drop_mm", 4.1), ("lamina_shingle", 0.2),
            ("tp_length_mm", 8.7), ("tp_angle_deg", -22.0), ("spinous_length_mm", 17.3),
            ("spinous_incline_deg", 38.0), ("spinous_half_height_mm", 3.4))),
}


def __getattr__(name: str) -> Any:
    # the held-out cases draw and check 20 shapes (about half a second): only on use
    if name in ("HELDOUT", "draw_shape", "shape_problems", "SHAPE_RANGES"):
        from . import _heldout

        return getattr(_heldout, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
