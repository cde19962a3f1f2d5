"""Run an experiment: seeds × conditions on worker processes; results, summary and plots.

Written to the output folder (default ``runs/experiment-<name>``):

- ``results.csv``: one row per seed and condition — ``experiment``, ``condition``, ``seed``,
  then the experiment's metrics;
- ``series.csv`` (when the experiment has curves): ``experiment``, ``condition``, ``seed``, then
  the curve's columns;
- ``summary.md``: per condition, the mean of each summary metric with the half-width of its 95%
  Student-t interval over seeds;
- ``plots/*.png`` (with matplotlib, the ``viz`` extra);
- ``experiment.json``: the experiment, its version, the scenario, seeds, overrides and every
  condition's resolved overrides and parameters;
- ``runs/<condition>-seed<seed>/``: each run's own folder (a trajectory, if it keeps one).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recoworld.errors import ConfigError
from recoworld.experiments.base import Condition, Experiment, Outcome, Row, resolve

__all__ = ["DONE_MARKER", "run_experiment", "summarize", "summary_cells"]

logger = logging.getLogger(__name__)

#: The file that marks a folder as an experiment's output (so it may be replaced).
DONE_MARKER = "experiment.json"
_OWNED = ("results.csv", "series.csv", "summary.md", "plots", "runs", DONE_MARKER)


def _run_task(
    experiment: Experiment, config: Any, condition: Condition, seed: int, run_dir: str
) -> tuple[str, int, Row, pd.DataFrame | None]:
    """One seed of one condition (in a worker process)."""
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = experiment.run_one(config, condition, seed, out)
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()  # the run kept nothing
    if isinstance(result, Outcome):
        return condition.label, seed, dict(result.row), result.series
    return condition.label, seed, dict(result), None


def run_experiment(
    experiment: str | Experiment,
    *,
    seeds: int = 5,
    out: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
    jobs: int = 1,
    progress: bool = True,
    on_done: Callable[[str, int], None] | None = None,
) -> pd.DataFrame:
    """Run every condition of ``experiment`` on seeds ``0 .. seeds-1``; write the results files
    (module docstring) and return the results frame.

    ``overrides`` (dotted keys: scenario keys and ``params.*``) apply to every condition after
    its own; every condition's config and parameters are checked here, before any worker
    starts. ``jobs`` > 1 runs on that many processes; ``progress`` shows a progress bar on
    stderr; ``on_done(condition, seed)`` is called as each run finishes.
    """
    from recoworld._config import override
    from recoworld._parallel import run_tasks
    from recoworld.experiments.registry import get_experiment
    from recoworld.scenario import load_scenario
    from recoworld.trajectory.recorder import claim_folder

    exp = get_experiment(experiment) if isinstance(experiment, str) else experiment
    updates = dict(overrides)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"seeds: expected an integer >= 1, got {seeds!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs: expected an integer >= 1, got {jobs!r}")
    if "seed" in updates:
        raise ConfigError("seed: set by the experiment (seeds 0 .. N-1); use --seeds N instead")
    base = load_scenario(exp.scenario)
    prepared: list[tuple[Any, Condition, dict[str, Any]]] = []
    for label in exp.conditions:
        scenario_set, condition = resolve(exp, label, updates)
        try:
            config = override(base, scenario_set)
        except ConfigError as exc:
            raise ConfigError(f"condition {label!r}: {exc}") from None
        exp.check(config, condition)
        prepared.append((config, condition, scenario_set))

    out_dir = Path(out) if out is not None else Path("runs") / f"experiment-{exp.name}"
    claim_folder(out_dir, DONE_MARKER, lambda d: [d / n for n in _OWNED], "experiment")
    tasks = [
        (
            exp,
            override(config, {"seed": seed}),
            condition,
            seed,
            str(out_dir / "runs" / f"{_safe(condition.label)}-seed{seed}"),
        )
        for seed in range(seeds)
        for config, condition, _ in prepared
    ]
    _write_manifest(out_dir, exp, seeds, updates, prepared)

    bar, task_id = _progress(exp, len(tasks), progress)
    done: list[tuple[str, int, Row, pd.DataFrame | None]] = []

    def finished(result: tuple[str, int, Row, pd.DataFrame | None]) -> None:
        if bar is not None:
            bar.update(task_id, advance=1, last=f"{result[0]} seed {result[1]}")
        if on_done is not None:
            on_done(result[0], result[1])

    try:
        if bar is not None:
            bar.start()
        done = run_tasks(_run_task, tasks, jobs=jobs, on_done=finished)
    finally:
        if bar is not None:
            bar.stop()

    runs = out_dir / "runs"
    if runs.is_dir() and not any(runs.iterdir()):
        runs.rmdir()
    frame, series = _collect(exp, done)
    frame.to_csv(out_dir / "results.csv", index=False)
    if series is not None:
        series.to_csv(out_dir / "series.csv", index=False)
    (out_dir / "summary.md").write_text(summarize(frame, exp, overrides=updates), encoding="utf-8")
    try:
        plots = out_dir / "plots"
        plots.mkdir(exist_ok=True)
        exp.plot(frame, series, plots)
    except ImportError as exc:
        logger.warning("no plots for %s: %s (install the viz extra)", exp.name, exc)
    return frame


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label)


def _progress(exp: Experiment, total: int, show: bool) -> tuple[Any, Any]:
    if not show:
        return None, None
    from recoworld._progress import count_progress

    return count_progress(f"experiment {exp.name}", total)


def _collect(
    exp: Experiment, done: list[tuple[str, int, Row, pd.DataFrame | None]]
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    order = {label: j for j, label in enumerate(exp.conditions)}
    done = sorted(done, key=lambda r: (order[r[0]], r[1]))
    rows = [{"experiment": exp.name, "condition": c, "seed": s, **row} for c, s, row, _ in done]
    frame = pd.DataFrame(rows)
    parts = []
    for label, seed, _, part in done:
        if part is None or not len(part):
            continue
        part = part.copy()
        part.insert(0, "seed", seed)
        part.insert(0, "condition", label)
        part.insert(0, "experiment", exp.name)
        parts.append(part)
    series = pd.concat(parts, ignore_index=True) if parts else None
    return frame, series


def _write_manifest(
    out_dir: Path,
    exp: Experiment,
    seeds: int,
    updates: Mapping[str, Any],
    prepared: list[tuple[Any, Condition, dict[str, Any]]],
) -> None:
    from recoworld import __version__

    manifest = {
        "experiment": exp.name,
        "version": exp.version,
        "description": exp.description,
        "scenario": exp.scenario,
        "seeds": seeds,
        "overrides": dict(updates),
        "conditions": {
            condition.label: {"set": scenario_set, "params": dict(condition.params)}
            for _, condition, scenario_set in prepared
        },
        "recoworld_version": __version__,
    }
    text = json.dumps(manifest, indent=2, default=str) + "\n"
    (out_dir / DONE_MARKER).write_text(text, encoding="utf-8")


def _cell(values: np.ndarray) -> str:
    from recoworld._stats import ci95

    mean, half = ci95(values)
    if math.isnan(mean):
        return "n/a"
    digits = 4 if abs(mean) < 10 else 1
    if math.isnan(half):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def summary_cells(frame: pd.DataFrame, exp: Experiment) -> dict[str, dict[str, str]]:
    """Condition → summary metric → ``"mean ± half-width"`` (95% t-interval over seeds; only
    finite values count; ``n/a`` when there are none)."""
    out: dict[str, dict[str, str]] = {}
    for label in exp.conditions:
        part = frame[frame["condition"] == label]
        out[label] = {
            name: _cell(pd.to_numeric(part[name], errors="coerce").to_numpy(np.float64))
            if name in part
            else "n/a"
            for name in exp.summary_metrics
        }
    return out


def summarize(
    frame: pd.DataFrame, exp: Experiment, *, overrides: Mapping[str, Any] | None = None
) -> str:
    """``summary.md``: a Markdown table, one row per summary metric, one column per condition."""
    seeds = frame["seed"].nunique()
    cells = summary_cells(frame, exp)
    lines = [
        f"# Experiment `{exp.name}` (v{exp.version}) — scenario `{exp.scenario}`, "
        f"{seeds} seed{'s' if seeds != 1 else ''}",
        "",
        exp.description,
        "",
    ]
    if overrides:
        lines += ["Overrides: " + ", ".join(f"`{k}={v}`" for k, v in overrides.items()), ""]
    lines += [
        "Mean ± half-width of the 95% t-interval over seeds (NaN values left out).",
        "",
        "| metric | " + " | ".join(cells) + " |",
        "|---|" + "---:|" * len(cells),
    ]
    for name in exp.summary_metrics:
        lines.append(f"| {name} | " + " | ".join(cells[label][name] for label in cells) + " |")
    return "\n".join(lines) + "\n"
