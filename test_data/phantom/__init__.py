"""Digital spine phantom: a DICOM-RT case with known truth, generated from a recipe.

>>> from test_data.phantom import PRESETS, generate_case
>>> case = generate_case(PRESETS["demo"], out_dir)          # doctest: +SKIP
>>> case.truth["dose"]["cord_dmax_gy"]                      # doctest: +SKIP
14.0

The case folder holds ``dicom/`` (CT series, ``RS.dcm``, ``RP.dcm``, ``RD.dcm``) and
``truth/`` (``truth.json`` and ``truth_labels.npy``, the ISRC sector labels on the CT
grid).  Run ``python -m test_data.phantom OUTDIR --recipe NAME`` to write one from the
command line.  See ``test_data/README.md`` for the anatomy and the truth file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._anatomy import SECTOR_NAMES
from ._build import HU, SCLEROTIC_HU, CaseModel, build_case
from ._dicom import write_case_dicom
from ._recipe import CTV_RECIPES, PRESETS, PhantomRecipe, consensus_ctv_sectors

__all__ = [
    "CTV_RECIPES",
    "PRESETS",
    "SECTOR_NAMES",
    "GeneratedCase",
    "PhantomRecipe",
    "build_case",
    "consensus_ctv_sectors",
    "generate_case",
]

TRUTH_VERSION = 1


@dataclass(frozen=True)
class GeneratedCase:
    """Paths of a written phantom case and its truth (the parsed ``truth.json``)."""

    root: Path
    dicom_dir: Path
    truth_path: Path
    labels_path: Path
    truth: dict[str, Any]

    @property
    def ct_paths(self) -> list[Path]:
        return [self.dicom_dir / n for n in self.truth["files"]["ct"]]

    @property
    def rtstruct_path(self) -> Path:
        return self.dicom_dir / self.truth["files"]["rtstruct"]

    @property
    def rtplan_path(self) -> Path:
        return self.dicom_dir / self.truth["files"]["rtplan"]

    @property
    def rtdose_path(self) -> Path:
        return self.dicom_dir / self.truth["files"]["rtdose"]

    def dicom_paths(self) -> list[Path]:
        return [*self.ct_paths, self.rtstruct_path, self.rtplan_path, self.rtdose_path]

    def labels(self) -> np.ndarray:
        """Label volume (S, R, C), uint8: ``10 * level_number + sector``, 0 outside bone."""
        return np.load(self.labels_path)


def _r(v: float, nd: int = 6) -> float:
    return float(round(float(v), nd))


def _truth(case: CaseModel, written: dict[str, Any]) -> dict[str, Any]:
    r, a = case.recipe, case.anatomy
    t = r.ct_slice_thickness_mm
    ct = case.ct_grid
    rois = {}
    for roi in case.rois:
        planes = sorted(roi.planes)
        rois[roi.name] = {
            "number": roi.number,
            "interpreted_type": roi.interpreted_type,
            "description": roi.description,
            "volume_cc": _r(roi.volume_cc(t)),
            "volume_method": "polygons",
            "volume_cc_analytic": None if roi.volume_cc_analytic is None
            else _r(roi.volume_cc_analytic),
            "n_contours": roi.n_contours,
            "z_range_mm": [_r(ct.frame_z[planes[0]] - t / 2), _r(ct.frame_z[planes[-1]] + t / 2)]
            if planes else None,
        }
    names = {roi.interpreted_type: roi.name for roi in case.rois}
    dose = dict(case.dose_truth)
    if r.dose_model == "analytic":
        cord = next(roi for roi in case.rois if roi.name == "SpinalCord")
        vertices = np.concatenate([p for polys in cord.planes.values() for _, p in polys])
        values = r.analytic_intercept_gy + vertices @ np.asarray(r.analytic_gradient_gy_per_mm)
        dose["cord_dmax_gy"] = _r(values.max(), 9)
        dose["cord_dmax_point_mm"] = [float(v) for v in vertices[int(np.argmax(values))]]
        dose["cord_dmax_note"] = ("maximum of the linear dose over the SpinalCord polygons on "
                                  "their planes (attained at a vertex); an evaluation that "
                                  "extends each plane by half a slice in z or samples voxel "
                                  "centres inside the polygons finds a slightly different value")
    vertebra_rois = {lv: case.rois[4 + i].name for i, lv in enumerate(r.levels)}
    levels = {lv: {"number": i + 1, "roi": vertebra_rois[lv],
                   "z_range_mm": [_r(v) for v in a.vertebra_z_range(lv)]}
              for i, lv in enumerate(r.levels)}
    gtv_truth: dict[str, Any] = {
        "sectors": list(r.gtv_sectors), "body_position": r.gtv_body_position,
        "epidural": r.epidural, "paraspinal": r.paraspinal, "lytic": r.lytic,
        "z_range_mm": [_r(v) for v in a.gtv_z_range],
    }
    hu: dict[str, int] = dict(HU)
    anatomy: dict[str, Any] = {
        "canal_centre_mm": list(a.canal_centre_mm),
        "canal_semi_axes_mm": list(a.dims.canal_semi_axes_mm),
        "cord_semi_axes_mm": list(a.dims.cord_semi_axes_mm),
        "body_semi_axes_mm": list(a.dims.body_semi_axes_mm),
        "vertebral_body_height_mm": a.dims.vb_height_mm,
        "disc_height_mm": a.dims.disc_height_mm,
        "sector_names": {str(k): v for k, v in SECTOR_NAMES.items()},
    }
    # keys added with later recipe fields appear only when used (older truth files stay)
    if r.blastic:
        gtv_truth["blastic"] = True
        hu["sclerotic"] = SCLEROTIC_HU
    if r.region != "thoracic":
        anatomy.update(region=r.region, vertebral_body_semi_axes_mm=list(a.dims.vb_semi_axes_mm),
                       ring_semi_axes_mm=list(a.dims.ring_semi_axes_mm))
    if r.axial_rotation_deg != 0.0 or r.tilt_deg != 0.0:
        anatomy.update(
            axial_rotation_deg=r.axial_rotation_deg, tilt_deg=r.tilt_deg,
            placement="LPS = T(R(p)): R turns the spine by axial_rotation_deg about the "
                      "superior axis through the canal centre (0, canal_y); T then tilts it by "
                      "tilt_deg about the left-right axis through (canal_y, z=0), the "
                      "superior axis going to (0, sin, cos); the body outline is not moved")
    return {
        "truth_version": TRUTH_VERSION,
        "generator": "test_data.phantom",
        "recipe": r.to_dict(),
        "patient_position": r.patient_position,
        "levels": levels,
        "treated_level": r.treated_level,
        "roi_names": {
            "body": "BODY", "spinal_canal": "SpinalCanal", "spinal_cord": "SpinalCord",
            "cord_prv": case.rois[3].name, "gtv": names["GTV"], "ctv": names["CTV"],
            "ptv": names["PTV"], "vertebrae": vertebra_rois,
        },
        "gtv": gtv_truth,
        "ctv": {
            "recipe": r.ctv,
            "expected_sectors": sorted(a.expected_ctv_sectors),
            "expected_rules": list(a.isrc_rules),
            "written_sectors": sorted(a.ctv_sectors),
            "planted_error": a.ctv_planted_error,
            "includes_epidural": a.ctv_includes_epidural,
            "expected_source": "knowledge-base.md section 1b default rows (ISRC-05 {1,2,3,5,6}) "
                               "and the circumferential rule ISRC-C3; union over matching rows",
        },
        "ptv": {"margin_mm": r.ptv_margin_mm, "cord_carveout": r.ptv_cord_carveout},
        "cord_prv_margin_mm": r.cord_prv_margin_mm,
        "rois": rois,
        "volume_methods": {
            "polygons": "sum over planes of the even-odd area of the polygons as written "
                        "(coordinates rounded to 0.001 mm), times the slice thickness",
            "analytic": "cross-section area of the exact ellipse (or its parallel curve, "
                        "Steiner's formula) times the z extent of the contour stack; the "
                        "written polygons are inscribed (128 or 256 vertices)",
        },
        "prescription_gy": r.prescription_gy,
        "n_fractions": r.n_fractions,
        "dose_per_fraction_gy": _r(r.prescription_gy / r.n_fractions),
        "plan_label": f"{r.treated_level} SBRT"[:16],
        "dose": dose,
        "hu": hu,
        "anatomy": anatomy,
        "geometry": {
            "ct": {"shape": list(ct.shape), "affine_lps_mm": ct.affine.tolist(),
                   "slice_thickness_mm": t, "pixel_spacing_mm": r.ct_pixel_spacing_mm},
            "dose": {"shape": list(case.dose_grid.shape),
                     "affine_lps_mm": case.dose_grid.affine.tolist(),
                     "spacing_mm": r.dose_grid_spacing_mm},
            "convention": "arrays (frame, row, column); affine maps (column, row, frame, 1) "
                          "to LPS mm; frames in increasing position along the slice normal",
        },
        "labels": {
            "file": "truth_labels.npy",
            "encoding": "uint8 (frame, row, column) on the CT grid: 10 * level number + ISRC "
                        "sector for bone voxels (voxel centre inside the bone), 0 elsewhere",
            "level_numbers": {str(i + 1): lv for i, lv in enumerate(r.levels)},
        },
        **written,
    }


def generate_case(recipe: PhantomRecipe, out_dir: str | Path) -> GeneratedCase:
    """Write one phantom case (DICOM and truth) into ``out_dir``.

    Parameters
    ----------
    recipe : PhantomRecipe
    out_dir : path
        Created if needed; ``dicom/`` and ``truth/`` are written inside it, files of an
        earlier run with the same names are replaced.

    Returns
    -------
    GeneratedCase
    """
    root = Path(out_dir)
    case = build_case(recipe)
    a = case.anatomy
    iso = [0.0, a.dims.canal_centre_y_mm - 12.0, a.level_z_mm[recipe.treated_level]]
    written = write_case_dicom(case, root / "dicom", isocentre_mm=iso)
    written.pop("ct_sop_instance_uids")
    truth = _truth(case, written)
    truth_dir = root / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    labels_path = truth_dir / "truth_labels.npy"
    np.save(labels_path, case.labels, allow_pickle=False)
    truth_path = truth_dir / "truth.json"
    truth_path.write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return GeneratedCase(root=root, dicom_dir=root / "dicom", truth_path=truth_path,
                         labels_path=labels_path, truth=json.loads(truth_path.read_text("utf-8")))

