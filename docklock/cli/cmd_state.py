"""`docklock state pull|list|show|rm|migrate`: the recorded state, for operators (the CLI
over docklock.engine.state)."""

from __future__ import annotations

import argparse

from docklock.cli._common import Output, command_group, context_of, duration_arg
from docklock.errors import EXIT_OK

# docklock.backend.BACKEND_TYPES, copied so building the parser loads no engine code.
BACKEND_TYPES = ("local", "postgres")
_LOCK_HELP = ("wait this long for the state lock instead of failing at once (seconds, or "
              "e.g. 500ms, 30s, 1m30s)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    state = sub.add_parser(
        "state", parents=[common], help="inspect, edit and migrate the recorded state",
        description="The recorded state of the backend docklock.yaml names (spec.backend: "
                    "local files or PostgreSQL). pull, list and show only read; rm and "
                    "migrate take the state lock and are signed into the ledger.")
    ssub = command_group(state, dest="state_command", metavar="SUBCOMMAND")

    p = ssub.add_parser("pull", parents=[common], help="print the state document",
                        description="Print the state document exactly as the backend "
                                    "stores it (what .docklock/state.json holds). Prints "
                                    "nothing when no state was recorded yet.")
    p.set_defaults(handler=cmd_pull)

    p = ssub.add_parser("list", parents=[common], help="list the recorded addresses",
                        description="The addresses the state records objects for, one per "
                                    "line.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_list)

    p = ssub.add_parser("show", parents=[common], help="show one address's recorded objects",
                        description="The Podman objects the state records for ADDRESS "
                                    "(Kind/namespace/name, Kind/name or a Service's name).")
    p.add_argument("address", metavar="ADDRESS")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_show)

    p = ssub.add_parser(
        "rm", parents=[common], help="forget addresses (their objects stay in Podman)",
        description="Remove ADDRESS... from the recorded state under the state lock, with a "
                    "signed state-rm ledger entry. Podman is not touched: the objects stay, "
                    "unrecorded; drift reports them, and the next plan adopts them while "
                    "the resource is in the specs, or deletes them once it is not.")
    p.add_argument("addresses", nargs="+", metavar="ADDRESS")
    p.add_argument("--dry-run", action="store_true",
                   help="show what would be removed; change nothing (needs no key)")
    p.add_argument("--lock-timeout", type=duration_arg, default=0.0, metavar="DURATION",
                   help=_LOCK_HELP)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_rm)

    p = ssub.add_parser(
        "migrate", parents=[common], help="move state and ledger to another backend",
        description="Move the state and the ledger, byte for byte, from the other backend "
                    "to the one docklock.yaml names (set spec.backend.type first). The "
                    "source ledger is verified first; the move is a signed state-migrate "
                    "ledger entry; local source files are kept in .docklock/migrated-<time>/, "
                    "a PostgreSQL source is marked moved. See docs/state-backends.md.")
    p.add_argument("--to", required=True, choices=BACKEND_TYPES,
                   help="the backend to move to (docklock.yaml must name it)")
    p.add_argument("--lock-timeout", type=duration_arg, default=0.0, metavar="DURATION",
                   help=_LOCK_HELP)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_migrate)


def cmd_pull(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.state import pull

    data = pull(context_of(args))
    if data is None:
        out.info("no state recorded yet")
        return EXIT_OK
    buffer = getattr(out.stdout, "buffer", None)
    if buffer is not None:  # the bytes as stored, not re-encoded
        out.stdout.flush()
        buffer.write(data)
        buffer.flush()
    else:
        out.stdout.write(data.decode("utf-8", "replace"))
    return EXIT_OK


def cmd_list(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.state import list_state

    listing = list_state(context_of(args))
    if args.json:
        out.json(listing.to_dict())
        return EXIT_OK
    for row in listing.resources:
        out.line(row.address)
    if not listing.resources:
        out.info(f"no resources recorded in {listing.store}")
    return EXIT_OK


def cmd_show(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.state import show

    view = show(context_of(args), args.address)
    if args.json:
        out.json(view.to_dict())
        return EXIT_OK
    out.line(out.paint(view.address, "bold"))
    for obj in view.objects:
        out.line(f"  {obj.key}")
        out.line(f"    kind:        {obj.kind.value}")
        out.line(f"    name:        {obj.name}")
        out.line(f"    id:          {obj.id}")
        out.line(f"    config hash: {obj.config_hash}")
        if obj.replica is not None:
            out.line(f"    replica:     {obj.replica}")
        if obj.image_id:
            out.line(f"    image id:    {obj.image_id}")
        if obj.created:
            out.line(f"    created:     {obj.created}")
        if obj.depends_on:
            out.line(f"    depends on:  {', '.join(obj.depends_on)}")
    return EXIT_OK


def cmd_rm(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.state import rm

    result = rm(context_of(args), list(args.addresses), dry_run=args.dry_run,
                lock_timeout=args.lock_timeout)
    if args.json:
        out.json(result.to_dict())
        return EXIT_OK
    verb = "Would remove" if result.dry_run else "Removed"
    for view in result.removed:
        out.line(f"{verb} {view.address} ({len(view.objects)} object(s): "
                 f"{', '.join(o.name for o in view.objects)})")
    if result.dry_run:
        out.line("Nothing changed (--dry-run).")
        return EXIT_OK
    out.line(f"State is now serial {result.serial}; recorded as ledger entry "
             f"{result.entry_seq} (state-rm).")
    out.info(f"note: the {result.object_count} object(s) stay in Podman, unrecorded: drift "
             "reports them; the next plan adopts them while their resource is in the "
             "specs, and deletes them once it is not.")
    if result.ledger_problem is not None:
        out.info(out.paint(f"warning: {result.ledger_problem}", "yellow"))
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.state import migrate

    result = migrate(context_of(args), args.to, lock_timeout=args.lock_timeout)
    if args.json:
        out.json(result.to_dict())
        return EXIT_OK
    out.line(f"Migrated {result.source} -> {result.target}")
    if result.state_serial is not None:
        out.line(f"  state:  lineage {result.state_lineage} serial {result.state_serial} "
                 "(copied byte for byte)")
    else:
        out.line("  state:  none recorded yet")
    copied = result.ledger
    resumed = (f", {copied.resumed_entries} already there from an interrupted migration"
               if copied.resumed_entries or copied.resumed_checkpoints else "")
    out.line(f"  ledger: {copied.entries} entries, {copied.checkpoints} checkpoints "
             f"verified and copied{resumed}; root {result.verified.root}")
    if result.finished_earlier_run:
        out.line(f"  recorded as ledger entry {result.entry_seq} (state-migrate) by an "
                 "interrupted run of this migration, now finished")
    else:
        out.line(f"  recorded as ledger entry {result.entry_seq} (state-migrate), "
                 "checkpoint signed")
    out.line(f"  source: {result.retired}")
    if result.ledger_problem is not None:
        out.info(out.paint(f"warning: {result.ledger_problem}", "yellow"))
    return EXIT_OK
