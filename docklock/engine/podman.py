"""`podman ping` as a use case: which Podman API DockLock uses, and whether it answers.

The URL comes in the order every command uses (flag, DOCKLOCK_PODMAN_URL, the workspace's
`spec.podmanUrl`, the default socket or a private service; see Context.connect). Works
outside a workspace too (the workspace only contributes its `spec.podmanUrl`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docklock.errors import PodmanUnavailableError, WorkspaceError

if TYPE_CHECKING:
    from docklock.load import Workspace
    from docklock.runtime.podman import PodmanRuntime

# docklock.runtime.podman.ENV_URL (not imported: connecting is what is slow to import).
ENV_URL = "DOCKLOCK_PODMAN_URL"


@dataclass(frozen=True)
class PingReport:
    url: str
    source: str
    private: bool
    version: str
    rtts: tuple[float, ...]  # seconds, one per ping

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "source": self.source, "private": self.private,
                "version": self.version, "rtt_ms": [round(t * 1000, 3) for t in self.rtts]}


def ping(directory: str | Path | None = None, *, podman_url: str | None = None,
         count: int = 1, interval: float = 1.0, wait: float = 0.0,
         on_connected: Callable[[str, str, str], None] | None = None,
         on_reply: Callable[[int, float], None] | None = None) -> PingReport:
    """Connect (waiting up to `wait` seconds for the API), then ping `count` times,
    `interval` apart. `on_connected(version, url, source)` and `on_reply(n, seconds)`
    report as it goes (ping(8) style)."""
    with _connect_waiting(directory, podman_url, wait) as runtime:
        version = runtime.version()
        if on_connected is not None:
            on_connected(version, runtime.url, runtime.source)
        times: list[float] = []
        for i in range(max(1, count)):
            if i:
                time.sleep(max(0.0, interval))
            rtt = runtime.ping()
            times.append(rtt)
            if on_reply is not None:
                on_reply(i + 1, rtt)
        return PingReport(runtime.url, runtime.source, runtime.private, version,
                          tuple(times))


def _connect_waiting(directory: str | Path | None, podman_url: str | None,
                     wait: float) -> PodmanRuntime:
    from docklock.runtime.podman import connect

    deadline = time.monotonic() + max(0.0, wait)
    ws = _workspace(directory, podman_url)
    workspace_url = ws.cluster_spec.podmanUrl if ws is not None else None
    while True:
        try:
            return connect(podman_url, workspace_url=workspace_url)
        except PodmanUnavailableError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def _workspace(directory: str | Path | None, podman_url: str | None) -> Workspace | None:
    """The workspace whose `spec.podmanUrl` applies, loaded as every command loads it.

    None outside a workspace (flags, env and the default socket still work), and when
    `podman_url` or DOCKLOCK_PODMAN_URL is given: they win over the workspace's URL, so
    its specs need not even be valid to ping. With an explicit `directory` the
    workspace must exist.
    """
    from docklock.load import load_workspace
    from docklock.workspace import find_workspace

    try:
        paths = find_workspace(directory)
    except WorkspaceError:
        if directory is not None:
            raise
        return None
    if podman_url or os.environ.get(ENV_URL):
        return None  # they win over spec.podmanUrl: the specs need not be loaded
    return load_workspace(paths)
