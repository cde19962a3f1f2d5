"""Off-policy evaluation (OPE): a target policy's value from a logging policy's trajectories.

**The value.** The contextual-bandit value of the *first slot* of the page::

    V(π) = E_x[ E[r | x, a = π(x)] ]

``x`` is a page request (the user, its state and history, the candidate pool, the tick), ``a``
the item a policy puts at rank 0 of its slate and ``r`` the reward of that item: a click
(default), a like, or the dwell seconds. The first slot is the one decision with an exact
logging propensity that a target's decision can match: slate-level importance weights for
``k = 10`` of ``C`` candidates give a deterministic target no support, while an ε-greedy
logger puts item ``a`` first with probability ``μ(a|x) = (1 − ε)·[a is the base's best] + ε/C``.
The user reviews the first slot before anything else on the page, so its reward depends on
``x`` and ``a`` only, never on the rest of the slate.

**Estimators** (pure functions of arrays, one entry per logged page ``i``; ``w_i = π(a_i|x_i) /
μ(a_i|x_i)``):

- :func:`ips`   — ``V̂ = (1/n) Σ w_i r_i``, standard error ``sd(w r) / √n``;
- :func:`snips` — ``V̂ = Σ w_i r_i / Σ w_i``, delta-method error
  ``√(Σ w_i² (r_i − V̂)²) / Σ w_i``;
- :func:`dr`    — ``V̂ = (1/n) Σ [q̂(x_i, π) + w_i (r_i − q̂(x_i, a_i))]`` with
  ``q̂(x, π) = Σ_a π(a|x) q̂(x, a)`` (``q̂(x, π(x))`` for a deterministic target), error
  ``sd / √n``.

The errors treat pages as independent (they are not quite: a user's pages share its state).

**Reward model** (:func:`fit_reward_model`, for DR): a shrunken per-(user, topic) mean of the
logged first-slot rewards with a per-topic prior, stacked in a ridge logistic regression (linear
for dwell) with the item's public quality, its popularity ``log1p(clicks)`` at the time and
whether the user has it in its history. :func:`cross_fit` fits it on one half of the pages and
predicts the other, and vice versa.

**Collection** (:func:`collect`): a real :class:`~recoworld.schedule.Simulation` runs the logging
policy. At every tick, the same request (same users, candidates and state) is also given to each
*shadow* target, which gets its own random stream and the same ``update(feedback)`` as the
logger (so a learning target learns from the logged data, as it would if deployed on the
logger's traffic). The logged run is byte-identical to a plain run of the logging policy.
**On-policy truth**: the users' response to each target's slate is drawn from the same user
model on the same world state — the feed composed exactly as the schedule composes it, the
response drawn from a stream of its own and never committed — so each page also records the
target's actual first-slot outcome on that context. Its mean over pages (and seeds) is the
target's value on the logged contexts, with no distribution shift; the estimators never read it.

>>> from recoworld import load_scenario
>>> from recoworld.ope import collect, estimate_table
>>> log = collect(load_scenario("default"), {"name": "epsilon_greedy",
...     "params": {"base": "linucb", "epsilon": 0.3}}, ["random", "most_popular"])  # doctest: +SKIP
>>> estimate_table(log)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from recoworld import _stats
from recoworld.errors import OPEError

if TYPE_CHECKING:
    import pandas as pd

    from recoworld.config import ScenarioConfig
    from recoworld.policies.base import Feedback, Recommender, RecommendRequest, Slates
    from recoworld.schedule import Simulation, TickStats
    from recoworld.users.base import Feed
    from recoworld.world.world import World

__all__ = [
    "REWARDS",
    "Estimate",
    "Evaluation",
    "OPEError",
    "OPELog",
    "RewardModel",
    "collect",
    "cross_fit",
    "dr",
    "effective_sample_size",
    "estimate_table",
    "evaluate",
    "fit_reward_model",
    "ips",
    "snips",
    "t_interval",
    "t_quantile",
]

logger = logging.getLogger(__name__)

#: Reward columns recorded for the first slot: a click, a like, the dwell seconds.
REWARDS = ("click", "like", "dwell")

#: A policy for :func:`collect` / :func:`evaluate`: a registered name, a ``{"name", "params"}``
#: mapping, a zero-argument factory, or (``collect`` only) a policy object.
PolicySpec = Any


# -- estimators ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Estimate:
    """An estimate of a policy value: ``value``, its standard error ``se`` and the pages ``n``."""

    value: float
    se: float
    n: int

    def ci(self, level: float = 0.95) -> tuple[float, float]:
        """Normal confidence interval ``value ± z·se`` at ``level``."""
        if not 0.0 < level < 1.0:
            raise OPEError(f"level: expected a probability in (0, 1), got {level}")
        z = NormalDist().inv_cdf(0.5 + level / 2.0)
        return self.value - z * self.se, self.value + z * self.se


def _vector(name: str, values: ArrayLike) -> NDArray[np.float64]:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise OPEError(f"{name}: expected an array of numbers ({exc})") from None
    if arr.ndim != 1:
        raise OPEError(f"{name}: expected a 1-D array (one entry per logged page), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise OPEError(f"{name}: expected finite numbers, got NaN or infinity")
    return arr


def _inputs(**named: ArrayLike) -> list[NDArray[np.float64]]:
    arrays = [_vector(name, values) for name, values in named.items()]
    shapes = {name: arr.shape[0] for name, arr in zip(named, arrays, strict=True)}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{name} {n}" for name, n in shapes.items())
        raise OPEError(f"mismatched lengths: {listed}; expected one entry per logged page in each")
    if arrays[0].shape[0] == 0:
        raise OPEError("no logged data: the arrays are empty (no page was logged)")
    return arrays


def _weights(logging_prob: NDArray[np.float64], target_prob: NDArray[np.float64]) -> NDArray:
    if not ((logging_prob > 0) & (logging_prob <= 1)).all():
        raise OPEError(
            "logging_prob: propensities must be in (0, 1] (the logging policy's probability of "
            f"the logged action), got values in [{logging_prob.min():g}, {logging_prob.max():g}]"
        )
    if not ((target_prob >= 0) & (target_prob <= 1)).all():
        raise OPEError(
            "target_prob: probabilities must be in [0, 1] (the target's probability of the "
            f"logged action), got values in [{target_prob.min():g}, {target_prob.max():g}]"
        )
    return target_prob / logging_prob


def _se(values: NDArray[np.float64]) -> float:
    n = values.shape[0]
    return float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")


def ips(rewards: ArrayLike, logging_prob: ArrayLike, target_prob: ArrayLike) -> Estimate:
    """Inverse propensity scoring: ``V̂ = (1/n) Σ w_i r_i``, ``w_i = π(a_i|x_i) / μ(a_i|x_i)``.

    Unbiased when ``μ`` is exact and positive wherever ``π`` is. Standard error
    ``sd(w r) / √n``.

    Args:
        rewards: ``r_i``, the reward of the logged action on page ``i``.
        logging_prob: ``μ(a_i|x_i)`` in (0, 1], the logging policy's probability of it.
        target_prob: ``π(a_i|x_i)`` in [0, 1], the target's probability of the same action.
    """
    r, mu, pi = _inputs(rewards=rewards, logging_prob=logging_prob, target_prob=target_prob)
    values = _weights(mu, pi) * r
    return Estimate(float(values.mean()), _se(values), int(r.shape[0]))


def snips(rewards: ArrayLike, logging_prob: ArrayLike, target_prob: ArrayLike) -> Estimate:
    """Self-normalized IPS: ``V̂ = Σ w_i r_i / Σ w_i`` (arguments as :func:`ips`).

    Slightly biased (consistent), much less variable than IPS when weights are large; always
    within the range of the rewards. Delta-method standard error
    ``√(Σ w_i² (r_i − V̂)²) / Σ w_i``. Raises :class:`OPEError` when ``Σ w_i = 0`` (the target
    never takes a logged action: no support).
    """
    r, mu, pi = _inputs(rewards=rewards, logging_prob=logging_prob, target_prob=target_prob)
    w = _weights(mu, pi)
    total = float(w.sum())
    if total <= 0:
        raise OPEError(
            "no support: the target gives probability 0 to every logged action, so SNIPS is "
            "undefined (log with an exploring policy, e.g. epsilon_greedy)"
        )
    value = float((w * r).sum() / total)
    se = float(np.sqrt(((w * (r - value)) ** 2).sum()) / total)
    return Estimate(value, se, int(r.shape[0]))


def dr(
    rewards: ArrayLike,
    logging_prob: ArrayLike,
    target_prob: ArrayLike,
    q_logged: ArrayLike,
    q_target: ArrayLike,
) -> Estimate:
    """Doubly robust: ``V̂ = (1/n) Σ [q̂(x_i, π) + w_i (r_i − q̂(x_i, a_i))]``.

    Unbiased if either the propensities or the reward model ``q̂`` are right; its variance
    shrinks as ``q̂`` gets better. Standard error ``sd / √n`` of the summands.

    Args:
        rewards, logging_prob, target_prob: as :func:`ips`.
        q_logged: ``q̂(x_i, a_i)``, the model's reward for the logged action.
        q_target: ``q̂(x_i, π) = Σ_a π(a|x_i) q̂(x_i, a)``; for a deterministic target
            ``q̂(x_i, π(x_i))``.
    """
    r, mu, pi, q_a, q_pi = _inputs(
        rewards=rewards,
        logging_prob=logging_prob,
        target_prob=target_prob,
        q_logged=q_logged,
        q_target=q_target,
    )
    values = q_pi + _weights(mu, pi) * (r - q_a)
    return Estimate(float(values.mean()), _se(values), int(r.shape[0]))


def effective_sample_size(logging_prob: ArrayLike, target_prob: ArrayLike) -> float:
    """Kish's effective sample size of the importance weights, ``(Σ w)² / Σ w²`` (0: no
    support)."""
    mu, pi = _inputs(logging_prob=logging_prob, target_prob=target_prob)
    w = _weights(mu, pi)
    sq = float((w**2).sum())
    return float(w.sum()) ** 2 / sq if sq > 0 else 0.0


def t_quantile(df: int, level: float = 0.95) -> float:
    """Two-sided Student-t quantile (:func:`recoworld._stats.t_quantile`)."""
    if df < 1:
        raise OPEError(f"df: expected at least 1 degree of freedom, got {df}")
    return _stats.t_quantile(df, level)


def t_interval(values: ArrayLike, level: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval of ``values`` (e.g. one
    figure per seed); the half-width is NaN for a single value."""
    arr = _vector("values", values)
    if arr.shape[0] == 0:
        raise OPEError("values: expected at least one value")
    return _stats.t_interval(arr, level)


