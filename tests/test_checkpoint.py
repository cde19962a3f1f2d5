"""Checkpoint and resume: a run saved between ticks and continued — in this process or a new
one — gives exactly the trajectory and world of a run that never stopped."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from recoworld.checkpoint import CHECKPOINT_FILE, read_header
from recoworld.cli import main
from recoworld.config import ScenarioConfig, override
from recoworld.errors import CheckpointError
from recoworld.scenario import load_scenario
from recoworld.schedule import Simulation
from recoworld.trajectory.reader import read_arrow, read_manifest
from recoworld.trajectory.schema import TABLES

from .conftest import ROOT


def social_config(policy: str = "mf", **updates: Any) -> ScenarioConfig:
    base = {
        "world.n_users": 1200,
        "world.n_items": 600,
        "clock.ticks": 40,
        "clock.start_hour": 18,
        "clock.start_rate": 4.0,
        "policy.name": policy,
        "policy.params": {},
        "users.w_stance": 0.5,
        "users.w_vote": 0.5,
        "users.opinion_reinforcement": 0.02,
        "social.post_rate": 0.02,
        "social.follow_rate": 0.05,
        "social.unfollow_rate": 0.1,
        "social.mute_rate": 0.05,
        "social.opinion_model": "deffuant_weisbuch",
        "social.opinion_fraction": 0.3,
        "social.opinion_every": 5,
        "world.misinformation": 0.1,
        "moderation.community_notes": 2,
        "record.opinion_every": 10,
        "record.flush_rows": 5000,
    }
    base.update(updates)
    return override(load_scenario("default"), base)


def tables(run: Path) -> dict[str, pa.Table]:
    return {name: read_arrow(run, name).combine_chunks() for name in TABLES}


def assert_same_run(a: Path, b: Path) -> None:
    ta, tb = tables(a), tables(b)
    for name in TABLES:
        assert ta[name].num_rows == tb[name].num_rows, name
        assert ta[name].equals(tb[name]), name
    ma, mb = read_manifest(a), read_manifest(b)
    for key in ("status", "ticks_completed", "totals", "config"):
        assert ma.get(key) == mb.get(key), key


def assert_same_world(x: Simulation, y: Simulation) -> None:
    for part in ("catalog", "population"):
        one, two = getattr(x.world, part), getattr(y.world, part)
        for name in one.__dataclass_fields__:
            va, vb = getattr(one, name), getattr(two, name)
            if isinstance(va, np.ndarray):
                assert va.dtype == vb.dtype, name
                assert np.array_equal(va, vb, equal_nan=va.dtype.kind == "f"), name
    assert x.world.graph == y.world.graph
    assert np.array_equal(x.world.graph.muted, y.world.graph.muted)


@pytest.mark.parametrize("policy", ["mf", "linucb", "thompson", "itemknn", "epsilon_greedy"])
def test_resume_continues_byte_for_byte(policy: str, tmp_path: Path) -> None:
    config = social_config(policy)
    straight = Simulation(config, out_dir=tmp_path / "straight")
    straight.run()

    first = Simulation(config, out_dir=tmp_path / "stopped")
    for _ in range(17):
        first.step()
    saved = first.checkpoint()
    assert saved == tmp_path / "stopped" / CHECKPOINT_FILE
    assert read_header(saved)["tick"] == 17
    del first  # as if the process died here: nothing finished, nothing closed
    resumed = Simulation.resume(tmp_path / "stopped")
    assert resumed.world.clock.tick == 17
    resumed.run()
    assert_same_run(tmp_path / "straight", tmp_path / "stopped")
    assert_same_world(straight, resumed)
    assert resumed.totals == straight.totals


def test_resume_drops_what_was_written_after_the_checkpoint(tmp_path: Path) -> None:
    config = social_config()
    Simulation(config, out_dir=tmp_path / "straight").run()
    sim = Simulation(config, out_dir=tmp_path / "run")
    for _ in range(12):
        sim.step()
    sim.checkpoint(tmp_path / "at12.pkl")
    for _ in range(20):  # the run went on and wrote more parts, then crashed
        sim.step()
    sim.recorder.flush()
    assert read_manifest(tmp_path / "run")["ticks_completed"] == 32
    Simulation.resume(tmp_path / "at12.pkl").run()
    assert_same_run(tmp_path / "straight", tmp_path / "run")


def test_resume_in_a_new_process(tmp_path: Path) -> None:
    config = social_config(**{"clock.ticks": 30})
    Simulation(config, out_dir=tmp_path / "straight").run()
    sim = Simulation(config, out_dir=tmp_path / "run")
    for _ in range(11):
        sim.step()
    sim.checkpoint()
    script = textwrap.dedent(
        f"""
        from recoworld.schedule import Simulation
        Simulation.resume({str(tmp_path / "run")!r}).run()
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert_same_run(tmp_path / "straight", tmp_path / "run")


