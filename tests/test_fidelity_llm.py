"""The LLM discriminator (:class:`recoworld.fidelity.llm.LLMDiscriminator`): its prompts,
decisions, fallbacks and figures with a scripted client, then Agent4Rec's protocol on ten users of
``ml-1m-agent4rec`` against a real llama.cpp server (``python -m llama_cpp.server`` with
``stories260K.gguf``, started as ``tests/test_llm_server.py`` does; ``RECOWORLD_REQUIRE_LLAMA=1``
turns a missing server into a failure, and ``CI`` a missing dataset)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from numpy.typing import NDArray

from recoworld.data.dataset import Dataset
from recoworld.errors import BudgetExceeded, ConfigError, RecoworldError
from recoworld.fidelity.llm import LLMDiscriminator, decision_schema
from recoworld.fidelity.protocol import Discriminator, agent4rec_lists, evaluate, score_lists
from recoworld.llm.client import ChatRequest, ChatResult, Usage, validate

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-1m-agent4rec"


# -- a scripted client: the LLMClient interface, replies from a script -------------------------
Reply = str | dict[str, Any] | ChatResult


class ScriptedClient:
    """An LLM client whose replies come from ``script(request, index)`` (a dict is sent as its
    JSON; a :class:`ChatResult` is returned as is). Like :class:`recoworld.llm.LLMClient`,
    results come back in request order and a reply is validated against the request's schema
    (``check=False``: not validated, as a server that ignores schemas would leave it)."""

    def __init__(
        self,
        script: Callable[[ChatRequest, int], Reply],
        *,
        check: bool = True,
        budget_after: int | None = None,
    ) -> None:
        self.script = script
        self.check = check
        self.budget_after = budget_after
        self.requests: list[ChatRequest] = []
        self.usage = Usage()
        self.batches: list[int] = []

    def chat(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        if self.budget_after is not None and len(self.requests) >= self.budget_after:
            raise BudgetExceeded("the LLM budget is spent; raise llm.budget_tokens")
        self.batches.append(len(requests))
        results = []
        for request in requests:
            reply = self.script(request, len(self.requests))
            self.requests.append(request)
            if isinstance(reply, ChatResult):
                results.append(reply)
                continue
            text = reply if isinstance(reply, str) else json.dumps(reply)
            data: Any = None
            problem: str | None = None
            if self.check and request.schema is not None:
                data, problem = validate(text, request.schema)
            else:
                try:
                    data = json.loads(text)
                except ValueError:
                    problem = "not JSON"
            prompt = sum(len(m["content"]) for m in request.messages) // 4
            key = hashlib.sha256(json.dumps(request.messages).encode()).hexdigest()
            self.usage.requests += 1
            self.usage.prompt_tokens += prompt
            self.usage.completion_tokens += len(text) // 4
            results.append(
                ChatResult(
                    text=text,
                    data=data,
                    valid=problem is None,
                    cached=False,
                    repaired=False,
                    invalid_outputs=int(problem is not None),
                    calls=1,
                    prompt_tokens=prompt,
                    completion_tokens=len(text) // 4,
                    latency_s=0.01,
                    key=key,
                    tag=request.tag,
                    error=problem,
                )
            )
        return results


def ids_of(request: ChatRequest) -> list[int]:
    """The candidate ids a request asks about, in order (from its schema)."""
    assert request.schema is not None
    entries = request.schema["properties"]["decisions"]["prefixItems"]
    return [int(e["properties"]["id"]["const"]) for e in entries]


def reply(*pairs: tuple[int, Any]) -> dict[str, Any]:
    """A reply deciding ``(id, watch)`` pairs, in this order."""
    return {"decisions": [{"id": i, "watch": w} for i, w in pairs]}


def no_reply(error: str) -> ChatResult:
    """A call that got no usable reply (``error`` says why), as the client reports it."""
    return ChatResult(
        text="",
        data=None,
        valid=False,
        cached=False,
        repaired=False,
        invalid_outputs=0,
        calls=1,
        prompt_tokens=0,
        completion_tokens=0,
        latency_s=0.5,
        key="0" * 64,
        tag="fidelity",
        error=error,
    )


def watch_even(request: ChatRequest, index: int) -> dict[str, Any]:
    """A model that watches the items with even ids."""
    return {"decisions": [{"id": i, "watch": i % 2 == 0} for i in ids_of(request)]}


def user_message(request: ChatRequest) -> str:
    return request.messages[1]["content"]


def section(text: str, name: str) -> str:
    """The lines of a ``# name`` section of a prompt."""
    match = re.search(rf"^# {name}.*?\n(.*?)(?=^# |\Z)", text, re.S | re.M)
    assert match is not None, text
    return match.group(1)


