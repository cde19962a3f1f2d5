"""The directed follow graph in CSR form."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from recoworld import _kernels as kernels

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["SocialGraph"]


class SocialGraph:
    """Directed follow graph over users ``0..n_users-1`` in CSR form.

    Row ``u`` lists the users ``u`` follows: ``indices[indptr[u]:indptr[u+1]]``, sorted, without
    duplicates or self-loops. :meth:`followers` is the transposed graph (who receives ``u``'s
    shares).

    ``muted`` holds the mutes as sorted keys ``u * n_users + v`` (``u`` muted ``v``: ``v``'s
    shares and posts do not reach ``u``; the follow stays). :meth:`edit` adds and removes follows
    and mutes in place, keeping the cached transpose in step.
    """

    __slots__ = ("_followers", "indices", "indptr", "muted", "n_users")

    def __init__(self, n_users: int, indptr: NDArray[np.int64], indices: NDArray[np.int32]) -> None:
        if indptr.shape != (n_users + 1,):
            raise ValueError(f"indptr must have length n_users + 1 = {n_users + 1}")
        self.n_users = int(n_users)
        self.indptr = indptr.astype(np.int64, copy=False)
        self.indices = indices.astype(np.int32, copy=False)
        self.muted = np.zeros(0, dtype=np.int64)
        self._followers: SocialGraph | None = None

    @classmethod
    def from_edges(
        cls, n_users: int, src: NDArray[np.integer], dst: NDArray[np.integer]
    ) -> SocialGraph:
        """Edges ``src[e] -> dst[e]`` (src follows dst); drops self-loops and repeats."""
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        if src.shape != dst.shape:
            raise ValueError("src and dst must have the same length")
        if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n_users):
            raise ValueError(f"edge endpoints must lie in 0..{n_users - 1}")
        # Edges bucketed by source (a counting sort, O(E)), then each row sorted on its own.
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(src, minlength=n_users), out=indptr[1:])
        return cls.from_rows(n_users, indptr, kernels.bucket_targets(indptr, src, dst))

    @classmethod
    def from_rows(
        cls, n_users: int, indptr: NDArray[np.integer], targets: NDArray[np.integer]
    ) -> SocialGraph:
        """Row ``u`` (whom ``u`` follows) is ``targets[indptr[u]:indptr[u + 1]]``, in any order;
        repeats and self-loops are dropped. The same graph as :meth:`from_edges` with the
        sources spelled out, in ``O(E)`` plus a sort of each row (no sort of every edge)."""
        indptr = np.asarray(indptr, dtype=np.int64)
        targets = np.asarray(targets)
        if indptr.shape != (n_users + 1,) or indptr[0] != 0 or indptr[-1] != targets.shape[0]:
            raise ValueError("indptr must run from 0 to len(targets) over n_users + 1 entries")
        if bool((np.diff(indptr) < 0).any()):
            raise ValueError("indptr must not decrease")
        if targets.size and (targets.min() < 0 or targets.max() >= n_users):
            raise ValueError(f"edge endpoints must lie in 0..{n_users - 1}")
        out_ptr, indices = kernels.normalize_rows(indptr, np.ascontiguousarray(targets))
        return cls(n_users, out_ptr, indices)

    @classmethod
    def from_edge_list(cls, path: str | os.PathLike[str], n_users: int) -> SocialGraph:
        """Read a follow graph from an edge-list file: one ``src dst`` pair of user ids per line
        (``src`` follows ``dst``), separated by whitespace, a comma, a tab or a semicolon; lines
        starting with ``#`` and a header line are skipped; further columns (weights,
        timestamps) are ignored. Raises :class:`recoworld.errors.ConfigError` for a missing
        file, an unreadable line or an id outside ``0..n_users-1``."""
        import pandas as pd

        from recoworld.errors import ConfigError

        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"world.edges: no such file {str(file)!r}")
        first = ""
        with file.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip() and not line.lstrip().startswith("#"):
                    first = line
                    break
        if not first:
            return cls.empty(n_users)
        sep = next((c for c in ("\t", ",", ";") if c in first), r"\s+")
        head = first.split(None if sep == r"\s+" else sep)[0].strip()
        header = None if head.lstrip("-").isdigit() else 0
        try:
            frame = pd.read_csv(
                file, sep=sep, comment="#", header=header, usecols=[0, 1], dtype=np.int64
            )
        except (ValueError, pd.errors.ParserError) as exc:
            raise ConfigError(
                f"world.edges: {file} is not an edge list of user ids ({exc})"
            ) from exc
        src, dst = frame.iloc[:, 0].to_numpy(), frame.iloc[:, 1].to_numpy()
        bad = (src < 0) | (src >= n_users) | (dst < 0) | (dst >= n_users)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ConfigError(
                f"world.edges: {file}: edge {src[row]} -> {dst[row]} names a user outside "
                f"0..{n_users - 1}; set world.n_users to cover every id"
            )
        return cls.from_edges(n_users, src, dst)

    @classmethod
    def empty(cls, n_users: int) -> SocialGraph:
        return cls(n_users, np.zeros(n_users + 1, dtype=np.int64), np.zeros(0, dtype=np.int32))

    @property
    def n_edges(self) -> int:
        return int(self.indices.shape[0])

    def edges(self) -> tuple[NDArray[np.int64], NDArray[np.int32]]:
        """``(src, dst)`` arrays of every edge, in CSR order."""
        src = np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self.indptr))
        return src, self.indices

    def out_degree(self) -> NDArray[np.int64]:
        return np.diff(self.indptr)

    def following(self, user: int) -> NDArray[np.int32]:
        return self.indices[self.indptr[user] : self.indptr[user + 1]]

    def followers(self) -> SocialGraph:
        """The transposed graph: row ``v`` lists the users who follow ``v`` (cached)."""
        if self._followers is None:
            # A counting sort by followee: O(E), rows come out sorted.
            indptr, indices = kernels.transpose_csr(self.indptr, self.indices)
            self._followers = SocialGraph(self.n_users, indptr, indices)
        return self._followers

    def gather(self, users: NDArray[np.integer]) -> tuple[NDArray[np.int64], NDArray[np.int32]]:
        """Rows of ``users`` concatenated: ``(position in users, neighbour)`` pairs, vectorized."""
        users = np.asarray(users, dtype=np.int64)
        starts = self.indptr[users]
        counts = self.indptr[users + 1] - starts
        total = int(counts.sum())
        owner = np.repeat(np.arange(users.shape[0], dtype=np.int64), counts)
        offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        return owner, self.indices[np.repeat(starts, counts) + offsets]

    def keys(self) -> NDArray[np.int64]:
        """Every edge as ``src * n_users + dst``, sorted (the CSR order)."""
        src, dst = self.edges()
        return src * self.n_users + dst

    def has_edges(self, src: NDArray[np.integer], dst: NDArray[np.integer]) -> NDArray[np.bool_]:
        """Whether ``src[e]`` follows ``dst[e]``, for each ``e``."""
        rows = np.asarray(src, dtype=np.int64)
        return _locate(self.indptr, self.indices, rows, np.asarray(dst, dtype=np.int64))[1]

    def edit(
        self,
        add: tuple[NDArray[np.integer], NDArray[np.integer]] | None = None,
        remove: tuple[NDArray[np.integer], NDArray[np.integer]] | None = None,
        mute: tuple[NDArray[np.integer], NDArray[np.integer]] | None = None,
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """Add follows ``add = (src, dst)``, remove follows ``remove``, record mutes ``mute``, in
        place. Self-loops, follows that already exist (to add) or do not (to remove), and mutes
        of users not followed (after the edit) or already muted are skipped; an unfollow also
        lifts a mute of the same pair. Returns the keys ``src * n_users + dst`` actually added,
        removed and muted. Cost ``O(E)`` when anything changes (one pass over the edge arrays),
        nothing otherwise.
        """
        n = self.n_users
        added = self._edit_keys(_pair_keys(add, n), _pair_keys(remove, n))
        if self._followers is not None and (added[0].size or added[1].size):
            transpose = self._followers
            t_add = (added[0] % n) * n + added[0] // n
            t_remove = (added[1] % n) * n + added[1] // n
            transpose._edit_keys(np.sort(t_add), np.sort(t_remove))
        if added[1].size and self.muted.size:
            self.muted = self.muted[~_member(self.muted, added[1])]
        mutes = _pair_keys(mute, n)
        if mutes.size:
            src, dst = np.divmod(mutes, n)
            mutes = mutes[self.has_edges(src, dst) & ~_member(mutes, self.muted)]
            self.muted = np.union1d(self.muted, mutes)
        return added[0], added[1], mutes

    def _edit_keys(
        self, add: NDArray[np.int64], remove: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Apply sorted, distinct edge keys in place: each edge is found in its sorted row by
        binary search, removed or inserted in ``indices``, and ``indptr`` shifted by the
        per-row counts — no pass that builds a key per edge. A follow that exists before the
        edit is not added; one that does not is not removed."""
        n = self.n_users
        if add.size == 0 and remove.size == 0:
            return add, remove
        indptr, indices = self.indptr, self.indices
        if add.size:
            src, dst = np.divmod(add, n)
            add = add[~_locate(indptr, indices, src, dst)[1]]
        if remove.size:
            src, dst = np.divmod(remove, n)
            pos, found = _locate(indptr, indices, src, dst)
            remove, src, pos = remove[found], src[found], pos[found]
            if remove.size:
                indices = np.delete(indices, pos)
                indptr = indptr - np.concatenate(([0], np.cumsum(np.bincount(src, minlength=n))))
        if add.size:
            src, dst = np.divmod(add, n)
            pos, _ = _locate(indptr, indices, src, dst)
            # Keys are sorted, so several inserts at one position go in ascending order.
            indices = np.insert(indices, pos, dst.astype(np.int32))
            indptr = indptr + np.concatenate(([0], np.cumsum(np.bincount(src, minlength=n))))
        self.indptr, self.indices = indptr, indices
        return add, remove

    def mutes(self, follower: NDArray[np.integer], followee: NDArray[np.integer]) -> NDArray:
        """Whether ``follower[e]`` muted ``followee[e]``, for each ``e``."""
        if self.muted.size == 0:
            return np.zeros(np.shape(follower), dtype=bool)
        key = np.asarray(follower, np.int64) * self.n_users + np.asarray(followee, np.int64)
        return _member(key, self.muted)

    def to_networkx(self) -> nx.DiGraph:
        """A ``networkx.DiGraph`` with every user as a node and every follow as an edge."""
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from(range(self.n_users))
        src, dst = self.edges()
        g.add_edges_from(zip(src.tolist(), dst.tolist(), strict=True))
        return g

    @classmethod
    def from_networkx(cls, graph: Any, n_users: int | None = None) -> SocialGraph:
        """From a networkx graph whose nodes are the integers ``0..n-1`` (undirected: both ways)."""
        n = graph.number_of_nodes() if n_users is None else n_users
        edges = np.asarray(list(graph.edges()), dtype=np.int64).reshape(-1, 2)
        src, dst = edges[:, 0], edges[:, 1]
        if not graph.is_directed():
            src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
        return cls.from_edges(n, src, dst)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SocialGraph):
            return NotImplemented
        return (
            self.n_users == other.n_users
            and np.array_equal(self.indptr, other.indptr)
            and np.array_equal(self.indices, other.indices)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SocialGraph(n_users={self.n_users}, n_edges={self.n_edges})"


def _pair_keys(
    pairs: tuple[NDArray[np.integer], NDArray[np.integer]] | None, n: int
) -> NDArray[np.int64]:
    """Sorted distinct keys ``src * n + dst`` of ``pairs`` without self-loops."""
    if pairs is None:
        return np.zeros(0, dtype=np.int64)
    src = np.asarray(pairs[0], dtype=np.int64)
    dst = np.asarray(pairs[1], dtype=np.int64)
    if src.shape != dst.shape:
        raise ValueError("src and dst must have the same length")
    if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
        raise ValueError(f"edge endpoints must lie in 0..{n - 1}")
    keep = src != dst
    return _sorted_unique(src[keep] * n + dst[keep])


def _sorted_unique(keys: NDArray[np.int64]) -> NDArray[np.int64]:
    """``np.unique`` of int64 keys by a sort and a neighbour mask (numpy 2.4's ``unique`` hashes
    int64 keys: ~15× slower on millions of edges)."""
    keys = np.sort(keys)
    if keys.size:
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    return keys


def _locate(
    indptr: NDArray[np.int64], indices: NDArray[np.int32], src: NDArray[np.int64], dst: NDArray
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """For each pair, the position of ``dst[e]`` in the sorted CSR row ``src[e]`` (where it is,
    or where it would be inserted) and whether it is there: a binary search vectorized over
    rows of any length."""
    lo, hi = indptr[src].copy(), indptr[src + 1].copy()
    end = hi.copy()
    last = max(indices.shape[0] - 1, 0)
    while True:
        open_ = lo < hi
        if not open_.any():
            break
        mid = (lo + hi) // 2
        go_right = open_ & (indices[np.minimum(mid, last)] < dst)
        lo = np.where(go_right, mid + 1, lo)
        hi = np.where(open_ & ~go_right, mid, hi)
    found = lo < end
    found[found] = indices[lo[found]] == dst[found]
    return lo, found


def _member(keys: NDArray[np.int64], sorted_keys: NDArray[np.int64]) -> NDArray[np.bool_]:
    """``keys`` found in the sorted array ``sorted_keys`` (binary search, no hashing)."""
    if sorted_keys.size == 0 or keys.size == 0:
        return np.zeros(keys.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[pos] == keys
