"""The run summary printed by ``recoworld run``, computed from the run folder's files."""

from __future__ import annotations

import os
from typing import Any

from recoworld.metrics.engagement import (
    ctr,
    instructions_per_session,
    mean_session_length,
    return_rate,
)
from recoworld.trajectory.reader import read_manifest, read_table

__all__ = ["summarize_run"]


def summarize_run(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Namespaced summary figures of a run (reads only the columns it needs)."""
    manifest = read_manifest(run_dir)
    rows = {name: int(info["rows"]) for name, info in manifest["tables"].items()}
    sessions = read_table(run_dir, "sessions", ["user", "items"])
    responses = read_table(run_dir, "responses", ["clicked"])
    return {
        "population/users": int(manifest["n_users"]),
        "population/active_users": int(sessions["user"].nunique()),
        "engagement/sessions": len(sessions),
        "engagement/impressions": rows["impressions"],
        "engagement/ctr": ctr(responses, rows["impressions"]),
        "engagement/session_length": mean_session_length(sessions),
        "instruction/rate": instructions_per_session(rows["instructions"], sessions),
        "retention/return_rate": return_rate(sessions),
        "social/shares": rows["social"],
    }
