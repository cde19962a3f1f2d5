"""Gymnasium faces of the feed: the agent is the recommender serving simulated users.

One batched core (:class:`FeedCore`) drives the one step schedule of :mod:`recoworld.schedule`
for ``B`` users at once — ``begin_tick`` gives the page request, the agent's action becomes the
slates, ``end_tick`` simulates the users. :class:`FeedEnv` is the core with ``B = 1``;
:class:`FeedVectorEnv` is the core with ``B = num_envs``, a native ``gymnasium.vector.VectorEnv``.
Neither re-implements any dynamics.
"""

from __future__ import annotations

import math
import string
import typing
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space
from numpy.typing import NDArray

from recoworld import _kernels as kernels
from recoworld._config import check, from_mapping, override
from recoworld.config import ScenarioConfig, UserModelConfig
from recoworld.errors import ConfigError, RenderModeError
from recoworld.policies.base import Feedback, RecommendRequest, Slates, top_k
from recoworld.policies.parsing import InstructionCodes
from recoworld.scenario import load_scenario
from recoworld.schedule import Simulation, TickOutcome
from recoworld.users.numeric import NumericUserModel
from recoworld.world.catalog import Catalog
from recoworld.world.population import Population
from recoworld.world.synthetic import generate_population
from recoworld.world.world import World

__all__ = ["FeedCore", "FeedEnv", "FeedEnvConfig", "FeedVectorEnv"]

_NEVER = np.iinfo(np.int64).max // 4
#: Reward per examined item: click, like, share, comment.
REWARD_WEIGHTS = (1.0, 0.5, 1.0, 0.5)
#: Per-candidate features (after the topic one-hot): popularity, quality, seen, affinity.
_ITEM_EXTRA = 4
_ENGAGEMENT = 8
#: The opt-in ``Text`` observation: printable ASCII plus common typography; others become "?".
_TEXT_MAX = 256
_CHARSET = string.ascii_letters + string.digits + string.punctuation + " —–’‘“”…éè"
_CHARSET_SET = frozenset(_CHARSET)
#: Per-page decay of the click centroid behind the affinity feature.
_CENTROID_DECAY = np.float32(0.8)
#: New users are drawn at least this many (and at least B) at a time (``FeedCore._draw_users``).
_POOL = 4096


@dataclass(frozen=True, kw_only=True, slots=True)
class FeedEnvConfig:
    """Arguments of the feed environments (``gymnasium.make("recoworld/Feed-v0", **kwargs)``).

    Attributes:
        scenario: shipped scenario name or YAML path whose world and user model are used.
        n_items: catalogue size.
        n_candidates: candidates offered per page (``C``); the action indexes them.
        slate_size: items per page (``k``); 1 in ``item`` mode.
        action_mode: ``slate`` (``MultiDiscrete([C] * k)``), ``item`` (``Discrete(C)`` with
            ``action_masks()``), or ``weights`` (``Box(-1, 1, (F,))`` scoring weights over the
            ``F`` candidate features; its size does not grow with the catalogue).
        lifelong: one episode is a user's whole life over ``days`` (many sessions); reward adds
            ``return_bonus`` at each return; terminated on churn, truncated at ``days``.
        days: horizon of a lifelong episode, in simulated days.
        return_bonus: reward when a lifelong user starts another session.
        observe_text: add the instruction's text as a ``Text`` observation (opt-in: ``Text``
            breaks shared-memory vector envs and SB3).
        oracle: add the user's hidden state (taste, boredom, satisfaction, fatigue) to the
            observation — for upper bounds only.
        randomize: domain randomization — ``{user-model parameter: [low, high]}``; each reset
            draws every listed parameter uniformly (Sim2Rec-style robustness).
        overrides: dotted scenario overrides, e.g. ``{"users.patience_mean": 0.3}``.
    """

    scenario: str = "default"
    n_items: int = 2000
    n_candidates: int = 20
    slate_size: int = 5
    action_mode: Literal["slate", "item", "weights"] = "slate"
    lifelong: bool = False
    days: float = 7.0
    return_bonus: float = 2.0
    observe_text: bool = False
    oracle: bool = False
    randomize: dict[str, tuple[float, ...]] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(self.n_items >= 2, "n_items", "an integer >= 2", self.n_items)
        check(
            2 <= self.n_candidates <= self.n_items,
            "n_candidates",
            f"an integer in 2..n_items ({self.n_items})",
            self.n_candidates,
        )
        check(
            1 <= self.slate_size <= self.n_candidates,
            "slate_size",
            f"an integer in 1..n_candidates ({self.n_candidates})",
            self.slate_size,
        )
        check(self.days > 0, "days", "a positive number of days", self.days)
        hints = typing.get_type_hints(UserModelConfig)
        for name, bounds in self.randomize.items():
            check(
                hints.get(name) is float,
                f"randomize.{name}",
                "the name of a real-valued user-model parameter",
                name,
            )
            check(
                len(bounds) == 2 and bounds[0] <= bounds[1],
                f"randomize.{name}",
                "[low, high] with low <= high",
                bounds,
            )

    @property
    def k(self) -> int:
        return 1 if self.action_mode == "item" else self.slate_size


