"""`docklock ledger verify|show|proof|verify-proof|repair`: the CLI over
docklock.engine.ledger."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docklock.cli._common import Output, check_out_path, command_group, context_of
from docklock.errors import EXIT_ERROR, EXIT_OK

if TYPE_CHECKING:
    from docklock.ledger import Entry


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    ledger = sub.add_parser("ledger", parents=[common], help="inspect and verify the ledger",
                            description="The signed, append-only ledger of plans and applies.")
    lsub = command_group(ledger, dest="ledger_command", metavar="SUBCOMMAND")

    p = lsub.add_parser("verify", parents=[common], help="recompute and check the whole ledger",
                        description="Recompute every leaf and root, verify every checkpoint's "
                                    "hybrid signature; exit 1 naming the first bad entry or "
                                    "checkpoint.")
    p.add_argument("--from-checkpoint", action="store_true",
                   help="start from the second-newest checkpoint instead of entry 0")
    p.add_argument("--require-witnesses", action="store_true",
                   help="fail unless a quorum of the witnesses in docklock.yaml answers "
                        "(default: an unreachable witness is only reported)")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.set_defaults(handler=cmd_verify)

    p = lsub.add_parser("show", parents=[common], help="list ledger entries")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--tail", type=int, metavar="N", help="only the last N entries")
    p.set_defaults(handler=cmd_show)

    p = lsub.add_parser("proof", parents=[common],
                        help="inclusion proof of one entry against the newest checkpoint")
    p.add_argument("seq", type=int, metavar="SEQ", help="entry sequence number")
    p.add_argument("--out", metavar="FILE", type=Path,
                   help="write the proof here instead of stdout")
    p.set_defaults(handler=cmd_proof)

    p = lsub.add_parser("verify-proof", parents=[common],
                        help="check an inclusion proof offline")
    p.add_argument("file", metavar="FILE", help="proof written by `ledger proof`")
    p.add_argument("--key", metavar="KEYRING",
                   help="public keyring to trust (default: the workspace's docklock.pub)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_verify_proof)

    p = lsub.add_parser("repair", parents=[common],
                        help="move a torn last line (after a crash) aside")
    p.set_defaults(handler=cmd_repair)


def cmd_verify(args: argparse.Namespace, out: Output) -> int:
    from docklock.cli.cmd_witness import render_witness_check
    from docklock.engine.ledger import verify

    # Witnesses (docklock.ledger.witnessing): quorum on the newest checkpoint, and no
    # rollback or fork against what a reachable witness has cosigned.
    check = verify(context_of(args), from_checkpoint=args.from_checkpoint,
                   require_witnesses=args.require_witnesses)
    report, witnesses = check.report, check.witnesses
    if args.json:
        out.json(check.to_dict())
    else:
        _render_report(report.to_dict(), out)
        render_witness_check(witnesses, out)
    if report.problem is not None:
        out.error(report.problem.error().explain())
    if not witnesses.ok:
        out.error(witnesses.error().explain())
    return EXIT_OK if check.ok else EXIT_ERROR


def _render_report(r: dict[str, Any], out: Output) -> None:
    for warning in r.get("warnings", ()):
        out.line(out.paint(f"warning: {warning}", "yellow"))
    if r["problem"]:
        out.line(out.paint("ledger verification FAILED", "red") + f" ({r['origin']})")
        out.line(f"  at {r['problem']['where']}: {r['problem']['message']}")
        return
    scope = ("all entries" if r["verified_from"] == 0
             else f"entries from seq {r['verified_from']}")
    keys = ", ".join(k[:16] for k in r["keys"]) or "none"
    out.line(out.paint("ledger OK", "green") + f" ({r['origin']})")
    out.line(f"  {r['entries']} entries, {scope} recomputed; root {r['root']}")
    out.line(f"  {r['checked_checkpoints']} of {r['checkpoints']} checkpoints verified "
             f"(hybrid signatures by {keys})")
    if r["unsigned_tail"]:
        out.line(out.paint(f"  {r['unsigned_tail']} entries after the newest checkpoint are "
                           "not signed yet", "yellow"))
    out.line(f"  {r['seconds']:.2f} s")


def _summary(e: Entry) -> str:
    p = e.payload
    for key in ("summary", "address", "action", "message"):
        if key in p:
            value = p[key]
            if isinstance(value, str):
                return value
            if isinstance(value, dict):
                # A plan's change counts: show the non-zero ones, never a Python repr.
                return " ".join(f"{k}={v}" for k, v in sorted(value.items()) if v) or "no changes"
            return json.dumps(value, sort_keys=True, separators=(",", ":"))
    text = json.dumps(dict(p), sort_keys=True, separators=(",", ":"))
    return text if len(text) <= 60 else text[:57] + "..."


def _signer(label: str | None) -> str:
    return f"[{label}]  " if label else ""


def cmd_show(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.ledger import show

    view = show(context_of(args), tail=args.tail)
    if args.json:
        out.json(view.to_dict())
        return EXIT_OK
    latest = view.checkpoint
    head = f"{view.origin}: {view.size} entries"
    head += (f", newest checkpoint at size {latest.size} (signed by "
             f"{view.checkpoint_signer or latest.keyid[:16]})"
             if latest else ", no checkpoint yet")
    out.line(out.paint(head, "bold"))
    for e in view.entries:
        serial = "-" if e.serial is None else str(e.serial)
        commit = (e.commit or "-")[:8]
        out.line(f"{e.seq:>7}  {e.time[:19]}Z  {e.type.value:<12} serial {serial:>4}  "
                 f"{commit:<8}  {e.actor}  {_signer(view.signed_by.get(e.seq))}{_summary(e)}")
    return EXIT_OK


def cmd_proof(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.ledger import proof as prove

    ctx = context_of(args)
    if args.out is not None:
        check_out_path(args.out)
    proof = prove(ctx, args.seq)
    text = json.dumps(proof.to_dict(), indent=2, sort_keys=True) + "\n"
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
        out.info(f"inclusion proof of entry seq {args.seq} against checkpoint size "
                 f"{proof.tree_size} written to {args.out}")
    else:
        out.stdout.write(text)
    return EXIT_OK


def cmd_verify_proof(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.ledger import verify_proof

    check = verify_proof(Path(args.file), keyring=Path(args.key) if args.key else None,
                         directory=getattr(args, "directory", None))
    proof, entry = check.proof, check.entry
    if args.json:
        out.json(check.to_dict())
    else:
        out.line(out.paint("proof OK", "green")
                 + f": entry seq {entry.seq} ({entry.type.value}, {entry.time}) is in "
                   f"{proof.origin} at size {proof.tree_size}, checkpoint signed by a "
                   "trusted hybrid key")
    return EXIT_OK


def cmd_repair(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.ledger import repair

    moved = repair(context_of(args))
    if not moved:
        out.line("nothing to repair: every ledger line is complete")
    for path in moved:
        out.line(f"moved an incomplete last line to {path}")
    if moved:
        out.info("run `docklock ledger verify` next")
    return EXIT_OK
