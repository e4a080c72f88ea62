"""Load test of the DICOM node: 20 cases sent at once from 20 storescu processes.

Each case is the bundled demo case with every instance UID remapped (so 20 distinct
studies of 51 objects).  The node runs in this process on a loopback port read back
from it, with worker processes; the script records, per case, the time from the last
object received to the report written (the node's ``case`` log line), and the peak
memory of the node and of its workers.  Results: ``benchmarks/results/node.md``.

    python benchmarks/bench_node.py [--cases 20] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import machine_stamp

from contourqa.node import AllowedPeer, DicomNode, NodeConfig

DEMO = ROOT / "test_data" / "demo_case" / "dicom"
PREFIX = "1.2.826.0.1.3680043.8.498."   # pydicom's generate_uid root: the phantom's UIDs


def _remap(ds: pydicom.Dataset, n: int) -> None:
    def fix(d: pydicom.Dataset) -> None:
        for elem in d:
            if elem.VR == "UI" and isinstance(elem.value, str) and elem.value.startswith(PREFIX):
                elem.value = generate_uid(entropy_srcs=[elem.value, str(n)])
            elif elem.VR == "SQ":
                for item in elem.value:
                    fix(item)

    fix(ds)
    fix(ds.file_meta)


def make_cases(root: Path, n_cases: int) -> list[Path]:
    out = []
    for n in range(n_cases):
        d = root / f"case{n:02d}"
        d.mkdir(parents=True)
        for f in sorted(DEMO.glob("*.dcm")):
            ds = pydicom.dcmread(f)
            _remap(ds, n)
            ds.save_as(d / f.name)
        out.append(d)
    return out


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.events: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append(json.loads(record.getMessage()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--formats", default="json,html,pdf")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "node.md"))
    args = ap.parse_args()
    storescu = shutil.which("storescu", path="/usr/bin:/bin")
    if storescu is None:
        sys.exit("dcmtk storescu is needed (apt-get install dcmtk)")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cases = make_cases(Path(tmp) / "cases", args.cases)
        prep_s = time.perf_counter() - t0
        lines = _Lines()
        log = logging.getLogger("contourqa.node")
        log.addHandler(lines)
        log.setLevel(logging.INFO)
        config = NodeConfig(storage_dir=Path(tmp) / "storage", port=0, idle_s=30,
                            allowed=(AllowedPeer("TPS"),), jobs=args.jobs,
                            # every sender is on loopback here: lift the per-address cap
                            max_per_address=args.cases,
                            report_formats=tuple(args.formats.split(",")))
        with DicomNode(config) as node:
            t_send = time.perf_counter()
            procs = [subprocess.Popen([storescu, "-aet", "TPS", "-aec", "CONTOURQA", "+sd",
                                       "+r", "-nh", "127.0.0.1", str(node.port), str(c)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                     for c in cases]
            rcs = [p.wait() for p in procs]
            sent_s = time.perf_counter() - t_send
            assert node.wait_idle(1800), "node did not finish"
            total_s = time.perf_counter() - t_send
        node_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        worker_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    case_lines = [e for e in lines.events if e["event"] == "case"]
    objects = [e for e in lines.events if e["event"] == "object"]
    runs = [e for e in lines.events if e["event"] == "check_run"]
    lat = sorted(e["latency_s"] for e in case_lines)
    check_s = [e["check_s"] for e in runs]
    stored = sum(e["outcome"] == "stored" for e in objects)
    text = f"""# DICOM node load test

{machine_stamp()}

`python benchmarks/bench_node.py --cases {args.cases} --jobs {args.jobs} --formats {args.formats}`:
{args.cases} copies of the demo case (51 objects each, UIDs remapped) sent at once by
{args.cases} dcmtk storescu processes to one node (worker processes: {args.jobs}).

| measure | value |
| --- | --- |
| storescu exit codes | {sorted(set(rcs))} |
| objects stored / sent | {stored} / {51 * args.cases} |
| reports written (cases) | {len(case_lines)} of {args.cases}; complete: {sum(e['complete'] for e in case_lines)} |
| all objects received after | {sent_s:.1f} s |
| last report written after | {total_s:.1f} s |
| last object -> report, median | {statistics.median(lat):.1f} s |
| last object -> report, min / max | {lat[0]:.1f} / {lat[-1]:.1f} s |
| check time per study (worker), median | {statistics.median(check_s):.2f} s |
| peak RSS, node process | {node_rss_mb:.0f} MB |
| peak RSS, largest worker | {worker_rss_mb:.0f} MB |
| case preparation (not timed above) | {prep_s:.1f} s |

The latency grows with the queue: {args.jobs} workers check one study at a time each, so
the n-th study to complete waits for the checks before it; the node holds only headers
in memory (objects go to disk as they arrive), so its memory does not grow with the
number of cases.
"""
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
