"""RecordTrajectory: run folders as the CLI writes them, agent transitions, and Minari export."""

from __future__ import annotations

import gc
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pyarrow.parquet as pq
import pytest
from gymnasium.wrappers import Autoreset

import recoworld  # noqa: F401 - registers the env ids
from recoworld.config import ScenarioConfig
from recoworld.envs.record import (
    RECORDING,
    RecordTrajectory,
    export_minari,
    read_transitions,
    recorded_runs,
)
from recoworld.errors import ConfigError, DependencyNotInstalled, TrajectoryError
from recoworld.schedule import Simulation
from recoworld.trajectory import TABLES, read_manifest, read_run

SMALL = {"n_items": 300}


@dataclass
class Episode:
    """What the env returned in one episode, as the test saw it."""

    run: int
    seed: int | None
    observations: list[dict[str, Any]]
    infos: list[dict[str, Any]]
    session: int
    actions: list[Any] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    terminated: list[bool] = field(default_factory=list)
    truncated: list[bool] = field(default_factory=list)
    ticks: list[int] = field(default_factory=list)
    abandoned_tick: int | None = None  # the pending tick a reset mid-episode threw away

    @property
    def steps(self) -> int:
        return len(self.actions)

    @property
    def over(self) -> bool:
        return bool(self.actions) and (self.terminated[-1] or self.truncated[-1])


def _sim(env: gym.Env) -> Simulation:
    sim = env.unwrapped.core.sim  # type: ignore[attr-defined]
    assert isinstance(sim, Simulation)
    return sim


def play(
    env: gym.Env,
    n_steps: int,
    *,
    seed: int,
    cut_after: int | None = None,
    reseed_at: int | None = None,
    end_mid_episode: bool = False,
) -> list[Episode]:
    """Random actions for ``n_steps`` steps. An episode ends when the env says so; every other
    episode is also cut (reset mid-episode) after ``cut_after`` steps; the first reset after
    ``reseed_at`` steps is seeded (a new Simulation, so a new run folder). With
    ``end_mid_episode``, go on until the last episode has steps and is not over."""
    episodes: list[Episode] = []
    sims: list[int] = []

    def reset(reset_seed: int | None) -> None:
        obs, info = env.reset(seed=reset_seed)
        sim = _sim(env)
        if not sims or sims[-1] != id(sim):
            sims.append(id(sim))
        session = int(sim.world.population.session_id[0])
        episodes.append(Episode(len(sims) - 1, reset_seed, [obs], [info], session))

    env.action_space.seed(seed)
    reset(seed)
    reseeded = False
    i = 0
    while i < n_steps or (end_mid_episode and (episodes[-1].over or not episodes[-1].steps)):
        i += 1
        ep = episodes[-1]
        cut = (
            cut_after is not None
            and len(episodes) % 2 == 0
            and ep.steps == cut_after
            and not ep.over  # an episode that ended by itself is not cut
        )
        if ep.over or cut:
            new_seed = None
            if reseed_at is not None and i >= reseed_at and not reseeded:
                new_seed, reseeded = seed + 1, True
            if cut:
                request = _sim(env).pending_request
                assert request is not None
                ep.abandoned_tick = request.tick
            reset(new_seed)
            ep = episodes[-1]
        request = _sim(env).pending_request
        assert request is not None
        ep.ticks.append(request.tick)
        action = env.action_space.sample()
        obs, reward, terminated, truncated, info = env.step(action)
        ep.actions.append(action)
        ep.rewards.append(float(reward))
        ep.terminated.append(bool(terminated))
        ep.truncated.append(bool(truncated))
        ep.observations.append(obs)
        ep.infos.append(info)
    return episodes


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Episode]]:
    """Feed-v0 (step limit 12) for 160 steps: natural ends, truncations, cuts, a new seed;
    closed mid-episode."""
    out = tmp_path_factory.mktemp("record") / "rec"
    env = RecordTrajectory(gym.make("recoworld/Feed-v0", max_episode_steps=12, **SMALL), out)
    episodes = play(env, 160, seed=3, cut_after=4, reseed_at=90, end_mid_episode=True)
    env.close()
    return out, episodes


def test_run_folders_read_back_with_the_cli_schema(
    recorded: tuple[Path, list[Episode]], small_config: ScenarioConfig, tmp_path: Path
) -> None:
    out, episodes = recorded
    cli = tmp_path / "cli"
    Simulation(small_config, out_dir=cli).run(8)
    runs = recorded_runs(out)
    assert [p.name for p in runs] == ["run-000000", "run-000001"]
    assert {e.run for e in episodes} == {0, 1}
    cli_manifest = read_manifest(cli)
    for run_dir in runs:
        run = read_run(run_dir)
        assert set(run.manifest) == set(cli_manifest)
        assert run.manifest["policy"] == "agent"
        for table in TABLES:
            ours = pq.read_schema(run_dir / run.manifest["tables"][table]["parts"][0])
            theirs = pq.read_schema(cli / cli_manifest["tables"][table]["parts"][0])
            assert ours.equals(theirs, check_metadata=True), table
            assert run.table(table).shape[1] == read_run(cli).table(table).shape[1]
    assert read_run(runs[0]).manifest["status"] == "completed"  # ended by the seeded reset
    assert read_run(runs[1]).manifest["status"] == "interrupted"  # closed mid-episode