class AgentPolicy:
    """Stands in the simulation's policy slot of an environment: the agent's actions arrive
    through ``end_tick`` / ``compose``, never through ``recommend``."""

    name = "agent"
    wants_feedback = False  # the agent learns from the environment's rewards

    def recommend(self, request: RecommendRequest) -> Slates:
        raise RuntimeError("the agent acts through the environment's step()")

    def update(self, feedback: Feedback) -> None:
        pass


def feed_scenario(config: FeedEnvConfig, n_slots: int, seed: int) -> ScenarioConfig:
    """The scenario a feed environment simulates: ``config.scenario`` with ``n_slots`` users, no
    follow graph and no in-network items, and the environment's catalogue and page sizes."""
    base = load_scenario(config.scenario)
    updates: dict[str, Any] = {
        "seed": int(seed),
        "world.n_users": n_slots,
        "world.n_items": config.n_items,
        "world.graph.kind": "none",
        "feed.n_candidates": config.n_candidates,
        "feed.slate_size": config.k,
        "feed.rule": "none",
        "clock.ticks": 0,
        "clock.days": max(config.days, 1.0),
        **config.overrides,
    }
    return override(base, updates)


def feed_spaces(config: FeedEnvConfig) -> tuple[spaces.Dict, spaces.Space[Any]]:
    """Observation and action spaces of a feed environment, from its configuration alone."""
    world = feed_scenario(config, 1, 0).world
    t, c = len(world.topics), config.n_candidates
    f = t + _ITEM_EXTRA
    box: dict[str, spaces.Space[Any]] = {
        "candidates": spaces.Box(-1.0, 1.0, (c * f,), np.float32),
        "history": spaces.Box(0.0, 1.0, (2 * t,), np.float32),
        "engagement": spaces.Box(-1.0, 5.0, (_ENGAGEMENT,), np.float32),
        "instruction": spaces.Box(0.0, 1.0, (2 * t + 2,), np.float32),
    }
    if config.oracle:
        box["oracle"] = spaces.Box(-1.0, 5.0, (world.embedding_dim + t + 2,), np.float32)
    action: spaces.Space[Any]
    if config.action_mode == "item":
        action = spaces.Discrete(c)
    elif config.action_mode == "weights":
        action = spaces.Box(-1.0, 1.0, (f,), np.float32)
    else:
        action = spaces.MultiDiscrete([c] * config.k)
    return spaces.Dict(box), action


