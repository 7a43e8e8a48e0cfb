"""One-call recording for commands that write a single ledger event (plan, drift, run).

Opens the ledger, appends the entry, signs a checkpoint with the workspace key and closes,
so the tail is always covered by a signed checkpoint.

Keys (issue 11 B8): `record_event` must sign: it creates the key on first use only in a
workspace with no docklock.pub at all (`create_keys`), and otherwise fails with a hint
when the private key is absent. `try_record_event` (plan, drift) records only when this
workspace holds the private key, returns None otherwise, never creates a key and never
changes docklock.pub (its checkpoint does not record the ledger's identity there; the
next signing command does).

`record_if_possible` (plan, drift) is `try_record_event` for commands whose own result
must not depend on the ledger: an operational failure (witness quorum missed, key
passphrase missing, ledger folder absent, disk full) comes back as a warning to print.
A ledger that fails authentication (a foreign or keyless tail, forged entries, a retired
key) still raises: that is a security event, not an outage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from docklock.errors import DockLockError, KeyMaterialError, WitnessError
from docklock.ledger.keys import HybridSigner, optional_signer, require_signer
from docklock.ledger.store import Checkpoint, Entry, EntryType, Ledger, LedgerUnavailableError
from docklock.workspace import WorkspacePaths


def record_event(paths: WorkspacePaths, type: EntryType | str, payload: Mapping[str, Any],
                 *, cluster: str | None = None, serial: int | None = None,
                 create_keys: bool = True) -> tuple[Entry, Checkpoint]:
    """Append one entry and sign a checkpoint over it; returns both."""
    signer = require_signer(paths, create=create_keys)
    return _record(paths, signer, type, payload, cluster=cluster, serial=serial,
                   record_identity=True)


def try_record_event(paths: WorkspacePaths, type: EntryType | str,
                     payload: Mapping[str, Any], *, cluster: str | None = None,
                     serial: int | None = None) -> tuple[Entry, Checkpoint] | None:
    """As record_event, but None (nothing written, no key created) without a private key;
    docklock.pub is never written."""
    signer = optional_signer(paths)
    if signer is None:
        return None
    return _record(paths, signer, type, payload, cluster=cluster, serial=serial,
                   record_identity=False)


@dataclass(frozen=True)
class Recording:
    """What `record_if_possible` did: the entry (None if nothing was appended), and why
    the record is missing or incomplete (None when it is complete)."""

    entry: Entry | None = None
    problem: str | None = None
    no_key: bool = False  # nothing recorded because this workspace has no private key


def record_if_possible(paths: WorkspacePaths, type: EntryType | str,
                       payload: Mapping[str, Any], *, cluster: str | None = None,
                       serial: int | None = None) -> Recording:
    """As try_record_event, with operational failures returned as `problem`."""
    try:
        signer = optional_signer(paths)
    except KeyMaterialError as exc:  # e.g. a sealed key and no passphrase in the environment
        return Recording(problem=f"not recorded in the ledger: {_said(exc)}")
    if signer is None:
        return Recording(problem="not recorded in the ledger (this workspace has no "
                                 "signing key)", no_key=True)
    entry: Entry | None = None
    try:
        with Ledger.open(paths, cluster, signer=signer) as ledger:
            entry = ledger.append(type, payload, serial=serial)
            ledger.checkpoint(signer, record_identity=False)
    except WitnessError as exc:
        # The entry and its checkpoint are written and signed; only the cosignatures are
        # missing, and the next checkpointing command asks the witnesses again.
        return Recording(entry, problem=f"recorded in the ledger, but {exc.message}")
    except LedgerUnavailableError as exc:
        what = "not recorded" if entry is None else "not signed"
        return Recording(entry, problem=f"{what} in the ledger: {_said(exc)}")
    return Recording(entry)


def _said(exc: DockLockError) -> str:
    """The error and its hint on one line (a warning has no room for more)."""
    return exc.message + (f" ({exc.hint})" if exc.hint else "")


def _record(paths: WorkspacePaths, signer: HybridSigner, type: EntryType | str,
            payload: Mapping[str, Any], *, cluster: str | None, serial: int | None,
            record_identity: bool) -> tuple[Entry, Checkpoint]:
    with Ledger.open(paths, cluster, signer=signer) as ledger:
        entry = ledger.append(type, payload, serial=serial)
        checkpoint = ledger.checkpoint(signer, record_identity=record_identity)
    return entry, checkpoint



def start_ledger(paths: WorkspacePaths, signer: HybridSigner) -> Checkpoint | None:
    """After `keys init`: sign a checkpoint of the still-empty ledger, which fixes its
    origin and records it in docklock.pub. From then on an empty or missing ledger is a
    deletion (A4), even if only `plan` (which never writes docklock.pub, B8) ran since.
    A ledger that already holds entries or checkpoints is left alone."""
    with Ledger.open(paths) as ledger:
        if ledger.size > 0 or ledger.latest_checkpoint() is not None:
            return None
        return ledger.checkpoint(signer)
