"""Witnesses: the C2SP tlog-witness protocol (c2sp.org/tlog-witness), both sides.

- `cosignature`: timestamped cosignatures (c2sp.org/tlog-cosignature): Ed25519 (type
  0x04) or ML-DSA-44 (type 0x06);
- `server`: a witness (`docklock witness init|add-log|serve`): verifies a log's signed
  checkpoint and the consistency proof from the size it last cosigned, persists the new
  size and root atomically per log under a lock, and cosigns; it never cosigns a rollback
  or a fork;
- `client`: the HTTP calls a log makes (`add-checkpoint`) and a monitor makes
  (`GET <prefix>/<sha256(origin)>/checkpoint`), with bounded timeouts and sizes.

The ledger side (asking witnesses after each checkpoint, storing cosignatures, checking
them in `ledger verify`) is `docklock.ledger.witnessing`: only `ledger/` writes ledger
files. See docs/adr/0009-witnesses.md.
"""
