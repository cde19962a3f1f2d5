"""The reflective-instruction mechanism matters: listening keeps users, ignoring loses them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recoworld._config import override
from recoworld.policies import make_policy
from recoworld.scenario import load_scenario
from recoworld.schedule import Simulation
from recoworld.trajectory import read_run

SEEDS = (0, 1, 2, 3, 4, 5)


def _outcomes(follow: bool, seed: int) -> tuple[float, float]:
    cfg = override(
        load_scenario("retention"),
        {"world.n_users": 1500, "world.n_items": 2000, "clock.days": 3, "seed": seed},
    )
    # Taste-aware but blind to boredom: what it learns of the user's mindset, it learns from words.
    policy = make_policy("oracle", use_mindset=False, follow_instructions=follow)
    sim = Simulation(cfg, policy=policy)
    sim.run()
    pop, totals = sim.world.population, sim.totals
    session_length = totals.examined / totals.sessions_started
    had_session = pop.n_sessions >= 1
    return_rate = float((pop.n_sessions[had_session] >= 2).mean())
    return session_length, return_rate


def test_following_instructions_keeps_users_longer_and_brings_them_back() -> None:
    follow = np.array([_outcomes(True, s) for s in SEEDS])
    ignore = np.array([_outcomes(False, s) for s in SEEDS])
    length_gain = follow[:, 0] - ignore[:, 0]
    return_gain = follow[:, 1] - ignore[:, 1]
    # Longer sessions on every seed, and on average by a clear margin.
    assert (length_gain > 0).all(), (follow, ignore)
    assert length_gain.mean() > 0.1 * ignore[:, 0].mean()
    # Higher return rate on average, by more than two standard errors of the paired gains.
    stderr = return_gain.std(ddof=1) / np.sqrt(len(SEEDS))
    assert return_gain.mean() > 2 * stderr, (follow, ignore)
    assert return_gain.mean() > 0


def test_instructions_are_grounded_and_followed_pages_comply(tmp_path: Path) -> None:
    cfg = override(
        load_scenario("retention"),
        {"world.n_users": 800, "world.n_items": 1500, "clock.days": 1},
    )
    policy = make_policy("oracle", use_mindset=False, follow_instructions=True)
    sim = Simulation(cfg, policy=policy, out_dir=tmp_path)
    sim.run()
    run = read_run(tmp_path)
    ins, imp = run.instructions, run.impressions
    assert len(ins) > 20
    names = sim.world.catalog.topic_names
    topic_of = pd.Series([names[t] for t in sim.world.catalog.topic])
    # The words name what the user wants, and it is not what it has had too much of.
    for text, more, less in zip(ins["text"], ins["intent_more"], ins["intent_less"], strict=True):
        assert more[0] in text
        assert len(less) == 0 or (less[0] in text and less[0] != more[0])
    assert set(ins["reason"]) <= {"boredom", "mismatch", "repetition"}
    # The page after each instruction (same user, next tick) honours the ground-truth intent.
    rec = imp[imp["source"] == "rec"].assign(topic=lambda d: topic_of[d["item"]].to_numpy())
    pages = rec.groupby(["user", "tick"], observed=True)["topic"].apply(list)
    checked = complied = 0
    for user, tick, more, less in zip(
        ins["user"], ins["tick"], ins["intent_more"], ins["intent_less"], strict=True
    ):
        page = pages.get((user, tick + 1))
        if page is None:
            continue
        checked += 1
        share = sum(t == more[0] for t in page) / len(page)
        complied += share >= 0.3 and not any(t in page for t in less)
    assert checked > 20
    assert complied / checked > 0.9


def test_without_instructions_nobody_speaks(tmp_path: Path) -> None:
    cfg = override(
        load_scenario("default"),
        {
            "world.n_users": 500,
            "world.n_items": 600,
            "clock.ticks": 80,
            "clock.start_hour": 18,
            "users.max_instructions": 0,
        },
    )
    Simulation(cfg, out_dir=tmp_path).run()
    run = read_run(tmp_path)
    assert len(run.instructions) == 0
    assert len(run.sessions) > 0
    assert (run.sessions["instructions"] == 0).all()
