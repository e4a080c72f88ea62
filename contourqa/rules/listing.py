"""What ``contourqa rules`` prints: every rule with its code, name, family,
severity, citation and thresholds (a list a physicist can read before trusting the
tool), as JSON-ready records or plain text."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from typing import Any

from contourqa.rules.dose import GAP_PREFIX
from contourqa.rules.model import Mode, Rule

__all__ = ["coverage_lines", "describe_data_findings", "describe_rules", "rule_records"]

#: Fraction numbers of the coverage summary (the knowledge base's 1-5, KB 3).
_COVERAGE_FRACTIONS = (1, 2, 3, 4, 5)

_META = ("source", "status", "variants", "name", "severity")  # name, severity: analysis.toml


def _record(rule: Rule) -> dict[str, Any]:
    data = rule.data()
    return {
        "code": rule.code, "name": rule.name, "family": rule.family,
        "severity": "not evaluated by design" if rule.code.startswith(GAP_PREFIX)
        else "report" if rule.severity.value == "pass" else rule.severity.value,
        "citation": rule.citation,
        "modes": sorted(m.value for m in rule.modes) if rule.family != "dose"
        else [Mode.UPFRONT.value, Mode.POSTOP.value],
        "spine_only": rule.spine_only,
        "source": data.get("source"), "kb_status": data.get("status"),
        "thresholds": {k: v for k, v in data.items() if k not in _META},
        "variants": data.get("variants", {}),
    }


def rule_records(rules: Sequence[Rule]) -> list[dict[str, Any]]:
    """One JSON-ready record per rule (code, name, family, severity, citation, modes,
    spine_only, source, kb_status, thresholds, variants)."""
    return [_record(r) for r in rules]


def _value(v: Any) -> str:
    if isinstance(v, dict) and {"metric", "comparison", "limit"} <= set(v):
        # a constraint: "Dpoint <= 17 Gy (2 fx; spinal_cord, cord_prv; status C)"
        fx = ", ".join(str(n) for n in v.get("fractions", ()))
        prior = f"; prior RT {v['prior_rt']}" if v.get("prior_rt") else ""
        return (f"{v['metric']} {v['comparison']} {_value(v['limit'])} {v.get('unit', '')} "
                f"({fx} fx; {', '.join(v.get('roles', ()))}{prior}; status "
                f"{v.get('status', '?')})")
    if isinstance(v, list) and v and all(isinstance(d, dict) and "label" in d for d in v):
        return "; ".join(f"{d['label']} [{d.get('status', '?')}]" for d in v)
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return str(v)


def coverage_lines(rules: Sequence[Rule]) -> list[str]:
    """Per organ at risk (role), which constraint sets give it a value for 1 to 5
    fractions, and where the knowledge base has none (a ``dose.gap`` rule).

    One line per role, in :class:`~contourqa.structures.Role` order, e.g.
    ``"esophagus: 1 fx tg101*, bmc2025, rtog0631 (U); 2 fx bmc2025*; ...; 4 fx GAP; ...
    [dose.gap.esophagus]"``; ``*`` marks a set's constraints in ``--constraints auto``,
    ``(U)`` a set whose only value there is unconfirmed.
    """
    from contourqa.structures import Role

    cells: dict[str, dict[int, dict[str, str]]] = {}  # role -> n -> set -> label
    gaps: dict[str, list[str]] = {}
    for rule in rules:
        data = rule.data()
        if rule.code.startswith(GAP_PREFIX):
            for role in data.get("roles", ()):
                gaps.setdefault(role, []).append(rule.code)
                for n in data.get("fractions", ()):
                    cells.setdefault(role, {}).setdefault(n, {})["GAP"] = "GAP"
            continue
        if rule.family != "dose" or rule.thresholds is None:
            continue
        set_name = rule.code.split(".")[1]
        for c in data.values():
            if not isinstance(c, dict) or "roles" not in c or "fractions" not in c:
                continue
            label = set_name + ("*" if c.get("auto") else "") + (
                " (U)" if c.get("status") == "U" else "")
            for role in c["roles"]:
                for n in c["fractions"]:
                    got = cells.setdefault(role, {}).setdefault(n, {})
                    # per set: automatic beats named only, a confirmed value beats U
                    old = got.get(set_name)
                    if old is None or (old.endswith(" (U)") and not label.endswith(" (U)")) \
                            or (label.endswith("*") and not old.endswith("*")):
                        got[set_name] = label
    order = {r.value: i for i, r in enumerate(Role)}
    out = []
    for role in sorted(cells, key=lambda r: order.get(r, len(order))):
        if role in ("gtv", "ctv", "itv", "ptv"):
            continue
        parts = []
        for n in _COVERAGE_FRACTIONS:
            labels = sorted(cells[role].get(n, {}).values(),
                            key=lambda t: (not t.endswith("*"), t)) or ["none"]
            parts.append(f"{n} fx " + ", ".join(labels))
        tail = f" [{', '.join(gaps[role])}]" if role in gaps else ""
        out.append(f"{role}: " + "; ".join(parts) + tail)
    return out


def _pack(parts: list[str], *, width: int) -> list[str]:
    """Lines of ``parts`` joined by "; ", broken between parts only."""
    lines = [parts[0]]
    for part in parts[1:]:
        if len(lines[-1]) + 2 + len(part) > width:
            lines[-1] += ";"
            lines.append("    " + part)
        else:
            lines[-1] += "; " + part
    return lines


def describe_rules(rules: Sequence[Rule], *, width: int = 100) -> str:
    """Plain text: per family, each rule's code, severity, name, citation and
    thresholds (one per line, with the knowledge-base status), then the constraint
    coverage of each organ at risk for 1 to 5 fractions (:func:`coverage_lines`)."""
    out: list[str] = []
    family = None
    for rec in rule_records(rules):
        if rec["family"] != family:
            family = rec["family"]
            out.append(f"\n== {family} ==")
        scope = "" if rec["family"] == "dose" else f"  [{'/'.join(rec['modes'])}" + \
            (", spine targets" if rec["spine_only"] else "") + "]"
        out.append(f"{rec['code']}  ({rec['severity']})  {rec['name']}{scope}")
        out += textwrap.wrap(f"citation: {rec['citation']}", width=width,
                             initial_indent="    ", subsequent_indent="      ")
        if rec["source"] and rec["source"] != rec["citation"]:
            out += textwrap.wrap(f"source: {rec['source']} (status {rec['kb_status']})",
                                 width=width, initial_indent="    ",
                                 subsequent_indent="      ")
        for key, value in rec["thresholds"].items():
            out += textwrap.wrap(f"{key} = {_value(value)}", width=width,
                                 initial_indent="    ", subsequent_indent="      ")
        for name, table in rec["variants"].items():
            out += textwrap.wrap(f"variant {name}: {_value(table)}", width=width,
                                 initial_indent="    ", subsequent_indent="      ")
    coverage = coverage_lines(rules)
    if coverage:
        out.append("\n== constraint coverage by fraction number (* = --constraints auto; GAP = "
                   "not evaluated by design) ==")
        for line in coverage:
            out += _pack(line.split("; "), width=width)
    return "\n".join(out).lstrip("\n") + "\n"


def describe_data_findings(*, width: int = 100) -> str:
    """Plain text: the families of findings about the input data, which are not rules
    (``contourqa/rules/data/analysis.toml`` ``[data_findings]``)."""
    from contourqa.rules.analysis import data_finding_families

    out = ["", "== findings about the input data (not rules; they make a case incomplete) =="]
    for prefix, what in data_finding_families().items():
        out += textwrap.wrap(f"{prefix}.*  {what}", width=width, subsequent_indent="    ")
    return "\n".join(out) + "\n"
