"""Social-phenomenon metrics (recoworld.metrics.social) against hand-computed values, networkx
and brute force."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from recoworld._stats import t_interval
from recoworld.metrics.social import (
    assortativity,
    attribute_assortativity,
    cascade_growth,
    cross_cutting_share,
    diffusion_nodes,
    diffusion_trees,
    echo_chamber_correlation,
    exposure_homophily,
    herding,
    homogenization,
    network_disagreement,
    nrmse,
    polarization,
    polarization_disagreement_index,
    social_summary,
    structural_virality,
    time_to_reach,
    topic_entropy,
    wiener_index,
)
from recoworld.world.graph import SocialGraph

# --------------------------------------------------------------------------- trees


def test_structural_virality_of_known_trees() -> None:
    assert structural_virality([-1]) == 0.0
    assert math.isnan(structural_virality(np.zeros(0, np.int64)))
    for n in (2, 3, 5, 10, 50):
        chain = np.arange(-1, n - 1)
        assert structural_virality(chain) == pytest.approx((n + 1) / 3)
        star = np.r_[-1, np.zeros(n - 1, np.int64)]
        assert structural_virality(star) == pytest.approx(2 * (n - 1) / n)
    # path of 4 nodes: distances 1+2+3+1+2+1 = 10
    assert wiener_index([-1, 0, 1, 2]) == 10
    # parents need not come before children: the same 4-path relabelled
    assert wiener_index([2, -1, 3, 1]) == 10
    # root with two children, one of which has two children: 5 nodes
    # pairs: r-a 1, r-b 1, r-c 2, r-d 2, a-b 2, a-c 1, a-d 1, b-c 3, b-d 3, c-d 2 = 18
    assert wiener_index([-1, 0, 0, 1, 1]) == 18
    assert structural_virality([-1, 0, 0, 1, 1]) == pytest.approx(2 * 18 / 20)


def test_wiener_index_matches_networkx_on_random_trees() -> None:
    rng = np.random.default_rng(7)
    for n in (2, 7, 40, 200):
        parents = np.r_[-1, [rng.integers(0, i) for i in range(1, n)]]
        perm = rng.permutation(n)  # relabel: node perm[i] gets the parent perm[parents[i]]
        relabelled = np.empty(n, np.int64)
        relabelled[perm] = np.where(parents >= 0, perm[np.maximum(parents, 0)], -1)
        tree = nx.Graph([(i, int(p)) for i, p in enumerate(parents) if p >= 0])
        assert wiener_index(relabelled) == int(nx.wiener_index(tree))
        assert structural_virality(relabelled) == pytest.approx(
            nx.average_shortest_path_length(tree)
        )


def test_structural_virality_rejects_non_trees() -> None:
    with pytest.raises(ValueError, match="exactly one root"):
        structural_virality([-1, -1, 0])
    with pytest.raises(ValueError, match="cycle"):
        structural_virality([-1, 2, 1])
    with pytest.raises(ValueError, match="cycle"):
        structural_virality([-1, 2, 3, 1, 0])
    with pytest.raises(ValueError, match="own parent"):
        structural_virality([-1, 1])
    with pytest.raises(ValueError, match=r"indices in 0\.\.2"):
        structural_virality([-1, 0, 5])
    with pytest.raises(ValueError, match="1-D"):
        structural_virality([[-1, 0]])
    with pytest.raises(ValueError, match="integer"):
        structural_virality([-1.0, 0.5])


def _social(rows: list[tuple], *, with_target: bool = False) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["tick", "user", "kind", "item", "parent_user"])
    frame["parent_user"] = frame["parent_user"].astype("Int32")
    frame["recipients"] = 3
    if with_target:
        frame["target"] = pd.array([None] * len(frame), dtype="Int32")
    return frame


# Item 7: user 1 posts it (tick 0); 2 reshares from 1, 3 and 4 from 2 (same tick as each other);
# 5 finds it through the recommender (a second cascade) and 6 reshares from 5; 9 claims a parent
# 99 who never adopted it (root); 10 claims 6, who adopts only later (root); 2 shares it again
# (a repeat, dropped). Item 8: 2 shares from 1 on the tick 1 posts it (same tick: a child).
ROWS = [
    (0, 1, "post", 7, None),
    (1, 2, "share", 7, 1),
    (2, 3, "share", 7, 2),
    (2, 4, "share", 7, 2),
    (3, 5, "share", 7, None),
    (3, 10, "share", 7, 6),
    (4, 6, "share", 7, 5),
    (4, 8, "follow", -1, None),
    (4, 8, "unfollow", -1, None),
    (5, 9, "share", 7, 99),
    (5, 2, "share", 7, 5),
    (6, 3, "mute", -1, None),
    (1, 1, "post", 8, None),
    (1, 2, "share", 8, 1),
]


def test_diffusion_trees_on_a_hand_written_table() -> None:
    social = _social(ROWS, with_target=True)
    nodes = diffusion_nodes(social)
    assert list(nodes.columns) == [
        "cascade",
        "item",
        "user",
        "tick",
        "kind",
        "parent",
        "parent_user",
        "depth",
    ]
    assert len(nodes) == 10  # 12 adoptions minus 2's repeat of item 7; follow rows ignored
    by_user = nodes[nodes["item"] == 7].set_index("user")
    assert by_user.loc[1, "kind"] == "post"
    assert by_user.loc[[1, 2, 3, 4], "cascade"].nunique() == 1
    assert by_user.loc[[5, 6], "cascade"].nunique() == 1
    assert by_user.loc[3, "parent_user"] == 2
    assert pd.isna(by_user.loc[9, "parent_user"])  # parent 99 missing from the table: a root
    assert pd.isna(by_user.loc[10, "parent_user"])  # parent 6 adopted later: a root
    assert by_user["depth"].to_dict() == {1: 0, 2: 1, 3: 2, 4: 2, 5: 0, 10: 0, 6: 1, 9: 0}
    parent = nodes["parent"].to_numpy()
    has = parent >= 0
    assert (nodes["user"].to_numpy()[parent[has]] == nodes["parent_user"][has].to_numpy()).all()

    trees = diffusion_trees(social)
    assert list(trees.columns) == [
        "item",
        "root",
        "start_tick",
        "end_tick",
        "size",
        "depth",
        "max_breadth",
        "structural_virality",
    ]
    table = trees.set_index(["item", "root"])
    assert len(table) == 5
    post = table.loc[(7, 1)]
    assert (post["start_tick"], post["end_tick"], post["size"]) == (0, 2, 4)
    assert (post["depth"], post["max_breadth"]) == (2, 2)
    # 1-2-{3, 4}: distances 1, 2, 2, 1, 1, 2 over 6 pairs
    assert post["structural_virality"] == pytest.approx(9 / 6)
    rec = table.loc[(7, 5)]
    assert (rec["size"], rec["depth"], rec["structural_virality"]) == (2, 1, 1.0)
    assert (rec["start_tick"], rec["end_tick"]) == (3, 4)
    for root in (9, 10):
        assert table.loc[(7, root), "size"] == 1
        assert table.loc[(7, root), "structural_virality"] == 0.0
    same_tick = table.loc[(8, 1)]
    assert (same_tick["size"], same_tick["depth"], same_tick["start_tick"]) == (2, 1, 1)


def test_diffusion_trees_accepts_integer_kinds_runs_and_no_target() -> None:
    social = _social(ROWS)
    codes = {"share": 0, "post": 1, "follow": 2, "unfollow": 3, "mute": 4}
    as_ints = social.assign(kind=social["kind"].map(codes).astype(np.int8))
    as_cat = social.assign(kind=social["kind"].astype("category"))
    reference = diffusion_trees(social)
    pd.testing.assert_frame_equal(diffusion_trees(as_ints), reference)
    pd.testing.assert_frame_equal(diffusion_trees(as_cat), reference)
    two_runs = pd.concat([social.assign(run="a"), social.assign(run="b")], ignore_index=True)
    trees = diffusion_trees(two_runs)
    assert trees.columns[0] == "run"
    assert len(trees) == 2 * len(reference)
    for run in ("a", "b"):
        part = trees[trees["run"] == run].drop(columns="run").reset_index(drop=True)
        pd.testing.assert_frame_equal(part, reference.reset_index(drop=True))


def test_diffusion_trees_validate_and_handle_empty_input() -> None:
    with pytest.raises(ValueError, match="parent_user"):
        diffusion_trees(_social(ROWS).drop(columns="parent_user"))
    with pytest.raises(ValueError, match="kind"):
        diffusion_trees(_social(ROWS).assign(kind="retweet"))
    with pytest.raises(ValueError, match="DataFrame"):
        diffusion_trees([1, 2, 3])  # type: ignore[arg-type]
    only_follows = _social([(0, 1, "follow", -1, None)])
    assert diffusion_trees(only_follows).empty
    assert diffusion_nodes(only_follows).empty
    empty = _social([])
    assert diffusion_trees(empty).empty
    assert time_to_reach(diffusion_nodes(empty), 2).empty
    assert cascade_growth(diffusion_nodes(empty), 0).empty


def test_diffusion_tree_virality_matches_networkx_on_a_random_table() -> None:
    rng = np.random.default_rng(3)
    rows = []
    for tick in range(60):
        for _ in range(5):
            item = int(rng.integers(0, 4))
            user = int(rng.integers(0, 40))
            parent = int(rng.integers(0, 40)) if rng.random() < 0.8 else None
            rows.append((tick, user, "share", item, parent))
    nodes = diffusion_nodes(_social(rows))
    trees = diffusion_trees(_social(rows))
    assert trees["size"].sum() == len(nodes)
    assert (trees["size"] > 2).sum() >= 3
    for cascade, tree in trees.iterrows():
        part = nodes[nodes["cascade"] == cascade]
        first = part.index[0]
        local = np.where(part["parent"] >= 0, part["parent"] - first, -1)
        assert structural_virality(local) == pytest.approx(tree["structural_virality"])
        if tree["size"] > 1:
            graph = nx.Graph([(i, int(p)) for i, p in enumerate(local) if p >= 0])
            assert tree["structural_virality"] == pytest.approx(
                nx.average_shortest_path_length(graph)
            )
        assert (part["tick"].to_numpy() >= tree["start_tick"]).all()
        assert tree["depth"] == part["depth"].max()
        assert tree["max_breadth"] == part["depth"].value_counts().max()


def test_cascade_growth_and_time_to_reach() -> None:
    nodes = diffusion_nodes(_social(ROWS))
    first = int(nodes.loc[(nodes["item"] == 7) & (nodes["user"] == 1), "cascade"].iloc[0])
    growth = cascade_growth(nodes, first, until=5)
    assert growth.index.tolist() == [0, 1, 2, 3, 4, 5]
    assert growth["size"].tolist() == [1, 2, 4, 4, 4, 4]
    assert growth["depth"].tolist() == [0, 1, 2, 2, 2, 2]
    with pytest.raises(ValueError, match="cascade id"):
        cascade_growth(nodes, 999)
    reach = time_to_reach(nodes, 3)
    assert reach[first] == 2.0
    assert reach.drop(first).isna().all()
    assert (time_to_reach(nodes, 1) == 0).all()
    with pytest.raises(ValueError, match="positive integer"):
        time_to_reach(nodes, 0)


def test_nrmse() -> None:
    assert nrmse([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3) / 5)
    assert nrmse([1, 2], [1, 2]) == 0.0
    assert math.isnan(nrmse([], []))
    assert math.isnan(nrmse([1, 2], [0, 0]))
    with pytest.raises(ValueError, match="same length"):
        nrmse([1, 2], [1, 2, 3])


# --------------------------------------------------------------------------- polarization


def test_bimodality_of_two_points_and_of_a_uniform() -> None:
    # n = 4, ±1 twice: m2 = m4 = 1, g = 0, κ = 3/2 · (5 · (−2) + 6) = −6, 3 · 9 / 2 = 13.5
    small = polarization([-1, -1, 1, 1])
    assert small["bimodality"] == pytest.approx(1 / 7.5)
    assert small["variance"] == 1.0
    # a symmetric two-point distribution: BC → 1 (its maximum)
    assert polarization(np.repeat([-0.8, 0.8], 50_000))["bimodality"] == pytest.approx(1, abs=1e-3)
    uniform = np.random.default_rng(0).uniform(-1, 1, 400_000)
    result = polarization(uniform, tau=0.5)
    assert result["bimodality"] == pytest.approx(5 / 9, abs=0.005)
    assert result["variance"] == pytest.approx(1 / 3, abs=0.005)
    assert result["extremity"] == pytest.approx(0.5, abs=0.005)
    normal = np.random.default_rng(1).normal(0, 0.2, 100_000)
    assert polarization(normal)["bimodality"] == pytest.approx(1 / 3, abs=0.01)


def test_bimodality_matches_scipy_bias_corrected_moments() -> None:
    stats = pytest.importorskip("scipy.stats")
    x = np.random.default_rng(2).beta(0.5, 2.0, 57) * 2 - 1
    g = stats.skew(x, bias=False)
    kappa = stats.kurtosis(x, bias=False)  # excess
    n = x.size
    expected = (g**2 + 1) / (kappa + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3)))
    assert polarization(x)["bimodality"] == pytest.approx(expected, rel=1e-12)


def test_polarization_edge_cases() -> None:
    assert math.isnan(polarization([0.1, 0.2, 0.3])["bimodality"])  # n < 4
    assert math.isnan(polarization([0.5] * 10)["bimodality"])  # no spread
    assert all(math.isnan(v) for v in polarization([]).values())
    assert polarization([np.nan, 1.0, -1.0, 0.0, 0.0])["extremity"] == 0.5
    assert polarization([0.9, -0.9, 0.1, 0.2], tau=0.85)["extremity"] == 0.5
    with pytest.raises(ValueError, match="1-D"):
        polarization(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="tau"):
        polarization([0.1], tau=-1)


def test_network_disagreement_and_pdi() -> None:
    graph = SocialGraph.from_edges(3, np.array([0, 1, 1]), np.array([1, 0, 2]))
    x = np.array([0.0, 1.0, -1.0])
    assert network_disagreement(graph, x) == pytest.approx(1 + 1 + 4)
    assert polarization_disagreement_index(graph, x) == pytest.approx(2 + 6)
    # I = x̃ᵀ(L + I)x̃ with L the Laplacian of A + Aᵀ
    rng = np.random.default_rng(4)
    g = nx.gnp_random_graph(30, 0.15, seed=5, directed=True)
    graph = SocialGraph.from_networkx(g)
    x = rng.uniform(-1, 1, 30)
    adjacency = nx.to_numpy_array(g, nodelist=range(30))
    w = adjacency + adjacency.T
    laplacian = np.diag(w.sum(axis=1)) - w
    centred = x - x.mean()
    assert polarization_disagreement_index(graph, x) == pytest.approx(
        centred @ (laplacian + np.eye(30)) @ centred
    )
    assert network_disagreement(SocialGraph.empty(3), x[:3]) == 0.0
    assert math.isnan(network_disagreement(SocialGraph.empty(0), []))
    with pytest.raises(ValueError, match="one value per user"):
        network_disagreement(graph, x[:5])
    with pytest.raises(TypeError, match="SocialGraph"):
        network_disagreement("graph", x)


def _group_graph(n_groups: int, size: int, follows: int, seed: int) -> SocialGraph:
    rng = np.random.default_rng(seed)
    src, dst = [], []
    for g in range(n_groups):
        members = np.arange(g * size, (g + 1) * size)
        for u in members:
            others = rng.choice(members[members != u], follows, replace=False)
            src += [u] * follows
            dst += others.tolist()
    return SocialGraph.from_edges(n_groups * size, np.array(src), np.array(dst))


def test_echo_chamber_correlation_copied_versus_shuffled() -> None:
    graph = _group_graph(n_groups=20, size=50, follows=5, seed=0)
    rng = np.random.default_rng(1)
    x = np.repeat(rng.uniform(-1, 1, 20), 50) + rng.normal(0, 0.02, 1000)
    assert echo_chamber_correlation(graph, x) > 0.95
    assert echo_chamber_correlation(graph, x, method="spearman") > 0.95
    shuffled = rng.permutation(x)
    assert abs(echo_chamber_correlation(graph, shuffled)) < 0.1
    assert abs(echo_chamber_correlation(graph, shuffled, method="spearman")) < 0.1
    with pytest.raises(ValueError, match=r"'pearson' or 'spearman'"):
        echo_chamber_correlation(graph, x, method="kendall")  # type: ignore[arg-type]


def test_echo_chamber_correlation_by_hand() -> None:
    # 0 follows 1 and 2, 1 follows 2, 2 and 3 follow nobody (skipped)
    graph = SocialGraph.from_edges(4, np.array([0, 0, 1]), np.array([1, 2, 2]))
    x = np.array([0.0, 1.0, 3.0, -5.0])
    # pairs (x_i, mean of followees): (0, 2), (1, 3): perfectly correlated
    assert echo_chamber_correlation(graph, x) == pytest.approx(1.0)
    graph = SocialGraph.from_edges(3, np.array([0, 1, 2]), np.array([1, 2, 0]))
    x = np.array([1.0, 2.0, 4.0])
    # pairs (1, 2), (2, 4), (4, 1)
    a, b = np.array([1.0, 2.0, 4.0]), np.array([2.0, 4.0, 1.0])
    assert echo_chamber_correlation(graph, x) == pytest.approx(np.corrcoef(a, b)[0, 1])
    assert echo_chamber_correlation(graph, x, "spearman") == pytest.approx(-0.5)
    assert math.isnan(echo_chamber_correlation(SocialGraph.empty(3), x))


# --------------------------------------------------------------------------- exposure

STANCE = np.array([0.5, -0.5, 0.0, 1.0])


def test_exposure_metrics_with_one_snapshot() -> None:
    opinions = np.array([0.8, -0.2, 0.0])
    imps = pd.DataFrame(
        {"user": [0, 0, 1, 1, 2, 0], "item": [0, 1, 0, 3, 2, 2], "tick": [0, 1, 2, 3, 4, 5]}
    )
    # |x − s|: 0.3, 1.3, 0.7, 1.2, 0.0, 0.8
    assert exposure_homophily(imps, STANCE, opinions) == pytest.approx(4.3 / 6)
    # signs: (+,+) same; (+,−), (−,+), (−,+) cross; user 2 and item 2 are neutral: skipped
    assert cross_cutting_share(imps, STANCE, opinions) == pytest.approx(3 / 4)
    assert math.isnan(exposure_homophily(imps.iloc[:0], STANCE, opinions))
    assert math.isnan(cross_cutting_share(imps.iloc[[4]], STANCE, opinions))


def test_exposure_metrics_with_opinion_snapshots_over_time() -> None:
    snapshots = pd.DataFrame(
        {"tick": [5, 0, 3], "user": [0, 0, 1], "opinion": np.array([-0.6, 0.8, -0.2], np.float32)}
    )
    imps = pd.DataFrame(
        {
            "tick": [9, 1, 4, 5, 0, 2],
            "user": [0, 0, 1, 0, 1, 2],
            "item": [1, 0, 3, 0, 0, 0],
        }
    )
    # opinions: −0.6 (latest ≤ 9), 0.8, −0.2, −0.6 (tick 5 itself), −0.2 (none ≤ 0: the
    # earliest), user 2 has no snapshot: skipped
    x = np.array([-0.6, 0.8, -0.2, -0.6, -0.2])
    s = STANCE[[1, 0, 3, 0, 0]]
    assert exposure_homophily(imps, STANCE, snapshots) == pytest.approx(np.abs(x - s).mean())
    assert cross_cutting_share(imps, STANCE, snapshots) == pytest.approx(3 / 5)


def test_exposure_metrics_validate() -> None:
    imps = pd.DataFrame({"user": [0], "item": [9]})
    with pytest.raises(ValueError, match=r"item ids must lie in 0\.\.3"):
        exposure_homophily(imps, STANCE, np.zeros(1))
    with pytest.raises(ValueError, match="missing"):
        exposure_homophily(pd.DataFrame({"user": [0]}), STANCE, np.zeros(1))
    with pytest.raises(ValueError, match="1-D"):
        cross_cutting_share(pd.DataFrame({"user": [0], "item": [0]}), STANCE, np.zeros((1, 2)))
    with pytest.raises(ValueError, match="tick"):  # snapshots need the impressions' ticks
        exposure_homophily(
            pd.DataFrame({"user": [0], "item": [0]}),
            STANCE,
            pd.DataFrame({"tick": [0], "user": [0], "opinion": [0.1]}),
        )


# --------------------------------------------------------------------------- homophily


def test_assortativity_matches_networkx() -> None:
    rng = np.random.default_rng(11)
    for seed in range(3):
        g = nx.gnp_random_graph(60, 0.08, seed=seed, directed=True)
        values = rng.integers(0, 6, 60)
        labels = rng.integers(0, 4, 60)
        for node in g.nodes:
            g.nodes[node]["v"] = int(values[node])
            g.nodes[node]["c"] = int(labels[node])
        graph = SocialGraph.from_networkx(g)
        assert assortativity(graph, values) == pytest.approx(
            nx.numeric_assortativity_coefficient(g, "v")
        )
        assert attribute_assortativity(graph, labels) == pytest.approx(
            nx.attribute_assortativity_coefficient(g, "c")
        )
        names = np.array(["a", "b", "c", "d"])[labels]  # any hashable labels
        assert attribute_assortativity(g, names) == pytest.approx(
            nx.attribute_assortativity_coefficient(g, "c")
        )


def test_assortativity_by_hand() -> None:
    within = _group_graph(n_groups=4, size=5, follows=2, seed=0)
    labels = np.repeat(np.arange(4), 5)
    assert attribute_assortativity(within, labels) == pytest.approx(1.0)
    assert assortativity(within, labels.astype(float)) == pytest.approx(1.0)
    # a bipartite "opposite" graph: every edge joins two labels → r = −1
    graph = SocialGraph.from_edges(4, np.array([0, 1, 2, 3]), np.array([2, 3, 0, 1]))
    assert attribute_assortativity(graph, [0, 0, 1, 1]) == pytest.approx(-1.0)
    assert assortativity(graph, [0.0, 0.0, 1.0, 1.0]) == pytest.approx(-1.0)
    assert math.isnan(attribute_assortativity(SocialGraph.empty(3), [0, 1, 2]))
    assert math.isnan(assortativity(SocialGraph.empty(3), [0, 1, 2]))
    with pytest.raises(ValueError, match="one label per user"):
        attribute_assortativity(graph, [0, 1])
    with pytest.raises(ValueError, match="one value per user"):
        assortativity(graph, [0.0, 1.0])


# --------------------------------------------------------------------------- filter bubbles

TOPIC = np.array([0, 0, 1, 2])


def test_topic_entropy_by_hand() -> None:
    imps = pd.DataFrame(
        {
            "tick": [0, 1, 0, 1, 5, 0, 6],
            "user": [0, 0, 1, 1, 1, 2, 2],
            "item": [0, 1, 0, 2, 3, 0, 2],
        }
    )
    entropy = topic_entropy(imps, TOPIC, 4)
    assert entropy.to_dict() == pytest.approx(
        {0: 0.0, 1: math.log(3) / math.log(4), 2: math.log(2) / math.log(4)}
    )
    per_window = topic_entropy(imps, TOPIC, 4, window=5)
    assert list(per_window.columns) == ["user", "window", "topic_entropy"]
    got = {(r.user, r.window): r.topic_entropy for r in per_window.itertuples()}
    assert got == pytest.approx({(0, 0): 0.0, (1, 0): 0.5, (1, 1): 0.0, (2, 0): 0.0, (2, 1): 0.0})
    assert topic_entropy(imps.iloc[:0], TOPIC, 4).empty
    assert topic_entropy(imps.iloc[:0], TOPIC, 4, window=2).empty
    with pytest.raises(ValueError, match="n_topics"):
        topic_entropy(imps, TOPIC, 1)
    with pytest.raises(ValueError, match=r"topic ids must lie in 0\.\.1"):
        topic_entropy(imps, TOPIC, 2)
    with pytest.raises(ValueError, match="window"):
        topic_entropy(imps, TOPIC, 4, window=0)


def test_topic_entropy_miller_madow() -> None:
    imps = pd.DataFrame(
        {
            "tick": [0, 1, 0, 1, 5, 0, 6],
            "user": [0, 0, 1, 1, 1, 2, 2],
            "item": [0, 1, 0, 2, 3, 0, 2],
        }
    )
    log4 = math.log(4)
    mm = topic_entropy(imps, TOPIC, 4, correction="miller-madow")
    # u0: one topic, N = 2 → H = 0, no correction (K_obs − 1 = 0)
    # u1: three topics once each → log 3 + 2/6 (> log 4: clipped to 1)
    # u2: two topics once each → log 2 + 1/4
    assert mm.to_dict() == pytest.approx({0: 0.0, 1: 1.0, 2: (math.log(2) + 1 / 4) / log4})
    plain = topic_entropy(imps, TOPIC, 4)
    assert (mm >= plain).all()
    assert topic_entropy(imps, TOPIC, 4, correction="none").equals(plain)
    per_window = topic_entropy(imps, TOPIC, 4, window=5, correction="miller-madow")
    got = {(r.user, r.window): r.topic_entropy for r in per_window.itertuples()}
    assert got[(1, 0)] == pytest.approx((math.log(2) + 1 / 4) / log4)
    assert got[(2, 1)] == 0.0
    with pytest.raises(ValueError, match="correction"):
        topic_entropy(imps, TOPIC, 4, correction="jackknife")  # type: ignore[arg-type]


def test_topic_entropy_miller_madow_removes_most_of_the_short_history_bias() -> None:
    # Exposure p_t ∝ 0.8^t over K = 12 topics (normalized entropy 0.899). With N = 24
    # impressions per user the plug-in mean falls ~0.10 short; Miller–Madow removes over half
    # of that (measured: 0.798 plain, 0.864 corrected; the rest is the O(1/N²) bias).
    rng = np.random.default_rng(0)
    k, n, users = 12, 24, 2000
    p = 0.8 ** np.arange(k)
    p /= p.sum()
    truth = float(-(p * np.log(p)).sum() / math.log(k))
    imps = pd.DataFrame(
        {"user": np.repeat(np.arange(users), n), "item": rng.choice(k, users * n, p=p)}
    )
    plain = float(topic_entropy(imps, np.arange(k), k).mean())
    corrected = float(topic_entropy(imps, np.arange(k), k, correction="miller-madow").mean())
    assert truth - plain > 0.08
    assert 0.0 < truth - corrected < (truth - plain) / 2


def test_homogenization_by_hand_and_by_brute_force() -> None:
    # u0 sees topic 0 twice, u1 topic 0 once, u2 topic 1: cosines 1, 0, 0 → 1/3
    imps = pd.DataFrame({"tick": [0, 0, 1, 2], "user": [0, 0, 1, 2], "item": [0, 1, 0, 2]})
    assert homogenization(imps, TOPIC, 3).to_dict() == pytest.approx({0: 1 / 3})
    by_window = homogenization(imps, TOPIC, 3, window=2)
    assert by_window[0] == pytest.approx(1.0)  # u0 and u1, both topic 0 only
    assert math.isnan(by_window[1])  # u2 alone
    rng = np.random.default_rng(5)
    n_topics, n_items = 6, 80
    topic = rng.integers(0, n_topics, n_items)
    imps = pd.DataFrame(
        {
            "tick": rng.integers(0, 30, 3000),
            "user": rng.integers(0, 25, 3000),
            "item": rng.integers(0, n_items, 3000),
        }
    )
    got = homogenization(imps, topic, n_topics, window=10)
    for w, value in got.items():
        part = imps[imps["tick"] // 10 == w]
        counts = np.zeros((25, n_topics))
        np.add.at(counts, (part["user"], topic[part["item"]]), 1)
        counts = counts[counts.sum(axis=1) > 0]
        unit = counts / np.linalg.norm(counts, axis=1, keepdims=True)
        sims = unit @ unit.T
        n = len(unit)
        assert value == pytest.approx((sims.sum() - np.trace(sims)) / (n * (n - 1)))
    assert homogenization(imps.iloc[:0], topic, n_topics, window=10).empty


# --------------------------------------------------------------------------- herding


def test_herding_on_a_constructed_experiment() -> None:
    treatment = {0: "up", 1: "up", 2: "up", 3: "down", 4: "down"}
    treatment.update({5 + i: "control" for i in range(10)})
    votes = pd.DataFrame(
        [
            (0, 2, -1),
            (0, 1, 1),  # item 0: first later vote (tick 1) +1; score 1 + 1 − 1 = 1
            (1, 0, 1),
            (1, 0, -1),  # item 1: same tick, row order: +1 first; score 1
            (2, 3, -1),  # item 2: −1 first; score 0
            (3, 1, 1),  # item 3: +1; score −1 + 1 = 0; item 4 never voted: −1
            (99, 0, 1),  # no treatment: ignored
        ]
        + [(5 + i, 0, -1) for i in range(10)],  # control: first votes all −1, scores −1
        columns=["item", "tick", "vote"],
    )
    table = herding(votes, treatment)
    assert table.index.tolist() == ["up", "down", "control"]
    assert table["n_items"].tolist() == [3, 2, 10]
    assert table["n_voted"].tolist() == [3, 1, 10]
    assert table["p_first_up"].tolist() == pytest.approx([2 / 3, 1.0, 0.0])
    assert table["mean_score"].tolist() == pytest.approx([2 / 3, -0.5, -1.0])
    mean, half = t_interval([1, 1, 0])
    assert table.loc["up", "mean_score_lo"] == pytest.approx(mean - half)
    assert table.loc["up", "mean_score_hi"] == pytest.approx(mean + half)
    # Wilson interval of 0 / 10 at 95%: (0, 0.2775); of 2 / 3: (0.2077, 0.9385)
    assert table.loc["control", "p_first_up_lo"] == pytest.approx(0.0, abs=1e-12)
    assert table.loc["control", "p_first_up_hi"] == pytest.approx(0.2775, abs=1e-4)
    assert table.loc["up", "p_first_up_lo"] == pytest.approx(0.2077, abs=1e-4)
    assert table.loc["up", "p_first_up_hi"] == pytest.approx(0.9385, abs=1e-4)
    assert table.loc["up", "score_diff"] == pytest.approx(2 / 3 + 1)
    # control has no spread: the Welch interval is the up group's own t interval
    assert table.loc["up", "score_diff_hi"] - table.loc["up", "score_diff"] == pytest.approx(half)
    assert table.loc["down", "score_diff"] == pytest.approx(0.5)
    assert table.loc["up", "p_first_up_diff"] == pytest.approx(2 / 3)
    assert table.loc["up", "p_first_up_diff_lo"] < 2 / 3 < table.loc["up", "p_first_up_diff_hi"]
    assert table.loc["control", ["score_diff", "p_first_up_diff"]].isna().all()


def test_herding_validates_and_handles_no_votes() -> None:
    no_votes = pd.DataFrame({"item": [], "tick": [], "vote": []}, dtype=np.int64)
    table = herding(no_votes, {0: "up", 1: "control"})
    assert table["mean_score"].tolist() == [1.0, 0.0]
    assert table["n_voted"].tolist() == [0, 0]
    assert table["p_first_up"].isna().all()
    with pytest.raises(ValueError, match="treatment"):
        herding(no_votes, {0: "sideways"})
    with pytest.raises(ValueError, match=r"\+1 or −1"):
        herding(pd.DataFrame({"item": [0], "tick": [0], "vote": [2]}), {0: "up"})
    with pytest.raises(ValueError, match="vote"):
        herding(pd.DataFrame({"item": [0], "tick": [0]}), {0: "up"})


# --------------------------------------------------------------------------- summary


def _world(n_users: int = 11) -> SimpleNamespace:
    graph = SocialGraph.from_edges(n_users, np.arange(n_users), (np.arange(n_users) + 1) % n_users)
    opinion = np.linspace(-1, 1, n_users).astype(np.float32)
    return SimpleNamespace(
        graph=graph,
        population=SimpleNamespace(opinion=opinion),
        catalog=SimpleNamespace(stance=STANCE),
    )


def test_social_summary_from_frames_and_from_a_folder(tmp_path: Path) -> None:
    social = _social(ROWS)
    summary = social_summary({"social": social})
    assert summary["social/cascades"] == 5
    assert summary["social/cascade_size_max"] == 4
    assert summary["social/cascade_size_mean"] == pytest.approx(10 / 5)
    assert summary["social/cascade_depth_max"] == 2
    # cascades of 2+ adoptions: 1.5 (post of 7), 1.0 (5 → 6), 1.0 (post of 8)
    assert summary["social/structural_virality_mean"] == pytest.approx(3.5 / 3)

    world = _world()
    imps = pd.DataFrame({"tick": [0, 1, 2], "user": [0, 10, 5], "item": [0, 0, 1]})
    summary = social_summary({"social": social, "impressions": imps}, world=world)
    x = world.population.opinion.astype(np.float64)
    assert summary["social/polarization_variance"] == pytest.approx(polarization(x)["variance"])
    assert summary["social/echo_chamber"] == pytest.approx(echo_chamber_correlation(world.graph, x))
    assert summary["social/exposure_homophily"] == pytest.approx(
        exposure_homophily(imps, STANCE, x)
    )
    assert summary["social/cross_cutting_share"] == pytest.approx(0.5)  # user 5 is neutral

    # the last snapshot wins for the population figures, the one at its tick for exposure
    snaps = pd.DataFrame({"tick": [0, 2], "user": [10, 10], "opinion": [-1.0, 1.0]})
    summary = social_summary(
        {"social": social, "impressions": imps, "opinions": snaps}, world=world
    )
    last = x.copy()
    last[10] = 1.0
    assert summary["social/polarization_variance"] == pytest.approx(polarization(last)["variance"])
    # user 0 (−1) vs 0.5, user 10 at tick 1 (−1) vs 0.5: both cross-cutting
    assert summary["social/cross_cutting_share"] == pytest.approx(1.0)

    folder = tmp_path / "social"
    folder.mkdir()
    social.assign(run="r0").to_parquet(folder / "part-00000.parquet")
    from_disk = social_summary(tmp_path)
    assert from_disk["social/cascades"] == 5
    assert from_disk["social/structural_virality_mean"] == pytest.approx(3.5 / 3)
    assert math.isnan(social_summary({"social": _social([])})["social/cascade_size_mean"])
    with pytest.raises(ValueError, match="social"):
        social_summary({"impressions": imps})
