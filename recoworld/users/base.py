"""The population-level user contract shared by numeric and LLM users."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from recoworld.world.world import World

__all__ = ["Feed", "Instructions", "Responses", "ReturnPlan", "UserModel"]

#: Feed ``source`` codes.
SOURCE_PAD, SOURCE_REC, SOURCE_SOCIAL = -1, 0, 1


@dataclass(slots=True)
class Feed:
    """What each active user is shown this tick, in order (``[n, L]``, padded with −1).

    ``source``: 0 recommended, 1 in-network (shared by ``from_user``), −1 padding. ``score`` and
    ``propensity`` come from the policy (NaN score and propensity 1 for in-network items, which the
    deterministic feed rule placed).
    """

    users: NDArray[np.int64]
    items: NDArray[np.int32]
    source: NDArray[np.int8]
    from_user: NDArray[np.int32]
    score: NDArray[np.float32]
    propensity: NDArray[np.float32]

    @property
    def valid(self) -> NDArray[np.bool_]:
        return self.items >= 0


@dataclass(slots=True)
class Responses:
    """How each user reacted to its feed, and its mindset afterwards.

    Per impression (``[n, L]``): ``examined`` (the user reached it before leaving), ``clicked``,
    ``liked``, ``shared``, ``commented``, ``dwell`` (seconds, 0 unless clicked), ``rating`` (1–5,
    NaN unless clicked). Per user (``[n]``): ``left`` (left the session on this page), the new
    ``satisfaction``, ``fatigue``, ``boredom`` (``[n, n_topics]``), ``taste`` and ``opinion``.
    """

    examined: NDArray[np.bool_]
    clicked: NDArray[np.bool_]
    liked: NDArray[np.bool_]
    shared: NDArray[np.bool_]
    commented: NDArray[np.bool_]
    dwell: NDArray[np.float32]
    rating: NDArray[np.float32]
    left: NDArray[np.bool_]
    satisfaction: NDArray[np.float32]
    fatigue: NDArray[np.float32]
    boredom: NDArray[np.float32]
    taste: NDArray[np.float32]
    opinion: NDArray[np.float32]


@dataclass(slots=True)
class Instructions:
    """Reflective instructions given this tick: one row per instructing user.

    ``text`` is what the platform sees. The ground-truth intent — ``more`` / ``less`` topic index
    (−1 none), ``constraint`` (e.g. ``"fresh"``: nothing already seen; ``""`` none) — and the
    ``reason`` and disengagement ``risk`` are logged for evaluation only. ``text_ids``, when a
    model has interned the texts itself (:meth:`Population.intern_texts`), are their indices in
    ``Population.instruction_texts``; otherwise the schedule interns them.
    """

    users: NDArray[np.int64]
    text: list[str]
    more: NDArray[np.int16]
    less: NDArray[np.int16]
    constraint: list[str]
    reason: list[str]
    risk: NDArray[np.float32]
    text_ids: NDArray[np.int64] | None = None

    @classmethod
    def empty(cls) -> Instructions:
        return cls(
            users=np.zeros(0, np.int64),
            text=[],
            more=np.zeros(0, np.int16),
            less=np.zeros(0, np.int16),
            constraint=[],
            reason=[],
            risk=np.zeros(0, np.float32),
        )

    def __len__(self) -> int:
        return int(self.users.shape[0])


@dataclass(slots=True)
class ReturnPlan:
    """What users do after a session ends: ``returns`` (else churn) and the ``gap_ticks`` until
    they are ready to start another session (diurnal activity then decides when they do)."""

    returns: NDArray[np.bool_]
    gap_ticks: NDArray[np.int64]


class UserModel(ABC):
    """How a population of users responds. Implementations are vectorized over users.

    The schedule calls :meth:`respond` once per tick with every active user's feed (pure: it must
    not change the world; the schedule applies the result), then :meth:`instruct` for the users
    still in session, and :meth:`plan_return` for the users whose session ended.
    """

    name: str = "user-model"

    @abstractmethod
    def respond(self, world: World, feed: Feed, rng: np.random.Generator) -> Responses:
        """Review each feed item by item; return per-impression reactions and new mindsets."""

    @abstractmethod
    def instruct(
        self,
        world: World,
        users: NDArray[np.int64],
        page_items: NDArray[np.int32],
        rng: np.random.Generator,
    ) -> Instructions:
        """Reflective instructions from ``users`` (still in session) after the page they just saw.

        The schedule makes each returned intent the user's standing intent and its text the one
        the platform sees. The model may update the mindset of ``users`` here (e.g. expire old
        intents, or the hope of a user who just spoke up).
        """

    @abstractmethod
    def plan_return(
        self, world: World, users: NDArray[np.int64], rng: np.random.Generator
    ) -> ReturnPlan:
        """Whether and when ``users``, whose session just ended, come back."""

    def start_session(self, world: World, users: NDArray[np.int64]) -> None:  # noqa: B027
        """Reset the session mindset of ``users`` who start a session now (optional hook)."""
