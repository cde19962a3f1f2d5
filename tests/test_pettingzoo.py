"""PettingZoo faces: every registered id passes the upstream tests, and ours."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test
from pettingzoo.utils.conversions import parallel_to_aec

import recoworld
from recoworld.envs import ENVS
from recoworld.envs.social import RECOMMENDER, user_agent
from recoworld.errors import ConfigError

from .conftest import deep_equal

PZ_IDS = [e.id for e in ENVS if e.kind == "pettingzoo"]
SMALL = {"n_users": 8, "n_items": 200, "max_cycles": 12}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("env_id", PZ_IDS)
def test_upstream_api_tests(env_id: str) -> None:
    parallel_api_test(recoworld.make(env_id, **SMALL), num_cycles=30)
    api_test(recoworld.make(env_id, api="aec", **SMALL), num_cycles=30)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("env_id", PZ_IDS)
def test_upstream_seed_tests(env_id: str) -> None:
    parallel_seed_test(functools.partial(recoworld.make, env_id, **SMALL))
    seed_test(functools.partial(recoworld.make, env_id, api="aec", **SMALL), num_cycles=10)


def _rollout(env_id: str, seed: int) -> list:
    env = recoworld.make(env_id, **SMALL)
    obs, infos = env.reset(seed=seed)
    for agent in env.possible_agents:
        env.action_space(agent).seed(seed)
    out = [obs, infos]
    while env.agents:
        actions = {a: env.action_space(a).sample() for a in env.agents}
        out.append(env.step(actions))
    return out


@pytest.mark.parametrize("env_id", PZ_IDS)
def test_multi_step_determinism(env_id: str) -> None:
    """parallel_seed_test stops after one step; whole episodes must repeat too."""
    assert deep_equal(_rollout(env_id, 5), _rollout(env_id, 5))
    assert not deep_equal(_rollout(env_id, 5), _rollout(env_id, 6))


def test_phases_alternate_and_rewards_come_with_responses() -> None:
    env = recoworld.make("recoworld/SocialFeed-v0", **SMALL)
    _, infos = env.reset(seed=0)
    assert infos[RECOMMENDER]["phase"] == "recommend"
    total = 0.0
    for step in range(2 * SMALL["max_cycles"]):
        actions = {a: env.action_space(a).sample() for a in env.agents}
        _, rewards, terminations, truncations, infos = env.step(actions)
        if step % 2 == 0:
            assert all(r == 0.0 for r in rewards.values())
        total += rewards[RECOMMENDER]
        assert not any(terminations.values())
        if env.agents:
            assert infos[RECOMMENDER]["phase"] == ("respond" if step % 2 == 0 else "recommend")
    assert all(truncations.values())
    assert env.agents == []
    assert total > 0


def test_built_in_users_except_the_named_agents() -> None:
    env = recoworld.make("recoworld/SocialFeed-v0", external=[1, 3], **SMALL)
    env.reset(seed=0)
    assert env.possible_agents == [RECOMMENDER, user_agent(1), user_agent(3)]
    alone = recoworld.make("recoworld/SocialFeed-v0", external="none", **SMALL)
    alone.reset(seed=0)
    assert alone.possible_agents == [RECOMMENDER]
    while alone.agents:
        alone.step({RECOMMENDER: alone.action_space(RECOMMENDER).sample()})


def test_user_agents_decide_what_is_clicked() -> None:
    """Users who skip everything give the recommender nothing; clicking everything gives most."""

    def engagement(code: int) -> float:
        env = recoworld.make("recoworld/SocialFeed-v0", **SMALL)
        env.reset(seed=1)
        got = 0.0
        while env.agents:
            actions = {RECOMMENDER: env.action_space(RECOMMENDER).sample()}
            for a in env.agents[1:]:
                n = env.action_space(a).shape[0]
                actions[a] = np.array([code] * (n - 1) + [0])
            got += env.step(actions)[1].get(RECOMMENDER, 0.0)
        return got

    assert engagement(0) == 0.0
    assert engagement(1) > 0.0


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match=r"env\.n_userz"):
        recoworld.make("recoworld/SocialFeed-v0", n_userz=3)
    with pytest.raises(ConfigError, match="external"):
        recoworld.make("recoworld/SocialFeed-v0", n_users=4, external=[7])
    with pytest.raises(ConfigError, match="api"):
        recoworld.make("recoworld/SocialFeed-v0", api="graph")


def test_aec_view_is_the_standard_conversion() -> None:
    aec = recoworld.make("recoworld/SocialFeed-v0", api="aec", **SMALL)
    assert type(aec) is type(parallel_to_aec(recoworld.make("recoworld/SocialFeed-v0", **SMALL)))


def test_unseeded_resets_continue_the_seeded_stream() -> None:
    def second_reset(seed: int) -> np.ndarray:
        env = recoworld.make("recoworld/SocialFeed-v0", **SMALL)
        env.reset(seed=seed)
        obs, _ = env.reset()
        return obs[RECOMMENDER]

    assert np.array_equal(second_reset(1), second_reset(1))
    assert not np.array_equal(second_reset(1), second_reset(2))
