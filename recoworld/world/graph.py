"""The directed follow graph in CSR form."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["SocialGraph"]


class SocialGraph:
    """Directed follow graph over users ``0..n_users-1`` in CSR form.

    Row ``u`` lists the users ``u`` follows: ``indices[indptr[u]:indptr[u+1]]``, sorted, without
    duplicates or self-loops. :meth:`followers` is the transposed graph (who receives ``u``'s
    shares).
    """

    __slots__ = ("_followers", "indices", "indptr", "n_users")

    def __init__(self, n_users: int, indptr: NDArray[np.int64], indices: NDArray[np.int32]) -> None:
        if indptr.shape != (n_users + 1,):
            raise ValueError(f"indptr must have length n_users + 1 = {n_users + 1}")
        self.n_users = int(n_users)
        self.indptr = indptr.astype(np.int64, copy=False)
        self.indices = indices.astype(np.int32, copy=False)
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
        keep = src != dst
        key = np.unique(src[keep] * n_users + dst[keep])
        s, d = np.divmod(key, n_users)
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(s, minlength=n_users), out=indptr[1:])
        return cls(n_users, indptr, d.astype(np.int32))

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
            src, dst = self.edges()
            self._followers = SocialGraph.from_edges(self.n_users, dst, src)
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
