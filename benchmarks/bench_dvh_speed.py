"""Whole-plan DVH speed: every ROI of the RayStation brain SRS plan, end to end.

Each engine runs in a fresh subprocess (imports, reading and every ROI's DVH), timed
wall-clock with its peak resident memory (GNU ``/usr/bin/time -f %M``; for Plastimatch
the larger of its two steps):

* contourqa: the CLI, ``contourqa dvh --structures RS --dose RD --json -`` (the ROIs
  shared by one forked process per usable core) and with ``--jobs 1``; the library
  call ``dvh_report`` with default options (one process);
* dicompyler-core 0.5.6 ``get_dvh`` per ROI, defaults (and ``--peer-interpolation``:
  0.25 mm in-plane and 2 segments between planes, ~400 s);
* Plastimatch ``convert`` (rasterise the structure set on the dose grid) then ``dvh``.

Writes ``benchmarks/results/dvh_speed.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_dvh_common import machine

PLAN = Path(__file__).resolve().parents[2] / "shared" / "data" / "pps_brain_srs_raystation" / \
    "BrainSRSRaystationIMRT"
RESULTS = Path(__file__).parent / "results"

CONTOURQA = """
import sys
from contourqa.dvh import dvh_report
from contourqa.io.rtstruct import read_structure_set
from contourqa.io.rtdose import read_dose
rep = dvh_report(read_structure_set(sys.argv[1]), read_dose(sys.argv[2]), uncertainty=%s)
print(len(rep.values))
"""

DICOMPYLER = """
import sys, warnings
warnings.simplefilter("ignore")
import pydicom, pydicom.dicomio
pydicom.dicomio.read_file = pydicom.dcmread
from dicompylercore import dvhcalc, dicomparser
rs, rd, interp = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
structures = dicomparser.DicomParser(rs).GetStructures()
kw = {"interpolation_resolution": (0.25, 0.25), "interpolation_segments_between_planes": 2} if interp else {}
n = 0
for number, s in structures.items():
    try:
        d = dvhcalc.get_dvh(rs, rd, number, **kw)
        n += 1
    except Exception:  # POINT ROIs have no volume
        pass
print(n)
"""


def run(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB, largest process, from GNU time) and stdout."""
    with tempfile.NamedTemporaryFile(suffix=".txt") as tf:
        t0 = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", tf.name, *cmd],
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[:3]} failed: {proc.stderr[-2000:]}")
        rss_kb = float(Path(tf.name).read_text().strip().splitlines()[-1])
    return wall, rss_kb / 1024.0, proc.stdout.strip()


