"""Graph-aware partitions of a population over shards (numpy; no METIS).

A sharded world (:mod:`recoworld.distributed.shards`) gives each user to one shard; every share
or post that crosses from one shard to another travels through the coordinator between ticks.
The fewer follow edges cross shards, the less travels. :func:`partition_users` cuts the follow
graph into ``n_parts`` parts of nearly equal size (at most ``1 + slack`` times the mean, 3% by
default) in three steps:

1. **communities** — label propagation on the undirected follow graph (each user takes the label
   most of its neighbours carry, ties broken at random; a few semi-synchronous rounds over four
   random quarters of the users, so labels do not oscillate);
2. **packing** — whole communities, largest first, each into the part with the most room; a
   community larger than the room left is split over the emptiest parts;
3. **refinement** — each user who has more neighbours in another part than in its own wants to
   move there; between two parts the same number of users move each way (largest gains first),
   plus one-way moves while the receiving part stays within its size cap. Rounds stop when the
   cut no longer shrinks.

Everything is drawn from ``seed``: the same graph, part count and seed give the same partition.
:func:`cut_fraction` is the share of follow edges whose two users are in different parts; a
random balanced partition cuts ``1 − 1/n_parts`` of them on average.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from recoworld.errors import ConfigError
from recoworld.rng import RngTree
from recoworld.world.graph import SocialGraph

__all__ = ["PARTITIONS", "PartitionStats", "cut_fraction", "partition_stats", "partition_users"]

#: Partition methods: ``graph`` (above) and ``random`` (balanced, for comparison).
PARTITIONS = ("graph", "random")

_LPA_ROUNDS = 10
_LPA_CHUNKS = 4
_REFINE_ROUNDS = 20


@dataclass(frozen=True, slots=True)
class PartitionStats:
    """How good a partition is: ``sizes`` of the parts, ``cut_fraction`` (share of follow edges
    between parts) and ``random_cut_fraction`` (the same for a random balanced partition drawn
    from the same seed, for comparison)."""

    method: str
    n_parts: int
    sizes: tuple[int, ...]
    cut_fraction: float
    random_cut_fraction: float

    def as_dict(self) -> dict[str, object]:
        return {
            "method": self.method,
            "n_parts": self.n_parts,
            "sizes": list(self.sizes),
            "cut_fraction": self.cut_fraction,
            "random_cut_fraction": self.random_cut_fraction,
        }


def partition_users(
    graph: SocialGraph,
    n_parts: int,
    *,
    method: Literal["graph", "random"] = "graph",
    seed: int = 0,
    slack: float = 0.03,
) -> NDArray[np.int32]:
    """The part (``0..n_parts-1``) of every user: with ``method="graph"``, parts of at most
    ``(1 + slack) · n_users / n_parts`` users cutting few follow edges (module docstring); with
    ``"random"``, sizes that differ by at most one."""
    n = graph.n_users
    if n_parts < 1:
        raise ConfigError(f"n_shards: expected an integer >= 1, got {n_parts}")
    if n_parts > max(n, 1):
        raise ConfigError(f"n_shards: expected at most world.n_users ({n}), got {n_parts}")
    if method not in PARTITIONS:
        raise ConfigError(f"partition: expected one of {', '.join(PARTITIONS)}, got {method!r}")
    if n_parts == 1:
        return np.zeros(n, np.int32)
    rng = RngTree(seed).generator(f"partition-{method}-{n_parts}")
    if method == "random" or graph.n_edges == 0:
        return _random_balanced(n, n_parts, rng)
    indptr, neighbour = _undirected(graph)
    labels = _label_propagation(indptr, neighbour, rng)
    cap = int(np.ceil(n / n_parts * (1.0 + slack)))
    part = _pack(labels, n_parts, rng, cap)
    return _refine(indptr, neighbour, part, n_parts, graph, cap)


def cut_fraction(graph: SocialGraph, part: NDArray[np.integer]) -> float:
    """Share of follow edges whose follower and followee are in different parts."""
    if graph.n_edges == 0:
        return 0.0
    src, dst = graph.edges()
    return float(np.mean(part[src] != part[dst]))


def partition_stats(
    graph: SocialGraph, part: NDArray[np.integer], method: str, seed: int = 0
) -> PartitionStats:
    """:class:`PartitionStats` of ``part`` (the random baseline is drawn from ``seed``)."""
    n_parts = int(part.max()) + 1 if part.size else 1
    baseline = partition_users(graph, n_parts, method="random", seed=seed)
    return PartitionStats(
        method=method,
        n_parts=n_parts,
        sizes=tuple(int(s) for s in np.bincount(part, minlength=n_parts)),
        cut_fraction=cut_fraction(graph, part),
        random_cut_fraction=cut_fraction(graph, baseline),
    )


def _random_balanced(n: int, n_parts: int, rng: np.random.Generator) -> NDArray[np.int32]:
    part = np.empty(n, np.int32)
    part[rng.permutation(n)] = np.arange(n) % n_parts
    return part


def _undirected(graph: SocialGraph) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """CSR of the follow graph with every edge both ways (a mutual follow counts twice)."""
    src, dst = graph.edges()
    u = np.concatenate([src, dst.astype(np.int64)])
    v = np.concatenate([dst.astype(np.int64), src])
    order = np.argsort(u, kind="stable")
    indptr = np.zeros(graph.n_users + 1, np.int64)
    np.cumsum(np.bincount(u, minlength=graph.n_users), out=indptr[1:])
    return indptr, v[order]


def _label_propagation(
    indptr: NDArray[np.int64], neighbour: NDArray[np.int64], rng: np.random.Generator
) -> NDArray[np.int64]:
    """Community labels: each user takes its neighbours' most frequent label (module docstring)."""
    n = indptr.shape[0] - 1
    labels = np.arange(n, dtype=np.int64)
    owner = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    for _ in range(_LPA_ROUNDS):
        chunk = rng.integers(0, _LPA_CHUNKS, size=n)
        changed = 0
        for c in range(_LPA_CHUNKS):
            sel = chunk[owner] == c
            u, lab = owner[sel], labels[neighbour[sel]]
            if u.size == 0:
                continue
            key = np.sort(u * n + lab)
            first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            count = np.diff(np.r_[first, key.size]).astype(np.float64)
            uk, lk = np.divmod(key[first], n)
            score = count + 0.5 * rng.random(count.size)  # random tie-break
            best = np.lexsort((-score, uk))
            head = np.r_[True, uk[best][1:] != uk[best][:-1]]
            users, new = uk[best][head], lk[best][head]
            changed += int((labels[users] != new).sum())
            labels[users] = new
        if changed <= n // 1000:
            break
    return labels


