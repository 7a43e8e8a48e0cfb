"""C2SP signed notes (c2sp.org/signed-note) and tlog checkpoints (c2sp.org/tlog-checkpoint).

A signed note is its text (ending in a newline), a blank line, then one line per signature:
`— <key name> <base64(4-byte key ID || signature)>`. DockLock signs with ONE composite line
per key: the signature is the whole hybrid signature (ML-DSA || Ed25519 over the composite
message representative), so the two halves cannot be separated or stripped one at a time.
The key ID follows the note spec's recommendation with the reserved type byte 0xff
followed by the composite Label as the longer identifier:

    key ID = SHA-256(key name || 0x0A || 0xff || Label || mldsaPK || ed25519PK)[:4]

Next to the composite line, a checkpoint note carries one STANDARD signed-note line, so
stock note verifiers and C2SP witnesses (which know nothing of the composite) can check it:
an Ed25519 signature (type 0x01) over the note text by the Ed25519 half of the same key,

    key ID = SHA-256(key name || 0x0A || 0x01 || ed25519PK)[:4]

with verifier key `<name>+<hex key ID>+<base64(0x01 || ed25519PK)>` (`note_verifier_key`).
Reusing the Ed25519 half is safe because the two messages can never coincide: every
composite message representative starts with the fixed "CompositeAlgorithmSignatures2025"
prefix, every note text starts with its origin line (docs/adr/0009-witnesses.md). DockLock
itself still REQUIRES the composite line; the standard line, when present and made by a
known key, must verify too (a failing signature from a known key rejects the note).

A checkpoint's text is exactly three lines: origin, tree size (decimal, no leading zeros),
base64 root hash. The key name equals the origin, `docklock.io/ledger/<cluster>`.

Verification follows the note spec: signatures from unknown keys are ignored; a signature
from a known key that fails rejects the note; a note with no verified known signature is
rejected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from docklock.errors import LedgerError, SignatureError
from docklock.ledger.keys import CTX_CHECKPOINT, HybridPublicKey, HybridVerifier, KeyLookup, Signer

EM_DASH = "\u2014"
TYPE_EXTENSION = b"\xff"
TYPE_ED25519 = 0x01  # signed-note Ed25519
TYPE_COSIGNATURE_V1 = 0x04  # c2sp.org/tlog-cosignature, timestamped Ed25519
TYPE_COSIGNATURE_MLDSA44 = 0x06  # c2sp.org/tlog-cosignature, timestamped ML-DSA-44 (subtree)
ED25519_PUBLIC_SIZE = 32
MLDSA44_PUBLIC_SIZE = 1312
ORIGIN_PREFIX = "docklock.io/ledger/"
MAX_SIGNATURES = 16
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")  # every control character but newline


class NoteError(LedgerError):
    """A signed note or checkpoint body is malformed."""


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes  # 4 bytes
    signature: bytes

    def line(self) -> str:
        blob = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{EM_DASH} {self.name} {blob}\n"


@dataclass(frozen=True)
class Note:
    text: str  # includes the final newline
    signatures: tuple[NoteSignature, ...]

    def render(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)


def note_key_id(name: str, key: HybridPublicKey) -> bytes:
    data = (name.encode("utf-8") + b"\n" + TYPE_EXTENSION + key.alg.label + key.composite)
    return hashlib.sha256(data).digest()[:4]


def typed_key_id(name: str, sig_type: int, public: bytes) -> bytes:
    """SHA-256(name || 0x0A || type || public key)[:4], the note spec's recommendation."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([sig_type]) + public).digest()[:4]


@runtime_checkable
class Ed25519NoteSigner(Protocol):
    """A signer that can also make the plain Ed25519 signature of the standard note line."""

    @property
    def public_key(self) -> HybridPublicKey: ...

    def sign_ed25519(self, message: bytes) -> bytes: ...


