"""Write parts-phantom cases from the command line.

    python -m test_data.parts_phantom OUT_DIR [--suite {suite,heldout}] [--case NAME ...] [--list]

Each case goes to ``OUT_DIR/NAME`` (``dicom/`` and ``truth/``); its truth is printed.
``--suite heldout`` takes the held-out cases (``HELDOUT``) instead of ``SUITE``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import SUITE, CaseSpec, write_case


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m test_data.parts_phantom",
                                 description="Write cases of the parts phantom's suite.")
    ap.add_argument("out_dir", type=Path, nargs="?")
    ap.add_argument("--case", action="append", default=None,
                    help="case name (repeatable; default: every case)")
    ap.add_argument("--list", action="store_true", help="list the case names and exit")
    ap.add_argument("--suite", choices=("suite", "heldout"), default="suite",
                    help="the tuning suite (default) or the held-out cases")
    args = ap.parse_args(argv)
    cases: dict[str, CaseSpec] = SUITE
    if args.suite == "heldout":
        from . import HELDOUT

        cases = HELDOUT
    if args.list:
        for name in cases:
            print(name)
        return 0
    if args.out_dir is None:
        ap.error("OUT_DIR is required unless --list is given")
    names = args.case or list(cases)
    unknown = [n for n in names if n not in cases]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; --list shows the names")
    for name in names:
        t = write_case(cases[name], args.out_dir / name, name=name)
        print(f"{name}: level {t.level}, sectors {list(t.gtv_sectors)}, epidural {t.epidural}, "
              f"paraspinal {t.paraspinal}, GTV {t.gtv_cc:.2f} cc")
    return 0


if __name__ == "__main__":
    sys.exit(main())
