"""Command line: parses arguments and calls the library; nothing else.

Exit codes: 0 no check failed; 1 at least one check failed; 2 unusable input or a
usage error (message on stderr naming the file and the problem, no traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from contourqa.errors import ContourQAError, require

if TYPE_CHECKING:
    from contourqa.node import NodeConfig


class UsageError(ContourQAError, ValueError):
    """A command line that names something that does not exist."""

__all__ = ["main"]

EXIT_OK, EXIT_FAIL, EXIT_INPUT = 0, 1, 2


def check_output_path(path: str | None, *, option: str, directory: bool = False) -> None:
    """Fail before any work when an output path cannot be written.

    ``path`` is a file (or, with ``directory``, a folder created if missing) named by
    ``option``; ``None`` and ``-`` (standard output) pass.

    Raises
    ------
    UsageError
        The folder that would hold it is missing or not writable, or the path is a
        folder where a file is expected (or the reverse); the message names both.
    """
    if not path or path == "-":
        return
    target = Path(path)
    if directory:
        existing = target
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise UsageError(f"{option} {path}: {existing} is not a folder.")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise UsageError(f"{option} {path}: folder {existing} is not writable.")
        return
    parent = target.parent
    if target.is_dir():
        raise UsageError(f"{option} {path}: is a folder; name a file.")
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: no such folder {parent}; create it first.")
    if not os.access(parent, os.W_OK | os.X_OK) or (target.exists()
                                                    and not os.access(target, os.W_OK)):
        raise UsageError(f"{option} {path}: not writable here.")


def _check_report_paths(args: argparse.Namespace) -> None:
    from contourqa.report import FILE_FORMATTERS

    for formatter in FILE_FORMATTERS:
        check_output_path(getattr(args, formatter.name, None), option=f"--{formatter.name}")


def _say(text: str) -> None:
    """One line on standard error, control characters escaped (messages quote ROI
    names and file contents, which may hold ANSI escape sequences)."""
    from contourqa.report.text import printable

    print(printable(text), file=sys.stderr)


def _metrics(text: str | None) -> tuple[str, ...] | None:
    return tuple(m.strip() for m in text.split(",") if m.strip()) if text else None


def _colour(args: argparse.Namespace) -> bool:
    return sys.stdout.isatty() and not args.no_colour and "NO_COLOR" not in os.environ


def _write_reports(run, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from contourqa.report import FILE_FORMATTERS, TerminalFormatter

    to_stdout = False
    for formatter in FILE_FORMATTERS:
        path = getattr(args, formatter.name, None)
        if path:
            formatter().write(run.reports, path)
            to_stdout = to_stdout or path == "-"
    if not to_stdout:
        TerminalFormatter(colour=_colour(args), full_width=not sys.stdout.isatty()).write(
            run.reports, sys.stdout)
    for p in run.problems:
        _say(f"warning: {p.message} ({', '.join(str(f) for f in p.files)})")
    return EXIT_FAIL if run.failed else EXIT_OK


def _needs_media(args: argparse.Namespace) -> bool:
    from contourqa.report import FILE_FORMATTERS

    return any(f.needs_media and getattr(args, f.name, None) for f in FILE_FORMATTERS)


#: ``check`` option (argparse destination) -> keyword of
#: :func:`contourqa.options.build_check_options`: the CLI only parses, the library builds.
CHECK_OPTION_KEYWORDS: dict[str, str] = {
    "prescription": "prescription_gy", "roles": "roles", "metrics": "metrics", "level": "level",
    "constraints": "constraints", "constraint_file": "constraint_files", "prior": "prior_courses",
    "prior_dose": "prior_doses", "assume_prior_cord_max": "assume_prior_cord_max",
    "use_unconfirmed": "use_unconfirmed",
    "alpha_beta": "alpha_beta_gy", "gtv_dmin": "gtv_dmin_variant",
    "ptv_coverage": "ptv_coverage_variant", "cord_compromise": "cord_compromise",
    "dose_grid_max_mm": "dose_grid_max_spacing_mm", "mode": "mode", "profile": "profile",
    "waiver": "waivers", "waivers": "waiver_files", "variant": "variants", "asia": "asia_grade",
    "bilsky": "bilsky_grade", "histology": "histology", "prior_rt": "prior_rt_overlap",
    "age": "age_years", "sins": "sins_total", "vb_involved": "vertebral_body_involved_percent",
    "lytic": "lytic", "baseline_vcf": "baseline_vcf", "deformity": "deformity",
}


def _check_options(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from contourqa.options import build_check_options

    kwargs = {kw: getattr(args, dest) for dest, kw in CHECK_OPTION_KEYWORDS.items()}
    kwargs["metrics"] = _metrics(args.metrics)
    kwargs["waiver_files"] = [args.waivers] if args.waivers else []
    return build_check_options(**kwargs, keep_media=_needs_media(args))


class _Progress:
    """A spinner with the case being checked, on standard error when it is a terminal."""

    def __init__(self) -> None:
        self._status = None
        if sys.stderr.isatty():
            from rich.console import Console

            self._status = Console(stderr=True).status("discovering DICOM files ...")

    def __enter__(self) -> "_Progress":
        if self._status is not None:
            self._status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()

    def __call__(self, n: int, total: int, name: str) -> None:
        if self._status is not None:
            from rich.markup import escape

            from contourqa.report.text import printable

            self._status.update(f"[{n + 1}/{total}] loading and checking "
                                f"{escape(printable(name[:60]))}")


def cmd_check(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from contourqa.check import check
    from contourqa.parallel import default_workers

    _check_report_paths(args)
    options = replace(_check_options(args), dvh_workers=default_workers())
    with _Progress() as progress:
        run = check(args.path, options=options, progress=progress)
    return _write_reports(run, args)


def cmd_demo(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from contourqa.check import check
    from contourqa.demo import demo_case_path
    from contourqa.parallel import default_workers
    from contourqa.report import FILE_FORMATTERS

    case_dir = demo_case_path()
    check_output_path(args.out, option="--out", directory=True)
    _check_report_paths(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for formatter in FILE_FORMATTERS:
        path = getattr(args, formatter.name, None) or str(out / f"report.{formatter.name}")
        setattr(args, formatter.name, path)
        written.append(path)
    print(f"contourqa demo: checking the bundled spine phantom in {case_dir}")
    from contourqa.demo import DEMO_CLINICAL_INPUTS

    stated = {dest: DEMO_CLINICAL_INPUTS[kw] for dest, kw in CHECK_OPTION_KEYWORDS.items()
              if kw in DEMO_CLINICAL_INPUTS and getattr(args, dest) is None}
    print("  the demo patient's clinical inputs (not in DICOM): " + ", ".join(
        f"{dest}={value}" for dest, value in stated.items()))
    options = replace(_check_options(argparse.Namespace(**{**vars(args), **stated})),
                      dvh_workers=default_workers())
    with _Progress() as progress:
        run = check(case_dir, options=options, progress=progress)
    code = _write_reports(run, args)
    print("Reports written: " + ", ".join(str(Path(p).resolve()) for p in written))
    return code


def cmd_dvh(args: argparse.Namespace) -> int:
    import json

    from contourqa.dvh import DEFAULT_METRICS, dvh_report
    from contourqa.io import read_dose, read_structure_set
    from contourqa.parallel import default_workers

    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}.")
    check_output_path(args.json, option="--json")
    workers = args.jobs or default_workers()
    ss = read_structure_set(args.structures, workers=workers)
    dose = read_dose(args.dose, prescription_gy=args.prescription)
    try:
        result = dvh_report(ss, dose, roi_names=args.roi or None,
                            metrics=_metrics(args.metrics) or DEFAULT_METRICS,
                            prescription_gy=args.prescription, workers=workers)
    except KeyError as exc:  # unknown ROI name: the message lists the ROIs
        raise UsageError(str(exc.args[0])) from exc
    text = json.dumps(result.to_json()["rois"], indent=2, allow_nan=False) + "\n"
    if args.json and args.json != "-":
        Path(args.json).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    # What reading the structure set found about the ROIs reported (a contour dropped
    # for a corrupt coordinate changes their numbers), then what the DVH found.
    wanted = set(args.roi or [r.name for r in ss.rois])
    for f in [p for p in ss.problems if p.structure in wanted] + list(result.problems):
        _say(f"{f.status.value}: {f.structure or ''} {f.message}")
    if args.verbose:
        _say("conventions: " + "; ".join(f"{k}={v}" for k, v in result.conventions.items()))
    global _fast_exit
    _fast_exit = True
    return EXIT_OK


def cmd_sectors(args: argparse.Namespace) -> int:
    import json

    from contourqa.case import load_case
    from contourqa.io.discovery import discover
    from contourqa.options import build_sector_options
    from contourqa.sectors import analyse_sectors
    from contourqa.structures import assign_roles, load_mapping

    try:
        opts = build_sector_options(level=args.level, profile=args.profile)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    check_output_path(args.json, option="--json")
    check_output_path(args.png, option="--png", directory=True)
    _, cases = discover(Path(args.path))
    if not cases:
        raise UsageError(f"{args.path}: no RT Plan, RT Structure Set or RT Dose found; "
                         "nothing to analyse.")
    mapping = load_mapping(args.roles) if args.roles else None
    out = []
    for n, files in enumerate(cases):
        case = load_case(files)
        roles = assign_roles(case.structure_set.rois if case.structure_set else (), mapping=mapping)
        res = analyse_sectors(case, roles, options=opts)
        out.append({"case": files.name, "sectors": res.to_json(),
                    "findings": [f.to_json() for f in res.findings]})
        if args.png:
            from contourqa.sector_figure import sector_png

            sector_png(res, Path(args.png) / f"case{n + 1}",
                       ct=case.image.pixels if case.image is not None else None)
        for f in res.findings:
            _say(f"{f.status.value}: {f.code}: {f.message}")
    text = json.dumps(out, indent=2, allow_nan=False) + "\n"
    if args.json and args.json != "-":
        Path(args.json).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    from contourqa.inspect import describe, inspect_path
    from contourqa.report.text import printable

    check_output_path(args.json, option="--json")
    summary = inspect_path(args.path)
    if args.json:
        import json

        text = json.dumps(summary.to_json(), indent=2) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            Path(args.json).write_text(text, encoding="utf-8")
    if args.json != "-":
        sys.stdout.write(printable(describe(summary), keep_newlines=True))
    if not summary.cases:
        print(f"contourqa: {args.path}: no RT Plan, RT Structure Set or RT Dose found; "
              "nothing to check.", file=sys.stderr)
        return EXIT_INPUT
    return EXIT_OK


def cmd_rules(args: argparse.Namespace) -> int:
    import json

    from contourqa.rules import all_rules
    from contourqa.rules.listing import describe_data_findings, describe_rules, rule_records

    rules = all_rules(constraint_files=args.constraint_file)
    if args.family:
        rules = tuple(r for r in rules if r.family == args.family)
    if args.json:
        text = json.dumps(rule_records(rules), indent=2, allow_nan=False) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
            return EXIT_OK
        Path(args.json).write_text(text, encoding="utf-8")
    sys.stdout.write(describe_rules(rules))
    if not args.family:
        sys.stdout.write(describe_data_findings())
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from contourqa.audit import TextProgress, run_audit

    sources = [s for s in (args.source, args.orthanc and "orthanc+" + args.orthanc,
                           args.dicomweb and "dicomweb+" + args.dicomweb) if s]
    if len(sources) != 1:
        raise UsageError("name exactly one source: a folder, --orthanc URL or --dicomweb URL")
    if "://" not in args.db:
        check_output_path(args.db, option="--db")
    result = run_audit(sources[0], args.db, jobs=args.jobs, options=_check_options(args),
                       scheduler=args.scheduler, force=args.force,
                       progress=None if args.quiet else TextProgress(sys.stderr))
    # result.db_url: the database with its password replaced by ***
    print(f"contourqa audit: {result.n_cases} cases in {result.db_url}: "
          f"{result.n_checked} checked, {result.n_skipped} unchanged, {result.n_errors} errors, "
          f"{result.elapsed_s:.1f} s"
          + (" (interrupted; run again to resume)" if result.interrupted else ""),
          file=sys.stderr)
    if result.interrupted:
        return 130
    if result.n_unchecked:
        reason = " ".join(str(result.first_unchecked_reason).split())
        print(f"contourqa audit: {result.n_unchecked} case(s) could not be checked; first: "
              f"{reason[:300]}", file=sys.stderr)
        return EXIT_INPUT
    return EXIT_OK


def cmd_audit_report(args: argparse.Namespace) -> int:
    from contourqa.audit import write_audit_report

    if not (args.html or args.csv):
        raise UsageError("audit-report: name --html FILE and/or --csv FILE")
    if "://" not in args.db and not Path(args.db).is_file():
        raise UsageError(f"{args.db}: no such audit database")  # a path: no password
    check_output_path(args.html, option="--html")
    check_output_path(args.csv, option="--csv")
    s = write_audit_report(args.db, html_path=args.html, csv_path=args.csv, n_worst=args.worst)
    print(f"contourqa audit-report: {s.n_cases} cases ({s.n_error} with errors) -> "
          + ", ".join(p for p in (args.html, args.csv) if p), file=sys.stderr)
    return EXIT_OK


def listen_config(args: argparse.Namespace) -> NodeConfig:
    """The :class:`~contourqa.node.NodeConfig` of ``contourqa listen``'s arguments.

    A limit flag left out takes NodeConfig's documented default."""
    from contourqa.node import AllowedPeer, Destination, NodeConfig, parse_size

    limits: dict[str, Any] = {k: v for k, v in (
        ("max_object_bytes", parse_size(args.max_object) if args.max_object else None),
        ("max_associations", args.max_associations),
        ("max_per_address", args.max_per_address),
        ("acse_timeout_s", args.acse_timeout),
        ("network_timeout_s", args.network_timeout)) if v is not None}
    return NodeConfig(
        storage_dir=Path(args.storage), ae_title=args.ae_title, host=args.host, port=args.port,
        allowed=tuple(AllowedPeer.parse(a) for a in (_metrics(args.allow) or ())),
        tls_cert=args.tls_cert, tls_key=args.tls_key, tls_ca=args.tls_ca,
        max_storage_bytes=parse_size(args.max_storage) if args.max_storage else None,
        idle_s=args.idle, report_formats=_metrics(args.formats) or (), jobs=args.jobs,
        audit_db=args.db, check_options=_check_options(args),
        destination=Destination.parse(args.send_to, document=args.send_as)
        if args.send_to else None, accept_deflated=args.accept_deflated, **limits)


