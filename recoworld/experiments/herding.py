"""``herding``: does one seeded vote change the votes that follow (Muchnik, Aral, Taylor 2013)?

The design of the field experiment: before the run, ``params.items`` items drawn at random are
assigned in equal shares to three treatments — ``up`` (the item starts with a net score of
+``params.seed_votes``), ``down`` (−``seed_votes``) and ``control`` (0) — by writing
``Catalog.votes``; the draw comes from the seed's own stream ``herding``, so every condition of a
seed treats the same items. Then the run: users see each item's net score and weigh it by their
conformity (``users.w_vote · conformity · tanh(votes / vote_scale)`` in the utility), and their
own votes change it — a like is an up-vote, a click rated at most ``users.downvote_rating``
without a like a down-vote (:func:`recoworld.social.engine.votes_of`, the schedule's own rule).

The scenario (``envs/herding.yaml``) shows each user a relevance feed that never reads the votes
(``oracle`` in a world without stance, labels or intents that matter: each user's own utility
without the vote term), and has no follow graph, so which users see an item does not depend on
its treatment: any difference comes from how users respond to the score. Conditions:

- ``herding``: the score is visible (``users.w_vote: 1``);
- ``no-social-signal``: ``users.w_vote: 0`` — the score is invisible; the null where the
  treatments must not differ beyond noise (and the seeded vote itself).

From the ``responses`` table, the later votes (item, tick, vote) give, with
:func:`recoworld.metrics.social.herding`, per treatment: P(the first later vote is up) with its
Wilson interval, its difference from control (Newcombe's interval) and its lift
(P / P_control − 1, Muchnik et al.'s +32%); the mean sum of later votes and its difference from
control (Welch interval); the mean final score (seed + later votes). The series is the mean score
per treatment over time (hourly).
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

__all__ = ["TREATMENTS", "Herding"]

#: The treatments and the sign of their seeded vote.
TREATMENTS = {"up": 1, "down": -1, "control": 0}


class Herding(Experiment):
    """Items seeded with an up-vote, a down-vote or nothing; later votes per treatment, with
    the score visible and invisible (see the module docstring).

    Parameters: ``items`` (items treated per seed, split equally, 1200), ``seed_votes`` (the
    seeded score's magnitude, 1: one vote), ``keep_runs`` (keep each run's trajectory, false).
    """

    name: ClassVar[str] = "herding"
    version: ClassVar[int] = 0
    description: ClassVar[str] = (
        "Muchnik–Aral–Taylor: items seeded with an up-vote, a down-vote or none; P(first later "
        "vote up) and final score per treatment, score visible vs invisible"
    )
    scenario: ClassVar[str] = "herding"
    conditions: ClassVar[dict[str, dict[str, Any]]] = {
        "herding": {"users.w_vote": 1.0},
        "no-social-signal": {"users.w_vote": 0.0},
    }
    params: ClassVar[dict[str, Any]] = {"items": 1200, "seed_votes": 1, "keep_runs": False}
    summary_metrics: ClassVar[tuple[str, ...]] = (
        "herd/p_first_up_up",
        "herd/p_first_up_control",
        "herd/p_first_up_down",
        "herd/p_first_up_diff_up",
        "herd/p_first_up_diff_down",
        "herd/p_first_up_lift_up",
        "herd/later_diff_up",
        "herd/later_diff_down",
        "herd/final_score_up",
        "herd/final_score_control",
        "herd/final_score_down",
        "herd/votes_per_item",
        "herd/up_share",
        "engagement/ctr",
    )

    def check(self, config: ScenarioConfig, condition: Condition) -> None:
        from recoworld.policies import make_policy

        items, seed_votes = condition.params["items"], condition.params["seed_votes"]
        if items < 3:
            raise ConfigError(f"params.items: expected an integer >= 3, got {items}")
        if config.world.dataset is None and items > config.world.n_items:
            raise ConfigError(
                f"params.items: expected at most world.n_items ({config.world.n_items}), "
                f"got {items}"
            )
        if seed_votes < 0:
            raise ConfigError(f"params.seed_votes: expected an integer >= 0, got {seed_votes}")
        make_policy(config.policy.name, **config.policy.params)

    @staticmethod
    def assign(n_items: int, items: int, rng: np.random.Generator) -> pd.Series:
        """``items`` distinct items of ``0..n_items−1`` drawn at random, treatments up, down,
        control in equal shares (the first ``3·⌊items/3⌋``): a Series item → treatment."""
        import pandas as pd

        k = 3 * (items // 3)
        chosen = rng.choice(n_items, size=k, replace=False)
        labels = np.array(list(TREATMENTS), dtype=object)[np.arange(k) % 3]
        return pd.Series(labels, index=pd.Index(chosen.astype(np.int64), name="item"))

    def run_one(
        self, config: ScenarioConfig, condition: Condition, seed: int, out_dir: Path
    ) -> Outcome:
        import pandas as pd

        from recoworld.metrics.social import herding
        from recoworld.metrics.summary import summarize_run
        from recoworld.rng import RngTree
        from recoworld.schedule import Simulation
        from recoworld.social.engine import votes_of
        from recoworld.trajectory import read_table

        magnitude = int(condition.params["seed_votes"])
        sim = Simulation(config, out_dir=out_dir)
        cat = sim.world.catalog
        if int(condition.params["items"]) > cat.n_live:
            raise ConfigError(
                f"params.items: expected at most the catalogue's {cat.n_live} items, "
                f"got {condition.params['items']}"
            )
        treatment = self.assign(
            cat.n_live, int(condition.params["items"]), RngTree(config.seed).generator("herding")
        )
        sign = treatment.map(TREATMENTS).to_numpy(np.int64)
        cat.votes[treatment.index.to_numpy()] = magnitude * sign  # the seeded score
        sim.run()
        ticks_per_hour = 60 // config.clock.tick_minutes or 1
        n_ticks = sim.n_ticks

        responses = read_table(out_dir, "responses", ["tick", "item", "clicked", "liked", "rating"])
        summary = summarize_run(out_dir)
        if not condition.params["keep_runs"]:
            shutil.rmtree(out_dir, ignore_errors=True)
        vote = votes_of(
            responses["liked"].to_numpy(bool),
            responses["clicked"].to_numpy(bool),
            responses["rating"].to_numpy(np.float64, na_value=np.nan),
            config.users.downvote_rating,
        )
        cast = vote != 0
        votes = pd.DataFrame(
            {
                "item": responses["item"].to_numpy(np.int64)[cast],
                "tick": responses["tick"].to_numpy(np.int64)[cast],
                "vote": vote[cast],
            }
        )
        table = herding(votes, treatment)

        stats = {
            str(label): {str(k): float(v) for k, v in values.items()}
            for label, values in table.to_dict(orient="index").items()
        }
        row: Row = {}
        treated = votes[votes["item"].isin(treatment.index)]
        p_control = stats["control"]["p_first_up"]
        for label, s in TREATMENTS.items():
            line = stats[label]
            shift = s - TREATMENTS["control"]  # herding() scores a seeded vote of ±1
            row[f"herd/n_voted_{label}"] = int(line["n_voted"])
            for key in ("", "_lo", "_hi"):
                row[f"herd/p_first_up{key}_{label}"] = line[f"p_first_up{key}"]
            later = line["mean_score"] - s
            row[f"herd/later_score_{label}"] = later
            row[f"herd/final_score_{label}"] = later + magnitude * s
            if label == "control":
                continue
            for key in ("", "_lo", "_hi"):
                row[f"herd/p_first_up_diff{key}_{label}"] = line[f"p_first_up_diff{key}"]
                row[f"herd/later_diff{key}_{label}"] = line[f"score_diff{key}"] - shift
            row[f"herd/p_first_up_lift_{label}"] = (
                line["p_first_up"] / p_control - 1.0 if p_control > 0 else math.nan
            )
            row[f"herd/final_diff_{label}"] = line["score_diff"] - shift + magnitude * shift
        row["herd/items"] = len(treatment)
        row["herd/seed_votes"] = magnitude
        row["herd/votes"] = len(votes)
        row["herd/votes_per_item"] = len(treated) / len(treatment) if len(treatment) else math.nan
        row["herd/up_share"] = float((votes["vote"] > 0).mean()) if len(votes) else math.nan
        row["engagement/ctr"] = float(summary["engagement/ctr"])
        row["retention/return_rate"] = float(summary["retention/return_rate"])
        row["policy"] = sim.policy.name

        # Mean score per treatment at the end of every hour: seed + later votes so far.
        hour = treated["tick"].to_numpy(np.int64) // ticks_per_hour
        hours = np.arange(max(1, math.ceil(n_ticks / ticks_per_hour)))
        label_of = treatment.reindex(treated["item"].to_numpy()).to_numpy()
        parts = []
        for label, s in TREATMENTS.items():
            mask = label_of == label
            n = int((treatment == label).sum())
            per_hour = np.bincount(
                hour[mask], weights=treated["vote"].to_numpy(np.float64)[mask], minlength=hours.size
            )[: hours.size]
            parts.append(
                pd.DataFrame(
                    {
                        "hours": hours + 1.0,
                        "treatment": label,
                        "mean_score": magnitude * s + np.cumsum(per_hour) / max(n, 1),
                    }
                )
            )
        return Outcome(row=row, series=pd.concat(parts, ignore_index=True))

    def plot(self, results: pd.DataFrame, series: pd.DataFrame | None, out_dir: Path) -> list[Path]:
        from recoworld._stats import ci95

        plt = pyplot()
        written = []
        labels = [c for c in self.conditions if (results["condition"] == c).any()]
        fig, ax = plt.subplots(figsize=(7, 4))
        width = 0.8 / max(len(labels), 1)
        for j, label in enumerate(labels):
            part = results[results["condition"] == label]
            means, halves = [], []
            for treatment in TREATMENTS:
                mean, half = ci95(part[f"herd/p_first_up_{treatment}"].to_numpy(np.float64))
                means.append(mean)
                halves.append(0.0 if math.isnan(half) else half)
            xs = np.arange(len(TREATMENTS)) + (j - (len(labels) - 1) / 2) * width
            ax.bar(xs, means, width=width, yerr=halves, capsize=3, color=f"C{j}", label=label)
        ax.set_xticks(np.arange(len(TREATMENTS)), [f"seeded {t}" for t in TREATMENTS])
        ax.set_ylabel("P(first later vote is up)")
        ax.set_title("Herding: the first vote after the seeded one (95% CI over seeds)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(out_dir / "p_first_up.png")
        fig.savefig(written[-1], dpi=90)
        plt.close(fig)

        if series is not None:
            fig, axes = plt.subplots(1, len(labels), figsize=(5 * len(labels), 3.8), sharey=True)
            axes = np.atleast_1d(axes)
            for ax, label in zip(axes, labels, strict=True):
                part = series[series["condition"] == label]
                for k, treatment in enumerate(TREATMENTS):
                    curve = part[part["treatment"] == treatment].groupby("hours")["mean_score"]
                    average = curve.mean()
                    ax.plot(average.index, average, color=f"C{k + 2}", label=f"seeded {treatment}")
                ax.axhline(0.0, color="grey", lw=0.6)
                ax.set_title(label)
                ax.set_xlabel("simulated hours")
                ax.legend(fontsize=8)
            axes[0].set_ylabel("mean net score (seed + later votes)")
            fig.tight_layout()
            written.append(out_dir / "score_over_time.png")
            fig.savefig(written[-1], dpi=90)
            plt.close(fig)
        return written
