"""Benchmark: throughput of the native vector env vs Gymnasium's SyncVectorEnv, side by side.

Measures user-steps per second (one user-step = one page served to one simulated user) of
``gymnasium.make_vec("recoworld/Feed-v0", num_envs=B)`` (the native batched env) and of
``SyncVectorEnv`` over ``B_sync`` single-user envs, alternating repetitions so that machine drift
hits both; reports medians and the ratio. Also prints PettingZoo's ``performance_benchmark``
(turns per second) for ``recoworld/SocialFeed-v0``. Usage::

    python benchmarks/perf/vector_env.py --users 10000 --repeats 7 --steps 50

Each repetition resets the envs with a new seed, runs ``--warmup`` untimed steps (the first pages
after a reset, when every user is brand new, cost more; a training run resets once) and times the
next ``--steps`` steps, in which users keep leaving and being replaced by autoreset. The numeric
kernels use the process's cores (``RECOWORLD_THREADS``, default all, up to 8); set
``RECOWORLD_THREADS=1`` for one.

Targets (issue: Gymnasium and PettingZoo faces): >= 500,000 user-steps/s at B = 10,000 on 2
cores, and >= 20x the throughput of SyncVectorEnv over single-user envs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import time
from pathlib import Path

import gymnasium as gym

import recoworld
from recoworld._kernels import threads


def _throughput(venv: gym.vector.VectorEnv, steps: int, seed: int, warmup: int = 0) -> float:
    """User-steps/s over ``steps`` steps, after a reset with ``seed`` and ``warmup`` untimed
    steps (training runs reset once, then live in the autoreset steady state)."""
    venv.reset(seed=seed)
    venv.action_space.seed(seed)
    actions = [venv.action_space.sample() for _ in range(warmup + steps)]
    for a in actions[:warmup]:
        venv.step(a)
    start = time.perf_counter()
    for a in actions[warmup:]:
        venv.step(a)
    return steps * venv.num_envs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000, help="B for the native env")
    parser.add_argument("--sync-users", type=int, default=32, help="B for SyncVectorEnv")
    parser.add_argument("--steps", type=int, default=50, help="steps timed after each reset")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps after each reset")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path)
    opts = parser.parse_args()
    native = gym.make_vec("recoworld/Feed-v0", num_envs=opts.users)
    sync = gym.make_vec("recoworld/Feed-v0", num_envs=opts.sync_users, vectorization_mode="sync")
    _throughput(native, 3, seed=99)  # warm-up
    _throughput(sync, 3, seed=99)
    native_rates, sync_rates = [], []
    for r in range(opts.repeats):
        native_rates.append(_throughput(native, opts.steps, seed=r, warmup=opts.warmup))
        sync_rates.append(_throughput(sync, opts.steps, seed=r, warmup=opts.warmup))
    ratios = [n / s for n, s in zip(native_rates, sync_rates, strict=True)]
    figures = {
        "threads": threads(),
        "native_users": opts.users,
        "sync_users": opts.sync_users,
        "native_user_steps_per_s": statistics.median(native_rates),
        "native_min": min(native_rates),
        "native_max": max(native_rates),
        "sync_user_steps_per_s": statistics.median(sync_rates),
        "ratio_median": statistics.median(ratios),
    }
    print(
        f"native  B={opts.users:>6}: median {figures['native_user_steps_per_s']:>10,.0f} "
        f"user-steps/s (min {min(native_rates):,.0f}, max {max(native_rates):,.0f}; "
        f"{threads()} kernel threads)"
    )
    print(
        f"sync    B={opts.sync_users:>6}: median {figures['sync_user_steps_per_s']:>10,.0f} "
        f"user-steps/s"
    )
    print(f"ratio native/sync (paired, median): {figures['ratio_median']:.1f}x")
    from pettingzoo.test import performance_benchmark

    env = recoworld.make("recoworld/SocialFeed-v0", api="aec")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        performance_benchmark(env)
    text = out.getvalue().strip()
    print("pettingzoo performance_benchmark(recoworld/SocialFeed-v0, AEC view):", text)
    figures["pettingzoo_performance_benchmark"] = text
    if opts.json:
        opts.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
