"""The benchmark harness: a suite runs policies × seeds in parallel processes and writes the
results, the table with confidence intervals and the plots; bad suites are named errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recoworld.bench import FIGURES, load_suite, run_suite
from recoworld.cli import main
from recoworld.errors import ConfigError

SUITES = Path(__file__).parents[1] / "benchmarks" / "suites"

SMALL = """
name: small
scenario: retention
seeds: 2
set: {world.n_users: 400, world.n_items: 600, clock.days: 1}
policies:
  - random
  - {name: instruction_aware, params: {base: most_popular}}
  - oracle
"""


def test_a_suite_runs_in_parallel_and_writes_table_and_plots(tmp_path: Path) -> None:
    suite_file = tmp_path / "small.yaml"
    suite_file.write_text(SMALL)
    out = tmp_path / "out"
    assert main(["bench", str(suite_file), "--jobs", "2", "--out", str(out), "-q"]) == 0
    frame = pd.read_parquet(out / "results.parquet")
    assert len(frame) == 6
    assert list(frame["policy"].unique()) == ["random", "instruction_aware[most_popular]", "oracle"]
    for name in FIGURES:
        assert frame[name].notna().all(), name
    csv = pd.read_csv(out / "results.csv")
    assert len(csv) == 6
    table = (out / "summary.md").read_text()
    assert "| oracle |" in table
    assert " ± " in table
    for plot in (
        "retention_curve.png",
        "ndcg_vs_retention.png",
        "session_length.png",
        "engagement_vs_diversity.png",
        "retention_vs_compliance.png",
    ):
        assert (out / "plots" / plot).stat().st_size > 5_000
    # The same suite on one process gives the same figures (runs are deterministic).
    again = run_suite(load_suite(suite_file), tmp_path / "serial", jobs=1)
    pd.testing.assert_frame_equal(
        frame.drop(columns=["run_dir"]), again.drop(columns=["run_dir"]), check_like=True
    )
    oracle = frame[frame["policy"] == "oracle"]["instruction/compliance"].mean()
    random = frame[frame["policy"] == "random"]["instruction/compliance"].mean()
    assert oracle > random


def test_shipped_suites_load() -> None:
    for path in sorted(SUITES.glob("*.yaml")):
        suite = load_suite(path)
        assert suite.policies
    default = load_suite(SUITES / "default.yaml")
    assert len(default.policies) >= 10
    assert default.seeds == 5


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("policies: []", "non-empty list"),
        ("policies: [nope]", "unknown policy 'nope'"),
        ("policies: [random, random]", "labels must be distinct"),
        ("seeds: 0\npolicies: [random]", "seeds"),
        ("colour: red\npolicies: [random]", "unknown keys"),
    ],
)
def test_bad_suites_are_named(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_suite(path)
    assert main(["bench", str(path), "-q"]) == 2
