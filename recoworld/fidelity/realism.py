"""Rating and behavioural realism of a simulated population against a dataset's held-out data
(``METRICS.md``, "Simulator fidelity": rating realism, behavioural realism).

Both take a :class:`PropensityModel` — a fitted discriminator that also exposes its utility,
threshold and ``P(watch)`` (the numeric one does; an LLM discriminator does not, and these
figures are then not computed).

Rating realism (data with stars), on every held-out rated pair ``(u, i, r)``, two rules:

- *calibrated* (``rating_rmse``, ``rating_mae``, ``rating_jsd``, ``rating_mean_sim``): the user
  rates from its own history and its own utility, ::

      r̂_ui = r̄_u + a · (Q_i − r̄) + b · (z_ui − μ1_u) / s_u

  (``r̄_u`` its mean train star, ``Q_i`` the item's Bayesian mean train star, ``r̄`` the global
  one, ``z``, ``μ1_u``, ``s_u`` the discriminator's utility, own-item mean and spread); ``a, b``
  are least squares on the rated *train* pairs of the dataset itself (a calibration from train
  data, like the users themselves). RMSE and MAE use ``r̂`` (clipped to the scale); the rating
  distribution uses a draw ``r̂ + σ·ε`` snapped to the scale's steps, ``σ`` the train residual
  spread (a point prediction has too narrow a distribution to compare);
- *probit* (``*_probit``): ``recoworld calibrate``'s rule — the numeric user model's rating
  kernel with ordered-probit cuts on ``a·logit(m) + b·(quality_i − ½)``, ``m = P(watch)``,
  fitted on the train rated pairs by :func:`recoworld.data.calibrate.fit_rating_map`; RMSE and
  MAE of its expected rating, the distribution of ratings drawn by the kernel;
- *default* (``*_default``): the numeric user model's built-in rule
  (:func:`recoworld._kernels.click_measures` without calibration cuts), ``m = P(watch)``,
  ``ŝ = clip(rint(1 + 4m + 0.6ε), 1, 5)``, ``ε ~ N(0, 1)``, mapped linearly onto the data's scale
  and snapped to its step.

Figures: RMSE and MAE against the real stars, the Jensen–Shannon divergence (base 2, in [0, 1])
between the simulated and the real rating histograms over the scale's levels, the means, and
for reference the RMSE of predicting each user's own mean train rating.

Behavioural realism. Each user with held-out items makes ``|H_u|`` simulated choices among the
items it has not interacted with in train, drawn without replacement with probability
proportional to ``exp((z_ui − τ_u) / s_u)`` (Gumbel top-k: the numeric user's propensity as a
Plackett–Luce choice). Against the real held-out items:

- ``popularity_jsd``: JSD between the distributions of the chosen items over ten popularity
  bins (deciles of the catalogue by train count); ``head_share_sim`` / ``head_share_real``: the
  share of choices among the 20% most popular items (the long tail's complement);
- ``genre_jsd``: per user, the JSD between the topic mix of its simulated and of its real
  held-out choices, averaged over users; ``genre_jsd_train``, for reference, the same between
  its real train items and its real held-out items (both only for data with topics);
- ``items_per_user_ks``: the Kolmogorov–Smirnov distance between the real held-out counts per
  user and the simulated volume ``activity_u · Σ_i P(watch_ui)`` (visits × what it would watch
  of the unseen catalogue; ``activity_u`` from its train count, see
  :func:`recoworld.data.world.world_from_dataset`), rescaled to the same total (the shape of who
  is heavy and who is light, not the level); ``items_per_user_ks_flat`` the same without
  ``activity_u``.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recoworld._stats import jsd
from recoworld.data.dataset import Dataset
from recoworld.data.world import item_topic_matrix, world_topic_names
from recoworld.fidelity.protocol import HELDOUT_SPLITS

__all__ = ["PropensityModel", "behaviour_realism", "jsd", "ks_distance", "rating_realism"]

logger = logging.getLogger(__name__)

_BLOCK = 256


class PropensityModel(Protocol):
    """A fitted discriminator that exposes its utility and its propensity to watch."""

    threshold: NDArray[np.float64]
    spread: NDArray[np.float64]
    mu1: NDArray[np.float64]
    quality: NDArray[np.float64]
    activity: NDArray[np.float64]

    def utility(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.float64]:
        """``z_ui`` for each pair."""
        ...

    def propensity(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.float64]:
        """``P(watch)`` for each pair."""
        ...

    def utility_matrix(self, users: NDArray[np.int64]) -> NDArray[np.float64]:
        """``z`` for ``users`` × every item."""
        ...


def ks_distance(a: NDArray[np.floating], b: NDArray[np.floating]) -> float:
    """Two-sample Kolmogorov–Smirnov statistic ``sup_x |F_a(x) − F_b(x)|``."""
    a = np.sort(np.asarray(a, np.float64))
    b = np.sort(np.asarray(b, np.float64))
    if a.size == 0 or b.size == 0:
        return float("nan")
    grid = np.concatenate([a, b])
    fa = np.searchsorted(a, grid, side="right") / a.size
    fb = np.searchsorted(b, grid, side="right") / b.size
    return float(np.max(np.abs(fa - fb)))


def _snap(values: NDArray[np.float64], lo: float, hi: float, step: float) -> NDArray[np.float64]:
    if step > 0:
        values = lo + np.round((values - lo) / step) * step
    return np.clip(values, lo, hi)


def _calibrated_ratings(
    model: PropensityModel,
    train: pd.DataFrame,
    users: NDArray[np.int64],
    items: NDArray[np.int64],
    n_items: int,
) -> tuple[NDArray[np.float64], float]:
    """Predicted stars ``r̄_u + a·(Q_i − r̄) + b·(z_ui − μ1_u)/s_u`` and the residual spread
    ``σ``, with ``a, b`` least squares on the rated train pairs (module docstring)."""
    t_users = train["user"].to_numpy(np.int64)
    t_items = train["item"].to_numpy(np.int64)
    t_stars = train["rating"].to_numpy(np.float64)
    mean = float(t_stars.mean())
    sums = np.bincount(t_users, weights=t_stars, minlength=int(max(users.max(), t_users.max())) + 1)
    counts = np.bincount(t_users, minlength=sums.size)
    user_mean = np.where(counts > 0, sums / np.maximum(counts, 1), mean)
    i_sums = np.bincount(t_items, weights=t_stars, minlength=n_items)
    i_counts = np.bincount(t_items, minlength=n_items)
    item_mean = (i_sums + 5.0 * mean) / (i_counts + 5.0)

    def features(u: NDArray[np.int64], i: NDArray[np.int64]) -> NDArray[np.float64]:
        z = model.utility(u, i)
        lifted = (z - model.mu1[u]) / model.spread[u]
        return np.stack([item_mean[i] - mean, lifted], axis=1)

    x = features(t_users, t_items)
    y = t_stars - user_mean[t_users]
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    sigma = float(np.sqrt(np.mean((y - x @ coef) ** 2)))
    return user_mean[users] + features(users, items) @ coef, sigma


def _probit_ratings(
    model: PropensityModel,
    train: pd.DataFrame,
    users: NDArray[np.int64],
    items: NDArray[np.int64],
    scale: tuple[float, float, float],
    rng: np.random.Generator,
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """``recoworld calibrate``'s ordered-probit rating rule
    (:func:`recoworld.data.calibrate.fit_rating_map`) fitted on the train rated pairs with
    ``m = P(watch)`` and the world's item quality: its expected rating and ratings drawn by the
    user model's kernel on the held-out pairs; ``None`` when that module is not available."""
    try:
        from recoworld.data.calibrate import fit_rating_map
    except ImportError:  # pragma: no cover - the calibrate module ships with recoworld
        return None
    t_users = train["user"].to_numpy(np.int64)
    t_items = train["item"].to_numpy(np.int64)
    rule = fit_rating_map(
        model.propensity(t_users, t_items),
        model.quality[t_items],
        train["rating"].to_numpy(np.float64),
        scale,
    )
    m, q = model.propensity(users, items), model.quality[items]
    return rule.expected(m, q), np.asarray(rule.sample(m, q, rng), np.float64)


