"""Metrics: pure functions over trajectories (see ``METRICS.md`` for every definition)."""

from recoworld.metrics.engagement import (
    ctr,
    instructions_per_session,
    mean_session_length,
    return_rate,
)
from recoworld.metrics.summary import summarize_run

__all__ = [
    "ctr",
    "instructions_per_session",
    "mean_session_length",
    "return_rate",
    "summarize_run",
]
