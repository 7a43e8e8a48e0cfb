"""RFC 9162 / RFC 6962 Merkle tree: known vectors, exhaustive proofs for small trees, tamper.

The vectors are the RFC 6962 example tree used by transparency-dev/merkle
(proof/verify_test.go and rfc6962/rfc6962_test.go): the seven leaves of RFC 6962
section 2.1.3 plus an eighth, with the roots of every prefix and the published proofs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from docklock.ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_of,
    verify_consistency,
    verify_inclusion,
)


def h(x: str) -> bytes:
    return bytes.fromhex(x)


LEAVES = [h(x) for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                         "606162636465666768696a6b6c6d6e6f")]
ROOTS = [h(x) for x in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]
# (leaf index 1-based as in the Go test, tree size, proof)
INCLUSION = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (2, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]
HASHES = [leaf_hash(x) for x in LEAVES]


def reference_mth(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 9162 section 2.1.1, recursively."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(reference_mth(leaves[:k]), reference_mth(leaves[k:]))


def test_hasher_vectors() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert leaf_hash(b"L123456").hex() == (
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    assert node_hash(b"N123", b"N456").hex() == (
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb")


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_of_every_prefix(size: int) -> None:
    assert root_of(HASHES[:size]) == ROOTS[size - 1]


def test_seven_leaf_tree_of_rfc6962() -> None:
    cr = CompactRange()
    cr.extend(HASHES[:7])
    assert cr.root() == ROOTS[6]
    assert cr.size == 7
    assert len(cr.hashes) == 3  # subtrees of 4, 2 and 1 leaves


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION)
def test_inclusion_vectors(leaf: int, size: int, proof: list[str]) -> None:
    expected = [h(p) for p in proof]
    assert inclusion_proof(HASHES, leaf - 1, size) == expected
    verify_inclusion(HASHES[leaf - 1], leaf - 1, size, expected, ROOTS[size - 1])


@pytest.mark.parametrize(("m", "n", "proof"), CONSISTENCY)
def test_consistency_vectors(m: int, n: int, proof: list[str]) -> None:
    expected = [h(p) for p in proof]
    assert consistency_proof(HASHES, m, n) == expected
    verify_consistency(m, n, ROOTS[m - 1], ROOTS[n - 1], expected)


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


LEAVES_64 = _leaves(64)
ROOTS_64 = [reference_mth(LEAVES_64[:n]) for n in range(65)]


def test_compact_range_matches_reference_for_sizes_to_64() -> None:
    cr = CompactRange()
    assert cr.root() == ROOTS_64[0]
    for n in range(1, 65):
        cr.append(LEAVES_64[n - 1])
        assert cr.root() == ROOTS_64[n], n
        assert cr.size.bit_count() == len(cr.hashes)
        assert CompactRange.from_dict(cr.to_dict()) == cr


def test_every_inclusion_proof_up_to_64_verifies() -> None:
    for n in range(1, 65):
        for i in range(n):
            proof = inclusion_proof(LEAVES_64, i, n)
            verify_inclusion(LEAVES_64[i], i, n, proof, ROOTS_64[n])


def test_every_consistency_proof_up_to_64_verifies() -> None:
    for n in range(0, 65):
        for m in range(0, n + 1):
            proof = consistency_proof(LEAVES_64, m, n)
            verify_consistency(m, n, ROOTS_64[m], ROOTS_64[n], proof)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_altered_inclusion_hash_fails(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, 64), label="size")
    i = data.draw(st.integers(0, n - 1), label="index")
    proof = inclusion_proof(LEAVES_64, i, n)
    target = data.draw(st.integers(-2, len(proof) - 1), label="what to alter")
    bit = data.draw(st.integers(0, 255), label="bit")
    leaf, root = LEAVES_64[i], ROOTS_64[n]

    def flip(x: bytes) -> bytes:
        b = bytearray(x)
        b[bit // 8] ^= 1 << (bit % 8)
        return bytes(b)

    if target == -2:
        leaf = flip(leaf)
    elif target == -1:
        root = flip(root)
    else:
        proof[target] = flip(proof[target])
    with pytest.raises(ProofError):
        verify_inclusion(leaf, i, n, proof, root)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_altered_consistency_hash_fails(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, 64), label="new size")
    m = data.draw(st.integers(1, n - 1), label="old size")
    proof = consistency_proof(LEAVES_64, m, n)
    target = data.draw(st.integers(-2, len(proof) - 1), label="what to alter")
    bit = data.draw(st.integers(0, 255), label="bit")
    old, new = ROOTS_64[m], ROOTS_64[n]

    def flip(x: bytes) -> bytes:
        b = bytearray(x)
        b[bit // 8] ^= 1 << (bit % 8)
        return bytes(b)

    if target == -2:
        old = flip(old)
    elif target == -1:
        new = flip(new)
    else:
        proof[target] = flip(proof[target])
    with pytest.raises(ProofError):
        verify_consistency(m, n, old, new, proof)


def _refused(fn: Callable[..., None], *args: object) -> bool:
    try:
        fn(*args)
    except ProofError:
        return True
    return False


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION)
def test_inclusion_probes_fail(leaf: int, size: int, proof: list[str]) -> None:
    """The corruption probes of transparency-dev's verifier tests, each refused."""
    p = [h(x) for x in proof]
    i, root, lh = leaf - 1, ROOTS[size - 1], HASHES[leaf - 1]
    probes: dict[str, tuple[int, int, list[bytes], bytes, bytes]] = {
        "index - 1": (i - 1, size, p, root, lh),
        "index + 1": (i + 1, size, p, root, lh),
        "index ^ 2": (i ^ 2, size, p, root, lh),
        "size * 2": (i, size * 2, p, root, lh),
        "size / 2": (i, size // 2, p, root, lh),
        "wrong leaf": (i, size, p, root, leaf_hash(b"WrongLeaf")),
        "empty root": (i, size, p, EMPTY_ROOT, lh),
        "trailing root": (i, size, [*p, root], root, lh),
        "preceding root": (i, size, [root, *p], root, lh),
        "removed component": (i, size, p[:-1], root, lh),
    }
    accepted = [name for name, (idx, sz, pr, rt, lf) in probes.items()
                if not _refused(verify_inclusion, lf, idx, sz, pr, rt)]
    assert accepted == []


@pytest.mark.parametrize(("m", "n", "proof"), CONSISTENCY)
def test_consistency_probes_fail(m: int, n: int, proof: list[str]) -> None:
    p = [h(x) for x in proof]
    r1, r2 = ROOTS[m - 1], ROOTS[n - 1]
    probes = {
        "size1 - 1": (m - 1, n, r1, r2, p),
        "size1 + 1": (m + 1, n, r1, r2, p),
        "size2 * 2": (m, n * 2, r1, r2, p),
        "swapped roots": (m, n, r2, r1, p),
        "empty proof": (m, n, r1, r2, []),
        "trailing root1": (m, n, r1, r2, [*p, r1]),
        "preceding root2": (m, n, r1, r2, [r2, *p]),
        "truncated": (m, n, r1, r2, p[:-1]),
    }
    accepted = [name for name, (a, b, x, y, pr) in probes.items()
                if a != b and a > 0 and not _refused(verify_consistency, a, b, x, y, pr)]
    assert accepted == []


def test_edge_cases() -> None:
    verify_consistency(0, 5, b"\x00" * 32, ROOTS[4], [])  # everything extends the empty tree
    verify_consistency(3, 3, ROOTS[2], ROOTS[2], [])
    with pytest.raises(ProofError):
        verify_consistency(3, 3, ROOTS[2], ROOTS[3], [])
    with pytest.raises(ProofError):
        verify_consistency(4, 3, ROOTS[3], ROOTS[2], [])
    with pytest.raises(ProofError):
        root_from_inclusion_proof(HASHES[0], 0, 0, [])
    with pytest.raises(ProofError):
        verify_inclusion(b"short", 0, 1, [], b"short")
    with pytest.raises(ProofError):
        inclusion_proof(HASHES, 8, 8)
