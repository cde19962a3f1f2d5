"""A sharded world: the population's work partitioned over Ray actors, one schedule per shard.

:class:`ShardedSimulation` drives ``n_shards`` shards (:class:`ShardSimulation`, a
:class:`~recoworld.schedule.Simulation`), each in a Ray actor of its own. Every shard holds the
whole world — catalogue, population, follow graph, built from the same seed, so the replicas
start equal — and *owns* one part of the population (:mod:`recoworld.distributed.partition`,
graph-aware by default): only its users start sessions there, so each shard serves ``1/n`` of
the traffic. In this first version the work is partitioned, not the memory: every process holds
a full replica.

One tick: every shard runs the schedule's stages 1–9 for its own users at once; then the
coordinator gathers what each shard changed that others read and hands it out before the next
tick (one exchange per tick, sent with the next tick's call):

- **shares** — a shard does not write inboxes during its tick: its :meth:`ShardSimulation.
  deliver` finds the recipients of each share (the sharer's followers, without those who muted
  them; the count is returned as a single process returns it) and queues them. The coordinator
  orders every shard's deliveries as one process makes them (shares, then posts; by sharer, then
  rank) and sends each shard those for its users, who find them in their inboxes from the next
  tick on. A single process also shows a share from the next tick on (pages are composed before
  anyone responds), so this is no delay;
- **catalogue counters** — each shard's increments of ``impressions``, ``clicks``, ``likes``,
  ``shares``, ``comments`` and ``votes`` are added to every other replica, so popularity, social
  proof and herding are global; community notes are then re-checked on the global counts;
- **follow graph** — the follows, unfollows and mutes a shard applied (always of its own users)
  are applied to every other replica, so the replicas stay equal;
- **opinions and tastes** — when other shards read them (follow acceptance reads the target's
  taste and opinion, a classic opinion model every neighbour's opinion), the rows of its own
  users a shard changed are copied to the other replicas; what a shard wrote into other users'
  rows (a classic opinion model updates everyone) is put back, the owner's value being the one
  that counts;
- **policy feedback** — each replica of the policy also learns from the other shards'
  :class:`~recoworld.policies.base.Feedback`, so a learning policy sees all the traffic
  (``share_feedback=False``: each learns from its shard only).

Within a tick a shard reads the others' users as they were at the end of the previous tick
(follow acceptance reads the target's taste and opinion, a classic opinion model its neighbours'
opinions): the one approximation besides the random streams.

**Determinism.** Shard ``k`` of ``n`` draws its per-tick streams from the run's seed, its index
and ``n``, and the exchange is merged in a fixed order, so the same seed and shard count give the
same files whatever Ray schedules. World generation, first visits and the choice of who follows
a classic model come from the run's own streams, as in a single process. One shard uses exactly
the single-process streams and path: ``n_shards=1`` is byte-identical to :class:`Simulation`.

**Files.** ``out_dir/shard-<k>/`` is shard ``k``'s run folder. ``out_dir/manifest.json`` makes
``out_dir`` itself a run folder: its tables list every shard's parts (rows grouped by shard),
except ``opinions``, merged into ``out_dir/opinions/`` from each user's owner; ``partition.
parquet`` holds each user's shard. :func:`recoworld.trajectory.read_run` and
:func:`recoworld.metrics.summary.summarize_run` read ``out_dir`` as one run;
:func:`read_combined_table` also sorts the rows by tick and user.

**Limits of this version.** Posts (``social.post_rate > 0``) and LLM users are refused with more
than one shard (new catalogue rows would need ids agreed between shards; LLM users are served
from one process through the multi-endpoint client); the faces (Gymnasium, PettingZoo, Mesa)
and checkpoints drive single-process simulations only.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from recoworld.config import ScenarioConfig
from recoworld.distributed.partition import PARTITIONS, PartitionStats, partition_stats
from recoworld.distributed.partition import partition_users as _partition_users
from recoworld.errors import ConfigError, RecoworldError
from recoworld.policies.base import Feedback, Recommender, RecommendRequest, Slates
from recoworld.rng import RngTree
from recoworld.schedule import RunResult, Simulation, TickStats, drive_ticks
from recoworld.world.catalog import COUNTERS
from recoworld.world.graph import SocialGraph
from recoworld.world.world import World

__all__ = [
    "PARTITION_FILE",
    "ShardSimulation",
    "ShardedSimulation",
    "read_combined_table",
]

#: Each user's shard, in a sharded run's folder.
PARTITION_FILE = "partition.parquet"

_I64 = NDArray[np.int64]
_EMPTY = np.zeros(0, np.int64)


# -- what crosses shards ------------------------------------------------------------------------
@dataclass(slots=True)
class Outbox:
    """What one shard changed in a tick that the other replicas need (module docstring)."""

    shard: int
    #: Deliveries: call (0 shares, 1 posts), sharer, position in the call, recipient, item.
    phase: NDArray[np.int8] = field(default_factory=lambda: np.zeros(0, np.int8))
    sharer: _I64 = field(default_factory=lambda: _EMPTY)
    position: _I64 = field(default_factory=lambda: _EMPTY)
    recipient: _I64 = field(default_factory=lambda: _EMPTY)
    item: NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, np.int32))
    #: Catalogue counter increments (``COUNTERS`` order) of items ``counter_rows``.
    counter_rows: _I64 = field(default_factory=lambda: _EMPTY)
    counter_deltas: _I64 = field(default_factory=lambda: np.zeros((len(COUNTERS), 0), np.int64))
    #: Follow graph edits applied, as keys ``follower * n_users + followee``.
    added: _I64 = field(default_factory=lambda: _EMPTY)
    removed: _I64 = field(default_factory=lambda: _EMPTY)
    muted: _I64 = field(default_factory=lambda: _EMPTY)
    #: Rows of its own users whose opinion or taste changed, with their new values.
    opinion_users: _I64 = field(default_factory=lambda: _EMPTY)
    opinion: NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))
    taste_users: _I64 = field(default_factory=lambda: _EMPTY)
    taste: NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    #: The feedback its policy received this tick (``None``: none to share).
    feedback: Feedback | None = None

    def without_deliveries(self) -> Outbox:
        """The part every other shard receives (deliveries go only to the recipients' owners)."""
        return dataclasses.replace(
            self,
            phase=np.zeros(0, np.int8),
            sharer=_EMPTY,
            position=_EMPTY,
            recipient=_EMPTY,
            item=np.zeros(0, np.int32),
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """Inbox entries for one shard's users, in the order a single process writes them."""

    recipient: _I64
    item: NDArray[np.int32]
    sharer: _I64


@dataclass(frozen=True, slots=True)
class TickReport:
    """What a shard's tick returns to the coordinator."""

    stats: TickStats
    outbox: Outbox | None
    stop_reason: str | None
    seconds: float  # spent in the shard's tick (absorbing, the schedule, the outbox)


@dataclass(frozen=True, slots=True)
class ShardSummary:
    """What a shard returns when it finishes: its manifest and its users' opinion rows."""

    shard: int
    manifest: dict[str, Any] | None
    opinions: pa.Table | None
    totals: dict[str, int]


def shard_generators(
    seed: int, names: Sequence[str], shard: int, n_shards: int
) -> dict[str, np.random.Generator]:
    """Per-tick streams of shard ``shard`` of ``n_shards`` (``n_shards > 1``): one per name, from
    the run's seed, the stream's name, ``n_shards`` and the shard's index."""
    out = {}
    for name in names:
        key = zlib.crc32(name.encode("utf-8"))
        seq = np.random.SeedSequence(entropy=seed, spawn_key=(key, n_shards, shard))
        out[name] = np.random.Generator(np.random.PCG64(seq))
    return out


class _RecordingGraph(SocialGraph):
    """A follow graph that keeps the edits applied to it (the shard's own, to send out)."""

    __slots__ = ("log",)

    log: list[tuple[_I64, _I64, _I64]] | None

    @classmethod
    def of(cls, graph: SocialGraph) -> _RecordingGraph:
        out = cls(graph.n_users, graph.indptr, graph.indices)
        out.muted = graph.muted
        out.log = []
        return out

    def edit(
        self,
        add: tuple[NDArray[np.integer], NDArray[np.integer]] | None = None,
        remove: tuple[NDArray[np.integer], NDArray[np.integer]] | None = None,
        mute: tuple[NDArray[np.integer], NDArray[np.integer]] | None = None,
    ) -> tuple[_I64, _I64, _I64]:
        done = super().edit(add, remove, mute)
        if self.log is not None:
            self.log.append(done)
        return done

    def plain(self) -> SocialGraph:
        out = SocialGraph(self.n_users, self.indptr, self.indices)
        out.muted = self.muted
        return out


class _FeedbackTap:
    """The shard's policy, keeping a copy of the feedback it is given (to send to the others)."""

    def __init__(self, inner: Recommender) -> None:
        self.inner = inner
        self.name = inner.name
        self.taken: list[Feedback] = []

    def recommend(self, request: RecommendRequest) -> Slates:
        return self.inner.recommend(request)

    def update(self, feedback: Feedback) -> None:
        self.taken.append(feedback)
        self.inner.update(feedback)

    def __getattr__(self, name: str) -> Any:  # privileged, score, drain_records, close, ...
        return getattr(self.inner, name)


def write_inboxes(population: Any, recipient: _I64, item: NDArray[np.int32], sharer: _I64) -> None:
    """Write inbox entries ``(recipient[j], item[j], sharer[j])`` in order, as
    :func:`recoworld.feed.deliver_shares` writes a call's entries: a user receiving more than
    ``inbox_size`` keeps the last ones."""
    if recipient.size == 0:
        return
    size = population.inbox_size
    order = np.argsort(recipient, kind="stable")
    recipient, item, sharer = recipient[order], item[order], sharer[order]
    starts = np.flatnonzero(np.r_[True, recipient[1:] != recipient[:-1]])
    group_len = np.diff(np.r_[starts, recipient.shape[0]])
    rank = np.arange(recipient.shape[0]) - np.repeat(starts, group_len)
    keep = rank >= np.repeat(group_len, group_len) - size
    rec = recipient[keep]
    slot = (population.inbox_ptr[rec] + rank[keep]) % size
    population.inbox_items[rec, slot] = item[keep]
    population.inbox_from[rec, slot] = sharer[keep]
    population.inbox_ptr[recipient[starts]] += group_len.astype(np.int32)


# -- one shard ----------------------------------------------------------------------------------
class ShardSimulation(Simulation):
    """Shard ``shard`` of ``n_shards``: a :class:`Simulation` over the whole world that serves
    the users :meth:`set_owner` gives it and trades the rest with the other shards through
    :class:`Outbox` es (module docstring). Drive it with :meth:`tick`, :meth:`absorb` and
    :meth:`finish_shard`; :class:`ShardedSimulation` does."""

    def __init__(
        self,
        config: ScenarioConfig,
        shard: int,
        n_shards: int,
        *,
        out_dir: str | os.PathLike[str] | None = None,
        run_id: str | None = None,
        share_feedback: bool = True,
    ) -> None:
        check_shardable(config, n_shards)
        if not 0 <= shard < n_shards:
            raise ConfigError(f"shard: expected 0..{n_shards - 1}, got {shard}")
        self.shard = shard
        self.n_shards = n_shards
        world = World.from_config(config, RngTree(config.seed))  # as Simulation builds it
        self._graph_log: _RecordingGraph | None = None
        if n_shards > 1:
            world.graph = self._graph_log = _RecordingGraph.of(world.graph)
        super().__init__(config, world=world, out_dir=out_dir, run_id=run_id)
        self._tap: _FeedbackTap | None = None
        self._queue: list[tuple[int, _I64, _I64, _I64, NDArray[np.int32]]] = []
        self._phase = 0
        if n_shards > 1:
            # First visits, the world and who follows a classic model came from the run's own
            # streams (as in one process); what is drawn tick by tick is the shard's own.
            names = [*self.streams, "social"]
            mine = shard_generators(config.seed, names, shard, n_shards)
            self.social.rng = mine.pop("social")
            self.streams = mine
            if share_feedback:
                self._tap = _FeedbackTap(self.policy)
                self.policy = self._tap
        # Other users' rows read during a tick: tastes and opinions by follow acceptance,
        # opinions by a classic opinion model. Nothing else needs them copied.
        follows = config.social.follow_rate > 0
        self._share_taste = n_shards > 1 and follows
        self._share_opinion = n_shards > 1 and (follows or self.social.opinion_users is not None)
        self.owner: NDArray[np.int32] | None = None

    # -- set-up --------------------------------------------------------------------------
    def partition(self, method: Literal["graph", "random"], seed: int) -> NDArray[np.int32]:
        """A partition of this world's users into ``n_shards`` parts (the coordinator asks one
        shard, then gives every shard the result with :meth:`set_owner`)."""
        if method not in PARTITIONS:
            raise ConfigError(f"partition: expected one of {', '.join(PARTITIONS)}, got {method!r}")
        return _partition_users(self.world.graph, self.n_shards, method=method, seed=seed)

    def partition_stats(self, owner: NDArray[np.int32], method: str, seed: int) -> PartitionStats:
        return partition_stats(self.world.graph, owner, method, seed)

    def set_owner(self, owner: NDArray[np.integer]) -> None:
        """Serve the users whose ``owner`` is this shard; session ids ``shard + k·n_shards``."""
        parts = np.array(owner, dtype=np.int32)  # a copy
        if parts.shape != (self.world.n_users,):
            raise ValueError(f"owner: expected one shard per user ({self.world.n_users})")
        self.owner = parts
        self.owned = parts == self.shard
        self.session_offset = self.shard
        self.session_stride = self.n_shards
        if self.recorder is not None:  # written with the manifest's next update
            self.recorder.manifest["shard"] = {
                "index": self.shard,
                "n_shards": self.n_shards,
                "users": int(self.owned.sum()),
            }

    # -- the tick ------------------------------------------------------------------------
    def deliver(self, sharers: NDArray[np.int64], items: NDArray[np.int32]) -> NDArray[np.int64]:
        """Stage 6 with more than one shard: find each share's recipients (followers who did
        not mute the sharer) and queue them for the coordinator instead of writing inboxes;
        returns the recipient counts, as a single process does."""
        if self.n_shards == 1:
            return super().deliver(sharers, items)
        graph = self.world.graph
        followers = graph.followers()
        counts = followers.indptr[sharers + 1] - followers.indptr[sharers]
        phase = self._phase
        self._phase += 1
        if sharers.size == 0 or counts.sum() == 0:
            return counts.astype(np.int64)
        position, recipient = followers.gather(sharers)
        if graph.muted.size:
            heard = ~graph.mutes(recipient, sharers[position])
            position, recipient = position[heard], recipient[heard]
            counts = np.bincount(position, minlength=sharers.size)
        self._queue.append(
            (
                phase,
                sharers[position].astype(np.int64),
                position,
                recipient.astype(np.int64),
                np.asarray(items, np.int32)[position],
            )
        )
        return counts.astype(np.int64)

    def tick(
        self, exchange: Sequence[Outbox] | None = None, delivery: Delivery | None = None
    ) -> TickReport:
        """Take in the previous tick's exchange, then run one tick (stages 1–9) for this shard's
        users; returns the tick's stats and what the other shards need."""
        if self.owned is None:
            raise RecoworldError("set_owner must be called before the first tick")
        start = time.perf_counter()
        self.absorb(exchange, delivery)
        multi = self.n_shards > 1
        pop, cat = self.world.population, self.world.catalog
        if multi:
            opinion_before = pop.opinion.copy() if self._share_opinion else None
            counters_before = np.stack([getattr(cat, c) for c in COUNTERS])
            self._queue, self._phase = [], 0
            if self._graph_log is not None:
                self._graph_log.log = []
            if self._tap is not None:
                self._tap.taken = []
        request = self.begin_tick()
        users = request.users if request is not None else _EMPTY
        taste_before = pop.taste[users] if self._share_taste else None  # a copy
        slates = self.policy.recommend(request) if request is not None else None
        stats = self.end_tick(slates).stats
        outbox = None
        if multi:
            outbox = self._outbox(opinion_before, counters_before, users, taste_before)
        reason = self.stop_reason
        seconds = time.perf_counter() - start
        return TickReport(stats=stats, outbox=outbox, stop_reason=reason, seconds=seconds)

    def _outbox(
        self,
        opinion_before: NDArray[np.float32] | None,
        counters_before: _I64,
        users: _I64,
        taste_before: NDArray[np.float32] | None,
    ) -> Outbox:
        pop, cat = self.world.population, self.world.catalog
        assert self.owned is not None
        out = Outbox(shard=self.shard)
        if self._queue:
            phase, sharer, position, recipient, item = zip(*self._queue, strict=True)
            out.phase = np.concatenate(
                [np.full(s.size, p, np.int8) for p, s in zip(phase, sharer, strict=True)]
            )
            out.sharer = np.concatenate(sharer)
            out.position = np.concatenate(position)
            out.recipient = np.concatenate(recipient)
            out.item = np.concatenate(item)
        deltas = np.stack([getattr(cat, c) for c in COUNTERS]) - counters_before
        rows = np.flatnonzero(deltas.any(axis=0))
        out.counter_rows, out.counter_deltas = rows, deltas[:, rows]
        if self._graph_log is not None and self._graph_log.log:
            added, removed, muted = (
                np.concatenate(k) for k in zip(*self._graph_log.log, strict=True)
            )
            out.added, out.removed, out.muted = added, removed, muted
        if opinion_before is not None:
            changed = pop.opinion != opinion_before
            foreign = changed & ~self.owned
            pop.opinion[foreign] = opinion_before[foreign]  # the owner's value counts
            out.opinion_users = np.flatnonzero(changed & self.owned)
            out.opinion = pop.opinion[out.opinion_users]
        if taste_before is not None:
            moved = (pop.taste[users] != taste_before).any(axis=1)
            out.taste_users = users[moved]
            out.taste = pop.taste[out.taste_users]
        if self._tap is not None and self._tap.taken:
            out.feedback = _merge_feedback(self._tap.taken)
        return out

    def absorb(self, exchange: Sequence[Outbox] | None, delivery: Delivery | None = None) -> None:
        """Apply the other shards' changes of the last tick to this replica (module docstring)."""
        if delivery is not None:
            write_inboxes(self.world.population, delivery.recipient, delivery.item, delivery.sharer)
        if not exchange:
            return
        pop, cat = self.world.population, self.world.catalog
        others = sorted((o for o in exchange if o.shard != self.shard), key=lambda o: o.shard)
        for box in others:
            for name, delta in zip(COUNTERS, box.counter_deltas, strict=True):
                getattr(cat, name)[box.counter_rows] += delta
            if box.opinion_users.size:
                pop.opinion[box.opinion_users] = box.opinion
            if box.taste_users.size:
                pop.taste[box.taste_users] = box.taste
        n = self.world.n_users
        keys = [
            np.concatenate([_EMPTY, *(getattr(o, name) for o in others)])
            for name in ("added", "removed", "muted")
        ]
        if any(k.size for k in keys):
            graph = self.world.graph
            log = self._graph_log.log if self._graph_log is not None else None
            if self._graph_log is not None:
                self._graph_log.log = None  # not ours to send again
            try:
                graph.edit(*(np.divmod(k, n) for k in keys))
            finally:
                if self._graph_log is not None:
                    self._graph_log.log = log
        self.social.community_notes()  # on the global share counts
        inner = self._tap.inner if self._tap is not None else self.policy
        for box in others:
            if box.feedback is not None:
                inner.update(box.feedback)

    def finish_shard(
        self,
        status: str,
        exchange: Sequence[Outbox] | None = None,
        delivery: Delivery | None = None,
    ) -> ShardSummary:
        """Take in the last exchange (so the replicas end equal), then :meth:`finish`; returns
        the manifest and this shard's users' rows of the ``opinions`` table."""
        self.absorb(exchange, delivery)
        self.finish(status)
        manifest = opinions = None
        if self.recorder is not None:
            from recoworld.trajectory.reader import read_arrow, read_manifest

            manifest = read_manifest(self.recorder.path)  # as written, parts and all
            opinions = read_arrow(self.recorder.path, "opinions")
            if self.owned is not None and self.n_shards > 1:
                users = opinions.column("user").to_numpy()
                opinions = opinions.filter(pa.array(self.owned[users]))
        return ShardSummary(self.shard, manifest, opinions, self.totals.as_dict())

    # -- reading the replica -------------------------------------------------------------
    def counters(self) -> _I64:
        """The catalogue counters of this replica, ``[len(COUNTERS), n_items]``."""
        return np.stack([getattr(self.world.catalog, c) for c in COUNTERS])

    def replica(self) -> World:
        """This shard's whole replica of the world (its own users' rows are authoritative)."""
        world = self.world
        if isinstance(world.graph, _RecordingGraph):
            world = dataclasses.replace(world, graph=world.graph.plain())
        return world

    def owned_rows(self) -> tuple[dict[str, NDArray[Any]], list[str | None]]:
        """Every per-user column of the population at this shard's users' rows, and the text of
        each one's standing instruction (``last_instruction`` indexes this shard's table)."""
        assert self.owned is not None
        pop = self.world.population
        rows = np.flatnonzero(self.owned)
        columns = {
            f.name: getattr(pop, f.name)[rows]
            for f in dataclasses.fields(pop)
            if isinstance(getattr(pop, f.name), np.ndarray)
            and getattr(pop, f.name).shape[:1] == (pop.n_users,)
        }
        return columns, pop.texts_of(rows)


def check_shardable(config: ScenarioConfig, n_shards: int) -> None:
    """:class:`ConfigError` for what this version cannot shard (module docstring)."""
    if not isinstance(n_shards, int) or n_shards < 1:
        raise ConfigError(f"n_shards: expected an integer >= 1, got {n_shards!r}")
    if n_shards > config.world.n_users:
        raise ConfigError(
            f"n_shards: expected at most world.n_users ({config.world.n_users}), got {n_shards}"
        )
    if n_shards == 1:
        return
    if config.social.post_rate > 0:
        raise ConfigError(
            "social.post_rate: posts are not supported in a sharded world yet (new items would "
            "need ids agreed between shards); set social.post_rate=0 or run in one process"
        )
    if config.llm.enabled:
        raise ConfigError(
            "llm: LLM users are not supported in a sharded world yet; run them in one process "
            "and spread their calls over several servers with llm.client.base_urls "
            "(docs/scaling.md)"
        )


def _merge_feedback(parts: list[Feedback]) -> Feedback:
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    columns = {
        f.name: np.concatenate([getattr(p, f.name) for p in parts])
        for f in dataclasses.fields(first)
        if isinstance(getattr(first, f.name), np.ndarray)
    }
    texts = tuple(t for p in parts for t in p.instruction_texts)
    return dataclasses.replace(first, instruction_texts=texts, **cast(dict[str, Any], columns))


# -- the coordinator ----------------------------------------------------------------------------
class _Shards:
    """The shards, as Ray actors or (``backend="inline"``) plain objects in this process."""

    def __init__(
        self,
        backend: Literal["ray", "inline"],
        args: Callable[[int], tuple[Any, ...]],
        n: int,
        *,
        address: str | None,
        cpus_per_shard: float,
    ) -> None:
        self.backend = backend
        self.ray: Any = None
        self.started = False
        self.handles: list[Any] = []
        if backend == "inline":
            self.handles = [ShardActor(0, *args(k)) for k in range(n)]
            return
        from recoworld.distributed._ray import start_ray

        self.ray, self.started = start_ray(address)
        actor = self.ray.remote(ShardActor).options(num_cpus=cpus_per_shard)
        threads = max(1, int(cpus_per_shard))
        self.handles = [actor.remote(threads, *args(k)) for k in range(n)]

    def call(self, method: str, *args: Any, per_shard: Sequence[tuple[Any, ...]] = ()) -> list[Any]:
        """``method(*args, *per_shard[k])`` on every shard, results in shard order."""
        extra = per_shard or [()] * len(self.handles)
        pairs = zip(self.handles, extra, strict=True)
        if self.backend == "inline":
            return [h.call(method, *args, *e) for h, e in pairs]
        # Arguments every shard receives go into the object store once.
        shared = [self.ray.put(a) if isinstance(a, list | np.ndarray) else a for a in args]
        return list(self.ray.get([h.call.remote(method, *shared, *e) for h, e in pairs]))

    def one(self, k: int, method: str, *args: Any) -> Any:
        """``method(*args)`` on shard ``k``."""
        if self.backend == "inline":
            return self.handles[k].call(method, *args)
        return self.ray.get(self.handles[k].call.remote(method, *args))

    def close(self) -> None:
        if self.backend == "ray" and self.ray is not None:
            for handle in self.handles:
                self.ray.kill(handle)
            self.handles = []
            if self.started:
                self.ray.shutdown()
                self.started = False


class ShardActor:
    """One :class:`ShardSimulation`, as a Ray actor (or a plain object, ``inline``); the
    coordinator calls its methods by name through :meth:`call`."""

    def __init__(
        self,
        threads: int,
        config: ScenarioConfig,
        shard: int,
        n_shards: int,
        out_dir: str | None,
        run_id: str | None,
        share_feedback: bool,
    ) -> None:
        if threads > 0:  # the actor's own process: as many kernel threads as reserved CPUs
            os.environ.setdefault("RECOWORLD_THREADS", str(threads))
        self.sim = ShardSimulation(
            config,
            shard,
            n_shards,
            out_dir=out_dir,
            run_id=run_id,
            share_feedback=share_feedback,
        )

    def call(self, method: str, *args: Any) -> Any:
        return getattr(self.sim, method)(*args)


class ShardedSimulation:
    """A world whose population is partitioned over ``n_shards`` shards (module docstring).

    Args:
        config: the scenario (``social.post_rate`` must be 0 and no LLM users with more than one
            shard).
        n_shards: number of shards (Ray actors).
        out_dir: run folder: ``shard-<k>/`` per shard and the combined manifest (default: no
            recording). On a cluster of several machines, a filesystem every node sees.
        partition: ``graph`` (community-aware, few follows cross shards) or ``random``.
        run_id: written into every row (default ``"<name>-seed<seed>"``, as a single process).
        address: Ray cluster to use (default: the one this process is connected to, else
            ``RAY_ADDRESS``, else a local one started for this simulation and stopped by
            :meth:`close`).
        cpus_per_shard: CPUs Ray reserves for each shard (and the shard's kernel threads).
        share_feedback: every replica of the policy learns from all shards' feedback.
        backend: ``ray``, or ``inline`` to run the shards one after the other in this process
            (no Ray; the same results).

    Use it as a context manager, or call :meth:`close`, to release the actors.
    """

    def __init__(
        self,
        config: ScenarioConfig,
        n_shards: int,
        *,
        out_dir: str | os.PathLike[str] | None = None,
        partition: Literal["graph", "random"] = "graph",
        run_id: str | None = None,
        address: str | None = None,
        cpus_per_shard: float = 1,
        share_feedback: bool = True,
        backend: Literal["ray", "inline"] = "ray",
    ) -> None:
        check_shardable(config, n_shards)
        if partition not in PARTITIONS:
            raise ConfigError(
                f"partition: expected one of {', '.join(PARTITIONS)}, got {partition!r}"
            )
        if backend not in ("ray", "inline"):
            raise ConfigError(f"backend: expected ray or inline, got {backend!r}")
        if backend == "ray":
            from recoworld.distributed._ray import import_ray

            import_ray()  # a missing extra fails before the run folder is claimed
        self.config = config
        self.n_shards = n_shards
        self.run_id = run_id or f"{config.name}-seed{config.seed}"
        self.out = None if out_dir is None else _claim(Path(out_dir))

        def shard_dir(k: int) -> str | None:
            return None if self.out is None else str(self.out / f"shard-{k}")

        def args(k: int) -> tuple[Any, ...]:
            return (config, k, n_shards, shard_dir(k), self.run_id, share_feedback)

        self._shards = _Shards(
            backend, args, n_shards, address=address, cpus_per_shard=cpus_per_shard
        )
        try:
            seed = config.world.seed if config.world.seed is not None else config.seed
            owner = self._shards.one(0, "partition", partition, seed)
            stats = self._shards.one(0, "partition_stats", owner, partition, seed)
            info = self._shards.one(0, "result", "running")
            self.owner: NDArray[np.int32] = np.asarray(owner, np.int32).copy()
            self.partition_stats: PartitionStats = stats
            self._shards.call("set_owner", self.owner)
        except BaseException:
            self._shards.close()
            raise
        self.tick = int(info.ticks)
        self.n_ticks = config.clock.n_ticks
        self.totals: dict[str, int] = {}
        self._exchange: list[Outbox] | None = None
        self._deliveries: list[tuple[Delivery | None]] = []
        self.finished: str | None = None
        self._stop_reason: str | None = None
        #: Wall time of the ticks as seen here, and the sum over ticks of the busiest shard's
        #: time: the difference is what the exchange and Ray's calls cost.
        self.seconds = {"ticks": 0.0, "busiest_shard": 0.0}
        if self.out is not None:
            self._write_manifest("running", None)

    # -- driving -------------------------------------------------------------------------
    def step(self) -> TickStats:
        """One tick on every shard (after taking in the previous tick's exchange)."""
        if self.finished is not None:
            raise RecoworldError("this sharded simulation has finished; build a new one")
        exchange, deliveries = self._exchange, self._pending_deliveries()
        self._exchange, self._deliveries = None, []  # sent once, even if a shard fails
        start = time.perf_counter()
        reports: list[TickReport] = self._shards.call("tick", exchange, per_shard=deliveries)
        self.seconds["ticks"] += time.perf_counter() - start
        self.seconds["busiest_shard"] += max(r.seconds for r in reports)
        if self.n_shards > 1:
            boxes = [r.outbox for r in reports if r.outbox is not None]
            self._deliveries = [(d,) for d in self._route(boxes)]
            self._exchange = [b.without_deliveries() for b in boxes]
        self.tick += 1
        self._stop_reason = next((r.stop_reason for r in reports if r.stop_reason), None)
        return _sum_stats([r.stats for r in reports])

    def sync(self) -> None:
        """Apply the last tick's exchange now (it is otherwise applied with the next tick):
        afterwards the replicas' counters and graphs are equal, and their opinions and tastes
        too where other shards read them (module docstring)."""
        if self._exchange is None and not self._deliveries:
            return
        self._shards.call("absorb", self._exchange, per_shard=self._pending_deliveries())
        self._exchange, self._deliveries = None, []

    def _pending_deliveries(self) -> list[tuple[Delivery | None]]:
        return self._deliveries or [(None,)] * self.n_shards

    def _route(self, boxes: list[Outbox]) -> list[Delivery]:
        """Every shard's deliveries in one process's order, split by the recipients' owners."""
        cols = {
            name: np.concatenate([getattr(b, name) for b in boxes])
            for name in ("phase", "sharer", "position", "recipient", "item")
        }
        order = np.lexsort((cols["position"], cols["sharer"], cols["phase"]))
        recipient, item = cols["recipient"][order], cols["item"][order]
        sharer = cols["sharer"][order]
        dest = self.owner[recipient]
        out = []
        for k in range(self.n_shards):
            sel = dest == k
            out.append(Delivery(recipient[sel], item[sel], sharer[sel]))
        return out

    def run(
        self,
        n_ticks: int | None = None,
        *,
        progress: Callable[[TickStats], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> RunResult:
        """Run ``n_ticks`` ticks (default: the scenario's horizon), then :meth:`finish`, as
        :meth:`Simulation.run` does (``should_stop`` polled between ticks)."""
        end = self.tick + (self.n_ticks if n_ticks is None else n_ticks)
        status = drive_ticks(
            self.step,
            done=lambda: self.tick >= end,
            finish=self.finish,
            stop_reason=lambda: self._stop_reason,
            should_stop=should_stop,
            progress=progress,
        )
        return self.result(status)

    def finish(self, status: str = "completed") -> None:
        """Finish every shard (open sessions closed, trajectories written) and write the
        combined manifest; the actors stay up for :meth:`world` until :meth:`close`."""
        if self.finished is not None:
            return
        self.finished = status
        summaries: list[ShardSummary] = self._shards.call(
            "finish_shard", status, self._exchange, per_shard=self._pending_deliveries()
        )
        self._exchange, self._deliveries = None, []
        totals: dict[str, int] = {}
        for s in summaries:
            for key, value in s.totals.items():
                totals[key] = totals.get(key, 0) + value
        self.totals = totals
        if self.out is not None:
            self._write_manifest(status, summaries)

    def result(self, status: str) -> RunResult:
        return RunResult(
            run_id=self.run_id,
            status=status,
            ticks=self.tick,
            path=self.path,
            totals=dict(self.totals),
        )

    @property
    def path(self) -> str | None:
        return None if self.out is None else str(self.out)

    # -- reading the shards --------------------------------------------------------------
    def replicas(self, method: str = "counters") -> list[Any]:
        """``method()`` of every shard (e.g. ``counters``, ``replica``), in shard order."""
        return self._shards.call(method)

    def world(self) -> World:
        """The world as one process would hold it: the catalogue, graph and clock of shard 0's
        replica (all equal after :meth:`sync`) and every user's row from its owner."""
        self.sync()
        # A copy: arrays from Ray's object store are read-only, and the live replica is not ours.
        world: World = copy.deepcopy(self._shards.one(0, "replica"))
        if self.n_shards == 1:
            return world
        pop = world.population
        for k, (columns, texts) in enumerate(self.replicas("owned_rows")):
            if k == 0:
                continue
            rows = np.flatnonzero(self.owner == k)
            for name, values in columns.items():
                getattr(pop, name)[rows] = values
            spoke = np.array([t is not None for t in texts], dtype=bool)
            ids = np.full(rows.size, -1, np.int64)
            ids[spoke] = pop.intern_texts([t for t in texts if t is not None])
            pop.last_instruction[rows] = ids
        return world

    def close(self) -> None:
        """Stop the shards' actors (and the local Ray cluster if this simulation started it)."""
        self._shards.close()

    def __enter__(self) -> ShardedSimulation:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.finished is None:
                self.finish("failed" if exc[0] is not None else "interrupted")
        finally:
            self.close()

    # -- the combined run folder ---------------------------------------------------------
    def _write_manifest(self, status: str, summaries: list[ShardSummary] | None) -> None:
        from recoworld._config import to_mapping
        from recoworld.trajectory.manifest import git_commit, package_versions
        from recoworld.trajectory.recorder import MANIFEST, write_json_atomic
        from recoworld.trajectory.schema import SCHEMA_VERSION, TABLES, schema_of

        assert self.out is not None
        out = self.out
        shard_dirs = [f"shard-{k}" for k in range(self.n_shards)]
        manifest: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "scenario": self.config.name,
            "seed": self.config.seed,
            "n_ticks": self.n_ticks,
            "n_users": self.config.world.n_users,
            "config": to_mapping(self.config),
            "versions": package_versions(),
            "git_commit": git_commit(),
            "status": status,
            "ticks_completed": 0,
            "tables": {t: {"rows": 0, "parts": []} for t in TABLES},
            "sharded": {
                "n_shards": self.n_shards,
                "shards": shard_dirs,
                "partition": self.partition_stats.as_dict(),
                "partition_file": PARTITION_FILE,
            },
        }
        for table in TABLES:  # readers look for each table's folder before its parts
            (out / table).mkdir(exist_ok=True)
        if summaries is None:
            pq.write_table(
                pa.table(
                    {
                        "user": np.arange(self.owner.size, dtype=np.int32),
                        "shard": self.owner.astype(np.int16),
                    }
                ),
                out / PARTITION_FILE,
            )
            write_json_atomic(out / MANIFEST, manifest)
            return
        manifests = [s.manifest or {} for s in summaries]
        first = manifests[0]
        for key in ("n_users", "n_items", "n_edges", "policy", "user_model", "git_commit"):
            if key in first:
                manifest[key] = first[key]
        manifest["ticks_completed"] = min(int(m.get("ticks_completed", 0)) for m in manifests)
        manifest["totals"] = dict(self.totals)
        tables: dict[str, Any] = {}
        for table in TABLES:
            if table == "opinions":
                continue
            parts = [
                f"{shard_dirs[k]}/{p}"
                for k, m in enumerate(manifests)
                for p in m.get("tables", {}).get(table, {}).get("parts", [])
            ]
            rows = sum(int(m.get("tables", {}).get(table, {}).get("rows", 0)) for m in manifests)
            tables[table] = {"rows": rows, "parts": parts}
        opinions = [s.opinions for s in summaries if s.opinions is not None]
        merged = schema_of("opinions").empty_table()
        if opinions:
            merged = pa.concat_tables(opinions).unify_dictionaries().combine_chunks()
            merged = merged.sort_by([("tick", "ascending"), ("user", "ascending")])
        folder = out / "opinions"
        folder.mkdir(exist_ok=True)
        compression = self.config.record.compression
        pq.write_table(
            merged.replace_schema_metadata(schema_of("opinions").metadata),
            folder / "part-000000.parquet",
            compression=None if compression == "none" else compression,
        )
        tables["opinions"] = {"rows": merged.num_rows, "parts": ["opinions/part-000000.parquet"]}
        manifest["tables"] = tables
        missing = [d for d in shard_dirs if not (out / d / MANIFEST).is_file()]
        if missing:
            manifest["sharded"]["missing"] = missing
        write_json_atomic(out / MANIFEST, manifest)
        if missing:
            raise RecoworldError(
                f"{out}: the shard folders {', '.join(missing)} are not visible from this "
                "machine; on a cluster of several machines, give an out_dir on a filesystem "
                "every node shares"
            )


def _claim(out: Path) -> Path:
    from recoworld.trajectory.recorder import MANIFEST, claim_folder
    from recoworld.trajectory.schema import TABLES

    def owned(folder: Path) -> list[Path]:
        names = [*TABLES, MANIFEST, PARTITION_FILE]
        return [folder / name for name in names] + sorted(folder.glob("shard-*"))

    return claim_folder(out, MANIFEST, owned, "run")


def _sum_stats(stats: list[TickStats]) -> TickStats:
    return TickStats(
        stats[0].tick,
        *(sum(getattr(s, name) for s in stats) for name in TickStats.__slots__[1:]),
    )


#: Sort keys of :func:`read_combined_table`, by table.
_SORT_KEYS = {
    "impressions": ("tick", "user"),
    "responses": ("tick", "user"),
    "instructions": ("tick", "user"),
    "sessions": ("end_tick", "user"),
    "social": ("tick", "kind", "user"),
    "opinions": ("tick", "user"),
    "llm_calls": ("tick", "user"),
}


def read_combined_table(
    run_dir: str | os.PathLike[str], table: str, columns: list[str] | None = None
) -> pd.DataFrame:
    """One table of a run folder — a sharded run's parent folder reads as one run — with its
    rows sorted by tick and user (stable: a user's rows of one tick keep their order; sessions by
    end tick, social events by tick, kind, user)."""
    from recoworld.trajectory.reader import read_table

    keys = _SORT_KEYS.get(table, ())
    wanted = None if columns is None else list(dict.fromkeys([*columns, *keys]))
    frame = read_table(run_dir, table, wanted)
    if keys and len(frame):
        sort = [frame[k].cat.codes if hasattr(frame[k], "cat") else frame[k] for k in keys]
        order = np.lexsort([np.asarray(s) for s in reversed(sort)])
        frame = frame.iloc[order].reset_index(drop=True)
    return frame if columns is None else frame[columns]
