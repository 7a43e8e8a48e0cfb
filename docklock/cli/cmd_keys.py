"""`docklock keys init|show|rotate|import|export`: the workspace's hybrid signing key."""

from __future__ import annotations

import argparse
import stat
from pathlib import Path
from typing import Any

from docklock.cli._common import Output, command_group, workspace_of
from docklock.errors import EXIT_OK, WitnessError
from docklock.ledger import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    Ledger,
    export_key,
    import_key,
    init_keys,
    keys_exist,
    load_keyring,
    public_keyring_path,
    rotate_keys,
    signing_key_path,
)
from docklock.ledger.keys import PASSPHRASE_ENV, SEALED_BEGIN, passphrase_from_env
from docklock.ledger.record import start_ledger


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
    p.add_argument("--algorithm", choices=sorted(ALGORITHMS), default=DEFAULT_ALGORITHM,
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
    p.add_argument("--algorithm", choices=sorted(ALGORITHMS), default=None,
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
    paths = workspace_of(args)
    existed = keys_exist(paths)
    signer = init_keys(paths, args.algorithm, force=args.force)
    out.line(f"created {signer.alg.name} signing key {signer.keyid}")
    out.line(f"  private: {signing_key_path(paths)} (mode 0600, "
             f"{'encrypted' if passphrase_from_env() else 'not encrypted'})")
    out.line(f"  public:  {public_keyring_path(paths)} (commit it: reviewers and CI verify "
             "with it)")
    if not passphrase_from_env():
        out.info(f"note: set {PASSPHRASE_ENV} before `keys init` to encrypt the private key")
    if existed and Ledger.open(paths).latest_checkpoint() is not None:
        out.info(out.paint("warning: the existing ledger was signed by the replaced key; "
                           "`ledger verify` fails and commands refuse to sign over it until "
                           "the old docklock.pub is restored, or .docklock/ledger is moved "
                           "aside to start a new ledger", "yellow"))
    else:
        try:
            started = start_ledger(paths, signer) is not None
        except WitnessError as exc:  # the checkpoint is written; witnesses ask again later
            started = True
            out.info(out.paint(f"warning: {exc.message}", "yellow"))
        if started:
            out.line("  ledger:  started (a signed checkpoint of the empty ledger; deleting "
                     "the ledger is now detected)")
    return EXIT_OK


def _describe(args: argparse.Namespace) -> dict[str, Any]:
    paths = workspace_of(args)
    keyring = load_keyring(paths)
    private = signing_key_path(paths)
    info: dict[str, Any] = {
        "current": keyring.current,
        "keyring": str(public_keyring_path(paths)),
        "keys": [k.to_dict() | {"current": k.keyid == keyring.current,
                                "public_key_bytes": len(k.composite)} for k in keyring.keys],
        "private_key": None,
    }
    for k in info["keys"]:
        k.pop("public_key")  # kilobytes of base64 help nobody on a terminal
    if private.exists():
        head = private.read_bytes()
        info["private_key"] = {
            "path": str(private),
            "mode": f"{stat.S_IMODE(private.stat().st_mode):04o}",
            "encrypted": SEALED_BEGIN in head or b"ENCRYPTED PRIVATE KEY" in head,
        }
    return info


def cmd_show(args: argparse.Namespace, out: Output) -> int:
    info = _describe(args)
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
    paths = workspace_of(args)
    result = rotate_keys(paths, algorithm_name=args.algorithm)
    out.line(f"rotated signing key {result.old_keyid[:16]} -> {result.new_keyid}")
    out.line(f"  key-rotation entry seq {result.entry.seq} endorsed by the old key; "
             f"checkpoint at size {result.checkpoint.size} signed by the new key")
    out.line(f"  {public_keyring_path(paths)} updated (commit it); old private key kept in "
             f"{paths.keys / 'retired'}")
    return EXIT_OK


def cmd_import(args: argparse.Namespace, out: Output) -> int:
    paths = workspace_of(args)
    signer = import_key(paths, args.file)
    out.line(f"imported signing key {signer.keyid} into {signing_key_path(paths)} "
             "(mode 0600)")
    recorded = load_keyring(paths).ledger
    if recorded and not (paths.ledger / "entries.jsonl").exists():
        # The key alone cannot sign: the ledger it signed lives in the other workspace.
        out.info(out.paint(
            f"note: {public_keyring_path(paths).name} records ledger {recorded}, which is "
            f"not here: copy .docklock/ledger from the workspace that signed it before "
            "apply (or `docklock keys init --force` to start a new ledger on purpose)",
            "yellow"))
    return EXIT_OK


def cmd_export(args: argparse.Namespace, out: Output) -> int:
    paths = workspace_of(args)
    target = export_key(paths, args.file)
    out.line(f"wrote the signing key to {target} (mode 0600); keep it secret, and install "
             "it elsewhere with `docklock keys import` (copy .docklock/ledger there too)")
    return EXIT_OK
