"""Personas from interaction histories: who each user of a dataset is, as a persona pack.

Everything is computed from the interactions of the *train* split only (``split``); a dataset
without a given split is first split per user by :func:`train_split` (the held-out part is
never read), so personas built for a fidelity test know nothing of the held-out data.

**Agent4Rec's levels** (Agent4Rec, SIGIR 2024; its ``2_get_user_statistic.py``), each 1–3 from
cut points at percentiles over the users with a history (numpy's linear interpolation); a value
below the first cut point is level 1, below the second level 2, else level 3:

- *activity*: ``a_u`` = the user's number of interactions (rows); cut points at the 60th and
  90th percentiles (on play-count data — weights other than 1, e.g. Last.fm, where every user
  lists exactly its top artists and the count says nothing — ``a_u`` is the sum of plays);
- *diversity*: the user's genre counts ``c_ug`` (an item counts once for each of its genres),
  sorted decreasingly, shares ``c_ug / Σ_g c_ug`` and their running sum; ``d_u`` = the number of
  genres whose running sum is ≤ 0.8 (the genres that make up 80% of its mass; 0 when its top
  genre alone is above 80%); cut points at the 33rd and 66th percentiles of ``d_u`` over users
  with ``d_u ≥ 1`` (Agent4Rec drops the others; here they are level 1);
- *conformity* (data with stars only): ``δ_u = mean_{(u,i)} (r_ui − r̄_i)²``, ``r̄_i`` the item's
  mean rating over every user's train ratings; cut points at the 25th and 80th percentiles.
  Level 1 is Agent4Rec's "dedicated follower" (ratings close to the crowd's), 3 the "maverick".

Agent4Rec computed its cut points over all 6,040 ML-1M users and all of their ratings; here
they are over the dataset's users and their train interactions, so levels agree with the
``a4r_*`` columns of ``ml-1m-agent4rec`` only as far as the train part ranks users as the full
history does (:func:`agent4rec_agreement` reports the rate).

**recoworld's traits**, each in [0, 1] — the numeric model's trait columns. ``pct(x)`` is the
rank percentile among users with a history, ``(rank − 1) / (n − 1)`` with average ranks for ties
(:func:`recoworld.data.world.world_from_dataset` uses the same):

- ``activity = pct(a_u)``;
- ``diversity = pct(d_u + H_u / (log T + 1))``: Agent4Rec's genre count with ties broken by the
  normalized entropy ``H_u`` of the genre mix (so it orders users as the level does); without
  genres, the same on items weighted by plays (how many items make up 80% of the plays);
- ``conformity = 1 − pct(δ_u)`` with stars (the follower is the conformist); without stars,
  ``pct`` of the mean popularity ``log1p(n_i) / log1p(max n)`` of its items (the mainstream
  user is the conformist);
- ``patience``: with timestamps, ``pct`` of the mean number of interactions per session (a new
  session starts after :data:`SESSION_GAP_S` seconds without one); without timestamps it equals
  ``activity`` (Agent4Rec's activity levels describe frequency and tolerance to leaving as one);
- ``sociability``: with a social graph, ``pct`` of the user's number of distinct neighbours (in
  and out); without one, the numeric model's default population mean
  (:attr:`recoworld.config.UserModelConfig.sociability_mean`) for everyone — not identified.

**Interests and dislikes.** Positive interactions: rated at or above the user's own mean rating
(with stars), all of them otherwise. With ``c_g`` the user's positive genre counts, ``N = Σ c_g``,
``p_g`` the population's share of genre ``g`` among all positive genre counts and ``α`` =
:data:`SHRINK`, the user's smoothed share is ``q_g = (c_g + α p_g) / (N + α)`` and a genre's
*distinctiveness* its term of ``KL(q ‖ p)``: ``q_g log(q_g / p_g)``. Interests: the ``k`` most
distinctive genres with ``c_g ≥ 2`` and a positive term, ``k`` = 1, 2, 3 for diversity level 1, 2,
3 (the most frequent genre when none qualifies). Dislikes, with stars: genres rated at least
``n_g ≥ 2`` times whose shrunken mean relative rating ``Σ (r − r̄_u) / (n_g + 3)`` is at least
one rating step below zero, the two lowest; otherwise (and without stars) the common genre
(``p_g ≥ 3%``) the user avoids most, if its share is below a third of ``p_g``. Without genres
(Last.fm), interests are the titles of the user's top three items by weight and there are no
dislikes; without titles either (FilmTrust), "popular movies" or "lesser-known movies" by
whether the user's conformity trait is at least ½.

**Demographics** where the data has them (``gender``, ``age``, ``occupation``): ``F``/``M``
become ``woman``/``man``; ML-1M's age codes become the middle of their bracket
(:data:`ML1M_AGE_YEARS`). **Description**: a few sentences in the second person built from the
above (volume, genres, rating habits, session size), at most 600 characters.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recoworld.data.dataset import Dataset
from recoworld.errors import DatasetError
from recoworld.users.persona import LEVELS, PERSONA_SCHEMA, TRAITS, Persona, PersonaError

__all__ = [
    "ACTIVITY_PERCENTILES",
    "CONFORMITY_PERCENTILES",
    "DIVERSITY_MASS",
    "DIVERSITY_PERCENTILES",
    "ML1M_AGE_YEARS",
    "PACK_DIR",
    "SESSION_GAP_S",
    "SHRINK",
    "UserHistory",
    "agent4rec_agreement",
    "default_pack_path",
    "pack_provenance",
    "personas_from_dataset",
    "train_split",
    "user_history",
    "write_pack",
]

logger = logging.getLogger(__name__)

#: Agent4Rec's cut points (percentiles over users) of the three levels.
ACTIVITY_PERCENTILES = (60.0, 90.0)
DIVERSITY_PERCENTILES = (33.0, 66.0)
CONFORMITY_PERCENTILES = (25.0, 80.0)
#: The share of a user's genre mass whose genres count towards Agent4Rec's diversity.
DIVERSITY_MASS = 0.8
#: Seconds without an interaction after which a new session starts.
SESSION_GAP_S = 3600
#: Pseudo-count ``α`` of the smoothed genre shares.
SHRINK = 10.0
#: Where generated packs go by default (git-ignored: packs from the shared data are not committed).
PACK_DIR = Path("personas") / "generated"
#: ML-1M's age codes → the age a persona gets (the middle of the bracket; 16 for "under 18").
ML1M_AGE_YEARS: dict[int, int] = {1: 16, 18: 21, 25: 30, 35: 40, 45: 47, 50: 53, 56: 60}

_ML1M_FORMATS = ("ml1m", "agent4rec")
_GENDERS = {"f": "woman", "m": "man"}

#: Called as personas are built: (users done, users in all).
Progress = Callable[[int, int], None]


def train_split(dataset: Dataset, *, seed: int = 0) -> Dataset:
    """``dataset`` with a train / held-out split: its own when it has one, else the
    deterministic per-user split of :func:`recoworld.fidelity.protocol.holdout_split` (per user,
    the latest 20% of its items by timestamp are held out, a seeded random 20% without
    timestamps; users with fewer than 5 items keep all in train), so that personas, calibration
    and the fidelity benchmark all use one split."""
    from recoworld.fidelity.protocol import holdout_split

    return holdout_split(dataset, seed=seed)


def _rows(dataset: Dataset, split: Sequence[str], seed: int) -> tuple[Dataset, pd.DataFrame]:
    names = tuple(split)
    if not names:
        raise DatasetError("split: expected at least one split name, e.g. ('train',)")
    if "all" not in names:
        dataset = train_split(dataset, seed=seed)
    return dataset, dataset.split(*names)


def _pct(x: NDArray[np.floating]) -> NDArray[np.float64]:
    """Rank percentile in [0, 1]: ``(rank − 1) / (n − 1)``, average ranks for ties."""
    n = x.shape[0]
    if n == 0:
        return np.zeros(0)
    ranks = pd.Series(x).rank(method="average").to_numpy(np.float64) - 1.0
    return ranks / max(n - 1, 1)


def _levels(x: NDArray[np.floating], cuts: tuple[float, float], among: NDArray[np.bool_]) -> Any:
    """Agent4Rec's level of each value: 1 below the first percentile cut point (over ``among``),
    2 below the second, else 3."""
    if not among.any():
        return np.ones(x.shape[0], np.int64), (math.nan, math.nan)
    lo, hi = np.percentile(x[among], cuts)
    return np.where(x < lo, 1, np.where(x < hi, 2, 3)).astype(np.int64), (float(lo), float(hi))


@dataclass(frozen=True)
class UserHistory:
    """What :func:`user_history` computes, one row per user of the dataset.

    Attributes:
        table: indexed by user id; columns ``n`` (interactions), ``weight`` (their summed
            weight), ``activity_num``, ``diversity_num``, ``entropy``, ``deviation`` (NaN
            without stars), ``mean_rating`` (NaN), ``per_session`` (NaN without timestamps),
            ``degree``, the levels ``activity_level``, ``diversity_level``,
            ``conformity_level`` (0 where not computed) and the traits of
            :data:`recoworld.users.persona.TRAITS`.
        cut_points: per level, the two cut points in the level's own unit.
        has_stars, has_timestamps, has_topics, has_graph, weighted: what the data offers.
        topic_names: the genres (columns of the count matrices).
        counts: ``[n_users, T]`` genre counts over every row; ``positive``: over positive rows;
            ``relative``: sums of ``r − r̄_u`` (zeros without stars).
        rows: the train rows used.
    """

    table: pd.DataFrame
    cut_points: dict[str, tuple[float, float]]
    has_stars: bool
    has_timestamps: bool
    has_topics: bool
    has_graph: bool
    weighted: bool
    topic_names: tuple[str, ...]
    counts: NDArray[np.float64]
    positive: NDArray[np.float64]
    relative: NDArray[np.float64]
    rows: pd.DataFrame


def _topic_pairs(dataset: Dataset, names: tuple[str, ...]) -> tuple[NDArray[np.int64], ...]:
    """CSR of item → topic ids: ``indptr`` ``[n_items + 1]`` and ``indices``."""
    index = {t: j for j, t in enumerate(names)}
    lengths = np.zeros(dataset.n_items, np.int64)
    flat: list[int] = []
    for i, topics in enumerate(dataset.items["topics"]):
        ids = [index[t] for t in topics if t in index]
        lengths[i] = len(ids)
        flat.extend(ids)
    indptr = np.zeros(dataset.n_items + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return indptr, np.asarray(flat, np.int64)


def _genre_matrix(
    n_users: int,
    n_topics: int,
    users: NDArray[np.int64],
    items: NDArray[np.int64],
    weights: NDArray[np.float64],
    indptr: NDArray[np.int64],
    indices: NDArray[np.int64],
) -> NDArray[np.float64]:
    """``[n_users, T]``: Σ of ``weights`` over rows, once per topic of the row's item."""
    per_row = indptr[items + 1] - indptr[items]
    row_of = np.repeat(np.arange(items.size), per_row)
    starts = np.repeat(indptr[items], per_row)
    offset = np.arange(row_of.size) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    topic = indices[starts + offset] if row_of.size else np.zeros(0, np.int64)
    flat = users[row_of] * n_topics + topic
    out = np.bincount(flat, weights=weights[row_of], minlength=n_users * n_topics)
    return out.reshape(n_users, n_topics).astype(np.float64)


