"""ISRC sectors of the GTV on the parts phantom: the engine against truth by anatomy.

Every case of ``test_data.parts_phantom.SUITE`` is written to a temporary folder and
analysed through the public API (:func:`contourqa.sectors.analyse_sectors`, as the
``contourqa sectors`` command calls it) twice: with the structure set as written
(vertebra ROIs included) and with the vertebra ROIs left out (vertebrae segmented from
the CT).  The truth comes from the phantom's part labels (body, pedicles, laminae,
transverse, articular and spinous processes, each its own solid), never from the
engine's partition.

Run from the repository root::

    python benchmarks/bench_sectors_parts.py [--suite {tuning,drawn,random,heldout}]
        [--cases NAME ...] [--out benchmarks/results] [--png]

``--suite tuning`` (the default) scores ``SUITE``, the cases the engine may be tuned
on, and writes ``sectors_parts.md`` and ``sectors_parts.json``; ``--suite heldout``
scores ``HELDOUT`` (vertebra shapes drawn from seeded ranges, never to be tuned on)
and writes ``sectors_parts_heldout.md`` and ``sectors_parts_heldout.json``, so that
the two figures are never mixed.  ``drawn`` (the tuning cases on drawn shapes) and
``random`` (random combinations on drawn shapes) write their own files too; each
states in :data:`SUITES` when it was first run and whether it has been tuned on.  With ``--png``, a picture
``sectors_parts[_heldout]_<case>.png`` of every case the engine missed (truth
sectors from the parts beside the engine's sectors, on the GTV's middle slice).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_stamp  # noqa: E402

from contourqa.case import load_case  # noqa: E402
from contourqa.io.discovery import discover  # noqa: E402
from contourqa.sectors import SectorOptions, analyse_sectors  # noqa: E402
from contourqa.structures import assign_roles  # noqa: E402
from test_data.parts_phantom import SUITE, CaseSpec, CaseTruth, write_case  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
#: Suite name -> (file stem of the results, what the suite is).
SUITES: dict[str, tuple[str, str]] = {
    "tuning": ("sectors_parts", "suite `SUITE`, the cases the engine may be tuned on"),
    "heldout": ("sectors_parts_heldout",
                "suite `HELDOUT`, held out: vertebra shapes drawn from seeded ranges "
                "(`draw_shape`), never to be tuned on"),
    "drawn": ("sectors_parts_drawn",
              "suite `SUITE` with every vertebra's shape drawn by `draw_shape` from seed "
              "1000 + the case's index (not the held-out seeds); first run at 2478522 "
              "(29/33 with ROIs, 31/33 CT only), tuned on since"),
    "random": ("sectors_parts_random",
               "random combinations of lesion, level, side, density, extension, pose, "
               "pixel and slice size and ROI names on shapes drawn by `draw_shape` from "
               "seeds 7000 + i (`_random_cases`); first run at 901a0ca"),
}

#: Levels of each region the random suite draws from.
_RANDOM_LEVELS = {"cervical": ("C3", "C4", "C5", "C6"),
                  "thoracic": ("T3", "T5", "T7", "T8", "T9", "T10", "T11", "T12"),
                  "lumbar": ("L1", "L2", "L3", "L4")}
_RANDOM_VERTEBRA_ROIS = ("VB_{level}", "Vertebra_{level}", "Bone_Vertebra_{level}",
                         "{level}_VB", None)


def _random_cases(n: int = 24, seed: int = 7000) -> dict[str, CaseSpec]:
    """``n`` cases of random lesion, level, pose and grid on drawn shapes: a reading of
    the engine on combinations nobody chose."""
    import numpy as np

    from test_data.parts_phantom import draw_shape
    from test_data.parts_phantom._lesions import LESIONS

    rng = np.random.default_rng(seed)
    out: dict[str, CaseSpec] = {}
    lesions = sorted(LESIONS)
    for i in range(n):
        region = str(rng.choice(["cervical", "thoracic", "thoracic", "lumbar", "lumbar"]))
        level = str(rng.choice(_RANDOM_LEVELS[region]))
        lesion = str(rng.choice(lesions))
        side = str(rng.choice(["left", "right"]))
        density = str(rng.choice(["marrow", "lytic", "blastic"]))
        body = lesion.startswith("body") or lesion.startswith("pedicle")
        epidural = bool(body and rng.uniform() < 0.3)
        paraspinal = bool(lesion.startswith("body") and rng.uniform() < 0.2)
        pixel = float(rng.choice([0.6, 0.7]) if region == "cervical"
                      else rng.choice([0.8, 0.9, 1.0, 1.2]))
        spec = CaseSpec(
            level=level, lesion=lesion, side=side, density=density,  # type: ignore[arg-type]
            epidural=epidural, paraspinal=paraspinal,
            ribs=bool(region == "thoracic" and rng.uniform() < 0.5),
            canal_roi=str(rng.choice(["bony", "thecal_sac"])),  # type: ignore[arg-type]
            vertebra_roi=_RANDOM_VERTEBRA_ROIS[int(rng.integers(len(_RANDOM_VERTEBRA_ROIS)))],
            axial_rotation_deg=round(float(rng.uniform(-20, 20)), 1),
            tilt_deg=round(float(rng.uniform(-10, 10)), 1), pixel_mm=pixel,
            slice_mm=float(rng.choice([1.0, 2.0, 3.0])),
            anatomy=draw_shape(region, seed=seed + i))
        out[f"r{i:02d}_{level}_{lesion}_{side}_{density}"] = spec
    return out


def _drawn_cases() -> dict[str, CaseSpec]:
    """The tuning suite's cases on drawn vertebra shapes (pedicle widths kept)."""
    from dataclasses import replace

    from test_data.parts_phantom import draw_shape

    out = {}
    for i, (name, spec) in enumerate(SUITE.items()):
        fixed = (("pedicle_width_mm", spec.pedicle_width_mm),) if spec.pedicle_width_mm else ()
        out[f"{name}_drawn"] = replace(spec, anatomy=draw_shape(spec.region, seed=1000 + i,
                                                                 fixed=fixed))
    return out


