"""Bandit policies that explore by sampling their posterior: Beta-Bernoulli Thompson sampling.

The counterpart of :class:`~recoworld.policies.learned.LinUCBPolicy`: the same per-user topic
arms learnt from the same observed feedback (examined items and clicks per user and topic), but
exploration by posterior sampling instead of optimism. The slates are random, so the policy
reports Monte-Carlo estimates of its propensities (see the class docstring), which off-policy
estimators need.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from recoworld.errors import ConfigError
from recoworld.policies._params import number
from recoworld.policies.base import Feedback, RecommendRequest, Slates

if TYPE_CHECKING:
    from recoworld.world.catalog import Catalog

__all__ = ["ThompsonSamplingPolicy"]

logger = logging.getLogger(__name__)

#: Largest number of sampled scores ranked at once when estimating propensities.
_CHUNK = 1 << 22
#: Column-order tie-breaker added to the scores (ties keep candidate order, as ``top_k`` does).
_TIE = 1e-12


def _ranked(keys: NDArray[np.float64], k: int) -> NDArray[np.intp]:
    """Column indices of the ``k`` largest ``keys`` per row, largest first (rows ``[..., C]``);
    ties must have been broken by the caller (``_TIE``)."""
    c = keys.shape[-1]
    if k < c:
        part = np.argpartition(-keys, k - 1, axis=-1)[..., :k]
    else:
        part = np.broadcast_to(np.arange(c), keys.shape).copy()
    order = np.argsort(-np.take_along_axis(keys, part, axis=-1), axis=-1, kind="stable")
    return np.take_along_axis(part, order, axis=-1)


class ThompsonSamplingPolicy:
    """Thompson sampling with per-user topic arms: Beta-Bernoulli posteriors, one draw per page.

    Each user keeps, per topic ``t``, the items of that topic it examined (``e_t``) and clicked
    (``c_t``) — the counts LinUCB keeps — and a Beta posterior on its click probability:
    ``θ_t ~ Beta(a0 + c_t, b0 + e_t − c_t)``. Each page draws one ``θ_t`` per (user, topic) from
    ``request.rng`` — from ``Beta((a0 + c_t)/ν², (b0 + e_t − c_t)/ν²)`` with ``ν = exploration``:
    the same mean, a spread scaled by about ``ν`` (Chapelle & Li, 2011; ``ν = 1`` is plain
    Thompson sampling, ``ν → 0`` the greedy posterior mean); a candidate ``c`` of topic ``t`` scores
    ``θ_t + popularity_weight · log1p(clicks_c)`` (the public click counter breaks ties within a
    topic) and the slate is the ``k`` best, best first (exact ties: candidate order). Topics a user
    clicked often are drawn high and shown; topics it was rarely shown keep a wide posterior and
    come up now and then.

    **Propensities.** The slate is random, so the propensity of the item at rank ``r`` (the
    probability that the policy puts that item at that rank, given the request) is estimated by
    Monte Carlo: ``S = propensity_samples`` further independent draws of every user's ``θ``
    (same stream, after the draw that made the slate), each ranked like the real one;
    ``p̂ = (draws that put the item at rank r) / S``, clipped to ``[1/(S + 1), 1]`` so it is a
    valid propensity even when no extra draw reproduced it. It is unbiased except for that floor;
    its standard error is ``sqrt(p(1 − p)/S)``. A user whose posterior has concentrated gets
    propensities near 1. Cost: ``S`` rankings of the ``[n, C]`` scores per page.

    Args:
        a0: prior pseudo-clicks per topic (``> 0``).
        b0: prior pseudo-skips per topic (``> 0``); the prior mean click rate is
            ``a0 / (a0 + b0)``, its weight ``a0 + b0`` examinations.
        popularity_weight: weight of the ``log1p(clicks)`` tie-breaker (``>= 0``).
        propensity_samples: extra posterior draws per page for the propensity estimate
            (``>= 1``; the estimate's resolution is ``1/S``).
        exploration: ``ν``, the scale of the posterior's spread (``> 0``; 1 = plain Thompson
            sampling; below 1 explores less, which pays when users stay only a few sessions).
    """

    name = "thompson"

    def __init__(
        self,
        *,
        a0: float = 1.0,
        b0: float = 1.0,
        popularity_weight: float = 0.01,
        propensity_samples: int = 32,
        exploration: float = 1.0,
    ) -> None:
        self.a0 = number("a0", a0, "a number > 0 (prior pseudo-clicks per topic)", lambda v: v > 0)
        self.b0 = number("b0", b0, "a number > 0 (prior pseudo-skips per topic)", lambda v: v > 0)
        self.popularity_weight = number(
            "popularity_weight", popularity_weight, "a number >= 0", lambda v: v >= 0
        )
        if (
            isinstance(propensity_samples, bool)
            or not isinstance(propensity_samples, int)
            or propensity_samples < 1
        ):
            raise ConfigError(
                "policy.params.propensity_samples: expected an integer >= 1 (posterior draws "
                f"per page for the propensity estimate), got {propensity_samples!r}"
            )
        self.propensity_samples = int(propensity_samples)
        self.exploration = number(
            "exploration", exploration, "a number > 0 (1: plain Thompson sampling)", lambda v: v > 0
        )
        self.examined = np.zeros((0, 0), np.float32)
        self.clicks = np.zeros((0, 0), np.float32)
        self._catalog: Catalog | None = None

    # -- state --------------------------------------------------------------------------------
    def _grow(self, n_users: int, n_topics: int) -> None:
        rows, cols = self.examined.shape
        if rows < n_users or cols < n_topics:
            pad = ((0, max(0, n_users - rows)), (0, max(0, n_topics - cols)))
            self.examined, self.clicks = np.pad(self.examined, pad), np.pad(self.clicks, pad)

    def _posterior(
        self, request: RecommendRequest
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp], NDArray[np.float64]]:
        """Beta parameters ``[n, T]``, candidate topics ``[n, C]`` and the fixed part of the
        candidates' ranking keys (popularity and the tie-breaker) ``[n, C]``."""
        cat, cand, users = request.catalog, request.candidates, request.users
        self._catalog = cat
        self._grow(int(users.max()) + 1 if request.n else 0, cat.n_topics)
        examined = self.examined[users, : cat.n_topics].astype(np.float64)
        clicks = self.clicks[users, : cat.n_topics].astype(np.float64)
        temper = 1.0 / self.exploration**2
        a = (self.a0 + clicks) * temper
        b = (self.b0 + np.maximum(examined - clicks, 0.0)) * temper
        topic = cat.topic[cand].astype(np.intp)
        fixed = self.popularity_weight * np.log1p(cat.clicks[cand].astype(np.float64))
        fixed -= _TIE * np.arange(cand.shape[1])
        return a, b, topic, fixed

    # -- the protocol -------------------------------------------------------------------------
    def score(self, request: RecommendRequest) -> NDArray[np.float32]:
        """One posterior draw per (user, topic): ``θ_topic(c) + popularity_weight ·
        log1p(clicks_c)`` (random: wrappers re-rank one draw)."""
        a, b, topic, fixed = self._posterior(request)
        theta = request.rng.beta(a, b)
        return (np.take_along_axis(theta, topic, axis=1) + fixed).astype(np.float32)

    def recommend(self, request: RecommendRequest) -> Slates:
        a, b, topic, fixed = self._posterior(request)
        rng, k = request.rng, request.k
        keys = np.take_along_axis(rng.beta(a, b), topic, axis=1) + fixed
        cols = _ranked(keys, k)
        return Slates(
            items=np.take_along_axis(request.candidates, cols, axis=1),
            scores=np.take_along_axis(keys, cols, axis=1).astype(np.float32),
            propensities=self._propensities(a, b, topic, fixed, cols, k, rng),
        )

    def _propensities(
        self,
        a: NDArray[np.float64],
        b: NDArray[np.float64],
        topic: NDArray[np.intp],
        fixed: NDArray[np.float64],
        cols: NDArray[np.intp],
        k: int,
        rng: np.random.Generator,
    ) -> NDArray[np.float32]:
        """Monte-Carlo estimate of P(item at its rank) from ``propensity_samples`` more draws."""
        n, c = fixed.shape
        total = self.propensity_samples
        hits = np.zeros((n, k), np.int64)
        if n == 0:
            return np.ones((0, k), np.float32)
        chunk = max(1, _CHUNK // max(1, n * c))
        for start in range(0, total, chunk):
            s = min(chunk, total - start)
            theta = rng.beta(a, b, size=(s, *a.shape))
            keys = np.take_along_axis(theta, np.broadcast_to(topic, (s, n, c)), axis=2) + fixed
            hits += (_ranked(keys, k) == cols).sum(axis=0)
        return np.clip(hits / total, 1.0 / (total + 1), 1.0).astype(np.float32)

    def update(self, feedback: Feedback) -> None:
        if self._catalog is None or not feedback.users.size:
            return
        cat = self._catalog
        self._grow(int(feedback.users.max()) + 1, cat.n_topics)
        seen = feedback.examined
        users, topic = feedback.users[seen], cat.topic[feedback.items[seen]].astype(np.intp)
        np.add.at(self.examined, (users, topic), 1.0)
        np.add.at(self.clicks, (users, topic), feedback.clicked[seen])
