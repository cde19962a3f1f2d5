"""``filter-bubble``: does a similarity-based feed narrow what users see, and make them alike?

The scenario (``envs/filter-bubble.yaml``) fixes the world (``world.seed``), so seeds vary the
users' behaviour and the feed, not the catalogue or the population. Three feeds:

- ``similarity``: ``itemknn`` — item-item collaborative filtering, each candidate scored by its
  similarity to the user's last clicks (the policy whose scores are similarities);
- ``random``: ``random`` — the candidates in random order (the baseline exposure);
- ``diversified``: ``mmr`` over ``itemknn`` (maximal marginal relevance, λ = 0.7, its default):
  the same relevance, each pick penalized by its embedding similarity to those above it.

Each run is a recorded :class:`~recoworld.schedule.Simulation`; its impressions are cut into
windows of ``params.window_hours`` hours. Per window, with
:func:`~recoworld.metrics.social.topic_entropy` and
:func:`~recoworld.metrics.social.homogenization`:

- ``entropy``: mean over users shown something in the window of the normalized entropy of the
  topics they were shown (0: one topic, 1: all topics equally);
- ``entropy_mm``: the same with the Miller–Madow bias correction (``correction="miller-madow"``:
  + (topics seen − 1) / (2 · impressions) per user before normalizing), which removes most of
  the plug-in entropy's downward bias on short histories;
- ``homogenization``: mean cosine similarity over pairs of those users of their topic-exposure
  counts (1: everyone sees the same topic mix).

Row metrics: each in the first and the last window and their drift (last − first), the mean
number of impressions per exposed user in those windows (the plug-in entropy of a short history
is biased low, so feeds with short sessions look narrower: compare them by ``entropy_mm``), CTR
and return rate. The per-window
curves are the series. The trajectory is deleted after the metrics are computed unless
``params.keep_runs`` is true.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from recoworld.errors import ConfigError
from recoworld.experiments.base import Condition, Experiment, Outcome, Row, pyplot

if TYPE_CHECKING:
    import pandas as pd

    from recoworld.config import ScenarioConfig

__all__ = ["FilterBubble"]


class FilterBubble(Experiment):
    """Similarity-based feed vs random vs diversified: per-user topic entropy and population
    homogenization of exposures over time (see the module docstring).

    Parameters: ``window_hours`` (length of a window, 6), ``keep_runs`` (keep each run's
    trajectory in ``runs/``, false).
    """

    name: ClassVar[str] = "filter-bubble"
    version: ClassVar[int] = 1  # 1: the Miller–Madow entropy columns
    description: ClassVar[str] = (
        "Similarity feed (itemknn) vs random vs diversified (mmr): users' topic entropy and "
        "population homogenization of exposures over time"
    )
    scenario: ClassVar[str] = "filter-bubble"
    conditions: ClassVar[dict[str, dict[str, Any]]] = {
        "similarity": {"policy.name": "itemknn", "policy.params": {}},
        "random": {"policy.name": "random", "policy.params": {}},
        "diversified": {
            "policy.name": "mmr",
            "policy.params": {"base": "itemknn", "lam": 0.7},
        },
    }
    params: ClassVar[dict[str, Any]] = {"window_hours": 6.0, "keep_runs": False}
    summary_metrics: ClassVar[tuple[str, ...]] = (
        "bubble/entropy_first",
        "bubble/entropy_last",
        "bubble/entropy_drift",
        "bubble/entropy_mm_first",
        "bubble/entropy_mm_last",
        "bubble/entropy_mm_drift",
        "bubble/homogenization_first",
        "bubble/homogenization_last",
        "bubble/homogenization_drift",
        "engagement/ctr",
        "retention/return_rate",
    )

    @staticmethod
    def window_ticks(config: ScenarioConfig, condition: Condition) -> int:
        """``params.window_hours`` in ticks (a whole number of ticks)."""
        hours = float(condition.params["window_hours"])
        ticks = hours * 60.0 / config.clock.tick_minutes
        if hours <= 0 or abs(ticks - round(ticks)) > 1e-9:
            raise ConfigError(
                f"params.window_hours: expected a positive whole number of ticks of "
                f"{config.clock.tick_minutes} minutes, got {hours} hours"
            )
        return round(ticks)

    def check(self, config: ScenarioConfig, condition: Condition) -> None:
        from recoworld.policies import make_policy

        self.window_ticks(config, condition)
        make_policy(config.policy.name, **config.policy.params)  # bad policy params fail here

    def run_one(
        self, config: ScenarioConfig, condition: Condition, seed: int, out_dir: Path
    ) -> Outcome:
        import pandas as pd

        from recoworld.metrics.social import homogenization, topic_entropy
        from recoworld.metrics.summary import summarize_run
        from recoworld.schedule import Simulation
        from recoworld.trajectory import read_table

        window = self.window_ticks(config, condition)
        sim = Simulation(config, out_dir=out_dir)
        sim.run()
        catalog = sim.world.catalog
        impressions = read_table(out_dir, "impressions", ["tick", "user", "item"])
        summary = summarize_run(out_dir)
        if not condition.params["keep_runs"]:
            shutil.rmtree(out_dir, ignore_errors=True)

        per_user = topic_entropy(impressions, catalog.topic, catalog.n_topics, window=window)
        if not isinstance(per_user, pd.DataFrame):  # pragma: no cover - windowed form
            raise TypeError("topic_entropy with a window returns a DataFrame")
        corrected = topic_entropy(
            impressions,
            catalog.topic,
            catalog.n_topics,
            window=window,
            correction="miller-madow",
        )
        if not isinstance(corrected, pd.DataFrame):  # pragma: no cover - windowed form
            raise TypeError("topic_entropy with a window returns a DataFrame")
        curves = per_user.groupby("window").agg(
            entropy=("topic_entropy", "mean"), users=("user", "size")
        )
        curves["entropy_mm"] = corrected.groupby("window")["topic_entropy"].mean()
        shown = impressions.assign(window=impressions["tick"] // window)
        curves["impressions_per_user"] = shown.groupby("window").size() / curves["users"]
        curves["homogenization"] = homogenization(
            impressions, catalog.topic, catalog.n_topics, window
        )
        curves = curves.reset_index()
        curves.insert(1, "hours", curves["window"] * window * config.clock.tick_minutes / 60.0)

        def at(column: str, j: int) -> float:
            return float(curves[column].iloc[j]) if len(curves) else math.nan

        row: Row = {
            "bubble/entropy_first": at("entropy", 0),
            "bubble/entropy_last": at("entropy", -1),
            "bubble/entropy_drift": at("entropy", -1) - at("entropy", 0),
            "bubble/entropy_mm_first": at("entropy_mm", 0),
            "bubble/entropy_mm_last": at("entropy_mm", -1),
            "bubble/entropy_mm_drift": at("entropy_mm", -1) - at("entropy_mm", 0),
            "bubble/homogenization_first": at("homogenization", 0),
            "bubble/homogenization_last": at("homogenization", -1),
            "bubble/homogenization_drift": at("homogenization", -1) - at("homogenization", 0),
            "bubble/impressions_per_user_first": at("impressions_per_user", 0),
            "bubble/impressions_per_user_last": at("impressions_per_user", -1),
            "bubble/windows": len(curves),
            "engagement/ctr": float(summary["engagement/ctr"]),
            "engagement/session_length": float(summary["engagement/session_length"]),
            "retention/return_rate": float(summary["retention/return_rate"]),
            "engagement/impressions": int(summary["engagement/impressions"]),
            "policy": sim.policy.name,
        }
        return Outcome(row=row, series=curves)

    def plot(self, results: pd.DataFrame, series: pd.DataFrame | None, out_dir: Path) -> list[Path]:
        if series is None:
            return []
        plt = pyplot()
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for j, label in enumerate(self.conditions):
            part = series[series["condition"] == label]
            if not len(part):
                continue
            by_hour = part.groupby("hours")[["entropy", "homogenization"]]
            mean, low, high = by_hour.mean(), by_hour.min(), by_hour.max()
            for ax, column in zip(axes, ("entropy", "homogenization"), strict=True):
                ax.plot(mean.index, mean[column], marker="o", ms=3, color=f"C{j}", label=label)
                ax.fill_between(
                    mean.index, low[column], high[column], color=f"C{j}", alpha=0.15, lw=0
                )
            if "entropy_mm" in part:
                mm = part.groupby("hours")["entropy_mm"].mean()
                axes[0].plot(mm.index, mm, ls="--", lw=1, color=f"C{j}")
        axes[0].set_ylabel("mean normalized topic entropy per user (dashed: Miller–Madow)")
        axes[0].set_title("Topic entropy of each user's exposures")
        axes[1].set_ylabel("mean pairwise cosine of topic mixes")
        axes[1].set_title("Homogenization of the population")
        for ax in axes:
            ax.set_xlabel("simulated hours (window start; band: min–max over seeds)")
            ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / "entropy_homogenization.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return [path]
