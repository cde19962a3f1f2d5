"""Calibration: fit the numeric user model's parameters to a dataset's *train* split.

``recoworld calibrate --dataset PATH`` runs :func:`calibrate` and writes what it fitted as a
scenario file (``users:`` keys of :class:`~recoworld.config.UserModelConfig`) and a JSON report.

**Split.** The dataset's own train split, or for data without one the deterministic per-user
split of :func:`recoworld.data.personas.train_split` (the latest 20% of each user's items held
out by timestamp, a seeded 20% without timestamps). Everything is fitted on train; RMSE, MAE and
JSD are measured on the held-out rated pairs.

**The user.** The world is :func:`recoworld.data.world.world_from_dataset` built from the train
rows — the world a simulation or the fidelity benchmark of this dataset uses. For a pair
``(u, i)`` the numeric user's *match* at a fresh state (no boredom, not seen before, no
instruction, not from a friend) is, as in :func:`recoworld._kernels.respond_page` ::

    z = w_taste·⟨taste_u, e_i⟩ + w_quality·(quality_i − ½) + w_social·conformity_u·proof_i
    m = σ((z − no_click_utility) / temperature)

**(a) Ratings.** A clicked item's rating is an ordered probit
(:func:`recoworld._kernels.click_measures` with ``rating_cuts`` set) ::

    ℓ = a·logit(m) + b·(quality_i − ½) + ε,  ε ~ N(0, 1);   rating = lowest + step·#{k : c_k ≤ ℓ}

so ``P(rating ≤ level k) = Φ(c_k − x)`` with ``x = a·logit(m) + b·(quality_i − ½)``; ``a`` is
``rating_match``, ``b`` ``rating_quality``. :func:`fit_rating_map` fits them on the train rated
pairs in two steps. The *direction* ``(a, b) ∝ (β_m, β_q)``: the least-squares slopes of the
stars on ``logit(m)`` and ``quality − ½`` (with an intercept; a negative slope is set to 0 — a
better match or a better item never lowers the rating). The *scale* ``λ`` with
``(a, b) = λ·(β_m, β_q)`` and the cuts: for a given ``λ`` each cut solves
``mean_{train} Φ(c_k − x) = F_k``, ``F_k`` the share of train ratings at or below level ``k``
(so the simulated rating distribution on the train pairs is the real one, level by level);
``λ`` maximizes the ordered-probit log-likelihood of the train ratings (golden-section search on
``log λ``). Reported on held-out rated pairs: the JSD (base 2, over the scale's levels) between
the real ratings and ratings *drawn* by the user model's own kernel; RMSE and MAE of the drawn
ratings and of the model's *expected* rating ``Σ_k level_k·P(level k)`` (its point prediction);
the same figures for the built-in rule before calibration; the baselines "global train mean" and
"the user's train mean"; and, as a diagnostic, the expected rating plus a shrunken per-user
offset (the user's mean train residual, ``Σ (r − E[r]) / (n_u + 5)``) — what a per-user rating
bias in the population would add (the numeric model has none yet).

**(b) Choice and activity.** Only what ratings-only data identifies is fitted:

- ``activity_mean`` (sessions per day) from timestamps: a session is a run of interactions with
  gaps of at most :data:`~recoworld.data.personas.SESSION_GAP_S`; per user,
  ``sessions / max(1, active days)`` with active days = (last − first) / 86 400 s; the mean over
  users. Without timestamps it keeps its default.
- ``temperature``, ``no_click_utility`` (the no-click mass) and ``attention`` (position decay)
  need impressions — what was shown and not clicked, and where. Ratings and play counts record
  only what was consumed, so they are not identified and keep their defaults (ranking the same
  items the same way is possible under any temperature; the share of impressions clicked and
  its decay down the page are unobserved).
- ``patience_mean``: the data's interactions per session are reported, but a session's length
  in *examined* items is ``interactions / click-through``, and click-through is unobserved:
  kept at its default. Per-user patience, conformity, diversity and sociability come from the
  data in the world and the persona packs (:mod:`recoworld.data.personas`), as percentiles.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recoworld._stats import jsd
from recoworld.config import ScenarioConfig, UserModelConfig
from recoworld.data.dataset import Dataset
from recoworld.errors import DatasetError

__all__ = [
    "Calibration",
    "RatingMap",
    "calibrate",
    "fit_activity",
    "fit_rating_map",
    "match_of_pairs",
    "rating_jsd",
]

logger = logging.getLogger(__name__)

#: The splits whose rated pairs measure the fit.
HELDOUT_SPLITS = ("valid", "test")
#: Search range of the spread of the rating latent ``x`` over train pairs, in noise units.
_SCALE_RANGE = (0.02, 20.0)
#: Order statistics of ``η`` the cut equations average over (exact below this many pairs).
_GRID = 4096
#: Clip of the match before its logit (the kernel's).
_EPS = 1e-7

#: Called between the stages of :func:`calibrate`: (stage name, stages done, stages in all).
Progress = Callable[[str, int, int], None]


def _norm_cdf(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """``Φ(x)`` through the complementary error function (Numerical Recipes' ``erfcc``,
    fractional error below 1.2e-7)."""
    z = np.abs(x) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = (
        -z * z
        - 1.26551223
        + t
        * (
            1.00002368
            + t
            * (
                0.37409196
                + t
                * (
                    0.09678418
                    + t
                    * (
                        -0.18628806
                        + t
                        * (
                            0.27886807
                            + t
                            * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))
                        )
                    )
                )
            )
        )
    )
    erfc = t * np.exp(poly)
    return np.where(x >= 0, 1.0 - 0.5 * erfc, 0.5 * erfc)


def _logit(match: NDArray[np.floating]) -> NDArray[np.float64]:
    p = np.clip(np.asarray(match, np.float64), _EPS, 1.0 - _EPS)
    return np.log(p / (1.0 - p))


def _levels(scale: tuple[float, float, float]) -> NDArray[np.float64]:
    low, high, step = (float(v) for v in scale)
    return np.asarray(low + step * np.arange(round((high - low) / step) + 1), np.float64)


def _level_index(ratings: NDArray[np.floating], scale: tuple[float, float, float]) -> Any:
    low, high, step = (float(v) for v in scale)
    k = np.rint((np.asarray(ratings, np.float64) - low) / step).astype(np.int64)
    return np.clip(k, 0, round((high - low) / step))


def rating_jsd(
    real: NDArray[np.floating], simulated: NDArray[np.floating], scale: tuple[float, float, float]
) -> float:
    """Jensen–Shannon divergence (base 2, in [0, 1]) between the histograms of two sets of
    ratings over the levels of ``scale`` (ratings snapped to the nearest level):
    ``½ KL(p ‖ a) + ½ KL(q ‖ a)``, ``a = ½(p + q)``."""
    k = len(_levels(scale))
    p = np.bincount(_level_index(real, scale), minlength=k).astype(np.float64)
    q = np.bincount(_level_index(simulated, scale), minlength=k).astype(np.float64)
    return jsd(p, q)


@dataclass(frozen=True)
class RatingMap:
    """A fitted rating rule (module docstring): ``scale`` = (lowest, highest, step), increasing
    ``cuts`` (one between each two levels), the weights ``match`` (``a``, of ``logit(m)``) and
    ``quality`` (``b``, of ``quality − ½``); the noise is ``N(0, 1)``."""

    scale: tuple[float, float, float]
    cuts: tuple[float, ...]
    match: float
    quality: float

    @property
    def levels(self) -> NDArray[np.float64]:
        return _levels(self.scale)

    def latent(
        self, match: NDArray[np.floating], quality: NDArray[np.floating]
    ) -> NDArray[np.float64]:
        """``x = a·logit(m) + b·(quality − ½)`` of each pair."""
        return self.match * _logit(match) + self.quality * (np.asarray(quality, np.float64) - 0.5)

    def probabilities(
        self, match: NDArray[np.floating], quality: NDArray[np.floating]
    ) -> NDArray[np.float64]:
        """``[n, K]``: ``P(rating = level k)`` of each pair."""
        x = self.latent(match, quality)
        cdf = _norm_cdf(np.asarray(self.cuts)[None, :] - x[:, None])
        cdf = np.concatenate([np.zeros((x.size, 1)), cdf, np.ones((x.size, 1))], axis=1)
        return np.diff(cdf, axis=1)

    def expected(
        self, match: NDArray[np.floating], quality: NDArray[np.floating]
    ) -> NDArray[np.float64]:
        """The expected rating ``Σ_k level_k · P(level k)`` of each pair."""
        return self.probabilities(match, quality) @ self.levels

    def sample(
        self,
        match: NDArray[np.floating],
        quality: NDArray[np.floating],
        rng: np.random.Generator,
    ) -> Any:
        """Ratings drawn by the numeric user model's own kernel
        (:func:`recoworld._kernels.click_measures`), as if each pair were a click."""
        from recoworld import _kernels as kernels

        m = np.ascontiguousarray(np.asarray(match, np.float32).reshape(1, -1))
        q = np.ascontiguousarray(np.asarray(quality, np.float32).reshape(1, -1))
        noise = rng.standard_normal((2, m.shape[1]), dtype=np.float32)
        _, rating = kernels.click_measures(
            np.ones(m.shape, np.bool_),
            m,
            noise,
            1.0,
            0.0,
            q,
            np.asarray(self.cuts, np.float64),
            (float(self.scale[0]), float(self.scale[2])),
            (float(self.match), float(self.quality)),
        )
        return rating[0].astype(np.float64)

    def as_config(self) -> dict[str, Any]:
        """The ``users:`` keys of this rule (plain data for a scenario file; 4 decimals)."""
        return {
            "rating_scale": [float(v) for v in self.scale],
            "rating_cuts": [round(float(c), 4) for c in self.cuts],
            "rating_match": round(float(self.match), 4),
            "rating_quality": round(float(self.quality), 4),
        }

    def rounded(self) -> RatingMap:
        """The rule exactly as the scenario file stores it."""
        config = self.as_config()
        return RatingMap(
            scale=self.scale,
            cuts=tuple(config["rating_cuts"]),
            match=config["rating_match"],
            quality=config["rating_quality"],
        )


def _cuts_for(grid: NDArray[np.float64], cumulative: NDArray[np.float64]) -> NDArray[np.float64]:
    """Cuts with ``mean_grid Φ(c_k − x) = cumulative[k]`` (bisection, all at once)."""
    lo = np.full(cumulative.size, grid.min() - 12.0)
    hi = np.full(cumulative.size, grid.max() + 12.0)
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        share = _norm_cdf(mid[:, None] - grid[None, :]).mean(axis=1)
        below = share < cumulative
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    cuts = 0.5 * (lo + hi)
    for k in range(1, cuts.size):  # strictly increasing even for an empty level
        cuts[k] = max(cuts[k], cuts[k - 1] + 1e-4)
    return cuts


def _log_likelihood(
    x: NDArray[np.float64], level: NDArray[np.int64], cuts: NDArray[np.float64]
) -> float:
    edges = np.concatenate([[-np.inf], cuts, [np.inf]])
    upper = _norm_cdf(edges[level + 1] - x)
    lower = _norm_cdf(edges[level] - x)
    upper[level == cuts.size] = 1.0
    lower[level == 0] = 0.0
    return float(np.mean(np.log(np.maximum(upper - lower, 1e-300))))


def fit_rating_map(
    match: NDArray[np.floating],
    quality: NDArray[np.floating],
    ratings: NDArray[np.floating],
    scale: tuple[float, float, float],
) -> RatingMap:
    """Fit the ordered-probit rating rule to pairs with known ``match``, item ``quality`` and
    star ``ratings`` (module docstring): the direction of the weights by least squares, their
    scale by profile likelihood, the cuts by matching the level shares. Any match works — the
    numeric user's, or a fidelity model's ``P(watch)``."""
    match = np.asarray(match, np.float64)
    quality = np.asarray(quality, np.float64)
    ratings = np.asarray(ratings, np.float64)
    keep = np.isfinite(match) & np.isfinite(quality) & np.isfinite(ratings)
    if not keep.any():
        raise DatasetError("fit_rating_map: no pair with a match, a quality and a rating")
    eta, centred = _logit(match[keep]), quality[keep] - 0.5
    stars = ratings[keep]
    level = _level_index(stars, scale)
    features = np.stack([np.ones(eta.size), eta, centred], axis=1)
    if np.ptp(centred) < 1e-12:
        features = features[:, :2]
    slopes = np.maximum(np.linalg.lstsq(features, stars, rcond=None)[0][1:], 0.0)
    slopes = np.concatenate([slopes, np.zeros(2 - slopes.size)])
    if not np.any(slopes > 0):
        slopes = np.array([1.0, 0.0])  # nothing predicts the stars: the match, for shape
    direction = slopes / float(np.abs(slopes).max())
    base = direction[0] * eta + direction[1] * centred
    k = len(_levels(scale))
    counts = np.bincount(level, minlength=k).astype(np.float64)
    shares = (counts + 1e-3) / (counts.sum() + 1e-3 * k)  # an empty level keeps a sliver
    cumulative = np.cumsum(shares)[:-1]
    take = np.linspace(0, base.size - 1, min(base.size, _GRID)).round().astype(np.int64)
    ordered = np.sort(base)[take]

    def objective(log_scale: float) -> float:
        lam = math.exp(log_scale)
        return _log_likelihood(lam * base, level, _cuts_for(lam * ordered, cumulative))

    spread = float(np.std(base)) or 1.0
    a, b = math.log(_SCALE_RANGE[0] / spread), math.log(_SCALE_RANGE[1] / spread)
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    x1, x2 = b - ratio * (b - a), a + ratio * (b - a)
    f1, f2 = objective(x1), objective(x2)
    for _ in range(60):
        if b - a < 1e-4:
            break
        if f1 >= f2:
            b, x2, f2 = x2, x1, f1
            x1 = b - ratio * (b - a)
            f1 = objective(x1)
        else:
            a, x1, f1 = x1, x2, f2
            x2 = a + ratio * (b - a)
            f2 = objective(x2)
    lam = math.exp(0.5 * (a + b))
    cuts = _cuts_for(lam * ordered, cumulative)
    return RatingMap(
        scale=scale,
        cuts=tuple(float(c) for c in cuts),
        match=float(lam * direction[0]),
        quality=float(lam * direction[1]),
    )


def match_of_pairs(
    world: Any, config: UserModelConfig, users: NDArray[np.int64], items: NDArray[np.int64]
) -> NDArray[np.float32]:
    """The numeric user's match ``m`` of each pair at a fresh state (module docstring)."""
    pop, cat = world.population, world.catalog
    taste = np.einsum(
        "kd,kd->k",
        pop.taste[users].astype(np.float64),
        cat.embedding[items].astype(np.float64),
    )
    z = (
        config.w_taste * taste
        + config.w_quality * (cat.quality[items].astype(np.float64) - 0.5)
        + config.w_social * pop.conformity[users].astype(np.float64) * cat.social_proof()[items]
    )
    x = (z - config.no_click_utility) / config.temperature
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)


