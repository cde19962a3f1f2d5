"""Stable-Baselines3 on the native vector env: many users per process, no per-env overhead.

``make_sb3_vec_env(n_envs=16, **env_kwargs)`` returns an SB3 ``VecEnv`` backed by one
:class:`~recoworld.envs.feed.FeedVectorEnv` with same-step autoreset (SB3's convention:
``dones`` plus ``info["terminal_observation"]`` and ``info["TimeLimit.truncated"]``), so PPO
trains on B simulated users for about the cost of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recoworld.envs.feed import FeedVectorEnv
from recoworld.errors import DependencyNotInstalled

__all__ = ["make_sb3_vec_env"]


def make_sb3_vec_env(
    n_envs: int = 16, seed: int | None = 0, max_episode_steps: int = 100, **env_kwargs: Any
) -> Any:
    """An SB3 ``VecEnv`` of ``n_envs`` Feed users (keyword arguments as for ``Feed-v0``)."""
    try:
        from stable_baselines3.common.vec_env import VecEnv
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise DependencyNotInstalled(
            "make_sb3_vec_env needs Stable-Baselines3: pip install 'recoworld[rl]' "
            "(with a constraint pinning torch==2.13.0 on these machines)"
        ) from exc

    class FeedSB3VecEnv(VecEnv):
        def __init__(self) -> None:
            self.env = FeedVectorEnv(
                n_envs,
                max_episode_steps=max_episode_steps,
                autoreset_mode="same_step",
                **env_kwargs,
            )
            super().__init__(
                n_envs, self.env.single_observation_space, self.env.single_action_space
            )
            self._seed = seed
            self._actions: Any = None

        def reset(self) -> Any:
            obs, _ = self.env.reset(seed=self._seed)
            self._seed = None
            return obs

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = actions

        def step_wait(self) -> Any:
            obs, reward, terminated, truncated, info = self.env.step(self._actions)
            dones = terminated | truncated
            infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
            for slot in np.flatnonzero(dones):
                infos[slot]["terminal_observation"] = info["final_obs"][slot]
                infos[slot]["TimeLimit.truncated"] = bool(truncated[slot] and not terminated[slot])
            return obs, reward.astype(np.float32), dones, infos

        def seed(self, seed: int | None = None) -> Sequence[int | None]:
            self._seed = seed
            return [seed] * self.num_envs

        def close(self) -> None:
            self.env.close()

        def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
            return [getattr(self.env, attr_name)] * len(self._indices(indices))

        def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
            setattr(self.env, attr_name, value)

        def env_method(
            self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any
        ) -> list[Any]:
            result = getattr(self.env, method_name)(*args, **kwargs)
            return [result] * len(self._indices(indices))

        def env_is_wrapped(self, wrapper_class: Any, indices: Any = None) -> list[bool]:
            return [False] * len(self._indices(indices))

        def _indices(self, indices: Any) -> list[int]:
            if indices is None:
                return list(range(self.num_envs))
            if isinstance(indices, int):
                return [indices]
            return list(indices)

    return FeedSB3VecEnv()