def cmd_listen(args: argparse.Namespace) -> int:
    from contourqa.node import serve

    check_output_path(args.storage, option="--storage", directory=True)
    require("pynetdicom", extra="node", feature="contourqa listen")
    config = listen_config(args)
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    node_log = logging.getLogger("contourqa.node")
    node_log.addHandler(handler)
    node_log.setLevel(logging.INFO)
    return serve(config, out=sys.stdout)


class _VersionAction(argparse.Action):
    """--version, resolved only when asked (importlib.metadata costs ~20 ms per start)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        from contourqa import __version__

        print(f"contourqa {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="contourqa", description="Quality assurance of spine SBRT plans (DICOM-RT).")
    parser.add_argument("--version", action=_VersionAction, nargs=0,
                        help="show the version and exit")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, *, reports: bool = True) -> None:
        """Check options; ``reports``: also the report files (not for commands that
        keep their results elsewhere: the audit database, the node's storage)."""
        if reports:
            report_options(p)
        check_options(p)

    def report_options(p: argparse.ArgumentParser) -> None:
        o = p.add_argument_group("reports (any combination; - writes to standard output)")
        o.add_argument("--json", metavar="FILE", help="the canonical JSON record")
        o.add_argument("--html", metavar="FILE", help="self-contained HTML page with pictures")
        o.add_argument("--pdf", metavar="FILE", help="PDF of the same content, for the chart")
        o.add_argument("--csv", metavar="FILE", help="tidy CSV: one row per case, check and ROI")
        o.add_argument("--sarif", metavar="FILE", help="SARIF 2.1.0 log for CI tooling")

    def check_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--prescription", type=float, metavar="GY",
                       help="prescription dose in Gy (overrides the plan; scales RELATIVE doses)")
        p.add_argument("--roles", metavar="TOML", help="ROI name -> role mapping file")
        p.add_argument("--metrics", metavar="LIST", help="DVH metrics, comma-separated")
        p.add_argument("--level", metavar="LEVEL",
                       help="level of the treated vertebra, e.g. T10 (when ROIs do not say)")
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
        g.add_argument("--assume-prior-cord-max", action="store_true",
                       help="for a --prior course without cord_max= or --prior-dose, assume "
                            "a conservative cord maximum (a multiple of its prescription, "
                            "labelled; see rules/reirradiation.toml); without this the cumulative "
                            "re-irradiation checks are not evaluated")
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
        r = p.add_argument_group("contouring rules (Cox 2012 upfront, Redmond 2017 post-operative)")
        r.add_argument("--mode", default="auto", choices=["upfront", "postop", "auto"],
                       help="consensus to check against; auto looks for surgical evidence "
                            "(default: %(default)s)")
        r.add_argument("--profile", metavar="TOML", help="institutional rule profile")
        r.add_argument("--waiver", action="append", default=[], metavar="CODE[@ROI]=REASON",
                       help="waive a rule with a written reason (repeatable)")
        r.add_argument("--waivers", metavar="TOML", help="file of waivers with reasons")
        r.add_argument("--variant", action="append", default=[], metavar="NAME",
                       help="optional rule variant, e.g. isrc_p1_3mm, redmond_table2")
        r.add_argument("--asia", choices=list("ABCDE"), help="ASIA impairment grade")
        r.add_argument("--bilsky", choices=["0", "1a", "1b", "1c", "2", "3"],
                       help="post-operative Bilsky ESCC grade")
        r.add_argument("--histology", metavar="TEXT", help="primary histology")
        r.add_argument("--prior-rt", action=argparse.BooleanOptionalAction, default=None,
                       help="prior radiotherapy overlapping the target")
        v = p.add_argument_group("vertebral compression fracture risk factors")
        v.add_argument("--age", type=float, metavar="YEARS")
        v.add_argument("--sins", type=int, metavar="SCORE", help="SINS total")
        v.add_argument("--vb-involved", type=float, metavar="PERCENT",
                       help="percent of the vertebral body involved by tumour")
        for flag in ("--lytic", "--baseline-vcf", "--deformity"):
            # --no-<factor> states its absence; unstated stays unknown (VCF not evaluated).
            v.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)

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
    p.add_argument("--jobs", "-j", type=int, metavar="N",
                   help="processes sharing the ROIs (default: all cores; results do not change)")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="also state the DVH conventions on standard error (`check --json` "
                        "always carries them as dvh_conventions)")
    p.set_defaults(func=cmd_dvh)

    p = sub.add_parser("sectors", help="ISRC sector involvement of the GTV per vertebra")
    p.add_argument("path", metavar="CASE")
    p.add_argument("--level", metavar="LEVEL", help="level of the treated vertebra, e.g. T10")
    p.add_argument("--json", metavar="FILE", help="write the sectors section (- for stdout)")
    p.add_argument("--png", metavar="DIR", help="one picture per involved level")
    p.add_argument("--roles", metavar="TOML", help="ROI name -> role mapping file")
    p.add_argument("--profile", metavar="TOML",
                   help="institutional profile: its [sectors] table (sector options and "
                        "partition landmarks)")
    p.set_defaults(func=cmd_sectors)

    p = sub.add_parser("inspect", help="describe the cases, series, ROIs and problems under PATH")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--json", metavar="FILE", help="also write the description as JSON (- for stdout)")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("rules", help="list every rule: code, name, family, severity, citation, "
                                     "thresholds")
    # contourqa.rules.model.FAMILIES (not imported here: it loads the rules; a test
    # keeps the two equal)
    p.add_argument("--family", choices=["upfront", "postop", "margins", "integrity", "dose",
                                        "plan_quality", "epidural", "conus", "fusion",
                                        "analysis"],
                   help="only this family")
    p.add_argument("--constraint-file", action="append", default=[], metavar="TOML",
                   help="also list the rules of an institutional constraint set (repeatable)")
    p.add_argument("--json", metavar="FILE", help="also write the list as JSON (- for stdout)")
    p.set_defaults(func=cmd_rules)

    p = sub.add_parser("audit", help="check every case of an archive into a results database")
    p.add_argument("source", nargs="?", metavar="FOLDER", help="archive folder (any layout)")
    p.add_argument("--db", required=True, metavar="FILE|URL",
                   help="SQLite file (created if absent) or postgresql://user@host/db")
    p.add_argument("--orthanc", metavar="URL", help="audit an Orthanc server (REST root)")
    p.add_argument("--dicomweb", metavar="URL", help="audit a DICOMweb server (its root)")
    p.add_argument("--jobs", "-j", type=int, metavar="N", help="worker processes (default: all cores)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run on a dask.distributed cluster")
    p.add_argument("--force", action="store_true", help="check again cases already stored")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress line")
    common(p, reports=False)
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("audit-report", help="summarise an audit database as HTML and CSV")
    p.add_argument("db", metavar="DB", help="SQLite file or postgresql:// URL")
    p.add_argument("--html", metavar="FILE", help="HTML page with rates, plots and worst cases")
    p.add_argument("--csv", metavar="FILE", help="one row per case")
    p.add_argument("--worst", type=int, default=20, metavar="N", help="worst cases listed")
    p.set_defaults(func=cmd_audit_report)

    p = sub.add_parser("listen", help="DICOM node: check every plan sent to it")
    n = p.add_argument_group("DICOM node (JSON log lines on standard error)")
    n.add_argument("--ae-title", default="CONTOURQA", help="own AE title (default: %(default)s)")
    n.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    n.add_argument("--port", type=int, default=11112,
                   help="TCP port; 0 picks a free one and prints it (default: %(default)s)")
    n.add_argument("--storage", required=True, metavar="DIR", help="received objects and reports")
    n.add_argument("--allow", metavar="AE[@IP],...",
                   help="calling AE titles allowed (optionally bound to an address); default any")
    n.add_argument("--tls-cert", metavar="PEM", help="server certificate: accept TLS only")
    n.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")
    n.add_argument("--tls-ca", metavar="PEM", help="require client certificates from this CA")
    n.add_argument("--max-storage", metavar="SIZE", help="refuse objects beyond, e.g. 20G")
    # Defaults of the limits: NodeConfig's (contourqa/node/config.py), applied when a
    # flag is absent; the help repeats them.
    n.add_argument("--max-object", metavar="SIZE",
                   help="abort an association whose object grows past this as it arrives "
                        "(default: 1G)")
    n.add_argument("--max-associations", type=int, metavar="N",
                   help="connections open at once, in all (default: 32)")
    n.add_argument("--max-per-address", type=int, metavar="N",
                   help="connections open at once from one IP address; more are closed "
                        "on accept (default: 8)")
    n.add_argument("--acse-timeout", type=float, metavar="SECONDS",
                   help="close a connection that sends no association request within this "
                        "(default: 10)")
    n.add_argument("--network-timeout", type=float, metavar="SECONDS",
                   help="abort an association silent this long (default: 30)")
    n.add_argument("--accept-deflated", action="store_true",
                   help="also accept the deflated transfer syntaxes (off: a small deflated "
                        "object can inflate to gigabytes)")
    n.add_argument("--idle", type=float, default=60.0, metavar="SECONDS",
                   help="check an incomplete study this long after its last object "
                        "(default: %(default)s)")
    n.add_argument("--formats", default="json,html,pdf", metavar="LIST",
                   help="reports written next to each case (default: %(default)s)")
    n.add_argument("--jobs", "-j", type=int, default=1, metavar="N", help="checks at once")
    n.add_argument("--db", metavar="FILE|URL", help="also store results in this audit database")
    n.add_argument("--send-to", metavar="AE@HOST:PORT",
                   help="send the result back as a DICOM document to this node")
    n.add_argument("--send-as", choices=["pdf", "sr"], default="pdf",
                   help="Encapsulated PDF of the report or an SR of the failed checks")
    common(p, reports=False)
    p.set_defaults(func=cmd_listen)
    return parser


# Set by commands that end with every file written and closed and no child process
# left (dvh): the console script then exits without the interpreter's teardown,
# which takes about 15 ms with numpy loaded (5% of a whole-plan DVH run).
_fast_exit = False


def run() -> None:
    """Console-script entry point: :func:`main`, then exit with its code."""
    code = main()
    if _fast_exit:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:  # a reader that went away (| head): nothing left to tell it
            pass
        os._exit(code)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    # One BLAS thread unless the user says otherwise: contourqa's matrices are tiny, and
    # OpenBLAS's idle threads spin on every core, stealing it from the DVH workers.
    # Set before numpy is imported (nothing above imports it).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
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
        _say(f"contourqa: error: {exc}")
        return EXIT_INPUT
    except Exception as exc:  # noqa: BLE001
        # A defect no reader or check turned into a finding: one line, exit 2, never a
        # traceback (--debug shows it). The check pipeline records such defects per
        # case; this catches what happens outside a case (discovery, report writing).
        if args.debug:
            raise
        _say(f"contourqa: error: unexpected {type(exc).__name__}: {str(exc)[:500]} "
             "(a contourqa defect met on this input; run with --debug for the traceback "
             "and please report it)")
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("contourqa: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    run()
