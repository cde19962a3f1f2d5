"""Feed composition and the social inbox (recoworld.feed)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recoworld.config import FeedConfig
from recoworld.feed import compose_feed, deliver_shares, social_capacity, take_inbox
from recoworld.policies.base import Slates
from recoworld.users.base import SOURCE_PAD, SOURCE_REC, SOURCE_SOCIAL
from recoworld.world.graph import SocialGraph
from recoworld.world.population import Population


def make_population(n: int, *, inbox_size: int = 4, memory_size: int = 4) -> Population:
    return Population(
        taste=np.zeros((n, 2), np.float32),
        activity=np.ones(n, np.float32),
        conformity=np.full(n, 0.5, np.float32),
        diversity=np.full(n, 0.5, np.float32),
        patience=np.full(n, 0.5, np.float32),
        sociability=np.full(n, 0.5, np.float32),
        opinion=np.zeros(n, np.float32),
        n_topics=2,
        memory_size=memory_size,
        inbox_size=inbox_size,
    )


def make_slates(items: np.ndarray) -> Slates:
    items = np.asarray(items, dtype=np.int32)
    n, k = items.shape
    scores = (np.arange(n * k, dtype=np.float32).reshape(n, k) + 0.5) / 10
    propensities = np.linspace(0.1, 0.9, n * k, dtype=np.float32).reshape(n, k)
    return Slates(items=items, scores=scores, propensities=propensities)


def social_matrix(rows: list[list[int]], width: int) -> np.ndarray:
    out = np.full((len(rows), width), -1, np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def graph(n: int, edges: list[tuple[int, int]]) -> SocialGraph:
    """``(follower, followee)`` pairs."""
    src = np.array([e[0] for e in edges], dtype=np.int64)
    dst = np.array([e[1] for e in edges], dtype=np.int64)
    return SocialGraph.from_edges(n, src, dst)


def arr(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


# -- social_capacity -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (FeedConfig(rule="none", social_slots=3), 0),
        (FeedConfig(rule="append", social_slots=3), 3),
        (FeedConfig(rule="append", social_slots=0), 0),
        (FeedConfig(rule="interleave", slate_size=10, social_every=4, social_slots=2), 2),
        (FeedConfig(rule="interleave", slate_size=10, social_every=4, social_slots=5), 2),
        (FeedConfig(rule="interleave", slate_size=10, social_every=3, social_slots=4), 3),
        (FeedConfig(rule="interleave", slate_size=3, social_every=4, social_slots=2), 0),
    ],
)
def test_social_capacity(config: FeedConfig, expected: int) -> None:
    assert social_capacity(config) == expected


# -- compose_feed --------------------------------------------------------------------------


def test_interleave_example() -> None:
    cfg = FeedConfig(slate_size=10, n_candidates=10, rule="interleave", social_slots=2)
    rec = np.arange(100, 130).reshape(3, 10)
    slates = make_slates(rec)
    social = social_matrix([[7, 8], [9], []], 2)
    sharers = social_matrix([[70, 80], [90], []], 2)
    users = arr(5, 6, 7)
    feed = compose_feed(users, slates, social, sharers, cfg)

    assert feed.items.shape == (3, 12)
    assert feed.users is users
    r0, r1, r2 = (rec[i].tolist() for i in range(3))
    assert feed.items[0].tolist() == [*r0[:4], 7, *r0[4:8], 8, *r0[8:]]
    assert feed.items[1].tolist() == [*r1[:4], 9, *r1[4:], -1]
    assert feed.items[2].tolist() == [*r2, -1, -1]

    R, S, P = SOURCE_REC, SOURCE_SOCIAL, SOURCE_PAD
    assert feed.source[0].tolist() == [R] * 4 + [S] + [R] * 4 + [S] + [R] * 2
    assert feed.source[1].tolist() == [R] * 4 + [S] + [R] * 6 + [P]
    assert feed.source[2].tolist() == [R] * 10 + [P] * 2
    assert feed.from_user[0].tolist() == [-1] * 4 + [70] + [-1] * 4 + [80, -1, -1]
    assert feed.from_user[1].tolist() == [-1] * 4 + [90] + [-1] * 7
    assert (feed.from_user[2] == -1).all()
    assert feed.valid.tolist() == (feed.items >= 0).tolist()

    # Policy scores and propensities follow their items; in-network items get NaN and 1.
    rec_mask = feed.source == SOURCE_REC
    assert np.array_equal(feed.score[rec_mask], slates.scores.ravel())
    assert np.array_equal(feed.propensity[rec_mask], slates.propensities.ravel())
    assert np.isnan(feed.score[~rec_mask]).all()
    assert (feed.propensity[~rec_mask] == 1).all()
    assert feed.items.dtype == np.int32
    assert feed.source.dtype == np.int8
    assert feed.score.dtype == np.float32


def test_interleave_ignores_social_items_beyond_capacity() -> None:
    cfg = FeedConfig(slate_size=5, n_candidates=5, social_every=2, social_slots=5)
    assert social_capacity(cfg) == 2
    slates = make_slates(np.arange(5)[None, :])
    social = social_matrix([[50, 51, 52, 53]], 4)
    feed = compose_feed(arr(0), slates, social, social + 100, cfg)
    assert feed.items[0].tolist() == [0, 1, 50, 2, 3, 51, 4]
    assert feed.from_user[0].tolist() == [-1, -1, 150, -1, -1, 151, -1]


def test_append_rule() -> None:
    cfg = FeedConfig(slate_size=3, n_candidates=3, rule="append", social_slots=3)
    slates = make_slates(np.array([[1, 2, 3], [4, 5, 6]]))
    social = social_matrix([[10, 11, 12, 13], [20]], 4)
    feed = compose_feed(arr(0, 1), slates, social, social + 1, cfg)
    assert feed.items.tolist() == [[1, 2, 3, 10, 11, 12], [4, 5, 6, 20, -1, -1]]
    assert feed.source[1].tolist() == [SOURCE_REC] * 3 + [SOURCE_SOCIAL] + [SOURCE_PAD] * 2
    assert feed.from_user.tolist() == [[-1, -1, -1, 11, 12, 13], [-1, -1, -1, 21, -1, -1]]


def test_none_rule_is_the_slate_alone() -> None:
    cfg = FeedConfig(slate_size=3, n_candidates=3, rule="none", social_slots=3)
    slates = make_slates(np.array([[1, 2, 3]]))
    feed = compose_feed(
        arr(0), slates, social_matrix([[10, 11]], 2), social_matrix([[1, 2]], 2), cfg
    )
    assert feed.items.tolist() == [[1, 2, 3]]
    assert (feed.source == SOURCE_REC).all()
    assert (feed.from_user == -1).all()
    assert np.array_equal(feed.score, slates.scores)


def reference_feed(rec: list[int], social: list[int], cfg: FeedConfig) -> list[int]:
    """The documented rule, written item by item."""
    cap = social_capacity(cfg)
    social = social[:cap]
    out: list[int] = []
    if cfg.rule == "interleave":
        pending = list(social)
        for j, item in enumerate(rec):
            out.append(item)
            if (j + 1) % cfg.social_every == 0 and pending:
                out.append(pending.pop(0))
    else:
        out = list(rec) + list(social)
    return out + [-1] * (len(rec) + cap - len(out))


@settings(max_examples=150, deadline=None)
@given(
    k=st.integers(1, 12),
    every=st.integers(1, 5),
    slots=st.integers(0, 4),
    rule=st.sampled_from(["interleave", "append", "none"]),
    n_social=st.lists(st.integers(0, 6), min_size=1, max_size=4),
)
def test_compose_feed_matches_reference(
    k: int, every: int, slots: int, rule: str, n_social: list[int]
) -> None:
    cfg = FeedConfig(
        slate_size=k, n_candidates=k, rule=rule, social_slots=slots, social_every=every
    )
    n = len(n_social)
    rec = np.arange(n * k).reshape(n, k) + 1000
    width = max(max(n_social), 1)
    social_rows = [[5000 + 10 * i + j for j in range(m)] for i, m in enumerate(n_social)]
    social = social_matrix(social_rows, width)
    feed = compose_feed(np.arange(n), make_slates(rec), social, social - 4000, cfg)
    cap = social_capacity(cfg)
    assert feed.items.shape == (n, k + cap)
    for i in range(n):
        row = feed.items[i].tolist()
        assert row == reference_feed(rec[i].tolist(), social_rows[i], cfg)
        # Recommended order preserved; social count bounded by capacity; padding at the end.
        is_rec = feed.source[i] == SOURCE_REC
        assert feed.items[i][is_rec].tolist() == rec[i].tolist()
        assert (feed.source[i] == SOURCE_SOCIAL).sum() == min(n_social[i], cap)
        valid = feed.items[i] >= 0
        assert valid.sum() == k + min(n_social[i], cap)
        assert not valid[valid.sum() :].any()
        assert ((feed.source[i] == SOURCE_PAD) == ~valid).all()
        soc = feed.source[i] == SOURCE_SOCIAL
        assert (feed.from_user[i][soc] == feed.items[i][soc] - 4000).all()
        assert (feed.from_user[i][~soc] == -1).all()


# -- deliver_shares ------------------------------------------------------------------------


def test_deliver_shares_reaches_every_follower() -> None:
    # 0 and 1 follow 2; 3 follows 0; nobody follows 1.
    g = graph(4, [(0, 2), (1, 2), (3, 0)])
    pop = make_population(4)
    counts = deliver_shares(pop, g, arr(2, 0, 1), np.array([10, 11, 12], np.int32))
    assert counts.tolist() == [2, 1, 0]
    assert counts.dtype == np.int64
    assert pop.inbox_items[0].tolist() == [10, -1, -1, -1]
    assert pop.inbox_from[0].tolist() == [2, -1, -1, -1]
    assert pop.inbox_items[1].tolist() == [10, -1, -1, -1]
    assert pop.inbox_items[3].tolist() == [11, -1, -1, -1]
    assert pop.inbox_from[3].tolist() == [0, -1, -1, -1]
    assert (pop.inbox_items[2] == -1).all()
    assert pop.inbox_ptr.tolist() == [1, 1, 0, 1]


def test_deliver_shares_without_recipients() -> None:
    g = graph(3, [(0, 1)])
    pop = make_population(3)
    assert deliver_shares(pop, g, arr(), np.zeros(0, np.int32)).tolist() == []
    assert deliver_shares(pop, g, arr(0, 2), np.array([5, 6], np.int32)).tolist() == [0, 0]
    assert (pop.inbox_items == -1).all()
    assert (pop.inbox_ptr == 0).all()


def test_follower_receiving_more_than_inbox_size_keeps_the_last_ones() -> None:
    # User 0 follows 1..5; user 6 follows 1 only. Inbox of 3.
    g = graph(7, [(0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (6, 1)])
    pop = make_population(7, inbox_size=3)
    sharers = arr(1, 2, 3, 4, 5, 1)
    items = np.array([100, 101, 102, 103, 104, 105], np.int32)
    counts = deliver_shares(pop, g, sharers, items)
    assert counts.tolist() == [2, 1, 1, 1, 1, 2]
    assert sorted(pop.inbox_items[0].tolist()) == [103, 104, 105]
    assert pop.inbox_ptr[0] == 6
    got, who = take_inbox(pop, arr(0, 6), 3)
    assert got.tolist() == [[105, 104, 103], [105, 100, -1]]
    assert who.tolist() == [[1, 5, 4], [1, 1, -1]]


def test_deliveries_over_several_calls_overwrite_the_oldest() -> None:
    g = graph(2, [(0, 1)])
    pop = make_population(2, inbox_size=2)
    for item in (1, 2, 3):
        deliver_shares(pop, g, arr(1), np.array([item], np.int32))
    got, _ = take_inbox(pop, arr(0), 2)
    assert got.tolist() == [[3, 2]]


# -- take_inbox ----------------------------------------------------------------------------


def fill_inbox(pop: Population, user: int, items: list[int], sharers: list[int]) -> None:
    """Deliver ``items`` to ``user`` in order (oldest first) by writing the ring directly."""
    for item, sharer in zip(items, sharers, strict=True):
        slot = pop.inbox_ptr[user] % pop.inbox_size
        pop.inbox_items[user, slot] = item
        pop.inbox_from[user, slot] = sharer
        pop.inbox_ptr[user] += 1


def test_take_inbox_newest_first_with_padding() -> None:
    pop = make_population(3, inbox_size=4)
    fill_inbox(pop, 0, [10, 11, 12], [1, 2, 1])
    fill_inbox(pop, 1, [20, 21, 22, 23, 24, 25], [0, 0, 0, 0, 2, 2])  # wraps around
    items, sharers = take_inbox(pop, arr(0, 1, 2), 2)
    assert items.tolist() == [[12, 11], [25, 24], [-1, -1]]
    assert sharers.tolist() == [[1, 2], [2, 2], [-1, -1]]
    assert items.dtype == np.int32
    assert sharers.dtype == np.int32
    # Taken entries are cleared, the rest stay and come out next time.
    assert sorted(pop.inbox_items[0].tolist()) == [-1, -1, -1, 10]
    items, sharers = take_inbox(pop, arr(0, 1), 4)
    assert items.tolist() == [[10, -1, -1, -1], [23, 22, -1, -1]]
    assert sharers.tolist() == [[1, -1, -1, -1], [0, 0, -1, -1]]
    assert (pop.inbox_items[[0, 1]] == -1).all()
    assert (pop.inbox_from[[0, 1]] == -1).all()
    items, _ = take_inbox(pop, arr(0, 1), 2)
    assert (items == -1).all()


def test_take_inbox_skips_items_in_memory_and_clears_them() -> None:
    pop = make_population(2, inbox_size=4)
    fill_inbox(pop, 0, [10, 11, 12, 13], [1, 1, 1, 1])
    fill_inbox(pop, 1, [10, 11], [0, 0])
    pop.remember(arr(0), np.array([12], np.int32), np.array([1], np.int8))
    pop.remember(arr(0), np.array([10], np.int32), np.array([0], np.int8))
    items, _ = take_inbox(pop, arr(0, 1), 1)
    # User 0 saw 12 and 10: it gets 13; 12 was newer than 11 but is skipped and dropped.
    assert items.tolist() == [[13], [11]]
    assert sorted(pop.inbox_items[0].tolist()) == [-1, -1, -1, 11]
    # Memory of user 0 does not affect user 1.
    assert sorted(pop.inbox_items[1].tolist()) == [-1, -1, -1, 10]


def test_take_inbox_returns_one_copy_of_an_item_shared_twice() -> None:
    pop = make_population(1, inbox_size=5)
    fill_inbox(pop, 0, [7, 8, 7, 9, 7], [1, 2, 3, 4, 5])
    items, sharers = take_inbox(pop, arr(0), 4)
    assert items.tolist() == [[7, 9, 8, -1]]
    assert sharers.tolist() == [[5, 4, 2, -1]]  # the newest copy's sharer
    assert (pop.inbox_items == -1).all()


def test_take_inbox_drops_older_duplicates_even_when_newest_copy_is_left() -> None:
    pop = make_population(1, inbox_size=4)
    fill_inbox(pop, 0, [7, 8, 7, 9], [1, 2, 3, 4])
    items, _ = take_inbox(pop, arr(0), 1)
    assert items.tolist() == [[9]]
    items, sharers = take_inbox(pop, arr(0), 4)
    assert items.tolist() == [[7, 8, -1, -1]]
    assert sharers.tolist() == [[3, 2, -1, -1]]


def test_take_inbox_with_no_room_or_no_users() -> None:
    pop = make_population(2)
    fill_inbox(pop, 0, [1, 2], [1, 1])
    items, sharers = take_inbox(pop, arr(0, 1), 0)
    assert items.shape == (2, 0)
    assert sharers.shape == (2, 0)
    assert sorted(pop.inbox_items[0].tolist()) == [-1, -1, 1, 2]  # untouched
    items, sharers = take_inbox(pop, arr(), 3)
    assert items.shape == (0, 3)
    assert sharers.shape == (0, 3)


def test_take_inbox_shape_when_n_max_exceeds_inbox_size() -> None:
    pop = make_population(2, inbox_size=2)
    fill_inbox(pop, 0, [1, 2], [1, 1])
    items, sharers = take_inbox(pop, arr(0, 1), 3)
    assert items.shape == (2, 3)
    assert sharers.shape == (2, 3)
    assert items.tolist() == [[2, 1, -1], [-1, -1, -1]]


def test_take_inbox_only_touches_the_given_users() -> None:
    pop = make_population(3)
    for u in range(3):
        fill_inbox(pop, u, [u * 10, u * 10 + 1], [0, 0])
    before = pop.inbox_items.copy()
    items, _ = take_inbox(pop, arr(1), 4)
    assert items.tolist() == [[11, 10, -1, -1]]
    assert np.array_equal(pop.inbox_items[[0, 2]], before[[0, 2]])


# -- model-based check of the inbox --------------------------------------------------------


class InboxModel:
    """A plain-Python model of the inbox rings of a population."""

    def __init__(self, n: int, size: int) -> None:
        self.size = size
        self.items = [[-1] * size for _ in range(n)]
        self.sharer = [[-1] * size for _ in range(n)]
        self.ptr = [0] * n

    def deliver(self, g: SocialGraph, sharers: list[int], items: list[int]) -> list[int]:
        followers = g.followers()
        counts = []
        for s, item in zip(sharers, items, strict=True):
            rows = followers.following(s).tolist()
            counts.append(len(rows))
            for f in rows:
                slot = self.ptr[f] % self.size
                self.items[f][slot] = item
                self.sharer[f][slot] = s
                self.ptr[f] += 1
        return counts

    def take(
        self, users: list[int], n_max: int, memory: np.ndarray
    ) -> tuple[list[list[int]], list[list[int]]]:
        out, out_from = [], []
        for u in users:
            got: list[int] = []
            got_from: list[int] = []
            seen_here: set[int] = set()
            for back in range(self.size):
                slot = (self.ptr[u] - 1 - back) % self.size
                item = self.items[u][slot]
                if item < 0:
                    continue
                stale = item in memory[u] or item in seen_here
                seen_here.add(item)
                if stale or len(got) < n_max:
                    if not stale:
                        got.append(item)
                        got_from.append(self.sharer[u][slot])
                    self.items[u][slot] = -1
                    self.sharer[u][slot] = -1
            out.append(got + [-1] * (n_max - len(got)))
            out_from.append(got_from + [-1] * (n_max - len(got_from)))
        return out, out_from


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n=st.integers(2, 6),
    size=st.integers(1, 5),
)
def test_inbox_matches_model(data: st.DataObject, n: int, size: int) -> None:
    pairs = data.draw(
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=12)
    )
    g = graph(n, pairs)
    pop = make_population(n, inbox_size=size, memory_size=3)
    model = InboxModel(n, size)
    item_ids = st.integers(0, 8)
    for _ in range(data.draw(st.integers(1, 6))):
        action = data.draw(st.sampled_from(["deliver", "take", "remember"]))
        if action == "deliver":
            sharers = data.draw(st.lists(st.integers(0, n - 1), max_size=8))
            items = data.draw(st.lists(item_ids, min_size=len(sharers), max_size=len(sharers)))
            counts = deliver_shares(pop, g, np.array(sharers, np.int64), np.array(items, np.int32))
            assert counts.tolist() == model.deliver(g, sharers, items)
        elif action == "take":
            users = data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n))
            n_max = data.draw(st.integers(0, size))
            expected, expected_from = model.take(users, n_max, pop.memory_items)
            got, who = take_inbox(pop, np.array(users, np.int64), n_max)
            assert got.tolist() == expected
            assert who.tolist() == expected_from
        else:
            users = data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n))
            items = data.draw(st.lists(item_ids, min_size=len(users), max_size=len(users)))
            pop.remember(
                np.array(users, np.int64),
                np.array(items, np.int32),
                np.zeros(len(users), np.int8),
            )
        assert pop.inbox_items.tolist() == model.items
        assert pop.inbox_from.tolist() == model.sharer
        assert pop.inbox_ptr.tolist() == model.ptr
