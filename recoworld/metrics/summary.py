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

__all__ = ["llm_summary", "summarize_run"]


def summarize_run(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Namespaced summary figures of a run (reads only the columns it needs)."""
    manifest = read_manifest(run_dir)
    rows = {name: int(info["rows"]) for name, info in manifest["tables"].items()}
    sessions = read_table(run_dir, "sessions", ["user", "items"])
    responses = read_table(run_dir, "responses", ["clicked"])
    out: dict[str, Any] = {
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
    if rows.get("llm_calls", 0):
        out.update(llm_summary(read_table(run_dir, "llm_calls")))
    return out


def llm_summary(calls: Any) -> dict[str, Any]:
    """LLM figures of a run from its ``llm_calls`` rows: calls, tokens, the share of calls whose
    output was valid (after repair), cache hits, fallbacks to the numeric model, and the mean
    prompt tokens of a page decision."""
    pages = calls[calls["purpose"] == "page"]
    return {
        "llm/calls": len(calls),
        "llm/prompt_tokens": int(calls["prompt_tokens"].sum()),
        "llm/completion_tokens": int(calls["completion_tokens"].sum()),
        "llm/cost_usd": float(calls["cost_usd"].sum()),
        "llm/valid_rate": float(calls["valid"].mean()),
        "llm/cache_hits": int(calls["cached"].sum()),
        "llm/fallbacks": int(calls["fallback"].sum()),
        "llm/prompt_tokens_per_page": float(pages["prompt_tokens"].mean()) if len(pages) else 0.0,
    }
