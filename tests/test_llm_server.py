"""The LLM client against a real llama.cpp server (llama-cpp-python's OpenAI-compatible server)
on 127.0.0.1, with the tiny real GGUF models in ``../shared/models``.

They need ``llama-cpp-python[server]`` (compiled from source; ``.ci/run`` installs it and sets
``RECOWORLD_REQUIRE_LLAMA=1``, under which a missing server fails instead of skipping)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from recoworld.llm import ChatRequest, LLMClient, LLMConfig
from recoworld.llm.stub import free_port
from tests.conftest import ROOT

MODELS = ROOT.parent / "shared" / "models"
SCHEMA = {
    "type": "object",
    "properties": {
        "action": {"enum": ["skip", "click", "leave"]},
        "rationale": {"type": "string", "maxLength": 40},
    },
    "required": ["action", "rationale"],
    "additionalProperties": False,
}


def _require_server() -> None:
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError:
        if os.environ.get("RECOWORLD_REQUIRE_LLAMA"):
            pytest.fail("llama-cpp-python[server] is required here but not installed")
        pytest.skip("llama-cpp-python[server] is not installed (.ci/run installs it)")


class Server:
    """``python -m llama_cpp.server`` on a free port, with its log in ``log``."""

    def __init__(self, model: str, log: Path, n_ctx: int = 512) -> None:
        _require_server()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = log
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "llama_cpp.server"),
                *("--model", str(MODELS / model), "--model_alias", "tiny"),
                *("--host", "127.0.0.1", "--port", str(self.port)),
                *("--n_ctx", str(n_ctx), "--n_threads", "2"),
            ],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited: {log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.url + "/models", timeout=1).read()
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("llama.cpp server did not answer within 90 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def stories(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server("stories260K.gguf", tmp_path_factory.mktemp("llama") / "server.log")
    yield server
    server.stop()


def _requests(n: int, schema: dict | None = SCHEMA) -> list[ChatRequest]:
    return [
        ChatRequest(
            messages=(
                {"role": "system", "content": "You are a user of a video feed."},
                {"role": "user", "content": f"Item {i}: a cat video. What do you do?"},
            ),
            schema=schema,
            tag=f"user:{i}",
        )
        for i in range(n)
    ]


def _config(server: Server, **kw: object) -> LLMConfig:
    base: dict[str, object] = {
        "base_urls": (server.url,),
        "model": "tiny",
        "max_tokens": 48,
        "seed": 7,
        "temperature": 0.8,
        "timeout_s": 60.0,
        "backoff_s": 0.05,
    }
    base.update(kw)
    return LLMConfig(**base)  # type: ignore[arg-type]


def test_structured_replies_from_the_real_server_satisfy_the_schema(stories: Server) -> None:
    with LLMClient(_config(stories, concurrency=4)) as client:
        results = client.chat(_requests(6))
    assert all(r.valid for r in results), [r.error for r in results]
    assert all(r.data["action"] in ("skip", "click", "leave") for r in results)
    assert client.usage.prompt_tokens > 0
    assert client.usage.completion_tokens > 0
    assert client.usage.calls >= 6


def test_the_seed_makes_replies_repeatable_and_the_cache_replays_them(
    stories: Server, tmp_path: Path
) -> None:
    cache = tmp_path / "cache.sqlite"
    with LLMClient(_config(stories, cache=str(cache))) as client:
        first = client.chat(_requests(2, schema=None))
    with LLMClient(_config(stories)) as client:  # same seed, no cache: the server again
        again = client.chat(_requests(2, schema=None))
    assert [r.text for r in again] == [r.text for r in first]
    with LLMClient(_config(stories, cache=str(cache))) as client:
        replay = client.chat(_requests(2, schema=None))
        assert client.usage.calls == 0
    assert [r.text for r in replay] == [r.text for r in first]


def test_a_prompt_beyond_the_context_is_an_error_for_that_request_only(stories: Server) -> None:
    long = ChatRequest(messages=({"role": "user", "content": "cat " * 3000},), tag="long")
    with LLMClient(_config(stories, max_retries=1)) as client:
        results = client.chat([long, *_requests(1, schema=None)])
    assert not results[0].valid
    assert results[0].error is not None
    assert results[0].error.startswith("HTTP 4"), results[0].error
    assert results[1].valid
    assert client.usage.failed == 1


def test_random_weights_without_a_grammar_give_invalid_output_that_is_counted(
    tmp_path: Path,
) -> None:
    server = Server("llama-2-tiny-random.gguf", tmp_path / "random.log")
    try:
        with LLMClient(_config(server, structured="prompt", max_tokens=24)) as client:
            results = client.chat(_requests(3))
        assert not any(r.valid for r in results)
        assert all(r.invalid_outputs == 2 for r in results)  # the reply and its repair
        assert client.usage.invalid == 6
    finally:
        server.stop()


def test_a_server_killed_mid_batch_fails_the_rest_without_raising(tmp_path: Path) -> None:
    server = Server("stories260K.gguf", tmp_path / "killed.log")
    try:
        config = _config(server, concurrency=1, max_retries=1, max_tokens=32)
        with LLMClient(config) as client:
            assert client.chat(_requests(1, schema=None))[0].valid
            threading.Timer(0.3, server.stop).start()
            results = client.chat(_requests(40, schema=None))
        ok = [r.valid for r in results]
        assert not all(ok)
        assert all("gave up" in (r.error or "") for r in results if not r.valid)
        assert client.usage.failed == ok.count(False)
    finally:
        server.stop()


def _hybrid_args(server: Server, out: Path, ticks: int = 96) -> list[str]:
    return [
        "run",
        *("--users", "50", "--ticks", str(ticks), "--out", str(out), "-q"),
        *("--llm-fraction", "0.2", "--llm-model", "tiny", "--llm-base-url", server.url),
        *("--set", "llm.context_tokens=8192", "--set", "llm.reply_tokens_per_item=160"),
        *("--set", "llm.client.seed=7", "--set", "llm.client.timeout_s=60"),
    ]


def test_a_hybrid_run_from_the_cli_then_a_replay_with_the_server_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from recoworld.cli import main
    from recoworld.replay import compare_runs
    from recoworld.trajectory import read_run

    # stories260K tokenizes almost per character: a long context and a generous reply budget.
    server = Server("stories260K.gguf", tmp_path / "hybrid.log", n_ctx=8192)
    out = tmp_path / "run"
    try:
        assert main(_hybrid_args(server, out)) == 0
    finally:
        server.stop()
    printed = capsys.readouterr().out
    for label in ("LLM calls", "LLM prompt tokens", "LLM parse-valid rate", "fallbacks"):
        assert label in printed
    calls = read_run(out).llm_calls
    pages = calls[calls["purpose"] == "page"]
    assert len(pages) >= 3
    assert calls["prompt_tokens"].gt(0).all()
    assert calls["valid"].mean() >= 0.5  # llama.cpp's grammar keeps the JSON in shape
    # The server is gone; the replay answers from the run's cache, byte for byte.
    assert main(["replay", str(out), "--out", str(tmp_path / "again"), "-q"]) == 0
    assert compare_runs(out, tmp_path / "again") == []


def test_a_server_killed_mid_run_falls_back_and_keeps_the_run(tmp_path: Path) -> None:
    from recoworld._config import override
    from recoworld.scenario import load_scenario
    from recoworld.schedule import Simulation
    from recoworld.trajectory import read_manifest, read_run
    from recoworld.users.llm import LLMUserModel

    server = Server("stories260K.gguf", tmp_path / "killed-run.log", n_ctx=8192)
    config = override(
        load_scenario("default"),
        {
            "world.n_users": 50,
            "llm.fraction": 0.2,
            "llm.context_tokens": 8192,
            "llm.reply_tokens_per_item": 160,
            "llm.client.model": "tiny",
            "llm.client.base_urls": [server.url],
            "llm.client.max_retries": 1,
            "llm.client.backoff_s": 0.05,
            "llm.client.timeout_s": 30,
        },
    )
    sim = Simulation(config, out_dir=tmp_path / "run")
    model = sim.user_model
    assert isinstance(model, LLMUserModel)
    try:
        while model.client.usage.requests == 0:
            sim.step()  # until the first tick with LLM calls has been recorded
        before = sim.world.clock.tick
    finally:
        server.stop()
    result = sim.run(96)
    assert result.status == "completed"
    calls = read_run(tmp_path / "run").llm_calls
    assert calls["valid"].any()
    after = calls[calls["tick"] >= before]
    assert len(after) > 0
    assert after["fallback"].any()
    assert after.loc[after["fallback"], "error"].str.contains("gave up").all()
    assert read_manifest(tmp_path / "run")["status"] == "completed"
