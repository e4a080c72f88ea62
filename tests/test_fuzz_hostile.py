"""Fuzz test: the hostile corpus of ``fuzz_corpus.py`` through the command line.

Every run (``inspect`` once over a folder of every mutated file and a FIFO; ``check``
with the JSON, CSV, SARIF and HTML reports, and the PDF on a few, over a stratified
subset of mutated cases; ``dvh`` over the structure-set and dose mutations) runs in its
own process with its address space capped at :data:`MEMORY_CAP` (3 GiB,
``RLIMIT_AS``) and a time limit, and must end with exit 0, 1 or 2, no traceback, no
signal, and a finding: a report whose cases all hold checks (exit 0 or 1), or one
error line naming the file (exit 2).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from fuzz_corpus import Mutation, build_corpus, flat_folder

resource = pytest.importorskip("resource")  # RLIMIT_AS: POSIX only

#: Address-space cap of every run (bytes).  The demo case checks in ~250 MB; a bomb
#: that got through the limits would hit this and fail the test with MemoryError or a
#: signal instead of taking the machine.
MEMORY_CAP = 3 << 30
#: Per-run time limit (s): a loaded CI runner checks the demo case in ~5 s.
TIMEOUT_S = 300

#: Mutations checked with every report format (PDF: those in CHECK_PDF too): each
#: category, and within it the cases that crashed or could crash a report.
CHECK = (
    "coordinates-nan", "coordinates-roi-scaled-1000", "coordinates-too-many-contours",
    "names-mathtext", "names-ansi", "names-formula", "names-rich-markup", "names-bad-bytes",
    "header_bomb-rd-scaling-huge", "header_bomb-ct-rows", "header_bomb-rp-rx-nan",
    "header_bomb-rp-fx-zero", "deflate_bomb-rd",
    "bytes-meta-group-length-vr-length",
)
CHECK_PDF = ("names-mathtext", "coordinates-nan")
#: Mutations also run through ``dvh`` (besides every coordinate and RT Dose header one).
DVH_EXTRA = ("names-ansi", "names-mathtext", "deflate_bomb-rd", "truncation-RS-131",
             "truncation-RD-300", "bytes-RS-0", "bytes-RD-0", "bytes-RS-deep-0",
             "bytes-RD-deep-0")


def _cap() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


@dataclass(frozen=True)
class Run:
    label: str
    args: tuple[str, ...]
    report: Path | None = None  # the JSON report a check writes


@dataclass(frozen=True)
class Outcome:
    run: Run
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def problems(self) -> list[str]:
        """What is wrong with this outcome (empty when it is a good one)."""
        out = []
        if self.returncode not in (0, 1, 2):
            out.append(f"exit {self.returncode}" + (" (signal)" if self.returncode < 0 else ""))
        if "Traceback" in self.stderr or "Traceback" in self.stdout:
            out.append("traceback")
        if self.returncode == 2:
            lines = [ln for ln in self.stderr.splitlines() if ln.startswith("contourqa: ")]
            if not lines:
                out.append("exit 2 without a 'contourqa: ...' line")
        elif self.run.report is not None and self.returncode in (0, 1):
            record = json.loads(self.run.report.read_text(encoding="utf-8"))
            # one case: its record; several: a list (or a run object listing them)
            cases = record if isinstance(record, list) else \
                [record] if "checks" in record else record.get("reports", record.get("cases", []))
            if not cases or any(not c["checks"] for c in cases):
                out.append("a case without any check")
        return out


def _execute(run: Run) -> Outcome:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", "from contourqa.cli import run; run()",
                           *run.args], capture_output=True, text=True, timeout=TIMEOUT_S,
                          preexec_fn=_cap, errors="replace")
    return Outcome(run, proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - start)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Mutation]:
    return build_corpus(tmp_path_factory.mktemp("fuzz") / "cases")


def _runs(corpus: list[Mutation], out: Path, flat: Path) -> list[Run]:
    by_name = {m.name: m for m in corpus}
    runs = [Run("inspect flat folder", ("inspect", str(flat), "--json", str(out / "inspect.json")))]
    for name in CHECK:
        m = by_name[name]
        d = out / name
        d.mkdir()
        args = ["check", str(m.case_dir), "--json", str(d / "r.json"), "--csv", str(d / "r.csv"),
                "--sarif", str(d / "r.sarif"), "--html", str(d / "r.html")]
        if name in CHECK_PDF:
            args += ["--pdf", str(d / "r.pdf")]
        runs.append(Run(f"check {name}", tuple(args), d / "r.json"))
    for m in corpus:
        if m.category == "coordinates" or m.name.startswith("header_bomb-rd-") \
                or m.name in DVH_EXTRA:
            runs.append(Run(f"dvh {m.name}", (
                "dvh", "--structures", str(m.case_dir / "RS.dcm"), "--dose",
                str(m.case_dir / "RD.dcm"), "--jobs", "1", "--json",
                str(out / f"dvh-{m.name}.json"))))
    return runs


@pytest.mark.slow
def test_every_hostile_input_ends_with_an_exit_code_and_a_finding(corpus, tmp_path):
    flat = flat_folder(corpus, tmp_path / "flat")
    (tmp_path / "out").mkdir()
    runs = _runs(corpus, tmp_path / "out", flat)
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(_execute, runs))
    bad = {o.run.label: o.problems() for o in outcomes if o.problems()}
    counts = Counter(f"{o.run.args[0]} exit {o.returncode}" for o in outcomes)
    slowest = sorted(outcomes, key=lambda o: -o.seconds)[:5]
    print("slowest runs: " + ", ".join(f"{o.run.label} {o.seconds:.1f} s" for o in slowest))
    print(f"fuzz corpus: {len(corpus)} mutations "
          f"({dict(Counter(m.category for m in corpus))}); {len(outcomes)} runs: {dict(counts)}")
    assert not bad, "\n".join(
        f"{label}: {', '.join(why)}\n{next(o.stderr[-1500:] for o in outcomes if o.run.label == label)}"
        for label, why in bad.items())
    # inspect walked past the FIFO (not read, so not named) and named the files it
    # could not read, the rest of the folder still indexed
    summary = json.loads((tmp_path / "out" / "inspect.json").read_text(encoding="utf-8"))
    named = {Path(f).name for p in summary["problems"] for f in p["files"]}
    assert "a-fifo.dcm" not in named
    assert {"deflate_bomb-rd.dcm", "bytes-meta-group-length-vr-length.dcm",
            "truncation-RP-140.dcm"} <= named
    assert summary["n_objects"] > len(corpus) // 2
