"""Off-policy evaluation: the estimators on bandits with a known answer, their input checks, the
collector's logged run (byte-identical to a plain run), and IPS / SNIPS / DR against the
simulator's on-policy truth over seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recoworld._config import override
from recoworld.config import ScenarioConfig
from recoworld.errors import RecoworldError
from recoworld.ope import (
    Estimate,
    OPEError,
    collect,
    cross_fit,
    dr,
    effective_sample_size,
    estimate_table,
    evaluate,
    fit_reward_model,
    ips,
    snips,
    t_interval,
)
from recoworld.policies import (
    Feedback,
    RecommendRequest,
    Slates,
    make_policy,
    slates_from_scores,
)
from recoworld.scenario import load_scenario
from recoworld.schedule import Simulation

EPSILON = 0.3
LOGGING = {"name": "epsilon_greedy", "params": {"base": "linucb", "epsilon": EPSILON}}


# -- a bandit with known reward probabilities ---------------------------------------------------
class Bandit:
    """``K`` contexts (uniform), ``C`` actions, Bernoulli rewards with known means ``p[x, a]``;
    logged by ε-greedy around a fixed (not the best) action per context."""

    def __init__(self, n: int, seed: int = 0, k: int = 6, c: int = 5, eps: float = 0.3) -> None:
        rng = np.random.default_rng(seed)
        self.p = rng.uniform(0.05, 0.8, (k, c))
        self.c, self.eps = c, eps
        self.x = rng.integers(0, k, n)
        greedy = (self.p.argmax(axis=1) + 1) % c  # the logger's favourite: not the best
        explore = rng.random(n) < eps
        self.a = np.where(explore, rng.integers(0, c, n), greedy[self.x])
        self.mu = (1 - eps) * (self.a == greedy[self.x]) + eps / c
        self.r = (rng.random(n) < self.p[self.x, self.a]).astype(float)

    def deterministic(self, policy: np.ndarray) -> tuple[np.ndarray, float]:
        """``π(a_i|x_i)`` for the target ``x → policy[x]`` and its true value."""
        return (self.a == policy[self.x]).astype(float), float(
            self.p[np.arange(len(policy)), policy].mean()
        )


@pytest.fixture(scope="module")
def bandit() -> Bandit:
    return Bandit(200_000)


def test_ips_snips_dr_converge_to_the_true_value_of_a_deterministic_target(
    bandit: Bandit,
) -> None:
    best = bandit.p.argmax(axis=1)
    pi, truth = bandit.deterministic(best)
    q_model = np.full_like(bandit.r, 0.5)  # a wrong reward model: DR stays unbiased
    for est in (
        ips(bandit.r, bandit.mu, pi),
        snips(bandit.r, bandit.mu, pi),
        dr(bandit.r, bandit.mu, pi, q_model, np.full_like(bandit.r, 0.5)),
    ):
        assert est.n == bandit.r.size
        assert 0 < est.se < 0.01
        assert abs(est.value - truth) < 4 * est.se
        low, high = est.ci(0.999)
        assert low < truth < high


def test_dr_with_a_good_reward_model_has_a_smaller_error_than_ips(bandit: Bandit) -> None:
    best = bandit.p.argmax(axis=1)
    pi, truth = bandit.deterministic(best)
    q_logged = bandit.p[bandit.x, bandit.a]
    q_target = bandit.p[bandit.x, best[bandit.x]]
    exact = dr(bandit.r, bandit.mu, pi, q_logged, q_target)
    plain = ips(bandit.r, bandit.mu, pi)
    assert abs(exact.value - truth) < 4 * exact.se
    assert exact.se < 0.8 * plain.se


def test_a_stochastic_target_uses_the_expectation_over_its_actions(bandit: Bandit) -> None:
    """The uniform target: ``π(a|x) = 1/C``; DR's ``q̂(x, π)`` averages the model over actions."""
    truth = float(bandit.p.mean())
    pi = np.full_like(bandit.r, 1.0 / bandit.c)
    noisy = np.clip(bandit.p + 0.1, 0, 1)  # biased model
    q_target = noisy[bandit.x].mean(axis=1)
    for est in (
        ips(bandit.r, bandit.mu, pi),
        snips(bandit.r, bandit.mu, pi),
        dr(bandit.r, bandit.mu, pi, noisy[bandit.x, bandit.a], q_target),
    ):
        assert abs(est.value - truth) < 4 * est.se
    direct = q_target.mean()  # the model alone is off by ~0.1
    assert abs(direct - truth) > 0.05


