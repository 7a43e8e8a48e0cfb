"""The signed plan/apply ledger: hybrid keys, RFC 9162 Merkle tree, checkpoints, proofs.

Only this package writes `.docklock/ledger/` and `.docklock/keys/`. Engines use the facade:

    signer = require_signer(paths)                   # ensure_keys(paths): may create it
                                                     # where no docklock.pub exists yet
    ledger = Ledger.open(paths, signer=signer)       # origin fixed in ledger.json; bytes
                                                     # in default_storage(paths): files or
                                                     # PostgreSQL (storage.py)
    entry = ledger.append("plan", {...}, serial=3)   # signed, fdatasync'd; LedgerError
                                                     # (file cut back) if the write fails
    cp = ledger.checkpoint(signer)                   # once per command; refuses entries
                                                     # it cannot authenticate (trust.py)
    envelope = sign_plan(plan_dict, signer)          # saved plans (DSSE)
    plan = open_plan(envelope, load_verifier(paths)) # raises EnvelopeError(check=...)

See docs/adr/0002-ledger-format.md for the formats.

The names are imported on first use (PEP 562): `from docklock.ledger import EntryType`
loads the store, not the verifier, the rotation code or the DSSE envelopes (house rule
12). Type checkers see the plain imports below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docklock.ledger.dsse import (
        PLAN_PAYLOAD_TYPE,
        EnvelopeError,
        is_envelope,
        open_envelope,
        open_plan,
        pae,
        sign_envelope,
        sign_plan,
    )
    from docklock.ledger.keys import (
        ALGORITHMS,
        DEFAULT_ALGORITHM,
        HybridPublicKey,
        HybridSignatureError,
        HybridSigner,
        HybridVerifier,
        KeyLookup,
        Keyring,
        Signer,
        ensure_keys,
        export_key,
        import_key,
        init_keys,
        keys_exist,
        load_keyring,
        load_signer,
        load_verifier,
        optional_signer,
        public_keyring_path,
        require_signer,
        signing_key_path,
        witness_key,
    )
    from docklock.ledger.merkle import CompactRange, ProofError
    from docklock.ledger.note import CheckpointBody, NoteError, origin_for
    from docklock.ledger.record import record_event, try_record_event
    from docklock.ledger.rotation import RotationResult, rotate_keys
    from docklock.ledger.storage import FileLedgerStorage, LedgerStorage
    from docklock.ledger.store import (
        Checkpoint,
        Entry,
        EntryType,
        Ledger,
        TreeState,
        actor,
        cluster_name,
        default_storage,
        git_commit,
    )
    from docklock.ledger.verify import (
        InclusionProof,
        Problem,
        VerifyReport,
        prove_inclusion,
        verify_inclusion_proof,
        verify_ledger,
    )

_WHERE = {
    "PLAN_PAYLOAD_TYPE": "dsse",
    "EnvelopeError": "dsse",
    "is_envelope": "dsse",
    "open_envelope": "dsse",
    "open_plan": "dsse",
    "pae": "dsse",
    "sign_envelope": "dsse",
    "sign_plan": "dsse",
    "ALGORITHMS": "keys",
    "DEFAULT_ALGORITHM": "keys",
    "HybridPublicKey": "keys",
    "HybridSignatureError": "keys",
    "HybridSigner": "keys",
    "HybridVerifier": "keys",
    "KeyLookup": "keys",
    "Keyring": "keys",
    "Signer": "keys",
    "ensure_keys": "keys",
    "export_key": "keys",
    "import_key": "keys",
    "init_keys": "keys",
    "keys_exist": "keys",
    "load_keyring": "keys",
    "load_signer": "keys",
    "load_verifier": "keys",
    "optional_signer": "keys",
    "public_keyring_path": "keys",
    "require_signer": "keys",
    "signing_key_path": "keys",
    "witness_key": "keys",
    "CompactRange": "merkle",
    "ProofError": "merkle",
    "CheckpointBody": "note",
    "NoteError": "note",
    "origin_for": "note",
    "record_event": "record",
    "try_record_event": "record",
    "RotationResult": "rotation",
    "rotate_keys": "rotation",
    "FileLedgerStorage": "storage",
    "LedgerStorage": "storage",
    "Checkpoint": "store",
    "Entry": "store",
    "EntryType": "store",
    "Ledger": "store",
    "TreeState": "store",
    "actor": "store",
    "cluster_name": "store",
    "default_storage": "store",
    "git_commit": "store",
    "InclusionProof": "verify",
    "Problem": "verify",
    "VerifyReport": "verify",
    "prove_inclusion": "verify",
    "verify_inclusion_proof": "verify",
    "verify_ledger": "verify",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


__all__ = [
    "record_event", "try_record_event",
    "ALGORITHMS", "DEFAULT_ALGORITHM", "PLAN_PAYLOAD_TYPE",
    "Checkpoint", "CheckpointBody", "CompactRange", "Entry", "EntryType", "EnvelopeError",
    "FileLedgerStorage", "HybridPublicKey", "HybridSignatureError", "HybridSigner",
    "HybridVerifier", "InclusionProof", "KeyLookup", "Keyring", "Ledger", "LedgerStorage",
    "NoteError", "Problem", "ProofError", "RotationResult", "Signer", "TreeState",
    "VerifyReport",
    "actor", "cluster_name", "default_storage", "ensure_keys", "export_key", "git_commit",
    "import_key", "init_keys", "is_envelope", "optional_signer", "require_signer",
    "keys_exist", "load_keyring", "load_signer", "load_verifier", "open_envelope",
    "open_plan", "origin_for", "pae", "prove_inclusion", "public_keyring_path", "rotate_keys",
    "sign_envelope", "sign_plan", "signing_key_path", "verify_inclusion_proof",
    "verify_ledger", "witness_key",
]
