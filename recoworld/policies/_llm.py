"""What every LLM-backed policy shares: its client, its budget, its ``llm_calls`` rows, its replay.

A policy whose decisions come from a language model (``llm_agent``, ``instruction_aware`` with
``parser="llm"``) holds one :class:`PolicyLLM` and delegates to it:

- :func:`llm_config` turns ``policy.params.llm`` (a mapping of :class:`LLMConfig` fields, or an
  ``LLMConfig``) and the policy's own ``temperature`` and ``seed`` into the client configuration,
  with every error naming ``policy.params.<key>``;
- :attr:`PolicyLLM.client` is built from that configuration on first use (``offline``: answering
  from the response cache only), unless a client was injected; :meth:`PolicyLLM.close` closes a
  client it built, never an injected one;
- :meth:`PolicyLLM.chat` sends one batch and returns the results in request order, ``None`` for
  the calls the budget did not allow; a spent budget sets :attr:`PolicyLLM.stop_reason`, which the
  schedule reads to stop the run cleanly after the tick;
- :func:`call_row` builds one ``llm_calls`` row from a :class:`ChatResult` (the LLM users build
  theirs with it too), :meth:`PolicyLLM.record` keeps it and :meth:`PolicyLLM.drain_records` hands
  the rows to the schedule.

**Replay.** :class:`LLMBackedPolicy` is what the schedule and ``recoworld replay`` need of such a
policy: its client configuration ``llm`` (whose ``cache`` a recorded run defaults to the run
folder's response cache), an ``offline`` switch, and a :meth:`~LLMBackedPolicy.replay_timing` hook
that takes the original run's :class:`CallTiming` per call. A replay answers every call from the
cache, so its rows would say ``cached`` with no latency: the hook makes each row carry the original
call's latency and cache flag instead, matched by prompt hash in order of occurrence (a policy may
record its calls in another order than it makes them). A call that failed without a reply (an HTTP
error, a timeout, the budget) fails again in the replay with the original error — even when the
same request got a reply later in the run, which the cache now holds — so the policy falls back as
it did.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from recoworld.errors import BudgetExceeded, ConfigError
from recoworld.llm.config import LLMConfig
from recoworld.policies._params import number

if TYPE_CHECKING:
    from recoworld.llm.client import ChatRequest, ChatResult

__all__ = [
    "CallTiming",
    "LLMBackedPolicy",
    "PolicyLLM",
    "call_error",
    "call_row",
    "default_cache",
    "is_int",
    "llm_config",
    "usable",
]

logger = logging.getLogger(__name__)


class CallTiming(NamedTuple):
    """One original ``llm_calls`` row, as a replay needs it."""

    prompt_hash: str | None
    latency_s: float
    cached: bool
    error: str | None
    #: a reply came (the row is valid, or counts tokens); ``False`` with an ``error``: the call
    #: failed without any reply, and fails again in the replay
    replied: bool


def is_int(value: object) -> bool:
    """An integer (Python or NumPy), not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def usable(result: ChatResult | None) -> bool:
    """Whether a call's output can be used (made, valid JSON of the schema: an object)."""
    return result is not None and result.valid and isinstance(result.data, dict)


def call_error(result: ChatResult | None, ok: bool) -> str | None:
    """The ``error`` recorded for a call: none when its output was used; ``budget`` when it was
    never made because the budget ran out; else the client's error (or an invalid output)."""
    if result is None:
        return "budget"
    return None if ok else (result.error or "invalid output")


def call_row(
    tick: int,
    user: int,
    purpose: str,
    result: ChatResult | None,
    *,
    config: LLMConfig,
    fallback: bool,
    error: str | None,
    output: str | None,
    timing: tuple[float, bool] | None = None,
) -> dict[str, Any]:
    """One ``llm_calls`` row (every column but ``run`` and ``model``) for the call that gave
    ``result`` (``None``: no call was made).

    ``timing`` replaces the result's ``(latency_s, cached)`` (a replay records the original
    call's); the cost is that of the tokens unless the call was answered from the cache.
    """
    from recoworld.trajectory.schema import CALL_PURPOSES

    latency = result.latency_s if result is not None else 0.0
    cached = result.cached if result is not None else False
    if timing is not None:
        latency, cached = timing
    return {
        "tick": tick,
        "user": user,
        "purpose": CALL_PURPOSES.index(purpose),
        "prompt_hash": result.key if result is not None else None,
        "prompt_tokens": result.prompt_tokens if result is not None else 0,
        "completion_tokens": result.completion_tokens if result is not None else 0,
        "cost_usd": 0.0
        if result is None or cached
        else config.cost(result.prompt_tokens, result.completion_tokens),
        "latency_s": latency,
        "cached": bool(cached),
        "valid": bool(result is not None and result.valid),
        "repaired": bool(result is not None and result.repaired),
        "fallback": fallback,
        "error": error,
        "output": output,
    }


