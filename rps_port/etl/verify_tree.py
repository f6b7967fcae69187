"""Verify's `_id` range leaves: a count and an order-independent hash sum per leaf, folded into a tree."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from rps_port.etl.backfill import split_ids

_MOD = 1 << 128


@dataclass
class Leaves:
    cuts: list[str]  # lower bounds of leaves 1..n-1 (leaf 0 starts at "")
    count: list[int] = field(default_factory=list)
    acc: list[int] = field(default_factory=list)

    @classmethod
    def over(cls, lo: str | None, hi: str | None, parts: int, sample: Sequence[str] = ()) -> Leaves:
        return cls.cut_at([r[0] for r in split_ids(lo, hi, parts, sample)[1:]])

    @classmethod
    def cut_at(cls, cuts: Sequence[str]) -> Leaves:
        n = len(cuts) + 1
        return cls(list(cuts), [0] * n, [0] * n)

    def index(self, key: str) -> int:
        return bisect.bisect_right(self.cuts, key)

    def add(self, key: str, h: int) -> None:
        i = self.index(key)
        self.count[i] += 1
        self.acc[i] = (self.acc[i] + (h ^ int.from_bytes(hashlib.blake2b(key.encode(), digest_size=16).digest(), "big"))) % _MOD

    def bounds(self, i: int) -> tuple[str, str | None]:
        lo = "" if i == 0 else self.cuts[i - 1]
        hi = self.cuts[i] if i < len(self.cuts) else None
        return lo, hi

    def touching(self, lo: str, hi: str | None) -> range:
        """The leaves that hold ids of [lo, hi)."""
        last = len(self.count) - 1 if hi is None else bisect.bisect_left(self.cuts, hi)
        return range(self.index(lo), last + 1)

    def filled(self) -> dict[int, tuple[int, int]]:
        """leaf -> (documents, hash sum) of the leaves holding documents: what a range task hands back."""
        return {i: (c, a) for i, (c, a) in enumerate(zip(self.count, self.acc)) if c}

    def absorb(self, filled: dict[int, tuple[int, int]]) -> None:
        """Add a range task's leaves (counts and hash sums add up, whichever task saw which id)."""
        for i, (c, a) in filled.items():
            self.count[i] += c
            self.acc[i] = (self.acc[i] + a) % _MOD

    def tree(self) -> list[list[int]]:
        """Levels from the leaves up to the root; a node is the hash of its two children."""
        level = [hashlib.blake2b(f"{c}:{a}".encode(), digest_size=16).digest() for c, a in zip(self.count, self.acc)]
        levels = [[int.from_bytes(x, "big") for x in level]]
        while len(level) > 1:
            level = [hashlib.blake2b(b"".join(level[i:i + 2]), digest_size=16).digest() for i in range(0, len(level), 2)]
            levels.append([int.from_bytes(x, "big") for x in level])
        return levels


def mismatched_leaves(a: Leaves, b: Leaves) -> list[int]:
    """Walk both trees from the root, descending only into differing nodes."""
    ta, tb = a.tree(), b.tree()
    nodes = [0] if ta[-1][0] != tb[-1][0] else []
    for depth in range(len(ta) - 1, 0, -1):
        below_a, below_b = ta[depth - 1], tb[depth - 1]
        nodes = [c for n in nodes for c in (2 * n, 2 * n + 1) if c < len(below_a) and below_a[c] != below_b[c]]
    return nodes