# -- the reward model -----------------------------------------------------------------------------
def _logit(p: NDArray[np.float64]) -> NDArray[np.float64]:
    p = np.clip(p, 1e-4, 1.0 - 1e-4)
    return np.log(p / (1.0 - p))


def _sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))


@dataclass(frozen=True, slots=True)
class _Counts:
    """Reward sums and counts of the training rows: per (user, topic), topic, user, overall."""

    cell_sum: NDArray[np.float64]
    cell_n: NDArray[np.float64]
    topic_sum: NDArray[np.float64]
    topic_n: NDArray[np.float64]
    user_sum: NDArray[np.float64]
    user_n: NDArray[np.float64]
    total: float
    n: float


@dataclass(frozen=True, slots=True)
class RewardModel:
    """``q̂(x, a)``: the first-slot reward of item ``a`` for the user ``u`` of page ``x``.

    1. Shrunken means of the training rewards: the global mean ``r̄``, per topic, per user and
       per (user, topic), each shrunk towards the coarser one::

           p_t  = (Σ_t r + κ_topic · r̄) / (n_t + κ_topic)
           p_u  = (Σ_u r + κ · r̄) / (n_u + κ)
           p_ut = (Σ_ut r + κ · p_t) / (n_ut + κ)

    2. Stacked with the item's public features in a ridge-regularized GLM::

           q̂ = link(β0 + β1·g(p_ut) + β2·log1p(n_ut) + β3·g(p_u)
                     + β4·(quality − ½) + β5·log1p(clicks) + β6·[seen])

       ``n_ut`` (how often the logger put that topic first for the user) carries what the
       logger learned about the user; ``clicks`` is the item's public click count when the page
       was requested and ``seen`` whether it is in the user's history. ``link`` = sigmoid and
       ``g`` = logit for a binary reward (click, like: logistic regression by Newton's method),
       identity for dwell (least squares). Features are standardized on the training rows.
    """

    counts: _Counts
    coef: NDArray[np.float64]
    center: NDArray[np.float64]
    scale: NDArray[np.float64]
    binary: bool
    kappa: float
    kappa_topic: float

    def predict(
        self,
        users: ArrayLike,
        topics: ArrayLike,
        quality: ArrayLike,
        popularity: ArrayLike,
        seen: ArrayLike,
    ) -> NDArray[np.float64]:
        """``q̂`` for (user, item) pairs given as broadcastable arrays: the user, the item's
        topic, quality, ``log1p(clicks)`` at the time, and whether the user has seen it. Users
        or topics beyond the training table get the global mean as their rates."""
        u, t = np.broadcast_arrays(np.asarray(users, np.intp), np.asarray(topics, np.intp))
        if u.size and (u.min() < 0 or t.min() < 0):
            raise OPEError("users and topics must be non-negative indices")
        raw = _raw_features(self, u, t, quality, popularity, seen, None)
        x = _design(raw, self.center, self.scale)
        eta = np.einsum("...j,j->...", x, self.coef)
        return _sigmoid(eta) if self.binary else eta


