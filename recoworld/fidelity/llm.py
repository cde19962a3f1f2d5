"""An LLM-driven simulated user for the taste-discrimination protocol: :class:`LLMDiscriminator`.

Agent4Rec's test (:mod:`recoworld.fidelity.protocol`), taken by a language model playing each
user, with the plumbing of recoworld's LLM users (:mod:`recoworld.llm`):

**The user** (:meth:`LLMDiscriminator.fit`) is built from the *train* interactions only: how many
items it watched, its favourite genres (the topics most frequent among its train items, with
their shares), its Agent4Rec traits where the dataset has them (``a4r_*`` columns of
``dataset.users``: activity, diversity and conformity levels 1–3, put into words), its mean
rating where the data has stars, and its history — the train items, most recent first (by
timestamp; in the file's order where there is none), each with title, genres and its stars.

**The decision** (:meth:`LLMDiscriminator.decide`): one structured call per user showing the
candidate list as given (id, title, genres) and asking, item by item in that order, whether this
user would watch it. The reply is constrained by a JSON schema,
``{"decisions": [{"id": <int>, "watch": <bool>}, ...]}``, with exactly the list's ids in the
list's order (one ``const`` id per position, so grammar-constrained servers such as llama.cpp
and vLLM only choose the booleans). The prompt never says how many candidates are positives; it
says there is no quota. Calls go through :class:`recoworld.llm.LLMClient` — bounded
concurrency, results in request order, a repair round for an invalid reply, the response cache
(content-addressed: a rerun with the same cache replays with no server call, ``offline=True``
makes that a guarantee) and the token budget.

**Prompt budget.** The history shows at most ``max_history`` items, newest first, and only as
many as fit ``context_tokens`` once the system message, the profile, the candidates and the
reply's worst-case length are counted (tokens estimated with
:func:`recoworld.users.llm.estimate_tokens`, as the LLM users' memory is; the reply is sized at
one token per character, safe for any tokenizer). A list that does not fit even without history
is not sent.

**Fallbacks.** A list whose call fails, whose reply is still invalid after the repair round (or
names other ids than the list's, in another order), or that cannot fit the context falls back,
as a whole, to the ``fallback`` discriminator's decision (e.g. the numeric discriminator, fitted
by :meth:`~LLMDiscriminator.fit` on the same train rows) or, with none, to "not watch" for every
item. Each is counted by reason in :attr:`LLMDiscriminator.stats`. A budget that runs out raises
:class:`~recoworld.errors.BudgetExceeded` (``on_budget="raise"``, the default: the replies
obtained are in the cache, so a rerun with a larger budget resumes from them) or falls back
(``on_budget="fallback"``).

**Figures** (:class:`LLMDiscriminatorStats`): calls, parse-valid rate (the share of calls whose
reply, after the repair round, is valid), fallbacks by reason, prompt and completion tokens and
tokens per decision (one decision = one item of a list sent to the model).
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recoworld.errors import BudgetExceeded, ConfigError, RecoworldError
from recoworld.llm.client import ClientSlot
from recoworld.llm.config import LLMConfig, sampled_config

if TYPE_CHECKING:
    from recoworld.data.dataset import Dataset
    from recoworld.fidelity.protocol import Discriminator
    from recoworld.llm.client import ChatRequest, ChatResult

__all__ = [
    "FALLBACK_REASONS",
    "PROMPT_VERSION",
    "LLMDiscriminator",
    "LLMDiscriminatorStats",
    "decision_schema",
]

logger = logging.getLogger(__name__)

PROMPT_VERSION = "v1"
#: Why a list fell back: the reply stayed invalid; the call failed (HTTP, transport, a replay's
#: cache miss); the budget ran out; the prompt could not fit the context window.
FALLBACK_REASONS = ("invalid", "failed", "budget", "context")
_CONTEXT_ERROR = "prompt beyond the context window"

#: What the prompt calls an item, per loader format: (noun, plural, verb, topic word).
_DOMAIN: dict[str, tuple[str, str, str, str]] = {
    "movielens": ("movie", "movies", "watch", "genres"),
    "ml1m": ("movie", "movies", "watch", "genres"),
    "agent4rec": ("movie", "movies", "watch", "genres"),
    "filmtrust": ("movie", "movies", "watch", "genres"),
    "ciaodvd": ("movie", "movies", "watch", "genres"),
    "lastfm": ("artist", "artists", "listen to", "tags"),
}
_GENERIC = ("item", "items", "choose", "topics")

#: Agent4Rec's trait levels (1 low … 3 high; conformity 1 follows the crowd, 3 ignores it), in
#: words; ``{nouns}``, ``{noun}`` and ``{topics}`` are filled per dataset.
_TRAITS: dict[str, dict[int, str]] = {
    "activity": {
        1: "You rarely watch anything: only {nouns} that fit your taste closely get your time.",
        2: "You watch now and then, mostly {nouns} that fit your taste.",
        3: "You love {nouns} and watch many of those recommended to you.",
    },
    "diversity": {
        1: "You stick to your favourite {topics}.",
        2: "You mostly keep to your favourite {topics} and sometimes try others.",
        3: "You seek variety: {nouns} of every kind, unusual ones included.",
    },
    "conformity": {
        1: "You go by what most people think of a {noun}.",
        2: "You weigh a {noun}'s reputation and your own taste alike.",
        3: "You ignore reputation and follow your own taste.",
    },
}
_TRAIT_PREFIX = "a4r_"
_FAVOURITES = 3
_TOPICS_PER_ITEM = 4
_TOPIC_CHARS = 24


def decision_schema(items: Sequence[int]) -> dict[str, Any]:
    """The JSON schema of one list's reply: ``{"decisions": [...]}`` with one entry per item,
    ``{"id": <that item's id>, "watch": <bool>}``, in the list's order (``prefixItems`` with a
    ``const`` id each, nothing after them)."""
    entries = [
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "watch"],
            "properties": {"id": {"const": int(item)}, "watch": {"type": "boolean"}},
        }
        for item in items
    ]
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["decisions"],
        "properties": {
            "decisions": {
                "type": "array",
                "prefixItems": entries,
                "items": False,
                "minItems": len(entries),
                "maxItems": len(entries),
            }
        },
    }


def _reply_tokens(items: Sequence[int]) -> int:
    """``max_tokens`` of one list's reply: the longest valid reply in characters (one token per
    character at worst, for ASCII JSON), plus room for the whitespace a grammar lets a model put
    between tokens (12 characters per entry)."""
    longest = json.dumps({"decisions": [{"id": int(i), "watch": False} for i in items]})
    return len(longest) + 12 * len(items) + 16


@dataclass
class LLMDiscriminatorStats:
    """Figures of an :class:`LLMDiscriminator` (cumulative, or of one :meth:`decide` call).

    Attributes:
        lists: user lists decided (LLM or fallback).
        decisions: items decided, over all lists.
        calls: lists sent to the model (one structured call each; its repair round included).
        server_calls: requests that reached a server (0 for a cache hit; a repair adds one).
        cached: calls answered entirely from the response cache.
        valid: calls whose reply was valid, after the repair round.
        repaired: calls valid only after the repair round.
        invalid_outputs: replies that failed validation (a call may count two).
        fallbacks: lists decided by the fallback instead of the model.
        fallback_reasons: fallbacks per reason (:data:`FALLBACK_REASONS`).
        llm_decisions: items of the lists sent to the model (the denominator of the
            per-decision figures).
        prompt_tokens: prompt tokens of the calls (a cache hit counts its original tokens, so
            a replay reports the same figures).
        completion_tokens: completion tokens of the calls (likewise).
        cost_usd: money spent (cache hits cost nothing).
    """

    lists: int = 0
    decisions: int = 0
    calls: int = 0
    server_calls: int = 0
    cached: int = 0
    valid: int = 0
    repaired: int = 0
    invalid_outputs: int = 0
    fallbacks: int = 0
    fallback_reasons: dict[str, int] = field(default_factory=dict)
    llm_decisions: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def parse_valid_rate(self) -> float:
        """Share of calls whose reply was valid after the repair round (NaN: no call)."""
        return self.valid / self.calls if self.calls else math.nan

    @property
    def first_pass_valid_rate(self) -> float:
        """Share of calls whose first reply was valid, before any repair (NaN: no call)."""
        return (self.valid - self.repaired) / self.calls if self.calls else math.nan

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def tokens_per_decision(self) -> float:
        """Prompt plus completion tokens per item decided by the model (NaN: none)."""
        return self.tokens / self.llm_decisions if self.llm_decisions else math.nan

    @property
    def prompt_tokens_per_decision(self) -> float:
        return self.prompt_tokens / self.llm_decisions if self.llm_decisions else math.nan

    @property
    def completion_tokens_per_decision(self) -> float:
        return self.completion_tokens / self.llm_decisions if self.llm_decisions else math.nan

    @property
    def tokens_per_call(self) -> float:
        return self.tokens / self.calls if self.calls else math.nan

    def add(self, other: LLMDiscriminatorStats) -> None:
        """Add ``other``'s counts to these."""
        for f in fields(self):
            if f.name == "fallback_reasons":
                for reason, count in other.fallback_reasons.items():
                    self.fallback_reasons[reason] = self.fallback_reasons.get(reason, 0) + count
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, float | int]:
        """Flat figures, namespaced like a run summary's (``llm/...``), for reports."""
        out: dict[str, float | int] = {
            "llm/lists": self.lists,
            "llm/calls": self.calls,
            "llm/server_calls": self.server_calls,
            "llm/cache_hits": self.cached,
            "llm/valid_rate": self.parse_valid_rate,
            "llm/first_pass_valid_rate": self.first_pass_valid_rate,
            "llm/repaired": self.repaired,
            "llm/invalid_outputs": self.invalid_outputs,
            "llm/fallbacks": self.fallbacks,
            "llm/prompt_tokens": self.prompt_tokens,
            "llm/completion_tokens": self.completion_tokens,
            "llm/tokens_per_decision": self.tokens_per_decision,
            "llm/prompt_tokens_per_decision": self.prompt_tokens_per_decision,
            "llm/completion_tokens_per_decision": self.completion_tokens_per_decision,
            "llm/cost_usd": self.cost_usd,
        }
        for reason in FALLBACK_REASONS:
            out[f"llm/fallbacks_{reason}"] = self.fallback_reasons.get(reason, 0)
        return out


