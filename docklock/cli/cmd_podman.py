"""`docklock podman ping`: which Podman API DockLock uses, and whether it answers.

A diagnostic (not listed in `docklock --help`): prints the URL, where it came from
(flag, env, docklock.yaml, default socket or a private service) and Podman's version;
`--count N` pings repeatedly like ping(8), `--wait S` waits for a service coming up.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from docklock.cli._common import Output
from docklock.errors import EXIT_OK, PodmanUnavailableError, WorkspaceError
from docklock.runtime import PodmanRuntime, connect
from docklock.workspace import find_workspace


def register(sub: argparse._SubParsersAction[Any], common: argparse.ArgumentParser) -> None:
    # No help= on purpose: the group stays out of the command list in `docklock --help`.
    group = sub.add_parser("podman", parents=[common],
                           description="Podman connection diagnostics.")
    podman_sub = group.add_subparsers(dest="podman_command", metavar="COMMAND", required=True)
    ping = podman_sub.add_parser(
        "ping", parents=[common], help="show the Podman API used and check that it answers",
        description="Connect to Podman as every command does and print the URL, its source "
                    "and Podman's version.")
    ping.add_argument("--count", type=int, default=1, metavar="N",
                      help="ping N times (default 1)")
    ping.add_argument("--interval", type=float, default=1.0, metavar="S",
                      help="seconds between pings (default 1)")
    ping.add_argument("--wait", type=float, default=0.0, metavar="S",
                      help="wait up to S seconds for the API to answer before failing")
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
    workspace_url = workspace_podman_url(getattr(args, "directory", None))
    while True:
        try:
            return connect(getattr(args, "podman_url", None), workspace_url=workspace_url)
        except PodmanUnavailableError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def workspace_podman_url(directory: str | None) -> str | None:
    """The local node's URL from docklock.yaml (`spec.podmanUrl`, else the first node's).

    Outside a workspace there is none; with `-C DIR` the workspace must exist.
    """
    try:
        paths = find_workspace(directory)
    except WorkspaceError:
        if directory is not None:
            raise
        return None
    return _url_from_config(paths.config)


def _url_from_config(path: Path) -> str | None:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        doc = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except (OSError, YAMLError) as exc:
        raise WorkspaceError(f"cannot read {path}: {exc}".splitlines()[0],
                             hint="`docklock validate` shows what is wrong") from exc
    spec = doc.get("spec") if isinstance(doc, dict) else None
    if not isinstance(spec, dict):
        return None
    url = spec.get("podmanUrl")
    if isinstance(url, str) and url:
        return url
    for node in spec.get("nodes") or ():
        if isinstance(node, dict) and isinstance(node.get("url"), str) and node["url"]:
            return str(node["url"])
    return None
