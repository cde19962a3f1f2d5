"""Train Stable-Baselines3 PPO on recoworld/Feed-v0 briefly and compare it with baselines.

A small budget so that it runs in CI in under a minute; raise ``TIMESTEPS`` for a real policy
(benchmarks/ holds the full comparison). Baselines act on the same observation: Random, and a
hand-written "listener" that ranks candidates by affinity, freshness and the instruction's words.
"""

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

import recoworld

TIMESTEPS = 4096
ENV_KWARGS = {"n_items": 1000}
torch.set_num_threads(1)

# render_mode=None: SB3 otherwise asks for "rgb_array", which this env does not have.
venv = make_vec_env(
    "recoworld/Feed-v0", n_envs=8, seed=0, env_kwargs={**ENV_KWARGS, "render_mode": None}
)
model = PPO("MultiInputPolicy", venv, n_steps=256, batch_size=512, n_epochs=5, seed=0)
model.learn(TIMESTEPS)


def listener(env, obs):
    """Top-k candidates by affinity to recent clicks, unseen, and the instruction's topics."""
    cfg = env.unwrapped.config
    n_topics = (obs["instruction"].size - 2) // 2
    feats = obs["candidates"].reshape(cfg.n_candidates, -1)
    more, less = obs["instruction"][:n_topics], obs["instruction"][n_topics : 2 * n_topics]
    topics = feats[:, :n_topics]
    score = 2 * feats[:, n_topics + 3] - 2 * feats[:, n_topics + 2] + 1.5 * topics @ (more - less)
    return np.argsort(-score, kind="stable")[: cfg.slate_size]


def mean_return(act, episodes=30):
    env = recoworld.make("recoworld/Feed-v0", **ENV_KWARGS)
    env.action_space.seed(0)
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=1000 + episode)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(env, obs))
            total += reward
            done = terminated or truncated
        returns.append(total)
    r = np.asarray(returns)
    return r.mean(), 1.96 * r.std(ddof=1) / np.sqrt(r.size)


for name, act in [
    ("PPO", lambda env, obs: model.predict(obs, deterministic=True)[0]),
    ("Random", lambda env, obs: env.action_space.sample()),
    ("listener", listener),
]:
    mean, half = mean_return(act)
    print(f"{name:9s} mean episode return {mean:6.2f} ± {half:.2f} (95% CI, 30 users)")
