"""LLM-driven users, mixed with numeric users in one population (behind the same contract).

Every tick the numeric model responds for the whole population first — so its random streams do
not depend on who is driven by the LLM — and then the rows of LLM users are replaced by what the
language model decided, one call per user and page, all of a tick's calls in flight together
(:class:`recoworld.llm.LLMClient`). An LLM user whose reply stays invalid after the repair round,
or whose call fails, keeps the numeric model's decision for that page: a *fallback*, counted and
flagged in the ``llm_calls`` table.

What the model decides, per item in order: skip, click (with seconds watched), like, share,
comment (with its text) or leave, each with a few words of why; then its mood (1–5), which sets
the user's satisfaction (``0.3 · (mood − 1)``); when it is close to leaving, a reflective
instruction in its own words, with the topics it wants more and less of (the ground-truth intent
the instruction-following metrics use); and its stance, where the scenario has opinion dynamics.
Fatigue, boredom and taste drift keep following the numeric rules; retention (whether and when a
user returns) follows the numeric rule on the satisfaction the LLM's mood set.

Memory, per LLM user: the interactions in the population's memory ring (items and reactions),
one summary per past session (written from the session's tallies), and reflections written by
the model when the importance of recent events (click 1, like 2, share, comment, leaving or an
instruction 3) passes ``llm.reflection_importance``. A page prompt holds the persona, then as
much memory as ``llm.memory_tokens`` allows — reflections first, then session summaries, then
recent interactions — then the page. Prompts are versioned files (``recoworld/llm/prompts``),
static text first so that servers can reuse its prefix cache.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from recoworld.errors import BudgetExceeded, ConfigError
from recoworld.llm.client import OFFLINE_MISS
from recoworld.policies._llm import call_error, call_row, usable
from recoworld.trajectory.schema import TABLES
from recoworld.users.base import SOURCE_SOCIAL, Feed, Instructions, Responses, ReturnPlan, UserModel
from recoworld.users.persona import Persona, load_persona_pack, synthesize_personas

if TYPE_CHECKING:
    from recoworld.config import ScenarioConfig
    from recoworld.llm.client import ChatRequest, ChatResult, LLMClient
    from recoworld.llm.items import ItemTexts
    from recoworld.world.world import World

__all__ = [
    "PROMPT_VERSION",
    "PURPOSES",
    "LLMUserModel",
    "estimate_tokens",
    "load_prompt",
    "page_schema",
]

logger = logging.getLogger(__name__)

PROMPT_VERSION = "v1"
#: ``llm_calls.purpose`` of the LLM users' calls (a replay gives them these rows' timing).
PURPOSES = ("page", "reflection")
_ACTIONS = ("skip", "click", "like", "share", "comment", "leave")
_IMPORTANCE = {"skip": 0.0, "click": 1.0, "like": 2.0, "share": 3.0, "comment": 3.0, "leave": 3.0}
_INSTRUCTION_IMPORTANCE = 3.0
_SATISFACTION_PER_MOOD = 0.3
_RATING = {"click": 3.0, "like": 5.0, "share": 5.0, "comment": 4.0}
_REACTION_VERB = {0: "skipped", 1: "watched", 2: "liked", 3: "shared"}
#: Characters per token assumed when sizing prompts: conservative for English with Llama/GPT
#: tokenizers (about 4 on prose; 3.0 measured with Llama-2's on page prompts, whose quoted
#: titles and numbers tokenize densely).
CHARS_PER_TOKEN = 2.9
_KEEP_REFLECTIONS = 4
_KEEP_SUMMARIES = 4


def estimate_tokens(text: str) -> int:
    """A conservative token count for sizing prompts (no tokenizer needed)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@cache
def load_prompt(name: str) -> str:
    """The prompt template ``name`` (e.g. ``"page.v1.system"``) from ``recoworld/llm/prompts``."""
    path = resources.files("recoworld.llm.prompts").joinpath(f"{name}.txt")
    return path.read_text(encoding="utf-8").strip()


