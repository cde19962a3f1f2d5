"""Wrappers that re-rank another policy's scores: the instruction-aware planner and MMR.

Both wrap any policy with ``score(request) -> [n, C]`` (every built-in scoring policy has one),
by name (``base="mf"``, with ``base_params``) or as an object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from recoworld.errors import ConfigError
from recoworld.policies.base import Feedback, RecommendRequest, Slates, slates_from_scores
from recoworld.policies.parsing import ParsedInstruction, parse_instruction

if TYPE_CHECKING:
    from recoworld.policies.llm_parsing import LLMInstructionParser

__all__ = ["PARSERS", "InstructionAwarePolicy", "MMRPolicy", "Preferences", "consolidate"]

#: The instruction-aware policy's parsers: the rules, or a language model.
PARSERS = ("rules", "llm")


def _base(base: Any, params: dict[str, Any] | None) -> Any:
    if isinstance(base, str):
        from recoworld.policies import make_policy

        base = make_policy(base, **(params or {}))
    if not callable(getattr(base, "score", None)):
        raise ConfigError(
            f"policy.params.base: {getattr(base, 'name', base)!r} has no score(request); "
            "wrap a scoring policy (random, most_popular, trending, mf)"
        )
    return base


def _standardize(scores: NDArray[np.floating]) -> NDArray[np.float32]:
    """Per row: zero mean, unit spread (a constant row becomes zeros)."""
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    return ((scores - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)


@dataclass(slots=True)
class Preferences:
    """One user's preferences consolidated from its instructions this session."""

    more: set[int]
    less: set[int]
    fresh: bool
    last_text: str


def consolidate(current: Preferences | None, parsed: ParsedInstruction, text: str) -> Preferences:
    """A user's session preferences after one more instruction (RecBot-style turns): topics asked
    for join the wanted set and leave the refused one and vice versa; "fresh" stays once asked."""
    if current is None:
        current = Preferences(set(), set(), False, "")
    current.more = (current.more - parsed.less) | parsed.more
    current.less = (current.less - parsed.more) | parsed.less
    current.fresh = current.fresh or parsed.fresh
    current.last_text = text
    return current