def rating_realism(
    model: PropensityModel, dataset: Dataset, *, seed: int = 0
) -> dict[str, float | bool]:
    """RMSE, MAE and rating-histogram JSD on held-out rated pairs, for the default rating rule
    (``*_default``) and the per-user calibrated one (module docstring); an empty dict when the
    data has no stars."""
    scale = dataset.rating_scale
    held = dataset.split(*HELDOUT_SPLITS)
    held = held[held["rating"].notna()]
    train = dataset.split("train")
    train = train[train["rating"].notna()]
    if scale is None or len(held) == 0 or len(train) == 0:
        return {}
    lo, hi, step = (float(x) for x in scale)
    users = held["user"].to_numpy(np.int64)
    items = held["item"].to_numpy(np.int64)
    real = held["rating"].to_numpy(np.float64)
    m = model.propensity(users, items)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x57A5]))
    stars = np.clip(np.rint(1.0 + 4.0 * m + 0.6 * rng.standard_normal(m.size)), 1.0, 5.0)
    default = _snap(lo + (stars - 1.0) / 4.0 * (hi - lo), lo, hi, step)
    predicted, sigma = _calibrated_ratings(model, train, users, items, dataset.n_items)
    calibrated = _snap(predicted, lo, hi, 0.0)
    sampled = _snap(predicted + sigma * rng.standard_normal(predicted.size), lo, hi, step)
    levels = np.arange(lo, hi + step / 2, step) if step > 0 else np.unique(real)
    half = step / 2 if step > 0 else 0.5
    edges = np.concatenate([levels - half, [levels[-1] + half]])
    real_hist = np.histogram(real, edges)[0]
    user_mean = train.groupby("user")["rating"].mean()
    baseline = user_mean.reindex(users).fillna(float(train["rating"].mean())).to_numpy()
    variants = [("", calibrated, sampled), ("_default", default, default)]
    probit = _probit_ratings(model, train, users, items, scale, rng)
    if probit is not None:
        variants.insert(1, ("_probit", *probit))
    out: dict[str, float | bool] = {}
    for suffix, sim, drawn in variants:
        out[f"rating_rmse{suffix}"] = float(np.sqrt(np.mean((sim - real) ** 2)))
        out[f"rating_mae{suffix}"] = float(np.mean(np.abs(sim - real)))
        out[f"rating_jsd{suffix}"] = jsd(np.histogram(drawn, edges)[0], real_hist)
        out[f"rating_mean_sim{suffix}"] = float(drawn.mean())
    out["rating_mean_real"] = float(real.mean())
    out["rating_rmse_user_mean"] = float(np.sqrt(np.mean((baseline - real) ** 2)))
    out["rated_pairs"] = float(real.size)
    return out


