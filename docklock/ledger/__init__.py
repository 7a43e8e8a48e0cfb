"""The signed plan/apply ledger: hybrid keys, RFC 9162 Merkle tree, checkpoints, proofs.

Only this package writes `.docklock/ledger/` and `.docklock/keys/`. Engines use the facade:

    signer = require_signer(paths)                   # ensure_keys(paths): may create it
                                                     # where no docklock.pub exists yet
    ledger = Ledger.open(paths, signer=signer)       # origin fixed in ledger.json
    entry = ledger.append("plan", {...}, serial=3)   # signed, fdatasync'd; LedgerError
                                                     # (file cut back) if the write fails
    cp = ledger.checkpoint(signer)                   # once per command; refuses entries
                                                     # it cannot authenticate (trust.py)
    envelope = sign_plan(plan_dict, signer)          # saved plans (DSSE)
    plan = open_plan(envelope, load_verifier(paths)) # raises EnvelopeError(check=...)

See docs/adr/0002-ledger-format.md for the formats.
"""

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
from docklock.ledger.store import (
    Checkpoint,
    Entry,
    EntryType,
    Ledger,
    TreeState,
    actor,
    cluster_name,
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

__all__ = [
    "record_event", "try_record_event",
    "ALGORITHMS", "DEFAULT_ALGORITHM", "PLAN_PAYLOAD_TYPE",
    "Checkpoint", "CheckpointBody", "CompactRange", "Entry", "EntryType", "EnvelopeError",
    "HybridPublicKey", "HybridSignatureError", "HybridSigner", "HybridVerifier",
    "InclusionProof", "KeyLookup", "Keyring", "Ledger", "NoteError", "Problem", "ProofError",
    "RotationResult", "Signer", "TreeState", "VerifyReport",
    "actor", "cluster_name", "ensure_keys", "export_key", "git_commit", "import_key",
    "init_keys", "is_envelope", "optional_signer", "require_signer",
    "keys_exist", "load_keyring", "load_signer", "load_verifier", "open_envelope",
    "open_plan", "origin_for", "pae", "prove_inclusion", "public_keyring_path", "rotate_keys",
    "sign_envelope", "sign_plan", "signing_key_path", "verify_inclusion_proof",
    "verify_ledger", "witness_key",
]