class FeedCore:
    """``B`` simulated users served by one agent, tick by tick, over the one schedule."""

    def __init__(self, config: FeedEnvConfig, n_slots: int, seed: int) -> None:
        self.config = config
        self.n_slots = n_slots
        self.scenario = feed_scenario(config, n_slots, seed)
        self.model = NumericUserModel(self.scenario.users)
        self.sim = Simulation(self.scenario, policy=AgentPolicy(), user_model=self.model)
        world = self.sim.world
        self.n_topics = world.catalog.n_topics
        self.n_features = self.n_topics + _ITEM_EXTRA
        self.request: RecommendRequest | None = None
        self.last = np.zeros((n_slots, 4), np.float32)  # examined, clicks, likes, dwell mean
        self.episode_start = np.zeros(n_slots, np.int64)
        world.population.next_active[:] = _NEVER  # the environment decides who starts when
        dim = world.population.taste.shape[1]
        self.click_centroid = np.zeros((n_slots, dim), np.float32)
        self._popularity = np.zeros(world.n_items, np.float32)
        self._features: tuple[RecommendRequest | None, NDArray[np.float32]] | None = None
        self._codes = InstructionCodes(world.catalog.topic_names)
        self._pool: Population | None = None
        self._pool_next = 0
        self._next_pool: Future[Population] | None = None
        self._arrivals = self.sim.rng.generator("arrivals")  # new users' stream (_draw_users)

    # -- episodes ---------------------------------------------------------------------------
    def new_users(self, slots: NDArray[np.int64], rng: np.random.Generator) -> None:
        """Replace ``slots`` by brand-new users drawn from the scenario, in a fresh session."""
        if self.config.randomize:
            values = {
                name: float(rng.uniform(lo, hi)) for name, (lo, hi) in self.config.randomize.items()
            }
            self.model.config = override(self.model.config, values)
        world = self.sim.world
        fresh, start = self._draw_users(int(slots.size), rng)
        world.population.replace_users(slots, fresh, start)
        world.population.next_active[slots] = _NEVER
        self.sim.start_sessions(slots)
        self.last[slots] = 0.0
        self.click_centroid[slots] = 0.0
        self.episode_start[slots] = world.clock.tick

    def _draw_users(self, k: int, rng: np.random.Generator) -> tuple[Population, int]:
        """``k`` new users: rows ``start:start + k`` of the returned population.

        Without domain randomization they come from pools of ``max(_POOL, B)`` users drawn from
        the core's own ``arrivals`` stream, the next pool drawn on a background thread while
        this one is used up (the draws release the GIL). Only that thread touches the stream and
        pools are drawn one after another, so their content does not depend on timing. With
        randomization, users are drawn now with ``rng``, under the parameters just drawn."""
        if self.config.randomize:
            return self._generate(k, rng), 0
        if self._pool is None or self._pool_next + k > self._pool.n_users:
            if self._next_pool is None:
                self._next_pool = self._prefetch()
            self._pool, self._pool_next = self._next_pool.result(), 0
            self._next_pool = self._prefetch()
        start = self._pool_next
        self._pool_next += k
        return self._pool, start

    def _generate(self, n: int, rng: np.random.Generator) -> Population:
        world = self.sim.world
        pop, _ = generate_population(
            replace(self.scenario.world, n_users=n),
            self.model.config,
            world.catalog,
            rng,
            inbox_size=world.population.inbox_size,
        )
        return pop

    def _prefetch(self) -> Future[Population]:
        size = max(_POOL, self.n_slots)
        return kernels.in_background(lambda: self._generate(size, self._arrivals))

    def begin(self) -> RecommendRequest | None:
        """Begin the next tick: the request whose candidates the next action indexes."""
        self.request = self.sim.begin_tick()
        self._popularity = popularity(self.sim.world)
        return self.request

    def abandon(self) -> None:
        self.sim.cancel_tick()
        self.request = None

    # -- actions ----------------------------------------------------------------------------
    def slates(self, actions: NDArray) -> Slates:
        """Decode the agent's actions for the users of the current request (see FeedEnv)."""
        req = self.request
        assert req is not None
        users = req.users
        return decode_slates(
            self.config,
            req.candidates,
            np.asarray(actions)[users],
            lambda: self.candidate_features()[users],
        )

    def finish(self, actions: NDArray) -> tuple[TickOutcome, NDArray[np.float32]]:
        """End the tick with the agent's actions; per-slot engagement reward."""
        slates = self.slates(actions) if self.request is not None else None
        outcome = self.sim.end_tick(slates)
        reward = np.zeros(self.n_slots, np.float32)
        if outcome.responses is not None and outcome.feed is not None:
            r, slots = outcome.responses, outcome.feed.users
            items = np.ascontiguousarray(outcome.feed.items, np.int32)
            embedding = self.sim.world.catalog.embedding
            n = slots.size
            page_reward, last = np.empty(n, np.float32), np.empty((n, 4), np.float32)

            def summarize(rows: slice) -> None:
                kernels.page_summary(
                    page_reward[rows],
                    last[rows],
                    (r.clicked[rows], r.liked[rows], r.shared[rows], r.commented[rows]),
                    r.examined[rows],
                    r.dwell[rows],
                    items[rows],
                    embedding,
                    REWARD_WEIGHTS,
                    self.click_centroid,
                    slots[rows],
                    float(_CENTROID_DECAY),
                )

            kernels.by_rows(summarize, n)
            reward[slots], self.last[slots] = page_reward, last
        self.request = None
        return outcome, reward

    def action_masks(self) -> NDArray[np.bool_]:
        """``[B, C]``: candidates the user has not seen (all, if it has seen every one)."""
        seen = self.candidate_features()[:, :, self.n_topics + 2] > 0.5
        mask = ~seen
        mask[~mask.any(axis=1)] = True
        return mask

    # -- observations -----------------------------------------------------------------------
    def candidate_features(self) -> NDArray[np.float32]:
        """``[B, C, F]``: topic one-hot, popularity, quality, seen, affinity (zeros off-session).

        Affinity is the cosine between the candidate and the user's click centroid, a sum of the
        embeddings of its clicked items decayed by ``_CENTROID_DECAY`` per page. Cached per tick.
        """
        req = self.request
        if self._features is not None and self._features[0] is req:
            return self._features[1]
        shape = (self.n_slots, self.config.n_candidates, self.n_features)
        if req is None:
            out = np.zeros(shape, np.float32)
        else:
            out = np.empty(shape, np.float32)  # the kernel writes every requesting row whole
            if req.n < self.n_slots:
                idle = np.ones(self.n_slots, bool)
                idle[req.users] = False
                out[idle] = 0.0
            centroid = self.click_centroid[req.users]
            write_features(out, req.users, self.sim.world, req, centroid, self._popularity)
        self._features = (req, out)
        return out

    def observe(self) -> dict[str, NDArray[np.float32]]:
        """Batched observation of every slot (what a platform could observe)."""
        world = self.sim.world
        pop = world.population
        b = self.n_slots
        context = context_features(
            topic=world.catalog.topic,
            memory_items=pop.memory_items,
            memory_reaction=pop.memory_reaction,
            session_pages=pop.session_pages,
            last_page=self.last,
            session_clicks=pop.session_clicks,
            session_items=pop.session_items,
            hour=world.clock.hour_of_day(),
            page=self.sim.config.feed.slate_size,
            instruction_codes=self._codes.for_users(pop, np.arange(b)),
            pages_since_instruction=np.where(
                pop.last_instruction >= 0, pop.pages_since_instruction, -1
            ),
        )
        obs = {"candidates": self.candidate_features().reshape(b, -1), **context}
        if self.config.oracle:
            obs["oracle"] = np.concatenate(
                [
                    pop.taste,
                    np.minimum(pop.boredom, 5.0),
                    pop.satisfaction[:, None],
                    np.minimum(pop.fatigue, 5.0)[:, None],
                ],
                axis=1,
            ).astype(np.float32)
        return obs

    def instruction_texts(self) -> list[str | None]:
        return self.sim.world.population.texts_of(np.arange(self.n_slots))


