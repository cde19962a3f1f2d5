"""Baseline policies: Random and MostPopular."""

from __future__ import annotations

import numpy as np

from recoworld.policies.base import Feedback, RecommendRequest, Slates, slates_from_scores

__all__ = ["MostPopularPolicy", "RandomPolicy"]


class RandomPolicy:
    """k candidates uniformly at random, in random order.

    Propensity of each shown item at its rank is ``1 / C`` (C = candidates per user): every
    candidate is equally likely at every rank.
    """

    name = "random"

    def recommend(self, request: RecommendRequest) -> Slates:
        scores = request.rng.random(request.candidates.shape, dtype=np.float32)
        return slates_from_scores(request, scores, 1.0 / request.candidates.shape[1])

    def update(self, feedback: Feedback) -> None:
        """Random does not learn."""


class MostPopularPolicy:
    """The candidates with the most clicks so far (catalogue-wide counters), most popular first.

    Score ``log1p(clicks)``; ties keep candidate order. Deterministic: propensity 1.
    """

    name = "most_popular"

    def recommend(self, request: RecommendRequest) -> Slates:
        clicks = request.catalog.clicks[request.candidates]
        return slates_from_scores(request, np.log1p(clicks.astype(np.float32)))

    def update(self, feedback: Feedback) -> None:
        """Popularity is read from the catalogue's counters, which the schedule maintains."""
