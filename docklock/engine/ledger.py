"""The ledger's use cases: verify (with the witnesses), show, proof, verify-proof, repair.

Thin over docklock.ledger, which owns `.docklock/ledger/` and `.docklock/keys/`; here
only the steps each command takes, returning data for the CLI (or a CI job) to render.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docklock.errors import KeyMaterialError, WorkspaceError

if TYPE_CHECKING:
    from docklock.engine.context import Context
    from docklock.ledger import Checkpoint, Entry, InclusionProof, Keyring
    from docklock.ledger.verify import VerifyReport
    from docklock.ledger.witnessing import WitnessCheck


@dataclass(frozen=True)
class LedgerCheck:
    """`ledger verify`: the recomputation and signatures, and the witnesses' verdict."""

    report: VerifyReport
    witnesses: WitnessCheck

    @property
    def ok(self) -> bool:
        return self.report.problem is None and self.witnesses.ok

    def to_dict(self) -> dict[str, Any]:
        return self.report.to_dict() | {"ok": self.ok, "witnesses": self.witnesses.to_dict()}


def verify(ctx: Context, *, from_checkpoint: bool = False,
           require_witnesses: bool = False) -> LedgerCheck:
    """Recompute every leaf and root, check every checkpoint's hybrid signature, then the
    witnesses' quorum on the newest checkpoint (no rollback or fork against what a
    reachable witness cosigned). Never raises for a damaged ledger: see the result."""
    from docklock.ledger import verify_ledger
    from docklock.ledger.witnessing import verify_witnesses

    report = verify_ledger(ctx.paths, from_checkpoint=from_checkpoint)
    witnesses = verify_witnesses(ctx.paths, require_reachable=require_witnesses)
    return LedgerCheck(report, witnesses)


@dataclass(frozen=True)
class LedgerView:
    """`ledger show`: the ledger's origin and size, its newest checkpoint, entries."""

    origin: str
    size: int
    checkpoint: Checkpoint | None
    entries: tuple[Entry, ...]
    # Who signed what: docklock.pub's name for the key (a team signer's name, else the
    # key id's first 16 digits), by entry seq; "?" when no listed key verifies it; absent
    # (null in JSON) for entries older than the newest SIGNER_WINDOW shown.
    signed_by: Mapping[int, str] = field(default_factory=dict)
    checkpoint_signer: str = ""

    def to_dict(self) -> dict[str, Any]:
        checkpoint = self.checkpoint.summary() if self.checkpoint else None
        if checkpoint is not None and self.checkpoint_signer:
            checkpoint["signed_by"] = self.checkpoint_signer
        return {"origin": self.origin, "size": self.size, "checkpoint": checkpoint,
                "entries": [{**e.to_dict(), "signed_by": self.signed_by.get(e.seq)}
                            for e in self.entries]}


def show(ctx: Context, *, tail: int | None = None) -> LedgerView:
    """Every entry, or the last `tail`."""
    from docklock.ledger import Ledger
    from docklock.ledger.keys import load_keyring
    from docklock.ledger.trust import EntryKeys, identify_signer

    ledger = Ledger.open(ctx.paths)
    entries = ledger.tail(tail) if tail is not None else list(ledger.entries())
    latest = ledger.latest_checkpoint()
    try:
        keyring = load_keyring(ctx.paths)
    except KeyMaterialError:  # no docklock.pub: show the entries, not who signed them
        return LedgerView(ledger.origin, ledger.size, latest, tuple(entries))
    keys = EntryKeys(keyring)
    signed_by = {}
    # A signature check per entry (~0.5 ms): the newest SIGNER_WINDOW shown only, so a
    # whole-ledger listing stays a read; `--tail N` names the signer of each line.
    for e in entries[-SIGNER_WINDOW:]:
        keyid = identify_signer(e, ledger.origin, keyring, keys)
        signed_by[e.seq] = keyring.label(keyid) if keyid else "?"
    return LedgerView(ledger.origin, ledger.size, latest, tuple(entries), signed_by,
                      _checkpoint_signer(latest, ledger.origin, keyring))


SIGNER_WINDOW = 500


def _checkpoint_signer(cp: Checkpoint | None, origin: str, keyring: Keyring) -> str:
    """Who signed the checkpoint, by its verified signature ("?" when no listed key's
    does: the record's key id is only a claim)."""
    from docklock.errors import DockLockError
    from docklock.ledger.note import open_note

    if cp is None:
        return ""
    try:
        _, verifier = open_note(cp.note, origin, keyring)
    except DockLockError:
        return f"? (claims {cp.keyid[:16]})"
    return keyring.label(verifier.keyid)


def proof(ctx: Context, seq: int) -> InclusionProof:
    """The inclusion proof of entry `seq` against the newest checkpoint."""
    from docklock.ledger import Ledger, prove_inclusion

    return prove_inclusion(Ledger.open(ctx.paths), seq)


@dataclass(frozen=True)
class ProofCheck:
    """A proof that verified: the proof and the entry it proves."""

    proof: InclusionProof
    entry: Entry

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "origin": self.proof.origin, "seq": self.entry.seq,
                "tree_size": self.proof.tree_size, "entry": self.entry.to_dict()}


def verify_proof(file: Path, *, keyring: Path | None = None,
                 directory: str | Path | None = None) -> ProofCheck:
    """Check an inclusion proof offline against `keyring` (a docklock.pub), or the
    keyring of the workspace at `directory` (searched upward when None). Raises
    LedgerError/EnvelopeError for a proof that does not verify."""
    from docklock.ledger import InclusionProof, Keyring, load_keyring, verify_inclusion_proof
    from docklock.workspace import find_workspace

    loaded = InclusionProof.load(file)
    if keyring is not None:
        keys = Keyring.load(keyring)
    else:
        try:
            paths = find_workspace(directory)
        except WorkspaceError as exc:
            raise KeyMaterialError("no keyring to verify the proof against",
                                   hint="pass --key docklock.pub, or run inside the "
                                        "workspace") from exc
        keys = load_keyring(paths)
    return ProofCheck(loaded, verify_inclusion_proof(loaded, keys))


def repair(ctx: Context) -> list[Path]:
    """Move a torn last line (after a crash) aside; the files it was moved to."""
    from docklock.ledger import Ledger

    return list(Ledger.open(ctx.paths).repair())