def popularity(world: World) -> NDArray[np.float32]:
    """Public popularity of every item in [0, 1]: ``log1p(clicks) / max``."""
    return catalog_popularity(world.catalog)


def catalog_popularity(catalog: Catalog) -> NDArray[np.float32]:
    """:func:`popularity` from the catalogue alone (what a policy's request carries)."""
    clicks = np.log1p(catalog.clicks.astype(np.float32))
    return (clicks / np.float32(float(clicks.max()) or 1.0)).astype(np.float32)


def write_features(
    out: NDArray[np.float32],
    rows: NDArray[np.int64],
    world: World,
    request: RecommendRequest,
    centroid: NDArray[np.float32],
    item_popularity: NDArray[np.float32],
) -> None:
    """Write into ``out[rows]`` (``[n, C, T + 4]``, every element) the features of each requesting
    user's candidates: topic one-hot, popularity, quality, already seen by the user, cosine
    affinity to ``centroid`` (``[n, D]``, e.g. the user's clicked items)."""
    write_candidate_features(
        out,
        rows,
        request,
        centroid,
        item_popularity,
        memory=world.population.memory_items,
        memory_rows=request.users,
    )


def write_candidate_features(
    out: NDArray[np.float32],
    rows: NDArray[np.int64],
    request: RecommendRequest,
    centroid: NDArray[np.float32],
    item_popularity: NDArray[np.float32],
    *,
    memory: NDArray[np.int32],
    memory_rows: NDArray[np.int64],
) -> None:
    """:func:`write_features` with the seen items given: requesting user ``i`` has seen the items
    of ``memory[memory_rows[i]]`` (−1 empty), e.g. the population's memory rings or
    ``request.history`` with ``memory_rows = arange(n)``."""
    cat = request.catalog
    norm = np.linalg.norm(centroid, axis=1, keepdims=True)
    unit = (centroid / np.maximum(norm, np.float32(1e-9))).astype(np.float32)
    candidates = np.ascontiguousarray(request.candidates, dtype=np.int32)

    def write(part: slice) -> None:
        kernels.candidate_features(
            out,
            rows[part],
            candidates[part],
            memory_rows[part],
            memory,
            cat.topic,
            item_popularity,
            cat.quality,
            cat.embedding,
            unit[part],
        )

    kernels.by_rows(write, request.n)