def suite_cases(suite: str) -> dict[str, CaseSpec]:
    """The cases of ``suite`` (``tuning``, ``heldout`` or ``drawn``)."""
    if suite == "heldout":
        from test_data.parts_phantom import HELDOUT

        return HELDOUT
    if suite == "tuning":
        return SUITE
    if suite == "drawn":
        return _drawn_cases()
    if suite == "random":
        return _random_cases()
    raise ValueError(f"Argument 'suite' must be one of {sorted(SUITES)}, not {suite!r}.")


def _fmt(sectors: Any) -> str:
    if sectors is None:
        return "n/e"
    return "{" + ",".join(str(s) for s in sectors) + "}"


def _run(case: Any, truth: CaseTruth, *, drop: set[str]) -> dict[str, Any]:
    """One analysis; ``drop``: ROI names left out of the structure set's roles.

    ``_labels`` (not written to JSON): the engine's sector of every CT voxel it
    labelled (0 elsewhere), or None."""
    rois = [r for r in case.structure_set.rois if r.name not in drop]
    roles = assign_roles(rois)
    t0 = time.perf_counter()
    res = analyse_sectors(case, roles, options=SectorOptions())
    seconds = time.perf_counter() - t0
    out: dict[str, Any] = {"seconds": round(seconds, 2),
                           "findings": [f"{f.status.value}:{f.code}" for f in res.findings],
                           "_labels": _ct_labels(res, case)}
    if not res.vertebrae:
        out.update(found=None, level=None, epidural=None, paraspinal=None, evaluated=False,
                   vertebra_source=None, other_levels=[])
        return out
    entry = next((v for v in res.vertebrae if v.level == truth.level), None)
    if entry is None:  # level unknown or wrong: the vertebra holding most of the GTV
        entry = max(res.vertebrae, key=lambda v: sum(v.gtv_sector_cc))
    others = [f"{v.level or '?'}:{_fmt(v.gtv_sectors)}" for v in res.vertebrae
              if v is not entry and v.gtv_sectors]
    out.update(found=list(entry.gtv_sectors), level=entry.level, epidural=entry.epidural,
               other_levels=others,
               paraspinal=entry.paraspinal, evaluated=True,
               vertebra_source=entry.vertebra_source,
               gtv_sector_cc=[round(v, 3) for v in entry.gtv_sector_cc])
    return out


