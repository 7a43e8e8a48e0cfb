"""Finding a workspace's spec files: `*.yaml`, `*.yml` and `*.cue` under the spec folders.

The folders come from docklock.yaml (`spec.specs`, default `specs`). Each must stay inside
the workspace (WorkspacePaths.confine), and so must every file found (a symlink pointing
out of the workspace is an error, and so is a symlink loop). Hidden folders (`.docklock`,
`.git`, ...) and `cue.mod` are skipped; docklock.yaml itself is never a spec file. The
result is sorted, so loading is deterministic.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from docklock.errors import Diagnostic, Location, WorkspaceError
from docklock.workspace import WORKSPACE_FILE, WorkspacePaths

YAML_SUFFIXES = (".yaml", ".yml")
CUE_SUFFIX = ".cue"
_SKIP_DIRS = frozenset({"cue.mod", "node_modules", "__pycache__"})


@dataclass(frozen=True)
class SpecFiles:
    """Workspace-relative paths (POSIX separators), sorted."""

    yaml: tuple[str, ...] = ()
    cue: tuple[str, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = field(default=(), compare=False)


def relative(paths: WorkspacePaths, path: Path) -> str:
    try:
        return path.resolve().relative_to(paths.root.resolve()).as_posix()
    except ValueError:
        return str(path)


def discover(paths: WorkspacePaths, folders: Sequence[str],
             where: Location | Callable[[], Location] | None = None) -> SpecFiles:
    """Every spec file under `folders`; `where` locates `spec.specs` for error messages
    (a callable is asked only when there is an error: locating re-reads docklock.yaml)."""
    root = paths.root.resolve()
    config = paths.config.resolve()
    yaml_files: set[str] = set()
    cue_files: set[str] = set()
    diagnostics: list[Diagnostic] = []
    for folder in folders:
        try:
            base = paths.confine(folder, what="spec folder")
        except WorkspaceError as exc:
            diagnostics.append(Diagnostic(exc.message, _located(where), path="spec.specs",
                                          hint=exc.hint))
            continue
        if not base.is_dir():
            diagnostics.append(Diagnostic(
                f"spec folder {folder!r} does not exist", _located(where), path="spec.specs",
                hint=f"create {folder}/ or fix spec.specs in {WORKSPACE_FILE}"))
            continue
        for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames
                                 if not d.startswith(".") and d not in _SKIP_DIRS)
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                is_yaml = name.endswith(YAML_SUFFIXES)
                if not is_yaml and not name.endswith(CUE_SUFFIX):
                    continue
                path = Path(dirpath) / name
                try:
                    real = path.resolve()
                except (OSError, RuntimeError) as exc:  # RuntimeError: a loop (< 3.13)
                    rel = path.relative_to(root).as_posix()
                    loop = not isinstance(exc, OSError) or exc.errno == errno.ELOOP
                    why = "is a symbolic link loop" if loop else \
                        f"cannot be resolved: {getattr(exc, 'strerror', None) or exc}"
                    diagnostics.append(Diagnostic(
                        f"spec file {rel} {why}", Location(rel),
                        hint="remove the link or point it at a file"))
                    continue
                if real == config:
                    continue
                if real != root and root not in real.parents:
                    diagnostics.append(Diagnostic(
                        f"spec file {relative(paths, path)} points outside the workspace",
                        Location(relative(paths, path)),
                        hint="spec files must live inside the workspace"))
                    continue
                # `base` is resolved, so `path` lies under the resolved root.
                rel = path.relative_to(root).as_posix()
                (yaml_files if is_yaml else cue_files).add(rel)
    return SpecFiles(tuple(sorted(yaml_files)), tuple(sorted(cue_files)), tuple(diagnostics))


def _located(where: Location | Callable[[], Location] | None) -> Location | None:
    return where() if callable(where) else where