class ConstantDiscriminator:
    """A fallback that says ``answer`` to everything and remembers what it was fitted on."""

    name = "constant"

    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.fitted_on: pd.DataFrame | None = None
        self.asked: list[int] = []

    def fit(self, dataset: Dataset, train: pd.DataFrame) -> None:
        self.fitted_on = train

    def decide(
        self, users: NDArray[np.int64], lists: list[NDArray[np.int64]]
    ) -> list[NDArray[np.bool_]]:
        self.asked.extend(int(u) for u in users)
        return [np.full(len(lst), self.answer, np.bool_) for lst in lists]


class Untouchable:
    """Stands in for ``dataset.interactions``: any use of it fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"fit read dataset.interactions ({name})")

    def __getitem__(self, key: object) -> Any:
        raise AssertionError("fit read dataset.interactions")


# -- a small dataset ----------------------------------------------------------------------------
TITLES = [
    "Alpha Dawn", "Bravo Night", "Charlie Road", "Delta Sea", "Echo Hills", "Foxtrot Run",
    "Golf Story", "Hotel Ghost", "India Heist", "Juliet Song", "Kilo Quest", "Lima Winter",
    "Mike Harbor", "November Rain", "Oscar Field", "Papa Tango",
]  # fmt: skip
GENRES = ["Drama", "Comedy", "Horror", "Action"]


def small_dataset(
    *,
    heldout: dict[int, list[int]] | None = None,
    traits: bool = True,
    ratings: bool = True,
) -> Dataset:
    """Four users, sixteen items (item ``i``'s genres: ``GENRES[i % 4]``, plus Drama when
    ``i % 3 == 0``). User 0's train items come with timestamps in a known order; ``heldout``
    gives each user's valid/test items (default: a few each)."""
    train = {
        0: [(2, 300), (0, 100), (4, 200), (8, 400), (0, 500)],  # item 0 twice, last at 500
        1: [(1, 10), (5, 20), (9, 30)],
        2: [(3, 1), (7, 2), (11, 3), (15, 4)],
        3: [],
    }
    heldout = heldout if heldout is not None else {0: [6, 10], 1: [13], 2: [12, 14], 3: [1]}
    rows = []
    for user, pairs in train.items():
        for item, ts in pairs:
            rows.append((user, item, 4.0 if item % 2 == 0 else 2.0, ts, "train"))
    for user, items in heldout.items():
        for k, item in enumerate(items):
            rows.append((user, item, 5.0, 1000 + k, "valid" if k % 2 == 0 else "test"))
    frame = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp", "split"])
    interactions = pd.DataFrame(
        {
            "user": frame["user"].astype(np.int64),
            "item": frame["item"].astype(np.int64),
            "rating": frame["rating"].astype(np.float32)
            if ratings
            else np.full(len(frame), np.nan, np.float32),
            "weight": np.ones(len(frame), np.float32),
            "timestamp": frame["timestamp"].astype(np.int64),
            "split": pd.Categorical(frame["split"], categories=["train", "valid", "test", "all"]),
        }
    )
    items = pd.DataFrame(
        {
            "raw_id": [str(i) for i in range(16)],
            "title": TITLES,
            "topics": [
                tuple(dict.fromkeys([GENRES[i % 4], *(["Drama"] if i % 3 == 0 else [])]))
                for i in range(16)
            ],
            "text": [""] * 16,
            "mean_rating": np.full(16, np.nan),
        }
    )
    users = pd.DataFrame({"raw_id": [str(u) for u in range(4)]})
    if traits:
        users["a4r_activity"] = pd.array([3, 1, pd.NA, 2], dtype="Int64")
        users["a4r_diversity"] = pd.array([1, 3, 2, 2], dtype="Int64")
        users["a4r_conformity"] = pd.array([pd.NA, 3, 1, 2], dtype="Int64")
        users["a4r_mood"] = ["calm", None, None, None]
    return Dataset(
        name="tiny",
        format="movielens",
        source="(test)",
        interactions=interactions,
        items=items,
        users=users,
        rating_scale=(1.0, 5.0, 1.0) if ratings else None,
    )