class InstructionAwarePolicy:
    """Listens to reflective instructions: parses their words, then plans over a base policy.

    **Parser** (RecBot-style: rule-based by default, a language model as an option): each new
    instruction text is read into topics asked more of, topics asked less of, and whether the
    user wants fresh items — by :func:`recoworld.policies.parsing.parse_instruction`
    (``parser="rules"``), or by one structured LLM call per new text, a tick's texts in one
    batch, falling back to the rules for a text whose call fails or whose reply stays invalid
    (``parser="llm"``: :mod:`recoworld.policies.llm_parsing`; every call is recorded in the
    run's ``llm_calls`` table, purpose ``parse``). **Consolidation** across turns within a
    session: a new instruction adds to the wanted and refused topics, a topic asked for again
    leaves the refused set and vice versa, and "fresh" stays once asked; the same standing text
    is not read twice; a new session starts empty. **Planner**: the base policy's scores,
    standardized per user, then ``+boost`` for wanted topics; refused topics are filtered out
    (``hard=True``, as long as ``k`` candidates remain) or get ``−attenuate``; under "fresh",
    items in the user's recent history are filtered out likewise. It reads only the words,
    never the logged intent. Deterministic given its base (and, with the LLM parser, its
    replies, which the response cache makes replayable): propensity of the base.

    ``parser="llm"`` builds an :class:`~recoworld.policies.llm_parsing.LLMInstructionAwarePolicy`
    (a subclass): the same planner, plus the members of an LLM-backed policy (``llm``,
    ``offline``, ``client``, ``stop_reason``, ``drain_records``, ``close``, ``replay_timing``).
    The rule-based policy has none of them and imports nothing of the LLM stack.

    Args:
        base: name of a scoring policy (``mf``, ``most_popular``, ``trending``, ``random``) or
            a policy object with ``score``.
        base_params: parameters of the named base.
        boost: score added to wanted topics (in standard deviations of the base's scores).
        attenuate: score removed from refused topics when not filtered.
        hard: filter refused topics and, under "fresh", seen items (else attenuate them).
        parser: ``"rules"`` (the rule-based parser) or ``"llm"`` (a language model).
        llm: ``parser="llm"`` only: the LLM client configuration, a mapping of
            :class:`recoworld.llm.LLMConfig` fields (``base_urls``, ``model`` — required, or
            ``OPENAI_MODEL`` —, ``api_key_env``, ``concurrency`` (calls in flight),
            ``timeout_s``, ``max_retries``, ``max_tokens`` (the reply budget of one reading;
            raise it for character-level tokenizers), ``structured``, ``repair_rounds``,
            ``cache`` (the response cache file; a run recorded from its configuration defaults
            it to the run folder's ``llm-cache.sqlite``), ``budget_tokens``, ``budget_usd``,
            prices, ``transport``) or an ``LLMConfig``. The API key is read from the environment
            variable ``api_key_env`` names. Sampling is set by ``temperature`` and ``seed``.
        temperature: ``parser="llm"`` only: sampling temperature of the parser's calls.
        seed: ``parser="llm"`` only: sampling seed sent with every call (``None``: none).
        offline: ``parser="llm"`` only: answer from the response cache only (``llm.cache``),
            never calling a server (a replay; ``recoworld replay`` switches it on by itself);
            a text not in the cache is read by the rules.
        client: ``parser="llm"`` only: an object with the :class:`recoworld.llm.LLMClient`
            interface (``chat``, ``usage``) to use instead of building one; the caller closes it.

    Raises:
        ConfigError: a parameter is invalid; the message names ``policy.params.<key>``.
    """

    name = "instruction_aware"

    def __new__(cls, *args: Any, **kwargs: Any) -> InstructionAwarePolicy:
        # parser="llm" is the subclass with the LLM plumbing; the rules import none of it.
        if cls is InstructionAwarePolicy and kwargs.get("parser") == "llm":
            from recoworld.policies.llm_parsing import LLMInstructionAwarePolicy

            return super().__new__(LLMInstructionAwarePolicy)
        return super().__new__(cls)

    def __init__(
        self,
        *,
        base: Any = "mf",
        base_params: dict[str, Any] | None = None,
        boost: float = 1.5,
        attenuate: float = 1.5,
        hard: bool = True,
        parser: str = "rules",
        llm: Any = None,
        temperature: float = 0.0,
        seed: int | None = 0,
        offline: bool = False,
        client: Any = None,
    ) -> None:
        if parser not in PARSERS:
            raise ConfigError(
                f"policy.params.parser: expected one of {', '.join(PARSERS)}, got {parser!r}"
            )
        self._reader: LLMInstructionParser | None = None
        if parser == "rules":
            for key, value, default in (
                ("llm", llm, None),
                ("temperature", temperature, 0.0),
                ("seed", seed, 0),
                ("offline", offline, False),
                ("client", client, None),
            ):
                if value is not default and value != default:
                    raise ConfigError(
                        f"policy.params.{key}: only with parser: llm (the rule-based parser "
                        "makes no LLM calls)"
                    )
        else:
            from recoworld.policies.llm_parsing import build_reader

            self._reader = build_reader(llm, temperature, seed, offline, client)
        self.parser = parser
        self.base = _base(base, base_params)
        self.name = f"instruction_aware[{self.base.name}]"
        if parser == "llm":
            self.name = f"instruction_aware[{self.base.name},llm]"
        self.boost, self.attenuate, self.hard = float(boost), float(attenuate), bool(hard)
        self.preferences: dict[int, Preferences] = {}
        self.parsed_instructions = 0

    def _consolidate(
        self,
        user: int,
        text: str | None,
        topics: tuple[str, ...],
        readings: dict[str, ParsedInstruction] | None = None,
    ) -> Preferences:
        current = self.preferences.get(user)
        if text is None:  # no instruction this session (yet): nothing to remember
            self.preferences.pop(user, None)
            return Preferences(set(), set(), False, "")
        if current is not None and current.last_text == text:
            return current
        parsed = readings[text] if readings is not None else parse_instruction(text, topics)
        self.parsed_instructions += 1
        current = consolidate(current, parsed, text)
        self.preferences[user] = current
        return current

    def _new_texts(self, users: list[int], texts: Sequence[str | None]) -> list[tuple[int, str]]:
        """``(user, text)`` for each user whose standing text is not consolidated yet."""
        new = []
        for user, text in zip(users, texts, strict=True):
            current = self.preferences.get(user)
            if text is not None and (current is None or current.last_text != text):
                new.append((user, text))
        return new

    def score(self, request: RecommendRequest) -> NDArray[np.float32]:
        cat, cand = request.catalog, request.candidates
        scores = _standardize(self.base.score(request))
        topic = cat.topic[cand]
        k = request.k
        users, texts = request.users.tolist(), request.instructions
        readings = None
        if self._reader is not None:  # the LLM parser: this tick's new texts in one batch
            said = self._new_texts(users, texts)
            readings = self._reader.read(said, cat.topic_names, request.tick)
        for row, (user, text) in enumerate(zip(users, texts, strict=True)):
            prefs = self._consolidate(user, text, cat.topic_names, readings)
            if not (prefs.more or prefs.less or prefs.fresh):
                continue
            if prefs.more:
                scores[row] += self.boost * np.isin(topic[row], list(prefs.more))
            unwanted = np.zeros(cand.shape[1], bool)
            if prefs.less:
                unwanted |= np.isin(topic[row], list(prefs.less))
            if prefs.fresh:
                unwanted |= np.isin(cand[row], request.history[row])
            if self.hard and (~unwanted).sum() >= k:
                scores[row, unwanted] = -np.inf
            else:
                scores[row] -= self.attenuate * unwanted
        return scores

    def recommend(self, request: RecommendRequest) -> Slates:
        return slates_from_scores(request, self.score(request))

    def update(self, feedback: Feedback) -> None:
        self.base.update(feedback)
        for user in feedback.left_users.tolist():  # the session ended: preferences end with it
            self.preferences.pop(user, None)


