"""A synchronous batch client over any OpenAI-compatible server (OpenAI, vLLM, SGLang, Ollama,
llama.cpp), built on the ``openai`` package.

The simulation's step is synchronous; the concurrency lives here. :meth:`LLMClient.chat` takes a
batch of requests, keeps up to ``concurrency`` of them in flight on an event loop of its own (a
background thread, so it also works where an event loop is already running, e.g. Jupyter), and
returns the results **in the order of the requests**, whatever order they finished in.

Per request: the response cache is consulted first (an exact replay makes no server call); else
an endpoint is chosen (least busy or round robin); transport errors, HTTP 429 and 5xx are retried
with exponential backoff and a deterministic jitter, other errors are not; a JSON schema is
enforced through ``response_format`` where the server accepts it (OpenAI's ``json_schema``, then
llama.cpp's ``json_object`` with a schema), else by instructions; the output is validated and an
invalid one is sent back once (``repair_rounds``) with the validation error. Nothing raises for a
single bad call: the result says what happened (``valid``, ``error``), and :attr:`usage` counts
it. The API key is read from the environment and never logged, stored or hashed.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import json
import logging
import os
import random
import threading
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from recoworld.errors import BudgetExceeded, ConfigError, DependencyNotInstalled
from recoworld.llm.cache import ResponseCache, canonical_json, request_key_from_json
from recoworld.llm.config import LLMConfig
from recoworld.llm.http import HTTPError, HTTPPool

__all__ = ["ChatRequest", "ChatResult", "ClientSlot", "LLMClient", "Usage"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_MODES = ("json_schema", "json_object", "prompt")
#: Requests in flight per underlying client (connection pool) at full concurrency.
_CONNECTIONS_PER_CLIENT = 16


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat completion: ``messages`` (``{"role", "content"}``), an optional JSON ``schema``
    the reply must satisfy, a ``tag`` naming whom it is for (accounting, e.g. ``"user:42"``),
    and an optional ``max_tokens`` overriding the configuration's."""

    messages: tuple[Mapping[str, str], ...]
    schema: Mapping[str, Any] | None = None
    tag: str = ""
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class ChatResult:
    """What became of one request.

    ``text``: the final reply (after repair); ``data``: its parsed JSON when a schema was given
    and the reply satisfies it; ``valid``: a reply was obtained and (with a schema) satisfies it;
    ``cached``: every server answer it needed came from the cache; ``repaired``: valid only after
    a repair round; ``invalid_outputs``: replies that failed validation; ``calls``: server calls
    made (0 when cached); ``prompt_tokens`` / ``completion_tokens``: summed over its calls;
    ``latency_s``: wall time of its calls; ``key``: the request's content hash (the cache key;
    no secret in it); ``error``: why there is no valid reply, if there is none.
    """

    text: str
    data: Any
    valid: bool
    cached: bool
    repaired: bool
    invalid_outputs: int
    calls: int
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    key: str
    tag: str
    error: str | None = None


@dataclass
class Usage:
    """Running totals of a client (or of one tag)."""

    requests: int = 0
    calls: int = 0
    cached: int = 0
    retries: int = 0
    invalid: int = 0
    repaired: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, float | int]:
        return {
            "requests": self.requests,
            "calls": self.calls,
            "cached": self.cached,
            "retries": self.retries,
            "invalid": self.invalid,
            "repaired": self.repaired,
            "failed": self.failed,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
        }


@dataclass
class _Raw:
    """One server answer (or the failure to get one)."""

    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    calls: int = 0
    retries: int = 0
    latency_s: float = 0.0
    error: str | None = None


@dataclass
class _Batch:
    """State shared by the requests of one :meth:`LLMClient.chat` call."""

    fresh: dict[str, dict[str, Any]] = field(default_factory=dict)
    retries: int = 0
    tokens: int = 0  # spent so far, this batch included
    cost_usd: float = 0.0


@functools.lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads(schema_json))


_BY_ID: dict[int, tuple[Mapping[str, Any], Any]] = {}