def _mass_count(matrix: NDArray[np.float64], mass: float) -> NDArray[np.int64]:
    """Per row: how many of its largest entries have a running share ≤ ``mass`` (Agent4Rec)."""
    total = matrix.sum(axis=1, keepdims=True)
    ordered = -np.sort(-matrix, axis=1)
    share = np.divide(ordered, total, out=np.zeros_like(ordered), where=total > 0)
    running = np.cumsum(share, axis=1)
    return ((running <= mass) & (ordered > 0)).sum(axis=1).astype(np.int64)


def _entropy(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
    total = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, total, out=np.zeros_like(matrix), where=total > 0)
    logs = np.log(np.where(share > 0, share, 1.0))
    return -(share * logs).sum(axis=1)


def _sessions(rows: pd.DataFrame, n_users: int) -> NDArray[np.float64]:
    """Mean interactions per session per user (NaN without a timestamp)."""
    timed = rows[rows["timestamp"] >= 0]
    out = np.full(n_users, np.nan)
    if len(timed) == 0:
        return out
    frame = timed[["user", "timestamp"]].sort_values(["user", "timestamp"], kind="stable")
    users = frame["user"].to_numpy(np.int64)
    times = frame["timestamp"].to_numpy(np.int64)
    new = np.ones(users.size, np.bool_)
    new[1:] = (users[1:] != users[:-1]) | (np.diff(times) > SESSION_GAP_S)
    sessions = np.bincount(users, weights=new.astype(np.float64), minlength=n_users)
    counts = np.bincount(users, minlength=n_users).astype(np.float64)
    has = sessions > 0
    out[has] = counts[has] / sessions[has]
    return out