#: Watch times a page decision may give, in seconds, and the stances it may report. Numbers are
#: enumerated, not ranged: grammar-constrained decoding (llama.cpp) enforces enums, not bounds.
WATCH_SECONDS = (3, 10, 30, 60, 180, 600)
STANCES = (-1.0, -0.5, 0.0, 0.5, 1.0)


def page_schema(n_items: int, topics: tuple[str, ...], stance: bool) -> dict[str, Any]:
    """The JSON schema of a page decision over ``n_items`` items (exactly one entry each)."""
    topic = {"enum": [*topics, None]}
    properties: dict[str, Any] = {
        "items": {
            "type": "array",
            "minItems": n_items,
            "maxItems": n_items,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["action", "why"],
                "properties": {
                    "action": {"enum": list(_ACTIONS)},
                    "seconds": {"enum": list(WATCH_SECONDS)},
                    "comment": {"type": "string", "maxLength": 48},
                    "why": {"type": "string", "maxLength": 32},
                },
            },
        },
        "mood": {"enum": [1, 2, 3, 4, 5]},
        # anyOf, not a type list: grammar converters keep maxLength only on a plain string.
        "instruction": {"anyOf": [{"type": "string", "maxLength": 100}, {"type": "null"}]},
        "more": topic,
        "less": topic,
    }
    required = ["items", "mood", "instruction", "more", "less"]
    if stance:
        properties["stance"] = {"enum": list(STANCES)}
        required.append("stance")
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": properties,
    }


REFLECTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["reflection"],
    "properties": {"reflection": {"type": "string", "minLength": 1, "maxLength": 200}},
}


@dataclass(slots=True)
class _Mind:
    """What an LLM user carries between pages and sessions."""

    persona: Persona
    reflections: list[str] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)
    importance: float = 0.0
    mood: int = 3
    instruction: str | None = None
    pages: int = 0
    items: int = 0
    clicks: int = 0
    topics: Counter[str] = field(default_factory=Counter)
    left: bool = False


@dataclass(slots=True)
class _Said:
    """An instruction an LLM user gave on this tick's page, for :meth:`LLMUserModel.instruct`."""

    text: str
    more: int
    less: int
    risk: float


#: The columns the model fills (``run`` and ``model`` are constant, added when recording).
_CALL_COLUMNS = tuple(n for n in TABLES["llm_calls"].names if n not in ("run", "model"))


