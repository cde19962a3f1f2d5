"""The CSR follow graph (recoworld.world.graph) and the synthetic graph generators."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recoworld.config import GraphConfig
from recoworld.world.graph import SocialGraph
from recoworld.world.synthetic import generate_graph


@st.composite
def edge_lists(draw: st.DrawFn, max_users: int = 12, max_edges: int = 60):
    """``(n_users, src, dst)`` with endpoints in range; self-loops and repeats likely."""
    n = draw(st.integers(min_value=1, max_value=max_users))
    m = draw(st.integers(min_value=0, max_value=max_edges))
    node = st.integers(min_value=0, max_value=n - 1)
    src = draw(st.lists(node, min_size=m, max_size=m))
    dst = draw(st.lists(node, min_size=m, max_size=m))
    return n, np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)


def edge_set(graph: SocialGraph) -> set[tuple[int, int]]:
    src, dst = graph.edges()
    return set(zip(src.tolist(), dst.tolist(), strict=True))


def assert_csr_well_formed(graph: SocialGraph) -> None:
    assert graph.indptr.dtype == np.int64
    assert graph.indices.dtype == np.int32
    assert graph.indptr.shape == (graph.n_users + 1,)
    assert graph.indptr[0] == 0
    assert graph.indptr[-1] == graph.n_edges
    assert (np.diff(graph.indptr) >= 0).all()
    for u in range(graph.n_users):
        row = graph.following(u)
        assert (np.diff(row) > 0).all(), f"row {u} not strictly increasing: {row}"
        assert u not in row
        assert ((row >= 0) & (row < graph.n_users)).all()


# -- from_edges ----------------------------------------------------------------------------


def test_from_edges_small_example() -> None:
    src = np.array([2, 0, 0, 1, 0, 2, 2, 1])
    dst = np.array([0, 2, 1, 1, 2, 1, 0, 0])
    g = SocialGraph.from_edges(3, src, dst)
    # 1->1 is a self-loop; 0->2 and 2->0 are repeated.
    assert g.n_edges == 5
    assert g.indptr.tolist() == [0, 2, 3, 5]
    assert g.following(0).tolist() == [1, 2]
    assert g.following(1).tolist() == [0]
    assert g.following(2).tolist() == [0, 1]
    assert g.out_degree().tolist() == [2, 1, 2]
    assert repr(g) == "SocialGraph(n_users=3, n_edges=5)"


@settings(max_examples=60, deadline=None)
@given(edge_lists())
def test_from_edges_drops_self_loops_and_duplicates_and_sorts(data) -> None:
    n, src, dst = data
    g = SocialGraph.from_edges(n, src, dst)
    assert_csr_well_formed(g)
    expected = {(int(s), int(d)) for s, d in zip(src, dst, strict=True) if s != d}
    assert edge_set(g) == expected
    assert g.n_edges == len(expected)
    # edges() is in CSR order: sorted by (src, dst).
    s, d = g.edges()
    assert list(zip(s.tolist(), d.tolist(), strict=True)) == sorted(expected)


@settings(max_examples=40, deadline=None)
@given(edge_lists())
def test_from_edges_is_independent_of_edge_order(data) -> None:
    n, src, dst = data
    perm = np.random.default_rng(0).permutation(src.shape[0])
    assert SocialGraph.from_edges(n, src, dst) == SocialGraph.from_edges(n, src[perm], dst[perm])


@pytest.mark.parametrize(
    ("src", "dst"),
    [([0, 3], [1, 0]), ([0, 1], [1, 3]), ([-1], [0]), ([0], [-1]), ([5], [7])],
)
def test_from_edges_rejects_out_of_range_endpoints(src: list[int], dst: list[int]) -> None:
    with pytest.raises(ValueError, match=r"0\.\.2"):
        SocialGraph.from_edges(3, np.array(src), np.array(dst))


def test_from_edges_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="same length"):
        SocialGraph.from_edges(3, np.array([0, 1]), np.array([1]))


def test_constructor_checks_indptr_length() -> None:
    with pytest.raises(ValueError, match="n_users \\+ 1 = 4"):
        SocialGraph(3, np.zeros(3, dtype=np.int64), np.zeros(0, dtype=np.int32))


def test_empty_graph() -> None:
    g = SocialGraph.empty(4)
    assert g.n_users == 4
    assert g.n_edges == 0
    assert g.out_degree().tolist() == [0, 0, 0, 0]
    assert g.followers() == g
    assert g == SocialGraph.from_edges(4, np.zeros(0, np.int64), np.zeros(0, np.int64))
    owner, nbr = g.gather(np.array([0, 3]))
    assert owner.size == 0
    assert nbr.size == 0


def test_equality() -> None:
    a = SocialGraph.from_edges(3, np.array([0, 1]), np.array([1, 2]))
    b = SocialGraph.from_edges(3, np.array([1, 0]), np.array([2, 1]))
    c = SocialGraph.from_edges(3, np.array([0, 1]), np.array([1, 0]))
    d = SocialGraph.from_edges(4, np.array([0, 1]), np.array([1, 2]))
    assert a == b
    assert a != c
    assert a != d
    assert a != "graph"


# -- followers (transpose) ------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(edge_lists())
def test_followers_is_exact_transpose(data) -> None:
    n, src, dst = data
    g = SocialGraph.from_edges(n, src, dst)
    t = g.followers()
    assert_csr_well_formed(t)
    assert t.n_users == g.n_users
    assert edge_set(t) == {(d, s) for s, d in edge_set(g)}
    for v in range(n):
        assert t.following(v).tolist() == sorted(u for u in range(n) if v in g.following(u))
    assert t.followers() == g
    assert g.followers() is t  # cached


def test_followers_small_example() -> None:
    g = SocialGraph.from_edges(4, np.array([0, 1, 2, 3]), np.array([3, 3, 3, 0]))
    t = g.followers()
    assert t.following(3).tolist() == [0, 1, 2]
    assert t.following(0).tolist() == [3]
    assert t.following(1).size == 0


# -- gather --------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    edge_lists(),
    st.lists(st.integers(min_value=0, max_value=1000), min_size=0, max_size=10),
)
def test_gather_concatenates_rows(data, picks: list[int]) -> None:
    n, src, dst = data
    g = SocialGraph.from_edges(n, src, dst)
    users = np.asarray([p % n for p in picks], dtype=np.int64)
    owner, nbr = g.gather(users)
    expected_nbr = [int(v) for u in users for v in g.following(int(u))]
    expected_owner = [i for i, u in enumerate(users) for _ in g.following(int(u))]
    assert nbr.tolist() == expected_nbr
    assert owner.tolist() == expected_owner
    assert owner.dtype == np.int64
    assert nbr.dtype == np.int32


def test_gather_example_with_repeats_and_empty_rows() -> None:
    g = SocialGraph.from_edges(4, np.array([0, 0, 2, 3]), np.array([1, 2, 3, 0]))
    owner, nbr = g.gather(np.array([2, 1, 0, 2]))
    assert owner.tolist() == [0, 2, 2, 3]
    assert nbr.tolist() == [3, 1, 2, 3]


# -- networkx ------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(edge_lists())
def test_networkx_round_trip(data) -> None:
    n, src, dst = data
    g = SocialGraph.from_edges(n, src, dst)
    nxg = g.to_networkx()
    assert isinstance(nxg, nx.DiGraph)
    assert nxg.number_of_nodes() == n
    assert set(nxg.edges()) == edge_set(g)
    assert SocialGraph.from_networkx(nxg) == g


def test_to_networkx_keeps_isolated_users() -> None:
    g = SocialGraph.from_edges(5, np.array([0]), np.array([1]))
    nxg = g.to_networkx()
    assert sorted(nxg.nodes()) == [0, 1, 2, 3, 4]
    assert list(nxg.edges()) == [(0, 1)]


def test_undirected_networkx_graph_becomes_both_directions() -> None:
    und = nx.Graph()
    und.add_nodes_from(range(4))
    und.add_edges_from([(0, 1), (2, 1), (3, 3)])
    g = SocialGraph.from_networkx(und)
    assert edge_set(g) == {(0, 1), (1, 0), (1, 2), (2, 1)}
    assert g.followers() == g


def test_from_networkx_directed_keeps_direction() -> None:
    dg = nx.DiGraph([(0, 1), (1, 2)])
    g = SocialGraph.from_networkx(dg)
    assert edge_set(g) == {(0, 1), (1, 2)}


def test_from_networkx_with_explicit_size() -> None:
    g = SocialGraph.from_networkx(nx.DiGraph([(0, 1)]), n_users=5)
    assert g.n_users == 5
    assert edge_set(g) == {(0, 1)}


def test_from_networkx_rejects_nodes_outside_range() -> None:
    dg = nx.DiGraph([(0, 7)])  # two nodes, but label 7
    with pytest.raises(ValueError, match="edge endpoints"):
        SocialGraph.from_networkx(dg)


# -- generate_graph ------------------------------------------------------------------------


def groups(n: int, n_groups: int = 12, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n_groups, size=n).astype(np.int16)


KINDS = ["homophilous", "erdos_renyi", "barabasi_albert", "watts_strogatz", "none"]


@pytest.mark.parametrize("kind", KINDS)
def test_generated_graph_is_well_formed(kind: str) -> None:
    n = 300
    g = generate_graph(GraphConfig(kind=kind, mean_degree=6), groups(n), np.random.default_rng(1))
    assert g.n_users == n
    assert_csr_well_formed(g)
    if kind == "none":
        assert g.n_edges == 0
    else:
        assert g.n_edges > 0


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_gives_identical_graph(kind: str) -> None:
    cfg = GraphConfig(kind=kind, mean_degree=6)
    group = groups(400)
    a = generate_graph(cfg, group, np.random.default_rng(7))
    b = generate_graph(cfg, group, np.random.default_rng(7))
    assert a == b


@pytest.mark.parametrize(
    "kind", ["homophilous", "erdos_renyi", "barabasi_albert", "watts_strogatz"]
)
def test_different_seed_gives_different_graph(kind: str) -> None:
    cfg = GraphConfig(kind=kind, mean_degree=6)
    group = groups(400)
    assert generate_graph(cfg, group, np.random.default_rng(1)) != generate_graph(
        cfg, group, np.random.default_rng(2)
    )


@pytest.mark.parametrize("kind", ["homophilous", "erdos_renyi"])
@pytest.mark.parametrize("mean_degree", [4.0, 10.0])
def test_mean_out_degree_large_graph(kind: str, mean_degree: float) -> None:
    n = 5000
    g = generate_graph(
        GraphConfig(kind=kind, mean_degree=mean_degree), groups(n), np.random.default_rng(3)
    )
    assert g.n_edges / n == pytest.approx(mean_degree, rel=0.15)


@pytest.mark.parametrize("kind", ["barabasi_albert", "watts_strogatz"])
def test_mean_out_degree_networkx_kinds(kind: str) -> None:
    n = 600
    g = generate_graph(GraphConfig(kind=kind, mean_degree=8), groups(n), np.random.default_rng(3))
    assert g.n_edges / n == pytest.approx(8, rel=0.15)
    # Both come from undirected networkx graphs: every follow is mutual.
    assert g.followers() == g


def test_barabasi_albert_has_heavy_tailed_followers() -> None:
    n = 2000
    g = generate_graph(
        GraphConfig(kind="barabasi_albert", mean_degree=6), groups(n), np.random.default_rng(0)
    )
    in_degree = g.followers().out_degree()
    assert in_degree.max() > 8 * np.median(in_degree)


def test_watts_strogatz_without_rewiring_is_a_ring_lattice() -> None:
    n = 50
    g = generate_graph(
        GraphConfig(kind="watts_strogatz", mean_degree=4, rewire=0.0),
        groups(n),
        np.random.default_rng(0),
    )
    for u in range(n):
        assert sorted(g.following(u).tolist()) == sorted(
            {(u - 2) % n, (u - 1) % n, (u + 1) % n, (u + 2) % n}
        )


def within_group_share(g: SocialGraph, group: np.ndarray) -> float:
    src, dst = g.edges()
    return float((group[src] == group[dst]).mean())


def test_homophily_puts_edges_within_groups() -> None:
    n = 5000
    group = groups(n)
    share = np.bincount(group) / n
    chance = float((share**2).sum())  # ~1/12
    high = generate_graph(
        GraphConfig(kind="homophilous", mean_degree=10, homophily=0.9),
        group,
        np.random.default_rng(4),
    )
    low = generate_graph(
        GraphConfig(kind="homophilous", mean_degree=10, homophily=0.0),
        group,
        np.random.default_rng(4),
    )
    assert within_group_share(high, group) > 0.8
    assert within_group_share(high, group) > 5 * chance
    assert within_group_share(low, group) == pytest.approx(chance, abs=0.03)


def test_full_homophily_with_sparse_group_labels() -> None:
    n = 2000
    group = np.random.default_rng(0).choice([0, 5, 9], size=n).astype(np.int16)
    g = generate_graph(
        GraphConfig(kind="homophilous", mean_degree=8, homophily=1.0),
        group,
        np.random.default_rng(1),
    )
    assert g.n_edges > 0
    assert within_group_share(g, group) == 1.0


def test_homophilous_followers_are_heavy_tailed() -> None:
    n = 5000
    g = generate_graph(
        GraphConfig(kind="homophilous", mean_degree=10), groups(n), np.random.default_rng(5)
    )
    in_degree = g.followers().out_degree()
    assert in_degree.max() > 10 * np.median(in_degree)


def test_erdos_renyi_ignores_groups() -> None:
    n = 5000
    group = groups(n)
    g = generate_graph(
        GraphConfig(kind="erdos_renyi", mean_degree=10, homophily=1.0),
        group,
        np.random.default_rng(6),
    )
    chance = float(((np.bincount(group) / n) ** 2).sum())
    assert within_group_share(g, group) == pytest.approx(chance, abs=0.03)


@pytest.mark.parametrize("kind", KINDS)
def test_degenerate_inputs_give_empty_graphs(kind: str) -> None:
    zero = generate_graph(
        GraphConfig(kind=kind, mean_degree=0), groups(50), np.random.default_rng(0)
    )
    assert zero.n_users == 50
    assert zero.n_edges == 0
    single = generate_graph(
        GraphConfig(kind=kind, mean_degree=5), np.zeros(1, np.int16), np.random.default_rng(0)
    )
    assert single.n_users == 1
    assert single.n_edges == 0


@given(edge_lists(max_users=15, max_edges=80))
@settings(max_examples=60, deadline=None)
def test_from_rows_is_from_edges_with_the_sources_spelled_out(data) -> None:
    n, src, dst = data
    order = np.argsort(src, kind="stable")
    indptr = np.concatenate(([0], np.cumsum(np.bincount(src, minlength=n))))
    assert SocialGraph.from_rows(n, indptr, dst[order]) == SocialGraph.from_edges(n, src, dst)


def test_from_rows_rejects_bad_rows() -> None:
    with pytest.raises(ValueError, match="indptr"):
        SocialGraph.from_rows(3, np.array([0, 1, 2]), np.array([1, 2]))
    with pytest.raises(ValueError, match="decrease"):
        SocialGraph.from_rows(3, np.array([0, 2, 1, 2]), np.array([1, 2]))
    with pytest.raises(ValueError, match="edge endpoints"):
        SocialGraph.from_rows(2, np.array([0, 1, 1]), np.array([5]))


def _homophilous_reference(
    config: GraphConfig, group: np.ndarray, rng: np.random.Generator
) -> SocialGraph:
    """The homophilous generator as plain numpy statements (one searchsorted over every edge)."""
    n = group.shape[0]
    degree = rng.poisson(config.mean_degree, size=n)
    src = np.repeat(np.arange(n, dtype=np.int64), degree)
    attract = rng.pareto(1.5, size=n) + 1.0
    order = np.argsort(group, kind="stable")
    cum = np.cumsum(attract[order])
    within = rng.random(src.shape[0]) < config.homophily
    g = group[src]
    bounds = np.searchsorted(group[order], np.arange(int(group.max()) + 2))
    lo = np.where(bounds[g] > 0, cum[np.maximum(bounds[g] - 1, 0)], 0.0)
    hi = cum[bounds[g + 1] - 1]
    u = rng.random(src.shape[0])
    weight = np.where(within, lo + u * (hi - lo), u * cum[-1])
    pos = np.minimum(np.searchsorted(cum, weight, side="right"), n - 1)
    return SocialGraph.from_edges(n, src, order[pos])


@pytest.mark.parametrize(("n", "homophily", "seed"), [(3000, 0.7, 1), (500, 1.0, 2), (50, 0.0, 3)])
def test_homophilous_generator_matches_its_numpy_statement(
    n: int, homophily: float, seed: int
) -> None:
    config = GraphConfig(kind="homophilous", mean_degree=7, homophily=homophily)
    group = groups(n, seed=seed)
    got = generate_graph(config, group, np.random.default_rng(seed))
    assert got == _homophilous_reference(config, group, np.random.default_rng(seed))
    assert got.followers() == SocialGraph.from_edges(n, *got.edges()[::-1])
