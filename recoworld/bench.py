"""Benchmark suites: a scenario × policies × seeds, run in parallel processes, compared fairly.

``recoworld bench SUITE.yaml [--jobs N] [--out DIR] [--seeds N]``. A suite file names a scenario
(shipped name or path), optional ``set`` overrides, the number of seeds, and the policies (a name,
or ``{name, params, label}``). Every (policy, seed) pair is one recorded run; all pairs of a seed
share the scenario's seed, so policies meet the same world and the same users. Each run's figures
come from its trajectory through :mod:`recoworld.metrics`. Written to ``--out``:

- ``results.parquet`` and ``results.csv``: one row per policy and seed;
- ``summary.md``: per policy, the mean of each figure with its 95% t-interval over seeds;
- ``plots/*.png`` (with matplotlib, the ``viz`` extra): retention curve, session-length
  distribution, engagement vs diversity, the NDCG-vs-retention quadrant, retention vs
  compliance;
- ``runs/<label>-seed<seed>/``: every run's trajectory.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recoworld._parallel import run_tasks
from recoworld._stats import ci95
from recoworld.errors import ConfigError

__all__ = [
    "FIGURES",
    "PolicySpec",
    "Suite",
    "load_suite",
    "run_suite",
    "summarize",
]

#: The figures of every run, in table order (names from ``docs/metrics.md``).
FIGURES = (
    "engagement/ctr",
    "engagement/session_length",
    "retention/return_rate",
    "accuracy/ndcg",
    "instruction/rate",
    "instruction/compliance",
    "instruction/recovery",
    "diversity/ild",
    "diversity/coverage",
    "fairness/exposure_gini",
    "diversity/novelty",
    "diversity/calibration_kl",
)


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """One policy of a suite: registered ``name``, constructor ``params``, table ``label``."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    label: str = ""


@dataclass(frozen=True, slots=True)
class Suite:
    """A benchmark suite (see the module docstring)."""

    name: str
    scenario: str
    policies: tuple[PolicySpec, ...]
    seeds: int = 5
    overrides: dict[str, Any] = field(default_factory=dict)


def _label(spec: dict[str, Any]) -> str:
    if spec.get("label"):
        return str(spec["label"])
    params = spec.get("params") or {}
    base = params.get("base", params.get("platform"))  # wrappers: instruction_aware, user_shield
    if not isinstance(base, str):
        return str(spec["name"])
    llm = ",llm" if params.get("parser") == "llm" else ""
    return f"{spec['name']}[{base}{llm}]"


def load_suite(path: str | os.PathLike[str]) -> Suite:
    """Read and check a suite file; errors name the file and the key."""
    import yaml

    from recoworld.policies import available

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such suite file (see benchmarks/suites/)")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with scenario, seeds and policies")
    unknown = set(data) - {"name", "description", "scenario", "seeds", "set", "policies"}
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)}")
    raw = data.get("policies")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{path}: policies: expected a non-empty list of names or mappings")
    specs = []
    for j, item in enumerate(raw):
        spec = {"name": item} if isinstance(item, str) else item
        if not isinstance(spec, dict) or "name" not in spec:
            raise ConfigError(f"{path}: policies[{j}]: expected a name or {{name, params}}")
        if spec["name"] not in available():
            raise ConfigError(
                f"{path}: policies[{j}]: unknown policy {spec['name']!r}; "
                f"available: {', '.join(available())}"
            )
        specs.append(PolicySpec(spec["name"], dict(spec.get("params") or {}), _label(spec)))
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{path}: policies: labels must be distinct, got {labels}")
    seeds = data.get("seeds", 5)
    if not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"{path}: seeds: expected an integer >= 1, got {seeds!r}")
    return Suite(
        name=str(data.get("name", path.stem)),
        scenario=str(data.get("scenario", "default")),
        policies=tuple(specs),
        seeds=seeds,
        overrides=dict(data.get("set") or {}),
    )


