"""Users driven from outside (agents in a multi-agent environment), mixed with built-in users.

:class:`ExternalUserModel` wraps a built-in model. The built-in model responds for every user —
so its random streams do not depend on who is external — and then the rows of external users are
replaced by their agents' decisions. Their mindset keeps following the built-in model's rules,
applied to what the agent chose, so the state stays meaningful for observations and retention.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from recoworld.users.base import Feed, Instructions, Responses, ReturnPlan, UserModel

if TYPE_CHECKING:
    from recoworld.world.world import World

__all__ = ["ACTION_CODES", "ExternalUserModel"]

#: Per-item actions of an external user: 0 skip, 1 click, 2 click and like, 3 click and share.
ACTION_CODES = ("skip", "click", "like", "share")


class ExternalUserModel(UserModel):
    """``inner`` for everyone, overridden for the users in ``external`` by :meth:`set_actions`."""

    name = "external+numeric"

    def __init__(self, inner: UserModel, external: NDArray[np.integer]) -> None:
        self.inner = inner
        self.external = np.asarray(external, dtype=np.int64)
        self._items: dict[int, NDArray[np.int64]] = {}
        self._leave: dict[int, bool] = {}

    def set_actions(self, user: int, items: NDArray[np.integer], leave: bool) -> None:
        """The decisions of external ``user`` for the feed it is looking at (one code per rank)."""
        self._items[int(user)] = np.asarray(items, dtype=np.int64)
        self._leave[int(user)] = bool(leave)

    def start_session(self, world: World, users: NDArray[np.int64]) -> None:
        self.inner.start_session(world, users)

    def respond(self, world: World, feed: Feed, rng: np.random.Generator) -> Responses:
        r = self.inner.respond(world, feed, rng)
        rows = np.flatnonzero(np.isin(feed.users, self.external))
        dwell_seconds = float(getattr(getattr(self.inner, "config", None), "dwell_seconds", 25.0))
        for row in rows:
            user = int(feed.users[row])
            if user not in self._items:
                continue  # no decision given: the built-in model's response stands
            valid = feed.items[row] >= 0
            codes = np.zeros(valid.shape, np.int64)
            given = self._items[user][: valid.size]
            codes[: given.size] = given
            codes = np.where(valid, codes, 0)
            click = codes >= 1
            r.examined[row] = valid
            r.clicked[row] = click
            r.liked[row] = codes == 2
            r.shared[row] = codes == 3
            r.commented[row] = False
            r.dwell[row] = np.where(click, dwell_seconds, 0.0)
            r.rating[row] = np.where(click, 4.0, np.nan)
            r.left[row] = self._leave[user]
        self._items.clear()
        self._leave.clear()
        return r

    def instruct(
        self,
        world: World,
        users: NDArray[np.int64],
        page_items: NDArray[np.int32],
        rng: np.random.Generator,
    ) -> Instructions:
        return self.inner.instruct(world, users, page_items, rng)

    def plan_return(
        self, world: World, users: NDArray[np.int64], rng: np.random.Generator
    ) -> ReturnPlan:
        return self.inner.plan_return(world, users, rng)
