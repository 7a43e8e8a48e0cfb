"""The `docklock` command line: parse, call the engine, render, exit.

This is the only place that prints and exits. Each command group lives in its own
module `docklock/cli/cmd_<group>.py` exposing `register(subparsers, common)`; they are
discovered here, so adding a command never edits a shared list. Every DockLockError is
caught once, in `main`, and turned into a one-line message and its exit code.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import traceback
from collections.abc import Sequence

from docklock import __version__
from docklock.cli._common import Output, common_parser
from docklock.errors import EXIT_ERROR, EXIT_INTERRUPTED, DockLockError


def build_parser() -> argparse.ArgumentParser:
    common = common_parser()
    parser = argparse.ArgumentParser(
        prog="docklock",
        description="Declarative plan/apply for caged Podman workloads, with a signed ledger.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"docklock {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    package = importlib.import_module("docklock.cli")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            module = importlib.import_module(f"docklock.cli.{info.name}")
            module.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Output.from_args(args)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_ERROR
    try:
        code = handler(args, out)
        return int(code or 0)
    except DockLockError as exc:
        if getattr(args, "debug", False):
            traceback.print_exc()
        if getattr(args, "json", False) and getattr(args, "json_errors", True):
            out.json({"error": exc.to_dict(), "errors": _diagnostics(exc)}, stream=sys.stdout)
        out.error(exc.explain())
        return exc.exit_code
    except KeyboardInterrupt:
        out.error("interrupted (Ctrl-C); state holds every change completed so far")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR


def _diagnostics(exc: DockLockError) -> list[dict[str, object]]:
    diags = getattr(exc, "diagnostics", None)
    if diags:
        return [d.to_dict() for d in diags]
    return [exc.to_dict()]
