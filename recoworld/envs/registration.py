"""The registry of recoworld environments: ids, kinds and entry points (no env code imported).

Gymnasium ids are registered with ``gymnasium.register`` when :mod:`recoworld` is imported;
entry points are strings, so the environment modules load only when an env is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ENVS", "EnvEntry", "register_envs"]


@dataclass(frozen=True, slots=True)
class EnvEntry:
    """One registered environment id."""

    id: str
    kind: Literal["gymnasium", "pettingzoo"]
    entry_point: str
    description: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    max_episode_steps: int | None = None
    vector_entry_point: str | None = None


ENVS: tuple[EnvEntry, ...] = (
    EnvEntry(
        id="recoworld/Feed-v0",
        kind="gymnasium",
        entry_point="recoworld.envs.feed:FeedEnv",
        vector_entry_point="recoworld.envs.feed:FeedVectorEnv",
        max_episode_steps=100,
        description="recommender serves one user's session; slate action MultiDiscrete([C]*k)",
    ),
    EnvEntry(
        id="recoworld/FeedItem-v0",
        kind="gymnasium",
        entry_point="recoworld.envs.feed:FeedEnv",
        vector_entry_point="recoworld.envs.feed:FeedVectorEnv",
        kwargs={"action_mode": "item"},
        max_episode_steps=100,
        description="one-item pages, Discrete(C) with action_masks() (DQN, MaskablePPO)",
    ),
    EnvEntry(
        id="recoworld/FeedWeights-v0",
        kind="gymnasium",
        entry_point="recoworld.envs.feed:FeedEnv",
        vector_entry_point="recoworld.envs.feed:FeedVectorEnv",
        kwargs={"action_mode": "weights"},
        max_episode_steps=100,
        description="continuous scoring weights over candidate features (SAC, TD3)",
    ),
    EnvEntry(
        id="recoworld/FeedLifelong-v0",
        kind="gymnasium",
        entry_point="recoworld.envs.feed:FeedEnv",
        kwargs={"lifelong": True},
        description="one user's sessions over simulated days; reward includes retention",
    ),
    EnvEntry(
        id="recoworld/SocialFeed-v0",
        kind="pettingzoo",
        entry_point="recoworld.envs.social:SocialFeedEnv",
        description="recommender and users as agents on a social feed (parallel; AEC view)",
    ),
)


def register_envs() -> None:
    """Register every Gymnasium id (idempotent)."""
    from gymnasium.envs.registration import register, registry

    for entry in ENVS:
        if entry.kind != "gymnasium" or entry.id in registry:
            continue
        register(
            id=entry.id,
            entry_point=entry.entry_point,
            vector_entry_point=entry.vector_entry_point,
            max_episode_steps=entry.max_episode_steps,
            kwargs=dict(entry.kwargs),
        )
