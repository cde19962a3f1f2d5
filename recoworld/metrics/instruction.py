"""Instruction following, judged from the logged ground-truth intent (never from a recommender's
reading of the words): pure functions over the ``instructions`` and ``impressions`` tables and the
catalogue's item topics."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = ["compliance"]


def compliance(
    instructions: pd.DataFrame,
    impressions: pd.DataFrame,
    topic: NDArray[np.integer],
    topic_names: tuple[str, ...],
) -> float:
    """``instruction/compliance`` = mean over instructions of the share of the *next* recommended
    slate (the user's ``rec`` impressions on the first tick after the instruction) that satisfies
    the instruction's intent: the item's topic is among ``intent_more`` (when that is not empty),
    not among ``intent_less``, and, under the ``fresh`` constraint, the item was not shown to the
    user before the instruction. Instructions with no next slate (the user left) are skipped."""
    if instructions.empty or impressions.empty:
        return float("nan")
    name_index = {name: i for i, name in enumerate(topic_names)}
    rec = impressions
    if "source" in rec:
        rec = rec[rec["source"].astype(str) == "rec"]
    rec = rec[["tick", "user", "item"]].sort_values(["user", "tick"], kind="stable")
    by_user: dict[int, tuple[NDArray[np.int64], NDArray[np.int64]]] = {}
    users = rec["user"].to_numpy(np.int64)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if users.size else users
    ends = np.r_[starts[1:], users.size]
    all_ticks, all_items = rec["tick"].to_numpy(np.int64), rec["item"].to_numpy(np.int64)
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        by_user[int(users[start])] = (all_ticks[start:end], all_items[start:end])
    shares = []
    for user, tick, more_names, less_names, constraint in zip(
        instructions["user"].to_numpy(np.int64).tolist(),
        instructions["tick"].to_numpy(np.int64).tolist(),
        instructions["intent_more"].tolist(),
        instructions["intent_less"].tolist(),
        instructions["constraint"].tolist(),
        strict=True,
    ):
        shown = by_user.get(user)
        if shown is None:
            continue
        ticks, shown_items = shown
        later = ticks > tick
        if not later.any():
            continue
        items = shown_items[ticks == ticks[later].min()]
        topics = topic[items]
        ok = np.ones(items.size, bool)
        more = [name_index[str(t)] for t in more_names]
        less = [name_index[str(t)] for t in less_names]
        if more:
            ok &= np.isin(topics, more)
        if less:
            ok &= ~np.isin(topics, less)
        if constraint == "fresh":
            ok &= ~np.isin(items, shown_items[ticks <= tick])
        shares.append(float(ok.mean()))
    return float(np.mean(shares)) if shares else float("nan")
