"""Workspace discovery and the fixed layout of its `.docklock/` folder.

A workspace is a folder holding `docklock.yaml` (a `kind: Cluster` document). Commands
take `-C DIR`, otherwise search upward from the current folder like git does. This
module only computes paths; the modules that own each file write it.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path

from docklock.errors import WorkspaceError

WORKSPACE_FILE = "docklock.yaml"
DOT_DIR = ".docklock"


@dataclass(frozen=True)
class WorkspacePaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / WORKSPACE_FILE

    @property
    def dot(self) -> Path:
        return self.root / DOT_DIR

    @property
    def state(self) -> Path:
        return self.dot / "state.json"

    @property
    def state_lock(self) -> Path:
        return self.dot / "state.lock"

    @property
    def ledger(self) -> Path:
        return self.dot / "ledger"

    @property
    def keys(self) -> Path:
        return self.dot / "keys"

    @property
    def cages(self) -> Path:
        return self.dot / "cages"

    @property
    def cache(self) -> Path:
        return self.dot / "cache"

    @property
    def witness(self) -> Path:
        return self.dot / "witness"

    def confine(self, relative: str, *, what: str = "path") -> Path:
        """Resolve a spec-given path and refuse anything outside the workspace."""
        try:
            candidate = (self.root / relative).resolve()
            root = self.root.resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (< 3.13)
            raise WorkspaceError(
                f"{what} {relative!r} cannot be resolved: {_loop_or(exc)}",
                hint="remove or fix the symbolic link") from exc
        if candidate != root and root not in candidate.parents:
            raise WorkspaceError(
                f"{what} {relative!r} points outside the workspace {root}",
                hint="spec paths are relative to the workspace and may not leave it",
            )
        return candidate


def _loop_or(exc: BaseException) -> str:
    if isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP:
        return "it is a symbolic link loop"
    return str(getattr(exc, "strerror", None) or exc)


def find_workspace(directory: str | Path | None = None) -> WorkspacePaths:
    """`-C DIR` if given (must hold docklock.yaml), else search upward from the cwd."""
    if directory is not None:
        root = Path(directory).resolve()
        if not (root / WORKSPACE_FILE).is_file():
            raise WorkspaceError(
                f"{root} is not a DockLock workspace (no {WORKSPACE_FILE})",
                hint="run `docklock init` there, or pass -C with the workspace folder",
            )
        return WorkspacePaths(root)
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / WORKSPACE_FILE).is_file():
            return WorkspacePaths(candidate)
    raise WorkspaceError(
        f"no {WORKSPACE_FILE} in {here} or any parent folder",
        hint="run `docklock init` to create a workspace, or pass -C DIR",
    )


def package_data(name: str) -> Path:
    """Find a top-level data folder (schemas, templates) in a checkout or an installed wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_data" / name, here.parent / name):
        if candidate.is_dir():
            return candidate
    raise WorkspaceError(f"DockLock's {name}/ folder is missing from the installation",
                         hint="reinstall docklock")
