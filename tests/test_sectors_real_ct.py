"""CT-based vertebra segmentation and vertebra frames on real CT (TotalSegmentator examples).

The references are TotalSegmentator model outputs (``../shared/data/
totalsegmentator_examples``, README.txt there), not manual truth.  Thresholds are
what the CT segmentation reaches today (``benchmarks/results/sectors_real_ct.md``)
less a margin of about 0.03; the issue's target of 0.85 for every vertebra is met
by T12, L1, L2, L3, L4 and L5 (0.865), not by S1, and on a 30-slice crop of the same
CT by T12, L1 and L2 against two models (0.90-0.94):

* 3 mm CT, no canal hint: every disc from S1/S2 and L5/S1 (tilted about 45
  degrees) to T12/L1 is found and fitted; S1 0.67, L5 0.86, L4 0.93, L3 0.91,
  L2 0.92, L1 0.92, T12 0.89.  The arches stay with their bodies since the bone in
  the caudal half of each segment, up to 20 mm behind the canal centre, seeds its
  vertebra (before, about 470 voxels of the L1 arch went to L2: L2 0.82,
  L1 0.80); dim voxels on the column's edge (less than half bone) are left out
  (+0.01 on each level).  T12 was 0.83: the rib necks jointed to its transverse
  processes (about 140 voxels farther than 28 mm from the midline, none in the
  reference) leave the column as bone that runs on far from the canal
  (:mod:`contourqa.anatomy.ribs`; 0.86 -> 0.89), and dark marrow left out of one
  slice, its cortex open, is filled between the filled slices above and below
  (:mod:`contourqa.anatomy.marrow`; about 90 voxels, 0.83 -> 0.86; L1 0.91 ->
  0.92).  S1 was 0.47: the fused sacrum below S1/S2 (a caudal end longer than
  1.5 vertebrae without a disc) is seeded at any depth behind the canal, so that
  its lower part, curving back far behind the last canal ring, no longer floods
  into S1 (0.52), and the sacral vertebrae lose the bone farther from the
  midline than 1.4 times the half-width of the other bodies: the alae and the
  iliac pieces joined to them (:mod:`contourqa.anatomy.sacrum`; 0.67; the
  reference S1 is the body and the ring about the canal, the alae are its
  'sacrum' label).  What is left: partial-volume bone at the edge the reference
  leaves out (200-400 voxels per vertebra); about 70 voxels of T11's processes
  at the crop's top that join T12; for S1 the dark upper S1 marrow (below 110 HU,
  about 250 voxels, not enclosed on any grid plane), part of the tilted L5/S1
  disc, and the posterior S2 bone above the extrapolated S1/S2 plane.
* 20-slice DICOM CT (T11/T12): the T11/T12 disc is found, so T12 and T11 are two
  vertebrae (T12 0.69, T11 0.49; 0.61 and 0.30 before the caudal seeds gave
  T11 its lamina and spinous process behind T12; the marrow fill costs T12
  0.003).  The crop ends inside the T12/L1 disc: found as a disc cut by the crop,
  its filled centre no longer joins T12, whose endplate rim and arch stay (900
  fewer false-positive voxels on each of the lowest two slices, 400 on the third;
  T12 0.631 -> 0.655).  The contrast-filled aorta (140-165 HU, above the bone
  threshold) joined to the T12 body through its calcified wall leaves the column
  with that wall (:mod:`contourqa.anatomy.vessels`; 3198 of its voxels were in
  the vertebrae, 115 are left, the wall where it lies on the cortex; T12 0.63 ->
  0.66, T11 0.47 -> 0.48).  The ceiling is low: the reference leaves holes in
  the bodies and labels parts of the T12 body as T11, and the column holds the
  rib heads (within 28 mm of the midline).

The frames must point anterior, to the vertebral body, on every vertebra, with and
without a hint (a disc ringed by its endplate rim is no canal candidate: it is
brighter than ``canal_max_mean_hu``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from datapaths import shared

from contourqa.anatomy import CTSegmentation, segment_spine
from contourqa.geometry import VolumeGeometry
from contourqa.sectors import partition_vertebra

#: task 'total' label ids of the vertebrae (README.txt of the data folder)
LEVELS = {26: "S1", 27: "L5", 28: "L4", 29: "L3", 30: "L2", 31: "L1", 32: "T12", 33: "T11"}
#: Dice reached per level on the 3 mm CT without a hint, less ~0.03
MIN_DICE_3MM = {"S1": 0.63, "L5": 0.83, "L4": 0.89, "L3": 0.87, "L2": 0.89, "L1": 0.88,
                "T12": 0.86}
#: on the 30-slice crop of the 3 mm CT (T12 to L2; T11 is a 70-voxel sliver), against
#: the 'total' and the '--fast' model's masks; reached 0.90/0.91, 0.92/0.94, 0.93/0.94
MIN_DICE_CROP = {"T12": 0.87, "L1": 0.89, "L2": 0.90}
#: on the DICOM CT (T11/T12), with or without the cord as hint
MIN_DICE_DICOM = {32: 0.65, 33: 0.45}
#: anterior axis vs the direction canal -> body (degrees); reached: at most 10
MAX_ANTERIOR_ERROR_DEG = 25.0


def _geometry(img: sitk.Image) -> VolumeGeometry:
    return VolumeGeometry(shape=tuple(reversed(img.GetSize())),
                          origin_mm=np.array(img.GetOrigin()),
                          spacing_mm=np.array(img.GetSpacing()),
                          direction=np.array(img.GetDirection()).reshape(3, 3))


def _on(grid: sitk.Image, path: Path) -> np.ndarray:
    img = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(sitk.Resample(img, grid, sitk.Transform(),
                                                sitk.sitkNearestNeighbor, 0))


def _best_match(seg: CTSegmentation, ref: np.ndarray) -> tuple[int, float]:
    """Index of the segmented vertebra with the best Dice against ``ref``, and that Dice."""
    dice = [2.0 * np.count_nonzero(v.mask & ref) / (v.mask.sum() + ref.sum())
            for v in seg.vertebrae]
    return (int(np.argmax(dice)), float(max(dice))) if dice else (-1, 0.0)


def _best_dice(seg: CTSegmentation, ref: np.ndarray) -> float:
    return _best_match(seg, ref)[1]


def _anterior_error_deg(ref: np.ndarray, body: np.ndarray, canal: np.ndarray,
                        g: VolumeGeometry) -> float:
    res = partition_vertebra(ref, canal, g)
    assert res is not None
    frame = res.frame
    c = np.asarray(frame.canal_centre_mm[:2])
    d = g.index_to_patient(np.argwhere(body))[:, :2].mean(axis=0) - c
    a = np.asarray(frame.anterior[:2])
    return float(np.degrees(np.arccos(np.clip(d @ a / np.linalg.norm(d), -1.0, 1.0))))


@pytest.fixture(scope="module")
def ct_3mm() -> tuple[np.ndarray, np.ndarray, np.ndarray, VolumeGeometry]:
    folder = shared("totalsegmentator_examples")
    ct = sitk.ReadImage(str(folder / "example_ct.nii.gz"))
    report = folder / "spine_report" / "example_ct_report"
    labels = _on(ct, report / "totalseg.nii.gz")
    bodies = _on(ct, report / "totalseg_vertebrae_body.nii.gz") == 1
    return sitk.GetArrayFromImage(ct).astype(np.float32), labels, bodies, _geometry(ct)


def test_3mm_ct_vertebrae_against_totalsegmentator(ct_3mm):  # type: ignore[no-untyped-def]
    hu, labels, _, g = ct_3mm
    seg = segment_spine(hu, g)
    dice = {lv: _best_dice(seg, labels == lid) for lid, lv in LEVELS.items()
            if np.count_nonzero(labels == lid) >= 200}
    assert set(dice) == {"S1", "L5", "L4", "L3", "L2", "L1", "T12"}
    for level, floor in MIN_DICE_3MM.items():
        assert dice[level] >= floor, dice
    # one vertebra per level: no two levels matched by the same segmented vertebra
    matched = [_best_match(seg, labels == lid)[0] for lid, lv in LEVELS.items() if lv in dice]
    assert len(set(matched)) == len(matched), matched


def test_3mm_ct_frames_point_to_the_body(ct_3mm):  # type: ignore[no-untyped-def]
    hu, labels, bodies, g = ct_3mm
    seg = segment_spine(hu, g)  # no cord hint: the canal is chosen from the CT alone
    assert seg.canal is not None
    for lid, level in LEVELS.items():
        ref = labels == lid
        if np.count_nonzero(ref & bodies) < 200:
            continue
        err = _anterior_error_deg(ref, ref & bodies, seg.canal, g)
        assert err <= MAX_ANTERIOR_ERROR_DEG, (level, err)


@pytest.mark.parametrize("reference", ["example_seg.nii.gz", "example_seg_fast.nii.gz"])
def test_30_slice_crop_against_two_models(reference: str) -> None:
    # the crop ends in T11 and in L2/L3: a second field of view of the same patient,
    # against the 'total' model and its '--fast' variant run on the crop itself
    folder = shared("totalsegmentator_examples")
    ct = sitk.ReadImage(str(folder / "example_ct_sm.nii.gz"))
    labels = _on(ct, folder / reference)
    seg = segment_spine(sitk.GetArrayFromImage(ct).astype(np.float32), _geometry(ct))
    dice = {lv: _best_match(seg, labels == lid) for lid, lv in LEVELS.items()
            if np.count_nonzero(labels == lid) >= 200}
    assert set(dice) == set(MIN_DICE_CROP)
    for level, floor in MIN_DICE_CROP.items():
        assert dice[level][1] >= floor, dice
    assert len({m for m, _ in dice.values()}) == len(dice), dice


@pytest.fixture(scope="module")
def ct_dicom() -> tuple[np.ndarray, np.ndarray, VolumeGeometry]:
    folder = shared("totalsegmentator_examples")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder / "example_ct_dicom")))
    ct = reader.Execute()
    labels = _on(ct, folder / "example_seg_dicom.nii.gz")
    return sitk.GetArrayFromImage(ct).astype(np.float32), labels, _geometry(ct)


def _frame_errors(labels: np.ndarray, canal: np.ndarray, g: VolumeGeometry) -> dict[int, float]:
    """Anterior-axis error per vertebra (T12, T11); the body is the vertebra's bone
    anterior (patient -y) of the canal centre."""
    out = {}
    for lid in (32, 33):
        ref = labels == lid
        res = partition_vertebra(ref, canal, g)
        assert res is not None
        idx = np.argwhere(ref)
        body = np.zeros_like(ref)
        front = g.index_to_patient(idx)[:, 1] < res.frame.canal_centre_mm[1]
        body[tuple(idx[front].T)] = True
        out[lid] = _anterior_error_deg(ref, body, canal, g)
    return out


def _assert_t11_t12_separated(seg: CTSegmentation, labels: np.ndarray) -> None:
    t12, t11 = _best_match(seg, labels == 32), _best_match(seg, labels == 33)
    assert t12[0] != t11[0], (t12, t11)  # the T11/T12 disc is found
    assert t12[1] >= MIN_DICE_DICOM[32], t12
    assert t11[1] >= MIN_DICE_DICOM[33], t11


def test_dicom_ct_vertebrae_and_frames_with_cord_hint(ct_dicom):  # type: ignore[no-untyped-def]
    hu, labels, g = ct_dicom
    seg = segment_spine(hu, g, canal_hint=labels == 79)
    assert seg.canal is not None and seg.canal.any()
    _assert_t11_t12_separated(seg, labels)
    errors = _frame_errors(labels, seg.canal, g)
    assert max(errors.values()) <= MAX_ANTERIOR_ERROR_DEG, errors


def test_dicom_ct_vertebrae_and_frames_without_hint(ct_dicom):  # type: ignore[no-untyped-def]
    hu, labels, g = ct_dicom
    seg = segment_spine(hu, g)
    assert seg.canal is not None and seg.canal.any()
    _assert_t11_t12_separated(seg, labels)
    errors = _frame_errors(labels, seg.canal, g)
    assert max(errors.values()) <= MAX_ANTERIOR_ERROR_DEG, errors