def test_interrupted_runs_leave_a_checkpoint_the_cli_resumes(tmp_path: Path) -> None:
    config = social_config()
    Simulation(config, out_dir=tmp_path / "straight").run()
    calls = iter(range(10_000))
    sim = Simulation(config, out_dir=tmp_path / "run")
    result = sim.run(should_stop=lambda: next(calls) >= 9)
    assert result.status == "interrupted"
    assert read_manifest(tmp_path / "run")["status"] == "interrupted"
    assert read_header(tmp_path / "run" / CHECKPOINT_FILE)["tick"] == 9
    assert main(["resume", str(tmp_path / "run"), "-q"]) == 0
    assert_same_run(tmp_path / "straight", tmp_path / "run")


def test_periodic_checkpoints_and_more_ticks(tmp_path: Path) -> None:
    config = social_config(**{"record.checkpoint_every": 8})
    sim = Simulation(config, out_dir=tmp_path / "run")
    sim.run()
    # the last one before the horizon: after tick 31 (the 32nd)
    assert read_header(tmp_path / "run" / CHECKPOINT_FILE)["tick"] == 32
    code = main(
        [
            "run",
            "--users",
            "800",
            "--ticks",
            "20",
            "--checkpoint-every",
            "5",
            "--out",
            str(tmp_path / "cli"),
            "-q",
        ]
    )
    assert code == 0
    assert read_header(tmp_path / "cli" / CHECKPOINT_FILE)["tick"] == 15
    # A completed run is not resumed: that would delete ticks 15-19 and write back only 3.
    before = sorted(p.name for p in (tmp_path / "cli").rglob("*.parquet"))
    assert main(["resume", str(tmp_path / "cli"), "--ticks", "3", "-q"]) == 2
    assert read_manifest(tmp_path / "cli")["ticks_completed"] == 20
    assert sorted(p.name for p in (tmp_path / "cli").rglob("*.parquet")) == before
    # An interrupted one continues for exactly the ticks asked for.
    calls = iter(range(10_000))
    sim = Simulation(social_config(), out_dir=tmp_path / "cut")
    assert sim.run(should_stop=lambda: next(calls) >= 6).status == "interrupted"
    assert main(["resume", str(tmp_path / "cut"), "--ticks", "3", "-q"]) == 0
    assert read_manifest(tmp_path / "cut")["ticks_completed"] == 9


def test_checkpoint_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sim = Simulation(social_config())
    with pytest.raises(CheckpointError, match="give the checkpoint a path"):
        sim.checkpoint()
    request = sim.begin_tick()
    assert request is None or request.n >= 0
    with pytest.raises(CheckpointError, match="between ticks"):
        sim.checkpoint(tmp_path / "x.pkl")
    sim.cancel_tick()
    path = sim.checkpoint(tmp_path / "memory.pkl")
    back = Simulation.resume(path)
    assert back.recorder is None
    with pytest.raises(CheckpointError, match="recorded nothing"):
        Simulation.resume(path, out_dir=tmp_path / "elsewhere")
    (tmp_path / "junk.pkl").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a recoworld checkpoint"):
        Simulation.resume(tmp_path / "junk.pkl")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        Simulation.resume(tmp_path / "missing.pkl")
    assert main(["resume", str(tmp_path / "missing.pkl")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    done = Simulation(social_config(**{"clock.ticks": 2}), out_dir=tmp_path / "done")
    done.run()
    with pytest.raises(CheckpointError, match="finished"):
        done.checkpoint()


def test_an_unpaused_in_memory_simulation_resumes_identically(tmp_path: Path) -> None:
    """Without recording: the world after resume + N ticks equals N more ticks in place."""
    config = social_config(policy="most_popular")
    a = Simulation(config)
    for _ in range(10):
        a.step()
    path = a.checkpoint(tmp_path / "a.pkl")
    b = Simulation.resume(path)
    for _ in range(15):
        a.step()
        b.step()
    assert_same_world(a, b)