def fitted(client: ScriptedClient, dataset: Dataset | None = None, **kw: Any) -> LLMDiscriminator:
    dataset = dataset or small_dataset()
    disc = LLMDiscriminator({"model": "scripted"}, client=client, **kw)
    disc.fit(replace(dataset, interactions=Untouchable()), dataset.split("train"))
    return disc


LISTS = [np.array([6, 1, 10, 3], np.int64), np.array([13, 2, 7], np.int64)]
USERS = np.array([0, 1], np.int64)


# -- decisions ----------------------------------------------------------------------------------
def test_decisions_are_the_replys_in_the_lists_order_one_call_per_user() -> None:
    client = ScriptedClient(watch_even)
    disc = fitted(client)
    assert isinstance(disc, Discriminator)
    out = disc.decide(USERS, LISTS)
    assert [o.tolist() for o in out] == [[True, False, True, False], [False, True, False]]
    assert all(o.dtype == np.bool_ for o in out)
    # One structured call per user, in the order given, asking for exactly the list's ids.
    assert [ids_of(r) for r in client.requests] == [lst.tolist() for lst in LISTS]
    assert client.batches == [2]
    assert all(r.max_tokens is not None and r.max_tokens > 0 for r in client.requests)
    for request, lst in zip(client.requests, LISTS, strict=True):
        candidates = section(user_message(request), "Candidates").strip().splitlines()
        assert [int(c.split(":")[0].removeprefix("id ")) for c in candidates] == lst.tolist()
        assert f'"{TITLES[int(lst[0])]}"' in candidates[0]
    s = disc.stats
    assert (s.lists, s.calls, s.valid, s.fallbacks, s.decisions, s.llm_decisions) == (
        2,
        2,
        2,
        0,
        7,
        7,
    )
    assert s.parse_valid_rate == 1.0
    assert s.prompt_tokens == client.usage.prompt_tokens > 0
    assert s.completion_tokens == client.usage.completion_tokens > 0
    assert s.tokens_per_decision == pytest.approx(s.tokens / 7)
    figures = s.as_dict()
    assert figures["llm/valid_rate"] == 1.0
    assert figures["llm/fallbacks"] == 0
    assert figures["llm/tokens_per_decision"] == pytest.approx(s.tokens / 7)
    records = disc.call_records()
    assert records["user"].tolist() == [0, 1]
    assert not records["fallback"].any()
    assert records["valid"].all()


def test_the_reply_is_read_in_order_whatever_the_ids_values() -> None:
    """A reply that watches the 2nd and 3rd positions: decisions follow positions, not id order."""

    def script(request: ChatRequest, index: int) -> dict[str, Any]:
        ids = ids_of(request)
        return {"decisions": [{"id": i, "watch": j in (1, 2)} for j, i in enumerate(ids)]}

    out = fitted(ScriptedClient(script)).decide(USERS, LISTS)
    assert [o.tolist() for o in out] == [[False, True, True, False], [False, True, True]]


def test_the_schema_asks_for_exactly_the_lists_ids_in_order() -> None:
    schema = decision_schema([5, 3, 9])
    good = reply((5, True), (3, False), (9, True))
    assert validate(json.dumps(good), schema)[1] is None
    swapped = reply((3, False), (5, True), (9, True))
    short = reply((5, True), (3, False))
    extra = reply((5, True), (3, False), (9, True), (4, True))
    not_bool = reply((5, "yes"), (3, False), (9, True))
    for bad in (swapped, short, extra, not_bool, {**good, "n": 1}):
        assert validate(json.dumps(bad), schema)[1] is not None, bad


