"""`docklock init [DIR] [--name N] [--security-level L] [--add T]... [--force]` and
`docklock cluster init` (the same, plus the signing key, the ledger and, with
--bpi-integration, the witnesses that audit it): scaffold a workspace from templates/.

Writes DIR/docklock.yaml (the Cluster document), DIR/specs/ with the chosen example
agreements (default: a service and a BISO policy), and a .gitignore entry for .docklock/.
Refuses to overwrite an existing docklock.yaml or spec file unless --force. On an existing
workspace, `cluster init --bpi-integration --witness URL VKEY` needs no --force: it only
adds the witnesses to docklock.yaml (the rest of the file and specs/ stay as they are).
The work is docklock.engine.cluster's; this module parses and prints.

The `cluster` command group is shared: other modules add subcommands to it through
`cluster_group(sub, common)`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from docklock.cli._common import Output, command_group
from docklock.engine.cluster import (
    DEFAULT_ADD,
    LEVELS,
    NO_CLASSICAL_KEYS,
    TEMPLATES,
    cluster_name,
)
from docklock.errors import EXIT_OK, WorkspaceError

__all__ = ["DEFAULT_ADD", "LEVELS", "TEMPLATES", "cluster_group", "cluster_name", "register"]
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


def _add_arguments(p: argparse.ArgumentParser, *, cluster: bool = False) -> None:
    p.add_argument("dir", nargs="?", default=".", metavar="DIR",
                   help="workspace folder to create or fill (default: current folder)")
    p.add_argument("--name", help="cluster name, a DNS label (default: from DIR)")
    p.add_argument("--security-level", choices=LEVELS, default=None,
                   help="security floor (default: standard)")
    p.add_argument("--add", action="append", choices=sorted(TEMPLATES), metavar="TEMPLATE",
                   help=f"example to put in specs/: {', '.join(sorted(TEMPLATES))} "
                        f"(repeatable; default: {' and '.join(DEFAULT_ADD)})")
    p.add_argument("--force", action="store_true",
                   help="overwrite existing files (docklock.yaml and specs/) with the "
                        "templates")
    keys = "" if cluster else " (init: also create the signing key and start the ledger)"
    p.add_argument("--quantum-crypto", action="store_true",
                   help="sign with the hybrid post-quantum key, Ed25519 + ML-DSA (the "
                        f"default and only choice: DockLock has no classical-only key){keys}")
    p.add_argument("--no-quantum-crypto", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--bpi-integration", action="store_true",
                   help="turn on the ledger's external audit: witnesses cosign every "
                        "checkpoint (needs --witness, or witnesses already in docklock.yaml; "
                        "on an existing workspace it only adds the --witness ones to its "
                        f"docklock.yaml, no --force needed; docs/witnesses.md){keys}")
    p.add_argument("--witness", nargs=2, action="append", default=[], metavar=("URL", "VKEY"),
                   help="a witness for --bpi-integration: its URL and the verifier key "
                        "`docklock witness init` printed; repeatable")
    p.set_defaults(handler=run_cluster if cluster else run)


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    help_text = "create a workspace (docklock.yaml, specs/, .gitignore)"
    _add_arguments(sub.add_parser("init", parents=[common], help=help_text,
                                  description=help_text))
    cluster_help = ("create a workspace, its hybrid post-quantum signing key and its "
                    "ledger")
    _add_arguments(cluster_group(sub, common).add_parser(
        "init", parents=[common], help=cluster_help,
        description=cluster_help + " (docklock init + docklock keys init; with "
                    "--bpi-integration, the witnesses that audit the ledger). The key is "
                    "hybrid Ed25519 + ML-DSA: --quantum-crypto is the default and only "
                    "choice. An existing signing key is kept."), cluster=True)


def _target(args: argparse.Namespace) -> Path:
    """DIR, taken relative to `-C` when that is given (as `git -C X init` does)."""
    base = Path(getattr(args, "directory", ".") or ".")
    return base / str(args.dir)


def run(args: argparse.Namespace, out: Output) -> int:
    if args.no_quantum_crypto or args.quantum_crypto or args.bpi_integration or args.witness:
        return run_cluster(args, out)  # the flags of cluster init: do what it does
    from docklock.engine.cluster import init_workspace

    result = init_workspace(_target(args), name=args.name,
                            security_level=args.security_level or "standard",
                            add=tuple(args.add or DEFAULT_ADD), force=args.force)
    for rel in result.written:
        out.line(f"wrote {rel}")
    out.info(f"workspace ready in {result.root}: edit specs/, then `docklock validate`")
    return EXIT_OK


def run_cluster(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.cluster import check_witness, init_cluster

    if args.no_quantum_crypto:
        raise WorkspaceError(f"--no-quantum-crypto: {NO_CLASSICAL_KEYS}",
                             hint="drop the flag; every checkpoint also carries a "
                                  "plain Ed25519 note signature for classical verifiers "
                                  "(docs/witnesses.md)")
    if args.witness and not args.bpi_integration:
        raise WorkspaceError("--witness configures the ledger's external audit, which "
                             "--bpi-integration turns on", hint="add --bpi-integration")
    witnesses = [check_witness(url, key) for url, key in args.witness]
    result = init_cluster(_target(args), name=args.name,
                          security_level=args.security_level,
                          add=tuple(args.add) if args.add else None, force=args.force,
                          bpi_integration=args.bpi_integration, witnesses=witnesses)
    if result.existing:
        what = ("added the witnesses to docklock.yaml spec.ledger.witnesses (the rest of "
                "the file and specs/ unchanged)" if result.workspace.written
                else "docklock.yaml already lists these witnesses (nothing written)")
        out.line(f"kept the existing workspace: {what}")
    for rel in result.workspace.written if not result.existing else ():
        out.line(f"wrote {rel}")
    if result.key_missing:
        out.info(out.paint("note: docklock.pub names a signing key this folder does not "
                           "hold: no key was made; install it with `docklock keys import "
                           "FILE` (and copy .docklock/ledger)", "yellow"))
    else:
        made = "created" if result.key_created else "kept the existing"
        default = "the default" if result.algorithm == _default_algorithm() else "chosen"
        out.line(f"keys: hybrid Ed25519 + {result.mldsa} (post-quantum; {default}): "
                 f"{made} signing key {result.key_id}")
        enc = "encrypted" if result.encrypted else "not encrypted"
        out.line(f"  private: .docklock/keys/signing.key (mode 0600, {enc}); public: "
                 "docklock.pub (commit it)")
        if result.ledger_started:
            out.line("ledger: started (a signed checkpoint of the empty ledger)")
    if result.witnesses:
        n = len(result.witnesses)
        quorum = result.quorum if result.quorum is not None else n
        out.line(f"audit: {n} witness{'es' if n != 1 else ''} in docklock.yaml "
                 f"spec.ledger.witnesses (quorum {quorum})")
        if result.log_origin:
            out.line("  register this ledger on each witness: docklock witness add-log "
                     f"--dir WITNESS_DIR {result.log_origin} {result.log_vkey}")
        if result.witness_problem:
            out.info(out.paint(f"warning: {result.witness_problem} (expected until the "
                               "ledger is registered; the next command that checkpoints "
                               "asks again)", "yellow"))
    out.info(f"cluster ready in {result.workspace.root}: edit specs/, then `docklock "
             "validate`")
    return EXIT_OK


def _default_algorithm() -> str:
    from docklock.ledger import DEFAULT_ALGORITHM

    return DEFAULT_ALGORITHM