def _pack(
    labels: NDArray[np.int64], n_parts: int, rng: np.random.Generator, cap: int
) -> NDArray[np.int32]:
    """Whole communities, largest first, each into the part with the most room; a community
    larger than the room left anywhere fills the emptiest part and the rest goes on."""
    n = labels.shape[0]
    _, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    tie = rng.random(sizes.size)
    by_size = np.lexsort((tie, -sizes))
    members = np.split(np.argsort(inverse, kind="stable"), np.cumsum(sizes)[:-1])
    part = np.empty(n, np.int32)
    load = np.zeros(n_parts, np.int64)
    for c in by_size.tolist():
        users = members[c]
        while users.size:
            p = int(np.argmin(load))
            take = users[: max(cap - int(load[p]), 0)] if users.size > cap - load[p] else users
            part[take] = p
            load[p] += take.size
            users = users[take.size :]
    return part


def _refine(
    indptr: NDArray[np.int64],
    neighbour: NDArray[np.int64],
    part: NDArray[np.int32],
    n_parts: int,
    graph: SocialGraph,
    cap: int,
) -> NDArray[np.int32]:
    """Moves towards the part holding most of a user's neighbours, in equal numbers each way
    between two parts, plus one-way moves while the receiving part stays within ``cap`` users
    (module docstring)."""
    n = indptr.shape[0] - 1
    owner = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    rows = np.arange(n)
    best_cut = cut_fraction(graph, part)
    for _ in range(_REFINE_ROUNDS):
        counts = np.bincount(owner * n_parts + part[neighbour], minlength=n * n_parts)
        counts = counts.reshape(n, n_parts)
        own = counts[rows, part]
        others = counts.copy()
        others[rows, part] = -1
        target = np.argmax(others, axis=1).astype(np.int32)
        gain = others[rows, target] - own
        want = gain > 0
        if not want.any():
            break
        new = part.copy()
        load = np.bincount(part, minlength=n_parts)
        for a in range(n_parts):
            for b in range(a + 1, n_parts):
                ab = np.flatnonzero(want & (part == a) & (target == b))
                ba = np.flatnonzero(want & (part == b) & (target == a))
                ab = ab[np.argsort(-gain[ab], kind="stable")]
                ba = ba[np.argsort(-gain[ba], kind="stable")]
                m = min(ab.size, ba.size)
                # One way beyond the swaps, as far as the receiving part has room.
                extra_ab = min(ab.size - m, max(cap - int(load[b]), 0))
                extra_ba = min(ba.size - m, max(cap - int(load[a]), 0))
                move_ab, move_ba = ab[: m + extra_ab], ba[: m + extra_ba]
                new[move_ab], new[move_ba] = b, a
                load[a] += move_ba.size - move_ab.size
                load[b] += move_ab.size - move_ba.size
        cut = cut_fraction(graph, new)
        if cut >= best_cut:
            break
        part, best_cut = new, cut
    return part
