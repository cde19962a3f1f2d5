"""Strict config parsing (recoworld._config), the frozen config dataclasses and scenario loading."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from recoworld._config import from_mapping, override, to_mapping
from recoworld.config import (
    DEFAULT_DIURNAL,
    ClockConfig,
    FeedConfig,
    GraphConfig,
    PolicyConfig,
    RecordConfig,
    ScenarioConfig,
    UserModelConfig,
    WorldConfig,
)
from recoworld.errors import ConfigError, RecoworldError, ScenarioNotFoundError
from recoworld.scenario import list_scenarios, load_scenario, parse_scenario, scenario_dir

ENVS = Path(__file__).resolve().parents[1] / "envs"


def config_error(data: Any) -> str:
    """The message of the ConfigError that parsing ``data`` as a scenario raises."""
    with pytest.raises(ConfigError) as info:
        parse_scenario(data)
    return str(info.value)


# -- unknown keys --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "dotted", "suggestion"),
    [
        ({"world": {"n_userz": 5}}, "world.n_userz", "n_users"),
        ({"world": {"graph": {"homophilly": 0.5}}}, "world.graph.homophilly", "homophily"),
        ({"users": {"patience_mea": 0.5}}, "users.patience_mea", "patience_mean"),
        ({"feed": {"slate_sise": 5}}, "feed.slate_sise", "slate_size"),
        ({"clock": {"tick_minute": 5}}, "clock.tick_minute", "tick_minutes"),
        ({"sed": 1}, "sed", "seed"),
        ({"wrold": {}}, "wrold", "world"),
    ],
)
def test_unknown_key_names_dotted_key_and_suggests_close_match(
    data: dict[str, Any], dotted: str, suggestion: str
) -> None:
    message = config_error(data)
    assert f"{dotted}: unknown key" in message
    assert f"Did you mean '{suggestion}'?" in message


def test_unknown_key_without_close_match_lists_the_expected_keys() -> None:
    message = config_error({"feed": {"zzzzzz": 1}})
    assert "feed.zzzzzz: unknown key" in message
    assert "Did you mean" not in message
    expected = [f.name for f in dataclasses.fields(FeedConfig)]
    for name in expected:
        assert name in message


def test_parse_scenario_prefixes_the_source() -> None:
    with pytest.raises(ConfigError, match=r"^my-source: world\.n_userz: unknown key"):
        parse_scenario({"world": {"n_userz": 1}}, source="my-source")


def test_config_error_is_a_value_error_and_a_recoworld_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_scenario({"seed": -1})
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, RecoworldError)


# -- wrong types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "dotted", "expected"),
    [
        ({"world": {"n_users": "100"}}, "world.n_users", "an integer"),
        ({"world": {"n_users": True}}, "world.n_users", "an integer"),
        ({"world": {"n_users": 10.5}}, "world.n_users", "an integer"),
        ({"world": {"n_users": None}}, "world.n_users", "an integer"),
        ({"seed": "zero"}, "seed", "an integer"),
        ({"clock": {"days": "one"}}, "clock.days", "a number"),
        ({"clock": {"days": False}}, "clock.days", "a number"),
        ({"users": {"w_taste": [1.0]}}, "users.w_taste", "a number"),
        ({"name": 3}, "name", "a string"),
        ({"world": [1, 2]}, "world", "a mapping"),
        ({"world": "big"}, "world", "a mapping"),
        ({"world": {"graph": 3}}, "world.graph", "a mapping"),
        ({"policy": {"params": [1]}}, "policy.params", "a mapping"),
        ({"world": {"topics": "abc"}}, "world.topics", "a list of str"),
        ({"world": {"topics": {"a": 1}}}, "world.topics", "a list of str"),
        ({"world": {"topics": ["a", 2]}}, "world.topics[1]", "a string"),
        ({"clock": {"diurnal": [1.0] * 23 + ["x"]}}, "clock.diurnal[23]", "a number"),
        ({"feed": {"rule": "Interleave"}}, "feed.rule", "one of 'interleave', 'append', 'none'"),
        ({"world": {"graph": {"kind": "random"}}}, "world.graph.kind", "one of 'homophilous'"),
        ({"record": {"compression": "lz4"}}, "record.compression", "one of 'zstd'"),
    ],
)
def test_wrong_type_names_key_and_expectation(
    data: dict[str, Any], dotted: str, expected: str
) -> None:
    message = config_error(data)
    assert f"{dotted}: expected {expected}" in message


def test_whole_float_is_accepted_as_int() -> None:
    cfg = parse_scenario({"world": {"n_users": 250.0}})
    assert cfg.world.n_users == 250
    assert type(cfg.world.n_users) is int


def test_int_is_accepted_as_float_and_lists_become_tuples() -> None:
    cfg = parse_scenario({"clock": {"days": 2, "diurnal": [1] * 24}})
    assert cfg.clock.days == 2.0
    assert type(cfg.clock.days) is float
    assert cfg.clock.diurnal == (1.0,) * 24
    assert all(type(v) is float for v in cfg.clock.diurnal)


def test_top_level_must_be_a_mapping() -> None:
    message = config_error([1, 2])
    assert "expected a mapping" in message


# -- impossible values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "dotted"),
    [
        ({"world": {"n_users": -1}}, "world.n_users"),
        ({"world": {"n_users": 0}}, "world.n_users"),
        ({"world": {"n_items": 0}}, "world.n_items"),
        ({"world": {"topics": ["only"]}}, "world.topics"),
        ({"world": {"topics": ["a", "a"]}}, "world.topics"),
        ({"world": {"embedding_dim": 1}}, "world.embedding_dim"),
        ({"world": {"taste_concentration": 0}}, "world.taste_concentration"),
        ({"world": {"item_spread": -0.1}}, "world.item_spread"),
        ({"world": {"graph": {"homophily": 1.5}}}, "world.graph.homophily"),
        ({"world": {"graph": {"mean_degree": -2}}}, "world.graph.mean_degree"),
        ({"world": {"graph": {"mean_degree": math.inf}}}, "world.graph.mean_degree"),
        ({"world": {"graph": {"rewire": -0.01}}}, "world.graph.rewire"),
        ({"users": {"patience_mean": 1.5}}, "users.patience_mean"),
        ({"users": {"attention": math.nan}}, "users.attention"),
        ({"users": {"temperature": 0}}, "users.temperature"),
        ({"users": {"w_taste": -1}}, "users.w_taste"),
        ({"users": {"max_instructions": -1}}, "users.max_instructions"),
        ({"users": {"intent_pages": 0}}, "users.intent_pages"),
        ({"users": {"memory_size": 2000}}, "users.memory_size"),
        ({"clock": {"tick_minutes": 7}}, "clock.tick_minutes"),
        ({"clock": {"tick_minutes": 0}}, "clock.tick_minutes"),
        ({"clock": {"days": 0}}, "clock.days"),
        ({"clock": {"ticks": -1}}, "clock.ticks"),
        ({"clock": {"start_hour": 24}}, "clock.start_hour"),
        ({"clock": {"diurnal": [1.0] * 23}}, "clock.diurnal"),
        ({"clock": {"diurnal": [1.0] * 25}}, "clock.diurnal"),
        ({"clock": {"diurnal": [0.0] * 24}}, "clock.diurnal"),
        ({"clock": {"diurnal": [-1.0] + [1.0] * 23}}, "clock.diurnal"),
        ({"feed": {"n_candidates": 5}}, "feed.n_candidates"),
        ({"feed": {"slate_size": 0}}, "feed.slate_size"),
        ({"feed": {"social_every": 0}}, "feed.social_every"),
        ({"feed": {"social_slots": -1}}, "feed.social_slots"),
        ({"feed": {"inbox_size": 0}}, "feed.inbox_size"),
        ({"policy": {"name": ""}}, "policy.name"),
        ({"record": {"flush_rows": 0}}, "record.flush_rows"),
        ({"seed": -1}, "seed"),
        ({"name": "has space"}, "name"),
        ({"name": ""}, "name"),
    ],
)
def test_impossible_value_names_the_key(data: dict[str, Any], dotted: str) -> None:
    message = config_error(data)
    assert re.search(rf"(^|: ){re.escape(dotted)}: expected ", message), message


def test_n_candidates_message_mentions_slate_size() -> None:
    message = config_error({"feed": {"slate_size": 20, "n_candidates": 10}})
    assert "feed.n_candidates: expected an integer >= slate_size (20), got 10" in message


def test_impossible_value_error_from_direct_construction() -> None:
    with pytest.raises(ConfigError, match=r"^tick_minutes: expected .*1440.*got 7$"):
        ClockConfig(tick_minutes=7)
    with pytest.raises(ConfigError, match=r"^patience_mean: expected a number in \[0, 1\]"):
        UserModelConfig(patience_mean=1.5)


@pytest.mark.parametrize("minutes", [1, 2, 3, 5, 10, 15, 30, 60, 90, 120, 1440])
def test_tick_minutes_dividing_a_day_are_accepted(minutes: int) -> None:
    clock = ClockConfig(tick_minutes=minutes)
    assert clock.ticks_per_day * minutes == 1440


def test_clock_n_ticks_from_days_or_ticks() -> None:
    assert ClockConfig(tick_minutes=10, days=2.0).n_ticks == 288
    assert ClockConfig(tick_minutes=10, days=2.0, ticks=7).n_ticks == 7
    assert ClockConfig(tick_minutes=60, days=0.001).n_ticks == 1


@pytest.mark.parametrize(
    "diurnal",
    [(1.0, math.nan) + (1.0,) * 22, (1.0,) * 23 + (math.inf,)],
    ids=["nan-second", "inf-last"],
)
def test_non_finite_diurnal_weights_are_rejected(diurnal: tuple[float, ...]) -> None:
    with pytest.raises(ConfigError, match="diurnal"):
        ClockConfig(diurnal=diurnal)


# -- defaults, round trips, frozen ----------------------------------------------------------


ALL_CONFIGS = [
    GraphConfig,
    WorldConfig,
    ClockConfig,
    UserModelConfig,
    FeedConfig,
    PolicyConfig,
    RecordConfig,
    ScenarioConfig,
]


@pytest.mark.parametrize("cls", ALL_CONFIGS, ids=lambda c: c.__name__)
def test_defaults_round_trip(cls: type) -> None:
    cfg = cls()
    data = to_mapping(cfg)
    assert isinstance(data, dict)
    assert from_mapping(cls, data) == cfg
    assert from_mapping(cls, {}) == cfg


def test_to_mapping_is_plain_yaml_data() -> None:
    cfg = ScenarioConfig(policy=PolicyConfig(name="random", params={"alpha": (1, 2)}))
    data = to_mapping(cfg)
    assert data["clock"]["diurnal"] == list(DEFAULT_DIURNAL)
    assert data["world"]["graph"]["kind"] == "homophilous"
    assert data["policy"]["params"] == {"alpha": [1, 2]}
    # Survives a YAML dump/load and parses back to an equal config.
    reloaded = yaml.safe_load(yaml.safe_dump(data))
    assert reloaded == data
    assert parse_scenario(reloaded) == ScenarioConfig(
        policy=PolicyConfig(name="random", params={"alpha": [1, 2]})
    )


def test_non_default_round_trip() -> None:
    cfg = ScenarioConfig(
        name="x.y-z_1",
        seed=9,
        world=WorldConfig(
            n_users=17,
            topics=("a", "b", "c"),
            graph=GraphConfig(kind="watts_strogatz", mean_degree=4.0, rewire=0.3),
        ),
        clock=ClockConfig(tick_minutes=30, ticks=5, diurnal=tuple(float(i) for i in range(24))),
        users=UserModelConfig(patience_mean=0.9, max_instructions=0),
        feed=FeedConfig(slate_size=3, n_candidates=3, rule="append"),
        policy=PolicyConfig(name="random", params={"eps": 0.1}),
        record=RecordConfig(compression="none"),
    )
    assert from_mapping(ScenarioConfig, to_mapping(cfg)) == cfg
    assert from_mapping(ScenarioConfig, to_mapping(cfg)) != ScenarioConfig()


def test_from_mapping_accepts_dataclass_instances_for_sections() -> None:
    world = WorldConfig(n_users=42)
    cfg = from_mapping(ScenarioConfig, {"world": world})
    assert cfg.world is world


@pytest.mark.parametrize(
    ("cfg", "attribute", "value"),
    [
        (ScenarioConfig(), "seed", 1),
        (WorldConfig(), "n_users", 3),
        (GraphConfig(), "kind", "none"),
        (ClockConfig(), "tick_minutes", 10),
        (UserModelConfig(), "w_taste", 0.0),
        (FeedConfig(), "rule", "none"),
        (PolicyConfig(), "name", "random"),
        (RecordConfig(), "flush_rows", 1),
    ],
    ids=lambda v: type(v).__name__ if dataclasses.is_dataclass(v) else None,
)
def test_configs_are_frozen(cfg: Any, attribute: str, value: Any) -> None:
    before = getattr(cfg, attribute)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(cfg, attribute, value)
    assert getattr(cfg, attribute) == before


def test_nested_section_is_frozen() -> None:
    cfg = ScenarioConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.world.graph.mean_degree = 3.0  # type: ignore[misc]


def test_configs_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        FeedConfig(5)  # type: ignore[misc]


# -- override ------------------------------------------------------------------------------


def test_override_dotted_keys() -> None:
    base = ScenarioConfig()
    cfg = override(
        base,
        {
            "world.n_users": 1000,
            "seed": 3,
            "world.graph.kind": "none",
            "clock.diurnal": [2] * 24,
            "policy.params": {"k": 1},
        },
    )
    assert cfg.world.n_users == 1000
    assert cfg.seed == 3
    assert cfg.world.graph.kind == "none"
    assert cfg.clock.diurnal == (2.0,) * 24
    assert cfg.policy.params == {"k": 1}
    # Everything else is untouched, and the original is unchanged.
    assert cfg.world.n_items == base.world.n_items
    assert cfg.users == base.users
    assert cfg.feed == base.feed
    assert base.world.n_users == 10_000
    assert base.seed == 0


def test_override_with_no_updates_is_equal_copy() -> None:
    cfg = ScenarioConfig(seed=5)
    assert override(cfg, {}) == cfg


def test_override_works_on_a_section() -> None:
    feed = override(FeedConfig(), {"slate_size": 4, "n_candidates": 4})
    assert (feed.slate_size, feed.n_candidates) == (4, 4)


@pytest.mark.parametrize(
    ("updates", "pattern"),
    [
        ({"world.n_users": -3}, r"world\.n_users: expected an integer >= 1, got -3"),
        ({"world.n_users": "many"}, r"world\.n_users: expected an integer"),
        ({"users.patience_mean": 1.5}, r"users\.patience_mean: expected a number in \[0, 1\]"),
        ({"clock.tick_minutes": 7}, r"clock\.tick_minutes: expected"),
        ({"feed.n_candidates": 2}, r"feed\.n_candidates: expected"),
        ({"world.n_userz": 3}, r"world\.n_userz: unknown key\. Did you mean 'n_users'\?"),
        ({"wrld.n_users": 3}, r"wrld: unknown section \(in override 'wrld\.n_users'\)"),
        ({"seed.x": 3}, r"seed: unknown section"),
        ({"world.graph.x.y": 3}, r"world\.graph\.x: unknown section"),
    ],
)
def test_override_validates(updates: dict[str, Any], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        override(ScenarioConfig(), updates)


# -- scenarios -----------------------------------------------------------------------------


SHIPPED = sorted(p.stem for p in ENVS.glob("*.yaml"))


def test_there_are_shipped_scenarios() -> None:
    assert {"default", "retention", "social"} <= set(SHIPPED)
    # The checkout's envs/ or the copy packed into the wheel: the same scenarios either way.
    assert sorted(p.stem for p in scenario_dir().glob("*.yaml")) == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_scenario_loads(name: str) -> None:
    by_name = load_scenario(name)
    by_path = load_scenario(ENVS / f"{name}.yaml")
    by_str_path = load_scenario(str(ENVS / f"{name}.yaml"))
    assert isinstance(by_name, ScenarioConfig)
    assert by_name == by_path == by_str_path
    assert by_name.name == name
    assert by_name.description
    # The file's values are really used (not just the defaults).
    raw = yaml.safe_load((ENVS / f"{name}.yaml").read_text(encoding="utf-8"))
    for section, values in raw.items():
        if isinstance(values, dict):
            for key, value in values.items():
                if not isinstance(value, dict):
                    assert getattr(getattr(by_name, section), key) == value, (section, key)


def test_shipped_scenarios_have_their_documented_values() -> None:
    social = load_scenario("social")
    assert social.world.graph.mean_degree == 25.0
    assert social.feed.social_slots == 4
    assert social.feed.inbox_size == 16
    retention = load_scenario("retention")
    assert retention.clock.tick_minutes == 10
    assert retention.clock.n_ticks == 7 * 144


def test_load_scenario_default_argument() -> None:
    assert load_scenario() == load_scenario("default")


def test_list_scenarios() -> None:
    infos = list_scenarios()
    assert [i.name for i in infos] == SHIPPED
    for info in infos:
        assert info.path.is_file()
        assert info.description == load_scenario(info.name).description


@pytest.mark.parametrize(
    "name", ["nope", "envs/nope.yaml", "nope.yaml", "nope.yml", "some/dir/default"]
)
def test_missing_scenario_raises_not_found(name: str) -> None:
    with pytest.raises(ScenarioNotFoundError) as info:
        load_scenario(name)
    assert isinstance(info.value, FileNotFoundError)
    assert isinstance(info.value, RecoworldError)
    assert name in str(info.value)


def test_missing_scenario_name_suggests_close_match() -> None:
    with pytest.raises(ScenarioNotFoundError, match="Did you mean 'default'\\?"):
        load_scenario("defualt")


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_file_loads_and_takes_its_name_from_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 4\nworld:\n  n_users: 30\n", "tiny-world.yaml")
    cfg = load_scenario(path)
    assert cfg.name == "tiny-world"
    assert cfg.seed == 4
    assert cfg.world.n_users == 30
    assert cfg.world.n_items == WorldConfig().n_items


def test_explicit_name_in_file_wins(tmp_path: Path) -> None:
    path = write(tmp_path, "name: other\n")
    assert load_scenario(path).name == "other"


def test_empty_yaml_file_gives_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    assert load_scenario(path) == ScenarioConfig(name="scenario")


def test_yaml_with_unknown_key_names_the_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "world:\n  n_userz: 10\n")
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    message = str(info.value)
    assert str(path) in message
    assert "world.n_userz: unknown key" in message
    assert "Did you mean 'n_users'?" in message


def test_yaml_with_impossible_value_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "clock:\n  tick_minutes: 7\n")
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert str(path) in str(info.value)
    assert "clock.tick_minutes" in str(info.value)


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "world: [1, 2\nseed: {\n")
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    message = str(info.value)
    assert str(path) in message
    assert "not valid YAML" in message
    assert "\n" not in message


@pytest.mark.parametrize("text", ["- 1\n- 2\n", "just a string\n", "42\n"])
def test_yaml_top_level_not_a_mapping_names_the_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert str(path) in str(info.value)
    assert "expected a mapping" in str(info.value)


def test_world_seed_fixes_the_world_across_run_seeds() -> None:
    from recoworld.world.world import World

    base = override(load_scenario("default"), {"world.n_users": 200, "world.n_items": 300})
    fixed = [World.synthetic(override(base, {"seed": s, "world.seed": 7})) for s in (0, 1)]
    free = [World.synthetic(override(base, {"seed": s})) for s in (0, 1)]
    assert (fixed[0].catalog.embedding == fixed[1].catalog.embedding).all()
    assert (fixed[0].population.taste == fixed[1].population.taste).all()
    assert not (free[0].population.taste == free[1].population.taste).all()
    with pytest.raises(ConfigError, match=r"world\.seed"):
        override(base, {"world.seed": -1})


def test_override_copies_the_values_it_is_given() -> None:
    from recoworld.config import override
    from recoworld.scenario import load_scenario

    params = {"base": "mf"}
    config = override(load_scenario("default"), {"policy.params": params, "policy.params.lam": 0.3})
    assert params == {"base": "mf"}
    assert config.policy.params == {"base": "mf", "lam": 0.3}