def context_features(
    *,
    topic: NDArray[np.int16],
    memory_items: NDArray[np.int32],
    memory_reaction: NDArray[np.int8],
    session_pages: NDArray[np.integer],
    last_page: NDArray[np.float32],
    session_clicks: NDArray[np.integer],
    session_items: NDArray[np.integer],
    hour: int,
    page: int,
    instruction_codes: NDArray[np.float32],
    pages_since_instruction: NDArray[np.integer],
) -> dict[str, NDArray[np.float32]]:
    """The ``history``, ``engagement`` and ``instruction`` observations of ``n`` users (see
    :class:`FeedEnv`) from what the platform logged, row ``i`` for user ``i``: the memory of
    examined items with their reactions (``[n, M]``, −1 empty; reaction ≥ 1 is a click), session
    pages, the last page's (examined, clicks, likes, mean dwell of clicks), the session's clicks
    and examined items, the hour of day, the page size ``k``, the parsed standing instructions
    (``[n, 2T + 1]``, :class:`~recoworld.policies.parsing.InstructionCodes`) and the pages since
    them (−1: no instruction)."""
    n = memory_items.shape[0]
    n_topics = (instruction_codes.shape[1] - 1) // 2
    history = np.empty((n, 2 * n_topics), np.float32)
    kernels.by_rows(
        lambda rows: kernels.history_shares(
            history[rows], memory_items[rows], memory_reaction[rows], topic
        ),
        n,
    )
    angle = 2 * math.pi * hour / 24.0
    size = float(page)
    engagement = np.stack(
        [
            np.minimum(session_pages / 50.0, 1.0),
            last_page[:, 0] / size,
            last_page[:, 1] / size,
            last_page[:, 2] / size,
            np.minimum(last_page[:, 3] / 60.0, 5.0),
            session_clicks / np.maximum(session_items, 1),
            np.full(n, math.sin(angle)),
            np.full(n, math.cos(angle)),
        ],
        axis=1,
    ).astype(np.float32)
    pages = pages_since_instruction
    age = np.where(pages >= 0, 1.0 / (1.0 + np.maximum(pages, 0)), 0.0)
    instruction = np.concatenate([instruction_codes, age[:, None].astype(np.float32)], axis=1)
    return {
        "history": history,
        "engagement": engagement,
        "instruction": instruction.astype(np.float32),
    }


