"""Run the README's commands as written, the way a newcomer would.

    python scripts/readme_walk.py            # exit 1 when a command fails

Every line of a ```sh block and every ```python block of README.md runs, from a fresh
folder that holds the clone's ``test_data`` and ``docs`` (linked) and an empty
``contourqa/`` folder (like the parent of a clone, where a newcomer often stands), with
``contourqa`` the console entry point of this interpreter's install.  Commands that
need a service, a reader's own archive or a long set-up are skipped with the reason
(:data:`SKIP`).  ``tests/test_readme.py`` runs it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

#: substring of a command -> why the walk does not run it
SKIP: dict[str, str] = {
    ". .venv/bin/activate": "the walk already runs in the installed environment",
    "--orthanc": "needs an Orthanc server (tests/test_audit_services.py starts one)",
    "--dicomweb": "needs a DICOMweb server (tests/test_audit_services.py starts one)",
    "postgresql://": "needs a PostgreSQL server (tests/test_audit_services.py starts one)",
    "--scheduler": "needs a dask.distributed cluster",
    "/archive": "the reader's own archive (the walk audits test_data/demo_case)",
    "contourqa listen": "a server that runs until stopped (tests/test_node.py)",
    "echoscu": "needs a running node and dcmtk",
    "contourqa demo": "covered by tests/test_report_formats.py::test_demo_writes_every_format "
                      "(same run, in-process; keeps this walk under a minute)",
}


def blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block."""
    return [(m.group(1), m.group(2))
            for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.M | re.S)]


def shell_commands(body: str) -> list[str]:
    """One command per line (backslash continuations joined); comments dropped."""
    out, pending = [], ""
    for line in body.splitlines():
        line = pending + line.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line and not line.startswith("#"):
            out.append(line)
    return out


def plan(text: str) -> list[tuple[str, str, str | None]]:
    """(kind, command, reason to skip or None) in README order."""
    steps: list[tuple[str, str, str | None]] = []
    seen = set()
    for lang, body in blocks(text):
        if lang == "sh":
            for cmd in shell_commands(body):
                reason = next((why for key, why in SKIP.items() if key in cmd), None)
                if reason is None and cmd in seen:
                    reason = "the same command ran above"
                seen.add(cmd)
                steps.append(("sh", cmd, reason))
        elif lang == "python":
            steps.append(("python", body, None))
    return steps


def run(steps: list[tuple[str, str, str | None]], workdir: Path, *, timeout_s: float = 300
        ) -> list[str]:
    """Run the steps in ``workdir``; returns one line per failure."""
    for name in ("test_data", "docs"):
        (workdir / name).symlink_to(REPO / name)
    (workdir / "contourqa").mkdir()  # as in the parent of a clone
    entry = f'"{sys.executable}" -c "from contourqa.cli import run; run()"'
    prelude = f"set -euo pipefail\ncontourqa() {{ {entry} \"$@\"; }}\n"
    env = {**os.environ, "NO_COLOR": "1"}
    failures = []
    for kind, cmd, reason in steps:
        label = cmd.splitlines()[0][:100]
        if reason:
            print(f"skip  {label}\n      ({reason})")
            continue
        t0 = time.perf_counter()
        argv = (["bash", "-c", prelude + cmd] if kind == "sh"
                else [sys.executable, "-c", cmd])
        proc = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True,
                              timeout=timeout_s)
        ok = proc.returncode in (0, 1) if "contourqa check" in cmd else proc.returncode == 0
        print(f"{'ok  ' if ok else 'FAIL'}  {label}  ({time.perf_counter() - t0:.1f} s, "
              f"exit {proc.returncode})")
        if not ok:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            failures.append(f"{label}: exit {proc.returncode}: " + " / ".join(tail))
    return failures


def main() -> int:
    steps = plan(README.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="readme-walk-") as tmp:
        failures = run(steps, Path(tmp))
    for f in failures:
        print(f"README command failed: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
