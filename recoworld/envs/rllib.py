"""RLlib face: ``recoworld/SocialFeed-v0`` as an RLlib ``MultiAgentEnv`` (new API stack).

Needs the ``rllib`` extra, in an environment of its own (RLlib pins ``gymnasium==1.2.2``)::

    from ray.rllib.algorithms.ppo import PPOConfig
    from recoworld.envs.rllib import SocialFeedMultiAgentEnv

    config = (
        PPOConfig()
        .environment(SocialFeedMultiAgentEnv, env_config={"n_users": 4, "max_cycles": 10})
        .multi_agent(
            policies={"recommender", "user"},
            policy_mapping_fn=lambda agent_id, episode, **kw: (
                "recommender" if agent_id == "recommender" else "user"
            ),
        )
    )

The spaces are heterogeneous (the recommender's ``Box`` and ``MultiDiscrete`` differ from the
users'), so map the recommender and the users to different policies (RLModules).

By default (``turn_based=True``) only the agents whose phase it is observe and act: the
recommender in the ``recommend`` step, the users in the ``respond`` step. The env ignores
off-phase actions anyway, so this keeps them out of the training batches; RLlib carries rewards
given between an agent's turns over to its next step. At the end of an episode every agent gets
a last observation (RLlib needs one to bootstrap truncated agents). ``turn_based=False`` passes
every observation through, as PettingZoo returns it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recoworld.envs import make
from recoworld.envs.social import RECOMMENDER, SocialFeedEnv
from recoworld.errors import DependencyNotInstalled

try:
    from ray.rllib.env.multi_agent_env import (  # type: ignore[import-not-found, unused-ignore]
        MultiAgentEnv,
    )
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise DependencyNotInstalled(
        "recoworld.envs.rllib needs RLlib: pip install 'recoworld[rllib]' in an environment of "
        "its own (RLlib pins gymnasium==1.2.2; pin torch==2.13.0 with a constraint on these "
        "machines)"
    ) from exc

__all__ = ["ENV_ID", "SocialFeedMultiAgentEnv"]

ENV_ID = "recoworld/SocialFeed-v0"

# Keyed by agent id; ``Any`` keys keep the overrides compatible with RLlib's ``MultiAgentDict``
# when ray is visible to mypy.
Dicts = dict[Any, Any]


class SocialFeedMultiAgentEnv(MultiAgentEnv):  # type: ignore[misc, unused-ignore]
    """``recoworld/SocialFeed-v0`` for RLlib.

    Args:
        config: RLlib's ``env_config`` (an ``EnvContext``): keyword arguments of
            ``SocialFeed-v0`` (see :class:`~recoworld.envs.social.SocialFeedConfig`), plus
            ``turn_based``.
        **kwargs: the same, given directly; they override ``config``.
    """

    def __init__(self, config: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        options = {**(config or {}), **kwargs}
        self.turn_based = bool(options.pop("turn_based", True))
        super().__init__()  # type: ignore[no-untyped-call, unused-ignore]
        self.par_env: SocialFeedEnv = make(ENV_ID, **options)
        self.possible_agents = list(self.par_env.possible_agents)
        self.agents = list(self.possible_agents)
        self.observation_spaces = {
            a: self.par_env.observation_space(a) for a in self.possible_agents
        }
        self.action_spaces = {a: self.par_env.action_space(a) for a in self.possible_agents}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Dicts, Dicts]:
        obs, infos = self.par_env.reset(seed=seed, options=options)
        self.agents = list(self.par_env.agents)
        acting = self._acting(infos, done=False)
        return _only(obs, acting), _only(infos, acting)

    def step(  # type: ignore[override, unused-ignore]  # RLlib's own step overrides gym.Env's
        self, action_dict: Dicts
    ) -> tuple[Dicts, Dicts, Dicts, Dicts, Dicts]:
        obs, rewards, terminateds, truncateds, infos = self.par_env.step(action_dict)
        self.agents = list(self.par_env.agents)
        acting = self._acting(infos, done=not self.agents)
        terminateds = {**terminateds, "__all__": bool(terminateds) and all(terminateds.values())}
        truncateds = {**truncateds, "__all__": bool(truncateds) and all(truncateds.values())}
        return _only(obs, acting), dict(rewards), terminateds, truncateds, _only(infos, acting)

    def _acting(self, infos: Mapping[str, Mapping[str, Any]], *, done: bool) -> set[str]:
        """The agents who observe and act next: all when not turn-based or at the end, else
        those of the phase every info carries (``recommend`` or ``respond``)."""
        if not self.turn_based or done:
            return set(infos)
        recommend = next(iter(infos.values()))["phase"] == "recommend"
        return {a for a in infos if (a == RECOMMENDER) == recommend}

    def close(self) -> None:
        self.par_env.close()


def _only(per_agent: Mapping[str, Any], agents: set[str]) -> Dicts:
    return {a: v for a, v in per_agent.items() if a in agents}
