"""Key rotation: a `key-rotation` ledger entry hands signing over from the old key to a new one.

The entry's payload carries the new public key and two hybrid signatures over the same
statement (origin, old key id, new key, and the entry's own seq and prev hash, so it cannot
be replayed elsewhere in the ledger):
- `endorsement` by the OLD key: the key in charge vouches for its successor;
- `acceptance` by the NEW key: proof that whoever rotated holds the new private key.
Checkpoints covering the rotation entry must be signed by the new key; the old key may not
sign any checkpoint after it. `ledger verify` enforces this sequence.

Order on disk keeps a crash recoverable: the new private key is written first (as
keys/pending.key), then the entry is appended, then the key files are swapped, then the
new key signs a checkpoint. A rotate that stopped after appending its entry is finished
by running `keys rotate` again: it finds the unsigned entry handing over to the key in
keys/pending.key and completes the swap with that key (not a fresh one).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from docklock import _fs
from docklock.errors import KeyMaterialError, LedgerError
from docklock.ledger.keys import (
    CTX_ROTATION,
    HybridPublicKey,
    HybridSignatureError,
    HybridSigner,
    Keyring,
    key_source,
    load_keyring,
    passphrase_from_env,
    private_folder,
    public_keyring_path,
    require_signer,
    retired_key_path,
    signing_key_path,
    write_signing_key,
)
from docklock.ledger.store import Checkpoint, Entry, EntryType, Ledger
from docklock.objects import canonical_json
from docklock.workspace import WorkspacePaths


def rotation_statement(origin: str, old_keyid: str, new_key: HybridPublicKey, seq: int,
                       prev: str) -> bytes:
    return canonical_json({
        "statement": "docklock key rotation", "origin": origin, "old_keyid": old_keyid,
        "new_key": new_key.to_dict() | {"created": None}, "seq": seq, "prev": prev,
    })


def rotation_payload(origin: str, old: HybridSigner, new: HybridSigner, seq: int,
                     prev: str) -> dict[str, Any]:
    msg = rotation_statement(origin, old.keyid, new.public_key, seq, prev)
    return {
        "old_keyid": old.keyid,
        "new_key": new.public_key.to_dict(),
        "endorsement": base64.b64encode(old.sign(msg, context=CTX_ROTATION)).decode("ascii"),
        "acceptance": base64.b64encode(new.sign(msg, context=CTX_ROTATION)).decode("ascii"),
    }


def check_rotation(entry: Entry, origin: str, keys: Keyring, active: str | None) -> str:
    """Verify a key-rotation entry against the active key; returns the new active key id."""
    p: Mapping[str, Any] = entry.payload
    try:
        old_keyid = str(p["old_keyid"])
        new_key = HybridPublicKey.from_dict(p["new_key"])
        endorsement = base64.b64decode(str(p["endorsement"]), validate=True)
        acceptance = base64.b64decode(str(p["acceptance"]), validate=True)
    except (KeyError, TypeError, binascii.Error, KeyMaterialError) as exc:
        raise LedgerError(f"key-rotation payload is malformed: {exc}") from exc
    if active is not None and old_keyid != active:
        raise LedgerError(f"key-rotation names old key {old_keyid[:16]}, but the active key "
                          f"is {active[:16]}")
    old = keys.lookup(old_keyid)
    if old is None:
        raise LedgerError(f"key-rotation is endorsed by key {old_keyid[:16]}, which is not "
                          f"in {keys.source}")
    new = keys.lookup(new_key.keyid)
    if new is None or new.public_key.composite != new_key.composite:
        raise LedgerError(f"key-rotation introduces key {new_key.keyid[:16]}, which is not "
                          f"in {keys.source}",
                          hint="add the new public key to docklock.pub (keys rotate does)")
    msg = rotation_statement(origin, old_keyid, new_key, entry.seq, entry.prev)
    for who, verifier, sig in (("endorsement by the old key", old, endorsement),
                               ("acceptance by the new key", new, acceptance)):
        try:
            verifier.verify(msg, sig, context=CTX_ROTATION)
        except HybridSignatureError as exc:
            raise LedgerError(f"key-rotation {who}: {exc.message}") from exc
    return new_key.keyid


@dataclass(frozen=True)
class RotationResult:
    old_keyid: str
    new_keyid: str
    entry: Entry
    checkpoint: Checkpoint


def rotate_keys(paths: WorkspacePaths, *, algorithm_name: str | None = None,
                passphrase: str | None = None, ledger: Ledger | None = None) -> RotationResult:
    """Replace the signing key, recording the hand-over in the ledger."""
    source = key_source(paths)
    if source.from_env:
        # Rotation swaps the key files; a key handed in by the environment has none here.
        raise KeyMaterialError(f"`keys rotate` replaces .docklock/keys/signing.key, but the "
                               f"signing key comes from {source.label}",
                               hint="unset it and rotate where the workspace key lives")
    old = require_signer(paths, passphrase=passphrase)
    keyring = load_keyring(paths)
    if keyring.current != old.keyid:
        team = keyring.signer(old.keyid) is not None
        raise KeyMaterialError(
            f"the signing key {old.keyid[:16]} is not the current key of docklock.pub "
            f"({keyring.current[:16]})",
            hint=("only the chain's key rotates; a signer replaces its key with `keys "
                  "init --personal` and `keys trust`, then `keys untrust` of the old one")
            if team else "restore the matching docklock.pub first")
    ledger = ledger or Ledger.open(paths, signer=old)
    ledger.signer = old  # the rotation entry is the old key's last act
    resumed = _interrupted(paths, ledger, old, passphrase)
    if resumed is not None:
        # A rotate that stopped after its entry: finish that one (same new key), since
        # the entry already put the new key in charge and nothing else could sign.
        new, entry = resumed
        check_rotation(entry, ledger.origin, load_keyring(paths), old.keyid)
        return _finish(paths, ledger, old, new, entry=entry, keyring=load_keyring(paths))
    new = HybridSigner.generate(algorithm_name or old.alg.name)

    # 1. everything so far is signed by the old key; 2. stage the new key (private and
    # public) so a crash after the entry is appended never loses it.
    ledger.checkpoint(old)
    # Reloaded: that checkpoint may have been the ledger's first and recorded its
    # identity in docklock.pub; saving the copy read above would drop that marker.
    keyring = load_keyring(paths)
    pending = paths.keys / "pending.key"
    write_signing_key(paths, new, passphrase, path=pending)
    keyring = keyring.with_key(new.public_key, make_current=False)
    keyring.save(public_keyring_path(paths))

    entry = ledger.append_with(
        EntryType.KEY_ROTATION,
        lambda seq, prev: rotation_payload(ledger.origin, old, new, seq, prev))

    return _finish(paths, ledger, old, new, entry=entry, keyring=keyring)


def _finish(paths: WorkspacePaths, ledger: Ledger, old: HybridSigner, new: HybridSigner,
            *, entry: Entry, keyring: Keyring) -> RotationResult:
    pending = paths.keys / "pending.key"
    # 3. swap: retire the old private key, promote the new one, mark it current.
    retired = retired_key_path(paths, old.keyid)
    private_folder(retired.parent)
    os.replace(signing_key_path(paths), retired)
    os.replace(pending, signing_key_path(paths))
    # Renames are durable only once their folders are synced: without this a power cut
    # could bring back the old key as current after docklock.pub already names the new.
    _fs.fsync_dir(retired.parent)
    _fs.fsync_dir(signing_key_path(paths).parent)
    keyring = keyring.with_key(new.public_key, make_current=True).with_rotation(
        old.keyid, new.keyid, entry.seq)
    keyring.save(public_keyring_path(paths))
    ledger.signer = new

    # 4. the new key signs the head that includes its own introduction.
    checkpoint = ledger.checkpoint(new)
    return RotationResult(old.keyid, new.keyid, entry, checkpoint)


def _interrupted(paths: WorkspacePaths, ledger: Ledger, old: HybridSigner,
                 passphrase: str | None) -> tuple[HybridSigner, Entry] | None:
    """The new key and entry of a rotation by `old` that stopped before the key swap:
    keys/pending.key holds the key the newest unsigned key-rotation entry hands over to."""
    pending = paths.keys / "pending.key"
    if not pending.exists():
        return None
    latest = ledger.latest_checkpoint()
    found: Entry | None = None
    for entry in ledger.entries(latest.size if latest is not None else 0):
        if entry.type is EntryType.KEY_ROTATION:
            found = entry
    if found is None or found.payload.get("old_keyid") != old.keyid:
        return None
    secret = passphrase if passphrase is not None else passphrase_from_env()
    new = HybridSigner.from_pem(pending.read_bytes(), secret, source=str(pending))
    new_key = found.payload.get("new_key")
    if not isinstance(new_key, Mapping) or new_key.get("keyid") != new.keyid:
        return None
    return new, found
