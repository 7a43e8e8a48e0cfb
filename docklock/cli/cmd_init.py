"""`docklock init [DIR] [--name N] [--security-level L] [--add T]... [--force]` (alias:
`docklock cluster init`): scaffold a workspace from templates/.

Writes DIR/docklock.yaml (the Cluster document), DIR/specs/ with the chosen example
agreements (default: a service and a BISO policy), and a .gitignore entry for .docklock/.
Refuses to overwrite an existing docklock.yaml or spec file unless --force.

The `cluster` command group is shared: other modules add subcommands to it through
`cluster_group(sub, common)`.
"""

from __future__ import annotations

import argparse
import re
import string
from dataclasses import dataclass
from pathlib import Path

from docklock.cli._common import Output, command_group
from docklock.errors import EXIT_OK, WorkspaceError
from docklock.workspace import DOT_DIR, WORKSPACE_FILE, package_data

LEVELS = ("standard", "hardened", "deterministic", "military-grade")
# --add choice → (template file, file written under specs/)
TEMPLATES = {
    "service": ("service.yaml", "web.yaml"),
    "policy": ("policy-biso.yaml", "policy.yaml"),
    "job": ("job-deterministic.yaml", "report-job.yaml"),
    "cue": ("agreement.cue", "workers.cue"),
}
DEFAULT_ADD = ("service", "policy")
NETWORKLESS_LEVELS = ("deterministic", "military-grade")
_GROUP_ATTR = "_docklock_cluster_group"


def cluster_group(sub: argparse._SubParsersAction,  # type: ignore[type-arg]
                  common: argparse.ArgumentParser) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    """The subparsers of `docklock cluster`, created on first use and shared."""
    group = getattr(sub, _GROUP_ATTR, None)
    if group is None:
        parser = sub.add_parser("cluster", parents=[common], help="cluster commands",
                                description="Cluster-level commands.")
        group = command_group(parser, dest="cluster_command")
        setattr(sub, _GROUP_ATTR, group)
    result: argparse._SubParsersAction = group  # type: ignore[type-arg]
    return result


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", nargs="?", default=".", metavar="DIR",
                   help="workspace folder to create or fill (default: current folder)")
    p.add_argument("--name", help="cluster name, a DNS label (default: from DIR)")
    p.add_argument("--security-level", choices=LEVELS, default="standard",
                   help="security floor (default: standard)")
    p.add_argument("--add", action="append", choices=sorted(TEMPLATES), metavar="TEMPLATE",
                   help=f"example to put in specs/: {', '.join(sorted(TEMPLATES))} "
                        f"(repeatable; default: {' and '.join(DEFAULT_ADD)})")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(handler=run)


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    help_text = "create a workspace (docklock.yaml, specs/, .gitignore)"
    _add_arguments(sub.add_parser("init", parents=[common], help=help_text,
                                  description=help_text))
    _add_arguments(cluster_group(sub, common).add_parser("init", parents=[common],
                                                         help=help_text,
                                                         description=help_text))


def cluster_name(text: str) -> str:
    """A DNS label made from a folder name."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")
    return name or "docklock"


@dataclass(frozen=True)
class InitResult:
    root: Path
    written: tuple[str, ...]


def init_workspace(directory: Path, *, name: str | None = None,
                   security_level: str = "standard", add: tuple[str, ...] = DEFAULT_ADD,
                   force: bool = False) -> InitResult:
    """Create the workspace files; WorkspaceError if one exists and not `force`."""
    try:
        root = directory.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        raise WorkspaceError(f"cannot use {directory} as the workspace folder: {exc}",
                             hint="pass a folder path") from exc
    name = name or cluster_name(root.name)
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", name):
        raise WorkspaceError(f"cluster name {name!r} is not a DNS label",
                             hint="use lower-case letters, digits and '-', at most 63")
    if security_level not in LEVELS:
        raise WorkspaceError(f"unknown security level {security_level!r}",
                             hint=f"one of: {', '.join(LEVELS)}")
    templates = package_data("templates")
    files: dict[Path, str] = {}
    body = (templates / "workspace" / WORKSPACE_FILE).read_text(encoding="utf-8")
    files[root / WORKSPACE_FILE] = string.Template(body).substitute(
        name=name, security_level=security_level)
    for key in dict.fromkeys(add):
        source, target = TEMPLATES[key]
        text = (templates / source).read_text(encoding="utf-8")
        if key == "service" and security_level in NETWORKLESS_LEVELS:
            # The floor's cage runs with network none: published ports would be a
            # validation error (crosscheck), so the scaffold publishes none.
            text = re.sub(r"(?m)^  ports:\n(    - .*\n)+",
                          "  # no ports: the deterministic cage has no network\n", text)
        files[root / "specs" / target] = text
    _check_folders(directory, root, files)
    existing = [p for p in files if p.exists()]
    if existing and not force:
        shown = ", ".join(str(p.relative_to(root)) for p in existing)
        raise WorkspaceError(f"{shown} already exist{'s' if len(existing) == 1 else ''} in "
                             f"{root}", hint="pass --force to overwrite")
    written = []
    try:
        (root / "specs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # the first write: when it fails, nothing was changed
        raise WorkspaceError(f"cannot create the workspace folder {directory}: "
                             f"{exc.strerror or exc}",
                             hint="pass a folder path you can write") from exc
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
        written.append(str(path.relative_to(root)))
    ignore = root / ".gitignore"
    entry = f"{DOT_DIR}/"
    current = ignore.read_text(encoding="utf-8") if ignore.exists() else ""
    if entry not in current.split():
        lines = (templates / "workspace" / "gitignore").read_text(encoding="utf-8")
        sep = "" if not current or current.endswith("\n") else "\n"
        ignore.write_text(current + sep + lines, encoding="utf-8")
        written.append(".gitignore")
    return InitResult(root, tuple(written))


def _check_folders(directory: Path, root: Path, files: dict[Path, str]) -> None:
    """Refuse, before writing anything, a DIR or specs/ that is a file and a target file
    that is a folder (so init never stops half-way on them)."""
    for folder in (root, root / "specs"):
        if folder.exists() and not folder.is_dir():
            shown = directory if folder == root else folder
            raise WorkspaceError(f"{shown} is a file, not a folder",
                                 hint="init creates docklock.yaml and specs/ inside a "
                                      "folder: pass a folder path")
    for path in files:
        if path.is_dir():
            raise WorkspaceError(f"{path} is a folder; init writes a file there",
                                 hint="move the folder away, or init another folder")


def run(args: argparse.Namespace, out: Output) -> int:
    result = init_workspace(Path(args.dir), name=args.name,
                            security_level=args.security_level,
                            add=tuple(args.add or DEFAULT_ADD), force=args.force)
    for rel in result.written:
        out.line(f"wrote {rel}")
    out.info(f"workspace ready in {result.root}: edit specs/, then `docklock validate`")
    return EXIT_OK
