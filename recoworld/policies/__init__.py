"""Recommender policies behind one protocol, and a registry of the built-in ones by name."""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from recoworld.errors import ConfigError
from recoworld.policies.base import (
    Feedback,
    OracleView,
    Recommender,
    RecommendRequest,
    Slates,
    slates_from_item_scores,
    slates_from_scores,
    top_k,
    validate_slates,
)

__all__ = [
    "Feedback",
    "OracleView",
    "RecommendRequest",
    "Recommender",
    "Slates",
    "available",
    "make_policy",
    "slates_from_item_scores",
    "slates_from_scores",
    "top_k",
    "validate_slates",
]

# name -> "module:Class"; modules load only when a policy is made.
_REGISTRY: dict[str, str] = {
    "random": "recoworld.policies.baselines:RandomPolicy",
    "most_popular": "recoworld.policies.baselines:MostPopularPolicy",
    "oracle": "recoworld.policies.oracle:OraclePolicy",
    "trending": "recoworld.policies.learned:TrendingPolicy",
    "mf": "recoworld.policies.learned:MatrixFactorizationPolicy",
    "linucb": "recoworld.policies.learned:LinUCBPolicy",
    "epsilon_greedy": "recoworld.policies.learned:EpsilonGreedyPolicy",
    "instruction_aware": "recoworld.policies.rerank:InstructionAwarePolicy",
    "mmr": "recoworld.policies.rerank:MMRPolicy",
    "itemknn": "recoworld.policies.neighbors:ItemKNNPolicy",
    "thompson": "recoworld.policies.bandits:ThompsonSamplingPolicy",
    "social": "recoworld.policies.social:SocialPolicy",
    "user_shield": "recoworld.policies.shield:UserShieldPolicy",
    "llm_agent": "recoworld.policies.agent:LLMAgentPolicy",
    "rl": "recoworld.policies.rl:RLPolicy",
}


def available() -> list[str]:
    """Names of the registered policies."""
    return sorted(_REGISTRY)


def make_policy(name: str, **params: Any) -> Recommender:
    """Build a registered policy by name; unknown names or parameters raise ConfigError."""
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"policy.name: unknown policy {name!r}.{hint} Available: {', '.join(available())}"
        )
    module_name, _, cls_name = _REGISTRY[name].partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    try:
        policy = cls(**params)
    except TypeError as exc:
        raise ConfigError(f"policy.params: {exc} (policy {name!r})") from None
    return policy
