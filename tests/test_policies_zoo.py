"""The policy zoo's newer members: item-item kNN, Thompson sampling, and a trained SB3 agent.

Each runs in a real simulation and serves valid slates; kNN and Thompson learn (a clearly higher
click rate than random); Thompson's propensities are honest Monte-Carlo estimates; the RL policy
rebuilds the feed environment's observation exactly and refuses models of other sizes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recoworld._config import override
from recoworld.errors import ConfigError
from recoworld.policies import Feedback, RecommendRequest, Slates, make_policy
from recoworld.policies.bandits import ThompsonSamplingPolicy
from recoworld.policies.neighbors import ItemKNNPolicy
from recoworld.scenario import load_scenario
from recoworld.schedule import Simulation

# -- helpers ----------------------------------------------------------------------------------


def _click_rate(name: str, seed: int, **params: Any) -> float:
    """Click rate of a policy on the retention scenario (1,500 users, 2,000 items, one day)."""
    cfg = override(
        load_scenario("retention"),
        {"world.n_users": 1500, "world.n_items": 2000, "clock.days": 1, "seed": seed},
    )
    sim = Simulation(cfg, policy=make_policy(name, **params))
    sim.run()
    return sim.totals.clicks / sim.totals.examined


def _small(**updates: Any) -> Any:
    base = {"world.n_users": 300, "world.n_items": 400, "clock.ticks": 60}
    return override(load_scenario("default"), {**base, **updates})


def _served(sim: Simulation, n_ticks: int) -> list[Slates]:
    """Step the simulation with its own policy, keeping the slates it served."""
    out = []
    for _ in range(n_ticks):
        request = sim.begin_tick()
        if request is None:
            sim.end_tick(None)
            continue
        slates = sim.policy.recommend(request)
        sim.end_tick(slates)  # validates them
        out.append(slates)
    return out


def _feedback(users: list[int], items: list[int], clicked: list[bool], tick: int = 0) -> Feedback:
    n = len(items)
    return Feedback(
        tick=tick,
        users=np.array(users, np.int64),
        items=np.array(items, np.int32),
        ranks=np.arange(n, dtype=np.int16),
        source=np.zeros(n, np.int8),
        examined=np.ones(n, bool),
        clicked=np.array(clicked, bool),
        liked=np.zeros(n, bool),
        shared=np.zeros(n, bool),
        dwell=np.ones(n, np.float32),
        instruction_users=np.zeros(0, np.int64),
        instruction_texts=(),
        left_users=np.zeros(0, np.int64),
    )


def _request(catalog: Any, users: list[int], candidates: np.ndarray, k: int) -> RecommendRequest:
    n = len(users)
    return RecommendRequest(
        tick=0,
        users=np.array(users, np.int64),
        candidates=candidates.astype(np.int32),
        k=k,
        catalog=catalog,
        history=np.full((n, 4), -1, np.int32),
        instructions=(None,) * n,
        instruction_age=np.full(n, -1, np.int32),
        session_pages=np.zeros(n, np.int32),
        rng=np.random.default_rng(0),
    )


# -- every zoo policy in a simulation -----------------------------------------------------------


@pytest.mark.parametrize("name", ["itemknn", "thompson"])
def test_zoo_policy_serves_valid_slates_reproducibly(name: str) -> None:
    totals = []
    for _ in range(2):
        sim = Simulation(_small(), policy=make_policy(name))
        assert sim.run().status == "completed"
        assert sim.totals.examined > 0
        totals.append((sim.totals.examined, sim.totals.clicks))
    assert totals[0] == totals[1]  # deterministic given the seed
    assert sim.policy.__doc__


@pytest.mark.parametrize(("name", "margin"), [("itemknn", 0.03), ("thompson", 0.02)])
def test_zoo_policy_learns_what_users_click(name: str, margin: float) -> None:
    for seed in (0, 1):
        learned, random = _click_rate(name, seed), _click_rate("random", seed)
        assert learned > random + margin, (name, seed, learned, random)


@pytest.mark.parametrize(
    ("name", "params", "needle"),
    [
        ("itemknn", {"neighbors": 0}, "policy.params.neighbors: expected an integer >= 1"),
        ("itemknn", {"shrink": -1.0}, "policy.params.shrink: expected a number >= 0"),
        ("itemknn", {"history": 2.5}, "policy.params.history"),
        ("itemknn", {"retrain_every": 0}, "policy.params.retrain_every"),
        ("itemknn", {"buffer": True}, "policy.params.buffer"),
        ("itemknn", {"popularity_weight": float("nan")}, "policy.params.popularity_weight"),
        ("itemknn", {"seen_penalty": "high"}, "policy.params.seen_penalty"),
        ("thompson", {"a0": 0}, "policy.params.a0: expected a number > 0"),
        ("thompson", {"b0": -1}, "policy.params.b0"),
        ("thompson", {"propensity_samples": 0}, "policy.params.propensity_samples"),
        ("thompson", {"exploration": 0.0}, "policy.params.exploration"),
        ("thompson", {"popularity_weight": -0.1}, "policy.params.popularity_weight"),
        ("thompson", {"alpha": 1}, "policy.params"),
        ("rl", {"path": "/nonexistent/model.zip"}, "policy.params.path: no saved model"),
        ("rl", {}, "policy.params"),
    ],
)
def test_bad_parameters_raise_config_errors_naming_the_key(
    name: str, params: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(needle)):
        make_policy(name, **params)


# -- item-item kNN ------------------------------------------------------------------------------


def _brute_force_neighbors(
    users: np.ndarray, items: np.ndarray, n_items: int, shrink: float, top: int
) -> dict[int, float]:
    r = np.zeros((users.max() + 1, n_items))
    r[users, items] = 1.0
    co = r.T @ r
    np.fill_diagonal(co, 0.0)
    count = r.sum(axis=0)
    sim = (co / (np.sqrt(np.outer(count, count)) + shrink)).astype(np.float32)
    kept: dict[int, float] = {}
    for i in range(n_items):
        cols = np.flatnonzero(co[i] > 0)
        order = np.lexsort((cols, -sim[i, cols]))[:top]  # most similar, then lower id
        kept.update({i * n_items + int(j): float(sim[i, j]) for j in cols[order]})
    return kept


@pytest.mark.parametrize(("dense_min", "pair_block"), [(1 << 20, 1 << 22), (0, 64)])
def test_itemknn_keeps_the_top_shrunk_cosine_neighbours(
    monkeypatch: pytest.MonkeyPatch, dense_min: int, pair_block: int
) -> None:
    import recoworld.policies.neighbors as module

    monkeypatch.setattr(module, "_DENSE_MIN", dense_min)  # dense counting, or sorting
    monkeypatch.setattr(module, "_PAIR_BLOCK", pair_block)  # one block, or many
    rng = np.random.default_rng(3)
    users = rng.integers(0, 40, 600)
    items = (rng.integers(0, 6, 600) * 7 + rng.integers(0, 9, 600)) % 60  # clustered
    policy = ItemKNNPolicy(neighbors=5, shrink=2.0, retrain_every=1)
    policy.update(_feedback(users.tolist(), items.tolist(), [True] * 600))
    assert policy.trainings == 1
    want = _brute_force_neighbors(users, items, policy._stride, 2.0, 5)  # stride: ids seen
    got = dict(zip(policy.neighbor_keys.tolist(), policy.neighbor_sims.tolist(), strict=True))
    assert got.keys() == want.keys()
    assert np.allclose([got[key] for key in want], list(want.values()), rtol=1e-6)
    assert (np.diff(policy.neighbor_keys) > 0).all()  # sorted keys: a sparse table


def test_itemknn_scores_by_recent_clicks_and_falls_back_to_popularity() -> None:
    cfg = _small()
    catalog = Simulation(cfg).world.catalog
    catalog.clicks[:] = 0
    catalog.clicks[7] = 50  # the most popular candidate
    policy = ItemKNNPolicy(history=2, retrain_every=1)
    # Users 0..9 click items 1 and 2 together, so they are each other's neighbours.
    policy.update(_feedback(list(range(10)) * 2, [1] * 10 + [2] * 10, [True] * 20))
    # User 20 clicks 5, then 1, then 3: its ring keeps the last two (1 and 3).
    policy.update(_feedback([20, 20, 20], [5, 1, 3], [True, True, True], tick=1))
    ring = policy.recent[20]
    assert sorted(ring.tolist()) == [1, 3]
    assert policy._stride == 6  # the table knows items 0..5; the candidates 7..11 came later
    request = _request(catalog, [20, 30], np.array([[7, 2, 9, 11], [7, 2, 9, 11]]), k=2)
    scores = policy.score(request)
    assert scores.shape == (2, 4)
    assert scores.dtype == np.float32
    assert scores[0].argmax() == 1  # item 2, neighbour of the recently clicked item 1
    assert scores[1].argmax() == 0  # a user with no click: popularity
    assert policy.n_items == catalog.n_items


# -- Thompson sampling --------------------------------------------------------------------------


def test_thompson_propensities_are_in_range_and_vary_in_a_simulation() -> None:
    sim = Simulation(_small(**{"clock.ticks": 120}), policy=make_policy("thompson"))
    props = np.concatenate([s.propensities.ravel() for s in _served(sim, 120)])
    assert props.size > 1000
    assert ((props > 0) & (props <= 1)).all()
    assert props.min() < 0.05  # a new user's slate is one of many
    assert props.max() > 0.5  # a user who showed its taste gets much the same slate
    assert len(np.unique(props)) > 10


def test_thompson_propensities_estimate_the_slate_frequencies() -> None:
    catalog = Simulation(_small()).world.catalog
    policy = ThompsonSamplingPolicy(propensity_samples=64)
    cand = np.arange(12)[None, :]
    topics = catalog.topic[cand[0]]
    # One user who clicked the first candidate's topic 3 times in 5.
    hot = int(np.flatnonzero(topics == topics[0])[0])
    policy.recommend(_request(catalog, [0], cand, k=3))
    policy.update(_feedback([0] * 5, [hot] * 5, [True, True, True, False, False]))
    shown: dict[tuple[int, int], list[float]] = {}
    draws = 600
    for draw in range(draws):
        request = _request(catalog, [0], cand, k=3)
        object.__setattr__(request, "rng", np.random.default_rng(draw))
        slates = policy.recommend(request)
        pairs = zip(slates.items[0], slates.propensities[0], strict=True)
        for rank, (item, prop) in enumerate(pairs):
            shown.setdefault((int(item), rank), []).append(float(prop))
    frequent = [props for props in shown.values() if len(props) >= 60]
    assert len(frequent) >= 3
    for props in frequent:  # the empirical frequency vs the mean reported estimate
        assert np.mean(props) == pytest.approx(len(props) / draws, abs=0.04)


# -- the trained RL agent -----------------------------------------------------------------------

ENV_KWARGS = {"n_items": 300}  # Feed-v0 defaults otherwise: 20 candidates, slates of 5


@pytest.fixture(scope="module")
def ppo_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from stable_baselines3 import PPO

    from recoworld.envs.sb3 import make_sb3_vec_env
    from recoworld.envs.sb3_policy import SlateScoringPolicy

    torch.set_num_threads(1)
    venv = make_sb3_vec_env(16, seed=0, **ENV_KWARGS)
    model = PPO(SlateScoringPolicy, venv, n_steps=32, batch_size=256, n_epochs=2, seed=0)
    model.learn(2048)
    path = tmp_path_factory.mktemp("rl") / "ppo_feed.zip"
    model.save(path)
    return path


def _rl_scenario(**updates: Any) -> Any:
    return _small(**{"feed.n_candidates": 20, "feed.slate_size": 5, **updates})


def test_rl_policy_serves_a_trained_ppo_agent_in_a_simulation(ppo_path: Path) -> None:
    policy = make_policy("rl", path=str(ppo_path), env_kwargs=ENV_KWARGS)
    sim = Simulation(_rl_scenario(), policy=policy)
    served = _served(sim, 60)
    assert served
    assert sim.totals.examined > 0
    assert all((s.propensities == 1.0).all() for s in served)
    sampling = make_policy("rl", path=ppo_path, env_kwargs=ENV_KWARGS, deterministic=False)
    runs = []
    for _ in range(2):
        sim = Simulation(_rl_scenario(), policy=sampling)
        props = np.concatenate([s.propensities.ravel() for s in _served(sim, 40)])
        assert ((props > 0) & (props <= 1)).all()
        runs.append((sim.totals.examined, sim.totals.clicks))
        sampling = make_policy("rl", path=ppo_path, env_kwargs=ENV_KWARGS, deterministic=False)
    assert runs[0] == runs[1]  # sampled with the request's stream: reproducible


def test_rl_policy_rebuilds_the_environments_observation(ppo_path: Path) -> None:
    from recoworld.envs.feed import catalog_popularity, context_features, write_features
    from recoworld.policies.parsing import InstructionCodes

    policy: Any = make_policy("rl", path=ppo_path, env_kwargs=ENV_KWARGS)
    sim = Simulation(_rl_scenario(**{"world.n_users": 400}), policy=policy)
    world = sim.world
    pop, codes = world.population, InstructionCodes(world.catalog.topic_names)
    checked = 0
    for _ in range(80):
        request = sim.begin_tick()
        if request is None:
            sim.end_tick(None)
            continue
        obs = policy.observe(request)
        users = request.users
        # The environment's observation, from the population's own records.
        truth = context_features(
            topic=world.catalog.topic,
            memory_items=pop.memory_items[users],
            memory_reaction=pop.memory_reaction[users],
            session_pages=pop.session_pages[users],
            last_page=policy._last[users],
            session_clicks=pop.session_clicks[users],
            session_items=pop.session_items[users],
            hour=world.clock.hour_of_day(),
            page=request.k,
            instruction_codes=codes.for_users(pop, users),
            pages_since_instruction=np.where(
                pop.last_instruction[users] >= 0, pop.pages_since_instruction[users], -1
            ),
        )
        feats = np.zeros((request.n, 20, world.catalog.n_topics + 4), np.float32)
        rows = np.arange(request.n)
        centroid = policy._centroid[users]
        write_features(feats, rows, world, request, centroid, catalog_popularity(world.catalog))
        truth["candidates"] = feats.reshape(request.n, -1)
        for key, value in truth.items():
            np.testing.assert_allclose(obs[key], value, atol=1e-6, err_msg=key)
        checked += int(obs["history"].any(axis=1).sum())
        sim.end_tick(policy.recommend(request))
    assert checked > 100  # users with a history were compared


def test_rl_policy_refuses_a_model_of_other_sizes(ppo_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"policy\.params\.env_kwargs: the model .* observes"):
        make_policy("rl", path=ppo_path, env_kwargs={**ENV_KWARGS, "n_candidates": 10})
    with pytest.raises(ConfigError, match=r"policy\.params\.env_kwargs\.oracle"):
        make_policy("rl", path=ppo_path, env_kwargs={**ENV_KWARGS, "oracle": True})
    with pytest.raises(ConfigError, match=r"policy\.params\.algo"):
        make_policy("rl", path=ppo_path, algo="NoSuchAlgo")
    policy = make_policy("rl", path=ppo_path, env_kwargs=ENV_KWARGS)
    sim = Simulation(_small(), policy=policy)  # 100 candidates, slates of 10
    with pytest.raises(ConfigError, match=r"expects pages of 20 candidates, slates of 5 items"):
        sim.run()


def test_rl_policy_scores_keep_the_models_order_for_wrappers(ppo_path: Path) -> None:
    policy = make_policy("rl", path=ppo_path, env_kwargs=ENV_KWARGS)
    sim = Simulation(_rl_scenario(), policy=make_policy("random"))
    _served(sim, 30)
    request = sim.begin_tick()
    assert request is not None
    own = policy.recommend(request)
    wrapped = make_policy("epsilon_greedy", base=policy, epsilon=0.0).recommend(request)
    np.testing.assert_array_equal(wrapped.items, own.items)
