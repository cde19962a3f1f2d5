"""Social behaviours inside the schedule: posts, follows, unfollows, mutes, votes, opinion models,
stubbornness, classic diffusion users, moderation, the opinions table and edge-list graphs."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recoworld.config import ScenarioConfig, override
from recoworld.errors import ConfigError
from recoworld.feed import deliver_shares
from recoworld.scenario import load_scenario
from recoworld.schedule import Simulation
from recoworld.social.classic import degroot
from recoworld.trajectory.reader import read_table
from recoworld.world.graph import SocialGraph


def small(**updates: Any) -> ScenarioConfig:
    base = {
        "world.n_users": 1500,
        "world.n_items": 800,
        "world.graph.mean_degree": 12,
        "clock.ticks": 48,
        "clock.start_rate": 6.0,
        "clock.start_hour": 18,
        "users.sociability_mean": 0.5,
        "users.share_rate": 0.3,
        "feed.social_slots": 3,
        "feed.social_every": 3,
    }
    base.update(updates)
    return override(load_scenario("default"), base)


def run(config: ScenarioConfig, out: Path | None = None) -> Simulation:
    sim = Simulation(config, out_dir=out)
    sim.run()
    return sim


def test_without_social_behaviours_nothing_is_drawn_or_changed() -> None:
    config = small()
    assert not config.social.active
    assert not config.moderation.active
    sim = Simulation(config)
    graph_before = SocialGraph(
        sim.world.n_users, sim.world.graph.indptr.copy(), sim.world.graph.indices.copy()
    )
    state = sim.social.rng.bit_generator.state
    sim.run()
    assert sim.social.rng.bit_generator.state == state  # the social stream was never used
    assert sim.world.graph == graph_before
    assert sim.world.catalog.n_live == sim.world.catalog.n_items
    assert sim.totals.posts == sim.totals.follows == sim.totals.unfollows == 0


def test_posts_are_items_authored_by_users_delivered_and_recommendable(tmp_path: Path) -> None:
    config = small(**{"social.post_rate": 0.1, "social.post_capacity": 5000})
    sim = run(config, tmp_path / "run")
    cat, n0 = sim.world.catalog, config.world.n_items
    social = read_table(tmp_path / "run", "social")
    posts = social[social["kind"] == "post"]
    assert len(posts) == sim.totals.posts > 50
    assert cat.n_live == n0 + len(posts)
    assert (posts["item"].to_numpy() >= n0).all()
    np.testing.assert_array_equal(cat.author[posts["item"]], posts["user"])
    assert (cat.author[:n0] == -1).all()
    # A post's recipients are its author's followers; some posts were seen through the inbox.
    followers = np.diff(sim.world.graph.followers().indptr)
    assert (posts["recipients"].to_numpy() <= followers[posts["user"]]).all()
    imps = read_table(tmp_path / "run", "impressions")
    post_imps = imps[imps["item"] >= n0]
    assert (post_imps["source"] == "social").any()
    assert (post_imps["source"] == "rec").any()  # posts enter the candidate pools
    # A post's stance follows its author's opinion, its topic the author's taste.
    assert np.all(np.abs(cat.stance[n0 : cat.n_live]) <= 1.0)
    assert all(
        t.endswith("post by user " + str(u))
        for t, u in zip(cat.title[posts["item"]], posts["user"], strict=True)
    )


def test_post_capacity_stops_posting_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    sim = run(small(**{"social.post_rate": 0.5, "social.post_capacity": 20}))
    assert sim.totals.posts == 20
    assert sim.world.catalog.n_free == 0
    assert "post_capacity" in caplog.text


def test_follows_unfollows_and_mutes_edit_the_graph_as_recorded(tmp_path: Path) -> None:
    config = small(
        **{
            "social.follow_rate": 0.2,
            "social.unfollow_rate": 0.3,
            "social.mute_rate": 0.3,
            "social.disagree_distance": 0.3,
        }
    )
    sim = Simulation(config, out_dir=tmp_path / "run")
    src0, dst0 = sim.world.graph.edges()
    before = set(zip(src0.tolist(), dst0.tolist(), strict=True))
    sim.run()
    social = read_table(tmp_path / "run", "social")
    follows = social[social["kind"] == "follow"]
    unfollows = social[social["kind"] == "unfollow"]
    mutes = social[social["kind"] == "mute"]
    assert len(follows) > 20
    assert len(unfollows) > 5
    assert len(mutes) > 5
    edges = set(before)
    for row in social[social["kind"].isin(["follow", "unfollow"])].itertuples():
        pair = (row.user, row.target)
        if row.kind == "follow":
            assert pair not in edges
            edges.add(pair)
        else:
            assert pair in edges
            edges.remove(pair)
    src, dst = sim.world.graph.edges()
    assert set(zip(src.tolist(), dst.tolist(), strict=True)) == edges
    # The cached transpose was kept in step with every edit.
    assert sim.world.graph.followers() == SocialGraph.from_edges(sim.world.n_users, dst, src)
    # Mutes are of followees, and the rows are the graph's mutes.
    keys = mutes["user"].to_numpy(np.int64) * sim.world.n_users + mutes["target"].to_numpy()
    assert set(keys.tolist()) >= set(sim.world.graph.muted.tolist()) - set()
    assert (follows["item"] == -1).all()
    # An unfollow follows the skip of a far-off item shared by that followee.
    assert (unfollows["target"].notna()).all()


def test_a_muted_followee_no_longer_reaches_the_inbox() -> None:
    sim = Simulation(small())
    pop, graph = sim.world.population, sim.world.graph
    sharer = int(np.argmax(np.diff(graph.followers().indptr)))
    fans = graph.followers().following(sharer)[:2].astype(np.int64)
    graph.edit(mute=(fans[:1], np.array([sharer])))
    pop.inbox_items[:] = -1
    reach = deliver_shares(pop, graph, np.array([sharer]), np.array([7], np.int32))
    assert reach[0] == np.diff(graph.followers().indptr)[sharer] - 1
    assert 7 not in pop.inbox_items[fans[0]]
    assert 7 in pop.inbox_items[fans[1]]
    # Unfollowing lifts the mute; following again delivers again.
    graph.edit(remove=(fans[:1], np.array([sharer])))
    assert graph.muted.size == 0
    graph.edit(add=(fans[:1], np.array([sharer])))
    deliver_shares(pop, graph, np.array([sharer]), np.array([9], np.int32))
    assert 9 in pop.inbox_items[fans[0]]


def test_full_stubbornness_keeps_every_opinion_at_its_start() -> None:
    sim = run(small(**{"social.stubbornness": 1.0, "users.opinion_rate": 0.5}))
    pop = sim.world.population
    np.testing.assert_allclose(pop.opinion, pop.opinion0, atol=1e-6)
    moved = run(small(**{"users.opinion_rate": 0.5})).world.population
    assert np.abs(moved.opinion - moved.opinion0).max() > 0.05


def test_degroot_users_take_one_averaging_step_every_period() -> None:
    config = small(
        **{
            "users.opinion_rate": 0.0,
            "social.opinion_model": "degroot",
            "social.opinion_every": 6,
            "clock.ticks": 6,
        }
    )
    sim = Simulation(config)
    x0 = sim.world.population.opinion.astype(np.float64).copy()
    sim.run()
    expected = degroot(sim.world.graph, x0, 1)
    np.testing.assert_allclose(sim.world.population.opinion, expected, atol=1e-6)


def test_opinion_models_apply_to_their_share_of_users_only() -> None:
    config = small(
        **{
            "users.opinion_rate": 0.0,
            "social.opinion_model": "hegselmann_krause",
            "social.opinion_fraction": 0.3,
            "social.opinion_epsilon": 0.5,
            "social.opinion_every": 4,
        }
    )
    sim = run(config)
    pop, members = sim.world.population, sim.social.opinion_users
    assert members is not None
    assert 0.2 < members.mean() < 0.4
    np.testing.assert_array_equal(pop.opinion[~members], pop.opinion0[~members])
    assert np.abs(pop.opinion[members] - pop.opinion0[members]).max() > 0.01
    assert pop.opinion[members].var() < pop.opinion0[members].var()


def test_independent_cascade_users_share_exactly_by_p(tmp_path: Path) -> None:
    config = small(
        **{
            "social.diffusion_model": "independent_cascade",
            "social.diffusion_p": 0.25,
            "social.diffusion_fraction": 0.5,
            "users.share_rate": 0.6,
            "clock.ticks": 96,
        }
    )
    sim = run(config, tmp_path / "run")
    members = sim.social.diffusion_users
    assert members is not None
    assert 0.4 < members.mean() < 0.6
    resp = read_table(tmp_path / "run", "responses")
    imps = read_table(tmp_path / "run", "impressions")
    merged = resp.merge(imps[["tick", "user", "rank", "source"]], on=["tick", "user", "rank"])
    merged = merged[members[merged["user"]]]
    social = merged[merged["source"] == "social"]
    rec = merged[merged["source"] == "rec"]
    assert len(rec) > 1000
    assert not rec["shared"].any()
    n, k = len(social), int(social["shared"].sum())
    assert n > 100
    se = np.sqrt(0.25 * 0.75 / n)
    assert abs(k / n - 0.25) < 4 * se


def test_votes_are_likes_minus_low_rated_clicks(tmp_path: Path) -> None:
    config = small(**{"users.w_vote": 1.0})
    sim = run(config, tmp_path / "run")
    resp = read_table(tmp_path / "run", "responses")
    down = resp["clicked"] & ~resp["liked"] & (resp["rating"] <= 2)
    score = resp["liked"].astype(int) - down.astype(int)
    expected = score.groupby(resp["item"]).sum()
    votes = sim.world.catalog.votes
    np.testing.assert_array_equal(votes[expected.index], expected.to_numpy())
    assert votes.sum() == expected.sum()
    assert (votes < 0).any()
    assert (votes > 0).any()


def test_herding_a_seeded_up_vote_raises_engagement() -> None:
    config = small(**{"users.w_vote": 3.0, "users.conformity_mean": 0.8})
    clicks = {}
    for vote in (-3, 3):
        sim = Simulation(config)
        sim.world.catalog.votes[:] = vote
        sim.run()
        clicks[vote] = sim.totals.clicks / sim.totals.examined
    assert clicks[3] > clicks[-3] * 1.1


def test_warning_labels_downranking_and_notes(tmp_path: Path) -> None:
    config = small(
        **{
            "world.misinformation": 0.2,
            "moderation.warning_labels": True,
            "moderation.label_recall": 0.5,
            "moderation.downrank": True,
        }
    )
    sim = run(config, tmp_path / "run")
    cat = sim.world.catalog
    assert 0.15 < cat.misinfo.mean() < 0.25
    assert not (cat.labeled & ~cat.misinfo).any()
    assert 0.35 < cat.labeled.sum() / cat.misinfo.sum() < 0.65
    np.testing.assert_array_equal(cat.utility_shift < 0, cat.labeled)
    assert (cat.share_factor[cat.misinfo & ~cat.labeled] > 1).all()
    imps = read_table(tmp_path / "run", "impressions")
    imps["labeled"] = cat.labeled[imps["item"]]
    last = imps.groupby(["tick", "user"])["rank"].transform("max")
    # Down-ranked: on every page, labeled items come after all unlabeled ones.
    first_labeled = imps[imps["labeled"]].groupby(["tick", "user"])["rank"].min()
    last_plain = imps[~imps["labeled"]].groupby(["tick", "user"])["rank"].max()
    both = first_labeled.index.intersection(last_plain.index)
    assert len(both) > 20
    assert (first_labeled[both] > last_plain[both]).all()
    assert (last >= 0).all()
    # Every user who left has its leaving on its last examined item, even when a down-ranked
    # item sits behind padding.
    resp = read_table(tmp_path / "run", "responses")
    sessions = read_table(tmp_path / "run", "sessions")
    assert int(resp["left"].sum()) == int((sessions["end_reason"] == "left").sum()) > 0
    # The same world without moderation: misinformation only.
    plain = Simulation(override(config, {"moderation.warning_labels": False}))
    np.testing.assert_array_equal(plain.world.catalog.misinfo, cat.misinfo)
    assert not plain.world.catalog.labeled.any()
    # Community notes come once a false item was shared enough.
    noted = run(
        override(config, {"moderation.warning_labels": False, "moderation.community_notes": 3})
    )
    ncat = noted.world.catalog
    assert ncat.labeled.any()
    assert (ncat.shares[ncat.labeled] >= 3).all()
    assert (ncat.misinfo[ncat.labeled]).all()


def test_opinion_snapshots(tmp_path: Path) -> None:
    config = small(**{"record.opinion_every": 12, "clock.ticks": 30})
    sim = run(config, tmp_path / "run")
    ops = read_table(tmp_path / "run", "opinions")
    assert sorted(ops["tick"].unique().tolist()) == [-1, 11, 23, 29]
    n = sim.world.n_users
    assert (ops.groupby("tick").size() == n).all()
    first = ops[ops["tick"] == -1].sort_values("user")["opinion"].to_numpy()
    np.testing.assert_array_equal(first, sim.world.population.opinion0)
    last = ops[ops["tick"] == 29].sort_values("user")["opinion"].to_numpy()
    np.testing.assert_array_equal(last, sim.world.population.opinion)


def test_social_runs_are_byte_identical(tmp_path: Path) -> None:
    config = small(
        **{
            "social.post_rate": 0.02,
            "social.follow_rate": 0.1,
            "social.unfollow_rate": 0.2,
            "social.mute_rate": 0.1,
            "social.opinion_model": "deffuant_weisbuch",
            "social.opinion_fraction": 0.5,
            "social.diffusion_model": "independent_cascade",
            "social.diffusion_fraction": 0.3,
            "world.misinformation": 0.1,
            "moderation.community_notes": 2,
            "users.w_vote": 0.5,
            "users.w_stance": 0.5,
            "clock.ticks": 30,
        }
    )

    def digest(out: Path) -> dict[str, str]:
        run(config, out)
        return {
            str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*.parquet"))
        }

    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_graph_from_edge_list(tmp_path: Path) -> None:
    path = tmp_path / "edges.csv"
    path.write_text("# a comment\nsrc,dst,weight\n0,1,0.5\n1,2,1\n2,0,1\n0,1,3\n", "utf-8")
    g = SocialGraph.from_edge_list(path, 3)
    assert g.n_edges == 3
    assert g.following(0).tolist() == [1]
    ws = tmp_path / "edges.txt"
    ws.write_text("0 2\n2   1\n", "utf-8")
    assert SocialGraph.from_edge_list(ws, 3).n_edges == 2
    with pytest.raises(ConfigError, match=r"outside 0\.\.1"):
        SocialGraph.from_edge_list(ws, 2)
    with pytest.raises(ConfigError, match="no such file"):
        SocialGraph.from_edge_list(tmp_path / "missing.txt", 3)
    config = small(**{"world.edges": str(path), "world.n_users": 3, "clock.ticks": 2})
    assert Simulation(config).world.graph == g


def test_bad_social_settings_are_named() -> None:
    with pytest.raises(ConfigError, match=r"social\.opinion_model"):
        small(**{"social.opinion_model": "voter"})
    with pytest.raises(ConfigError, match=r"social\.follow_mix"):
        small(**{"social.follow_mix": [0, 0, 0]})
    with pytest.raises(ConfigError, match=r"social\.mute_rate"):
        small(**{"social.unfollow_rate": 0.8, "social.mute_rate": 0.5})
    with pytest.raises(ConfigError, match=r"world\.misinformation"):
        small(**{"world.misinformation": 1.5})


def test_social_table_is_a_diffusion_log(tmp_path: Path) -> None:
    sim = run(small(**{"social.post_rate": 0.02}), tmp_path / "run")
    social = read_table(tmp_path / "run", "social")
    shares = social[social["kind"] == "share"]
    assert len(shares) == sim.totals.shares > 0
    # A reshare's parent shared (or posted) the same item at an earlier or the same tick.
    child = shares.dropna(subset=["parent_user"])
    assert len(child) > 0
    adopters = pd.concat([shares, social[social["kind"] == "post"]])
    first = adopters.groupby(["item", "user"])["tick"].min()
    keys = list(zip(child["item"], child["parent_user"].astype(int), strict=True))
    found = first.reindex(keys)
    assert found.notna().all()
    assert (found.to_numpy() <= child["tick"].to_numpy()).all()


def test_biased_assimilation_and_an_engagement_feed_polarize() -> None:
    """Clicks on agreeing items push opinions outwards; the oracle that knows the confirmation
    bias shows more agreeing items than the stance-blind one, and the bridging one fewer."""
    base = {
        "users.w_stance": 1.5,
        "users.opinion_rate": 0.05,
        "users.opinion_epsilon": 0.5,
        "policy.name": "oracle",
    }
    extremity = {}
    for rho in (0.0, 0.05):
        sim = run(small(**base, **{"users.opinion_reinforcement": rho}))
        extremity[rho] = float(np.abs(sim.world.population.opinion).mean())
    assert extremity[0.05] > extremity[0.0] + 0.02

    def distance(params: dict[str, Any], out: Path) -> float:
        sim = run(small(**base, **{"policy.params": params, "clock.ticks": 12}), out)
        imps = read_table(out, "impressions")
        imps = imps[imps["source"] == "rec"]
        x = sim.world.population.opinion0[imps["user"]]
        return float(np.abs(x - sim.world.catalog.stance[imps["item"]]).mean())

    aware = distance({}, Path(tempfile.mkdtemp()) / "a")
    blind = distance({"use_stance": False}, Path(tempfile.mkdtemp()) / "b")
    bridging = distance({"use_stance": False, "bridging": 1.0}, Path(tempfile.mkdtemp()) / "c")
    assert aware < blind - 0.1
    assert bridging > blind + 0.1


def test_social_behaviours_on_a_real_friend_graph(tmp_path: Path) -> None:
    """Last.fm's friend graph plugs in as the follow graph; shares travel along its edges."""
    from .conftest import shared_dataset

    folder = shared_dataset("lastfm-2k")
    config = override(
        load_scenario("social"),
        {
            "world.dataset": str(folder),
            "clock.ticks": 72,
            "clock.start_hour": 18,
            "clock.start_rate": 4.0,
            "social.post_rate": 0.02,
            "social.follow_rate": 0.05,
            "users.w_stance": 1.0,
        },
    )
    sim = Simulation(config, out_dir=tmp_path / "run")
    src, dst = sim.world.graph.edges()
    friends = set(zip(src.tolist(), dst.tolist(), strict=True))
    assert sim.world.n_users == 1893
    assert len(friends) > 20_000
    sim.run()
    social = read_table(tmp_path / "run", "social")
    reshares = social[(social["kind"] == "share") & social["parent_user"].notna()]
    assert len(reshares) > 20
    follows = social[social["kind"] == "follow"]
    edges = friends | set(zip(follows["user"], follows["target"], strict=True))
    # A reshare's parent is someone the resharer follows (a friend, or followed during the run).
    pairs = zip(reshares["user"], reshares["parent_user"].astype(int), strict=True)
    assert all(pair in edges for pair in pairs)
