"""Replaying a recorded run exactly, with no LLM server: ``recoworld replay RUN_DIR``.

The run's manifest holds its whole configuration and seed, so the world, the numeric users and the
policy replay by themselves; the replies of the LLM users and of an LLM-backed policy
(:class:`recoworld.policies._llm.LLMBackedPolicy`: ``llm_agent``, ``instruction_aware`` with
``parser: llm``) come from the response cache the original run used (content-addressed by model,
messages, sampling parameters and seed) — ``llm.client.cache`` / the policy's ``llm.cache``, else
the run folder's ``llm-cache.sqlite`` — with clients that never contact a server. Latency and the
``cached`` flag of each ``llm_calls`` row describe the original call, not the replay's cache lookup,
so the replay copies them from the original rows — the LLM users' (purposes ``page`` and
``reflection``) in order, the policy's (every other purpose) by prompt hash in order — as it does
the error of a call that failed without a reply (a policy's such call fails again in the replay,
even if the cache holds a reply the same request got later); every other column is recomputed.
A replay whose trajectory matches the original byte for byte shows that the run is fully
determined by its configuration and its cache.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from recoworld._config import from_mapping
from recoworld.config import ScenarioConfig
from recoworld.errors import TrajectoryError
from recoworld.llm.cache import CACHE_FILE
from recoworld.policies import make_policy
from recoworld.rng import RngTree
from recoworld.schedule import Simulation
from recoworld.trajectory.reader import read_manifest, read_table
from recoworld.users.numeric import NumericUserModel
from recoworld.world.world import World

__all__ = ["CACHE_FILE", "compare_runs", "replay_simulation"]

_NOT_TRAJECTORY = (CACHE_FILE, CACHE_FILE + "-wal", CACHE_FILE + "-shm")


def replay_simulation(
    run_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]
) -> Simulation:
    """A simulation that re-runs ``run_dir`` into ``out_dir`` from its manifest and cache.

    Raises:
        TrajectoryError: a response cache the replay needs is missing.
    """
    from recoworld.users.llm import PURPOSES

    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    config = from_mapping(ScenarioConfig, manifest["config"], path="manifest.config")
    world = World.from_config(config, RngTree(config.seed))
    policy = make_policy(config.policy.name, **config.policy.params)
    llm_policy = hasattr(policy, "replay_timing")
    calls = None
    if config.llm.enabled or llm_policy:
        calls = read_table(
            run_dir,
            "llm_calls",
            [
                "purpose",
                "prompt_hash",
                "prompt_tokens",
                "completion_tokens",
                "latency_s",
                "cached",
                "valid",
                "error",
            ],
        )
        users_rows = calls["purpose"].astype(str).isin(PURPOSES).to_numpy()
    user_model = None
    if config.llm.enabled:
        from recoworld.users.llm import LLMUserModel

        assert calls is not None
        cache = Path(config.llm.client.cache) if config.llm.client.cache else run_dir / CACHE_FILE
        if not cache.is_file():
            raise TrajectoryError(
                f"{cache}: the run's LLM response cache is missing; cannot replay"
            )
        mine = calls[users_rows]
        timing = [
            (float(latency), bool(cached), _text(error))
            for latency, cached, error in zip(
                mine["latency_s"], mine["cached"], mine["error"], strict=True
            )
        ]
        user_model = LLMUserModel(
            config,
            world,
            NumericUserModel(config.users),
            RngTree(config.seed).generator("llm"),
            cache=cache,
            offline=True,
            replay_timing=timing,
        )
    if llm_policy:
        from recoworld.policies._llm import CallTiming, LLMBackedPolicy

        assert calls is not None
        assert isinstance(policy, LLMBackedPolicy)
        configured = policy.llm.cache
        cache = Path(configured) if configured else run_dir / CACHE_FILE
        rows = calls[~users_rows]
        if len(rows) and not cache.is_file():
            raise TrajectoryError(
                f"{cache}: the response cache of the run's policy ({policy.name}) is missing; "
                "cannot replay"
            )
        policy.llm = replace(policy.llm, cache=str(cache))
        policy.offline = True
        replied = rows["valid"] | (rows["prompt_tokens"] + rows["completion_tokens"] > 0)
        policy.replay_timing(
            [
                CallTiming(_text(key), float(latency), bool(cached), _text(error), bool(got))
                for key, latency, cached, error, got in zip(
                    rows["prompt_hash"],
                    rows["latency_s"],
                    rows["cached"],
                    rows["error"],
                    replied,
                    strict=True,
                )
            ]
        )
    return Simulation(config, world=world, policy=policy, user_model=user_model, out_dir=out_dir)


def _text(value: object) -> str | None:
    """A nullable string cell as ``str | None`` (pandas gives ``None`` or NaN for null)."""
    return value if isinstance(value, str) else None


def compare_runs(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> list[str]:
    """Relative paths of the trajectory files that differ between run folders ``a`` and ``b``
    (missing on one side included; the response cache is not part of the trajectory)."""
    a, b = Path(a), Path(b)

    def files(root: Path) -> dict[str, Path]:
        return {
            str(p.relative_to(root)): p
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in _NOT_TRAJECTORY
        }

    fa, fb = files(a), files(b)
    return [
        name
        for name in sorted(set(fa) | set(fb))
        if name not in fa or name not in fb or fa[name].read_bytes() != fb[name].read_bytes()
    ]