def test_wrong_propensities_bias_ips(bandit: Bandit) -> None:
    """Logging probabilities that ignore the logger's greedy part (as if it were uniform)."""
    best = bandit.p.argmax(axis=1)
    pi, truth = bandit.deterministic(best)
    right = ips(bandit.r, bandit.mu, pi)
    wrong = ips(bandit.r, np.full_like(bandit.mu, 1.0 / bandit.c), pi)
    assert abs(right.value - truth) < 4 * right.se
    # The best action is never the logger's favourite, so it was only logged with μ = ε/C:
    # pretending μ = 1/C shrinks its weight by a factor ε and the estimate with it.
    assert wrong.value == pytest.approx(EPSILON * right.value, rel=1e-9)
    assert abs(wrong.value - truth) > 20 * wrong.se


def test_effective_sample_size_and_t_interval() -> None:
    assert effective_sample_size([0.5, 0.5], [1.0, 1.0]) == pytest.approx(2.0)
    assert effective_sample_size([0.5, 0.5], [1.0, 0.0]) == pytest.approx(1.0)
    assert effective_sample_size([0.5, 0.5], [0.0, 0.0]) == 0.0
    mean, half = t_interval([1.0, 2.0, 3.0])
    assert mean == pytest.approx(2.0)
    assert half == pytest.approx(4.303 / np.sqrt(3))
    assert np.isnan(t_interval([1.0])[1])
    e = Estimate(0.5, 0.1, 10)
    assert e.ci() == pytest.approx((0.5 - 0.196, 0.5 + 0.196), abs=1e-3)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([1.0, 0.0], [0.5, 0.5], [1.0]), "mismatched lengths"),
        (([], [], []), "no logged data"),
        (([1.0, 0.0], [0.5, 0.0], [1.0, 1.0]), r"logging_prob.*\(0, 1\]"),
        (([1.0, 0.0], [0.5, 1.5], [1.0, 1.0]), r"logging_prob.*\(0, 1\]"),
        (([1.0, 0.0], [0.5, 0.5], [1.0, -0.1]), r"target_prob.*\[0, 1\]"),
        (([1.0, np.nan], [0.5, 0.5], [1.0, 1.0]), "finite"),
        (([[1.0, 0.0]], [[0.5, 0.5]], [[1.0, 1.0]]), "1-D"),
        ((["a", "b"], [0.5, 0.5], [1.0, 1.0]), "numbers"),
    ],
)
def test_bad_input_raises_the_named_error(args: tuple, match: str) -> None:
    for estimator in (ips, snips):
        with pytest.raises(OPEError, match=match):
            estimator(*args)
    with pytest.raises(OPEError, match=match):
        dr(*args, args[0], args[0])


def test_the_ope_error_is_a_recoworld_value_error() -> None:
    assert issubclass(OPEError, RecoworldError)
    assert issubclass(OPEError, ValueError)
    with pytest.raises(OPEError, match="no support"):
        snips([1.0, 0.0], [0.5, 0.5], [0.0, 0.0])
    with pytest.raises(OPEError, match="mismatched lengths"):
        dr([1.0, 0.0], [0.5, 0.5], [1.0, 1.0], [0.5, 0.5], [0.5])


