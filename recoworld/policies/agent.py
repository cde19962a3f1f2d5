"""An agentic recommender: a language model builds each user's slate by calling tools.

**How it works.** Per tick, for each requesting user (up to ``users_per_tick`` of them), the
language model reads the user's recent history (item topics and titles from the catalogue), the
user's latest reflective instruction (``request.instructions``, the words only) and a summary of
the candidate pool (topic counts and the ``show_candidates`` best candidates by the base model),
and answers with a **plan**: a short ``thought`` and a list of tool calls, each
``{"name": ..., "arguments": {...}}``, constrained by a JSON schema (:func:`plan_schema`). The
policy then executes the calls deterministically, in order, on a per-user working state — the
*candidate pool* (what filters left) and a *shortlist*:

- ``search(query, topic)`` adds to the shortlist the candidates left whose words (title, summary,
  topic name) share a word with ``query`` — and, with a ``topic``, only candidates of that topic —
  most matched words first, ties by the base model's score;
- ``filter(exclude_topics, exclude_seen)`` removes candidates of those topics and, with
  ``exclude_seen``, items in the user's recent history, from the pool and the shortlist;
- ``rank(by)`` orders the shortlist (if empty: every candidate left) by ``base`` (the base
  policy's score), ``popularity`` (``log1p`` of the catalogue's clicks) or ``recent`` (newest
  first by ``created_tick``);
- ``recommend(item_ids, reasoning)`` names the page, best first. Calls after it are ignored.

A plan that ends without ``recommend`` while turns remain (``max_rounds``) is answered with the
tool results and the shortlist, and the model plans again (a bounded "plan, execute, observe"
loop; one call per user and turn, every user's call of a turn in flight together through
:class:`recoworld.llm.LLMClient` and gathered in request order).

**The slate is always valid.** It is the recommended ids that are candidates, not removed by a
filter and not repeated (each one dropped is recorded with why), then the shortlist in order,
then the remaining candidates by the base model's ranking, then — only if filters left fewer
than ``k`` candidates — the filtered ones by the base ranking. A call that fails or whose reply
stays invalid after the client's repair round ends that user's deliberation: the slate is built
from the state so far (after a failed first turn: the base model's slate) and the call's row is
flagged ``fallback``. Users beyond ``users_per_tick`` get the base model's slate and no call
(users who gave an instruction are served first, the most recent first; ties in a fixed
pseudo-random order per tick). Scores are the base model's scores of the items shown;
propensities are 1 (the policy is deterministic given its replies, which the response cache
makes replayable).

**Recording.** Every call is one row of the run's ``llm_calls`` table (purpose ``agent``,
``user`` the user served), in the columns the LLM users fill (model, prompt hash, tokens, cost,
latency, cached, valid, repaired, fallback, error). Its ``output`` is a JSON document: ``turn``,
the model's ``thought``, the executed ``calls`` with their ``arguments`` and a one-line
``result`` each, the ``reasoning`` of ``recommend``; on the user's last row of the tick also the
final ``slate``, how many items came ``from_llm`` and how many were ``filled``, and the ids
``dropped`` with why; an invalid reply is kept as ``reply`` (its raw text). The schedule collects
the rows through :meth:`LLMAgentPolicy.drain_records`, as it does the LLM users'.

**Replay.** The client, the budget and the rows are the shared plumbing of LLM-backed policies
(:mod:`recoworld.policies._llm`). A run recorded from its configuration keeps the agent's replies
in the run folder's response cache (``llm-cache.sqlite``) unless ``llm.cache`` names a file, and
``recoworld replay RUN_DIR`` rebuilds the agent ``offline`` on that cache, its rows carrying the
original calls' latency and cache flag: byte-identical, with no server.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from recoworld.errors import ConfigError
from recoworld.llm.config import LLMConfig
from recoworld.policies._llm import CallTiming, PolicyLLM, llm_config, usable
from recoworld.policies._llm import is_int as _is_int
from recoworld.policies.base import Feedback, RecommendRequest, Slates
from recoworld.policies.rerank import _base

if TYPE_CHECKING:
    from recoworld.llm.client import ChatResult
    from recoworld.llm.items import ItemTexts
    from recoworld.world.catalog import Catalog

__all__ = ["PROMPT_VERSION", "PURPOSE", "RANK_BY", "TOOLS", "LLMAgentPolicy", "plan_schema"]

logger = logging.getLogger(__name__)

PROMPT_VERSION = "v1"
#: ``llm_calls.purpose`` of the agent's calls.
PURPOSE = "agent"
#: The tools a plan may call, in the order the system prompt describes them.
TOOLS = ("search", "filter", "rank", "recommend")
#: What ``rank`` may order by.
RANK_BY = ("base", "popularity", "recent")
_WORD = re.compile(r"[a-z0-9]+")
#: Words that match nearly every item text ("A rough cooking pasta recipe by creator 7.").
_STOPWORD_TEXT = (
    "a an and the of for to in on at by with from me my i more less some any show want "
    "creator please no not too much"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_SHOWN_RESULTS = 5  # item numbers quoted in a tool's one-line result


def plan_schema(topics: Sequence[str], k: int, max_calls: int) -> dict[str, Any]:
    """The JSON schema of one plan: a ``thought`` and 1..``max_calls`` tool calls.

    The same object for every user of a run (item numbers are integers, checked against the
    user's candidates when executed, not enumerated), so the client and a llama.cpp server
    compile it once. Lengths are bounded by ``maxItems`` (at most ``k`` items recommended, four
    topics per filter) and ``maxLength``, which grammar-constrained decoding enforces; numeric
    bounds are not used (it would not enforce them).
    """
    topic_names = list(topics)

    def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "arguments"],
            "properties": {
                "name": {"enum": [name]},
                "arguments": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": list(arguments),
                    "properties": arguments,
                },
            },
        }

    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["thought", "calls"],
        "properties": {
            "thought": {"type": "string", "maxLength": 120},
            "calls": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_calls,
                "items": {
                    "anyOf": [
                        call(
                            "search",
                            {
                                "query": {"type": "string", "maxLength": 40},
                                "topic": {"enum": [*topic_names, None]},
                            },
                        ),
                        call(
                            "filter",
                            {
                                "exclude_topics": {
                                    "type": "array",
                                    "items": {"enum": topic_names},
                                    "maxItems": max(1, min(4, len(topic_names) - 1)),
                                },
                                "exclude_seen": {"type": "boolean"},
                            },
                        ),
                        call("rank", {"by": {"enum": list(RANK_BY)}}),
                        call(
                            "recommend",
                            {
                                "item_ids": {
                                    "type": "array",
                                    "items": {"type": "integer"},
                                    "minItems": 1,
                                    "maxItems": k,
                                },
                                "reasoning": {"type": "string", "maxLength": 100},
                            },
                        ),
                    ]
                },
            },
        },
    }


@dataclass(slots=True)
class _Desk:
    """One user's working state while the agent builds its slate."""

    row: int
    user: int
    cands: NDArray[np.int32]  # [C] candidate item ids
    base: NDArray[np.float32]  # [C] the base model's scores
    base_order: NDArray[np.intp]  # columns by the base ranking
    seen: NDArray[np.int32]  # the user's recent history (valid ids only)
    pos: dict[int, int]  # item id -> column
    alive: NDArray[np.bool_]  # not removed by a filter
    shortlist: list[int] = field(default_factory=list)  # columns
    chosen: list[Any] | None = None  # recommend's item_ids, as given
    reasoning: str = ""
    messages: list[dict[str, str]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # llm_calls rows (values)
    traces: list[dict[str, Any]] = field(default_factory=list)  # their outputs, to finish
    done: bool = False


def _mix(users: NDArray[np.integer], tick: int) -> NDArray[np.uint64]:
    """A fixed pseudo-random number per (user, tick) (a 32-bit integer hash), for tie-breaks
    that favour no user id."""
    mask = np.uint64(0xFFFFFFFF)
    x = np.asarray(users).astype(np.uint64) * np.uint64(0x9E3779B1)
    x = (x + np.uint64(((tick + 1) * 0x85EBCA77) & 0xFFFFFFFF)) & mask
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & mask
    x ^= x >> np.uint64(15)
    return x


def _words(text: object) -> frozenset[str]:
    """The content words of ``text`` (lower case, letters and digits, no stopwords)."""
    return frozenset(
        w for w in _WORD.findall(str(text).lower()) if w not in _STOPWORDS and len(w) > 1
    )


class LLMAgentPolicy:
    """An agentic recommender: a language model plans tool calls that build each user's slate.

    See the module docstring for how a slate is built, what the tools do and how calls are
    recorded. The policy learns only through its base (``update`` is forwarded to it); the
    language model sees the users' recent history and instruction words every time.

    Args:
        llm: the LLM client configuration: a mapping of :class:`recoworld.llm.LLMConfig` fields
            (as ``llm.client`` in a scenario: ``base_urls``, ``model``, ``api_key_env``,
            ``concurrency``, ``timeout_s``, ``max_retries``, ``max_tokens`` (the reply budget
            of one plan; raise it for character-level tokenizers), ``structured``,
            ``repair_rounds``, ``cache`` (the response cache file; a run recorded from its
            configuration defaults it to the run folder's ``llm-cache.sqlite``),
            ``budget_tokens``, ``budget_usd``, prices, ``transport``) or an ``LLMConfig``.
            ``model`` is required (or ``OPENAI_MODEL``). The API key is read from the
            environment variable ``api_key_env`` names, never from the parameters. Sampling is
            set by ``temperature`` and ``seed`` below, not here.
        base: the base scoring model: a registered policy name with ``score(request)``
            (``most_popular``, ``mf``, ``trending``, ``random``, ...) or such an object. It
            ranks for the ``rank`` tool, fills slates, and serves users without a call.
        base_params: parameters of the named base.
        max_history: recent items of the user shown to the model (newest first).
        show_candidates: candidates listed in the prompt (the best by the base model); the
            tools search the whole pool.
        max_rounds: turns (calls) per user and tick: a plan without ``recommend`` is shown
            its results and the shortlist, and the model plans again, up to this many turns.
        max_calls: tool calls per plan (the schema's ``maxItems``).
        users_per_tick: users served by the model per tick (``None``: all); the others get the
            base model's slate and make no call. Users with an instruction come first.
        temperature: sampling temperature of the agent's calls.
        seed: sampling seed sent with every call (``None``: none), so replies repeat.
        offline: answer from the response cache only (``llm.cache``), never calling a server
            (a replay; ``recoworld replay`` switches it on by itself); a call not in the cache
            falls back.
        client: an object with the :class:`recoworld.llm.LLMClient` interface (``chat``,
            ``usage``) to use instead of building one from ``llm``; the caller closes it.

    Raises:
        ConfigError: a parameter is invalid; the message names ``policy.params.<key>``.
    """

    name = "llm_agent"

    def __init__(
        self,
        *,
        llm: Mapping[str, Any] | LLMConfig | None = None,
        base: Any = "mf",
        base_params: dict[str, Any] | None = None,
        max_history: int = 10,
        show_candidates: int = 20,
        max_rounds: int = 2,
        max_calls: int = 6,
        users_per_tick: int | None = 64,
        temperature: float = 0.2,
        seed: int | None = 0,
        offline: bool = False,
        client: Any = None,
    ) -> None:
        config = llm_config(llm, temperature, seed, needs_model=client is None)
        for key, value, low in (
            ("max_history", max_history, 0),
            ("show_candidates", show_candidates, 1),
            ("max_rounds", max_rounds, 1),
            ("max_calls", max_calls, 1),
        ):
            if not _is_int(value) or value < low:
                raise ConfigError(
                    f"policy.params.{key}: expected an integer >= {low}, got {value!r}"
                )
        if users_per_tick is not None and (not _is_int(users_per_tick) or users_per_tick < 0):
            raise ConfigError(
                "policy.params.users_per_tick: expected an integer >= 0 or null (all users), "
                f"got {users_per_tick!r}"
            )
        self._io = PolicyLLM(
            config,
            client=client,
            offline=offline,
            label="LLM agent",
            fallback="serving the base model's slates",
            noun="agent",
        )
        self.base = _base(base, base_params)
        self.name = f"llm_agent[{self.base.name}]"
        self.max_history = int(max_history)
        self.show_candidates = int(show_candidates)
        self.max_rounds = int(max_rounds)
        self.max_calls = int(max_calls)
        self.users_per_tick = None if users_per_tick is None else int(users_per_tick)
        self._catalog: Catalog | None = None
        self._k = 0
        self._texts: ItemTexts | None = None
        self._tokens: dict[int, frozenset[str]] = {}
        self._schema: dict[str, Any] | None = None
        self._prompts: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"LLMAgentPolicy(base={self.base.name!r}, model={self.llm.model!r})"

    # -- plumbing (recoworld.policies._llm) -------------------------------------------------
    @property
    def llm(self) -> LLMConfig:
        """The LLM client configuration (settable before the first call: a recorded run gives
        it the run folder's response cache when ``llm.cache`` names none)."""
        return self._io.config

    @llm.setter
    def llm(self, value: LLMConfig) -> None:
        self._io.config = value

    @property
    def offline(self) -> bool:
        """Answer from the response cache only (``llm.cache``), never calling a server."""
        return self._io.offline

    @offline.setter
    def offline(self, value: bool) -> None:
        self._io.offline = value

    @property
    def stop_reason(self) -> str | None:
        """Why the run should stop (the LLM budget is spent), else ``None``."""
        return self._io.stop_reason

    @property
    def client(self) -> Any:
        """The LLM client (built from ``llm`` on first use unless one was passed)."""
        return self._io.client

    def close(self) -> None:
        """Close the client this policy built (the schedule calls it when the run finishes)."""
        self._io.close()

    def drain_records(self) -> dict[str, dict[str, Any]]:
        """The ``llm_calls`` rows of the calls made since the last drain (then forgotten):
        ``{"llm_calls": {column: values}}``, or ``{}`` when there were none."""
        return self._io.drain_records()

    def replay_timing(self, timing: Sequence[CallTiming]) -> None:
        """Replay: the original run's ``(prompt_hash, latency_s, cached, error)`` per call of
        this policy, which its rows then carry (see :mod:`recoworld.policies._llm`)."""
        self._io.replay_timing(timing)

    def _setup(self, catalog: Catalog, k: int) -> None:
        """Item texts, the plan schema and the prompts, for this catalogue and slate size."""
        if self._catalog is catalog and self._k == k:
            return
        from recoworld.llm.items import ItemTexts
        from recoworld.users.llm import load_prompt

        self._catalog, self._k = catalog, k
        self._texts = ItemTexts(catalog, "text")
        self._tokens = {}
        self._schema = plan_schema(catalog.topic_names, k, self.max_calls)
        turns = (
            f" If your calls end without recommend, you are shown their results and may call"
            f" tools again (at most {self.max_rounds} turns)."
            if self.max_rounds > 1
            else ""
        )
        self._prompts = {
            "system": load_prompt(f"agent.{PROMPT_VERSION}.system").format(
                k=k, topics=", ".join(catalog.topic_names), turns=turns
            ),
            "user": load_prompt(f"agent.{PROMPT_VERSION}.user"),
            "results": load_prompt(f"agent.{PROMPT_VERSION}.results"),
        }

    def _line(self, item: int) -> str:
        assert self._texts is not None
        return f"#{item} {self._texts.line(item)}"

    def _item_words(self, item: int) -> frozenset[str]:
        words = self._tokens.get(item)
        if words is None:
            cat = self._catalog
            assert cat is not None
            topic = cat.topic_names[int(cat.topic[item])]
            words = _words(f"{topic} {cat.title[item]} {cat.summary[item]}")
            self._tokens[item] = words
        return words

    # -- the protocol -----------------------------------------------------------------------
    def recommend(self, request: RecommendRequest) -> Slates:
        """Slates for every requesting user (see the module docstring)."""
        from recoworld.llm.client import ChatRequest

        cat, k = request.catalog, request.k
        base = np.asarray(self.base.score(request), dtype=np.float32)
        order = np.argsort(-base, axis=1, kind="stable")
        items = np.take_along_axis(request.candidates, order[:, :k], axis=1).astype(np.int32)
        scores = np.take_along_axis(base, order[:, :k], axis=1)
        rows = self._rows_served(request)
        if rows.size == 0:
            return Slates(items, scores, np.ones(items.shape, np.float32))
        self._setup(cat, k)
        assert self._schema is not None
        history = request.history
        instructions = request.instructions
        desks = [self._desk(request, int(row), base[row], order[row], history[row]) for row in rows]
        for desk in desks:
            desk.messages = [
                {"role": "system", "content": self._prompts["system"]},
                {"role": "user", "content": self._user_prompt(desk, instructions[desk.row])},
            ]
        for turn in range(1, self.max_rounds + 1):
            active = [d for d in desks if not d.done]
            if not active:
                break
            requests = [
                ChatRequest(
                    messages=tuple(d.messages),
                    schema=self._schema,
                    tag=PURPOSE,
                    max_tokens=self.llm.max_tokens,
                )
                for d in active
            ]
            for desk, result in zip(active, self._io.chat(requests), strict=True):
                self._turn(desk, turn, result, request.tick)
        logger.debug(
            "tick %d: %d users planned by the LLM, %d calls, %d fell back",
            request.tick,
            len(desks),
            sum(len(d.rows) for d in desks),
            sum(d.rows[-1]["fallback"] for d in desks if d.rows),
        )
        for desk in desks:
            slate, trace = self._assemble(desk, k)
            items[desk.row] = desk.cands[slate]
            scores[desk.row] = desk.base[slate]
            desk.traces[-1].update(trace)
            for values, output in zip(desk.rows, desk.traces, strict=True):
                values["output"] = json.dumps(output, ensure_ascii=False, separators=(",", ":"))
                self._io.record(values)
        return Slates(items, scores, np.ones(items.shape, np.float32))

    def update(self, feedback: Feedback) -> None:
        """Forwarded to the base (the language model keeps no state between ticks)."""
        self.base.update(feedback)

    # -- one tick ---------------------------------------------------------------------------
    def _rows_served(self, request: RecommendRequest) -> NDArray[np.intp]:
        """Rows of the request the model serves: all, or ``users_per_tick`` of them — users
        with an instruction first (the most recent first), then a fixed pseudo-random order
        per tick — in request order."""
        n, cap = request.n, self.users_per_tick
        if cap is None or cap >= n:
            return np.arange(n)
        age = np.asarray(request.instruction_age, np.int64)
        age = np.where(age >= 0, age, np.iinfo(np.int64).max)
        return np.sort(np.lexsort((_mix(request.users, request.tick), age))[:cap])

    def _desk(
        self,
        request: RecommendRequest,
        row: int,
        base: NDArray[np.float32],
        order: NDArray[np.intp],
        history: NDArray[np.int32],
    ) -> _Desk:
        cands = np.asarray(request.candidates[row], np.int32)
        return _Desk(
            row=row,
            user=int(request.users[row]),
            cands=cands,
            base=base,
            base_order=order,
            seen=history[history >= 0],
            pos={int(item): col for col, item in enumerate(cands.tolist())},
            alive=np.ones(cands.size, bool),
        )

    def _user_prompt(self, desk: _Desk, instruction: str | None) -> str:
        from recoworld.llm.items import clean_text

        cat = self._catalog
        assert cat is not None
        said = f'"{clean_text(instruction, 200)}"' if instruction else "(nothing yet)"
        seen = desk.seen[: self.max_history].tolist()
        history = "\n".join(f"- {self._line(i)}" for i in seen) or "(nothing yet)"
        counts = np.bincount(cat.topic[desk.cands], minlength=cat.n_topics)
        topics = ", ".join(
            f"{cat.topic_names[t]} {counts[t]}"
            for t in np.argsort(-counts, kind="stable")
            if counts[t]
        )
        shown = desk.cands[desk.base_order[: self.show_candidates]].tolist()
        return self._prompts["user"].format(
            instruction=said,
            history=history,
            n_candidates=desk.cands.size,
            topics=topics,
            n_shown=len(shown),
            candidates="\n".join(self._line(i) for i in shown),
        )

    def _turn(self, desk: _Desk, turn: int, result: ChatResult | None, tick: int) -> None:
        """Record one call; execute its plan if usable, else end the user's deliberation."""
        ok = usable(result)
        trace: dict[str, Any] = {"turn": turn}
        if ok:
            assert result is not None
            data = result.data
            trace["thought"] = str(data.get("thought", ""))
            trace["calls"] = self._execute(desk, data.get("calls"))
            if desk.chosen is not None:
                trace["reasoning"] = desk.reasoning
                desk.done = True
            elif turn < self.max_rounds:
                desk.messages += [
                    {"role": "assistant", "content": result.text},
                    {"role": "user", "content": self._results_prompt(desk, trace, turn + 1)},
                ]
            else:
                desk.done = True
        else:
            desk.done = True
            if result is not None and result.text:
                trace["reply"] = result.text
        # The output (the trace) is filled in once the user's slate is assembled.
        desk.rows.append(
            self._io.row(tick, desk.user, PURPOSE, result, fallback=not ok, output=None)
        )
        desk.traces.append(trace)

    def _results_prompt(self, desk: _Desk, trace: dict[str, Any], turn: int) -> str:
        results = "\n".join(
            f"{c['name']}({json.dumps(c['arguments'], ensure_ascii=False)}): {c['result']}"
            for c in trace["calls"]
        )
        shown = desk.cands[desk.shortlist[: self.show_candidates]].tolist()
        return self._prompts["results"].format(
            results=results or "(no calls)",
            n_shortlist=len(desk.shortlist),
            n_shown=len(shown),
            shortlist="\n".join(self._line(i) for i in shown) or "(empty)",
            turn=turn,
            turns=self.max_rounds,
        )

    # -- the tools --------------------------------------------------------------------------
    def _execute(self, desk: _Desk, calls: object) -> list[dict[str, Any]]:
        """Run a plan's calls in order on ``desk``; each executed call with a one-line result
        (malformed calls are kept with a result saying so, and change nothing)."""
        executed: list[dict[str, Any]] = []
        for call in calls if isinstance(calls, list) else []:
            name = call.get("name") if isinstance(call, dict) else None
            args = call.get("arguments") if isinstance(call, dict) else None
            if not isinstance(args, dict):
                args = {}
            entry = {"name": name, "arguments": args}
            if desk.chosen is not None:
                entry["result"] = "ignored: after recommend"
            elif name == "search":
                entry["result"] = self._search(desk, args)
            elif name == "filter":
                entry["result"] = self._filter(desk, args)
            elif name == "rank":
                entry["result"] = self._rank(desk, args)
            elif name == "recommend":
                entry["result"] = self._recommend(desk, args)
            else:
                entry["result"] = f"ignored: unknown tool {name!r}"
            executed.append(entry)
        return executed

    def _topic(self, name: object) -> int | None:
        """The index of topic ``name`` (case-insensitive), else ``None``."""
        cat = self._catalog
        assert cat is not None
        if not isinstance(name, str):
            return None
        lowered = [t.lower() for t in cat.topic_names]
        key = name.strip().lower()
        return lowered.index(key) if key in lowered else None

    def _quote(self, desk: _Desk, cols: Sequence[int]) -> str:
        ids = desk.cands[list(cols)[:_SHOWN_RESULTS]].tolist()
        more = "…" if len(cols) > _SHOWN_RESULTS else ""
        return ", ".join(f"#{i}" for i in ids) + more

    def _search(self, desk: _Desk, args: dict[str, Any]) -> str:
        cat = self._catalog
        assert cat is not None
        words = _words(args.get("query") or "")
        topic_name = args.get("topic")
        topic = self._topic(topic_name)
        if topic_name is not None and topic is None:
            return f"ignored: unknown topic {topic_name!r}"
        if not words and topic is None:
            return "ignored: nothing to search for"
        cols = np.flatnonzero(desk.alive)
        if topic is not None:
            cols = cols[cat.topic[desk.cands[cols]] == topic]
        hits = np.array(
            [len(words & self._item_words(int(desk.cands[c]))) for c in cols.tolist()], np.int64
        )
        if words:
            keep = hits > 0
            cols, hits = cols[keep], hits[keep]
        order = np.lexsort((-desk.base[cols].astype(np.float64), -hits))
        listed = set(desk.shortlist)
        found = cols[order].tolist()
        added = [c for c in found if c not in listed]
        desk.shortlist.extend(added)
        if not found:
            return "0 matches"
        matches = f"{len(found)} match" + ("es" if len(found) > 1 else "")
        return f"{matches}, {len(added)} new on the shortlist: {self._quote(desk, found)}"

    def _filter(self, desk: _Desk, args: dict[str, Any]) -> str:
        cat = self._catalog
        assert cat is not None
        names = args.get("exclude_topics") or []
        topics = [self._topic(n) for n in (names if isinstance(names, list) else [names])]
        drop = np.isin(cat.topic[desk.cands], [t for t in topics if t is not None])
        if args.get("exclude_seen") is True:
            drop |= np.isin(desk.cands, desk.seen)
        removed = int((drop & desk.alive).sum())
        desk.alive &= ~drop
        desk.shortlist = [c for c in desk.shortlist if desk.alive[c]]
        unknown = [n for n, t in zip(names, topics, strict=False) if t is None]
        note = f" (unknown topics ignored: {unknown})" if unknown else ""
        return f"removed {removed}; {int(desk.alive.sum())} candidates left{note}"

    def _rank(self, desk: _Desk, args: dict[str, Any]) -> str:
        cat = self._catalog
        assert cat is not None
        by = args.get("by", "base")
        if by not in RANK_BY:
            return f"ignored: cannot rank by {by!r}"
        key: NDArray[np.floating]
        if by == "popularity":
            key = np.log1p(cat.clicks[desk.cands].astype(np.float64))
        elif by == "recent":
            key = cat.created_tick[desk.cands].astype(np.float64)
        else:
            key = desk.base.astype(np.float64)
        cols = np.array(desk.shortlist or np.flatnonzero(desk.alive).tolist(), np.intp)
        order = np.lexsort((-desk.base[cols].astype(np.float64), -key[cols]))
        desk.shortlist = cols[order].tolist()
        return f"ranked {len(desk.shortlist)} by {by}: {self._quote(desk, desk.shortlist)}"

    def _recommend(self, desk: _Desk, args: dict[str, Any]) -> str:
        ids = args.get("item_ids")
        desk.chosen = list(ids) if isinstance(ids, list) else []
        desk.reasoning = str(args.get("reasoning") or "")
        return f"{len(desk.chosen)} items named"

    def _assemble(self, desk: _Desk, k: int) -> tuple[list[int], dict[str, Any]]:
        """The user's ``k`` slate columns and what the trace says about them (see the module
        docstring: named items, then the shortlist, then the base ranking)."""
        taken: list[int] = []
        have: set[int] = set()
        dropped: list[dict[str, Any]] = []
        for item in desk.chosen or []:
            col = desk.pos.get(int(item)) if _is_int(item) else None
            why = None
            if col is None:
                why = "not a candidate"
            elif col in have:
                why = "duplicate"
            elif not desk.alive[col]:
                why = "filtered out"
            elif len(taken) >= k:
                why = "beyond k"
            if why is not None:
                dropped.append({"id": item, "why": why})
                continue
            assert col is not None
            taken.append(col)
            have.add(col)
        from_llm = len(taken)
        alive = desk.alive
        for source in (
            desk.shortlist,
            [c for c in desk.base_order.tolist() if alive[c]],
            desk.base_order.tolist(),
        ):
            for col in source:
                if len(taken) >= k:
                    break
                if col not in have:
                    taken.append(col)
                    have.add(col)
        return taken, {
            "slate": desk.cands[taken].tolist(),
            "from_llm": from_llm,
            "filled": k - from_llm,
            "dropped": dropped,
        }