def _raw_features(
    model: RewardModel | tuple[_Counts, bool, float, float],
    u: NDArray[np.intp],
    t: NDArray[np.intp],
    quality: ArrayLike,
    popularity: ArrayLike,
    seen: ArrayLike,
    own: NDArray[np.float64] | None,
) -> NDArray[np.float64]:
    """The GLM's raw features; ``own`` (the rows' own rewards) leaves each row out."""
    if isinstance(model, RewardModel):
        c, binary, kappa, kappa_topic = model.counts, model.binary, model.kappa, model.kappa_topic
    else:
        c, binary, kappa, kappa_topic = model
    n_u, n_t = c.cell_sum.shape
    known = (u < n_u) & (t < n_t)
    uk, tk = np.where(known, u, 0), np.where(known, t, 0)
    zero = np.zeros(u.shape)
    own_r = zero if own is None else own
    own_n = zero if own is None else np.ones(u.shape)

    def table(values: NDArray, idx: tuple[NDArray, ...]) -> NDArray[np.float64]:
        return np.where(known, values[idx], 0.0)

    cell_sum = table(c.cell_sum, (uk, tk)) - own_r
    cell_n = table(c.cell_n, (uk, tk)) - own_n
    mean = (c.total - own_r) / np.maximum(c.n - own_n, 1.0)
    p_t = (table(c.topic_sum, (tk,)) - own_r + kappa_topic * mean) / (
        table(c.topic_n, (tk,)) - own_n + kappa_topic
    )
    p_u = (table(c.user_sum, (uk,)) - own_r + kappa * mean) / (
        table(c.user_n, (uk,)) - own_n + kappa
    )
    p_ut = (cell_sum + kappa * p_t) / (cell_n + kappa)

    def g(p: NDArray[np.float64]) -> NDArray[np.float64]:
        return _logit(p) if binary else p

    cols = np.broadcast_arrays(
        g(p_ut),
        np.log1p(np.maximum(cell_n, 0.0)),
        g(p_u),
        np.asarray(quality, np.float64) - 0.5,
        np.asarray(popularity, np.float64),
        np.asarray(seen, np.float64),
    )
    return np.stack(cols, axis=-1)


def _design(raw: NDArray[np.float64], center: NDArray, scale: NDArray) -> NDArray[np.float64]:
    scaled = (raw - center) / scale
    return np.concatenate([np.ones((*scaled.shape[:-1], 1)), scaled], axis=-1)


def fit_reward_model(
    users: ArrayLike,
    topics: ArrayLike,
    quality: ArrayLike,
    popularity: ArrayLike,
    seen: ArrayLike,
    rewards: ArrayLike,
    *,
    n_users: int | None = None,
    n_topics: int | None = None,
    kappa: float = 5.0,
    kappa_topic: float = 20.0,
    ridge: float = 1.0,
) -> RewardModel:
    """Fit the :class:`RewardModel` on logged first-slot rows (one entry per page).

    The shrunken means fed to the GLM for a training row leave that row out, so the stacking
    weights are not fitted to the row's own reward. Binary rewards (all 0/1) get the logistic
    model, others the linear one.

    Args:
        users, topics, quality, popularity, seen: the logged item's features per page.
        rewards: its reward per page.
        n_users, n_topics: sizes of the (user, topic) table (default: from the data).
        kappa: pseudo-observations of the prior in each user and (user, topic) mean.
        kappa_topic: pseudo-observations of the global mean in each topic's mean.
        ridge: L2 penalty on the standardized GLM weights (not the intercept).
    """
    u = np.asarray(users, np.intp)
    t = np.asarray(topics, np.intp)
    r, q, pop, s = _inputs(rewards=rewards, quality=quality, popularity=popularity, seen=seen)
    if u.shape != r.shape or t.shape != r.shape:
        raise OPEError(
            f"users {u.shape} and topics {t.shape} must match rewards {r.shape} (one per page)"
        )
    if u.min() < 0 or t.min() < 0:
        raise OPEError("users and topics must be non-negative indices")
    if kappa <= 0 or kappa_topic <= 0 or ridge < 0:
        raise OPEError(
            f"expected kappa > 0, kappa_topic > 0 and ridge >= 0, got {kappa}, {kappa_topic}, "
            f"{ridge}"
        )
    n_u = max(int(u.max()) + 1, n_users or 0)
    n_t = max(int(t.max()) + 1, n_topics or 0)
    cell_sum = np.zeros((n_u, n_t))
    cell_n = np.zeros((n_u, n_t))
    np.add.at(cell_sum, (u, t), r)
    np.add.at(cell_n, (u, t), 1.0)
    counts = _Counts(
        cell_sum=cell_sum,
        cell_n=cell_n,
        topic_sum=cell_sum.sum(axis=0),
        topic_n=cell_n.sum(axis=0),
        user_sum=cell_sum.sum(axis=1),
        user_n=cell_n.sum(axis=1),
        total=float(r.sum()),
        n=float(r.shape[0]),
    )
    binary = bool(np.isin(r, (0.0, 1.0)).all())
    raw = _raw_features((counts, binary, float(kappa), float(kappa_topic)), u, t, q, pop, s, r)
    center = raw.mean(axis=0)
    spread = raw.std(axis=0)
    scale = np.where(spread > 1e-12, spread, 1.0)
    x = _design(raw, center, scale)
    penalty = np.full(x.shape[1], float(ridge))
    penalty[0] = 0.0
    coef = _fit_glm(x, r, penalty, binary, float(r.mean()))
    return RewardModel(
        counts=counts,
        coef=coef,
        center=center,
        scale=scale,
        binary=binary,
        kappa=float(kappa),
        kappa_topic=float(kappa_topic),
    )


