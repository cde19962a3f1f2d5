"""Policies that learn from what the platform observed: Trending and matrix factorization (BPR).

Both only see the :class:`~recoworld.policies.base.Feedback` of past ticks (impressions, clicks,
likes, shares) and the public catalogue — never a user's hidden state. Both expose
``score(request) -> [n, C]`` so that wrappers (the instruction-aware planner, MMR) can re-rank
their scores.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from recoworld.errors import ConfigError
from recoworld.policies.base import Feedback, RecommendRequest, Slates, slates_from_scores

__all__ = ["MatrixFactorizationPolicy", "TrendingPolicy"]


class TrendingPolicy:
    """Hot items: clicks (plus likes and shares, weighted) decayed by their age.

    Each item keeps a hot score ``h``; every tick it decays as ``h ← h · 2^(−1/half_life)`` and
    gains ``clicks + like_weight·likes + share_weight·shares`` of that tick. Candidates are ranked
    by ``log1p(h)`` (ties: candidate order). Deterministic: propensity 1.

    Args:
        half_life: ticks after which a click counts half.
        like_weight, share_weight: weight of a like or a share relative to a click.
    """

    name = "trending"

    def __init__(
        self, *, half_life: float = 36.0, like_weight: float = 1.0, share_weight: float = 2.0
    ) -> None:
        if half_life <= 0:
            raise ConfigError(f"policy.params.half_life: expected > 0 ticks, got {half_life}")
        self.decay = 2.0 ** (-1.0 / half_life)
        self.like_weight = float(like_weight)
        self.share_weight = float(share_weight)
        self.hot = np.zeros(0, np.float64)
        self._tick: int | None = None

    def _grow(self, n_items: int) -> None:
        if self.hot.size < n_items:
            self.hot = np.concatenate([self.hot, np.zeros(n_items - self.hot.size)])

    def score(self, request: RecommendRequest) -> NDArray[np.float32]:
        self._grow(request.catalog.n_items)
        if self._tick is not None and request.tick > self._tick:
            self.hot *= self.decay ** (request.tick - self._tick)
            self._tick = request.tick
        return np.log1p(self.hot[request.candidates]).astype(np.float32)

    def recommend(self, request: RecommendRequest) -> Slates:
        return slates_from_scores(request, self.score(request))

    def update(self, feedback: Feedback) -> None:
        if feedback.items.size:
            self._grow(int(feedback.items.max()) + 1)
        if self._tick is not None and feedback.tick > self._tick:
            self.hot *= self.decay ** (feedback.tick - self._tick)
        self._tick = feedback.tick
        gain = (
            feedback.clicked
            + self.like_weight * feedback.liked
            + self.share_weight * feedback.shared
        )
        np.add.at(self.hot, feedback.items, gain)


class MatrixFactorizationPolicy:
    """Matrix factorization trained with BPR on the clicks the platform observed, retrained online.

    Every impression the platform logs goes into a buffer: clicked items are positives, examined
    but skipped items are that user's hard negatives. Every ``retrain_every`` ticks the factors
    take ``epochs`` passes of mini-batch SGD on the BPR loss
    ``−log σ(p_u·(q_i − q_j) + b_i − b_j)`` with L2 ``reg``, over the last ``buffer`` positives,
    each paired with a negative: the user's own skipped item with probability ``hard_negatives``,
    else a uniformly random item. Candidates are scored ``p_u·q_c + b_c``; a user with no click
    yet gets the item biases alone (which learn popularity). Deterministic for a ``seed``:
    propensity 1.

    Args:
        dim: factor dimension.
        lr: SGD learning rate.
        reg: L2 regularization.
        retrain_every: ticks between retrainings.
        epochs: passes over the buffer per retraining.
        batch: mini-batch size.
        buffer: positives kept (the most recent).
        hard_negatives: share of negatives taken from the user's skipped items.
        seed: seed of the initialization and the sampling.
    """

    name = "mf"

    def __init__(
        self,
        *,
        dim: int = 16,
        lr: float = 0.05,
        reg: float = 0.01,
        retrain_every: int = 12,
        epochs: int = 2,
        batch: int = 1024,
        buffer: int = 200_000,
        hard_negatives: float = 0.5,
        seed: int = 0,
    ) -> None:
        for key, value, ok in (
            ("dim", dim, dim >= 1),
            ("lr", lr, lr > 0),
            ("reg", reg, reg >= 0),
            ("retrain_every", retrain_every, retrain_every >= 1),
            ("epochs", epochs, epochs >= 1),
            ("batch", batch, batch >= 1),
            ("buffer", buffer, buffer >= 1),
            ("hard_negatives", hard_negatives, 0 <= hard_negatives <= 1),
        ):
            if not ok:
                raise ConfigError(f"policy.params.{key}: invalid value {value!r}")
        self.dim, self.lr, self.reg = int(dim), float(lr), float(reg)
        self.retrain_every, self.epochs, self.batch = int(retrain_every), int(epochs), int(batch)
        self.buffer, self.hard_negatives = int(buffer), float(hard_negatives)
        self.rng = np.random.default_rng(seed)
        self.P = np.zeros((0, self.dim), np.float32)
        self.Q = np.zeros((0, self.dim), np.float32)
        self.b = np.zeros(0, np.float32)
        self.has_clicked = np.zeros(0, bool)
        self._pos_u = np.zeros(0, np.int64)
        self._pos_i = np.zeros(0, np.int64)
        self._neg_u = np.zeros(0, np.int64)
        self._neg_i = np.zeros(0, np.int64)
        self._since = 0
        self.trainings = 0

    # -- state --------------------------------------------------------------------------------
    def _grow_users(self, n: int) -> None:
        if self.P.shape[0] < n:
            extra = n - self.P.shape[0]
            init = self.rng.normal(0.0, 0.1, (extra, self.dim)).astype(np.float32)
            self.P = np.concatenate([self.P, init])
            self.has_clicked = np.concatenate([self.has_clicked, np.zeros(extra, bool)])

    def _grow_items(self, n: int) -> None:
        if self.Q.shape[0] < n:
            extra = n - self.Q.shape[0]
            init = self.rng.normal(0.0, 0.1, (extra, self.dim)).astype(np.float32)
            self.Q = np.concatenate([self.Q, init])
            self.b = np.concatenate([self.b, np.zeros(extra, np.float32)])

    # -- the protocol -------------------------------------------------------------------------
    def score(self, request: RecommendRequest) -> NDArray[np.float32]:
        self._grow_items(request.catalog.n_items)
        self._grow_users(int(request.users.max()) + 1 if request.n else 0)
        users, cand = request.users, request.candidates
        scores = self.b[cand].copy()
        known = self.has_clicked[users]
        if known.any():
            scores[known] += np.einsum("nd,ncd->nc", self.P[users[known]], self.Q[cand[known]])
        return scores

    def recommend(self, request: RecommendRequest) -> Slates:
        return slates_from_scores(request, self.score(request))

    def update(self, feedback: Feedback) -> None:
        if feedback.users.size:
            self._grow_users(int(feedback.users.max()) + 1)
            self._grow_items(int(feedback.items.max()) + 1)
            clicked = feedback.clicked
            skipped = feedback.examined & ~clicked
            self.has_clicked[feedback.users[clicked]] = True
            keep = self.buffer
            self._pos_u = np.concatenate([self._pos_u, feedback.users[clicked]])[-keep:]
            self._pos_i = np.concatenate([self._pos_i, feedback.items[clicked]])[-keep:]
            self._neg_u = np.concatenate([self._neg_u, feedback.users[skipped]])[-4 * keep :]
            self._neg_i = np.concatenate([self._neg_i, feedback.items[skipped]])[-4 * keep :]
        self._since += 1
        if self._since >= self.retrain_every and self._pos_u.size:
            self._since = 0
            self.train()

    def train(self) -> None:
        """``epochs`` passes of BPR mini-batch SGD over the buffered positives."""
        n_pos = self._pos_u.size
        n_items = self.Q.shape[0]
        order_neg = np.argsort(self._neg_u, kind="stable")
        neg_u_sorted = self._neg_u[order_neg]
        for _ in range(self.epochs):
            for start in range(0, n_pos, self.batch):
                idx = self.rng.permutation(n_pos)[start : start + self.batch]
                u, i = self._pos_u[idx], self._pos_i[idx]
                j = self.rng.integers(0, n_items, size=idx.size)
                hard = self.rng.random(idx.size) < self.hard_negatives
                if hard.any() and neg_u_sorted.size:
                    lo = np.searchsorted(neg_u_sorted, u[hard], side="left")
                    hi = np.searchsorted(neg_u_sorted, u[hard], side="right")
                    has = hi > lo
                    pick = lo + (self.rng.random(has.size) * np.maximum(hi - lo, 1)).astype(int)
                    rows = np.flatnonzero(hard)[has]
                    j[rows] = self._neg_i[order_neg[pick[has]]]
                self._step(u, i, j)
        self.trainings += 1

    def _step(self, u: NDArray[np.int64], i: NDArray[np.int64], j: NDArray[np.int64]) -> None:
        pu, qi, qj = self.P[u], self.Q[i], self.Q[j]
        x = np.einsum("nd,nd->n", pu, qi - qj) + self.b[i] - self.b[j]
        g = (1.0 / (1.0 + np.exp(np.clip(x, -30, 30)))).astype(np.float32)[:, None]  # σ(−x)
        lr, reg = np.float32(self.lr), np.float32(self.reg)
        np.add.at(self.P, u, lr * (g * (qi - qj) - reg * pu))
        np.add.at(self.Q, i, lr * (g * pu - reg * qi))
        np.add.at(self.Q, j, lr * (-g * pu - reg * qj))
        np.add.at(self.b, i, lr * (g[:, 0] - reg * self.b[i]))
        np.add.at(self.b, j, lr * (-g[:, 0] - reg * self.b[j]))
