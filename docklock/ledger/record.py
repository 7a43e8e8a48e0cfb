"""One-call recording for commands that write a single ledger event (plan, drift, run).

Opens the ledger, appends the entry, signs a checkpoint with the workspace key and closes,
so the tail is always covered by a signed checkpoint.

Keys (issue 11 B8): `record_event` must sign: it creates the key on first use only in a
workspace with no docklock.pub at all (`create_keys`), and otherwise fails with a hint
when the private key is absent. `try_record_event` (plan, drift) records only when this
workspace holds the private key, returns None otherwise, and never creates a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from docklock.ledger.keys import HybridSigner, optional_signer, require_signer
from docklock.ledger.store import Checkpoint, Entry, EntryType, Ledger
from docklock.workspace import WorkspacePaths


def record_event(paths: WorkspacePaths, type: EntryType | str, payload: Mapping[str, Any],
                 *, cluster: str | None = None, serial: int | None = None,
                 create_keys: bool = True) -> tuple[Entry, Checkpoint]:
    """Append one entry and sign a checkpoint over it; returns both."""
    signer = require_signer(paths, create=create_keys)
    return _record(paths, signer, type, payload, cluster=cluster, serial=serial)


def try_record_event(paths: WorkspacePaths, type: EntryType | str,
                     payload: Mapping[str, Any], *, cluster: str | None = None,
                     serial: int | None = None) -> tuple[Entry, Checkpoint] | None:
    """As record_event, but None (nothing written, no key created) without a private key."""
    signer = optional_signer(paths)
    if signer is None:
        return None
    return _record(paths, signer, type, payload, cluster=cluster, serial=serial)


def _record(paths: WorkspacePaths, signer: HybridSigner, type: EntryType | str,
            payload: Mapping[str, Any], *, cluster: str | None,
            serial: int | None) -> tuple[Entry, Checkpoint]:
    with Ledger.open(paths, cluster, signer=signer) as ledger:
        entry = ledger.append(type, payload, serial=serial)
        checkpoint = ledger.checkpoint(signer)
    return entry, checkpoint