def _run_one(
    scenario: str, overrides: dict[str, Any], spec: PolicySpec, seed: int, run_dir: str
) -> dict[str, Any]:
    """One recorded run and its figures (in a worker process)."""
    from recoworld._config import override
    from recoworld.metrics.accuracy import logged_ndcg
    from recoworld.metrics.diversity import (
        calibration_kl,
        catalog_coverage,
        exposure_gini,
        intra_list_diversity,
        novelty,
    )
    from recoworld.metrics.instruction import compliance, post_instruction_recovery
    from recoworld.metrics.summary import summarize_run
    from recoworld.policies import make_policy
    from recoworld.scenario import load_scenario
    from recoworld.schedule import Simulation
    from recoworld.trajectory import read_run

    config = override(load_scenario(scenario), {**overrides, "seed": seed})
    sim = Simulation(config, policy=make_policy(spec.name, **spec.params), out_dir=run_dir)
    sim.run()
    run, cat, n_users = read_run(run_dir), sim.world.catalog, sim.world.n_users
    summary = summarize_run(run_dir)
    impressions = run.table("impressions", ["tick", "user", "item", "rank", "source"])
    responses = run.table("responses", ["tick", "session", "user", "item", "rank", "clicked"])
    return {
        "policy": spec.label,
        "seed": seed,
        "engagement/ctr": summary["engagement/ctr"],
        "engagement/session_length": summary["engagement/session_length"],
        "retention/return_rate": summary["retention/return_rate"],
        "accuracy/ndcg": logged_ndcg(impressions, responses),
        "instruction/rate": summary["instruction/rate"],
        "instruction/compliance": compliance(
            run.instructions, impressions, cat.topic, cat.topic_names
        ),
        "instruction/recovery": post_instruction_recovery(run.instructions, responses),
        "diversity/ild": intra_list_diversity(impressions, cat.embedding),
        "diversity/coverage": catalog_coverage(impressions, cat.n_items),
        "fairness/exposure_gini": exposure_gini(impressions, cat.n_items),
        "diversity/novelty": novelty(impressions, n_users),
        "diversity/calibration_kl": calibration_kl(impressions, responses, cat.topic, cat.n_topics),
        "sessions": summary["engagement/sessions"],
        "run_dir": run_dir,
    }


#: Runs the suite's tasks — ``(scenario, overrides, spec, seed, run_dir)``, the arguments of
#: one run — and returns their result rows, calling ``on_done`` with each as it comes.
Runner = Callable[
    [list[tuple[Any, ...]], Callable[[dict[str, Any]], None] | None], list[dict[str, Any]]
]


