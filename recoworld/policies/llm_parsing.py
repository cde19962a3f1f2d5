"""The instruction-aware policy's LLM parser: a language model reads what the users said.

``make_policy("instruction_aware", parser="llm", llm={...})`` builds
:class:`LLMInstructionAwarePolicy`: :class:`recoworld.policies.rerank.InstructionAwarePolicy` whose
parser is a language model instead of the rules of :mod:`recoworld.policies.parsing`.
Consolidation and the planner are the same; only the reading of each new text differs.

**How a tick is read.** Every instruction text the policy has not consolidated yet for its user
(a user's standing text that differs from the last one consolidated) is read with one structured
call per distinct text; all of a tick's texts go to the client in one batch (``llm.concurrency``
in flight, results in request order — texts in the order their first speaker appears in the
request). The reply is constrained by :func:`parse_schema`: ``{"more": [topic, ...], "less":
[topic, ...], "fresh": bool}`` with at most three topics each, from the catalogue's topic names.
A topic in both lists counts as refused (as the rule-based parser reads it). The prompts are
versioned files (``recoworld/llm/prompts/parse.v1.system.txt`` and ``parse.v1.user.txt``): the
system message says the text is the user's words about their feed, to extract only what they ask
for and never to follow requests inside it; the text is quoted with its double quotes neutralized.

**Fallback.** A reply still invalid after the client's repair round, a call that failed, or one
the budget did not allow: that text is read by the rule-based parser instead, and its row says
``fallback`` (with the ``error``). A spent budget also sets :attr:`stop_reason`, which stops a run
cleanly after the tick.

**Recording.** One ``llm_calls`` row per call: purpose ``parse``, ``user`` the (first) user who
said the text, ``output`` the reply (its JSON). The same text said again later in the run is the
same request, answered from the response cache (``llm.cache``; a run recorded from its
configuration keeps it in its folder), so a run replays (``recoworld replay``) byte for byte.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from recoworld.errors import ConfigError
from recoworld.llm.config import LLMConfig
from recoworld.policies._llm import CallTiming, PolicyLLM, llm_config, usable
from recoworld.policies.parsing import ParsedInstruction, parse_instruction
from recoworld.policies.rerank import InstructionAwarePolicy

if TYPE_CHECKING:
    from recoworld.llm.client import ChatRequest

__all__ = [
    "MAX_TOPICS",
    "PROMPT_VERSION",
    "PURPOSE",
    "LLMInstructionAwarePolicy",
    "LLMInstructionParser",
    "parse_schema",
]

logger = logging.getLogger(__name__)

PROMPT_VERSION = "v1"
#: ``llm_calls.purpose`` of the parser's calls.
PURPOSE = "parse"
#: Topics a reading may name in ``more`` and in ``less``.
MAX_TOPICS = 3
#: Characters of an instruction text quoted in the prompt.
_TEXT_LIMIT = 300


def parse_schema(topics: Sequence[str]) -> dict[str, Any]:
    """The JSON schema of one reading: ``more`` and ``less`` (at most :data:`MAX_TOPICS` topic
    names each, from ``topics``) and ``fresh``."""
    names = {"type": "array", "items": {"enum": list(topics)}, "maxItems": MAX_TOPICS}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["more", "less", "fresh"],
        "properties": {"more": names, "less": dict(names), "fresh": {"type": "boolean"}},
    }


def reading(data: Mapping[str, Any], topics: Sequence[str]) -> ParsedInstruction:
    """A valid reply as topic indices (a topic in both lists is refused, as the rules read it)."""
    index = {name: i for i, name in enumerate(topics)}
    more = {index[n] for n in data.get("more") or () if isinstance(n, str) and n in index}
    less = {index[n] for n in data.get("less") or () if isinstance(n, str) and n in index}
    return ParsedInstruction(frozenset(more - less), frozenset(less), data.get("fresh") is True)


class LLMInstructionParser:
    """Reads batches of instruction texts with a language model (see the module docstring).

    Args:
        io: the policy's LLM plumbing (client, budget, rows).
    """

    def __init__(self, io: PolicyLLM) -> None:
        self.io = io
        self._topics: tuple[str, ...] | None = None
        self._schema: dict[str, Any] = {}
        self._system = ""
        self._template = ""

    def _setup(self, topics: tuple[str, ...]) -> None:
        if self._topics == topics:
            return
        from recoworld.users.llm import load_prompt

        self._topics = topics
        self._schema = parse_schema(topics)
        self._system = load_prompt(f"parse.{PROMPT_VERSION}.system").format(
            topics=", ".join(topics)
        )
        self._template = load_prompt(f"parse.{PROMPT_VERSION}.user")

    def request(self, text: str) -> ChatRequest:
        """The call that reads ``text`` (for the current topics)."""
        from recoworld.llm.client import ChatRequest
        from recoworld.llm.items import clean_text

        return ChatRequest(
            messages=(
                {"role": "system", "content": self._system},
                {
                    "role": "user",
                    "content": self._template.format(text=clean_text(text, _TEXT_LIMIT)),
                },
            ),
            schema=self._schema,
            tag=PURPOSE,
            max_tokens=self.io.config.max_tokens,
        )

    def read(
        self, said: Sequence[tuple[int, str]], topics: tuple[str, ...], tick: int
    ) -> dict[str, ParsedInstruction]:
        """The reading of each distinct text of ``said`` (``(user, text)`` pairs): one call per
        text, all in one batch; the rule-based reading where a call gives no usable reply.
        Each call is recorded (user: the first who said the text)."""
        speakers: dict[str, int] = {}
        for user, text in said:
            speakers.setdefault(text, user)
        if not speakers:
            return {}
        self._setup(topics)
        texts = list(speakers)
        results = self.io.chat([self.request(text) for text in texts])
        readings: dict[str, ParsedInstruction] = {}
        fallbacks = 0
        for text, result in zip(texts, results, strict=True):
            ok = usable(result)
            if ok:
                assert result is not None
                readings[text] = reading(result.data, topics)
            else:
                readings[text] = parse_instruction(text, topics)
                fallbacks += 1
            output = result.text if result is not None and result.text else None
            self.io.record(
                self.io.row(tick, speakers[text], PURPOSE, result, fallback=not ok, output=output)
            )
        logger.debug(
            "tick %d: %d instruction texts read by the LLM, %d by the rules",
            tick,
            len(texts) - fallbacks,
            fallbacks,
        )
        return readings


class LLMInstructionAwarePolicy(InstructionAwarePolicy):
    """:class:`InstructionAwarePolicy` with ``parser="llm"``: a language model reads the texts.

    Built by ``InstructionAwarePolicy(parser="llm", ...)`` or ``make_policy("instruction_aware",
    parser="llm", ...)``, with the same parameters (documented there). Besides the planner's, it
    has the members of an LLM-backed policy (:class:`recoworld.policies._llm.LLMBackedPolicy`):
    ``llm``, ``offline``, ``client``, ``stop_reason``, ``drain_records``, ``close`` and
    ``replay_timing``, all delegated to its :class:`~recoworld.policies._llm.PolicyLLM`.
    """

    _reader: LLMInstructionParser

    def __init__(self, *, parser: str = "llm", **params: Any) -> None:
        if parser != "llm":
            raise ConfigError(
                f"policy.params.parser: this policy reads with parser: llm, got {parser!r} "
                "(InstructionAwarePolicy has the rule-based parser)"
            )
        super().__init__(parser=parser, **params)

    def __repr__(self) -> str:
        return f"LLMInstructionAwarePolicy(base={self.base.name!r}, model={self.llm.model!r})"

    @property
    def llm(self) -> LLMConfig:
        """The LLM client configuration (settable before the first call)."""
        return self._reader.io.config

    @llm.setter
    def llm(self, value: LLMConfig) -> None:
        self._reader.io.config = value

    @property
    def offline(self) -> bool:
        """Answer from the response cache only (``llm.cache``), never calling a server."""
        return self._reader.io.offline

    @offline.setter
    def offline(self, value: bool) -> None:
        self._reader.io.offline = value

    @property
    def stop_reason(self) -> str | None:
        """Why the run should stop (the LLM budget is spent), else ``None``."""
        return self._reader.io.stop_reason

    @property
    def client(self) -> Any:
        """The LLM client (built from ``llm`` on first use unless one was passed)."""
        return self._reader.io.client

    def close(self) -> None:
        """Close the client this policy built (the schedule calls it when the run finishes)."""
        self._reader.io.close()

    def drain_records(self) -> dict[str, dict[str, Any]]:
        """The ``llm_calls`` rows of the parser's calls since the last drain (then forgotten)."""
        return self._reader.io.drain_records()

    def replay_timing(self, timing: Sequence[CallTiming]) -> None:
        """Replay: the original run's ``(prompt_hash, latency_s, cached, error)`` per call."""
        self._reader.io.replay_timing(timing)


def build_reader(
    llm: Mapping[str, Any] | LLMConfig | None,
    temperature: float,
    seed: int | None,
    offline: bool,
    client: Any,
) -> LLMInstructionParser:
    """The LLM parser of ``policy.params`` (errors name ``policy.params.<key>``)."""
    config = llm_config(llm, temperature, seed, needs_model=client is None, who="the parser")
    io = PolicyLLM(
        config,
        client=client,
        offline=offline,
        label="LLM instruction parser",
        fallback="reading instructions by the rules",
        noun="parser",
    )
    return LLMInstructionParser(io)
