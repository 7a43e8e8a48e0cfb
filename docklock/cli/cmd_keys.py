"""`docklock keys init|show|rotate|import|export|export-public|trust|untrust`: the
workspace's hybrid signing key and the team's trusted signers (the CLI over
docklock.engine.keys; docs/team-keys.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from docklock.cli._common import Output, command_group, context_of
from docklock.errors import EXIT_OK

if TYPE_CHECKING:
    from docklock.engine.keys import KeyTrusted

# docklock.engine.keys' copies of docklock.ledger.keys' names (loading the ledger means
# loading the cryptography: not for building the parser).
ALGORITHM_NAMES = ("mldsa65-ed25519", "mldsa87-ed25519")
DEFAULT_ALGORITHM = "mldsa87-ed25519"
PASSPHRASE_ENV = "DOCKLOCK_KEY_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
SIGNING_KEY_ENV = "DOCKLOCK_SIGNING_KEY"
SIGNING_KEY_FILE_ENV = "DOCKLOCK_SIGNING_KEY_FILE"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    keys = sub.add_parser("keys", parents=[common], help="manage the signing keys",
                          description="The hybrid (ML-DSA + Ed25519) keys that sign plans "
                                      "and ledger checkpoints: the workspace key and the "
                                      "team's trusted signers (one per operator, one for "
                                      "CI), all listed in docklock.pub. A command signs "
                                      "with .docklock/keys/signing.key, or with the key in "
                                      f"{SIGNING_KEY_ENV} (PEM text) or "
                                      f"{SIGNING_KEY_FILE_ENV} (a path) when set.")
    ksub = command_group(keys, dest="keys_command", metavar="SUBCOMMAND")

    p = ksub.add_parser("init", parents=[common], help="create the signing key",
                        description="Create .docklock/keys/signing.key (0600; encrypted "
                                    f"when {PASSPHRASE_ENV} is set) and the public keyring "
                                    "docklock.pub (commit it).")
    p.add_argument("--algorithm", choices=ALGORITHM_NAMES, default=DEFAULT_ALGORITHM,
                   help=f"composite pairing (default {DEFAULT_ALGORITHM})")
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing key (the ledger's old checkpoints will no "
                        "longer verify; prefer `keys rotate`)")
    p.add_argument("--personal", action="store_true",
                   help="your own key in a clone whose docklock.pub exists: writes only the "
                        "private key (docklock.pub unchanged); it signs once a signer ran "
                        "`keys trust` with its public half (`keys export-public`)")
    p.set_defaults(handler=cmd_init)

    p = ksub.add_parser("show", parents=[common], help="show the public keys")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_show)

    p = ksub.add_parser("rotate", parents=[common],
                        help="replace the key; the old key endorses the new one in the ledger")
    p.add_argument("--algorithm", choices=ALGORITHM_NAMES, default=None,
                   help="pairing of the new key (default: same as the old key)")
    p.set_defaults(handler=cmd_rotate)

    p = ksub.add_parser("import", parents=[common],
                        help="install a private signing key, or trust a public key file",
                        description="Install FILE (written by `keys export`) as this "
                                    "workspace's signing key. It must be the current key "
                                    "of docklock.pub or an active signer; an existing "
                                    "different key is never overwritten. An encrypted file "
                                    f"needs {PASSPHRASE_ENV}. A public key file (written by "
                                    "`keys export-public`) is trusted as a signer instead, "
                                    "as `keys trust FILE` does.")
    p.add_argument("file", metavar="FILE", type=Path)
    p.add_argument("--name", default=None,
                   help="signer name, for a public key file (default: the name in FILE)")
    p.set_defaults(handler=cmd_import)

    p = ksub.add_parser("export", parents=[common],
                        help="copy the private signing key to a file (mode 0600)",
                        description="Write the signing key file as stored (encrypted if it "
                                    "is) to FILE, for `keys import` in another clone.")
    p.add_argument("file", metavar="FILE", type=Path)
    p.set_defaults(handler=cmd_export)

    p = ksub.add_parser("export-public", parents=[common],
                        help="write the signing key's public half to a file (safe to share)",
                        description="Write the public half of the key this workspace signs "
                                    f"with (the workspace key, or {SIGNING_KEY_ENV} / "
                                    f"{SIGNING_KEY_FILE_ENV}) to FILE, with a name, for a "
                                    "signer elsewhere to run `docklock keys trust FILE`.")
    p.add_argument("file", metavar="FILE", type=Path)
    p.add_argument("--name", default=None,
                   help="the signer's name, e.g. alice or ci (default: user@host)")
    p.set_defaults(handler=cmd_export_public)

    p = ksub.add_parser("trust", parents=[common],
                        help="add a public key file as a trusted signer",
                        description="Append a signed key-trust entry adding the public key "
                                    "in FILE (from `keys export-public`) as a signer, list "
                                    "it under `signers` in docklock.pub (commit it), and "
                                    "sign a checkpoint. Needs the workspace key here "
                                    "(docklock.pub's current key): a signer cannot add "
                                    "or remove signers.")
    p.add_argument("file", metavar="FILE", type=Path)
    p.add_argument("--name", default=None,
                   help="signer name (default: the name in FILE)")
    p.set_defaults(handler=cmd_trust)

    p = ksub.add_parser("untrust", parents=[common],
                        help="remove a trusted signer (its history stays valid)",
                        description="Append a signed key-trust entry removing the signer "
                                    "KEY (its name, or at least 8 hex digits of its key "
                                    "id); docklock.pub keeps it with `until`, so what it "
                                    "signed still verifies, but it signs nothing new. Needs "
                                    "the workspace key, as `keys trust` does.")
    p.add_argument("key", metavar="KEY")
    p.set_defaults(handler=cmd_untrust)


def cmd_init(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine import keys

    ctx = context_of(args)
    created = keys.init(ctx, args.algorithm, force=args.force, personal=args.personal)
    signer = created.signer
    out.line(f"created {signer.alg.name} signing key {signer.keyid}")
    out.line(f"  private: {created.private_path} (mode 0600, "
             f"{'encrypted' if created.encrypted else 'not encrypted'})")
    if created.personal:
        out.line(f"  public:  {created.public_path.name} unchanged; this key signs once the "
                 "workspace key trusts it:")
        out.line("           `docklock keys export-public FILE --name YOU` here, then "
                 "`docklock keys trust FILE` there")
        return EXIT_OK
    out.line(f"  public:  {created.public_path} (commit it: reviewers and CI verify "
             "with it)")
    if not created.encrypted:
        out.info(f"note: set {PASSPHRASE_ENV} before `keys init` to encrypt the private key")
    if created.orphaned_ledger:
        out.info(out.paint("warning: the existing ledger was signed by the replaced key; "
                           "`ledger verify` fails and commands refuse to sign over it until "
                           "the old docklock.pub is restored, or .docklock/ledger is moved "
                           "aside to start a new ledger", "yellow"))
    else:
        start = keys.start_ledger(ctx, signer)
        if start.witness_problem is not None:
            out.info(out.paint(f"warning: {start.witness_problem}", "yellow"))
        if start.started:
            out.line("  ledger:  started (a signed checkpoint of the empty ledger; deleting "
                     "the ledger is now detected)")
    return EXIT_OK


def cmd_show(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine import keys

    info = keys.describe(context_of(args))
    if args.json:
        out.json(info)
        return EXIT_OK
    out.line(f"keyring {info['keyring']}")
    for k in info["keys"]:
        mark = out.paint("current", "green") if k["current"] else "retired"
        out.line(f"  {k['keyid']}  {k['algorithm']}  {mark}  created {k.get('created', '?')}")
    if info["signers"]:
        out.line("signers")
        for s in info["signers"]:
            span = (f"since size {s['since']}" if s["active"]
                    else f"sizes {s['since']}..{s['until']}")
            mark = out.paint("trusted", "green") if s["active"] else "removed"
            out.line(f"  {s['keyid']}  {s['name']}  {mark}  {span}")
    priv = info["private_key"]
    if priv and priv["path"] is None:
        enc = "encrypted" if priv["encrypted"] else "not encrypted"
        out.line(f"private key from {priv['env']} ({enc})")
    elif priv:
        enc = "encrypted" if priv["encrypted"] else "not encrypted"
        via = f", from {priv['env']}" if priv.get("env") else ""
        out.line(f"private key {priv['path']} (mode {priv['mode']}, {enc}{via})")
    else:
        out.line("no private key in this workspace (verification only)")
    return EXIT_OK


def cmd_rotate(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine import keys

    result = keys.rotate(context_of(args), args.algorithm)
    out.line(f"rotated signing key {result.old_keyid[:16]} -> {result.new_keyid}")
    out.line(f"  key-rotation entry seq {result.entry.seq} endorsed by the old key; "
             f"checkpoint at size {result.checkpoint.size} signed by the new key")
    out.line(f"  {result.public_path} updated (commit it); old private key kept in "
             f"{result.retired_folder}")
    return EXIT_OK


def cmd_import(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine import keys

    imported = keys.import_key(context_of(args), args.file, name=args.name)
    if not isinstance(imported, keys.KeyImported):
        return _trusted(imported, out)
    out.line(f"imported signing key {imported.keyid} into {imported.private_path} "
             "(mode 0600)")
    if imported.missing_ledger:
        # The key alone cannot sign: the ledger it signed lives in the other workspace.
        out.info(out.paint(
            f"note: {imported.public_path.name} records ledger {imported.missing_ledger}, "
            "which is not here: copy .docklock/ledger from the workspace that signed it "
            "before apply (or `docklock keys init --force` to start a new ledger on "
            "purpose)", "yellow"))
    return EXIT_OK


def cmd_export(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine import keys

    target = keys.export_key(context_of(args), args.file)
    out.line(f"wrote the signing key to {target} (mode 0600); keep it secret, and install "
             "it elsewhere with `docklock keys import` (copy .docklock/ledger there too)")
    return EXIT_OK


def cmd_export_public(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine import keys

    done = keys.export_public(context_of(args), args.file, name=args.name)
    out.line(f"wrote the public key {done.keyid[:16]} ({done.name}) to {done.path}; it holds "
             "no secret")
    out.line("  a signer of this workspace adds it with `docklock keys trust "
             f"{done.path.name}` and commits docklock.pub")
    return EXIT_OK


def cmd_trust(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine import keys

    return _trusted(keys.trust(context_of(args), args.file, name=args.name), out)


def cmd_untrust(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine import keys

    return _trusted(keys.untrust(context_of(args), args.key), out)


def _trusted(done: KeyTrusted, out: Output) -> int:
    r = done.result
    verb = "trusted" if r.action == "add" else "removed"
    out.line(f"{verb} signer {r.name} {r.keyid}")
    out.line(f"  key-trust entry seq {r.entry.seq} endorsed by {r.by[:16]}; checkpoint at "
             f"size {r.checkpoint.size}" + (" (finished an interrupted run)" if r.resumed
                                            else ""))
    span = (f"signs from size {r.entry.seq + 1}" if r.action == "add"
            else f"signed sizes up to {r.entry.seq}; what it signed stays valid")
    out.line(f"  {done.public_path} updated: {span} (commit it)")
    return EXIT_OK