def llm_config(
    value: object,
    temperature: float,
    seed: int | None,
    *,
    needs_model: bool,
    who: str = "the agent",
) -> LLMConfig:
    """``policy.params.llm`` as an :class:`LLMConfig`, with the policy's sampling parameters
    ``temperature`` and ``seed`` (``policy.params.temperature`` / ``seed``; ``who`` names the
    policy in the error when the mapping sets them itself). ``needs_model``: the model name is
    required (no client was injected)."""
    from recoworld.llm.config import sampled_config

    number("temperature", temperature, "a number >= 0", lambda v: v >= 0)
    if seed is not None and (not is_int(seed) or seed < 0):
        raise ConfigError(f"policy.params.seed: expected an integer >= 0 or null, got {seed!r}")
    return sampled_config(
        value,
        temperature=temperature,
        seed=seed,
        path="policy.params.llm",
        owner=who,
        needs_model=needs_model,
    )


class PolicyLLM:
    """One policy's LLM client, budget, ``llm_calls`` rows and replay timing.

    Args:
        config: the client configuration (see :func:`llm_config`).
        client: an object with the :class:`recoworld.llm.LLMClient` interface (``chat``,
            ``usage``) to use instead of building one; the caller closes it.
        offline: answer from the response cache only (``config.cache``), never calling a server.
        label: the policy in log lines and the budget message (``"LLM agent"``).
        fallback: what the policy does when its calls cannot be made (for the log line).
        noun: the policy in the ``offline`` error (``"agent"``).

    Raises:
        ConfigError: ``offline`` without a cache, or a ``client`` without ``chat``.
    """

    def __init__(
        self,
        config: LLMConfig,
        *,
        client: Any = None,
        offline: bool = False,
        label: str = "LLM policy",
        fallback: str = "falling back",
        noun: str = "policy",
    ) -> None:
        if not isinstance(offline, bool):
            raise ConfigError(f"policy.params.offline: expected true or false, got {offline!r}")
        if offline and not config.cache:
            raise ConfigError(
                f"policy.params.offline: an offline {noun} answers from its response cache; "
                "set policy.params.llm.cache"
            )
        if client is not None and not callable(getattr(client, "chat", None)):
            raise ConfigError("policy.params.client: expected an LLM client with chat(requests)")
        from recoworld.llm.client import ClientSlot

        self._slot = ClientSlot(config, offline=offline, client=client)
        self.label = label
        self.fallback = fallback
        self.noun = noun
        self.stop_reason: str | None = None
        self._rows: list[dict[str, Any]] = []
        self._replay: dict[str, deque[CallTiming]] | None = None

    # -- the client -------------------------------------------------------------------------
    @property
    def config(self) -> LLMConfig:
        """The client configuration. Setting it (e.g. a response cache for a recorded run)
        closes a client built from the old one; the next call builds a new one."""
        return self._slot.config

    @config.setter
    def config(self, value: LLMConfig) -> None:
        if not isinstance(value, LLMConfig):
            raise ConfigError(f"policy.params.llm: expected an LLMConfig, got {value!r}")
        self._slot.config = value

    @property
    def offline(self) -> bool:
        """Whether calls are answered from the response cache only (a replay)."""
        return self._slot.offline

    @offline.setter
    def offline(self, value: bool) -> None:
        if value and not self._slot.config.cache:
            raise ConfigError(
                f"policy.params.offline: an offline {self.noun} answers from its response "
                "cache; set policy.params.llm.cache"
            )
        self._slot.offline = bool(value)

    @property
    def client(self) -> Any:
        """The LLM client (built from :attr:`config` on first use unless one was injected)."""
        return self._slot.client

    def close(self) -> None:
        """Close the client built here (an injected one is its owner's to close)."""
        self._slot.close()

    # -- calls ------------------------------------------------------------------------------
    def chat(self, requests: Sequence[ChatRequest]) -> list[ChatResult | None]:
        """The batch's results in request order; ``None`` for calls the budget did not allow.

        Once the budget is spent (the client raises :class:`BudgetExceeded`, or a call of the
        batch failed with ``error="budget"``), :attr:`stop_reason` says so and every later call
        is ``None`` without reaching the client.
        """
        if not requests:
            return []
        if self.stop_reason is not None:
            return [None] * len(requests)
        try:
            results: list[ChatResult | None] = list(self.client.chat(list(requests)))
        except BudgetExceeded as exc:
            self.stop_reason = str(exc)
            logger.warning("%s: %s; %s", self.label, exc, self.fallback)
            return [None] * len(requests)
        if self._replay is not None:
            results = self._as_original(results)
        if any(r is not None and r.error == "budget" for r in results):
            self.stop_reason = (
                f"the {self.label}'s budget is spent; raise policy.params.llm.budget_tokens / "
                "budget_usd to go on"
            )
        return results

    def _as_original(self, results: list[ChatResult | None]) -> list[ChatResult | None]:
        """Replay: a call that failed without a reply in the original run fails again, with its
        error (the cache may hold a reply the same request got later)."""
        assert self._replay is not None
        seen: Counter[str] = Counter()
        out: list[ChatResult | None] = []
        for result in results:
            if result is not None:
                queue = self._replay.get(result.key)
                index = seen[result.key]
                seen[result.key] += 1
                original = queue[index] if queue is not None and index < len(queue) else None
                if original is not None and not original.replied and original.error is not None:
                    result = replace(
                        result,
                        text="",
                        data=None,
                        valid=False,
                        cached=False,
                        repaired=False,
                        invalid_outputs=0,
                        calls=0,
                        prompt_tokens=0,
                        completion_tokens=0,
                        latency_s=0.0,
                        error=original.error,
                    )
            out.append(result)
        return out

    def row(
        self,
        tick: int,
        user: int,
        purpose: str,
        result: ChatResult | None,
        *,
        fallback: bool,
        output: str | None,
    ) -> dict[str, Any]:
        """The ``llm_calls`` row of one call (see :func:`call_row`): ``fallback`` when its answer
        was not used, with the error that says why. In a replay, the original call's latency,
        cache flag and — for a call the cache could not answer — error."""
        from recoworld.llm.client import OFFLINE_MISS

        error = call_error(result, not fallback)
        timing = None
        if self._replay is not None and result is not None:
            queue = self._replay.get(result.key)
            if queue:
                original = queue.popleft()
                timing = (original.latency_s, original.cached)
                if error == OFFLINE_MISS:  # e.g. a repair round that failed without a reply
                    error = original.error
        return call_row(
            tick,
            user,
            purpose,
            result,
            config=self._slot.config,
            fallback=fallback,
            error=error,
            output=output,
            timing=timing,
        )

    def record(self, row: dict[str, Any]) -> None:
        """Keep ``row`` (from :meth:`row`) for the next :meth:`drain_records`."""
        self._rows.append(row)

    def drain_records(self) -> dict[str, dict[str, Any]]:
        """The ``llm_calls`` rows recorded since the last drain (then forgotten):
        ``{"llm_calls": {column: values}}``, or ``{}`` when there were none."""
        rows, self._rows = self._rows, []
        if not rows:
            return {}
        columns = {name: [row[name] for row in rows] for name in rows[0]}
        return {"llm_calls": {**columns, "model": self._slot.config.model}}

    def replay_timing(self, timing: Sequence[CallTiming]) -> None:
        """Replay: the original run's :class:`CallTiming` of each of this policy's calls, in the
        order they were recorded (rows without a hash made no call and need nothing)."""
        replay: dict[str, deque[CallTiming]] = {}
        for row in timing:
            row = CallTiming(*row)
            if row.prompt_hash is not None:
                replay.setdefault(row.prompt_hash, deque()).append(row)
        self._replay = replay


