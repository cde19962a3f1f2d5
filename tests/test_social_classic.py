"""Classic diffusion / opinion models against their exact theory."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recoworld.errors import ConfigError
from recoworld.social import (
    deffuant_weisbuch,
    degroot,
    erdos_renyi,
    friedkin_johnsen,
    giant_fraction,
    hegselmann_krause,
    independent_cascade,
    influence_csr,
    linear_threshold,
    opinion_clusters,
    row_stochastic_matrix,
    sir,
    sir_transmissibility,
)
from recoworld.world.graph import SocialGraph

N = 20_000
C = 4.0
RUNS = 200


@pytest.fixture(scope="module")
def er() -> tuple[np.ndarray, np.ndarray]:
    return erdos_renyi(N, C, np.random.default_rng(1))


def _final_fractions(er, model, rng, runs=RUNS, **kw) -> np.ndarray:  # type: ignore[no-untyped-def]
    ip, ix = er
    out = []
    for s in rng.integers(0, N, runs):
        res = model(ip, ix, [int(s)], rng=rng, **kw)
        out.append(float((res[0] >= 0).mean()))
    return np.array(out)


def test_giant_fraction_solves_fixed_point() -> None:
    s = giant_fraction(4.0, 0.5)
    assert abs(s - (1 - math.exp(-2 * s))) < 1e-12
    assert s == pytest.approx(0.7968, abs=1e-4)
    assert giant_fraction(4.0, 0.25) == 0.0
    assert giant_fraction(4.0, 0.2) == 0.0


def test_erdos_renyi_mean_degree(er) -> None:  # type: ignore[no-untyped-def]
    ip, ix = er
    assert abs(ix.shape[0] / N - C) < 0.1  # sd of 2M/n is ~0.02
    # symmetric: every edge both ways
    src = np.repeat(np.arange(N), np.diff(ip))
    assert set(zip(src.tolist(), ix.tolist(), strict=True)) == set(
        zip(ix.tolist(), src.tolist(), strict=True)
    )


def test_ic_supercritical_matches_s_squared(er) -> None:  # type: ignore[no-untyped-def]
    # c·p = 2: a single random seed gives a giant cascade w.p. S, covering a fraction S.
    # F = final fraction is ~Bernoulli(S)·S, so sd(F) ≈ S·sqrt(S(1−S)) ≈ 0.32 and the mean of
    # 200 runs has se ≈ 0.023; the giant share has se = sqrt(S(1−S)/200) ≈ 0.028. We allow 4 se.
    s = giant_fraction(C, 0.5)
    fr = _final_fractions(er, independent_cascade, np.random.default_rng(2), p=0.5)
    se_mean = s * math.sqrt(s * (1 - s) / RUNS)
    se_share = math.sqrt(s * (1 - s) / RUNS)
    assert abs(fr.mean() - s * s) < 4 * se_mean
    giant = fr > 0.1
    assert abs(giant.mean() - s) < 4 * se_share
    # size of a giant cascade: concentrated around S (finite-size sd ~ 1/sqrt(n))
    assert abs(fr[giant].mean() - s) < 0.02


def test_ic_subcritical(er) -> None:  # type: ignore[no-untyped-def]
    # c·p = 0.8: mean cluster size 1/(1 − 0.8) = 5 nodes, fraction 2.5e-4
    fr = _final_fractions(er, independent_cascade, np.random.default_rng(3), p=0.2)
    assert fr.mean() < 0.01
    assert fr.max() < 0.05


def test_ic_tree_is_consistent(er) -> None:  # type: ignore[no-untyped-def]
    ip, ix = er
    step, parent = independent_cascade(ip, ix, [0, 5], 0.5, np.random.default_rng(4))
    act = np.flatnonzero(step > 0)
    assert np.all(step[parent[act]] == step[act] - 1)
    assert np.all(parent[step <= 0] == -1)
    # every parent -> child pair is an edge of the influence graph
    for v in act[:200]:
        u = parent[v]
        assert v in ix[ip[u] : ip[u + 1]]
    capped = independent_cascade(ip, ix, [0], 0.5, np.random.default_rng(4), max_steps=2)
    assert capped.step.max() <= 2


def test_sir_threshold_uses_transmissibility(er) -> None:  # type: ignore[no-untyped-def]
    # Geometric infectious period: T = beta / (beta + gamma (1 − beta)).
    assert sir_transmissibility(0.3, 0.5) == pytest.approx(0.3 / 0.65)
    assert sir_transmissibility(1.0, 1.0) == 1.0
    t_sup = sir_transmissibility(0.3, 0.5)  # c·T ≈ 1.85
    t_sub = sir_transmissibility(0.1, 0.5)  # c·T ≈ 0.73
    assert C * t_sup > 1 > C * t_sub
    kw = {"beta": 0.3, "gamma": 0.5, "max_steps": 10_000}
    sup = _final_fractions(er, sir, np.random.default_rng(5), runs=100, **kw)
    kw["beta"] = 0.1
    sub = _final_fractions(er, sir, np.random.default_rng(6), runs=100, **kw)
    assert sub.mean() < 0.01
    major = sup > 0.1
    assert major.mean() > 0.4
    # attack rate of a major outbreak is the bond-percolation giant S(c·T) (in-components see
    # independent infectious periods); finite-size tolerance
    assert abs(sup[major].mean() - giant_fraction(C, t_sup)) < 0.03


def test_sir_records_recovery() -> None:
    ip, ix = erdos_renyi(500, 5.0, np.random.default_rng(7))
    ep = sir(ip, ix, [0], 0.5, 0.3, np.random.default_rng(8), 1000)
    inf = ep.infected_step >= 0
    assert np.all(ep.recovered_step[inf] > ep.infected_step[inf])
    assert np.all(ep.recovered_step[~inf] == -1)


def _ring_plus(n: int, rng: np.random.Generator) -> SocialGraph:
    # i follows i+1 and i+2 (cycles of length n and n−1 → strongly connected, aperiodic) + extras
    i = np.arange(n)
    src = np.concatenate([i, i, rng.integers(0, n, 2 * n)])
    dst = np.concatenate([(i + 1) % n, (i + 2) % n, rng.integers(0, n, 2 * n)])
    return SocialGraph.from_edges(n, src, dst)


def test_degroot_consensus_at_stationary_mean() -> None:
    rng = np.random.default_rng(9)
    g = _ring_plus(30, rng)
    w = row_stochastic_matrix(g)
    vals, vecs = np.linalg.eig(w.T)
    pi = np.real(vecs[:, np.argmin(np.abs(vals - 1))])
    pi /= pi.sum()
    x0 = rng.uniform(-1, 1, 30)
    x = degroot(g, x0, 2000)
    assert np.ptp(x) < 1e-9
    assert x.mean() == pytest.approx(float(pi @ x0), abs=1e-9)
    assert np.allclose(degroot(w, x0, 2000), x, atol=1e-9)  # dense W path agrees
    # raw influence CSR gives the same dynamics as the SocialGraph
    assert np.allclose(degroot(influence_csr(g), x0, 50), degroot(g, x0, 50))


def test_friedkin_johnsen_closed_form() -> None:
    rng = np.random.default_rng(10)
    g = _ring_plus(25, rng)
    w = row_stochastic_matrix(g)
    x0 = rng.uniform(-1, 1, 25)
    lam = rng.uniform(0.05, 0.6, 25)
    x = friedkin_johnsen(g, x0, lam, 1000)
    closed = np.linalg.solve(np.eye(25) - np.diag(1 - lam) @ w, lam * x0)
    assert np.allclose(x, closed, atol=1e-10)
    assert np.allclose(friedkin_johnsen(g, x0, 1.0, 10), x0)


def test_deffuant_weisbuch_clusters() -> None:
    ip, ix = erdos_renyi(400, 10.0, np.random.default_rng(11))
    x0 = np.random.default_rng(12).uniform(-1, 1, 400)
    wide = deffuant_weisbuch((ip, ix), x0, 2.0, 0.5, np.random.default_rng(13), 500)
    assert opinion_clusters(wide, 1e-3) == 1
    narrow = deffuant_weisbuch((ip, ix), x0, 0.2, 0.5, np.random.default_rng(13), 2000)
    assert opinion_clusters(narrow, 1e-2) >= 3
    assert np.all(np.abs(narrow) <= 1)


def test_hegselmann_krause_clusters() -> None:
    x0 = np.random.default_rng(14).uniform(-1, 1, 1000)
    assert opinion_clusters(hegselmann_krause(x0, 1.0, 100), 1e-6) == 1
    k = opinion_clusters(hegselmann_krause(x0, 0.1, 100), 1e-6)
    assert 5 <= k <= 15  # ≈ 2 / (2ε) clusters
    ip, ix = erdos_renyi(1000, 20.0, np.random.default_rng(15))
    assert opinion_clusters(hegselmann_krause(x0, 2.0, 200, graph=(ip, ix)), 1e-6) == 1
    assert opinion_clusters(hegselmann_krause(x0, 0.1, 200, graph=(ip, ix)), 1e-3) >= 3


def test_linear_threshold_extremes() -> None:
    # directed: 0 -> 1 -> 2 -> 3, 4 -> 0 ; node 4 unreachable from 0
    g = (np.array([0, 1, 2, 3, 3, 4]), np.array([1, 2, 3, 0]))
    step, parent = linear_threshold(g[0], g[1], [0], 0.0)
    assert step.tolist() == [0, 1, 2, 3, -1]
    assert parent.tolist() == [-1, 0, 1, 2, -1]
    step, _ = linear_threshold(g[0], g[1], [0], 1.5)
    assert step.tolist() == [0, -1, -1, -1, -1]
    ip, ix = erdos_renyi(2000, 3.0, np.random.default_rng(16))
    zero = linear_threshold(ip, ix, [0], np.zeros(2000))
    reach = independent_cascade(ip, ix, [0], 1.0, np.random.default_rng(0))
    assert np.array_equal(zero.step, reach.step)  # BFS distance = reachable set
    assert (linear_threshold(ip, ix, [0, 1], 1.01).step >= 0).sum() == 2


def test_determinism_for_fixed_seed(er) -> None:  # type: ignore[no-untyped-def]
    ip, ix = er
    a = independent_cascade(ip, ix, [3], 0.5, np.random.default_rng(42))
    b = independent_cascade(ip, ix, [3], 0.5, np.random.default_rng(42))
    assert np.array_equal(a.step, b.step)
    assert np.array_equal(a.parent, b.parent)
    e1 = sir(ip, ix, [3], 0.3, 0.5, np.random.default_rng(42), 100)
    e2 = sir(ip, ix, [3], 0.3, 0.5, np.random.default_rng(42), 100)
    assert all(np.array_equal(u, v) for u, v in zip(e1, e2, strict=True))
    x0 = np.linspace(-1, 1, N)
    d1 = deffuant_weisbuch(er, x0, 0.3, 0.3, np.random.default_rng(42), 5)
    d2 = deffuant_weisbuch(er, x0, 0.3, 0.3, np.random.default_rng(42), 5)
    assert np.array_equal(d1, d2)
    assert np.array_equal(
        erdos_renyi(100, 3, np.random.default_rng(1))[1],
        erdos_renyi(100, 3, np.random.default_rng(1))[1],
    )


def test_social_graph_direction() -> None:
    # 1 and 2 follow 0: influence flows 0 -> {1, 2}
    g = SocialGraph.from_edges(3, np.array([1, 2]), np.array([0, 0]))
    c = independent_cascade(g, None, [0], 1.0, np.random.default_rng(0))
    assert c.step.tolist() == [0, 1, 1]
    c = independent_cascade(g, None, [1], 1.0, np.random.default_rng(0))
    assert c.step.tolist() == [-1, 0, -1]
    # followers listen to 0 in DeGroot
    assert degroot(g, [1.0, -1.0, 0.0], 1).tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda g, r: independent_cascade(*g, [0], 1.5, r), "p"),
        (lambda g, r: independent_cascade(*g, [0], 0.5, r, max_steps=-1), "max_steps"),
        (lambda g, r: independent_cascade(*g, [99], 0.5, r), "seeds"),
        (lambda g, r: independent_cascade(*g, [0], 0.5, 7), "rng"),
        (lambda g, r: independent_cascade(g[0], g[1][:-1], [0], 0.5, r), "indptr"),
        (lambda g, r: linear_threshold(*g, [0], -1.0), "thresholds"),
        (lambda g, r: linear_threshold(*g, [0], 0.5, weights=[1.0]), "weights"),
        (lambda g, r: sir(*g, [0], 0.5, 0.0, r, 10), "gamma"),
        (lambda g, r: sir(*g, [0], -0.1, 0.5, r, 10), "beta"),
        (lambda g, r: degroot(np.ones((2, 2)), [0, 0], 3), "W"),
        (lambda g, r: degroot(g, [2.0] * 5, 3), "x0"),
        (lambda g, r: friedkin_johnsen(g, [0.0] * 5, 1.5, 3), "stubbornness"),
        (lambda g, r: deffuant_weisbuch(g, [0.0] * 5, -1, 0.3, r, 3), "epsilon"),
        (lambda g, r: deffuant_weisbuch(g, [0.0] * 5, 0.5, 0.9, r, 3), "mu"),
        (lambda g, r: hegselmann_krause([0.0] * 5, 0.5, 2.5), "steps"),
        (lambda g, r: erdos_renyi(10, -1.0, r), "mean_degree"),
        (lambda g, r: giant_fraction(-1.0, 0.5), "c"),
    ],
)
def test_bad_params_raise_config_error(call, name) -> None:  # type: ignore[no-untyped-def]
    g = erdos_renyi(5, 2.0, np.random.default_rng(0))
    with pytest.raises(ConfigError, match=name):
        call(g, np.random.default_rng(0))
