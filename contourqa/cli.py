"""Command line: parses arguments and calls the library; nothing else.

Exit codes: 0 no check failed; 1 at least one check failed; 2 unusable input or a
usage error (message on stderr naming the file and the problem, no traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from contourqa import __version__
from contourqa.errors import ContourQAError


class UsageError(ContourQAError, ValueError):
    """A command line that names something that does not exist."""

__all__ = ["main"]

EXIT_OK, EXIT_FAIL, EXIT_INPUT = 0, 1, 2


def _metrics(text: str | None) -> tuple[str, ...] | None:
    return tuple(m.strip() for m in text.split(",") if m.strip()) if text else None


def _colour(args: argparse.Namespace) -> bool:
    return sys.stdout.isatty() and not args.no_colour and "NO_COLOR" not in os.environ


def _write_reports(run, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from contourqa.report import JsonFormatter, TerminalFormatter

    if args.json:
        JsonFormatter().write(run.reports, args.json)
    if args.json != "-":
        TerminalFormatter(colour=_colour(args)).write(run.reports, sys.stdout)
    for p in run.problems:
        print(f"warning: {p.message} ({', '.join(str(f) for f in p.files)})", file=sys.stderr)
    return EXIT_FAIL if run.failed else EXIT_OK


def _check_options(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from contourqa.check import CheckOptions
    from contourqa.dose_checks import DoseCheckOptions, PatientFactors, selected_sets
    from contourqa.structures import load_mapping

    mapping = load_mapping(args.roles) if args.roles else None
    try:
        alpha_beta = {}
        for item in args.alpha_beta:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--alpha-beta {item!r}: expected KEY=GY, e.g. tumour=10")
            alpha_beta[key.strip()] = float(value)
        dose = DoseCheckOptions(
            constraint_sets=_metrics(args.constraints) or ("auto",),
            constraint_files=tuple(args.constraint_file), prior_courses=tuple(args.prior),
            prior_dose_paths=tuple(args.prior_dose), use_unconfirmed=args.use_unconfirmed,
            cord_compromise=args.cord_compromise, alpha_beta_gy=alpha_beta,
            gtv_dmin_variant=args.gtv_dmin, ptv_coverage_variant=args.ptv_coverage,
            dose_grid_max_spacing_mm=args.dose_grid_max_mm,
            patient=PatientFactors(age_years=args.age, lytic=args.lytic,
                                   baseline_vcf=args.baseline_vcf, deformity=args.deformity,
                                   sins_total=args.sins,
                                   vertebral_body_involved_percent=args.vb_involved))
        selected_sets(dose)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return CheckOptions(prescription_gy=args.prescription, role_mapping=mapping,
                        metrics=_metrics(args.metrics), dose_checks=dose)


def _progress(n: int, total: int, name: str) -> None:
    if sys.stderr.isatty():
        print(f"\r[{n + 1}/{total}] {name[:60]:<60}", end="", file=sys.stderr, flush=True)


def cmd_check(args: argparse.Namespace) -> int:
    from contourqa.check import check

    run = check(args.path, options=_check_options(args), progress=_progress)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return _write_reports(run, args)


def cmd_demo(args: argparse.Namespace) -> int:
    from contourqa.check import check
    from contourqa.demo import demo_case_path
    from contourqa.report import JsonFormatter

    case_dir = demo_case_path()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"contourqa demo: checking the bundled spine phantom in {case_dir}")
    run = check(case_dir, options=_check_options(args))
    args.json = str(out / "report.json")
    code = _write_reports(run, args)
    JsonFormatter().write(run.reports, out / "report.json")
    print(f"Reports written to {out.resolve()}/ (report.json)")
    return code


def cmd_dvh(args: argparse.Namespace) -> int:
    import json

    from contourqa.dvh import DEFAULT_METRICS, dvh_report
    from contourqa.io import read_dose, read_structure_set

    ss = read_structure_set(args.structures)
    dose = read_dose(args.dose, prescription_gy=args.prescription)
    try:
        result = dvh_report(ss, dose, roi_names=args.roi or None,
                            metrics=_metrics(args.metrics) or DEFAULT_METRICS,
                            prescription_gy=args.prescription)
    except KeyError as exc:  # unknown ROI name: the message lists the ROIs
        raise UsageError(str(exc.args[0])) from exc
    text = json.dumps(result.to_json()["rois"], indent=2, allow_nan=False) + "\n"
    if args.json and args.json != "-":
        Path(args.json).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    for f in result.problems:
        print(f"{f.status.value}: {f.structure or ''} {f.message}", file=sys.stderr)
    print("conventions: " + "; ".join(f"{k}={v}" for k, v in result.conventions.items()),
          file=sys.stderr)
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    from contourqa.inspect import describe, inspect_path

    summary = inspect_path(args.path)
    if args.json:
        import json

        text = json.dumps(summary.to_json(), indent=2) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            Path(args.json).write_text(text, encoding="utf-8")
    if args.json != "-":
        sys.stdout.write(describe(summary))
    if not summary.cases:
        print(f"contourqa: {args.path}: no RT Plan, RT Structure Set or RT Dose found; "
              "nothing to check.", file=sys.stderr)
        return EXIT_INPUT
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="contourqa", description="Quality assurance of spine SBRT plans (DICOM-RT).")
    parser.add_argument("--version", action="version", version=f"contourqa {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", metavar="FILE", help="write the JSON report (- for stdout)")
        p.add_argument("--prescription", type=float, metavar="GY",
                       help="prescription dose in Gy (overrides the plan; scales RELATIVE doses)")
        p.add_argument("--roles", metavar="TOML", help="ROI name -> role mapping file")
        p.add_argument("--metrics", metavar="LIST", help="DVH metrics, comma-separated")
        p.add_argument("--no-colour", "--no-color", action="store_true", help="plain output")
        g = p.add_argument_group("dose constraints")
        g.add_argument("--constraints", metavar="LIST", default="auto",
                       help="constraint sets: auto (by fraction number), hytec2021, sahgal2013, "
                            "tg101, rtog0631, redmond2017, quantec2010, bmc2025")
        g.add_argument("--constraint-file", action="append", default=[], metavar="TOML",
                       help="institutional constraint set (repeatable)")
        g.add_argument("--prior", action="append", default=[], metavar="COURSE",
                       help='prior course, e.g. "30Gy/10fx,cord_max=28Gy,date=2023-05-01"')
        g.add_argument("--prior-dose", action="append", default=[], metavar="RTDOSE",
                       help="prior RTDOSE in the plan's frame of reference, one per --prior")
        g.add_argument("--use-unconfirmed", action="store_true",
                       help="also evaluate constraints whose source is unconfirmed (labelled U)")
        g.add_argument("--alpha-beta", action="append", default=[], metavar="KEY=GY",
                       help="alpha/beta override, e.g. tumour=10")
        g.add_argument("--gtv-dmin", default="review",
                       choices=["review", "lovelock2010", "kowalchuk2024"],
                       help="GTV Dmin threshold variant (default: %(default)s)")
        g.add_argument("--ptv-coverage", default="review", choices=["review", "rtog0631"],
                       help="PTV coverage variant (default: %(default)s)")
        g.add_argument("--cord-compromise", action="store_true",
                       help="the prior course compromised the cord (Redmond 2017 row)")
        g.add_argument("--dose-grid-max-mm", type=float, metavar="MM",
                       help="warn when the dose grid is coarser than this")
        v = p.add_argument_group("vertebral compression fracture risk factors")
        v.add_argument("--age", type=float, metavar="YEARS")
        v.add_argument("--sins", type=int, metavar="SCORE", help="SINS total")
        v.add_argument("--vb-involved", type=float, metavar="PERCENT",
                       help="percent of the vertebral body involved by tumour")
        for flag in ("--lytic", "--baseline-vcf", "--deformity"):
            v.add_argument(flag, action="store_const", const=True, default=None)

    p = sub.add_parser("check", help="check every plan under PATH")
    p.add_argument("path", metavar="PATH")
    common(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("demo", help="check the bundled spine phantom and write its reports")
    p.add_argument("--out", default="contourqa-demo-report", metavar="DIR",
                   help="folder for the reports (default: %(default)s)")
    common(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("dvh", help="DVH metrics of ROIs from an RTSTRUCT and an RTDOSE")
    p.add_argument("--structures", required=True, metavar="RS")
    p.add_argument("--dose", required=True, metavar="RD")
    p.add_argument("--roi", action="append", metavar="NAME", help="ROI name (repeatable)")
    p.add_argument("--metrics", metavar="LIST", help="e.g. Dmax,D0.03cc,D95%%,V10Gy")
    p.add_argument("--prescription", type=float, metavar="GY")
    p.add_argument("--json", metavar="FILE", help="output file (default: stdout)")
    p.set_defaults(func=cmd_dvh)

    p = sub.add_parser("inspect", help="describe the cases, series, ROIs and problems under PATH")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--json", metavar="FILE", help="also write the description as JSON (- for stdout)")
    p.set_defaults(func=cmd_inspect)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 for usage errors, 0 for --help
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except ContourQAError as exc:
        if args.debug:
            raise
        print(f"contourqa: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("contourqa: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
