"""Engagement, retention and instruction metrics: pure functions over trajectory tables.

Each function documents its formula; figure names are namespaced, e.g. ``engagement/ctr``.
Tables are the pandas DataFrames of :func:`recoworld.trajectory.read_table` (only the named
columns are needed).
"""

from __future__ import annotations

import pandas as pd

__all__ = ["ctr", "instructions_per_session", "mean_session_length", "return_rate"]


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
