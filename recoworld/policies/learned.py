"""Policies that learn from what the platform observed: Trending, matrix factorization (BPR),
LinUCB, and the epsilon-greedy logging wrapper.

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

__all__ = [
    "EpsilonGreedyPolicy",
    "LinUCBPolicy",
    "MatrixFactorizationPolicy",
    "TrendingPolicy",
]


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
            self.hot = np.pad(self.hot, (0, n_items - self.hot.size))

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
            order = self.rng.permutation(n_pos)  # one shuffle per pass: each positive once
            for start in range(0, n_pos, self.batch):
                idx = order[start : start + self.batch]
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


class LinUCBPolicy:
    """LinUCB with per-user topic arms: optimism in the face of uncertainty.

    Each user keeps a ridge regression of click on the one-hot topic of what it examined; with
    one-hot features the design matrix is diagonal, so per user and topic ``t``:
    ``A_t = ridge + examined_t``, ``θ_t = clicks_t / A_t``. A candidate of topic ``t`` scores
    ``θ_t + alpha / sqrt(A_t)`` plus ``popularity_weight · log1p(clicks)`` (a tie-breaker
    within a topic, from the public counters). Deterministic: propensity 1.

    Args:
        alpha: exploration weight.
        ridge: prior strength (pseudo-examinations per topic).
        popularity_weight: weight of the popularity tie-breaker.
    """

    name = "linucb"

    def __init__(
        self, *, alpha: float = 0.5, ridge: float = 1.0, popularity_weight: float = 0.01
    ) -> None:
        if alpha < 0 or ridge <= 0:
            raise ConfigError(
                f"policy.params: expected alpha >= 0 and ridge > 0, got alpha={alpha}, "
                f"ridge={ridge}"
            )
        self.alpha, self.ridge = float(alpha), float(ridge)
        self.popularity_weight = float(popularity_weight)
        self.examined = np.zeros((0, 0), np.float32)
        self.clicks = np.zeros((0, 0), np.float32)
        self._topic: NDArray[np.int16] | None = None

    def _grow(self, n_users: int, n_topics: int) -> None:
        rows, cols = self.examined.shape
        if rows < n_users or cols < n_topics:
            pad = ((0, max(0, n_users - rows)), (0, max(0, n_topics - cols)))
            self.examined, self.clicks = np.pad(self.examined, pad), np.pad(self.clicks, pad)

    def score(self, request: RecommendRequest) -> NDArray[np.float32]:
        cat, cand, users = request.catalog, request.candidates, request.users
        self._topic = cat.topic
        self._grow(int(users.max()) + 1 if request.n else 0, cat.n_topics)
        topic = cat.topic[cand].astype(np.intp)
        rows = users[:, None]
        a = self.ridge + self.examined[rows, topic]
        theta = self.clicks[rows, topic] / a
        pop = np.log1p(cat.clicks[cand].astype(np.float32))
        return (theta + self.alpha / np.sqrt(a) + self.popularity_weight * pop).astype(np.float32)

    def recommend(self, request: RecommendRequest) -> Slates:
        return slates_from_scores(request, self.score(request))

    def update(self, feedback: Feedback) -> None:
        if self._topic is None or not feedback.users.size:
            return
        self._grow(int(feedback.users.max()) + 1, int(self._topic.max()) + 1)
        topic = self._topic[feedback.items].astype(np.intp)
        seen = feedback.examined
        np.add.at(self.examined, (feedback.users[seen], topic[seen]), 1.0)
        np.add.at(self.clicks, (feedback.users[seen], topic[seen]), feedback.clicked[seen])


class EpsilonGreedyPolicy:
    """A base policy's slate, each position replaced with probability ``epsilon`` by a uniformly
    random remaining candidate: the classic logging policy for off-policy evaluation.

    Position by position: with probability ``1 − ε`` the base's best remaining candidate, else a
    uniform draw among the remaining ones. The propensity of the item shown at a position is the
    exact probability of that choice given the positions before it:
    ``(1 − ε)·[it is the base's best remaining] + ε / remaining``.

    Args:
        base: name of a scoring policy or an object with ``score``.
        base_params: parameters of the named base.
        epsilon: exploration probability per position.
    """

    name = "epsilon_greedy"

    def __init__(
        self,
        *,
        base: object = "most_popular",
        base_params: dict | None = None,
        epsilon: float = 0.1,
    ) -> None:
        from recoworld.policies.rerank import _base

        if not 0.0 <= epsilon <= 1.0:
            raise ConfigError(f"policy.params.epsilon: expected a number in [0, 1], got {epsilon}")
        self.base = _base(base, base_params)
        self.epsilon = float(epsilon)
        self.name = f"epsilon_greedy[{self.base.name}]"

    def recommend(self, request: RecommendRequest) -> Slates:
        scores = self.base.score(request).astype(np.float64)
        n, c = scores.shape
        k = request.k
        rng = request.rng
        rows = np.arange(n)
        taken = np.zeros((n, c), bool)
        cols = np.zeros((n, k), np.intp)
        prop = np.zeros((n, k), np.float32)
        explore = rng.random((n, k)) < self.epsilon
        draws = rng.random((n, k))
        for pos in range(k):
            masked = np.where(taken, -np.inf, scores)
            best = masked.argmax(axis=1)
            remaining = c - pos
            # The (draw · remaining)-th untaken candidate, in candidate order.
            nth = np.minimum((draws[:, pos] * remaining).astype(np.intp), remaining - 1)
            order = np.cumsum(~taken, axis=1) - 1
            pick_random = np.argmax((order == nth[:, None]) & ~taken, axis=1)
            choice = np.where(explore[:, pos], pick_random, best)
            cols[:, pos] = choice
            prop[:, pos] = (1.0 - self.epsilon) * (choice == best) + self.epsilon / remaining
            taken[rows, choice] = True
        items = np.take_along_axis(request.candidates, cols, axis=1)
        return Slates(
            items=items,
            scores=np.take_along_axis(scores, cols, axis=1).astype(np.float32),
            propensities=prop,
        )

    def update(self, feedback: Feedback) -> None:
        self.base.update(feedback)
