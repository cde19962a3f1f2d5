"""A user-side agent between the platform and the user: iAgent-style re-ranking.

:class:`UserShieldPolicy` follows iAgent (Xu et al., 2025): an agent that works *for the user*,
sits between the platform's recommender and the user, and re-ranks what the platform offers
using only that user's own information. It wraps any platform policy; the platform learns and
ranks as usual, the shield only reorders the platform's own shortlist for each user.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from numpy.typing import NDArray

from recoworld.errors import ConfigError
from recoworld.policies.base import (
    Feedback,
    RecommendRequest,
    Slates,
    candidate_columns,
    top_k,
    validate_slates,
)
from recoworld.policies.parsing import parse_instruction
from recoworld.policies.rerank import Preferences, consolidate

__all__ = ["UserShieldPolicy"]

logger = logging.getLogger(__name__)


def _platform(platform: Any, params: dict[str, Any] | None) -> Any:
    if isinstance(platform, str):
        from recoworld.policies import make_policy

        platform = make_policy(platform, **(params or {}))
    elif params:
        raise ConfigError(
            "policy.params.platform_params: only for a platform given by name, "
            f"not for the object {getattr(platform, 'name', platform)!r}"
        )
    if not (
        callable(getattr(platform, "recommend", None))
        and callable(getattr(platform, "update", None))
    ):
        raise ConfigError(
            f"policy.params.platform: {getattr(platform, 'name', platform)!r} is not a policy "
            "(it needs recommend(request) and update(feedback))"
        )
    return platform


def _check(
    key: str, value: object, low: float, *, high: float | None = None, strict: bool = False
) -> None:
    """Raise :class:`ConfigError` naming ``policy.params.<key>`` unless ``value`` is in range."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    ok = number and (value > low if strict else value >= low)  # type: ignore[operator]
    if ok and high is not None:
        ok = value <= high  # type: ignore[operator]
    if not ok:
        if high is not None:
            expected = f"a number in [{low:g}, {high:g}]"
        else:
            expected = f"a number {'>' if strict else '>='} {low:g}"
        raise ConfigError(f"policy.params.{key}: expected {expected}, got {value!r}")


def _consolidate(current: Preferences | None, text: str, topics: tuple[str, ...]) -> Preferences:
    """One user's session preferences after its instruction ``text`` (RecBot-style turns)."""
    if current is not None and current.last_text == text:
        return current
    return consolidate(current, parse_instruction(text, topics), text)


