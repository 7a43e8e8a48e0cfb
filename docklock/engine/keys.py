"""The signing key's use cases: create, describe, rotate, import, export, starting the
ledger after `keys init`, and keys for a team (export-public, trust, untrust: see
docs/team-keys.md). Thin over docklock.ledger, which owns `.docklock/keys/` and
docklock.pub; each function returns what happened for the caller to show."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docklock.errors import BackendError, WitnessError

if TYPE_CHECKING:
    from docklock.engine.context import Context
    from docklock.ledger import Checkpoint, Entry, HybridSigner
    from docklock.ledger.trust import TrustResult
    from docklock.workspace import WorkspacePaths

# docklock.ledger.keys' names, here so that a parser can offer them without loading the
# cryptography (a unit test keeps them in step).
ALGORITHM_NAMES = ("mldsa65-ed25519", "mldsa87-ed25519")
DEFAULT_ALGORITHM = "mldsa87-ed25519"
PASSPHRASE_ENV = "DOCKLOCK_KEY_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
SIGNING_KEY_ENV = "DOCKLOCK_SIGNING_KEY"
SIGNING_KEY_FILE_ENV = "DOCKLOCK_SIGNING_KEY_FILE"


@dataclass(frozen=True)
class KeyCreated:
    """`keys init`: the new key, its files, and whether a signed ledger now refers to a
    replaced key (`orphaned_ledger`: its checkpoints no longer verify)."""

    signer: HybridSigner
    private_path: Path
    public_path: Path
    encrypted: bool
    orphaned_ledger: bool
    personal: bool = False  # docklock.pub untouched: signs once `keys trust` adds it


def init(ctx: Context, algorithm: str = DEFAULT_ALGORITHM, *, force: bool = False,
         personal: bool = False) -> KeyCreated:
    """Create the signing key (encrypted when DOCKLOCK_KEY_PASSPHRASE is set) and the
    public keyring docklock.pub; `force` overwrites an existing key. `personal`: a team
    member's own key in a clone; docklock.pub is left as it is."""
    from docklock.ledger import (
        Ledger,
        init_keys,
        keys_exist,
        public_keyring_path,
        signing_key_path,
    )
    from docklock.ledger.keys import passphrase_from_env

    paths = ctx.paths
    if not personal:
        _refuse_a_taken_workspace(paths)
    existed = keys_exist(paths)
    signer = init_keys(paths, algorithm, force=force, personal=personal)
    orphaned = (existed and not personal
                and Ledger.open(paths).latest_checkpoint() is not None)
    return KeyCreated(signer, signing_key_path(paths), public_keyring_path(paths),
                      bool(passphrase_from_env()), orphaned, personal)


def _refuse_a_taken_workspace(paths: WorkspacePaths) -> None:
    """A PostgreSQL workspace that already holds state or a ledger is not this new
    key's to start: it is another project's whose cluster has the same name (the default
    workspace key), or this project's own, whose shared ledger a new docklock.pub would
    orphan for every teammate (its rows cannot be deleted). Files are this folder's
    alone: `keys init --force` there keeps its old behaviour."""
    from docklock.backend import backend_settings, postgres_backend

    settings = backend_settings(paths)
    if settings.is_local:
        return
    from docklock.backend.pg import foreign_workspace_hint

    backend = postgres_backend(settings)
    has_state, has_ledger = backend.holdings()
    if not (has_state or has_ledger):
        return
    held = " and ".join(w for w, h in (("state", has_state), ("a ledger", has_ledger)) if h)
    raise BackendError(
        f"workspace {backend.workspace!r} in the database named by {backend.conninfo_env} "
        f"already holds {held}: `keys init` would start a new docklock.pub over it",
        location=settings.location,
        hint=foreign_workspace_hint(backend) + "; a teammate joining this project runs "
             "`docklock keys init --personal` instead")


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
    """The keyring's keys and signers (without the public key bytes) and the private key
    (file, or the environment variable it comes from)."""
    from docklock.ledger import load_keyring, public_keyring_path, signing_key_path
    from docklock.ledger.keys import SEALED_BEGIN, key_source

    paths = ctx.paths
    keyring = load_keyring(paths)
    source = key_source(paths)
    private = source.path if source.path is not None else signing_key_path(paths)
    info: dict[str, Any] = {
        "current": keyring.current,
        "keyring": str(public_keyring_path(paths)),
        "keys": [k.to_dict() | {"current": k.keyid == keyring.current,
                                "public_key_bytes": len(k.composite)} for k in keyring.keys],
        "signers": [s.to_dict() | {"active": s.active, "public_key_bytes":
                                   len(s.key.composite)} for s in keyring.signers],
        "private_key": None,
    }
    for k in (*info["keys"], *info["signers"]):
        k.pop("public_key")  # kilobytes of base64 help nobody on a terminal
    if source.kind == "env":
        info["private_key"] = {"path": None, "env": source.label, "mode": None,
                               "encrypted": SEALED_BEGIN.decode() in
                               os.environ.get(SIGNING_KEY_ENV, "")}
    elif private.exists():
        head = private.read_bytes()
        info["private_key"] = {
            "path": str(private),
            "mode": f"{stat.S_IMODE(private.stat().st_mode):04o}",
            "encrypted": SEALED_BEGIN in head or b"ENCRYPTED PRIVATE KEY" in head,
        }
        if source.from_env:
            info["private_key"]["env"] = SIGNING_KEY_FILE_ENV
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


