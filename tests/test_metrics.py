"""Metric functions against hand-computed values, and compliance on real runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recoworld._config import override
from recoworld.metrics.diversity import (
    catalog_coverage,
    exposure_entropy,
    exposure_gini,
    gini,
    intra_list_diversity,
    novelty,
)
from recoworld.metrics.instruction import compliance
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
