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


def _case(name: str, ct: sitk.Image, seg: sitk.Image, pictures: bool = True) -> dict:
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
            sect, frame = res.sectors, res.frame
            counts = np.bincount(sect[ref], minlength=7)[1:7]
            share = counts / max(counts.sum(), 1)
            parts.append({"level": level, "sector_share": {str(s + 1): round(float(v), 3)
                                                           for s, v in enumerate(share)},
                          "rotation_deg": round(frame.rotation_deg, 1),
                          "anterior_to_body_deg": round(_anterior_error_deg(ref, frame, g), 1)})
            if pictures:
                _picture(name, level, hu, res, ref, seg_r.canal, g)
    results["sector_partition_of_reference_vertebrae"] = parts
    return results


def _sector_agreement(mine: np.ndarray, ref: np.ndarray, canal: np.ndarray,
                      g: VolumeGeometry, level: str) -> dict:
    """Our vertebra and the reference vertebra, each partitioned into the six sectors
    with the same canal and options: the Dice of each sector, and the share of the
    bone both hold that gets the same sector (what the sector analysis reads)."""
    o = SectorOptions(level=level)
    a, b = partition_vertebra(mine, canal, g, options=o), partition_vertebra(ref, canal, g,
                                                                             options=o)
    if a is None or b is None:
        return {}
    sa, sb = a.sectors, b.sectors
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


def _picture(case: str, level: str, hu: np.ndarray, part, ref: np.ndarray,
             canal: np.ndarray, g: VolumeGeometry) -> None:
    from contourqa.sector_figure import draw_sector_slice, landmark_lines, pyplot

    plt = pyplot()
    sect = part.sectors
    # the slice of this vertebra with the most pedicle bone (pedicle level)
    post = ((part.parts == 2) | (part.parts == 8)).sum(axis=(1, 2))
    k = int(np.argmax(post))
    fig, ax = plt.subplots(figsize=(5.5, 5))
    draw_sector_slice(ax, ct=hu[k], sectors=np.where(ref[k], sect[k], 0), geometry=g,
                      parts=np.where(ref[k], part.parts[k], 0),
                      lines=landmark_lines(part, k),
                      outlines={"canal (CT)": (canal[k], "cyan"),
                                "bony canal": (part.canal[k], "white")},
                      title=f"{case} {level} (TotalSegmentator mask), slice {k}")
    pts = g.index_to_patient(np.column_stack([np.full(int(ref[k].sum()), k), np.argwhere(ref[k])]) + 0.0)
    lo, hi = pts[:, :2].min(axis=0) - 10, pts[:, :2].max(axis=0) + 10
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(hi[1], lo[1])
    fig.savefig(OUT / f"sectors_real_ct_{case}_{level}.png", dpi=100, bbox_inches="tight")
    plt.close(fig)


RIDER = DATA.parent / "rider_lung_ct_rtstruct_seg"


