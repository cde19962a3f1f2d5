"""Accuracy metrics: offline Recall@K and NDCG@K against held-out items, and the NDCG of the
served lists against the clicks they received.

Offline accuracy needs held-out data (a test split of a real dataset, or the interactions a
simulated user makes after a cut-off): :func:`recall_at_k` and :func:`ndcg_at_k` take each
user's ranked recommendations and held-out relevant items. Inside a simulation there is no
held-out split, so :func:`logged_ndcg` scores each recommended list by the clicks it actually
got — the accuracy axis of the NDCG-vs-retention quadrant.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recoworld.errors import ConfigError

__all__ = ["logged_ndcg", "ndcg_at_k", "recall_at_k"]


def _discounts(k: int) -> NDArray[np.float64]:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def _hits(
    ranked: NDArray[np.integer] | Sequence[Sequence[int]],
    held_out: Sequence[Iterable[int]],
    k: int,
) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    """``[n, k]`` hit matrix and ``[n]`` held-out counts; rows with nothing held out dropped."""
    if k < 1:
        raise ConfigError(f"k: expected an integer >= 1, got {k}")
    ranked = np.asarray(ranked)
    if ranked.ndim != 2:
        raise ConfigError(
            f"ranked: expected a [users, K] array of item ids, got shape {ranked.shape}"
        )
    if ranked.shape[0] != len(held_out):
        raise ConfigError(
            f"ranked has {ranked.shape[0]} rows but held_out has {len(held_out)} users; "
            "give one held-out set per row"
        )
    top = ranked[:, :k]
    sets = [np.fromiter(set(h), np.int64) for h in held_out]
    counts = np.array([s.size for s in sets], np.int64)
    hits = np.zeros(top.shape, bool)
    for row, relevant in enumerate(sets):  # one vectorized isin per user, not per item
        if relevant.size:
            hits[row] = np.isin(top[row], relevant)
    keep = counts > 0
    return hits[keep], counts[keep]


def recall_at_k(
    ranked: NDArray[np.integer] | Sequence[Sequence[int]],
    held_out: Sequence[Iterable[int]],
    k: int,
) -> float:
    """``accuracy/recall@k`` = mean over users u with held-out items of
    |top_k(u) ∩ H_u| / min(k, |H_u|).

    ``ranked`` is ``[users, ≥k]`` item ids, best first; ``held_out[u]`` the user's held-out
    relevant items. Users with nothing held out are skipped. The ``min(k, |H_u|)`` denominator
    makes a perfect list score 1 even when more than ``k`` items are held out.
    """
    hits, counts = _hits(ranked, held_out, k)
    if not counts.size:
        return float("nan")
    return float((hits.sum(axis=1) / np.minimum(counts, k)).mean())


def ndcg_at_k(
    ranked: NDArray[np.integer] | Sequence[Sequence[int]],
    held_out: Sequence[Iterable[int]],
    k: int,
) -> float:
    """``accuracy/ndcg@k`` = mean over users with held-out items of DCG@k / IDCG@k, binary
    relevance: DCG@k = Σ_{r=1..k} rel_r / log2(r + 1), IDCG@k the DCG of min(k, |H_u|) hits at
    the top."""
    hits, counts = _hits(ranked, held_out, k)
    if not counts.size:
        return float("nan")
    disc = _discounts(hits.shape[1])
    dcg = hits @ disc
    ideal = np.cumsum(disc)[np.minimum(counts, hits.shape[1]) - 1]
    return float((dcg / ideal).mean())


def logged_ndcg(impressions: pd.DataFrame, responses: pd.DataFrame, k: int | None = None) -> float:
    """``accuracy/ndcg`` = mean over recommended lists of DCG / IDCG with relevance = clicked.

    A list is one user's recommended items on one tick (``impressions.source == "rec"``),
    ordered by ``rank``; rel = 1 when the user clicked the item (from ``responses``; items never
    examined count 0), DCG = Σ_r rel_r / log2(r + 1) over the list's positions r = 1.., IDCG the
    DCG with the list's clicks moved to the top, cut at ``k`` positions (default: whole list).
    Lists with no click score 0, so a policy whose lists are ignored is not flattered.
    """
    need = {"tick", "user", "item", "rank"}
    for name, table, cols in (
        ("impressions", impressions, need),
        ("responses", responses, need | {"clicked"}),
    ):
        missing = cols - set(table.columns)
        if missing:
            raise ConfigError(f"{name}: missing columns {sorted(missing)}")
    rec = impressions
    if "source" in rec:
        rec = rec[rec["source"].astype(str) == "rec"]
    if rec.empty:
        return float("nan")
    clicked = responses.loc[responses["clicked"].astype(bool), ["tick", "user", "item"]]
    rec = rec[["tick", "user", "item", "rank"]].merge(
        clicked.assign(rel=True), on=["tick", "user", "item"], how="left"
    )
    rel = rec["rel"].fillna(False).to_numpy(bool)
    # Position within the list (1-based) by rank, so in-network items between do not count.
    rec = rec.assign(rel=rel).sort_values(["tick", "user", "rank"], kind="stable")
    pos = rec.groupby(["tick", "user"], sort=False).cumcount().to_numpy() + 1
    rel = rec["rel"].to_numpy(bool)
    if k is not None:
        if k < 1:
            raise ConfigError(f"k: expected an integer >= 1, got {k}")
        inside = pos <= k
        rec, pos, rel = rec[inside], pos[inside], rel[inside]
    gain = rel / np.log2(pos + 1.0)
    keys = rec["tick"].to_numpy(np.int64) * (1 << 32) + rec["user"].to_numpy(np.int64)
    _, list_id = np.unique(keys, return_inverse=True)
    dcg = np.bincount(list_id, weights=gain)
    n_clicks = np.bincount(list_id, weights=rel).astype(np.int64)
    ideal_table = np.r_[0.0, np.cumsum(1.0 / np.log2(np.arange(2, int(pos.max()) + 2)))]
    ideal = ideal_table[n_clicks]
    return float(np.where(n_clicks > 0, dcg / np.where(ideal > 0, ideal, 1.0), 0.0).mean())
