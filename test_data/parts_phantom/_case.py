"""Truth of a case and its files: ROIs, dose, DICOM, ``truth/truth.json``."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ._anatomy import PART_NAMES, SECTOR_OF_PART, SUB_LABEL, VERTEBRA_PARTS
from ._dicom import RoiPlanes, contours_from_mask, write_dicom
from ._scene import CANCELLOUS_HU, CORTICAL_HU, HU, CaseSpec, Scene, build_scene

__all__ = ["MIN_EPIDURAL_CC", "MIN_PARASPINAL_CC", "MIN_SECTOR_CC", "MIN_SECTOR_PCT",
           "PARASPINAL_MARGIN_MM", "CaseTruth", "case_truth", "write_case"]

#: A sector belongs to the GTV's truth set when the GTV's voxels in that sector's parts
#: reach both MIN_SECTOR_CC and MIN_SECTOR_PCT of the GTV.
MIN_SECTOR_CC = 0.05
MIN_SECTOR_PCT = 2.0
MIN_EPIDURAL_CC = 0.05
MIN_PARASPINAL_CC = 0.05
PARASPINAL_MARGIN_MM = 1.0
CRITERION = (f"sector s is involved when the GTV voxels (CT grid, voxel centres) in the "
             f"treated vertebra's parts of sector s total >= {MIN_SECTOR_CC} cc and >= "
             f"{MIN_SECTOR_PCT} % of the GTV; epidural when >= {MIN_EPIDURAL_CC} cc of the GTV "
             f"lies in the bony canal (the hole bounded by the body's posterior wall, the "
             f"pedicles and the laminae); paraspinal when >= {MIN_PARASPINAL_CC} cc lies more "
             f"than {PARASPINAL_MARGIN_MM} mm outside the envelope of bone, discs and canal")


@dataclass(frozen=True)
class CaseTruth:
    """What a case holds by construction.

    Attributes
    ----------
    name : str
    level : str
        The treated level (the GTV's vertebra).
    gtv_sectors : tuple of int
        ISRC sectors the GTV involves (criterion in ``criterion``).
    gtv_parts : dict of str to float
        GTV volume (cc) in each part of the treated vertebra (part names, sub-labels
        ``lamina``/``transverse_process``/``articular_process`` in ``sub_labels``).
    gtv_sector_cc : dict of int to float
    borderline_sectors : tuple of int
        Sectors whose GTV volume lies within a factor 2 of the threshold (either side).
    epidural, paraspinal : bool
    epidural_cc, paraspinal_cc, gtv_cc : float
    sub_labels : dict of str to str
    gtv_other_levels_cc : dict of str to float
        GTV volume (cc) in the bone of each neighbouring vertebra (0 in the suite: every
        lesion stays in its vertebra, so no sector of another level is involved).
    criterion : str
    roi_names : dict of str to str
        role -> ROI name (``gtv``, ``spinal_canal``, ``vertebra:<level>``...).
    files : dict
    spec : dict
    """

    name: str
    level: str
    gtv_sectors: tuple[int, ...]
    gtv_parts: dict[str, float]
    gtv_sector_cc: dict[int, float]
    borderline_sectors: tuple[int, ...]
    epidural: bool
    epidural_cc: float
    paraspinal: bool
    paraspinal_cc: float
    gtv_cc: float
    sub_labels: dict[str, str] = field(default_factory=dict)
    gtv_other_levels_cc: dict[str, float] = field(default_factory=dict)
    criterion: str = CRITERION
    roi_names: dict[str, str] = field(default_factory=dict)
    files: dict[str, Any] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["gtv_sectors"] = list(self.gtv_sectors)
        d["borderline_sectors"] = list(self.borderline_sectors)
        d["gtv_sector_cc"] = {str(k): v for k, v in self.gtv_sector_cc.items()}
        return d


def _r(v: float) -> float:
    return float(round(float(v), 4))


def case_truth(scene: Scene, name: str = "") -> CaseTruth:
    """Truth of a scene from its part labels (never from a sector partition)."""
    vc = scene.voxel_cc
    gtv = scene.gtv
    gtv_cc = float(gtv.sum()) * vc
    treated = scene.level_index == scene.treated_index
    parts_cc: dict[str, float] = {}
    sector_cc = {s: 0.0 for s in range(1, 7)}
    for code in sorted(VERTEBRA_PARTS):
        cc = float((gtv & treated & (scene.parts == code)).sum()) * vc
        parts_cc[PART_NAMES[code]] = _r(cc)
        sector_cc[SECTOR_OF_PART[code]] += cc
    threshold = max(MIN_SECTOR_CC, MIN_SECTOR_PCT / 100.0 * gtv_cc)
    sectors = tuple(s for s in range(1, 7) if sector_cc[s] >= threshold - 1e-12)
    border = tuple(s for s in range(1, 7) if 0.5 * threshold <= sector_cc[s] <= 2 * threshold)
    epi_cc = float((gtv & scene.canal).sum()) * vc
    para_cc = _paraspinal_cc(scene)
    return CaseTruth(
        name=name, level=scene.levels[scene.treated_index].name, gtv_sectors=sectors,
        gtv_parts=parts_cc, gtv_sector_cc={s: _r(v) for s, v in sector_cc.items()},
        borderline_sectors=border, epidural=epi_cc >= MIN_EPIDURAL_CC, epidural_cc=_r(epi_cc),
        paraspinal=para_cc >= MIN_PARASPINAL_CC, paraspinal_cc=_r(para_cc), gtv_cc=_r(gtv_cc),
        sub_labels={PART_NAMES[k]: v for k, v in SUB_LABEL.items()},
        gtv_other_levels_cc={
            lv.name: _r(float((gtv & (scene.level_index == i)
                               & np.isin(scene.parts, list(VERTEBRA_PARTS))).sum()) * vc)
            for i, lv in enumerate(scene.levels) if i != scene.treated_index})


def _crop(mask: NDArray[np.bool_], margin: tuple[int, int, int]
          ) -> tuple[slice, slice, slice]:
    idx = np.nonzero(mask)
    sl = []
    for a in range(3):
        lo = max(int(idx[a].min()) - margin[a], 0)
        hi = min(int(idx[a].max()) + margin[a] + 1, mask.shape[a])
        sl.append(slice(lo, hi))
    return sl[0], sl[1], sl[2]


def _paraspinal_cc(scene: Scene) -> float:
    gtv = scene.gtv
    if not gtv.any():
        return 0.0
    sp = scene.spacing_mm[::-1]  # (z, y, x)
    m = tuple(int(math.ceil(4.0 / s)) for s in sp)
    c = _crop(gtv, (m[0], m[1], m[2]))
    env = (scene.parts[c] > 0) | scene.canal[c]
    env = np.stack([ndimage.binary_fill_holes(e) for e in env])
    dist = ndimage.distance_transform_edt(~env, sampling=sp)
    return float((gtv[c] & (dist > PARASPINAL_MARGIN_MM)).sum()) * scene.voxel_cc


def _dilate(mask: NDArray[np.bool_], mm: float, spacing_zyx: NDArray[np.float64]
            ) -> NDArray[np.bool_]:
    out = np.zeros_like(mask)
    if not mask.any():
        return out
    m = tuple(int(math.ceil(mm / s)) + 1 for s in spacing_zyx)
    c = _crop(mask, (m[0], m[1], m[2]))
    out[c] = ndimage.distance_transform_edt(~mask[c], sampling=spacing_zyx) <= mm + 1e-6
    return out


def _dose(scene: Scene, ptv: NDArray[np.bool_], rx: float
          ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """A designed SBRT-like dose on a coarse grid covering the CT: Rx in the PTV, halving
    every 6 mm outside it, and capped by the cord (or the thecal sac below the cord):
    0.5 Rx within one dose-cell diagonal of it, rising 0.15 Rx per mm beyond (a steep
    but attainable spine SBRT gradient)."""
    px, dz = float(scene.spacing_mm[0]), float(scene.spacing_mm[2])
    n = max(1, round(2.5 / px))
    mz = max(1, round(2.5 / dz))
    shape = scene.shape
    # node indices on the CT grid, one step beyond each end (half-slice end caps of the
    # ROIs lie inside the dose grid), edge values repeated there
    idx = [np.arange(-st, s + 2 * st - 1, st) for s, st in zip(shape, (mz, n, n), strict=True)]
    clamp = [np.clip(i, 0, s - 1) for i, s in zip(idx, shape, strict=True)]
    sp = np.array([dz * mz, px * n, px * n])
    sub = np.ix_(*clamp)
    p = ptv[sub]
    d_out = ndimage.distance_transform_edt(~p, sampling=sp) if p.any() else np.full(p.shape, 99.0)
    dose = rx * np.power(0.5, np.maximum(d_out - 0.5, 0) / 6.0)
    cord_full = scene.cord if scene.cord.any() else scene.sac
    if cord_full.any():
        c = cord_full[sub]
        d_c = ndimage.distance_transform_edt(~c, sampling=sp) if c.any() else np.full(c.shape, 99.0)
        diag = float(np.linalg.norm(sp))
        dose = np.minimum(dose, rx * (0.5 + 0.15 * np.maximum(d_c - diag, 0.0)))
    dose[~scene.body[sub]] = 0.0
    step = np.array([px * n, px * n, dz * mz])
    return dose, scene.origin_mm - step, step


_COLORS = {"GTV": (255, 0, 0), "CTV": (255, 128, 0), "PTV": (0, 128, 255),
           "BODY": (0, 255, 0), "SpinalCord": (255, 255, 0), "SpinalCanal": (200, 200, 0),
           "CaudaEquina": (255, 255, 0)}


def write_case(spec: CaseSpec, out_dir: str | Path, *, name: str = "case") -> CaseTruth:
    """Write one case: ``dicom/`` (CT, RS, RP, RD) and ``truth/`` (``truth.json``, and
    ``labels.npz`` with the part labels, level index and canal on the CT grid).

    Parameters
    ----------
    spec : CaseSpec
    out_dir : path
        Created if needed.
    name : str
        Case name (patient name and truth).

    Returns
    -------
    CaseTruth
    """
    root = Path(out_dir)
    scene = build_scene(spec)
    truth = case_truth(scene, name)
    sp_zyx = scene.spacing_mm[::-1]
    treated = scene.level_index == scene.treated_index
    vert_parts = np.isin(scene.parts, list(VERTEBRA_PARTS))
    gtv_name = spec.gtv_roi.format(level=spec.level)
    roi_masks: list[tuple[str, str, NDArray[np.bool_]]] = [("BODY", "EXTERNAL", scene.body),
                                                           (gtv_name, "GTV", scene.gtv)]
    ctv = scene.gtv.copy()
    if spec.ctv:
        allowed = (treated & vert_parts) | (scene.canal if truth.epidural else False)
        ctv = (_dilate(scene.gtv, 3.0, sp_zyx) & allowed) | scene.gtv
        roi_masks.append(("CTV", "CTV", ctv))
    ptv = _dilate(ctv, 2.0, sp_zyx)
    if scene.cord.any():
        ptv &= ~_dilate(scene.cord, 1.0, sp_zyx)
    roi_masks.append(("PTV", "PTV", ptv))
    if spec.region == "lumbar":
        roi_masks.append(("CaudaEquina", "ORGAN", scene.sac))
    else:
        roi_masks.append(("SpinalCord", "ORGAN", scene.cord))
    names: dict[str, str] = {"gtv": gtv_name, "ptv": "PTV", "body": "BODY"}
    if spec.ctv:
        names["ctv"] = "CTV"
    if spec.canal_roi != "none":
        canal_mask = scene.canal if spec.canal_roi == "bony" else scene.sac
        roi_masks.append(("SpinalCanal", "ORGAN", canal_mask))
        names["spinal_canal"] = f"SpinalCanal ({spec.canal_roi})"
    if spec.vertebra_roi:
        for li, lv in enumerate(scene.levels):
            nm = spec.vertebra_roi.format(level=lv.name)
            roi_masks.append((nm, "ORGAN", vert_parts & (scene.level_index == li)))
            names[f"vertebra:{lv.name}"] = nm
    rois = [RoiPlanes(nm, typ, _COLORS.get(nm, _COLORS.get(typ, (160, 160, 255))),
                      contours_from_mask(m, origin_mm=scene.origin_mm,
                                         spacing_mm=scene.spacing_mm))
            for nm, typ, m in roi_masks]
    rx = spec.prescription_gy
    dose, d_origin, d_spacing = _dose(scene, ptv, rx)
    kji = np.argwhere(scene.gtv).mean(axis=0) if scene.gtv.any() else np.array(scene.shape) / 2
    iso = [float(scene.origin_mm[0] + kji[2] * scene.spacing_mm[0]),
           float(scene.origin_mm[1] + kji[1] * scene.spacing_mm[1]),
           float(scene.origin_mm[2] + kji[0] * scene.spacing_mm[2])]
    files = write_dicom(root / "dicom", key=name + spec.key(), patient=name, hu=scene.hu,
                        origin_mm=scene.origin_mm, spacing_mm=scene.spacing_mm, rois=rois,
                        target_roi="PTV", plan_label=f"{spec.level} SBRT",
                        prescription_gy=rx, n_fractions=spec.n_fractions, isocentre_mm=iso,
                        dose_gy=dose, dose_origin_mm=d_origin, dose_spacing_mm=d_spacing)
    spec_json = spec.to_json()
    truth = CaseTruth(**{**truth.__dict__, "roi_names": names, "spec": spec_json,
                         "files": {"dicom": "dicom", "truth": "truth/truth.json",
                                   "labels": "truth/labels.npz", **files}})
    tdir = root / "truth"
    tdir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(tdir / "labels.npz", parts=scene.parts, level_index=scene.level_index,
                        canal=scene.canal)
    extra = {"hu": {**HU, "cortical": CORTICAL_HU, "cancellous": CANCELLOUS_HU}, "part_names": {str(k): v for k, v in PART_NAMES.items()},
             "sector_of_part": {PART_NAMES[k]: v for k, v in SECTOR_OF_PART.items()},
             "levels": [lv.name for lv in scene.levels],
             "geometry": {"origin_mm": scene.origin_mm.tolist(),
                          "spacing_mm_xyz": scene.spacing_mm.tolist(),
                          "shape_zyx": list(scene.shape),
                          "local_to_lps_rotation": scene.rotation.tolist(),
                          "local_to_lps_offset_mm": scene.offset.tolist()}}
    (tdir / "truth.json").write_text(json.dumps({**truth.to_json(), **extra}, indent=1,
                                                sort_keys=True) + "\n", encoding="utf-8")
    return truth