def _chest_case() -> dict:
    """The RIDER thin-slice chest CT (no vertebra masks): noise, vertebrae found, the
    distance of consecutive bodies and their volumes, with a sagittal overview and the
    sector partition of a mid-thoracic vertebra as pictures."""
    import tarfile
    import tempfile

    from contourqa.io.images import read_image_series
    from contourqa.masks import crop_geometry

    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(next(RIDER.glob("CT_series_*.tar.xz"))) as tar:
            tar.extractall(tmp, filter="data")
        image = read_image_series(sorted(Path(tmp).rglob("*.dcm")))
    g, px = image.geometry, image.pixels
    bone = px >= 200
    ci = int(np.argmax(bone.sum(axis=(0, 1))))
    ri = int(np.argmax(bone[:, :, ci - 30:ci + 30].sum(axis=(0, 2))))
    dx, dy = float(g.spacing_mm[0]), float(g.spacing_mm[1])
    start = (0, max(ri - int(90 / dy), 0), max(ci - int(70 / dx), 0))
    stop = (px.shape[0], min(ri + int(60 / dy), px.shape[1]), min(ci + int(70 / dx), px.shape[2]))
    sub = px[:, start[1]:stop[1], start[2]:stop[2]]
    cg = crop_geometry(g, start, stop)
    t0 = time.perf_counter()
    seg = segment_spine(sub, cg)
    dt = time.perf_counter() - t0
    assert seg.canal is not None
    ks = np.arange(sub.shape[0])
    have = seg.canal.any(axis=(1, 2))
    rows = np.array([np.argwhere(seg.canal[k])[:, 0].mean() if have[k] else np.nan for k in ks])
    rows = np.interp(ks, ks[have], rows[have])
    z = g.index_to_patient(np.stack([ks, 0 * ks, 0 * ks], 1))[:, 2]
    found = []
    for v in seg.vertebrae:
        idx = np.argwhere(v.mask)
        body = idx[rows[idx[:, 0]] - idx[:, 1] > 15.0 / dy]
        if len(body):
            found.append((float(z[body[:, 0]].mean()), len(idx) * cg.voxel_volume_cc, v))
    found.sort(key=lambda f: f[0])
    record = {"case": "rider_chest_ct", "shape": list(cg.shape),
              "spacing_mm": [round(float(v), 3) for v in cg.spacing_mm],
              "seconds": round(dt, 1), "noise_hu": round(seg.noise_hu, 1),
              "denoise_window_mm": round(seg.denoise_window_mm, 2),
              "n_vertebrae": len(seg.vertebrae),
              "body_z_mm": [round(f[0], 1) for f in found],
              "body_pitch_mm": [round(float(d), 1) for d in np.diff([f[0] for f in found])],
              "volume_cc": [round(f[1], 1) for f in found]}
    from contourqa.sector_figure import draw_sector_slice, landmark_lines, pyplot

    plt = pyplot()
    labels = np.zeros(sub.shape, dtype=np.int16)
    for n, f in enumerate(found):
        labels[f[2].mask] = n + 1
    mid = sub.shape[2] // 2
    fig, ax = plt.subplots(figsize=(5, 8))
    ax.imshow(np.clip(sub[:, :, mid], -200, 1000), cmap="gray", origin="lower",
              aspect=float(cg.spacing_mm[2] / cg.spacing_mm[1]))
    over = plt.get_cmap("tab20")(labels[:, :, mid] % 20)
    over[..., 3] = np.where(labels[:, :, mid] > 0, 0.45, 0.0)
    over[seg.canal[:, :, mid]] = (0.0, 1.0, 1.0, 0.5)
    ax.imshow(over, origin="lower", aspect=float(cg.spacing_mm[2] / cg.spacing_mm[1]))
    ax.set_title(f"RIDER chest CT, sagittal: {len(found)} vertebrae, canal cyan")
    fig.savefig(OUT / "sectors_real_ct_rider_sagittal.png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    vmask = found[len(found) // 2][2].mask
    res = partition_vertebra(vmask, seg.canal, cg)
    if res is not None:
        sect = res.sectors
        k = int(np.argmax(((res.parts == 2) | (res.parts == 8)).sum(axis=(1, 2))))
        fig, ax = plt.subplots(figsize=(5.5, 5))
        draw_sector_slice(ax, ct=sub[k], sectors=np.where(vmask[k], sect[k], 0), geometry=cg,
                          parts=np.where(vmask[k], res.parts[k], 0),
                          lines=landmark_lines(res, k),
                          outlines={"canal (CT)": (seg.canal[k], "cyan"),
                                    "bony canal": (res.canal[k], "white")},
                          title=f"RIDER chest CT, mid-thoracic vertebra (ours), slice {k}")
        pts = cg.index_to_patient(np.column_stack([np.full(int(vmask[k].sum()), k),
                                                   np.argwhere(vmask[k])]) + 0.0)
        lo, hi = pts[:, :2].min(axis=0) - 10, pts[:, :2].max(axis=0) + 10
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(hi[1], lo[1])
        fig.savefig(OUT / "sectors_real_ct_rider_mid_thoracic.png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        counts = np.bincount(sect[vmask], minlength=7)[1:7]
        record["mid_thoracic_sector_share"] = {str(s + 1): round(float(c / counts.sum()), 3)
                                               for s, c in enumerate(counts)}
    return record


def main() -> None:
    if not DATA.exists():
        raise SystemExit(f"data not present: {DATA}")
    OUT.mkdir(exist_ok=True)
    cases = [
        _case("example_ct_3mm", sitk.ReadImage(str(DATA / "example_ct.nii.gz")),
              sitk.ReadImage(str(DATA / "spine_report/example_ct_report/totalseg.nii.gz"))),
        _case("example_ct_dicom", _read_dicom(DATA / "example_ct_dicom"),
              sitk.ReadImage(str(DATA / "example_seg_dicom.nii.gz"))),
        # a 30-slice crop of the 3 mm CT, against the 'total' model and its '--fast'
        # variant run on the crop
        *(_case(f"example_ct_sm_{model}", sitk.ReadImage(str(DATA / "example_ct_sm.nii.gz")),
                sitk.ReadImage(str(DATA / f"example_seg{suffix}.nii.gz")), pictures=False)
          for model, suffix in (("total", ""), ("fast", "_fast"))),
    ]
    chest = _chest_case() if RIDER.exists() else None
    record = {"machine": machine_stamp(), "data": str(DATA), "cases": cases,
              "chest_ct": chest, "sector_names": SECTOR_NAMES}
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
    if chest is not None:
        lines += [f"## {chest['case']} ({chest['shape']} voxels, spacing {chest['spacing_mm']} mm;"
                  " no reference masks)",
                  f"- noise in soft tissue {chest['noise_hu']} HU: median-filtered in-plane over "
                  f"{chest['denoise_window_mm']} mm; {chest['n_vertebrae']} vertebrae in "
                  f"{chest['seconds']} s",
                  "- distance of consecutive bodies (mm, inferior to superior): "
                  + ", ".join(str(v) for v in chest["body_pitch_mm"]),
                  "- volumes (cc): " + ", ".join(str(v) for v in chest["volume_cc"]),
                  "- sectors of a mid-thoracic vertebra (share of bone): " + ", ".join(
                      f"{k}: {v:.2f}" for k, v in chest.get("mid_thoracic_sector_share",
                                                           {}).items()),
                  ""]
    (OUT / "sectors_real_ct.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
