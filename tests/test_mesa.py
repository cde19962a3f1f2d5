"""The Mesa face: a RecoworldModel steps exactly as a plain Simulation, its agents and reporters
read the world live, and mesa.batch_run sweeps it."""

from __future__ import annotations

import dataclasses
import importlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recoworld._config import override
from recoworld.errors import ConfigError, DependencyNotInstalled
from recoworld.scenario import load_scenario
from recoworld.schedule import Simulation

mesa = pytest.importorskip("mesa")

from recoworld.metrics.social import echo_chamber_correlation, polarization  # noqa: E402
from recoworld.social.mesa import (  # noqa: E402
    MODEL_REPORTERS,
    RecoworldModel,
    UserAgent,
    model_config,
    sweep,
)

# A small social world at a busy hour, so that sessions, clicks and shares happen at once.
SMALL: dict[str, Any] = {
    "world__n_users": 400,
    "world__n_items": 500,
    "clock__ticks": 30,
    "clock__start_hour": 18,
}
DOTTED = {key.replace("__", "."): value for key, value in SMALL.items()}
H = 30


def plain_simulation(seed: int, **dotted: Any) -> Simulation:
    config = override(load_scenario("social"), {**DOTTED, **dotted, "seed": seed})
    return Simulation(config)


def assert_same_world(a: Simulation, b: Simulation) -> None:
    pop_a, pop_b = a.world.population, b.world.population
    for f in dataclasses.fields(pop_a):
        x, y = getattr(pop_a, f.name), getattr(pop_b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype, f.name
            assert x.tobytes() == y.tobytes(), f.name
        elif f.name != "_text_table":
            assert x == y, f.name
    cat_a, cat_b = a.world.catalog, b.world.catalog
    for name in ("impressions", "clicks", "likes", "shares", "comments"):
        assert getattr(cat_a, name).tobytes() == getattr(cat_b, name).tobytes(), name
    assert a.world.graph == b.world.graph
    assert a.world.clock.tick == b.world.clock.tick
    assert a.totals == b.totals


def test_model_steps_exactly_as_a_plain_simulation() -> None:
    model = RecoworldModel(seed=3, **SMALL)
    sim = plain_simulation(3)
    assert model.config == sim.config
    for _ in range(H):
        model.step()
        sim.step()
    assert model.sim.totals.clicks > 0  # something happened
    assert model.sim.totals.shares > 0
    assert_same_world(model.sim, sim)


def test_overrides_and_keywords_build_the_same_config() -> None:
    by_keywords = model_config("social", seed=2, users__opinion_epsilon=0.3, **SMALL)
    by_overrides = model_config(
        "social", seed=2, overrides={**DOTTED, "users.opinion_epsilon": 0.3}
    )
    expected = override(load_scenario("social"), {**DOTTED, "users.opinion_epsilon": 0.3})
    assert by_keywords == by_overrides == override(expected, {"seed": 2})
    # numpy scalars (np.linspace, np.arange) are plain values to the config
    assert model_config(world__n_users=np.int64(400), users__opinion_epsilon=np.float64(0.3)) == (
        model_config(world__n_users=400, users__opinion_epsilon=0.3)
    )


def test_agents_are_live_views_of_the_population() -> None:
    model = RecoworldModel(seed=1, **SMALL)
    pop, graph = model.world.population, model.world.graph
    assert len(model.agents) == pop.n_users == len(model.user_agents)
    assert [a.user for a in model.user_agents] == list(range(pop.n_users))
    assert set(model.agents) == set(model.user_agents)
    for _ in range(10):
        model.step()
    for agent in model.user_agents[:50]:
        u = agent.user
        assert agent.opinion == pytest.approx(float(pop.opinion[u]))
        assert agent.satisfaction == pytest.approx(float(pop.satisfaction[u]))
        assert agent.in_session == bool(pop.in_session[u])
        assert agent.churned == bool(pop.churned[u])
        assert np.array_equal(agent.followees, graph.following(u))
    agent = model.user_agents[7]
    pop.opinion[7] = 0.625  # a write to the column is seen at once: nothing is copied
    assert agent.opinion == 0.625
    followees = agent.followees
    assert np.shares_memory(followees, graph.indices)
    assert not followees.flags.writeable
    assert np.array_equal(
        agent.followers, np.flatnonzero([7 in graph.following(v) for v in range(pop.n_users)])
    )


def test_agents_are_cheap_and_optional() -> None:
    model = RecoworldModel(seed=0, agents=False, world__n_users=10_000, clock__ticks=2)
    assert len(model.agents) == 0
    assert model.user_agents == []
    assert model.datacollector.agent_reporters == {}
    start = time.perf_counter()
    agents = [UserAgent(model, u) for u in range(10_000)]
    assert time.perf_counter() - start < 1.0
    assert len(model.agents) == 10_000
    assert agents[-1].user == 9_999


def test_reporters_match_direct_computations() -> None:
    model = RecoworldModel(seed=4, **SMALL)
    sim = plain_simulation(4)
    stats, shares = [], []
    for _ in range(H):
        before = sim.totals.shares
        stats.append(sim.step())
        shares.append(sim.totals.shares - before)
    while model.running:
        model.step()
    frame = model.datacollector.get_model_vars_dataframe()
    assert list(frame.columns) == list(MODEL_REPORTERS)
    assert len(frame) == H + 1  # row s: the state after s ticks
    assert frame.iloc[0][["active_users", "impressions", "clicks", "shares"]].tolist() == [0] * 4
    rows = frame.iloc[1:]
    assert rows["active_users"].tolist() == [s.active for s in stats]
    assert rows["impressions"].tolist() == [s.impressions for s in stats]
    assert rows["clicks"].tolist() == [s.clicks for s in stats]
    assert rows["shares"].tolist() == shares
    shown = np.array([s.impressions for s in stats], dtype=float)
    expected_ctr = np.array([s.clicks for s in stats]) / np.where(shown > 0, shown, np.nan)
    np.testing.assert_allclose(rows["ctr"].to_numpy(), expected_ctr, equal_nan=True)
    final = frame.iloc[-1]
    x = sim.world.population.opinion
    pol = polarization(x)
    assert final["polarization"] == pytest.approx(pol["variance"])
    assert final["bimodality"] == pytest.approx(pol["bimodality"])
    assert final["extremity"] == pytest.approx(pol["extremity"])
    assert final["opinion_mean"] == pytest.approx(float(x.mean(dtype=np.float64)))
    assert final["echo_chamber"] == pytest.approx(echo_chamber_correlation(sim.world.graph, x))
    assert final["churned_users"] == int(sim.world.population.churned.sum())
    agents = model.datacollector.get_agent_vars_dataframe()
    last = agents.xs(H, level="Step")
    np.testing.assert_allclose(last["opinion"].to_numpy(), x)
    np.testing.assert_allclose(last["satisfaction"].to_numpy(), sim.world.population.satisfaction)


def test_running_turns_false_one_call_after_the_horizon() -> None:
    model = RecoworldModel(seed=0, agents=False, **SMALL)
    for _ in range(H):
        assert not model.done
        model.step()
    assert model.done
    assert model.running
    assert model.tick == H
    model.step()  # simulates nothing, collects nothing
    assert not model.running
    assert model.tick == H
    assert model.status == "completed"
    model.step()
    assert model.tick == H
    assert len(model.datacollector.get_model_vars_dataframe()) == H + 1


def test_running_turns_false_when_everyone_churned() -> None:
    # Frequent visitors who never come back: everyone has churned well before the horizon.
    model = RecoworldModel(
        seed=0,
        agents=False,
        world__n_users=400,
        world__n_items=500,
        clock__days=2,
        clock__start_hour=18,
        users__activity_mean=48.0,
        users__return_bias=-30.0,
    )
    while model.running:
        model.step()
    assert model.status == "completed"
    assert model.world.population.churned.all()
    assert model.tick < model.sim.n_ticks
    assert model.steps == model.tick + 1
    assert len(model.datacollector.get_model_vars_dataframe()) == model.tick + 1


def test_recording_is_closed_at_the_end(tmp_path: Path) -> None:
    model = RecoworldModel(seed=0, agents=False, out_dir=tmp_path / "run", **SMALL)
    while model.running:
        model.step()
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "completed"


def test_batch_run_reports_every_step_including_the_last() -> None:
    rows = mesa.batch_run(
        RecoworldModel,
        parameters={"users__opinion_epsilon": [0.2, 0.6], "feed__social_slots": [0, 2], **SMALL},
        number_processes=1,
        iterations=1,
        max_steps=1000,
        data_collection_period=1,
        display_progress=False,
    )
    # agents as well: one row per user and step
    assert len(rows) == 4 * (H + 1) * 400
    assert {r["Step"] for r in rows} == set(range(H + 1))


def test_sweep_two_parameters() -> None:
    params = {"users__opinion_epsilon": [0.2, 0.6], "feed__social_slots": [0, 2]}
    frame = sweep(params, data_collection_period=1, **SMALL)
    assert len(frame) == 4 * (H + 1)  # one row per combination and step collected
    assert frame["RunId"].tolist() == [r for r in range(4) for _ in range(H + 1)]
    assert frame["Step"].tolist() == list(range(H + 1)) * 4
    assert set(MODEL_REPORTERS) <= set(frame.columns)
    combos = frame.groupby("RunId")[list(params)].first()
    assert combos.values.tolist() == [[0.2, 0], [0.2, 2], [0.6, 0], [0.6, 2]]
    # the last row of a run is the final state of a model built with the same arguments
    model = RecoworldModel(
        seed=0, agents=False, users__opinion_epsilon=0.6, feed__social_slots=2, **SMALL
    )
    while model.running:
        model.step()
    last = frame[frame["RunId"] == 3].iloc[-1]
    assert last["polarization"] == pytest.approx(
        polarization(model.world.population.opinion)["variance"]
    )
    assert last["clicks"] == model.tick_stats.clicks
    # default: the end of each run only
    ends = sweep(params, **SMALL)
    assert ends["Step"].tolist() == [H] * 4
    assert (
        ends.drop(columns="RunId")
        .reset_index(drop=True)
        .equals(frame[frame["Step"] == H].drop(columns="RunId").reset_index(drop=True))
    )


def test_sweep_iterations_use_distinct_seeds_and_max_steps() -> None:
    frame = sweep({"feed__social_slots": [0, 2]}, iterations=2, max_steps=5, seed=10, **SMALL)
    assert frame["RunId"].tolist() == [0, 1, 2, 3]
    assert frame["iteration"].tolist() == [0, 0, 1, 1]
    assert frame["seed"].tolist() == [10, 10, 11, 11]
    assert frame["Step"].tolist() == [5] * 4
    assert frame.loc[0, "clicks"] != frame.loc[2, "clicks"] or (
        frame.loc[0, "polarization"] != frame.loc[2, "polarization"]
    )


def test_sweep_on_worker_processes_gives_the_same_rows() -> None:
    params = {"feed__social_slots": [0, 2], "users__opinion_epsilon": [0.3]}
    kwargs = {**SMALL, "clock__ticks": 10}
    here = sweep(params, data_collection_period=1, **kwargs)
    there = sweep(params, data_collection_period=1, number_processes=2, **kwargs)
    assert here.equals(there)


@pytest.mark.parametrize(
    "call",
    [
        lambda: RecoworldModel(users__no_such_key=1, **SMALL),
        lambda: RecoworldModel(no_such_section__key=1, **SMALL),
        lambda: RecoworldModel(overrides={"seed": 3}, **SMALL),
        lambda: sweep({"users__opinion_epsilonn": [0.2, 0.6]}, **SMALL),
        lambda: sweep({"users__opinion_epsilon": [0.2, -1.0]}, **SMALL),
        lambda: sweep({"users__opinion_epsilon": []}, **SMALL),
        lambda: sweep({"seed": [0, 1]}, iterations=2, **SMALL),
        lambda: sweep({"world__n_users": [100, 200]}, **SMALL),
        lambda: sweep({"feed__social_slots": [0]}, out_dir="somewhere", **SMALL),
    ],
)
def test_bad_parameters_raise_config_error(call: Any) -> None:
    start = time.perf_counter()
    with pytest.raises(ConfigError):
        call()
    assert time.perf_counter() - start < 5  # caught before any run


def test_recoworld_does_not_import_mesa() -> None:
    code = (
        "import sys, multiprocessing, recoworld, recoworld.social; "
        "recoworld.Simulation; import recoworld.social.classic; "
        "print(sorted(m for m in sys.modules if m == 'mesa' or m.startswith('mesa.')), "
        "multiprocessing.get_start_method(allow_none=True))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert proc.stdout.split() == ["[]", "None"]


def test_missing_mesa_raises_dependency_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mesa", None)  # `import mesa` now raises ImportError
    monkeypatch.delitem(sys.modules, "recoworld.social.mesa")
    with pytest.raises(DependencyNotInstalled, match=r'pip install "recoworld\[mesa\]"'):
        importlib.import_module("recoworld.social.mesa")
