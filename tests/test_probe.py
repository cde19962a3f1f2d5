"""The creator probe (recoworld/probe.py): the item lands in the catalogue, the wrapper policy
shows it in slot 0 once to each chosen user, the report's numbers are the trajectory's, the
segment filter picks exactly its users, errors are clear, runs repeat, the item behaves like an
item (fans of its topic click it more), and LLM users' comments about it are collected — from a
scripted stub server exactly, and from a real llama.cpp server as a smoke test."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recoworld.errors import ConfigError, ProbeError, RecoworldError
from recoworld.llm.stub import StubServer
from recoworld.probe import (
    Probe,
    ProbeItem,
    ProbePolicy,
    add_probe_parser,
    load_item,
    parse_item,
    prepare_probe,
    probe_main,
    run_probe,
    select_segment,
    user_frame,
)
from recoworld.trajectory import read_manifest, read_run
from recoworld.world.catalog import Catalog
from tests.conftest import ROOT

SMALL = {"world.n_users": 2000, "world.n_items": 1000, "clock.ticks": 48, "clock.start_hour": 18}
ITEM = ProbeItem(
    title="Ten-minute sourdough",
    summary="A quick, reliable sourdough loaf for busy weeknights.",
    topic="cooking",
    stance=0.4,
    quality=0.9,
    seed=3,
    overrides=dict(SMALL),
)
SEGMENT = "opinion > 0.2 and sociability > 0.3"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recoworld")
    add_probe_parser(parser.add_subparsers(dest="command"))
    return parser


def _write_item(path: Path, **fields: Any) -> Path:
    import yaml

    data: dict[str, Any] = {
        "title": ITEM.title,
        "summary": ITEM.summary,
        "topic": ITEM.topic,
        "quality": ITEM.quality,
        "stance": ITEM.stance,
        "seed": 3,
        "set": dict(SMALL),
    }
    data.update(fields)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Probe, Any]:
    out = tmp_path_factory.mktemp("probe") / "run"
    probe = prepare_probe(ITEM, out, segment=SEGMENT, users=80, by="topic")
    report = probe.run()
    return probe, report


# --------------------------------------------------------------------------- the item


def test_the_item_is_in_the_catalogue_with_its_fields(probed: tuple[Probe, Any]) -> None:
    probe, report = probed
    cat = probe.sim.world.catalog
    i = probe.item_id
    assert i == 1000  # the first row after the generated catalogue
    assert cat.n_live == 1001
    assert cat.title[i] == ITEM.title
    assert cat.summary[i] == ITEM.summary
    assert cat.topic_names[cat.topic[i]] == "cooking"
    assert cat.quality[i] == pytest.approx(0.9)
    assert cat.stance[i] == pytest.approx(0.4)
    assert not cat.misinfo[i]
    assert cat.created_tick[i] == 0
    assert cat.author[i] == -1
    emb = cat.embedding[i].astype(np.float64)
    assert np.linalg.norm(emb) == pytest.approx(1.0, abs=1e-5)
    cos = cat.topic_centroids.astype(np.float64) @ emb
    assert int(np.argmax(cos)) == cat.topic[i]
    assert cos.max() > 0.95  # the centroid plus a little noise
    manifest = read_manifest(report.path)
    assert manifest["n_items"] == 1001
    assert manifest["probe"]["item"] == i
    assert manifest["policy"] == probe.policy.name == "probe[most_popular]"
    assert report.data["item"]["id"] == i
    assert report.data["item"]["title"] == ITEM.title


def test_add_items_fills_free_rows_and_grows_when_needed() -> None:
    from recoworld.config import WorldConfig
    from recoworld.world.synthetic import generate_catalog

    cat: Catalog = generate_catalog(WorldConfig(n_items=50), np.random.default_rng(0))
    cat.reserve(3)
    assert (cat.n_items, cat.n_live) == (53, 50)
    emb = np.eye(cat.embedding.shape[1], dtype=np.float32)[:2]
    ids = cat.add_items(
        title=["a", "b"],
        summary=["A", "B"],
        topic=[1, 2],
        embedding=emb,
        quality=0.7,
        stance=[-0.5, 0.5],
        created_tick=4,
        author=[7, 8],
        misinfo=True,
    )
    assert ids.tolist() == [50, 51]
    assert cat.n_items == 53  # reserved rows used, nothing appended
    assert cat.n_live == 52
    assert cat.title[50:52].tolist() == ["a", "b"]
    assert cat.topic[50:52].tolist() == [1, 2]
    assert cat.quality[50:52] == pytest.approx([0.7, 0.7])
    assert cat.author[50:52].tolist() == [7, 8]
    assert cat.creator[50:52].tolist() == [-1, -1]
    assert cat.misinfo[50:52].all()
    assert cat.clicks[50:52].tolist() == [0, 0]
    more = cat.add_items(
        title=["c", "d"],
        summary=["C", "D"],
        topic=0,
        embedding=emb,
        quality=0.5,
        stance=0.0,
        created_tick=5,
    )
    assert more.tolist() == [52, 53]
    assert (cat.n_items, cat.n_live) == (54, 54)  # one row was free, one appended
    assert not cat.misinfo[52:54].any()
    with pytest.raises(ValueError, match="embeddings of shape"):
        cat.add_items(
            title=["x"],
            summary=["X"],
            topic=0,
            embedding=emb,
            quality=0.5,
            stance=0.0,
            created_tick=0,
        )


# --------------------------------------------------------------------------- the wrapper


def _wrapper_rows(impressions: pd.DataFrame, item: int) -> pd.DataFrame:
    """Impressions the wrapper made: the item, slot 0, recommended, no score, propensity 1."""
    return impressions[
        (impressions["item"] == item)
        & (impressions["rank"] == 0)
        & (impressions["source"] == "rec")
        & impressions["score"].isna()
        & (impressions["propensity"] == 1.0)
    ]


def test_every_chosen_user_sees_the_item_in_slot_0_exactly_once(
    probed: tuple[Probe, Any],
) -> None:
    probe, report = probed
    run = read_run(report.path)
    sessions = run.sessions
    chosen = set(probe.chosen.tolist())
    assert len(chosen) == 80
    had_session = chosen & set(sessions["user"].tolist())
    assert had_session == chosen  # their sessions were started at tick 0
    wrapped = _wrapper_rows(run.impressions, probe.item_id)
    assert sorted(wrapped["user"].tolist()) == sorted(chosen)  # once each, nobody else
    assert (wrapped["tick"] == 0).all()
    assert probe.policy.served == dict.fromkeys(chosen, 0)
    assert report.data["segment"]["served"] == 80
    # The rest of a wrapped slate is the inner policy's: distinct items, the probe item once.
    first = run.impressions[run.impressions["tick"] == 0]
    for user in list(chosen)[:10]:
        page = first[first["user"] == user]
        assert page["item"].is_unique
        assert (page["item"] == probe.item_id).sum() == 1


def test_waiting_chosen_users_get_it_on_their_own_first_page(tmp_path: Path) -> None:
    probe = prepare_probe(ITEM, tmp_path / "wait", segment=SEGMENT, users=60, start_now=False)
    report = probe.run()
    run = read_run(report.path)
    imp = run.impressions
    chosen = set(probe.chosen.tolist())
    visited = chosen & set(imp["user"].tolist())
    assert 0 < len(visited) < len(chosen)  # two evening hours: not every one of them visits
    wrapped = _wrapper_rows(imp, probe.item_id)
    assert sorted(wrapped["user"].tolist()) == sorted(visited)
    first_tick = imp[imp["user"].isin(visited)].groupby("user")["tick"].min()
    assert wrapped.set_index("user")["tick"].sort_index().equals(first_tick.sort_index())
    assert report.data["segment"]["served"] == len(visited)
    assert report.group("chosen")["exposed"] >= len(visited)


def test_the_wrapper_removes_the_item_from_the_inner_slate() -> None:
    from recoworld.policies.base import Slates

    class Fixed:
        name = "fixed"
        wants_feedback = False

        def recommend(self, request: Any) -> Slates:
            items = np.array([[5, 9, 7, 3], [1, 2, 3, 4]], np.int32)
            return Slates(items, np.arange(8, dtype=np.float32).reshape(2, 4), np.ones((2, 4)))

        def update(self, feedback: Any) -> None:
            raise AssertionError("not called")

    class Request:
        tick, k, n = 6, 4, 2
        users = np.array([0, 1], np.int64)

    policy = ProbePolicy(Fixed(), item=9, users=np.array([0, 1]), n_users=3)
    slates = policy.recommend(Request())  # type: ignore[arg-type]
    assert slates.items.tolist() == [[9, 5, 7, 3], [9, 1, 2, 3]]
    assert np.isnan(slates.scores[:, 0]).all()
    assert slates.scores[:, 1:].tolist() == [[0, 2, 3], [4, 5, 6]]
    assert slates.propensities[:, 0].tolist() == [1.0, 1.0]
    assert policy.served == {0: 6, 1: 6}
    again = policy.recommend(Request())  # type: ignore[arg-type]
    assert again.items.tolist() == [[5, 9, 7, 3], [1, 2, 3, 4]]  # served: untouched
    assert policy.wants_feedback is False  # the inner policy's attributes show through
    assert policy.name == "probe[fixed]"


# --------------------------------------------------------------------------- the report


def test_group_numbers_are_the_trajectorys(probed: tuple[Probe, Any]) -> None:
    probe, report = probed
    run = read_run(report.path)
    item = probe.item_id
    imp = run.impressions[run.impressions["item"] == item]
    resp = run.responses[run.responses["item"] == item]
    chosen = set(probe.chosen.tolist())
    segment = set(probe.segment_users.tolist())
    for group, members in (
        ("chosen", chosen),
        ("control", set(range(2000)) - chosen),
        ("control_in_segment", segment - chosen),
    ):
        row = report.group(group)
        mine = resp[resp["user"].isin(members)]
        examined = mine["user"].nunique()
        clicked = mine.loc[mine["clicked"], "user"].nunique()
        shared = mine.loc[mine["shared"], "user"].nunique()
        assert row["users"] == len(members)
        assert row["exposed"] == imp.loc[imp["user"].isin(members), "user"].nunique()
        assert row["impressions"] == int(imp["user"].isin(members).sum())
        assert row["examined"] == examined
        assert row["clicked"] == clicked
        assert row["shared"] == shared
        assert row["click_rate"] == pytest.approx(clicked / examined)
        assert row["share_rate"] == pytest.approx(shared / examined)
        dwell = mine.loc[mine["clicked"], "dwell"].mean()
        assert row["mean_dwell"] == pytest.approx(dwell)
        social = imp[(imp["source"] == "social") & imp["user"].isin(members)]
        assert row["in_network"] == social["user"].nunique()
    # The chosen users all saw it first thing, and examined it (slot 0 is always looked at).
    assert report.group("chosen")["exposed"] == 80
    assert report.group("chosen")["examined"] == 80
    # Spread: the social table's shares of the item, and the world's own counters.
    social = run.social[(run.social["item"] == item) & (run.social["kind"] == "share")]
    spread = report.data["spread"]
    assert spread["shares"] == len(social)
    assert spread["adopters"] == social["user"].nunique()
    assert spread["reach"] == imp["user"].nunique()
    assert spread["cascades"] >= (1 if len(social) else 0)
    counters = report.data["item_counters"]
    assert counters["impressions"] == len(imp)
    assert counters["clicks"] == int(resp["clicked"].sum())
    assert counters["shares"] == len(social)
    # segments.csv holds the same rows; probe.json the same numbers.
    csv = pd.read_csv(report.path / "segments.csv")
    assert csv["group"].tolist()[:3] == ["chosen", "control", "control_in_segment"]
    assert csv["clicked"].tolist() == report.groups["clicked"].tolist()
    assert any(g.startswith("chosen[topic=") for g in csv["group"])
    on_disk = json.loads((report.path / "probe.json").read_text())
    assert on_disk == report.data
    # The --by breakdown partitions the chosen users.
    by = report.data["by"]["groups"]
    assert sum(g["users"] for g in by) == 80
    assert sum(g["clicked"] for g in by) == report.group("chosen")["clicked"]


def test_a_numeric_by_column_splits_the_chosen_users_into_quartiles(tmp_path: Path) -> None:
    report = run_probe(ITEM, tmp_path / "by", users=100, by="opinion", ticks=4)
    groups = report.data["by"]["groups"]
    assert [g["users"] for g in groups] == [25, 25, 25, 25]
    assert groups[0]["group"].startswith("chosen[opinion=(-")  # lowest quartile first
    assert sum(g["clicked"] for g in groups) == report.group("chosen")["clicked"]


def test_the_same_seed_gives_the_same_report(probed: tuple[Probe, Any], tmp_path: Path) -> None:
    _, first = probed
    again = run_probe(ITEM, tmp_path / "again", segment=SEGMENT, users=80, by="topic")
    assert (again.path / "probe.json").read_bytes() == (first.path / "probe.json").read_bytes()
    assert (again.path / "segments.csv").read_bytes() == (first.path / "segments.csv").read_bytes()


# --------------------------------------------------------------------------- the segment


def test_the_segment_is_exactly_the_users_satisfying_the_expression(
    probed: tuple[Probe, Any],
) -> None:
    from recoworld.rng import RngTree
    from recoworld.world.world import World

    probe, _ = probed
    config = probe.sim.config
    world = World.from_config(config, RngTree(config.seed))  # as it was before the run
    pop, cat = world.population, world.catalog
    frame = probe.frame
    expected = np.flatnonzero((pop.opinion0 > 0.2) & (pop.sociability > 0.3))
    assert probe.segment_users.tolist() == expected.tolist()
    assert set(probe.chosen.tolist()) <= set(expected.tolist())
    favourite = np.argmax(pop.taste @ cat.topic_centroids.T, axis=1)
    music = np.flatnonzero(favourite == cat.topic_names.index("music"))
    assert select_segment(frame, "topic == 'music'").tolist() == music.tolist()
    both = select_segment(frame, "topic in ['music', 'pets'] and not llm")
    pets = np.flatnonzero(favourite == cat.topic_names.index("pets"))
    assert both.tolist() == sorted([*music.tolist(), *pets.tolist()])
    followers = np.diff(world.graph.followers().indptr)
    assert (
        select_segment(frame, "followers >= 20").tolist()
        == np.flatnonzero(followers >= 20).tolist()
    )
    assert select_segment(frame, None).tolist() == list(range(2000))
    assert select_segment(frame, "age > 30").size == 0  # nobody has a persona here
    for column in ("opinion", "topic", "followers", "llm", "age", "occupation", "tags"):
        assert column in frame.columns


def test_persona_columns_come_from_the_llm_users() -> None:
    from recoworld._config import override
    from recoworld.rng import RngTree
    from recoworld.scenario import load_scenario
    from recoworld.users.llm import LLMUserModel
    from recoworld.users.numeric import NumericUserModel
    from recoworld.world.world import World

    config = override(
        load_scenario("default"),
        {"world.n_users": 200, "world.n_items": 300, "llm.users": [3, 5, 8]},
    )
    tree = RngTree(config.seed)
    world = World.from_config(config, tree)
    model = LLMUserModel(
        config, world, NumericUserModel(config.users), tree.generator("llm"), offline=True
    )
    frame = user_frame(world, model)
    assert select_segment(frame, "llm").tolist() == [3, 5, 8]
    ages = {u: model.minds[u].persona.age for u in (3, 5, 8)}
    older = [u for u, a in ages.items() if a is not None and a > 30]
    assert select_segment(frame, "llm and age > 30").tolist() == older
    job = model.minds[5].persona.occupation
    picked = select_segment(frame, f"occupation == '{job}'").tolist()
    assert 5 in picked
    assert all(model.minds[u].persona.occupation == job for u in picked)
    assert select_segment(frame, "tags.str.contains('synthetic')").tolist() == [3, 5, 8]


# --------------------------------------------------------------------------- errors


def test_bad_segments_say_what_is_wrong(probed: tuple[Probe, Any]) -> None:
    frame = probed[0].frame
    with pytest.raises(ProbeError, match=r"unknown column 'opinon'. Did you mean 'opinion'"):
        select_segment(frame, "opinon > 0.3")
    with pytest.raises(ProbeError, match=r"not a valid expression.*columns: user, activity"):
        select_segment(frame, "opinion >")
    with pytest.raises(ProbeError, match="expected a condition"):
        select_segment(frame, "opinion + 1")
    with pytest.raises(ProbeError, match="local variables"):
        select_segment(frame, "opinion > @x")


def test_bad_items_and_missing_files_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ProbeError, match="does not exist"):
        load_item(tmp_path / "nope.yaml")
    with pytest.raises(ProbeError, match=r"titel: unknown key. Did you mean 'title'"):
        parse_item({"titel": "x", "summary": "y", "topic": "music"})
    with pytest.raises(ProbeError, match="missing summary"):
        parse_item({"title": "x", "topic": "music"})
    with pytest.raises(ProbeError, match=r"quality: expected a number in \[0, 1\]"):
        parse_item({"title": "x", "summary": "y", "topic": "music", "quality": 1.5})
    with pytest.raises(ProbeError, match="misinfo: expected"):
        parse_item({"title": "x", "summary": "y", "topic": "music", "misinfo": "yes"})
    bad = ProbeItem(title="x", summary="y", topic="musik", overrides=dict(SMALL))
    out = tmp_path / "out"
    with pytest.raises(ProbeError, match=r"'musik' is not a topic.*Did you mean 'music'.*cooking"):
        run_probe(bad, out)
    assert not out.exists()  # nothing was started
    with pytest.raises(ProbeError, match="matches no user"):
        run_probe(ITEM, out, segment="opinion > 5")
    assert not out.exists()  # the folder the failed probe made is gone again
    with pytest.raises(ConfigError, match=r"world\.n_user"):
        run_probe(
            ProbeItem(title="x", summary="y", topic="music", overrides={"world.n_user": 5}), out
        )
    assert issubclass(ProbeError, RecoworldError)


def test_the_command_prints_one_line_for_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = _parser()
    item = _write_item(tmp_path / "item.yaml", topic="musicc")
    code = probe_main(parser.parse_args(["probe", str(item), "--out", str(tmp_path / "o")]))
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("recoworld: error: topic 'musicc' is not a topic")
    assert len(err.splitlines()) == 1
    missing = parser.parse_args(["probe", str(tmp_path / "missing.yaml")])
    assert probe_main(missing) == 2
    assert "does not exist" in capsys.readouterr().err
    item = _write_item(tmp_path / "item2.yaml")
    args = parser.parse_args(["probe", str(item), "--segment", "sociabilty > 1", "-q"])
    assert probe_main(args) == 2
    assert "Did you mean 'sociability'" in capsys.readouterr().err


def test_the_command_runs_and_writes_its_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    item = _write_item(tmp_path / "item.yaml")
    out = tmp_path / "cli"
    args = _parser().parse_args(
        [
            *("probe", str(item), "--segment", "topic == 'cooking'", "--users", "30"),
            *("--out", str(out), "--by", "llm", "--ticks", "24", "--set", "feed.slate_size=8"),
            "-q",
        ]
    )
    assert args.func is probe_main
    assert probe_main(args) == 0
    printed = capsys.readouterr().out
    for text in ("recoworld probe", "click_rate", "control", "spread", "Probe folder"):
        assert text in printed
    data = json.loads((out / "probe.json").read_text())
    assert data["ticks"] == 24
    assert data["segment"]["chosen"] == 30
    assert data["status"] == "completed"
    assert read_manifest(out)["config"]["feed"]["slate_size"] == 8
    json_args = _parser().parse_args(
        ["probe", str(item), "--users", "5", "--out", str(tmp_path / "j"), "--json", "--ticks", "6"]
    )
    assert probe_main(json_args) == 0
    assert json.loads(capsys.readouterr().out)["segment"]["chosen"] == 5


def test_a_scenario_file_is_found_beside_the_item_file(tmp_path: Path) -> None:
    from recoworld.probe import probe_config

    (tmp_path / "mine.yaml").write_text("name: mine\nworld:\n  n_users: 321\n")
    item = load_item(_write_item(tmp_path / "item.yaml", scenario="mine.yaml", set={}))
    config = probe_config(item)
    assert (config.name, config.world.n_users) == ("mine", 321)
    assert config.clock.n_ticks == config.clock.ticks_per_day  # one day by default
    assert probe_config(item, {"clock.days": 2}).clock.n_ticks == 2 * 288
    assert probe_config(item, {"clock.days": 2}, ticks=7).clock.n_ticks == 7
    assert probe_config(item, seed=11).seed == 11
    assert probe_config(item).seed == 3  # the item's


def test_the_shipped_example_item_parses() -> None:
    item = load_item(ROOT / "envs" / "probes" / "example-item.yaml")
    assert item.topic == "cooking"
    from recoworld.scenario import list_scenarios

    assert "example-item" not in {s.name for s in list_scenarios()}


# --------------------------------------------------------------------------- behaviour


def test_fans_of_the_items_topic_click_it_more_than_other_users(tmp_path: Path) -> None:
    item = ProbeItem(
        title="Live session",
        summary="An intimate live session.",
        topic="music",
        quality=0.95,
        spread=0.0,
        seed=1,
        overrides={**SMALL, "clock.ticks": 6},
    )
    fans = run_probe(item, tmp_path / "fans", segment="topic == 'music'", users=150)
    others = run_probe(item, tmp_path / "others", segment="topic != 'music'", users=150)
    fan_rate = fans.group("chosen")["click_rate"]
    other_rate = others.group("chosen")["click_rate"]
    assert fans.group("chosen")["examined"] >= 140
    assert others.group("chosen")["examined"] >= 140
    assert fan_rate > other_rate + 0.2, (fan_rate, other_rate)


# --------------------------------------------------------------------------- LLM users

_TITLE = re.compile(r'^(\d+)\. \[\w+\] "([^"]*)"')


def _commenting(body: dict[str, Any]) -> str:
    """A scripted model that comments on the probe item and skips everything else."""
    messages = body["messages"]
    if "reflection" in messages[0]["content"]:
        return json.dumps({"reflection": "Bread is life."})
    feed = messages[1]["content"].split("\n# Feed\n", 1)[1]
    items = []
    for line in feed.strip().splitlines():
        match = _TITLE.match(line)
        if match is None:
            continue
        if match.group(2) == ITEM.title:
            items.append({"action": "comment", "comment": "Saving this one!", "why": "bread"})
        else:
            items.append({"action": "skip", "why": "not now"})
    reply: dict[str, Any] = {"items": items, "mood": 4, "instruction": None}
    reply.update(more=None, less=None)
    schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema", {})
    if "stance" in schema.get("required", []):
        reply["stance"] = 0.0
    return json.dumps(reply)


def _llm_overrides(url: str, model: str) -> dict[str, Any]:
    return {
        "world.n_users": 60,
        "world.n_items": 300,
        "llm.users": [4, 9, 17, 23],
        "llm.client.model": model,
        "llm.client.base_urls": [url],
        "llm.client.backoff_s": 0.05,
        "feed.slate_size": 4,
        "feed.rule": "none",
    }


def test_llm_users_comments_on_the_item_are_collected(tmp_path: Path) -> None:
    with StubServer(reply=_commenting) as stub:
        report = run_probe(
            ITEM,
            tmp_path / "llm",
            segment="llm",
            users=3,
            overrides={**_llm_overrides(stub.base_url, "stub"), "llm.client.timeout_s": 5.0},
            ticks=4,
        )
    chosen = report.data["chosen_users"]
    assert len(chosen) == 3
    assert set(chosen) <= {4, 9, 17, 23}
    comments = report.data["llm"]["comments"]
    assert {c["user"] for c in comments if c["chosen"]} == set(chosen)
    assert all(c["text"] == "Saving this one!" and c["action"] == "comment" for c in comments)
    assert {c["user"] for c in comments if c["tick"] == 0} == set(chosen)  # on their first page
    assert all(r["text"] == "bread" for r in report.data["llm"]["rationales"])
    row = report.group("chosen")
    assert row["commented"] == 3
    assert row["comment_rate"] == 1.0


def test_llm_users_on_a_real_llama_server(tmp_path: Path) -> None:
    from tests.test_llm_server import Server

    # stories260K tokenizes almost per character: a long context and a generous reply budget.
    server = Server("stories260K.gguf", tmp_path / "probe-llama.log", n_ctx=8192)
    try:
        overrides = {
            **_llm_overrides(server.url, "tiny"),
            "llm.context_tokens": 8192,
            "llm.reply_tokens_per_item": 160,
            "llm.client.seed": 7,
            "llm.client.timeout_s": 60,
        }
        report = run_probe(
            ITEM, tmp_path / "llama", segment="llm", users=3, overrides=overrides, ticks=3
        )
    finally:
        server.stop()
    assert report.status == "completed"
    assert report.group("chosen")["examined"] == 3
    calls = read_run(report.path).llm_calls
    assert (calls["purpose"] == "page").sum() >= 3
    said = report.data["llm"]
    for entry in [*said["comments"], *said["rationales"]]:  # whatever the tiny model wrote
        assert entry["user"] in {4, 9, 17, 23}
        assert isinstance(entry["text"], str)
        assert entry["text"]
    responses = read_run(report.path).responses
    mine = responses[responses["item"] == report.data["item"]["id"]]
    commenters = set(mine.loc[mine["commented"], "user"].tolist())
    assert {c["user"] for c in said["comments"]} <= commenters
