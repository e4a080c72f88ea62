"""The README's list of `contourqa check` options, made from the argument parser.

    python scripts/readme_options.py           # exit 1 (and say so) when the README is stale
    python scripts/readme_options.py --write   # rewrite the block in README.md

The block sits between ``<!-- check-options:begin -->`` and ``<!-- check-options:end -->``;
``tests/test_readme.py`` fails when it differs from ``contourqa check --help``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
BEGIN, END = "<!-- check-options:begin -->", "<!-- check-options:end -->"


def check_parser() -> argparse.ArgumentParser:
    sys.path.insert(0, str(REPO))
    from contourqa.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["check"]


def options_block() -> str:
    """A Markdown table: group, option (with its metavar or choices), help."""
    parser = check_parser()
    rows = ["| group | option | what |", "| --- | --- | --- |"]
    for group in parser._action_groups:
        for action in group._group_actions:
            if not action.option_strings or action.help == argparse.SUPPRESS:
                continue
            if isinstance(action, argparse._HelpAction):
                continue
            names = ", ".join(action.option_strings)
            if action.nargs != 0:
                if action.choices:
                    arg = "{" + ",".join(str(c) for c in action.choices) + "}"
                else:
                    arg = action.metavar or action.dest.upper()
                names += f" {arg}"
            text = " ".join((action.help or "").replace("%(default)s",
                                                         str(action.default)).split())
            title = "general" if group.title in ("options", "optional arguments") else group.title
            title = (title or "").split(" (")[0]
            rows.append(f"| {title} | `{names}` | {text.replace('|', '/')} |")
    return "\n".join(rows)


def readme_block(text: str) -> str:
    start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[start:stop].strip("\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="rewrite the README's block")
    args = ap.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    want = options_block()
    if readme_block(text) == want:
        return 0
    if args.write:
        start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
        README.write_text(text[:start] + "\n" + want + "\n" + text[stop:], encoding="utf-8")
        print(f"{README}: check options rewritten")
        return 0
    print(f"{README}: the list of `contourqa check` options is stale; run "
          "python scripts/readme_options.py --write", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
