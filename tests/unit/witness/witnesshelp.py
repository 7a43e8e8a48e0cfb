"""A small log for witness tests: a hybrid key, leaves, and signed checkpoints."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from docklock.ledger.keys import HybridSigner
from docklock.ledger.merkle import consistency_proof, leaf_hash, root_of
from docklock.ledger.note import CheckpointBody, note_verifier_key, sign_note
from docklock.witness.client import add_checkpoint_body
from docklock.witness.server import add_log, init_witness

ORIGIN = "docklock.io/ledger/test-log"


@dataclass
class Log:
    signer: HybridSigner
    origin: str = ORIGIN
    leaves: list[bytes] = field(default_factory=list)

    @classmethod
    def new(cls, n: int, *, origin: str = ORIGIN, signer: HybridSigner | None = None,
            salt: bytes = b"") -> Log:
        log = cls(signer or HybridSigner.generate("mldsa65-ed25519"), origin)
        log.grow(n, salt=salt)
        return log

    def grow(self, n: int, *, salt: bytes = b"") -> None:
        start = len(self.leaves)
        self.leaves += [leaf_hash(salt + f"entry {i}".encode()) for i in range(start, start + n)]

    @property
    def vkey(self) -> str:
        return note_verifier_key(self.origin, self.signer.public_key)

    def root(self, size: int) -> bytes:
        return root_of(self.leaves[:size])

    def text(self, size: int) -> str:
        return CheckpointBody(self.origin, size, self.root(size)).text()

    def note(self, size: int) -> str:
        return sign_note(self.text(size), self.origin, self.signer)

    def body(self, old: int, size: int) -> bytes:
        proof = consistency_proof(self.leaves, old, size) if old else []
        return add_checkpoint_body(old, proof, self.note(size))

    def fork(self, at: int, extra: int) -> Log:
        """Same key and origin, same first `at` leaves, then different ones."""
        other = Log(self.signer, self.origin, list(self.leaves[:at]))
        other.grow(extra, salt=b"fork:" + hashlib.sha256(bytes(at)).digest()[:4])
        return other


def make_witness(folder: Path, *logs: Log, name: str = "witness.test/w1",
                 algorithm: str = "ed25519") -> Path:
    init_witness(folder, name, algorithm)
    for log in logs:
        add_log(folder, log.origin, log.vkey)
    return folder