def _validator_of(schema: Mapping[str, Any]) -> Any:
    """The validator of ``schema``, found by identity first (requests share schema objects)."""
    hit = _BY_ID.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    validator = _validator(json.dumps(schema, sort_keys=True))
    if len(_BY_ID) > 1024:
        _BY_ID.clear()
    _BY_ID[id(schema)] = (schema, validator)
    return validator


def validate(text: str, schema: Mapping[str, Any]) -> tuple[Any, str | None]:
    """``(data, None)`` when ``text`` is JSON satisfying ``schema``, else ``(None, reason)``.

    Literal control characters (a raw line break or tab) inside strings are accepted, as most
    JSON readers of model output do; everything else must be strict JSON."""
    try:
        data = json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        return None, f"not JSON ({exc.msg} at character {exc.pos})"
    validator = _validator_of(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "the top level"
        return None, f"at {where}: {errors[0].message}"
    return data, None


#: The error of a request an offline (replay) client could not answer from its cache.
OFFLINE_MISS = "not in the response cache (offline replay: no server is called)"


class LLMClient:
    """Batches of chat completions against one or more OpenAI-compatible endpoints.

    Use as a context manager, or call :meth:`close`. ``api_key`` overrides the environment
    variable named by ``config.api_key_env``. ``offline=True`` answers from the response cache
    only (a replay): a request not in it fails (``error`` says so) and no server is contacted.
    """

    def __init__(
        self, config: LLMConfig, *, api_key: str | None = None, offline: bool = False
    ) -> None:
        try:
            import jsonschema  # noqa: F401
            import openai
        except ImportError as exc:
            raise DependencyNotInstalled(
                "LLM users need the openai client: pip install 'recoworld[llm]'"
            ) from exc
        self.config = config.with_environment()
        if not self.config.model:
            raise ConfigError(
                "llm.model: no model name; set llm.model in the scenario, --llm-model, or "
                "OPENAI_MODEL"
            )
        self.endpoints = self.config.endpoints()
        self.offline = offline
        if offline and not self.config.cache:
            raise ConfigError("an offline (replay) client needs llm.client.cache: the responses")
        key = api_key or os.environ.get(self.config.api_key_env) or "none"
        self._openai = openai
        self._transport = "http" if self.config.transport == "auto" else self.config.transport
        if self._transport == "aiohttp" and importlib.util.find_spec("aiohttp") is None:
            raise DependencyNotInstalled(
                "llm.transport 'aiohttp' needs aiohttp: pip install 'recoworld[llm]'"
            )
        self._modes = [
            0 if self.config.structured == "auto" else _MODES.index(self.config.structured)
            for _ in self.endpoints
        ]
        self._inflight = [0] * len(self.endpoints)
        self._next = 0
        self._shard = 0
        self.cache = ResponseCache(self.config.cache) if self.config.cache else None
        self._params_json: dict[tuple[int, int], tuple[Mapping[str, Any] | None, str]] = {}
        self._format_memo: dict[tuple[int, int], tuple[Mapping[str, Any] | None, str]] = {}
        self.usage = Usage()
        self.by_tag: dict[str, Usage] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="recoworld-llm", daemon=True
        )
        self._thread.start()
        self._clients = self._run(self._open(key))
        self._semaphore: asyncio.Semaphore = self._run(self._make_semaphore())

    def __repr__(self) -> str:  # never shows the key
        return f"LLMClient(model={self.config.model!r}, endpoints={list(self.endpoints)!r})"

    # -- lifecycle --------------------------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def _open(self, key: str) -> list[list[Any]]:
        """Per endpoint, the objects requests go through: aiohttp sessions or openai clients."""
        if self._transport == "http":
            auth = {"Authorization": f"Bearer {key}"}
            return [[HTTPPool(url, auth, self.config.timeout_s)] for url in self.endpoints]
        if self._transport == "aiohttp":
            import aiohttp

            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
            return [
                [
                    aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
                        headers=headers,
                        timeout=timeout,
                    )
                ]
                for _ in self.endpoints
            ]
        # Several clients per endpoint, each with a small connection pool: one pool holding
        # hundreds of connections spends more CPU finding a free one than sending the request.
        shards = max(1, -(-self.config.concurrency // _CONNECTIONS_PER_CLIENT))
        # openai[aiohttp]: the same client on a transport that costs less CPU per request.
        transport = getattr(self._openai, "DefaultAioHttpClient", None)
        if importlib.util.find_spec("aiohttp") is None:
            transport = None
        return [
            [
                self._openai.AsyncOpenAI(
                    base_url=url,
                    api_key=key,
                    timeout=self.config.timeout_s,
                    max_retries=0,
                    **({"http_client": transport()} if transport is not None else {}),
                )
                for _ in range(shards)
            ]
            for url in self.endpoints
        ]

    async def _make_semaphore(self) -> asyncio.Semaphore:
        return asyncio.Semaphore(self.config.concurrency)

    async def _close_clients(self) -> None:
        for shards in self._clients:
            for client in shards:
                if isinstance(client, HTTPPool):
                    client.close()
                else:
                    await client.close()
        if self._transport == "aiohttp":
            await asyncio.sleep(0)  # let aiohttp finish closing its connections

    def close(self) -> None:
        """Close the connections, the event loop and the cache."""
        if self._loop.is_closed():
            return
        self._run(self._close_clients())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        if self.cache is not None:
            self.cache.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- budget -----------------------------------------------------------------------------
    def budget_left(self) -> bool:
        """Whether the token and money budgets still allow calls."""
        return not self.config.exhausted(self.usage.tokens, self.usage.cost_usd)

    # -- the batch call ---------------------------------------------------------------------
    def chat(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        """Complete ``requests`` concurrently; results in request order.

        Raises :class:`BudgetExceeded` if the budget was already spent before this batch; a
        budget spent during the batch fails the requests not yet sent (``error="budget"``).
        """
        if not self.budget_left():
            raise BudgetExceeded(
                f"the LLM budget is spent ({self.usage.tokens:,} tokens, "
                f"${self.usage.cost_usd:.4f}); raise llm.budget_tokens / llm.budget_usd to go on"
            )
        if not requests:
            return []
        batch = _Batch()
        results = self._run(self._gather(requests, batch))
        if self.cache is not None:
            self.cache.put_many(batch.fresh)
        self.usage.retries += batch.retries
        for result in results:
            for usage in (self.usage, self.by_tag.setdefault(result.tag, Usage())):
                usage.requests += 1
                usage.calls += result.calls
                usage.cached += int(result.cached)
                usage.invalid += result.invalid_outputs
                usage.repaired += int(result.repaired)
                usage.failed += int(not result.valid)
                usage.prompt_tokens += result.prompt_tokens
                usage.completion_tokens += result.completion_tokens
                if not result.cached:
                    usage.cost_usd += self.config.cost(
                        result.prompt_tokens, result.completion_tokens
                    )
        return results

    async def _gather(self, requests: Sequence[ChatRequest], batch: _Batch) -> list[ChatResult]:
        batch.tokens, batch.cost_usd = self.usage.tokens, self.usage.cost_usd
        return list(await asyncio.gather(*(self._one(r, batch) for r in requests)))

    async def _one(self, request: ChatRequest, batch: _Batch) -> ChatResult:
        messages = [dict(m) for m in request.messages]
        max_tokens = request.max_tokens or self.config.max_tokens
        key = self._key(messages, request.schema, max_tokens)
        raw = await self._call(key, messages, request.schema, max_tokens, batch)
        total = _Raw(
            text=raw.text,
            prompt_tokens=raw.prompt_tokens,
            completion_tokens=raw.completion_tokens,
            cached=raw.cached,
            calls=raw.calls,
            latency_s=raw.latency_s,
            error=raw.error,
        )
        data: Any = None
        repaired = False
        invalid = 0
        if raw.error is None and request.schema is not None:
            data, problem = validate(raw.text, request.schema)
            invalid += problem is not None
            rounds = 0
            while problem is not None and rounds < self.config.repair_rounds:
                rounds += 1
                messages = [
                    *messages,
                    {"role": "assistant", "content": raw.text},
                    {
                        "role": "user",
                        "content": f"That reply is invalid: {problem}. Reply with the "
                        "corrected JSON only.",
                    },
                ]
                raw = await self._call(
                    self._key(messages, request.schema, max_tokens),
                    messages,
                    request.schema,
                    max_tokens,
                    batch,
                )
                total.prompt_tokens += raw.prompt_tokens
                total.completion_tokens += raw.completion_tokens
                total.calls += raw.calls
                total.cached = total.cached and raw.cached
                total.latency_s += raw.latency_s
                if raw.error is not None:
                    problem = raw.error
                    break
                total.text = raw.text
                data, problem = validate(raw.text, request.schema)
                invalid += problem is not None
            repaired = problem is None and rounds > 0
            total.error = problem
        return ChatResult(
            text=total.text,
            data=data,
            valid=total.error is None,
            cached=total.cached,
            repaired=repaired,
            invalid_outputs=invalid,
            calls=total.calls,
            prompt_tokens=total.prompt_tokens,
            completion_tokens=total.completion_tokens,
            latency_s=total.latency_s,
            key=key,
            tag=request.tag,
            error=total.error,
        )

    def _key(
        self, messages: list[dict[str, str]], schema: Mapping[str, Any] | None, max_tokens: int
    ) -> str:
        """The cache key of one server call: everything that determines its reply
        (:func:`request_key`, with the JSON of the parameters reused across requests)."""
        c = self.config
        memo = self._params_json.get((id(schema), max_tokens))
        if memo is None or memo[0] is not schema:
            params = {
                "temperature": c.temperature,
                "max_tokens": max_tokens,
                "seed": c.seed,
                "schema": schema,
            }
            memo = (schema, canonical_json(params))
            self._params_json[(id(schema), max_tokens)] = memo
        return request_key_from_json(c.model, canonical_json(messages), memo[1])

    def _pick(self) -> int:
        if len(self.endpoints) == 1:
            return 0
        if self.config.routing == "round_robin":
            self._next = (self._next + 1) % len(self.endpoints)
            return self._next
        return min(range(len(self.endpoints)), key=lambda e: self._inflight[e])

    def _format(self, mode: int, schema: Mapping[str, Any] | None) -> dict[str, Any]:
        if schema is None or _MODES[mode] == "prompt":
            return {}
        if _MODES[mode] == "json_schema":
            return {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "reply", "schema": dict(schema)},
                }
            }
        return {"response_format": {"type": "json_object", "schema": dict(schema)}}

    def _format_json(self, mode: int, schema: Mapping[str, Any] | None) -> str:
        """The JSON of :meth:`_format`'s ``response_format`` ("" for none), memoized per
        (mode, schema object)."""
        memo = self._format_memo.get((mode, id(schema)))
        if memo is None or memo[0] is not schema:
            fmt = self._format(mode, schema).get("response_format")
            memo = (schema, json.dumps(fmt) if fmt is not None else "")
            self._format_memo[(mode, id(schema))] = memo
        return memo[1]

    @staticmethod
    def _instructed(
        messages: list[dict[str, str]], schema: Mapping[str, Any] | None, mode: str
    ) -> list[dict[str, str]]:
        """Messages as sent: with a schema the server does not enforce, say it in words."""
        if schema is None or mode != "prompt":
            return messages
        note = "Reply with one JSON value only, matching this JSON schema: " + json.dumps(
            schema, sort_keys=True, separators=(",", ":")
        )
        return [*messages, {"role": "system", "content": note}]

    async def _call(
        self,
        key: str,
        messages: list[dict[str, str]],
        schema: Mapping[str, Any] | None,
        max_tokens: int,
        batch: _Batch,
    ) -> _Raw:
        known = batch.fresh.get(key)
        if known is None and self.cache is not None:
            known = self.cache.get_many([key]).get(key)
        if known is not None:
            return _Raw(
                text=known["text"],
                prompt_tokens=known["prompt_tokens"],
                completion_tokens=known["completion_tokens"],
                cached=True,
            )
        if self.offline:
            return _Raw(error=OFFLINE_MISS)
        async with self._semaphore:
            raw = await self._send(key, messages, schema, max_tokens, batch)
        # Let the requests waiting for a slot go out before this reply is validated: in a
        # wave of replies, the next requests then leave at the wave's start, not its end.
        await asyncio.sleep(0)
        return raw

    async def _send(
        self,
        key: str,
        messages: list[dict[str, str]],
        schema: Mapping[str, Any] | None,
        max_tokens: int,
        batch: _Batch,
    ) -> _Raw:
        """One request to a server, with retries (the caller holds a concurrency slot)."""
        c = self.config
        if self.config.exhausted(batch.tokens, batch.cost_usd):
            return _Raw(error="budget")
        attempt = 0
        while True:
            endpoint = self._pick()
            mode = self._modes[endpoint]
            kwargs: dict[str, Any] = {
                "model": c.model,
                "messages": self._instructed(messages, schema, _MODES[mode]),
                "temperature": c.temperature,
                "max_tokens": max_tokens,
            }
            if c.seed is not None:
                kwargs["seed"] = c.seed
            self._inflight[endpoint] += 1
            start = time.perf_counter()
            try:
                reply = await self._post(endpoint, kwargs, mode, schema)
            except _Failure as exc:
                status = exc.status  # None: transport error
                if (
                    status is not None
                    and schema is not None
                    and c.structured == "auto"
                    and mode + 1 < len(_MODES)
                    and bool(self._format_json(mode, schema))
                    and "response_format" in exc.message
                ):
                    # A server that does not take this output format says so in the error
                    # (400 or 422; llama-cpp-python's server answers 500): next format.
                    logger.info(
                        "endpoint %s rejected response_format %s; trying %s",
                        self.endpoints[endpoint],
                        _MODES[mode],
                        _MODES[mode + 1],
                    )
                    self._modes[endpoint] = mode + 1
                    continue
                if status is not None and status != 429 and status < 500:
                    return _Raw(error=f"HTTP {status}: {exc.message}", calls=attempt + 1)
                if attempt >= c.max_retries:  # transport errors, 429 and 5xx are retried
                    return _Raw(
                        error=f"gave up after {attempt + 1} attempts: {exc.message}",
                        calls=attempt + 1,
                    )
                batch.retries += 1
                wait = min(c.backoff_max_s, c.backoff_s * 2**attempt)
                jitter = random.Random(f"{key}:{attempt}").uniform(0.5, 1.0)
                attempt += 1
                await asyncio.sleep(wait * jitter)
                continue
            except _Unusable as exc:  # e.g. a body that is not JSON
                return _Raw(error=f"unusable reply: {exc}", calls=attempt + 1)
            finally:
                self._inflight[endpoint] -= 1
            if not isinstance(reply, dict):
                return _Raw(error="unusable reply: not a JSON object", calls=attempt + 1)
            latency = time.perf_counter() - start
            choices = reply.get("choices") or [{}]
            choice = choices[0] if isinstance(choices[0], dict) else {}
            message = choice.get("message") or {}
            text = message.get("content") or ""
            usage = reply.get("usage") or {}
            raw = _Raw(
                text=str(text),
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                calls=attempt + 1,
                latency_s=latency,
            )
            batch.tokens += raw.prompt_tokens + raw.completion_tokens
            batch.cost_usd += self.config.cost(raw.prompt_tokens, raw.completion_tokens)
            batch.fresh[key] = {
                "model": c.model,
                "text": raw.text,
                "prompt_tokens": raw.prompt_tokens,
                "completion_tokens": raw.completion_tokens,
                "finish_reason": choice.get("finish_reason"),
            }
            return raw

    async def _post(
        self, endpoint: int, body: dict[str, Any], mode: int, schema: Mapping[str, Any] | None
    ) -> Any:
        """POST ``body`` with the output format of ``mode`` for ``schema`` to
        ``/chat/completions`` of ``endpoint``; the decoded JSON reply.

        Raises :class:`_Failure` (HTTP status, or ``None`` for a transport error or timeout) or
        :class:`_Unusable` (a 200 whose body is not JSON)."""
        shards = self._clients[endpoint]
        self._shard = (self._shard + 1) % len(shards)
        client = shards[self._shard]
        if self._transport == "http":
            text = json.dumps(body)
            fmt = self._format_json(mode, schema)  # the schema's JSON, encoded once
            if fmt:
                text = f'{text[:-1]},"response_format":{fmt}}}'
            try:
                status, raw = await client.post("/chat/completions", text.encode())
            except HTTPError as exc:
                raise _Failure(None, f"HTTPError: {exc}") from None
            return _decode(status, raw)
        body = {**body, **self._format(mode, schema)}
        body = {**body, **self._format(mode, schema)}
        if self._transport == "aiohttp":
            import aiohttp

            try:
                async with client.post(
                    self.endpoints[endpoint] + "/chat/completions", data=json.dumps(body)
                ) as response:
                    status = response.status
                    raw = await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise _Failure(None, _brief(exc)) from None
            return _decode(status, raw)
        errors = self._openai
        try:
            # The client's low-level POST: the same transport, auth and error types as
            # chat.completions.create, without its per-request parameter and response model
            # conversions (which cost more CPU than the rest of the call).
            return await client.post("/chat/completions", body=body, cast_to=dict)
        except errors.APIStatusError as exc:
            raise _Failure(exc.status_code, _brief(exc)) from None
        except errors.APIConnectionError as exc:
            raise _Failure(None, _brief(exc)) from None
        except (errors.APIError, ValueError) as exc:
            raise _Unusable(_brief(exc)) from None


class _Failure(Exception):
    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Unusable(Exception):
    pass


def _decode(status: int, raw: bytes) -> Any:
    """The JSON of a reply; raises :class:`_Failure` for an HTTP error status and
    :class:`_Unusable` for a 200 whose body is not JSON."""
    if status >= 400:
        raise _Failure(status, _error_message(raw))
    try:
        return json.loads(raw)
    except ValueError:
        raise _Unusable("the body is not JSON") from None


def _error_message(raw: bytes) -> str:
    """The ``error.message`` of an OpenAI-style error body, else the body's start."""
    try:
        data = json.loads(raw)
        message = data["error"]["message"] if isinstance(data.get("error"), dict) else data
    except (ValueError, KeyError, TypeError, AttributeError):
        message = raw[:300].decode("utf-8", "replace")
    return " ".join(str(message).split())[:300]


def _brief(exc: BaseException) -> str:
    """A one-line description of a client error (never containing the request's headers)."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message}".splitlines()[0][:300]


class ClientSlot:
    """The client of one LLM-backed component: built from ``config`` on first use unless one was
    injected, and closed only if it was built here (an injected client is its owner's to close).
    Changing ``config`` or ``offline`` closes a client built from the old settings; the next use
    builds a new one."""

    def __init__(self, config: LLMConfig, *, offline: bool = False, client: Any = None) -> None:
        self._config = config
        self._offline = bool(offline)
        self._client = client
        self._own = client is None

    @property
    def config(self) -> LLMConfig:
        return self._config

    @config.setter
    def config(self, value: LLMConfig) -> None:
        self.close()
        self._config = value

    @property
    def offline(self) -> bool:
        return self._offline

    @offline.setter
    def offline(self, value: bool) -> None:
        self.close()
        self._offline = bool(value)

    @property
    def client(self) -> Any:
        """The client (built on first use unless one was injected)."""
        if self._client is None:
            self._client = LLMClient(self._config, offline=self._offline)
        return self._client

    def __getstate__(self) -> dict[str, Any]:
        """For a checkpoint: the settings, not a client built here (it is built again on use)."""
        state = dict(self.__dict__)
        if self._own:
            state["_client"] = None
        return state

    def close(self) -> None:
        """Close a client built here; an injected one stays open."""
        if self._own and self._client is not None:
            self._client.close()
            self._client = None
