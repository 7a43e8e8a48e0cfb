"""`docklock witness init|add-log|show|serve|log-key`: run a C2SP tlog-witness, and print
the key a witness needs to register this workspace's ledger."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from docklock.cli._common import Output, command_group, workspace_of
from docklock.errors import EXIT_OK

if TYPE_CHECKING:
    from docklock.ledger.witnessing import WitnessCheck


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    witness = sub.add_parser(
        "witness", parents=[common], help="run a witness that cosigns ledger checkpoints",
        description="A C2SP tlog-witness: it cosigns a log's checkpoints only if they extend "
                    "what it cosigned before, so a rolled-back or forked ledger is caught. "
                    "Workspaces list witnesses in docklock.yaml under spec.ledger.witnesses.")
    wsub = command_group(witness, dest="witness_command", metavar="SUBCOMMAND")

    p = wsub.add_parser("init", parents=[common], help="create a witness key and folder",
                        description="Create DIR with an Ed25519 witness key (0600) and an "
                                    "empty configuration; print the witness's verifier key "
                                    "(put it in the workspaces' spec.ledger.witnesses).")
    p.add_argument("dir", metavar="DIR", type=Path, help="witness folder to create")
    p.add_argument("--name", default="docklock.witness/w1",
                   help="the witness's key name, a schema-less URL (default %(default)s)")
    p.add_argument("--algorithm", choices=("ed25519", "ml-dsa-44"), default="ed25519",
                   help="cosignature type: ed25519 (0x04, default) or the post-quantum "
                        "ml-dsa-44 (0x06)")
    p.set_defaults(handler=cmd_init)

    p = wsub.add_parser("add-log", parents=[common], help="register a log to witness",
                        description="Trust ORIGIN's checkpoints signed by VKEY (the log's "
                                    "note verifier key; for a DockLock workspace: the output "
                                    "of `docklock witness log-key`). A log has ONE accepted "
                                    "key: after `keys rotate`, replace it with --rotate (the "
                                    "old key is then refused, so whoever still holds it "
                                    "cannot get a forged history cosigned).")
    p.add_argument("--dir", required=True, type=Path, help="witness folder")
    p.add_argument("origin", metavar="ORIGIN", help="the log's checkpoint origin")
    p.add_argument("vkey", metavar="VKEY", help="the log's note verifier key")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--rotate", action="store_true",
                      help="replace the key of an already registered ORIGIN (retires the old "
                           "one)")
    mode.add_argument("--signer", action="store_true",
                      help="accept VKEY beside the registered key: a team signer of the "
                           "workspace (`docklock keys trust`; its line of `docklock witness "
                           "log-key --all`)")
    mode.add_argument("--remove-signer", action="store_true",
                      help="stop accepting the team signer VKEY (after `docklock keys "
                           "untrust`)")
    p.set_defaults(handler=cmd_add_log)

    p = wsub.add_parser("show", parents=[common], help="print the witness's key and logs")
    p.add_argument("--dir", required=True, type=Path, help="witness folder")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_show)

    p = wsub.add_parser("serve", parents=[common], help="serve the witness protocol over HTTP",
                        description="Serve POST /add-checkpoint and GET "
                                    "/<sha256(origin)>/checkpoint until interrupted. The "
                                    "first line on stdout is the URL it listens on.")
    p.add_argument("--dir", required=True, type=Path, help="witness folder")
    p.add_argument("--listen", default="127.0.0.1:8330", metavar="HOST:PORT",
                   help="address to listen on (default %(default)s; port 0: any free port)")
    p.set_defaults(handler=cmd_serve)

    p = wsub.add_parser("log-key", parents=[common],
                        help="print this workspace's ledger origin and note verifier key",
                        description="Print `ORIGIN VKEY` for `docklock witness add-log`: the "
                                    "Ed25519 half of the current signing key as a standard "
                                    "signed-note verifier key.")
    p.add_argument("--all", action="store_true",
                   help="also print one `ORIGIN VKEY signer NAME` line per active team signer "
                        "of docklock.pub (register each with `witness add-log --signer`)")
    p.set_defaults(handler=cmd_log_key)


def cmd_init(args: argparse.Namespace, out: Output) -> int:
    from docklock.witness.server import init_witness

    cosigner = init_witness(args.dir, args.name, args.algorithm)
    out.info(f"created witness {cosigner.name} in {args.dir} (key {args.dir}/witness.key, "
             "mode 0600)")
    out.info("register logs with `docklock witness add-log`, then `docklock witness serve`; "
             "workspaces list this verifier key in spec.ledger.witnesses:")
    out.line(cosigner.vkey.render())
    return EXIT_OK


def cmd_add_log(args: argparse.Namespace, out: Output) -> int:
    from docklock.witness.server import add_log

    config = add_log(args.dir, args.origin, args.vkey, rotate=args.rotate,
                     signer=args.signer, remove_signer=args.remove_signer)
    log = config.log(args.origin)
    if args.signer or args.remove_signer:
        n = len(log.signers) if log else 0
        verb = "no longer accepts" if args.remove_signer else "accepts"
        out.line(f"witnessing {args.origin}: {verb} signer key {args.vkey.split('+')[1]} "
                 f"({n} signer{'s' if n != 1 else ''} beside the log key)")
        return EXIT_OK
    retired = len(log.keys) - 1 if log else 0
    out.line(f"witnessing {args.origin} (key {log.active.split('+')[1] if log else '?'}"
             + (f"; {retired} retired key{'s' if retired != 1 else ''} refused)"
                if retired else ")"))
    return EXIT_OK


def cmd_show(args: argparse.Namespace, out: Output) -> int:
    from docklock.witness.server import Witness, load_config, load_cosigner

    config = load_config(args.dir)
    cosigner = load_cosigner(args.dir)
    witness = Witness(args.dir)
    logs = []
    for log in config.logs:
        stored = witness.stored(log.origin)
        logs.append({"origin": log.origin, "key": log.active,
                     "retired_keys": list(log.keys[:-1]),
                     "size": stored[0] if stored else None,
                     "refused": witness.refusals(log.origin)})
    if args.json:
        out.json({"name": config.name, "vkey": cosigner.vkey.render(), "logs": logs})
        return EXIT_OK
    out.line(f"witness {config.name}")
    out.line(f"  verifier key: {cosigner.vkey.render()}")
    for lg in logs:
        size = "nothing cosigned yet" if lg["size"] is None else f"cosigned size {lg['size']}"
        refused = (f"; {lg['refused']} signed checkpoint(s) refused as a FORK, kept in "
                   f"{args.dir}/logs" if lg["refused"] else "")
        out.line(f"  log {lg['origin']}: {size}{refused}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, out: Output) -> int:
    from docklock.witness.server import serve

    def ready(url: str) -> None:
        out.line(url)
        out.stdout.flush()

    try:
        serve(args.dir, args.listen, ready)
    except KeyboardInterrupt:
        out.info("witness stopped")
    return EXIT_OK


def cmd_log_key(args: argparse.Namespace, out: Output) -> int:
    from docklock.ledger.witnessing import log_identity, signer_identities

    paths = workspace_of(args)
    origin, vkey = log_identity(paths)
    out.line(f"{origin} {vkey}")
    if args.all:
        for name, signer_vkey in signer_identities(paths, origin):
            out.line(f"{origin} {signer_vkey} signer {name}")
    return EXIT_OK


def render_witness_check(check: WitnessCheck, out: Output) -> None:
    """The witness part of `ledger verify`'s text report."""
    if not check.configured:
        for note in check.notes:
            out.line(out.paint(f"  {note}", "yellow"))
        return
    head = (f"  witnesses: {len(check.cosigned)} of quorum {check.required} cosigned the "
            f"newest checkpoint" + (f" (size {check.latest_size})"
                                    if check.latest_size is not None else ""))
    out.line(out.paint(head, "green" if check.ok else "red"))
    for view in check.views:
        color = {"ok": "green", "unreachable": "yellow", "unknown": "yellow"}.get(
            view.status, "red")
        out.line(out.paint(f"    {view.status}: {view.message}", color))
    for problem in check.problems:
        if not any(problem == v.message for v in check.views):
            out.line(out.paint(f"    {problem}", "red"))
