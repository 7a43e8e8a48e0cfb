"""Fixtures for the loader tests: throwaway workspaces and a real cue executable."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from docklock.errors import CueError
from docklock.load.cue import CueCommand, find_cue
from docklock.workspace import WorkspacePaths

CLUSTER = """\
apiVersion: docklock.io/v1
kind: Cluster
metadata: {name: test}
spec: {securityLevel: %s}
"""

MakeWorkspace = Callable[..., WorkspacePaths]


@pytest.fixture
def make_workspace(tmp_path: Path) -> MakeWorkspace:
    """make_workspace({"specs/a.yaml": "..."}, level="standard") → WorkspacePaths."""

    def make(files: dict[str, str], *, level: str = "standard",
             cluster: str | None = None) -> WorkspacePaths:
        root = tmp_path / "ws"
        (root / "specs").mkdir(parents=True, exist_ok=True)
        (root / "docklock.yaml").write_text(cluster if cluster is not None
                                            else CLUSTER % level)
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        return WorkspacePaths(root)

    return make


@pytest.fixture(scope="session")
def cue_command() -> CueCommand:
    """A real cue: on PATH, $DOCKLOCK_CUE, or the bundled launcher. Never skipped."""
    try:
        return find_cue(None)
    except CueError as exc:
        pytest.fail(f"no cue executable for the CUE tests: {exc.message} — {exc.hint}")