def import_key(ctx: Context, file: Path, *, name: str | None = None
               ) -> KeyImported | KeyTrusted:
    """Install `file` (from `keys export`) as this workspace's signing key; a public key
    file (from `keys export-public`) is trusted as a signer instead (`trust`)."""
    from docklock.ledger.keys import read_public_key_document

    if read_public_key_document(file) is not None:
        return trust(ctx, file, name=name)
    from docklock.ledger import (
        default_storage,
        load_keyring,
        public_keyring_path,
        signing_key_path,
    )
    from docklock.ledger import import_key as install

    paths = ctx.paths
    signer = install(paths, file)
    recorded = load_keyring(paths).ledger
    # Asked of the ledger's storage: with a shared backend the entries are not here.
    missing = (recorded if recorded and default_storage(paths).entries_size() == 0
               else None)
    return KeyImported(signer.keyid, signing_key_path(paths), public_keyring_path(paths),
                       missing)


def export_key(ctx: Context, file: Path) -> Path:
    """Copy the signing key file as stored (sealed if it is) to `file`, mode 0600."""
    from docklock.ledger import export_key as export

    return export(ctx.paths, file)


@dataclass(frozen=True)
class PublicKeyExported:
    keyid: str
    name: str
    path: Path


def export_public(ctx: Context, file: Path, *, name: str | None = None) -> PublicKeyExported:
    """Write the public half of the signing key in use (for `keys trust` elsewhere)."""
    from docklock.ledger.keys import export_public_key
    from docklock.ledger.store import actor

    chosen = name or actor()
    key = export_public_key(ctx.paths, file, chosen)
    return PublicKeyExported(key.keyid, chosen, file)


@dataclass(frozen=True)
class KeyTrusted:
    """`keys trust` / `untrust`: the key-trust entry and checkpoint, and docklock.pub
    (commit it: reviewers see the new signer)."""

    result: TrustResult
    public_path: Path


def trust(ctx: Context, file: Path, *, name: str | None = None) -> KeyTrusted:
    """Add the public key in `file` as a signer (needs the workspace key here)."""
    from docklock.errors import KeyMaterialError
    from docklock.ledger import public_keyring_path
    from docklock.ledger.keys import read_public_key_document
    from docklock.ledger.trust import trust_signer

    doc = read_public_key_document(file)
    if doc is None:
        raise KeyMaterialError(f"{file} is not a public key file (it looks like a private "
                               "key: never send those around)",
                               hint="make one with `docklock keys export-public FILE`")
    key, file_name = doc
    chosen = name or file_name
    if not chosen:
        raise KeyMaterialError(f"{file} names no signer", hint="pass --name NAME")
    return KeyTrusted(trust_signer(ctx.paths, key, chosen), public_keyring_path(ctx.paths))


def untrust(ctx: Context, which: str) -> KeyTrusted:
    """Remove a signer (name or key id); what it signed stays valid."""
    from docklock.ledger import public_keyring_path
    from docklock.ledger.trust import untrust_signer

    return KeyTrusted(untrust_signer(ctx.paths, which), public_keyring_path(ctx.paths))
