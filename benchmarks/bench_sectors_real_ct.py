"""CT-based vertebra segmentation and sector partition on real CT (TotalSegmentator examples).

Compares :func:`contourqa.anatomy.segment_spine` with the TotalSegmentator vertebra
masks of ``../shared/data/totalsegmentator_examples`` (Dice per vertebra; the
reference masks are TotalSegmentator model outputs, not manual ground truth) and
draws the sector partition of each real vertebra (body should dominate the volume).

Run from the repository root::

    python benchmarks/bench_sectors_real_ct.py

Writes ``benchmarks/results/sectors_real_ct.{json,md}`` and
``benchmarks/results/sectors_real_ct_<case>_<level>.png``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_stamp

from contourqa.anatomy import segment_spine
from contourqa.geometry import VolumeGeometry
from contourqa.sectors import SECTOR_NAMES, SectorOptions, partition_vertebra

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "totalsegmentator_examples"
OUT = Path(__file__).resolve().parent / "results"
# task 'total' label ids (README.txt of the data folder)
TOTAL = {26: "S1", 27: "L5", 28: "L4", 29: "L3", 30: "L2", 31: "L1", 32: "T12", 33: "T11",
         34: "T10", 35: "T9"}
CORD = 79


def _geometry(img: sitk.Image) -> VolumeGeometry:
    """The one place here that turns a SimpleITK image into the project's geometry."""
    arr_shape = tuple(reversed(img.GetSize()))
    return VolumeGeometry(shape=arr_shape, origin_mm=np.array(img.GetOrigin()),
                          spacing_mm=np.array(img.GetSpacing()),
                          direction=np.array(img.GetDirection()).reshape(3, 3))


