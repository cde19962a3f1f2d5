"""The social-phenomenon experiments ``echo-chamber``, ``herding`` and ``misinformation``: each
runs through the runner at a tiny size, the echo-chamber acceptance line (5 seeds), the herding
null and effect, and the misinformation interventions against no intervention."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from recoworld._stats import ci95, t_interval
from recoworld.experiments import get_experiment, run_experiment
from recoworld.experiments.echo_chamber import histogram_text, parse_histogram
from recoworld.experiments.herding import TREATMENTS, Herding
from recoworld.experiments.misinformation import Misinformation
from recoworld.social.engine import votes_of

TINY: dict[str, dict[str, object]] = {
    "echo-chamber": {"world.n_users": 300, "world.n_items": 300, "clock.days": 0.25},
    "herding": {
        "world.n_users": 300,
        "world.n_items": 300,
        "clock.days": 0.25,
        "params.items": 90,
    },
    "misinformation": {"world.n_users": 300, "world.n_items": 300, "clock.days": 0.25},
}
PLOTS = {
    "echo-chamber": ["echo_chamber_over_time.png", "opinion_histograms.png"],
    "herding": ["p_first_up.png", "score_over_time.png"],
    "misinformation": [
        "false_cascade_size.png",
        "false_cascade_ccdf.png",
        "intervention_effects.png",
    ],
}


@pytest.mark.parametrize("name", list(TINY))
def test_each_experiment_runs_at_a_tiny_size(name: str, tmp_path: Path) -> None:
    exp = get_experiment(name)
    seeds = 2
    frame = run_experiment(name, seeds=seeds, out=tmp_path, overrides=TINY[name], progress=False)
    assert len(frame) == seeds * len(exp.conditions)
    results = pd.read_csv(tmp_path / "results.csv")
    assert len(results) == seeds * len(exp.conditions)
    assert list(results["condition"]) == [c for c in exp.conditions for _ in range(seeds)]
    assert list(results["seed"]) == list(range(seeds)) * len(exp.conditions)
    for metric in exp.summary_metrics:
        assert metric in results, metric
    assert (tmp_path / "series.csv").is_file()
    summary = (tmp_path / "summary.md").read_text()
    assert "| metric | " + " | ".join(exp.conditions) + " |" in summary
    for plot in PLOTS[name]:
        assert (tmp_path / "plots" / plot).stat().st_size > 5_000, plot
    assert not (tmp_path / "runs").exists()  # trajectories deleted unless params.keep_runs


def test_tiny_echo_chamber_rows_and_curves(tmp_path: Path) -> None:
    frame = run_experiment(
        "echo-chamber", seeds=1, out=tmp_path, overrides=TINY["echo-chamber"], progress=False
    )
    by = frame.set_index("condition")
    assert by.loc["engagement", "policy"] == "oracle"
    assert by.loc["stance-blind", "policy"] == "oracle-stanceblind"
    assert by.loc["bridging", "policy"] == "oracle-bridging1"
    assert by.loc["random", "policy"] == "random"
    # one fixed world: every condition starts from the same opinions and graph
    assert frame["echo/corr_start"].nunique() == 1
    assert frame["graph/edges_start"].nunique() == 1
    hist = parse_histogram(frame["opinion/histogram_end"].iloc[0])
    assert hist.size == 20
    assert hist.sum() == 300
    series = pd.read_csv(tmp_path / "series.csv")
    # 72 ticks measured every 36 (record.opinion_every) and before the first: 0, 36, 72
    assert sorted(series["ticks"].unique()) == [0, 36, 72]
    assert series.groupby("condition").size().eq(3).all()
    for column in ("exposure/rec_homophily", "exposure/rec_cross_cutting"):
        assert frame[column].between(0.0, 2.0).all()


def test_histogram_text_round_trips() -> None:
    x = np.array([-1.0, -0.95, 0.0, 0.99, 1.0])
    text = histogram_text(x, 4)
    assert text == "2 0 1 2"
    assert parse_histogram(text).tolist() == [2.0, 0.0, 1.0, 2.0]
    assert parse_histogram(float("nan")).size == 0


def test_votes_of_is_the_schedule_rule() -> None:
    liked = np.array([True, False, False, False, False])
    clicked = np.array([True, True, True, False, True])
    rating = np.array([5.0, 2.0, 3.0, np.nan, 1.0])
    assert votes_of(liked, clicked, rating, 2.0).tolist() == [1, -1, 0, 0, -1]
    assert votes_of(liked, clicked, rating, 1.0).tolist() == [1, 0, 0, 0, -1]


def test_herding_assignment_is_balanced_and_shared_by_conditions() -> None:
    rng = np.random.default_rng(0)
    treatment = Herding.assign(100, 31, rng)
    assert len(treatment) == 30  # equal shares: 3 × 10
    assert treatment.value_counts().to_dict() == {"up": 10, "down": 10, "control": 10}
    assert treatment.index.is_unique
    assert set(TREATMENTS) == {"up", "down", "control"}


# -- echo-chamber acceptance ---------------------------------------------------------------


def test_echo_chamber_acceptance(tmp_path: Path) -> None:
    """The engagement-optimizing feed gives a higher echo-chamber correlation and polarization
    (variance of opinions) than the random feed, with non-overlapping 95% t-intervals over 5
    seeds — at a reduced size (1,500 users, one day) where the effect still holds; the full
    size (3,000 users, two days) is measured in docs/experiments.md."""
    frame = run_experiment(
        "echo-chamber",
        seeds=5,
        out=tmp_path,
        overrides={"world.n_users": 1500, "clock.days": 1.0},
        jobs=2,
        progress=False,
    )
    for metric in ("echo/corr_end", "polar/variance_end"):
        eng_mean, eng_half = ci95(frame[frame["condition"] == "engagement"][metric])
        rnd_mean, rnd_half = ci95(frame[frame["condition"] == "random"][metric])
        assert eng_mean - eng_half > rnd_mean + rnd_half, (metric, eng_mean, rnd_mean)
    # the engagement feed's recommendations agree with their users more than random ones
    eng = frame[frame["condition"] == "engagement"]
    rnd = frame[frame["condition"] == "random"]
    assert eng["exposure/rec_homophily"].max() < rnd["exposure/rec_homophily"].min()


# -- herding -------------------------------------------------------------------------------


def _pooled_first_up(part: pd.DataFrame, treatment: str) -> tuple[float, float]:
    """P(first later vote up) pooled over the seeds' voted items, and its standard error."""
    n = part[f"herd/n_voted_{treatment}"].to_numpy(np.float64)
    hits = part[f"herd/p_first_up_{treatment}"].to_numpy(np.float64) * n
    p = hits.sum() / n.sum()
    return p, math.sqrt(p * (1.0 - p) / n.sum())


