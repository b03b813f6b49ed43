"""RFC 9162 Merkle tree algorithms, pure (no database): hashes, a streaming root, proofs.

The log-wide tree is Certificate Transparency's (RFC 9162 §2.1):

* a leaf is SHA-256(0x00 || d), where d is the event's chain hash (vjm.event_hash);
* an interior node is SHA-256(0x01 || left || right);
* for n > 1 leaves, the left subtree holds the largest power of two smaller than n.

`TreeBuilder` computes a root over a stream of leaves with O(log n) memory (a stack of
perfect subtree roots, the "compact range"). Proofs name the subtrees they need as leaf
ranges [start, end); every such range is either a perfect, aligned subtree or a suffix
[start, n) of the tree, and `subtree_hashes` computes all of them in one pass over the
leaves. The verifiers (`verify_inclusion`, `verify_consistency`) follow RFC 9162 §2.1.3.2
and §2.1.4.2 and need nothing but the hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

HASH_SIZE = 32
Range = tuple[int, int]


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the hash of one leaf."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}) = SHA-256()


def split_point(n: int) -> int:
    """The largest power of two smaller than n (n > 1): the size of the left subtree."""
    if n < 2:
        raise ValueError("a tree of fewer than 2 leaves does not split")
    return 1 << ((n - 1).bit_length() - 1)


class TreeBuilder:
    """Append leaf hashes in order; `root()` is MTH of everything appended. O(log n) memory.

    `on_subtree(start, size, hash)`, if given, is called for every perfect aligned subtree as
    it completes (size 1 for each leaf), which is how proofs collect the hashes they need.
    """

    __slots__ = ("size", "_stack", "_on_subtree")

    def __init__(self, on_subtree: Callable[[int, int, bytes], None] | None = None) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (subtree size, hash), sizes strictly decreasing
        self._on_subtree = on_subtree

    def append(self, leaf: bytes) -> None:
        if len(leaf) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        size, value, start = 1, leaf, self.size
        if self._on_subtree:
            self._on_subtree(start, 1, value)
        while self._stack and self._stack[-1][0] == size:
            left_size, left = self._stack.pop()
            start -= left_size
            size, value = size * 2, node_hash(left, value)
            if self._on_subtree:
                self._on_subtree(start, size, value)
        self._stack.append((size, value))
        self.size += 1

    def pieces(self) -> list[tuple[int, int, bytes]]:
        """The perfect subtrees that make up the tree so far: (start, size, hash), left to right."""
        out, start = [], 0
        for size, value in self._stack:
            out.append((start, size, value))
            start += size
        return out

    def root(self) -> bytes:
        """MTH of the leaves appended so far (RFC 9162 §2.1.1)."""
        if not self._stack:
            return EMPTY_ROOT
        value = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            value = node_hash(left, value)
        return value


def root_of(leaves: Iterable[bytes]) -> bytes:
    """MTH over leaf hashes, streamed."""
    builder = TreeBuilder()
    for leaf in leaves:
        builder.append(leaf)
    return builder.root()


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees whose hashes form PATH(index, D[size]) (RFC 9162 §2.1.3.1), leaf level first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    siblings: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index - start < k:
            siblings.append((start + k, end))
            end = start + k
        else:
            siblings.append((start, start + k))
            start += k
    return siblings[::-1]


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """The subtrees whose hashes form PROOF(old_size, D[new_size]) (RFC 9162 §2.1.4.1), in order."""
    if not 0 < old_size <= new_size:
        raise ValueError("a consistency proof needs 0 < old size <= new size")
    nodes: list[Range] = []
    start, end, m, whole = 0, new_size, old_size, True
    while m != end - start:
        k = split_point(end - start)
        if m <= k:
            nodes.append((start + k, end))
            end = start + k
        else:
            nodes.append((start, start + k))
            start, m, whole = start + k, m - k, False
    bottom = [] if whole else [(start, end)]
    return bottom + nodes[::-1]


def _is_perfect(start: int, end: int) -> bool:
    size = end - start
    return size > 0 and size & (size - 1) == 0 and start % size == 0


class SubtreeCollector:
    """One pass over the first `size` leaves: the root and the hash of every wanted range.

    A wanted range is a perfect aligned subtree (captured when it completes) or a suffix
    [start, size) of the tree (folded from the final pieces), as every RFC 9162 proof needs.
    Feed leaves with `append` (extra leaves past `size` are ignored), then call `finish`.
    """

    def __init__(self, size: int, wanted: Iterable[Range]) -> None:
        wanted = set(wanted)
        self.size = size
        self._perfect = {r for r in wanted if _is_perfect(*r)}
        self._suffixes = wanted - self._perfect
        for start, end in self._suffixes:
            if end != size or not 0 <= start < end:
                raise ValueError(f"range [{start}, {end}) is neither a perfect subtree nor a suffix of {size}")
        self._found: dict[Range, bytes] = {}
        self._builder = TreeBuilder(self._capture if self._perfect else None)

    def _capture(self, start: int, length: int, value: bytes) -> None:
        if (start, start + length) in self._perfect:
            self._found[(start, start + length)] = value

    @property
    def count(self) -> int:
        return self._builder.size

    def append(self, leaf: bytes) -> None:
        if self._builder.size < self.size:
            self._builder.append(leaf)

    def finish(self) -> tuple[bytes, dict[Range, bytes]]:
        builder = self._builder
        if builder.size != self.size:
            raise ValueError(f"only {builder.size} leaves for a tree of {self.size}")
        pieces = builder.pieces()
        found = dict(self._found)
        for start, end in self._suffixes:
            if not any(p[0] == start for p in pieces):
                # A suffix that does not start on a piece boundary is not a subtree of this tree.
                raise ValueError(f"[{start}, {end}) is not a subtree of a tree of {self.size}")
            *left, value = [piece for piece_start, _, piece in pieces if piece_start >= start]
            for piece in reversed(left):
                value = node_hash(piece, value)
            found[(start, end)] = value
        missing = self._perfect - found.keys()
        if missing:
            raise ValueError(f"ranges outside the tree: {sorted(missing)}")
        return builder.root(), found


def subtree_hashes(leaves: Iterable[bytes], size: int, wanted: Iterable[Range]) -> tuple[bytes, dict[Range, bytes]]:
    """The root of the first `size` leaves and the hashes of the wanted ranges (SubtreeCollector)."""
    collector = SubtreeCollector(size, wanted)
    for leaf in leaves:
        if collector.count == size:
            break
        collector.append(leaf)
    return collector.finish()


def verify_inclusion(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does `path` prove `leaf` at `index` in the tree of `size` with `root`?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: is the tree of `new_size` an append-only extension of the one of `old_size`?"""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    if old_size & (old_size - 1) == 0:
        proof = [old_root, *proof]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root
