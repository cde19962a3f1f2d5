"""A content-addressed response cache (SQLite), so that an LLM run replays exactly, offline.

A response is stored under :func:`request_key`, the SHA-256 of the canonical JSON of everything
that determines it — model, messages, sampling parameters, seed and the output format — and
nothing else (not the endpoint, not the API key). Entries are written as their batch completes,
in one transaction, so a crash loses at most the batch in flight.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["CACHE_FILE", "ResponseCache", "canonical_json", "request_key", "request_key_from_json"]

#: A recorded run's response cache, in its folder (unless ``llm.client.cache`` names a file).
CACHE_FILE = "llm-cache.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    finish_reason TEXT
)
"""


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 as is: the form hashed by :func:`request_key`."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_key(
    model: str, messages: Sequence[Mapping[str, str]], params: Mapping[str, Any]
) -> str:
    """SHA-256 (hex) of the canonical JSON of ``{"model", "messages", "params"}``."""
    blob = canonical_json({"model": model, "messages": list(messages), "params": dict(params)})
    return hashlib.sha256(blob.encode()).hexdigest()


def request_key_from_json(model: str, messages_json: str, params_json: str) -> str:
    """:func:`request_key` from the canonical JSON of the messages and of the parameters (the
    same bytes are hashed: keys sort as ``messages < model < params``)."""
    blob = f'{{"messages":{messages_json},"model":{canonical_json(model)},"params":{params_json}}}'
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    """Responses by :func:`request_key` in one SQLite file (created with its folder)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._db.commit()

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored responses among ``keys``: ``{key: {text, prompt_tokens, ...}}``."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, dict[str, Any]] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = self._db.execute(
                    "SELECT key, model, text, prompt_tokens, completion_tokens, finish_reason "
                    f"FROM responses WHERE key IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                for key, model, text, prompt, completion, finish in rows:
                    found[key] = {
                        "model": model,
                        "text": text,
                        "prompt_tokens": prompt,
                        "completion_tokens": completion,
                        "finish_reason": finish,
                    }
        return found

    def put_many(self, entries: Mapping[str, Mapping[str, Any]]) -> None:
        """Store ``{key: {model, text, prompt_tokens, completion_tokens, finish_reason}}``."""
        if not entries:
            return
        rows = [
            (
                key,
                e["model"],
                e["text"],
                int(e["prompt_tokens"]),
                int(e["completion_tokens"]),
                e.get("finish_reason"),
            )
            for key, e in entries.items()
        ]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)", rows)
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
