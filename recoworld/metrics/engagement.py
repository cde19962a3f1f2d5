"""Engagement, retention and instruction metrics: pure functions over trajectory tables.

Each function documents its formula; figure names are namespaced, e.g. ``engagement/ctr``.
Tables are the pandas DataFrames of :func:`recoworld.trajectory.read_table` (only the named
columns are needed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = [
    "churn_rate",
    "ctr",
    "daily_active_users",
    "instructions_per_session",
    "mean_session_length",
    "retention_curve",
    "return_gap",
    "return_rate",
]


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def ctr(responses: pd.DataFrame, n_impressions: int) -> float:
    """Click-through rate ``engagement/ctr`` = clicks / impressions (all impressions shown)."""
    return _ratio(int(responses["clicked"].sum()), n_impressions)


def mean_session_length(sessions: pd.DataFrame) -> float:
    """``engagement/session_length`` = mean items examined per session."""
    return float(sessions["items"].mean()) if len(sessions) else float("nan")


def instructions_per_session(n_instructions: int, sessions: pd.DataFrame) -> float:
    """``instruction/rate`` = reflective instructions / sessions."""
    return _ratio(n_instructions, len(sessions))


def return_rate(sessions: pd.DataFrame) -> float:
    """``retention/return_rate`` = share of users with a session who start another one within the
    horizon: |{u : sessions(u) ≥ 2}| / |{u : sessions(u) ≥ 1}|."""
    if not len(sessions):
        return float("nan")
    per_user = sessions.groupby("user", observed=True).size()
    return float((per_user >= 2).mean())


def retention_curve(sessions: pd.DataFrame, n_ticks: int) -> NDArray[np.float64]:
    """``retention/curve``: R(t) = |{u : last session start of u ≥ t}| / |{u : u had a session}|
    for every tick ``t`` in ``0..n_ticks`` — 1 at the start, falling as users stop coming back
    (needs the ``sessions`` columns ``user`` and ``start_tick``)."""
    last = sessions.groupby("user", observed=True)["start_tick"].max().to_numpy(np.int64)
    if not last.size:
        return np.full(n_ticks + 1, np.nan)
    counts = np.bincount(np.clip(last, 0, n_ticks), minlength=n_ticks + 1)
    still = counts[::-1].cumsum()[::-1]
    return still / last.size


def return_gap(sessions: pd.DataFrame) -> float:
    """``retention/return_gap`` = mean over consecutive session pairs of one user of
    start_tick(next) − end_tick(previous), in ticks (multiply by the tick length for time);
    NaN when nobody came back."""
    if not len(sessions):
        return float("nan")
    order = sessions.sort_values(["user", "start_tick"], kind="stable")
    users = order["user"].to_numpy(np.int64)
    same = users[1:] == users[:-1]
    gaps = order["start_tick"].to_numpy(np.int64)[1:] - order["end_tick"].to_numpy(np.int64)[:-1]
    return float(gaps[same].mean()) if same.any() else float("nan")


def daily_active_users(sessions: pd.DataFrame, ticks_per_day: int) -> NDArray[np.int64]:
    """``retention/dau``: for each simulated day d, the number of distinct users who start a
    session on a tick t with ⌊t / ticks_per_day⌋ = d."""
    if ticks_per_day < 1:
        raise ValueError(f"ticks_per_day: expected an integer >= 1, got {ticks_per_day}")
    if not len(sessions):
        return np.zeros(0, np.int64)
    day = sessions["start_tick"].to_numpy(np.int64) // ticks_per_day
    pairs = np.unique(np.stack([day, sessions["user"].to_numpy(np.int64)]), axis=1)
    return np.bincount(pairs[0]).astype(np.int64)


def churn_rate(sessions: pd.DataFrame) -> float:
    """``retention/churn`` = share of users with a session whose last session ended in churn
    (``churned``: they decided never to return)."""
    if not len(sessions):
        return float("nan")
    return float(sessions.groupby("user", observed=True)["churned"].any().mean())