@pytest.mark.parametrize(
    ("bad", "check"),
    [
        ("this is not json", True),
        (reply((99, True)), True),  # other ids: invalid by the schema
        # A client that let a reply ignoring the schema through: the discriminator checks too.
        (reply((13, True), (7, True)), False),  # too few
        (reply((2, True), (13, True), (7, True)), False),  # another order
        (reply((13, True), (2, 1), (7, True)), False),  # not a boolean
    ],
)
def test_an_invalid_reply_falls_back_to_the_fallback_counted(bad: Reply, check: bool) -> None:
    def script(request: ChatRequest, index: int) -> Reply:
        return bad if ids_of(request)[0] == 13 else watch_even(request, index)

    fallback = ConstantDiscriminator(answer=True)
    disc = fitted(ScriptedClient(script, check=check), fallback=fallback)
    assert fallback.fitted_on is not None
    assert set(fallback.fitted_on["split"].astype(str)) == {"train"}
    out = disc.decide(USERS, LISTS)
    assert out[0].tolist() == [True, False, True, False]  # the model's
    assert out[1].tolist() == [True, True, True]  # the fallback's
    assert fallback.asked == [1]
    s = disc.stats
    assert (s.calls, s.valid, s.fallbacks) == (2, 1, 1)
    assert s.fallback_reasons == {"invalid": 1}
    assert s.parse_valid_rate == 0.5
    assert s.as_dict()["llm/fallbacks_invalid"] == 1
    records = disc.call_records()
    assert records["fallback"].tolist() == [False, True]
    assert records.loc[1, "error"]


def test_without_a_fallback_an_invalid_list_is_not_watched() -> None:
    disc = fitted(ScriptedClient(lambda r, i: "{}"))
    out = disc.decide(USERS, LISTS)
    assert [o.tolist() for o in out] == [[False] * 4, [False] * 3]
    assert disc.stats.fallbacks == 2
    assert disc.stats.parse_valid_rate == 0.0


def test_a_failed_call_falls_back_as_failed() -> None:
    def script(request: ChatRequest, index: int) -> Reply:
        if index == 0:
            return no_reply("gave up after 5 attempts: HTTP 500")
        return watch_even(request, index)

    disc = fitted(ScriptedClient(script), fallback=ConstantDiscriminator(False))
    out = disc.decide(USERS, LISTS)
    assert out[0].tolist() == [False] * 4
    assert disc.stats.fallback_reasons == {"failed": 1}
    assert "HTTP 500" in disc.call_records().loc[0, "error"]


def test_empty_lists_make_no_call_and_unknown_users_have_an_empty_history() -> None:
    client = ScriptedClient(watch_even)
    disc = fitted(client)
    out = disc.decide(np.array([0, 3, 9], np.int64), [np.zeros(0, np.int64), LISTS[1], LISTS[1]])
    assert out[0].shape == (0,)
    assert len(client.requests) == 2
    for request in client.requests:  # user 3 has no train rows; user 9 is not in the data
        text = user_message(request)
        assert "You have not watched any movies here yet." in text
        assert section(text, "Watched").strip() == "(nothing yet)"
    assert disc.stats.lists == 3
    assert disc.stats.decisions == 6


# -- what the prompt says -----------------------------------------------------------------------
def test_the_prompt_never_says_how_many_positives() -> None:
    """The prompt is a function of the user's train rows and the list alone: the same list with
    two, one or no held-out positives in it reads the same, and no wording hints at a count."""
    lst = np.array([6, 10, 12, 14], np.int64)
    prompts = []
    for heldout in ({0: [6, 10]}, {0: [6]}, {0: [12, 14, 5]}, {0: []}):
        client = ScriptedClient(watch_even)
        fitted(client, small_dataset(heldout=heldout)).decide(np.array([0], np.int64), [lst])
        prompts.append(client.requests[0].messages)
    assert all(p == prompts[0] for p in prompts)
    system, user = prompts[0][0]["content"], prompts[0][1]["content"]
    lower = (system + user).lower()
    for word in ("positive", "held", "exactly", "half", "how many", "at least", "at most"):
        assert word not in lower, word
    assert "no quota" in system.lower()
    # Numbers in the user message: list ids, train counts and shares, stars — nothing else.
    candidates = section(user, "Candidates")
    numbers = re.findall(r"\d+(?:\.\d+)?", user.replace(candidates, ""))
    allowed = {"4", "75", "25", "4.0", "5"}  # 4 watched (4 of 4 shown), shares, stars
    assert set(numbers) <= allowed, numbers


