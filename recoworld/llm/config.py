"""How recoworld talks to OpenAI-compatible servers: :class:`LLMConfig`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from recoworld._config import check

__all__ = ["DEFAULT_BASE_URL", "LLMConfig", "sampled_config"]

#: Where requests go when neither the configuration nor ``OPENAI_BASE_URL`` names a server.
DEFAULT_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True, kw_only=True, slots=True)
class LLMConfig:
    """Endpoints, sampling, reliability, caching and budget of the LLM client.

    The API key is never part of the configuration (so it never reaches a manifest or a log):
    the client reads it from the environment variable named by ``api_key_env`` when it starts.

    Attributes:
        base_urls: one or more OpenAI-compatible endpoints (``.../v1``); empty: the
            ``OPENAI_BASE_URL`` environment variable, else OpenAI's.
        model: model name sent with every request (required to make calls).
        api_key_env: environment variable holding the API key (servers that need none, such as a
            local llama.cpp, get the placeholder ``"none"`` when it is unset).
        routing: ``least_busy`` (fewest requests in flight) or ``round_robin`` over endpoints.
        concurrency: requests in flight at once, over all endpoints.
        timeout_s: per-request timeout.
        max_retries: retries of a request after a transport error, HTTP 429 or 5xx (others are
            not retried); waits grow as ``backoff_s · 2^attempt`` up to ``backoff_max_s``.
        backoff_s: first retry wait.
        backoff_max_s: longest retry wait.
        temperature: sampling temperature.
        max_tokens: completion tokens per request.
        seed: sampling seed sent to the server (``None``: none sent).
        structured: how a JSON schema is enforced: ``auto`` (try ``json_schema``, then
            llama.cpp's ``json_object`` with a schema, then instructions only, per endpoint, as
            servers reject them), or one of ``json_schema``, ``json_object``, ``prompt``.
        repair_rounds: rounds in which an invalid output is sent back with the validation error.
        cache: path of the response cache (SQLite); ``None``: no cache.
        budget_tokens: stop making calls once this many tokens (prompt + completion) are spent.
        budget_usd: stop making calls once this much money is spent (with the prices below).
        price_prompt_per_1k: price of 1,000 prompt tokens, in US dollars.
        price_completion_per_1k: price of 1,000 completion tokens, in US dollars.
        transport: how requests travel, all speaking the same OpenAI wire protocol: ``http``
            (recoworld's lean HTTP/1.1 client, :mod:`recoworld.llm.http`: the least CPU per
            request, which is what bounds requests/s with hundreds in flight), ``aiohttp``,
            ``openai`` (the openai client's own stack), or ``auto`` (= ``http``).
    """

    base_urls: tuple[str, ...] = ()
    model: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    routing: Literal["least_busy", "round_robin"] = "least_busy"
    concurrency: int = 64
    timeout_s: float = 60.0
    max_retries: int = 4
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    temperature: float = 0.7
    max_tokens: int = 256
    seed: int | None = None
    structured: Literal["auto", "json_schema", "json_object", "prompt"] = "auto"
    repair_rounds: int = 1
    cache: str | None = None
    budget_tokens: int | None = None
    budget_usd: float | None = None
    price_prompt_per_1k: float = 0.0
    price_completion_per_1k: float = 0.0
    transport: Literal["auto", "http", "aiohttp", "openai"] = "auto"

    def __post_init__(self) -> None:
        for url in self.base_urls:
            check(
                url.startswith(("http://", "https://")),
                "llm.base_urls",
                "http(s) URLs of OpenAI-compatible endpoints, e.g. http://127.0.0.1:8000/v1",
                url,
            )
        check(self.concurrency >= 1, "llm.concurrency", "an integer >= 1", self.concurrency)
        check(self.timeout_s > 0, "llm.timeout_s", "a positive number of seconds", self.timeout_s)
        check(self.max_retries >= 0, "llm.max_retries", "an integer >= 0", self.max_retries)
        check(self.backoff_s >= 0, "llm.backoff_s", "a number >= 0", self.backoff_s)
        check(
            self.backoff_max_s >= self.backoff_s,
            "llm.backoff_max_s",
            f"a number >= backoff_s ({self.backoff_s})",
            self.backoff_max_s,
        )
        check(self.temperature >= 0, "llm.temperature", "a number >= 0", self.temperature)
        check(self.max_tokens >= 1, "llm.max_tokens", "an integer >= 1", self.max_tokens)
        check(self.repair_rounds >= 0, "llm.repair_rounds", "an integer >= 0", self.repair_rounds)
        for key in ("budget_tokens", "budget_usd"):
            value = getattr(self, key)
            check(value is None or value > 0, f"llm.{key}", "a positive number or null", value)
        for key in ("price_prompt_per_1k", "price_completion_per_1k"):
            value = getattr(self, key)
            check(value >= 0, f"llm.{key}", "a price >= 0", value)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """US dollars of a call with these token counts, at the configured prices."""
        return (
            prompt_tokens * self.price_prompt_per_1k
            + completion_tokens * self.price_completion_per_1k
        ) / 1000

    def exhausted(self, tokens: int, cost_usd: float) -> bool:
        """Whether ``tokens`` spent and ``cost_usd`` reach a budget."""
        if self.budget_tokens is not None and tokens >= self.budget_tokens:
            return True
        return self.budget_usd is not None and cost_usd >= self.budget_usd

    def endpoints(self) -> tuple[str, ...]:
        """The endpoints requests go to (``base_urls``, else ``OPENAI_BASE_URL``, else OpenAI)."""
        if self.base_urls:
            return tuple(url.rstrip("/") for url in self.base_urls)
        return (os.environ.get("OPENAI_BASE_URL", DEFAULT_BASE_URL).rstrip("/"),)

    def with_environment(self) -> LLMConfig:
        """This configuration with ``OPENAI_BASE_URL`` filled in when no endpoint is set, and
        ``OPENAI_MODEL`` when no model is (the key stays in the environment)."""
        updates: dict[str, object] = {}
        if not self.base_urls and os.environ.get("OPENAI_BASE_URL"):
            updates["base_urls"] = (os.environ["OPENAI_BASE_URL"],)
        if not self.model and os.environ.get("OPENAI_MODEL"):
            updates["model"] = os.environ["OPENAI_MODEL"]
        return replace(self, **updates) if updates else self  # type: ignore[arg-type]


def sampled_config(
    value: object,
    *,
    temperature: float,
    seed: int | None,
    path: str,
    owner: str,
    needs_model: bool,
) -> LLMConfig:
    """Client settings given under ``path`` (an :class:`LLMConfig`, a mapping of its fields, or
    ``None``) with the owner's own sampling: ``temperature`` and ``seed`` come from the owner's
    parameters, so the mapping may not set them. ``needs_model``: a model name is required (no
    client was injected). Errors name ``<path>.<key>``."""
    from dataclasses import fields

    from recoworld._config import from_mapping
    from recoworld.errors import ConfigError

    if value is None:
        value = {}
    if isinstance(value, LLMConfig):
        config = value
    elif isinstance(value, Mapping):
        for key in ("temperature", "seed"):
            if key in value:
                raise ConfigError(
                    f"{path}.{key}: {owner}'s sampling is set by its own {key}, not by the "
                    "client settings"
                )
        try:
            config = from_mapping(LLMConfig, value)
        except ConfigError as exc:
            message = str(exc)
            message = message[4:] if message.startswith("llm.") else message
            raise ConfigError(f"{path}.{message}") from None
    else:
        names = ", ".join(f.name for f in fields(LLMConfig))
        raise ConfigError(
            f"{path}: expected an LLMConfig or a mapping of LLM client settings ({names}), "
            f"got {type(value).__name__}"
        )
    config = replace(config, temperature=float(temperature), seed=seed).with_environment()
    if needs_model and not config.model:
        raise ConfigError(
            f"{path}.model: no model name; set {path}.model (the served model's name, e.g. the "
            "--model_alias of a llama.cpp server) or OPENAI_MODEL"
        )
    return config