def user_history(
    dataset: Dataset, *, split: Sequence[str] = ("train",), seed: int = 0
) -> UserHistory:
    """Per-user statistics, Agent4Rec's levels and recoworld's traits from the ``split`` rows
    (see the module docstring for every formula)."""
    from recoworld.config import UserModelConfig

    dataset, rows = _rows(dataset, split, seed)
    n_users, n_items = dataset.n_users, dataset.n_items
    users = rows["user"].to_numpy(np.int64)
    items = rows["item"].to_numpy(np.int64)
    rating = rows["rating"].to_numpy(np.float64)
    weight = rows["weight"].to_numpy(np.float64)
    stars = np.isfinite(rating)
    has_stars = bool(stars.any())
    weighted = bool(np.any(np.abs(weight - 1.0) > 1e-9))
    n = np.bincount(users, minlength=n_users).astype(np.float64)
    active = n > 0
    total_weight = np.bincount(users, weights=weight, minlength=n_users)
    table = pd.DataFrame(index=pd.RangeIndex(n_users, name="user"))
    table["n"] = n.astype(np.int64)
    table["weight"] = total_weight
    cut_points: dict[str, tuple[float, float]] = {}
    # Activity (Agent4Rec: rating count).
    volume = np.asarray(total_weight if weighted else n, np.float64)
    table["activity_num"] = volume
    level, cut_points["activity"] = _levels(volume, ACTIVITY_PERCENTILES, active)
    table["activity_level"] = np.where(active, level, 0)
    # Genres.
    names = dataset.topic_names()
    indptr, indices = _topic_pairs(dataset, names)
    has_topics = bool(len(names)) and bool(np.any(indptr[items + 1] > indptr[items]))
    user_mean = np.full(n_users, np.nan)
    if has_stars:
        sums = np.bincount(users[stars], weights=rating[stars], minlength=n_users)
        rated = np.bincount(users[stars], minlength=n_users)
        user_mean = np.where(rated > 0, sums / np.maximum(rated, 1), np.nan)
    positive_row = ~stars | (rating >= user_mean[users] - 1e-9)
    relative_row = np.where(stars, rating - np.nan_to_num(user_mean[users]), 0.0)
    t = len(names)
    ones = np.ones(users.size)
    counts = _genre_matrix(n_users, t, users, items, ones, indptr, indices)
    positive = _genre_matrix(n_users, t, users, items, positive_row * 1.0, indptr, indices)
    relative = _genre_matrix(n_users, t, users, items, relative_row, indptr, indices)
    if has_topics:
        diversity_num = _mass_count(counts, DIVERSITY_MASS)
        entropy = _entropy(counts)
        tie = entropy / (math.log(max(t, 2)) + 1.0)
    else:  # the item-level analogue: how many items make up 80% of the user's plays
        pairs = rows.groupby(["user", "item"], observed=True)["weight"].sum().reset_index()
        per_user: list[NDArray[np.float64]] = [np.zeros(0)] * n_users
        pair_users = pairs["user"].to_numpy(np.int64)
        pair_weights = pairs["weight"].to_numpy(np.float64)
        bounds = np.flatnonzero(np.diff(pair_users)) + 1
        for chunk_users, chunk in zip(
            np.split(pair_users, bounds), np.split(pair_weights, bounds), strict=True
        ):
            if chunk_users.size:
                per_user[int(chunk_users[0])] = chunk
        diversity_num = np.zeros(n_users, np.int64)
        entropy = np.zeros(n_users)
        for u, w in enumerate(per_user):
            if w.size:
                diversity_num[u] = int(_mass_count(w[None, :], DIVERSITY_MASS)[0])
                entropy[u] = float(_entropy(w[None, :])[0])
        tie = entropy / (np.log(np.maximum(np.array([w.size for w in per_user]), 2)) + 1.0)
    table["diversity_num"] = diversity_num
    table["entropy"] = entropy
    if has_topics:
        among = active & (diversity_num >= 1)
        level, cut_points["diversity"] = _levels(
            diversity_num.astype(np.float64), DIVERSITY_PERCENTILES, among
        )
        table["diversity_level"] = np.where(active, level, 0)
    else:
        table["diversity_level"] = 0
    # Conformity.
    deviation = np.full(n_users, np.nan)
    if has_stars:
        item_sum = np.bincount(items[stars], weights=rating[stars], minlength=n_items)
        item_n = np.bincount(items[stars], minlength=n_items)
        item_mean = item_sum / np.maximum(item_n, 1)
        squared = (rating[stars] - item_mean[items[stars]]) ** 2
        dev_sum = np.bincount(users[stars], weights=squared, minlength=n_users)
        dev_n = np.bincount(users[stars], minlength=n_users)
        deviation = np.where(dev_n > 0, dev_sum / np.maximum(dev_n, 1), np.nan)
        rated_users = np.isfinite(deviation)
        level, cut_points["conformity"] = _levels(
            np.nan_to_num(deviation), CONFORMITY_PERCENTILES, rated_users
        )
        table["conformity_level"] = np.where(rated_users, level, 0)
    else:
        table["conformity_level"] = 0
    table["deviation"] = deviation
    table["mean_rating"] = user_mean
    # Sessions and the graph.
    per_session = _sessions(rows, n_users)
    has_timestamps = bool(np.isfinite(per_session).any())
    table["per_session"] = per_session
    degree = np.zeros(n_users)
    has_graph = dataset.edges is not None and len(dataset.edges) > 0
    if has_graph and dataset.edges is not None:
        src = dataset.edges["src"].to_numpy(np.int64)
        dst = dataset.edges["dst"].to_numpy(np.int64)
        pairs_uv = np.unique(np.minimum(src, dst) * n_users + np.maximum(src, dst))
        a, b = np.divmod(pairs_uv, n_users)
        degree = np.bincount(np.concatenate([a, b]), minlength=n_users).astype(np.float64)
    table["degree"] = degree
    # Traits (percentiles among users with a history).
    traits = {name: np.full(n_users, 0.5) for name in TRAITS}
    idx = np.flatnonzero(active)
    traits["activity"][idx] = _pct(volume[idx])
    traits["diversity"][idx] = _pct(diversity_num[idx].astype(np.float64) + tie[idx])
    if has_stars:
        rated_idx = np.flatnonzero(active & np.isfinite(deviation))
        traits["conformity"][rated_idx] = 1.0 - _pct(deviation[rated_idx])
    else:
        item_n = np.bincount(items, minlength=n_items).astype(np.float64)
        top = math.log1p(float(item_n.max())) if item_n.size else 1.0
        proof = np.log1p(item_n) / max(top, 1e-12)
        mean_pop = np.bincount(users, weights=proof[items], minlength=n_users) / np.maximum(n, 1)
        traits["conformity"][idx] = _pct(mean_pop[idx])
    timed_idx = np.flatnonzero(active & np.isfinite(per_session))
    traits["patience"] = traits["activity"].copy()
    if timed_idx.size:
        traits["patience"][timed_idx] = _pct(per_session[timed_idx])
    if has_graph:
        traits["sociability"][idx] = _pct(degree[idx])
    else:
        traits["sociability"][:] = UserModelConfig().sociability_mean
    for name in TRAITS:
        table[name] = np.clip(traits[name], 0.0, 1.0)
    return UserHistory(
        table=table,
        cut_points=cut_points,
        has_stars=has_stars,
        has_timestamps=has_timestamps,
        has_topics=has_topics,
        has_graph=has_graph,
        weighted=weighted,
        topic_names=names,
        counts=counts,
        positive=positive,
        relative=relative,
        rows=rows,
    )


