"""End-to-end runs: determinism, seeds, and the internal consistency of the trajectory."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from recoworld._config import override
from recoworld.config import ScenarioConfig
from recoworld.metrics import summarize_run
from recoworld.schedule import Simulation
from recoworld.trajectory import SCHEMA_VERSION, TABLES, read_manifest, read_run

from .conftest import run_cli


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_byte_identical_files(small_config: ScenarioConfig, tmp_path: Path) -> None:
    Simulation(small_config, out_dir=tmp_path / "a").run()
    Simulation(small_config, out_dir=tmp_path / "b").run()
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert sorted(a) == sorted(b)
    assert any(name.endswith(".parquet") for name in a)
    assert a == b


def test_other_seed_gives_other_trajectory(small_config: ScenarioConfig, tmp_path: Path) -> None:
    Simulation(small_config, out_dir=tmp_path / "a").run()
    Simulation(override(small_config, {"seed": 1}), out_dir=tmp_path / "b").run()
    a = read_run(tmp_path / "a").impressions
    b = read_run(tmp_path / "b").impressions
    assert len(a) > 0
    assert len(b) > 0
    assert not (len(a) == len(b) and (a["item"].to_numpy() == b["item"].to_numpy()).all())


def test_cli_seed_7_twice_is_byte_identical_and_seed_8_differs(tmp_path: Path) -> None:
    """The acceptance line, literally: the default scenario, ``--seed 7 --out A`` twice."""
    first = run_cli(["run", "--seed", "7", "--out", "A", "-q"], cwd=tmp_path, check=True)
    assert "Run folder:" in first.stdout
    snapshot = _files(tmp_path / "A")
    run_cli(["run", "--seed", "7", "--out", "A", "-q"], cwd=tmp_path, check=True)
    again = _files(tmp_path / "A")
    parquet = [n for n in snapshot if n.endswith(".parquet")]
    assert len(parquet) >= len(TABLES)
    assert snapshot == again
    run_cli(["run", "--seed", "8", "--out", "B", "-q"], cwd=tmp_path, check=True)
    other = _files(tmp_path / "B")
    for table in ("impressions", "responses", "sessions"):
        mine = [v for k, v in snapshot.items() if k.startswith(table + "/")]
        theirs = [v for k, v in other.items() if k.startswith(table + "/")]
        assert mine != theirs, table


def test_trajectory_is_consistent_with_itself_and_the_totals(
    small_config: ScenarioConfig, tmp_path: Path
) -> None:
    result = Simulation(small_config, out_dir=tmp_path).run()
    run = read_run(tmp_path)
    imp, resp, sess, ins, soc = (
        run.impressions,
        run.responses,
        run.sessions,
        run.instructions,
        run.social,
    )
    totals = result.totals
    assert result.status == "completed"
    assert run.manifest["status"] == "completed"
    assert run.manifest["ticks_completed"] == small_config.clock.n_ticks
    assert len(imp) == totals["impressions"] > 0
    assert len(resp) == totals["examined"]
    assert int(resp["clicked"].sum()) == totals["clicks"]
    assert len(ins) == totals["instructions"] > 0
    assert len(soc) == totals["shares"]
    assert len(sess) == totals["sessions_started"]
    # Every response is an impression.
    key = ["tick", "user", "rank"]
    joined = resp[[*key, "item"]].merge(
        imp[[*key, "item"]], on=key, how="left", suffixes=("", "_i")
    )
    assert (joined["item"] == joined["item_i"]).all()
    # Engagement flags nest; ratings only for clicks; dwell only for clicks.
    assert not (resp["liked"] & ~resp["clicked"]).any()
    assert not (resp["shared"] & ~resp["clicked"]).any()
    assert resp.loc[~resp["clicked"], "rating"].isna().all()
    assert resp.loc[resp["clicked"], "rating"].between(1, 5).all()
    assert (resp.loc[~resp["clicked"], "dwell"] == 0).all()
    assert (resp.loc[resp["clicked"], "dwell"] > 0).all()
    # One row per session; its counts match the responses; left sessions end on a 'left' row.
    assert sess["session"].is_unique
    per_session = resp.groupby("session", observed=True).agg(
        items=("item", "size"), clicks=("clicked", "sum")
    )
    per_session.columns = ["items_r", "clicks_r"]
    merged = sess.set_index("session")[["items", "clicks"]].join(per_session)
    merged = merged.fillna(0)
    assert (merged["items"] == merged["items_r"]).all()
    assert (merged["clicks"] == merged["clicks_r"]).all()
    left = sess[sess["end_reason"] == "left"]
    assert int(resp["left"].sum()) == len(left)
    assert left["churned"].notna().all()
    assert sess.loc[sess["end_reason"] == "horizon", "churned"].isna().all()
    # Instructions belong to recorded sessions and carry a ground-truth intent.
    assert set(ins["session"]) <= set(sess["session"])
    assert (ins["intent_more"].map(len) == 1).all()
    for text, more in zip(ins["text"], ins["intent_more"], strict=True):
        assert more[0] in text
    # Recommended impressions carry the policy's propensity; in-network ones came from a sharer.
    rec = imp[imp["source"] == "rec"]
    assert rec["propensity"].between(0, 1, inclusive="right").all()
    social = imp[imp["source"] == "social"]
    assert social["from_user"].notna().all()
    assert rec["from_user"].isna().all()


def test_summary_reads_the_files(small_config: ScenarioConfig, tmp_path: Path) -> None:
    result = Simulation(small_config, out_dir=tmp_path).run()
    summary = summarize_run(tmp_path)
    t = result.totals
    assert summary["engagement/impressions"] == t["impressions"]
    assert summary["engagement/sessions"] == t["sessions_started"]
    assert summary["engagement/ctr"] == pytest.approx(t["clicks"] / t["impressions"])
    assert summary["instruction/rate"] == pytest.approx(t["instructions"] / t["sessions_started"])
    assert 0.0 <= summary["retention/return_rate"] <= 1.0


def test_parquet_files_carry_the_schema_version(
    small_config: ScenarioConfig, tmp_path: Path
) -> None:
    Simulation(small_config, out_dir=tmp_path).run()
    manifest = read_manifest(tmp_path)
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["seed"] == small_config.seed
    assert manifest["config"]["world"]["n_users"] == small_config.world.n_users
    assert "numpy" in manifest["versions"]
    for table in TABLES:
        parts = sorted((tmp_path / table).glob("part-*.parquet"))
        assert parts, table
        meta = pq.read_schema(parts[0]).metadata
        assert meta[b"recoworld.schema_version"] == SCHEMA_VERSION.encode()
        assert meta[b"recoworld.table"] == table.encode()


def test_small_flush_rows_split_parts_on_tick_boundaries(
    small_config: ScenarioConfig, tmp_path: Path
) -> None:
    cfg = override(small_config, {"record.flush_rows": 2000})
    Simulation(cfg, out_dir=tmp_path / "split").run()
    Simulation(small_config, out_dir=tmp_path / "whole").run()
    parts = sorted((tmp_path / "split" / "impressions").glob("part-*.parquet"))
    assert len(parts) > 3
    ticks = [set(pq.read_table(p, columns=["tick"])["tick"].to_pylist()) for p in parts]
    for a, b in itertools.pairwise(ticks):
        assert max(a) < min(b)  # a tick never straddles two parts
    split = read_run(tmp_path / "split").impressions
    whole = read_run(tmp_path / "whole").impressions
    assert split.equals(whole)


def test_run_without_recording_matches_recorded_totals(
    small_config: ScenarioConfig, tmp_path: Path
) -> None:
    recorded = Simulation(small_config, out_dir=tmp_path).run()
    in_memory = Simulation(small_config).run()
    assert in_memory.path is None
    assert in_memory.totals == recorded.totals


def test_import_is_lazy_and_quiet() -> None:
    """Importing recoworld registers its Gymnasium ids and loads nothing else heavy."""
    import subprocess
    import sys

    code = (
        "import sys, recoworld, gymnasium; "
        "assert 'recoworld/Feed-v0' in gymnasium.envs.registry; "
        "heavy = [m for m in ('pandas', 'pyarrow', 'networkx', 'torch', 'recoworld.schedule', "
        "'recoworld.envs.feed', 'recoworld.world') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert out.stderr == ""


def test_activity_follows_the_diurnal_curve(tmp_path: Path) -> None:
    from recoworld.scenario import load_scenario

    cfg = override(
        load_scenario("default"),
        {"world.n_users": 3000, "world.n_items": 1000, "clock.days": 2},
    )
    sim = Simulation(cfg, out_dir=tmp_path)
    sim.run()
    sess = read_run(tmp_path).sessions
    hour = (sess["start_tick"] * cfg.clock.tick_minutes // 60) % 24
    night = (hour.between(2, 5)).sum()
    evening = (hour.between(18, 21)).sum()
    assert evening > 2.5 * night
    assert np.isfinite(sess["satisfaction_end"]).all()


def test_no_item_twice_on_a_page(tmp_path: Path) -> None:
    from recoworld.scenario import load_scenario

    cfg = override(
        load_scenario("social"),
        {"world.n_users": 3000, "world.n_items": 300, "clock.ticks": 120, "clock.start_hour": 18},
    )
    Simulation(cfg, out_dir=tmp_path).run()
    imp = read_run(tmp_path).impressions
    assert (imp["source"] == "social").sum() > 100
    assert not imp.duplicated(["tick", "user", "item"]).any()


def test_a_finished_simulation_refuses_to_continue(
    small_config: ScenarioConfig, tmp_path: Path
) -> None:
    from recoworld.errors import RecoworldError

    sim = Simulation(small_config, out_dir=tmp_path)
    sim.run()
    with pytest.raises(RecoworldError, match="build a new Simulation"):
        sim.run()
    assert read_manifest(tmp_path)["ticks_completed"] == small_config.clock.n_ticks


def test_readers_take_the_manifest_cut_after_a_hard_kill(
    small_config: ScenarioConfig, tmp_path: Path
) -> None:
    """A part written after the manifest's last update (a kill mid-flush) is not read."""
    import shutil

    Simulation(small_config, out_dir=tmp_path).run()
    before = read_run(tmp_path).impressions
    stray = tmp_path / "impressions" / "part-999999.parquet"
    shutil.copy(sorted((tmp_path / "impressions").glob("part-*.parquet"))[0], stray)
    after = read_run(tmp_path).impressions
    assert after.equals(before)


