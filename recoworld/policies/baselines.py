"""Baseline policies: Random and MostPopular."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from recoworld.policies.base import (
    Feedback,
    RecommendRequest,
    Slates,
    slates_from_item_scores,
    slates_from_scores,
)

__all__ = ["MostPopularPolicy", "RandomPolicy"]


class RandomPolicy:
    """k candidates uniformly at random, in random order.

    Propensity of each shown item at its rank is ``1 / C`` (C = candidates per user): every
    candidate is equally likely at every rank.
    """

    name = "random"
    #: Random does not learn: no feedback needed.
    wants_feedback = False

    def score(self, request: RecommendRequest) -> NDArray[np.float32]:
        """Uniform random scores from the policy stream."""
        return request.rng.random(request.candidates.shape, dtype=np.float32)

    def recommend(self, request: RecommendRequest) -> Slates:
        return slates_from_scores(request, self.score(request), 1.0 / request.candidates.shape[1])

    def update(self, feedback: Feedback) -> None:
        """Random does not learn."""


class MostPopularPolicy:
    """The candidates with the most clicks so far (catalogue-wide counters), most popular first.

    Score ``log1p(clicks)``; ties keep candidate order. Deterministic: propensity 1.
    """

    name = "most_popular"
    #: Popularity is read from the catalogue's counters: no feedback needed.
    wants_feedback = False

    @staticmethod
    def item_scores(request: RecommendRequest) -> NDArray[np.float32]:
        """``log1p`` of every catalogue item's clicks so far (one value per item)."""
        return np.log1p(request.catalog.clicks.astype(np.float32))

    def score(self, request: RecommendRequest) -> NDArray[np.float32]:
        """``log1p`` of each candidate's clicks so far."""
        return self.item_scores(request)[request.candidates]

    def recommend(self, request: RecommendRequest) -> Slates:
        return slates_from_item_scores(request, self.item_scores(request))

    def update(self, feedback: Feedback) -> None:
        """Popularity is read from the catalogue's counters, which the schedule maintains."""
