"""Train Stable-Baselines3 PPO on recoworld/Feed-v0 and compare it with baselines.

PPO learns on 32 simulated users at once (the native vector env behind an SB3 ``VecEnv``) with
a policy that scores candidates with one shared network (``SlateScoringPolicy``). A small budget
so that it runs in CI in well under a minute; ``benchmarks/rl/ppo_feed.py`` runs the full
comparison over seeds. Baselines act on the same observation: Random, and MostPopular (the
candidates with the highest popularity feature).
"""

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecMonitor

from recoworld.envs.evaluate import evaluate
from recoworld.envs.sb3 import make_sb3_vec_env
from recoworld.envs.sb3_policy import SlateScoringPolicy

TIMESTEPS = 60_000
ENV_KWARGS = {"n_items": 1000}
torch.set_num_threads(1)

venv = VecMonitor(make_sb3_vec_env(32, seed=0, **ENV_KWARGS))
model = PPO(SlateScoringPolicy, venv, n_steps=64, batch_size=512, learning_rate=1e-3, seed=0)
model.learn(TIMESTEPS)


def most_popular(env, obs):
    cfg = env.unwrapped.config
    feats = obs["candidates"].reshape(cfg.n_candidates, -1)
    n_topics = feats.shape[1] - 4
    return np.argsort(-feats[:, n_topics], kind="stable")[: cfg.slate_size]


for name, act in [
    ("PPO", lambda env, obs: model.predict(obs, deterministic=True)[0]),
    ("Random", lambda env, obs: env.action_space.sample()),
    ("MostPopular", most_popular),
]:
    result = evaluate(act, "recoworld/Feed-v0", episodes=40, seed=1000, **ENV_KWARGS)
    print(
        f"{name:12s} mean episode return {result.mean:6.2f} ± {result.ci95:.2f} (95% CI, 40 users)"
    )
