"""Neighbourhood collaborative filtering: item-item k-nearest neighbours on observed clicks.

The policy keeps the platform's own record of who clicked what (from
:class:`~recoworld.policies.base.Feedback`), turns it every few ticks into a sparse table of each
item's most similar items, and scores a user's candidates by their similarity to the items that
user clicked last. Everything is numpy over flat arrays (a sorted-key sparse layout, no
item-by-item matrix): the cost of a retraining grows with the co-clicked pairs, not with the
square of the catalogue.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from recoworld.policies._params import integer, number
from recoworld.policies.base import Feedback, RecommendRequest, Slates, slates_from_scores

__all__ = ["ItemKNNPolicy"]

logger = logging.getLogger(__name__)

#: Co-click pairs generated at once while computing the similarities (bounds the memory).
_PAIR_BLOCK = 1 << 22
#: (user, history item, candidate) look-ups at once while scoring.
_LOOKUP_BLOCK = 1 << 22
#: Co-click counts of a block of items are counted in a dense array up to this size at least.
_DENSE_MIN = 1 << 20
#: Bits of the float32 1.0: ``_ONE_BITS - bits(s)`` orders similarities in (0, 1] descending.
_ONE_BITS = 0x3F800000


def _group_starts(sorted_ids: NDArray[np.int64]) -> NDArray[np.intp]:
    """Start index of each run of equal values in a sorted array."""
    if sorted_ids.size == 0:
        return np.zeros(0, np.intp)
    return np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])


def _distinct(values: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.intp]]:
    """Sorted distinct values and their counts (a sort; ``np.unique`` hashes, slower here)."""
    ordered = np.sort(values)
    starts = _group_starts(ordered)
    return ordered[starts], np.diff(np.r_[starts, ordered.size])


def _rank_in_group(starts: NDArray[np.intp], size: int) -> NDArray[np.intp]:
    """Position of each element within its run (runs start at ``starts``, cover ``0..size``)."""
    lengths = np.diff(np.r_[starts, size])
    return np.arange(size) - np.repeat(starts, lengths)


class ItemKNNPolicy:
    """Item-item collaborative filtering from the clicks the platform observed.

    **Data.** Every click in the feedback (recommended or in-network) is logged as a
    (user, item) pair; the last ``buffer`` clicks form a binary user×item matrix ``R``
    (``R_ui = 1`` if ``u`` clicked ``i`` in that window), built sparse. Each user also has its
    last ``history`` clicked items ``H_u``, newest overwriting oldest.

    **Similarity**, recomputed every ``retrain_every`` ticks: the shrunk cosine of two items'
    click columns, ``s(i, j) = |U_i ∩ U_j| / (sqrt(|U_i| · |U_j|) + shrink)`` with ``U_i`` the
    users who clicked ``i`` (``s(i, i) = 0``). Shrinkage damps similarities resting on few users.
    Only the ``neighbors`` most similar items of each item are kept (ties: lower item id), as a
    sparse table — never an item×item matrix; co-click pairs are generated in blocks of items.

    **Score** of candidate ``c`` for user ``u``:
    ``Σ_{h ∈ H_u} s(h, c) + popularity_weight · log1p(clicks_c) − seen_penalty · [c seen]``,
    where ``s(h, c)`` counts only if ``c`` is among ``h``'s kept neighbours, ``clicks_c`` is the
    catalogue's public click counter (the fallback for users with no click yet, before the first
    retraining and for new items; a tie-breaker otherwise) and ``[c seen]`` marks candidates in
    the user's recent history (``request.history``: the user model penalizes repeats). The slate
    is the ``k`` best (ties: candidate order). Deterministic: propensity 1.

    Users and items are added as they appear (items may join the catalogue during a run; an item
    added after the last retraining has no neighbours until the next). Cost per retraining: about
    ``O(P log P)`` for ``P = Σ_u clicks_u²`` co-clicked pairs in the window (about 1.5 s for
    100,000 users with 10 clicks each over 10,000 items); per page:
    ``O(n · history · C · log(items · neighbors))``.

    Args:
        neighbors: similar items kept per item (``N``).
        shrink: shrinkage added to the cosine's denominator (``>= 0``; in users).
        history: recent clicked items per user that vote for candidates (``L``).
        retrain_every: ticks between recomputations of the similarities.
        buffer: clicks kept (the most recent) to compute the similarities from.
        popularity_weight: weight of ``log1p(clicks)``, the fallback and tie-breaker (``>= 0``).
        seen_penalty: score removed from candidates the user has already examined (``>= 0``;
            0 keeps them).
    """

    name = "itemknn"

    def __init__(
        self,
        *,
        neighbors: int = 50,
        shrink: float = 10.0,
        history: int = 10,
        retrain_every: int = 6,
        buffer: int = 1_000_000,
        popularity_weight: float = 0.01,
        seen_penalty: float = 1.0,
    ) -> None:
        self.neighbors = integer("neighbors", neighbors, "an integer >= 1 (items)", 1)
        self.shrink = number("shrink", shrink, "a number >= 0", lambda v: v >= 0)
        self.history = integer("history", history, "an integer >= 1 (clicked items)", 1)
        self.retrain_every = integer("retrain_every", retrain_every, "an integer >= 1 (ticks)", 1)
        self.buffer = integer("buffer", buffer, "an integer >= 1 (clicks)", 1)
        self.popularity_weight = number(
            "popularity_weight", popularity_weight, "a number >= 0", lambda v: v >= 0
        )
        self.seen_penalty = number("seen_penalty", seen_penalty, "a number >= 0", lambda v: v >= 0)
        self.n_items = 0
        # The click window: (user, item) of the last `buffer` clicks.
        self._click_users = np.zeros(0, np.int64)
        self._click_items = np.zeros(0, np.int64)
        self._new_clicks = 0
        # Each user's last `history` clicked items: a ring per user (-1 empty) and its write count.
        self.recent = np.full((0, self.history), -1, np.int32)
        self._recent_ptr = np.zeros(0, np.int64)
        # The kept similarities, sparse: sorted keys `i * stride + j` and their values.
        self.neighbor_keys = np.zeros(0, np.int64)
        self.neighbor_sims = np.zeros(0, np.float32)
        self._stride = 0
        self._since = 0
        self.trainings = 0

    # -- state --------------------------------------------------------------------------------
    def _grow_users(self, n: int) -> None:
        if self.recent.shape[0] < n:
            extra = n - self.recent.shape[0]
            self.recent = np.pad(self.recent, ((0, extra), (0, 0)), constant_values=-1)
            self._recent_ptr = np.pad(self._recent_ptr, (0, extra))

    def _remember(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> None:
        """Append the tick's clicks (in feedback order) to each user's ring of recent clicks."""
        order = np.argsort(users, kind="stable")
        users, items = users[order], items[order]
        starts = _group_starts(users)
        counts = np.diff(np.r_[starts, users.size])
        nth = _rank_in_group(starts, users.size)
        # Only each user's last `history` clicks of the tick can survive in its ring.
        keep = nth >= np.repeat(counts, counts) - self.history
        slot = (self._recent_ptr[users] + nth) % self.history
        self.recent[users[keep], slot[keep]] = items[keep]
        self._recent_ptr[users[starts]] += counts

    def train(self) -> None:
        """Recompute the kept similarities from the click window (see the class docstring)."""
        n_items = max(self.n_items, 1)
        pairs, _ = _distinct(self._click_users * n_items + self._click_items)
        users, items = np.divmod(pairs, n_items)
        starts = _group_starts(users)
        degree = np.diff(np.r_[starts, users.size])
        group = np.repeat(np.arange(starts.size), degree)
        clickers = np.bincount(items, minlength=n_items).astype(np.float64)
        by_item = np.argsort(items, kind="stable")
        # Pairs each (user, item) entry generates, and where each item's entries end.
        load = np.cumsum(degree[group[by_item]])
        sorted_items = items[by_item]
        item_end = np.r_[np.flatnonzero(sorted_items[1:] != sorted_items[:-1]) + 1, items.size]
        load_at_end = load[item_end - 1]
        keys: list[NDArray[np.int64]] = []
        sims: list[NDArray[np.float32]] = []
        begin = 0
        while begin < items.size:  # blocks of whole items, at least one, up to _PAIR_BLOCK pairs
            done = load[begin - 1] if begin else 0
            last = np.searchsorted(load_at_end, done + _PAIR_BLOCK, side="right") - 1
            end = int(item_end[max(last, np.searchsorted(item_end, begin, side="right"))])
            block_keys, block_sims = self._block(
                by_item[begin:end], items, starts, degree, group, clickers, n_items
            )
            keys.append(block_keys)
            sims.append(block_sims)
            begin = end
        self.neighbor_keys = np.concatenate(keys) if keys else np.zeros(0, np.int64)
        self.neighbor_sims = np.concatenate(sims) if sims else np.zeros(0, np.float32)
        self._stride = n_items
        self._new_clicks = 0
        self.trainings += 1
        logger.debug(
            "itemknn: retrained on %d clicks (%d distinct), %d similarities kept",
            self._click_users.size,
            pairs.size,
            self.neighbor_keys.size,
        )

    def _block(
        self,
        entries: NDArray[np.intp],
        items: NDArray[np.int64],
        starts: NDArray[np.intp],
        degree: NDArray[np.intp],
        group: NDArray[np.intp],
        clickers: NDArray[np.float64],
        n_items: int,
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Top-``neighbors`` similarities of the items of ``entries`` (their (user, item)
        entries, every entry of each item), as sorted keys ``i * n_items + j`` and values."""
        g = group[entries]
        d = degree[g]
        a = np.repeat(items[entries], d)
        offset = np.arange(a.size) - np.repeat(np.cumsum(d) - d, d)
        b = items[np.repeat(starts[g], d) + offset]  # every item the same user clicked
        other = a != b
        a, b = a[other], b[other]
        if a.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        first = int(items[entries[0]])  # entries are sorted by item
        span = int(items[entries[-1]]) - first + 1
        local = (a - first) * n_items + b
        if span * n_items <= max(4 * local.size, _DENSE_MIN):  # count densely: no sort
            counts = np.bincount(local, minlength=span * n_items)
            pair_keys = np.flatnonzero(counts)
            co = counts[pair_keys]
        else:
            pair_keys, co = _distinct(local)
        row, col = np.divmod(pair_keys, n_items)
        row += first
        sim = (co / (np.sqrt(clickers[row] * clickers[col]) + self.shrink)).astype(np.float32)
        row_starts = _group_starts(row)
        if (np.diff(np.r_[row_starts, row.size]) > self.neighbors).any():
            # Per row, most similar first (0 < sim <= 1, so its float bits order it); equal
            # similarities keep the lower item id first (a stable sort of (row, col) order).
            rank_key = (row << 30) | (_ONE_BITS - sim.view(np.uint32).astype(np.int64))
            order = np.argsort(rank_key, kind="stable")
            top = np.sort(order[_rank_in_group(row_starts, row.size) < self.neighbors])
            row, col, sim = row[top], col[top], sim[top]
        return row * n_items + col, sim

    def _similarity_votes(
        self, users: NDArray[np.int64], candidates: NDArray[np.int32]
    ) -> NDArray[np.float64]:
        """``[n, C]``: ``Σ_{h ∈ H_u} s(h, c)`` by look-up of ``h * stride + c`` in the table."""
        n, c = candidates.shape
        votes = np.zeros((n, c), np.float64)
        keys, stride = self.neighbor_keys, self._stride
        if keys.size == 0 or n == 0:
            return votes
        recent = self.recent[users]
        voters = np.flatnonzero(((recent >= 0) & (recent < stride)).any(axis=1))
        step = max(1, _LOOKUP_BLOCK // (self.history * c))
        for begin in range(0, voters.size, step):  # blocks of users, to bound memory
            rows = voters[begin : begin + step]
            h = recent[rows].astype(np.int64)[:, :, None]
            cand = candidates[rows].astype(np.int64)[:, None, :]
            valid = (h >= 0) & (h < stride) & (cand < stride)
            query = h * stride + cand
            pos = np.minimum(np.searchsorted(keys, query), keys.size - 1)
            hit = valid & (keys[pos] == query)
            votes[rows] = np.where(hit, self.neighbor_sims[pos], 0.0).sum(axis=1)
        return votes

    # -- the protocol -------------------------------------------------------------------------
    def score(self, request: RecommendRequest) -> NDArray[np.float32]:
        cat, cand, users = request.catalog, request.candidates, request.users
        self.n_items = max(self.n_items, cat.n_items)
        self._grow_users(int(users.max()) + 1 if request.n else 0)
        scores = self._similarity_votes(users, cand)
        if self.popularity_weight:
            scores += self.popularity_weight * np.log1p(cat.clicks[cand].astype(np.float64))
        if self.seen_penalty and request.n:
            stride = np.int64(max(self.n_items, 1))
            rows = np.arange(request.n, dtype=np.int64)[:, None] * stride
            history = request.history
            seen = np.isin(rows + cand, (rows + history)[history >= 0])
            scores -= self.seen_penalty * seen
        return scores.astype(np.float32)

    def recommend(self, request: RecommendRequest) -> Slates:
        return slates_from_scores(request, self.score(request))

    def update(self, feedback: Feedback) -> None:
        if feedback.users.size:
            self.n_items = max(self.n_items, int(feedback.items.max()) + 1)
            self._grow_users(int(feedback.users.max()) + 1)
            clicked = feedback.clicked
            users = feedback.users[clicked].astype(np.int64)
            items = feedback.items[clicked].astype(np.int64)
            if users.size:
                keep = self.buffer
                self._click_users = np.concatenate([self._click_users, users])[-keep:]
                self._click_items = np.concatenate([self._click_items, items])[-keep:]
                self._new_clicks += users.size
                self._remember(users, items)
        self._since += 1
        if self._since >= self.retrain_every and self._new_clicks:
            self._since = 0
            self.train()
