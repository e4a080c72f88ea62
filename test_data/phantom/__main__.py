"""``python -m test_data.phantom OUTDIR [--recipe NAME] [--set FIELD=JSON ...]``."""

from __future__ import annotations

import argparse
import json
import sys

from . import PRESETS, generate_case


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m test_data.phantom",
        description="Write a digital spine phantom case (DICOM-RT and truth) into OUTDIR.")
    parser.add_argument("out_dir", help="folder to write (dicom/ and truth/ inside)")
    parser.add_argument("--recipe", default="demo", choices=sorted(PRESETS),
                        help="named preset (default: demo)")
    parser.add_argument("--set", dest="changes", action="append", default=[],
                        metavar="FIELD=JSON",
                        help='override one recipe field, e.g. --set gtv_sectors=[1,2] '
                             '--set epidural=true --set patient_position=\'"FFS"\'')
    args = parser.parse_args(argv)
    changes = {}
    for item in args.changes:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set needs FIELD=JSON, got {item!r}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        changes[key] = tuple(parsed) if isinstance(parsed, list) else parsed
    try:
        recipe = PRESETS[args.recipe].replace(**changes)
        case = generate_case(recipe, args.out_dir)
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(case.dicom_paths())} DICOM files and truth to {case.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
