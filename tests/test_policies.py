"""The policy zoo: every registered policy runs in the schedule; learning policies learn; the
instruction-aware planner reads words and keeps users; MMR diversifies; Trending decays."""

from __future__ import annotations

import numpy as np
import pytest

from recoworld._config import override
from recoworld.errors import ConfigError
from recoworld.policies import Feedback, RecommendRequest, available, make_policy
from recoworld.policies.learned import TrendingPolicy
from recoworld.policies.rerank import InstructionAwarePolicy, MMRPolicy
from recoworld.scenario import load_scenario
from recoworld.schedule import Simulation


def _outcomes(name: str, seed: int, days: float = 2, **params: object) -> tuple[float, ...]:
    cfg = override(
        load_scenario("retention"),
        {"world.n_users": 1500, "world.n_items": 2000, "clock.days": days, "seed": seed},
    )
    sim = Simulation(cfg, policy=make_policy(name, **params))
    sim.run()
    pop, totals = sim.world.population, sim.totals
    had = pop.n_sessions >= 1
    return (
        totals.examined / totals.sessions_started,
        float((pop.n_sessions[had] >= 2).mean()),
        totals.clicks / totals.examined,
    )


# Policies that need something from outside the scenario run in their own test files:
# llm_agent an LLM server (tests/test_llm_agent.py), rl a trained model (test_policies_zoo.py).
NEEDS_MORE = {"llm_agent", "rl"}


@pytest.mark.parametrize("name", sorted(set(available()) - NEEDS_MORE))
def test_every_registered_policy_serves_valid_slates(name: str) -> None:
    cfg = override(
        load_scenario("default"), {"world.n_users": 300, "world.n_items": 400, "clock.ticks": 60}
    )
    sim = Simulation(cfg, policy=make_policy(name))
    result = sim.run()
    assert result.status == "completed"
    assert sim.totals.examined > 0
    assert sim.policy.__doc__  # every policy documents how it works


def test_matrix_factorization_learns_what_users_click() -> None:
    for seed in (0, 1):
        mf = _outcomes("mf", seed, days=1)
        random = _outcomes("random", seed, days=1)
        assert mf[2] > random[2] + 0.03, (mf, random)  # a clearly higher click rate


def test_instruction_aware_over_mf_keeps_users_longer_and_brings_them_back() -> None:
    seeds = (0, 1, 2)
    aware = np.array([_outcomes("instruction_aware", s, base="mf") for s in seeds])
    plain = np.array([_outcomes("mf", s) for s in seeds])
    assert (aware[:, 0] > plain[:, 0]).all(), (aware, plain)  # session length, every seed
    assert aware[:, 1].mean() > plain[:, 1].mean()  # return rate on average


def _feedback(tick: int, items: list[int], clicked: bool, left: tuple[int, ...] = ()) -> Feedback:
    n = len(items)
    return Feedback(
        tick=tick,
        users=np.zeros(n, np.int64),
        items=np.array(items, np.int32),
        ranks=np.zeros(n, np.int16),
        source=np.zeros(n, np.int8),
        examined=np.ones(n, bool),
        clicked=np.full(n, clicked),
        liked=np.zeros(n, bool),
        shared=np.zeros(n, bool),
        dwell=np.ones(n, np.float32),
        instruction_users=np.zeros(0, np.int64),
        instruction_texts=(),
        left_users=np.array(left, np.int64),
    )


def _request(n_cand: int = 6, texts: tuple = (None,), history: list | None = None):  # type: ignore[no-untyped-def]
    cfg = override(load_scenario("default"), {"world.n_users": 10, "world.n_items": 200})
    cat = Simulation(cfg).world.catalog
    cand = np.arange(n_cand, dtype=np.int32)[None, :].repeat(len(texts), axis=0)
    hist = np.full((len(texts), 4), -1, np.int32)
    if history:
        hist[0, : len(history)] = history
    return cat, RecommendRequest(
        tick=0,
        users=np.arange(len(texts), dtype=np.int64),
        candidates=cand,
        k=2,
        catalog=cat,
        history=hist,
        instructions=texts,
        instruction_age=np.zeros(len(texts), np.int32),
        session_pages=np.zeros(len(texts), np.int32),
        rng=np.random.default_rng(0),
    )


def test_instruction_preferences_consolidate_across_turns_and_end_with_the_session() -> None:
    cat, _ = _request()
    names = cat.topic_names
    policy = InstructionAwarePolicy(base="most_popular")
    first = policy._consolidate(7, f"Too much {names[0]}. Show me {names[1]}.", names)
    assert first.more == {1}
    assert first.less == {0}
    second = policy._consolidate(
        7, f"Actually I want {names[0]} again, and no more {names[1]}", names
    )
    assert second.more == {0}
    assert second.less == {1}
    assert policy.parsed_instructions == 2
    policy._consolidate(7, f"Actually I want {names[0]} again, and no more {names[1]}", names)
    assert policy.parsed_instructions == 2  # the same standing text is not parsed again
    policy.update(_feedback(0, [], clicked=False, left=(7,)))
    assert 7 not in policy.preferences


