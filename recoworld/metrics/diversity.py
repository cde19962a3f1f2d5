"""Diversity, novelty and exposure-fairness metrics: pure functions over the ``impressions`` table
and the catalogue's item features (``docs/metrics.md`` lists every formula).

``impressions`` needs the columns ``tick``, ``user``, ``item`` and ``source``; a *list* is one
user's recommended items on one tick (``source == "rec"``; in-network items are not the
recommender's choice).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = [
    "calibration_kl",
    "catalog_coverage",
    "exposure_entropy",
    "exposure_gini",
    "gini",
    "intra_list_diversity",
    "novelty",
]


def _recommended(impressions: pd.DataFrame) -> pd.DataFrame:
    if "source" in impressions:
        return impressions[impressions["source"].astype(str) == "rec"]
    return impressions


def intra_list_diversity(impressions: pd.DataFrame, embedding: NDArray[np.floating]) -> float:
    """``diversity/ild`` = mean over lists of ILD@k = (2 / (k(k−1))) Σ_{i<j} (1 − cos(e_i, e_j)),
    the cosine over the catalogue's item embeddings; lists with fewer than 2 items are skipped."""
    rec = _recommended(impressions)
    if rec.empty:
        return float("nan")
    unit = embedding / np.maximum(np.linalg.norm(embedding, axis=1, keepdims=True), 1e-12)
    order = rec.sort_values(["tick", "user"], kind="stable")
    keys = order["tick"].to_numpy(np.int64) * (1 << 32) + order["user"].to_numpy(np.int64)
    items = order["item"].to_numpy(np.int64)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    sizes = np.diff(np.r_[starts, keys.size])
    values = []
    for k in np.unique(sizes):
        if k < 2:
            continue
        group = starts[sizes == k]
        vecs = unit[items[group[:, None] + np.arange(k)]]  # [lists, k, D]
        sims = np.einsum("lkd,ljd->lkj", vecs, vecs)
        pair_sum = (sims.sum(axis=(1, 2)) - np.trace(sims, axis1=1, axis2=2)) / 2
        values.append(1.0 - pair_sum * 2.0 / (k * (k - 1)))
    return float(np.concatenate(values).mean()) if values else float("nan")


def catalog_coverage(impressions: pd.DataFrame, n_items: int) -> float:
    """``diversity/coverage`` = |∪_u L_u| / |I|: share of the catalogue ever recommended."""
    rec = _recommended(impressions)
    return float(rec["item"].nunique()) / n_items if n_items else float("nan")


def gini(counts: NDArray[np.number]) -> float:
    """Gini of non-negative counts: sorted ascending c_(1..n),
    G = Σ_i (2i − n − 1) c_(i) / (n Σ_i c_i); 0 is perfect equality, → 1 all on one."""
    c = np.sort(np.asarray(counts, np.float64))
    n, total = c.size, c.sum()
    if n == 0 or total == 0:
        return float("nan")
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * c).sum() / (n * total))


def _exposure(impressions: pd.DataFrame, n_items: int) -> NDArray[np.int64]:
    rec = _recommended(impressions)
    return np.bincount(rec["item"].to_numpy(np.int64), minlength=n_items)


def exposure_gini(impressions: pd.DataFrame, n_items: int) -> float:
    """``fairness/exposure_gini`` = :func:`gini` of recommended impressions per item, over every
    item of the catalogue (items never shown count 0)."""
    return gini(_exposure(impressions, n_items))


def exposure_entropy(impressions: pd.DataFrame, n_items: int) -> float:
    """``diversity/exposure_entropy`` = H / log n: the entropy of the share of recommended
    impressions per item, normalized by its maximum over the ``n`` catalogue items."""
    counts = _exposure(impressions, n_items).astype(np.float64)
    total = counts.sum()
    if total == 0 or n_items < 2:
        return float("nan")
    p = counts[counts > 0] / total
    return float(-(p * np.log(p)).sum() / np.log(n_items))


def novelty(impressions: pd.DataFrame, n_users: int) -> float:
    """``diversity/novelty`` = mean over recommended impressions of −log2 popularity(i), where
    popularity(i) = (distinct users shown i) / n_users over the run."""
    rec = _recommended(impressions)
    if rec.empty or n_users == 0:
        return float("nan")
    reach = rec.groupby("item", observed=True)["user"].nunique()
    pop = rec["item"].map(reach).to_numpy(np.float64) / n_users
    return float((-np.log2(pop)).mean())


def calibration_kl(
    impressions: pd.DataFrame,
    responses: pd.DataFrame,
    topic: NDArray[np.integer],
    n_topics: int,
    alpha: float = 0.01,
) -> float:
    """``diversity/calibration_kl`` = mean over users of KL(p_u ‖ q̃_u) (Steck 2018).

    p_u is the topic distribution of the items user u clicked over the run (its history), q_u
    that of the items recommended to u, and q̃_u = (1 − α) q_u + α p_u keeps the divergence
    finite: KL(p ‖ q̃) = Σ_t p_t log(p_t / q̃_t). 0 means the recommendations mirror the
    user's interests in proportion; users with no click or no recommendation are skipped.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha: expected a number in (0, 1), got {alpha}")
    rec = _recommended(impressions)
    clicks = responses[responses["clicked"].astype(bool)]
    if rec.empty or clicks.empty:
        return float("nan")
    topic = np.asarray(topic, np.int64)
    users = np.union1d(rec["user"].to_numpy(np.int64), clicks["user"].to_numpy(np.int64))

    def distribution(table: pd.DataFrame) -> NDArray[np.float64]:
        row = np.searchsorted(users, table["user"].to_numpy(np.int64))
        cell = row * n_topics + topic[table["item"].to_numpy(np.int64)]
        counts = np.bincount(cell, minlength=users.size * n_topics).astype(np.float64)
        return counts.reshape(users.size, n_topics)

    p, q = distribution(clicks), distribution(rec)
    keep = (p.sum(axis=1) > 0) & (q.sum(axis=1) > 0)
    p = p[keep] / p[keep].sum(axis=1, keepdims=True)
    q = q[keep] / q[keep].sum(axis=1, keepdims=True)
    q_tilde = (1.0 - alpha) * q + alpha * p
    ratio = np.divide(p, q_tilde, out=np.ones_like(p), where=p > 0)  # q̃ > 0 wherever p > 0
    return float((p * np.log(ratio)).sum(axis=1).mean())
