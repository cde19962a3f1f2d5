"""A trained reinforcement-learning agent as a recommender: a Stable-Baselines3 model, trained on
the feed environment (``recoworld/Feed-v0``), serving the users of any simulation.

The policy rebuilds, from each :class:`~recoworld.policies.base.RecommendRequest` and the
:class:`~recoworld.policies.base.Feedback` it was sent, the observation the environment would
have given the agent — with the environment's own feature code (:mod:`recoworld.envs.feed`) —
asks the model for its action, and decodes it into slates by the environment's rules.
Needs the ``rl`` extra (Stable-Baselines3 and torch), imported only when a policy is made.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from recoworld.errors import ConfigError, DependencyNotInstalled
from recoworld.policies.base import Feedback, RecommendRequest, Slates, candidate_columns

if TYPE_CHECKING:
    from recoworld.envs.feed import FeedEnvConfig
    from recoworld.world.catalog import Catalog

__all__ = ["RLPolicy"]

logger = logging.getLogger(__name__)


def _algorithm(algo: object) -> Any:
    """The Stable-Baselines3 (or sb3-contrib) algorithm class named ``algo``."""
    try:
        import stable_baselines3
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise DependencyNotInstalled(
            "policy 'rl' needs Stable-Baselines3: pip install 'recoworld[rl]'"
        ) from exc
    cls = getattr(stable_baselines3, algo, None) if isinstance(algo, str) else None
    if cls is None and isinstance(algo, str):
        try:
            cls = getattr(importlib.import_module("sb3_contrib"), algo, None)
        except ImportError:
            cls = None
    if not isinstance(cls, type) or not callable(getattr(cls, "load", None)):
        raise ConfigError(
            "policy.params.algo: expected the name of a Stable-Baselines3 algorithm (PPO, A2C, "
            f"DQN, SAC, TD3, DDPG, or an sb3-contrib one such as MaskablePPO), got {algo!r}"
        )
    return cls


def _describe(space: Any) -> str:
    spaces = getattr(space, "spaces", None)
    if isinstance(spaces, Mapping):
        return "{" + ", ".join(f"{k}: {_describe(v)}" for k, v in spaces.items()) + "}"
    return str(space)


class RLPolicy:
    """A trained Stable-Baselines3 agent of ``recoworld/Feed-v0`` recommending in a simulation.

    **Observation.** For each requesting user the policy builds the observation the feed
    environment (:class:`~recoworld.envs.feed.FeedEnv`, configured by ``env_kwargs``) gives its
    agent, with the environment's own functions (``write_candidate_features``,
    ``context_features``): per candidate its topic one-hot, popularity ``log1p(clicks)/max``,
    quality, already seen (from ``request.history``) and cosine affinity to the user's click
    centroid; the topic shares of the user's remembered and clicked items; engagement (session
    pages, the last page's examined items, clicks, likes and dwell, the session's click rate,
    the hour of day); the standing instruction as parsed from its words, and its recency. What the
    request does not carry, the policy keeps from the feedback it is sent, per user, exactly as
    the environment keeps it: the click centroid (``c ← 0.8·c + Σ clicked embeddings`` per page),
    the last page's counts, the session's clicks and examined items, and which remembered items
    were clicked. As in the environment the model was trained in, a new session starts with a
    zero click centroid and last page (``lifelong: false``; an episode is one session), or keeps
    them (``lifelong: true``). The hour of day is the request's tick under the training
    scenario's clock (``env_kwargs.scenario`` and ``overrides``).

    **Action.** ``model.predict(obs, deterministic)`` for all requesting users at once, decoded
    as the environment does: ``slate`` mode, candidate indices in page order, a repeated index
    replaced by the lowest unused one; ``item`` mode, one item; ``weights`` mode, the top ``k``
    of the candidate features weighted by the action. Deterministic predictions have
    propensity 1. With ``deterministic=False`` (discrete actions of an actor-critic model such as
    PPO or A2C) each slate position ``j`` is drawn from the model's action distribution with
    ``request.rng`` (reproducible), and its propensity is exact given the positions before it:
    ``π_j(c) + [c is the lowest unused index] · Σ_{t already shown} π_j(t)`` (the duplicate rule).

    **Score.** ``score(request)`` is ``k − r`` for the candidate the model puts at rank ``r`` and
    0 for the others, so wrappers (``epsilon_greedy``, ``instruction_aware``, ``mmr``) keep the
    model's order.

    The simulation's pages must match the model: ``feed.n_candidates`` and ``feed.slate_size``
    equal to the environment's ``n_candidates`` and ``slate_size`` (1 in ``item`` mode), and as
    many topics as the training scenario, else :class:`ConfigError` says what the model expects.
    Observations of hidden state (``oracle``) or text (``observe_text``) cannot be rebuilt and
    are refused.

    Args:
        path: the ``.zip`` written by the model's ``save`` (the suffix may be omitted).
        algo: its Stable-Baselines3 algorithm: ``PPO`` (default), ``A2C``, ``DQN``, ``SAC``,
            ``TD3``, ``DDPG``, or an sb3-contrib one (``MaskablePPO``, ...).
        env_kwargs: the ``recoworld/Feed-v0`` arguments the model was trained with
            (:class:`~recoworld.envs.feed.FeedEnvConfig`: ``scenario``, ``n_items``,
            ``n_candidates``, ``slate_size``, ``action_mode``, ``lifelong``, ``overrides``, ...);
            the observation and action spaces they give must be the model's.
        deterministic: take the model's most likely action (propensity 1); ``False`` samples it.
    """

    name = "rl"

    def __init__(
        self,
        *,
        path: str | os.PathLike[str],
        algo: str = "PPO",
        env_kwargs: Mapping[str, Any] | None = None,
        deterministic: bool = True,
    ) -> None:
        from recoworld._config import from_mapping
        from recoworld.envs.feed import FeedEnvConfig, feed_scenario, feed_spaces
        from recoworld.world.clock import Clock

        if not isinstance(deterministic, bool):
            raise ConfigError(
                f"policy.params.deterministic: expected true or false, got {deterministic!r}"
            )
        if env_kwargs is not None and not isinstance(env_kwargs, Mapping):
            raise ConfigError(
                "policy.params.env_kwargs: expected a mapping of recoworld/Feed-v0 arguments, "
                f"got {env_kwargs!r}"
            )
        config = from_mapping(
            FeedEnvConfig, dict(env_kwargs or {}), path="policy.params.env_kwargs"
        )
        for key in ("oracle", "observe_text"):
            if getattr(config, key):
                raise ConfigError(
                    f"policy.params.env_kwargs.{key}: a deployed policy cannot observe "
                    f"{'hidden user state' if key == 'oracle' else 'instruction text'}; "
                    "expected false"
                )
        if not isinstance(path, str | os.PathLike):
            raise ConfigError(f"policy.params.path: expected a file path, got {path!r}")
        file = os.fspath(path)
        if not os.path.isfile(file) and os.path.isfile(file + ".zip"):
            file += ".zip"
        if not os.path.isfile(file):
            raise ConfigError(
                f"policy.params.path: no saved model at {file!r} (expected the .zip written by "
                "the model's save())"
            )
        cls = _algorithm(algo)
        try:
            model = cls.load(
                file,
                device="cpu",
                custom_objects={"learning_rate": 0.0, "lr_schedule": lambda _: 0.0},
            )
        except Exception as exc:
            raise ConfigError(
                f"policy.params.path: could not load {file!r} as a {algo} model: {exc}"
            ) from exc
        observation_space, action_space = feed_spaces(config)
        if model.observation_space != observation_space or model.action_space != action_space:
            raise ConfigError(
                f"policy.params.env_kwargs: the model at {file!r} observes "
                f"{_describe(model.observation_space)} and acts in "
                f"{_describe(model.action_space)}, but env_kwargs {dict(env_kwargs or {})!r} "
                f"give {_describe(observation_space)} and {_describe(action_space)}; pass the "
                "recoworld/Feed-v0 arguments the model was trained with (scenario, "
                "n_candidates, slate_size, action_mode)"
            )
        if not deterministic and not (
            config.action_mode in ("slate", "item")
            and callable(getattr(model.policy, "get_distribution", None))
        ):
            raise ConfigError(
                "policy.params.deterministic: sampling (false) needs discrete actions (slate or "
                "item mode) from an actor-critic model such as PPO or A2C; expected true for "
                f"{algo} in {config.action_mode!r} mode"
            )
        scenario = feed_scenario(config, 1, 0)
        self.model = model
        self.config: FeedEnvConfig = config
        self.algo = str(algo)
        self.path = file
        self.deterministic = deterministic
        self._clock = Clock(
            tick_minutes=scenario.clock.tick_minutes, start_hour=scenario.clock.start_hour
        )
        self._n_topics = len(scenario.world.topics)
        self._codes: dict[str, NDArray[np.float32]] = {}
        self._catalog: Catalog | None = None
        # What the environment keeps per user, kept here from the feedback (grown on demand).
        self._memory_items = np.full((0, 0), -1, np.int32)
        self._memory_reaction = np.zeros((0, 0), np.int8)
        self._memory_ptr = np.zeros(0, np.int32)
        self._last = np.zeros((0, 4), np.float32)
        self._centroid = np.zeros((0, 0), np.float32)
        self._session_clicks = np.zeros(0, np.int32)
        self._session_items = np.zeros(0, np.int32)
        logger.debug("rl: loaded %s model from %s", algo, file)

    # -- state --------------------------------------------------------------------------------
    def _grow(self, n_users: int, memory: int, dim: int) -> None:
        rows = self._last.shape[0]
        if self._memory_items.shape[1] != memory or self._centroid.shape[1] != dim:
            # The first request sets the users' memory size and the embedding dimension.
            self._memory_items = np.full((rows, memory), -1, np.int32)
            self._memory_reaction = np.zeros((rows, memory), np.int8)
            self._centroid = np.zeros((rows, dim), np.float32)
        if rows < n_users:
            extra = ((0, n_users - rows), (0, 0))
            self._memory_items = np.pad(self._memory_items, extra, constant_values=-1)
            self._memory_reaction = np.pad(self._memory_reaction, extra)
            self._centroid = np.pad(self._centroid, extra)
            self._last = np.pad(self._last, extra)
            self._memory_ptr = np.pad(self._memory_ptr, extra[0])
            self._session_clicks = np.pad(self._session_clicks, extra[0])
            self._session_items = np.pad(self._session_items, extra[0])

    def _instruction_codes(self, request: RecommendRequest) -> NDArray[np.float32]:
        """``[n, 2T + 1]`` parsed standing instructions, each distinct text parsed once."""
        from recoworld.policies.parsing import encode_instructions

        topics = request.catalog.topic_names
        out = np.zeros((request.n, 2 * len(topics) + 1), np.float32)
        texts = np.asarray(request.instructions, dtype=object)
        spoke = np.flatnonzero(np.not_equal(texts, np.array(None, dtype=object)))
        if spoke.size:
            distinct, which = np.unique(texts[spoke].astype(str), return_inverse=True)
            fresh = [str(t) for t in distinct if str(t) not in self._codes]
            if fresh:
                self._codes.update(zip(fresh, encode_instructions(fresh, topics), strict=True))
            table = np.stack([self._codes[str(t)] for t in distinct])
            out[spoke] = table[which]
        return out

    def observe(self, request: RecommendRequest) -> dict[str, NDArray[np.float32]]:
        """The environment's observation of each requesting user (batched, row ``i`` for user
        ``i``); starts the session state of users on their first page."""
        from recoworld.envs.feed import (
            catalog_popularity,
            context_features,
            write_candidate_features,
        )

        self._check(request)
        cat, users, n = request.catalog, request.users, request.n
        self._catalog = cat
        history = np.ascontiguousarray(request.history, dtype=np.int32)
        self._grow(int(users.max()) + 1, history.shape[1], cat.embedding.shape[1])
        starting = users[request.session_pages == 0]
        self._session_clicks[starting] = 0
        self._session_items[starting] = 0
        if not self.config.lifelong:  # an episode of the environment is one session
            self._last[starting] = 0.0
            self._centroid[starting] = 0.0
        # Reactions of the remembered items: the feedback's record, where it is the same item.
        size = history.shape[1]
        slot = (self._memory_ptr[users, None] - 1 - np.arange(size)) % size
        kept = self._memory_items[users[:, None], slot]
        kept_reaction = self._memory_reaction[users[:, None], slot]
        reaction = np.where(kept == history, kept_reaction, 0).astype(np.int8)
        feats = np.empty((n, request.candidates.shape[1], self._n_topics + 4), np.float32)
        rows = np.arange(n, dtype=np.int64)
        write_candidate_features(
            feats,
            rows,
            request,
            self._centroid[users],
            catalog_popularity(cat),
            memory=history,
            memory_rows=rows,
        )
        context = context_features(
            topic=cat.topic,
            memory_items=history,
            memory_reaction=reaction,
            session_pages=request.session_pages,
            last_page=self._last[users],
            session_clicks=self._session_clicks[users],
            session_items=self._session_items[users],
            hour=self._clock.hour_of_day(request.tick),
            page=request.k,
            instruction_codes=self._instruction_codes(request),
            pages_since_instruction=request.instruction_age,
        )
        return {"candidates": feats.reshape(n, -1), **context}

    def _check(self, request: RecommendRequest) -> None:
        c, k, topics = request.candidates.shape[1], request.k, request.catalog.n_topics
        want = self.config
        if c != want.n_candidates or k != want.k or topics != self._n_topics:
            raise ConfigError(
                f"policy.params.env_kwargs: the model at {self.path!r} expects pages of "
                f"{want.n_candidates} candidates, slates of {want.k} items and {self._n_topics} "
                f"topics; this simulation has {c} candidates, slates of {k} and {topics} topics "
                f"(set feed.n_candidates: {want.n_candidates} and feed.slate_size: {want.k}, or "
                "use a model trained with this simulation's sizes)"
            )

    def _decide(self, request: RecommendRequest) -> tuple[NDArray[np.int64], Slates]:
        """Candidate columns ``[n, k]`` of the model's slates, and the slates."""
        from recoworld.envs.feed import _dedupe, decode_slates

        n, c = request.candidates.shape
        if n == 0:
            self._check(request)
            empty = np.zeros((0, request.k), np.float32)
            cols = np.zeros((0, request.k), np.int64)
            return cols, Slates(items=cols.astype(np.int32), scores=empty, propensities=empty)
        obs = self.observe(request)
        if self.deterministic:
            action, _ = self.model.predict(obs, deterministic=True)
            prop = None
        else:
            probs = self._action_probabilities(obs)  # [n, k, C]
            cdf = np.cumsum(probs, axis=2)
            draw = request.rng.random((n, probs.shape[1], 1)) * cdf[:, :, -1:]
            raw = np.minimum((cdf < draw).sum(axis=2), c - 1)
            action = _dedupe(raw.astype(np.int64), c)
            prop = _propensities(probs, action)
        feats = obs["candidates"].reshape(n, c, -1)
        slates = decode_slates(self.config, request.candidates, np.asarray(action), lambda: feats)
        cols = candidate_columns(request.candidates, slates.items)
        if prop is not None:
            slates = Slates(items=slates.items, scores=slates.scores, propensities=prop)
        return cols, slates

    def _action_probabilities(self, obs: dict[str, NDArray[np.float32]]) -> NDArray[np.float64]:
        import torch

        policy = self.model.policy
        tensor, _ = policy.obs_to_tensor(obs)
        with torch.no_grad():
            inner = policy.get_distribution(tensor).distribution
        heads = inner if isinstance(inner, list) else [inner]
        probs = np.stack([head.probs.cpu().numpy() for head in heads], axis=1)
        return probs.astype(np.float64)

    # -- the protocol -------------------------------------------------------------------------
    def score(self, request: RecommendRequest) -> NDArray[np.float32]:
        """``k − r`` for the candidate the model puts at rank ``r``, 0 for the others."""
        cols, _ = self._decide(request)
        n, k = cols.shape
        scores = np.zeros(request.candidates.shape, np.float32)
        rank_score = np.broadcast_to(np.arange(k, 0, -1, dtype=np.float32), (n, k))
        np.put_along_axis(scores, cols, rank_score, axis=1)
        return scores

    def recommend(self, request: RecommendRequest) -> Slates:
        return self._decide(request)[1]

    def update(self, feedback: Feedback) -> None:
        """Keep, per user, what the environment would: memory reactions, click centroid, the
        last page's counts, the session's clicks and examined items."""
        from recoworld import _kernels as kernels
        from recoworld.envs.feed import _CENTROID_DECAY, REWARD_WEIGHTS

        cat = self._catalog
        if cat is None or not feedback.users.size:
            return
        users, row = np.unique(feedback.users, return_inverse=True)
        self._grow(int(users[-1]) + 1, self._memory_items.shape[1], self._centroid.shape[1])
        m, length = users.size, int(feedback.ranks.max()) + 1
        rank = feedback.ranks.astype(np.intp)

        def page(values: NDArray[Any], fill: Any) -> NDArray[Any]:
            out = np.full((m, length), fill, values.dtype)
            out[row, rank] = values
            return out

        items = page(feedback.items.astype(np.int32), -1)
        examined, clicked = page(feedback.examined, False), page(feedback.clicked, False)
        liked, shared = page(feedback.liked, False), page(feedback.shared, False)
        reaction = np.select([shared, liked, clicked], [3, 2, 1], 0).astype(np.int8)
        kernels.remember_page(
            self._memory_items,
            self._memory_reaction,
            self._memory_ptr,
            users,
            items,
            reaction,
            examined,
        )
        reward, last = np.empty(m, np.float32), np.empty((m, 4), np.float32)
        kernels.page_summary(
            reward,
            last,
            (clicked, liked, shared, np.zeros_like(clicked)),
            examined,
            page(feedback.dwell.astype(np.float32), np.float32(0.0)),
            items,
            cat.embedding,
            REWARD_WEIGHTS,
            self._centroid,
            users,
            float(_CENTROID_DECAY),
        )
        self._last[users] = last
        self._session_items[users] += examined.sum(axis=1, dtype=np.int32)
        self._session_clicks[users] += clicked.sum(axis=1, dtype=np.int32)


def _propensities(probs: NDArray[np.float64], cols: NDArray[np.int64]) -> NDArray[np.float32]:
    """Per position ``j``, the probability of its candidate given the positions before it, under
    independent heads ``probs[:, j]`` and the duplicate rule (a repeat becomes the lowest unused
    index): ``π_j(c) + [c is the lowest unused] · Σ_{t used} π_j(t)``."""
    n, k, c = probs.shape
    rows = np.arange(n)
    used = np.zeros((n, c), bool)
    out = np.empty((n, k), np.float64)
    for j in range(k):  # over slate positions
        col = cols[:, j]
        head = probs[:, j, :]
        lowest = np.argmin(used, axis=1)
        out[:, j] = head[rows, col] + (col == lowest) * (head * used).sum(axis=1)
        used[rows, col] = True
    return np.clip(out, np.finfo(np.float32).tiny, 1.0).astype(np.float32)