def _fit_glm(
    x: NDArray[np.float64], y: NDArray[np.float64], penalty: NDArray, binary: bool, mean: float
) -> NDArray[np.float64]:
    """Ridge least squares, or ridge logistic regression by Newton's method (no BLAS: einsum)."""
    ridge = np.diag(penalty)
    if not binary:
        gram = np.einsum("ni,nj->ij", x, x) + ridge
        return np.linalg.solve(gram, np.einsum("ni,n->i", x, y))
    coef = np.zeros(x.shape[1])
    coef[0] = float(_logit(np.array([mean]))[0])
    for _ in range(50):
        p = _sigmoid(np.einsum("ni,i->n", x, coef))
        grad = np.einsum("ni,n->i", x, y - p) - penalty * coef
        hess = np.einsum("ni,n,nj->ij", x, p * (1.0 - p), x) + ridge + 1e-9 * np.eye(x.shape[1])
        step = np.linalg.solve(hess, grad)
        coef += step
        if np.abs(step).max() < 1e-8:
            break
    return coef


# -- what the collector records -----------------------------------------------------------------
@dataclass(slots=True)
class OPELog:
    """What :func:`collect` recorded: one row per page served (``N`` rows).

    Attributes:
        logging: the logging policy's name.
        seed: the scenario seed.
        pages: per page ``tick``, ``user``, the logged first ``item``, its ``propensity``
            ``μ(a|x)`` and its rewards ``click``, ``like``, ``dwell``.
        targets: per target label, a frame aligned with ``pages``: its first ``item``, the
            probability ``item_prob`` it gave that item, ``prob`` = ``π(logged item | x)``, and
            the on-policy truth — the target's own first-slot ``click``, ``like``, ``dwell``
            drawn on the same context (NaN when collected with ``truth=False``).
        candidates: each page's candidate pool ``[N, C]``.
        popularity: ``log1p(clicks)`` of each candidate when the page was requested ``[N, C]``.
        seen: whether each candidate was in the user's history ``[N, C]``.
        logged_col, target_cols: the column of each first item in ``candidates``.
        target_dists: a stochastic target's first-slot distribution over ``candidates``
            ``[N, C]`` (``None``: deterministic, all mass on its item).
        item_topic, item_quality: the catalogue's static item features.
        n_users: users in the world.
        totals: the logged run's totals (as :meth:`Simulation.run` reports them).
        path: the run folder, when the logged trajectory was recorded.
    """

    logging: str
    seed: int
    pages: pd.DataFrame
    targets: dict[str, pd.DataFrame]
    candidates: NDArray[np.int32]
    popularity: NDArray[np.float32]
    seen: NDArray[np.bool_]
    logged_col: NDArray[np.intp]
    target_cols: dict[str, NDArray[np.intp]]
    target_dists: dict[str, NDArray[np.float32] | None]
    item_topic: NDArray[np.int16]
    item_quality: NDArray[np.float32]
    n_users: int
    totals: dict[str, int] = field(default_factory=dict)
    path: str | None = None

    def __len__(self) -> int:
        return len(self.pages)

    def target_prob(self, target: str) -> NDArray[np.float64]:
        """``π(a_i|x_i)``: the target's probability of each logged first item."""
        return self.targets[self._label(target)]["prob"].to_numpy(np.float64)

    def q_target(self, target: str, q_all: NDArray[np.float64]) -> NDArray[np.float64]:
        """``q̂(x_i, π) = Σ_a π(a|x_i) q̂(x_i, a)`` from per-candidate predictions ``[N, C]``."""
        label = self._label(target)
        dist = self.target_dists[label]
        if dist is None:
            return np.take_along_axis(q_all, self.target_cols[label][:, None], axis=1)[:, 0]
        return (dist * q_all).sum(axis=1)

    def _label(self, target: str) -> str:
        if target not in self.targets:
            raise OPEError(f"unknown target {target!r}; recorded: {', '.join(self.targets)}")
        return target


def cross_fit(
    log: OPELog,
    reward: str = "click",
    *,
    folds: int = 2,
    seed: int = 0,
    **model_params: float,
) -> NDArray[np.float64]:
    """``q̂(x_i, c)`` for every candidate ``c`` of every page ``[N, C]``, each page predicted
    by a :class:`RewardModel` fitted on the other folds (pages split at random into ``folds``
    equal parts; ``folds=1`` fits and predicts on all pages).

    Pages, not users, are split: the (user, topic) means need the user's other pages.
    """
    rewards = _reward_column(log, reward)
    n = len(log)
    if n == 0:
        raise OPEError("no logged data: the log has no pages")
    if folds < 1 or (folds > 1 and n < 2 * folds):
        raise OPEError(f"folds: expected 1, or at most {n // 2} for {n} pages, got {folds}")
    users = log.pages["user"].to_numpy(np.intp)
    topic = log.item_topic.astype(np.intp)
    quality = log.item_quality
    fold = np.random.default_rng(seed).permutation(n) % folds
    logged_item = log.candidates[np.arange(n), log.logged_col]
    pop_logged = log.popularity[np.arange(n), log.logged_col]
    seen_logged = log.seen[np.arange(n), log.logged_col]
    out = np.empty(log.candidates.shape, np.float64)
    for k in range(folds):
        test = fold == k
        train = ~test if folds > 1 else test
        model = fit_reward_model(
            users[train],
            topic[logged_item[train]],
            quality[logged_item[train]],
            pop_logged[train],
            seen_logged[train],
            rewards[train],
            n_users=log.n_users,
            n_topics=int(topic.max()) + 1,
            **model_params,
        )
        cand = log.candidates[test]
        out[test] = model.predict(
            users[test][:, None], topic[cand], quality[cand], log.popularity[test], log.seen[test]
        )
    return out


