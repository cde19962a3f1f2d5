"""``cascade-theory``: independent cascade on the world's Erdős–Rényi graph against its theory.

The check that the diffusion machinery is right. The scenario (``envs/cascade-theory.yaml``)
builds the world — catalogue, population and an Erdős–Rényi follow graph of ``n`` users and mean
degree ``c`` — exactly as ``recoworld run cascade-theory --seed SEED`` would; the cascades then
run on that world's own graph, in the direction shares travel (a user reaches its followers,
:func:`~recoworld.social.classic.influence_csr`).

Per seed and condition, ``params.runs`` cascades (:func:`~recoworld.social.classic.
independent_cascade` with probability ``params.p``), each from one uniformly random user. The
sources are drawn first, from the stream ``cascades`` of the seed, so every condition of a seed
starts from the same users on the same graph.

Theory (directed Erdős–Rényi: in- and out-degrees Poisson(c)): with ``S`` the root of
``S = 1 − exp(−c p S)`` (0 when ``c·p ≤ 1``), a cascade from a random user is giant with
probability ``S`` and then reaches a fraction ``S`` of the users, so the unconditional mean
fraction is ``S²``; a cascade that stays small has ``1 / (1 − c p (1 − S))`` users on average
(the branching process conditioned on extinction, offspring Poisson(c p (1 − S))). ``c`` is the
realized mean degree of the world's graph.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from recoworld.errors import ConfigError
from recoworld.experiments.base import Condition, Experiment, Outcome, pyplot

if TYPE_CHECKING:
    import pandas as pd

    from recoworld.config import ScenarioConfig

__all__ = ["CascadeTheory", "small_cascade_size"]


def small_cascade_size(c: float, p: float) -> float:
    """Mean number of users a cascade that stays small reaches (source included):
    ``1 / (1 − c p (1 − S))``; infinite at the threshold ``c·p = 1``."""
    from recoworld.social.classic import giant_fraction

    x = c * p * (1.0 - giant_fraction(c, p))
    return 1.0 / (1.0 - x) if x < 1.0 else math.inf


class CascadeTheory(Experiment):
    """Independent cascade from one random user on the world's Erdős–Rényi follow graph, next
    to the analytic final size (see the module docstring).

    Conditions: ``p=0.1``, ``p=0.3``, ``p=0.5`` (with ``c = 5``: below, above and well above
    the threshold ``c·p = 1``). Parameters: ``p`` (set by each condition), ``runs`` (cascades
    per seed and condition, 1000), ``giant_threshold`` (a cascade is giant when it reaches
    more than this fraction of the users, 0.01).
    """

    name: ClassVar[str] = "cascade-theory"
    description: ClassVar[str] = (
        "Independent cascade on the world's Erdős–Rényi graph vs the analytic final size "
        "S = 1 − exp(−c p S)"
    )
    scenario: ClassVar[str] = "cascade-theory"
    conditions: ClassVar[dict[str, dict[str, Any]]] = {
        "p=0.1": {"params.p": 0.1},
        "p=0.3": {"params.p": 0.3},
        "p=0.5": {"params.p": 0.5},
    }
    params: ClassVar[dict[str, Any]] = {"p": 0.5, "runs": 1000, "giant_threshold": 0.01}
    summary_metrics: ClassVar[tuple[str, ...]] = (
        "graph/mean_degree",
        "theory/S",
        "cascade/giant_share",
        "cascade/giant_size",
        "theory/S2",
        "cascade/mean_fraction",
        "theory/small_size",
        "cascade/small_size",
    )

    def check(self, config: ScenarioConfig, condition: Condition) -> None:
        params = condition.params
        if config.world.dataset is not None or config.world.graph.kind != "erdos_renyi":
            raise ConfigError(
                f"{self.name}: the theory holds on an Erdős–Rényi graph; the scenario must keep "
                f"world.graph.kind=erdos_renyi and no world.dataset (got "
                f"{config.world.graph.kind!r})"
            )
        if not 0.0 <= params["p"] <= 1.0:
            raise ConfigError(f"params.p: expected a probability in [0, 1], got {params['p']}")
        if params["runs"] < 1:
            raise ConfigError(f"params.runs: expected an integer >= 1, got {params['runs']}")
        if not 0.0 <= params["giant_threshold"] < 1.0:
            raise ConfigError(
                "params.giant_threshold: expected a fraction in [0, 1), "
                f"got {params['giant_threshold']}"
            )

    def run_one(
        self, config: ScenarioConfig, condition: Condition, seed: int, out_dir: Path
    ) -> Outcome:
        import pandas as pd

        from recoworld.rng import RngTree
        from recoworld.social.classic import giant_fraction, independent_cascade, influence_csr
        from recoworld.world.world import World

        p = float(condition.params["p"])
        runs = int(condition.params["runs"])
        threshold = float(condition.params["giant_threshold"])
        tree = RngTree(config.seed)
        world = World.from_config(config, tree)  # the world `recoworld run` would build
        indptr, indices = influence_csr(world.graph)
        n = world.n_users
        c = indices.shape[0] / n
        rng = tree.generator("cascades")
        sources = rng.integers(0, n, size=runs)  # drawn first: the same in every condition
        reached = np.empty(runs, np.int64)
        depth = np.empty(runs, np.int64)
        for j, source in enumerate(sources):
            step = independent_cascade(indptr, indices, [int(source)], p, rng).step
            reached[j] = int(np.count_nonzero(step >= 0))
            depth[j] = int(step.max())
        fraction = reached / n
        giant = fraction > threshold
        s = giant_fraction(c, p)
        row = {
            "cascade/p": p,
            "graph/mean_degree": c,
            "theory/S": s,
            "theory/S2": s * s,
            "theory/small_size": small_cascade_size(c, p),
            "cascade/giant_share": float(giant.mean()),
            "cascade/giant_size": float(fraction[giant].mean()) if giant.any() else math.nan,
            "cascade/mean_fraction": float(fraction.mean()),
            "cascade/small_size": float(reached[~giant].mean()) if (~giant).any() else math.nan,
            "cascade/runs": runs,
        }
        series = pd.DataFrame(
            {
                "run": np.arange(runs),
                "source": sources,
                "reached": reached,
                "fraction": fraction,
                "depth": depth,
            }
        )
        return Outcome(row=row, series=series)

    def plot(self, results: pd.DataFrame, series: pd.DataFrame | None, out_dir: Path) -> list[Path]:
        from recoworld._stats import ci95
        from recoworld.social.classic import giant_fraction

        plt = pyplot()
        written = []
        labels = list(self.conditions)
        if series is not None:
            fig, ax = plt.subplots(figsize=(7, 4))
            bins = np.linspace(0.0, 1.0, 101)
            for j, label in enumerate(labels):
                fractions = series[series["condition"] == label]["fraction"].to_numpy()
                color = f"C{j}"
                ax.hist(fractions, bins=bins, histtype="step", color=color, label=label)
                s = results[results["condition"] == label]["theory/S"].mean()
                if s > 0:
                    ax.axvline(s, color=color, ls="--", lw=0.8)
            ax.set_yscale("log")
            ax.set_xlabel("final fraction of users reached (dashed: analytic S)")
            ax.set_ylabel("cascades")
            ax.set_title("Final size of cascades from one random user")
            ax.legend(fontsize=8)
            fig.tight_layout()
            written.append(out_dir / "final_size_distribution.png")
            fig.savefig(written[-1], dpi=110)
            plt.close(fig)

        fig, ax = plt.subplots(figsize=(7, 4.5))
        c = float(results["graph/mean_degree"].mean())
        p_max = max(1.0, float(results["cascade/p"].max()) * 1.2)
        grid = np.linspace(0.0, min(p_max, 1.0), 201)
        theory = np.array([giant_fraction(c, p) for p in grid])
        ax.plot(grid, theory, color="black", lw=1, label=f"S (c = {c:.2f})")
        ax.plot(grid, theory**2, color="grey", lw=1, ls="--", label="S²")
        for name, marker, text in (
            ("cascade/giant_share", "o", "share of giant cascades"),
            ("cascade/giant_size", "s", "size of a giant cascade"),
            ("cascade/mean_fraction", "^", "mean fraction (all cascades)"),
        ):
            xs, ys, es = [], [], []
            for label in labels:
                part = results[results["condition"] == label]
                mean, half = ci95(part[name].to_numpy(np.float64))
                if math.isnan(mean):
                    continue
                xs.append(float(part["cascade/p"].mean()))
                ys.append(mean)
                es.append(0.0 if math.isnan(half) else half)
            ax.errorbar(xs, ys, yerr=es, fmt=marker, ms=5, capsize=3, label=text)
        ax.axvline(1.0 / c, color="grey", lw=0.6, ls=":")
        ax.set_xlabel("p (dotted: threshold 1/c)")
        ax.set_ylabel("fraction")
        ax.set_title("Independent cascade on Erdős–Rényi: simulation vs theory")
        ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(out_dir / "theory_vs_simulation.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
        return written