def _default_ratings(
    match: NDArray[np.floating], rng: np.random.Generator, scale: tuple[float, float, float]
) -> NDArray[np.float64]:
    """The built-in rule ``clip(rint(1 + 4m + 0.6ε), 1, 5)`` mapped linearly onto ``scale`` and
    snapped to its step (what an uncalibrated user gives)."""
    low, high, step = (float(v) for v in scale)
    stars = np.clip(np.rint(1.0 + 4.0 * match + 0.6 * rng.standard_normal(match.size)), 1, 5)
    value = low + (stars - 1.0) / 4.0 * (high - low)
    return np.clip(low + np.round((value - low) / step) * step, low, high)


def fit_activity(rows: pd.DataFrame, gap_s: int | None = None) -> dict[str, float] | None:
    """Sessions per day from timestamps (module docstring): the mean over users and, for the
    report, quantiles, the mean interactions per session, and the gamma shape ``mean² / var``
    of the per-user rates. ``None`` without timestamps."""
    from recoworld.data.personas import SESSION_GAP_S

    gap = SESSION_GAP_S if gap_s is None else gap_s
    timed = rows[rows["timestamp"] >= 0][["user", "timestamp"]]
    if len(timed) == 0:
        return None
    frame = timed.sort_values(["user", "timestamp"], kind="stable")
    users = frame["user"].to_numpy(np.int64)
    times = frame["timestamp"].to_numpy(np.int64)
    new = np.ones(users.size, np.bool_)
    new[1:] = (users[1:] != users[:-1]) | (np.diff(times) > gap)
    ids, first = np.unique(users, return_index=True)
    last = np.r_[first[1:], users.size] - 1
    sessions = np.add.reduceat(new.astype(np.float64), first)
    days = np.maximum((times[last] - times[first]) / 86_400.0, 1.0)
    rate = sessions / days
    per_session = (last - first + 1) / sessions
    var = float(rate.var())
    return {
        "activity_mean": float(rate.mean()),
        "rate_median": float(np.median(rate)),
        "rate_p10": float(np.percentile(rate, 10)),
        "rate_p90": float(np.percentile(rate, 90)),
        "gamma_shape": float(rate.mean() ** 2 / var) if var > 0 else float("inf"),
        "per_session_mean": float(per_session.mean()),
        "per_session_median": float(np.median(per_session)),
        "users": float(ids.size),
        "session_gap_s": float(gap),
    }


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate` fitted: ``users`` (the ``users:`` keys to set),
    ``rating_map`` (``None`` without stars) and ``report`` (plain data, the JSON report)."""

    users: dict[str, Any]
    rating_map: RatingMap | None
    report: dict[str, Any] = field(default_factory=dict)

    def user_config(self, base: UserModelConfig | None = None) -> UserModelConfig:
        """``base`` (default: the defaults) with the fitted keys."""
        from recoworld._config import override

        return override(base or UserModelConfig(), self.users)

    def scenario(self) -> dict[str, Any]:
        """A scenario file's content: name, description and the fitted ``users:`` keys."""
        name = self.report.get("dataset", "dataset")
        return {
            "name": f"calibrated-{name}",
            "description": (
                f"The numeric user model calibrated on the train split of {name} "
                "(recoworld calibrate); keys not listed keep their defaults."
            ),
            "users": dict(self.users),
        }

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``calibration.yaml`` (a scenario file) and ``calibration.json`` (the report)
        into ``out_dir``; returns both paths."""
        import yaml

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        scenario_path = out / "calibration.yaml"
        header = (
            f"# recoworld calibrate: fitted on the train split of {self.report.get('dataset')}\n"
            f"# (source {self.report.get('source')}, seed {self.report.get('seed')}, "
            f"recoworld {self.report.get('recoworld')}).\n"
            "# Use: recoworld run calibration.yaml, or --set users.KEY=VALUE for each key.\n"
            "# Not identified from this data (defaults kept): "
            + ", ".join(sorted(self.report.get("not_identified", {})))
            + ".\n"
        )
        body = yaml.safe_dump(self.scenario(), sort_keys=False, default_flow_style=None)
        scenario_path.write_text(header + body, encoding="utf-8")
        report_path = out / "calibration.json"
        report_path.write_text(
            json.dumps(self.report, indent=2, sort_keys=False, default=_plain) + "\n",
            encoding="utf-8",
        )
        return scenario_path, report_path


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _errors(pred: NDArray[np.float64], real: NDArray[np.float64]) -> dict[str, float]:
    return {
        "rmse": float(np.sqrt(np.mean((pred - real) ** 2))),
        "mae": float(np.mean(np.abs(pred - real))),
    }


_NOT_IDENTIFIED = {
    "temperature": "needs impressions (what was shown and not clicked); ratings and play counts "
    "record only what was consumed",
    "no_click_utility": "the share of impressions left unclicked is unobserved without impressions",
    "attention": "needs the position at which each item was shown",
    "patience_mean": "a session's examined items = interactions / click-through, and "
    "click-through is unobserved",
}


def calibrate(
    dataset: Dataset,
    *,
    seed: int = 0,
    config: ScenarioConfig | None = None,
    progress: Progress | None = None,
) -> Calibration:
    """Fit the numeric user model to ``dataset``'s train split (module docstring).

    ``config`` supplies everything not fitted (utility weights, no-click utility, temperature,
    embedding dimension; default: ``ScenarioConfig()``); ``seed`` chooses the split of data
    without one, the world's random parts and the drawn ratings of the report.
    """
    from recoworld import __version__
    from recoworld.data.personas import train_split
    from recoworld.data.world import world_from_dataset

    config = config or ScenarioConfig()
    stages = 4
    step = 0

    def done(stage: str) -> None:
        nonlocal step
        step += 1
        if progress is not None:
            progress(stage, step, stages)

    data = train_split(dataset, seed=seed)
    train = data.split("train")
    held = data.split(*HELDOUT_SPLITS)
    if len(train) == 0:
        raise DatasetError(f"dataset {dataset.name!r} has no train interaction to calibrate on")
    given = bool((dataset.interactions["split"].astype(str) != "all").any())
    report: dict[str, Any] = {
        "dataset": dataset.name,
        "format": dataset.format,
        "source": str(dataset.source),
        "seed": int(seed),
        "recoworld": __version__,
        "split": {
            "method": "given"
            if given
            else "holdout_split (latest 20% per user by time, seeded 20% without timestamps)",
            "train_rows": len(train),
            "heldout_rows": len(held),
        },
    }
    done("split")
    users: dict[str, Any] = {}
    fitted: dict[str, Any] = {}
    not_identified = dict(_NOT_IDENTIFIED)
    activity = fit_activity(train)
    if activity is not None:
        users["activity_mean"] = round(activity["activity_mean"], 4)
        fitted["activity"] = activity
    else:
        not_identified["activity_mean"] = "the data has no timestamps"
    done("activity")
    rating_map: RatingMap | None = None
    rated = train[train["rating"].notna()]
    if dataset.rating_scale is None or len(rated) == 0:
        not_identified["rating_cuts"] = "the data has no star ratings"
        done("world")
    else:
        world = world_from_dataset(data, config, splits=("train",), seed=seed)
        done("world")
        ucfg = config.users
        low, high, step_size = (float(v) for v in dataset.rating_scale)
        scale3 = (low, high, step_size)
        t_items = rated["item"].to_numpy(np.int64)
        m_train = match_of_pairs(world, ucfg, rated["user"].to_numpy(np.int64), t_items)
        q_train = world.catalog.quality[t_items]
        r_train = rated["rating"].to_numpy(np.float64)
        rating_map = fit_rating_map(m_train, q_train, r_train, scale3).rounded()
        users.update(rating_map.as_config())
        report["rating"] = _rating_report(
            rating_map, world, ucfg, rated, held, (m_train, q_train, r_train), seed
        )
        report["world"] = {
            "builder": "recoworld.data.world.world_from_dataset",
            "splits": ["train"],
            "embedding_dim": config.world.embedding_dim,
            "weights": {
                k: getattr(ucfg, k) for k in ("w_taste", "w_quality", "w_social", "temperature")
            }
            | {"no_click_utility": ucfg.no_click_utility},
        }
    done("ratings")
    report["users"] = users
    report["fitted"] = fitted
    report["not_identified"] = not_identified
    report["defaults"] = {
        k: getattr(config.users, k) for k in sorted(not_identified) if hasattr(config.users, k)
    }
    return Calibration(users=users, rating_map=rating_map, report=report)


def _rating_report(
    rating_map: RatingMap,
    world: Any,
    config: UserModelConfig,
    rated: pd.DataFrame,
    held: pd.DataFrame,
    train: tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float64]],
    seed: int,
) -> dict[str, Any]:
    """JSD, RMSE and MAE of the fitted rule and of the baselines (module docstring)."""
    m_train, q_train, r_train = train
    scale = rating_map.scale
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xCA11]))
    out: dict[str, Any] = {"train_pairs": len(rated)}
    out["jsd_train"] = rating_jsd(r_train, rating_map.sample(m_train, q_train, rng), scale)
    held = held[held["rating"].notna()]
    out["heldout_pairs"] = len(held)
    if len(held) == 0:
        return out
    users = held["user"].to_numpy(np.int64)
    items = held["item"].to_numpy(np.int64)
    real = held["rating"].to_numpy(np.float64)
    m = match_of_pairs(world, config, users, items)
    q = world.catalog.quality[items]
    drawn = rating_map.sample(m, q, rng)
    expected = rating_map.expected(m, q)
    k = len(rating_map.levels)
    real_hist = np.bincount(_level_index(real, scale), minlength=k).astype(np.float64)
    out["jsd"] = rating_jsd(real, drawn, scale)
    out["jsd_expected"] = jsd(real_hist, rating_map.probabilities(m, q).sum(axis=0))
    out["drawn"] = _errors(drawn, real)
    out["expected"] = _errors(expected, real)
    before = _default_ratings(m.astype(np.float64), rng, scale)
    out["uncalibrated"] = {"jsd": rating_jsd(real, before, scale), **_errors(before, real)}
    # Baselines, and the gain a per-user rating offset would bring (a diagnostic).
    mean = float(r_train.mean())
    out["baseline_global_mean"] = _errors(np.full(real.size, mean), real)
    n_users = world.population.n_users
    t_users = rated["user"].to_numpy(np.int64)
    counts = np.bincount(t_users, minlength=n_users).astype(np.float64)
    sums = np.bincount(t_users, weights=r_train, minlength=n_users)
    user_mean = np.where(counts > 0, sums / np.maximum(counts, 1), mean)
    out["baseline_user_mean"] = _errors(user_mean[users], real)
    train_residual = r_train - rating_map.expected(m_train, q_train)
    offset = np.bincount(t_users, weights=train_residual, minlength=n_users) / (counts + 5.0)
    shifted = np.clip(expected + offset[users], scale[0], scale[1])
    out["diagnostic_expected_with_user_offset"] = _errors(shifted, real)
    out["real_histogram"] = (real_hist / real_hist.sum()).round(4).tolist()
    drawn_hist = np.bincount(_level_index(drawn, scale), minlength=k).astype(np.float64)
    out["simulated_histogram"] = (drawn_hist / drawn_hist.sum()).round(4).tolist()
    return out
