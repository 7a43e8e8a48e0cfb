"""`docklock podman ping`: which Podman API DockLock uses, and whether it answers.

A diagnostic (not listed in `docklock --help`): prints the URL, where it came from
(flag, env, docklock.yaml `spec.podmanUrl`, default socket or a private service: the
same order every command uses, `docklock.cli._common.connect_podman`) and Podman's
version; `--count N` pings repeatedly like ping(8), `--wait S` waits for a service
coming up.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import TYPE_CHECKING, Any

from docklock.cli._common import Output, command_group, connect_podman, duration_arg
from docklock.errors import EXIT_OK, PodmanUnavailableError, WorkspaceError
from docklock.workspace import find_workspace

if TYPE_CHECKING:
    from docklock.load import Workspace
    from docklock.runtime.podman import PodmanRuntime


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
    with _connect_waiting(args) as runtime:
        version = runtime.version()
        where = f"{runtime.url} ({runtime.source})"
        if not args.json:
            out.line(f"Podman {version} at {where}")
        times: list[float] = []
        for i in range(max(1, args.count)):
            if i:
                time.sleep(max(0.0, args.interval))
            rtt = runtime.ping()
            times.append(rtt)
            if not args.json and args.count > 1:
                out.line(f"reply {i + 1}: time={rtt * 1000:.1f} ms")
        if args.json:
            out.json({"url": runtime.url, "source": runtime.source,
                      "private": runtime.private, "version": version,
                      "rtt_ms": [round(t * 1000, 3) for t in times]})
        elif args.count == 1:
            out.line(f"API answered in {times[0] * 1000:.1f} ms")
    return EXIT_OK


def _connect_waiting(args: argparse.Namespace) -> PodmanRuntime:
    deadline = time.monotonic() + max(0.0, args.wait)
    ws = _workspace(args)
    while True:
        try:
            return connect_podman(args, ws)
        except PodmanUnavailableError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def _workspace(args: argparse.Namespace) -> Workspace | None:
    """The workspace whose `spec.podmanUrl` applies, loaded as every command loads it.

    None outside a workspace (flags, env and the default socket still work), and when
    --podman-url or DOCKLOCK_PODMAN_URL is given: they win over the workspace's URL, so
    its specs need not even be valid to ping. With `-C DIR` the workspace must exist.
    """
    from docklock.load import load_workspace
    from docklock.runtime.podman import ENV_URL

    directory = getattr(args, "directory", None)
    try:
        paths = find_workspace(directory)
    except WorkspaceError:
        if directory is not None:
            raise
        return None
    if getattr(args, "podman_url", None) or os.environ.get(ENV_URL):
        return None  # they win over spec.podmanUrl: the specs need not be loaded
    return load_workspace(paths)
