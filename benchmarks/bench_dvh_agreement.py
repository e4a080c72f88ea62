"""Agreement with a planning system: Eclipse's DVHSequence in the dicompyler-core example.

For every ROI the RTDOSE's DVHSequence covers, contourqa's metrics beside Eclipse's, the
differences and their likely causes (``contourqa.dvh.reconcile``).  Writes
``benchmarks/results/dvh_agreement.json`` and ``.md``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_dvh_common import machine

from contourqa.dvh import dvh_report
from contourqa.io.rtdose import read_dose
from contourqa.io.rtstruct import read_structure_set

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dicompyler_core_example"
RESULTS = Path(__file__).parent / "results"


def main() -> None:
    ss = read_structure_set(DATA / "rtss.dcm")
    dose = read_dose(DATA / "rtdose.dcm")
    rep = dvh_report(ss, dose, uncertainty=True)
    out = {"machine": machine(), "data": DATA.name, "conventions": rep.conventions,
           "reconciliation": [r.to_json() for r in rep.reconciliations],
           "uncertainty": rep.to_json()["uncertainty"]}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dvh_agreement.json").write_text(json.dumps(out, indent=1))
    lines = ["# DVH agreement with Eclipse (DVHSequence of the dicompyler-core example)", "",
             f"machine: {out['machine']}", "",
             "| ROI | metric | contourqa | Eclipse | difference | contourqa band |",
             "|---|---|---|---|---|---|"]
    for r in rep.reconciliations:
        band = rep.bands.get(r.roi_name, {})
        for c in r.comparisons:
            b = band.get(c.metric)
            bt = f"{b[0]:.3f} .. {b[1]:.3f}" if b else ""
            lines.append(f"| {r.roi_name} | {c.metric} | {c.contourqa:.3f} | {c.planning_system:.3f} "
                         f"| {c.difference:+.3f} {c.unit} | {bt} |")
    lines += ["", "Likely causes:", ""]
    for r in rep.reconciliations:
        lines += [f"- **{r.roi_name}**: " + " ".join(r.likely_causes)]
    (RESULTS / "dvh_agreement.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
