"""store.merkle against RFC 9162 written out as plain recursion, straight from §2.1.

The reference below is deliberately naive (lists, slicing, recursion) and shares no code with
store.merkle: MTH, PATH and PROOF/SUBPROOF exactly as the RFC defines them. Every tree size up
to 70 and every leaf/old size in it is checked both ways, and tampered proofs must fail.
"""

from __future__ import annotations

import hashlib

import pytest

from store import merkle


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return sha(b"")
    if n == 1:
        return sha(b"\x00" + d[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return sha(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


DATA = [f"event {i}".encode() for i in range(70)]
LEAVES = [merkle.leaf_hash(d) for d in DATA]


def hashes_of(ranges: list[tuple[int, int]], size: int) -> list[bytes]:
    _, found = merkle.subtree_hashes(iter(LEAVES), size, ranges)
    return [found[r] for r in ranges]


def test_hashes_are_the_rfc_prefixes() -> None:
    assert merkle.leaf_hash(b"x") == sha(b"\x00x")
    assert merkle.node_hash(b"a" * 32, b"b" * 32) == sha(b"\x01" + b"a" * 32 + b"b" * 32)
    assert merkle.root_of([]) == sha(b"") == mth([])


@pytest.mark.parametrize("size", range(1, 71))
def test_streamed_root_equals_the_recursive_definition(size: int) -> None:
    assert merkle.root_of(LEAVES[:size]) == mth(DATA[:size])
    root, _ = merkle.subtree_hashes(iter(LEAVES), size, [])
    assert root == mth(DATA[:size])


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 33, 64, 70])
def test_inclusion_paths_equal_the_rfc_and_verify(size: int) -> None:
    root = mth(DATA[:size])
    for m in range(size):
        proof = hashes_of(merkle.inclusion_ranges(m, size), size)
        assert proof == path(m, DATA[:size]), (m, size)
        assert merkle.verify_inclusion(LEAVES[m], m, size, proof, root)
        # The same proof proves no other leaf, index or root. (The size is bound by the signed head:
        # leaf 0 of sizes 3 and 4 has a path of the same shape.)
        other = (m + 1) % size
        if other != m:
            assert not merkle.verify_inclusion(LEAVES[other], m, size, proof, root)
            assert not merkle.verify_inclusion(LEAVES[m], other, size, proof, root)
        assert not merkle.verify_inclusion(LEAVES[m], m, size, proof, mth(DATA[:size - 1]) if size > 1 else b"\0" * 32)
        if proof:
            flipped = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
            assert not merkle.verify_inclusion(LEAVES[m], m, size, flipped, root)
            assert not merkle.verify_inclusion(LEAVES[m], m, size, proof[:-1], root)
        assert not merkle.verify_inclusion(LEAVES[m], m, size, [*proof, LEAVES[0]], root)


@pytest.mark.parametrize("new", [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17, 32, 33, 70])
def test_consistency_proofs_equal_the_rfc_and_verify(new: int) -> None:
    new_root = mth(DATA[:new])
    for old in range(1, new + 1):
        old_root = mth(DATA[:old])
        proof = hashes_of(merkle.consistency_ranges(old, new), new)
        assert proof == subproof(old, DATA[:new], True), (old, new)
        assert merkle.verify_consistency(old, new, old_root, new_root, proof)
        if old < new:
            # A tree that rewrote an old leaf is not consistent with the old head.
            forged = LEAVES[:new]
            forged[old - 1] = merkle.leaf_hash(b"rewritten")
            assert not merkle.verify_consistency(old, new, old_root, merkle.root_of(forged), proof)
            assert not merkle.verify_consistency(old, new, new_root, new_root, proof)
            flipped = [*proof[:-1], bytes([proof[-1][0] ^ 1]) + proof[-1][1:]]
            assert not merkle.verify_consistency(old, new, old_root, new_root, flipped)


def test_a_truncated_leaf_stream_is_refused() -> None:
    with pytest.raises(ValueError, match="only 5 leaves for a tree of 6"):
        merkle.subtree_hashes(iter(LEAVES[:5]), 6, [])


def test_ranges_that_are_not_subtrees_are_refused() -> None:
    with pytest.raises(ValueError):
        merkle.subtree_hashes(iter(LEAVES), 6, [(1, 3)])
    with pytest.raises(ValueError):
        merkle.subtree_hashes(iter(LEAVES), 6, [(3, 6)])  # pieces of 6 are [0,4) and [4,6)


def test_the_builder_keeps_logarithmic_state() -> None:
    builder = merkle.TreeBuilder()
    for i in range(5000):
        builder.append(merkle.leaf_hash(i.to_bytes(8, "big")))
    assert len(builder.pieces()) == bin(5000).count("1")
