"""Timestamped Ed25519 cosignatures (c2sp.org/tlog-cosignature, "cosignature/v1").

A cosignature is a signed-note line `— <witness name> base64(keyID || u64 time || sig)`
where keyID = SHA-256(name || 0x0A || 0x04 || pubkey)[:4] and `sig` is Ed25519 over

    "cosignature/v1\\ntime <T>\\n" || checkpoint note text

The witness's verifier key is `<name>+<hex keyID>+<base64(0x04 || pubkey)>`. The message
does not commit to the witness name, so one key serves exactly one witness name.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from docklock.errors import SignatureError
from docklock.ledger.note import (
    EM_DASH,
    TYPE_COSIGNATURE_V1,
    NoteError,
    NoteSignature,
    VerifierKey,
    parse_note,
)

HEADER = "cosignature/v1\n"
TIMESTAMP_SIZE = 8
SIGNATURE_SIZE = 64
MAX_TIMESTAMP = (1 << 63) - 1


def signed_message(text: str, timestamp: int) -> bytes:
    if not 0 < timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp} is out of range")
    return f"{HEADER}time {timestamp}\n{text}".encode()


@dataclass(frozen=True)
class Cosigner:
    """A witness's private key and name."""

    name: str
    key: ed25519.Ed25519PrivateKey

    @property
    def public(self) -> bytes:
        return self.key.public_key().public_bytes_raw()

    @property
    def vkey(self) -> VerifierKey:
        return VerifierKey.ed25519(self.name, self.public, TYPE_COSIGNATURE_V1)

    def cosign(self, text: str, timestamp: int | None = None) -> NoteSignature:
        """The cosignature line over a checkpoint note text (body only, no signatures)."""
        t = int(time.time()) if timestamp is None else timestamp
        sig = self.key.sign(signed_message(text, t))
        return NoteSignature(self.name, self.vkey.key_id,
                             t.to_bytes(TIMESTAMP_SIZE, "big") + sig)


@dataclass(frozen=True)
class CosignatureVerifier:
    """Checks cosignatures of one witness, given its verifier key (type 0x04)."""

    vkey: VerifierKey

    @classmethod
    def parse(cls, text: str) -> CosignatureVerifier:
        return cls(VerifierKey.parse(text, want_type=TYPE_COSIGNATURE_V1))

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
        if len(blob) != TIMESTAMP_SIZE + SIGNATURE_SIZE:
            raise SignatureError(f"cosignature by {self.name} has {len(blob)} bytes, "
                                 f"not {TIMESTAMP_SIZE + SIGNATURE_SIZE}")
        timestamp = int.from_bytes(blob[:TIMESTAMP_SIZE], "big")
        public = ed25519.Ed25519PublicKey.from_public_bytes(self.vkey.public)
        try:
            public.verify(blob[TIMESTAMP_SIZE:], signed_message(text, timestamp))
        except (InvalidSignature, NoteError):
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


def signature_line(sig: NoteSignature) -> str:
    return sig.line()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
