"""One fidelity run end to end, as ``recoworld fidelity`` does it: load, split, fit, run the
protocol at every ratio, add the realism figures, and render the result as a table or JSON."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recoworld.data.dataset import Dataset
from recoworld.fidelity.protocol import Discriminator, evaluate, has_given_split, holdout_split

__all__ = ["AGENT4REC", "FidelityResult", "run_fidelity"]

logger = logging.getLogger(__name__)

#: Agent4Rec's published figures on its ML-1M split (``PEERS.md``): ratio → (accuracy, F1).
#: Only the 1:1 accuracy is verified there; the others are marked unverified.
AGENT4REC: dict[int, tuple[float, float]] = {
    1: (0.6912, 0.6982),
    2: (0.6466, 0.5874),
    3: (0.6675, 0.5433),
    9: (0.6175, 0.3232),
}

#: Called with (stage description, steps done, steps total).
Progress = Callable[[str, int, int], None]


@dataclass
class FidelityResult:
    """What :func:`run_fidelity` measured."""

    dataset: str
    format: str
    user_model: str
    seed: int
    split: str
    ratios: list[dict[str, float]]
    realism: dict[str, float | bool] = field(default_factory=dict)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain data (``--json``)."""
        return {
            "dataset": self.dataset,
            "format": self.format,
            "protocol": "agent4rec",
            "user_model": self.user_model,
            "seed": self.seed,
            "split": self.split,
            "ratios": [
                {k: (int(v) if k in ("ratio", "users") else float(v)) for k, v in row.items()}
                for row in self.ratios
            ],
            "realism": {
                k: (bool(v) if isinstance(v, bool | np.bool_) else float(v))
                for k, v in self.realism.items()
            },
            "seconds": round(self.seconds, 3),
            **self.extra,
        }


def split_description(dataset: Dataset, seed: int) -> str:
    """How the held-out data was chosen (for the output)."""
    if has_given_split(dataset):
        return "given (train; valid ∪ test held out)"
    return f"per user, a random 20% of its items held out (seed {seed})"


def run_fidelity(
    dataset: Dataset,
    discriminator: Discriminator,
    *,
    ratios: Sequence[int] = (1, 2, 3, 9),
    seed: int = 0,
    realism: bool = True,
    progress: Progress | None = None,
) -> FidelityResult:
    """Split (when the data has no split), fit, run the protocol, and — for a discriminator
    that exposes its propensity (the numeric one) — the rating and behavioural realism."""
    started = time.perf_counter()
    split = split_description(dataset, seed)
    data = holdout_split(dataset, seed=seed)
    total = len(ratios) + 2
    if progress:
        progress("fitting the users on train", 0, total)
    discriminator.fit(data, data.split("train"))

    def step(done: int, _: int) -> None:
        if progress:
            progress(f"ratio 1:{ratios[min(done, len(ratios) - 1)]}", 1 + done, total)

    step(0, len(ratios))
    table = evaluate(discriminator, data, ratios, seed=seed, fit=False, progress=step)
    figures: dict[str, float | bool] = {}
    if realism and hasattr(discriminator, "propensity") and hasattr(discriminator, "threshold"):
        if progress:
            progress("rating and behaviour realism", 1 + len(ratios), total)
        from recoworld.fidelity.realism import realism as measure

        figures = measure(discriminator, data, seed=seed)  # type: ignore[arg-type]
    if progress:
        progress("done", total, total)
    extra: dict[str, Any] = {}
    stats = getattr(discriminator, "stats", None)
    if stats is not None and hasattr(stats, "as_dict"):
        extra["llm"] = stats.as_dict()
    return FidelityResult(
        dataset=dataset.name,
        format=dataset.format,
        user_model=discriminator.name,
        seed=seed,
        split=split,
        ratios=[{str(k): float(v) for k, v in row.items()} for row in table.to_dict("records")],
        realism=figures,
        seconds=time.perf_counter() - started,
        extra=extra,
    )


_REALISM_LABELS = {
    "rating_rmse": "rating RMSE, calibrated (held-out rated pairs)",
    "rating_mae": "rating MAE, calibrated",
    "rating_jsd": "rating distribution JSD, calibrated",
    "rating_mean_sim": "mean simulated rating, calibrated",
    "rating_rmse_probit": "rating RMSE, calibrate's ordered probit",
    "rating_mae_probit": "rating MAE, calibrate's ordered probit",
    "rating_jsd_probit": "rating distribution JSD, calibrate's ordered probit",
    "rating_mean_sim_probit": "mean simulated rating, calibrate's ordered probit",
    "rating_rmse_default": "rating RMSE, default rule",
    "rating_mae_default": "rating MAE, default rule",
    "rating_jsd_default": "rating distribution JSD, default rule",
    "rating_mean_sim_default": "mean simulated rating, default rule",
    "rating_mean_real": "mean real rating",
    "rating_rmse_user_mean": "rating RMSE of the user's train mean (reference)",
    "popularity_jsd": "item-popularity JSD (deciles)",
    "head_share_sim": "share of choices in the top 20% items, simulated",
    "head_share_real": "share of choices in the top 20% items, real",
    "genre_jsd": "genre-mix JSD per user (mean)",
    "genre_jsd_train": "genre-mix JSD, real train vs held-out (reference)",
    "items_per_user_ks": "items-per-user KS (shape)",
    "items_per_user_ks_flat": "items-per-user KS without activity (shape)",
}


def render(result: FidelityResult, *, width: int = 110) -> None:
    """Print the result as rich tables on stdout."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=width)
    reference = result.format == "agent4rec"
    title = (
        f"recoworld fidelity — {result.dataset}, Agent4Rec protocol, "
        f"{result.user_model} users, seed {result.seed}"
    )
    table = Table(title=title, caption=f"held out: {result.split}")
    for col in ("ratio", "users", "accuracy", "precision", "recall", "F1"):
        table.add_column(col, justify="right")
    if reference:
        table.add_column("Agent4Rec acc / F1", justify="right", style="dim")
    for row in result.ratios:
        ratio = int(row["ratio"])
        cells = [
            f"1:{ratio}",
            f"{int(row['users']):,}",
            *(f"{row[k]:.4f}" for k in ("accuracy", "precision", "recall", "f1")),
        ]
        if reference:
            peer = AGENT4REC.get(ratio)
            cells.append(f"{peer[0]:.4f} / {peer[1]:.4f}" if peer else "")
        table.add_row(*cells)
    console.print(table)
    if result.realism:
        real = Table(title="rating and behaviour realism (simulated vs held-out)")
        real.add_column("figure")
        real.add_column("value", justify="right")
        real.add_column("name", style="dim")
        for key, label in _REALISM_LABELS.items():
            if key in result.realism:
                real.add_row(label, f"{float(result.realism[key]):.4f}", key)
        console.print(real)
    llm = result.extra.get("llm")
    if llm:
        lists, fallbacks = int(llm.get("llm/lists", 0)), int(llm.get("llm/fallbacks", 0))
        console.print(
            f"LLM: {lists - fallbacks:,} of {lists:,} lists answered by the model, "
            f"{fallbacks:,} fell back to the numeric user; parse-valid rate "
            f"{float(llm.get('llm/valid_rate', 0.0)):.3f}, "
            f"{float(llm.get('llm/tokens_per_decision', 0.0)):.1f} tokens per decision"
        )
    console.print(f"{result.seconds:.1f} s")
