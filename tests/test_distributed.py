"""Ray, as an optional extra: benchmark suites as Ray tasks, and the sharded world — one shard is
the single-process run byte for byte; two shards serve each user from its owner, exchange shares,
counters, graph edits and opinions between ticks, are deterministic, and match the single
process's metrics within sampling error. On a local two-CPU Ray cluster."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recoworld._config import override
from recoworld.config import ScenarioConfig
from recoworld.distributed import (
    ShardedSimulation,
    partition_stats,
    partition_users,
    read_combined_table,
)
from recoworld.distributed.partition import cut_fraction
from recoworld.errors import ConfigError, DependencyNotInstalled
from recoworld.metrics.summary import summarize_run
from recoworld.scenario import load_scenario
from recoworld.schedule import Simulation
from recoworld.trajectory import read_manifest, read_run, read_table
from recoworld.world.catalog import COUNTERS
from recoworld.world.world import World

SEEDS = range(5)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """A local two-CPU Ray cluster for the whole module (token auth and usage stats off)."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def social_config(seed: int = 0, **extra: Any) -> ScenarioConfig:
    """A small social world: 4,000 users on a homophilous graph for one day, with follows,
    unfollows, mutes, a classic opinion model, false items and community notes."""
    return override(
        load_scenario("social"),
        {
            "seed": seed,
            "world.n_users": 4000,
            "world.n_items": 2000,
            "world.misinformation": 0.05,
            "clock.days": 1,
            "social.follow_rate": 0.05,
            "social.unfollow_rate": 0.1,
            "social.mute_rate": 0.05,
            "social.opinion_model": "friedkin_johnsen",
            "social.opinion_fraction": 0.5,
            "social.opinion_every": 12,
            "moderation.community_notes": 3,
            "record.opinion_every": 48,
            **extra,
        },
    )


def parts(run_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.glob("*/part-*.parquet"))


def assert_same_files(a: Path, b: Path) -> None:
    names = parts(a)
    assert names, a
    assert names == parts(b)
    different = [n for n in names if not filecmp.cmp(a / n, b / n, shallow=False)]
    assert not different, different


def assert_same_world(a: World, b: World) -> None:
    pop_a, pop_b = a.population, b.population
    for f in fields(pop_a):
        va, vb = getattr(pop_a, f.name), getattr(pop_b, f.name)
        if isinstance(va, np.ndarray):
            np.testing.assert_array_equal(va, vb, err_msg=f.name)
    assert pop_a.texts_of(np.arange(pop_a.n_users)) == pop_b.texts_of(np.arange(pop_b.n_users))
    for name in (*COUNTERS, "labeled", "share_factor", "utility_shift"):
        np.testing.assert_array_equal(getattr(a.catalog, name), getattr(b.catalog, name), name)
    assert a.graph == b.graph
    np.testing.assert_array_equal(a.graph.muted, b.graph.muted)
    assert a.clock.tick == b.clock.tick


# -- runs shared by the tests ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def single_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    out = tmp_path_factory.mktemp("single")
    runs = {}
    for seed in SEEDS:
        runs[seed] = out / f"seed{seed}"
        Simulation(social_config(seed), out_dir=runs[seed]).run()
    return runs


