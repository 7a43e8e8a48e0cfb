"""`docklock exec SERVICE [--replica N] [-i] [-t] -- CMD...`.

Run a command in one replica of a Service (default replica 1) and exit with the
command's exit code. Refused (exit 1) for a container in a deterministic cage. The
engine (docklock.engine.verbs.exec_command) does the work.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from docklock.cli._common import DockLockParser, Output, add_cue_option
from docklock.errors import EXIT_ERROR, EXIT_INTERRUPTED


class _ExecParser(DockLockParser):
    """Everything after the first `--` is the command, taken as it is: argparse alone
    would match the positionals before `--replica N` and then reject `-- CMD`."""

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None
                         ) -> tuple[argparse.Namespace, list[str]]:
        given = list(args or [])
        tail: list[str] = []
        if "--" in given:
            cut = given.index("--")
            given, tail = given[:cut], given[cut + 1:]
        ns, extra = super().parse_known_args(given, namespace)
        ns.command = [*getattr(ns, "command", []), *tail]
        return ns, extra


def _as_exec_parser(parser: Any) -> None:
    parser.__class__ = _ExecParser


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    from docklock.cli.cmd_logs import add_target_args

    p = sub.add_parser(
        "exec", parents=[common], help="run a command in a service's replica",
        description="Run CMD in replica 1 (or --replica N) of a Service and exit with its "
                    "exit code. Refused for containers in a deterministic cage.")
    p.add_argument("target", metavar="SERVICE",
                   help="a Service: `api` or `Service/default/api`")
    add_target_args(p)
    p.add_argument("-i", "--interactive", action="store_true",
                   help="keep stdin open (runs `podman --remote exec`)")
    p.add_argument("-t", "--tty", action="store_true",
                   help="allocate a terminal (runs `podman --remote exec`)")
    add_cue_option(p)
    p.add_argument("command", nargs="*", metavar="-- CMD",
                   help="the command and its arguments, after -- (options of exec go "
                        "before it)")
    p.set_defaults(handler=cmd_exec)
    _as_exec_parser(p)


def cmd_exec(args: argparse.Namespace, out: Output) -> int:
    from docklock.cli.cmd_logs import write_bytes
    from docklock.engine.context import Context
    from docklock.engine.verbs import ExecInterrupted, ExecOptions, exec_command

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    ctx = Context.find(getattr(args, "directory", None),
                       podman_url=getattr(args, "podman_url", None), cue=args.cue)

    def on_output(stream: int, data: bytes) -> None:
        write_bytes(out.stderr if stream == 2 else out.stdout, data)

    try:
        result = exec_command(ctx, args.target, command,
                              ExecOptions(replica=args.replica, interactive=args.interactive,
                                          tty=args.tty, namespace=args.namespace),
                              on_output=on_output)
    except ExecInterrupted as stop:
        # Not apply's message: exec changes no state, and Podman's API cannot stop the
        # exec session, so the command may go on running.
        out.error(f"interrupted (Ctrl-C); the command may still be running in container "
                  f"{stop.container} (hint: find it with `docklock exec {stop.address} "
                  f"-- ps`, end it with `docklock exec {stop.address} -- kill PID`)")
        return EXIT_INTERRUPTED
    return result.exit_code if result.exit_code >= 0 else EXIT_ERROR