def test_the_reward_model_recovers_per_user_topic_rates() -> None:
    rng = np.random.default_rng(3)
    users, topics, n = 200, 4, 60_000
    rate = rng.uniform(0.05, 0.9, (users, topics))
    u, t = rng.integers(0, users, n), rng.integers(0, topics, n)
    quality = rng.uniform(0, 1, n)
    r = (rng.random(n) < rate[u, t]).astype(float)
    model = fit_reward_model(u, t, quality, np.zeros(n), np.zeros(n), r)
    grid_u, grid_t = np.meshgrid(np.arange(users), np.arange(topics), indexing="ij")
    pred = model.predict(grid_u, grid_t, 0.5, 0.0, 0.0)
    assert pred.shape == (users, topics)
    assert np.abs(pred - rate).mean() < 0.06  # ~75 draws per cell
    assert np.corrcoef(pred.ravel(), rate.ravel())[0, 1] > 0.9
    unseen = model.predict(users + 5, 0, 0.5, 0.0, 0.0)  # a user with no data: a prior
    assert 0.2 < float(unseen) < 0.7
    dwell = fit_reward_model(u, t, quality, np.zeros(n), np.zeros(n), 30 * rate[u, t] + r)
    assert not dwell.binary
    assert np.abs(dwell.predict(grid_u, grid_t, 0.5, 0, 0) - (31 * rate)).mean() < 2.0


# -- the collector ------------------------------------------------------------------------------
def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_the_logged_run_is_byte_identical_to_a_plain_run(
    small_config: ScenarioConfig, tmp_path: Path
) -> None:
    config = override(small_config, {"clock.ticks": 150})
    targets = ["random", "most_popular", "linucb", "oracle"]  # oracle: privileged
    log = collect(config, LOGGING, targets, out_dir=str(tmp_path / "ope"))
    plain = Simulation(
        config,
        policy=make_policy("epsilon_greedy", base="linucb", epsilon=EPSILON),
        out_dir=tmp_path / "plain",
    ).run()
    assert log.totals == plain.totals
    a, b = _files(tmp_path / "ope"), _files(tmp_path / "plain")
    assert any(name.endswith(".parquet") for name in a)
    assert a == b

    # One row per page served, with the logging policy's exact first-slot propensities.
    c = config.feed.n_candidates
    assert len(log) > 1000
    greedy = (1 - EPSILON) + EPSILON / c
    prop = log.pages["propensity"].to_numpy()
    assert np.isin(prop.round(6), np.round([greedy, EPSILON / c], 6)).all()
    assert (prop == np.float32(greedy)).mean() == pytest.approx(1 - EPSILON, abs=0.05)
    # The shadow linucb sees the logger's requests and feedback: on exploiting pages its first
    # item is the logged one (the base's best); the random target gives every item 1/C.
    mine = log.targets["linucb"]
    exploit = prop == np.float32(greedy)
    assert (mine["item"].to_numpy()[exploit] == log.pages["item"].to_numpy()[exploit]).all()
    assert (mine["prob"].to_numpy() == (mine["item"] == log.pages["item"]).to_numpy()).all()
    assert np.allclose(log.targets["random"]["prob"], 1.0 / c)
    assert np.allclose(log.targets["random"]["item_prob"], 1.0 / c)
    for frame in log.targets.values():
        assert set(np.unique(frame["click"])) <= {0.0, 1.0}
        assert len(frame) == len(log)


def test_collect_checks_its_policies(small_config: ScenarioConfig) -> None:
    short = override(small_config, {"clock.ticks": 3})
    shared = make_policy("most_popular")
    with pytest.raises(OPEError, match="its own policy object"):
        collect(short, shared, [shared])
    with pytest.raises(OPEError, match="stochastic at the first slot"):
        collect(short, LOGGING, [{"name": "epsilon_greedy", "params": {"epsilon": 0.5}}])
    with pytest.raises(OPEError, match="fresh policy per seed"):
        evaluate(short, make_policy("random"), ["most_popular"], seeds=1, progress=False)
    with pytest.raises(OPEError, match="'name'"):
        collect(short, {"params": {}}, ["random"])


class FirstOfTwo:
    """A stochastic target: one of the first two candidates first, at random; it tells OPE its
    first-slot distribution."""

    name = "first_of_two"

    def recommend(self, request: RecommendRequest) -> Slates:
        flip = request.rng.random(request.n) < 0.5
        scores = -np.arange(request.candidates.shape[1], dtype=np.float32)[None, :].repeat(
            request.n, axis=0
        )
        scores[flip, 1] = 1.0
        slates = slates_from_scores(request, scores)
        slates.propensities[:, 0] = 0.5
        return slates

    def first_slot_probs(self, request: RecommendRequest) -> np.ndarray:
        probs = np.zeros(request.candidates.shape)
        probs[:, :2] = 0.5
        return probs

    def update(self, feedback: Feedback) -> None:
        pass


