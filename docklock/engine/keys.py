"""The signing key's use cases: create, describe, rotate, import, export, and starting
the ledger after `keys init`. Thin over docklock.ledger, which owns `.docklock/keys/`
and docklock.pub; each function returns what happened for the caller to show."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docklock.errors import WitnessError

if TYPE_CHECKING:
    from docklock.engine.context import Context
    from docklock.ledger import Checkpoint, Entry, HybridSigner

# docklock.ledger.keys' names, here so that a parser can offer them without loading the
# cryptography (a unit test keeps them in step).
ALGORITHM_NAMES = ("mldsa65-ed25519", "mldsa87-ed25519")
DEFAULT_ALGORITHM = "mldsa87-ed25519"
PASSPHRASE_ENV = "DOCKLOCK_KEY_PASSPHRASE"  # noqa: S105 - a variable name, not a secret


@dataclass(frozen=True)
class KeyCreated:
    """`keys init`: the new key, its files, and whether a signed ledger now refers to a
    replaced key (`orphaned_ledger`: its checkpoints no longer verify)."""

    signer: HybridSigner
    private_path: Path
    public_path: Path
    encrypted: bool
    orphaned_ledger: bool


def init(ctx: Context, algorithm: str = DEFAULT_ALGORITHM, *, force: bool = False
         ) -> KeyCreated:
    """Create the signing key (encrypted when DOCKLOCK_KEY_PASSPHRASE is set) and the
    public keyring docklock.pub; `force` overwrites an existing key."""
    from docklock.ledger import (
        Ledger,
        init_keys,
        keys_exist,
        public_keyring_path,
        signing_key_path,
    )
    from docklock.ledger.keys import passphrase_from_env

    paths = ctx.paths
    existed = keys_exist(paths)
    signer = init_keys(paths, algorithm, force=force)
    orphaned = existed and Ledger.open(paths).latest_checkpoint() is not None
    return KeyCreated(signer, signing_key_path(paths), public_keyring_path(paths),
                      bool(passphrase_from_env()), orphaned)


@dataclass(frozen=True)
class LedgerStart:
    """After `keys init`: whether the ledger was started (a signed checkpoint of the
    empty ledger), and a witness that could not cosign it yet (a warning)."""

    started: bool
    witness_problem: str | None = None


def start_ledger(ctx: Context, signer: HybridSigner) -> LedgerStart:
    """Sign a checkpoint of the still-empty ledger (nothing when it holds entries)."""
    from docklock.ledger.record import start_ledger as start

    try:
        return LedgerStart(start(ctx.paths, signer) is not None)
    except WitnessError as exc:  # the checkpoint is written; witnesses ask again later
        return LedgerStart(True, exc.message)


def describe(ctx: Context) -> dict[str, Any]:
    """The keyring's keys (without the public key bytes) and the private key file."""
    from docklock.ledger import load_keyring, public_keyring_path, signing_key_path
    from docklock.ledger.keys import SEALED_BEGIN

    paths = ctx.paths
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


@dataclass(frozen=True)
class KeyRotated:
    old_keyid: str
    new_keyid: str
    entry: Entry
    checkpoint: Checkpoint
    public_path: Path
    retired_folder: Path


def rotate(ctx: Context, algorithm: str | None = None) -> KeyRotated:
    """Replace the key; the old key endorses the new one in the ledger."""
    from docklock.ledger import public_keyring_path, rotate_keys

    result = rotate_keys(ctx.paths, algorithm_name=algorithm)
    return KeyRotated(result.old_keyid, result.new_keyid, result.entry, result.checkpoint,
                      public_keyring_path(ctx.paths), ctx.paths.keys / "retired")


@dataclass(frozen=True)
class KeyImported:
    """The installed key, and the ledger docklock.pub names when it is not here
    (`missing_ledger`: copy it from the workspace that signed it before apply)."""

    keyid: str
    private_path: Path
    public_path: Path
    missing_ledger: str | None


def import_key(ctx: Context, file: Path) -> KeyImported:
    """Install `file` (from `keys export`) as this workspace's signing key."""
    from docklock.ledger import import_key as install
    from docklock.ledger import load_keyring, public_keyring_path, signing_key_path

    paths = ctx.paths
    signer = install(paths, file)
    recorded = load_keyring(paths).ledger
    missing = (recorded if recorded and not (paths.ledger / "entries.jsonl").exists()
               else None)
    return KeyImported(signer.keyid, signing_key_path(paths), public_keyring_path(paths),
                       missing)


def export_key(ctx: Context, file: Path) -> Path:
    """Copy the signing key file as stored (sealed if it is) to `file`, mode 0600."""
    from docklock.ledger import export_key as export

    return export(ctx.paths, file)
