"""The catalogue: items as columns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = ["Catalog"]


@dataclass(slots=True)
class Catalog:
    """Items as rows of numpy columns (item ``i`` is row ``i``).

    Static columns: ``title`` and ``summary`` (text, object arrays), ``topic`` (main topic index),
    ``embedding`` (unit vectors, float32 ``[n_items, dim]``), ``creator`` (user or creator id),
    ``quality`` in [0, 1], ``stance`` in [−1, 1] on the opinion axis, ``created_tick`` (negative:
    before the run). Counters, updated by the schedule: ``impressions``, ``clicks``, ``likes``,
    ``shares``, ``comments``. ``topic_names`` names the topic indices; ``topic_centroids`` are the
    unit centroids of the topics in embedding space.
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

    def __post_init__(self) -> None:
        n = self.topic.shape[0]
        for name in ("impressions", "clicks", "likes", "shares", "comments"):
            setattr(self, name, np.zeros(n, dtype=np.int64))

    @property
    def n_items(self) -> int:
        return int(self.topic.shape[0])

    @property
    def n_topics(self) -> int:
        return len(self.topic_names)

    def social_proof(self) -> NDArray[np.float32]:
        """Visible engagement per item in [0, 1]: ``log1p(likes + shares) / log1p(max)``."""
        raw = np.log1p((self.likes + self.shares).astype(np.float32))
        top = float(raw.max()) if raw.size else 0.0
        if top <= 0.0:
            return np.zeros_like(raw)
        return (raw / np.float32(top)).astype(np.float32)
