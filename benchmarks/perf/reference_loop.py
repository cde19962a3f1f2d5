"""A per-user-object reference loop (RecSim / OASIS style), written for the scale benchmark.

Each user is a Python object with its own state — a numpy taste vector, per-topic boredom, a
memory of recently seen items, an inbox of items shared by followees — and one tick is a Python
loop over the users in session, in the manner of agent-per-object simulators (RecSim's user
model, OASIS's agents): the most-popular policy scores the user's candidates one by one (from
the catalogue's clicks as of the start of the tick, as recoworld's does) and
keeps the best ``slate_size`` (a stable sort); the page gets in-network items from the
inbox; the user reviews it item by item with Python's ``random`` — the numeric user model of
:mod:`recoworld.users.numeric` (utility ``w_taste·cos + w_quality·(quality − ½) − boredom −
repeat + social proof + friend``, a logit click damped by position attention, like / share /
comment, satisfaction, fatigue, boredom, taste drift and opinion pull, the leave hazard) — and
updates its own state; a share is appended to each follower's inbox; every impression and
response is appended to Python lists, and the lists are written to Parquet (the same columns as
recoworld's ``impressions`` and ``responses`` tables) at the end.

Written to be fair, not slow: objects with ``__slots__``, item attributes as Python lists (no
numpy scalars in the inner loop), one numpy product per page for the taste cosines (RecSim uses
numpy per user), memory as a deque plus a counter dict (O(1) "seen" checks), records as tuples.
It leaves out what recoworld does and it does not — reflective instructions, votes, the social
behaviours beyond shares — so it does less work per user-step than recoworld: the speed ratio it
gives is conservative. Same world (recoworld's synthetic generator, same seed), same slate size
and candidate count, same activation and return rules.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

#: Source codes of recoworld's feed (recommended, in-network).
_REC, _SOCIAL = 0, 1


class User:
    """One simulated user: traits, mindset, session state, memory and inbox."""

    __slots__ = (
        "activity",
        "boredom",
        "boredom_weight",
        "churned",
        "conformity",
        "fatigue",
        "followers",
        "in_session",
        "inbox",
        "last_end",
        "memory",
        "n_sessions",
        "next_active",
        "opinion",
        "patience",
        "satisfaction",
        "seen",
        "session",
        "sociability",
        "start",
        "taste",
    )

    def __init__(self, taste: np.ndarray, traits: dict[str, float], config: Any) -> None:
        c = config.users
        self.taste = taste
        self.activity = traits["activity"]
        self.conformity = traits["conformity"]
        self.patience = traits["patience"]
        self.sociability = traits["sociability"]
        self.opinion = traits["opinion"]
        self.boredom_weight = c.w_boredom * (0.5 + traits["diversity"])
        self.boredom = [0.0] * len(config.world.topics)
        self.satisfaction = 0.0
        self.fatigue = 0.0
        self.in_session = False
        self.churned = False
        self.next_active = 0
        self.last_end = -1
        self.n_sessions = 0
        self.session = -1
        self.start = -1
        self.memory: deque[int] = deque()
        self.seen: dict[int, int] = {}
        self.inbox: deque[tuple[int, int]] = deque(maxlen=config.feed.inbox_size)
        self.followers: list[int] = []

    def remember(self, item: int, size: int) -> None:
        if len(self.memory) == size:
            old = self.memory.popleft()
            left = self.seen[old] - 1
            if left:
                self.seen[old] = left
            else:
                del self.seen[old]
        self.memory.append(item)
        self.seen[item] = self.seen.get(item, 0) + 1


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x > -700 else 0.0


class ReferenceSimulation:
    """The per-user loop over recoworld's synthetic world for ``config`` (same seed)."""

    def __init__(self, config: Any) -> None:
        from recoworld.world.world import World

        self.config = config
        world = World.synthetic(config)
        cat, pop, graph = world.catalog, world.population, world.graph
        self.n_items = cat.n_items
        self.embedding = cat.embedding.astype(np.float64)
        self.topic = cat.topic.tolist()
        self.quality = cat.quality.tolist()
        self.stance = cat.stance.tolist()
        self.clicks = [0] * self.n_items
        self.likes = [0] * self.n_items
        self.shares = [0] * self.n_items
        self.comments = [0] * self.n_items
        traits = {
            name: getattr(pop, name).tolist()
            for name in ("activity", "conformity", "diversity", "patience", "sociability")
        }
        traits["opinion"] = pop.opinion.tolist()
        taste = pop.taste.astype(np.float64)
        self.users = [
            User(taste[u].copy(), {k: v[u] for k, v in traits.items()}, config)
            for u in range(pop.n_users)
        ]
        followers = graph.followers()
        for u, user in enumerate(self.users):
            user.followers = followers.indices[
                followers.indptr[u] : followers.indptr[u + 1]
            ].tolist()
        self.tick = 0
        self.tick_minutes = config.clock.tick_minutes
        self.start_hour = config.clock.start_hour
        diurnal = config.clock.diurnal
        top = max(diurnal)
        hours = config.clock.tick_minutes / 60.0
        self.start_prob = [
            1.0 - math.exp(-config.clock.start_rate * w / top * hours) for w in diurnal
        ]
        self.rng = random.Random(config.seed)
        c = config.users
        #: The model's constants, unpacked into locals per page (no attribute lookups per item).
        self.params = (
            c.w_taste, c.w_quality, c.w_repeat, c.w_social, c.w_friend, c.no_click_utility,
            c.temperature, c.attention, c.satisfaction_rate, c.satisfaction_reference,
            c.click_bonus, c.fatigue_per_item, c.boredom_per_item, 1.0 - c.boredom_decay,
            c.drift_rate, c.opinion_rate, c.opinion_epsilon, c.leave_threshold,
            c.leave_temperature, c.leave_hazard, c.like_rate, c.share_rate, c.comment_rate,
            c.dwell_seconds, c.dwell_sigma, c.memory_size,
        )  # fmt: skip
        for user in self.users:  # first visits: exponential hours with mean 24 / activity
            first = self.rng.expovariate(1.0) * 24.0 / user.activity
            user.next_active = math.floor(first * 60.0 / self.tick_minutes)
        self.next_session = 0
        self.impressions: list[tuple] = []
        self.responses: list[tuple] = []
        self.sessions: list[tuple] = []

    # -- one tick ---------------------------------------------------------------------------
    def step(self) -> int:
        """One tick; returns the number of users served (user-steps)."""
        t, rng, c = self.tick, self.rng, self.config
        hour = (self.start_hour * 60 + t * self.tick_minutes) // 60 % 24
        p_start = self.start_prob[hour]
        for user in self.users:  # activation
            if (
                not user.in_session
                and not user.churned
                and user.next_active <= t
                and rng.random() < p_start
            ):
                self._start_session(user, t)
        n_cand, k = c.feed.n_candidates, c.feed.slate_size
        engagement = max(map(sum, zip(self.likes, self.shares, self.comments, strict=True)))
        self.top_proof = math.log1p(engagement) if engagement > 0 else 1.0
        popularity = [math.log1p(x) for x in self.clicks]  # log1p(clicks) as of now
        columns = range(n_cand)
        perm = list(range(self.n_items))
        rng.shuffle(perm)
        ring = perm + perm[: n_cand - 1]
        served = 0
        for u, user in enumerate(self.users):
            if not user.in_session:
                continue
            served += 1
            offset = rng.randrange(self.n_items)
            candidates = ring[offset : offset + n_cand]
            # The policy scores the candidates one by one, keeps the k best (ties: first).
            scores = [popularity[item] for item in candidates]
            best = sorted(columns, key=scores.__getitem__, reverse=True)[:k]  # ties: first
            slate = [(candidates[j], scores[j]) for j in best]
            page = self._compose(user, slate)
            self._review(u, user, page, t)
        self.tick += 1
        return served

    def _start_session(self, user: User, t: int) -> None:
        c = self.config.users
        if user.n_sessions == 0:
            user.satisfaction = c.initial_satisfaction
        else:
            start = c.initial_satisfaction
            user.satisfaction = start + c.satisfaction_carryover * (user.satisfaction - start)
        user.fatigue = 0.0
        if user.last_end >= 0:
            gap_hours = (t - user.last_end) * self.tick_minutes / 60.0
            recovery = math.exp(-max(gap_hours, 0.0) / c.boredom_recovery_hours)
            user.boredom = [b * recovery for b in user.boredom]
        user.in_session = True
        user.session = self.next_session
        self.next_session += 1
        user.n_sessions += 1
        user.start = t

    def _compose(self, user: User, slate: list[tuple[int, float]]) -> list[tuple]:
        """The page: (item, source, from_user, score) — one in-network item after every
        ``social_every`` recommended ones, newest unseen inbox items first."""
        f = self.config.feed
        cap = min(f.social_slots, f.slate_size // f.social_every)
        in_slate = {item for item, _ in slate}
        social: list[tuple[int, int]] = []
        taken: set[int] = set()
        for item, sharer in reversed(user.inbox):
            if len(social) == cap:
                break
            if item in user.seen or item in taken or item in in_slate:
                continue
            taken.add(item)
            social.append((item, sharer))
        user.inbox.clear()
        page: list[tuple] = []
        s = 0
        for j, (item, score) in enumerate(slate):
            page.append((item, _REC, -1, score))
            if (j + 1) % f.social_every == 0 and s < len(social):
                page.append((social[s][0], _SOCIAL, social[s][1], math.nan))
                s += 1
        return page

    def _review(self, u: int, user: User, page: list[tuple], t: int) -> None:
        (w_taste, w_quality, w_repeat, w_social, w_friend, no_click, temperature, attention_decay,
         sat_rate, sat_ref, click_bonus, fatigue_step, boredom_step, boredom_keep, drift,
         opinion_rate, opinion_eps, leave_threshold, leave_temperature, leave_hazard, like_rate,
         share_rate, comment_rate, dwell_seconds, dwell_sigma, memory_size,
         ) = self.params  # fmt: skip
        rand, gauss, exp, log1p = self.rng.random, self.rng.gauss, math.exp, math.log1p
        topic_of, quality, stance = self.topic, self.quality, self.stance
        clicks, likes, shares, comments = self.clicks, self.likes, self.shares, self.comments
        impressions, responses = self.impressions.append, self.responses.append
        items = [entry[0] for entry in page]
        cos = (self.embedding[items] @ user.taste).tolist()  # one numpy product per page
        boredom = user.boredom = [b * boredom_keep for b in user.boredom]
        sat, fat, seen = user.satisfaction, user.fatigue, user.seen
        threshold = leave_threshold * (1.5 - user.patience)
        social_weight = w_social * user.conformity
        friend_weight = w_friend * user.sociability
        boredom_weight, sociability = user.boredom_weight, user.sociability
        top_proof = self.top_proof
        session, left = user.session, False
        attention = 1.0
        for rank, (item, source, sharer, score) in enumerate(page):
            impressions((t, session, u, item, rank, source, sharer, score, 1.0))
            if left:
                continue
            topic = topic_of[item]
            repeat = item in seen or item in items[:rank]
            proof = log1p(likes[item] + shares[item] + comments[item]) / top_proof
            static = (
                w_quality * (quality[item] - 0.5)
                - w_repeat * repeat
                + social_weight * proof
                + friend_weight * (source == _SOCIAL)
            )
            z = w_taste * cos[rank] - boredom_weight * boredom[topic]
            x = (z + static - no_click) / temperature
            match = 1.0 / (1.0 + exp(-x)) if x > -700.0 else 0.0
            click = rand() < match * attention
            attention *= attention_decay
            sat += sat_rate * (match - sat_ref)
            fat += fatigue_step
            boredom[topic] += boredom_step
            liked = shared = commented = False
            dwell, rating = 0.0, math.nan
            if click:
                sat += click_bonus
                liked = rand() < like_rate * match
                shared = rand() < share_rate * sociability * match
                commented = rand() < comment_rate * sociability * match
                dwell = dwell_seconds * exp(dwell_sigma * gauss(0.0, 1.0)) * (0.5 + match)
                rating = min(max(round(1.0 + 4.0 * match + 0.6 * gauss(0.0, 1.0)), 1), 5)
                clicks[item] += 1
                if liked:
                    likes[item] += 1
                if shared:
                    shares[item] += 1
                    users = self.users
                    for follower in user.followers:
                        users[follower].inbox.append((item, u))
                if commented:
                    comments[item] += 1
                taste = user.taste  # drift towards the clicked item, renormalized (numpy)
                taste += drift * (self.embedding[item] - taste)
                taste /= np.sqrt(taste @ taste)
                gap = stance[item] - user.opinion
                if abs(gap) < opinion_eps:
                    user.opinion += opinion_rate * gap
            sat = min(max(sat, 0.0), 1.5)
            user.remember(item, memory_size)
            x = (threshold - (sat - fat)) / leave_temperature
            risk = 1.0 / (1.0 + exp(-x)) if x > -700.0 else 0.0
            left = rand() < leave_hazard * risk
            action = 4 if commented else 3 if shared else 2 if liked else 1 if click else 0
            responses(
                (t, session, u, item, rank, action, click, liked, shared, commented, dwell,
                 rating, left)
            )  # fmt: skip
        user.satisfaction, user.fatigue = sat, fat
        if left:
            self._end_session(u, user, t)

    def _end_session(self, u: int, user: User, t: int) -> None:
        c, rng = self.config.users, self.rng
        quality = min(max(user.satisfaction, 0.0), 1.0) - 0.5
        returns = rng.random() < _sigmoid(c.return_bias + c.return_slope * quality)
        mean_hours = 24.0 / user.activity * math.exp(-c.gap_slope * quality)
        gap = rng.expovariate(1.0) * mean_hours * 60.0 / self.tick_minutes
        user.in_session = False
        user.last_end = t
        user.churned = not returns
        user.next_active = t + max(1, math.ceil(gap))
        self.sessions.append((user.session, u, user.start, t, user.satisfaction, not returns))

    # -- the end ----------------------------------------------------------------------------
    def write(self, out: Path) -> None:
        """Write the recorded lists as Parquet tables (zstd, as recoworld writes)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        out.mkdir(parents=True, exist_ok=True)
        tables = {
            "impressions": (
                self.impressions,
                [
                    ("tick", pa.int32()),
                    ("session", pa.int64()),
                    ("user", pa.int32()),
                    ("item", pa.int32()),
                    ("rank", pa.int16()),
                    ("source", pa.int8()),
                    ("from_user", pa.int32()),
                    ("score", pa.float32()),
                    ("propensity", pa.float32()),
                ],
            ),
            "responses": (
                self.responses,
                [
                    ("tick", pa.int32()),
                    ("session", pa.int64()),
                    ("user", pa.int32()),
                    ("item", pa.int32()),
                    ("rank", pa.int16()),
                    ("action", pa.int8()),
                    ("clicked", pa.bool_()),
                    ("liked", pa.bool_()),
                    ("shared", pa.bool_()),
                    ("commented", pa.bool_()),
                    ("dwell", pa.float32()),
                    ("rating", pa.float32()),
                    ("left", pa.bool_()),
                ],
            ),
            "sessions": (
                self.sessions,
                [
                    ("session", pa.int64()),
                    ("user", pa.int32()),
                    ("start_tick", pa.int32()),
                    ("end_tick", pa.int32()),
                    ("satisfaction_end", pa.float32()),
                    ("churned", pa.bool_()),
                ],
            ),
        }
        for name, (rows, fields) in tables.items():
            # Rows of numbers -> one float64 matrix (exact for these ids) -> typed columns.
            matrix = np.array(rows, dtype=np.float64).reshape(len(rows), len(fields))
            arrays = []
            for j, (_, typ) in enumerate(fields):
                col = matrix[:, j]
                nan = np.isnan(col)
                values = np.where(nan, 0, col).astype(typ.to_pandas_dtype())
                arrays.append(pa.array(values, type=typ, mask=nan if nan.any() else None))
            table = pa.Table.from_arrays(arrays, names=[f for f, _ in fields])
            pq.write_table(table, out / f"{name}.parquet", compression="zstd")
        self.impressions, self.responses, self.sessions = [], [], []


def run(config: Any, warmup_ticks: int, ticks: int, out: Path) -> dict[str, Any]:
    """Build, run ``warmup_ticks`` untimed ticks (their records dropped), then ``ticks`` timed
    ones and the final write; the figures of the timed part."""
    import pyarrow.parquet  # noqa: F401  (imported before the clock starts, as recoworld's is)

    start = time.perf_counter()
    sim = ReferenceSimulation(config)
    build_s = time.perf_counter() - start
    for _ in range(warmup_ticks):
        sim.step()
    sim.impressions, sim.responses, sim.sessions = [], [], []
    tick_s, steps = [], []
    for _ in range(ticks):
        start = time.perf_counter()
        steps.append(sim.step())
        tick_s.append(time.perf_counter() - start)
    rows = len(sim.impressions)
    start = time.perf_counter()
    sim.write(out)
    write_s = time.perf_counter() - start
    return {
        "build_s": build_s,
        "tick_s": tick_s,
        "pages": steps,
        "impressions": rows,
        "write_s": write_s,
    }