class _Reader:
    """Random slates; keeps every request and what it read of it while recommending."""

    name = "reader"

    def __init__(self, read: bool) -> None:
        self.read = read
        self.requests: list = []
        self.seen: list = []

    def recommend(self, request):  # type: ignore[no-untyped-def]
        from recoworld.policies.base import slates_from_scores

        self.requests.append(request)
        if self.read:
            pop = self.sim.world.population
            self.seen.append(
                (
                    request.history.copy(),
                    request.instructions,
                    pop.recent_items(request.users),
                    tuple(pop.texts_of(request.users)),
                )
            )
        scores = request.rng.random(request.candidates.shape, dtype=np.float32)
        return slates_from_scores(request, scores)

    def update(self, feedback) -> None:  # type: ignore[no-untyped-def]
        pass


def test_request_history_is_computed_on_read_and_sealed_after_the_users_respond(
    small_config: ScenarioConfig,
) -> None:
    from recoworld.errors import PolicyError

    config = override(small_config, {"clock.days": 1})
    reader = _Reader(read=True)
    reader.sim = Simulation(config, policy=reader)
    for _ in range(40):
        reader.sim.step()
    assert reader.seen
    for history, texts, expected_history, expected_texts in reader.seen:
        np.testing.assert_array_equal(history, expected_history)
        assert texts == expected_texts
    assert any((h >= 0).any() for h, *_ in reader.seen)
    # Read while recommending: still readable afterwards, and unchanged.
    first = reader.requests[-1]
    np.testing.assert_array_equal(first.history, reader.seen[-1][0])

    lazy = _Reader(read=False)
    lazy.sim = Simulation(config, policy=lazy)
    for _ in range(5):
        lazy.sim.step()
    with pytest.raises(PolicyError, match="read it while recommending"):
        _ = lazy.requests[-1].history
    with pytest.raises(AttributeError, match="read-only"):
        lazy.requests[-1].k = 3


def test_label_lists_build_the_same_arrow_column_as_python_lists() -> None:
    import pyarrow as pa

    from recoworld.trajectory.recorder import LabelLists, _column

    field = TABLES["instructions"].field("intent_less")
    labels = ["news", "sports", "music"]
    codes = np.array([2, -1, 0, 1, -1, 2], np.int8)
    expected = pa.array([[labels[c]] if c >= 0 else [] for c in codes], field.type)
    built = _column(field, LabelLists(codes, labels), len(codes))
    assert built.equals(expected)
    assert _column(field, LabelLists(codes[:0], labels), 0).equals(pa.array([], field.type))
