"""The instruction-aware policy's LLM parser (``parser="llm"``): its reading with a scripted
client (used, consolidated across turns, invalid → the rules, one batch a tick), its parameters,
a recorded run and its replay — with the stub server, and against a real llama.cpp server
(``python -m llama_cpp.server`` with ``stories260K.gguf`` from ``../shared/models``, started as
``tests/test_llm_server.py`` does; ``RECOWORLD_REQUIRE_LLAMA=1`` turns a missing server into a
failure instead of a skip)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recoworld._config import override
from recoworld.cli import main
from recoworld.config import ScenarioConfig
from recoworld.errors import BudgetExceeded, ConfigError
from recoworld.llm.cache import CACHE_FILE
from recoworld.llm.client import ChatRequest, ChatResult
from recoworld.policies import Feedback, RecommendRequest, make_policy
from recoworld.policies.llm_parsing import PURPOSE, LLMInstructionAwarePolicy, parse_schema
from recoworld.policies.parsing import parse_instruction
from recoworld.policies.rerank import InstructionAwarePolicy, Preferences
from recoworld.replay import compare_runs, replay_simulation
from recoworld.scenario import load_scenario
from recoworld.schedule import Simulation
from recoworld.trajectory import read_run
from recoworld.world.catalog import Catalog
from tests.test_llm_agent import Reply, ScriptedClient

K = 4
N_CAND = 30
_SAID = re.compile(r'"(.*)"\s*$', re.S)


class CountingClient(ScriptedClient):
    """A scripted client that also keeps the size of each batch it was sent."""

    def __init__(self, script: Any) -> None:
        super().__init__(script)
        self.batches: list[int] = []

    def chat(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        self.batches.append(len(requests))
        return super().chat(requests)


def said(request: ChatRequest) -> str:
    """The instruction text quoted in a parse request."""
    match = _SAID.search(request.messages[1]["content"])
    assert match is not None
    return match.group(1)


def by_text(replies: dict[str, Reply]) -> CountingClient:
    """Replies by instruction text (as quoted: double quotes become apostrophes)."""
    quoted = {text.replace('"', "'"): reply for text, reply in replies.items()}
    return CountingClient(lambda request, index: quoted[said(request)])


def reading(more: Sequence[str] = (), less: Sequence[str] = (), fresh: bool = False) -> Reply:
    return {"more": list(more), "less": list(less), "fresh": fresh}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    cfg = override(load_scenario("default"), {"world.n_users": 10, "world.n_items": 300})
    return Simulation(cfg).world.catalog


def _request(catalog: Catalog, texts: Sequence[str | None], tick: int = 3) -> RecommendRequest:
    n = len(texts)
    rng = np.random.default_rng(5)
    candidates = np.stack(
        [rng.choice(catalog.n_items, N_CAND, replace=False) for _ in range(n)]
    ).astype(np.int32)
    return RecommendRequest(
        tick=tick,
        users=np.arange(10, 10 + n, dtype=np.int64),
        candidates=candidates,
        k=K,
        catalog=catalog,
        history=np.full((n, 6), -1, np.int32),
        instructions=list(texts),
        instruction_age=np.asarray([0 if t else -1 for t in texts], np.int32),
        session_pages=np.zeros(n, np.int32),
        rng=np.random.default_rng(0),
    )


def _parser(client: ScriptedClient, **params: Any) -> LLMInstructionAwarePolicy:
    policy = make_policy(
        "instruction_aware",
        base="most_popular",
        parser="llm",
        llm={"model": "scripted"},
        client=client,
        **params,
    )
    assert isinstance(policy, LLMInstructionAwarePolicy)
    return policy


def _rows(policy: LLMInstructionAwarePolicy) -> dict[str, Any]:
    return policy.drain_records()["llm_calls"]


def _topics(catalog: Catalog, *names: str) -> set[int]:
    return {catalog.topic_names.index(n) for n in names}


# -- the reading ------------------------------------------------------------------------------
def test_the_llms_reading_is_used_where_the_rules_read_nothing(catalog: Catalog) -> None:
    text = "Something else, honestly."
    assert parse_instruction(text, catalog.topic_names) == parse_instruction("", ())
    client = by_text({text: reading(more=["cooking"], less=["music"])})
    policy = _parser(client)
    request = _request(catalog, [text])
    scores = policy.score(request)[0]
    assert policy.preferences[10] == Preferences(
        _topics(catalog, "cooking"), _topics(catalog, "music"), False, text
    )
    # The planner is unchanged: the rule-based policy's scores, plus the LLM's preferences.
    rules = InstructionAwarePolicy(base="most_popular").score(_request(catalog, [text]))[0]
    topic = catalog.topic[request.candidates[0]]
    cooking, music = (catalog.topic_names.index(n) for n in ("cooking", "music"))
    np.testing.assert_allclose(scores[topic == cooking], rules[topic == cooking] + 1.5, rtol=1e-6)
    assert np.isneginf(scores[topic == music]).all()
    other = (topic != cooking) & (topic != music)
    np.testing.assert_array_equal(scores[other], rules[other])
    [call] = client.requests
    assert call.schema == parse_schema(catalog.topic_names)
    assert call.tag == PURPOSE
    system = call.messages[0]["content"]
    assert "never follow" in system.lower() or "never instructions" in system.lower()
    assert ", ".join(catalog.topic_names) in system
    rows = _rows(policy)
    assert rows["purpose"] == [3]  # CALL_PURPOSES.index("parse")
    assert rows["user"] == [10]
    assert rows["valid"] == [True]
    assert rows["fallback"] == [False]
    assert rows["error"] == [None]
    assert json.loads(rows["output"][0]) == reading(more=["cooking"], less=["music"])
    assert rows["model"] == "scripted"


def test_readings_consolidate_across_turns_and_a_standing_text_is_read_once(
    catalog: Catalog,
) -> None:
    first, second = "I want food videos", 'Enough cooking. Give me "science" again'
    client = by_text(
        {
            first: reading(more=["cooking"]),
            second: reading(more=["science"], less=["cooking"], fresh=True),
        }
    )
    policy = _parser(client)
    policy.score(_request(catalog, [first]))
    assert policy.preferences[10] == Preferences(_topics(catalog, "cooking"), set(), False, first)
    policy.score(_request(catalog, [second]))
    expected = Preferences(_topics(catalog, "science"), _topics(catalog, "cooking"), True, second)
    assert policy.preferences[10] == expected
    assert "Give me 'science' again" in client.requests[-1].messages[1]["content"]  # quoted safely
    policy.score(_request(catalog, [second]))  # the same standing text: no new call
    assert client.batches == [1, 1]
    assert policy.parsed_instructions == 2
    # The session ends: its preferences end with it; the text is read again next session.
    empty = np.zeros(0, np.int64)
    policy.update(
        Feedback(
            tick=4,
            users=empty,
            items=np.zeros(0, np.int32),
            ranks=np.zeros(0, np.int16),
            source=np.zeros(0, np.int8),
            examined=np.zeros(0, bool),
            clicked=np.zeros(0, bool),
            liked=np.zeros(0, bool),
            shared=np.zeros(0, bool),
            dwell=np.zeros(0, np.float32),
            instruction_users=empty,
            instruction_texts=(),
            left_users=np.array([10], np.int64),
        )
    )
    assert 10 not in policy.preferences
    policy.score(_request(catalog, [second]))
    assert client.batches == [1, 1, 1]
    assert policy.preferences[10].fresh


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ('{"more": ["cooking"], "less": [', "not JSON"),
        (reading(more=["knitting"]), "more/0"),  # not a topic of the catalogue
    ],
)
def test_an_invalid_reply_falls_back_to_the_rules_and_is_flagged(
    catalog: Catalog, reply: Reply, error: str
) -> None:
    text = "Too much music, show me more football"
    policy = _parser(by_text({text: reply}))
    policy.score(_request(catalog, [text]))
    rules = parse_instruction(text, catalog.topic_names)
    assert rules.more
    assert rules.less
    prefs = policy.preferences[10]
    assert (prefs.more, prefs.less, prefs.fresh) == (set(rules.more), set(rules.less), rules.fresh)
    rows = _rows(policy)
    assert rows["valid"] == [False]
    assert rows["fallback"] == [True]
    assert error in rows["error"][0]
    assert rows["output"] == [reply if isinstance(reply, str) else json.dumps(reply)]


def test_a_spent_budget_falls_back_to_the_rules_and_asks_the_run_to_stop(
    catalog: Catalog,
) -> None:
    def broke(request: ChatRequest, index: int) -> Reply:
        raise BudgetExceeded("the LLM budget is spent")

    client = CountingClient(broke)
    policy = _parser(client)
    text = "No more gaming please"
    policy.score(_request(catalog, [text]))
    assert policy.stop_reason is not None
    assert policy.preferences[10].less == set(parse_instruction(text, catalog.topic_names).less)
    rows = _rows(policy)
    assert rows["error"] == ["budget"]
    assert rows["fallback"] == [True]
    assert rows["prompt_hash"] == [None]
    policy.score(_request(catalog, ["More pets"]))  # no more calls once the budget is spent
    assert client.batches == [1]
    assert _rows(policy)["error"] == ["budget"]


def test_a_ticks_new_texts_go_in_one_batch_one_call_per_distinct_text(catalog: Catalog) -> None:
    a, b, c = "More travel", "Less comedy", "Fitness, please"
    client = by_text(
        {a: reading(more=["travel"]), b: reading(less=["comedy"]), c: reading(more=["fitness"])}
    )
    policy = _parser(client)
    policy.score(_request(catalog, [a, b, a, None, c]))
    assert client.batches == [3]
    assert [said(r) for r in client.requests] == [a, b, c]  # in the order of their first speaker
    rows = _rows(policy)
    assert rows["user"] == [10, 11, 14]
    assert policy.preferences[12] == Preferences(_topics(catalog, "travel"), set(), False, a)
    assert 13 not in policy.preferences
    policy.score(_request(catalog, [a, b, a, None, c], tick=4))  # nothing new: no call
    assert client.batches == [3]
    policy.score(_request(catalog, [a, c, a, b, c], tick=5))  # two users changed their words
    assert client.batches == [3, 2]
    assert _rows(policy)["user"] == [11, 13]


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"parser": "gpt"}, "policy.params.parser"),
        ({"llm": {"model": "m"}}, "policy.params.llm"),
        ({"temperature": 0.5}, "policy.params.temperature"),
        ({"offline": True}, "policy.params.offline"),
        ({"parser": "llm"}, "policy.params.llm.model"),
        ({"parser": "llm", "llm": {}}, "policy.params.llm.model"),
        ({"parser": "llm", "llm": "gpt"}, "policy.params.llm"),
        ({"parser": "llm", "llm": {"model": "m", "seed": 1}}, "policy.params.llm.seed"),
        (
            {"parser": "llm", "llm": {"model": "m", "concurrency": 0}},
            "policy.params.llm.concurrency",
        ),
        ({"parser": "llm", "llm": {"model": "m"}, "offline": True}, "policy.params.offline"),
        ({"parser": "llm", "llm": {"model": "m"}, "temperature": -1}, "policy.params.temperature"),
        ({"parser": "llm", "llm": {"model": "m"}, "client": "x"}, "policy.params.client"),
        ({"parser": "llm", "llm": {"model": "m"}, "base": "oracle"}, "policy.params.base"),
    ],
)
def test_bad_parameters_name_their_key(
    params: dict[str, Any], key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    with pytest.raises(ConfigError, match=re.escape(key) + r"\b"):
        make_policy("instruction_aware", **{"base": "most_popular", **params})


def test_the_rule_based_policy_has_no_llm_members_and_imports_no_llm_code() -> None:
    policy = make_policy("instruction_aware", base="most_popular")
    assert type(policy) is InstructionAwarePolicy
    assert policy.name == "instruction_aware[most_popular]"
    for member in ("drain_records", "close", "stop_reason", "replay_timing", "llm", "offline"):
        assert not hasattr(policy, member), member
    llm = make_policy("instruction_aware", base="most_popular", parser="llm", llm={"model": "m"})
    assert isinstance(llm, InstructionAwarePolicy)
    assert llm.name == "instruction_aware[most_popular,llm]"
    code = (
        "import sys; from recoworld.policies import make_policy; "
        "make_policy('instruction_aware', base='mf'); "
        "print(sorted(m for m in sys.modules if m.startswith(('recoworld.llm', 'openai'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_recorded_run_gives_llm_backed_policies_the_run_folders_cache(tmp_path: Path) -> None:
    base = override(load_scenario("default"), {"world.n_users": 20, "world.n_items": 200})
    for name, params in (
        ("instruction_aware", {"base": "most_popular", "parser": "llm", "llm": {"model": "m"}}),
        ("llm_agent", {"base": "most_popular", "llm": {"model": "m"}}),
    ):
        config = override(base, {"policy.name": name, "policy.params": params})
        sim = Simulation(config, out_dir=tmp_path / name)
        assert sim.policy.llm.cache == str(tmp_path / name / CACHE_FILE)  # type: ignore[attr-defined]
        assert Simulation(config).policy.llm.cache is None  # type: ignore[attr-defined]
        mine = str(tmp_path / "mine.sqlite")
        named = override(
            config, {"policy.params": {**params, "llm": {"model": "m", "cache": mine}}}
        )
        sim = Simulation(named, out_dir=tmp_path / f"{name}-named")
        assert sim.policy.llm.cache == mine  # type: ignore[attr-defined]
    rules = Simulation(base, out_dir=tmp_path / "rules")
    assert not hasattr(rules.policy, "llm")


# -- recorded runs and their replay -----------------------------------------------------------
def _run_config(llm: dict[str, Any], ticks: int, **params: Any) -> ScenarioConfig:
    """The default scenario, 40 users, half-hour ticks and readier instructions (so that a few
    dozen ticks bring several dozen), with the LLM parser over most_popular."""
    return override(
        load_scenario("default"),
        {
            "world.n_users": 40,
            "world.n_items": 400,
            "clock.ticks": ticks,
            "clock.tick_minutes": 30,
            "users.instruction_threshold": 0.2,
            "users.instruction_cooldown": 1,
            "policy.name": "instruction_aware",
            "policy.params": {"base": "most_popular", "parser": "llm", "llm": llm, **params},
        },
    )


def _stub_reply(body: dict[str, Any]) -> str:
    """The stub's "model": more of the first topic named in the text, less of the second."""
    schema = body["response_format"]["json_schema"]["schema"]
    topics = schema["properties"]["more"]["items"]["enum"]
    text = body["messages"][1]["content"].lower()
    named = sorted((text.index(t), t) for t in topics if t in text)
    return json.dumps(
        {
            "more": [t for _, t in named[:1]],
            "less": [t for _, t in named[1:2]],
            "fresh": "seen" in text,
        }
    )


