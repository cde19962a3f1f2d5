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
    counts = followers.indptr[sharers + 1] - followers.indptr[sharers]
    if sharers.size == 0 or counts.sum() == 0:
        return counts.astype(np.int64)
    owner, recipient = followers.gather(sharers)
    if graph.muted.size:  # a follower who muted the sharer does not receive it
        heard = ~graph.mutes(recipient, sharers[owner])
        owner, recipient = owner[heard], recipient[heard]
        counts = np.bincount(owner, minlength=sharers.size)
        if owner.size == 0:
            return counts.astype(np.int64)
    size = population.inbox_size
    order = np.argsort(recipient, kind="stable")
    recipient, owner = recipient[order], owner[order]
    starts = np.flatnonzero(np.r_[True, recipient[1:] != recipient[:-1]])
    group_len = np.diff(np.r_[starts, recipient.shape[0]])
    rank = np.arange(recipient.shape[0]) - np.repeat(starts, group_len)
    total = np.repeat(group_len, group_len)
    keep = rank >= total - size
    rec, own, rk = recipient[keep], owner[keep], rank[keep]
    slot = (population.inbox_ptr[rec] + rk) % size
    population.inbox_items[rec, slot] = items[own]
    population.inbox_from[rec, slot] = sharers[own]
    unique_rec = recipient[starts]
    population.inbox_ptr[unique_rec] += group_len.astype(np.int32)
    return counts.astype(np.int64)


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
    social_items = social_items[:, :cap]
    social_from = social_from[:, :cap]
    n_social = (social_items >= 0).sum(axis=1)
    packed = np.arange(social_items.shape[1]) < n_social[:, None]
    if ((social_items >= 0) != packed).any():
        raise ValueError("social_items must be packed to the left of each row (valid first)")
    length = k + cap
    items = np.full((n, length), -1, np.int32)
    source = np.full((n, length), SOURCE_PAD, np.int8)
    from_user = np.full((n, length), -1, np.int32)
    score = np.full((n, length), np.nan, np.float32)
    propensity = np.ones((n, length), np.float32)
    if config.rule == "interleave":
        j = np.arange(k)
        rec_pos = j[None, :] + np.minimum(j[None, :] // config.social_every, n_social[:, None])
        soc_pos = (np.arange(cap) + 1) * config.social_every + np.arange(cap)
        rows = np.arange(n)[:, None]
        items[rows, rec_pos] = slates.items
        source[rows, rec_pos] = SOURCE_REC
        score[rows, rec_pos] = slates.scores
        propensity[rows, rec_pos] = slates.propensities
    else:  # the slate first, in-network items after it
        soc_pos = k + np.arange(cap)
        items[:, :k] = slates.items
        source[:, :k] = SOURCE_REC
        score[:, :k] = slates.scores
        propensity[:, :k] = slates.propensities
    if cap:
        soc_valid = social_items >= 0
        r_idx, c_idx = np.nonzero(soc_valid)
        pos = soc_pos[c_idx]
        items[r_idx, pos] = social_items[r_idx, c_idx]
        source[r_idx, pos] = SOURCE_SOCIAL
        from_user[r_idx, pos] = social_from[r_idx, c_idx]
    return Feed(
        users=users,
        items=items,
        source=source,
        from_user=from_user,
        score=score,
        propensity=propensity,
    )
