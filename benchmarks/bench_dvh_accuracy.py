"""Accuracy of contourqa's DVH (and dicompyler-core's) on the Nelms 2015 benchmark.

All 70 cases whose dose grid is in ``../shared/data/nelms_analytical_dvh`` (630 values:
Volume, Dmin, Dmax, Dmean, D99, D95, D5, D1, D0.03cc).  Counts of values off by more
than 2, 3 and 5 % (relative to the analytic value, as Nelms et al.), with Dmin/Dmax
apart.  Writes ``benchmarks/results/dvh_accuracy.json`` and ``.md``.

    python benchmarks/bench_dvh_accuracy.py [--no-peer] [--peer-interpolation]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_dvh_common import machine
from bench_dvh_common import METRICS, NelmsCase, load_cases

from contourqa.dvh import DVHOptions, compute_dvh
from contourqa.io.rtdose import read_dose
from contourqa.io.rtstruct import read_structure_set

RESULTS = Path(__file__).parent / "results"


def contourqa_values(case: NelmsCase, doses: dict, options: DVHOptions) -> dict[str, float]:
    roi = [r for r in read_structure_set(case.structure_path).rois if not r.is_empty][0]
    if case.dose_path not in doses:
        doses[case.dose_path] = read_dose(case.dose_path)
    dvh = compute_dvh(roi, doses[case.dose_path], options=options)
    return {m: dvh.metric(m) for m in METRICS}


def dicompyler_values(case: NelmsCase, *, interpolation: bool) -> dict[str, float]:
    import pydicom
    import pydicom.dicomio
    pydicom.dicomio.read_file = pydicom.dcmread  # shim: dicompyler-core 0.5.6 on pydicom 3
    from dicompylercore import dvhcalc

    ds = pydicom.dcmread(case.structure_path)
    number = [int(r.ROINumber) for r in ds.StructureSetROISequence
              if not str(r.ROIName).upper().startswith("POI")][0]
    kw = {"interpolation_resolution": (0.25, 0.25), "interpolation_segments_between_planes": 2} \
        if interpolation else {}
    d = dvhcalc.get_dvh(str(case.structure_path), str(case.dose_path), number, **kw)
    out = {"volume": float(d.volume), "Dmin": float(d.min), "Dmax": float(d.max),
           "Dmean": float(d.mean)}
    for m in ("D99%", "D95%", "D5%", "D1%"):
        out[m] = float(d.dose_constraint(float(m[1:-1])).value)
    out["D0.03cc"] = float(d.dose_constraint(0.03, "cc").value)
    return out


def score(cases: list[NelmsCase], values: list[dict[str, float]]) -> dict[str, object]:
    errs = []
    for c, v in zip(cases, values):
        for m in METRICS:
            errs.append((c.label, m, v[m], c.truth[m], 100 * (v[m] - c.truth[m]) / c.truth[m]))

    def count(sel, lim):  # type: ignore[no-untyped-def]
        return sum(1 for e in errs if sel(e[1]) and abs(e[4]) > lim)

    allm = lambda m: True
    ext = lambda m: m in ("Dmin", "Dmax")
    rest = lambda m: m not in ("Dmin", "Dmax")
    return {
        "n_values": len(errs),
        "over_2pct": count(allm, 2), "over_3pct": count(allm, 3), "over_5pct": count(allm, 5),
        "dmin_dmax_over_3pct": count(ext, 3), "dmin_dmax_over_5pct": count(ext, 5),
        "others_over_3pct": count(rest, 3), "others_over_5pct": count(rest, 5),
        "worst": sorted(({"case": e[0], "metric": e[1], "value": round(e[2], 4),
                          "truth": round(e[3], 4), "error_pct": round(e[4], 2)} for e in errs
                         if abs(e[4]) > 2), key=lambda d: -abs(d["error_pct"])),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--no-peer", action="store_true", help="skip dicompyler-core")
    ap.add_argument("--peer-interpolation", action="store_true",
                    help="also run dicompyler-core's interpolation mode (slow)")
    args = ap.parse_args()
    cases = load_cases()
    report: dict[str, object] = {"machine": machine(), "benchmark": "Nelms 2015 analytical DVH",
                                 "cases": len(cases)}
    options = DVHOptions()
    t0 = time.perf_counter()
    doses: dict = {}
    ours = [contourqa_values(c, doses, options) for c in cases]
    report["contourqa"] = {"seconds": round(time.perf_counter() - t0, 2),
                           "conventions": options.conventions(), **score(cases, ours)}
    if not args.no_peer:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            peer = [dicompyler_values(c, interpolation=False) for c in cases]
            report["dicompyler_core_defaults"] = {"seconds": round(time.perf_counter() - t0, 2),
                                                  **score(cases, peer)}
            if args.peer_interpolation:
                t0 = time.perf_counter()
                peer = [dicompyler_values(c, interpolation=True) for c in cases]
                report["dicompyler_core_interpolation"] = {
                    "seconds": round(time.perf_counter() - t0, 2), **score(cases, peer)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dvh_accuracy.json").write_text(json.dumps(report, indent=1))
    lines = [f"# DVH accuracy: Nelms 2015 analytical benchmark ({len(cases)} cases)", "",
             f"machine: {report['machine']}", "",
             "| engine | values | >2% | >3% | >5% | Dmin/Dmax >3% | others >3% | seconds |",
             "|---|---|---|---|---|---|---|---|"]
    for key in ("contourqa", "dicompyler_core_defaults", "dicompyler_core_interpolation"):
        if key in report:
            r = report[key]
            lines.append(f"| {key} | {r['n_values']} | {r['over_2pct']} | {r['over_3pct']} | "
                         f"{r['over_5pct']} | {r['dmin_dmax_over_3pct']} | {r['others_over_3pct']} "
                         f"| {r['seconds']} |")
    lines += ["", "contourqa values off by more than 2%:", ""]
    lines += [f"- {w['case']} {w['metric']}: {w['value']} vs {w['truth']} ({w['error_pct']:+}%)"
              for w in report["contourqa"]["worst"]]  # type: ignore[index]
    (RESULTS / "dvh_accuracy.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:12]))


if __name__ == "__main__":
    main()
