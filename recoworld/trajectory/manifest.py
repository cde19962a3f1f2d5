"""The run manifest: everything needed to know what a run folder holds and to reproduce it.

It holds the full resolved config, the seed, the schema version, the package versions, the git
commit of recoworld's source if it runs from a checkout, and — kept up to date while the run goes
— the status, the ticks completed and the parts of each table. It holds no wall-clock time, so the
same seed and config give the same manifest.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recoworld._config import to_mapping
from recoworld.trajectory.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from recoworld.schedule import Simulation

__all__ = ["build_manifest", "git_commit", "package_versions"]

_PACKAGES = ("recoworld", "numpy", "pandas", "pyarrow", "gymnasium", "pettingzoo", "networkx")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.cache
def git_commit() -> str | None:
    """The commit of recoworld's source tree if it runs from a git checkout, with ``-dirty``
    appended when tracked files have uncommitted changes; ``None`` otherwise."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    sha = _git(root, "rev-parse", "HEAD")
    if not sha:
        return None
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no", "--", "recoworld")
    return f"{sha}-dirty" if dirty else sha


def build_manifest(sim: Simulation) -> dict[str, Any]:
    cfg = sim.config
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": sim.run_id,
        "scenario": cfg.name,
        "seed": cfg.seed,
        "n_ticks": sim.n_ticks,
        "n_users": sim.world.n_users,
        "n_items": sim.world.n_items,
        "n_edges": sim.world.graph.n_edges,
        "policy": sim.policy.name,
        "user_model": sim.user_model.name,
        "config": to_mapping(cfg),
        "versions": package_versions(),
        "git_commit": git_commit(),
    }