def test_the_protocols_lists_reach_the_model_as_shuffled_without_labels() -> None:
    dataset = small_dataset()
    client = ScriptedClient(watch_even)
    disc = LLMDiscriminator({"model": "scripted"}, client=client)
    frame = evaluate(disc, dataset, ratios=(1, 2), seed=3)
    assert frame["users"].tolist() == [4, 4]
    lists = [agent4rec_lists(dataset, m, seed=3) for m in (1, 2)]
    asked = [ids_of(r) for r in client.requests]
    assert asked == [lst.tolist() for tl in lists for lst in tl.items]
    for request in client.requests:
        assert "positive" not in user_message(request).lower()
    assert disc.last_stats.lists == 4
    assert disc.stats.lists == 8
    # The figures are the protocol's on the model's decisions.
    again = [watch_even(r, 0)["decisions"] for r in client.requests[4:]]
    decisions = [np.array([d["watch"] for d in entries], np.bool_) for entries in again]
    assert score_lists(lists[1], decisions)["accuracy"] == pytest.approx(frame["accuracy"][1])


def test_the_history_is_train_only_newest_first_and_capped() -> None:
    dataset = small_dataset()
    client = ScriptedClient(watch_even)
    disc = fitted(client, dataset, max_history=3)
    disc.decide(np.array([0], np.int64), [np.array([1, 3], np.int64)])
    text = user_message(client.requests[0])
    watched = section(text, "Watched")
    # Train items by timestamp, newest first; item 0 (seen at 100 and 500) once, at 500.
    lines = watched.strip().splitlines()
    assert [line.split('"')[1] for line in lines] == [TITLES[0], TITLES[8], TITLES[2]]
    assert "# Watched (newest first, 3 of 4)" in text
    assert lines[0].endswith("rated 4")
    for item in (6, 10):  # held-out items are nowhere in the prompt
        assert TITLES[item] not in text
    # The whole history when the cap allows it.
    client = ScriptedClient(watch_even)
    fitted(client, dataset, max_history=50).decide(np.array([0], np.int64), [np.array([1])])
    lines = section(user_message(client.requests[0]), "Watched").strip().splitlines()
    assert [line.split('"')[1] for line in lines] == [TITLES[i] for i in (0, 8, 2, 4)]


def test_the_persona_has_counts_favourite_genres_traits_and_ratings() -> None:
    client = ScriptedClient(watch_even)
    fitted(client).decide(np.arange(3, dtype=np.int64), [LISTS[1]] * 3)
    persona = [section(user_message(r), "You") for r in client.requests]
    # User 0 watched items 0, 2, 4, 8 (item 0 twice): Drama, Horror, Drama, Drama; all 4 stars.
    assert "You have watched 4 movies here." in persona[0]
    assert "Your favourite genres: Drama (75%), Horror (25%)." in persona[0]
    assert "Your ratings average 4.0 of 5 stars." in persona[0]
    assert "You love movies" in persona[0]  # a4r_activity 3
    assert "You stick to your favourite genres." in persona[0]  # a4r_diversity 1
    assert "reputation" not in persona[0]  # a4r_conformity NA
    assert "Mood: calm." in persona[0]  # an a4r_ column of its own
    assert "You rarely watch anything" in persona[1]  # a4r_activity 1
    assert "You ignore reputation" in persona[1]  # a4r_conformity 3
    assert "You go by what most people think" in persona[2]  # a4r_conformity 1
    # Without traits or stars, none of those lines.
    client = ScriptedClient(watch_even)
    fitted(client, small_dataset(traits=False, ratings=False)).decide(USERS[:1], LISTS[:1])
    text = user_message(client.requests[0])
    assert "average" not in text
    assert "rated" not in text
    assert "You love" not in text


