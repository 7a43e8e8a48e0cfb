"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing, proofs and their verifiers.

Invariants:
- leaf hash = SHA-256(0x00 || leaf bytes), node hash = SHA-256(0x01 || left || right), the
  root of the empty tree is SHA-256("") (RFC 9162 section 2.1.1);
- a tree of n > 1 leaves splits at k, the largest power of two below n;
- `CompactRange` holds one root per set bit of the size (left to right, largest subtree
  first), so appending a leaf costs amortised one node hash and the root of a million-leaf
  tree is never rebuilt from scratch;
- the verifiers follow RFC 9162 sections 2.1.3.2 and 2.1.4.2 step by step and raise
  `ProofError` (a LedgerError) instead of returning a flag.

Proof generation works on a list of leaf hashes (the ledger holds at most a few million);
it is used by `docklock ledger proof` and by the tests, never on the append path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from docklock.errors import LedgerError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF = b"\x00"
_NODE = b"\x01"


class ProofError(LedgerError):
    """An inclusion or consistency proof does not verify."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


@dataclass
class CompactRange:
    """The roots of the perfect subtrees covering leaves [0, size): a mutable accumulator.

    `hashes[i]` is the root of the i-th perfect subtree from the left; their heights are
    the set bits of `size` from the highest down.
    """

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.size < 0 or len(self.hashes) != self.size.bit_count():
            raise LedgerError(
                f"compact range of size {self.size} needs {self.size.bit_count()} hashes, "
                f"got {len(self.hashes)}")

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash (already hashed with `leaf_hash`)."""
        h = leaf
        s = self.size
        stack = self.hashes
        while s & 1:
            h = node_hash(stack.pop(), h)
            s >>= 1
        stack.append(h)
        self.size += 1

    def extend(self, leaves: Sequence[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        r = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            r = node_hash(h, r)
        return r

    def copy(self) -> CompactRange:
        return CompactRange(self.size, list(self.hashes))

    def to_dict(self) -> dict[str, object]:
        return {"size": self.size, "hashes": [h.hex() for h in self.hashes]}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> CompactRange:
        size = d.get("size")
        hashes = d.get("hashes")
        if not isinstance(size, int) or not isinstance(hashes, list):
            raise LedgerError("compact range needs an integer size and a list of hashes")
        try:
            decoded = [bytes.fromhex(h) for h in hashes]
        except (TypeError, ValueError) as exc:
            raise LedgerError(f"compact range holds a malformed hash: {exc}") from exc
        if any(len(h) != HASH_SIZE for h in decoded):
            raise LedgerError("compact range holds a hash that is not 32 bytes")
        return cls(size, decoded)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of a list of leaf hashes."""
    cr = CompactRange()
    cr.extend(leaves)
    return cr.root()


def _mth(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH of leaves[lo:hi] without copying the slice."""
    cr = CompactRange()
    for i in range(lo, hi):
        cr.append(leaves[i])
    return cr.root()


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 section 2.1.3.1."""
    n = len(leaves) if size is None else size
    if not 0 <= index < n <= len(leaves):
        raise ProofError(f"no leaf {index} in a tree of size {n}")
    path: list[bytes] = []

    def walk(m: int, lo: int, hi: int) -> None:
        if hi - lo == 1:
            return
        k = _split(hi - lo)
        if m < k:
            walk(m, lo, lo + k)
            path.append(_mth(leaves, lo + k, hi))
        else:
            walk(m - k, lo + k, hi)
            path.append(_mth(leaves, lo, lo + k))

    walk(index, 0, n)
    return path


def consistency_proof(leaves: Sequence[bytes], old_size: int,
                      new_size: int | None = None) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) of RFC 9162 section 2.1.4.1."""
    n = len(leaves) if new_size is None else new_size
    if not 0 <= old_size <= n <= len(leaves):
        raise ProofError(f"no consistency proof from size {old_size} to size {n}")
    if old_size in (0, n):
        return []
    proof: list[bytes] = []

    def sub(m: int, lo: int, hi: int, complete: bool) -> None:
        if m == hi - lo:
            if not complete:
                proof.append(_mth(leaves, lo, hi))
            return
        k = _split(hi - lo)
        if m <= k:
            sub(m, lo, lo + k, complete)
            proof.append(_mth(leaves, lo + k, hi))
        else:
            sub(m - k, lo + k, hi, False)
            proof.append(_mth(leaves, lo, lo + k))

    sub(old_size, 0, n, True)
    return proof


def _check_hashes(what: str, hashes: Sequence[bytes]) -> None:
    for i, h in enumerate(hashes):
        if len(h) != HASH_SIZE:
            raise ProofError(f"{what}[{i}] is {len(h)} bytes, not {HASH_SIZE}")


def root_from_inclusion_proof(leaf: bytes, index: int, size: int,
                              proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 section 2.1.3.2, steps 1-4)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    if len(leaf) != HASH_SIZE:
        raise ProofError(f"leaf hash is {len(leaf)} bytes, not {HASH_SIZE}")
    _check_hashes("inclusion proof", proof)
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes],
                     root: bytes) -> None:
    """Raise ProofError unless `proof` shows leaf `index` with hash `leaf` under `root`."""
    got = root_from_inclusion_proof(leaf, index, size, proof)
    if got != root:
        raise ProofError(
            f"inclusion proof for leaf {index} gives root {got.hex()[:16]}…, "
            f"expected {root.hex()[:16]}…")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """Raise ProofError unless `proof` shows tree `old_size` is a prefix of tree `new_size`."""
    if old_size > new_size:
        raise ProofError(f"tree shrank from {old_size} to {new_size} leaves")
    _check_hashes("consistency proof", proof)
    if old_size == new_size:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same size {old_size}")
        return
    if old_size == 0:
        # Every tree extends the empty tree.
        if proof:
            raise ProofError("consistency proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than expected")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than expected")
    if fr != old_root:
        raise ProofError(f"consistency proof does not reproduce the root of size {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof does not reproduce the root of size {new_size}")
