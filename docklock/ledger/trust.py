"""Who may write and sign what: per-entry signatures and the checks made before signing.

Every entry carries `sig`, an Ed25519 signature by the Ed25519 half of the key in charge
when it was appended, over

    ENTRY_DOMAIN || origin || 0x0A || the entry's canonical JSON without `sig`

(~50 µs to make, so an append stays well under 1 ms; an ML-DSA signature per entry would
cost ~1 ms and 4.6 kB). The domain prefix keeps these messages apart from the other uses
of the same Ed25519 half: composite message representatives start with
"CompositeAlgorithmSignatures2025", note texts with their origin line "docklock.io/...".

Invariants (docs/adr/0002-ledger-format.md):
- A command signs a checkpoint only with docklock.pub's `current` key and only over
  entries it can authenticate (`authenticate_tail`): the newest checkpoint must be
  signed by the key in charge at its size, every entry after it must carry a valid
  signature by the key in charge at its position (key-rotation entries hand over), and
  the key in charge at the end must be the signer. A line
  appended by anyone without the private key therefore never gets covered by a signature,
  and `ledger verify` reports it in the unsigned tail.
- Entries already covered by a verified checkpoint are authenticated by it; `ledger verify`
  checks per-entry signatures only after the newest checkpoint, so verifying 1M entries
  stays a hashing pass.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from docklock.errors import KeyMaterialError, LedgerError, Location, SignatureError
from docklock.ledger.keys import HybridPublicKey, Keyring, public_keyring_path

if TYPE_CHECKING:
    from docklock.ledger.store import Checkpoint, Entry, Ledger

ENTRY_DOMAIN = b"docklock/ledger-entry/v1\n"
_FOREIGN_HINT = ("an entry was written without the signing key (or edited): restore "
                 "`.docklock/ledger/entries.jsonl` from a backup, or investigate who wrote it; "
                 "`docklock ledger verify` names it")


@runtime_checkable
class EntrySigner(Protocol):
    """What appending needs: the key id and a plain Ed25519 signature by its Ed25519 half."""

    @property
    def keyid(self) -> str: ...

    @property
    def public_key(self) -> HybridPublicKey: ...

    def sign_ed25519(self, message: bytes) -> bytes: ...


def entry_message(origin: str, unsigned_line: bytes) -> bytes:
    return ENTRY_DOMAIN + origin.encode("utf-8") + b"\n" + unsigned_line


def sign_entry(signer: EntrySigner, origin: str, unsigned_line: bytes) -> str:
    return base64.b64encode(signer.sign_ed25519(entry_message(origin, unsigned_line))) \
        .decode("ascii")


class EntryKeys:
    """Ed25519 public keys by key id, built once per pass."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._eds: dict[str, ed25519.Ed25519PublicKey] = {}

    def check(self, entry: Entry, origin: str, keyid: str) -> str | None:
        """None if `entry` is signed by `keyid`; otherwise what is wrong."""
        if not entry.sig:
            return "the entry has no signature (written without the signing key?)"
        key = self._eds.get(keyid)
        if key is None:
            verifier = self.keyring.lookup(keyid)
            if verifier is None:
                return f"key {keyid[:16]} is not in {self.keyring.source}"
            key = ed25519.Ed25519PublicKey.from_public_bytes(verifier.public_key.ed25519)
            self._eds[keyid] = key
        try:
            raw = base64.b64decode(entry.sig, validate=True)
            key.verify(raw, entry_message(origin, entry.unsigned_line()))
        except (binascii.Error, ValueError, InvalidSignature):
            return (f"its signature does not verify with key {keyid[:16]}, the key in charge "
                    "at that point: it was written without the signing key, or edited")
        return None


def load_trusted_keyring(ledger: Ledger) -> Keyring:
    path = public_keyring_path(ledger.paths)
    try:
        return Keyring.load(path)
    except KeyMaterialError as exc:
        raise LedgerError(f"cannot sign the ledger: {exc.message}", location=exc.location,
                          hint=exc.hint or "restore docklock.pub") from exc


def authenticate_tail(ledger: Ledger, signer_keyid: str, latest: Checkpoint | None,
                      entries: Sequence[Entry]) -> Keyring:
    """Refuse (LedgerError) to sign over anything the signer cannot vouch for.

    `entries` are the parsed entries after `latest` (already checked for seq/prev links
    by the caller). Returns the keyring it checked against.
    """
    from docklock.ledger.note import open_note
    from docklock.ledger.rotation import check_rotation
    from docklock.ledger.store import EntryType

    keyring = load_trusted_keyring(ledger)
    where = Location(str(ledger.entries_path))
    if keyring.lookup(signer_keyid) is None:
        raise LedgerError(f"the signing key {signer_keyid[:16]} is not listed in "
                          f"{keyring.source}", hint="restore the matching docklock.pub")
    if signer_keyid != keyring.current:
        # A retired key signs nothing new, even over a ledger restored from before the
        # rotation (where the chain alone would still put it in charge).
        raise LedgerError(f"the signing key {signer_keyid[:16]} is not the current key "
                          f"{keyring.current[:16]} of {keyring.source}",
                          hint="only the current key may sign; a retired key cannot extend "
                               "the ledger")
    if keyring.ledger and keyring.ledger != ledger.origin:
        raise LedgerError(
            f"{keyring.source} belongs to ledger {keyring.ledger}, but this ledger is "
            f"{ledger.origin}: the ledger was deleted or replaced",
            location=Location(str(ledger.dir)),
            hint="restore .docklock/ledger from a backup; to start over on purpose, "
                 "`docklock keys init --force` makes a new key and keyring")
    rotations = [e for e in entries if e.type is EntryType.KEY_ROTATION]
    in_charge = str(rotations[0].payload.get("old_keyid", "")) if rotations else signer_keyid
    if latest is None:
        if in_charge != keyring.genesis_keyid:
            raise LedgerError(
                f"the first checkpoint must be signed by the genesis key "
                f"{keyring.genesis_keyid[:16]} of {keyring.source}, not {in_charge[:16]}",
                location=where, hint="sign with the workspace's original key, or restore "
                                     "docklock.pub")
    else:
        try:
            open_note(latest.note, ledger.origin, keyring, only_keyid=in_charge)
        except (SignatureError, LedgerError) as exc:
            raise LedgerError(
                f"the newest checkpoint (size {latest.size}) is not signed by the key in "
                f"charge {in_charge[:16]}: {exc.message}",
                location=Location(str(ledger.checkpoints_path)),
                hint="`docklock ledger verify` shows the damage; restore the ledger from a "
                     "backup") from exc
    keys = EntryKeys(keyring)
    active = in_charge
    for entry in entries:
        problem = keys.check(entry, ledger.origin, active)
        if problem is not None:
            raise LedgerError(
                f"refusing to sign over entry seq {entry.seq}: {problem}",
                location=Location(str(ledger.entries_path), entry.seq + 1), hint=_FOREIGN_HINT)
        if entry.type is EntryType.KEY_ROTATION:
            active = check_rotation(entry, ledger.origin, keyring, active)
    if active != signer_keyid:
        raise LedgerError(
            f"the key in charge of this ledger is {active[:16]}, not the signing key "
            f"{signer_keyid[:16]}", location=where,
            hint="only the current key may sign; a retired key cannot extend the ledger")
    return keyring