def _reward_column(log: OPELog, reward: str) -> NDArray[np.float64]:
    if reward not in REWARDS:
        raise OPEError(f"reward: expected one of {', '.join(REWARDS)}, got {reward!r}")
    return log.pages[reward].to_numpy(np.float64)


def estimate_table(
    log: OPELog,
    reward: str = "click",
    *,
    folds: int = 2,
    seed: int = 0,
    q_all: NDArray[np.float64] | None = None,
) -> pd.DataFrame:
    """Per target: the on-policy truth and the IPS, SNIPS and DR estimates, with standard errors.

    Columns: ``pages``, ``matched`` (pages whose logged item the target could have chosen),
    ``ess`` (:func:`effective_sample_size`), ``on_policy`` / ``on_policy_se`` (the mean of the
    target's own first-slot reward drawn on the logged contexts, NaN without truth), ``dm``
    (the direct method, ``(1/n) Σ q̂(x_i, π)``: the reward model alone, biased when it is
    wrong; its ``se`` ignores the model's own error), ``ips``, ``snips``, ``dr`` and their
    ``_se``. The estimates read only the logged data: rewards, propensities, the targets'
    choices and the reward model's predictions ``q_all`` ``[N, C]`` (default:
    :func:`cross_fit` with ``folds`` and ``seed``). ``attrs``: ``reward``, ``logging`` and
    ``logging_value`` (the logging policy's own mean reward).
    """
    import pandas as pd

    r = _reward_column(log, reward)
    if r.shape[0] == 0:
        raise OPEError("no logged data: the log has no pages")
    mu = log.pages["propensity"].to_numpy(np.float64)
    if q_all is None:
        q_all = cross_fit(log, reward, folds=folds, seed=seed)
    elif np.shape(q_all) != log.candidates.shape:
        raise OPEError(
            f"q_all: expected one prediction per candidate {log.candidates.shape}, "
            f"got {np.shape(q_all)}"
        )
    q_logged = np.take_along_axis(q_all, log.logged_col[:, None], axis=1)[:, 0]
    rows = []
    for label, frame in log.targets.items():
        pi = frame["prob"].to_numpy(np.float64)
        truth = frame[reward].to_numpy(np.float64)
        has_truth = bool(np.isfinite(truth).all())
        q_pi = log.q_target(label, q_all)
        est = {
            "dm": Estimate(float(q_pi.mean()), _se(q_pi), int(r.shape[0])),
            "ips": ips(r, mu, pi),
            "snips": snips(r, mu, pi) if pi.sum() > 0 else Estimate(math.nan, math.nan, r.size),
            "dr": dr(r, mu, pi, q_logged, q_pi),
        }
        row: dict[str, Any] = {
            "target": label,
            "pages": int(r.shape[0]),
            "matched": int((pi > 0).sum()),
            "ess": effective_sample_size(mu, pi),
            "on_policy": float(truth.mean()) if has_truth else math.nan,
            "on_policy_se": _se(truth) if has_truth else math.nan,
        }
        for name, e in est.items():
            row[name] = e.value
            row[f"{name}_se"] = e.se
        rows.append(row)
    table = pd.DataFrame(rows).set_index("target")
    table.attrs.update(reward=reward, logging=log.logging, logging_value=float(r.mean()))
    return table


# -- the collector ------------------------------------------------------------------------------
def _build(spec: PolicySpec, *, fresh: bool = False) -> Recommender:
    from recoworld.policies import make_policy

    if isinstance(spec, str):
        return make_policy(spec)
    if isinstance(spec, Mapping):
        if "name" not in spec:
            raise OPEError(f"policy spec {dict(spec)!r}: expected a 'name' (and optional 'params')")
        return make_policy(str(spec["name"]), **dict(spec.get("params") or {}))
    if callable(getattr(spec, "recommend", None)):
        if fresh:
            raise OPEError(
                f"policy {getattr(spec, 'name', spec)!r}: evaluate() needs a fresh policy per "
                "seed; pass a name, a {'name', 'params'} mapping or a zero-argument factory"
            )
        return spec
    if callable(spec):
        return _build(spec(), fresh=False)
    raise OPEError(
        f"policy {spec!r}: expected a name, a {{'name', 'params'}} mapping, a factory or a policy"
    )


def _is_spec_mapping(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and isinstance(value.get("name"), str)
        and set(value)
        <= {
            "name",
            "params",
        }
    )


def _build_targets(targets: Any, *, fresh: bool = False) -> dict[str, Recommender]:
    """``{label: policy}`` from one spec, a sequence of specs or a ``{label: spec}`` mapping."""
    if (
        isinstance(targets, str)
        or _is_spec_mapping(targets)
        or not isinstance(targets, Mapping | Sequence)
    ):
        targets = [targets]
    items = list(targets.items()) if isinstance(targets, Mapping) else [(None, t) for t in targets]
    if not items:
        raise OPEError("targets: expected at least one target policy")
    built: dict[str, Recommender] = {}
    for label, spec in items:
        policy = _build(spec, fresh=fresh)
        name = str(label) if label is not None else str(policy.name)
        unique, j = name, 2
        while unique in built:
            unique, j = f"{name}#{j}", j + 1
        built[unique] = policy
    return built


