"""Evaluate a policy on a feed environment over held-out users — one loop for examples,
tests and benchmarks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["Evaluation", "evaluate"]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Per-episode ``returns``; ``returned`` (sessions followed by a return) and ``churned``
    (episodes that ended by churn) count lifelong retention."""

    returns: NDArray[np.float64]
    returned: int
    churned: int

    @property
    def mean(self) -> float:
        return float(self.returns.mean())

    @property
    def ci95(self) -> float:
        """Half-width of the normal 95% interval of the mean return."""
        return float(1.96 * self.returns.std(ddof=1) / np.sqrt(self.returns.size))

    @property
    def return_rate(self) -> float:
        """Returns / ended sessions (lifelong envs): sessions ended either in a return or churn."""
        ended = self.returned + self.churned
        return self.returned / ended if ended else float("nan")


def evaluate(
    act: Callable[[Any, Any], Any],
    env_id: str = "recoworld/Feed-v0",
    episodes: int = 100,
    seed: int = 0,
    **env_kwargs: Any,
) -> Evaluation:
    """Run ``act(env, obs) -> action`` for ``episodes`` users (episode ``i`` is reset with seed
    ``seed + i``, so policies compared with the same ``seed`` meet the same users)."""
    from recoworld.envs import make

    env = make(env_id, **env_kwargs)
    env.action_space.seed(seed)
    returns, returned, churned = [], 0, 0
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(act(env, obs))
            total += float(reward)
            returned += int(info.get("returned", False))
            churned += int(terminated)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return Evaluation(np.asarray(returns), returned, churned)
