"""One-call recording for commands that write a single ledger event (plan, drift, run).

Opens the ledger, appends the entry, signs a checkpoint with the workspace key (created
on first use) and closes, so the tail is always covered by a signed checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from docklock.ledger.keys import ensure_keys
from docklock.ledger.store import Checkpoint, Entry, EntryType, Ledger
from docklock.workspace import WorkspacePaths


def record_event(paths: WorkspacePaths, type: EntryType | str, payload: Mapping[str, Any],
                 *, cluster: str | None = None,
                 serial: int | None = None) -> tuple[Entry, Checkpoint]:
    """Append one entry and sign a checkpoint over it; returns both."""
    signer = ensure_keys(paths)
    with Ledger.open(paths, cluster) as ledger:
        entry = ledger.append(type, payload, serial=serial)
        checkpoint = ledger.checkpoint(signer)
    return entry, checkpoint
