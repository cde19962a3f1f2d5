"""Social-phenomenon experiments: the registry, the runner's files, the CLI, and the
cascade-theory acceptance check (independent cascade on Erdős–Rényi against S = 1 − exp(−cpS))."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recoworld.cli import main
from recoworld.errors import ConfigError
from recoworld.experiments import (
    EXPERIMENTS,
    Experiment,
    get_experiment,
    list_experiments,
    run_experiment,
)
from recoworld.experiments.base import resolve, split_overrides
from recoworld.scenario import load_scenario
from recoworld.social.classic import giant_fraction

# A cascade-theory world small enough for shape and determinism checks.
SMALL_CASCADE = {"world.n_users": 2000, "params.runs": 40}
# A filter-bubble world small enough to run in seconds.
TINY_BUBBLE = [
    "world.n_users=300",
    "world.n_items=400",
    "clock.days=0.5",
    "params.window_hours=3",
]


# -- registry ------------------------------------------------------------------------------


def test_registry_lists_the_shipped_experiments() -> None:
    names = [e.name for e in list_experiments()]
    assert names[:2] == ["cascade-theory", "filter-bubble"]
    assert names == list(EXPERIMENTS)


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_experiment_is_well_formed(name: str) -> None:
    exp = get_experiment(name)
    assert isinstance(exp, Experiment)
    assert exp.name == name
    assert exp.description
    assert "\n" not in exp.description
    assert exp.conditions
    assert exp.summary_metrics
    base = load_scenario(exp.scenario)  # a shipped scenario, loadable by `recoworld run`
    assert base.name == exp.scenario
    from recoworld._config import override

    for label in exp.conditions:
        scenario_set, condition = resolve(exp, label, {})
        assert condition.label == label
        assert set(condition.params) == set(exp.params)
        exp.check(override(base, scenario_set), condition)


def test_unknown_experiment_suggests_a_name() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'cascade-theory'"):
        get_experiment("cascade-theroy")
    with pytest.raises(ConfigError, match="Experiments: cascade-theory, filter-bubble"):
        get_experiment("zzz")


def test_parameters_are_declared_and_typed() -> None:
    exp = get_experiment("cascade-theory")
    assert split_overrides(exp, {"params.runs": 10, "world.n_users": 5}) == (
        {"world.n_users": 5},
        {"runs": 10},
    )
    assert split_overrides(exp, {"params.p": 1})[1] == {"p": 1.0}  # an int for a float
    with pytest.raises(ConfigError, match=r"Did you mean 'params\.runs'"):
        split_overrides(exp, {"params.run": 10})
    with pytest.raises(ConfigError, match=r"params\.runs: expected int"):
        split_overrides(exp, {"params.runs": "many"})
    # the command line wins over the condition's own value
    _, condition = resolve(exp, "p=0.3", {"params.p": 0.4})
    assert condition.params["p"] == 0.4


# -- the CLI -------------------------------------------------------------------------------


def test_cli_lists_experiments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["experiment", "--list"]) == 0
    out = capsys.readouterr().out
    for exp in list_experiments():
        assert exp.name in out


def test_cli_unknown_name_exits_2_with_a_suggestion(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["experiment", "filter-bubbel", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "Did you mean 'filter-bubble'" in err[0]
    assert main(["experiment"]) == 2
    assert "--list" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("world.n_userz=5", "Did you mean 'n_users'"),
        ("params.windows_hours=3", "Did you mean 'params.window_hours'"),
        ("params.window_hours=0.1", "whole number of ticks"),
        ("policy.params.lam=0.3", "policy"),  # random takes no lam: fails before any run
    ],
)
def test_cli_bad_settings_fail_before_any_run(
    setting: str, message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ["experiment", "filter-bubble", "--set", setting, "--out", str(out), "-q"]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
    # nothing leaked into the experiment's own condition table
    assert get_experiment("filter-bubble").conditions["similarity"]["policy.params"] == {}


def test_cli_refuses_a_folder_that_is_not_an_experiment(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("precious")
    args = ["experiment", "cascade-theory", "--seeds", "1", "--out", str(tmp_path), "-q"]
    args += ["--set", "world.n_users=200", "--set", "params.runs=5"]
    assert main(args) == 2
    assert (tmp_path / "thesis.tex").read_text() == "precious"


def test_tiny_filter_bubble_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fb"
    args = ["experiment", "filter-bubble", "--seeds", "2", "--jobs", "2", "--out", str(out), "-q"]
    for setting in TINY_BUBBLE:
        args += ["--set", setting]
    assert main(args) == 0
    printed = capsys.readouterr().out
    for label in ("similarity", "random", "diversified"):
        assert label in printed
    assert str(out.resolve()) in printed

    results = pd.read_csv(out / "results.csv")
    assert len(results) == 2 * 3
    assert list(results.columns[:3]) == ["experiment", "condition", "seed"]
    assert list(results["condition"]) == ["similarity"] * 2 + ["random"] * 2 + ["diversified"] * 2
    assert list(results["seed"]) == [0, 1] * 3
    assert set(results["policy"]) == {"itemknn", "random", "mmr[itemknn]"}
    exp = get_experiment("filter-bubble")
    for name in exp.summary_metrics:
        assert results[name].notna().all(), name
    entropy = results[["bubble/entropy_first", "bubble/entropy_last"]].to_numpy()
    assert ((entropy >= 0) & (entropy <= 1)).all()

    series = pd.read_csv(out / "series.csv")
    assert {"condition", "seed", "window", "hours", "entropy", "homogenization"} <= set(series)
    assert (series.groupby(["condition", "seed"]).size() == 4).all()  # 12 hours / 3-hour windows

    summary = (out / "summary.md").read_text()
    assert "| metric | similarity | random | diversified |" in summary
    assert "| bubble/entropy_drift |" in summary
    assert " ± " in summary
    assert (out / "plots" / "entropy_homogenization.png").stat().st_size > 5_000
    manifest = json.loads((out / "experiment.json").read_text())
    assert manifest["conditions"]["diversified"]["set"]["policy.name"] == "mmr"
    assert manifest["overrides"]["world.n_users"] == 300
    assert not (out / "runs").exists()  # trajectories deleted unless params.keep_runs

    # The same seeds on one process give the same rows (runs are deterministic).
    again = run_experiment(
        "filter-bubble",
        seeds=2,
        out=tmp_path / "serial",
        overrides=_parsed(TINY_BUBBLE),
        progress=False,
    )
    first = pd.read_csv(out / "results.csv")
    pd.testing.assert_frame_equal(first, again, check_dtype=False)


def _parsed(settings: list[str]) -> dict[str, object]:
    import yaml

    return {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in settings)}


# -- results files and determinism ---------------------------------------------------------


def test_results_have_one_row_per_seed_and_condition(tmp_path: Path) -> None:
    frame = run_experiment(
        "cascade-theory", seeds=3, out=tmp_path, overrides=SMALL_CASCADE, progress=False
    )
    assert len(frame) == 3 * 3
    assert list(frame.columns[:3]) == ["experiment", "condition", "seed"]
    assert (frame.groupby("condition").size() == 3).all()
    assert pd.read_csv(tmp_path / "results.csv").shape == frame.shape
    series = pd.read_csv(tmp_path / "series.csv")
    assert len(series) == 3 * 3 * 40  # one row per cascade
    assert (tmp_path / "plots" / "theory_vs_simulation.png").stat().st_size > 5_000
    assert (tmp_path / "plots" / "final_size_distribution.png").stat().st_size > 5_000
    # each seed is its own graph; the conditions of a seed share it and their sources
    degrees = frame.pivot(index="seed", columns="condition", values="graph/mean_degree")
    assert (degrees.nunique(axis=1) == 1).all()
    assert degrees.iloc[:, 0].nunique() == 3
    sources = series.pivot_table(index=["seed", "run"], columns="condition", values="source")
    assert (sources.nunique(axis=1) == 1).all()


def test_the_same_seed_gives_identical_rows(tmp_path: Path) -> None:
    a = run_experiment(
        "cascade-theory", seeds=2, out=tmp_path / "a", overrides=SMALL_CASCADE, progress=False
    )
    b = run_experiment(
        "cascade-theory",
        seeds=2,
        out=tmp_path / "b",
        overrides=SMALL_CASCADE,
        jobs=2,
        progress=False,
    )
    pd.testing.assert_frame_equal(a, b)
    # a different seed gives a different world and different cascades
    assert (
        a[a["seed"] == 0]["graph/mean_degree"].iloc[0]
        != a[a["seed"] == 1]["graph/mean_degree"].iloc[0]
    )


# -- cascade-theory acceptance -------------------------------------------------------------


def test_cascade_theory_meets_the_acceptance_line(tmp_path: Path) -> None:
    """IC from one random user on the world's Erdős–Rényi graph, n = 10,000, c = 5: for p in
    {0.1, 0.3, 0.5}, the mean final fraction over giant runs (> 1% of users) is within 0.03 of
    S, and the share of giant runs within 0.1 of S; c·p < 1: no giant cascade.

    The experiment's default 1,000 runs per condition: the share of giant runs has standard
    error sqrt(S(1 − S)/1000) ≤ 0.016 (S = 0.58 at p = 0.3, 0.89 at p = 0.5), so 0.1 is ≥ 6 SE;
    the size of a giant run is concentrated (sd ≈ 0.01 here), its mean's SE < 0.001.
    """
    exp = get_experiment("cascade-theory")
    config = load_scenario(exp.scenario)
    assert config.world.n_users == 10_000
    assert config.world.graph.kind == "erdos_renyi"
    assert config.world.graph.mean_degree == 5.0
    assert exp.params["runs"] == 1000
    assert exp.params["giant_threshold"] == 0.01
    frame = run_experiment(exp, seeds=1, out=tmp_path, progress=False)
    assert list(frame["cascade/p"]) == [0.1, 0.3, 0.5]
    for _, row in frame.iterrows():
        p = float(row["cascade/p"])
        s = giant_fraction(5.0, p)  # the acceptance's S, at the nominal c = 5
        share, size = float(row["cascade/giant_share"]), float(row["cascade/giant_size"])
        assert abs(share - s) <= 0.1, (p, share, s)
        if 5.0 * p < 1.0:
            assert s == 0.0
            assert share == 0.0  # no giant cascade
            assert math.isnan(size)
            assert row["cascade/mean_fraction"] < 0.001
        else:
            assert abs(size - s) <= 0.03, (p, size, s)
            # and against S of the realized mean degree, the row's own theory
            assert abs(size - row["theory/S"]) <= 0.03
            assert abs(share - row["theory/S"]) <= 0.1
            assert abs(row["cascade/mean_fraction"] - row["theory/S2"]) <= 0.1
        # small cascades: the branching process conditioned on dying out
        assert abs(row["cascade/small_size"] - row["theory/small_size"]) < 0.5
    assert np.all(np.diff(frame["cascade/giant_share"].to_numpy()) > 0)