def test_the_history_shrinks_to_fit_the_context_and_a_list_that_cannot_fit_is_not_sent() -> None:
    big = np.arange(4, 16, dtype=np.int64)
    shown: list[int | None] = []  # history lines shown, as the context grows
    for context in range(256, 1600, 8):
        disc = fitted(ScriptedClient(watch_even), max_history=50, context_tokens=context)
        messages = disc.prompt(0, big)
        if messages is None:
            shown.append(None)
            continue
        watched = section(messages[1]["content"], "Watched").strip()
        shown.append(0 if watched == "(not shown)" else len(watched.splitlines()))
    assert shown[0] is None  # too small even without history
    fits = [n for n in shown if n is not None]
    assert fits == sorted(fits)  # more room, more history
    assert fits[0] == 0
    assert {1, 2, 3} & set(fits)  # cut on the way
    assert fits[-1] == 4  # the whole history once it fits
    first = shown.index(fits[0])
    assert first > 0
    assert None not in shown[first:]

    fallback = ConstantDiscriminator(True)
    client = ScriptedClient(watch_even)
    disc = fitted(client, context_tokens=256, fallback=fallback)
    out = disc.decide(np.array([0], np.int64), [big])
    assert client.requests == []
    assert out[0].all()
    assert disc.stats.fallback_reasons == {"context": 1}
    assert disc.stats.calls == 0
    assert math.isnan(disc.stats.parse_valid_rate)
    assert disc.call_records().loc[0, "error"] == "prompt beyond the context window"


# -- budget, batches, settings ------------------------------------------------------------------
def test_a_spent_budget_raises_or_falls_back_as_asked() -> None:
    lists = [LISTS[0], LISTS[1], LISTS[1]]
    users = np.array([0, 1, 2], np.int64)
    disc = fitted(ScriptedClient(watch_even, budget_after=1), batch_size=1)
    with pytest.raises(BudgetExceeded):
        disc.decide(users, lists)
    assert disc.stats.calls == 1  # the batch that was made is counted

    client = ScriptedClient(watch_even, budget_after=1)
    disc = fitted(client, batch_size=1, on_budget="fallback", fallback=ConstantDiscriminator())
    out = disc.decide(users, lists)
    assert client.batches == [1]
    assert out[0].tolist() == [True, False, True, False]
    assert out[1].all()
    assert out[2].all()
    assert disc.stats.fallback_reasons == {"budget": 2}


def test_a_budget_error_inside_a_batch_also_stops() -> None:
    def script(request: ChatRequest, index: int) -> Reply:
        return watch_even(request, index) if index == 0 else no_reply("budget")

    with pytest.raises(BudgetExceeded, match=re.escape("fidelity.llm.budget_tokens")):
        fitted(ScriptedClient(script)).decide(USERS, LISTS)
    disc = fitted(ScriptedClient(script), on_budget="fallback")
    disc.decide(USERS, LISTS)
    assert disc.stats.fallback_reasons == {"budget": 1}


def test_lists_go_in_batches_of_batch_size_in_order() -> None:
    client = ScriptedClient(watch_even)
    disc = fitted(client, batch_size=2)
    users = np.array([0, 1, 2, 0, 1], np.int64)
    lists = [LISTS[k % 2] for k in range(5)]
    out = disc.decide(users, lists)
    assert client.batches == [2, 2, 1]
    assert [ids_of(r) for r in client.requests] == [lst.tolist() for lst in lists]
    assert len(out) == 5