def test_targets_as_labels_specs_and_stochastic_policies(small_config: ScenarioConfig) -> None:
    config = override(small_config, {"clock.ticks": 40})
    log = collect(
        config,
        LOGGING,
        {"two": FirstOfTwo(), "greedy": {"name": "linucb", "params": {"alpha": 0.0}}},
    )
    assert list(log.targets) == ["two", "greedy"]
    two = log.targets["two"]
    cols = log.target_cols["two"]
    assert set(np.unique(cols)) == {0, 1}
    assert set(np.unique(two["prob"])) <= {0.0, 0.5}
    assert (two["prob"].to_numpy() == np.where(log.logged_col < 2, 0.5, 0.0)).all()
    q = np.random.default_rng(0).random(log.candidates.shape)
    assert np.allclose(log.q_target("two", q), q[:, :2].mean(axis=1))
    table = estimate_table(log, q_all=q)
    assert table.loc["two", "dm"] == pytest.approx(q[:, :2].mean())
    single = collect(override(config, {"clock.ticks": 5}), LOGGING, {"name": "random"})
    assert list(single.targets) == ["random"]


def test_without_truth_only_the_estimates_are_filled(small_config: ScenarioConfig) -> None:
    log = collect(override(small_config, {"clock.ticks": 30}), LOGGING, ["random"], truth=False)
    assert log.targets["random"]["click"].isna().all()
    table = estimate_table(log)
    assert np.isnan(table.loc["random", "on_policy"])
    assert np.isfinite(table.loc["random", ["ips", "snips", "dr"]].astype(float)).all()
    q = cross_fit(log, "dwell")
    assert q.shape == log.candidates.shape
    with pytest.raises(OPEError, match="reward"):
        estimate_table(log, "rating")


# -- against the simulator's on-policy truth ----------------------------------------------------
TARGETS = {
    "random": "random",
    "most_popular": "most_popular",
    "trending": "trending",
    "linucb": "linucb",
}


@pytest.fixture(scope="module")
def evaluation() -> tuple[pd.DataFrame, pd.DataFrame]:
    config = override(
        load_scenario("default"),
        {
            "world.n_users": 3000,
            "world.n_items": 1500,
            "feed.n_candidates": 20,
            "clock.ticks": 288,  # one day
        },
    )
    result = evaluate(config, LOGGING, TARGETS, seeds=5, progress=False)
    return result.summary, result.per_seed


def test_snips_and_dr_fall_in_the_on_policy_interval_of_every_target(
    evaluation: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    summary, per_seed = evaluation
    print("\n" + summary.round(4).to_string())  # IPS is reported, not asserted
    assert list(summary.index) == list(TARGETS)
    assert (summary["seeds"] == 5).all()
    for target, row in summary.iterrows():
        low, high = row["ci_low"], row["ci_high"]
        assert low < high
        assert row["matched"] >= 2000, target  # enough logged pages the target agrees with
        for name in ("snips", "dr"):
            assert low <= row[name] <= high, (target, name, row[name], (low, high))
    # The check has teeth: the targets' intervals are apart, and the logging policy's own mean
    # reward (what an estimator ignoring the propensities would say) lies outside them.
    assert summary.loc["random", "ci_high"] < summary.loc["most_popular", "ci_low"]
    logged = per_seed.groupby("seed")["logging_value"].first().mean()
    for target in ("random", "linucb"):
        assert not summary.loc[target, "ci_low"] <= logged <= summary.loc[target, "ci_high"]


def test_each_seed_estimate_is_close_to_its_own_truth(
    evaluation: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """Per seed, on the same contexts: SNIPS and DR within 4 standard errors of the truth."""
    _, per_seed = evaluation
    for name in ("snips", "dr"):
        gap = per_seed[name] - per_seed["on_policy"]
        se = np.sqrt(per_seed[f"{name}_se"] ** 2 + per_seed["on_policy_se"] ** 2)
        assert (gap.abs() <= 4 * se).all(), per_seed[["target", "seed", name, "on_policy"]]
