"""The population: users as columns — taste, traits, mindset, session state, memory, inbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np
from numpy.typing import NDArray

from recoworld import _kernels as kernels

__all__ = ["NO_TOPIC", "Population"]

#: Marker for "no topic" in intent columns.
NO_TOPIC = -1
#: Per-user trait columns (static within a run).
TRAITS = ("activity", "conformity", "diversity", "patience", "sociability", "opinion")


@dataclass(slots=True)
class Population:
    """Users as rows of numpy columns (user ``u`` is row ``u``).

    Hidden from the platform (a recommender sees them only in oracle mode): ``taste`` (unit vectors,
    ``[n_users, dim]``), the traits ``activity`` (sessions per day), ``conformity``, ``diversity``
    (diversity seeking), ``patience`` and ``sociability`` in [0, 1], and the mindset
    ``satisfaction``, ``fatigue``, per-topic ``boredom`` (``[n_users, n_topics]``) and ``opinion``
    in [−1, 1] (``opinion0``: the opinion it started with, its anchor under stubbornness), and the
    ground-truth intent of the standing instruction (``intent_more``,
    ``intent_less`` topic indices, ``NO_TOPIC`` when none; ``intent_fresh``: nothing already seen).

    Session state: ``in_session``, ``session_id`` (global id of the current or last session),
    ``session_start``, ``session_pages``, ``session_items`` (items examined), ``session_clicks``,
    ``session_instructions``, ``pages_since_instruction``, ``next_active`` (tick from which an
    idle user may start a session), ``churned`` (will not return), ``n_sessions``.

    Memory: a ring of the last ``memory_size`` examined items (``memory_items``, −1 empty) with the
    reaction to each (``memory_reaction``: 0 skip, 1 click, 2 like, 3 share), next slot
    ``memory_ptr``. The platform-observable part of the instruction is its text:
    ``last_instruction`` indexes ``instruction_texts`` (−1 none this session), a table of distinct
    texts (see :meth:`intern_texts`), so it grows with the vocabulary, not with the run.

    Inbox: a ring of items shared by followees (``inbox_items``, −1 empty; ``inbox_from``, the
    sharer), next slot ``inbox_ptr``. ``persona`` refers to a persona-pack row (−1: synthetic).
    """

    taste: NDArray[np.float32]
    activity: NDArray[np.float32]
    conformity: NDArray[np.float32]
    diversity: NDArray[np.float32]
    patience: NDArray[np.float32]
    sociability: NDArray[np.float32]
    opinion: NDArray[np.float32]
    n_topics: int
    memory_size: int
    inbox_size: int
    persona: NDArray[np.int32] = field(init=False)
    opinion0: NDArray[np.float32] = field(init=False)
    satisfaction: NDArray[np.float32] = field(init=False)
    fatigue: NDArray[np.float32] = field(init=False)
    boredom: NDArray[np.float32] = field(init=False)
    in_session: NDArray[np.bool_] = field(init=False)
    session_id: NDArray[np.int64] = field(init=False)
    session_start: NDArray[np.int32] = field(init=False)
    session_pages: NDArray[np.int32] = field(init=False)
    session_items: NDArray[np.int32] = field(init=False)
    session_clicks: NDArray[np.int32] = field(init=False)
    session_instructions: NDArray[np.int32] = field(init=False)
    pages_since_instruction: NDArray[np.int32] = field(init=False)
    next_active: NDArray[np.int64] = field(init=False)
    last_session_end: NDArray[np.int64] = field(init=False)
    churned: NDArray[np.bool_] = field(init=False)
    n_sessions: NDArray[np.int32] = field(init=False)
    intent_more: NDArray[np.int16] = field(init=False)
    intent_less: NDArray[np.int16] = field(init=False)
    intent_fresh: NDArray[np.bool_] = field(init=False)
    last_instruction: NDArray[np.int64] = field(init=False)
    instruction_texts: list[str] = field(init=False)
    text_index: dict[str, int] = field(init=False, repr=False)
    _text_table: NDArray[np.object_] | None = field(init=False, repr=False)
    memory_items: NDArray[np.int32] = field(init=False)
    memory_reaction: NDArray[np.int8] = field(init=False)
    memory_ptr: NDArray[np.int32] = field(init=False)
    inbox_items: NDArray[np.int32] = field(init=False)
    inbox_from: NDArray[np.int32] = field(init=False)
    inbox_ptr: NDArray[np.int32] = field(init=False)

    def __post_init__(self) -> None:
        n = self.taste.shape[0]
        for name in TRAITS:
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have shape ({n},)")
        self.persona = np.full(n, -1, dtype=np.int32)
        self.opinion0 = self.opinion.copy()
        self.satisfaction = np.zeros(n, dtype=np.float32)
        self.fatigue = np.zeros(n, dtype=np.float32)
        self.boredom = np.zeros((n, self.n_topics), dtype=np.float32)
        self.in_session = np.zeros(n, dtype=bool)
        self.session_id = np.full(n, -1, dtype=np.int64)
        self.session_start = np.zeros(n, dtype=np.int32)
        self.session_pages = np.zeros(n, dtype=np.int32)
        self.session_items = np.zeros(n, dtype=np.int32)
        self.session_clicks = np.zeros(n, dtype=np.int32)
        self.session_instructions = np.zeros(n, dtype=np.int32)
        self.pages_since_instruction = np.zeros(n, dtype=np.int32)
        self.next_active = np.zeros(n, dtype=np.int64)
        self.last_session_end = np.full(n, -1, dtype=np.int64)
        self.churned = np.zeros(n, dtype=bool)
        self.n_sessions = np.zeros(n, dtype=np.int32)
        self.intent_more = np.full(n, NO_TOPIC, dtype=np.int16)
        self.intent_less = np.full(n, NO_TOPIC, dtype=np.int16)
        self.intent_fresh = np.zeros(n, dtype=bool)
        self.last_instruction = np.full(n, -1, dtype=np.int64)
        self.instruction_texts = []
        self.text_index = {}
        self._text_table = None
        self.memory_items = np.full((n, self.memory_size), -1, dtype=np.int32)
        self.memory_reaction = np.zeros((n, self.memory_size), dtype=np.int8)
        self.memory_ptr = np.zeros(n, dtype=np.int32)
        self.inbox_items = np.full((n, self.inbox_size), -1, dtype=np.int32)
        self.inbox_from = np.full((n, self.inbox_size), -1, dtype=np.int32)
        self.inbox_ptr = np.zeros(n, dtype=np.int32)

    @property
    def n_users(self) -> int:
        return int(self.taste.shape[0])

    def replace_users(self, users: NDArray[np.integer], fresh: Population, start: int = 0) -> None:
        """Make rows ``users`` brand-new users: taste and traits from rows ``start`` to
        ``start + len(users)`` of ``fresh``, and every dynamic column back to its initial value."""
        users = np.asarray(users, dtype=np.int64)
        rows = slice(start, start + users.size)
        if start < 0 or fresh.n_users < rows.stop:
            raise ValueError("fresh must hold one user per replaced row from row start")
        self.taste[users] = fresh.taste[rows]
        for name in TRAITS:
            getattr(self, name)[users] = getattr(fresh, name)[rows]
        one = slice(0, 1)
        blank = Population(  # one new user: the initial value of every dynamic column
            taste=fresh.taste[one],
            **{name: getattr(fresh, name)[one] for name in TRAITS},
            n_topics=self.n_topics,
            memory_size=self.memory_size,
            inbox_size=self.inbox_size,
        )
        for f in fields(self):
            if not f.init and f.name not in ("instruction_texts", "text_index", "_text_table"):
                getattr(self, f.name)[users] = getattr(blank, f.name)[0]
        self.opinion0[users] = fresh.opinion[rows]

    def selector(self, users: NDArray[np.integer]) -> slice | NDArray[np.integer]:
        """``users`` as an index into the columns: ``slice(None)`` when they are every user in
        order (so reads are views and writes are plain copies, not gathers and scatters)."""
        n = self.n_users
        if users.size == n and (
            n == 0 or (users[0] == 0 and users[-1] == n - 1 and bool((np.diff(users) > 0).all()))
        ):
            return slice(None)
        return users

    def intern_texts(self, texts: Sequence[str]) -> NDArray[np.int64]:
        """Indices of ``texts`` in ``instruction_texts``, adding the ones not there yet."""
        index, table = self.text_index, self.instruction_texts
        out = np.empty(len(texts), np.int64)
        for j, text in enumerate(texts):
            idx = index.get(text)
            if idx is None:
                idx = index[text] = len(table)
                table.append(text)
            out[j] = idx
        return out

    def texts_of(self, users: NDArray[np.integer]) -> list[str | None]:
        """The standing instruction text of each of ``users`` (``None``: none this session)."""
        return list(self.text_table()[self.last_instruction[users]])

    def text_table(self) -> NDArray[np.object_]:
        """``instruction_texts`` as an object array with ``None`` appended, so that indexing it
        by ``last_instruction`` maps −1 to ``None`` (rebuilt only when texts were added)."""
        texts, table = self.instruction_texts, self._text_table
        if table is None or len(table) != len(texts) + 1:
            table = self._text_table = np.array([*texts, None], dtype=object)
        return table

    def remember(
        self,
        users: NDArray[np.int64],
        items: NDArray[np.int32],
        reaction: NDArray[np.int8],
        mask: NDArray[np.bool_] | None = None,
    ) -> None:
        """Append ``items[i, j]`` with ``reaction[i, j]``, in order along ``j`` and where
        ``mask[i, j]`` (default: all), to the memory ring of ``users[i]`` (distinct users).
        ``items`` may also be 1-D: one item per user."""
        users = np.asarray(users, np.int64)
        page = np.ascontiguousarray(items, np.int32)
        page = page[:, None] if page.ndim == 1 else page
        kernels.remember_page(
            self.memory_items,
            self.memory_reaction,
            self.memory_ptr,
            users,
            page,
            np.ascontiguousarray(reaction, np.int8).reshape(page.shape),
            np.ones(page.shape, bool) if mask is None else np.ascontiguousarray(mask, bool),
        )

    def has_seen(self, users: NDArray[np.int64], items: NDArray[np.int32]) -> NDArray[np.bool_]:
        """Whether each ``items[j]`` is in the memory of ``users[j]``."""
        return (self.memory_items[users] == items[:, None]).any(axis=1)

    def recent_items(self, users: NDArray[np.int64]) -> NDArray[np.int32]:
        """Memory of ``users``, newest first (``[len(users), memory_size]``, −1 where empty)."""
        users = np.asarray(users, np.int64)
        out = np.empty((users.size, self.memory_size), np.int32)
        kernels.by_rows(
            lambda rows: kernels.newest_first(
                out[rows], self.memory_items, self.memory_ptr, users[rows]
            ),
            users.size,
        )
        return out

    def instruction_text(self, user: int) -> str | None:
        """The last reflective instruction ``user`` gave in this session, or ``None``."""
        idx = int(self.last_instruction[user])
        return self.instruction_texts[idx] if idx >= 0 else None