@dataclass(slots=True)
class _Profile:
    """One user as :meth:`LLMDiscriminator.fit` built it from train rows."""

    items: NDArray[np.int64]  # distinct train items, oldest first
    ratings: NDArray[np.float64]  # their stars (NaN where none)
    persona: str


@dataclass(slots=True)
class _Pending:
    """One list on its way to the model."""

    index: int
    user: int
    items: NDArray[np.int64]
    request: ChatRequest | None  # None: not sent (the prompt cannot fit)


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


class LLMDiscriminator:
    """Users played by a language model, taking Agent4Rec's taste-discrimination test.

    Implements :class:`recoworld.fidelity.protocol.Discriminator` (see the module docstring for
    the persona, the prompt, the budget and the fallbacks).

    Args:
        llm: the client settings: an :class:`LLMConfig` or a mapping of its fields (``model``,
            ``base_urls``, ``concurrency``, ``cache``, ``budget_tokens``, …); its
            ``temperature`` and ``seed`` are replaced by this object's.
        max_history: most recent train items shown per user (fewer when the context is short).
        temperature: sampling temperature (0: the most likely reply).
        seed: sampling seed sent with every request (``None``: none).
        context_tokens: the server's context window, in tokens; prompts are sized to fit it.
        fallback: a discriminator that decides a list the model could not (fitted by
            :meth:`fit` on the same rows); ``None``: "not watch" for every item.
        on_budget: when the budget runs out, ``raise`` :class:`BudgetExceeded` (default) or
            ``fallback`` for the lists not decided.
        batch_size: lists per :meth:`LLMClient.chat` call; replies are written to the cache
            as each batch completes, so an interrupted run loses at most one batch.
        title_chars: longest title shown (longer ones are cut with an ellipsis).
        client: an object with the :class:`recoworld.llm.LLMClient` interface (``chat``,
            ``usage``) to use instead of building one (the caller closes it).
        offline: answer from the response cache only (``llm.cache``), never calling a server.

    Raises:
        ConfigError: a setting out of range, naming it (``fidelity.<name>`` or
            ``fidelity.llm.<key>``).
    """

    name = "llm"

    def __init__(
        self,
        llm: LLMConfig | Mapping[str, Any] | None = None,
        *,
        max_history: int = 50,
        temperature: float = 0.0,
        seed: int | None = 0,
        context_tokens: int = 4096,
        fallback: Discriminator | None = None,
        on_budget: Literal["raise", "fallback"] = "raise",
        batch_size: int = 256,
        title_chars: int = 60,
        client: Any = None,
        offline: bool = False,
    ) -> None:
        def need(ok: bool, key: str, expected: str, value: object) -> None:
            if not ok:
                raise ConfigError(f"fidelity.{key}: expected {expected}, got {value!r}")

        need(
            _is_int(max_history) and max_history >= 0, "max_history", "an integer >= 0", max_history
        )
        need(
            isinstance(temperature, int | float)
            and not isinstance(temperature, bool)
            and temperature >= 0,
            "temperature",
            "a number >= 0",
            temperature,
        )
        need(seed is None or (_is_int(seed) and seed >= 0), "seed", "an integer >= 0 or null", seed)
        need(
            _is_int(context_tokens) and context_tokens >= 256,
            "context_tokens",
            "an integer >= 256 (the server's context window)",
            context_tokens,
        )
        need(on_budget in ("raise", "fallback"), "on_budget", "'raise' or 'fallback'", on_budget)
        need(_is_int(batch_size) and batch_size >= 1, "batch_size", "an integer >= 1", batch_size)
        need(
            _is_int(title_chars) and title_chars >= 8, "title_chars", "an integer >= 8", title_chars
        )
        need(isinstance(offline, bool), "offline", "true or false", offline)
        need(
            fallback is None
            or (
                callable(getattr(fallback, "fit", None))
                and callable(getattr(fallback, "decide", None))
            ),
            "fallback",
            "a discriminator (with fit and decide) or null",
            fallback,
        )
        need(
            client is None or callable(getattr(client, "chat", None)),
            "client",
            "an LLM client with chat(requests)",
            client,
        )
        config = sampled_config(
            llm,
            temperature=float(temperature),
            seed=seed,
            path="fidelity.llm",
            owner="the discriminator",
            needs_model=client is None,
        )
        if offline and not config.cache:
            raise ConfigError(
                "fidelity.offline: an offline discriminator answers from its response cache; "
                "set fidelity.llm.cache"
            )
        self.max_history = int(max_history)
        self.context_tokens = int(context_tokens)
        self.fallback = fallback
        self.on_budget = on_budget
        self.batch_size = int(batch_size)
        self.title_chars = int(title_chars)
        self._slot = ClientSlot(config, offline=offline, client=client)
        self.stats = LLMDiscriminatorStats()
        self.last_stats = LLMDiscriminatorStats()
        self._records: list[dict[str, Any]] = []
        self._fitted = False
        self._profiles: dict[int, _Profile] = {}
        self._empty = ""
        self._lines: list[str] = []
        self._topics: list[tuple[str, ...]] = []
        self._words: dict[str, str] = {}
        self._scale: tuple[float, float, float] | None = None
        self._system = ""
        self._template = ""
        self._n_items = 0

    # -- the client -------------------------------------------------------------------------
    @property
    def config(self) -> LLMConfig:
        """The client configuration (with the discriminator's temperature and seed)."""
        return self._slot.config

    @property
    def offline(self) -> bool:
        """Whether lists are answered from the response cache only."""
        return self._slot.offline

    @property
    def client(self) -> Any:
        """The LLM client (built from :attr:`config` on first use unless one was injected)."""
        return self._slot.client

    def close(self) -> None:
        """Close the client built here (an injected one is its owner's to close)."""
        self._slot.close()

    def __enter__(self) -> LLMDiscriminator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- fit --------------------------------------------------------------------------------
    def fit(self, dataset: Dataset, train: pd.DataFrame) -> None:
        """Build every user of ``train`` (rows of ``dataset.interactions``, the train split):
        its history, favourite genres and persona. Reads nothing of ``dataset.interactions``;
        ``dataset.items`` gives titles and genres, ``dataset.users`` the ``a4r_*`` traits.
        Fits the ``fallback`` discriminator on the same rows."""
        from recoworld.llm.items import clean_text
        from recoworld.users.llm import load_prompt

        noun, nouns, verb, topic_word = _DOMAIN.get(dataset.format, _GENERIC)
        self._system = load_prompt(f"fidelity.{PROMPT_VERSION}.system").format(
            noun=noun, nouns=nouns, verb=verb, topics=topic_word
        )
        self._template = load_prompt(f"fidelity.{PROMPT_VERSION}.user")
        items = dataset.items
        self._n_items = len(items)
        titles = [clean_text(t, self.title_chars) for t in items["title"].tolist()]
        topics = [
            tuple(clean_text(t, _TOPIC_CHARS) for t in tuple(ts)[:_TOPICS_PER_ITEM])
            for ts in items["topics"].tolist()
        ]
        self._lines = [
            f'"{title}"' + (f" ({', '.join(ts)})" if ts else "")
            for title, ts in zip(titles, topics, strict=True)
        ]
        self._topics = [tuple(ts) for ts in items["topics"].tolist()]
        self._words = {"noun": noun, "nouns": nouns, "topics": topic_word}
        self._scale = dataset.rating_scale
        traits = self._trait_columns(dataset.users)

        rows = train[["user", "item", "rating", "timestamp"]].reset_index(drop=True)
        rows = rows.assign(_order=np.arange(len(rows)))
        rows = rows.sort_values(["user", "timestamp", "_order"], kind="stable")
        # A repeated (user, item) counts once, at its latest occurrence.
        rows = rows.drop_duplicates(["user", "item"], keep="last")
        self._profiles = {}
        for user, group in rows.groupby("user", sort=True):
            uid = int(cast(int, user))
            hist = group["item"].to_numpy(np.int64)
            stars = group["rating"].to_numpy(np.float64)
            self._profiles[uid] = _Profile(hist, stars, self._persona(uid, hist, stars, traits))
        self._empty = self._persona(-1, np.zeros(0, np.int64), np.zeros(0), {})
        if self.fallback is not None:
            self.fallback.fit(dataset, train)
        self._fitted = True
        logger.info(
            "LLM discriminator: %d users built from %d train rows (%s)",
            len(self._profiles),
            len(train),
            dataset.name,
        )

    @staticmethod
    def _trait_columns(users: pd.DataFrame) -> dict[str, pd.Series]:
        return {
            str(c)[len(_TRAIT_PREFIX) :]: users[c]
            for c in users.columns
            if str(c).startswith(_TRAIT_PREFIX)
        }

    def _persona(
        self,
        user: int,
        hist: NDArray[np.int64],
        stars: NDArray[np.float64],
        traits: dict[str, pd.Series],
    ) -> str:
        """The profile lines of one user: from its train rows and its ``a4r_*`` traits only."""
        nouns, topic_word = self._words["nouns"], self._words["topics"]
        if hist.size == 0:
            lines = [f"You have not watched any {nouns} here yet."]
        else:
            lines = [f"You have watched {hist.size} {nouns} here."]
            counts: Counter[str] = Counter()
            for item in hist.tolist():
                counts.update(set(self._topics[item]))
            top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:_FAVOURITES]
            if top:
                favourites = ", ".join(
                    f"{_clean(name)} ({round(100 * n / hist.size)}%)" for name, n in top
                )
                lines.append(f"Your favourite {topic_word}: {favourites}.")
            rated = stars[~np.isnan(stars)]
            if rated.size:
                best = f" of {self._scale[1]:g}" if self._scale is not None else ""
                lines.append(f"Your ratings average {rated.mean():.1f}{best} stars.")
        for trait, column in traits.items():
            value = column.get(user)
            if value is None or pd.isna(value):
                continue
            level = _level(value)
            phrase = _TRAITS.get(trait, {}).get(level) if level is not None else None
            if phrase is not None:
                lines.append(phrase.format(**self._words))
            else:
                lines.append(f"{trait.replace('_', ' ').capitalize()}: {_clean(str(value))}.")
        return "\n".join(lines)

    # -- decide -----------------------------------------------------------------------------
    def decide(
        self, users: NDArray[np.int64], lists: list[NDArray[np.int64]]
    ) -> list[NDArray[np.bool_]]:
        """Per user ``users[k]``, whether it would watch each item of ``lists[k]``, in order.

        One structured call per non-empty list, batched ``batch_size`` at a time in the given
        order; lists the model could not decide fall back (see the module docstring).

        Raises:
            RecoworldError: called before :meth:`fit`.
            ValueError: ``users`` and ``lists`` differ in length, or an item id is not one of the
                dataset's.
            BudgetExceeded: the budget ran out (``on_budget="raise"``).
        """
        if not self._fitted:
            raise RecoworldError(
                "LLMDiscriminator.decide was called before fit: call fit(dataset, train) first"
            )
        users = np.asarray(users, np.int64)
        if len(users) != len(lists):
            raise ValueError(f"{len(users)} users for {len(lists)} lists")
        arrays = [np.asarray(lst, np.int64) for lst in lists]
        for k, lst in enumerate(arrays):
            if lst.size and (lst.min() < 0 or lst.max() >= self._n_items):
                raise ValueError(
                    f"list {k} (user {int(users[k])}): item ids must lie in 0..{self._n_items - 1}"
                )
        stats = LLMDiscriminatorStats()
        out: list[NDArray[np.bool_] | None] = [None] * len(arrays)
        fallen: list[int] = []
        for k, lst in enumerate(arrays):
            stats.lists += 1
            stats.decisions += int(lst.size)
            if lst.size == 0:
                out[k] = np.zeros(0, np.bool_)
        pending = [self._pending(k, int(users[k]), lst) for k, lst in enumerate(arrays) if lst.size]
        try:
            for start in range(0, len(pending), self.batch_size):
                self._run_batch(pending[start : start + self.batch_size], out, fallen, stats)
        finally:
            self.last_stats = stats
            self.stats.add(stats)
        if fallen:
            self._fall_back(users, arrays, fallen, out)
        result = [o if o is not None else np.zeros(0, np.bool_) for o in out]
        logger.info(
            "LLM discriminator: %d lists, %d calls, parse-valid %.1f%%, %d fallbacks %s, "
            "%.1f tokens per decision",
            stats.lists,
            stats.calls,
            100 * stats.parse_valid_rate,
            stats.fallbacks,
            stats.fallback_reasons,
            stats.tokens_per_decision,
        )
        return result

    def _pending(self, index: int, user: int, items: NDArray[np.int64]) -> _Pending:
        """The request for one list, its history cut to fit the context (``request=None``: the
        prompt does not fit even without history)."""
        from recoworld.llm.client import ChatRequest
        from recoworld.users.llm import estimate_tokens

        profile = self._profiles.get(user)
        persona = profile.persona if profile is not None else self._empty
        candidates = "\n".join(f"id {item}: {self._lines[item]}" for item in items.tolist())
        reply = _reply_tokens(items.tolist())
        shell = self._template.format(persona=persona, shown="", history="", candidates=candidates)
        room = (
            self.context_tokens
            - reply
            - estimate_tokens(self._system)
            - estimate_tokens(shell)
            - 16  # the chat template's own tokens, and the "N of M" note
        )
        if room < 0:
            return _Pending(index, user, items, None)
        lines: list[str] = []
        if profile is not None:
            used = 0
            for back in range(1, min(self.max_history, profile.items.size) + 1):
                item = int(profile.items[-back])
                line = f"- {self._lines[item]}"
                star = profile.ratings[-back]
                if not np.isnan(star):
                    line += f" rated {star:g}"
                cost = estimate_tokens(line) + 1
                if used + cost > room:
                    break
                lines.append(line)
                used += cost
        total = profile.items.size if profile is not None else 0
        if not lines:
            shown = "none shown"
            history = "(nothing yet)" if total == 0 else "(not shown)"
        else:
            shown = f"newest first, {len(lines)} of {total}"
            history = "\n".join(lines)
        content = self._template.format(
            persona=persona, shown=shown, history=history, candidates=candidates
        )
        request = ChatRequest(
            messages=(
                {"role": "system", "content": self._system},
                {"role": "user", "content": content},
            ),
            schema=decision_schema(items.tolist()),
            tag="fidelity",
            max_tokens=reply,
        )
        return _Pending(index, user, items, request)

    def _run_batch(
        self,
        batch: list[_Pending],
        out: list[NDArray[np.bool_] | None],
        fallen: list[int],
        stats: LLMDiscriminatorStats,
    ) -> None:
        """Send one batch; write the decisions of valid replies into ``out``, the rest into
        ``fallen``, and count everything in ``stats`` (and the call records)."""
        sent = [p for p in batch if p.request is not None]
        for p in batch:
            if p.request is None:
                self._fallen(p, None, "context", _CONTEXT_ERROR, fallen, stats)
        if not sent:
            return
        try:
            results = list(self.client.chat([p.request for p in sent]))
        except BudgetExceeded:
            if self.on_budget == "raise":
                raise
            for p in sent:
                self._fallen(p, None, "budget", "budget", fallen, stats)
            return
        budget_hit = False
        for p, result in zip(sent, results, strict=True):
            stats.calls += 1
            stats.llm_decisions += int(p.items.size)
            stats.server_calls += result.calls
            stats.cached += int(result.cached)
            stats.repaired += int(result.repaired)
            stats.invalid_outputs += result.invalid_outputs
            stats.prompt_tokens += result.prompt_tokens
            stats.completion_tokens += result.completion_tokens
            if not result.cached:
                stats.cost_usd += self.config.cost(result.prompt_tokens, result.completion_tokens)
            decisions, problem = self._parse(result, p.items)
            if decisions is not None:
                stats.valid += 1
                out[p.index] = decisions
                self._record(p, result, False, None)
                continue
            if result.error == "budget":
                budget_hit = True
                reason = "budget"
            elif result.invalid_outputs or (result.valid and problem is not None):
                reason = "invalid"
            else:
                reason = "failed"
            self._fallen(p, result, reason, problem, fallen, stats)
        if budget_hit and self.on_budget == "raise":
            raise BudgetExceeded(
                "the fidelity run's LLM budget is spent "
                f"({getattr(self.client.usage, 'tokens', 0):,} tokens); raise "
                "fidelity.llm.budget_tokens / budget_usd and run again (the replies obtained "
                "are in the response cache, if one is set, and are replayed)"
            )

    def _parse(
        self, result: ChatResult, items: NDArray[np.int64]
    ) -> tuple[NDArray[np.bool_] | None, str | None]:
        """The list's decisions from a reply, or ``(None, why not)``: the reply must hold one
        entry per item, in the list's order, with the item's id and a boolean."""
        if not result.valid:
            return None, result.error or "invalid output"
        data = result.data
        entries = data.get("decisions") if isinstance(data, dict) else None
        if not isinstance(entries, list) or len(entries) != items.size:
            return None, f"expected {items.size} decisions"
        out = np.zeros(items.size, np.bool_)
        for j, (entry, item) in enumerate(zip(entries, items.tolist(), strict=True)):
            if not isinstance(entry, dict):
                return None, f"decision {j} is not an object"
            got, watch = entry.get("id"), entry.get("watch")
            if not _is_int(got) or got != item:
                return None, f"decision {j} has id {got!r}, expected {item}"
            if not isinstance(watch, bool):
                return None, f"decision {j} has watch {watch!r}, expected true or false"
            out[j] = watch
        return out, None

    def _fallen(
        self,
        p: _Pending,
        result: ChatResult | None,
        reason: str,
        error: str | None,
        fallen: list[int],
        stats: LLMDiscriminatorStats,
    ) -> None:
        stats.fallbacks += 1
        stats.fallback_reasons[reason] = stats.fallback_reasons.get(reason, 0) + 1
        fallen.append(p.index)
        self._record(p, result, True, error or reason)

    def _record(
        self, p: _Pending, result: ChatResult | None, fallback: bool, error: str | None
    ) -> None:
        self._records.append(
            {
                "user": p.user,
                "n_items": int(p.items.size),
                "prompt_hash": result.key if result is not None else None,
                "prompt_tokens": result.prompt_tokens if result is not None else 0,
                "completion_tokens": result.completion_tokens if result is not None else 0,
                "latency_s": result.latency_s if result is not None else 0.0,
                "cached": bool(result is not None and result.cached),
                "valid": bool(result is not None and not fallback),
                "repaired": bool(result is not None and result.repaired),
                "fallback": fallback,
                "error": error,
                "output": result.text if result is not None and result.text else None,
            }
        )

    def _fall_back(
        self,
        users: NDArray[np.int64],
        lists: list[NDArray[np.int64]],
        fallen: list[int],
        out: list[NDArray[np.bool_] | None],
    ) -> None:
        """The fallback's decisions (else "not watch") for the lists in ``fallen``."""
        fallen = sorted(fallen)
        if self.fallback is None:
            for k in fallen:
                out[k] = np.zeros(lists[k].size, np.bool_)
            return
        decided = self.fallback.decide(users[fallen], [lists[k] for k in fallen])
        for k, decision in zip(fallen, decided, strict=True):
            decision = np.asarray(decision, np.bool_)
            if decision.shape != lists[k].shape:
                raise ValueError(
                    f"fallback {getattr(self.fallback, 'name', '?')!r} gave {decision.size} "
                    f"decisions for a list of {lists[k].size} (user {int(users[k])})"
                )
            out[k] = decision

    # -- what a run reports -----------------------------------------------------------------
    def prompt(self, user: int, items: Sequence[int]) -> list[dict[str, str]] | None:
        """The messages :meth:`decide` would send for ``user`` and this list (``None``: the
        prompt cannot fit the context), for inspection and documentation."""
        if not self._fitted:
            raise RecoworldError("LLMDiscriminator.prompt before fit: call fit(dataset, train)")
        pending = self._pending(0, int(user), np.asarray(items, np.int64))
        return None if pending.request is None else [dict(m) for m in pending.request.messages]

    def call_records(self) -> pd.DataFrame:
        """One row per list decided so far: ``user``, ``n_items``, ``prompt_hash`` (the cache
        key), ``prompt_tokens``, ``completion_tokens``, ``latency_s``, ``cached``, ``valid``,
        ``repaired``, ``fallback``, ``error``, ``output`` (the model's JSON)."""
        columns = [
            "user",
            "n_items",
            "prompt_hash",
            "prompt_tokens",
            "completion_tokens",
            "latency_s",
            "cached",
            "valid",
            "repaired",
            "fallback",
            "error",
            "output",
        ]
        return pd.DataFrame(self._records, columns=columns)


def _clean(text: str) -> str:
    """A topic or trait value as the prompt shows it (one short line, quotes made apostrophes)."""
    from recoworld.llm.items import clean_text

    return clean_text(text, _TOPIC_CHARS)


def _level(value: object) -> int | None:
    """A trait level (an integral number), else ``None``."""
    if _is_int(value):
        return int(cast(int, value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    return None
