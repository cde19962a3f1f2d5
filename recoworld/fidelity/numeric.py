"""The numeric user as a taste discriminator: recoworld's numeric user, built from a dataset's
train interactions, says item by item whether it would watch.

The user. :func:`recoworld.data.world.world_from_dataset` turns the train interactions into a
world: unit item embeddings ``e_i`` and user tastes ``t_u`` from a truncated SVD, item quality
``q_i``, popularity (social proof) ``π_i = log1p(n_i) / log1p(max n)`` from the train counts, the
per-user ``conformity`` ``c_u`` (its popularity percentile). The user's genre preference is the
log-lift of its own topic mix over the catalogue's ::

    g_u(t) = log( (Σ_{i ∈ train_u} G_it + 1) / (|train_u| + T) ) − log( (Σ_i G_it + 1) / (n + T) )

(``G_it``: item ``i``'s weight on topic ``t``, ``1/|topics(i)|`` for each of its topics).

The utility of item ``i`` for user ``u`` — the numeric user's, with a genre term ::

    z_ui = w_taste · ⟨t_u, e_i⟩ + w_social · (1 + γ · (c_u − ½)) · π_i
           + w_genre · Σ_t G_it · g_u(t) + w_quality · (q_i − ½)

(``γ`` = ``conformity_gain``: how much a user's conformity scales its pull to popular items).

The decision. The user watches ``i`` iff ``z_ui > τ_u``: its own threshold, placed between what
it thinks of the catalogue and what it thinks of what it chose itself ::

    μ0_u = mean_{i ∉ train_u} z_ui        (a random item of the catalogue)
    μ1_u = mean_{i ∈ train_u} z_ui        (its own train items)
    τ_u  = μ0_u + θ · (μ1_u − μ0_u)

``τ_u`` uses the user's train history and the whole catalogue, never the list it is shown, so it
is never told (nor can it infer from the list) how many positives the list holds. Its propensity
``P(watch) = σ((z_ui − τ_u) / s_u)``, with ``s_u`` the spread of ``z`` over its own train items,
is what the rating figures use.

Parameters. ``w_*`` and ``θ`` are :class:`NumericFidelityParams`; the defaults were fitted on
development data only (ml-latest-small, :func:`tune`; ``docs/fidelity.md`` gives the command) and
are used unchanged on every evaluation dataset.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recoworld.config import ScenarioConfig
from recoworld.data.dataset import Dataset
from recoworld.data.world import item_topic_matrix, popularity_proof, world_from_dataset
from recoworld.world.world import World

__all__ = ["NumericDiscriminator", "NumericFidelityParams", "tune"]

logger = logging.getLogger(__name__)

#: Users per block when the utility of every (user, item) pair is summed.
_BLOCK = 256


@dataclass(frozen=True, kw_only=True)
class NumericFidelityParams:
    """Weights of the discriminating user's utility and its threshold position (module
    docstring). Only the ratios of the ``w_*`` matter (the threshold moves with the scale).

    Attributes:
        w_taste: weight of the taste match ``⟨t_u, e_i⟩``.
        w_social: weight of popularity ``π_i``, scaled per user by ``1 + γ·(c_u − ½)``.
        conformity_gain: ``γ``; 0 (fitted: on development data any per-user scaling by
            conformity, in either direction, lowered the protocol's figures).
        w_genre: weight of the user's genre log-lift.
        w_quality: weight of item quality ``q_i − ½``.
        theta: threshold position between the catalogue's mean utility (0) and the mean
            utility of the user's own train items (1).
        item_power: popularity damping ``β`` of the factorization
            (:func:`recoworld.data.world.factorize`).
        topic_mix: weight ``λ`` of the topic centroid in the item embeddings.
    """

    w_taste: float = 5.46
    w_social: float = 6.2
    w_genre: float = 0.79
    w_quality: float = 0.0
    conformity_gain: float = 0.0
    theta: float = 0.45
    item_power: float = 0.0
    topic_mix: float = 0.0

    def __post_init__(self) -> None:
        for key in ("w_taste", "w_social", "w_genre", "w_quality", "item_power", "topic_mix"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be ≥ 0, got {getattr(self, key)}")


class NumericDiscriminator:
    """The numeric user taking the taste-discrimination test (module docstring).

    Implements :class:`recoworld.fidelity.protocol.Discriminator`. After :meth:`fit`,
    :attr:`world` is the world built from the train interactions.
    """

    name = "numeric"

    def __init__(
        self,
        params: NumericFidelityParams | None = None,
        config: ScenarioConfig | None = None,
        *,
        seed: int = 0,
    ) -> None:
        self.params = params or NumericFidelityParams()
        self.config = config or ScenarioConfig()
        self.seed = seed
        self.world: World | None = None
        self._fitted = False

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, dataset: Dataset, train: pd.DataFrame) -> None:
        """Build every user from ``train`` (rows of ``dataset.interactions``)."""
        p = self.params
        data = replace(dataset, interactions=train)
        world = world_from_dataset(
            data,
            self.config,
            splits=("all",),
            seed=self.seed,
            item_power=p.item_power,
            topic_mix=p.topic_mix,
        )
        self.world = world
        cat, pop = world.catalog, world.population
        n_users, n_items = pop.n_users, cat.n_items
        self._embedding = cat.embedding.astype(np.float64)
        self._taste = pop.taste.astype(np.float64)
        self._proof = popularity_proof(cat.clicks)
        self.quality = cat.quality.astype(np.float64)
        self.activity = pop.activity.astype(np.float64)
        self._quality = self.quality - 0.5
        self._conformity = 1.0 + p.conformity_gain * (pop.conformity.astype(np.float64) - 0.5)
        self._social = p.w_social * self._conformity
        topic_weight = item_topic_matrix(dataset, cat.topic_names)
        pairs = np.unique(
            train["user"].to_numpy(np.int64) * np.int64(n_items) + train["item"].to_numpy(np.int64)
        )
        users, items = np.divmod(pairs, np.int64(n_items))
        mix = np.zeros((n_users, cat.n_topics))
        np.add.at(mix, users, topic_weight[items])
        n_topics = cat.n_topics
        own = np.log((mix + 1.0) / (mix.sum(axis=1, keepdims=True) + n_topics))
        total = topic_weight.sum(axis=0)
        base = np.log((total + 1.0) / (total.sum() + n_topics))
        self._lift = own - base[None, :]
        self._topic_weight = topic_weight
        # Per-user threshold from its own train items against the whole catalogue.
        own_sum = np.bincount(users, weights=self._pairs(users, items), minlength=n_users)
        own_sq = np.bincount(users, weights=self._pairs(users, items) ** 2, minlength=n_users)
        n_own = np.bincount(users, minlength=n_users).astype(np.float64)
        all_sum = np.zeros(n_users)
        for lo in range(0, n_users, _BLOCK):
            block = np.arange(lo, min(lo + _BLOCK, n_users))
            all_sum[block] = self.utility_matrix(block).sum(axis=1)
        mu1 = own_sum / np.maximum(n_own, 1.0)
        mu0 = (all_sum - own_sum) / np.maximum(n_items - n_own, 1.0)
        var1 = np.maximum(own_sq / np.maximum(n_own, 1.0) - mu1**2, 0.0)
        # A user with no train item falls back to the catalogue mean plus the median gap.
        has = n_own > 0
        gap = np.where(has, mu1 - mu0, np.median(mu1[has] - mu0[has]) if has.any() else 1.0)
        self.mu0, self.mu1 = mu0, np.where(has, mu1, mu0 + gap)
        self.threshold = mu0 + p.theta * gap
        spread = np.sqrt(var1)
        self.spread = np.where(
            spread > 1e-9,
            spread,
            np.median(spread[spread > 1e-9]) if (spread > 1e-9).any() else 1.0,
        )
        self._fitted = True
        logger.info("numeric discriminator fitted on %d train rows of %s", len(train), dataset.name)

    # -- utilities ----------------------------------------------------------------------------
    def _pairs(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.float64]:
        """``z`` for each pair ``(users[k], items[k])``."""
        p = self.params
        taste = np.einsum("kd,kd->k", self._taste[users], self._embedding[items])
        genre = np.einsum("kt,kt->k", self._lift[users], self._topic_weight[items])
        return (
            p.w_taste * taste
            + self._social[users] * self._proof[items]
            + p.w_genre * genre
            + p.w_quality * self._quality[items]
        )

    def utility_matrix(self, users: NDArray[np.int64]) -> NDArray[np.float64]:
        """``z`` for ``users`` × every item, ``[len(users), n_items]``."""
        p = self.params
        z = p.w_taste * (self._taste[users] @ self._embedding.T)
        z += self._social[users, None] * self._proof[None, :]
        z += p.w_genre * (self._lift[users] @ self._topic_weight.T)
        z += p.w_quality * self._quality[None, :]
        return z

    def utility(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.float64]:
        """The utility ``z_ui`` of each pair (module docstring)."""
        self._check()
        return self._pairs(np.asarray(users, np.int64), np.asarray(items, np.int64))

    def propensity(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.float64]:
        """``P(watch) = σ((z_ui − τ_u) / s_u)`` of each pair."""
        users = np.asarray(users, np.int64)
        z = self.utility(users, items)
        return 0.5 * (1.0 + np.tanh(0.5 * (z - self.threshold[users]) / self.spread[users]))

    # -- the protocol -------------------------------------------------------------------------
    def decide(
        self, users: NDArray[np.int64], lists: list[NDArray[np.int64]]
    ) -> list[NDArray[np.bool_]]:
        """Per user, ``z_ui > τ_u`` for each item of its list, in the list's order."""
        self._check()
        if len(lists) == 0:
            return []
        lengths = np.array([len(x) for x in lists])
        who = np.repeat(np.asarray(users, np.int64), lengths)
        items = np.concatenate([np.asarray(x, np.int64) for x in lists])
        watch = self._pairs(who, items) > self.threshold[who]
        return list(np.split(watch, np.cumsum(lengths)[:-1]))

    def _check(self) -> None:
        if not self._fitted:
            raise RuntimeError("NumericDiscriminator.fit must be called before deciding")


def tune(
    dataset: Dataset,
    *,
    seed: int = 0,
    fit_seed: int = 100,
    splits: tuple[Literal["random", "time"], ...] = ("random", "time"),
    thetas: tuple[float, ...] = tuple(np.round(np.arange(0.25, 0.76, 0.05), 2)),
    ratios: tuple[int, ...] = (1, 2, 3, 9),
    base: NumericFidelityParams | None = None,
) -> tuple[NumericFidelityParams, pd.DataFrame]:
    """Fit the utility weights and ``θ`` on **development** data (never on evaluation data).

    ``dataset`` must have no split of its own: it is split by
    :func:`~recoworld.fidelity.protocol.holdout_split` (20% held out, ``seed``) once per entry
    of ``splits``. Weights: a logistic regression of "held-out positive" on the four utility
    terms over the 1:1 lists of ``fit_seed`` of the first split (ridge 1e-3, Newton steps),
    negative weights clipped to 0. ``θ``: the value in ``thetas`` that maximizes
    ``objective`` = the mean over ``splits`` and ``ratios`` of (accuracy + F1) / 2 on the lists
    of ``seed``. Returns the parameters and the θ table (one row per θ and split, plus the
    mean rows, ``split = "mean"``).
    """
    from recoworld.fidelity.protocol import agent4rec_lists, holdout_split, score_lists

    base = base or NumericFidelityParams()
    parts = [holdout_split(dataset, seed=seed, by=by) for by in splits]
    data = parts[0]
    probe = NumericDiscriminator(replace(base, w_taste=1, w_social=1, w_genre=1, w_quality=1))
    probe.fit(data, data.split("train"))
    lists = agent4rec_lists(data, 1, seed=fit_seed)
    lengths = np.array([len(x) for x in lists.items])
    who = np.repeat(lists.users, lengths)
    items = np.concatenate(lists.items)
    label = np.concatenate(lists.labels).astype(np.float64)
    feats = np.stack(
        [
            np.einsum("kd,kd->k", probe._taste[who], probe._embedding[items]),
            probe._conformity[who] * probe._proof[items],
            np.einsum("kt,kt->k", probe._lift[who], probe._topic_weight[items]),
            probe._quality[items],
            np.ones(items.size),
        ],
        axis=1,
    )
    w = np.zeros(feats.shape[1])
    for _ in range(50):
        prob = 1.0 / (1.0 + np.exp(-feats @ w))
        hess = feats.T @ (feats * (prob * (1 - prob))[:, None]) + 1e-3 * np.eye(w.size)
        step = np.linalg.solve(hess, feats.T @ (prob - label))
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    w = np.maximum(w, 0.0)
    weighted = replace(
        base,
        w_taste=round(float(w[0]), 2),
        w_social=round(float(w[1]), 2),
        w_genre=round(float(w[2]), 2),
        w_quality=round(float(w[3]), 2),
    )
    rows = []
    for by, part in zip(splits, parts, strict=True):
        model = NumericDiscriminator(weighted)
        model.fit(part, part.split("train"))
        per_ratio = [agent4rec_lists(part, m, seed=seed) for m in ratios]
        for theta in thetas:
            model.threshold = model.mu0 + theta * (model.mu1 - model.mu0)
            scores = [score_lists(lst, model.decide(lst.users, lst.items)) for lst in per_ratio]
            row: dict[str, float | str] = {"split": by, "theta": float(theta)}
            for sc in scores:
                row[f"acc@1:{int(sc['ratio'])}"] = sc["accuracy"]
                row[f"f1@1:{int(sc['ratio'])}"] = sc["f1"]
            row["objective"] = float(np.mean([(sc["accuracy"] + sc["f1"]) / 2 for sc in scores]))
            rows.append(row)
    table = pd.DataFrame(rows)
    mean = table.drop(columns="split").groupby("theta", as_index=False).mean()
    mean.insert(0, "split", "mean")
    table = pd.concat([table, mean], ignore_index=True)
    best = float(mean["theta"].to_numpy()[int(np.argmax(mean["objective"].to_numpy()))])
    return replace(weighted, theta=round(best, 2)), table
