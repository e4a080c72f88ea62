"""Write parts-phantom cases from the command line.

    python -m test_data.parts_phantom OUT_DIR [--case NAME ...] [--list]

Each case goes to ``OUT_DIR/NAME`` (``dicom/`` and ``truth/``); its truth is printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import SUITE, write_case


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m test_data.parts_phantom",
                                 description="Write cases of the parts phantom's suite.")
    ap.add_argument("out_dir", type=Path, nargs="?")
    ap.add_argument("--case", action="append", default=None,
                    help="case name (repeatable; default: every case)")
    ap.add_argument("--list", action="store_true", help="list the case names and exit")
    args = ap.parse_args(argv)
    if args.list:
        for name in SUITE:
            print(name)
        return 0
    if args.out_dir is None:
        ap.error("OUT_DIR is required unless --list is given")
    names = args.case or list(SUITE)
    unknown = [n for n in names if n not in SUITE]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; --list shows the names")
    for name in names:
        t = write_case(SUITE[name], args.out_dir / name, name=name)
        print(f"{name}: level {t.level}, sectors {list(t.gtv_sectors)}, epidural {t.epidural}, "
              f"paraspinal {t.paraspinal}, GTV {t.gtv_cc:.2f} cc")
    return 0


if __name__ == "__main__":
    sys.exit(main())