@dataclass(frozen=True)
class VerifierKey:
    """A signed-note verifier key (vkey): `<name>+<hex key ID>+<base64(type || public)>`."""

    name: str
    key_id: bytes
    sig_type: int
    public: bytes

    def render(self) -> str:
        blob = base64.b64encode(bytes([self.sig_type]) + self.public).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{blob}"

    @classmethod
    def ed25519(cls, name: str, public: bytes, sig_type: int = TYPE_ED25519) -> VerifierKey:
        _check_name(name)
        return cls(name, typed_key_id(name, sig_type, public), sig_type, public)

    @classmethod
    def parse(cls, text: str, *, want_type: int | tuple[int, ...] | None = None) -> VerifierKey:
        """Parse and check a vkey: the key ID must match name, type and key."""
        parts = text.strip().split("+", 2)  # base64 may itself contain "+"
        if len(parts) != 3:
            raise NoteError(f"verifier key {text[:60]!r} must be <name>+<hex key id>+<base64 "
                            "key>")
        name, hex_id, blob = parts
        _check_name(name)
        try:
            key_id = bytes.fromhex(hex_id)
            raw = base64.b64decode(blob, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise NoteError(f"verifier key for {name} has a malformed key id or key") from exc
        if len(key_id) != 4 or len(raw) < 2:
            raise NoteError(f"verifier key for {name} has a malformed key id or key")
        sig_type, public = raw[0], raw[1:]
        wanted = (want_type,) if isinstance(want_type, int) else want_type
        if wanted is not None and sig_type not in wanted:
            raise NoteError(f"verifier key for {name} has signature type 0x{sig_type:02x}, "
                            f"expected {' or '.join(f'0x{t:02x}' for t in wanted)}")
        if sig_type in (TYPE_ED25519, TYPE_COSIGNATURE_V1) and len(public) != \
                ED25519_PUBLIC_SIZE:
            raise NoteError(f"verifier key for {name}: an Ed25519 key is 32 bytes, got "
                            f"{len(public)}")
        if sig_type == TYPE_COSIGNATURE_MLDSA44 and len(public) != MLDSA44_PUBLIC_SIZE:
            raise NoteError(f"verifier key for {name}: an ML-DSA-44 key is "
                            f"{MLDSA44_PUBLIC_SIZE} bytes, got {len(public)}")
        if typed_key_id(name, sig_type, public) != key_id:
            raise NoteError(f"verifier key for {name}: key id {hex_id} does not match the key")
        return cls(name, key_id, sig_type, public)


def note_verifier_key(name: str, key: HybridPublicKey) -> str:
    """The standard (type 0x01) vkey of a hybrid key's Ed25519 half under `name`."""
    return VerifierKey.ed25519(name, key.ed25519).render()


def standard_signature(text: str, name: str, signer: Ed25519NoteSigner) -> NoteSignature:
    """The standard Ed25519 signature line (type 0x01) over a note text."""
    key_id = typed_key_id(name, TYPE_ED25519, signer.public_key.ed25519)
    return NoteSignature(name, key_id, signer.sign_ed25519(text.encode("utf-8")))


def verify_standard(note: Note, name: str, key: HybridPublicKey) -> bool:
    """Check the standard Ed25519 line of `key` in `note`: True if present and valid,
    False if absent; raises SignatureError if it is present and fails."""
    key_id = typed_key_id(name, TYPE_ED25519, key.ed25519)
    public = ed25519.Ed25519PublicKey.from_public_bytes(key.ed25519)
    found = False
    for sig in note.signatures:
        if sig.name != name or sig.key_id != key_id:
            continue
        try:
            public.verify(sig.signature, note.text.encode("utf-8"))
        except InvalidSignature:
            raise SignatureError(f"the standard Ed25519 note signature of key "
                                 f"{key.keyid[:16]} does not verify",
                                 hint="the note text or its signature line was edited") \
                from None
        found = True
    return found


def _check_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise NoteError(f"note key name {name!r} must be non-empty, without spaces or '+'")


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    bad = _CONTROL.search(text)
    if bad:
        raise NoteError(f"note text contains control character U+{ord(bad.group()):04X}")


def sign_note(text: str, name: str, signer: Signer, *, context: bytes = CTX_CHECKPOINT,
              standard: bool = True) -> str:
    """The signed note for `text`, signed by `signer` under key name `name`: the composite
    line, then (if `standard` and the signer can) the standard Ed25519 line."""
    _check_name(name)
    _check_text(text)
    sig = signer.sign(text.encode("utf-8"), context=context)
    sigs = [NoteSignature(name, note_key_id(name, signer.public_key), sig)]
    if standard and isinstance(signer, Ed25519NoteSigner):
        sigs.append(standard_signature(text, name, signer))
    return Note(text, tuple(sigs)).render()


def parse_note(data: str) -> Note:
    """Split a signed note into text and signature lines; no signature is checked here."""
    _check_text(data)
    # The text ends at the LAST blank line ("\n\n"); everything after is signature lines.
    sep = data.rfind("\n\n")
    if sep < 0:
        raise NoteError("signed note has no blank line before its signatures")
    text = data[:sep + 1]
    sigs: list[NoteSignature] = []
    for raw in data[sep + 2:].splitlines():
        if not raw.startswith(EM_DASH + " "):
            raise NoteError(f"malformed signature line {raw[:40]!r}")
        parts = raw[2:].split(" ")
        if len(parts) != 2:
            raise NoteError(f"malformed signature line {raw[:40]!r}")
        name, blob = parts
        _check_name(name)
        try:
            decoded = base64.b64decode(blob, validate=True)
        except binascii.Error as exc:
            raise NoteError(f"signature for {name} is not base64") from exc
        if len(decoded) < 5:
            raise NoteError(f"signature for {name} is too short")
        sigs.append(NoteSignature(name, decoded[:4], decoded[4:]))
    if not sigs:
        raise NoteError("signed note has no signatures")
    if len(sigs) > MAX_SIGNATURES:
        raise NoteError(f"signed note has {len(sigs)} signatures (limit {MAX_SIGNATURES})")
    return Note(text, tuple(sigs))


def open_note(data: str, name: str, keys: KeyLookup, *,
              context: bytes = CTX_CHECKPOINT,
              only_keyid: str | Collection[str] | None = None
              ) -> tuple[Note, HybridVerifier]:
    """Verify a signed note; returns it with the verifier whose signature verified.

    `only_keyid` restricts which trusted keys may sign (the ledger's keys in charge: one
    key id, or several for a team); others count as unknown. Raises SignatureError naming
    the failing half, or when no trusted key signed.
    """
    note = parse_note(data)
    if isinstance(only_keyid, str):
        candidates = [only_keyid] if only_keyid else list(keys.trusted_keyids())
    elif only_keyid is not None:
        candidates = list(dict.fromkeys(k for k in only_keyid if k))  # order kept, no repeats
    else:
        candidates = list(keys.trusted_keyids())
    known: dict[tuple[str, bytes], HybridVerifier] = {}
    for keyid in candidates:
        verifier = keys.lookup(keyid)
        if verifier is not None:
            known[(name, note_key_id(name, verifier.public_key))] = verifier
    accepted: HybridVerifier | None = None
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue  # unknown signer: ignored, as the note spec requires
        verifier.verify(note.text.encode("utf-8"), sig.signature, context=context)
        verify_standard(note, name, verifier.public_key)  # if present, it must hold too
        accepted = verifier
    if accepted is None:
        seen = ", ".join(f"{s.name}/{s.key_id.hex()}" for s in note.signatures)
        want = ", ".join(k[:16] for k in candidates)
        raise SignatureError(f"no signature by a trusted key (signed by {seen}; "
                             f"trusted: {want})",
                             hint="the note was signed by another key, or the keyring "
                                  "docklock.pub is not the one this ledger uses")
    return note, accepted


# ------------------------------------------------------------------------ checkpoints


def origin_for(cluster: str) -> str:
    origin = ORIGIN_PREFIX + cluster
    _check_name(origin)
    return origin


@dataclass(frozen=True)
class CheckpointBody:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode('ascii')}\n"

    @classmethod
    def parse(cls, text: str) -> CheckpointBody:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("checkpoint text must have origin, size and root lines")
        if len(lines) != 4:
            raise NoteError("checkpoint has extension lines; DockLock writes none")
        origin, size_s, root_s = lines[:3]
        if not origin:
            raise NoteError("checkpoint origin is empty")
        if not size_s.isdigit() or (size_s != "0" and size_s.startswith("0")):
            raise NoteError(f"checkpoint size {size_s!r} is not a decimal without leading zeros")
        try:
            root = base64.b64decode(root_s, validate=True)
        except binascii.Error as exc:
            raise NoteError("checkpoint root is not base64") from exc
        if len(root) != 32:
            raise NoteError(f"checkpoint root is {len(root)} bytes, not 32")
        return cls(origin, int(size_s), root)
