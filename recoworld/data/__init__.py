"""Real data: loaders for MovieLens, Agent4Rec's ML-1M split, Last.fm, FilmTrust, CiaoDVD and a
documented generic format, all into one :class:`Dataset`. Loaders take a path and never download."""

from __future__ import annotations

from recoworld.data.dataset import SPLITS, Dataset

__all__ = ["SPLITS", "Dataset"]
