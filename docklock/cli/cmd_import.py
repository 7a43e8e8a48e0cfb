"""`docklock import compose FILE [--out DIR] [--profile P]... [--cluster-name N] [--force]
[--drop-default-caps] [--json]`: turn a docker-compose file into DockLock specs.

DIR (default: the compose file's folder, so build contexts, env files and job inputs
stay inside the workspace) becomes a workspace: its docklock.yaml is written when it
has none (securityLevel standard; `.docklock/` is added to .gitignore), and the specs
go into its first spec folder, one
file per service or job plus networks.yaml, volumes.yaml and cages.yaml. Nothing is
overwritten without --force, a resource the workspace already defines (in a file not
being replaced) is refused at its file:line:col, and on any error nothing is written.
The report lists
every compose key with its file:line:col — not mapped ones first, with a hint — and
ends with `mapped N of M keys (P%)`. Exit 0 when written, 1 on an error.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from docklock.cli._common import Output, UsageError, command_group
from docklock.errors import EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    group = sub.add_parser("import", parents=[common], help="convert other tools' files "
                           "into DockLock specs",
                           description="Convert files of other tools into DockLock specs.")
    isub = command_group(group, dest="import_command", metavar="SUBCOMMAND")
    p = isub.add_parser(
        "compose", parents=[common], help="convert a docker-compose file",
        description="Convert a docker-compose file into DockLock specs, reporting every "
                    "compose key that could not be mapped with its file:line:col.")
    p.add_argument("file", metavar="FILE", help="the compose file (compose.yaml, "
                   "docker-compose.yml, ...)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="workspace folder to write into (default: -C DIR if given, else "
                        "the compose file's folder); a docklock.yaml is written when it "
                        "has none")
    p.add_argument("--profile", action="append", default=[], metavar="NAME",
                   help="enable services of this compose profile (repeatable; `*` for all; "
                        "also COMPOSE_PROFILES)")
    p.add_argument("--cluster-name", metavar="NAME", default=None,
                   help="cluster name (default: the compose project name)")
    p.add_argument("--force", action="store_true", help="replace existing spec files")
    p.add_argument("--drop-default-caps", action="store_true",
                   help="do not give workloads Podman's default capabilities (compose does); "
                        "DockLock's cages then drop ALL")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, out: Output) -> int:
    from docklock.importers.compose import cluster_document, convert_compose, dns_name
    from docklock.importers.write import (
        check_addresses,
        gitignore_text,
        target_settings,
        write_all,
    )

    source = Path(args.file)
    if source.is_dir():
        raise UsageError(f"{source} is a folder", hint="name the compose file in it")
    out_dir = args.out or getattr(args, "directory", None)
    root = Path(out_dir) if out_dir else source.resolve().parent
    if root.exists() and not root.is_dir():
        raise UsageError(f"--out {root}: is not a folder", hint="name a folder")
    target = target_settings(root)
    result = convert_compose(source, workspace=root, profiles=args.profile,
                             keep_default_caps=not args.drop_default_caps,
                             display=str(args.file), floor=target.floor)
    cluster = dns_name(args.cluster_name) if args.cluster_name else result.project
    if args.cluster_name and not cluster:
        raise UsageError(f"--cluster-name {args.cluster_name!r} has no letters or digits")
    files = [(target.spec_dir / f.name, f.text()) for f in result.files]
    # an address the workspace already defines would make it invalid: refuse, write nothing
    # (files the import writes again are replaced with --force, refused without it)
    check_addresses(target, [(target.spec_dir / f.name, f.documents) for f in result.files],
                    replacing=[p for p, _ in files if p.exists()],
                    cue=getattr(args, "cue", None))
    amend = []
    if not target.has_workspace:
        files.insert(0, (root / "docklock.yaml", cluster_document(cluster).text()))
        ignore = gitignore_text(root)
        if ignore is not None:
            files.insert(1, (root / ".gitignore", ignore))
            amend.append(root / ".gitignore")
    written = write_all(files, force=args.force, amend=amend)
    if args.json:
        payload: dict[str, Any] = result.to_dict()
        payload.pop("files")
        payload["written"] = [str(p) for p in written]
        payload["cluster"] = cluster
        out.json(payload)
        return EXIT_OK
    _render(out, result.findings)
    for name in result.skipped:
        out.line(out.paint(f"skipped service {name} (profile not enabled)", "dim"))
    out.line(f"wrote {len(written)} file{'s' if len(written) != 1 else ''} to "
             f"{target.spec_dir if target.has_workspace else root}")
    out.line(out.paint(result.summary(), "bold"))
    out.line("next: docklock validate -C " + str(root))
    return EXIT_OK


def _render(out: Output, findings: Any) -> None:
    sections = [
        ("not mapped", "yellow", [f for f in findings if f.kind != "note" and not f.mapped]),
        ("notes", "dim", [f for f in findings if f.kind == "note"]),
        ("mapped", "green", [f for f in findings if f.kind != "note" and f.mapped]),
    ]
    for title, color, items in sections:
        if items:
            out.line(out.paint(f"{title} ({len(items)}):", color))
            for f in items:
                out.line(f"  {f}")