def test_impressions_are_pages_times_slate_size_and_only_real_ticks(
    recorded: tuple[Path, list[Episode]],
) -> None:
    out, episodes = recorded
    slate = 5
    abandoned = [e for e in episodes if e.abandoned_tick is not None]
    assert abandoned
    assert any(e.truncated[-1] for e in episodes if e.over)
    for index, run_dir in enumerate(recorded_runs(out)):
        mine = [e for e in episodes if e.run == index]
        run = read_run(run_dir)
        imp = run.impressions
        pages = sum(e.steps for e in mine)
        assert len(imp) == pages * slate
        assert run.manifest["totals"]["impressions"] == pages * slate
        played = sorted(t for e in mine for t in e.ticks)
        assert sorted(set(imp["tick"])) == played
        assert (imp.groupby("tick").size() == slate).all()
        assert set(run.responses["tick"]) <= set(played)
        for e in mine:
            if e.abandoned_tick is not None:
                assert e.abandoned_tick not in set(imp["tick"])
                assert e.abandoned_tick not in set(run.responses["tick"])


def test_sessions_table_has_one_row_per_episode_with_its_pages(
    recorded: tuple[Path, list[Episode]],
) -> None:
    out, episodes = recorded
    for index, run_dir in enumerate(recorded_runs(out)):
        sessions = read_run(run_dir).sessions.set_index("session")
        mine = [e for e in episodes if e.run == index and e.steps > 0]
        assert sorted(sessions.index) == sorted(e.session for e in mine)
        for e in mine:
            row = sessions.loc[e.session]
            assert row["pages"] == e.steps
            assert row["end_tick"] - row["start_tick"] + 1 == e.steps
            if e.over and e.terminated[-1]:
                assert row["end_reason"] == "left"
            elif e.over:
                assert row["end_reason"] == "horizon"
            else:  # cut by a reset, or by close()
                assert row["end_reason"] == "interrupted"


def test_transitions_hold_every_reset_and_step_as_played(
    recorded: tuple[Path, list[Episode]],
) -> None:
    out, episodes = recorded
    tr = read_transitions(out)
    assert tr["episode"].nunique() == len(episodes)
    assert tr.groupby("episode").size().tolist() == [e.steps + 1 for e in episodes]
    index = json.loads((out / RECORDING).read_text())
    assert index["status"] == "closed"
    assert index["episodes"] == len(episodes)
    assert index["steps"] == sum(e.steps for e in episodes) >= 160
    for (_, rows), e in zip(tr.groupby("episode", sort=True), episodes, strict=True):
        rows = rows.sort_values("step")
        assert rows["step"].tolist() == list(range(e.steps + 1))
        first = rows.iloc[0]
        assert first["action"] is None
        assert np.isnan(first["reward"])
        assert (first["seed"] == e.seed) if e.seed is not None else np.isnan(first["seed"])
        assert rows["tick"].iloc[1:].astype(int).tolist() == e.ticks
        assert (rows["session"] == e.session).all()
        for key in e.observations[0]:
            got = np.stack(rows[f"obs_{key}"].to_list())
            want = np.stack([o[key] for o in e.observations])
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, want)
        if e.steps:
            np.testing.assert_array_equal(np.stack(rows["action"].iloc[1:]), np.stack(e.actions))
        assert rows["reward"].iloc[1:].tolist() == e.rewards
        assert rows["terminated"].iloc[1:].tolist() == e.terminated
        assert rows["truncated"].iloc[1:].tolist() == e.truncated
        assert not rows["terminated"].iloc[0]
        assert not rows["truncated"].iloc[0]
        assert rows["instruction"].tolist() == [i["instruction"] for i in e.infos]
    assert tr["instruction"].str.len().gt(0).any()  # users did speak up


def test_same_seed_and_actions_give_identical_files(tmp_path: Path) -> None:
    def record(out: Path) -> dict[str, bytes]:
        env = RecordTrajectory(gym.make("recoworld/Feed-v0", **SMALL), out)
        play(env, 30, seed=11)
        env.close()
        return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    a, b = record(tmp_path / "a"), record(tmp_path / "b")
    assert sorted(a) == sorted(b)
    assert any("transitions/part-" in name for name in a)
    assert a == b


