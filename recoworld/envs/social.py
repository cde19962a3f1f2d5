"""PettingZoo face: a recommender and users as agents on a social feed, over the one schedule."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray
from pettingzoo import ParallelEnv

from recoworld._config import check, from_mapping, override
from recoworld.config import ScenarioConfig
from recoworld.envs.feed import (
    REWARD_WEIGHTS,
    AgentPolicy,
    _dedupe,
    popularity,
    request_features,
)
from recoworld.feed import social_capacity
from recoworld.policies.base import Slates
from recoworld.policies.parsing import InstructionCodes
from recoworld.scenario import load_scenario
from recoworld.schedule import Simulation
from recoworld.users.base import SOURCE_SOCIAL
from recoworld.users.external import ACTION_CODES, ExternalUserModel
from recoworld.users.numeric import NumericUserModel

__all__ = ["RECOMMENDER", "SocialFeedConfig", "SocialFeedEnv", "parallel_env", "user_agent"]

RECOMMENDER = "recommender"
_PHASES = ("recommend", "respond")


def user_agent(user: int) -> str:
    """The agent name of user ``user``: ``user_000042``."""
    return f"user_{user:06d}"


@dataclass(frozen=True, kw_only=True, slots=True)
class SocialFeedConfig:
    """Arguments of ``recoworld/SocialFeed-v0``.

    Attributes:
        scenario: shipped scenario name or YAML path (its user model, graph kind and feed rule).
        n_users: population size.
        n_items: catalogue size.
        n_candidates: candidates per user and page (``C``).
        slate_size: recommended items per page (``k``).
        external: which users are agents: ``all``, ``none`` (the built-in model drives every
            user; the recommender is the only agent), or a list of user indices.
        max_cycles: ticks per episode (each tick is two parallel steps).
        overrides: dotted scenario overrides.
    """

    scenario: str = "social"
    n_users: int = 16
    n_items: int = 400
    n_candidates: int = 10
    slate_size: int = 4
    external: Literal["all", "none"] | tuple[int, ...] = "all"
    max_cycles: int = 50
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(self.n_users >= 2, "n_users", "an integer >= 2", self.n_users)
        check(self.n_items >= self.n_candidates, "n_items", ">= n_candidates", self.n_items)
        check(
            1 <= self.slate_size <= self.n_candidates,
            "slate_size",
            f"an integer in 1..n_candidates ({self.n_candidates})",
            self.slate_size,
        )
        check(self.max_cycles >= 1, "max_cycles", "an integer >= 1", self.max_cycles)
        if isinstance(self.external, tuple):
            check(
                all(0 <= u < self.n_users for u in self.external)
                and len(set(self.external)) == len(self.external),
                "external",
                f"distinct user indices in 0..{self.n_users - 1}",
                self.external,
            )

    def external_users(self) -> NDArray[np.int64]:
        if self.external == "all":
            return np.arange(self.n_users, dtype=np.int64)
        if self.external == "none":
            return np.zeros(0, np.int64)
        return np.asarray(sorted(self.external), dtype=np.int64)


class SocialFeedEnv(ParallelEnv):  # type: ignore[misc]
    """SocialFeed — one recommender and many users on a social feed, as PettingZoo agents.

    ## Description
    A population on a follow graph is served by one recommender. Each tick takes two parallel
    steps: in the ``recommend`` phase the recommender's action becomes every user's slate and the
    feeds are composed (slate plus in-network shares); in the ``respond`` phase each user agent
    reacts item by item to the feed it now observes, and the tick completes (mindsets, shares to
    followers' inboxes, reflective instructions, leaving and returning). Actions of agents whose
    phase it is not are ignored; every observation carries the phase. Users not named as agents
    are driven by the built-in numeric model.

    ## Agents
    ``recommender``, and ``user_000000``, ``user_000001``, … for the external users. Users who
    leave or churn stay agents, with their ``active`` flag at 0 (nobody is resurrected).

    ## Observation
    Recommender: ``Box`` of ``N·C·(T + 4)`` candidate features (as in ``recoworld/Feed-v0``),
    ``N·(2T + 2)`` instruction encodings read from each user's words, ``N`` in-session flags and
    the phase. User: ``Box`` of ``L·(T + 3)`` features of the items on its feed (topic one-hot,
    quality, popularity, shared by a followee) and ``[active, phase, satisfaction, fatigue]``.

    ## Action
    Recommender: ``MultiDiscrete([C] * (N·k))``, user ``u``'s slate in positions
    ``u·k … u·k + k − 1`` (repeated indices: the lowest unused candidate). User:
    ``MultiDiscrete([4] * L + [2])``: per feed position 0 skip, 1 click, 2 click and like,
    3 click and share; then 1 to leave the session.

    ## Reward
    Given at the end of the ``respond`` phase. Recommender: the engagement of all users
    (per examined item 1 per click, 0.5 per like, 1 per share, 0.5 per comment). User: the change
    of its satisfaction over the tick.

    ## Termination
    No agent terminates; all are truncated after ``max_cycles`` ticks (``2·max_cycles`` steps).

    ## Arguments
    See :class:`SocialFeedConfig`: ``scenario``, ``n_users``, ``n_items``, ``n_candidates``,
    ``slate_size``, ``external``, ``max_cycles``, ``overrides``.

    ## Version History
    * v0: initial release.
    """

    metadata = {"name": "recoworld/SocialFeed-v0", "render_modes": [], "is_parallelizable": True}  # noqa: RUF012

    n_topics: int
    feed_length: int
    _rec_obs_size: int
    _user_obs_size: int
    _phase: int
    _cycle: int
    _centroid: NDArray[np.float32]
    _model: ExternalUserModel
    _codes: InstructionCodes

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        from recoworld.errors import RenderModeError

        if render_mode is not None:
            raise RenderModeError(
                f"env.render_mode: this env has no render modes, got {render_mode!r}"
            )
        self.render_mode = render_mode
        if isinstance(kwargs.get("external"), list):
            kwargs = {**kwargs, "external": tuple(kwargs["external"])}
        self.config = from_mapping(SocialFeedConfig, kwargs, path="env")
        self.external = self.config.external_users()
        self.possible_agents = [RECOMMENDER] + [user_agent(int(u)) for u in self.external]
        self.agents: list[str] = []
        self._sim: Simulation | None = None
        self._seeder: np.random.Generator | None = None
        sizes = self._scenario(seed=0)  # the spaces follow from the configuration alone
        self.n_topics = len(sizes.world.topics)
        self.feed_length = sizes.feed.slate_size + social_capacity(sizes.feed)
        n, c, t = self.config.n_users, self.config.n_candidates, self.n_topics
        self._rec_obs_size = n * c * (t + 4) + n * (2 * t + 2) + n + 1
        self._user_obs_size = self.feed_length * (t + 3) + 4
        self._phase = 0
        self._cycle = 0

    # -- spaces (the same object every call) -------------------------------------------------
    @functools.cache  # noqa: B019 - one cache per agent name, env-lifetime
    def observation_space(self, agent: str) -> spaces.Box:
        if agent == RECOMMENDER:
            return spaces.Box(-1.0, 1.5, (self._rec_obs_size,), np.float32)
        return spaces.Box(-1.0, 1.5, (self._user_obs_size,), np.float32)

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.MultiDiscrete:
        if agent == RECOMMENDER:
            n, k, c = self.config.n_users, self.config.slate_size, self.config.n_candidates
            return spaces.MultiDiscrete([c] * (n * k))
        return spaces.MultiDiscrete([len(ACTION_CODES)] * self.feed_length + [2])

    # -- episode ----------------------------------------------------------------------------
    def _scenario(self, seed: int) -> ScenarioConfig:
        cfg = self.config
        return override(
            load_scenario(cfg.scenario),
            {
                "seed": int(seed),
                "world.n_users": cfg.n_users,
                "world.n_items": cfg.n_items,
                "feed.n_candidates": cfg.n_candidates,
                "feed.slate_size": cfg.slate_size,
                "clock.ticks": cfg.max_cycles,
                **cfg.overrides,
            },
        )

    def _build(self, seed: int) -> None:
        cfg = self.config
        scenario = self._scenario(seed)
        self._model = ExternalUserModel(NumericUserModel(scenario.users), self.external)
        self._sim = Simulation(scenario, policy=AgentPolicy(), user_model=self._model)
        self._centroid = np.zeros(
            (cfg.n_users, self._sim.world.population.taste.shape[1]), np.float32
        )
        self._sim.start_sessions(np.arange(cfg.n_users))
        self._codes = InstructionCodes(self._sim.world.catalog.topic_names)

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, NDArray[np.float32]], dict[str, dict[str, Any]]]:
        # As in Gymnasium: a reset without a seed continues the stream of the last seeded one.
        if seed is not None:
            self._seeder = np.random.default_rng(seed)
        elif self._seeder is None:
            self._seeder = np.random.default_rng()
        self._build(seed if seed is not None else int(self._seeder.integers(2**31 - 1)))
        self.agents = list(self.possible_agents)
        self._phase = 0
        self._cycle = 0
        self._sim_or_raise().begin_tick()
        return self._observations(), self._infos()

    def step(
        self, actions: dict[str, Any]
    ) -> tuple[
        dict[str, NDArray[np.float32]],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        sim = self._sim_or_raise()
        rewards = dict.fromkeys(self.agents, 0.0)
        if self._phase == 0:
            request = sim.pending_request
            slates = None
            if request is not None:
                raw = np.asarray(actions.get(RECOMMENDER, np.zeros(0, np.int64)), np.int64)
                k, c = self.config.slate_size, self.config.n_candidates
                if raw.size != self.config.n_users * k:
                    raw = np.zeros(self.config.n_users * k, np.int64)
                cols = _dedupe(np.clip(raw.reshape(-1, k), 0, c - 1)[request.users], c)
                items = np.take_along_axis(request.candidates, cols, axis=1)
                slates = Slates(
                    items=items,
                    scores=np.zeros(items.shape, np.float32),
                    propensities=np.ones(items.shape, np.float32),
                )
            sim.compose(slates)
            self._phase = 1
        else:
            feed = sim.pending_feed
            if feed is not None:
                for user in feed.users[np.isin(feed.users, self.external)]:
                    name = user_agent(int(user))
                    if name in actions:
                        act = np.asarray(actions[name], np.int64)
                        self._model.set_actions(int(user), act[:-1], bool(act[-1]))
            before = sim.world.population.satisfaction.copy()
            outcome = sim.complete()
            if outcome.responses is not None and outcome.feed is not None:
                r = outcome.responses
                wc, wl, ws, wm = REWARD_WEIGHTS
                total = (
                    wc * r.clicked.sum()
                    + wl * r.liked.sum()
                    + ws * r.shared.sum()
                    + wm * r.commented.sum()
                )
                rewards[RECOMMENDER] = float(total)
                emb = sim.world.catalog.embedding[np.maximum(outcome.feed.items, 0)]
                clicked = np.einsum("nl,nld->nd", r.clicked.astype(np.float32), emb)
                users = outcome.feed.users
                self._centroid[users] = np.float32(0.8) * self._centroid[users] + clicked
            after = sim.world.population.satisfaction
            for user in self.external:
                rewards[user_agent(int(user))] = float(after[user] - before[user])
            self._cycle += 1
            self._phase = 0
            if self._cycle < self.config.max_cycles:
                sim.begin_tick()
        done = self._cycle >= self.config.max_cycles
        terminations = dict.fromkeys(self.agents, False)
        truncations = dict.fromkeys(self.agents, done)
        observations = self._observations()
        infos = self._infos()
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    # -- observations -----------------------------------------------------------------------
    def _sim_or_raise(self) -> Simulation:
        if self._sim is None:  # pragma: no cover
            raise RuntimeError("call reset() first")
        return self._sim

    def _observations(self) -> dict[str, NDArray[np.float32]]:
        sim = self._sim_or_raise()
        world = sim.world
        pop, cat = world.population, world.catalog
        n, c, t = self.config.n_users, self.config.n_candidates, self.n_topics
        phase = float(self._phase)
        obs: dict[str, NDArray[np.float32]] = {}
        request = sim.pending_request
        cand = np.zeros((n, c, t + 4), np.float32)
        if request is not None and self._phase == 0:
            feats = request_features(
                world, request, self._centroid[request.users], popularity(world)
            )
            cand[request.users] = feats
        instr = self._codes.for_users(pop, np.arange(n))
        age = np.where(pop.last_instruction >= 0, 1.0 / (1.0 + pop.pages_since_instruction), 0.0)
        rec = np.concatenate(
            [
                cand.ravel(),
                np.concatenate([instr, age[:, None]], axis=1).ravel(),
                pop.in_session.astype(np.float32),
                [phase],
            ]
        ).astype(np.float32)
        if RECOMMENDER in self.agents:
            obs[RECOMMENDER] = rec
        feed = sim.pending_feed
        row_of = {int(u): i for i, u in enumerate(feed.users)} if feed is not None else {}
        pop_score = popularity(world)
        for user in self.external:
            name = user_agent(int(user))
            if name not in self.agents:
                continue
            items = np.zeros((self.feed_length, t + 3), np.float32)
            row = row_of.get(int(user))
            if row is not None and feed is not None:
                ids = feed.items[row]
                valid = ids >= 0
                safe = np.maximum(ids, 0)
                items[valid, :t] = np.eye(t, dtype=np.float32)[cat.topic[safe[valid]]]
                items[valid, t] = cat.quality[safe[valid]]
                items[valid, t + 1] = pop_score[safe[valid]]
                items[valid, t + 2] = feed.source[row][valid] == SOURCE_SOCIAL
            state = [
                float(pop.in_session[user] and not pop.churned[user]),
                phase,
                float(min(pop.satisfaction[user], 1.5)),
                float(min(pop.fatigue[user], 1.5)),
            ]
            obs[name] = np.concatenate([items.ravel(), state]).astype(np.float32)
        return obs

    def _infos(self) -> dict[str, dict[str, Any]]:
        sim = self._sim_or_raise()
        pop = sim.world.population
        phase = _PHASES[self._phase]
        infos: dict[str, dict[str, Any]] = {}
        for agent in self.agents:
            if agent == RECOMMENDER:
                infos[agent] = {"phase": phase, "tick": int(sim.world.clock.tick)}
            else:
                user = int(agent.split("_")[1])
                infos[agent] = {
                    "phase": phase,
                    "instruction": pop.instruction_text(user) or "",
                    "churned": bool(pop.churned[user]),
                }
        return infos

    def state(self) -> NDArray[np.float32]:
        sim = self._sim_or_raise()
        pop = sim.world.population
        return np.concatenate(
            [pop.satisfaction, pop.fatigue, pop.in_session.astype(np.float32)]
        ).astype(np.float32)


def parallel_env(**kwargs: Any) -> SocialFeedEnv:
    """The parallel environment (PettingZoo's conventional constructor name)."""
    return SocialFeedEnv(**kwargs)


def env(**kwargs: Any) -> Any:
    """The AEC view of the parallel environment."""
    from pettingzoo.utils.conversions import parallel_to_aec

    return parallel_to_aec(SocialFeedEnv(**kwargs))