class UserShieldPolicy:
    """A user-side agent (iAgent-style) that re-ranks a platform policy's shortlist for each user.

    **What it sees.** For user ``u``: the platform's own ranked slate for ``u`` over
    ``shortlist`` items (more than ``k``), ``u``'s recent history (``request.history``: what ``u``
    examined), ``u``'s own reflective instruction text (``request.instructions``, read with
    :func:`~recoworld.policies.parsing.parse_instruction`), and a per-user memory of ``u``'s own
    clicks and skips by topic, built only from the :class:`Feedback` rows of ``u``'s own
    impressions. That is nothing the platform does not show to ``u``, plus what ``u`` said and
    did. It never reads another user's rows, the hidden state (taste, mindset,
    ``request.oracle``) or the logged ground-truth intent. A privileged platform (the oracle)
    still gets ``request.oracle`` forwarded; the shield itself does not read it.

    **Shortlist.** The platform is asked for its slate on the same request with ``k`` widened
    to ``s = min(C, max(k, shortlist))`` (default ``2·k``): for a scoring platform, its top
    ``s`` candidates, in its order.

    **Re-ranking.** The item at platform rank ``j`` (0 = best) with topic ``t`` scores::

        trust · (1 − j/(s − 1)) + (1 − trust) · â_t − variety · h_t
          + boost · [t wanted] − refuse · [t refused] − seen_penalty · [seen]
          − refuse · [seen and fresh asked]

    with ``a_t = (clicks_t + prior · ā) / (clicks_t + skips_t + prior)`` the user's own smoothed
    click rate on topic ``t`` (``ā = (Σ clicks + 1) / (Σ clicks + Σ skips + 2)`` its overall
    rate), ``â`` that rescaled to [0, 1] over the user's shortlist, ``h_t`` the share of topic
    ``t`` in the user's history (a proxy for being tired of it), ``seen`` = in the history, and
    wanted / refused / fresh consolidated from the user's instructions this session (new
    instructions add to them; a topic asked for again leaves the refused set and vice versa;
    they end with the session). With ``trust = 1`` and no history, memory or instruction it
    serves the platform's order unchanged. The best ``k`` are served, best first.

    **Propensity**: the platform's propensity of each served item (1 for a deterministic
    platform); the shield's own step is deterministic.

    Args:
        platform: the platform policy, by registered name or as an object with ``recommend``
            and ``update``.
        platform_params: parameters of a platform given by name.
        shortlist: items taken from the platform per user (≥ 1; ``None``: ``2·k``); at least
            ``k`` and at most ``C`` are used.
        trust: weight of the platform's order against the user's own topic click rates, in
            [0, 1].
        boost: bonus for topics the user asked for (≥ 0).
        refuse: penalty for topics the user refused, and for seen items after "nothing I have
            seen" (≥ 0).
        seen_penalty: penalty for items already in the user's history (≥ 0).
        variety: penalty per unit share of the item's topic in the user's history (≥ 0).
        prior: pseudo-impressions pulling each topic's click rate to the user's overall rate
            (> 0).
    """

    name = "user_shield"

    def __init__(
        self,
        *,
        platform: Any = "most_popular",
        platform_params: dict[str, Any] | None = None,
        shortlist: int | None = None,
        trust: float = 0.5,
        boost: float = 1.0,
        refuse: float = 2.0,
        seen_penalty: float = 1.0,
        variety: float = 0.5,
        prior: float = 4.0,
    ) -> None:
        if shortlist is not None and not (
            isinstance(shortlist, int) and not isinstance(shortlist, bool) and shortlist >= 1
        ):
            raise ConfigError(
                "policy.params.shortlist: expected an integer >= 1 or null (2·k), "
                f"got {shortlist!r}"
            )
        _check("trust", trust, 0.0, high=1.0)
        for key, value in (
            ("boost", boost),
            ("refuse", refuse),
            ("seen_penalty", seen_penalty),
            ("variety", variety),
        ):
            _check(key, value, 0.0)
        _check("prior", prior, 0.0, strict=True)
        self.platform = _platform(platform, platform_params)
        self.name = f"user_shield[{self.platform.name}]"
        self.privileged = bool(getattr(self.platform, "privileged", False))
        self.shortlist = shortlist
        self.trust, self.boost, self.refuse = float(trust), float(boost), float(refuse)
        self.seen_penalty, self.variety, self.prior = (
            float(seen_penalty),
            float(variety),
            float(prior),
        )
        # The user-side memory: row u holds only user u's own clicks and skips per topic.
        self.clicks = np.zeros((0, 0), np.float32)
        self.skips = np.zeros((0, 0), np.float32)
        self.preferences: dict[int, Preferences] = {}
        self._topic: NDArray[np.integer] | None = None

    # -- the user-side memory ---------------------------------------------------------------
    def _grow(self, n_users: int, n_topics: int) -> None:
        rows, cols = self.clicks.shape
        if rows < n_users or cols < n_topics:
            pad = ((0, max(0, n_users - rows)), (0, max(0, n_topics - cols)))
            self.clicks, self.skips = np.pad(self.clicks, pad), np.pad(self.skips, pad)

    def affinity(self, users: NDArray[np.integer]) -> NDArray[np.float32]:
        """``[len(users), T]``: each user's own smoothed click rate per topic, ``a_t``."""
        clicks, skips = self.clicks[users], self.skips[users]
        total_c = clicks.sum(axis=1, keepdims=True)
        overall = (total_c + 1.0) / (total_c + skips.sum(axis=1, keepdims=True) + 2.0)
        return (clicks + self.prior * overall) / (clicks + skips + self.prior)

    # -- the protocol -------------------------------------------------------------------------
    def _shortlist(self, request: RecommendRequest) -> Slates:
        """The platform's own slate for each user over ``s`` items (see the class docstring)."""
        c = request.candidates.shape[1]
        s = min(c, max(request.k, self.shortlist if self.shortlist is not None else 2 * request.k))
        wide = RecommendRequest(
            tick=request.tick,
            users=request.users,
            candidates=request.candidates,
            k=s,
            catalog=request.catalog,
            history=lambda: request.history,
            instructions=lambda: request.instructions,
            instruction_age=request.instruction_age,
            session_pages=request.session_pages,
            rng=request.rng,
            oracle=request.oracle,
            graph=request.graph,
        )
        return validate_slates(self.platform.recommend(wide), wide, self.platform.name)

    def _rerank(self, request: RecommendRequest) -> tuple[Slates, NDArray[np.float32]]:
        """The platform's shortlist and the shield's score of each of its items, ``[n, s]``."""
        short = self._shortlist(request)
        items = short.items
        n, s = items.shape
        cat = request.catalog
        self._topic = cat.topic
        self._grow(int(request.users.max()) + 1 if n else 0, cat.n_topics)
        topic = cat.topic[items].astype(np.intp)
        rows = np.arange(n)[:, None]
        # The platform's order, 1 (best) .. 0 (last of the shortlist).
        platform = np.broadcast_to(1.0 - np.arange(s) / max(s - 1, 1), (n, s))
        # The user's own topic click rates, rescaled over its shortlist.
        own = self.affinity(request.users)[rows, topic]
        lo, hi = own.min(axis=1, keepdims=True), own.max(axis=1, keepdims=True)
        own = np.where(hi > lo, (own - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0)
        score = self.trust * platform + (1.0 - self.trust) * own
        # The user's own history: what it has seen, and how much of each topic.
        history = request.history
        seen = (items[:, :, None] == history[:, None, :]).any(axis=2)
        valid = history >= 0
        if self.variety and valid.any():
            n_topics = cat.n_topics
            hist_topic = cat.topic[np.where(valid, history, 0)].astype(np.int64)
            cell = (np.arange(n)[:, None] * n_topics + hist_topic)[valid]
            counts = np.bincount(cell, minlength=n * n_topics).reshape(n, n_topics)
            share = counts / np.maximum(valid.sum(axis=1, keepdims=True), 1)
            score -= self.variety * share[rows, topic]
        score -= self.seen_penalty * seen
        # The user's own words this session (a session without words has no preferences).
        texts = request.instructions
        spoke = np.fromiter((text is not None for text in texts), bool, count=n)
        if self.preferences and not spoke.all():
            remembered = np.fromiter(self.preferences, np.int64, count=len(self.preferences))
            for user in request.users[~spoke & np.isin(request.users, remembered)].tolist():
                del self.preferences[user]
        for row in np.flatnonzero(spoke).tolist():
            user, text = int(request.users[row]), texts[row]
            assert text is not None
            prefs = _consolidate(self.preferences.get(user), text, cat.topic_names)
            self.preferences[user] = prefs
            if prefs.more:
                score[row] += self.boost * np.isin(topic[row], list(prefs.more))
            if prefs.less:
                score[row] -= self.refuse * np.isin(topic[row], list(prefs.less))
            if prefs.fresh:
                score[row] -= self.refuse * seen[row]
        return short, score.astype(np.float32)

    def score(self, request: RecommendRequest) -> NDArray[np.float32]:
        """The shield's scores over the candidates, ``[n, C]``; −inf outside the shortlist."""
        short, score = self._rerank(request)
        cols = candidate_columns(request.candidates, short.items)
        out = np.full(request.candidates.shape, -np.inf, np.float32)
        rows = np.broadcast_to(np.arange(request.n)[:, None], cols.shape)
        ok = cols >= 0
        out[rows[ok], cols[ok]] = score[ok]
        return out

    def recommend(self, request: RecommendRequest) -> Slates:
        short, score = self._rerank(request)
        cols = top_k(score, request.k)
        return Slates(
            items=np.take_along_axis(short.items, cols, axis=1),
            scores=np.take_along_axis(score, cols, axis=1),
            propensities=np.take_along_axis(short.propensities, cols, axis=1),
        )

    def update(self, feedback: Feedback) -> None:
        """Forward to the platform; add each user's own examined impressions to its own row."""
        if getattr(self.platform, "wants_feedback", True):
            self.platform.update(feedback)
        if self._topic is not None and feedback.users.size:
            self._grow(int(feedback.users.max()) + 1, int(self._topic.max()) + 1)
            seen = feedback.examined
            users = feedback.users[seen]
            topic = self._topic[feedback.items[seen]].astype(np.intp)
            clicked = feedback.clicked[seen]
            np.add.at(self.clicks, (users[clicked], topic[clicked]), 1.0)
            np.add.at(self.skips, (users[~clicked], topic[~clicked]), 1.0)
        for user in feedback.left_users.tolist():  # the session ended: its words end with it
            self.preferences.pop(user, None)
