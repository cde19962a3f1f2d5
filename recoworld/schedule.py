"""The one step schedule. Every face of recoworld (CLI, Gymnasium, PettingZoo, Mesa, Ray) drives it.

One tick, in this order (each stage is one method below, named after its number):

1. **activate** — idle users who are ready (``next_active`` reached, not churned) start a session
   at a rate that follows the hour of day (``ClockConfig.diurnal``, ``start_rate``); session ids
   are given in user order.
2. **candidates** — each user in a session gets ``n_candidates`` distinct items: a window of a
   per-tick random permutation of the catalogue at a random offset.
3. **recommend** — the policy returns a slate of ``slate_size`` items per user (validated).
4. **compose feed** — the slate is merged with in-network items from each user's inbox by the
   feed rule (:mod:`recoworld.feed`).
5. **respond** — the user model reviews each feed item by item (:meth:`UserModel.respond`).
6. **apply** — mindsets, memories, item counters, votes and session counters are written;
   shares are delivered to the sharers' followers' inboxes; then the social behaviours
   (:mod:`recoworld.social.engine`): posts, follows, unfollows and mutes, the classic opinion
   model, community notes.
7. **instructions** — users still in session may give a reflective instruction
   (:meth:`UserModel.instruct`); it becomes their standing intent and the text the platform sees.
8. **leave / return** — sessions of users who left end; each such user either churns or is given a
   return time (:meth:`UserModel.plan_return`): retention.
9. **record** — impressions, responses, instructions, ended sessions and social events are staged
   and committed as one tick; the policy receives the tick's :class:`Feedback`.

The clock then advances. Randomness comes from named streams of one seed (:class:`RngTree`), so the
same seed and config give the same trajectory, byte for byte.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from recoworld import _kernels as kernels
from recoworld.config import ScenarioConfig
from recoworld.errors import ConfigError, PolicyError, RecoworldError
from recoworld.feed import compose_feed, deliver_shares, social_capacity, take_inbox
from recoworld.policies import make_policy
from recoworld.policies.base import (
    CandidateWindows,
    Feedback,
    OracleView,
    Recommender,
    RecommendRequest,
    Slates,
    validate_slates,
)
from recoworld.rng import RngTree
from recoworld.social.engine import SocialEngine, SocialEvents
from recoworld.users.base import SOURCE_SOCIAL, Feed, Instructions, Responses, UserModel
from recoworld.users.numeric import NumericUserModel
from recoworld.world.population import NO_TOPIC
from recoworld.world.world import World

__all__ = ["RunResult", "Simulation", "TickOutcome", "TickStats", "drive_ticks"]

logger = logging.getLogger(__name__)

#: Columns of ``kernels.page_records``: per shown item, and per examined one.
_SHOWN = ("session", "user", "item", "rank", "source", "from_user", "score", "propensity")
_EXAMINED = (
    "session",
    "user",
    "item",
    "rank",
    "action",
    "clicked",
    "liked",
    "shared",
    "commented",
    "dwell",
    "rating",
    "left",
)
_STREAMS = ("activation", "candidates", "policy", "users", "instructions", "returns")
#: Stages that draw nothing unless a social behaviour is switched on have a stream of their own.
_SOCIAL_STREAM = "social"


@dataclass(frozen=True, slots=True)
class TickStats:
    """What happened in one tick (for progress displays and quick checks)."""

    tick: int
    active: int
    started: int
    ended: int
    impressions: int
    clicks: int
    instructions: int


@dataclass(frozen=True, slots=True)
class TickOutcome:
    """What :meth:`Simulation.end_tick` did: its stats and, when anyone was in session, the
    composed ``feed``, the ``responses``, the ``instructions`` given and the users who ``ended``
    their session (all row-aligned with ``feed.users``)."""

    stats: TickStats
    feed: Feed | None = None
    responses: Responses | None = None
    instructions: Instructions | None = None
    ended: NDArray[np.int64] | None = None


@dataclass(slots=True)
class Totals:
    """Running totals of a simulation (the run summary without reading the files back)."""

    impressions: int = 0
    examined: int = 0
    clicks: int = 0
    sessions_started: int = 0
    sessions_ended: int = 0
    instructions: int = 0
    shares: int = 0
    posts: int = 0
    follows: int = 0
    unfollows: int = 0
    mutes: int = 0

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class RunResult:
    """The outcome of :meth:`Simulation.run`."""

    run_id: str
    status: str
    ticks: int
    path: str | None
    totals: dict[str, int] = field(default_factory=dict)


def drive_ticks(
    step: Callable[[], TickStats],
    *,
    done: Callable[[], bool],
    finish: Callable[[str], None],
    stop_reason: Callable[[], str | None],
    should_stop: Callable[[], bool] | None = None,
    progress: Callable[[TickStats], None] | None = None,
    on_interrupt: Callable[[], object] | None = None,
) -> str:
    """The run loop every driver of ticks shares (:meth:`Simulation.run`, the sharded world):
    ``step`` until ``done``; ``should_stop`` polled between ticks (then ``on_interrupt``, and the
    status ``interrupted``); a ``stop_reason`` after a tick (e.g. a spent LLM budget) stops
    cleanly as ``budget_exhausted``; ``finish(status)`` always runs, Ctrl-C and errors included.
    Returns the status (``completed`` when ``done``)."""
    status = "failed"
    try:
        while not done():
            if should_stop is not None and should_stop():
                status = "interrupted"
                if on_interrupt is not None:
                    on_interrupt()
                break
            stats = step()
            if progress is not None:
                progress(stats)
            reason = stop_reason()
            if reason is not None:  # stop cleanly, keep every completed tick
                logger.warning("stopping after tick %d: %s", stats.tick, reason)
                status = "budget_exhausted"
                break
        else:
            status = "completed"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        finish(status)
    return status


class Simulation:
    """A world, a user model and a policy, advanced tick by tick through the schedule.

    Args:
        config: the scenario.
        world: a prepared world (default: the synthetic world of ``config``).
        policy: a recommender (default: ``config.policy``; an LLM-backed one built from it
            keeps its replies in the run folder's response cache, ``llm-cache.sqlite``,
            unless its ``llm.cache`` names a file — as LLM users do — so the run replays).
        user_model: the user model (default: numeric users with ``config.users``).
        out_dir: run folder for the trajectory (default: no recording).
        run_id: identifier written into every row (default ``"<name>-seed<seed>"``).
    """

    def __init__(
        self,
        config: ScenarioConfig,
        *,
        world: World | None = None,
        policy: Recommender | None = None,
        user_model: UserModel | None = None,
        out_dir: str | os.PathLike[str] | None = None,
        run_id: str | None = None,
    ) -> None:
        self.config = config
        self.rng = RngTree(config.seed)
        self.world = world if world is not None else World.from_config(config, self.rng)
        if config.feed.n_candidates > self.world.n_items:
            raise ConfigError(
                f"feed.n_candidates: expected at most world.n_items ({self.world.n_items}), "
                f"got {config.feed.n_candidates}"
            )
        if policy is None:
            policy = make_policy(config.policy.name, **config.policy.params)
            if out_dir is not None and hasattr(policy, "replay_timing"):
                from recoworld.llm.cache import CACHE_FILE
                from recoworld.policies._llm import default_cache

                # An LLM-backed policy keeps its replies in the run folder's response cache
                # (unless its llm.cache names one), as LLM users do: the run replays from it.
                default_cache(policy, Path(out_dir) / CACHE_FILE)
        self.policy: Recommender = policy
        if user_model is None:
            user_model = NumericUserModel(config.users)
            if config.llm.enabled:
                from recoworld.llm.cache import CACHE_FILE
                from recoworld.users.llm import LLMUserModel

                cache = Path(out_dir) / CACHE_FILE if out_dir is not None else None
                user_model = LLMUserModel(
                    config, self.world, user_model, self.rng.generator("llm"), cache=cache
                )
        self.user_model: UserModel = user_model
        self.streams = {name: self.rng.generator(name) for name in _STREAMS}
        self.social = SocialEngine(config, self.world, self.rng.generator(_SOCIAL_STREAM))
        self._snapshot_tick: int | None = None  # last tick whose opinions were recorded
        self.run_id = run_id or f"{config.name}-seed{config.seed}"
        self.n_ticks = config.clock.n_ticks
        #: The tick at which :meth:`run` stops by default: the scenario's horizon.
        self.horizon = self.world.clock.tick + self.n_ticks
        self.totals = Totals()
        self._committed = Totals()
        self._next_session = 0
        #: Users this simulation serves (``None``: everyone). A shard of a sharded world owns a
        #: part of the population: only its users start sessions here.
        self.owned: NDArray[np.bool_] | None = None
        #: Session ids are ``session_offset + session_stride · k`` for the k-th session opened
        #: here, so that shards of one world never give the same id twice.
        self.session_offset = 0
        self.session_stride = 1
        self._privileged = bool(getattr(self.policy, "privileged", False))
        self._in_step = False
        self._pending: tuple[int, NDArray[np.int64], RecommendRequest | None] | None = None
        self._feed: Feed | None = None
        diurnal = np.asarray(config.clock.diurnal, dtype=np.float64)
        tick_hours = config.clock.tick_minutes / 60.0
        rate = config.clock.start_rate * diurnal / diurnal.max()
        self._start_prob = 1.0 - np.exp(-rate * tick_hours)
        self.recorder = None
        if out_dir is not None:
            from recoworld.trajectory.manifest import build_manifest
            from recoworld.trajectory.recorder import Recorder

            self.recorder = Recorder(
                out_dir,
                manifest=build_manifest(self),
                flush_rows=config.record.flush_rows,
                compression=config.record.compression,
            )
        self._schedule_first_visits()

    # -- set-up ---------------------------------------------------------------------------
    def _schedule_first_visits(self) -> None:
        pop, clock = self.world.population, self.world.clock
        rng = self.streams["activation"]
        hours = rng.exponential(1.0, size=pop.n_users) * (24.0 / pop.activity)
        pop.next_active[:] = clock.tick + np.floor(hours * clock.ticks_per_hour).astype(np.int64)

    @property
    def path(self) -> str | None:
        return str(self.recorder.path) if self.recorder is not None else None

    # -- the schedule ---------------------------------------------------------------------
    def step(self) -> TickStats:
        """Advance the world by one tick through stages 1–9, with the simulation's own policy."""
        request = self.begin_tick()
        if request is None:
            return self.end_tick(None).stats
        slates = self.policy.recommend(request)
        # The candidate pools ([n, C]) and then the slates are the tick's largest arrays; nothing
        # reads them past recommending and composing, so they go before the users respond.
        request.release_candidates()
        del request
        self.compose(slates)
        del slates
        return self.complete().stats

    def begin_tick(self) -> RecommendRequest | None:
        """Stages 1–2 of a tick: activate users, draw candidates; the request for a policy.

        Returns ``None`` when nobody is in a session this tick. Every face drives the schedule
        through this pair: ``begin_tick``, then a policy's (or an agent's) slates, then
        :meth:`end_tick`.
        """
        self._check_open()
        if self._pending is not None:
            raise RecoworldError("begin_tick called twice; call end_tick(slates) first")
        self._in_step = True
        t = self.world.clock.tick
        started = self._1_activate(t)
        users = np.flatnonzero(self.world.population.in_session).astype(np.int64)
        request = None
        if users.size:
            request = self._3_request(t, users, self._2_candidates(users))
        self._pending = (t, started, request)
        self._in_step = False  # a begun tick waiting for slates is a consistent state
        return request

    def end_tick(self, slates: Slates | None) -> TickOutcome:
        """Stages 3–9 of the tick begun by :meth:`begin_tick`, with ``slates`` for its request."""
        self.compose(slates)
        return self.complete()

    def compose(self, slates: Slates | None) -> Feed | None:
        """Stages 3–4: validate ``slates`` and compose each user's feed (``None``: nobody in
        session). Faces whose users see their feed before responding call :meth:`complete`
        later; in between, :attr:`pending_feed` is what the users are looking at."""
        if self._pending is None:
            raise RecoworldError("compose called without begin_tick")
        self._in_step = True
        if self._feed is not None:
            raise RecoworldError("compose called twice; call complete() first")
        t, _, request = self._pending
        if request is None:
            return None
        if slates is None:
            raise PolicyError(f"tick {t}: {request.n} users are in session; slates are required")
        slates = validate_slates(slates, request, self.policy.name)
        self._feed = self._4_compose_feed(request.users, slates)
        return self._feed

    @property
    def pending_request(self) -> RecommendRequest | None:
        """The request of the tick begun by :meth:`begin_tick` (``None``: none, or nobody in
        session)."""
        return self._pending[2] if self._pending is not None else None

    @property
    def pending_feed(self) -> Feed | None:
        """The feed composed by :meth:`compose` and not yet responded to."""
        return self._feed

    def complete(self) -> TickOutcome:
        """Stages 5–9 of the current tick: users respond to the composed feed, and so on."""
        if self._pending is None:
            raise RecoworldError("complete called without begin_tick")
        self._in_step = True
        t, started, request = self._pending
        feed = self._feed
        if request is not None and feed is None:
            raise RecoworldError("complete called before compose(slates)")
        self._pending = None
        self._feed = None
        if request is not None:
            request.seal()  # the world is about to move on
        self._snapshot_opinions(t - 1, "start")  # where the run starts from
        if request is None or feed is None:
            if self.recorder is not None:
                self._snapshot_opinions(t, "period")
                self.recorder.commit(t)
            self._close_tick()
            return TickOutcome(stats=TickStats(t, 0, int(started.size), 0, 0, 0, 0))
        users = request.users
        del request  # nothing below reads the candidate pools: free them before respond
        responses = self.user_model.respond(self.world, feed, self.streams["users"])
        events = self._6_apply(feed, responses)
        instructions = self._7_instructions(feed, responses)
        ended = users[responses.left]
        session_rows = self._8_leave_return(ended, t, "left")
        self._9_record(t, feed, responses, instructions, session_rows, events)
        self._close_tick()
        stats = TickStats(
            t,
            int(users.size),
            int(started.size),
            int(ended.size),
            int(feed.valid.sum()),
            int(responses.clicked.sum()),
            len(instructions),
        )
        return TickOutcome(
            stats=stats, feed=feed, responses=responses, instructions=instructions, ended=ended
        )

    def cancel_tick(self) -> None:
        """Abandon the tick begun by :meth:`begin_tick`: nobody is served and the clock moves on.

        For faces that replace users mid-tick (an environment reset); nothing is recorded.
        """
        if self._pending is None:
            return
        self._pending = None
        self._feed = None
        if self.recorder is not None:
            self.recorder.discard()
            if self._snapshot_tick == self.world.clock.tick - 1:
                self._snapshot_tick = None  # the start snapshot was discarded with the tick
        self._close_tick()

    def _check_open(self) -> None:
        if self.recorder is not None and self.recorder.closed:
            raise RecoworldError(
                "this simulation has finished and its trajectory is closed; "
                "build a new Simulation to run again"
            )

    def _close_tick(self) -> None:
        self.world.clock.tick += 1
        self._in_step = False
        self._committed = replace(self.totals)

    def start_sessions(self, users: NDArray[np.integer]) -> None:
        """Start a session now for idle ``users`` (a face that controls activation uses this)."""
        users = np.asarray(users, dtype=np.int64)
        pop = self.world.population
        if users.size and (pop.in_session[users].any() or pop.churned[users].any()):
            raise RecoworldError("start_sessions: some users are already in session or churned")
        self._open_sessions(np.sort(users), self.world.clock.tick)

    def _1_activate(self, t: int) -> NDArray[np.int64]:
        pop = self.world.population
        ready = ~pop.in_session & ~pop.churned & (pop.next_active <= t)
        if self.owned is not None:
            ready &= self.owned
        due = np.flatnonzero(ready)
        p = self._start_prob[self.world.clock.hour_of_day(t)]
        draws = self.streams["activation"].random(due.size)
        users = due[draws < p].astype(np.int64)
        self._open_sessions(users, t)
        return users

    def _open_sessions(self, users: NDArray[np.int64], t: int) -> None:
        pop = self.world.population
        if users.size == 0:
            return
        self.user_model.start_session(self.world, users)
        pop.in_session[users] = True
        k = self._next_session + np.arange(users.size)
        pop.session_id[users] = self.session_offset + self.session_stride * k
        self._next_session += int(users.size)
        pop.session_start[users] = t
        for column in (pop.session_pages, pop.session_items, pop.session_clicks):
            column[users] = 0
        pop.session_instructions[users] = 0
        pop.pages_since_instruction[users] = np.iinfo(np.int32).max // 2
        pop.intent_more[users] = NO_TOPIC
        pop.intent_less[users] = NO_TOPIC
        pop.intent_fresh[users] = False
        pop.last_instruction[users] = -1
        pop.n_sessions[users] += 1
        self.totals.sessions_started += int(users.size)

    def _2_candidates(self, users: NDArray[np.int64]) -> CandidateWindows:
        rng, n_items = self.streams["candidates"], self.world.catalog.n_live
        perm = rng.permutation(n_items).astype(np.int32)
        offsets = rng.integers(0, n_items, size=users.size)
        # Row j is perm[offset_j : offset_j + C], wrapping around the end of perm; copied out
        # only if the policy reads request.candidates.
        c = self.config.feed.n_candidates
        ring = np.concatenate([perm, perm[: c - 1]])
        return CandidateWindows(ring, offsets.astype(np.int64, copy=False), c)

    def _3_request(
        self, t: int, users: NDArray[np.int64], candidates: CandidateWindows
    ) -> RecommendRequest:
        pop = self.world.population
        spoke = pop.last_instruction[users] >= 0
        age = np.where(spoke, pop.pages_since_instruction[users], -1).astype(np.int32)
        oracle = None
        if self._privileged:
            c = self.config.users
            oracle = OracleView(
                taste=pop.taste[users],
                boredom=pop.boredom[users] * np.float32(1.0 - c.boredom_decay),
                boredom_weight=np.float32(c.w_boredom) * (0.5 + pop.diversity[users]),
                satisfaction=pop.satisfaction[users],
                intent_more=pop.intent_more[users],
                intent_less=pop.intent_less[users],
                intent_fresh=pop.intent_fresh[users],
                w_taste=c.w_taste,
                w_quality=c.w_quality,
                w_repeat=c.w_repeat,
                opinion=pop.opinion[users],
                w_stance=c.w_stance,
            )
        return RecommendRequest(
            tick=t,
            users=users,
            candidates=candidates,
            k=self.config.feed.slate_size,
            catalog=self.world.catalog,
            history=lambda: pop.recent_items(users),  # computed if the policy reads it
            instructions=lambda: pop.texts_of(users),
            instruction_age=age,
            session_pages=pop.session_pages[users].copy(),
            rng=self.streams["policy"],
            oracle=oracle,
            graph=self.world.graph,
        )

    def preview_feed(self, users: NDArray[np.int64], slates: Slates) -> Feed:
        """The feed ``users`` would see this tick with ``slates``, composed exactly as stage 4
        composes it, without consuming their inboxes: for counterfactual pages (off-policy
        evaluation's on-policy truth), never committed."""
        pop = self.world.population
        saved = (pop.inbox_items[users], pop.inbox_from[users], pop.inbox_ptr[users])
        try:
            return self._4_compose_feed(users, slates)
        finally:
            pop.inbox_items[users], pop.inbox_from[users], pop.inbox_ptr[users] = saved

    def _4_compose_feed(self, users: NDArray[np.int64], slates: Slates) -> Feed:
        items, sharers = take_inbox(
            self.world.population,
            users,
            social_capacity(self.config.feed),
            exclude=slates.items,
        )
        return self.social.demote(compose_feed(users, slates, items, sharers, self.config.feed))

    def _6_apply(self, feed: Feed, r: Responses) -> SocialEvents:
        world, pop, cat = self.world, self.world.population, self.world.catalog
        users = feed.users
        rows = pop.selector(users)
        pop.satisfaction[rows] = r.satisfaction
        pop.fatigue[rows] = r.fatigue
        pop.boredom[rows] = r.boredom
        pop.taste[rows] = r.taste
        pop.opinion[rows] = r.opinion
        social = self.social
        social.anchor(users)
        social.cascade_shares(feed, r)  # classic independent-cascade users decide their shares
        social.count_votes(feed, r)
        shown, examined, clicks = kernels.apply_page(
            users,
            np.ascontiguousarray(feed.items, np.int32),
            feed.valid,
            (r.examined, r.clicked, r.liked, r.shared, r.commented),
            (cat.impressions, cat.clicks, cat.likes, cat.shares, cat.comments),
            (pop.memory_items, pop.memory_reaction, pop.memory_ptr),
            (pop.session_items, pop.session_clicks),
        )
        pop.session_pages[rows] += 1
        pop.pages_since_instruction[rows] += 1
        row, rank = np.nonzero(r.shared)
        sharers = users[row]
        shared_items = feed.items[row, rank]
        recipients = self.deliver(sharers, shared_items)
        events = [
            SocialEvents.of(
                "share",
                sharers,
                item=shared_items,
                parent_user=feed.from_user[row, rank],
                recipients=recipients,
            )
        ]
        t = world.clock.tick
        authors, posts = social.post(t, users)
        if authors.size:
            reach = self.deliver(authors, posts)
            events.append(SocialEvents.of("post", authors, item=posts, recipients=reach))
        follows = social.follow(feed, r)
        unfollows, mutes = social.disagree(feed, r)
        added, removed, muted = world.graph.edit(add=follows, remove=unfollows, mute=mutes)
        n = world.n_users
        for kind, keys in (("follow", added), ("unfollow", removed), ("mute", muted)):
            if keys.size:
                events.append(SocialEvents.of(kind, keys // n, target=keys % n))
        social.opinion_models(t)
        social.community_notes()
        self.totals.impressions += shown
        self.totals.examined += examined
        self.totals.clicks += clicks
        self.totals.shares += int(row.size)
        self.totals.posts += int(authors.size)
        self.totals.follows += int(added.size)
        self.totals.unfollows += int(removed.size)
        self.totals.mutes += int(muted.size)
        return SocialEvents.concat(events)

    def deliver(self, sharers: NDArray[np.int64], items: NDArray[np.int32]) -> NDArray[np.int64]:
        """Stage 6: put each shared or posted ``items[j]`` into the inboxes of the followers of
        ``sharers[j]`` (:func:`recoworld.feed.deliver_shares`); returns the recipients of each.
        A shard of a sharded world overrides it to route followers it does not own."""
        return deliver_shares(self.world.population, self.world.graph, sharers, items)

    def _7_instructions(self, feed: Feed, r: Responses) -> Instructions:
        pop = self.world.population
        staying = ~r.left
        instr = self.user_model.instruct(
            self.world, feed.users[staying], feed.items[staying], self.streams["instructions"]
        )
        if len(instr):
            who = instr.users
            pop.intent_more[who] = instr.more
            pop.intent_less[who] = instr.less
            pop.intent_fresh[who] = np.asarray(instr.constraint, dtype=object) == "fresh"
            pop.session_instructions[who] += 1
            pop.pages_since_instruction[who] = 0
            ids = instr.text_ids
            pop.last_instruction[who] = pop.intern_texts(instr.text) if ids is None else ids
            self.totals.instructions += len(instr)
        return instr

    def _8_leave_return(self, ended: NDArray[np.int64], t: int, reason: str) -> dict[str, Any]:
        pop = self.world.population
        rows = self.session_rows(ended, t, reason)
        if ended.size == 0:
            return rows
        plan = self.user_model.plan_return(self.world, ended, self.streams["returns"])
        pop.in_session[ended] = False
        pop.last_session_end[ended] = t
        pop.churned[ended[~plan.returns]] = True
        pop.next_active[ended] = t + plan.gap_ticks
        rows["churned"] = ~plan.returns
        self.totals.sessions_ended += int(ended.size)
        return rows

    def session_rows(self, users: NDArray[np.int64], t: int, reason: str) -> dict[str, Any]:
        """``sessions`` rows for ``users`` whose session ends at tick ``t`` with ``reason``
        (``left``, ``horizon``, ``interrupted``, ``failed``), for a face that closes sessions."""
        from recoworld.trajectory.schema import END_REASONS

        pop = self.world.population
        return {
            "run": self.run_id,
            "session": pop.session_id[users],
            "user": users,
            "start_tick": pop.session_start[users],
            "end_tick": np.full(users.size, t, np.int32),
            "pages": pop.session_pages[users],
            "items": pop.session_items[users],
            "clicks": pop.session_clicks[users],
            "instructions": pop.session_instructions[users],
            "end_reason": np.full(users.size, END_REASONS.index(reason), np.int8),
            "satisfaction_end": pop.satisfaction[users],
            "churned": np.full(users.size, np.nan, np.float32),
        }

    def _9_record(
        self,
        t: int,
        feed: Feed,
        r: Responses,
        instr: Instructions,
        sessions: dict[str, Any],
        events: SocialEvents,
    ) -> None:
        pop = self.world.population
        users = feed.users
        valid = feed.valid  # boolean-mask gathers keep np.nonzero's (row, rank) order
        wants_feedback = getattr(self.policy, "wants_feedback", True)
        # Rows the user model and the policy keep for the trajectory (e.g. their llm_calls).
        drains = (getattr(owner, "drain_records", None) for owner in (self.user_model, self.policy))
        extra = [drain() for drain in drains if drain is not None]
        if self.recorder is None and not wants_feedback:
            return
        if self.recorder is not None:
            rec = self.recorder
            # One compiled pass over the pages instead of a boolean-mask gather per column.
            shown, examined = kernels.page_records(
                users,
                pop.session_id,
                (feed.items, feed.source, feed.from_user, feed.score, feed.propensity),
                (r.examined, r.clicked, r.liked, r.shared, r.commented),
                (r.dwell, r.rating),
                r.left,
                SOURCE_SOCIAL,
            )
            # One column of t for impressions and responses (Arrow keeps views of it, not copies).
            tick = np.full(shown[0].size, t, np.int32)
            rec.stage(
                "impressions",
                {
                    "run": self.run_id,
                    "tick": tick,
                    **dict(zip(_SHOWN, shown, strict=True)),
                    "policy": self.policy.name,
                },
            )
            rec.stage(
                "responses",
                {
                    "run": self.run_id,
                    "tick": tick[: examined[0].size],
                    **dict(zip(_EXAMINED, examined, strict=True)),
                },
            )
            if len(instr):
                from recoworld.trajectory.recorder import LabelLists

                names = self.world.catalog.topic_names
                rec.stage(
                    "instructions",
                    {
                        "run": self.run_id,
                        "tick": np.full(len(instr), t, np.int32),
                        "session": pop.session_id[instr.users],
                        "user": instr.users,
                        "page": pop.session_pages[instr.users],
                        "text": instr.text,
                        "intent_more": LabelLists(instr.more, names),
                        "intent_less": LabelLists(instr.less, names),
                        "constraint": [c or None for c in instr.constraint],
                        "reason": instr.reason,
                        "risk": instr.risk,
                    },
                )
            rec.stage("sessions", sessions)
            rec.stage(
                "social",
                {
                    "run": self.run_id,
                    "tick": np.full(len(events), t, np.int32),
                    "user": events.user,
                    "kind": events.kind,
                    "item": events.item,
                    "parent_user": events.parent_user,
                    "target": events.target,
                    "recipients": events.recipients,
                },
            )
            self._snapshot_opinions(t, "period")
            for table, columns in (item for records in extra for item in records.items()):
                n_rows = len(next(iter(columns.values())))
                rec.stage(
                    table, {"run": self.run_id, **columns, "tick": np.full(n_rows, t, np.int32)}
                )
            rec.commit(t)
        if not wants_feedback:
            return
        row, rank = np.nonzero(valid)
        self.policy.update(
            Feedback(
                tick=t,
                users=users[row],
                items=feed.items[valid],
                ranks=rank.astype(np.int16),
                source=feed.source[valid],
                examined=r.examined[valid],
                clicked=r.clicked[valid],
                liked=r.liked[valid],
                shared=r.shared[valid],
                dwell=r.dwell[valid],
                instruction_users=instr.users,
                instruction_texts=tuple(instr.text),
                left_users=users[r.left],
            )
        )

    def _snapshot_opinions(self, t: int, when: str) -> None:
        """Stage every user's opinion as of the end of tick ``t`` (``opinions`` table): at the
        ``start`` of the run (``t`` = the tick before the first), every
        ``record.opinion_every`` ticks (``period``) and at the ``end``."""
        if self.recorder is None or self._snapshot_tick == t:
            return
        if when == "start" and self._snapshot_tick is not None:
            return
        if when == "period":
            period = self.config.record.opinion_every
            if period <= 0 or (t + 1) % period:
                return
        pop = self.world.population
        self.recorder.stage(
            "opinions",
            {
                "run": self.run_id,
                "tick": np.full(pop.n_users, t, np.int32),
                "user": np.arange(pop.n_users, dtype=np.int32),
                "opinion": pop.opinion.copy(),  # Arrow would keep a view of the live column
            },
        )
        self._snapshot_tick = t

    # -- running --------------------------------------------------------------------------
    def run(
        self,
        n_ticks: int | None = None,
        *,
        progress: Callable[[TickStats], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> RunResult:
        """Run ``n_ticks`` ticks (default: to the scenario's horizon — what is left of it after
        a resume), then close the trajectory.

        ``should_stop`` is polled between ticks (e.g. set by a signal handler): the run then stops
        cleanly as ``interrupted`` and, when it records, leaves a checkpoint in its run folder
        (``recoworld resume`` continues it). With ``record.checkpoint_every`` set, a checkpoint
        is also written every that many ticks. On any exception — Ctrl-C included — every
        completed tick is still written before the exception propagates. A simulation runs
        once: afterwards its trajectory is closed (open sessions recorded as ended at the
        horizon) and ``step`` and ``run`` raise. To drive ticks one by one, call :meth:`step`,
        then :meth:`finish`.
        """
        self._check_open()
        clock = self.world.clock
        end = self.horizon if n_ticks is None else clock.tick + n_ticks
        every = self.config.record.checkpoint_every if self.recorder is not None else 0

        def on_tick(stats: TickStats) -> None:
            if progress is not None:
                progress(stats)
            if every and (stats.tick + 1) % every == 0 and clock.tick < end:
                self.checkpoint()

        status = drive_ticks(
            self.step,
            done=lambda: clock.tick >= end,
            finish=self.finish,
            stop_reason=lambda: self.stop_reason,
            should_stop=should_stop,
            progress=on_tick,
            on_interrupt=self.checkpoint if self.recorder is not None else None,
        )
        return self.result(status)

    @property
    def stop_reason(self) -> str | None:
        """Why the run must stop after this tick (e.g. an LLM budget spent by the user model or
        the policy), or ``None``."""
        return getattr(self.user_model, "stop_reason", None) or getattr(
            self.policy, "stop_reason", None
        )

    def checkpoint(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Save everything the next tick needs (world, every random stream, the policy, the user
        model, counters, where the trajectory stands) to ``path`` — by default
        ``checkpoint.pkl`` in the run folder — between ticks; :meth:`resume` continues it byte
        for byte (:mod:`recoworld.checkpoint`)."""
        from recoworld.checkpoint import save_checkpoint

        return save_checkpoint(self, path)

    @classmethod
    def resume(
        cls, path: str | os.PathLike[str], *, out_dir: str | os.PathLike[str] | None = None
    ) -> Simulation:
        """The simulation saved by :meth:`checkpoint` (a checkpoint file, or a run folder holding
        ``checkpoint.pkl``), continuing in its run folder (or ``out_dir``)."""
        from recoworld.checkpoint import load_checkpoint

        return load_checkpoint(path, out_dir=out_dir)

    def finish(self, status: str = "completed") -> None:
        """Close the open sessions (``horizon`` or ``interrupted``), the trajectory and the user
        model's and the policy's connections (their ``close()``, e.g. an LLM client)."""
        for owner in (self.user_model, self.policy):  # e.g. LLM clients
            close = getattr(owner, "close", None)
            if close is not None:
                close()
        if self.recorder is None or self.recorder.closed:
            return
        if self._in_step:  # torn tick: keep what was committed, record nothing half-done
            self.recorder.discard()
            totals = self._committed
        else:
            # A begun tick nobody acted on yet is dropped; sessions end at the last completed one.
            self._pending = None
            self._feed = None
            pop = self.world.population
            last_tick = self.world.clock.tick - 1
            started_before = pop.session_start <= last_tick
            open_users = np.flatnonzero(pop.in_session & started_before).astype(np.int64)
            unseen = int((pop.in_session & ~started_before).sum())  # begun by the dropped tick
            reason = {"completed": "horizon", "failed": "failed"}.get(status, "interrupted")
            self.recorder.stage("sessions", self.session_rows(open_users, last_tick, reason))
            self._snapshot_opinions(last_tick, "end")
            self.recorder.commit(last_tick)
            totals = replace(self.totals, sessions_started=self.totals.sessions_started - unseen)
        self.recorder.close(status, totals=totals.as_dict())

    def result(self, status: str) -> RunResult:
        return RunResult(
            run_id=self.run_id,
            status=status,
            ticks=self.world.clock.tick,
            path=self.path,
            totals=self.totals.as_dict(),
        )