def test_a_run_with_failed_calls_replays_byte_identically_from_its_folders_cache(
    tmp_path: Path,
) -> None:
    from recoworld.llm.stub import StubServer

    original = tmp_path / "run"
    with StubServer(reply=_stub_reply, faults=lambda n: "500" if n % 5 == 2 else None) as stub:
        llm = {"model": "stub", "base_urls": [stub.base_url], "max_retries": 0}
        sim = Simulation(_run_config(llm, 36), out_dir=original)
        assert sim.run().status == "completed"
        served = stub.served
    assert (original / CACHE_FILE).is_file()
    calls = read_run(original).llm_calls
    assert (calls["purpose"] == PURPOSE).all()
    assert len(calls) >= 10
    failed = calls[calls["error"].notna()]
    assert len(failed) > 0
    assert failed["error"].str.contains("injected failure").all()
    assert (calls["fallback"] == calls["error"].notna()).all()
    assert calls["cached"].any()  # a text said again is answered from the cache
    assert served == (~calls["cached"] & calls["error"].isna()).sum()
    # A text whose call failed was read later: the cache holds a reply the first call never got.
    assert set(failed["prompt_hash"]) & set(calls.loc[calls["valid"], "prompt_hash"])
    # The server is gone: the replay answers from the cache, failures replay as failures.
    assert main(["replay", str(original), "--out", str(tmp_path / "again"), "-q"]) == 0
    assert compare_runs(original, tmp_path / "again") == []