class LLMUserModel(UserModel):
    """Numeric users, with the users chosen by ``config.llm`` driven by a language model.

    Args:
        config: the scenario (``config.llm`` chooses the users, personas, memory and client).
        world: the world (its population sizes the routing).
        inner: the numeric model that responds for everyone and serves as the fallback.
        rng: the ``llm`` stream (routing and synthesized personas).
        client: the LLM client (default: one built from ``config.llm.client``).
        cache: response cache path when ``config.llm.client.cache`` is unset (a run folder's).
        replay_timing: for a replay, the original run's ``(latency_s, cached, error)`` per call,
            in order: the replay records the original latency and cache flag instead of its own
            (it answers from the cache), and, for a call that failed without a reply (so none
            was cached), the original error.
    """

    name = "llm+numeric"

    def __init__(
        self,
        config: ScenarioConfig,
        world: World,
        inner: UserModel,
        rng: np.random.Generator,
        *,
        client: LLMClient | None = None,
        cache: Path | None = None,
        offline: bool = False,
        replay_timing: list[tuple[float, bool, str | None]] | None = None,
    ) -> None:
        self.config = config
        self.llm = config.llm
        self.inner = inner
        n = world.n_users
        chosen = np.zeros(n, bool)
        chosen[rng.permutation(n)[: round(self.llm.fraction * n)]] = True
        bad = [u for u in self.llm.users if u >= n]
        if bad:
            raise ConfigError(f"llm.users: ids {bad} are not users of this world (0..{n - 1})")
        chosen[list(self.llm.users)] = True
        pack = load_persona_pack(self.llm.personas) if self.llm.personas else None
        if self.llm.persona_tag is not None:
            if pack is None:
                raise ConfigError("llm.persona_tag needs a persona pack: set llm.personas")
            tagged = [self.llm.persona_tag in p.tags for p in pack]
            chosen |= np.array(tagged)[np.arange(n) % len(pack)]
        self.users = np.flatnonzero(chosen).astype(np.int64)
        self.is_llm = chosen
        # Pack personas go to users in id order, cycling (user u has pack[u % len(pack)]).
        personas = (
            [pack[u % len(pack)] for u in self.users.tolist()]
            if pack is not None
            else synthesize_personas(world, self.users, rng)
        )
        self.minds = {
            user: _Mind(persona=persona)
            for user, persona in zip(self.users.tolist(), personas, strict=True)
        }
        self._said: dict[int, _Said] = {}
        self._rows: dict[str, list[Any]] = {c: [] for c in _CALL_COLUMNS}
        self._replay = replay_timing
        self._replayed = 0
        self.stop_reason: str | None = None
        self._items: ItemTexts | None = None
        self._client = client
        self._cache = cache
        self._offline = offline
        topics = world.catalog.topic_names
        self._stance = config.users.opinion_rate > 0
        stance = (
            ' Also give your "stance" (-1 against, 1 for) on the debate items take sides in.'
            if self._stance
            else ""
        )
        self._system = load_prompt(f"page.{PROMPT_VERSION}.system").format(
            topics=", ".join(topics), stance=stance
        )
        self._reflect_system = load_prompt(f"reflection.{PROMPT_VERSION}.system")
        self._user_template = load_prompt(f"page.{PROMPT_VERSION}.user")
        self._reflect_template = load_prompt(f"reflection.{PROMPT_VERSION}.user")

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def client(self) -> LLMClient:
        if self._client is None:
            from dataclasses import replace

            from recoworld.llm.client import LLMClient

            cfg = self.llm.client
            if cfg.cache is None and self._cache is not None:
                cfg = replace(cfg, cache=str(self._cache))
            self._client = LLMClient(cfg, offline=self._offline)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def __getstate__(self) -> dict[str, Any]:
        """For a checkpoint: everything but the live client (built again on first use)."""
        state = dict(self.__dict__)
        state["_client"] = None
        return state

    def drain_records(self) -> dict[str, dict[str, Any]]:
        """This tick's rows of the ``llm_calls`` table (then forgotten)."""
        rows, self._rows = self._rows, {c: [] for c in _CALL_COLUMNS}
        if not rows["tick"]:
            return {}
        return {"llm_calls": {**rows, "model": self.llm.client.model}}

    def _record(
        self,
        tick: int,
        user: int,
        kind: str,
        result: ChatResult | None,
        fallback: bool,
        error: str | None,
    ) -> None:
        timing = None
        if self._replay is not None:
            if self._replayed < len(self._replay):
                latency, cached, original_error = self._replay[self._replayed]
                timing = (latency, cached)
                if error == OFFLINE_MISS:
                    error = original_error
            self._replayed += 1
        values = call_row(
            tick,
            user,
            kind,
            result,
            config=self.llm.client,
            fallback=fallback,
            error=error,
            output=result.text if result is not None and result.text else None,
            timing=timing,
        )
        for key, value in values.items():
            self._rows[key].append(value)

    def _chat(self, requests: list[ChatRequest]) -> list[ChatResult | None]:
        if not requests:
            return []
        if self.stop_reason is not None:
            return [None] * len(requests)
        try:
            results: list[ChatResult | None] = list(self.client.chat(requests))
        except BudgetExceeded as exc:
            self.stop_reason = str(exc)
            return [None] * len(requests)
        if any(self._recorded_error(k, r) == "budget" for k, r in enumerate(results)):
            self.stop_reason = (
                f"the LLM budget is spent ({self.client.usage.tokens:,} tokens); "
                "raise llm.client.budget_tokens / budget_usd to go on"
            )
        return results

    def _recorded_error(self, k: int, result: ChatResult | None) -> str | None:
        """The error the ``k``-th result of the batch about to be recorded will carry: in a
        replay, a call the cache cannot answer takes the original run's error."""
        if result is None:
            return "budget"
        index = self._replayed + k
        if result.error == OFFLINE_MISS and self._replay is not None and index < len(self._replay):
            return self._replay[index][2]
        return result.error

    # -- prompts ----------------------------------------------------------------------------
    def _item_texts(self, world: World) -> ItemTexts:
        if self._items is None:
            from recoworld.llm.items import ItemTexts

            self._items = ItemTexts(world.catalog, self.llm.item_text)
        return self._items

    def _memory(self, world: World, user: int, budget: int) -> str:
        mind, pop = self.minds[user], world.population
        parts: list[str] = []
        used = 0

        def add(line: str) -> bool:
            nonlocal used
            cost = estimate_tokens(line) + 1
            if used + cost > budget:
                return False
            parts.append(line)
            used += cost
            return True

        for text in reversed(mind.reflections):
            if not add(f"Reflection: {text}"):
                break
        for text in reversed(mind.summaries):
            if not add(f"Visit: {text}"):
                break
        ptr = int(pop.memory_ptr[user])
        size = pop.memory_items.shape[1]
        texts = self._item_texts(world)
        recent: list[str] = []
        chars = 0  # of "; ".join(recent)
        for back in range(1, size + 1):
            slot = (ptr - back) % size
            item = int(pop.memory_items[user, slot])
            if item < 0:
                break
            verb = _REACTION_VERB.get(int(pop.memory_reaction[user, slot]), "saw")
            line = f"{verb} {texts.line(item)}"
            grown = chars + len(line) + (2 if recent else 0)
            if used + math.ceil(grown / CHARS_PER_TOKEN) + 2 > budget:
                break
            recent.append(line)
            chars = grown
        if recent:
            parts.append("Recently (newest first): " + "; ".join(recent))
        return "\n".join(parts) if parts else "(nothing yet)"

    def _page_prompt(
        self, world: World, user: int, items: NDArray[np.int32], social: NDArray[np.bool_]
    ) -> tuple[list[dict[str, str]], int] | None:
        """Messages and reply budget for one page, shortened to fit the context; ``None`` if even
        the shortest form would not fit."""
        mind, pop, clock = self.minds[user], world.population, world.clock
        texts = self._item_texts(world)
        lines = [
            f"{j + 1}. {texts.line(int(item))}" + (" (shared by a friend)" if social[j] else "")
            for j, item in enumerate(items.tolist())
        ]
        t = clock.tick
        now = (
            f"Day {clock.day(t) + 1}, {clock.hour_of_day(t):02d}:{clock.minutes(t) % 60:02d}. "
            f"Page {int(pop.session_pages[user]) + 1} of this visit. Mood so far: {mind.mood}/5."
        )
        if mind.instruction:
            now += f' You last told the app: "{mind.instruction}".'
        reply = 80 + self.llm.reply_tokens_per_item * len(lines)
        fixed = estimate_tokens(self._system) + estimate_tokens(mind.persona.render() + now) + 16
        rest = fixed + estimate_tokens("\n".join(lines))
        room = self.llm.context_tokens - reply - rest
        if room < 0:
            return None
        budget = min(self.llm.memory_tokens, room)
        if self.llm.page_tokens:  # a long page keeps less memory, not a longer prompt
            budget = max(0, min(budget, self.llm.page_tokens - rest))
        memory = self._memory(world, user, budget)
        content = self._user_template.format(
            persona=mind.persona.render(), memory=memory, now=now, items="\n".join(lines)
        )
        return [
            {"role": "system", "content": self._system},
            {"role": "user", "content": content},
        ], reply

    # -- the contract -----------------------------------------------------------------------
    def start_session(self, world: World, users: NDArray[np.int64]) -> None:
        self.inner.start_session(world, users)
        for user in users[self.is_llm[users]].tolist():
            mind = self.minds[user]
            mind.mood, mind.instruction = 3, None
            mind.pages = mind.items = mind.clicks = 0
            mind.topics = Counter()
            mind.left = False

    def respond(self, world: World, feed: Feed, rng: np.random.Generator) -> Responses:
        from recoworld.llm.client import ChatRequest

        r = self.inner.respond(world, feed, rng)
        rows = np.flatnonzero(self.is_llm[feed.users])
        self._said.clear()
        if rows.size == 0:
            return r
        tick = world.clock.tick
        topics = world.catalog.topic_names
        requests: list[ChatRequest] = []
        sent: list[tuple[int, int, NDArray[np.int64]]] = []
        for row in rows.tolist():
            user = int(feed.users[row])
            ranks = np.flatnonzero(feed.items[row] >= 0)
            if ranks.size == 0:
                continue
            prompt = self._page_prompt(
                world,
                user,
                feed.items[row, ranks],
                feed.source[row, ranks] == SOURCE_SOCIAL,
            )
            if prompt is None:
                self._record(tick, user, "page", None, True, "prompt beyond the context window")
                continue
            messages, reply = prompt
            schema = page_schema(int(ranks.size), topics, self._stance)
            requests.append(
                ChatRequest(messages=tuple(messages), schema=schema, tag="page", max_tokens=reply)
            )
            sent.append((row, user, ranks))
        for (row, user, ranks), result in zip(sent, self._chat(requests), strict=True):
            ok = usable(result)
            if ok:
                assert result is not None
                self._apply(world, r, row, user, ranks, feed.items[row, ranks], result.data)
            self._record(tick, user, "page", result, not ok, call_error(result, ok))
        self._reflect(world, tick, [user for _, user, _ in sent])
        return r

    def _apply(
        self,
        world: World,
        r: Responses,
        row: int,
        user: int,
        ranks: NDArray[np.int64],
        items: NDArray[np.int32],
        data: dict[str, Any],
    ) -> None:
        """Write one LLM page decision into row ``row`` of the responses."""
        mind = self.minds[user]
        cat = world.catalog
        for name in ("examined", "clicked", "liked", "shared", "commented"):
            getattr(r, name)[row] = False
        r.dwell[row] = 0.0
        r.rating[row] = np.nan
        r.left[row] = False
        dwell_default = self.config.users.dwell_seconds
        for entry, rank, item in zip(data["items"], ranks.tolist(), items.tolist(), strict=False):
            action = entry["action"]
            r.examined[row, rank] = True
            mind.items += 1
            mind.importance += _IMPORTANCE[action]
            if action == "leave":
                r.left[row] = True
                mind.left = True
                break
            if action == "skip":
                continue
            r.clicked[row, rank] = True
            r.liked[row, rank] = action == "like"
            r.shared[row, rank] = action == "share"
            r.commented[row, rank] = action == "comment"
            r.dwell[row, rank] = float(entry.get("seconds", dwell_default))
            r.rating[row, rank] = _RATING[action]
            mind.clicks += 1
            mind.topics[cat.topic_names[int(cat.topic[item])]] += 1
        mood = int(data["mood"])
        mind.mood = mood
        mind.pages += 1
        r.satisfaction[row] = np.float32(_SATISFACTION_PER_MOOD * (mood - 1))
        if self._stance and data.get("stance") is not None:
            r.opinion[row] = np.float32(data["stance"])
        text = data.get("instruction")
        if isinstance(text, str) and text.strip() and not r.left[row]:
            names = cat.topic_names
            more = names.index(data["more"]) if data.get("more") in names else -1
            less = names.index(data["less"]) if data.get("less") in names else -1
            self._said[user] = _Said(text.strip(), more, less, 1.0 - mood / 5.0)
            mind.instruction = text.strip()
            mind.importance += _INSTRUCTION_IMPORTANCE

    def _reflect(self, world: World, tick: int, users: list[int]) -> None:
        """Reflections by ``users`` (this tick's LLM users) whose importance passed the bar."""
        from recoworld.llm.client import ChatRequest

        due = [u for u in users if self.minds[u].importance >= self.llm.reflection_importance]
        requests = []
        for user in due:
            mind = self.minds[user]
            content = self._reflect_template.format(
                persona=mind.persona.render(),
                memory=self._memory(world, user, self.llm.memory_tokens),
            )
            requests.append(
                ChatRequest(
                    messages=(
                        {"role": "system", "content": self._reflect_system},
                        {"role": "user", "content": content},
                    ),
                    schema=REFLECTION_SCHEMA,
                    tag="reflection",
                    max_tokens=90,
                )
            )
        for user, result in zip(due, self._chat(requests), strict=True):
            mind = self.minds[user]
            ok = usable(result)
            if ok:
                assert result is not None
                mind.reflections = [*mind.reflections, str(result.data["reflection"]).strip()][
                    -_KEEP_REFLECTIONS:
                ]
                mind.importance = 0.0
            self._record(tick, user, "reflection", result, False, call_error(result, ok))

    def instruct(
        self,
        world: World,
        users: NDArray[np.int64],
        page_items: NDArray[np.int32],
        rng: np.random.Generator,
    ) -> Instructions:
        """The numeric model's instructions for numeric users (computed for everyone, so its
        stream does not depend on the routing), then the LLM users' own words."""
        pop = world.population
        llm_users = users[self.is_llm[users]]
        before = pop.satisfaction[llm_users].copy()
        base = self.inner.instruct(world, users, page_items, rng)
        pop.satisfaction[llm_users] = before  # the numeric hope bump is not theirs
        keep = ~self.is_llm[base.users]
        said = [(u, self._said[u]) for u in llm_users.tolist() if u in self._said]
        self._said.clear()
        if keep.all() and not said:
            return base
        texts = [t for t, k in zip(base.text, keep.tolist(), strict=True) if k]
        ids = base.text_ids[keep] if base.text_ids is not None else pop.intern_texts(texts)
        new_texts = [s.text for _, s in said]
        return Instructions(
            users=np.concatenate([base.users[keep], np.array([u for u, _ in said], np.int64)]),
            text=texts + new_texts,
            more=np.concatenate([base.more[keep], np.array([s.more for _, s in said], np.int16)]),
            less=np.concatenate([base.less[keep], np.array([s.less for _, s in said], np.int16)]),
            constraint=[c for c, k in zip(base.constraint, keep.tolist(), strict=True) if k]
            + [""] * len(said),
            reason=[c for c, k in zip(base.reason, keep.tolist(), strict=True) if k]
            + ["llm"] * len(said),
            risk=np.concatenate([base.risk[keep], np.array([s.risk for _, s in said], np.float32)]),
            text_ids=np.concatenate([ids, pop.intern_texts(new_texts)]),
        )

    def plan_return(
        self, world: World, users: NDArray[np.int64], rng: np.random.Generator
    ) -> ReturnPlan:
        """The numeric rule for everyone (on the satisfaction the LLM's mood set); each LLM
        user's session is summarized into its memory."""
        clock = world.clock
        for user in users[self.is_llm[users]].tolist():
            mind = self.minds[user]
            if mind.pages == 0:
                continue
            t = clock.tick
            top = ", ".join(topic for topic, _ in mind.topics.most_common(2)) or "nothing"
            summary = (
                f"day {clock.day(t) + 1} {clock.hour_of_day(t):02d}h: {mind.pages} pages, "
                f"watched {mind.clicks}/{mind.items} ({top}), mood {mind.mood}"
                + (", left" if mind.left else "")
                + (f', asked "{mind.instruction}"' if mind.instruction else "")
            )
            mind.summaries = [*mind.summaries, summary][-_KEEP_SUMMARIES:]
        return self.inner.plan_return(world, users, rng)
