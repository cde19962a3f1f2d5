"""Replaying a recorded run exactly, with no LLM server: ``recoworld replay RUN_DIR``.

The run's manifest holds its whole configuration and seed, so the world, the numeric users and the
policy replay by themselves; the LLM users' replies come from the run's response cache
(content-addressed by model, messages, sampling parameters and seed), with a client that never
contacts a server. Latency and the ``cached`` flag of each ``llm_calls`` row describe the original
call, not the replay's cache lookup, so the replay copies them from the original rows, in order;
every other column is recomputed. A replay whose trajectory matches the original byte for byte
shows that the run is fully determined by its configuration and its cache.
"""

from __future__ import annotations

import os
from pathlib import Path

from recoworld._config import from_mapping
from recoworld.config import ScenarioConfig
from recoworld.errors import TrajectoryError
from recoworld.llm.cache import CACHE_FILE
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
    """A simulation that re-runs ``run_dir`` into ``out_dir`` from its manifest and cache."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    config = from_mapping(ScenarioConfig, manifest["config"], path="manifest.config")
    world = World.synthetic(config, RngTree(config.seed))
    user_model = None
    if config.llm.enabled:
        from recoworld.users.llm import LLMUserModel

        cache = Path(config.llm.client.cache) if config.llm.client.cache else run_dir / CACHE_FILE
        if not cache.is_file():
            raise TrajectoryError(
                f"{cache}: the run's LLM response cache is missing; cannot replay"
            )
        calls = read_table(run_dir, "llm_calls", ["latency_s", "cached", "error"])
        timing = [
            (float(latency), bool(cached), error if isinstance(error, str) else None)
            for latency, cached, error in zip(
                calls["latency_s"], calls["cached"], calls["error"], strict=True
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
    return Simulation(config, world=world, user_model=user_model, out_dir=out_dir)


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
