"""Dataset loaders: exact counts on the shared real datasets, auto-detection, the generic format,
and malformed input.

The real datasets live beside the project in ``../shared/data`` and are never copied into it.
Tests that need them skip when the folder is missing, except under ``CI``, where they fail.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recoworld.data import (
    FORMATS,
    SPLITS,
    Dataset,
    detect_format,
    load_agent4rec,
    load_ciaodvd,
    load_dataset,
    load_filmtrust,
    load_generic,
    load_lastfm,
    load_ml1m,
    load_movielens,
    write_generic,
)
from recoworld.errors import DatasetError, RecoworldError

from .conftest import shared_dataset

_TIMES: dict[str, float] = {}


@functools.cache
def _load(name: str) -> Dataset:
    started = time.perf_counter()
    dataset = load_dataset(shared_dataset(name))
    _TIMES[name] = time.perf_counter() - started
    return dataset


def load(name: str) -> Dataset:
    shared_dataset(name)
    return _load(name)


def check_invariants(ds: Dataset) -> None:
    """What the Dataset docstring promises, for any loader."""
    inter = ds.interactions
    assert list(inter.columns) == ["user", "item", "rating", "weight", "timestamp", "split"]
    assert inter["user"].dtype == np.int64
    assert inter["item"].dtype == np.int64
    assert inter["rating"].dtype == np.float32
    assert inter["weight"].dtype == np.float32
    assert inter["timestamp"].dtype == np.int64
    assert isinstance(inter["split"].dtype, pd.CategoricalDtype)
    assert list(inter["split"].cat.categories) == list(SPLITS)
    assert inter["user"].between(0, ds.n_users - 1).all()
    assert inter["item"].between(0, ds.n_items - 1).all()
    assert list(ds.items.columns[:5]) == ["raw_id", "title", "topics", "text", "mean_rating"]
    assert list(ds.users.columns[:4]) == ["raw_id", "gender", "age", "occupation"]
    assert ds.items.index.equals(pd.RangeIndex(ds.n_items))
    assert ds.users.index.equals(pd.RangeIndex(ds.n_users))
    assert ds.items["raw_id"].is_unique
    assert ds.users["raw_id"].is_unique
    assert all(isinstance(t, tuple) for t in ds.items["topics"])
    assert all(isinstance(t, str) for t in ds.items["title"])
    assert all(isinstance(t, str) for t in ds.items["text"])
    assert ds.users["age"].dtype == "Int64"
    if ds.edges is not None:
        assert list(ds.edges.columns) == ["src", "dst"]
        src, dst = ds.edges["src"].to_numpy(), ds.edges["dst"].to_numpy()
        assert ((src >= 0) & (src < ds.n_users) & (dst >= 0) & (dst < ds.n_users)).all()
        assert not (src == dst).any()
        assert not ds.edges.duplicated().any()
        if not ds.directed:
            pairs = set(zip(src.tolist(), dst.tolist(), strict=True))
            assert all((b, a) in pairs for a, b in pairs)


def numeric_order(ds: Dataset) -> None:
    """Dense ids follow the numeric order of numeric raw ids."""
    for table in (ds.users, ds.items):
        raw = table["raw_id"].astype(np.int64).to_numpy()
        assert (np.diff(raw) > 0).all()


# ---------------------------------------------------------------------------------------------
# The shared datasets: counts as data/README.md gives them (or the file's truth, noted)
# ---------------------------------------------------------------------------------------------


def test_movielens_counts() -> None:
    ds = load("ml-latest-small")
    check_invariants(ds)
    numeric_order(ds)
    assert ds.format == "movielens"
    assert ds.name == "ml-latest-small"
    assert len(ds.interactions) == 100_836
    assert ds.n_users == 610
    assert ds.n_items == 9_742  # every movie of movies.csv ...
    assert ds.interactions["item"].nunique() == 9_724  # ... of which 9,724 are rated
    assert set(ds.interactions["split"].astype(str)) == {"all"}
    assert ds.edges is None
    assert ds.rating_scale == (0.5, 5.0, 0.5)
    assert ds.interactions["rating"].min() == 0.5
    assert ds.interactions["rating"].max() == 5.0
    assert (ds.interactions["timestamp"] > 8e8).all()
    toy = ds.items.iloc[0]
    assert (toy["raw_id"], toy["title"]) == ("1", "Toy Story (1995)")
    assert toy["topics"] == ("Adventure", "Animation", "Children", "Comedy", "Fantasy")
    assert toy["text"].startswith("Tags: ")
    assert "pixar" in toy["text"]
    assert sum(t == () for t in ds.items["topics"]) == 34  # "(no genres listed)"
    assert ds.items["text"].str.startswith("Tags: ").sum() == 1_572  # movies with a tag
    assert ds.items["mean_rating"].isna().all()


def test_agent4rec_counts_and_ids() -> None:
    ds = load("ml-1m-agent4rec")
    check_invariants(ds)
    assert ds.format == "agent4rec"
    counts = ds.interactions["split"].value_counts()
    assert (counts["train"], counts["valid"], counts["test"], counts["all"]) == (
        74_271,
        55_486,
        55_492,
        0,
    )
    assert ds.n_users == 1_000
    assert ds.n_items == 3_292
    assert ds.interactions["rating"].isna().all()
    assert (ds.interactions["weight"] == 1).all()
    assert ds.rating_scale is None
    assert ds.edges is None
    # the dense ids ARE Agent4Rec's ids: the first line of train.txt, in order
    first = (shared_dataset("ml-1m-agent4rec") / "train.txt").read_text().split("\n")[0].split()
    train = ds.split("train")
    assert train[train["user"] == int(first[0])]["item"].tolist() == [int(i) for i in first[1:]]
    assert (ds.items["raw_id"] == ds.items.index.astype(str)).all()
    assert (ds.users["raw_id"] == ds.users.index.astype(str)).all()
    assert ds.items.loc[0, "title"] == "Toy Story (1995)"
    assert ds.items.loc[0, "topics"] == ("Animation", "Children's", "Comedy")
    assert ds.items.loc[0, "text"].startswith("A group of toys")
    assert ds.items.loc[0, "mean_rating"] == pytest.approx(4.146846413095811)
    assert ds.items["ml1m_id"].notna().all()
    assert ds.items.loc[0, "ml1m_id"] == 1
    assert not ds.items["title"].str.contains("ï¿½", regex=False).any()
    assert ds.items["title"].str.contains("\ufffd", regex=False).sum() > 0
    assert ds.items["text"].ne("").all()
    # attributes through user_map.csv → users.dat; levels from user_statistic.csv
    user0 = ds.users.loc[0]
    assert (user0["ml1m_id"], user0["gender"], user0["age"], user0["occupation"]) == (
        1,
        "F",
        1,
        "K-12 student",
    )
    assert ds.users.loc[1, "ml1m_id"] == 8
    assert ds.users[["gender", "age", "occupation"]].notna().all().all()
    for column in ("a4r_activity", "a4r_diversity", "a4r_conformity"):
        assert ds.users[column].between(1, 3).all()
    assert tuple(ds.users.loc[1, ["a4r_activity", "a4r_diversity", "a4r_conformity"]]) == (
        2,
        1,
        2,
    )
    # no user-item pair is in two splits
    assert not ds.interactions.duplicated(["user", "item"]).any()


def test_lastfm_counts() -> None:
    ds = load("lastfm-2k")
    check_invariants(ds)
    numeric_order(ds)
    assert ds.format == "lastfm"
    assert len(ds.interactions) == 92_846
    assert ds.n_users == 1_893
    assert ds.n_items == 17_632
    assert ds.interactions["rating"].isna().all()
    assert ds.interactions["weight"].to_numpy(np.float64).sum() == 69_184_826  # total plays
    assert ds.interactions["weight"].max() == 352_698
    assert ds.rating_scale is None
    # user_friends.dat has 25,435 rows: 12,717 friendships listed both ways and one (user 1 →
    # user 2) listed one way only, so 12,718 undirected friendships, stored both ways
    assert ds.directed is False
    assert ds.edges is not None
    assert len(ds.edges) == 25_436
    assert (ds.edges["src"] < ds.edges["dst"]).sum() == 12_718
    raw = ds.users["raw_id"].to_numpy()
    pairs = set(zip(raw[ds.edges["src"]], raw[ds.edges["dst"]], strict=True))
    assert ("1", "2") in pairs
    assert ("2", "1") in pairs
    assert ds.items.loc[0, "title"] == "MALICE MIZER"
    assert ds.items["url"].str.startswith("http://www.last.fm/music/").all()
    # no user_taggedartists*.dat in the shared copy: artists have no topics
    assert not (shared_dataset("lastfm-2k") / "user_taggedartists.dat").exists()
    assert all(t == () for t in ds.items["topics"])


def test_filmtrust_counts() -> None:
    ds = load("filmtrust")
    check_invariants(ds)
    numeric_order(ds)
    assert ds.format == "filmtrust"
    assert len(ds.interactions) == 35_497
    assert ds.interactions["user"].nunique() == 1_508  # the README's 1,508 users rate ...
    assert ds.n_users == 1_633  # ... and 125 more appear only in trust.txt
    assert ds.n_items == 2_071
    assert ds.edges is not None
    assert len(ds.edges) == 1_806
    assert ds.directed is True
    assert ds.rating_scale == (0.5, 4.0, 0.5)
    assert sorted(ds.interactions["rating"].unique()) == [x / 2 for x in range(1, 9)]
    # three user-item pairs are rated twice in the file; every row is kept
    assert ds.interactions.duplicated(["user", "item"]).sum() == 3


def test_ciaodvd_counts() -> None:
    ds = load("ciaodvd")
    check_invariants(ds)
    numeric_order(ds)
    assert ds.format == "ciaodvd"
    assert len(ds.interactions) == 72_665
    assert ds.interactions["user"].nunique() == 17_615  # the README's 17,615 users rate ...
    assert ds.n_users == 19_533  # ... and 1,918 more appear only in ciao_trusts.txt
    assert ds.n_items == 16_121
    assert ds.edges is not None
    assert len(ds.edges) == 40_133
    assert ds.directed is True
    assert ds.rating_scale == (1.0, 5.0, 1.0)
    assert all(len(t) == 1 and t[0].startswith("genre-") for t in ds.items["topics"])
    assert len(ds.topic_names()) == 17
    first = ds.interactions.iloc[0]  # 1,1,1,1,5,2000-07-12
    assert first["timestamp"] == 963_360_000
    assert ds.items.loc[first["item"], "topics"] == ("genre-1",)
    assert (ds.interactions["timestamp"] > 0).all()
    # 320 user-movie pairs are reviewed more than once (distinct reviews); every row is kept
    assert ds.interactions.duplicated(["user", "item"]).sum() == 320


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("ml-latest-small", "movielens"),
        ("ml-1m-agent4rec", "agent4rec"),
        ("lastfm-2k", "lastfm"),
        ("filmtrust", "filmtrust"),
        ("ciaodvd", "ciaodvd"),
    ],
)
def test_detects_the_shared_formats(name: str, fmt: str) -> None:
    assert detect_format(shared_dataset(name)) == fmt


@pytest.mark.parametrize(
    "name", ["ml-latest-small", "ml-1m-agent4rec", "lastfm-2k", "filmtrust", "ciaodvd"]
)
def test_loads_fast(name: str) -> None:
    load(name)
    assert _TIMES[name] < 5.0, f"{name} took {_TIMES[name]:.2f} s (about 0.2 s expected)"


def test_explicit_format_matches_detection() -> None:
    folder = shared_dataset("filmtrust")
    ds = load_dataset(folder, "FilmTrust", name="ft")
    assert ds.name == "ft"
    assert len(ds.interactions) == len(load_filmtrust(folder).interactions)


# ---------------------------------------------------------------------------------------------
# ML-1M: the shared users.dat / movies.dat plus a small synthetic ratings.dat
# ---------------------------------------------------------------------------------------------


def test_ml1m_with_synthetic_ratings(tmp_path: Path) -> None:
    source = shared_dataset("ml-1m-agent4rec")
    for name in ("users.dat", "movies.dat"):
        (tmp_path / name).symlink_to(source / name)
    (tmp_path / "ratings.dat").write_text(
        "1::1193::5::978300760\n1::661::3::978302109\n6040::1::4::956703977\n2::1::1::978298413\n"
    )
    assert detect_format(tmp_path) == "ml1m"
    ds = load_dataset(tmp_path)
    check_invariants(ds)
    numeric_order(ds)
    assert ds.format == "ml1m"
    assert len(ds.interactions) == 4
    assert ds.n_users == 6_040  # every user of users.dat
    assert ds.n_items == 3_883  # every movie of movies.dat
    assert ds.rating_scale == (1.0, 5.0, 1.0)
    first = ds.interactions.iloc[0]
    assert (first["user"], first["rating"], first["timestamp"]) == (0, 5.0, 978300760)
    assert ds.items.loc[first["item"], "raw_id"] == "1193"
    assert ds.users.loc[0].tolist()[:4] == ["1", "F", 1, "K-12 student"]
    assert ds.users.loc[0, "zip_code"] == "48067"
    assert ds.users.loc[1, "occupation"] == "self-employed"
    assert ds.items.loc[0, "topics"] == ("Animation", "Children's", "Comedy")
    assert ds.users["gender"].isin(["F", "M"]).all()


def test_ml1m_reads_latin1(tmp_path: Path) -> None:
    (tmp_path / "ratings.dat").write_text("7::73::4::978300760\n")
    (tmp_path / "movies.dat").write_bytes(
        "73::Misérables, Les (1995)::Drama|Musical\n".encode("latin-1")
    )
    (tmp_path / "users.dat").write_text("7::M::35::7::06810\n")
    ds = load_ml1m(tmp_path)
    assert ds.items.loc[0, "title"] == "Misérables, Les (1995)"
    assert ds.users.loc[0, ["gender", "age", "occupation"]].tolist() == [
        "M",
        35,
        "executive/managerial",
    ]


def test_lastfm_topics_from_tag_assignments(tmp_path: Path) -> None:
    (tmp_path / "user_artists.dat").write_text(
        "userID\tartistID\tweight\r\n1\t10\t5\r\n2\t10\t7\r\n2\t11\t1\r\n"
    )
    (tmp_path / "artists.dat").write_text(
        'id\tname\turl\tpictureURL\r\n10\tA "quoted" band\thttp://a\t\r\n11\tB\thttp://b\thttp://p\r\n'
        "12\tNever played\thttp://c\t\r\n"
    )
    (tmp_path / "tags.dat").write_bytes(
        "tagID\ttagValue\r\n1\trock\r\n2\tmétal\r\n".encode("latin-1")
    )
    (tmp_path / "user_taggedartists.dat").write_text(
        "userID\tartistID\ttagID\tday\tmonth\tyear\r\n"
        "1\t10\t2\t1\t1\t2010\r\n2\t10\t2\t1\t1\t2010\r\n3\t10\t1\t1\t1\t2010\r\n"
        "1\t11\t9\t1\t1\t2010\r\n"
    )
    (tmp_path / "user_friends.dat").write_text("userID\tfriendID\r\n1\t2\r\n2\t1\r\n1\t4\r\n")
    ds = load_lastfm(tmp_path, n_topics=5)
    check_invariants(ds)
    assert ds.n_items == 3  # the unplayed artist is listed, so it is an item
    assert ds.users["raw_id"].tolist() == ["1", "2", "3", "4"]  # 3 only tags, 4 only a friend
    assert ds.items["topics"].tolist() == [("métal", "rock"), ("tag-9",), ()]
    assert ds.items.loc[0, "title"] == 'A "quoted" band'
    assert ds.edges is not None
    assert len(ds.edges) == 4
    assert ds.directed is False


# ---------------------------------------------------------------------------------------------
# The generic format
# ---------------------------------------------------------------------------------------------


def write_fixture(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "interactions.csv").write_text(
        "user,item,rating,weight,timestamp,split\n"
        "alice,m10,4.5,,1600000000,train\n"
        "bob,m2,3,2.5,2020-09-13T12:26:40Z,train\n"
        "alice,m2,,1,,valid\n"
        " carol ,m10,1.5,1,,test\n"
        "bob,m10,2,1,1600000001,\n"
    )
    (folder / "items.csv").write_text(
        "item,title,topics,text,mean_rating,studio\n"
        'm2,"Two, the sequel",drama|comedy,"A line\nand another",3.5,acme\n'
        "m10,Ten,drama,,,\n"
        "m99,Never seen,,,,indie\n"
    )
    (folder / "users.csv").write_text(
        "user,gender,age,occupation,city\nalice,F,34,engineer,Paris\nbob,,,,\n"
    )
    (folder / "edges.csv").write_text("src,dst,directed\nalice,bob,false\ndave,alice,false\n")


def test_generic_fixture(tmp_path: Path) -> None:
    write_fixture(tmp_path)
    assert detect_format(tmp_path) == "generic"
    ds = load_dataset(tmp_path)
    check_invariants(ds)
    assert ds.format == "generic"
    # string ids, sorted; "carol" had spaces around it; dave exists only in edges.csv
    assert ds.users["raw_id"].tolist() == ["alice", "bob", "carol", "dave"]
    assert ds.items["raw_id"].tolist() == ["m10", "m2", "m99"]  # text order; m99 never seen
    inter = ds.interactions
    assert inter["user"].tolist() == [0, 1, 0, 2, 1]
    assert inter["item"].tolist() == [0, 1, 1, 0, 0]
    assert inter["split"].astype(str).tolist() == ["train", "train", "valid", "test", "all"]
    np.testing.assert_array_equal(inter["rating"], [4.5, 3.0, np.nan, 1.5, 2.0])
    np.testing.assert_array_equal(inter["weight"], [1.0, 2.5, 1.0, 1.0, 1.0])
    assert inter["timestamp"].tolist() == [1_600_000_000, 1_600_000_000, -1, -1, 1_600_000_001]
    assert ds.rating_scale == (1.5, 4.5, 0.5)
    m2 = ds.items.loc[1]
    assert (m2["title"], m2["topics"], m2["text"], m2["mean_rating"], m2["studio"]) == (
        "Two, the sequel",
        ("drama", "comedy"),
        "A line\nand another",
        3.5,
        "acme",
    )
    assert ds.items.loc[2, "topics"] == ()
    assert ds.users.loc[0, ["gender", "age", "occupation", "city"]].tolist() == [
        "F",
        34,
        "engineer",
        "Paris",
    ]
    assert ds.users["gender"].isna().tolist() == [False, True, True, True]
    assert ds.directed is False
    assert ds.edges is not None
    assert sorted(zip(ds.edges["src"], ds.edges["dst"], strict=True)) == [
        (0, 1),
        (0, 3),
        (1, 0),
        (3, 0),
    ]


def test_generic_numeric_ids_sort_numerically(tmp_path: Path) -> None:
    (tmp_path / "interactions.csv").write_text("user,item\n10,7\n9,007\n100,70\n")
    (tmp_path / "edges.csv").write_text("src,dst\n9,10\n")
    ds = load_generic(tmp_path)
    assert ds.users["raw_id"].tolist() == ["9", "10", "100"]
    # "007" and "7" are two ids (kept as written), equal as numbers, then ordered as text
    assert ds.items["raw_id"].tolist() == ["007", "7", "70"]
    assert ds.interactions["item"].tolist() == [1, 0, 2]
    assert ds.directed is True
    assert ds.edges is not None
    assert ds.edges.values.tolist() == [[0, 1]]
    assert ds.rating_scale is None


def assert_same(a: Dataset, b: Dataset) -> None:
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    columns = ["raw_id", "title", "topics", "text", "mean_rating"]
    pd.testing.assert_frame_equal(a.items[columns], b.items[columns])
    pd.testing.assert_frame_equal(
        a.users[["raw_id", "gender", "age", "occupation"]],
        b.users[["raw_id", "gender", "age", "occupation"]],
    )
    assert a.directed == b.directed
    if a.edges is None:
        assert b.edges is None
    else:
        assert b.edges is not None
        pd.testing.assert_frame_equal(a.edges, b.edges)


def test_generic_round_trip(tmp_path: Path) -> None:
    write_fixture(tmp_path / "in")
    first = load_generic(tmp_path / "in")
    again = load_generic(write_generic(first, tmp_path / "out"))
    assert_same(first, again)
    assert again.rating_scale == first.rating_scale
    assert again.users["city"].tolist()[0] == "Paris"
    assert again.items["studio"].fillna("").tolist() == ["", "acme", "indie"]


@pytest.mark.parametrize("name", ["filmtrust", "lastfm-2k", "ml-1m-agent4rec"])
def test_shared_dataset_round_trips_through_generic(name: str, tmp_path: Path) -> None:
    original = load(name)
    again = load_generic(write_generic(original, tmp_path))
    assert_same(original, again)


# ---------------------------------------------------------------------------------------------
# Malformed input, missing files, unknown formats
# ---------------------------------------------------------------------------------------------


def movielens_folder(folder: Path, ratings: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.csv").write_text(ratings)
    (folder / "movies.csv").write_text(
        'movieId,title,genres\n1,"Film, The (1999)",Drama\n2,Other (2000),Comedy|Drama\n'
    )
    return folder


def agent4rec_folder(folder: Path, train: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.txt").write_text(train)
    (folder / "valid.txt").write_text("0 1\n")
    (folder / "test.txt").write_text("0 2\n")
    (folder / "movie_detail.csv").write_text(
        "movie_id,title,genres,rating,summary\n0,A,Drama,3.5,x\n1,B,Comedy,4.0,y\n2,C,,,\n"
    )
    return folder


def raises_at(call: object, file: str, line: int | None, *words: str) -> DatasetError:
    assert callable(call)
    with pytest.raises(DatasetError) as info:
        call()
    error = info.value
    message = str(error)
    assert file in message, message
    if line is not None:
        assert f"line {line}:" in message, message
        assert error.line == line
        assert error.path is not None
        assert error.path.endswith(file)
    for word in words:
        assert word in message, message
    return error


def test_non_numeric_rating_names_file_and_line(tmp_path: Path) -> None:
    rows = [f"1,{1 + k % 2},4.0,964982703" for k in range(15)]
    rows.append("2,1,four,964982703")  # data row 16 = line 17
    folder = movielens_folder(tmp_path, "userId,movieId,rating,timestamp\n" + "\n".join(rows))
    raises_at(
        lambda: load_movielens(folder), "ratings.csv", 17, "'rating'", "star rating", "'four'"
    )


def test_line_numbers_count_blank_lines_and_quoted_newlines(tmp_path: Path) -> None:
    folder = movielens_folder(tmp_path, "userId,movieId,rating,timestamp\n1,1,4,5\n\n1,2,x,5\n")
    raises_at(lambda: load_movielens(folder), "ratings.csv", 4, "'x'")
    (tmp_path / "interactions.csv").unlink(missing_ok=True)
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4,5\n")
    (tmp_path / "movies.csv").write_text(
        'movieId,title,genres\n1,"Two\nlines",Drama\n1.5,Other,Drama\n'
    )
    raises_at(lambda: load_movielens(tmp_path), "movies.csv", 4, "an integer", "1.5")


def test_rating_outside_the_scale(tmp_path: Path) -> None:
    folder = movielens_folder(tmp_path, "userId,movieId,rating,timestamp\n1,1,4.25,5\n")
    raises_at(lambda: load_movielens(folder), "ratings.csv", 2, "from 0.5 to 5 in steps of 0.5")
    (tmp_path / "ft").mkdir()
    (tmp_path / "ft" / "ratings.txt").write_text("1 1 2\n1 2 5\n")
    raises_at(lambda: load_filmtrust(tmp_path / "ft"), "ratings.txt", 2, "got 5")


def test_train_txt_with_a_non_integer(tmp_path: Path) -> None:
    folder = agent4rec_folder(tmp_path, "0 1 2\n1 0\n2 1 x2 0\n")
    raises_at(lambda: load_agent4rec(folder), "train.txt", 3, "integer ids", "'x2'")


def test_agent4rec_item_table_covers_every_id(tmp_path: Path) -> None:
    folder = agent4rec_folder(tmp_path, "0 1 2\n3 5\n")
    ds = load_agent4rec(folder)
    check_invariants(ds)
    assert ds.n_items == 6
    assert ds.n_users == 4
    assert ds.items["title"].tolist() == ["A", "B", "C", "", "", ""]
    assert ds.items["raw_id"].tolist() == ["0", "1", "2", "3", "4", "5"]
    # without the optional files, their columns are there, empty
    assert ds.items["ml1m_id"].isna().all()
    columns = ["gender", "age", "occupation", "zip_code", "ml1m_id", "a4r_activity"]
    assert ds.users[columns].isna().all().all()


def test_agent4rec_optional_files(tmp_path: Path) -> None:
    folder = agent4rec_folder(tmp_path, "0 1 2\n1 3\n")
    (folder / "movie_map.csv").write_text("ml1m_movie_id,item_id\n5,0\n6,1\n7,2\n9,3\n")
    (folder / "movies.dat").write_text("9::Only In ML-1M (1990)::Horror|War\n")
    (folder / "user_map.csv").write_text("ml1m_user_id,user_id\n40,0\n41,1\n")
    (folder / "users.dat").write_text("40::M::25::12::12345\n41::F::50::0::\n")
    (folder / "user_statistic.csv").write_text("user_id,activity,diversity,conformity\n1,3,2,1\n")
    ds = load_agent4rec(folder)
    check_invariants(ds)
    # item 3 is missing from movie_detail.csv: title and genres from movies.dat via the map
    assert ds.items.loc[3, ["title", "topics", "ml1m_id"]].tolist() == [
        "Only In ML-1M (1990)",
        ("Horror", "War"),
        9,
    ]
    assert ds.items["ml1m_id"].tolist() == [5, 6, 7, 9]
    assert ds.users["occupation"].tolist() == ["programmer", "other"]
    assert ds.users["zip_code"].fillna("?").tolist() == ["12345", "?"]
    assert ds.users["ml1m_id"].tolist() == [40, 41]
    assert ds.users["a4r_activity"].isna().tolist() == [True, False]
    assert ds.users.loc[1, ["a4r_activity", "a4r_diversity", "a4r_conformity"]].tolist() == [
        3,
        2,
        1,
    ]
    (folder / "user_statistic.csv").write_text("user_id,activity,diversity,conformity\n1,3,4,1\n")
    raises_at(lambda: load_agent4rec(folder), "user_statistic.csv", 2, "'diversity'", "1 to 3")


def test_wrong_number_of_fields(tmp_path: Path) -> None:
    (tmp_path / "ratings.txt").write_text("1 1 2\n1 2 3\n1 3 3 7\n")
    raises_at(lambda: load_filmtrust(tmp_path), "ratings.txt", 3, "expected 3", "found 4")
    (tmp_path / "ratings.txt").write_text("1 1 2\n1 2\n")
    raises_at(lambda: load_filmtrust(tmp_path), "ratings.txt", 2, "field 3 (rating) is empty")
    # the optional third field of trust.txt may come and go
    (tmp_path / "ratings.txt").write_text("1 1 2\n")
    (tmp_path / "trust.txt").write_text("1 2\n2 1 1\n3 1\n")
    assert load_filmtrust(tmp_path).n_users == 3
    (tmp_path / "trust.txt").write_text("1 2 1 1\n2 1\n")
    raises_at(lambda: load_filmtrust(tmp_path), "trust.txt", 1, "expected 2 to 3", "found 4")
    # with a header: a longer first data row (which pandas would turn into an index) or a
    # longer later one, also inside quotes over two lines
    for text, line in [
        ("user,item\na,b,c\nd,e\n", 2),
        ('user,item\n"x,y",b\nc,"d\ne",f\n', 3),
    ]:
        (tmp_path / "interactions.csv").write_text(text)
        raises_at(lambda: load_generic(tmp_path), "interactions.csv", line, "expected 2", "found 3")


def test_ml1m_bad_occupation(tmp_path: Path) -> None:
    (tmp_path / "ratings.dat").write_text("1::1::5::978300760\n")
    (tmp_path / "movies.dat").write_text("1::Toy Story (1995)::Animation\n")
    (tmp_path / "users.dat").write_text("1::F::1::10::48067\n2::M::56::25::70072\n")
    raises_at(lambda: load_ml1m(tmp_path), "users.dat", 2, "field 4 (occupation)", "0-20", "25")


def test_ciaodvd_bad_date(tmp_path: Path) -> None:
    (tmp_path / "ciao_ratings.txt").write_text("1,1,1,1,5,2000-07-12\n2,1,1,2,4,12/07/2000\n")
    raises_at(lambda: load_ciaodvd(tmp_path), "ciao_ratings.txt", 2, "field 6 (date)", "YYYY")


def test_generic_bad_values(tmp_path: Path) -> None:
    write_fixture(tmp_path)
    inter = tmp_path / "interactions.csv"
    inter.write_text("user,item,split\na,b,train\na,c,holdout\n")
    raises_at(lambda: load_generic(tmp_path), "interactions.csv", 3, "'holdout'", "train, valid")
    inter.write_text("user,item,timestamp\na,b,yesterday\n")
    raises_at(lambda: load_generic(tmp_path), "interactions.csv", 2, "ISO 8601", "'yesterday'")
    inter.write_text("usr,item\na,b\n")
    raises_at(lambda: load_generic(tmp_path), "interactions.csv", 1, "header lacks 'user'")
    inter.write_text("user,item\na,b\n,c\n")
    raises_at(lambda: load_generic(tmp_path), "interactions.csv", 3, "'user' is empty")
    inter.write_text("user,item\na,b\n")
    (tmp_path / "edges.csv").write_text("src,dst,directed\na,b,maybe\n")
    raises_at(lambda: load_generic(tmp_path), "edges.csv", 2, "true or false", "'maybe'")
    (tmp_path / "edges.csv").unlink()
    (tmp_path / "items.csv").write_text("item,title\nb,B\nc,C\nb,again\n")
    raises_at(lambda: load_generic(tmp_path), "items.csv", 4, "item id b appears again", "line 2")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "ratings.txt").write_text("\n")
    raises_at(lambda: load_filmtrust(tmp_path), "ratings.txt", None, "empty")


def test_missing_required_file_names_it_and_the_format(tmp_path: Path) -> None:
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4,5\n")
    raises_at(lambda: load_movielens(tmp_path), "movies.csv", None, "movielens format needs")
    folder = shared_dataset("ml-1m-agent4rec")
    error = raises_at(lambda: load_ml1m(folder), "ratings.dat", None, "ml1m format needs")
    assert "train.txt" in str(error)  # what the folder does hold


def test_missing_folder(tmp_path: Path) -> None:
    for call in (
        lambda: load_dataset(tmp_path / "nowhere"),
        lambda: load_ciaodvd(tmp_path / "nowhere"),
    ):
        error = raises_at(call, "nowhere", None, "no such folder")
        assert isinstance(error, RecoworldError)
        assert isinstance(error, ValueError)
    (tmp_path / "file.txt").write_text("x")
    raises_at(lambda: load_dataset(tmp_path / "file.txt", "generic"), "file.txt", None, "folder")


def test_unknown_and_undetectable_formats(tmp_path: Path) -> None:
    error = raises_at(lambda: load_dataset(tmp_path, "movielense"), "", None, "'movielens'?")
    assert all(fmt in str(error) for fmt in FORMATS)
    (tmp_path / "notes.txt").write_text("hello")
    error = raises_at(lambda: load_dataset(tmp_path), str(tmp_path), None, "no known dataset")
    assert all(fmt in str(error) for fmt in FORMATS)
    assert "notes.txt" in str(error)
    assert "interactions.csv" in str(error)
