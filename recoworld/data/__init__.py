"""Real data: loaders for MovieLens, Agent4Rec's ML-1M split, Last.fm, FilmTrust, CiaoDVD and a
documented generic format, all into one :class:`Dataset`. Loaders take a path and never download."""

from __future__ import annotations

from recoworld.data.dataset import SPLITS, Dataset
from recoworld.data.loaders import (
    FORMATS,
    ML1M_AGES,
    ML1M_OCCUPATIONS,
    detect_format,
    load_agent4rec,
    load_ciaodvd,
    load_dataset,
    load_filmtrust,
    load_generic,
    load_lastfm,
    load_ml1m,
    load_movielens,
    write_generic,
)

__all__ = [
    "FORMATS",
    "ML1M_AGES",
    "ML1M_OCCUPATIONS",
    "SPLITS",
    "Dataset",
    "detect_format",
    "load_agent4rec",
    "load_ciaodvd",
    "load_dataset",
    "load_filmtrust",
    "load_generic",
    "load_lastfm",
    "load_ml1m",
    "load_movielens",
    "write_generic",
]