def test_sampling_defaults_reach_the_client_configuration() -> None:
    disc = LLMDiscriminator({"model": "m", "concurrency": 3}, seed=5)
    assert (disc.config.temperature, disc.config.seed, disc.config.concurrency) == (0.0, 5, 3)
    disc = LLMDiscriminator({"model": "m"}, temperature=0.7, seed=None)
    assert (disc.config.temperature, disc.config.seed) == (0.7, None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_history": -1}, "fidelity.max_history"),
        ({"max_history": 2.5}, "fidelity.max_history"),
        ({"temperature": -0.1}, "fidelity.temperature"),
        ({"seed": -2}, "fidelity.seed"),
        ({"context_tokens": 100}, "fidelity.context_tokens"),
        ({"on_budget": "ignore"}, "fidelity.on_budget"),
        ({"batch_size": 0}, "fidelity.batch_size"),
        ({"title_chars": 2}, "fidelity.title_chars"),
        ({"fallback": object()}, "fidelity.fallback"),
        ({"client": object()}, "fidelity.client"),
        ({"offline": True}, "fidelity.offline"),
        ({"llm": {"model": "m", "temperature": 0.5}}, "fidelity.llm.temperature"),
        ({"llm": {"model": "m", "seed": 1}}, "fidelity.llm.seed"),
        ({"llm": {"model": "m", "concurency": 2}}, "fidelity.llm.concurency: unknown key"),
        ({"llm": {"model": "m", "concurrency": 0}}, "fidelity.llm.concurrency"),
        ({"llm": "gpt-4o-mini"}, "fidelity.llm: expected an LLMConfig or a mapping"),
        ({"llm": {}}, "fidelity.llm.model"),
    ],
)
def test_bad_settings_are_named_errors(
    kwargs: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    kwargs = {"llm": {"model": "m"}, **kwargs}
    with pytest.raises(ConfigError, match=re.escape(message)):
        LLMDiscriminator(**kwargs)


def test_misuse_is_a_named_error() -> None:
    disc = LLMDiscriminator({"model": "m"}, client=ScriptedClient(watch_even))
    with pytest.raises(RecoworldError, match="before fit"):
        disc.decide(USERS, LISTS)
    disc.fit(small_dataset(), small_dataset().split("train"))
    with pytest.raises(ValueError, match="2 users for 1 lists"):
        disc.decide(USERS, LISTS[:1])
    with pytest.raises(ValueError, match=re.escape("item ids must lie in 0..15")):
        disc.decide(USERS[:1], [np.array([3, 16])])


# -- against a real llama.cpp server --------------------------------------------------------------
def ten_users(dataset: Dataset, n: int = 10) -> Dataset:
    """The first ``n`` users of ``dataset`` (ids unchanged), every item kept."""
    rows = dataset.interactions
    return replace(
        dataset,
        interactions=rows[rows["user"] < n].reset_index(drop=True),
        users=dataset.users.iloc[:n],
    )


@pytest.mark.slow
def test_the_protocol_on_ten_agent4rec_users_against_llama_cpp(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    from tests.test_llm_server import Server

    if not DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"the evaluation data is missing: {DATA}")
        pytest.skip(f"the evaluation data is not here: {DATA}")
    from recoworld.data.loaders import load_dataset

    dataset = ten_users(load_dataset(DATA))
    assert dataset.format == "agent4rec"
    cache = tmp_path / "fidelity-cache.sqlite"
    # stories260K tokenizes at about 1.3 characters a token (the estimate assumes 3.2): a long
    # server context, and a short history.
    server = Server("stories260K.gguf", tmp_path / "server.log", n_ctx=8192)
    llm = {"base_urls": [server.url], "model": "tiny", "timeout_s": 60, "cache": str(cache)}
    started = time.perf_counter()
    try:
        with LLMDiscriminator(llm, max_history=10, context_tokens=2400) as disc:
            frame = evaluate(disc, dataset, ratios=(1,))
    finally:
        server.stop()
    elapsed = time.perf_counter() - started
    s = disc.stats
    figures = {
        "users": int(frame["users"][0]),
        "parse_valid_rate": s.parse_valid_rate,
        "tokens_per_decision": s.tokens_per_decision,
        "prompt_tokens_per_decision": s.prompt_tokens_per_decision,
        "completion_tokens_per_decision": s.completion_tokens_per_decision,
        "fallbacks": s.fallbacks,
        "seconds": round(elapsed, 1),
    }
    for key, value in figures.items():
        record_property(key, value)
    print("LLM discriminator against llama.cpp (stories260K):", figures, frame.to_dict("records"))
    assert frame["users"][0] == 10
    assert s.lists == s.calls == 10  # every user got a call, and decisions
    records = disc.call_records()
    assert sorted(records["user"]) == list(range(10))
    assert (records["n_items"] == 20).all()
    assert records["prompt_tokens"].gt(0).all()
    assert s.parse_valid_rate >= 0.5  # llama.cpp's grammar keeps the reply in shape
    assert s.tokens_per_decision > 0
    assert s.server_calls >= 10
    assert 0.0 <= frame["accuracy"][0] <= 1.0

    # The server is gone: the same run replays from the cache, offline, to the same figures.
    with LLMDiscriminator(llm, max_history=10, context_tokens=2400, offline=True) as replay:
        again = evaluate(replay, dataset, ratios=(1,))
    pd.testing.assert_frame_equal(again, frame)
    assert replay.stats.server_calls == 0
    assert replay.stats.cached == 10
    assert replay.stats.tokens_per_decision == s.tokens_per_decision
    assert replay.call_records()["output"].tolist() == records["output"].tolist()
