"""Talking to language models: a batch client over any OpenAI-compatible server, with bounded
concurrency, retries, structured outputs, a response cache for exact replay, and token and cost
accounting with a budget. Needs the ``llm`` extra (``pip install 'recoworld[llm]'``)."""

from __future__ import annotations

from recoworld.llm.cache import ResponseCache, request_key
from recoworld.llm.client import ChatRequest, ChatResult, LLMClient, Usage, validate
from recoworld.llm.config import LLMConfig

__all__ = [
    "ChatRequest",
    "ChatResult",
    "LLMClient",
    "LLMConfig",
    "ResponseCache",
    "Usage",
    "request_key",
    "validate",
]
