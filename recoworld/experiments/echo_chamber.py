"""``echo-chamber``: does an engagement-optimizing feed sort users into like-minded camps?

The scenario (``envs/echo-chamber.yaml``) gives users confirmation bias (``users.w_stance``:
agreeing items are more attractive), opinion dynamics on what they click (bounded confidence,
``users.opinion_rate`` within ``users.opinion_epsilon``, and biased assimilation,
``users.opinion_reinforcement``), a homophilous follow graph they edit (follows by homophily,
unfollows of sharers whose items they skip when the stance is more than
``social.disagree_distance`` away) and in-network items on the page. The world is fixed
(``world.seed``), so every condition and seed starts from the same users, opinions and graph;
seeds vary behaviour and the feed. Five feeds:

- ``engagement``: ``oracle`` — each user's own click utility, confirmation bias included: the
  perfect engagement maximizer;
- ``stance-blind``: ``oracle`` with ``use_stance: false`` — the same relevance, blind to stance;
- ``bridging``: ``oracle`` with ``use_stance: false, bridging: 1.0`` — relevance plus a bonus per
  unit of distance between the user's opinion and the item's stance;
- ``learned``: ``mf`` — a matrix-factorization engagement optimizer learning from clicks;
- ``random``: ``random`` — the candidates in random order.

Each run is a recorded :class:`~recoworld.schedule.Simulation` stepped tick by tick; every
``record.opinion_every`` ticks (and before the first) the experiment measures the live world with
:mod:`recoworld.metrics.social`: the echo-chamber correlation (Pearson and Spearman) between each
user's opinion and the mean opinion of the users it follows *on the graph of that moment* (the
graph changes with follows and unfollows), polarization (variance, bimodality, extremity) and the
network disagreement per edge. Stepping and measuring draws nothing, so the run is the one
``recoworld run`` would record.

From the trajectory: exposure homophily (mean |opinion − stance|) and cross-cutting share of the
recommended impressions (``source`` rec) and of the in-network ones, each impression with its
user's opinion at the latest snapshot (``opinions`` table); CTR and return rate. The final and the
initial opinion histograms are kept as text columns for the plots. The trajectory is deleted
once measured unless ``params.keep_runs`` is true.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from recoworld.errors import ConfigError
from recoworld.experiments.base import Condition, Experiment, Outcome, Row, pyplot

if TYPE_CHECKING:
    import pandas as pd

    from recoworld.config import ScenarioConfig
    from recoworld.world.graph import SocialGraph

__all__ = ["EchoChamber", "histogram_text", "parse_histogram"]


def histogram_text(x: np.ndarray, bins: int) -> str:
    """Counts of ``x`` in ``bins`` equal bins over [−1, 1], space-separated (a results cell)."""
    counts, _ = np.histogram(np.asarray(x, np.float64), bins=bins, range=(-1.0, 1.0))
    return " ".join(str(int(c)) for c in counts)


def parse_histogram(text: object) -> np.ndarray:
    """The counts of :func:`histogram_text` (an empty array for a missing cell)."""
    if not isinstance(text, str) or not text.strip():
        return np.zeros(0, np.float64)
    return np.array([float(v) for v in text.split()], np.float64)


class EchoChamber(Experiment):
    """Engagement-optimizing feed vs stance-blind, bridging, learned and random feeds:
    echo-chamber correlation and polarization over time, exposure homophily (see the module
    docstring).

    Parameters: ``bins`` (bins of the opinion histograms over [−1, 1], 20), ``tau`` (extremity
    threshold |x| > tau, 0.5), ``keep_runs`` (keep each run's trajectory in ``runs/``, false).
    """

    name: ClassVar[str] = "echo-chamber"
    version: ClassVar[int] = 0
    description: ClassVar[str] = (
        "Engagement-optimizing feed (oracle) vs stance-blind, bridging, learned (mf) and random "
        "feeds: echo-chamber correlation, polarization and exposure homophily over time"
    )
    scenario: ClassVar[str] = "echo-chamber"
    conditions: ClassVar[dict[str, dict[str, Any]]] = {
        "engagement": {"policy.name": "oracle", "policy.params": {}},
        "stance-blind": {"policy.name": "oracle", "policy.params": {"use_stance": False}},
        "bridging": {
            "policy.name": "oracle",
            "policy.params": {"use_stance": False, "bridging": 1.0},
        },
        "learned": {"policy.name": "mf", "policy.params": {}},
        "random": {"policy.name": "random", "policy.params": {}},
    }
    params: ClassVar[dict[str, Any]] = {"bins": 20, "tau": 0.5, "keep_runs": False}
    summary_metrics: ClassVar[tuple[str, ...]] = (
        "echo/corr_end",
        "echo/spearman_end",
        "polar/variance_end",
        "polar/bimodality_end",
        "polar/extremity_end",
        "polar/disagreement_end",
        "exposure/rec_homophily",
        "exposure/rec_cross_cutting",
        "exposure/social_homophily",
        "exposure/social_cross_cutting",
        "graph/follows",
        "graph/unfollows",
        "engagement/ctr",
        "retention/return_rate",
    )

    def check(self, config: ScenarioConfig, condition: Condition) -> None:
        from recoworld.policies import make_policy

        if config.record.opinion_every < 1:
            raise ConfigError(
                f"{self.name}: the curves are measured every record.opinion_every ticks; "
                "expected record.opinion_every >= 1, got 0"
            )
        if config.world.graph.kind == "none" and config.world.dataset is None:
            raise ConfigError(
                f"{self.name}: the echo-chamber correlation needs a follow graph; "
                "world.graph.kind is none"
            )
        if condition.params["bins"] < 2:
            raise ConfigError(
                f"params.bins: expected an integer >= 2, got {condition.params['bins']}"
            )
        if not condition.params["tau"] >= 0:
            raise ConfigError(f"params.tau: expected a number >= 0, got {condition.params['tau']}")
        make_policy(config.policy.name, **config.policy.params)  # bad policy params fail here

    @staticmethod
    def measure(graph: SocialGraph, opinion: np.ndarray, tau: float) -> dict[str, float]:
        """The opinion figures of one moment: echo-chamber correlation (Pearson, Spearman) on
        ``graph``, polarization (variance, bimodality, extremity |x| > ``tau``), network
        disagreement per edge and the number of edges."""
        from recoworld.metrics.social import (
            echo_chamber_correlation,
            network_disagreement,
            polarization,
        )

        x = np.asarray(opinion, np.float64)
        pol = polarization(x, tau)
        edges = graph.n_edges
        return {
            "corr": echo_chamber_correlation(graph, x),
            "spearman": echo_chamber_correlation(graph, x, "spearman"),
            "variance": pol["variance"],
            "bimodality": pol["bimodality"],
            "extremity": pol["extremity"],
            "disagreement": network_disagreement(graph, x) / edges if edges else math.nan,
            "edges": float(edges),
        }

    def run_one(
        self, config: ScenarioConfig, condition: Condition, seed: int, out_dir: Path
    ) -> Outcome:
        import pandas as pd

        from recoworld.metrics.social import cross_cutting_share, exposure_homophily
        from recoworld.metrics.summary import summarize_run
        from recoworld.schedule import Simulation
        from recoworld.trajectory import read_table

        tau = float(condition.params["tau"])
        bins = int(condition.params["bins"])
        every = config.record.opinion_every
        sim = Simulation(config, out_dir=out_dir)
        world = sim.world
        graph, pop = world.graph, world.population
        start_opinion = pop.opinion.copy()
        points = [{"ticks": 0, **self.measure(graph, pop.opinion, tau)}]
        status = "failed"
        try:
            for done in range(1, sim.n_ticks + 1):
                sim.step()
                if done % every == 0 or done == sim.n_ticks:
                    points.append({"ticks": done, **self.measure(graph, pop.opinion, tau)})
            status = "completed"
        finally:
            sim.finish(status)
        totals = sim.totals
        policy = sim.policy.name
        stance = world.catalog.stance.copy()
        end_opinion = pop.opinion.copy()

        impressions = read_table(out_dir, "impressions", ["tick", "user", "item", "source"])
        opinions = read_table(out_dir, "opinions", ["tick", "user", "opinion"])
        summary = summarize_run(out_dir)
        if not condition.params["keep_runs"]:
            shutil.rmtree(out_dir, ignore_errors=True)

        exposure: dict[str, float] = {}
        social = impressions["source"].astype(str).to_numpy() == "social"
        for name, mask in (("rec", ~social), ("social", social)):
            part = impressions[mask]
            if len(part):
                exposure[f"exposure/{name}_homophily"] = exposure_homophily(part, stance, opinions)
                exposure[f"exposure/{name}_cross_cutting"] = cross_cutting_share(
                    part, stance, opinions
                )
            else:
                exposure[f"exposure/{name}_homophily"] = math.nan
                exposure[f"exposure/{name}_cross_cutting"] = math.nan

        curves = pd.DataFrame(points)
        curves.insert(1, "hours", curves["ticks"] * config.clock.tick_minutes / 60.0)
        first, last = points[0], points[-1]
        row: Row = {
            "echo/corr_start": first["corr"],
            "echo/corr_end": last["corr"],
            "echo/spearman_start": first["spearman"],
            "echo/spearman_end": last["spearman"],
            "polar/variance_start": first["variance"],
            "polar/variance_end": last["variance"],
            "polar/bimodality_start": first["bimodality"],
            "polar/bimodality_end": last["bimodality"],
            "polar/extremity_start": first["extremity"],
            "polar/extremity_end": last["extremity"],
            "polar/disagreement_start": first["disagreement"],
            "polar/disagreement_end": last["disagreement"],
            **exposure,
            "exposure/social_share": float(social.mean()) if social.size else math.nan,
            "graph/follows": int(totals.follows),
            "graph/unfollows": int(totals.unfollows),
            "graph/edges_start": int(first["edges"]),
            "graph/edges_end": int(last["edges"]),
            "engagement/ctr": float(summary["engagement/ctr"]),
            "engagement/impressions": int(summary["engagement/impressions"]),
            "engagement/shares": int(totals.shares),
            "retention/return_rate": float(summary["retention/return_rate"]),
            "opinion/histogram_start": histogram_text(start_opinion, bins),
            "opinion/histogram_end": histogram_text(end_opinion, bins),
            "policy": policy,
        }
        return Outcome(row=row, series=curves)

    def plot(self, results: pd.DataFrame, series: pd.DataFrame | None, out_dir: Path) -> list[Path]:
        from recoworld._stats import ci95

        plt = pyplot()
        written = []
        labels = [c for c in self.conditions if (results["condition"] == c).any()]
        if series is not None:
            fig, axes = plt.subplots(1, 2, figsize=(11, 4))
            for j, label in enumerate(labels):
                part = series[series["condition"] == label]
                for ax, column in zip(axes, ("corr", "variance"), strict=True):
                    cells = [
                        (hours, *ci95(group[column].to_numpy(np.float64)))
                        for hours, group in part.groupby("hours")
                    ]
                    if not cells:
                        continue
                    hours, mean, half = (np.array(v, np.float64) for v in zip(*cells, strict=True))
                    half = np.nan_to_num(half)
                    ax.plot(hours, mean, marker="o", ms=2.5, color=f"C{j}", label=label)
                    ax.fill_between(
                        hours, mean - half, mean + half, color=f"C{j}", alpha=0.18, lw=0
                    )
            axes[0].set_ylabel("corr(opinion, mean opinion of followees)")
            axes[0].set_title("Echo-chamber correlation")
            axes[1].set_ylabel("variance of opinions")
            axes[1].set_title("Polarization")
            for ax in axes:
                ax.set_xlabel("simulated hours (band: 95% CI over seeds)")
                ax.legend(fontsize=8)
            fig.tight_layout()
            written.append(out_dir / "echo_chamber_over_time.png")
            fig.savefig(written[-1], dpi=90)
            plt.close(fig)

        if "opinion/histogram_end" in results:
            fig, ax = plt.subplots(figsize=(7, 4))
            initial = [parse_histogram(v) for v in results["opinion/histogram_start"]]
            initial = [h for h in initial if h.size]
            if initial:
                counts = np.mean(initial, axis=0)
                edges = np.linspace(-1.0, 1.0, counts.size + 1)
                ax.stairs(counts / counts.sum(), edges, color="grey", ls="--", label="start")
            for j, label in enumerate(labels):
                ends = results[results["condition"] == label]["opinion/histogram_end"]
                hists = [h for h in (parse_histogram(v) for v in ends) if h.size]
                if not hists:
                    continue
                counts = np.mean(hists, axis=0)
                edges = np.linspace(-1.0, 1.0, counts.size + 1)
                ax.stairs(counts / counts.sum(), edges, color=f"C{j}", lw=1.4, label=label)
            ax.set_xlabel("opinion (end of run; mean over seeds)")
            ax.set_ylabel("share of users")
            ax.set_title("Final opinions per feed")
            ax.legend(fontsize=8)
            fig.tight_layout()
            written.append(out_dir / "opinion_histograms.png")
            fig.savefig(written[-1], dpi=90)
            plt.close(fig)
        return written
