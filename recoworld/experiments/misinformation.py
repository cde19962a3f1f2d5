"""``misinformation``: how far do false items spread, and what do the platform's interventions do?

The scenario (``envs/misinformation.yaml``) is the social scenario's world at a smaller size: a
dense homophilous follow graph, sociable users, four in-network slots every third page, a
most-popular recommender, and a tenth of the catalogue false (``world.misinformation``; false
items are ``users.misinfo_share_boost`` = 1.7 times as shareable). The world is fixed
(``world.seed``), so every condition and seed has the same false items; seeds vary behaviour.
Conditions (``moderation:``, see ``docs/social.md``):

- ``none``: no intervention;
- ``labels``: warning labels on the false items the platform detects (``label_recall`` 0.7):
  a labeled item costs ``users.label_penalty`` utility and is ``label_share_drop`` less
  shareable;
- ``downrank``: labels, and labeled items moved to the end of every page;
- ``friction``: ``share_friction`` 0.3 — that share of every would-be share (true or false) does
  not happen;
- ``notes``: community notes — a false item gets a label once shared 3 times;
- ``all``: labels, down-ranking, friction and notes together.

From the ``social`` table's diffusion trees (:func:`recoworld.metrics.social.diffusion_trees`),
separately for false and true items: cascades, mean and max size, mean and max depth, mean
structural virality (over cascades of two adoptions or more), adopters (the sum of sizes: each
user's first adoption of an item). Also: the in-network reach of false items (impressions of
false items that came from followees), the share of all share events that were of false items,
the share of false items labeled at the end, CTR and return rate (the cost of the intervention).
The series is the cascade-size histogram (``veracity, size, cascades``) behind the CCDF plot.
:meth:`Misinformation.effects` gives each intervention's effect against ``none``, paired by
seed, with its interval.
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

__all__ = ["Misinformation"]

_LABELS: dict[str, Any] = {"moderation.warning_labels": True, "moderation.label_recall": 0.7}


class Misinformation(Experiment):
    """False-item cascades under no intervention, warning labels, down-ranking, share
    friction, community notes and all of them (see the module docstring).

    Parameters: ``keep_runs`` (keep each run's trajectory in ``runs/``, false).
    """

    name: ClassVar[str] = "misinformation"
    version: ClassVar[int] = 0
    description: ClassVar[str] = (
        "False-item cascades under warning labels, down-ranking, share friction and community "
        "notes: cascade size and depth, false shares, reach and the engagement cost"
    )
    scenario: ClassVar[str] = "misinformation"
    conditions: ClassVar[dict[str, dict[str, Any]]] = {
        "none": {},
        "labels": dict(_LABELS),
        "downrank": {**_LABELS, "moderation.downrank": True},
        "friction": {"moderation.share_friction": 0.3},
        "notes": {"moderation.community_notes": 3},
        "all": {
            **_LABELS,
            "moderation.downrank": True,
            "moderation.share_friction": 0.3,
            "moderation.community_notes": 3,
        },
    }
    params: ClassVar[dict[str, Any]] = {"keep_runs": False}
    summary_metrics: ClassVar[tuple[str, ...]] = (
        "false/adopters",
        "false/cascades",
        "false/size_mean",
        "false/size_max",
        "false/depth_mean",
        "false/depth_max",
        "false/virality_mean",
        "false/reach_in_network",
        "false/share_of_shares",
        "false/labeled_share",
        "true/adopters",
        "true/size_mean",
        "true/size_max",
        "engagement/ctr",
        "retention/return_rate",
    )

    def check(self, config: ScenarioConfig, condition: Condition) -> None:
        from recoworld.policies import make_policy

        if config.world.misinformation <= 0:
            raise ConfigError(
                f"{self.name}: expected a share of false items, world.misinformation > 0 "
                f"(got {config.world.misinformation})"
            )
        make_policy(config.policy.name, **config.policy.params)

    @staticmethod
    def cascade_figures(trees: pd.DataFrame, prefix: str) -> dict[str, float]:
        """Cascade count, size, depth, virality and adopters of ``trees`` (diffusion_trees
        rows), as ``<prefix>/...`` metrics."""
        size = trees["size"].to_numpy(np.float64)
        depth = trees["depth"].to_numpy(np.float64)
        multi = trees["structural_virality"].to_numpy(np.float64)[size > 1]
        nan = math.nan
        return {
            f"{prefix}/cascades": len(trees),
            f"{prefix}/adopters": int(size.sum()),
            f"{prefix}/size_mean": float(size.mean()) if size.size else nan,
            f"{prefix}/size_max": float(size.max()) if size.size else nan,
            f"{prefix}/depth_mean": float(depth.mean()) if depth.size else nan,
            f"{prefix}/depth_max": float(depth.max()) if depth.size else nan,
            f"{prefix}/multi_share": float((size > 1).mean()) if size.size else nan,
            f"{prefix}/virality_mean": float(multi.mean()) if multi.size else nan,
        }

    def run_one(
        self, config: ScenarioConfig, condition: Condition, seed: int, out_dir: Path
    ) -> Outcome:
        import pandas as pd

        from recoworld.metrics.social import diffusion_trees
        from recoworld.metrics.summary import summarize_run
        from recoworld.schedule import Simulation
        from recoworld.trajectory import read_table
        from recoworld.trajectory.schema import SOCIAL_KINDS

        sim = Simulation(config, out_dir=out_dir)
        sim.run()
        cat = sim.world.catalog
        misinfo = cat.misinfo[: cat.n_live].copy()
        labeled = cat.labeled[: cat.n_live] & misinfo
        social = read_table(out_dir, "social", ["tick", "user", "kind", "item", "parent_user"])
        impressions = read_table(out_dir, "impressions", ["item", "source"])
        summary = summarize_run(out_dir)
        if not condition.params["keep_runs"]:
            shutil.rmtree(out_dir, ignore_errors=True)

        trees = diffusion_trees(social)
        false = misinfo[trees["item"].to_numpy(np.int64)]
        kind = social["kind"]
        if isinstance(kind.dtype, pd.CategoricalDtype) or not pd.api.types.is_integer_dtype(kind):
            is_share = kind.astype(str).to_numpy() == "share"
        else:
            is_share = kind.to_numpy() == SOCIAL_KINDS.index("share")
        shared = social["item"].to_numpy(np.int64)[is_share]
        in_network = impressions["source"].astype(str).to_numpy() == "social"
        shown = impressions["item"].to_numpy(np.int64)
        row: Row = {
            **self.cascade_figures(trees[false], "false"),
            **self.cascade_figures(trees[~false], "true"),
            "false/items": int(misinfo.sum()),
            "false/reach_in_network": int((in_network & misinfo[shown]).sum()),
            "false/impressions": int(misinfo[shown].sum()),
            "false/shares": int(misinfo[shared].sum()),
            "false/share_of_shares": float(misinfo[shared].mean()) if shared.size else math.nan,
            "false/labeled_share": float(labeled.sum() / max(int(misinfo.sum()), 1)),
            "engagement/shares": int(shared.size),
            "engagement/ctr": float(summary["engagement/ctr"]),
            "engagement/impressions": int(summary["engagement/impressions"]),
            "retention/return_rate": float(summary["retention/return_rate"]),
            "policy": sim.policy.name,
        }
        parts = []
        for veracity, mask in (("false", false), ("true", ~false)):
            sizes, counts = np.unique(trees["size"].to_numpy(np.int64)[mask], return_counts=True)
            parts.append(pd.DataFrame({"veracity": veracity, "size": sizes, "cascades": counts}))
        return Outcome(row=row, series=pd.concat(parts, ignore_index=True))

    def effects(
        self, results: pd.DataFrame, metric: str = "false/adopters", baseline: str = "none"
    ) -> pd.DataFrame:
        """Each condition's effect on ``metric`` against ``baseline``, paired by seed: per
        seed the relative change ``value / baseline − 1`` and the difference ``value −
        baseline``; their means over seeds with 95% t-interval half-widths (``rel``,
        ``rel_half``, ``diff``, ``diff_half``), one row per other condition."""
        import pandas as pd

        from recoworld._stats import ci95

        wide = results.pivot(index="seed", columns="condition", values=metric).astype(float)
        rows = []
        for label in self.conditions:
            if label == baseline or label not in wide or baseline not in wide:
                continue
            base = wide[baseline].to_numpy(np.float64)
            value = wide[label].to_numpy(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                rel, rel_half = ci95(value / base - 1.0)
            diff, diff_half = ci95(value - base)
            rows.append(
                {
                    "condition": label,
                    "metric": metric,
                    "rel": rel,
                    "rel_half": rel_half,
                    "diff": diff,
                    "diff_half": diff_half,
                }
            )
        return pd.DataFrame(rows)

    def plot(self, results: pd.DataFrame, series: pd.DataFrame | None, out_dir: Path) -> list[Path]:
        from recoworld._stats import ci95

        plt = pyplot()
        written = []
        labels = [c for c in self.conditions if (results["condition"] == c).any()]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, metric, title in (
            (axes[0], "false/size_mean", "mean false-cascade size"),
            (axes[1], "false/size_max", "largest false cascade"),
        ):
            cells = [ci95(results[results["condition"] == c][metric]) for c in labels]
            means = [m for m, _ in cells]
            halves = [0.0 if math.isnan(h) else h for _, h in cells]
            ax.bar(
                labels, means, yerr=halves, capsize=3, color=[f"C{j}" for j in range(len(labels))]
            )
            ax.set_title(f"{title} (95% CI over seeds)")
            ax.set_ylabel("adopters per cascade")
            ax.tick_params(axis="x", labelrotation=20)
        fig.tight_layout()
        written.append(out_dir / "false_cascade_size.png")
        fig.savefig(written[-1], dpi=90)
        plt.close(fig)

        if series is not None:
            fig, ax = plt.subplots(figsize=(7, 4.5))
            false = series[series["veracity"] == "false"]
            for j, label in enumerate(labels):
                part = false[false["condition"] == label].groupby("size")["cascades"].sum()
                if not len(part):
                    continue
                sizes = part.index.to_numpy(np.float64)
                ccdf = part.to_numpy(np.float64)[::-1].cumsum()[::-1] / part.sum()
                ax.step(sizes, ccdf, where="post", color=f"C{j}", label=label)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("false cascade size s (adopters)")
            ax.set_ylabel("P(size ≥ s), all seeds pooled")
            ax.set_title("CCDF of false-item cascade sizes")
            ax.legend(fontsize=8)
            fig.tight_layout()
            written.append(out_dir / "false_cascade_ccdf.png")
            fig.savefig(written[-1], dpi=90)
            plt.close(fig)

        if results["seed"].nunique() >= 2 and "none" in labels:
            fig, ax = plt.subplots(figsize=(7, 4))
            others = [c for c in labels if c != "none"]
            for k, (metric, text) in enumerate(
                (("false/adopters", "false adopters"), ("true/adopters", "true adopters"))
            ):
                table = self.effects(results, metric).set_index("condition").reindex(others)
                xs = np.arange(len(others)) + (k - 0.5) * 0.38
                halves = np.nan_to_num(table["rel_half"].to_numpy(np.float64))
                ax.bar(xs, 100 * table["rel"], width=0.38, yerr=100 * halves, capsize=3, label=text)
            ax.axhline(0.0, color="grey", lw=0.6)
            ax.set_xticks(np.arange(len(others)), others)
            ax.set_ylabel("change vs none (%)")
            ax.set_title("Effect of each intervention (paired by seed, 95% CI)")
            ax.legend(fontsize=8)
            fig.tight_layout()
            written.append(out_dir / "intervention_effects.png")
            fig.savefig(written[-1], dpi=90)
            plt.close(fig)
        return written