def summary(runs: list[tuple[float, float, str]]) -> dict[str, float | str]:
    wall = min(r[0] for r in runs)
    return {"seconds": round(wall, 3), "seconds_median": round(sorted(r[0] for r in runs)[len(runs) // 2], 3),
            "seconds_all": [round(r[0], 3) for r in runs],
            "peak_rss_mb": round(max(r[1] for r in runs), 1), "output": runs[0][2][-200:]}


def best_of(n: int, cmd: list[str]) -> dict[str, float | str]:
    return summary([run(cmd) for _ in range(n)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--peer-interpolation", action="store_true")
    args = ap.parse_args()
    rs = str(next(PLAN.glob("RS*")))
    rd = str(next(PLAN.glob("RD*")))
    # An installed package carries its bytecode; an editable checkout may not (and
    # PYTHONDONTWRITEBYTECODE keeps it so): compile it, as pip does on install.
    import contourqa
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(contourqa.__file__).parent)],
                   check=True, capture_output=True)
    report: dict[str, object] = {"machine": machine(), "plan": str(PLAN.name),
                                 "load_average_start": os.getloadavg()[0]}
    py = sys.executable
    cli = shutil.which("contourqa") or str(Path(py).parent / "contourqa")
    engines: dict[str, list[str]] = {
        "contourqa_cli": [cli, "dvh", "--structures", rs, "--dose", rd, "--json", "-"],
        "contourqa_cli_one_process": [cli, "dvh", "--structures", rs, "--dose", rd, "--json", "-",
                                      "--jobs", "1"],
    }
    exe = shutil.which("plastimatch")
    tmp = tempfile.TemporaryDirectory()
    if exe:
        engines["plastimatch"] = ["bash", "-c", (
            f"set -e; {exe} convert --input '{rs}' --fixed '{rd}' --output-ss-img {tmp.name}/ss.nrrd "
            f"--output-ss-list {tmp.name}/ss.txt >/dev/null; {exe} dvh --input-ss-img {tmp.name}/ss.nrrd "
            f"--input-ss-list {tmp.name}/ss.txt --input-dose '{rd}' --output-csv {tmp.name}/dvh.csv "
            f">/dev/null; wc -l < {tmp.name}/dvh.csv")]
    else:
        report["plastimatch"] = "not installed"
    # Rounds: each engine once per round, so that a change of load hits all alike.
    runs: dict[str, list[tuple[float, float, str]]] = {k: [] for k in engines}
    for _ in range(args.repeat):
        for name, cmd in engines.items():
            runs[name].append(run(cmd))
    for name in engines:
        report[name] = summary(runs[name])
    tmp.cleanup()
    report["contourqa_library"] = best_of(args.repeat, [py, "-c", CONTOURQA % "False", rs, rd])
    report["contourqa_with_uncertainty"] = best_of(1, [py, "-c", CONTOURQA % "True", rs, rd])
    # the same breakdown in-process (best of --repeat, fresh objects each time): where the
    # time goes.  Import is measured in a fresh interpreter.
    timed_import = ("import time; t = time.perf_counter(); "
                    "import contourqa.dvh, contourqa.io.rtstruct, contourqa.io.rtdose; "
                    "print(time.perf_counter() - t)")
    imports = [float(run([py, "-c", timed_import])[2]) for _ in range(args.repeat)]
    from contourqa.dvh import dvh_report
    from contourqa.parallel import default_workers
    from contourqa.io.rtdose import read_dose
    from contourqa.io.rtstruct import read_structure_set
    reads, dvhs, dvhs_one = [], [], []
    for _ in range(args.repeat):
        t1 = time.perf_counter()
        ss, dose = read_structure_set(rs), read_dose(rd)
        t2 = time.perf_counter()
        dvh_report(ss, dose, workers=default_workers())
        t3 = time.perf_counter()
        dvh_report(ss, dose, workers=1)
        t4 = time.perf_counter()
        reads.append(t2 - t1)
        dvhs.append(t3 - t2)
        dvhs_one.append(t4 - t3)
    report["contourqa_breakdown_s"] = {"import": round(min(imports), 3),
                                       "read_dicom": round(min(reads), 3),
                                       f"dvh_all_rois_{default_workers()}_processes": round(min(dvhs), 3),
                                       "dvh_all_rois_1_process": round(min(dvhs_one), 3)}
    report["dicompyler_core_defaults"] = best_of(1, [py, "-c", DICOMPYLER, rs, rd, "0"])
    if args.peer_interpolation:
        report["dicompyler_core_interpolation"] = best_of(1, [py, "-c", DICOMPYLER, rs, rd, "1"])
    report["load_average_end"] = os.getloadavg()[0]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dvh_speed.json").write_text(json.dumps(report, indent=1))
    lines = ["# Whole-plan DVH speed (brain SRS, 3 mm dose grid, all ROIs)", "",
             f"machine: {report['machine']}", "",
             "| engine | wall s (best) | wall s (median) | peak RSS MB |", "|---|---|---|---|"]
    for k in ("contourqa_cli", "contourqa_cli_one_process", "plastimatch", "contourqa_library",
              "contourqa_with_uncertainty", "dicompyler_core_defaults",
              "dicompyler_core_interpolation"):
        r = report.get(k)
        if isinstance(r, dict):
            lines.append(f"| {k} | {r['seconds']} | {r['seconds_median']} | {r['peak_rss_mb']} |")
    ratio = None
    if isinstance(report.get("plastimatch"), dict):
        cq, pm = report["contourqa_cli"], report["plastimatch"]
        ratio = round(cq["seconds"] / pm["seconds"], 3)  # type: ignore[index]
        report["ratio_contourqa_cli_to_plastimatch"] = ratio
        (RESULTS / "dvh_speed.json").write_text(json.dumps(report, indent=1))
    lines += ["", f"Ratio contourqa_cli / plastimatch (best of each): {ratio}", "",
              ("contourqa_cli is `contourqa dvh --structures RS --dose RD --json -`, which shares "
               "the ROIs between forked processes, one per usable core (`--jobs`, default all); "
               "contourqa_cli_one_process adds `--jobs 1`.  Plastimatch is `convert` then `dvh` "
               "(single-threaded).  The three run in rounds, each once per round, "
               f"{args.repeat} rounds; contourqa_library is `dvh_report` in `python -c` "
               "(one process); dicompyler-core and the uncertainty run: one run each."),
              (f"1-minute load average at start/end: {report['load_average_start']:.2f} / "
               f"{report['load_average_end']:.2f} (2 cores; other sessions may be running)."),
              "", (f"contourqa in-process breakdown (s, best of {args.repeat}): "
                   f"{report['contourqa_breakdown_s']}")]
    (RESULTS / "dvh_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