@runtime_checkable
class LLMBackedPolicy(Protocol):
    """A policy whose decisions come from LLM calls, as the schedule and ``recoworld replay``
    see it (``llm_agent``; ``instruction_aware`` with ``parser="llm"``)."""

    @property
    def llm(self) -> LLMConfig:
        """The client configuration; settable before the first call (a default cache)."""

    @llm.setter
    def llm(self, value: LLMConfig) -> None: ...

    @property
    def offline(self) -> bool:
        """Answer from the response cache only; settable before the first call (a replay)."""

    @offline.setter
    def offline(self, value: bool) -> None: ...

    @property
    def stop_reason(self) -> str | None:
        """Why the run should stop (the budget is spent), else ``None``."""

    def replay_timing(self, timing: Sequence[CallTiming]) -> None:
        """Replay: the original calls' :class:`CallTiming`, in the order they were recorded;
        the replay's rows carry their latency and cache flag, and calls that failed without a
        reply fail again with their error."""

    def drain_records(self) -> dict[str, dict[str, Any]]:
        """The ``llm_calls`` rows since the last drain."""

    def close(self) -> None:
        """Close the client the policy built."""


def default_cache(policy: object, path: str | Path) -> bool:
    """Give an LLM-backed ``policy`` the response cache ``path`` when its ``llm.cache`` names
    none (a recorded run keeps its policy's replies in its folder, as it does its LLM users').
    Whether it did."""
    if isinstance(policy, LLMBackedPolicy) and not policy.llm.cache:
        policy.llm = replace(policy.llm, cache=str(path))
        return True
    return False
