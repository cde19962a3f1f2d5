"""The privileged oracle: an upper bound that sees the users' hidden state."""

from __future__ import annotations

import numpy as np

from recoworld.errors import PolicyError
from recoworld.policies.base import Feedback, RecommendRequest, Slates, slates_from_scores

__all__ = ["OraclePolicy"]


class OraclePolicy:
    """Scores candidates as the user will, from its hidden taste and boredom (labelled privileged).

    Score ``w_taste·cos(taste, item) + w_quality·(quality − ½) − boredom_weight·boredom[topic]
    − w_repeat·[recently examined] − w_stance·|opinion − stance| + utility_shift`` (the last two:
    confirmation bias, and the public penalty of a labeled item — zero unless the scenario has
    them), i.e. the user's own click utility: the perfect engagement maximizer. With
    ``follow_instructions`` (default) it also reads the ground-truth intent of the user's
    standing instruction: items of a wanted topic get ``+intent_boost``, items of a refused
    topic ``−intent_boost``, and — when the user asked for fresh items — items it has already
    seen ``−intent_boost``. With
    ``follow_instructions=False`` it is the same recommender ignoring instructions — the pair
    measures what listening is worth. Deterministic: propensity 1.

    Args:
        follow_instructions: act on the ground-truth intent of instructions.
        use_mindset: use the hidden boredom (otherwise taste and quality only).
        intent_boost: score added for wanted topics and removed for refused ones.
        use_stance: score the confirmation-bias term (otherwise the ranking is blind to stance).
        bridging: score added per unit of ``|opinion − stance|`` — a bridging feed that favours
            cross-cutting content among relevant items (0: none).
    """

    name = "oracle"
    privileged = True

    def __init__(
        self,
        *,
        follow_instructions: bool = True,
        use_mindset: bool = True,
        intent_boost: float = 2.0,
        use_stance: bool = True,
        bridging: float = 0.0,
    ) -> None:
        if not np.isfinite(bridging) or bridging < 0:
            raise PolicyError(f"policy.params.bridging: expected a number >= 0, got {bridging}")
        self.use_stance = use_stance
        self.bridging = float(bridging)
        self.follow_instructions = follow_instructions
        self.use_mindset = use_mindset
        self.intent_boost = float(intent_boost)
        if not follow_instructions:
            self.name = "oracle-ignore"
        if bridging > 0:
            self.name = f"oracle-bridging{self.bridging:g}"
        elif not use_stance:
            self.name += "-stanceblind"

    def recommend(self, request: RecommendRequest) -> Slates:
        view = request.oracle
        if view is None:
            raise PolicyError(
                "the oracle policy needs the hidden state; run it with privileged=True"
            )
        cat, cand = request.catalog, request.candidates
        rows = np.arange(request.n)[:, None]
        topic = cat.topic[cand].astype(np.intp)
        scores = view.w_taste * np.einsum("nd,ncd->nc", view.taste, cat.embedding[cand])
        scores += view.w_quality * (cat.quality[cand] - 0.5)
        seen = (cand[:, :, None] == request.history[:, None, :]).any(axis=2)
        scores -= view.w_repeat * seen
        if view.opinion is not None:
            distance = np.abs(view.opinion[:, None] - cat.stance[cand])
            weight = (view.w_stance if self.use_stance else 0.0) - self.bridging
            if weight:
                scores -= weight * distance
        scores += cat.utility_shift[cand]
        if self.use_mindset:
            scores -= view.boredom_weight[:, None] * view.boredom[rows, topic]
        if self.follow_instructions:
            more, less = view.intent_more[:, None], view.intent_less[:, None]
            scores += self.intent_boost * ((topic == more) & (more >= 0))
            scores -= self.intent_boost * ((topic == less) & (less >= 0))
            scores -= self.intent_boost * (seen & view.intent_fresh[:, None])
        return slates_from_scores(request, scores)

    def update(self, feedback: Feedback) -> None:
        """The oracle does not learn; it already knows."""