@pytest.mark.parametrize(
    ("env_id", "kwargs", "slate"),
    [
        ("recoworld/FeedItem-v0", {"observe_text": True}, 1),
        ("recoworld/FeedWeights-v0", {"oracle": True}, 5),
        ("recoworld/FeedLifelong-v0", {"days": 0.5}, 5),
    ],
)
def test_every_feed_variant_records_its_pages(
    env_id: str, kwargs: dict[str, Any], slate: int, tmp_path: Path
) -> None:
    env = RecordTrajectory(gym.make(env_id, **SMALL, **kwargs), tmp_path / "rec")
    episodes = play(env, 40, seed=2, cut_after=3)
    env.close()
    (run_dir,) = recorded_runs(tmp_path / "rec")
    run = read_run(run_dir)
    assert len(run.impressions) == 40 * slate
    assert sorted(set(run.impressions["tick"])) == sorted(t for e in episodes for t in e.ticks)
    tr = read_transitions(run_dir)
    assert tr.groupby("episode").size().tolist() == [e.steps + 1 for e in episodes]
    if kwargs.get("observe_text"):
        assert tr["obs_instruction_text"].tolist() == [
            o["instruction_text"] for e in episodes for o in e.observations
        ]


def test_autoreset_inside_records_no_pseudo_transition(tmp_path: Path) -> None:
    inner = Autoreset(gym.make("recoworld/Feed-v0", max_episode_steps=3, **SMALL))
    env = RecordTrajectory(inner, tmp_path / "rec")
    env.action_space.seed(0)
    obs, _ = env.reset(seed=0)
    lengths, steps, real, autoresets = [0], 0, 0, 0
    reset_obs = [obs]
    done = False
    for _ in range(40):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        if done:  # this step was Autoreset's reset: a new episode, no transition
            assert (reward, terminated, truncated) == (0.0, False, False)
            autoresets += 1
            lengths.append(0)
            reset_obs.append(obs)
        else:
            real += 1
            lengths[-1] += 1
        done = terminated or truncated
    env.close()
    assert autoresets > 3
    (run_dir,) = recorded_runs(tmp_path / "rec")
    run = read_run(run_dir)
    assert len(run.impressions) == real * 5
    assert run.impressions["tick"].nunique() == real
    tr = read_transitions(run_dir)
    assert len(tr) == real + len(lengths) == steps + 1
    assert tr.groupby("episode").size().tolist() == [n + 1 for n in lengths]
    starts = tr[tr["step"] == 0]
    assert starts["action"].isna().all()
    for got, want in zip(starts["obs_candidates"], reset_obs, strict=True):
        np.testing.assert_array_equal(got, want["candidates"])
    reasons = run.sessions["end_reason"].value_counts()
    assert reasons["horizon"] + reasons["left"] + reasons["interrupted"] == sum(
        1 for n in lengths if n
    )
    assert reasons["horizon"] + reasons["left"] == autoresets + int(done)  # every ended one


def test_step_after_the_end_without_autoreset_is_refused(tmp_path: Path) -> None:
    env = RecordTrajectory(gym.make("recoworld/Feed-v0", max_episode_steps=1, **SMALL), tmp_path)
    with pytest.raises(gym.error.ResetNeeded):
        env.step(env.action_space.sample())
    env.reset(seed=0)
    env.step(env.action_space.sample())
    with pytest.raises(gym.error.ResetNeeded):
        env.step(env.action_space.sample())
    env.close()
    assert len(read_transitions(tmp_path)) == 2


def _check_kept(out: Path, pages: int, first_obs: dict[str, Any]) -> None:
    (run_dir,) = recorded_runs(out)
    run = read_run(run_dir)
    assert run.manifest["status"] == "interrupted"
    assert len(run.impressions) == pages * 5
    assert run.manifest["ticks_completed"] == pages
    (session,) = run.sessions.itertuples()
    assert (session.end_reason, session.pages) == ("interrupted", pages)
    tr = read_transitions(out)
    assert tr["step"].tolist() == list(range(pages + 1))
    np.testing.assert_array_equal(tr["obs_history"].iloc[0], first_obs["history"])
    assert json.loads((out / RECORDING).read_text())["status"] == "closed"


def test_close_mid_episode_keeps_what_was_recorded(tmp_path: Path) -> None:
    env = RecordTrajectory(gym.make("recoworld/Feed-v0", **SMALL), tmp_path / "rec")
    obs, _ = env.reset(seed=7)
    for _ in range(3):
        env.step(np.arange(5))
    env.close()
    env.close()  # idempotent
    _check_kept(tmp_path / "rec", 3, obs)


def test_garbage_collection_mid_episode_keeps_what_was_recorded(tmp_path: Path) -> None:
    env = RecordTrajectory(gym.make("recoworld/Feed-v0", **SMALL), tmp_path / "rec")
    obs, _ = env.reset(seed=7)
    for _ in range(3):
        env.step(np.arange(5))
    del env
    gc.collect()
    _check_kept(tmp_path / "rec", 3, obs)