@pytest.fixture(scope="module")
def two_shard_runs(ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two-shard runs of every seed; for seed 0 also the replicas and the gathered world."""
    out = tmp_path_factory.mktemp("sharded")
    runs: dict[str, Any] = {}
    for seed in SEEDS:
        path = out / f"seed{seed}"
        with ShardedSimulation(social_config(seed), 2, out_dir=path) as sim:
            result = sim.run()
            assert result.status == "completed"
            if seed == 0:
                runs["owner"] = sim.owner
                runs["stats"] = sim.partition_stats
                runs["counters"] = sim.replicas("counters")
                runs["replicas"] = sim.replicas("replica")
                runs["world"] = sim.world()
                runs["result"] = result
        runs[seed] = path
    return runs


# -- one shard -------------------------------------------------------------------------------------
def test_one_shard_is_byte_identical_to_the_single_process_run(
    ray_cluster: Any, tmp_path: Path
) -> None:
    config = social_config(0)
    single = Simulation(config, out_dir=tmp_path / "single")
    single.run()
    with ShardedSimulation(config, 1, out_dir=tmp_path / "sharded") as sim:
        result = sim.run()
        world = sim.world()
    assert_same_files(tmp_path / "single", tmp_path / "sharded" / "shard-0")
    assert_same_world(single.world, world)
    assert result.totals == single.totals.as_dict()
    # The parent folder reads as the same run.
    for table in ("impressions", "sessions", "social", "opinions"):
        pd.testing.assert_frame_equal(
            read_table(tmp_path / "single", table), read_table(tmp_path / "sharded", table)
        )
    assert summarize_run(tmp_path / "single") == summarize_run(tmp_path / "sharded")


# -- two shards ------------------------------------------------------------------------------------
def test_the_graph_partition_cuts_far_fewer_follows_than_a_random_one(
    two_shard_runs: dict[str, Any],
) -> None:
    stats = two_shard_runs["stats"]
    assert stats.n_parts == 2
    assert max(stats.sizes) <= 1.03 * 2000
    assert stats.random_cut_fraction == pytest.approx(0.5, abs=0.02)
    assert stats.cut_fraction < 0.2  # the world's 12 topic communities fall in whole
    manifest = read_manifest(two_shard_runs[0])
    assert manifest["sharded"]["partition"]["cut_fraction"] == stats.cut_fraction
    partition = pd.read_parquet(two_shard_runs[0] / "partition.parquet")
    np.testing.assert_array_equal(partition["shard"], two_shard_runs["owner"])


def test_partition_is_balanced_and_deterministic_on_other_graphs() -> None:
    for kind in ("erdos_renyi", "barabasi_albert", "none"):
        config = override(social_config(), {"world.n_users": 1000, "world.graph.kind": kind})
        graph = World.from_config(config).graph
        for n in (2, 3, 8):
            part = partition_users(graph, n, seed=3)
            assert part.shape == (1000,)
            assert set(np.unique(part)) == set(range(n))
            assert np.bincount(part).max() <= np.ceil(1.03 * 1000 / n)
            np.testing.assert_array_equal(part, partition_users(graph, n, seed=3))
            stats = partition_stats(graph, part, "graph", seed=3)
            assert stats.cut_fraction == cut_fraction(graph, part)
            assert stats.cut_fraction <= stats.random_cut_fraction + 0.05


def test_every_user_is_served_by_its_owner_with_unique_session_ids(
    two_shard_runs: dict[str, Any],
) -> None:
    path, owner = two_shard_runs[0], two_shard_runs["owner"]
    for k in range(2):
        for table in ("impressions", "responses", "sessions", "instructions"):
            users = read_table(path / f"shard-{k}", table, ["user"])["user"].to_numpy()
            assert users.size, (k, table)
            assert (owner[users] == k).all(), (k, table)
        sessions = read_table(path / f"shard-{k}", "sessions", ["session"])["session"]
        assert (sessions.to_numpy() % 2 == k).all()
    sessions = read_table(path, "sessions", ["session", "user"])
    assert sessions["session"].is_unique
    assert set(sessions["user"]) <= set(np.flatnonzero(np.isin(owner, [0, 1])))


def test_shares_cross_shards(two_shard_runs: dict[str, Any]) -> None:
    """An item shared by a user of shard A reaches the pages of shard B's followers."""
    path, owner = two_shard_runs[0], two_shard_runs["owner"]
    columns = ["tick", "user", "item", "source", "from_user"]
    impressions = read_combined_table(path, "impressions", columns)
    impressions = impressions[impressions["source"] == "social"]
    from_user = impressions["from_user"].to_numpy(np.int64)  # in-network rows always have one
    crossing = owner[impressions["user"].to_numpy()] != owner[from_user]
    assert crossing.sum() > 100
    # Each such impression follows a share of that item by that user on the other shard.
    shares = read_combined_table(path, "social", ["tick", "user", "kind", "item"])
    shares = shares[shares["kind"] == "share"]
    first = shares.groupby(["user", "item"], observed=True)["tick"].min()
    seen = impressions[crossing].assign(from_user=from_user[crossing])
    keys = pd.MultiIndex.from_arrays([seen["from_user"], seen["item"]])
    shared_at = first.reindex(keys).to_numpy()
    assert not np.isnan(shared_at).any()
    assert (shared_at < seen["tick"].to_numpy()).all()


def test_counters_graph_and_opinions_are_global(
    two_shard_runs: dict[str, Any],
) -> None:
    """At the end every replica holds the same counters, graph, opinions and tastes, and the
    counters are what all shards' trajectories add up to."""
    counters = two_shard_runs["counters"]
    np.testing.assert_array_equal(counters[0], counters[1])
    replicas = two_shard_runs["replicas"]
    assert replicas[0].graph == replicas[1].graph
    np.testing.assert_array_equal(replicas[0].graph.muted, replicas[1].graph.muted)
    for name in ("opinion", "taste"):
        np.testing.assert_array_equal(
            getattr(replicas[0].population, name), getattr(replicas[1].population, name)
        )
    np.testing.assert_array_equal(replicas[0].catalog.labeled, replicas[1].catalog.labeled)
    path = two_shard_runs[0]
    n_items = counters[0].shape[1]
    shown = read_table(path, "impressions", ["item"])["item"].to_numpy()
    responses = read_table(path, "responses", ["item", "clicked", "shared"])
    index = {name: j for j, name in enumerate(COUNTERS)}
    np.testing.assert_array_equal(
        counters[0][index["impressions"]], np.bincount(shown, None, n_items)
    )
    for column, counter in (("clicked", "clicks"), ("shared", "shares")):
        items = responses.loc[responses[column], "item"].to_numpy()
        np.testing.assert_array_equal(
            counters[0][index[counter]], np.bincount(items, None, n_items)
        )
    world = two_shard_runs["world"]
    np.testing.assert_array_equal(world.catalog.impressions, counters[0][index["impressions"]])
    opinions = read_combined_table(path, "opinions", ["tick", "user", "opinion"])
    last = opinions[opinions["tick"] == opinions["tick"].max()]
    np.testing.assert_array_equal(last["user"], np.arange(4000))
    np.testing.assert_array_equal(last["opinion"], world.population.opinion)
    sessions = read_table(path, "sessions", ["user"])
    np.testing.assert_array_equal(
        world.population.n_sessions, np.bincount(sessions["user"], minlength=4000)
    )


@pytest.mark.parametrize("follows", [True, False])
def test_replicas_agree_after_every_tick(ray_cluster: Any, follows: bool) -> None:
    """Counters and graphs always; opinions and tastes where other shards read them (follow
    acceptance, a classic opinion model)."""
    extra = {} if follows else {"social.follow_rate": 0.0, "social.opinion_model": "none"}
    with ShardedSimulation(social_config(1, **{"clock.ticks": 20, **extra}), 2) as sim:
        for _ in range(20):
            sim.step()
            sim.sync()
            a, b = sim.replicas("counters")
            np.testing.assert_array_equal(a, b)
            ra, rb = sim.replicas("replica")
            assert ra.graph == rb.graph
            if follows:
                np.testing.assert_array_equal(ra.population.opinion, rb.population.opinion)
                np.testing.assert_array_equal(ra.population.taste, rb.population.taste)
        assert a[0].sum() > 0


def test_same_seed_and_shard_count_give_identical_files(
    two_shard_runs: dict[str, Any], tmp_path: Path
) -> None:
    with ShardedSimulation(social_config(0), 2, out_dir=tmp_path / "again") as sim:
        sim.run()
    assert_same_files(two_shard_runs[0], tmp_path / "again")
    for k in range(2):
        assert_same_files(two_shard_runs[0] / f"shard-{k}", tmp_path / "again" / f"shard-{k}")
    # ... and without Ray, the shards one after the other in this process.
    with ShardedSimulation(social_config(0), 2, out_dir=tmp_path / "inline", backend="inline") as s:
        s.run()
    for k in range(2):
        assert_same_files(two_shard_runs[0] / f"shard-{k}", tmp_path / "inline" / f"shard-{k}")


def run_metrics(path: Path) -> dict[str, float]:
    summary = summarize_run(path)
    kinds = read_table(path, "social", ["kind"])["kind"]
    return {
        "ctr": summary["engagement/ctr"],
        "session_length": summary["engagement/session_length"],
        "return_rate": summary["retention/return_rate"],
        "shares_per_impression": float((kinds == "share").sum())
        / summary["engagement/impressions"],
    }


def test_two_shards_match_the_single_process_within_sampling_error(
    single_runs: dict[int, Path], two_shard_runs: dict[str, Any]
) -> None:
    """Welch's t-test over the seeds, per metric: no difference at the 1% level."""
    from scipy.stats import ttest_ind

    one = pd.DataFrame([run_metrics(single_runs[s]) for s in SEEDS])
    two = pd.DataFrame([run_metrics(two_shard_runs[s]) for s in SEEDS])
    for name in one.columns:
        p = ttest_ind(one[name], two[name], equal_var=False).pvalue
        assert p > 0.01, (name, one[name].tolist(), two[name].tolist())
        assert abs(one[name].mean() - two[name].mean()) < 0.1 * one[name].mean(), name


# -- what this version refuses, and Ray as an optional extra --------------------------------------
@pytest.mark.parametrize(
    ("n_shards", "extra", "needle"),
    [
        (0, {}, "n_shards"),
        (5000, {}, "n_shards"),
        (2, {"social.post_rate": 0.01}, "social.post_rate"),
        (2, {"llm.fraction": 0.1}, "llm"),
    ],
)
def test_what_cannot_be_sharded_is_a_config_error(
    n_shards: int, extra: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ConfigError, match=needle):
        ShardedSimulation(social_config(0, **extra), n_shards, backend="inline")


def test_ray_is_imported_lazily_and_missing_ray_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = (
        "import sys, recoworld, recoworld.distributed, recoworld.cli; "
        "assert 'ray' not in sys.modules, 'ray imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    from recoworld.distributed._ray import start_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(DependencyNotInstalled, match=r'pip install "recoworld\[ray\]"'):
        start_ray()


# -- bench on Ray ----------------------------------------------------------------------------------
SUITE = """
name: tiny
scenario: retention
seeds: 2
set: {world.n_users: 300, world.n_items: 400, clock.days: 0.5}
policies:
  - random
  - most_popular
"""


def test_bench_on_ray_writes_the_same_results_as_local(ray_cluster: Any, tmp_path: Path) -> None:
    from recoworld.cli import main

    suite = tmp_path / "tiny.yaml"
    suite.write_text(SUITE)
    local, remote = tmp_path / "local", tmp_path / "ray"
    assert main(["bench", str(suite), "--out", str(local), "-q"]) == 0
    assert main(["bench", str(suite), "--backend", "ray", "--out", str(remote), "-q"]) == 0
    a = pd.read_csv(local / "results.csv").drop(columns=["run_dir"])
    b = pd.read_csv(remote / "results.csv").drop(columns=["run_dir"])
    pd.testing.assert_frame_equal(a, b)
    assert (remote / "summary.md").read_text() == (local / "summary.md").read_text()
    for run in sorted(p.name for p in (local / "runs").iterdir()):
        assert_same_files(local / "runs" / run, remote / "runs" / run)


def test_a_run_on_another_node_comes_back_as_files(ray_cluster: Any, tmp_path: Path) -> None:
    """A task off the driver's machine ships its run folder back (forced here with a driver
    node id that is not this one)."""
    from recoworld.bench import PolicySpec
    from recoworld.distributed.backend import _bench_task, _unpack, run_tasks_ray

    overrides = {"world.n_users": 200, "world.n_items": 300, "clock.days": 0.25}
    args = ("retention", overrides, PolicySpec("random", {}, "random"), 0)
    [(row, archive)] = run_tasks_ray(_bench_task, [(*args, str(tmp_path / "a"), "elsewhere")])
    assert archive is not None
    assert row["run_dir"] == str(tmp_path / "a")
    _unpack(row["run_dir"], archive)
    here = ray_cluster.get_runtime_context().get_node_id()
    [(again, none)] = run_tasks_ray(_bench_task, [(*args, str(tmp_path / "b"), here)])
    assert none is None
    assert {k: v for k, v in row.items() if k != "run_dir"} == {
        k: v for k, v in again.items() if k != "run_dir"
    }
    assert_same_files(tmp_path / "a", tmp_path / "b")
    assert read_run(tmp_path / "a").manifest["status"] == "completed"


def test_address_needs_the_ray_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from recoworld.cli import main

    suite = tmp_path / "tiny.yaml"
    suite.write_text(SUITE)
    assert main(["bench", str(suite), "--address", "auto", "--out", str(tmp_path / "o")]) == 2
    assert "--backend ray" in capsys.readouterr().err
