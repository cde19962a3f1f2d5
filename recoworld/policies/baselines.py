"""Baseline policies: Random and MostPopular."""

from __future__ import annotations

import numpy as np

from recoworld.policies.base import Feedback, RecommendRequest, Slates, top_k

__all__ = ["MostPopularPolicy", "RandomPolicy"]


def _take(
    request: RecommendRequest, cols: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    items = np.take_along_axis(request.candidates, cols, axis=1)
    return items, np.take_along_axis(scores, cols, axis=1).astype(np.float32)


class RandomPolicy:
    """k candidates uniformly at random, in random order.

    Propensity of each shown item at its rank is ``1 / C`` (C = candidates per user): every
    candidate is equally likely at every rank.
    """

    name = "random"

    def recommend(self, request: RecommendRequest) -> Slates:
        scores = request.rng.random(request.candidates.shape, dtype=np.float32)
        items, chosen = _take(request, top_k(scores, request.k), scores)
        prop = np.full(items.shape, 1.0 / request.candidates.shape[1], np.float32)
        return Slates(items=items, scores=chosen, propensities=prop)

    def update(self, feedback: Feedback) -> None:
        """Random does not learn."""


class MostPopularPolicy:
    """The candidates with the most clicks so far (catalogue-wide counters), most popular first.

    Score ``log1p(clicks)``; ties keep candidate order. Deterministic: propensity 1.
    """

    name = "most_popular"

    def recommend(self, request: RecommendRequest) -> Slates:
        clicks = request.catalog.clicks[request.candidates]
        scores = np.log1p(clicks.astype(np.float32))
        items, chosen = _take(request, top_k(scores, request.k), scores)
        return Slates(items=items, scores=chosen, propensities=np.ones(items.shape, np.float32))

    def update(self, feedback: Feedback) -> None:
        """Popularity is read from the catalogue's counters, which the schedule maintains."""
