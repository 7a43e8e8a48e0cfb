"""C2SP signed notes (c2sp.org/signed-note) and tlog checkpoints (c2sp.org/tlog-checkpoint).

A signed note is its text (ending in a newline), a blank line, then one line per signature:
`— <key name> <base64(4-byte key ID || signature)>`. DockLock signs with ONE composite line
per key: the signature is the whole hybrid signature (ML-DSA || Ed25519 over the composite
message representative), so the two halves cannot be separated or stripped one at a time.
The key ID follows the note spec's recommendation with the reserved type byte 0xff
followed by the composite Label as the longer identifier:

    key ID = SHA-256(key name || 0x0A || 0xff || Label || mldsaPK || ed25519PK)[:4]

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
from dataclasses import dataclass

from docklock.errors import LedgerError, SignatureError
from docklock.ledger.keys import CTX_CHECKPOINT, HybridPublicKey, HybridVerifier, KeyLookup, Signer

EM_DASH = "\u2014"
TYPE_EXTENSION = b"\xff"
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


def _check_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise NoteError(f"note key name {name!r} must be non-empty, without spaces or '+'")


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    bad = _CONTROL.search(text)
    if bad:
        raise NoteError(f"note text contains control character U+{ord(bad.group()):04X}")


def sign_note(text: str, name: str, signer: Signer, *, context: bytes = CTX_CHECKPOINT) -> str:
    """The signed note for `text`, signed by `signer` under key name `name`."""
    _check_name(name)
    _check_text(text)
    sig = signer.sign(text.encode("utf-8"), context=context)
    return Note(text, (NoteSignature(name, note_key_id(name, signer.public_key), sig),)).render()


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
              only_keyid: str | None = None) -> tuple[Note, HybridVerifier]:
    """Verify a signed note; returns it with the verifier whose signature verified.

    `only_keyid` restricts which trusted key may sign (the ledger's active key); others
    count as unknown. Raises SignatureError naming the failing half, or when no trusted
    key signed.
    """
    note = parse_note(data)
    candidates = [only_keyid] if only_keyid else list(keys.trusted_keyids())
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
