"""The numeric user model (recoworld.users.numeric) on a small synthetic world."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from recoworld.config import GraphConfig, ScenarioConfig, UserModelConfig, WorldConfig
from recoworld.users.base import SOURCE_PAD, SOURCE_REC, SOURCE_SOCIAL, Feed, Responses
from recoworld.users.instructions import REASONS
from recoworld.users.numeric import NumericUserModel
from recoworld.world.population import NO_TOPIC
from recoworld.world.world import World

N_USERS = 2000
N_ITEMS = 400


def make_world(n_users: int = N_USERS, n_items: int = N_ITEMS, seed: int = 0) -> World:
    cfg = ScenarioConfig(
        seed=seed,
        world=WorldConfig(n_users=n_users, n_items=n_items, graph=GraphConfig(kind="none")),
    )
    world = World.synthetic(cfg)
    # A fresh session for everyone (initial satisfaction, no fatigue).
    NumericUserModel(cfg.users).start_session(world, np.arange(n_users, dtype=np.int64))
    return world


@pytest.fixture
def world() -> World:
    return make_world()


def make_feed(users: np.ndarray, items: np.ndarray, source: np.ndarray | None = None) -> Feed:
    items = np.asarray(items, dtype=np.int32)
    n, length = items.shape
    if source is None:
        source = np.where(items >= 0, SOURCE_REC, SOURCE_PAD)
    return Feed(
        users=np.asarray(users, dtype=np.int64),
        items=items,
        source=np.asarray(source, dtype=np.int8),
        from_user=np.full((n, length), -1, np.int32),
        score=np.zeros((n, length), np.float32),
        propensity=np.ones((n, length), np.float32),
    )


def random_pages(
    n: int, length: int, n_items: int = N_ITEMS, seed: int = 0, pad_every: int = 0
) -> np.ndarray:
    """Distinct random items per row; every ``pad_every``-th row ends with two padding slots."""
    rng = np.random.default_rng(seed)
    items = np.argsort(rng.random((n, n_items)), axis=1)[:, :length].astype(np.int32)
    if pad_every:
        items[::pad_every, -2:] = -1
    return items


def snapshot(world: World) -> dict[str, object]:
    state: dict[str, object] = {}
    for part in (world.population, world.catalog, world.clock):
        for f in dataclasses.fields(part):
            value = getattr(part, f.name)
            key = f"{type(part).__name__}.{f.name}"
            if isinstance(value, np.ndarray | list):
                value = value.copy()
            state[key] = value
    state["graph.indptr"] = world.graph.indptr.copy()
    state["graph.indices"] = world.graph.indices.copy()
    return state


def assert_same_state(before: dict[str, object], after: dict[str, object]) -> None:
    assert before.keys() == after.keys()
    for key, value in before.items():
        other = after[key]
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, other, equal_nan=value.dtype.kind == "f"), key
        else:
            assert value == other, key


# -- respond -------------------------------------------------------------------------------


def test_respond_does_not_mutate_the_world(world: World) -> None:
    users = np.arange(0, N_USERS, 2, dtype=np.int64)
    pop = world.population
    # Give some users history, intents and boredom so every input is exercised.
    pages = random_pages(users.size, 12, pad_every=5)
    pop.remember(users, pages[:, 0], np.ones(users.size, np.int8))
    pop.intent_more[users[::3]] = 1
    pop.intent_less[users[::3]] = 2
    pop.boredom[users[::4], 0] = 0.4
    world.catalog.likes[:50] = np.arange(50)
    source = np.where(pages >= 0, SOURCE_REC, SOURCE_PAD)
    source[:, 3] = SOURCE_SOCIAL
    before = snapshot(world)
    responses = NumericUserModel().respond(
        world, make_feed(users, pages, source), np.random.default_rng(0)
    )
    assert responses.examined.any()
    assert responses.clicked.any()
    assert_same_state(before, snapshot(world))


def respond(
    world: World,
    items: np.ndarray,
    users: np.ndarray | None = None,
    seed: int = 1,
    config: UserModelConfig | None = None,
) -> Responses:
    if users is None:
        users = np.arange(items.shape[0], dtype=np.int64)
    model = NumericUserModel(config)
    return model.respond(world, make_feed(users, items), np.random.default_rng(seed))


def test_response_shapes_and_dtypes(world: World) -> None:
    users = np.array([5, 3, 17, 1999, 0], dtype=np.int64)
    items = random_pages(users.size, 7)
    r = respond(world, items, users)
    shape = (5, 7)
    for name, dtype in [
        ("examined", np.bool_),
        ("clicked", np.bool_),
        ("liked", np.bool_),
        ("shared", np.bool_),
        ("commented", np.bool_),
        ("dwell", np.float32),
        ("rating", np.float32),
    ]:
        value = getattr(r, name)
        assert value.shape == shape, name
        assert value.dtype == dtype, name
    assert r.left.shape == (5,)
    assert r.left.dtype == np.bool_
    for name in ("satisfaction", "fatigue", "opinion"):
        assert getattr(r, name).shape == (5,), name
        assert getattr(r, name).dtype == np.float32, name
    assert r.boredom.shape == (5, world.catalog.n_topics)
    assert r.boredom.dtype == np.float32
    assert r.taste.shape == (5, world.population.taste.shape[1])
    assert r.taste.dtype == np.float32


@pytest.fixture
def big_response(world: World) -> tuple[np.ndarray, Responses]:
    items = random_pages(N_USERS, 15, pad_every=4)
    return items, respond(world, items)


def test_examined_is_a_prefix_of_the_valid_items(big_response) -> None:
    items, r = big_response
    ex = r.examined
    assert not (ex & (items < 0)).any(), "padding examined"
    # Once a user stops examining it never examines a later position.
    assert not (~ex[:, :-1] & ex[:, 1:]).any()
    # Every user sees at least the first item of its page.
    assert ex[:, 0].all()
    # The model does stop some users early.
    assert (ex.sum(axis=1) < (items >= 0).sum(axis=1)).any()


def test_users_who_stay_examine_the_whole_page_and_leavers_stop_where_they_leave(
    big_response,
) -> None:
    items, r = big_response
    valid = items >= 0
    stayed = ~r.left
    assert r.left.any()
    assert stayed.any()
    assert np.array_equal(r.examined[stayed], valid[stayed])
    # A user who left examined nothing after its leaving position: it left before the end of
    # its valid items unless it left on the very last one.
    n_examined = r.examined.sum(axis=1)
    assert (n_examined[r.left] <= valid[r.left].sum(axis=1)).all()
    assert (n_examined[r.left] >= 1).all()
    assert (n_examined[r.left] < valid[r.left].sum(axis=1)).any()


def test_engagement_nesting(big_response) -> None:
    _, r = big_response
    assert not (r.clicked & ~r.examined).any()
    for name in ("liked", "shared", "commented"):
        assert not (getattr(r, name) & ~r.clicked).any(), name
    assert r.clicked.any()
    assert r.liked.any()
    assert r.shared.any()
    assert (r.clicked & ~r.liked).any()


def test_rating_and_dwell_exactly_on_clicks(big_response) -> None:
    _, r = big_response
    assert np.array_equal(np.isnan(r.rating), ~r.clicked)
    ratings = r.rating[r.clicked]
    assert ((ratings >= 1) & (ratings <= 5)).all()
    assert np.array_equal(ratings, np.round(ratings))
    assert len(np.unique(ratings)) >= 3
    assert np.array_equal(r.dwell > 0, r.clicked)
    assert (r.dwell[~r.clicked] == 0).all()
    assert np.isfinite(r.dwell).all()


def test_mindset_outputs_stay_in_range(world: World, big_response) -> None:
    items, r = big_response
    pop = world.population
    assert ((r.satisfaction >= 0) & (r.satisfaction <= 1.5)).all()
    assert np.all(r.fatigue >= pop.fatigue)
    # Fatigue grows by fatigue_per_item for each examined item.
    expected = pop.fatigue + UserModelConfig().fatigue_per_item * r.examined.sum(axis=1)
    assert np.allclose(r.fatigue, expected, atol=1e-5)
    assert ((r.opinion >= -1) & (r.opinion <= 1)).all()
    assert np.allclose(np.linalg.norm(r.taste, axis=1), 1.0, atol=1e-4)
    assert (r.boredom >= 0).all()
    # Boredom only grows on topics that were examined.
    topics = world.catalog.topic[np.maximum(items, 0)]
    grew = r.boredom > pop.boredom * (1 - UserModelConfig().boredom_decay) + 1e-6
    for u in np.flatnonzero(grew.any(axis=1))[:200]:
        examined_topics = set(topics[u][r.examined[u]].tolist())
        assert set(np.flatnonzero(grew[u]).tolist()) <= examined_topics


def test_same_seed_same_responses(world: World) -> None:
    items = random_pages(500, 10)
    a = respond(world, items, seed=42)
    b = respond(world, items, seed=42)
    c = respond(world, items, seed=43)
    for f in dataclasses.fields(Responses):
        assert np.array_equal(getattr(a, f.name), getattr(b, f.name), equal_nan=True), f.name
    assert not np.array_equal(a.clicked, c.clicked)


def test_padding_only_feed_examines_nothing(world: World) -> None:
    items = np.full((4, 5), -1, np.int32)
    r = respond(world, items)
    assert not r.examined.any()
    assert not r.clicked.any()
    assert not r.left.any()
    assert np.isnan(r.rating).all()
    assert np.array_equal(r.fatigue, world.population.fatigue[:4])


def single_item_click_rate(world: World, items: np.ndarray, seed: int = 3) -> float:
    return float(respond(world, items.reshape(-1, 1), seed=seed).clicked.mean())


def test_better_matching_items_get_more_clicks(world: World) -> None:
    affinity = world.population.taste @ world.catalog.embedding.T
    best = affinity.argmax(axis=1)
    worst = affinity.argmin(axis=1)
    rng = np.random.default_rng(0)
    random_item = rng.integers(0, N_ITEMS, size=N_USERS)
    best_rate = single_item_click_rate(world, best)
    random_rate = single_item_click_rate(world, random_item)
    worst_rate = single_item_click_rate(world, worst)
    assert best_rate > random_rate + 0.2
    assert random_rate > worst_rate + 0.05


def test_higher_quality_items_get_more_clicks(world: World) -> None:
    quality = world.catalog.quality
    rng = np.random.default_rng(1)
    high = rng.choice(np.flatnonzero(quality > 0.7), size=N_USERS)
    low = rng.choice(np.flatnonzero(quality < 0.3), size=N_USERS)
    assert single_item_click_rate(world, high) > single_item_click_rate(world, low) + 0.05


def test_quality_is_monotone_for_the_same_draws(world: World) -> None:
    items = np.random.default_rng(2).integers(0, N_ITEMS, size=(N_USERS, 1))
    catalog = world.catalog
    original = catalog.quality.copy()
    try:
        catalog.quality[:] = 1.0
        good = respond(world, items, seed=5)
        catalog.quality[:] = 0.0
        bad = respond(world, items, seed=5)
    finally:
        catalog.quality[:] = original
    # Same random draws, strictly higher utility: every click on bad items is one on good items.
    assert not (bad.clicked & ~good.clicked).any()
    assert good.clicked.mean() > bad.clicked.mean() + 0.05


def test_already_seen_items_get_fewer_clicks(world: World) -> None:
    pop = world.population
    users = np.arange(N_USERS, dtype=np.int64)
    affinity = pop.taste @ world.catalog.embedding.T
    items = affinity.argmax(axis=1).astype(np.int32).reshape(-1, 1)
    fresh = respond(world, items, seed=6)
    pop.remember(users, items[:, 0], np.ones(N_USERS, np.int8))
    seen = respond(world, items, seed=6)
    assert not (seen.clicked & ~fresh.clicked).any()
    assert fresh.clicked.mean() > seen.clicked.mean() + 0.2


def test_standing_intent_changes_clicks(world: World) -> None:
    pop = world.population
    items = np.random.default_rng(3).integers(0, N_ITEMS, size=(N_USERS, 1)).astype(np.int32)
    topic = world.catalog.topic[items[:, 0]]
    neutral = respond(world, items, seed=8)
    pop.intent_more[:] = topic
    wanted = respond(world, items, seed=8)
    pop.intent_more[:] = NO_TOPIC
    pop.intent_less[:] = topic
    refused = respond(world, items, seed=8)
    assert not (neutral.clicked & ~wanted.clicked).any()
    assert not (refused.clicked & ~neutral.clicked).any()
    assert wanted.clicked.mean() > neutral.clicked.mean() > refused.clicked.mean()


def test_low_satisfaction_users_leave_more(world: World) -> None:
    pop = world.population
    items = random_pages(N_USERS, 10)
    happy = respond(world, items, seed=9)
    pop.satisfaction[:] = 0.0
    unhappy = respond(world, items, seed=9)
    assert unhappy.left.mean() > happy.left.mean() + 0.2
    assert unhappy.examined.sum() < happy.examined.sum()


# -- instruct ------------------------------------------------------------------------------


def unhappy_world(n_users: int = 400) -> tuple[World, np.ndarray, np.ndarray]:
    world = make_world(n_users=n_users, n_items=300, seed=1)
    pop = world.population
    users = np.arange(n_users, dtype=np.int64)
    pop.satisfaction[:] = 0.0
    pop.pages_since_instruction[:] = 10
    pages = random_pages(n_users, 10, n_items=300, seed=4)
    return world, users, pages


def test_no_instructions_when_max_instructions_is_zero() -> None:
    world, users, pages = unhappy_world()
    satisfaction = world.population.satisfaction.copy()
    model = NumericUserModel(UserModelConfig(max_instructions=0))
    instr = model.instruct(world, users, pages, np.random.default_rng(0))
    assert len(instr) == 0
    assert instr.text == []
    assert np.array_equal(world.population.satisfaction, satisfaction)


def test_unhappy_users_instruct_with_grounded_text() -> None:
    world, users, pages = unhappy_world()
    pop = world.population
    # A third bored of one topic, a third who have seen the whole page before.
    pop.boredom[:130, 3] = 0.5
    pop.memory_items[130:260, :20] = np.concatenate([pages, pages], axis=1)[130:260]
    names = world.catalog.topic_names
    model = NumericUserModel()
    instr = model.instruct(world, users, pages, np.random.default_rng(0))

    assert len(instr) == users.size  # everyone is at risk, eligible and unhappy
    assert np.array_equal(instr.users, users)
    assert len(instr.text) == len(instr.reason) == len(instr.constraint) == len(instr)
    assert set(instr.reason) == set(REASONS)
    assert ((instr.more >= 0) & (instr.more < len(names))).all()
    repetition = np.array([r == "repetition" for r in instr.reason])
    assert (instr.less[repetition] == -1).all()
    topical = instr.less[~repetition]
    assert ((topical >= 0) & (topical < len(names))).all()
    assert (instr.more != instr.less).all()
    assert (instr.risk >= UserModelConfig().instruction_threshold).all()
    for j in range(len(instr)):
        text, reason = instr.text[j], instr.reason[j]
        assert reason in ("boredom", "mismatch", "repetition")
        assert names[instr.more[j]] in text, text
        if reason != "repetition":
            assert names[instr.less[j]] in text, text
        assert instr.constraint[j] == ("fresh" if reason == "repetition" else "")
    # Reasons follow the user's state.
    assert set(instr.reason[:130]) == {"boredom"}
    assert (instr.less[:130] == 3).all()
    assert set(instr.reason[130:260]) == {"repetition"}
    assert "repetition" not in instr.reason[260:]
    # Speaking up gives hope.
    assert np.allclose(pop.satisfaction, UserModelConfig().instruction_hope)


def test_every_less_intent_is_named_in_the_text() -> None:
    world, users, pages = unhappy_world()
    pop = world.population
    pop.memory_items[:, :20] = np.concatenate([pages, pages], axis=1)
    names = world.catalog.topic_names
    instr = NumericUserModel().instruct(world, users, pages, np.random.default_rng(0))
    assert set(instr.reason) == {"repetition"}
    # A repetition complaint refuses no topic; it asks for fresh items and names what it wants.
    assert (instr.less == -1).all()
    assert set(instr.constraint) == {"fresh"}
    assert all(names[m] in t for t, m in zip(instr.text, instr.more, strict=True))


def test_instruction_text_topic_names_match_word_boundaries() -> None:
    world, users, pages = unhappy_world()
    world.population.boredom[:, 0] = 0.5
    names = world.catalog.topic_names
    instr = NumericUserModel().instruct(world, users, pages, np.random.default_rng(2))
    assert len(instr) > 0
    for text, more, less in zip(instr.text, instr.more, instr.less, strict=True):
        assert less == 0
        assert re.search(rf"\b{re.escape(names[more])}\b", text)
        assert re.search(rf"\b{re.escape(names[less])}\b", text)
        others = {n for i, n in enumerate(names) if i not in (more, less)}
        assert not any(re.search(rf"\b{re.escape(n)}\b", text) for n in others), text


def test_happy_users_do_not_instruct() -> None:
    world, users, pages = unhappy_world()
    world.population.satisfaction[:] = 1.2
    instr = NumericUserModel().instruct(world, users, pages, np.random.default_rng(0))
    assert len(instr) == 0


def test_instruction_limits_and_cooldown() -> None:
    world, users, pages = unhappy_world(n_users=30)
    pop = world.population
    model = NumericUserModel(UserModelConfig(max_instructions=2, instruction_cooldown=3))
    pop.session_instructions[:10] = 2  # used up
    pop.pages_since_instruction[10:20] = 2  # cooling down
    instr = model.instruct(world, users, pages, np.random.default_rng(0))
    assert instr.users.tolist() == list(range(20, 30))


def test_instructions_are_deterministic_and_expire_old_intents() -> None:
    world_a, users, pages = unhappy_world(n_users=100)
    world_b, _, _ = unhappy_world(n_users=100)
    for w in (world_a, world_b):
        w.population.intent_more[:] = 1
        w.population.intent_less[:] = 2
        w.population.satisfaction[50:] = 1.2  # these do not speak up
    a = NumericUserModel().instruct(world_a, users, pages, np.random.default_rng(7))
    b = NumericUserModel().instruct(world_b, users, pages, np.random.default_rng(7))
    assert a.text == b.text
    assert np.array_equal(a.more, b.more)
    assert a.users.tolist() == list(range(50))
    # pages_since_instruction (10) >= intent_pages (3): every standing intent expired.
    assert (world_a.population.intent_more == NO_TOPIC).all()
    assert (world_a.population.intent_less == NO_TOPIC).all()


# -- plan_return ---------------------------------------------------------------------------


def test_plan_return_favours_satisfied_users() -> None:
    n = 4000
    world = make_world(n_users=n, n_items=50)
    pop = world.population
    users = np.arange(n, dtype=np.int64)
    model = NumericUserModel()

    pop.satisfaction[:] = 0.1
    low = model.plan_return(world, users, np.random.default_rng(11))
    pop.satisfaction[:] = 0.9
    high = model.plan_return(world, users, np.random.default_rng(11))

    for plan in (low, high):
        assert plan.returns.shape == (n,)
        assert plan.returns.dtype == np.bool_
        assert plan.gap_ticks.shape == (n,)
        assert plan.gap_ticks.dtype == np.int64
        assert (plan.gap_ticks >= 1).all()

    assert high.returns.mean() > low.returns.mean() + 0.3
    assert np.median(high.gap_ticks) < 0.5 * np.median(low.gap_ticks)
    # With the same draws the effect holds user by user.
    assert not (low.returns & ~high.returns).any()
    assert (high.gap_ticks <= low.gap_ticks).all()


def test_plan_return_matches_documented_probabilities() -> None:
    n = 20000
    world = make_world(n_users=n, n_items=50)
    users = np.arange(n, dtype=np.int64)
    c = UserModelConfig()
    for satisfaction in (0.0, 0.5, 1.0):
        world.population.satisfaction[:] = satisfaction
        plan = NumericUserModel(c).plan_return(world, users, np.random.default_rng(12))
        expected = 1 / (1 + np.exp(-(c.return_bias + c.return_slope * (satisfaction - 0.5))))
        assert plan.returns.mean() == pytest.approx(expected, abs=0.02)


def test_plan_return_gap_scales_with_activity() -> None:
    n = 4000
    world = make_world(n_users=n, n_items=50)
    pop = world.population
    users = np.arange(n, dtype=np.int64)
    pop.satisfaction[:] = 0.5
    pop.activity[:] = 0.5
    slow = NumericUserModel().plan_return(world, users, np.random.default_rng(13))
    pop.activity[:] = 4.0
    fast = NumericUserModel().plan_return(world, users, np.random.default_rng(13))
    # Mean gap 24h / activity at satisfaction ½: 48 h vs 6 h, in ticks of 5 minutes.
    assert slow.gap_ticks.mean() == pytest.approx(48 * 12, rel=0.1)
    assert fast.gap_ticks.mean() == pytest.approx(6 * 12, rel=0.1)
