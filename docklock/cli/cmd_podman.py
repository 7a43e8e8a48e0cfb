"""`docklock podman ping`: which Podman API DockLock uses, and whether it answers.

A diagnostic (not listed in `docklock --help`): prints the URL, where it came from
(flag, env, docklock.yaml `spec.podmanUrl`, default socket or a private service: the
same order every command uses: docklock.engine.context.connect) and Podman's
version; `--count N` pings repeatedly like ping(8), `--wait S` waits for a service
coming up.
"""

from __future__ import annotations

import argparse
from typing import Any

from docklock.cli._common import Output, command_group, duration_arg
from docklock.errors import EXIT_OK


def register(sub: argparse._SubParsersAction[Any], common: argparse.ArgumentParser) -> None:
    # Listed in `docklock --help` like every command (a hidden one cannot be found).
    group = sub.add_parser("podman", parents=[common], help="Podman connection diagnostics",
                           description="Podman connection diagnostics.")
    podman_sub = command_group(group, dest="podman_command")
    ping = podman_sub.add_parser(
        "ping", parents=[common], help="show the Podman API used and check that it answers",
        description="Connect to Podman as every command does and print the URL, its source "
                    "and Podman's version.")
    ping.add_argument("--count", type=int, default=1, metavar="N",
                      help="ping N times (default 1)")
    ping.add_argument("--interval", type=duration_arg, default=1.0, metavar="DURATION",
                      help="time between pings, e.g. 1, 500ms (default 1s)")
    ping.add_argument("--wait", type=duration_arg, default=0.0, metavar="DURATION",
                      help="wait up to DURATION (e.g. 30, 30s, 1m) for the API to answer "
                           "before failing")
    ping.add_argument("--json", action="store_true", help="machine-readable output")
    ping.set_defaults(handler=cmd_ping)


def cmd_ping(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.podman import ping

    def connected(version: str, url: str, source: str) -> None:
        if not args.json:
            out.line(f"Podman {version} at {url} ({source})")

    def reply(n: int, rtt: float) -> None:
        if not args.json and args.count > 1:
            out.line(f"reply {n}: time={rtt * 1000:.1f} ms")

    report = ping(getattr(args, "directory", None), podman_url=getattr(args, "podman_url", None),
                  count=args.count, interval=args.interval, wait=args.wait,
                  on_connected=connected, on_reply=reply)
    if args.json:
        out.json(report.to_dict())
    elif args.count == 1:
        out.line(f"API answered in {report.rtts[0] * 1000:.1f} ms")
    return EXIT_OK