def _row(history: UserHistory, u: int) -> dict[str, float]:
    """User ``u``'s row of ``history.table`` as plain numbers."""
    values = history.table.loc[u].to_numpy(np.float64)
    return {str(name): float(v) for name, v in zip(history.table.columns, values, strict=True)}


def _nouns(dataset: Dataset, history: UserHistory) -> tuple[str, str, str, str]:
    """(singular, plural, past participle, present) for the description."""
    if dataset.format == "lastfm":
        return "artist", "artists", "listened to", "listen to"
    if dataset.format in ("movielens", "ml1m", "agent4rec", "filmtrust", "ciaodvd"):
        singular, plural = "movie", "movies"
    else:
        singular, plural = "item", "items"
    if history.has_stars:
        return singular, plural, "rated", "rate"
    if singular == "movie":
        return singular, plural, "watched", "watch"
    return singular, plural, "interacted with", "interact with"


def _join(words: Sequence[str]) -> str:
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _genre_choice(
    history: UserHistory, u: int, k: int, global_share: NDArray[np.float64], step: float
) -> tuple[list[str], list[str]]:
    """Interests and dislikes of user ``u`` from its genre counts (module docstring)."""
    names = history.topic_names
    c = history.positive[u]
    total = float(c.sum())
    q = (c + SHRINK * global_share) / (total + SHRINK)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(global_share > 0, q * np.log(q / global_share), -np.inf)
    order = np.argsort(-term, kind="stable")
    interests = [names[g] for g in order if c[g] >= 2 and term[g] > 0][:k]
    if not interests:
        counts = history.counts[u]
        interests = [names[int(np.argmax(counts))]] if counts.sum() > 0 else []
    dislikes: list[str] = []
    n_g = history.counts[u]
    if history.has_stars:
        shrunk = history.relative[u] / (n_g + 3.0)
        candidates = [g for g in np.argsort(shrunk, kind="stable") if n_g[g] >= 2]
        dislikes = [
            names[g] for g in candidates if shrunk[g] <= -step + 1e-9 and names[g] not in interests
        ][:2]
    if not dislikes:
        all_share = n_g / max(float(n_g.sum()), 1e-12)
        common = (global_share >= 0.03) & (all_share < global_share / 3.0)
        lift = np.where(common, all_share / np.maximum(global_share, 1e-12), np.inf)
        g = int(np.argmin(lift))
        if np.isfinite(lift[g]) and names[g] not in interests:
            dislikes = [names[g]]
    return interests, dislikes