def _ct_labels(res: Any, case: Any) -> Any:
    """The engine's sector labels placed on the full CT grid (sector 1-6, 0 elsewhere)."""
    import numpy as np

    if res.labels is None or res.geometry is None or case.image is None:
        return None
    full = np.zeros(case.image.pixels.shape, dtype=np.uint8)
    k0, j0, i0 = res.crop_start_kji
    s = res.labels.shape
    full[k0:k0 + s[0], j0:j0 + s[1], i0:i0 + s[2]] = (res.labels % 10).astype(np.uint8)
    return full


def _picture(path: Path, name: str, case: Any, truth_dir: Path, runs: dict[str, Any],
             gtv_name: str) -> None:
    """CT, truth sectors (from the parts) and the engine's sectors on the GTV's middle
    slice, zoomed on the treated vertebra."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import ListedColormap

    from test_data.parts_phantom import SECTOR_OF_PART

    lab = np.load(truth_dir / "labels.npz")
    lut = np.zeros(256, dtype=np.uint8)
    for code, sec in SECTOR_OF_PART.items():
        lut[code] = sec
    truth_sec = np.where(lab["level_index"] == 1, lut[lab["parts"]], 0)
    hu = case.image.pixels
    gtv = _gtv_mask(case, gtv_name)
    k = int(np.round(np.argwhere(gtv).mean(axis=0)[0])) if gtv.any() else hu.shape[0] // 2
    rows, cols = np.nonzero(truth_sec.any(axis=0))
    r0, r1 = max(rows.min() - 8, 0), rows.max() + 9
    c0, c1 = max(cols.min() - 8, 0), cols.max() + 9
    cmap = ListedColormap(["none", "#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231",
                           "#911eb4"])
    panels = [("CT", None), ("truth (parts)", truth_sec)]
    panels += [(f"engine, {m.replace('_', ' ')}", runs[m]["_labels"]) for m in runs]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.2))
    for ax, (title, lab3) in zip(axes, panels, strict=True):
        ax.imshow(hu[k, r0:r1, c0:c1], cmap="gray", vmin=-250, vmax=1250)
        if lab3 is not None:
            ax.imshow(np.ma.masked_equal(lab3[k, r0:r1, c0:c1], 0), cmap=cmap, vmin=0,
                      vmax=6, alpha=0.55, interpolation="nearest")
        if gtv.any():
            ax.contour(gtv[k, r0:r1, c0:c1], [0.5], colors="white", linewidths=1.2)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    fig.suptitle(f"{name}, slice {k} (patient left on the image's right; colours = sectors "
                 "1 red, 2 green, 3 yellow, 4 blue, 5 orange, 6 purple; white = GTV)",
                 fontsize=8)
    fig.savefig(path, dpi=70, bbox_inches="tight")
    plt.close(fig)


def _gtv_mask(case: Any, gtv_name: str) -> Any:
    from contourqa.masks import roi_mask

    roi = next(r for r in case.structure_set.rois if r.name == gtv_name)
    return roi_mask(roi, case.image.geometry)


def bench(names: list[str], *, png_dir: Path | None = None, suite: str = "tuning"
          ) -> list[dict[str, Any]]:
    specs = suite_cases(suite)
    stem = SUITES[suite][0]
    rows = []
    for name in names:
        spec = specs[name]
        with tempfile.TemporaryDirectory() as tmp:
            t0, c0 = time.perf_counter(), time.process_time()
            truth = write_case(spec, tmp, name=name)
            gen_s, gen_cpu = time.perf_counter() - t0, time.process_time() - c0
            _, cases = discover(Path(tmp) / "dicom")
            case = load_case(cases[0])
            vert_names = {v for k, v in truth.roi_names.items() if k.startswith("vertebra:")}
            with_roi = _run(case, truth, drop=set())
            ct_only = _run(case, truth, drop=vert_names)
            missed = [m for m, r in (("with_roi", with_roi), ("ct_only", ct_only))
                      if sorted(r["found"] or ()) != list(truth.gtv_sectors)]
            if png_dir is not None and missed:
                png_dir.mkdir(parents=True, exist_ok=True)
                _picture(png_dir / f"{stem}_{name}.png", name, case,
                         Path(tmp) / "truth", {"with_roi": with_roi, "ct_only": ct_only},
                         truth.roi_names["gtv"])
            with_roi.pop("_labels")
            ct_only.pop("_labels")
        row: dict[str, Any] = {"case": name, "level": truth.level, "truth": list(truth.gtv_sectors),
               "borderline": list(truth.borderline_sectors), "epidural": truth.epidural,
               "paraspinal": truth.paraspinal, "gtv_cc": truth.gtv_cc,
               "gtv_parts_cc": {k: v for k, v in truth.gtv_parts.items() if v > 0},
               "gtv_other_levels_cc": truth.gtv_other_levels_cc,
               "vertebra_roi": spec.vertebra_roi, "canal_roi": spec.canal_roi,
               "gtv_roi": truth.roi_names["gtv"], "shape": spec.extras(),
               "generate_s": round(gen_s, 2), "generate_cpu_s": round(gen_cpu, 2),
               "with_roi": with_roi, "ct_only": ct_only}
        for mode in ("with_roi", "ct_only"):
            r = row[mode]
            r["match"] = r["found"] is not None and sorted(r["found"]) == row["truth"]
            r["epidural_match"] = r["epidural"] == truth.epidural
            r["paraspinal_match"] = r["paraspinal"] == truth.paraspinal
            r["no_other_level"] = r["evaluated"] and not r["other_levels"]
        rows.append(row)
        print(f"{name:42s} truth {_fmt(row['truth']):12s} roi {_fmt(with_roi['found']):12s} "
              f"ct {_fmt(ct_only['found']):12s} gen {gen_s:4.1f}s", flush=True)
    return rows


def _engine_commit() -> str:
    """HEAD and the last commit that touched the engine (contourqa/sectors,
    contourqa/anatomy), or "unknown" outside git."""
    import subprocess

    def log(*paths: str) -> str:
        try:
            out = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %cs %s",
                                  "--", *paths], capture_output=True, text=True, timeout=10,
                                 check=True)
        except (OSError, subprocess.SubprocessError):
            return "unknown"
        return out.stdout.strip()[:90] or "unknown"

    return (f"HEAD {log('.')}; last engine change "
            f"{log('contourqa/sectors', 'contourqa/anatomy')}")


def _yn(v: bool) -> str:
    return "yes" if v else "**no**"


def write_results(rows: list[dict[str, Any]], out: Path, *, suite: str = "tuning") -> str:
    n = len(rows)
    stem, what = SUITES[suite]
    title = "ISRC sectors on the parts phantom (truth by anatomical part)"
    lines = [
        f"# {title}{', HELD-OUT cases' if suite == 'heldout' else ''}",
        "",
        f"Machine and date: {machine_stamp()}",
        "",
        f"Engine (repository commit): {_engine_commit()}",
        "",
        "Generated by `python benchmarks/bench_sectors_parts.py` from "
        f"`test_data/parts_phantom` ({what}; `--suite {suite}`). Truth: the sector of each bone voxel is "
        "the sector of the anatomical part it belongs to (body 1; left pedicle 2; left "
        "lamina, transverse and articular processes 3; spinous process 4; right lamina, "
        "transverse and articular processes 5; right pedicle 6); a sector is involved when "
        "the GTV holds >= 0.05 cc and >= 2 % of its volume in that sector's parts. The "
        "phantom shares no code or parameter with `contourqa.sectors` / "
        "`contourqa.anatomy`. `with ROI`: structure set as written (vertebra ROIs named "
        "as in the column `vertebra ROI`; a name the engine does not recognise leaves it "
        "to the CT); `CT only`: vertebra ROIs removed. `n/e`: not evaluated "
        "(no vertebra entry); `(ct)`: the engine did not take the vertebra ROI and segmented "
        "the CT. `borderline`: sectors whose GTV volume is within a factor 2 "
        "of the threshold (a miss there is a matter of millimetres). Epidural/paraspinal "
        "columns: truth / with ROI / CT only (Y/N, - not evaluated). Every GTV of the suite "
        "stays in its vertebra's bone (truth `gtv_other_levels_cc` = 0), so sectors the "
        "engine reports on another vertebra (last column: with ROI / CT only) are false.",
        "",
        "| case | level | vertebra ROI | canal ROI | truth | borderline | with ROI | match | "
        "CT only | match | epidural | paraspinal | other vertebrae with GTV sectors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def b(v: Any) -> str:
        return "-" if v is None else ("Y" if v else "N")

    for r in rows:
        w, c = r["with_roi"], r["ct_only"]
        lines.append(
            f"| {r['case']} | {r['level']} | {r['vertebra_roi'] or '-'} | {r['canal_roi']} | "
            f"{_fmt(r['truth'])} | {_fmt(r['borderline']) if r['borderline'] else '-'} | "
            f"{_fmt(w['found'])}{' (ct)' if w['vertebra_source'] == 'ct' else ''} | "
            f"{_yn(w['match'])} | "
            f"{_fmt(c['found'])} | {_yn(c['match'])} | "
            f"{b(r['epidural'])}/{b(w['epidural'])}/{b(c['epidural'])} | "
            f"{b(r['paraspinal'])}/{b(w['paraspinal'])}/{b(c['paraspinal'])} | "
            f"{' '.join(w['other_levels']) or '-'} / {' '.join(c['other_levels']) or '-'} |")
    tot: dict[str, dict[str, int]] = {}
    for mode in ("with_roi", "ct_only"):
        tot[mode] = {k: sum(1 for r in rows if r[mode][k])
                     for k in ("match", "epidural_match", "paraspinal_match", "no_other_level",
                               "evaluated")}
    lines += [
        "",
        "## Totals",
        "",
        "| | sector set exact | epidural agrees | paraspinal agrees | no sector on another "
        "vertebra | evaluated |",
        "|---|---|---|---|---|---|",
    ]
    for mode, label in (("with_roi", "with vertebra ROIs"), ("ct_only", "CT only")):
        t = tot[mode]
        lines.append(f"| {label} | {t['match']}/{n} | {t['epidural_match']}/{n} | "
                     f"{t['paraspinal_match']}/{n} | {t['no_other_level']}/{n} | "
                     f"{t['evaluated']}/{n} |")
    lines += ["", "Sectors the engine added (false) or missed, over all cases:", "",
              "| | " + " | ".join(f"sector {k}" for k in range(1, 7)) + " |",
              "|---|" + "---|" * 6]
    for mode, label in (("with_roi", "with vertebra ROIs"), ("ct_only", "CT only")):
        extra = dict.fromkeys(range(1, 7), 0)
        missed = dict.fromkeys(range(1, 7), 0)
        for r in rows:
            found = set(r[mode]["found"] or ())
            for k in found - set(r["truth"]):
                extra[k] += 1
            for k in set(r["truth"]) - found:
                missed[k] += 1
        lines.append(f"| {label}: added / missed | "
                     + " | ".join(f"{extra[k]} / {missed[k]}" for k in range(1, 7)) + " |")
    gen = sorted(r["generate_s"] for r in rows)
    cpu = sorted(r["generate_cpu_s"] for r in rows)
    lines += ["", f"Case generation (CT, ROIs, dose, DICOM files): CPU median "
              f"{cpu[len(cpu) // 2]:.1f} s, max {cpu[-1]:.1f} s; wall median "
              f"{gen[len(gen) // 2]:.1f} s, max {gen[-1]:.1f} s (machine shared with other "
              "jobs).", ""]
    text = "\n".join(lines)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(text, encoding="utf-8")
    (out / f"{stem}.json").write_text(
        json.dumps({"machine": machine_stamp(), "suite": suite, "rows": rows, "totals": tot},
                   indent=1) + "\n", encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", choices=sorted(SUITES), default="tuning",
                    help="tuning: SUITE (default); heldout: HELDOUT, written to "
                         "sectors_parts_heldout.md/.json (never tune on it)")
    ap.add_argument("--cases", nargs="*", default=None, help="case names (default: all)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--png", action="store_true",
                    help="draw sectors_parts_<case>.png in --out for every missed case")
    args = ap.parse_args(argv)
    cases = suite_cases(args.suite)
    names = args.cases or list(cases)
    unknown = [n for n in names if n not in cases]
    if unknown:
        ap.error(f"unknown case(s) {unknown} in suite {args.suite}; known: {sorted(cases)}")
    rows = bench(names, png_dir=args.out if args.png else None, suite=args.suite)
    print(write_results(rows, args.out, suite=args.suite))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
