"""Shared helpers for the ledger tests (a unique module name: test folders have no
__init__.py, and another area's conftest may also be imported as `conftest`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from docklock.ledger import Checkpoint, Entry, EntryType, Ledger, Signer
from docklock.ledger.store import make_checkpoint
from docklock.objects import canonical_json


class Clock:
    """Deterministic, increasing timestamps."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"2025-01-01T00:00:{self.n // 1000000:02d}.{self.n % 1000000:06d}Z"


@dataclass
class Built:
    ledger: Ledger
    checkpoint_sizes: list[int]
    tail: int


def force_checkpoint(ledger: Ledger, signer: Signer) -> Checkpoint:
    """What an attacker's own code does with a key it holds: sign the current head and
    append it, without DockLock's checks (trust.authenticate_tail)."""
    st = ledger.state()
    cp = make_checkpoint(ledger.origin, st.range, st.offset, signer)
    ledger._append_checkpoint(cp)
    return cp


def raw_append(ledger: Ledger, payload: dict[str, object], *, sig: str = "") -> bytes:
    """Append a well-formed entry line as someone without the private key would: right
    seq, right prev, right digest, but no valid signature. Returns the line."""
    st = ledger.state()
    body = canonical_json(payload)
    entry = Entry(st.size, "2025-01-01T00:00:00.000000Z", "mallory@host", None, None,
                  EntryType.PLAN, payload, "sha256:" + hashlib.sha256(body).hexdigest(),
                  st.head.hex(), sig)
    with ledger.entries_path.open("ab") as f:
        f.write(entry.line() + b"\n")
    return entry.line()
