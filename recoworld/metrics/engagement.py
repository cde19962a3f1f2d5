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
    "ctr",
    "instructions_per_session",
    "mean_session_length",
    "retention_curve",
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
