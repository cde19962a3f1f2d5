"""Metric functions against hand-computed values, and compliance on real runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recoworld._config import override
from recoworld.errors import ConfigError
from recoworld.metrics.accuracy import logged_ndcg, ndcg_at_k, recall_at_k
from recoworld.metrics.diversity import (
    calibration_kl,
    catalog_coverage,
    exposure_entropy,
    exposure_gini,
    gini,
    intra_list_diversity,
    novelty,
)
from recoworld.metrics.engagement import (
    churn_rate,
    daily_active_users,
    retention_curve,
    return_gap,
)
from recoworld.metrics.instruction import compliance, post_instruction_recovery
from recoworld.policies import make_policy
from recoworld.scenario import load_scenario
from recoworld.schedule import Simulation
from recoworld.trajectory import read_run


def _imps(rows: list[tuple[int, int, int]], source: str = "rec") -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["tick", "user", "item"]).assign(source=source)


def test_gini_known_values() -> None:
    assert gini(np.array([1, 1, 1, 1])) == 0.0
    assert gini(np.array([0, 0, 0, 1])) == pytest.approx(0.75)  # (2·4 − 4 − 1)·1 / (4·1)
    assert np.isnan(gini(np.zeros(3)))


def test_recall_and_ndcg_at_k_known_values() -> None:
    ranked = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    held_out = [{2}, {4, 6, 99}, set()]  # the third user has nothing held out: skipped
    # user 0: 1 hit of min(2, 1); user 1: 2 hits of min(2, 3) -> recall@2 = (1 + 1/2) / 2
    assert recall_at_k(ranked, held_out, 2) == pytest.approx(0.75)
    dcg0 = 1 / np.log2(3)  # hit at rank 2
    dcg1 = 1.0  # hit at rank 1 (rank 3 is cut at k = 2)
    ideal1 = 1 + 1 / np.log2(3)
    assert ndcg_at_k(ranked, held_out, 2) == pytest.approx((dcg0 / 1.0 + dcg1 / ideal1) / 2)
    assert ndcg_at_k(np.array([[4, 6, 99]]), [{4, 6, 99}], 3) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="one held-out set per row"):
        recall_at_k(ranked, held_out[:2], 2)


def test_logged_ndcg_scores_lists_by_their_clicks() -> None:
    imps = pd.DataFrame(
        {
            "tick": [0, 0, 0, 1, 1, 1],
            "user": [5, 5, 5, 5, 5, 5],
            "item": [1, 2, 3, 1, 2, 3],
            "rank": [0, 1, 2, 0, 1, 2],
            "source": ["rec"] * 6,
        }
    )
    resp = imps.assign(clicked=[True, False, False, False, False, True])
    # tick 0: the click is at the top (1); tick 1: at rank 3 of 3 -> (1/log2 4) / 1 = 0.5
    assert logged_ndcg(imps, resp) == pytest.approx((1.0 + 0.5) / 2)
    assert logged_ndcg(imps, resp.assign(clicked=False)) == 0.0


def test_calibration_kl_is_zero_when_recommendations_mirror_clicks() -> None:
    topic = np.array([0, 0, 1, 1])
    imps = _imps([(0, 0, 0), (0, 0, 2), (1, 1, 0), (1, 1, 1)])
    clicks = pd.DataFrame({"user": [0, 0, 1], "item": [1, 3, 2], "clicked": True})
    value = calibration_kl(imps, clicks, topic, 2, alpha=0.01)
    # user 0: p = q = (½, ½) -> 0; user 1: p = (0, 1), q = (1, 0) -> log(1 / 0.01)
    assert value == pytest.approx(np.log(100.0) / 2)


def test_retention_curve_counts_users_still_coming_back() -> None:
    sessions = pd.DataFrame({"user": [0, 0, 1, 2], "start_tick": [0, 5, 2, 9]})
    curve = retention_curve(sessions, 10)
    assert curve[0] == 1.0
    assert curve[3] == pytest.approx(2 / 3)  # users 0 (tick 5) and 2 (tick 9)
    assert curve[6] == pytest.approx(1 / 3)
    assert curve[10] == 0.0


def test_return_gap_dau_and_churn() -> None:
    sessions = pd.DataFrame(
        {
            "user": [0, 0, 0, 1, 2],
            "start_tick": [0, 10, 30, 5, 150],
            "end_tick": [2, 12, 31, 6, 151],
            "churned": [False, False, True, False, False],
        }
    )
    assert return_gap(sessions) == pytest.approx(((10 - 2) + (30 - 12)) / 2)
    assert daily_active_users(sessions, 144).tolist() == [2, 1]  # users 0, 1 then 2
    assert churn_rate(sessions) == pytest.approx(1 / 3)


def test_post_instruction_recovery_compares_pages_after_with_pages_before() -> None:
    # one session of user 3: pages at ticks 0, 1, 2, 3 with 0/2, 1/2, 2/2, 2/2 clicked
    responses = pd.DataFrame(
        {
            "user": 3,
            "session": 0,
            "tick": np.repeat([0, 1, 2, 3], 2),
            "clicked": [False, False, True, False, True, True, True, True],
        }
    )
    instructions = pd.DataFrame({"user": [3, 3], "session": [0, 0], "tick": [1, 3]})
    # the tick-1 instruction: next page 1.0 − its page 0.5; the tick-3 one has no next page
    assert post_instruction_recovery(instructions, responses, k=1) == pytest.approx(0.5)
    # k = 2: pages 2–3 (4/4) against pages 0–1 (1/4)
    assert post_instruction_recovery(instructions, responses, k=2) == pytest.approx(0.75)


def test_intra_list_diversity_orthogonal_and_identical_items() -> None:
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [2.0, 0.0]])
    assert intra_list_diversity(_imps([(0, 0, 0), (0, 0, 1)]), emb) == pytest.approx(1.0)
    assert intra_list_diversity(_imps([(0, 0, 0), (0, 0, 2), (0, 0, 3)]), emb) == pytest.approx(0)
    mixed = _imps([(0, 0, 0), (0, 0, 1), (1, 0, 0), (1, 0, 2)])  # lists of 1.0 and 0.0
    assert intra_list_diversity(mixed, emb) == pytest.approx(0.5)
    social = _imps([(0, 0, 0), (0, 0, 1)], source="social")
    assert np.isnan(intra_list_diversity(social, emb))  # not the recommender's list


def test_coverage_entropy_and_novelty() -> None:
    imps = _imps([(0, 0, 0), (0, 1, 0), (0, 0, 1), (0, 1, 1)])
    assert catalog_coverage(imps, 4) == 0.5
    assert exposure_gini(imps, 2) == 0.0
    assert exposure_entropy(imps, 2) == pytest.approx(1.0)
    assert novelty(imps, 2) == pytest.approx(0.0)  # every item reached every user
    assert novelty(_imps([(0, 0, 0)]), 4) == pytest.approx(2.0)  # −log2(1/4)


def test_compliance_judges_the_next_slate_by_the_logged_intent() -> None:
    topic = np.array([0, 1, 2, 1])  # items 0..3
    names = ("a", "b", "c")
    instr = pd.DataFrame(
        [
            {"tick": 0, "user": 0, "intent_more": ["b"], "intent_less": [], "constraint": None},
            {"tick": 0, "user": 1, "intent_more": [], "intent_less": ["a"], "constraint": "fresh"},
            {"tick": 5, "user": 2, "intent_more": ["c"], "intent_less": [], "constraint": None},
        ]
    )
    imps = _imps(
        [
            (0, 0, 0),
            (1, 0, 1),  # user 0's next slate: items 1 (b ✓) and 0 (a ✗)
            (1, 0, 0),
            (2, 0, 2),  # a later slate does not count
            (0, 1, 2),
            (3, 1, 2),  # user 1: item 2 seen before ✗, item 3 fresh and not a ✓
            (3, 1, 3),
            (1, 2, 2),  # user 2 has no slate after tick 5: skipped
        ]
    )
    assert compliance(instr, imps, topic, names) == pytest.approx(0.5)


def test_listening_complies_more_than_ignoring(tmp_path: Path) -> None:
    cfg = override(
        load_scenario("retention"), {"world.n_users": 800, "world.n_items": 1500, "clock.days": 1}
    )
    values = {}
    for name, params in (("follow", {}), ("ignore", {"follow_instructions": False})):
        sim = Simulation(cfg, policy=make_policy("oracle", **params), out_dir=tmp_path / name)
        sim.run()
        run = read_run(tmp_path / name)
        cat = sim.world.catalog
        values[name] = compliance(run.instructions, run.impressions, cat.topic, cat.topic_names)
    assert values["follow"] > values["ignore"] + 0.2, values
