"""`docklock keys init|show|rotate|import|export`: the workspace's hybrid signing key
(the CLI over docklock.engine.keys)."""

from __future__ import annotations

import argparse
from pathlib import Path

from docklock.cli._common import Output, command_group, context_of
from docklock.errors import EXIT_OK

# docklock.engine.keys' copies of docklock.ledger.keys' names (loading the ledger means
# loading the cryptography: not for building the parser).
ALGORITHM_NAMES = ("mldsa65-ed25519", "mldsa87-ed25519")
DEFAULT_ALGORITHM = "mldsa87-ed25519"
PASSPHRASE_ENV = "DOCKLOCK_KEY_PASSPHRASE"  # noqa: S105 - a variable name, not a secret


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    keys = sub.add_parser("keys", parents=[common], help="manage the signing key",
                          description="The hybrid (ML-DSA + Ed25519) key that signs plans "
                                      "and ledger checkpoints.")
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
                        help="install the private signing key from a file",
                        description="Install FILE (written by `keys export`) as this "
                                    "workspace's signing key. It must be the current key "
                                    "of docklock.pub; an existing different key is never "
                                    f"overwritten. An encrypted file needs {PASSPHRASE_ENV}.")
    p.add_argument("file", metavar="FILE", type=Path)
    p.set_defaults(handler=cmd_import)

    p = ksub.add_parser("export", parents=[common],
                        help="copy the private signing key to a file (mode 0600)",
                        description="Write the signing key file as stored (encrypted if it "
                                    "is) to FILE, for `keys import` in another clone.")
    p.add_argument("file", metavar="FILE", type=Path)
    p.set_defaults(handler=cmd_export)


def cmd_init(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine import keys

    ctx = context_of(args)
    created = keys.init(ctx, args.algorithm, force=args.force)
    signer = created.signer
    out.line(f"created {signer.alg.name} signing key {signer.keyid}")
    out.line(f"  private: {created.private_path} (mode 0600, "
             f"{'encrypted' if created.encrypted else 'not encrypted'})")
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
    priv = info["private_key"]
    if priv:
        enc = "encrypted" if priv["encrypted"] else "not encrypted"
        out.line(f"private key {priv['path']} (mode {priv['mode']}, {enc})")
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

    imported = keys.import_key(context_of(args), args.file)
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
