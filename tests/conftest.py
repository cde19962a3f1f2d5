"""Shared fixtures: small scenarios and a runner for the real ``recoworld`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from recoworld._config import override
from recoworld.config import ScenarioConfig
from recoworld.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def recoworld_command() -> list[str]:
    """The installed console script when there is one, else ``python -m recoworld.cli``."""
    script = Path(sys.executable).with_name("recoworld")
    return [str(script)] if script.exists() else [sys.executable, "-m", "recoworld.cli"]


def run_cli(
    args: Sequence[str], cwd: Path, timeout: float = 300, check: bool = False
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="120")
    proc = subprocess.run(
        [*recoworld_command(), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def deep_equal(a: object, b: object) -> bool:
    """Equality through dicts, tuples, lists and numpy arrays (for determinism tests)."""
    if isinstance(a, dict):
        return (
            isinstance(b, dict) and a.keys() == b.keys() and all(deep_equal(a[k], b[k]) for k in a)
        )
    if isinstance(a, tuple | list):
        return (
            isinstance(b, tuple | list)
            and len(a) == len(b)
            and all(deep_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b)
    return a == b


@pytest.fixture
def small_config() -> ScenarioConfig:
    """The default scenario shrunk to run in well under a second."""
    return override(
        load_scenario("default"),
        {"world.n_users": 600, "world.n_items": 800, "clock.ticks": 60, "clock.start_hour": 18},
    )


SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_dataset(name: str) -> Path:
    """The shared dataset folder ``../shared/data/<name>``: a skip when it is absent, a failure
    under CI (where ``.ci/run`` always has ``../shared`` beside the clone)."""
    folder = SHARED_DATA / name
    if not folder.is_dir():
        message = f"shared dataset {folder} is missing (expected ../shared/data beside the repo)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return folder
