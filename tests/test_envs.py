"""Gymnasium faces: every registered id passes the upstream checkers and behaves as documented."""

from __future__ import annotations

import time
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import recoworld
from recoworld.envs import ENVS
from recoworld.errors import ConfigError

from .conftest import deep_equal

GYM_IDS = [e.id for e in ENVS if e.kind == "gymnasium"]
VARIANTS = [(i, {}) for i in GYM_IDS] + [
    ("recoworld/Feed-v0", {"observe_text": True, "oracle": True})
]
SMALL = {"n_items": 300}


def _own_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught]


@pytest.mark.parametrize(("env_id", "extra"), VARIANTS)
def test_gymnasium_check_env_is_clean(env_id: str, extra: dict) -> None:
    env = gym.make(env_id, **SMALL, **extra)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=True)
    assert _own_warnings(caught) == []


@pytest.mark.parametrize("env_id", GYM_IDS)
def test_sb3_check_env_is_clean(env_id: str) -> None:
    sb3_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    env = gym.make(env_id, **SMALL)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_checker.check_env(env.unwrapped)
    assert _own_warnings(caught) == []


def _rollout(env: gym.Env, seed: int, steps: int) -> list[tuple]:
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [(obs, info)]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        out.append((obs, reward, terminated, truncated, info))
        if terminated or truncated:
            obs, info = env.reset()
            out.append((obs, info))
    return out


@pytest.mark.parametrize("env_id", GYM_IDS)
def test_multi_step_determinism_across_episodes(env_id: str) -> None:
    a = _rollout(gym.make(env_id, **SMALL), seed=3, steps=60)
    b = _rollout(gym.make(env_id, **SMALL), seed=3, steps=60)
    c = _rollout(gym.make(env_id, **SMALL), seed=4, steps=60)
    assert deep_equal(a, b)
    assert not deep_equal(a, c)


def test_observation_shows_only_what_a_platform_sees() -> None:
    env = gym.make("recoworld/Feed-v0", **SMALL)
    obs, info = env.reset(seed=0)
    assert set(obs) == {"candidates", "history", "engagement", "instruction"}
    assert all(v.dtype == np.float32 for v in obs.values())
    assert isinstance(info["instruction"], str)
    oracle_env = gym.make("recoworld/Feed-v0", oracle=True, **SMALL)
    obs, _ = oracle_env.reset(seed=0)
    assert "oracle" in obs
    assert oracle_env.observation_space["oracle"].contains(obs["oracle"])


def test_instruction_text_reaches_info_and_the_opt_in_text_space() -> None:
    env = gym.make("recoworld/Feed-v0", observe_text=True, **SMALL)
    assert isinstance(env.observation_space["instruction_text"], gym.spaces.Text)
    obs, _ = env.reset(seed=1)
    env.action_space.seed(1)
    texts = []
    for _ in range(400):
        obs, _, terminated, truncated, info = env.step(env.action_space.sample())
        assert obs["instruction_text"] == info["instruction"]
        if info["instruction"]:
            texts.append(info["instruction"])
            # The numeric encoding reads the same words.
            assert obs["instruction"][:-1].sum() >= 1
        if terminated or truncated:
            env.reset()
    assert texts, "no user ever spoke up in 400 pages"


def test_duplicate_slate_indices_follow_the_documented_rule() -> None:
    from recoworld.envs.feed import _dedupe

    cols = np.array([[3, 3, 0, 3], [1, 2, 1, 0]])
    assert _dedupe(cols, 6).tolist() == [[3, 0, 1, 2], [1, 2, 0, 3]]


def test_item_mode_masks_seen_candidates() -> None:
    env = gym.make("recoworld/FeedItem-v0", **SMALL)
    env.reset(seed=0)
    assert isinstance(env.action_space, gym.spaces.Discrete)
    for _ in range(20):
        mask = env.unwrapped.action_masks()
        assert mask.dtype == bool
        assert mask.shape == (env.action_space.n,)
        assert mask.any()
        _, _, terminated, truncated, _ = env.step(int(np.flatnonzero(mask)[0]))
        if terminated or truncated:
            env.reset()


def test_weights_mode_action_size_does_not_grow_with_the_catalogue() -> None:
    small = gym.make("recoworld/FeedWeights-v0", n_items=300)
    large = gym.make("recoworld/FeedWeights-v0", n_items=3000)
    assert small.action_space.shape == large.action_space.shape
    assert isinstance(small.action_space, gym.spaces.Box)


def test_lifelong_users_come_back_and_episodes_end_by_churn_or_horizon() -> None:
    env = gym.make("recoworld/FeedLifelong-v0", days=3, **SMALL)
    env.reset(seed=0)
    env.action_space.seed(0)
    returns = endings = 0
    for _ in range(3000):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        returns += info["returned"]
        if info["returned"]:
            assert reward >= 2.0  # the return bonus
        if terminated or truncated:
            endings += 1
            env.reset()
    assert returns > 0
    assert endings > 0