def test_the_planner_filters_refused_topics_and_seen_items_and_boosts_wanted_ones() -> None:
    cat, request = _request(n_cand=20)
    topics = cat.topic[request.candidates[0]]
    refused, wanted = int(topics[0]), int(topics[1])
    names = cat.topic_names
    text = f"Enough {names[refused]}. Show me {names[wanted]}, nothing I have seen."
    cat, request = _request(n_cand=20, texts=(text,), history=[int(request.candidates[0, 1])])
    scores = InstructionAwarePolicy(base="most_popular").score(request)[0]
    assert np.isneginf(scores[topics == refused]).all()
    assert np.isneginf(scores[1])  # seen, and the user asked for fresh items
    allowed = np.isfinite(scores)
    boosted = allowed & (topics == wanted)
    if boosted.any() and (allowed & ~boosted).any():
        assert scores[boosted].min() > scores[allowed & ~boosted].max()


def test_mmr_diversifies_and_lambda_one_is_the_base_order() -> None:
    cfg = override(load_scenario("default"), {"world.n_users": 2000, "world.n_items": 500})
    sim = Simulation(cfg)
    for _ in range(100):  # into the day: many users in session, popularity established
        sim.step()
    request = sim.begin_tick()
    assert request is not None
    assert request.n >= 20
    base = make_policy("most_popular")
    same = MMRPolicy(base=base, lam=1.0).recommend(request).items
    np.testing.assert_array_equal(same, base.recommend(request).items)
    emb = request.catalog.embedding

    def spread(items: np.ndarray) -> float:
        e = emb[items] / np.linalg.norm(emb[items], axis=2, keepdims=True)
        sims = np.einsum("nkd,njd->nkj", e, e)
        k = items.shape[1]
        return float((sims.sum(axis=(1, 2)) - k).mean() / (k * (k - 1)))

    diverse = MMRPolicy(base=base, lam=0.3).recommend(request).items
    assert spread(diverse) < spread(same) - 0.05, (spread(diverse), spread(same))


def test_trending_forgets_at_its_half_life() -> None:
    policy = TrendingPolicy(half_life=10)
    policy.update(_feedback(0, [3], clicked=True))
    assert policy.hot[3] == 1.0
    policy.update(_feedback(10, [3], clicked=False))
    assert policy.hot[3] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("name", "params", "needle"),
    [
        ("trending", {"half_life": 0}, "half_life"),
        ("mf", {"dim": 0}, "dim"),
        ("mmr", {"lam": 2}, "lam"),
        ("instruction_aware", {"base": "oracle"}, "no score"),
        ("mf", {"nope": 1}, "nope"),
    ],
)
def test_bad_policy_parameters_are_named(name: str, params: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        make_policy(name, **params)


def test_linucb_learns_each_users_topics() -> None:
    for seed in (0, 1):
        ucb = _outcomes("linucb", seed, days=1)
        random = _outcomes("random", seed, days=1)
        assert ucb[2] > random[2] + 0.03, (ucb, random)


def test_epsilon_greedy_propensities_are_the_exact_choice_probabilities() -> None:
    _, request = _request(n_cand=6)
    base = make_policy("most_popular")
    greedy = make_policy("epsilon_greedy", base=base, epsilon=0.0).recommend(request)
    np.testing.assert_array_equal(greedy.items, base.recommend(request).items)
    assert (greedy.propensities == 1.0).all()
    uniform = make_policy("epsilon_greedy", base=base, epsilon=1.0).recommend(request)
    np.testing.assert_allclose(uniform.propensities[0], [1 / 6, 1 / 5])
    # Monte Carlo: the base's first choice leads the slate with probability (1 − ε) + ε / C.
    policy = make_policy("epsilon_greedy", base=base, epsilon=0.3)
    top = base.recommend(request).items[0, 0]
    firsts, props = [], []
    for draw in range(4000):
        object.__setattr__(request, "rng", np.random.default_rng(draw))  # a fresh policy stream
        slate = policy.recommend(request)
        firsts.append(slate.items[0, 0] == top)
        if slate.items[0, 0] == top:
            props.append(slate.propensities[0, 0])
    assert np.mean(firsts) == pytest.approx(0.7 + 0.3 / 6, abs=0.025)
    assert np.allclose(props, 0.7 + 0.3 / 6)
