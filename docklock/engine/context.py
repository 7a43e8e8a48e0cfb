"""What every engine use case starts from: a workspace and how to reach its tools.

`Context` names the workspace folder and the caller's overrides (Podman URL, cue
binary). The CLI builds one from its flags; the agent or a CI integration builds one in
Python. Nothing here touches Podman or the disk until a use case asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from docklock.workspace import WorkspacePaths, find_workspace

if TYPE_CHECKING:
    from docklock.load import Workspace
    from docklock.runtime.podman import PodmanRuntime


@dataclass(frozen=True)
class Context:
    """A workspace and the caller's overrides, as given to every engine function."""

    paths: WorkspacePaths
    podman_url: str | None = None
    cue: str | None = None

    @classmethod
    def find(cls, directory: str | Path | None = None, *, podman_url: str | None = None,
             cue: str | None = None) -> Context:
        """The workspace at `directory` (or found upward from the current folder)."""
        return cls(find_workspace(directory), podman_url=podman_url, cue=cue)

    def load(self) -> Workspace:
        """The workspace's specs, loaded and validated (raises ValidationError)."""
        from docklock.load import load_workspace

        return load_workspace(self.paths, cue=self.cue)

    def connect(self, ws: Workspace | None = None) -> PodmanRuntime:
        """Podman for this workspace; use as `with ctx.connect(ws) as runtime:`.

        URL order: `podman_url`, DOCKLOCK_PODMAN_URL, the workspace's `spec.podmanUrl`,
        then the default socket (or a private service; see docklock.runtime.podman).
        """
        return connect(self.podman_url, ws)


def connect(podman_url: str | None, ws: Workspace | None = None) -> PodmanRuntime:
    """Podman as every command reaches it: `podman_url`, DOCKLOCK_PODMAN_URL, `ws`'s
    `spec.podmanUrl`, then the default socket (see docklock.runtime.podman.connect)."""
    from docklock.runtime.podman import connect as connect_runtime

    workspace_url = ws.cluster_spec.podmanUrl if ws is not None else None
    return connect_runtime(podman_url, workspace_url=workspace_url)