def test_herding_effect_and_its_null(tmp_path: Path) -> None:
    """With the score visible, an up-seeded item's first later vote is up more often than a
    down-seeded one's; with the score invisible (w_vote 0) the treatments do not differ beyond
    noise. Pooled over 3 seeds (about 380 voted items per treatment and seed): the measured gap
    is about 0.17 with the score visible (a z of about 8), and within noise without it."""
    frame = run_experiment("herding", seeds=3, out=tmp_path, jobs=2, progress=False)
    shown = frame[frame["condition"] == "herding"]
    hidden = frame[frame["condition"] == "no-social-signal"]

    up, se_up = _pooled_first_up(shown, "up")
    down, se_down = _pooled_first_up(shown, "down")
    assert up - down > 4 * math.hypot(se_up, se_down), (up, down)
    control, se_control = _pooled_first_up(shown, "control")
    assert up - control > 2 * math.hypot(se_up, se_control), (up, control)

    null = {t: _pooled_first_up(hidden, t) for t in TREATMENTS}
    for a, b in (("up", "control"), ("down", "control"), ("up", "down")):
        (pa, sa), (pb, sb) = null[a], null[b]
        assert abs(pa - pb) < 3.5 * math.hypot(sa, sb), (a, b, pa, pb)
    # invisible: later votes do not depend on the seed (difference within 4 of its SEs)
    later = hidden["herd/later_diff_up"].to_numpy(np.float64)
    half = (hidden["herd/later_diff_hi_up"] - hidden["herd/later_diff_lo_up"]).to_numpy() / 2
    assert abs(later.mean()) < 4 * math.sqrt(((half / 1.96) ** 2).sum()) / len(later)


# -- misinformation ------------------------------------------------------------------------


class _LabelsAndFriction(Misinformation):
    """The shipped experiment restricted to the conditions the test compares."""

    conditions: ClassVar[dict[str, dict[str, Any]]] = {
        label: Misinformation.conditions[label] for label in ("none", "labels", "friction")
    }


def test_misinformation_interventions_reduce_false_shares(tmp_path: Path) -> None:
    """Warning labels and share friction each reduce the false items' adopters against no
    intervention, at a small size (2,000 users, one day) over 8 seeds, paired by seed: the 95%
    t-interval of the per-seed reduction excludes 0. The spread is between seeds (which false
    items the popularity feed picks up early), so a paired test, not a pooled count: measured
    paired t = 6.8 (labels) and 5.1 (friction) against the bound t₇ = 2.36; friction keeps
    0.74 of the false adopters on average (it cuts every would-be share by 30%)."""
    frame = run_experiment(
        _LabelsAndFriction(),
        seeds=8,
        out=tmp_path,
        overrides={"world.n_users": 2000, "world.n_items": 1500, "clock.days": 1.0},
        progress=False,
    )
    adopters = frame.pivot(index="seed", columns="condition", values="false/adopters")
    for label in ("labels", "friction"):
        reduction, half = t_interval(adopters["none"] - adopters[label])
        assert reduction - half > 0, (label, reduction, half)
        ratio, ratio_half = t_interval(adopters[label] / adopters["none"])
        assert ratio + ratio_half < 0.95, (label, ratio, ratio_half)
    # no label without labels; label_recall 0.7 labels about 70% of the false items
    labeled = frame.groupby("condition")["false/labeled_share"].mean()
    assert labeled["none"] == 0.0
    assert labeled["friction"] == 0.0
    assert 0.6 < labeled["labels"] < 0.8
    effects = _LabelsAndFriction().effects(frame)
    assert list(effects["condition"]) == ["labels", "friction"]
    assert (effects["rel"] < 0).all()
    assert (effects["diff"] + effects["diff_half"] < 0).all()
