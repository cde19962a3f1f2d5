"""Nothing recorded is lost: an interrupted run leaves readable files with every completed tick."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from recoworld._config import override
from recoworld.config import ScenarioConfig
from recoworld.schedule import Simulation, TickStats
from recoworld.trajectory import read_run

from .conftest import recoworld_command, run_cli

BIG = ["--users", "20000", "--days", "5", "--set", "record.flush_rows=20000"]


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["run"]).reset_index(drop=True)


def test_sigint_keeps_every_completed_tick(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*recoworld_command(), "run", *BIG, "--out", "X", "-q"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    manifest = tmp_path / "X" / "manifest.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until some parts have been flushed
        if manifest.exists():
            try:
                if json.loads(manifest.read_text())["ticks_completed"] > 0:
                    break
            except (json.JSONDecodeError, KeyError):
                pass
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the run never flushed a part")
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert "Run folder:" in out
    assert "Traceback" not in err

    run = read_run(tmp_path / "X")
    done = run.manifest["ticks_completed"]
    assert run.manifest["status"] == "interrupted"
    assert 0 < done < 5 * 288
    imp = run.impressions
    assert imp["tick"].max() == done - 1
    interrupted_sessions = run.sessions
    assert (interrupted_sessions["end_reason"] == "interrupted").any()

    # The same run stopped cleanly after exactly `done` ticks recorded the same rows.
    run_cli(["run", *BIG, "--ticks", str(done), "--out", "Y", "-q"], cwd=tmp_path, check=True)
    ref = read_run(tmp_path / "Y")
    for table in ("impressions", "responses", "instructions", "social"):
        pd.testing.assert_frame_equal(
            _comparable(run.table(table)), _comparable(ref.table(table)), obj=table
        )
    left_a = interrupted_sessions[interrupted_sessions["end_reason"] == "left"]
    left_b = ref.sessions[ref.sessions["end_reason"] == "left"]
    pd.testing.assert_frame_equal(_comparable(left_a), _comparable(left_b))
    assert len(interrupted_sessions) == len(ref.sessions)


def test_keyboard_interrupt_inside_the_library_keeps_completed_ticks(
    small_config: ScenarioConfig, tmp_path: Path
) -> None:
    cfg = override(small_config, {"clock.ticks": 200, "record.flush_rows": 10**9})

    def stop_at_tick_30(stats: TickStats) -> None:
        if stats.tick == 30:
            raise KeyboardInterrupt

    sim = Simulation(cfg, out_dir=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        sim.run(progress=stop_at_tick_30)
    run = read_run(tmp_path)
    assert run.manifest["status"] == "interrupted"
    assert run.manifest["ticks_completed"] == 31
    assert run.impressions["tick"].max() == 30
    ref_dir = tmp_path / "ref"
    Simulation(override(cfg, {"clock.ticks": 31}), out_dir=ref_dir).run()
    pd.testing.assert_frame_equal(
        _comparable(run.impressions), _comparable(read_run(ref_dir).impressions)
    )


def test_an_exception_mid_tick_keeps_earlier_ticks(
    small_config: ScenarioConfig, tmp_path: Path
) -> None:
    sim = Simulation(small_config, out_dir=tmp_path)

    class Boom(RuntimeError):
        pass

    original = sim.policy.recommend

    def failing(request):  # type: ignore[no-untyped-def]
        if request.tick == 25:
            raise Boom("policy crashed")
        return original(request)

    sim.policy.recommend = failing  # type: ignore[method-assign]
    with pytest.raises(Boom):
        sim.run()
    run = read_run(tmp_path)
    assert run.manifest["status"] == "failed"
    assert run.manifest["ticks_completed"] == 25
    assert run.impressions["tick"].max() == 24
    # A torn tick records no half-finished sessions.
    assert not (run.sessions["end_tick"] >= 25).any()