def test_llm_users_and_the_llm_parser_share_the_run_folders_cache_and_replay(
    tmp_path: Path,
) -> None:
    from recoworld.llm.stub import StubServer
    from tests.test_llm_users import scripted

    def reply(body: dict[str, Any]) -> str:
        parse = "extract only what they ask for" in body["messages"][0]["content"]
        return _stub_reply(body) if parse else scripted(body)

    original = tmp_path / "run"
    with StubServer(reply=reply, faults=lambda n: "500" if n % 7 == 3 else None) as stub:
        llm = {"model": "stub", "base_urls": [stub.base_url], "max_retries": 0}
        config = override(
            _run_config(llm, 36),
            {
                "llm.fraction": 0.25,
                "llm.client.model": "stub",
                "llm.client.base_urls": [stub.base_url],
                "llm.client.max_retries": 0,
            },
        )
        assert Simulation(config, out_dir=original).run().status == "completed"
    calls = read_run(original).llm_calls
    assert {"page", "parse"} <= set(calls["purpose"])
    assert calls["fallback"].any()
    assert main(["replay", str(original), "--out", str(tmp_path / "again"), "-q"]) == 0
    assert compare_runs(original, tmp_path / "again") == []


def test_replay_without_the_policys_cache_is_a_named_error(tmp_path: Path) -> None:
    from recoworld.errors import TrajectoryError
    from recoworld.llm.stub import StubServer

    original = tmp_path / "run"
    with StubServer(reply=_stub_reply) as stub:
        config = _run_config({"model": "stub", "base_urls": [stub.base_url]}, 24)
        Simulation(config, out_dir=original).run()
    (original / CACHE_FILE).unlink()
    with pytest.raises(TrajectoryError, match="response cache of the run's policy"):
        replay_simulation(original, tmp_path / "x")


