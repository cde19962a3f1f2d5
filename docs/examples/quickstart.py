"""Quickstart: run a small world in code, then read what happened from its Parquet files."""

import tempfile

import recoworld
from recoworld.metrics import summarize_run

# A shipped scenario, shrunk: 2,000 users for half a simulated day, evening start.
config = recoworld.override(
    recoworld.load_scenario("default"),
    {"world.n_users": 2000, "clock.days": 0.5, "clock.start_hour": 12, "seed": 42},
)

with tempfile.TemporaryDirectory() as out:
    result = recoworld.Simulation(config, out_dir=out).run()
    print(f"{result.status}: {result.ticks} ticks, {result.totals['impressions']:,} impressions")

    run = recoworld.read_run(out)
    print(run.sessions["end_reason"].value_counts().to_string())
    # What users said when they were about to leave, and what they really meant.
    print(run.instructions[["user", "text", "intent_more", "intent_less"]].head().to_string())
    for name, value in summarize_run(out).items():
        print(f"{name:28s} {value:.4f}" if isinstance(value, float) else f"{name:28s} {value}")