class MMRPolicy:
    """Maximal marginal relevance: diversifies any scoring policy's slate.

    Greedily, position by position, picks the candidate maximizing
    ``λ · relevance − (1 − λ) · max cos(item, items already picked)``, where relevance is the
    base policy's score rescaled to [0, 1] per user and cos is over the catalogue's public item
    embeddings. ``λ = 1`` is the base ranking; smaller values trade relevance for variety.
    Deterministic given its base: propensity 1.

    Args:
        base: name of a scoring policy or a policy object with ``score``.
        base_params: parameters of the named base.
        lam: the relevance weight λ in [0, 1].
    """

    name = "mmr"

    def __init__(
        self,
        *,
        base: Any = "most_popular",
        base_params: dict[str, Any] | None = None,
        lam: float = 0.7,
    ) -> None:
        if not 0.0 <= lam <= 1.0:
            raise ConfigError(f"policy.params.lam: expected a number in [0, 1], got {lam}")
        self.base = _base(base, base_params)
        self.name = f"mmr[{self.base.name}]"
        self.lam = float(lam)

    def score(self, request: RecommendRequest) -> NDArray[np.float32]:
        """Scores whose descending order is the MMR order (``k`` .. 1 for the picked items)."""
        raw = self.base.score(request).astype(np.float64)
        finite = np.isfinite(raw)
        lo = np.where(finite, raw, np.inf).min(axis=1, keepdims=True)
        hi = np.where(finite, raw, -np.inf).max(axis=1, keepdims=True)
        rel = np.where(finite, (raw - lo) / np.where(hi > lo, hi - lo, 1.0), -np.inf)
        emb = request.catalog.embedding[request.candidates].astype(np.float64)  # [n, C, D]
        emb /= np.maximum(np.linalg.norm(emb, axis=2, keepdims=True), 1e-12)
        n, c = rel.shape
        k = min(request.k, c)
        rows = np.arange(n)
        picked = np.zeros((n, c), bool)
        max_sim = np.full((n, c), -1.0)
        out = np.full((n, c), -np.inf, np.float32)
        for position in range(k):
            value = self.lam * rel - (1.0 - self.lam) * np.maximum(max_sim, 0.0)
            value[picked] = -np.inf
            best = value.argmax(axis=1)
            picked[rows, best] = True
            out[rows, best] = k - position
            sim = np.einsum("ncd,nd->nc", emb, emb[rows, best])
            max_sim = np.maximum(max_sim, sim)
        return out

    def recommend(self, request: RecommendRequest) -> Slates:
        return slates_from_scores(request, self.score(request))

    def update(self, feedback: Feedback) -> None:
        self.base.update(feedback)
