"""The LLM client over real HTTP against the stub server: ordering and bounded concurrency,
retries and what is not retried, structured-output fallback, repair, cache and replay, budget,
and that the API key is written nowhere. (The real-server tests are in test_llm_server.py.)"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from recoworld.errors import BudgetExceeded, ConfigError
from recoworld.llm import ChatRequest, LLMClient, LLMConfig, validate
from recoworld.llm.stub import StubServer, example_for

SCHEMA = {
    "type": "object",
    "properties": {
        "action": {"enum": ["skip", "click", "leave"]},
        "why": {"type": "string"},
    },
    "required": ["action", "why"],
    "additionalProperties": False,
}
SECRET = "sk-test-do-not-leak-0123456789"


def _requests(n: int, schema: dict | None = SCHEMA) -> list[ChatRequest]:
    return [
        ChatRequest(
            messages=({"role": "user", "content": f"item {i}: react"},),
            schema=schema,
            tag=f"user:{i % 4}",
        )
        for i in range(n)
    ]


def _config(stub: StubServer, **kw: object) -> LLMConfig:
    base = {"base_urls": (stub.base_url,), "model": "stub", "backoff_s": 0.01, "timeout_s": 5.0}
    base.update(kw)
    return LLMConfig(**base)  # type: ignore[arg-type]


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer(delay_s=0.02) as server:
        yield server


def test_results_come_back_in_request_order_with_bounded_concurrency() -> None:
    def reply(body: dict) -> str:
        i = int(body["messages"][0]["content"].split()[1][:-1])
        return json.dumps({"action": "click", "why": str(i)})

    with (
        StubServer(delay_s=0.03, reply=reply) as stub,
        LLMClient(_config(stub, concurrency=5)) as client,
    ):
        results = client.chat(_requests(40))
        assert [r.data["why"] for r in results] == [str(i) for i in range(40)]
        assert all(r.valid and r.calls == 1 for r in results)
        assert stub.peak <= 5
        assert stub.peak >= 4  # it does run them concurrently
        assert client.usage.requests == 40
        assert client.usage.prompt_tokens == 400
        assert client.by_tag["user:1"].requests == 10


@pytest.mark.parametrize("transport", ["http", "aiohttp", "openai"])
def test_transport_errors_429_and_5xx_are_retried_other_errors_are_not(transport: str) -> None:
    faults = {0: "500", 1: "429", 2: "drop", 3: "500", 4: "500"}
    with (
        StubServer(faults=faults.get) as stub,
        LLMClient(_config(stub, concurrency=1, max_retries=2, transport=transport)) as client,
    ):
        first = client.chat(_requests(1))[0]  # 500, 429, drop: three attempts, then gives up
        assert not first.valid
        assert "gave up after 3 attempts" in (first.error or "")
        second = client.chat(_requests(2)[1:])[0]  # 500, 500, then served
        assert second.valid
        assert second.calls == 3
        assert client.usage.retries == 4
    bad = StubServer(reject_formats=("json_schema", "json_object"))
    with bad, LLMClient(_config(bad, structured="json_schema", transport=transport)) as client:
        rejected = client.chat(_requests(1))[0]
        assert rejected.error is not None
        assert rejected.error.startswith("HTTP 400")
        assert bad.received == 1  # a 400 is the caller's problem: not retried


@pytest.mark.parametrize("transport", ["http", "aiohttp", "openai"])
def test_a_server_slower_than_the_timeout_fails_the_request_not_the_run(transport: str) -> None:
    with (
        StubServer(faults=lambda n: "hang" if n < 2 else None) as stub,
        LLMClient(_config(stub, timeout_s=0.3, max_retries=1, transport=transport)) as client,
    ):
        result = client.chat(_requests(1))[0]
        assert not result.valid
        assert "gave up" in (result.error or "")
        assert client.chat(_requests(1))[0].valid  # the server answers again


@pytest.mark.parametrize("transport", ["http", "aiohttp", "openai"])
def test_structured_output_falls_back_per_endpoint_as_the_server_rejects_formats(
    transport: str,
) -> None:
    with (
        StubServer(reject_formats=("json_schema",)) as stub,
        LLMClient(_config(stub, transport=transport)) as client,
    ):
        results = client.chat(_requests(3))
        assert all(r.valid for r in results)
        kinds = [(b.get("response_format") or {}).get("type") for b in stub.bodies]
        assert kinds[0] == "json_schema"
        assert kinds[-1] == "json_object"
    with (
        StubServer(reject_formats=("json_schema", "json_object")) as stub,
        LLMClient(_config(stub, transport=transport)) as client,
    ):
        assert client.chat(_requests(1))[0].valid
        last = stub.bodies[-1]
        assert "response_format" not in last
        assert "JSON schema" in last["messages"][-1]["content"]  # said in words instead


def test_invalid_output_is_repaired_once_and_counted() -> None:
    with (
        StubServer(faults=lambda n: "truncate" if n in (0, 2, 3) else None) as stub,
        LLMClient(_config(stub, concurrency=1)) as client,
    ):
        fixed = client.chat(_requests(1))[0]  # truncated, then repaired
        assert fixed.valid
        assert fixed.repaired
        assert fixed.invalid_outputs == 1
        assert fixed.calls == 2
        assert "invalid" in stub.bodies[1]["messages"][-1]["content"]
        broken = client.chat(_requests(2)[1:])[0]  # truncated twice: stays invalid
        assert not broken.valid
        assert broken.invalid_outputs == 2
        assert broken.data is None
        assert client.usage.invalid == 3
        assert client.usage.repaired == 1
        assert client.usage.failed == 1


def test_the_cache_replays_a_run_with_the_server_gone(tmp_path: Path) -> None:
    cache = tmp_path / "llm" / "cache.sqlite"
    with StubServer(faults=lambda n: "truncate" if n == 0 else None) as stub:
        with LLMClient(_config(stub, cache=str(cache), concurrency=3)) as client:
            first = client.chat(_requests(6))
        calls = stub.received
    assert calls == 7  # one repair
    # The server is stopped: everything, repair included, comes from the cache.
    with LLMClient(
        LLMConfig(base_urls=("http://127.0.0.1:9/v1",), model="stub", cache=str(cache))
    ) as client:
        again = client.chat(_requests(6))
        assert client.usage.calls == 0
        assert client.usage.cached == 6
    assert [(r.text, r.valid, r.key) for r in again] == [(r.text, r.valid, r.key) for r in first]


def test_the_budget_stops_calls_cleanly(stub: StubServer) -> None:
    with LLMClient(_config(stub, budget_tokens=45, concurrency=1)) as client:
        results = client.chat(_requests(5))  # 15 tokens a call: the 4th would pass 45
        assert [r.valid for r in results] == [True, True, True, False, False]
        assert results[3].error == "budget"
        assert stub.received == 3
        with pytest.raises(BudgetExceeded, match="budget_tokens"):
            client.chat(_requests(1))
    with LLMClient(
        _config(stub, budget_usd=0.001, price_prompt_per_1k=0.05, price_completion_per_1k=0.1)
    ) as client:
        client.chat(_requests(1))  # $0.001
        assert client.usage.cost_usd == pytest.approx(0.001)
        with pytest.raises(BudgetExceeded):
            client.chat(_requests(1))


def test_the_api_key_is_written_nowhere(
    stub: StubServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECOWORLD_TEST_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    cache = tmp_path / "cache.sqlite"
    config = _config(stub, api_key_env="RECOWORLD_TEST_KEY", cache=str(cache))
    with LLMClient(config) as client:
        results = client.chat(_requests(3))
        assert SECRET not in repr(client)
        assert SECRET not in repr(client.config)
    assert SECRET not in caplog.text
    assert all(SECRET not in repr(r) for r in results)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_endpoints_share_the_load() -> None:
    with StubServer(delay_s=0.02) as a, StubServer(delay_s=0.02) as b:
        config = LLMConfig(base_urls=(a.base_url, b.base_url), model="stub", routing="round_robin")
        with LLMClient(config) as client:
            assert all(r.valid for r in client.chat(_requests(10)))
        assert a.received == 5
        assert b.received == 5


def test_configuration_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"llm\.base_urls"):
        LLMConfig(base_urls=("localhost:8000",))
    with pytest.raises(ConfigError, match=r"llm\.concurrency"):
        LLMConfig(concurrency=0)
    with pytest.raises(ConfigError, match=r"llm\.model"):
        LLMClient(LLMConfig(base_urls=("http://127.0.0.1:9/v1",)))


def test_validate_and_stub_examples_agree() -> None:
    data, problem = validate(json.dumps(example_for(SCHEMA)), SCHEMA)
    assert problem is None
    assert data["action"] == "skip"
    assert validate('{"action": "dance", "why": ""}', SCHEMA)[1] is not None
    assert "not JSON" in (validate('{"action": ', SCHEMA)[1] or "")


@pytest.mark.parametrize("transport", ["http", "aiohttp", "openai"])
def test_a_reply_that_is_not_json_fails_that_request_only(transport: str) -> None:
    with (
        StubServer(faults=lambda n: "garbage" if n == 1 else None) as stub,
        LLMClient(_config(stub, concurrency=1, transport=transport)) as client,
    ):
        results = client.chat(_requests(3))
    assert [r.valid for r in results] == [True, False, True]
    assert (results[1].error or "").startswith("unusable reply")


def test_the_stub_answers_every_schema_recoworld_sends() -> None:
    """The stub's example replies satisfy the agent's plan schema (anyOf), the fidelity
    decision schema (prefixItems with items: false) and the users' page schema."""
    from recoworld.fidelity.llm import decision_schema
    from recoworld.policies.agent import plan_schema
    from recoworld.users.llm import page_schema

    for schema in (
        decision_schema([3, 7, 9]),
        plan_schema(("news", "sports"), 4, 6),
        page_schema(5, ("news", "sports"), stance=True),
    ):
        _, error = validate(json.dumps(example_for(schema)), schema)
        assert error is None, (schema, error)
    assert example_for(decision_schema([3, 7]))["decisions"] == [
        {"id": 3, "watch": False},
        {"id": 7, "watch": False},
    ]
