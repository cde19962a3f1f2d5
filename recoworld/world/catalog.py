"""The catalogue: items as columns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["COUNTERS", "Catalog"]

#: Engagement counters the schedule updates, one per item.
COUNTERS = ("impressions", "clicks", "likes", "shares", "comments", "votes")


@dataclass(slots=True)
class Catalog:
    """Items as rows of numpy columns (item ``i`` is row ``i``).

    Static columns: ``title`` and ``summary`` (text, object arrays), ``topic`` (main topic index),
    ``embedding`` (unit vectors, float32 ``[n_items, dim]``), ``creator`` (user or creator id),
    ``quality`` in [0, 1], ``stance`` in [−1, 1] on the opinion axis, ``created_tick`` (negative:
    before the run). Counters, updated by the schedule: ``impressions``, ``clicks``, ``likes``,
    ``shares``, ``comments``, and ``votes`` (the visible net score: up-votes minus down-votes).
    ``topic_names`` names the topic indices; ``topic_centroids`` are the unit centroids of the
    topics in embedding space.

    Social columns: ``author`` (the user who posted the item, −1 for catalogue items),
    ``misinfo`` (the item is false), ``labeled`` (it carries a warning label or a community
    note), and what that means to users, kept by the schedule: ``utility_shift`` (added to an
    item's utility; a label's penalty) and ``share_factor`` (multiplies its share probability).
    Rows ``n_live`` and beyond are reserved for posts not yet made (:meth:`reserve`); only
    rows below ``n_live`` are ever candidates. :meth:`add_items` writes new items into the next
    free rows.
    """

    title: NDArray[np.object_]
    summary: NDArray[np.object_]
    topic: NDArray[np.int16]
    embedding: NDArray[np.float32]
    creator: NDArray[np.int32]
    quality: NDArray[np.float32]
    stance: NDArray[np.float32]
    created_tick: NDArray[np.int32]
    topic_names: tuple[str, ...]
    topic_centroids: NDArray[np.float32]
    impressions: NDArray[np.int64] = field(init=False)
    clicks: NDArray[np.int64] = field(init=False)
    likes: NDArray[np.int64] = field(init=False)
    shares: NDArray[np.int64] = field(init=False)
    comments: NDArray[np.int64] = field(init=False)
    votes: NDArray[np.int64] = field(init=False)
    author: NDArray[np.int32] = field(init=False)
    misinfo: NDArray[np.bool_] = field(init=False)
    labeled: NDArray[np.bool_] = field(init=False)
    utility_shift: NDArray[np.float32] = field(init=False)
    share_factor: NDArray[np.float32] = field(init=False)
    n_live: int = field(init=False)

    def __post_init__(self) -> None:
        n = self.topic.shape[0]
        for name in COUNTERS:
            setattr(self, name, np.zeros(n, dtype=np.int64))
        self.author = np.full(n, -1, dtype=np.int32)
        self.misinfo = np.zeros(n, dtype=bool)
        self.labeled = np.zeros(n, dtype=bool)
        self.utility_shift = np.zeros(n, dtype=np.float32)
        self.share_factor = np.ones(n, dtype=np.float32)
        self.n_live = n

    def reserve(self, n_rows: int) -> None:
        """Make sure at least ``n_rows`` rows after ``n_live`` are free for posts (appending
        blank rows when needed; rows already reserved are kept)."""
        missing = n_rows - (self.n_items - self.n_live)
        if missing <= 0:
            return
        dim = self.embedding.shape[1]
        blank_text = np.full(missing, "", dtype=object)
        grow: dict[str, NDArray] = {
            "title": blank_text,
            "summary": blank_text.copy(),
            "topic": np.zeros(missing, np.int16),
            "embedding": np.zeros((missing, dim), np.float32),
            "creator": np.full(missing, -1, np.int32),
            "quality": np.zeros(missing, np.float32),
            "stance": np.zeros(missing, np.float32),
            "created_tick": np.full(missing, np.iinfo(np.int32).max, np.int32),
            **{name: np.zeros(missing, np.int64) for name in COUNTERS},
            "author": np.full(missing, -1, np.int32),
            "misinfo": np.zeros(missing, bool),
            "labeled": np.zeros(missing, bool),
            "utility_shift": np.zeros(missing, np.float32),
            "share_factor": np.ones(missing, np.float32),
        }
        for name, extra in grow.items():
            setattr(self, name, np.concatenate([getattr(self, name), extra]))

    def add_items(
        self,
        *,
        title: Sequence[str],
        summary: Sequence[str],
        topic: ArrayLike,
        embedding: ArrayLike,
        quality: ArrayLike,
        stance: ArrayLike,
        created_tick: ArrayLike,
        author: ArrayLike | None = None,
        creator: ArrayLike | None = None,
        misinfo: ArrayLike | None = None,
    ) -> NDArray[np.int32]:
        """Write ``k`` new items into the next free rows and make them live (``n_live`` grows
        by ``k``); returns their ids.

        ``title`` and ``summary`` hold ``k`` texts, ``embedding`` ``[k, dim]`` (written as given:
        pass unit vectors); ``topic``, ``quality``, ``stance``, ``created_tick`` and the
        optional ``author`` (default −1, no user), ``creator`` (default −1) and ``misinfo``
        (default false) are ``k`` values or one for all. Counters start at 0, ``labeled`` false,
        ``utility_shift`` 0 and ``share_factor`` 1 — what a label or falsehood means to users is
        the social engine's (``SocialEngine.refresh_items``). When fewer than ``k`` rows are
        free, rows are reserved first (:meth:`reserve`), which reallocates every column: grow
        the catalogue before anything holds its arrays (before a ``Simulation`` is built), or
        :meth:`reserve` enough rows up front.
        """
        k = len(title)
        dim = self.embedding.shape[1]
        emb = np.asarray(embedding, dtype=np.float32)
        if len(summary) != k or emb.shape != (k, dim):
            raise ValueError(
                f"add_items: expected {k} summaries and embeddings of shape ({k}, {dim}), got "
                f"{len(summary)} and {emb.shape}"
            )
        if k == 0:
            return np.zeros(0, np.int32)
        if self.n_free < k:
            self.reserve(k)
        rows = np.arange(self.n_live, self.n_live + k)

        def values(value: ArrayLike | None, default: float, dtype: type) -> NDArray:
            given = default if value is None else value
            return np.broadcast_to(np.asarray(given, dtype=dtype), (k,))

        self.title[rows] = list(title)
        self.summary[rows] = list(summary)
        self.embedding[rows] = emb
        self.topic[rows] = values(topic, 0, np.int16)
        self.quality[rows] = values(quality, 0.0, np.float32)
        self.stance[rows] = values(stance, 0.0, np.float32)
        self.created_tick[rows] = values(created_tick, 0, np.int32)
        self.author[rows] = values(author, -1, np.int32)
        self.creator[rows] = values(creator, -1, np.int32)
        self.misinfo[rows] = values(misinfo, False, np.bool_)
        self.n_live += k
        return rows.astype(np.int32)

    @property
    def n_free(self) -> int:
        """Rows reserved for posts and not used yet."""
        return self.n_items - self.n_live

    @property
    def n_items(self) -> int:
        return int(self.topic.shape[0])

    @property
    def n_topics(self) -> int:
        return len(self.topic_names)

    def social_proof(self) -> NDArray[np.float32]:
        """Visible engagement per item in [0, 1]:
        ``log1p(likes + shares + comments) / log1p(max)``."""
        raw = np.log1p((self.likes + self.shares + self.comments).astype(np.float32))
        top = float(raw.max()) if raw.size else 0.0
        if top <= 0.0:
            return np.zeros_like(raw)
        return (raw / np.float32(top)).astype(np.float32)

    def herd(self, scale: float) -> NDArray[np.float32]:
        """The visible score's pull per item in (−1, 1): ``tanh(votes / scale)``."""
        return np.tanh(self.votes.astype(np.float32) / np.float32(scale)).astype(np.float32)
