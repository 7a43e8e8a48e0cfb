"""`docklock policy check`: BISO policies and compliance packs, reported per resource.

The CLI layer only: docklock.engine.policy.check (load → evaluate) → render. Exit 0 when
no deny rule failed (warnings allowed), 1 when one did or the policies are malformed,
like `conftest test`.
"""

from __future__ import annotations

import argparse

from docklock.cli._common import Output, command_group, context_of
from docklock.errors import EXIT_ERROR, EXIT_OK, PolicyError

# docklock.policy.Status values → colour (by value: the policy engine loads lazily).
_STATUS_COLOR = {"PASS": "green", "FAIL": "red", "WARN": "yellow", "EXCEPTED": "cyan",
                 "SKIP": "dim"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "policy", parents=[common], help="BISO policies and compliance packs",
        description="Check the workspace against its policies: the built-in packs named "
                    "in docklock.yaml spec.policies and every kind: Policy document.")
    actions = command_group(p, dest="policy_command", metavar="ACTION")
    check = actions.add_parser(
        "check", parents=[common], help="check every resource against the active rules",
        description="Show PASS/FAIL/WARN/SKIP/EXCEPTED per rule and resource, a summary, "
                    "and with --framework which controls of a compliance framework are "
                    "evidenced and which fail. Exit 1 when a deny rule fails.")
    check.add_argument("--format", choices=("text", "json", "sarif"), default="text",
                       help="output format (json: the stable report with its digest; "
                            "sarif: SARIF 2.1.0 for code-scanning tools)")
    check.add_argument("--json", action="store_true", help="same as --format json")
    check.add_argument("--framework", metavar="NAME",
                       help="show one framework's controls: soc2, iso27001, hipaa, "
                            "cis-docker, or the prefix of controls in your own rules")
    check.add_argument("-q", "--quiet", action="store_true",
                       help="text: leave out PASS and SKIP lines")
    check.set_defaults(handler=cmd_policy_check)


def cmd_policy_check(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.policy import check
    from docklock.policy import render_framework, render_sarif, render_text

    ctx = context_of(args)
    paths = ctx.paths
    report = check(ctx)
    fmt = "json" if args.json else args.format
    view = None
    if args.framework:
        try:
            view = report.framework(args.framework)
        except KeyError:
            known = ", ".join(sorted(report.frameworks))
            raise PolicyError(f"no compliance framework {args.framework!r} in this report",
                              hint=f"frameworks: {known}") from None
    if fmt == "json":
        out.json(view.to_dict() | {"digest": report.digest,
                                   "summary": report.summary.to_dict()}
                 if view is not None else report.to_dict())
    elif fmt == "sarif":
        out.line(render_sarif(report, root=paths.root).rstrip("\n"))
    elif view is not None:
        out.line(render_framework(view).rstrip("\n"))
        out.line()
        out.line(report.summary.line())
        out.line(f"policy digest {report.digest}")
    else:
        for line in render_text(report, root=paths.root, quiet=args.quiet).splitlines():
            out.line(_paint(line, out))
    if report.deny_failures:
        n = len(report.deny_failures)
        out.error(f"error: {n} deny-enforced polic{'y check' if n == 1 else 'y checks'} "
                  "failed; nothing may be applied until they pass or are excepted")
        return EXIT_ERROR
    return EXIT_OK


def _paint(line: str, out: Output) -> str:
    stripped = line.lstrip()
    for status, color in _STATUS_COLOR.items():
        if stripped.startswith(status + " "):
            indent = line[: len(line) - len(stripped)]
            return indent + out.paint(status, color) + stripped[len(status):]
    return line