def _demographics(dataset: Dataset, u: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    row = {str(k): v for k, v in dataset.users.iloc[u].to_dict().items()}
    gender = row.get("gender")
    if isinstance(gender, str) and gender.strip():
        out["gender"] = _GENDERS.get(gender.strip().lower(), gender.strip())
    age = row.get("age")
    if age is not None and not pd.isna(age):
        code = int(age)
        years = ML1M_AGE_YEARS.get(code) if dataset.format in _ML1M_FORMATS else code
        if years is not None and 1 <= years <= 120:
            out["age"] = int(years)
    occupation = row.get("occupation")
    if isinstance(occupation, str) and occupation.strip():
        out["occupation"] = occupation.strip()
    return out


_ACTIVITY_WORDS = {
    1: "fewer than most users",
    2: "more than most users",
    3: "more than nine users in ten",
}
_CONFORMITY_WORDS = {
    1: "Your ratings stay close to each {s}'s average: you mostly agree with the crowd.",
    2: "You weigh the crowd's opinion against your own taste.",
    3: "You rate by your own taste, often far from the crowd's average.",
}
_DIVERSITY_WORDS = {
    1: "You stick to a few genres.",
    2: "You mostly stay with your genres and explore now and then.",
    3: "You range across many genres.",
}


def _describe(
    dataset: Dataset,
    history: UserHistory,
    u: int,
    interests: list[str],
    dislikes: list[str],
    levels: dict[str, int],
) -> str:
    singular, plural, verb, present = _nouns(dataset, history)
    row = _row(history, u)
    n = int(row["n"])
    parts = []
    amount = f"You have {verb} {n} {plural if n != 1 else singular}"
    if "activity" in levels:
        amount += f", {_ACTIVITY_WORDS[levels['activity']]}"
    parts.append(amount + ".")
    if history.has_topics:
        top = [history.topic_names[g] for g in np.argsort(-history.counts[u], kind="stable")[:3]]
        top = [g for g in top if history.counts[u][history.topic_names.index(g)] > 0]
        liked = [g for g in interests if g not in top]
        sentence = f"Most of your {plural} are {_join(top)}"
        sentence += f"; you love {_join(liked)}." if liked else "."
        parts.append(sentence)
    else:
        parts.append(f"Your favourites: {_join(interests)}.")
    if dislikes:
        text = f"{_join(dislikes)} rarely please{'s' if len(dislikes) == 1 else ''} you."
        parts.append(text[:1].upper() + text[1:])
    if "diversity" in levels:
        parts.append(_DIVERSITY_WORDS[levels["diversity"]])
    if "conformity" in levels:
        parts.append(_CONFORMITY_WORDS[levels["conformity"]].format(s=singular))
    if history.has_stars and np.isfinite(row["mean_rating"]) and dataset.rating_scale:
        high = dataset.rating_scale[1]
        parts.append(f"Your average rating is {row['mean_rating']:.1f} of {high:g} stars.")
    if np.isfinite(row["per_session"]):
        per = max(1, round(float(row["per_session"])))
        parts.append(f"You usually {present} about {per} {plural} per visit.")
    text = " ".join(parts)
    return text if len(text) <= 600 else text[:597].rstrip() + "..."


def pack_provenance(dataset: Dataset, *, split: Sequence[str], seed: int) -> dict[str, Any]:
    """The provenance every persona of a generated pack carries: dataset name, format, source
    path, split, seed and recoworld's version."""
    from recoworld import __version__

    return {
        "dataset": dataset.name,
        "format": dataset.format,
        "source": str(dataset.source),
        "split": list(split),
        "seed": int(seed),
        "recoworld": __version__,
    }


def personas_from_dataset(
    dataset: Dataset,
    *,
    split: Sequence[str] = ("train",),
    seed: int = 0,
    progress: Progress | None = None,
    history: UserHistory | None = None,
) -> list[Persona]:
    """One persona per user with at least one interaction in ``split`` (users with none — e.g.
    present only in the social graph — get none), in user-id order. Traits, levels, interests,
    dislikes, demographics and description follow the module docstring; ``seed`` only chooses the
    split of a dataset that has none. ``history`` reuses a :func:`user_history` result."""
    history = history or user_history(dataset, split=split, seed=seed)
    table = history.table
    provenance = pack_provenance(dataset, split=split, seed=seed)
    total = history.positive.sum(axis=0)
    global_share = total / max(float(total.sum()), 1e-12)
    step = float(dataset.rating_scale[2]) if dataset.rating_scale else 1.0
    active = np.flatnonzero(table["n"].to_numpy() > 0)
    top_items = _top_items(dataset, history) if not history.has_topics else {}
    personas: list[Persona] = []
    raw_ids = dataset.users["raw_id"].astype(str).to_numpy()
    for done, u in enumerate(active.tolist(), start=1):
        row = _row(history, u)
        levels = {
            name: int(row[f"{name}_level"]) for name in LEVELS if int(row[f"{name}_level"]) > 0
        }
        diversity_level = levels.get(
            "diversity", 1 + int(row["diversity"] > 1 / 3) + int(row["diversity"] > 2 / 3)
        )
        if history.has_topics:
            interests, dislikes = _genre_choice(history, u, diversity_level, global_share, step)
        else:
            interests, dislikes = top_items.get(u, []), []
        if not interests:
            plural = _nouns(dataset, history)[1]
            mainstream = float(row["conformity"]) >= 0.5
            interests = [f"{'popular' if mainstream else 'lesser-known'} {plural}"]
        traits = {name: float(row[name]) for name in TRAITS}
        tags = ["generated", dataset.name, *(f"{k}-{v}" for k, v in sorted(levels.items()))]
        personas.append(
            Persona(
                id=f"{dataset.name}-{raw_ids[u]}",
                interests=tuple(interests),
                traits=traits,
                description=_describe(dataset, history, u, interests, dislikes, levels),
                dislikes=tuple(dislikes),
                tags=tuple(tags),
                provenance={**provenance, "user": str(raw_ids[u])},
                levels=levels,
                **_demographics(dataset, u),
            )
        )
        if progress is not None and (done % 256 == 0 or done == active.size):
            progress(done, int(active.size))
    skipped = dataset.n_users - len(personas)
    if skipped:
        logger.info(
            "%d users of %s have no interaction in %s: no persona", skipped, dataset.name, split
        )
    return personas


def _top_items(dataset: Dataset, history: UserHistory) -> dict[int, list[str]]:
    """Per user, the titles of its three items of largest summed weight."""
    rows = history.rows
    sums = rows.groupby(["user", "item"], observed=True)["weight"].sum().reset_index()
    sums = sums.sort_values(["user", "weight", "item"], ascending=[True, False, True])
    titles = dataset.items["title"].astype(str).to_numpy()
    out: dict[int, list[str]] = {}
    users = sums["user"].to_numpy(np.int64)
    items = sums["item"].to_numpy(np.int64)
    bounds = np.flatnonzero(np.diff(users)) + 1
    for chunk_users, chunk in zip(np.split(users, bounds), np.split(items, bounds), strict=True):
        if chunk_users.size:
            names = [titles[i].strip() for i in chunk[:3]]
            out[int(chunk_users[0])] = [name for name in names if name]
    return out


def agent4rec_agreement(dataset: Dataset, history: UserHistory) -> dict[str, dict[str, float]]:
    """Per level that both the data (``a4r_<level>`` user columns, Agent4Rec's own levels) and
    ``history`` have: ``agreement`` (share of users whose levels are equal), ``within_one``,
    ``users`` compared, and ``chance`` (the agreement of two independent labelings with the
    same marginals, ``Σ_k p_k q_k``)."""
    out: dict[str, dict[str, float]] = {}
    for name in LEVELS:
        column = f"a4r_{name}"
        if column not in dataset.users.columns:
            continue
        theirs = pd.to_numeric(dataset.users[column], errors="coerce").to_numpy(np.float64)
        ours = history.table[f"{name}_level"].to_numpy(np.float64)
        both = np.isfinite(theirs) & (ours > 0)
        if not both.any():
            continue
        a, b = theirs[both], ours[both]
        p = np.array([np.mean(a == k) for k in (1, 2, 3)])
        q = np.array([np.mean(b == k) for k in (1, 2, 3)])
        out[name] = {
            "agreement": float(np.mean(a == b)),
            "within_one": float(np.mean(np.abs(a - b) <= 1)),
            "chance": float(p @ q),
            "users": float(both.sum()),
        }
    return out


def default_pack_path(dataset: Dataset) -> Path:
    """``personas/generated/<dataset name>.jsonl`` (relative to the working directory)."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in dataset.name)
    return PACK_DIR / f"{safe or 'dataset'}.jsonl"


def write_pack(
    personas: Sequence[Persona], path: str | Path, provenance: Mapping[str, Any]
) -> Path:
    """Write ``personas`` as a persona pack (JSON Lines) at ``path``, validated against
    :data:`recoworld.users.persona.PERSONA_SCHEMA`.

    The first line is a ``#`` comment holding ``provenance`` as JSON (comments are skipped by
    :func:`recoworld.users.persona.load_persona_pack`); every persona's own ``provenance`` is
    ``provenance`` updated with what it already carries. The file is written to a temporary name
    and renamed, so a failed write leaves no half pack. Raises :class:`PersonaError` naming the
    persona and field when one does not validate.
    """
    try:
        import jsonschema
    except ImportError as exc:  # pragma: no cover - the llm extra brings it
        raise PersonaError(
            "writing persona packs needs jsonschema: pip install 'recoworld[llm]'"
        ) from exc
    if not personas:
        raise PersonaError(f"{path}: no persona to write (a pack holds at least one)")
    validator = jsonschema.Draft202012Validator(PERSONA_SCHEMA)
    path = Path(path)
    lines = ["# recoworld persona pack " + json.dumps(dict(provenance), sort_keys=True)]
    seen: set[str] = set()
    for number, persona in enumerate(personas, start=1):
        obj = persona.to_json()
        obj["provenance"] = {**provenance, **persona.provenance}
        errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
        if errors:
            err = errors[0]
            where = "/".join(str(p) for p in err.absolute_path) or "(the object)"
            raise PersonaError(f"persona {number} ({persona.id!r}): {where}: {err.message}")
        if persona.id in seen:
            raise PersonaError(f"persona {number}: id {persona.id!r} appears twice")
        seen.add(persona.id)
        lines.append(json.dumps(obj, ensure_ascii=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    logger.info("wrote %d personas to %s", len(personas), path)
    return path
