"""What a user actually sees: the recommender's slate merged with in-network items.

In-network items reach a user through its inbox: when a user shares an item, it lands in the inbox
of each of its followers (a ring buffer of ``inbox_size``; the oldest entries are overwritten).
Composing a page takes the newest unseen inbox items and places them by the rule of
:class:`recoworld.config.FeedConfig`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from recoworld import _kernels as kernels
from recoworld.config import FeedConfig
from recoworld.policies.base import Slates
from recoworld.users.base import SOURCE_PAD, SOURCE_REC, SOURCE_SOCIAL, Feed
from recoworld.world.graph import SocialGraph
from recoworld.world.population import Population

__all__ = ["compose_feed", "deliver_shares", "social_capacity", "take_inbox"]


def social_capacity(config: FeedConfig) -> int:
    """Most in-network items one page can hold under the configured rule."""
    if config.rule == "none":
        return 0
    if config.rule == "interleave":
        return min(config.social_slots, config.slate_size // config.social_every)
    return config.social_slots


def take_inbox(
    population: Population,
    users: NDArray[np.int64],
    n_max: int,
    *,
    exclude: NDArray[np.int32] | None = None,
) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """Remove and return up to ``n_max`` of each user's newest inbox items they have not seen.

    Returns ``(items, sharers)``, each ``[len(users), n_max]``, valid entries first, −1 padding.
    Items in ``exclude`` (per user, e.g. this page's slate) are skipped, so that no item shows
    twice on a page. Taken entries, and stale ones (already seen, a second copy of the same item,
    or in ``exclude``), are cleared from the inbox.
    """
    n = users.shape[0]
    if n == 0:
        empty = np.full((0, n_max), -1, np.int32)
        return empty, empty.copy()
    if exclude is None:
        exclude = np.zeros((n, 0), np.int32)
    return kernels.take_inbox(
        population.inbox_items,
        population.inbox_from,
        population.inbox_ptr,
        population.memory_items,
        users,
        n_max,
        np.ascontiguousarray(exclude, dtype=np.int32),
    )


def deliver_shares(
    population: Population,
    graph: SocialGraph,
    sharers: NDArray[np.int64],
    items: NDArray[np.int32],
) -> NDArray[np.int64]:
    """Put each shared ``items[j]`` into the inbox of every follower of ``sharers[j]`` who has not
    muted them (a post is delivered the same way, its author as the sharer).

    Shares are delivered in the order given; a follower receiving more than ``inbox_size`` items in
    one tick keeps the last ones. Returns the number of recipients of each share.
    """
    followers = graph.followers()
    if sharers.size == 0:
        return np.zeros(0, np.int64)
    return kernels.deliver(
        (population.inbox_items, population.inbox_from, population.inbox_ptr),
        (followers.indptr, followers.indices),
        np.ascontiguousarray(sharers, dtype=np.int64),
        np.ascontiguousarray(items),
        graph.muted,
    )


def compose_feed(
    users: NDArray[np.int64],
    slates: Slates,
    social_items: NDArray[np.int32],
    social_from: NDArray[np.int32],
    config: FeedConfig,
) -> Feed:
    """Merge slates with in-network items by ``config.rule`` (see :class:`FeedConfig`).

    ``social_items`` must be packed to the left of each row (valid items first, then −1), as
    :func:`take_inbox` returns them; a :class:`ValueError` says so otherwise.
    """
    n, k = slates.items.shape
    cap = social_capacity(config)
    social_items = np.ascontiguousarray(social_items[:, :cap], dtype=np.int32)
    social_from = np.ascontiguousarray(social_from[:, :cap], dtype=np.int32)
    length = k + cap
    items = np.empty((n, length), np.int32)
    source = np.empty((n, length), np.int8)
    from_user = np.empty((n, length), np.int32)
    score = np.empty((n, length), np.float32)
    propensity = np.empty((n, length), np.float32)
    slate = (
        np.ascontiguousarray(slates.items, dtype=np.int32),
        np.ascontiguousarray(slates.scores, dtype=np.float32),
        np.ascontiguousarray(slates.propensities, dtype=np.float32),
    )
    every = config.social_every if config.rule == "interleave" else 0
    bad = kernels.compose_pages(
        slate,
        social_items,
        social_from,
        every,
        (items, source, from_user, score, propensity),
        (SOURCE_PAD, SOURCE_REC, SOURCE_SOCIAL),
    )
    if bad >= 0:
        raise ValueError("social_items must be packed to the left of each row (valid first)")
    return Feed(
        users=users,
        items=items,
        source=source,
        from_user=from_user,
        score=score,
        propensity=propensity,
    )