def test_refuses_other_envs_and_foreign_folders(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="feed envs"):
        RecordTrajectory(gym.make("CartPole-v1"), tmp_path / "cartpole")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(TrajectoryError, match="not a recoworld recording"):
        RecordTrajectory(gym.make("recoworld/Feed-v0", **SMALL), foreign)
    assert (foreign / "notes.txt").exists()
    again = tmp_path / "again"
    for seeds in ([1, 2], [1]):
        env = RecordTrajectory(gym.make("recoworld/Feed-v0", **SMALL), again)
        for seed in seeds:
            env.reset(seed=seed)
            env.step(np.arange(5))
        env.close()
    assert [p.name for p in recorded_runs(again)] == ["run-000000"]
    assert sorted(p.name for p in again.iterdir()) == [RECORDING, "run-000000"]


# -- Minari ---------------------------------------------------------------------------------
@pytest.fixture
def minari_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pytest.importorskip("minari")
    pytest.importorskip("PIL")
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


_META = {
    "author": "recoworld tests",
    "author_email": "tests@example.org",
    "code_permalink": "https://example.org/recoworld",
    "algorithm_name": "random",
}


def test_export_minari_round_trip(recorded: tuple[Path, list[Episode]], minari_root: Path) -> None:
    import minari

    out, episodes = recorded
    with pytest.warns(UserWarning, match="eval_env"):
        export_minari(out, "recoworld/feed-random-v0", **_META)
    assert (minari_root / "recoworld" / "feed-random-v0" / "data").is_dir()
    dataset = minari.load_dataset("recoworld/feed-random-v0")
    stepped = [e for e in episodes if e.steps > 0]
    assert dataset.total_episodes == len(stepped)
    assert dataset.total_steps == sum(e.steps for e in stepped) >= 160
    env = gym.make("recoworld/Feed-v0", **SMALL)
    assert dataset.observation_space == env.observation_space
    assert dataset.action_space == env.action_space
    assert dataset.env_spec is not None
    assert dataset.env_spec.id == "recoworld/Feed-v0"
    assert dataset.env_spec.max_episode_steps == 12
    for got, want in zip(dataset.iterate_episodes(), stepped, strict=True):
        assert len(got) == want.steps
        for key in want.observations[0]:
            np.testing.assert_array_equal(
                got.observations[key], np.stack([o[key] for o in want.observations])
            )
        np.testing.assert_array_equal(got.actions, np.stack(want.actions))
        np.testing.assert_allclose(got.rewards, want.rewards)
        np.testing.assert_array_equal(got.terminations, want.terminated)
        cut = not want.over
        np.testing.assert_array_equal(got.truncations[:-1], want.truncated[:-1])
        assert got.truncations[-1] == (want.truncated[-1] or cut)
        assert list(got.infos["instruction"]) == [i["instruction"] for i in want.infos]
    whole = export_minari(
        out, "recoworld/feed-random-whole-v0", include_unfinished=False, eval_env=env, **_META
    )
    assert whole.total_episodes == sum(1 for e in stepped if e.over)


def test_export_minari_text_observations_and_discrete_actions(
    tmp_path: Path, minari_root: Path
) -> None:
    env = RecordTrajectory(
        gym.make("recoworld/FeedItem-v0", observe_text=True, **SMALL), tmp_path / "rec"
    )
    episodes = play(env, 30, seed=4)
    env.close()
    dataset = export_minari(
        tmp_path / "rec", "feed-item-text-v0", eval_env="recoworld/FeedItem-v0", **_META
    )
    assert dataset.observation_space == env.observation_space
    stepped = [e for e in episodes if e.steps]
    for got, want in zip(dataset.iterate_episodes(), stepped, strict=True):
        assert list(got.observations["instruction_text"]) == [
            o["instruction_text"] for o in want.observations
        ]
        np.testing.assert_array_equal(got.actions, np.asarray(want.actions))


def test_export_minari_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, minari_root: Path
) -> None:
    with pytest.raises(TrajectoryError, match=r"recording\.json"):
        export_minari(tmp_path, "nothing-v0")
    env = RecordTrajectory(gym.make("recoworld/Feed-v0", **SMALL), tmp_path / "empty")
    env.reset(seed=0)
    env.close()
    with pytest.raises(TrajectoryError, match="no recorded episode has a step"):
        export_minari(tmp_path / "empty", "empty-v0", **_META)
    real = importlib.util.find_spec

    def no_minari(name: str, *args: Any) -> Any:
        return None if name == "minari" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", no_minari)
    with pytest.raises(DependencyNotInstalled, match="pip install"):
        export_minari(tmp_path / "empty", "empty-v0")
