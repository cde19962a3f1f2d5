"""Instruction following, judged from the logged ground-truth intent (never from a recommender's
reading of the words): pure functions over the ``instructions`` and ``impressions`` tables and the
catalogue's item topics."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = ["compliance", "post_instruction_recovery"]


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


def post_instruction_recovery(
    instructions: pd.DataFrame, responses: pd.DataFrame, k: int = 1
) -> float:
    """``instruction/recovery`` = mean over instructions of CTR(the user's next ``k`` pages of
    the same session) − CTR(its last ``k`` pages up to the instruction's), CTR = clicks /
    items examined on those pages. Positive when what followed the words engaged the user more
    than what prompted them; instructions after which the session ended are skipped (the
    share of those is what ``instruction/rate`` and session length already show)."""
    if k < 1:
        raise ValueError(f"k: expected an integer >= 1, got {k}")
    if instructions.empty or responses.empty:
        return float("nan")
    pages = (
        responses.groupby(["user", "session", "tick"], observed=True, sort=True)["clicked"]
        .agg(["sum", "size"])
        .reset_index()
    )
    user = pages["user"].to_numpy(np.int64)
    session = pages["session"].to_numpy(np.int64)
    tick = pages["tick"].to_numpy(np.int64)
    clicks = np.r_[0, np.cumsum(pages["sum"].to_numpy(np.int64))]
    seen = np.r_[0, np.cumsum(pages["size"].to_numpy(np.int64))]
    # Pages sorted by (user, session, tick); an instruction's page is the last one at or before
    # its tick in its session.
    width = int(tick.max()) + 2
    key = (user * (int(session.max()) + 1) + session) * width + tick
    i_user = instructions["user"].to_numpy(np.int64)
    i_session = instructions["session"].to_numpy(np.int64)
    i_key = (i_user * (int(session.max()) + 1) + i_session) * width + instructions["tick"].to_numpy(
        np.int64
    )
    group = user * (int(session.max()) + 1) + session
    i_group = i_user * (int(session.max()) + 1) + i_session
    first = np.searchsorted(group, i_group, side="left")
    last = np.searchsorted(group, i_group, side="right")
    cut = np.searchsorted(key, i_key, side="right")  # pages [first, cut) are at or before
    lo = np.maximum(first, cut - k)
    hi = np.minimum(last, cut + k)
    ok = (cut > lo) & (hi > cut)
    if not ok.any():
        return float("nan")
    lo, cut, hi = lo[ok], cut[ok], hi[ok]
    before = (clicks[cut] - clicks[lo]) / np.maximum(seen[cut] - seen[lo], 1)
    after = (clicks[hi] - clicks[cut]) / np.maximum(seen[hi] - seen[cut], 1)
    return float((after - before).mean())