class _Tee:
    """The simulation's policy: the logger, whose feedback is also sent to the shadow targets.

    It looks like the logger to the schedule: its name (what the manifest and trajectory
    record), its ``drain_records`` (rows it adds to the trajectory) and ``stop_reason``. It asks
    for the hidden state when a privileged target needs it (reading it draws no randomness and
    changes nothing); only privileged policies are shown it. ``close`` closes every policy.
    """

    def __init__(self, logger_policy: Recommender, targets: Sequence[Recommender]) -> None:
        self.logger = logger_policy
        self.targets = list(targets)
        self.name = logger_policy.name
        self.listeners = [
            p for p in (logger_policy, *targets) if getattr(p, "wants_feedback", True)
        ]
        self.wants_feedback = bool(self.listeners)
        self.privileged = any(getattr(p, "privileged", False) for p in (logger_policy, *targets))
        drain = getattr(logger_policy, "drain_records", None)
        if drain is not None:  # only then: the schedule asks with getattr(..., None)
            self.drain_records = drain

    @property
    def stop_reason(self) -> str | None:
        return getattr(self.logger, "stop_reason", None)

    def recommend(self, request: RecommendRequest) -> Slates:
        return self.logger.recommend(request)

    def update(self, feedback: Feedback) -> None:
        for policy in self.listeners:  # the logger first: its state never sees the targets'
            policy.update(feedback)
        for policy in self.targets:  # a target's own trajectory rows are not the logged run's
            drain = getattr(policy, "drain_records", None)
            if drain is not None:
                drain()

    def close(self) -> None:
        for policy in (self.logger, *self.targets):
            close = getattr(policy, "close", None)
            if close is not None:
                close()


def _view(
    request: RecommendRequest, rng: np.random.Generator, oracle: Any, copy: bool
) -> RecommendRequest:
    """The same request for another policy: its own random stream and what it may see."""
    from recoworld.policies.base import RecommendRequest

    def own(a: NDArray) -> NDArray:
        return a.copy() if copy else a

    return RecommendRequest(
        tick=request.tick,
        users=own(request.users),
        candidates=own(request.candidates),
        k=request.k,
        catalog=request.catalog,
        history=lambda: request.history,
        instructions=lambda: request.instructions,
        instruction_age=own(request.instruction_age),
        session_pages=own(request.session_pages),
        rng=rng,
        oracle=oracle,
        graph=request.graph,
    )


def _first_slot_dist(
    label: str, policy: Recommender, request: RecommendRequest, slates: Slates
) -> NDArray[np.float32] | None:
    """The target's distribution of its first item over the candidates (``None``: it is
    deterministic). A policy may give it through ``first_slot_probs(request) -> [n, C]``."""
    from recoworld.policies.baselines import RandomPolicy

    shape = request.candidates.shape
    hook = getattr(policy, "first_slot_probs", None)
    if callable(hook):
        dist = np.asarray(hook(request), np.float64)
        if dist.shape != shape or (dist < 0).any() or not np.allclose(dist.sum(axis=1), 1.0):
            raise OPEError(
                f"target {label!r}: first_slot_probs must be [n, C] = {shape} non-negative rows "
                "summing to 1"
            )
        return dist.astype(np.float32)
    if (slates.propensities[:, 0] == 1.0).all():
        return None
    if type(policy) is RandomPolicy:
        return np.full(shape, 1.0 / shape[1], np.float32)
    raise OPEError(
        f"target {label!r} is stochastic at the first slot (propensities < 1) and its "
        "first-slot distribution is unknown; give it first_slot_probs(request) -> [n, C]"
    )


def _columns_of(candidates: NDArray, items: NDArray, who: str) -> NDArray[np.intp]:
    hit = candidates == items[:, None]
    if not hit.any(axis=1).all():
        raise OPEError(
            f"{who}: its first item is not one of the request's candidates; first-slot OPE "
            "needs the first item drawn from the candidate pool"
        )
    return hit.argmax(axis=1)


def _first_positions(feed: Feed) -> NDArray[np.intp]:
    """Feed position of each slate's rank 0 (the first recommended item on the page)."""
    from recoworld.users.base import SOURCE_REC

    return np.argmax(feed.source == SOURCE_REC, axis=1)


