"""Held-out cases: vertebrae whose shapes are drawn, not the suite's defaults.

:data:`HELDOUT` is for an honest figure of the sector engine on shapes it was not
tuned on: :data:`~test_data.parts_phantom.SUITE` uses each region's default vertebra
(only the pedicle width varies), the held-out cases draw every shape parameter of
:class:`VertebraParams` from the ranges in :data:`SHAPE_RANGES` with a fixed seed
(:func:`draw_shape`).  Truth is computed from the parts exactly as for the suite.

Ranges are rounded adult morphometry (body, canal and pedicle sizes, pedicle
convergence from about 0-15 deg in the thoracic spine to 5-30 deg in the lumbar and
30-50 deg in the cervical spine, triangular lumbar canals, thoracic spinous processes
inclined 30-60 deg); they are plausible shapes, not a population model.  Nothing here
comes from ``contourqa``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import cache

import numpy as np

from ._anatomy import VertebraParams, canal_section
from ._scene import CaseSpec

__all__ = ["HELDOUT", "SHAPE_RANGES", "draw_shape", "shape_problems"]

#: How each shape parameter is drawn, per region: ``("scale", lo, hi)`` multiplies the
#: region's default by U(lo, hi); ``("value", lo, hi)`` draws the value from U(lo, hi);
#: ``("add", lo, hi)`` adds U(lo, hi) to the default.  ``pedicle_width_right_mm`` is
#: drawn as the left width times U(lo, hi) (mild asymmetry).  Drawn in this order.
SHAPE_RANGES: dict[str, dict[str, tuple[str, float, float]]] = {
    region: {
        "body_half_width_mm": ("scale", 0.85, 1.15),
        "body_half_depth_mm": ("scale", 0.85, 1.15),
        "body_height_mm": ("scale", 0.85, 1.15),
        "body_squareness": ("value", 2.0, 3.2),
        "body_anterior_exponent": ("value", 1.8, 2.6),
        "body_concavity_mm": ("scale", 0.4, 1.8),
        "body_concavity_radius_factor": ("value", 0.95, 1.6),
        "body_shift_mm": ("value", -1.0, 3.5),
        "canal_half_width_mm": ("scale", 0.85, 1.15),
        "canal_half_depth_mm": ("scale", 0.85, 1.15),
        "canal_posterior_exponent": {"lumbar": ("value", 1.2, 2.0),
                                     "thoracic": ("value", 1.6, 2.2),
                                     "cervical": ("value", 1.7, 2.3)}[region],
        "pedicle_width_mm": {"lumbar": ("value", 7.0, 17.0),
                             "thoracic": ("value", 4.5, 10.0),
                             "cervical": ("value", 4.5, 7.5)}[region],
        "pedicle_width_right_mm": ("scale", 0.85, 1.15),
        "pedicle_height_mm": ("scale", 0.85, 1.15),
        "pedicle_convergence_deg": {"lumbar": ("value", 5.0, 28.0),
                                    "thoracic": ("value", 0.0, 18.0),
                                    "cervical": ("value", 30.0, 50.0)}[region],
        "pedicle_z_frac": ("value", 0.0, 0.2),
        "lamina_thickness_mm": ("scale", 0.8, 1.2),
        "lamina_drop_mm": ("scale", 0.6, 1.5),
        "lamina_shingle": ("value", 0.1, 0.6),
        "tp_length_mm": ("scale", 0.75, 1.3),
        "tp_angle_deg": {"cervical": ("add", -10.0, 10.0)}.get(region, ("add", -15.0, 15.0)),
        "spinous_length_mm": ("scale", 0.75, 1.25),
        "spinous_incline_deg": {"lumbar": ("value", 0.0, 20.0),
                                "thoracic": ("value", 30.0, 60.0),
                                "cervical": ("value", 10.0, 40.0)}[region],
        "spinous_half_height_mm": ("scale", 0.8, 1.2),
    }
    for region in ("cervical", "thoracic", "lumbar")
}

#: Canal areas (mm2) a drawn vertebra must have (adult ranges, widened).
_CANAL_AREA_MM2 = {"cervical": (140.0, 340.0), "thoracic": (120.0, 290.0),
                   "lumbar": (150.0, 400.0)}


def _round(name: str, v: float) -> float:
    if name.endswith("_deg"):
        return round(v * 2.0) / 2.0
    if name.endswith("_mm"):
        return round(v, 1)
    return round(v, 2)


def shape_problems(p: VertebraParams) -> list[str]:
    """Why a vertebra's shape is not usable (empty when it is): the ring round the
    canal must close, each pedicle reach the body and be at least 4 mm long, the canal
    area lie in its region's range, and thoracic spinous processes of neighbouring
    levels (one body and disc apart) must not touch."""
    out = []
    try:
        area = canal_section(p).area_mm2
        lo, hi = _CANAL_AREA_MM2[p.region]
        if not lo <= area <= hi:
            out.append(f"canal area {area:.0f} mm2 outside [{lo:.0f}, {hi:.0f}]")
        for side in (1, -1):
            if p.pedicle_length_mm(side) < 4.0:
                out.append("pedicle shorter than 4 mm")
    except ValueError as e:
        out.append(str(e))
    pitch = p.body_height_mm + p.disc_height_mm
    if pitch * math.cos(math.radians(p.spinous_incline_deg)) < 2 * p.spinous_half_height_mm + 2.0:
        out.append("spinous processes of neighbouring levels touch")
    return out


@cache
def draw_shape(region: str, *, seed: int, fixed: tuple[tuple[str, float], ...] = ()
               ) -> tuple[tuple[str, float], ...]:
    """Shape parameters of one held-out vertebra, drawn from :data:`SHAPE_RANGES`.

    Parameters
    ----------
    region : {"cervical", "thoracic", "lumbar"}
    seed : int
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same shape.
    fixed : tuple of (str, float) pairs
        Values imposed on top of the draw (a case about narrow pedicles fixes
        ``pedicle_width_mm``; the right pedicle then has that width too unless
        ``pedicle_width_right_mm`` is fixed as well).

    Returns
    -------
    tuple of (str, float) pairs
        ``CaseSpec.anatomy``: every drawn parameter (mm, deg or unitless, rounded to
        0.1 mm, 0.5 deg, 0.01), then the fixed ones.  A draw whose vertebra fails
        :func:`shape_problems` is drawn again from the same generator (at most 200
        times).
    """
    ranges = SHAPE_RANGES[region]
    base = VertebraParams.for_region(region)
    rng = np.random.default_rng(seed)
    for _ in range(200):
        drawn: dict[str, float] = {}
        for name, (how, lo, hi) in ranges.items():
            u = float(rng.uniform(lo, hi))
            if name == "pedicle_width_right_mm":
                v = drawn["pedicle_width_mm"] * u
            elif how == "scale":
                v = float(getattr(base, name)) * u
            elif how == "add":
                v = float(getattr(base, name)) + u
            else:
                v = u
            drawn[name] = _round(name, v)
        drawn.update(dict(fixed))
        if "pedicle_width_right_mm" not in dict(fixed) and "pedicle_width_mm" in dict(fixed):
            drawn["pedicle_width_right_mm"] = dict(fixed)["pedicle_width_mm"]
        if not shape_problems(replace(base, **drawn)):  # type: ignore[arg-type]
            return tuple(drawn.items())
    raise ValueError(f"No usable {region} shape in 200 draws from seed {seed}; "
                     f"check the fixed values {fixed}.")


def _shape(region: str, seed: int, **fixed: float) -> tuple[tuple[str, float], ...]:
    return draw_shape(region, seed=seed, fixed=tuple(fixed.items()))


#: Held-out cases (never tune on them).  Every vertebra's shape is drawn by
#: :func:`draw_shape` from seed 101-120 (the case's number + 100), some parameters
#: fixed to make the case's point (named in the case name and README); ROI spellings,
#: GTV names, slice thickness and pixel size differ from the suite's too.  The truth
#: is computed from the parts, as for the suite.
HELDOUT: dict[str, CaseSpec] = {
    # body: oval, kidney-shaped, half body lytic under a triangular canal
    "T9_body_lateral_right_oval": CaseSpec(
        level="T9", lesion="body_lateral", side="right", vertebra_roi="Vertebra_{level}",
        gtv_roi="GTV_{level}", slice_mm=2.5, pixel_mm=0.8,
        anatomy=_shape("thoracic", 101, body_squareness=2.0, body_anterior_exponent=2.0,
                       body_concavity_mm=0.8)),
    "T6_body_central_kidney_blastic": CaseSpec(
        level="T6", lesion="body_central", density="blastic", vertebra_roi="{level}_VB",
        gtv_roi="GTVp", slice_mm=1.5, pixel_mm=0.9,
        anatomy=_shape("thoracic", 102, body_concavity_mm=4.5,
                       body_concavity_radius_factor=1.0, body_anterior_exponent=2.5)),
    "L2_body_half_right_lytic_trefoil": CaseSpec(
        level="L2", lesion="body_half", side="right", density="lytic",
        vertebra_roi="{level} vert", gtv_roi="GTV1", slice_mm=3.0, pixel_mm=1.1,
        anatomy=_shape("lumbar", 103, canal_posterior_exponent=1.25)),
    # pedicles: narrow, wide and convergent, asymmetric, long
    "T11_pedicle_whole_left_narrow": CaseSpec(
        level="T11", lesion="pedicle_whole", side="left", vertebra_roi="Vert {level}",
        slice_mm=1.0, pixel_mm=0.7, anatomy=_shape("thoracic", 104, pedicle_width_mm=5.0)),
    "L4_pedicle_right_convergent": CaseSpec(
        level="L4", lesion="pedicle", side="right", vertebra_roi="Spine_{level}",
        gtv_roi="GTV_Spine", slice_mm=2.0, pixel_mm=1.0,
        anatomy=_shape("lumbar", 105, pedicle_width_mm=15.0, pedicle_convergence_deg=26.0)),
    "L1_pedicle_whole_right_lytic_asym": CaseSpec(
        level="L1", lesion="pedicle_whole", side="right", density="lytic",
        vertebra_roi="Vertebra_{level}", slice_mm=2.5, pixel_mm=0.9,
        anatomy=_shape("lumbar", 106, pedicle_width_mm=9.0, pedicle_width_right_mm=6.0)),
    "T4_pedicle_whole_left_lytic_long": CaseSpec(
        level="T4", lesion="pedicle_whole", side="left", density="lytic",
        vertebra_roi="{level} Vertebra", gtv_roi="GTV_{level}", slice_mm=2.0, pixel_mm=0.8,
        anatomy=_shape("thoracic", 107, body_half_width_mm=14.0, body_half_depth_mm=12.5,
                       body_height_mm=18.0, pedicle_width_mm=5.5, body_shift_mm=3.5)),
    # posterior elements
    "T8_lamina_right_steep": CaseSpec(
        level="T8", lesion="lamina", side="right", vertebra_roi="{level}", slice_mm=2.0,
        pixel_mm=0.9, anatomy=_shape("thoracic", 108, lamina_shingle=0.6,
                                     lamina_drop_mm=7.0)),
    "L3_lamina_left_trefoil": CaseSpec(
        level="L3", lesion="lamina", side="left", vertebra_roi="{level}_VB", slice_mm=1.5,
        pixel_mm=0.9, anatomy=_shape("lumbar", 109, canal_posterior_exponent=1.2)),
    "L2_transverse_left_long": CaseSpec(
        level="L2", lesion="transverse_process", side="left", vertebra_roi="Vert {level}",
        gtv_roi="GTV_{level}", slice_mm=2.5, pixel_mm=1.0,
        anatomy=_shape("lumbar", 110, tp_length_mm=35.0, tp_angle_deg=15.0)),
    "T5_transverse_right_ribs_posterior": CaseSpec(
        level="T5", lesion="transverse_process", side="right", ribs=True,
        vertebra_roi="Vertebra_{level}", slice_mm=2.0, pixel_mm=0.9,
        anatomy=_shape("thoracic", 111, tp_angle_deg=48.0)),
    "T7_spinous_steep": CaseSpec(
        level="T7", lesion="spinous", vertebra_roi="Spine_{level}", gtv_roi="GTV_{level}",
        slice_mm=1.0, pixel_mm=0.8,
        anatomy=_shape("thoracic", 112, spinous_incline_deg=58.0, spinous_length_mm=42.0)),
    "L4_spinous_short_blastic": CaseSpec(
        level="L4", lesion="spinous", density="blastic", vertebra_roi="{level} vert",
        slice_mm=2.0, pixel_mm=1.0,
        anatomy=_shape("lumbar", 113, spinous_length_mm=22.0, spinous_incline_deg=15.0)),
    # epidural against a thecal-sac SpinalCanal, paraspinal
    "T12_body_epidural_sac": CaseSpec(
        level="T12", lesion="body_central", epidural=True, canal_roi="thecal_sac",
        vertebra_roi="{level} vert", gtv_roi="GTV_{level}", slice_mm=2.0, pixel_mm=0.9,
        anatomy=_shape("thoracic", 114)),
    "L1_pedicle_whole_left_epidural_sac_lytic": CaseSpec(
        level="L1", lesion="pedicle_whole", side="left", density="lytic", epidural=True,
        canal_roi="thecal_sac", vertebra_roi="Vert {level}", slice_mm=2.5, pixel_mm=0.9,
        anatomy=_shape("lumbar", 115)),
    "T10_body_right_paraspinal": CaseSpec(
        level="T10", lesion="body_lateral", side="right", paraspinal=True, canal_roi="none",
        vertebra_roi="{level}_VB", gtv_roi="GTVp", slice_mm=3.0, pixel_mm=1.0,
        anatomy=_shape("thoracic", 116)),
    # pose and a scoliotic step between levels
    "L3_pedicle_left_rot15_scoliotic": CaseSpec(
        level="L3", lesion="pedicle", side="left", axial_rotation_deg=15.0, tilt_deg=-6.0,
        offset_mm=(6.0, -9.0, 25.0), level_shift_mm=(5.0, -3.0), vertebra_roi="{level} vert",
        slice_mm=2.0, pixel_mm=1.0,
        anatomy=_shape("lumbar", 117, pedicle_width_mm=11.0, pedicle_width_right_mm=8.0)),
    "T9_body_pedicle_right_rotm18_tilt7": CaseSpec(
        level="T9", lesion="body_pedicle", side="right", axial_rotation_deg=-18.0,
        tilt_deg=7.0, offset_mm=(-7.0, 4.0, -15.0), level_shift_mm=(-4.0, 0.0),
        vertebra_roi="Vertebra_{level}", gtv_roi="GTV_{level}", slice_mm=3.0, pixel_mm=1.2,
        anatomy=_shape("thoracic", 118)),
    # cervical
    "C4_pedicle_whole_left_lytic": CaseSpec(
        level="C4", lesion="pedicle_whole", side="left", density="lytic",
        vertebra_roi="{level}_VB", gtv_roi="GTV_{level}", slice_mm=1.0, pixel_mm=0.6,
        anatomy=_shape("cervical", 119)),
    "C7_body_half_right_lytic": CaseSpec(
        level="C7", lesion="body_half", side="right", density="lytic",
        vertebra_roi="Vertebra_{level}", gtv_roi="GTV_{level}", slice_mm=2.0, pixel_mm=0.7,
        anatomy=_shape("cervical", 120)),
}