def test_domain_randomization_draws_parameters_at_each_reset() -> None:
    env = gym.make("recoworld/Feed-v0", randomize={"patience_mean": [0.1, 0.9]}, **SMALL)
    seen = set()
    for seed in range(4):
        env.reset(seed=seed)
        seen.add(env.unwrapped.core.model.config.patience_mean)
    assert len(seen) == 4
    assert all(0.1 <= p <= 0.9 for p in seen)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"n_itemz": 5}, "env.n_itemz"),
        ({"action_mode": "pairs"}, "env.action_mode"),
        ({"randomize": {"nonsense": [0, 1]}}, "randomize.nonsense"),
        ({"randomize": {"max_instructions": [0, 3]}}, "randomize.max_instructions"),
        ({"slate_size": 50}, "slate_size"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        gym.make("recoworld/Feed-v0", **kwargs)


def test_native_vector_env_is_the_registered_fast_path() -> None:
    from recoworld.envs.feed import FeedVectorEnv

    venv = gym.make_vec("recoworld/Feed-v0", num_envs=8, n_items=300)
    assert isinstance(venv.unwrapped, FeedVectorEnv)
    obs, _ = venv.reset(seed=0)
    assert venv.observation_space.contains(obs)
    venv.action_space.seed(0)
    done_seen = False
    for _ in range(300):
        actions = venv.action_space.sample()
        obs, reward, terminated, truncated, _ = venv.step(actions)
        assert venv.observation_space.contains(obs)
        assert reward.shape == (8,)
        done_seen |= bool(terminated.any() or truncated.any())
    assert done_seen


def _vector_rollout(steps: int, pause: float) -> list[tuple]:
    venv = gym.make_vec("recoworld/Feed-v0", num_envs=600, n_items=300)
    obs, _ = venv.reset(seed=5)
    venv.action_space.seed(5)
    out: list[tuple] = [obs]
    for _ in range(steps):
        time.sleep(pause)  # the next pool of new users is drawn meanwhile, or not yet
        obs, reward, terminated, truncated, _ = venv.step(venv.action_space.sample())
        out.append((obs, reward, terminated, truncated))
    return out


def test_vector_env_is_deterministic_across_background_new_user_pools() -> None:
    from recoworld.envs.feed import FeedVectorEnv

    venv = gym.make_vec("recoworld/Feed-v0", num_envs=600, n_items=300)
    venv.reset(seed=5)
    core = venv.unwrapped.core
    assert isinstance(venv.unwrapped, FeedVectorEnv)
    assert core is not None
    steps = 0
    while core._pool_next <= 600:  # run until users from past the first B rows arrive
        venv.step(venv.action_space.sample())
        steps += 1
    steps += 200  # ... and well into the next pool (4096 users each)
    assert deep_equal(_vector_rollout(steps, 0.0), _vector_rollout(steps, 0.002))


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_standard_vectorization_also_works(mode: str) -> None:
    venv = gym.make_vec("recoworld/Feed-v0", num_envs=2, vectorization_mode=mode, n_items=300)
    venv.reset(seed=0)
    _, reward, *_ = venv.step(venv.action_space.sample())
    assert reward.shape == (2,)
    venv.close()


def test_recoworld_make_and_its_errors() -> None:
    env = recoworld.make("recoworld/Feed-v0", **SMALL)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    with pytest.raises(ConfigError, match="Did you mean 'recoworld/Feed-v0'"):
        recoworld.make("recoworld/Fed-v0")


def test_docs_envs_page_is_generated_from_the_docstrings() -> None:
    from recoworld.envs.docs import render

    from .conftest import ROOT

    page = (ROOT / "docs" / "envs.md").read_text(encoding="utf-8")
    assert page == render(), "docs/envs.md is stale: python -m recoworld.envs.docs docs/envs.md"
    for env_id in GYM_IDS:
        assert f"`{env_id}`" in page


def test_same_step_autoreset_returns_the_next_user_at_once() -> None:
    from recoworld.envs.feed import FeedVectorEnv

    venv = FeedVectorEnv(6, autoreset_mode="same_step", n_items=300)
    venv.reset(seed=0)
    venv.action_space.seed(0)
    ended_seen = 0
    for _ in range(200):
        obs, _reward, terminated, truncated, info = venv.step(venv.action_space.sample())
        ended = terminated | truncated
        if ended.any():
            ended_seen += int(ended.sum())
            assert (info["_final_obs"] == ended).all()
            pages = venv.core.sim.world.population.session_pages
            for slot in np.flatnonzero(ended):
                assert set(info["final_obs"][slot]) == set(obs)
                assert pages[slot] == 0  # the slot already holds a brand-new user
        assert venv.observation_space.contains(obs)
    assert ended_seen > 0


def test_sb3_vec_env_trains_ppo_on_many_users_per_process() -> None:
    pytest.importorskip("stable_baselines3")
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    from recoworld.envs.sb3 import make_sb3_vec_env

    torch.set_num_threads(1)
    venv = VecMonitor(make_sb3_vec_env(8, seed=0, n_items=300))
    obs = venv.reset()
    dones_seen = 0
    for _ in range(60):
        actions = np.stack([venv.action_space.sample() for _ in range(8)])
        obs, _rewards, dones, infos = venv.step(actions)
        for slot in np.flatnonzero(dones):
            dones_seen += 1
            assert "terminal_observation" in infos[slot]
            assert "episode" in infos[slot]  # VecMonitor saw a whole episode
    assert dones_seen > 0
    model = PPO("MultiInputPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, seed=0)
    model.learn(256)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (8, 5)


def test_evaluate_counts_returns_and_churn_on_lifelong_users() -> None:
    from recoworld.envs.evaluate import Evaluation, evaluate

    def run() -> Evaluation:
        return evaluate(
            lambda env, obs: env.action_space.sample(),
            "recoworld/FeedLifelong-v0",
            episodes=4,
            seed=3,
            days=2,
            **SMALL,
        )

    result = run()
    assert result.returns.shape == (4,)
    assert result.returned + result.churned > 0
    assert result.churned <= 4  # at most one churn per episode
    assert 0.0 <= result.return_rate <= 1.0
    assert np.array_equal(result.returns, run().returns)
