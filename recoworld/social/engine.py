"""The social side of a tick: votes, classic diffusion behaviour, posts, follows, unfollows,
mutes, opinion models, stubbornness and moderation — numpy over the users on a page.

:class:`SocialEngine` holds no state of its own beyond what it draws once (which users follow a
classic model, which false items the platform detects); everything else lives in the world
(``Catalog``, ``Population``, ``SocialGraph``). The schedule (:mod:`recoworld.schedule`) calls its
methods at fixed points of stage 4 (:meth:`demote`) and stage 6 (the rest), in a fixed order,
each drawing from the run's ``social`` stream only when its behaviour is switched on — so a
scenario without social behaviours draws nothing and runs as before. Formulas are documented on
:class:`recoworld.config.SocialConfig` and :class:`recoworld.config.ModerationConfig`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from recoworld import _kernels as kernels
from recoworld.config import ScenarioConfig
from recoworld.social.classic import opinion_step
from recoworld.users.base import SOURCE_SOCIAL, Feed, Responses
from recoworld.world.world import World

__all__ = ["KIND", "SocialEngine", "SocialEvents", "votes_of"]

logger = logging.getLogger(__name__)

#: ``social.kind`` codes (``recoworld.trajectory.schema.SOCIAL_KINDS``).
KIND = {"share": 0, "post": 1, "follow": 2, "unfollow": 3, "mute": 4}


def votes_of(
    liked: NDArray[np.bool_],
    clicked: NDArray[np.bool_],
    rating: NDArray[np.floating],
    downvote_rating: float,
) -> NDArray[np.int64]:
    """The vote each response casts: +1 for a like, −1 for a click rated at most
    ``downvote_rating`` without a like, 0 otherwise (a NaN rating — no click — is no vote).
    Elementwise over arrays of one shape, e.g. a page or the ``responses`` table's columns."""
    liked = np.asarray(liked, dtype=bool)
    with np.errstate(invalid="ignore"):
        down = np.asarray(clicked, dtype=bool) & ~liked & (np.asarray(rating) <= downvote_rating)
    return liked.astype(np.int64) - down.astype(np.int64)


@dataclass(slots=True)
class SocialEvents:
    """Rows for the ``social`` table: one per share, post, follow, unfollow or mute."""

    user: NDArray[np.int64]
    kind: NDArray[np.int8]
    item: NDArray[np.int32]
    parent_user: NDArray[np.int32]
    target: NDArray[np.int32]
    recipients: NDArray[np.int64]

    @classmethod
    def of(
        cls,
        kind: str,
        user: NDArray[np.integer],
        *,
        item: NDArray[np.integer] | None = None,
        parent_user: NDArray[np.integer] | None = None,
        target: NDArray[np.integer] | None = None,
        recipients: NDArray[np.integer] | None = None,
    ) -> SocialEvents:
        n = int(np.asarray(user).shape[0])

        def col(values: NDArray[np.integer] | None, dtype: type) -> NDArray:
            return np.full(n, -1, dtype) if values is None else np.asarray(values, dtype)

        return cls(
            user=np.asarray(user, np.int64),
            kind=np.full(n, KIND[kind], np.int8),
            item=col(item, np.int32),
            parent_user=col(parent_user, np.int32),
            target=col(target, np.int32),
            recipients=np.zeros(n, np.int64) if recipients is None else col(recipients, np.int64),
        )

    @classmethod
    def concat(cls, parts: list[SocialEvents]) -> SocialEvents:
        if not parts:
            return cls.of("share", np.zeros(0, np.int64))
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in cls.__slots__))

    def __len__(self) -> int:
        return int(self.user.shape[0])