def decode_slates(
    config: FeedEnvConfig,
    candidates: NDArray[np.int32],
    actions: NDArray,
    features: Callable[[], NDArray[np.float32]],
) -> Slates:
    """The slates that ``actions`` (one row per requesting user) stand for, over ``candidates``
    (``[n, C]``), by ``config.action_mode`` (see :class:`FeedEnv`); ``features`` gives the
    ``[n, C, F]`` candidate features (read in ``weights`` mode only). Propensity 1."""
    n = candidates.shape[0]
    k, c = config.k, config.n_candidates
    if config.action_mode == "weights":
        scores = np.einsum("ncf,nf->nc", features(), actions.astype(np.float32))
        cols = top_k(scores, k)
    else:
        cols = actions.reshape(n, k).astype(np.int64)
        if ((cols < 0) | (cols >= c)).any():
            raise ConfigError(f"actions must be candidate indices in 0..{c - 1}")
        cols = _dedupe(cols, c)
        scores = None
    items = np.take_along_axis(candidates, cols, axis=1)
    return Slates(
        items=items,
        scores=np.zeros(items.shape, np.float32)
        if scores is None
        else np.take_along_axis(scores, cols, axis=1).astype(np.float32),
        propensities=np.ones(items.shape, np.float32),
    )


def request_features(
    world: World,
    request: RecommendRequest,
    centroid: NDArray[np.float32],
    item_popularity: NDArray[np.float32],
) -> NDArray[np.float32]:
    """``[n, C, T + 4]`` features of each requesting user's candidates (see
    :func:`write_features`)."""
    out = np.zeros(
        (request.n, request.candidates.shape[1], world.catalog.n_topics + _ITEM_EXTRA), np.float32
    )
    write_features(out, np.arange(request.n), world, request, centroid, item_popularity)
    return out


def _dedupe(cols: NDArray[np.int64], n_candidates: int) -> NDArray[np.int64]:
    """Documented duplicate rule: a repeated index becomes the lowest unused candidate index."""
    return kernels.dedupe_slates(np.ascontiguousarray(cols, np.int64), n_candidates)


def _parse(kwargs: dict[str, Any]) -> FeedEnvConfig:
    return from_mapping(FeedEnvConfig, kwargs, path="env")


