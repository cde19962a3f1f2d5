"""The versioned trajectory schema: one Arrow schema per table.

Every column is documented in ``docs/trajectory.md``; bump :data:`SCHEMA_VERSION` (major for
removed or retyped columns, minor for added ones) whenever a table changes.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = [
    "ACTIONS",
    "CALL_PURPOSES",
    "END_REASONS",
    "SCHEMA_VERSION",
    "SOCIAL_KINDS",
    "SOURCES",
    "TABLES",
    "schema_of",
]

SCHEMA_VERSION = "1.3"

#: ``responses.action``: the deepest engagement with an examined item.
ACTIONS = ("skip", "click", "like", "share", "comment")
#: ``impressions.source``.
SOURCES = ("rec", "social")
#: ``social.kind``.
SOCIAL_KINDS = ("share", "post", "follow", "unfollow", "mute")
#: ``llm_calls.purpose``.
CALL_PURPOSES = ("page", "reflection", "agent", "parse")
#: ``sessions.end_reason``.
END_REASONS = ("left", "horizon", "interrupted", "failed")

_run = pa.field("run", pa.dictionary(pa.int32(), pa.string()), nullable=False)
_tick = pa.field("tick", pa.int32(), nullable=False)
_session = pa.field("session", pa.int64(), nullable=False)
_user = pa.field("user", pa.int32(), nullable=False)
_item = pa.field("item", pa.int32(), nullable=False)
_rank = pa.field("rank", pa.int16(), nullable=False)
_label = pa.dictionary(pa.int8(), pa.string())

TABLES: dict[str, pa.Schema] = {
    "impressions": pa.schema(
        [
            _run,
            _tick,
            _session,
            _user,
            _item,
            _rank,
            pa.field("source", _label, nullable=False),
            pa.field("from_user", pa.int32()),
            pa.field("score", pa.float32()),
            pa.field("propensity", pa.float32(), nullable=False),
            pa.field("policy", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        ]
    ),
    "responses": pa.schema(
        [
            _run,
            _tick,
            _session,
            _user,
            _item,
            _rank,
            pa.field("action", _label, nullable=False),
            pa.field("clicked", pa.bool_(), nullable=False),
            pa.field("liked", pa.bool_(), nullable=False),
            pa.field("shared", pa.bool_(), nullable=False),
            pa.field("commented", pa.bool_(), nullable=False),
            pa.field("dwell", pa.float32(), nullable=False),
            pa.field("rating", pa.float32()),
            pa.field("left", pa.bool_(), nullable=False),
        ]
    ),
    "instructions": pa.schema(
        [
            _run,
            _tick,
            _session,
            _user,
            pa.field("page", pa.int32(), nullable=False),
            pa.field("text", pa.string(), nullable=False),
            pa.field("intent_more", pa.list_(pa.string()), nullable=False),
            pa.field("intent_less", pa.list_(pa.string()), nullable=False),
            pa.field("constraint", pa.string()),
            pa.field("reason", pa.string(), nullable=False),
            pa.field("risk", pa.float32(), nullable=False),
        ]
    ),
    "sessions": pa.schema(
        [
            _run,
            _session,
            _user,
            pa.field("start_tick", pa.int32(), nullable=False),
            pa.field("end_tick", pa.int32(), nullable=False),
            pa.field("pages", pa.int32(), nullable=False),
            pa.field("items", pa.int32(), nullable=False),
            pa.field("clicks", pa.int32(), nullable=False),
            pa.field("instructions", pa.int32(), nullable=False),
            pa.field("end_reason", _label, nullable=False),
            pa.field("satisfaction_end", pa.float32(), nullable=False),
            pa.field("churned", pa.bool_()),
        ]
    ),
    "social": pa.schema(
        [
            _run,
            _tick,
            _user,
            pa.field("kind", _label, nullable=False),
            _item,
            pa.field("parent_user", pa.int32()),
            pa.field("target", pa.int32()),
            pa.field("recipients", pa.int32(), nullable=False),
        ]
    ),
    "opinions": pa.schema(
        [
            _run,
            _tick,
            _user,
            pa.field("opinion", pa.float32(), nullable=False),
        ]
    ),
    "llm_calls": pa.schema(
        [
            _run,
            _tick,
            pa.field("user", pa.int32(), nullable=False),
            pa.field("purpose", _label, nullable=False),
            pa.field("model", pa.dictionary(pa.int32(), pa.string()), nullable=False),
            pa.field("prompt_hash", pa.string()),
            pa.field("prompt_tokens", pa.int32(), nullable=False),
            pa.field("completion_tokens", pa.int32(), nullable=False),
            pa.field("cost_usd", pa.float64(), nullable=False),
            pa.field("latency_s", pa.float32(), nullable=False),
            pa.field("cached", pa.bool_(), nullable=False),
            pa.field("valid", pa.bool_(), nullable=False),
            pa.field("repaired", pa.bool_(), nullable=False),
            pa.field("fallback", pa.bool_(), nullable=False),
            pa.field("error", pa.string()),
            pa.field("output", pa.string()),
        ]
    ),
}


def schema_of(table: str) -> pa.Schema:
    """The Arrow schema of ``table``, with the schema version in its metadata."""
    return TABLES[table].with_metadata(
        {"recoworld.schema_version": SCHEMA_VERSION, "recoworld.table": table}
    )
