"""Shared helpers for the ledger tests (a unique module name: test folders have no
__init__.py, and another area's conftest may also be imported as `conftest`)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from docklock.ledger import Checkpoint, Entry, EntryType, HybridSigner, Ledger, Signer
from docklock.ledger.store import make_checkpoint
from docklock.ledger.trust import sign_entry
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


def raw_append(ledger: Ledger, payload: Mapping[str, object], *, sig: str = "",
               signer: HybridSigner | None = None, etype: EntryType = EntryType.PLAN,
               serial: int | None = None) -> bytes:
    """Append a well-formed entry line with the attacker's own code: right seq, prev and
    digest; no signature, `sig` as given, or a valid one by a key the attacker holds
    (`signer`, e.g. a retired key). Returns the line."""
    st = ledger.state()
    body = canonical_json(payload)
    entry = Entry(st.size, "2025-01-01T00:00:00.000000Z", "mallory@host", None, serial,
                  etype, dict(payload), "sha256:" + hashlib.sha256(body).hexdigest(),
                  st.head.hex(), sig)
    if signer is not None:
        entry = dataclasses.replace(
            entry, sig=sign_entry(signer, ledger.origin, entry.unsigned_line()))
    with ledger.entries_path.open("ab") as f:
        f.write(entry.line() + b"\n")
    return entry.line()
