"""The one in-memory form of a real dataset, whatever file format it came from.

Every loader in :mod:`recoworld.data.loaders` returns a :class:`Dataset`: dense integer ids
(users ``0..n_users-1``, items ``0..n_items-1``) with the file's own ids kept as ``raw_id``,
interactions in one table with the split each belongs to, item texts and topics (genres or
tags), user attributes where the data has them, and the social edges where it has them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

__all__ = ["SPLITS", "Dataset"]

#: Values of ``Dataset.interactions["split"]``: a given split, or ``all`` when the data has none.
SPLITS = ("train", "valid", "test", "all")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset (see the module docstring).

    Attributes:
        name: the dataset's name (``ml-latest-small``, ``ml-1m-agent4rec``, …).
        format: the loader that read it (``movielens``, ``ml1m``, ``agent4rec``, ``lastfm``,
            ``filmtrust``, ``ciaodvd``, ``generic``).
        source: the path it was read from.
        interactions: one row per interaction: ``user`` (int64), ``item`` (int64),
            ``rating`` (float32; NaN where the data has no stars), ``weight`` (float32: plays
            or other implicit strength; 1 where none), ``timestamp`` (int64 Unix seconds; −1
            where none), ``split`` (categorical over :data:`SPLITS`).
        items: one row per item, index = item id: ``raw_id`` (the file's id, as a string),
            ``title`` (str), ``topics`` (tuple of str: genres or tags; may be empty),
            ``text`` (str: whatever free text the data has), ``mean_rating`` (float; NaN),
            then any columns of the format's own (``docs/data.md``; e.g. ``ml1m_id``).
        users: one row per user, index = user id: ``raw_id`` (str) and, where present,
            ``gender``, ``age``, ``occupation`` (NA elsewhere), then any columns of the
            format's own (e.g. ``a4r_activity``).
        edges: social edges ``src``, ``dst`` (user ids; ``src`` follows / trusts / befriends
            ``dst``), or ``None`` when the data has no graph.
        directed: whether ``edges`` are directed (trust) or each friendship appears both ways.
        rating_scale: ``(lowest, highest, step)`` of the star ratings, or ``None`` (implicit).
    """

    name: str
    format: str
    source: str
    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    edges: pd.DataFrame | None = None
    directed: bool = False
    rating_scale: tuple[float, float, float] | None = None

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def split(self, *names: str) -> pd.DataFrame:
        """The interactions of the named splits (``"all"`` matches every row)."""
        if "all" in names:
            return self.interactions
        return self.interactions[self.interactions["split"].isin(names)]

    def topic_names(self) -> tuple[str, ...]:
        """Every topic (genre or tag) that some item carries, sorted."""
        names: set[str] = set()
        for topics in self.items["topics"]:
            names.update(topics)
        return tuple(sorted(names))

    def user_items(self, *splits: str) -> list[np.ndarray]:
        """Per user, the distinct items of its interactions in ``splits`` (sorted)."""
        rows = self.split(*splits)
        out: list[np.ndarray] = [np.zeros(0, np.int64)] * self.n_users
        for user, group in rows.groupby("user", sort=True)["item"]:
            out[cast(int, user)] = np.unique(group.to_numpy(np.int64))
        return out