class SocialEngine:
    """Social behaviours of one run over its world (see the module docstring)."""

    def __init__(self, config: ScenarioConfig, world: World, rng: np.random.Generator) -> None:
        self.config = config
        self.social = config.social
        self.moderation = config.moderation
        self.world = world
        self.rng = rng
        s, n = self.social, world.n_users
        if s.post_rate > 0:
            world.catalog.reserve(s.post_capacity)
        self._posts_full = False
        # Who follows a classic model, drawn once (nobody draws anything when unused).
        self.opinion_users = self._members(s.opinion_model != "none", s.opinion_fraction, n)
        self.diffusion_users = self._members(s.diffusion_model != "none", s.diffusion_fraction, n)
        cat, m = world.catalog, self.moderation
        if m.warning_labels:
            detected = self.rng.random(cat.n_items) < m.label_recall
            cat.labeled |= cat.misinfo & detected
        self.refresh_items()

    def _members(self, on: bool, fraction: float, n: int) -> NDArray[np.bool_] | None:
        if not on:
            return None
        if fraction >= 1.0:
            return np.ones(n, dtype=bool)
        return self.rng.random(n) < fraction

    # -- items ----------------------------------------------------------------------------
    def refresh_items(self) -> None:
        """Recompute what labels and falsehood mean to users: ``utility_shift`` and
        ``share_factor`` of every item."""
        cat, u, m = self.world.catalog, self.config.users, self.moderation
        factor = np.where(cat.misinfo, np.float32(u.misinfo_share_boost), np.float32(1.0))
        factor = factor * np.where(cat.labeled, np.float32(1.0 - u.label_share_drop), 1.0)
        cat.share_factor[:] = factor * np.float32(1.0 - m.share_friction)
        cat.utility_shift[:] = np.where(cat.labeled, -np.float32(u.label_penalty), 0.0)

    def demote(self, feed: Feed) -> Feed:
        """Stage 4, ``moderation.downrank``: labeled items move to the end of each page."""
        if not self.moderation.downrank:
            return feed
        labeled = self.world.catalog.labeled[np.maximum(feed.items, 0)] & (feed.items >= 0)
        if not labeled.any():
            return feed
        order = np.argsort(labeled, axis=1, kind="stable")

        def take(a: NDArray) -> NDArray:
            return np.take_along_axis(a, order, axis=1)

        return Feed(
            users=feed.users,
            items=take(feed.items),
            source=take(feed.source),
            from_user=take(feed.from_user),
            score=take(feed.score),
            propensity=take(feed.propensity),
        )

    # -- stage 6 --------------------------------------------------------------------------
    def anchor(self, users: NDArray[np.int64]) -> None:
        """Stubbornness: pull the page's users back towards their initial opinion."""
        lam = self.social.stubbornness
        if lam <= 0:
            return
        pop = self.world.population
        x = pop.opinion[users]
        pop.opinion[users] = x + np.float32(lam) * (pop.opinion0[users] - x)

    def cascade_shares(self, feed: Feed, r: Responses) -> None:
        """Independent-cascade users share each in-network item they examined with probability
        ``diffusion_p`` and nothing else (in place on ``r.shared``)."""
        members = self.diffusion_users
        if members is None:
            return
        rows = members[feed.users]
        if not rows.any():
            return
        sub = np.flatnonzero(rows)
        eligible = r.examined[sub] & (feed.source[sub] == SOURCE_SOCIAL)
        draws = self.rng.random(eligible.shape)
        r.shared[sub] = eligible & (draws < self.social.diffusion_p)

    def count_votes(self, feed: Feed, r: Responses) -> None:
        """Likes are up-votes; a click rated at most ``downvote_rating`` without a like is a
        down-vote. The item's net score (``Catalog.votes``) is visible to later users."""
        rating = np.ascontiguousarray(r.rating, dtype=np.float32)
        kernels.count_votes(  # votes_of, added up per item in one compiled pass
            np.ascontiguousarray(feed.items, dtype=np.int32),
            r.liked,
            r.clicked,
            rating,
            np.float32(self.config.users.downvote_rating),  # compared in float32, as numpy does
            self.world.catalog.votes,
        )

    def post(self, t: int, users: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray]:
        """Users on a page post with probability ``post_rate``; returns ``(authors, items)``."""
        s = self.social
        empty = (np.zeros(0, np.int64), np.zeros(0, np.int32))
        if s.post_rate <= 0 or users.size == 0:
            return empty
        cat, pop = self.world.catalog, self.world.population
        authors = users[self.rng.random(users.size) < s.post_rate]
        free = cat.n_free
        if authors.size > free:
            if not self._posts_full:
                logger.warning(
                    "the catalogue's %d rows for posts are used up; raise social.post_capacity "
                    "to let users keep posting",
                    s.post_capacity,
                )
                self._posts_full = True
            authors = authors[:free]
        k = authors.size
        if k == 0:
            return empty
        dim = cat.embedding.shape[1]
        noise = self.rng.normal(0.0, self.config.world.item_spread / np.sqrt(dim), (k, dim))
        stance_noise = self.rng.normal(0.0, 0.2, k)
        quality = self.rng.beta(2.0, 2.0, k)
        taste = pop.taste[authors]
        emb = taste + noise.astype(np.float32)
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        topic = np.argmax(np.einsum("ud,td->ut", taste, cat.topic_centroids), axis=1)
        names = [cat.topic_names[t] for t in topic.tolist()]
        items = cat.add_items(
            title=[
                f"{name} post by user {u}" for name, u in zip(names, authors.tolist(), strict=True)
            ],
            summary=[
                f"A {name} post by user {u}."
                for name, u in zip(names, authors.tolist(), strict=True)
            ],
            topic=topic,
            embedding=emb,
            quality=quality,
            stance=np.clip(pop.opinion[authors] + stance_noise, -1.0, 1.0),
            created_tick=t,
            author=authors,
        )
        return authors, items

    def follow(self, feed: Feed, r: Responses) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Each user on the page proposes a follow with probability ``follow_rate``; returns the
        accepted ``(follower, followee)`` pairs (not yet applied)."""
        s = self.social
        none = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        if s.follow_rate <= 0:
            return none
        users = feed.users
        pop, graph, rng = self.world.population, self.world.graph, self.rng
        who = np.flatnonzero(rng.random(users.size) < s.follow_rate)
        if who.size == 0:
            return none
        u = users[who]
        mix = np.asarray(s.follow_mix, np.float64)
        way = rng.choice(3, size=who.size, p=mix / mix.sum())
        n = self.world.n_users
        # The platform's suggestion: a user drawn in proportion to its followers + 1.
        weight = np.cumsum(np.diff(graph.followers().indptr) + 1.0)
        suggested = np.searchsorted(weight, rng.random(who.size) * weight[-1], side="right")
        target = np.minimum(suggested, n - 1).astype(np.int64)
        # Triadic closure: a random followee of a random followee.
        tri = np.flatnonzero(way == 0)
        if tri.size:
            first = _random_neighbour(graph.indptr, graph.indices, u[tri], rng)
            ok = first >= 0
            second = _random_neighbour(graph.indptr, graph.indices, np.maximum(first, 0), rng)
            ok &= second >= 0
            target[tri[ok]] = second[ok]
        # Engagement: the sharer or author of an in-network item clicked on this page.
        eng = np.flatnonzero(way == 1)
        if eng.size:
            clicked_social = r.clicked[who[eng]] & (feed.source[who[eng]] == SOURCE_SOCIAL)
            has = clicked_social.any(axis=1)
            pick = np.argmax(clicked_social * rng.random(clicked_social.shape), axis=1)
            source = feed.from_user[who[eng], pick]
            ok = has & (source >= 0)
            target[eng[ok]] = source[ok]
        keep = target != u
        u, target = u[keep], target[keep]
        cos = np.einsum("ud,ud->u", pop.taste[u], pop.taste[target])
        gap = np.abs(pop.opinion[u] - pop.opinion[target])
        accept = np.maximum(cos, 0.0) * np.exp(-gap / s.follow_opinion_scale)
        yes = rng.random(u.size) < accept
        return u[yes], target[yes]

    def disagree(
        self, feed: Feed, r: Responses
    ) -> tuple[tuple[NDArray, NDArray], tuple[NDArray, NDArray]]:
        """Skipped in-network items far from the user's opinion make it unfollow (probability
        ``unfollow_rate``) or mute (``mute_rate``) their sharer; returns ``(unfollows, mutes)``."""
        s = self.social
        none = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        if s.unfollow_rate <= 0 and s.mute_rate <= 0:
            return none, none
        pop, cat = self.world.population, self.world.catalog
        skipped = r.examined & ~r.clicked & (feed.source == SOURCE_SOCIAL) & (feed.from_user >= 0)
        row, rank = np.nonzero(skipped)
        if row.size == 0:
            return none, none
        users = feed.users[row]
        stance = cat.stance[feed.items[row, rank]]
        far = np.abs(pop.opinion[users] - stance) > s.disagree_distance
        users, sharer = users[far], feed.from_user[row[far], rank[far]].astype(np.int64)
        draw = self.rng.random(users.size)
        unfollow = draw < s.unfollow_rate
        mute = ~unfollow & (draw < s.unfollow_rate + s.mute_rate)
        return (users[unfollow], sharer[unfollow]), (users[mute], sharer[mute])

    def opinion_models(self, t: int) -> None:
        """Every ``opinion_every`` ticks, one step of the classic opinion model for its users."""
        s, members = self.social, self.opinion_users
        if members is None or (t + 1) % s.opinion_every:
            return
        pop = self.world.population
        new = opinion_step(
            s.opinion_model,
            self.world.graph,
            pop.opinion.astype(np.float64),
            anchor=pop.opinion0.astype(np.float64),
            stubbornness=s.stubbornness,
            epsilon=s.opinion_epsilon,
            mu=s.opinion_mu,
            rng=self.rng,
        )
        pop.opinion[members] = np.clip(new[members], -1.0, 1.0).astype(np.float32)

    def community_notes(self) -> None:
        """False items shared ``community_notes`` times or more get a note (a label)."""
        after = self.moderation.community_notes
        if after <= 0:
            return
        cat = self.world.catalog
        noted = cat.misinfo & ~cat.labeled & (cat.shares >= after)
        if noted.any():
            cat.labeled |= noted
            self.refresh_items()


def _random_neighbour(
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    users: NDArray[np.int64],
    rng: np.random.Generator,
) -> NDArray[np.int64]:
    """One uniformly random neighbour per user in CSR row ``users`` (−1 for an empty row)."""
    start = indptr[users]
    degree = indptr[users + 1] - start
    offset = (rng.random(users.size) * degree).astype(np.int64)
    pick = np.full(users.size, -1, dtype=np.int64)
    has = degree > 0
    pick[has] = indices[start[has] + np.minimum(offset[has], degree[has] - 1)]
    return pick