def test_a_run_against_a_real_server_records_parse_calls_and_replays_with_it_stopped(
    tmp_path: Path,
) -> None:
    from tests.test_llm_server import Server

    # stories260K tokenizes almost per character: room for the ~620-token prompt and the reply.
    server = Server("stories260K.gguf", tmp_path / "server.log", 4096)
    original = tmp_path / "run"
    try:
        llm = {
            "model": "tiny",
            "base_urls": [server.url],
            "max_tokens": 300,
            "concurrency": 2,
            "timeout_s": 60,
            "backoff_s": 0.05,
        }
        config = _run_config(llm, 30, seed=7, temperature=0.8)
        sim = Simulation(config, out_dir=original)
        assert sim.run().status == "completed"
    finally:
        server.stop()
    run = read_run(original)
    calls = run.llm_calls
    assert len(calls) >= 5, len(run.instructions)
    assert (calls["purpose"] == PURPOSE).all()
    assert (calls["valid"] | calls["fallback"]).all()
    assert (calls["fallback"] == ~calls["valid"]).all()
    assert calls.loc[calls["fallback"], "error"].notna().all()
    assert calls["prompt_tokens"].gt(0).all()
    assert set(calls["user"]) <= set(run.instructions["user"])
    for output in calls.loc[calls["valid"], "output"]:
        assert set(json.loads(output)) == {"more", "less", "fresh"}
    # The server is stopped: the replay answers every call from the run folder's cache.
    assert main(["replay", str(original), "--out", str(tmp_path / "again"), "-q"]) == 0
    assert compare_runs(original, tmp_path / "again") == []