def behaviour_realism(
    model: PropensityModel, dataset: Dataset, *, seed: int = 0
) -> dict[str, float]:
    """Popularity, genre-mix and volume distances of simulated against real held-out choices
    (module docstring)."""
    n_users, n_items = dataset.n_users, dataset.n_items
    held = dataset.user_items(*HELDOUT_SPLITS)
    train = dataset.user_items("train")
    counts = np.bincount(
        dataset.split("train")["item"].to_numpy(np.int64), minlength=n_items
    ).astype(np.float64)
    order = np.argsort(np.argsort(counts, kind="stable"), kind="stable")
    decile = np.minimum(order * 10 // max(n_items, 1), 9)
    head = order >= int(np.ceil(0.8 * n_items))
    names = world_topic_names(dataset)
    topics = item_topic_matrix(dataset, names)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xBE4A]))
    sim_bins = np.zeros(10)
    real_bins = np.zeros(10)
    head_sim = head_real = 0.0
    genre: list[float] = []
    genre_ref: list[float] = []
    volume = np.zeros(n_users)
    real_count = np.array([h.size for h in held], np.float64)
    active = np.flatnonzero(real_count > 0)
    for lo in range(0, active.size, _BLOCK):
        block = active[lo : lo + _BLOCK]
        z = model.utility_matrix(block)
        logits = (z - model.threshold[block, None]) / model.spread[block, None]
        for k, user in enumerate(block):
            logits[k, train[user]] = -np.inf
        prob = 0.5 * (1.0 + np.tanh(0.5 * logits))
        volume[block] = prob.sum(axis=1)
        gumbel = logits - np.log(-np.log(rng.random(logits.shape)))
        for k, user in enumerate(block):
            real = held[user]
            chosen = np.argpartition(-gumbel[k], real.size - 1)[: real.size]
            sim_bins += np.bincount(decile[chosen], minlength=10)
            real_bins += np.bincount(decile[real], minlength=10)
            head_sim += float(head[chosen].sum())
            head_real += float(head[real].sum())
            genre.append(jsd(topics[chosen].sum(axis=0), topics[real].sum(axis=0)))
            genre_ref.append(jsd(topics[train[user]].sum(axis=0), topics[real].sum(axis=0)))
    total = real_count.sum()
    if total == 0:
        return {}
    flat = volume[active] * (total / max(volume[active].sum(), 1e-12))
    visits = volume[active] * model.activity[active]
    scaled = visits * (total / max(visits.sum(), 1e-12))
    out = {
        "popularity_jsd": jsd(sim_bins, real_bins),
        "head_share_sim": head_sim / total,
        "head_share_real": head_real / total,
        "items_per_user_ks": ks_distance(scaled, real_count[active]),
        "items_per_user_ks_flat": ks_distance(flat, real_count[active]),
    }
    if dataset.topic_names():  # no genre figures for data without topics
        out["genre_jsd"] = float(np.nanmean(genre))
        out["genre_jsd_train"] = float(np.nanmean(genre_ref))
    return out


def realism(model: PropensityModel, dataset: Dataset, *, seed: int = 0) -> dict[str, float | bool]:
    """Rating and behavioural realism together (``dataset`` must have a held-out split)."""
    out: dict[str, float | bool] = {}
    out.update(rating_realism(model, dataset, seed=seed))
    out.update(behaviour_realism(model, dataset, seed=seed))
    return out


def as_frame(figures: dict[str, float | bool]) -> pd.DataFrame:
    """One row per figure (``metric``, ``value``)."""
    return pd.DataFrame({"metric": list(figures), "value": list(figures.values())})
