"""The social recommender and the user-side shield: both serve valid slates in the schedule;
Social promotes what followees liked and shared; UserShield obeys its own user's words, reads no
other user's data, carries the platform's propensities and keeps users longer than the platform
it wraps."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from recoworld._config import override
from recoworld.errors import ConfigError
from recoworld.policies import Feedback, RecommendRequest, make_policy, slates_from_scores
from recoworld.policies.parsing import parse_instruction
from recoworld.policies.shield import UserShieldPolicy
from recoworld.policies.social import SocialPolicy
from recoworld.scenario import load_scenario
from recoworld.schedule import Simulation
from recoworld.world.catalog import Catalog
from recoworld.world.graph import SocialGraph


def _catalog(n_items: int = 200) -> Catalog:
    cfg = override(load_scenario("default"), {"world.n_users": 10, "world.n_items": n_items})
    return Simulation(cfg).world.catalog


def _request(
    catalog: Catalog,
    users: list[int],
    candidates: np.ndarray,
    *,
    k: int = 2,
    graph: SocialGraph | None = None,
    texts: tuple[str | None, ...] | None = None,
    history: np.ndarray | None = None,
    tick: int = 0,
    oracle: Any = None,
) -> RecommendRequest:
    n = len(users)
    return RecommendRequest(
        tick=tick,
        users=np.array(users, np.int64),
        candidates=np.asarray(candidates, np.int32).reshape(n, -1),
        k=k,
        catalog=catalog,
        history=np.full((n, 4), -1, np.int32) if history is None else history,
        instructions=texts if texts is not None else (None,) * n,
        instruction_age=np.zeros(n, np.int32),
        session_pages=np.zeros(n, np.int32),
        rng=np.random.default_rng(0),
        oracle=oracle,
        graph=graph,
    )


def _feedback(
    tick: int,
    users: list[int],
    items: list[int],
    *,
    clicked: list[bool] | None = None,
    liked: list[bool] | None = None,
    shared: list[bool] | None = None,
) -> Feedback:
    n = len(users)
    no = [False] * n
    return Feedback(
        tick=tick,
        users=np.array(users, np.int64),
        items=np.array(items, np.int32),
        ranks=np.zeros(n, np.int16),
        source=np.zeros(n, np.int8),
        examined=np.ones(n, bool),
        clicked=np.array(clicked if clicked is not None else no, bool),
        liked=np.array(liked if liked is not None else no, bool),
        shared=np.array(shared if shared is not None else no, bool),
        dwell=np.ones(n, np.float32),
        instruction_users=np.zeros(0, np.int64),
        instruction_texts=(),
        left_users=np.zeros(0, np.int64),
    )


# -- in the schedule --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("social", {}),
        ("user_shield", {}),
        ("user_shield", {"platform": "social"}),
        ("user_shield", {"platform": "mf", "platform_params": {"dim": 8}, "shortlist": 15}),
    ],
)
def test_social_and_shield_serve_valid_slates_in_a_simulation(name: str, params: dict) -> None:
    cfg = override(
        load_scenario("social"),
        {"world.n_users": 400, "world.n_items": 300, "clock.ticks": 60},
    )
    sim = Simulation(cfg, policy=make_policy(name, **params))
    request = sim.begin_tick()
    while request is None:  # wait for the first session
        sim.end_tick(None)
        request = sim.begin_tick()
    assert request.graph is sim.world.graph  # the world's own graph, not a copy
    sim.end_tick(sim.policy.recommend(request))
    result = sim.run()
    assert result.status == "completed"
    assert sim.totals.examined > 0
    assert sim.policy.__doc__
    policy = sim.policy
    social = policy if isinstance(policy, SocialPolicy) else getattr(policy, "platform", None)
    if isinstance(social, SocialPolicy):
        assert social.keys.size > 0  # it remembered likes and shares


# -- Social -----------------------------------------------------------------------------------
def test_social_ranks_an_item_a_followee_liked_above_an_otherwise_equal_one() -> None:
    catalog = _catalog()
    # User 0 follows 1 and 2; user 3 follows nobody; user 4 is liked by nobody's followees.
    graph = SocialGraph.from_edges(10, np.array([0, 0]), np.array([1, 2]))
    policy = SocialPolicy(half_life=10, share_weight=2.0)
    policy.update(
        _feedback(
            0,
            [1, 2, 4],
            [7, 8, 5],
            clicked=[True, True, True],
            liked=[True, False, True],
            shared=[False, True, False],
        )
    )
    cand = [5, 6, 7, 8]  # items 5..8 are equal for the catalogue: no clicks yet
    assert (catalog.clicks[cand] == 0).all()
    request = _request(catalog, [0, 3], [cand, cand], k=4, graph=graph)
    social = policy.social_scores(request)
    np.testing.assert_allclose(social[0], [0.0, 0.0, 1.0, 2.0])  # a share counts 2 likes
    np.testing.assert_allclose(social[1], 0.0)  # follows nobody
    slates = policy.recommend(request)
    assert slates.items[0].tolist() == [8, 7, 5, 6]  # shared, liked, then candidate order
    assert slates.items[1].tolist() == cand  # the popularity fallback (all equal here)
    assert (slates.propensities == 1.0).all()
    # No graph: popularity only. And engagement halves every half-life.
    assert (policy.score(_request(catalog, [0], [cand], k=4)) == 0).all()
    later = policy.social_scores(_request(catalog, [0], [cand], k=4, graph=graph, tick=10))
    np.testing.assert_allclose(later[0], [0.0, 0.0, 0.5, 1.0])


def test_social_popularity_fallback_orders_users_without_social_signal() -> None:
    catalog = _catalog()
    clicks = catalog.clicks.copy()
    try:
        catalog.clicks[[10, 11, 12]] = [1, 50, 5]
        policy = SocialPolicy()
        request = _request(catalog, [0], [[10, 11, 12]], k=3, graph=SocialGraph.empty(10))
        assert policy.recommend(request).items[0].tolist() == [11, 12, 10]
    finally:
        catalog.clicks[:] = clicks


# -- UserShield -------------------------------------------------------------------------------
def _two_topics(catalog: Catalog) -> tuple[int, int, list[int]]:
    """Two topics and 8 items, 4 of each, interleaved."""
    a, b = 0, 1
    items_a = np.flatnonzero(catalog.topic == a)[:4].tolist()
    items_b = np.flatnonzero(catalog.topic == b)[:4].tolist()
    return a, b, [x for pair in zip(items_a, items_b, strict=True) for x in pair]


def test_user_shield_demotes_a_refused_topic_after_an_instruction() -> None:
    catalog = _catalog()
    refused, other, cand = _two_topics(catalog)
    text = f"Enough {catalog.topic_names[refused]}."
    assert parse_instruction(text, catalog.topic_names).less == {refused}
    shield = UserShieldPolicy(platform="most_popular", shortlist=8)
    before = shield.recommend(_request(catalog, [0], [cand], k=4))
    assert (catalog.topic[before.items[0]] == refused).any()  # the platform's order mixes them
    after = shield.recommend(_request(catalog, [0], [cand], k=4, texts=(text,)))
    assert (catalog.topic[after.items[0]] == other).all()
    full = shield.score(_request(catalog, [0], [cand], k=4, texts=(text,)))[0]
    topics = catalog.topic[cand]
    assert full[topics == refused].max() < full[topics == other].min()
    # The words end with the session.
    assert 0 in shield.preferences
    shield.update(_left(1, [0]))
    assert 0 not in shield.preferences


def _left(tick: int, users: list[int]) -> Feedback:
    fb = _feedback(tick, [], [])
    return Feedback(
        tick=fb.tick,
        users=fb.users,
        items=fb.items,
        ranks=fb.ranks,
        source=fb.source,
        examined=fb.examined,
        clicked=fb.clicked,
        liked=fb.liked,
        shared=fb.shared,
        dwell=fb.dwell,
        instruction_users=fb.instruction_users,
        instruction_texts=fb.instruction_texts,
        left_users=np.array(users, np.int64),
    )


class _Trap:
    """Hidden state that must never be read."""

    def __getattribute__(self, name: str) -> Any:
        raise AssertionError(f"the shield read hidden state ({name})")


def test_user_shield_uses_only_its_own_users_data() -> None:
    catalog = _catalog()
    a, b, cand = _two_topics(catalog)
    own = [0, 0, 0, 0]
    mine = _feedback(0, own, cand[:4], clicked=[True, False, True, False])
    # Another user (1) clicks every item of topic b, has seen two items and refuses topic a.
    both = _feedback(
        0,
        own + [1] * 8,
        cand[:4] + cand,
        clicked=[True, False, True, False] + [catalog.topic[i] == b for i in cand],
    )
    alone, mixed = UserShieldPolicy(shortlist=8), UserShieldPolicy(shortlist=8)
    for shield in (alone, mixed):  # the first request tells the shield the catalogue's topics
        shield.recommend(_request(catalog, [0], [cand], k=4))
    alone.update(mine)
    mixed.update(both)
    np.testing.assert_array_equal(alone.clicks[0], mixed.clicks[0])
    np.testing.assert_array_equal(alone.skips[0], mixed.skips[0])
    assert mixed.clicks[1].sum() == 4  # the other user's memory is its own row
    history = np.full((2, 4), -1, np.int32)
    history[1, :2] = cand[:2]
    text = f"Enough {catalog.topic_names[a]}."
    single = alone.score(_request(catalog, [0], [cand], k=4, oracle=_Trap()))
    together = mixed.score(
        _request(
            catalog, [0, 1], [cand, cand], k=4, texts=(None, text), history=history, oracle=_Trap()
        )
    )
    np.testing.assert_array_equal(single[0], together[0])  # user 1 changed nothing for user 0
    assert not np.array_equal(together[1], together[0])  # while its own ranking did change


def test_user_shield_score_agrees_with_its_slates_and_carries_propensities() -> None:
    catalog = _catalog()
    cand = np.arange(20, dtype=np.int32)[None, :]
    shield = UserShieldPolicy(platform="most_popular", shortlist=6)
    request = _request(catalog, [0], cand, k=3)
    scores = shield.score(request)
    assert np.isfinite(scores).sum() == 6  # only the platform's shortlist can be served
    np.testing.assert_array_equal(
        slates_from_scores(request, scores).items, shield.recommend(request).items
    )
    assert (shield.recommend(request).propensities == 1.0).all()
    randomized = UserShieldPolicy(platform="random").recommend(_request(catalog, [0], cand, k=3))
    np.testing.assert_allclose(randomized.propensities, 1.0 / 20)


def _session_length(name: str, seed: int, **params: object) -> float:
    cfg = override(
        load_scenario("retention"),
        {"world.n_users": 1500, "world.n_items": 2000, "clock.days": 2, "seed": seed},
    )
    sim = Simulation(cfg, policy=make_policy(name, **params))
    sim.run()
    return sim.totals.examined / sim.totals.sessions_started


def test_user_shield_over_most_popular_keeps_users_longer() -> None:
    for seed in (0, 1):
        shielded = _session_length("user_shield", seed, platform="most_popular")
        plain = _session_length("most_popular", seed)
        assert shielded > plain * 1.2, (seed, shielded, plain)


@pytest.mark.parametrize(
    ("name", "params", "needle"),
    [
        ("social", {"half_life": 0}, "policy.params.half_life"),
        ("social", {"share_weight": -1}, "policy.params.share_weight"),
        ("social", {"popularity_weight": "high"}, "policy.params.popularity_weight"),
        ("user_shield", {"trust": 1.5}, "policy.params.trust"),
        ("user_shield", {"shortlist": 0}, "policy.params.shortlist"),
        ("user_shield", {"prior": 0}, "policy.params.prior"),
        ("user_shield", {"refuse": -2}, "policy.params.refuse"),
        ("user_shield", {"platform": "most_popularr"}, "most_popular"),
        ("user_shield", {"platform": object()}, "policy.params.platform"),
        ("user_shield", {"platform": SocialPolicy(), "platform_params": {"x": 1}}, "platform_"),
        ("user_shield", {"nope": 1}, "nope"),
    ],
)
def test_bad_parameters_are_named(name: str, params: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        make_policy(name, **params)