class FeedEnv(gym.Env[dict[str, Any], Any]):
    """Feed — the agent is the recommender serving one simulated user.

    ## Description
    Each step the agent composes one page (a slate) for one numeric user of the scenario, who
    reviews it item by item (clicks, likes, shares, comments, dwell), updates its mindset, may
    speak up with a reflective instruction, and may leave. Each episode is a brand-new user drawn
    from the scenario's population. ``recoworld/FeedLifelong-v0`` follows one user over days of
    sessions instead.

    ## Agents
    One: the recommender.

    ## Observation
    A one-level ``Dict`` of float32 ``Box``es — only what a platform could observe:

    * ``candidates`` ``[C·(T + 4)]``, row-major ``[C, T + 4]``: per candidate its topic one-hot,
      popularity, quality, already seen, and affinity to the user's recent clicks;
    * ``history`` ``[2T]``: topic shares of the recently examined and clicked items;
    * ``engagement`` ``[8]``: session pages, the last page's examined items, clicks, likes and
      dwell, session CTR, hour of day (sine, cosine);
    * ``instruction`` ``[2T + 2]``: the last instruction's text as read by
      :func:`recoworld.policies.parsing.parse_instruction` — topics more, topics less, fresh —
      and its recency.

    ``oracle=True`` adds ``oracle``, the hidden state; ``observe_text=True`` adds
    ``instruction_text``, the words themselves, as a ``Text`` space.

    ## Action
    ``slate`` (default): ``MultiDiscrete([C] * k)``, candidate indices in page order; a repeated
    index is replaced by the lowest unused candidate index. ``item`` (FeedItem-v0): ``Discrete(C)``,
    a one-item page, with ``action_masks()`` (unseen candidates). ``weights`` (FeedWeights-v0):
    ``Box(-1, 1, (T + 4,))`` weights over the candidate features; the page is the top-k scores.

    ## Reward
    Per examined item: 1 per click, 0.5 per like, 1 per share, 0.5 per comment. Lifelong: plus
    ``return_bonus`` each time the user comes back for another session.

    ## Termination
    ``terminated`` when the user leaves the session (lifelong: when it churns). ``truncated`` at
    the step limit (Feed-v0: 100 pages) or, lifelong, after ``days``.

    ## Arguments
    See :class:`FeedEnvConfig`: ``scenario``, ``n_items``, ``n_candidates``, ``slate_size``,
    ``action_mode``, ``lifelong``, ``days``, ``return_bonus``, ``observe_text``, ``oracle``,
    ``randomize`` (domain randomization), ``overrides``.

    ## Version History
    * v0: initial release.
    """

    metadata = {"render_modes": []}  # noqa: RUF012 - Gymnasium declares it an instance field

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        if render_mode is not None:
            raise RenderModeError(
                f"env.render_mode: this env has no render modes, got {render_mode!r}"
            )
        self.render_mode = render_mode
        self.config = _parse(kwargs)
        self.core: FeedCore | None = None
        obs_space, self.action_space = feed_spaces(self.config)
        if self.config.observe_text:
            obs_space = spaces.Dict(
                {
                    **obs_space.spaces,
                    "instruction_text": spaces.Text(
                        min_length=0, max_length=_TEXT_MAX, charset=_CHARSET
                    ),
                }
            )
        self.observation_space = obs_space
        self._slot = np.zeros(1, np.int64)

    def _obs(self) -> dict[str, Any]:
        assert self.core is not None
        obs: dict[str, Any] = {k: v[0] for k, v in self.core.observe().items()}
        if self.config.observe_text:
            obs["instruction_text"] = self._text()
        return obs

    def _text(self) -> str:
        assert self.core is not None
        text = (self.core.instruction_texts()[0] or "")[:_TEXT_MAX]
        return "".join(ch if ch in _CHARSET_SET else "?" for ch in text)

    def _info(self, **extra: Any) -> dict[str, Any]:
        assert self.core is not None
        pop = self.core.sim.world.population
        return {
            "instruction": self._text(),
            "session_pages": int(pop.session_pages[0]),
            "sessions": int(pop.n_sessions[0]),
            **extra,
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        if self.core is None or seed is not None:
            core_seed = seed if seed is not None else int(self.np_random.integers(2**31 - 1))
            self.core = FeedCore(self.config, 1, seed=core_seed)
        else:
            self.core.abandon()
        self.core.new_users(self._slot, self.np_random)
        self.core.begin()
        return self._obs(), self._info()

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        core = self.core
        if core is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if core.request is None:
            raise gym.error.ResetNeeded("the episode is over; call reset()")
        outcome, reward = core.finish(np.asarray(action)[None, ...])
        pop, clock = core.sim.world.population, core.sim.world.clock
        left = bool(outcome.ended is not None and outcome.ended.size > 0)
        total = float(reward[0])
        terminated = truncated = returned = False
        if not self.config.lifelong:
            terminated = left
            if not left:
                core.begin()
        else:
            horizon = core.episode_start[0] + round(self.config.days * clock.ticks_per_day)
            if left and pop.churned[0]:
                terminated = True
            else:
                # Between sessions time passes tick by tick until the user's own return.
                request = None
                while clock.tick < horizon:
                    request = core.begin()
                    if request is not None:
                        break
                    core.sim.end_tick(None)
                truncated = request is None
                returned = left and not truncated
                if returned:
                    total += self.config.return_bonus
        info = self._info(
            clicks=int(core.last[0, 1]), examined=int(core.last[0, 0]), returned=returned
        )
        return self._obs(), total, terminated, truncated, info

    def action_masks(self) -> NDArray[np.bool_]:
        """Valid actions in ``item`` mode (candidates the user has not seen), for MaskablePPO."""
        if self.core is None:
            return np.ones(self.config.n_candidates, bool)
        return self.core.action_masks()[0]


class FeedVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` Feed users simulated together in one process (numpy over users).

    The same dynamics, observations, actions and rewards as :class:`FeedEnv`, batched: one tick
    of the schedule serves every slot at once. Episodes are truncated after
    ``max_episode_steps`` pages (default 100). Autoreset (``autoreset_mode``):

    * ``next_step`` (default, Gymnasium's): the step after a slot's episode ends returns that
      slot's reset observation (its action is ignored), reward 0;
    * ``same_step`` (Stable-Baselines3's): the step that ends an episode already returns the next
      user's first observation; the final one is in ``info["final_obs"]`` (an object array, set
      where ``info["_final_obs"]``). Final observations carry no candidates (all zeros).

    The users' page review and the observation's candidate features run on all the cores the
    process may use (``RECOWORLD_THREADS`` to set how many); results do not depend on the count.
    """

    def __init__(
        self,
        num_envs: int = 1,
        max_episode_steps: int = 100,
        autoreset_mode: Literal["next_step", "same_step"] = "next_step",
        **kwargs: Any,
    ) -> None:
        self.config = _parse(kwargs)
        if self.config.lifelong or self.config.observe_text:
            raise ConfigError(
                "env: the native vector env supports neither lifelong nor observe_text; use "
                "gymnasium.make_vec(..., vectorization_mode='sync') for those"
            )
        if autoreset_mode not in ("next_step", "same_step"):
            raise ConfigError(
                f"env.autoreset_mode: expected 'next_step' or 'same_step', got {autoreset_mode!r}"
            )
        self.same_step = autoreset_mode == "same_step"
        self.metadata = {
            "render_modes": [],
            "autoreset_mode": AutoresetMode.SAME_STEP
            if self.same_step
            else AutoresetMode.NEXT_STEP,
        }
        self.num_envs = int(num_envs)
        self.max_episode_steps = int(max_episode_steps)
        self.core: FeedCore | None = None
        self.single_observation_space, self.single_action_space = feed_spaces(self.config)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._steps = np.zeros(self.num_envs, np.int64)
        self._needs_reset = np.zeros(self.num_envs, bool)

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, NDArray[np.float32]], dict[str, Any]]:
        root = seed[0] if isinstance(seed, list) else seed
        super().reset(seed=root)
        core_seed = root if root is not None else int(self.np_random.integers(2**31 - 1))
        self.core = FeedCore(self.config, self.num_envs, seed=core_seed)
        self.core.new_users(np.arange(self.num_envs), self.np_random)
        self.core.begin()
        self._steps[:] = 0
        self._needs_reset[:] = False
        return self.core.observe(), {}

    def step(
        self, actions: Any
    ) -> tuple[dict[str, NDArray], NDArray, NDArray, NDArray, dict[str, Any]]:
        core = self.core
        if core is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        _, reward = core.finish(np.asarray(actions))
        self._steps += 1
        pop = core.sim.world.population
        resetting = self._needs_reset.copy()
        reward[resetting] = 0.0
        terminated = ~pop.in_session & ~resetting
        truncated = ~terminated & ~resetting & (self._steps >= self.max_episode_steps)
        ended = terminated | truncated
        # Users who ended are out for good: their slot gets a new user (now, or next step).
        pop.next_active[ended] = _NEVER
        pop.in_session[np.flatnonzero(truncated)] = False  # the agent's session is over
        info: dict[str, Any] = {}
        if self.same_step and ended.any():
            final = core.observe()
            final_obs = np.empty(self.num_envs, dtype=object)
            for slot in np.flatnonzero(ended):
                final_obs[slot] = {k: v[slot] for k, v in final.items()}
            info["final_obs"], info["_final_obs"] = final_obs, ended.copy()
            starting = np.flatnonzero(ended)
            self._needs_reset[:] = False
        else:
            starting = np.flatnonzero(resetting)
            self._needs_reset = ended
        if starting.size:
            core.new_users(starting, self.np_random)
            self._steps[starting] = 0
        core.begin()
        info["clicks"] = core.last[:, 1].astype(np.int64)
        info["examined"] = core.last[:, 0].astype(np.int64)
        return core.observe(), reward, terminated, truncated, info

    def action_masks(self) -> NDArray[np.bool_]:
        if self.core is None:
            return np.ones((self.num_envs, self.config.n_candidates), bool)
        return self.core.action_masks()