def run_suite(
    suite: Suite,
    out: str | os.PathLike[str],
    *,
    jobs: int = 1,
    seeds: int | None = None,
    on_done: Callable[[dict[str, Any]], None] | None = None,
    runner: Runner | None = None,
) -> pd.DataFrame:
    """Run every (policy, seed) of ``suite`` on ``jobs`` processes — or through ``runner``
    (e.g. Ray tasks, :mod:`recoworld.distributed.backend`) — and write the results files."""
    from recoworld._config import override
    from recoworld.scenario import load_scenario

    override(load_scenario(suite.scenario), suite.overrides)  # bad keys fail here, not in workers
    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    n_seeds = suite.seeds if seeds is None else seeds
    tasks = [
        (
            spec,
            seed,
            str(out / "runs" / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', spec.label)}-seed{seed}"),
        )
        for seed in range(n_seeds)
        for spec in suite.policies
    ]
    args = [(suite.scenario, suite.overrides, spec, seed, run_dir) for spec, seed, run_dir in tasks]
    if runner is None:
        rows = run_tasks(_run_one, args, jobs=jobs, on_done=on_done)
    else:
        rows = runner(args, on_done)
    order = {spec.label: j for j, spec in enumerate(suite.policies)}
    frame = pd.DataFrame(rows)
    frame = frame.sort_values(
        ["policy", "seed"], key=lambda c: c.map(order) if c.name == "policy" else c
    ).reset_index(drop=True)
    frame.insert(0, "suite", suite.name)
    frame.to_parquet(out / "results.parquet", index=False)
    frame.to_csv(out / "results.csv", index=False)
    (out / "summary.md").write_text(summarize(frame, suite), encoding="utf-8")
    _plots(frame, out)
    return frame


def summarize(frame: pd.DataFrame, suite: Suite) -> str:
    """A Markdown table: per policy, mean ± 95% t-interval half-width over seeds."""
    seeds = frame["seed"].nunique()
    lines = [
        f"# Suite `{suite.name}` — scenario `{suite.scenario}`, {seeds} seeds",
        "",
        "Mean ± half-width of the 95% t-interval over seeds.",
        "",
        "| policy | " + " | ".join(FIGURES) + " |",
        "|---|" + "---|" * len(FIGURES),
    ]
    for spec in suite.policies:
        part = frame[frame["policy"] == spec.label]
        cells = []
        for name in FIGURES:
            mean, half = ci95(part[name].to_numpy(np.float64))
            cells.append("n/a" if math.isnan(mean) else f"{mean:.3f} ± {half:.3f}")
        lines.append(f"| {spec.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _plots(frame: pd.DataFrame, out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    from recoworld.trajectory import read_table

    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, part in frame.groupby("policy", sort=False):
        lengths = np.concatenate(
            [read_table(d, "sessions", ["items"])["items"].to_numpy() for d in part["run_dir"]]
        )
        ax.hist(lengths, bins=40, histtype="step", density=True, label=str(label))
    ax.set_xlabel("items examined per session")
    ax.set_ylabel("density")
    ax.set_title("Session length")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(plots / "session_length.png", dpi=110)
    plt.close(fig)
    _retention_plot(frame, plots, plt)
    _quadrant_plot(frame, plots, plt)
    for x, y, name, title in (
        (
            "diversity/ild",
            "engagement/ctr",
            "engagement_vs_diversity.png",
            "Engagement vs diversity",
        ),
        (
            "instruction/compliance",
            "retention/return_rate",
            "retention_vs_compliance.png",
            "Retention vs instruction compliance",
        ),
    ):
        fig, ax = plt.subplots(figsize=(6, 4.5))
        means = frame.groupby("policy", sort=False)[[x, y]].mean()
        ax.scatter(frame[x], frame[y], s=10, alpha=0.3)
        ax.scatter(means[x], means[y], s=40)
        for policy, row in means.iterrows():
            ax.annotate(str(policy), (row[x], row[y]), fontsize=7)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(title)
        fig.tight_layout()
        fig.savefig(plots / name, dpi=110)
        plt.close(fig)


def _retention_plot(frame: pd.DataFrame, plots: Path, plt: Any) -> None:
    from recoworld.metrics.engagement import retention_curve
    from recoworld.trajectory import read_manifest, read_table

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, part in frame.groupby("policy", sort=False):
        curves = []
        for run_dir in part["run_dir"]:
            manifest = read_manifest(run_dir)
            n_ticks = int(manifest["ticks_completed"])
            hours = float(manifest["config"]["clock"]["tick_minutes"]) / 60.0
            sessions = read_table(run_dir, "sessions", ["user", "start_tick"])
            curves.append(retention_curve(sessions, n_ticks))
        width = min(c.size for c in curves)
        mean = np.mean([c[:width] for c in curves], axis=0)
        ax.plot(np.arange(width) * hours, mean, label=str(label))
    ax.set_xlabel("simulated hours")
    ax.set_ylabel("share of users who come back later")
    ax.set_title("Retention curve (mean over seeds)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(plots / "retention_curve.png", dpi=110)
    plt.close(fig)


def _quadrant_plot(frame: pd.DataFrame, plots: Path, plt: Any) -> None:
    x, y = "accuracy/ndcg", "retention/return_rate"
    means = frame.groupby("policy", sort=False)[[x, y]].mean()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter(frame[x], frame[y], s=10, alpha=0.3)
    ax.scatter(means[x], means[y], s=40)
    for policy, row in means.iterrows():
        ax.annotate(str(policy), (row[x], row[y]), fontsize=7)
    ax.axvline(float(means[x].median()), color="grey", lw=0.8, ls="--")
    ax.axhline(float(means[y].median()), color="grey", lw=0.8, ls="--")
    ax.set_xlabel("accuracy: NDCG of the served lists against their clicks")
    ax.set_ylabel("retention: return rate")
    ax.set_title("NDCG vs retention (dashed: medians over policies)")
    fig.tight_layout()
    fig.savefig(plots / "ndcg_vs_retention.png", dpi=110)
    plt.close(fig)
