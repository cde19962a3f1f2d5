"""Reinforcement learning on the feed: PPO learns, and the slate policy behaves as documented."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecMonitor

import recoworld
from recoworld.envs.evaluate import evaluate
from recoworld.envs.sb3 import make_sb3_vec_env
from recoworld.envs.sb3_policy import SlateScoringPolicy

ENV_KWARGS = {"n_items": 1000}


def _returns(act, episodes: int = 60) -> np.ndarray:
    return evaluate(act, "recoworld/Feed-v0", episodes, seed=5000, **ENV_KWARGS).returns


def test_ppo_trained_briefly_beats_random_significantly() -> None:
    torch.set_num_threads(1)
    venv = VecMonitor(make_sb3_vec_env(32, seed=0, **ENV_KWARGS))
    model = PPO(SlateScoringPolicy, venv, n_steps=64, batch_size=512, learning_rate=1e-3, seed=0)
    model.learn(40_000)
    ppo = _returns(lambda env, obs: model.predict(obs, deterministic=True)[0])
    rnd = _returns(lambda env, obs: env.action_space.sample())
    welch_t = (ppo.mean() - rnd.mean()) / np.sqrt(
        ppo.var(ddof=1) / ppo.size + rnd.var(ddof=1) / rnd.size
    )
    assert welch_t > 3.0, (ppo.mean(), rnd.mean(), welch_t)


def test_deterministic_slate_is_the_top_k_of_the_scores() -> None:
    venv = make_sb3_vec_env(4, seed=1, n_items=300)
    model = PPO(SlateScoringPolicy, venv, n_steps=8, batch_size=32, seed=1)
    obs = venv.reset()
    tensor, _ = model.policy.obs_to_tensor(obs)
    with torch.no_grad():
        scores = model.policy.extract_features(tensor)[:, : model.policy.n_candidates].numpy()
    action, _ = model.predict(obs, deterministic=True)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, : model.policy.slate_k]
    assert action.shape == expected.shape
    for row, want in zip(action, expected, strict=True):
        assert len(set(row.tolist())) == len(row)  # distinct items
        assert set(row.tolist()) == set(want.tolist())


def test_slate_policy_refuses_non_slate_actions() -> None:
    from gymnasium import spaces

    env = recoworld.make("recoworld/Feed-v0", n_items=300)
    bad = spaces.MultiDiscrete([20, 10])
    with pytest.raises(ValueError, match="MultiDiscrete"):
        SlateScoringPolicy(env.observation_space, bad, lambda _: 1e-3)
