"""A Stable-Baselines3 policy for slate actions: one shared scorer over the candidates.

``MultiDiscrete([C] * k)`` slates under a plain MLP policy learn slowly: the network must find,
for each of ``k`` heads, the best of ``C`` candidates laid out in a flat vector. Recommenders
score candidates instead. :class:`SlateScoringPolicy` does that inside PPO:

* :class:`CandidateScorer` (the features extractor) scores every candidate with one small MLP
  over its features, a context embedding (history, engagement, instruction) and explicit
  cross features (the candidate's topic against the instruction's topics more / less and the
  user's clicked topics);
* head ``j`` of the slate may not take the ``j`` best-scored candidates (their logits are masked),
  so the deterministic slate is exactly the top ``k`` and sampling explores below it;
* the value function reads the context embedding and the pooled scores.

Use: ``PPO(SlateScoringPolicy, make_sb3_vec_env(32), ...)`` on ``recoworld/Feed-v0``.
Needs the ``rl`` extra (Stable-Baselines3 and torch).
"""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import MultiInputActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

__all__ = ["CandidateScorer", "SlateScoringPolicy"]

_CONTEXT_KEYS = ("history", "engagement", "instruction", "oracle")
_ITEM_EXTRA = 4  # popularity, quality, seen, affinity after the topic one-hot


def _width(space: spaces.Space[Any]) -> int:
    if space.shape is None or len(space.shape) != 1:
        raise ValueError(f"expected a flat Box observation, got {space}")
    return int(space.shape[0])


class CandidateScorer(BaseFeaturesExtractor):
    """Outputs ``[scores (C), context embedding (hidden)]`` for a Feed observation."""

    def __init__(self, observation_space: spaces.Dict, n_candidates: int, hidden: int = 64) -> None:
        keys = [k for k in _CONTEXT_KEYS if k in observation_space.spaces]
        ctx_dim = sum(_width(observation_space[k]) for k in keys)
        n_feat = _width(observation_space["candidates"]) // n_candidates
        super().__init__(observation_space, features_dim=n_candidates + hidden)
        self.keys = keys
        self.n_candidates = n_candidates
        self.n_feat = n_feat
        self.n_topics = n_feat - _ITEM_EXTRA
        self.context = nn.Sequential(nn.Linear(ctx_dim, hidden), nn.Tanh())
        self.scorer = nn.Sequential(
            nn.Linear(n_feat + 3 + hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1)
        )

    def forward(self, obs: dict[str, th.Tensor]) -> th.Tensor:
        t = self.n_topics
        cand = obs["candidates"].view(-1, self.n_candidates, self.n_feat)
        topics = cand[:, :, :t]
        instruction = obs["instruction"]
        clicked_share = obs["history"][:, t : 2 * t]
        cross = th.stack(
            [
                (topics * instruction[:, None, :t]).sum(-1),
                (topics * instruction[:, None, t : 2 * t]).sum(-1),
                (topics * clicked_share[:, None, :]).sum(-1),
            ],
            dim=-1,
        )
        ctx = self.context(th.cat([obs[k] for k in self.keys], dim=1))
        x = th.cat([cand, cross, ctx[:, None, :].expand(-1, self.n_candidates, -1)], dim=-1)
        scores = self.scorer(x).squeeze(-1)
        return th.cat([scores, ctx], dim=1)


class SlateScoringPolicy(MultiInputActorCriticPolicy):
    """PPO/A2C policy for ``MultiDiscrete([C] * k)`` slates (see the module docstring)."""

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.MultiDiscrete,
        lr_schedule: Any,
        **kwargs: Any,
    ) -> None:
        nvec = [int(n) for n in action_space.nvec]
        if len(set(nvec)) != 1:
            raise ValueError("SlateScoringPolicy needs a MultiDiscrete([C] * k) slate action")
        self.slate_k, self.n_candidates = len(nvec), nvec[0]
        kwargs.setdefault("net_arch", {"pi": [], "vf": [64]})
        kwargs.setdefault("features_extractor_class", CandidateScorer)
        kwargs.setdefault("features_extractor_kwargs", {"n_candidates": self.n_candidates})
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _get_action_dist_from_latent(self, latent_pi: th.Tensor) -> Any:
        scores = latent_pi[:, : self.n_candidates]
        rank = scores.argsort(dim=1, descending=True).argsort(dim=1)
        heads = th.arange(self.slate_k, device=scores.device).view(1, -1, 1)
        taken = rank[:, None, :] < heads  # head j skips the j best-scored candidates
        logits = scores[:, None, :].expand(-1, self.slate_k, -1).masked_fill(taken, -30.0)
        return self.action_dist.proba_distribution(action_logits=logits.reshape(len(scores), -1))
