"""Timestamped checkpoint cosignatures (c2sp.org/tlog-cosignature, "cosignature/v1").

A cosignature is a signed-note line `— <witness name> base64(keyID || u64 time || sig)`.
Two key types:

- Ed25519 (type 0x04): keyID = SHA-256(name || 0x0A || 0x04 || pubkey)[:4]; `sig` is
  Ed25519 over "cosignature/v1\\ntime <T>\\n" || checkpoint note text. The message does
  not commit to the witness name, so one key serves exactly one witness name.
- ML-DSA-44 (type 0x06, post-quantum; the spec's recommendation for new deployments):
  keyID over 0x06 || the 1312-byte key; `sig` is ML-DSA-44 (empty context) over the
  binary `cosigned_message`: "subtree/v1\\n\\0", u8-length-prefixed witness name, u64
  time, u8-length-prefixed origin, u64 start (0 for a checkpoint), u64 end (the size),
  and the 32-byte root. Extension lines are not covered by this type.

The witness's verifier key is `<name>+<hex keyID>+<base64(type || pubkey)>`.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

from docklock.errors import SignatureError
from docklock.ledger.note import (
    EM_DASH,
    TYPE_COSIGNATURE_MLDSA44,
    TYPE_COSIGNATURE_V1,
    NoteError,
    NoteSignature,
    VerifierKey,
    parse_note,
)

HEADER = "cosignature/v1\n"
SUBTREE_LABEL = b"subtree/v1\n\x00"
TIMESTAMP_SIZE = 8
SIGNATURE_SIZES = {TYPE_COSIGNATURE_V1: 64, TYPE_COSIGNATURE_MLDSA44: 2420}
MAX_TIMESTAMP = (1 << 63) - 1
ALGORITHMS = {"ed25519": TYPE_COSIGNATURE_V1, "ml-dsa-44": TYPE_COSIGNATURE_MLDSA44}

CosignerKey = ed25519.Ed25519PrivateKey | mldsa.MLDSA44PrivateKey


def signed_message(text: str, timestamp: int) -> bytes:
    """The Ed25519 (type 0x04) signed message."""
    if not 0 < timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp} is out of range")
    return f"{HEADER}time {timestamp}\n{text}".encode()


def _checkpoint_fields(text: str) -> tuple[str, int, bytes]:
    lines = text.split("\n")
    if len(lines) < 4 or not lines[1].isdigit():
        raise NoteError("a cosigned checkpoint needs origin, size and root lines")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except binascii.Error as exc:
        raise NoteError("the checkpoint root is not base64") from exc
    if len(root) != 32:
        raise NoteError("the checkpoint root is not 32 bytes")
    return lines[0], int(lines[1]), root


def subtree_message(name: str, timestamp: int, text: str) -> bytes:
    """The ML-DSA-44 (type 0x06) `cosigned_message` of a whole checkpoint."""
    if not 0 < timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp} is out of range")
    origin, size, root = _checkpoint_fields(text)
    name_b, origin_b = name.encode("utf-8"), origin.encode("utf-8")
    if not 0 < len(name_b) < 256 or not 0 < len(origin_b) < 256:
        raise NoteError("witness name and log origin must be 1..255 bytes for ML-DSA-44")
    return (SUBTREE_LABEL + bytes([len(name_b)]) + name_b + timestamp.to_bytes(8, "big")
            + bytes([len(origin_b)]) + origin_b + (0).to_bytes(8, "big")
            + size.to_bytes(8, "big") + root)


def _message(sig_type: int, name: str, text: str, timestamp: int) -> bytes:
    if sig_type == TYPE_COSIGNATURE_MLDSA44:
        return subtree_message(name, timestamp, text)
    return signed_message(text, timestamp)


@dataclass(frozen=True)
class Cosigner:
    """A witness's private key and name."""

    name: str
    key: CosignerKey

    @property
    def sig_type(self) -> int:
        if isinstance(self.key, mldsa.MLDSA44PrivateKey):
            return TYPE_COSIGNATURE_MLDSA44
        return TYPE_COSIGNATURE_V1

    @property
    def public(self) -> bytes:
        return self.key.public_key().public_bytes_raw()

    @property
    def vkey(self) -> VerifierKey:
        return VerifierKey.ed25519(self.name, self.public, self.sig_type)

    def cosign(self, text: str, timestamp: int | None = None) -> NoteSignature:
        """The cosignature line over a checkpoint note text (body only, no signatures)."""
        t = int(time.time()) if timestamp is None else timestamp
        message = _message(self.sig_type, self.name, text, t)
        sig = self.key.sign(message)
        return NoteSignature(self.name, self.vkey.key_id,
                             t.to_bytes(TIMESTAMP_SIZE, "big") + sig)


@dataclass(frozen=True)
class CosignatureVerifier:
    """Checks cosignatures of one witness, given its verifier key (type 0x04 or 0x06)."""

    vkey: VerifierKey

    @classmethod
    def parse(cls, text: str) -> CosignatureVerifier:
        return cls(VerifierKey.parse(text, want_type=tuple(SIGNATURE_SIZES)))

    @property
    def name(self) -> str:
        return self.vkey.name

    def matches(self, sig: NoteSignature) -> bool:
        return sig.name == self.vkey.name and sig.key_id == self.vkey.key_id

    def verify(self, text: str, sig: NoteSignature) -> int:
        """The cosignature's timestamp; raises SignatureError if it does not verify."""
        if not self.matches(sig):
            raise SignatureError(f"the signature is not by witness {self.name}")
        blob = sig.signature
        size = SIGNATURE_SIZES[self.vkey.sig_type]
        if len(blob) != TIMESTAMP_SIZE + size:
            raise SignatureError(f"cosignature by {self.name} has {len(blob)} bytes, "
                                 f"not {TIMESTAMP_SIZE + size}")
        timestamp = int.from_bytes(blob[:TIMESTAMP_SIZE], "big")
        try:
            message = _message(self.vkey.sig_type, self.name, text, timestamp)
            if self.vkey.sig_type == TYPE_COSIGNATURE_MLDSA44:
                mldsa.MLDSA44PublicKey.from_public_bytes(self.vkey.public).verify(
                    blob[TIMESTAMP_SIZE:], message)
            else:
                ed25519.Ed25519PublicKey.from_public_bytes(self.vkey.public).verify(
                    blob[TIMESTAMP_SIZE:], message)
        except (InvalidSignature, NoteError, ValueError):
            raise SignatureError(f"the cosignature by witness {self.name} does not verify",
                                 hint="the checkpoint or the cosignature was altered, or "
                                      "the witness key in docklock.yaml is not this "
                                      "witness's") from None
        return timestamp

    def find(self, text: str, lines: str) -> tuple[NoteSignature, int] | None:
        """This witness's verified cosignature among signature lines (others ignored)."""
        found: tuple[NoteSignature, int] | None = None
        for sig in parse_signature_lines(lines):
            if self.matches(sig):
                found = (sig, self.verify(text, sig))
        return found


def parse_signature_lines(lines: str) -> list[NoteSignature]:
    """Signature lines (each `— name base64`), e.g. an add-checkpoint response body."""
    if not lines.strip():
        return []
    if not lines.endswith("\n"):
        raise NoteError("signature lines must end with a newline")
    for line in lines.splitlines():
        if not line.startswith(EM_DASH + " "):
            raise NoteError(f"not a signature line: {line[:40]!r}")
    # Reuse the note parser on a dummy text so the line rules are one implementation.
    return list(parse_note("x\n\n" + lines).signatures)