class _Recorder:
    """Per-tick rows of :func:`collect`, concatenated at the end."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.pages: dict[str, list[NDArray]] = {k: [] for k in ("tick", "user", "item", "prop")}
        for name in REWARDS:
            self.pages[name] = []
        self.context: dict[str, list[NDArray]] = {"cand": [], "pop": [], "seen": [], "col": []}
        self.targets: dict[str, dict[str, list[Any]]] = {
            label: {k: [] for k in ("item", "item_prob", "prob", "col", "dist", *REWARDS)}
            for label in labels
        }

    @staticmethod
    def cat(parts: list[NDArray], dtype: Any, width: int | None = None) -> NDArray:
        if not parts:
            return np.zeros((0,) if width is None else (0, width), dtype)
        return np.concatenate(parts).astype(dtype, copy=False)


def collect(
    config: ScenarioConfig,
    logging: PolicySpec,
    targets: Any,
    *,
    n_ticks: int | None = None,
    truth: bool = True,
    world: World | None = None,
    out_dir: str | None = None,
    run_id: str | None = None,
    on_tick: Callable[[TickStats], None] | None = None,
) -> OPELog:
    """Run ``config`` with the ``logging`` policy and log, page by page, what OPE needs.

    A real :class:`~recoworld.schedule.Simulation` runs the logging policy through
    ``begin_tick`` → slates → ``end_tick``: the logged run (and its trajectory, with
    ``out_dir``) is byte-identical to ``Simulation(config, policy=logging).run()``. At every tick
    each *shadow* target gets the same request — the same users, candidates, history and
    state — with a random stream of its own (``ope/policy/<label>``), and afterwards the same
    ``update(feedback)`` as the logger: it learns from the logged traffic (rows a target would
    add to a trajectory, its ``drain_records``, are dropped). With ``truth``, the
    users' response to the target's slate is drawn from the user model on the same world state
    (stream ``ope/users/<label>``; the feed composed by the schedule's own stage 4, the user
    model's ``respond`` being pure) and never committed: the target's first-slot outcome on
    that context.

    Args:
        config: the scenario (its ``seed`` is the run's seed).
        logging: the logging policy — a name, a ``{"name", "params"}`` mapping, a factory, or a
            policy object — with exact first-slot propensities (e.g. ``epsilon_greedy``).
        targets: target policies as such specs, a list of them or a ``{label: spec}`` mapping
            (labels default to the policies' names, made unique).
        n_ticks: ticks to run (default: the scenario's horizon).
        truth: also draw each target's on-policy outcome (needs a pure user model: not with
            LLM users).
        world: a prepared world (default: the scenario's synthetic world).
        out_dir: record the logged trajectory there (default: not recorded).
        run_id: the trajectory's run id.
        on_tick: called with each tick's :class:`~recoworld.schedule.TickStats`.

    Raises:
        OPEError: a target shares an object with the logger or another target, a first item is
            not a candidate, a stochastic target's distribution is unknown, or ``truth`` with
            LLM users.
    """
    import pandas as pd

    from recoworld.policies.base import validate_slates
    from recoworld.schedule import Simulation, drive_ticks

    logging_policy = _build(logging)
    shadows = _build_targets(targets)
    objects = [logging_policy, *shadows.values()]
    if len({id(p) for p in objects}) != len(objects):
        raise OPEError(
            "each target must be its own policy object, distinct from the logger and the other "
            "targets (a shadow target is updated with the logged feedback)"
        )
    if truth and config.llm.enabled:
        raise OPEError(
            "truth=True needs a user model whose respond() is pure and cheap; LLM users are "
            "not supported (collect with truth=False to log without the on-policy truth)"
        )
    tee = _Tee(logging_policy, list(shadows.values()))
    sim = Simulation(config, world=world, policy=tee, out_dir=out_dir, run_id=run_id)
    streams = {
        label: (sim.rng.generator(f"ope/policy/{label}"), sim.rng.generator(f"ope/users/{label}"))
        for label in shadows
    }
    strip_logger = tee.privileged and not getattr(logging_policy, "privileged", False)
    rec = _Recorder(list(shadows))
    end = sim.world.clock.tick + (sim.n_ticks if n_ticks is None else int(n_ticks))

    def step() -> TickStats:
        request = sim.begin_tick()
        if request is None:
            return sim.end_tick(None).stats
        own = _view(request, request.rng, None, False) if strip_logger else request
        slates = logging_policy.recommend(own)
        _record_context(rec, request)
        views = []
        for label, policy in shadows.items():
            oracle = request.oracle if getattr(policy, "privileged", False) else None
            view = _view(request, streams[label][0], oracle, True)
            views.append(view)
            target_slates = validate_slates(policy.recommend(view), view, label)
            _record_target(rec, sim, label, policy, view, target_slates, streams, truth)
        outcome = sim.end_tick(slates)
        for view in views:
            view.seal()
        if strip_logger:
            own.seal()
        _record_logged(rec, request, outcome.feed, outcome.responses, logging_policy.name)
        return outcome.stats

    # The run loop of Simulation.run: a spent LLM budget stops cleanly, every tick kept.
    status = drive_ticks(
        step,
        done=lambda: sim.world.clock.tick >= end,
        finish=sim.finish,
        stop_reason=lambda: sim.stop_reason,  # the user model's, or the tee's (its logger's)
        progress=on_tick,
    )

    cat = rec.cat
    c = sim.config.feed.n_candidates
    logged_col = cat(rec.context["col"], np.intp)
    pages = pd.DataFrame(
        {
            "tick": cat(rec.pages["tick"], np.int32),
            "user": cat(rec.pages["user"], np.int64),
            "item": cat(rec.pages["item"], np.int32),
            "propensity": cat(rec.pages["prop"], np.float64),
            "click": cat(rec.pages["click"], np.bool_),
            "like": cat(rec.pages["like"], np.bool_),
            "dwell": cat(rec.pages["dwell"], np.float32),
        }
    )
    candidates = cat(rec.context["cand"], np.int32, c)
    frames: dict[str, pd.DataFrame] = {}
    cols: dict[str, NDArray[np.intp]] = {}
    dists: dict[str, NDArray[np.float32] | None] = {}
    for label, parts in rec.targets.items():
        col = cat(parts["col"], np.intp)
        cols[label] = col
        if all(d is None for d in parts["dist"]):
            dists[label] = None
        else:
            filled = []
            for d, tick_cols in zip(parts["dist"], parts["col"], strict=True):
                if d is None:
                    d = np.zeros((tick_cols.shape[0], c), np.float32)
                    d[np.arange(tick_cols.shape[0]), tick_cols] = 1.0
                filled.append(d)
            dists[label] = cat(filled, np.float32, c)
        frames[label] = pd.DataFrame(
            {
                "item": cat(parts["item"], np.int32),
                "item_prob": cat(parts["item_prob"], np.float64),
                "prob": _target_prob(dists[label], col, logged_col),
                **{name: cat(parts[name], np.float32) for name in REWARDS},
            }
        )
    result = sim.result(status)
    log = OPELog(
        logging=str(logging_policy.name),
        seed=int(config.seed),
        pages=pages,
        targets=frames,
        candidates=candidates,
        popularity=cat(rec.context["pop"], np.float32, c),
        seen=cat(rec.context["seen"], np.bool_, c),
        logged_col=logged_col,
        target_cols=cols,
        target_dists=dists,
        item_topic=sim.world.catalog.topic.copy(),
        item_quality=sim.world.catalog.quality.copy(),
        n_users=int(sim.world.population.n_users),
        totals=dict(result.totals),
        path=result.path,
    )
    logger.info(
        "collected %d pages over %d ticks with %s (seed %d), %d targets",
        len(log),
        result.ticks,
        log.logging,
        log.seed,
        len(frames),
    )
    return log


def _target_prob(
    dist: NDArray[np.float32] | None, target_col: NDArray[np.intp], logged_col: NDArray[np.intp]
) -> NDArray[np.float64]:
    if dist is None:
        return (target_col == logged_col).astype(np.float64)
    return np.take_along_axis(dist, logged_col[:, None], axis=1)[:, 0].astype(np.float64)


def _record_context(rec: _Recorder, request: RecommendRequest) -> None:
    cand = request.candidates
    history = request.history
    rec.context["cand"].append(np.array(cand, np.int32))
    rec.context["pop"].append(np.log1p(request.catalog.clicks[cand]).astype(np.float32))
    rec.context["seen"].append((cand[:, :, None] == history[:, None, :]).any(axis=2))


def _record_target(
    rec: _Recorder,
    sim: Simulation,
    label: str,
    policy: Recommender,
    view: RecommendRequest,
    slates: Slates,
    streams: dict[str, tuple[np.random.Generator, np.random.Generator]],
    truth: bool,
) -> None:
    parts = rec.targets[label]
    first = slates.items[:, 0]
    parts["item"].append(first.copy())
    parts["item_prob"].append(slates.propensities[:, 0].copy())
    parts["col"].append(_columns_of(view.candidates, first, f"target {label!r}"))
    parts["dist"].append(_first_slot_dist(label, policy, view, slates))
    if not truth:
        for name in REWARDS:
            parts[name].append(np.full(first.shape[0], np.nan, np.float32))
        return
    feed = sim.preview_feed(view.users, slates)
    responses = sim.user_model.respond(sim.world, feed, streams[label][1])
    rows, pos = np.arange(first.shape[0]), _first_positions(feed)
    parts["click"].append(responses.clicked[rows, pos])
    parts["like"].append(responses.liked[rows, pos])
    parts["dwell"].append(responses.dwell[rows, pos])


def _record_logged(
    rec: _Recorder,
    request: RecommendRequest,
    feed: Feed | None,
    responses: Any,
    name: str,
) -> None:
    if feed is None or responses is None:  # pragma: no cover - a request always gets a feed
        raise OPEError(f"tick {request.tick}: the schedule returned no feed for the request")
    rows, pos = np.arange(feed.users.shape[0]), _first_positions(feed)
    item = feed.items[rows, pos]
    rec.pages["tick"].append(np.full(item.shape[0], request.tick, np.int32))
    rec.pages["user"].append(feed.users.copy())
    rec.pages["item"].append(item)
    rec.pages["prop"].append(feed.propensity[rows, pos])
    rec.pages["click"].append(responses.clicked[rows, pos])
    rec.pages["like"].append(responses.liked[rows, pos])
    rec.pages["dwell"].append(responses.dwell[rows, pos])
    rec.context["col"].append(_columns_of(request.candidates, item, f"logging policy {name!r}"))


# -- several seeds ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Evaluation:
    """What :func:`evaluate` returns.

    ``summary``: per target, over seeds: ``on_policy`` (mean of the per-seed on-policy values),
    ``on_policy_ci`` (half-width of its 95% t-interval), ``ci_low`` / ``ci_high``; ``dm``,
    ``ips``, ``snips``, ``dr`` (means of the per-seed estimates) with ``_se`` (``√Σ se² / S``) and
    ``_in_ci`` (the mean estimate lies in the on-policy interval); ``matched`` and ``pages``
    (per seed, averaged). ``per_seed``: the :func:`estimate_table` rows of every seed, with
    its ``seed`` and ``logging_value`` (the logging policy's mean reward).
    """

    summary: pd.DataFrame
    per_seed: pd.DataFrame


def evaluate(
    config: ScenarioConfig,
    logging: PolicySpec,
    targets: Any,
    *,
    seeds: int | Sequence[int] = 5,
    reward: str = "click",
    n_ticks: int | None = None,
    folds: int = 2,
    progress: bool = True,
) -> Evaluation:
    """:func:`collect` and :func:`estimate_table` over several seeds, summarized per target.

    Policies must be given as names, ``{"name", "params"}`` mappings or zero-argument
    factories: each seed starts from fresh ones. ``seeds``: a count ``S`` (seeds
    ``config.seed … config.seed + S − 1``) or the seeds themselves. The on-policy value of a
    target gets the 95% t-interval over seeds of its per-seed means; the estimates are
    averaged over seeds. ``progress`` shows a bar over seeds × ticks (on stderr).
    """
    import pandas as pd
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from recoworld._config import override

    seed_list = (
        list(range(config.seed, config.seed + seeds)) if isinstance(seeds, int) else list(seeds)
    )
    if not seed_list:
        raise OPEError("seeds: expected at least one seed")
    _build(logging, fresh=True)  # fail early on a spec that cannot be rebuilt per seed
    _build_targets(targets, fresh=True)
    ticks = config.clock.n_ticks if n_ticks is None else int(n_ticks)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not progress,
    )
    tables = []
    with bar:
        task = bar.add_task("OPE", total=len(seed_list) * ticks)
        for seed in seed_list:
            bar.update(task, description=f"OPE seed {seed}")
            log = collect(
                override(config, {"seed": seed}),
                logging,
                targets,
                n_ticks=ticks,
                on_tick=lambda _stats: bar.advance(task),
            )
            table = estimate_table(log, reward, folds=folds, seed=seed)
            logger.info("seed %d:\n%s", seed, table.to_string())
            tables.append(
                table.reset_index().assign(seed=seed, logging_value=table.attrs["logging_value"])
            )
    per_seed = pd.concat(tables, ignore_index=True)
    rows = []
    n_seeds = len(seed_list)
    for label, part in per_seed.groupby("target", sort=False):
        mean, half = t_interval(part["on_policy"].to_numpy(np.float64))
        row: dict[str, Any] = {
            "target": label,
            "seeds": n_seeds,
            "pages": float(part["pages"].mean()),
            "matched": float(part["matched"].mean()),
            "on_policy": mean,
            "on_policy_ci": half,
            "ci_low": mean - half,
            "ci_high": mean + half,
        }
        for name in ("dm", "ips", "snips", "dr"):
            value = float(part[name].mean())
            row[name] = value
            row[f"{name}_se"] = float(np.sqrt((part[f"{name}_se"] ** 2).sum()) / n_seeds)
            row[f"{name}_in_ci"] = bool(mean - half <= value <= mean + half)
        rows.append(row)
    summary = pd.DataFrame(rows).set_index("target")
    summary.attrs.update(reward=reward, seeds=seed_list)
    return Evaluation(summary=summary, per_seed=per_seed)
