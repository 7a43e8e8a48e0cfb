"""Renderers for a PolicyReport: text, JSON and SARIF 2.1.0, each data → str.

Renderers never print and never colour; the CLI decides where the text goes. File
locations are shown relative to `root` when given (the workspace), which is also what
SARIF needs for its artifact URIs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from docklock import __version__
from docklock.errors import Location
from docklock.policy.results import (
    ControlStatus,
    FrameworkView,
    PolicyReport,
    RuleInfo,
    RuleResult,
    Status,
)

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
INFORMATION_URI = "https://docklock.io/docs/policy"
# GitHub code scanning reads `security-severity` (0.1-10) to rank results.
_SECURITY_SEVERITY = {"low": "3.0", "medium": "5.5", "high": "8.0", "critical": "9.5"}


def _where(location: Location | None, root: Path | None) -> str:
    if location is None:
        return ""
    return str(location.relative_to(root) if root is not None else location)


def render_json(report: PolicyReport) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n"


def render_text(report: PolicyReport, *, root: Path | None = None, quiet: bool = False) -> str:
    """Per rule, one line per resource with its status; then the summary line.

    `quiet` leaves out PASS and SKIP lines (rules still show their counts).
    """
    lines: list[str] = []
    by_rule: dict[str, list[RuleResult]] = {r.id: [] for r in report.rules}
    for res in report.results:
        by_rule[res.rule].append(res)
    for info in report.rules:
        results = by_rule[info.id]
        lines.append(_rule_header(info, results))
        for res in results:
            if quiet and res.status in (Status.PASS, Status.SKIP):
                continue
            where = _where(res.location, root)
            lines.append(f"  {res.status.value:<8} {res.address}"
                         + (f"  ({where})" if where else ""))
            if res.status in (Status.FAIL, Status.WARN, Status.EXCEPTED):
                lines.append(f"           {res.message}")
                if res.detail:
                    lines.append(f"           at {res.detail}")
            exc = res.exception
            if exc is not None:
                state = "EXPIRED" if exc.expired else "accepted"
                until = f" until {exc.expires.isoformat()}" if exc.expires else " (no expiry)"
                if exc.expired and exc.expires:
                    until = f" on {exc.expires.isoformat()}"
                granted = f" (granted by {exc.source})" if exc.source else ""
                lines.append(f"           exception {state}{until}: {exc.reason}{granted}")
    if not report.rules:
        lines.append("no policy rules are active (enable packs in docklock.yaml "
                     "spec.policies, e.g. [builtin:baseline], or add kind: Policy documents)")
    lines.append("")
    lines.append(report.summary.line())
    lines.append(f"policy digest {report.digest}")
    return "\n".join(lines) + "\n"


def _rule_header(info: RuleInfo, results: list[RuleResult]) -> str:
    counts = dict.fromkeys(Status, 0)
    for res in results:
        counts[res.status] += 1
    shown = ", ".join(f"{n} {s.value.lower()}" for s, n in counts.items() if n)
    controls = f"  [{', '.join(info.controls)}]" if info.controls else ""
    title = f" {info.title}" if info.title != info.id else ""
    return (f"{info.id} ({info.severity}, {info.enforcement}){title}{controls}"
            f" — {shown or 'no matching resources'}")


def render_framework(view: FrameworkView) -> str:
    """Which controls of one framework are evidenced, which fail, which no check covers."""
    counts = ", ".join(f"{view.count(s)} {s.value}" for s in ControlStatus)
    lines = [f"{view.title} ({view.framework}) — {len(view.controls)} controls: {counts}"]
    width = max((len(c.id) for c in view.controls), default=0)
    for c in view.controls:
        label = {ControlStatus.PASS: "EVIDENCED", ControlStatus.FAIL: "FAIL",
                 ControlStatus.WARN: "WARN", ControlStatus.NOT_EVALUATED: "NOT EVALUATED",
                 ControlStatus.NOT_COVERED: "NOT COVERED"}[c.status]
        lines.append(f"  {c.id:<{width}}  {label:<13}  {c.title}")
        if c.checks:
            tally = f"{c.passed} passed, {c.failed} failed, {c.warned} warned, " \
                    f"{c.excepted} excepted"
            lines.append(f"  {'':<{width}}  {'':<13}  checks: {', '.join(c.checks)} ({tally})")
        for entry in c.failing[:20]:
            lines.append(f"  {'':<{width}}  {'':<13}  failing: {entry}")
        if len(c.failing) > 20:
            lines.append(f"  {'':<{width}}  {'':<13}  ... and {len(c.failing) - 20} more")
    return "\n".join(lines) + "\n"


def render_sarif(report: PolicyReport, *, root: Path | None = None) -> str:
    """SARIF 2.1.0: every active rule as a reportingDescriptor; FAIL/WARN/EXCEPTED results.

    Excepted results carry an external suppression with the exception's justification,
    so code-scanning UIs show them as dismissed rather than dropping them.
    """
    index = {info.id: i for i, info in enumerate(report.rules)}
    rules = [_sarif_rule(info) for info in report.rules]
    results: list[dict[str, Any]] = []
    for res in report.results:
        if res.status not in (Status.FAIL, Status.WARN, Status.EXCEPTED):
            continue
        info = report.rules[index[res.rule]]
        level = "error" if info.enforcement == "deny" else "warning"
        text = f"{res.address}: {res.message}"
        if res.detail:
            text += f" ({res.detail})"
        if res.exception is not None and res.exception.expired:
            text += f" — exception expired {res.exception.expires}"
        entry: dict[str, Any] = {
            "ruleId": res.rule, "ruleIndex": index[res.rule], "level": level,
            "message": {"text": text},
            "locations": [_sarif_location(res, root)],
            "properties": {"address": res.address, "status": res.status.value,
                           "controls": list(info.controls)},
        }
        if res.status is Status.EXCEPTED and res.exception is not None:
            entry["suppressions"] = [{"kind": "external", "status": "accepted",
                                      "justification": res.exception.reason}]
        results.append(entry)
    sarif = {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {"driver": {"name": "docklock", "version": __version__,
                                "informationUri": INFORMATION_URI, "rules": rules}},
            "results": results,
            "properties": {"policyDigest": report.digest,
                           "summary": report.summary.to_dict()},
        }],
    }
    return json.dumps(sarif, indent=2, sort_keys=True) + "\n"


def _sarif_rule(info: RuleInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.id,
        "shortDescription": {"text": info.title},
        "fullDescription": {"text": info.message or info.title},
        "defaultConfiguration": {"level": "error" if info.enforcement == "deny"
                                 else "warning"},
        "properties": {"tags": ["security", *info.controls],
                       "security-severity": _SECURITY_SEVERITY[info.severity],
                       "source": info.source},
    }


def _sarif_location(res: RuleResult, root: Path | None) -> dict[str, Any]:
    location: dict[str, Any] = {"logicalLocations": [
        {"fullyQualifiedName": res.address, "kind": "resource"}]}
    loc = res.location
    if loc is not None and loc.file:
        rel = loc.relative_to(root) if root is not None else loc
        path = Path(rel.file)
        uri = path.as_uri() if path.is_absolute() else quote(path.as_posix())
        physical: dict[str, Any] = {"artifactLocation": {"uri": uri}}
        if rel.line > 0:
            physical["region"] = {"startLine": rel.line, "startColumn": max(rel.column, 1)}
        location["physicalLocation"] = physical
    return location