def _read_dicom(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    files = reader.GetGDCMSeriesFileNames(str(folder))
    reader.SetFileNames(files)
    return reader.Execute()


def _case(name: str, ct: sitk.Image, seg: sitk.Image) -> dict:
    seg = sitk.Resample(seg, ct, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    g = _geometry(ct)
    hu = sitk.GetArrayFromImage(ct).astype(np.float32)
    lab = sitk.GetArrayFromImage(seg)
    cord = lab == CORD
    results: dict = {"case": name, "shape": list(g.shape),
                     "spacing_mm": [round(float(v), 3) for v in g.spacing_mm], "runs": {}}
    for hint_name, hint in (("no_hint", None), ("cord_hint", cord if cord.any() else None)):
        t0 = time.perf_counter()
        seg_r = segment_spine(hu, g, canal_hint=hint)
        dt = time.perf_counter() - t0
        rows = []
        for lid, level in TOTAL.items():
            ref = lab == lid
            if ref.sum() < 200:
                continue
            best, dice = None, 0.0
            for i, v in enumerate(seg_r.vertebrae):
                d = 2.0 * np.count_nonzero(v.mask & ref) / (v.mask.sum() + ref.sum())
                if d > dice:
                    best, dice = i, d
            row = {"level": level, "ref_voxels": int(ref.sum()), "matched": best,
                   "dice": round(dice, 3)}
            if best is not None and seg_r.canal is not None:
                row.update(_sector_agreement(seg_r.vertebrae[best].mask, ref, seg_r.canal, g,
                                             level))
            rows.append(row)
        allbone = np.isin(lab, list(TOTAL))
        mine = np.zeros_like(allbone)
        for v in seg_r.vertebrae:
            mine |= v.mask
        results["runs"][hint_name] = {
            "seconds": round(dt, 2), "n_vertebrae": len(seg_r.vertebrae),
            "canal_found": bool(seg_r.canal is not None and seg_r.canal.any()),
            "dice_all_vertebrae": round(2.0 * np.count_nonzero(mine & allbone)
                                        / max(mine.sum() + allbone.sum(), 1), 3),
            "per_vertebra": rows,
            "problems": [f.message for f in seg_r.problems]}
    # sector partition of the reference vertebrae (canal from our segmentation)
    seg_r = segment_spine(hu, g, canal_hint=cord if cord.any() else None)
    parts = []
    if seg_r.canal is not None:
        for lid, level in TOTAL.items():
            ref = lab == lid
            if ref.sum() < 500:
                continue
            res = partition_vertebra(ref, seg_r.canal, g)
            if res is None:
                continue
            sect, frame = res
            counts = np.bincount(sect[ref], minlength=7)[1:7]
            share = counts / max(counts.sum(), 1)
            parts.append({"level": level, "sector_share": {str(s + 1): round(float(v), 3)
                                                           for s, v in enumerate(share)},
                          "rotation_deg": round(frame.rotation_deg, 1),
                          "anterior_to_body_deg": round(_anterior_error_deg(ref, frame, g), 1)})
            _picture(name, level, hu, sect, ref, seg_r.canal, g)
    results["sector_partition_of_reference_vertebrae"] = parts
    return results


def _sector_agreement(mine: np.ndarray, ref: np.ndarray, canal: np.ndarray,
                      g: VolumeGeometry, level: str) -> dict:
    """Our vertebra and the reference vertebra, each partitioned into the six sectors
    with the same canal and options: the Dice of each sector, and the share of the
    bone both hold that gets the same sector (what the sector analysis reads)."""
    o = SectorOptions().for_level(level)
    a, b = partition_vertebra(mine, canal, g, options=o), partition_vertebra(ref, canal, g,
                                                                             options=o)
    if a is None or b is None:
        return {}
    sa, sb = a[0], b[0]
    both = mine & ref
    dice = {}
    for k in range(1, 7):
        x, y = sa == k, sb == k
        dice[str(k)] = round(2.0 * np.count_nonzero(x & y) / max(x.sum() + y.sum(), 1), 3)
    return {"sector_dice": dice,
            "same_sector_share": round(float(np.mean(sa[both] == sb[both])), 3)}


def _anterior_error_deg(ref: np.ndarray, frame, g: VolumeGeometry) -> float:
    """Angle between the frame's anterior axis and the direction from its canal centre
    to the centroid of the reference vertebra's bone anterior of the canal centre
    (patient -y): near 0 when ``a`` points to the body, near 180 when reversed."""
    pts = g.index_to_patient(np.argwhere(ref))
    c = np.asarray(frame.canal_centre_mm)
    body = pts[pts[:, 1] < c[1]]
    if len(body) == 0:
        return float("nan")
    d = body[:, :2].mean(axis=0) - c[:2]
    a = np.asarray(frame.anterior[:2])
    return float(np.degrees(np.arccos(np.clip(d @ a / np.linalg.norm(d), -1.0, 1.0))))


def _picture(case: str, level: str, hu: np.ndarray, sect: np.ndarray, ref: np.ndarray,
             canal: np.ndarray, g: VolumeGeometry) -> None:
    from contourqa.sector_figure import _pyplot, draw_sector_slice

    plt = _pyplot()
    # the slice of this vertebra with the most posterior-element bone (pedicle level)
    post = ((sect >= 2) & ref).sum(axis=(1, 2))
    k = int(np.argmax(post))
    fig, ax = plt.subplots(figsize=(5.5, 5))
    draw_sector_slice(ax, ct=hu[k], sectors=np.where(ref[k], sect[k], 0), geometry=g,
                      outlines={"canal": (canal[k], "cyan")},
                      title=f"{case} {level} (TotalSegmentator mask), slice {k}")
    pts = g.index_to_patient(np.column_stack([np.full(int(ref[k].sum()), k), np.argwhere(ref[k])]) + 0.0)
    lo, hi = pts[:, :2].min(axis=0) - 10, pts[:, :2].max(axis=0) + 10
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(hi[1], lo[1])
    fig.savefig(OUT / f"sectors_real_ct_{case}_{level}.png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    if not DATA.exists():
        raise SystemExit(f"data not present: {DATA}")
    OUT.mkdir(exist_ok=True)
    cases = [
        _case("example_ct_3mm", sitk.ReadImage(str(DATA / "example_ct.nii.gz")),
              sitk.ReadImage(str(DATA / "spine_report/example_ct_report/totalseg.nii.gz"))),
        _case("example_ct_dicom", _read_dicom(DATA / "example_ct_dicom"),
              sitk.ReadImage(str(DATA / "example_seg_dicom.nii.gz"))),
    ]
    record = {"machine": machine_stamp(), "data": str(DATA), "cases": cases,
              "sector_names": SECTOR_NAMES}
    (OUT / "sectors_real_ct.json").write_text(json.dumps(record, indent=1) + "\n")
    lines = ["# CT vertebra segmentation vs TotalSegmentator, and sectors of real vertebrae", "",
             f"Machine: {record['machine']}", "",
             "Reference: TotalSegmentator model outputs (not manual truth).", "",
             ("Sectors: partition of the TotalSegmentator vertebra masks with the canal of "
             "segment_spine (cord label as hint where the reference has one: the DICOM CT; "
             "none on the 3 mm CT). 'anterior axis' is the angle between the frame's "
             "anterior axis and the direction from its canal centre to the vertebra's bone "
             "in front of it (0 = points to the body, 180 = reversed)."), ""]
    for c in cases:
        lines.append(f"## {c['case']} ({c['shape']} voxels, spacing {c['spacing_mm']} mm)")
        for hint, run in c["runs"].items():
            lines.append(f"- {hint}: {run['n_vertebrae']} vertebrae in {run['seconds']} s, "
                         f"Dice over all vertebrae {run['dice_all_vertebrae']}; per vertebra: "
                         + ", ".join(f"{r['level']} {r['dice']}" for r in run["per_vertebra"]))
        run = c["runs"]["no_hint"]
        lines.append("- sectors of our vertebrae against the same partition of the reference "
                     "vertebrae (no hint): " + "; ".join(
                         f"{r['level']}: same sector {r['same_sector_share']:.2f}, sector Dice "
                         + " ".join(f"{v:.2f}" for v in r["sector_dice"].values())
                         for r in run["per_vertebra"] if "sector_dice" in r))
        for p in c["sector_partition_of_reference_vertebrae"]:
            lines.append(f"- sectors of {p['level']} (share of bone): " + ", ".join(
                f"{k}: {v:.2f}" for k, v in p["sector_share"].items())
                + f"; frame rotation {p['rotation_deg']} deg, anterior axis "
                f"{p['anterior_to_body_deg']} deg from the body direction")
        lines.append("")
    (OUT / "sectors_real_ct.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
