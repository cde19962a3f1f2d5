"""Social recommendation: what the people a user follows liked and shared.

:class:`SocialPolicy` reads the public follow graph of the request
(:attr:`~recoworld.policies.base.RecommendRequest.graph`) and remembers, from the platform's
:class:`~recoworld.policies.base.Feedback`, every user's recent likes and shares. Everything is
vectorized over users: the engagement memory is a sorted sparse table (one row per user), a
request gathers the followees of all its users from the graph's CSR arrays at once and matches
their engagement against the candidate pools by one sorted search.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from recoworld.errors import ConfigError
from recoworld.policies.base import Feedback, RecommendRequest, Slates, slates_from_scores

__all__ = ["SocialPolicy"]

logger = logging.getLogger(__name__)

_SHIFT = np.int64(32)  # key = user << 32 | item: one sorted int64 key per (user, item) pair
_ITEM_MASK = np.int64((1 << 32) - 1)


def _expand(starts: NDArray[np.int64], counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """The indices ``starts[j] .. starts[j] + counts[j] − 1`` of every range, concatenated."""
    shift = starts - (np.cumsum(counts) - counts)
    return np.arange(int(counts.sum()), dtype=np.int64) + np.repeat(shift, counts)


class SocialPolicy:
    """Items liked or shared by the people a user follows, with a popularity fallback.

    **Memory.** Every like and share the platform observes is kept as engagement
    ``e[v, i]`` of user ``v`` with item ``i``: a like adds 1, a share adds ``share_weight`` (an
    item liked and shared adds both), and all of it decays with age as
    ``e ← e · 2^(−Δt/half_life)``; entries that fall below 0.01 (about 6.6 half-lives after a
    single like) are forgotten, so the memory holds only recent engagement.

    **Score.** For user ``u`` with followees ``F(u)`` (row ``u`` of the request's follow graph)
    and candidate ``i``::

        s(u, i) = log1p( Σ_{v ∈ F(u)} e[v, i] ) + popularity_weight · log1p(clicks_i)

    where ``clicks_i`` is the catalogue's public click counter. The popularity term ranks the
    candidates of users who follow nobody, or whose followees engaged with none of them (and,
    when ``request.graph`` is ``None``, everybody's). Ties keep candidate order.
    Deterministic: propensity 1.

    The candidate pool is drawn by the schedule (a uniform window of the catalogue), so the
    policy can only promote the followees' items that happen to be among a user's candidates.

    Args:
        half_life: ticks after which a like or share counts half (> 0).
        share_weight: weight of a share relative to a like (≥ 0).
        popularity_weight: weight of the popularity fallback (≥ 0).
    """

    name = "social"

    def __init__(
        self,
        *,
        half_life: float = 72.0,
        share_weight: float = 2.0,
        popularity_weight: float = 0.05,
    ) -> None:
        for key, value, expected in (
            ("half_life", half_life, "> 0 ticks"),
            ("share_weight", share_weight, ">= 0"),
            ("popularity_weight", popularity_weight, ">= 0"),
        ):
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not (value > 0 if key == "half_life" else value >= 0):
                raise ConfigError(
                    f"policy.params.{key}: expected a number {expected}, got {value!r}"
                )
        self.half_life = float(half_life)
        self.share_weight = float(share_weight)
        self.popularity_weight = float(popularity_weight)
        self.min_weight = 0.01
        self.keys = np.zeros(0, np.int64)  # sorted: user << 32 | item
        self.weights = np.zeros(0, np.float64)  # e[user, item] as of tick self._tick
        self._tick: int | None = None
        self._rows: NDArray[np.int64] | None = None  # CSR row pointer of the memory (cached)
        self._items: NDArray[np.int64] | None = None  # item of each key (cached)

    # -- memory -------------------------------------------------------------------------------
    def _decay(self, tick: int) -> float:
        """Decay factor from the memory's tick to ``tick`` (1 when memory is empty or current)."""
        if self._tick is None or tick <= self._tick:
            return 1.0
        return float(2.0 ** (-(tick - self._tick) / self.half_life))

    def engagement(self, user: int, tick: int | None = None) -> dict[int, float]:
        """``{item: e[user, item]}`` as of ``tick`` (default: the last update) — for inspection."""
        lo, hi = np.searchsorted(self.keys, [user << 32, (user + 1) << 32])
        factor = self._decay(tick) if tick is not None else 1.0
        items = (self.keys[lo:hi] & _ITEM_MASK).tolist()
        return dict(zip(items, (self.weights[lo:hi] * factor).tolist(), strict=True))

    def update(self, feedback: Feedback) -> None:
        factor = self._decay(feedback.tick)
        if factor != 1.0:
            self.weights *= factor
        self._tick = feedback.tick if self._tick is None else max(self._tick, feedback.tick)
        engaged = feedback.liked | feedback.shared
        if engaged.any():
            gain = feedback.liked[engaged] + self.share_weight * feedback.shared[engaged]
            pairs = (feedback.users[engaged].astype(np.int64) << _SHIFT) | feedback.items[
                engaged
            ].astype(np.int64)
            new: NDArray[np.int64]
            new, inverse = np.unique(pairs, return_inverse=True)
            add = np.bincount(inverse, weights=gain, minlength=new.size)
            pos: NDArray[np.intp] = np.searchsorted(self.keys, new)
            known: NDArray[np.bool_] = pos < self.keys.size
            known[known] = self.keys[pos[known]] == new[known]
            np.add.at(self.weights, pos[known], add[known])
            fresh = ~known
            self.keys = np.insert(self.keys, pos[fresh], new[fresh])
            self.weights = np.insert(self.weights, pos[fresh], add[fresh])
        keep = self.weights >= self.min_weight
        if not keep.all():
            self.keys, self.weights = self.keys[keep], self.weights[keep]
        self._rows = self._items = None

    def _csr(self, n_users: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """The memory as CSR over users ``0..n_users-1``: row pointer and items (cached)."""
        if self._rows is None or self._items is None or self._rows.size < n_users + 1:
            bounds = np.arange(n_users + 1, dtype=np.int64) << _SHIFT
            self._rows = np.searchsorted(self.keys, bounds).astype(np.int64)
            self._items = self.keys & _ITEM_MASK
        return self._rows, self._items

    # -- the protocol -------------------------------------------------------------------------
    def social_scores(self, request: RecommendRequest) -> NDArray[np.float64]:
        """``Σ_{v ∈ F(u)} e[v, i]`` for every request row and candidate, ``[n, C]``."""
        cand = request.candidates
        n, c = cand.shape
        out = np.zeros((n, c), np.float64)
        graph = request.graph
        if graph is None or graph.n_edges == 0 or self.keys.size == 0 or n == 0:
            return out
        valid = np.flatnonzero(request.users < graph.n_users)
        owner, followee = graph.gather(request.users[valid])
        rows = valid[owner]
        # Each followee's row of the memory: a contiguous range of the sorted keys.
        ptr, items = self._csr(graph.n_users)
        lo = ptr[followee]
        counts = ptr[followee + 1] - lo
        if not counts.any():
            return out
        idx = _expand(lo, counts)
        row_of = np.repeat(rows, counts)
        wanted = (row_of << _SHIFT) | items[idx]
        # Candidate pools as one globally sorted key array: rows ascend, items sorted per row.
        order = np.argsort(cand, axis=1)
        pool = (np.arange(n, dtype=np.int64)[:, None] << _SHIFT) | np.take_along_axis(
            cand, order, axis=1
        ).astype(np.int64)
        flat = pool.ravel()
        pos = np.searchsorted(flat, wanted)
        hit = pos < flat.size
        hit[hit] = flat[pos[hit]] == wanted[hit]
        if hit.any():
            cols = order.ravel()[pos[hit]]
            cell = row_of[hit] * c + cols
            out += np.bincount(cell, weights=self.weights[idx[hit]], minlength=n * c).reshape(n, c)
        return out * self._decay(request.tick)

    def score(self, request: RecommendRequest) -> NDArray[np.float32]:
        """``log1p(followees' engagement) + popularity_weight · log1p(clicks)``, ``[n, C]``."""
        pop = np.log1p(request.catalog.clicks[request.candidates].astype(np.float64))
        social = np.log1p(self.social_scores(request))
        return (social + self.popularity_weight * pop).astype(np.float32)

    def recommend(self, request: RecommendRequest) -> Slates:
        return slates_from_scores(request, self.score(request))
