"""Classic diffusion and opinion models, vectorized over a directed CSR adjacency.

Edge direction
--------------
Influence flows from a user to its **followers**. Every function here that takes raw arrays
``(indptr, indices)`` reads them as the *influence* CSR: row ``u`` (``indices[indptr[u]:
indptr[u+1]]``) lists the users ``u`` influences, i.e. ``u``'s followers. For a
:class:`~recoworld.world.graph.SocialGraph` (whose row ``u`` lists whom ``u`` follows) that is
``graph.followers()``; :func:`influence_csr` does the conversion, and every function also accepts a
``SocialGraph`` directly in place of ``indptr`` (with ``indices=None``) or as ``graph``.

Diffusion models (:func:`independent_cascade`, :func:`linear_threshold`, :func:`sir`) spread along
influence edges ``u -> follower``. Opinion models (:func:`degroot`, :func:`friedkin_johnsen`,
:func:`deffuant_weisbuch`, :func:`hegselmann_krause`) let each user listen to its *in*-neighbours
in the influence graph, i.e. to the users it follows.

All randomness comes from a passed :class:`numpy.random.Generator`; results are a deterministic
function of the inputs and the generator state. Opinions live in ``[-1, 1]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from recoworld.errors import ConfigError
from recoworld.world.graph import SocialGraph

__all__ = [
    "Cascade",
    "Epidemic",
    "deffuant_weisbuch",
    "degroot",
    "erdos_renyi",
    "friedkin_johnsen",
    "giant_fraction",
    "hegselmann_krause",
    "independent_cascade",
    "influence_csr",
    "linear_threshold",
    "opinion_clusters",
    "opinion_step",
    "row_stochastic_matrix",
    "sir",
    "sir_transmissibility",
]

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
GraphLike = SocialGraph | tuple[ArrayLike, ArrayLike]


class Cascade(NamedTuple):
    """Result of a cascade: ``step[v]`` = step ``v`` became active (seeds 0, never -1);
    ``parent[v]`` = the node that activated ``v`` (-1 for seeds and never-active nodes)."""

    step: IntArray
    parent: IntArray


class Epidemic(NamedTuple):
    """Result of :func:`sir`: step of infection (-1 never; seeds 0), step of recovery (-1 if not
    recovered within ``max_steps``) and the infecting parent (-1 for seeds / never infected)."""

    infected_step: IntArray
    recovered_step: IntArray
    parent: IntArray


# --------------------------------------------------------------------------- helpers


def influence_csr(graph: SocialGraph) -> tuple[IntArray, IntArray]:
    """The influence CSR of a follow graph: row ``u`` lists ``u``'s followers."""
    f = graph.followers()
    return f.indptr.astype(np.int64), f.indices.astype(np.int64)


def _check_csr(indptr: ArrayLike, indices: ArrayLike) -> tuple[IntArray, IntArray]:
    ip = np.asarray(indptr)
    ix = np.asarray(indices)
    if ip.ndim != 1 or ip.shape[0] < 1 or not np.issubdtype(ip.dtype, np.integer):
        raise ConfigError("indptr must be a 1-D integer array of length n + 1")
    if ix.ndim != 1 or (ix.size and not np.issubdtype(ix.dtype, np.integer)):
        raise ConfigError("indices must be a 1-D integer array")
    ip = ip.astype(np.int64)
    ix = ix.astype(np.int64)
    n = ip.shape[0] - 1
    if ip[0] != 0 or ip[-1] != ix.shape[0] or np.any(np.diff(ip) < 0):
        raise ConfigError("indptr must start at 0, be non-decreasing and end at len(indices)")
    if ix.size and (ix.min() < 0 or ix.max() >= n):
        raise ConfigError(f"indices must lie in 0..{n - 1}")
    return ip, ix


def _influence(
    indptr: ArrayLike | SocialGraph, indices: ArrayLike | None
) -> tuple[IntArray, IntArray]:
    if isinstance(indptr, SocialGraph):
        if indices is not None:
            raise ConfigError("indices must be None when a SocialGraph is passed")
        return influence_csr(indptr)
    if indices is None:
        raise ConfigError("indices is required with a raw indptr array")
    return _check_csr(indptr, indices)


def _graph_influence(graph: GraphLike) -> tuple[IntArray, IntArray]:
    if isinstance(graph, SocialGraph):
        return influence_csr(graph)
    if not isinstance(graph, tuple) or len(graph) != 2:
        raise ConfigError("graph must be a SocialGraph or an (indptr, indices) influence CSR")
    return _check_csr(graph[0], graph[1])


def _transpose(indptr: IntArray, indices: IntArray) -> tuple[IntArray, IntArray]:
    n = indptr.shape[0] - 1
    src = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    order = np.argsort(indices, kind="stable")
    t_indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(indices, minlength=n), out=t_indptr[1:])
    return t_indptr, src[order]


def _listen(graph: GraphLike) -> tuple[IntArray, IntArray]:
    """CSR where row ``i`` lists whom ``i`` listens to (its followees)."""
    if isinstance(graph, SocialGraph):
        return graph.indptr.astype(np.int64), graph.indices.astype(np.int64)
    return _transpose(*_graph_influence(graph))


def _gather(indptr: IntArray, indices: IntArray, rows: IntArray) -> tuple[IntArray, IntArray]:
    """``(source row, neighbour)`` for every edge of ``rows``, in CSR order of ``rows``."""
    starts = indptr[rows]
    counts = indptr[rows + 1] - starts
    total = int(counts.sum())
    src = np.repeat(rows, counts)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return src, indices[np.repeat(starts, counts) + offsets]


def _seeds(seeds: ArrayLike, n: int) -> IntArray:
    s = np.unique(np.asarray(seeds, dtype=np.int64).ravel())
    if s.size and (s[0] < 0 or s[-1] >= n):
        raise ConfigError(f"seeds must lie in 0..{n - 1}")
    return s


def _prob(name: str, value: float, *, open_low: bool = False) -> float:
    v = float(value)
    if not math.isfinite(v) or v < 0.0 or v > 1.0 or (open_low and v == 0.0):
        lo = "(0" if open_low else "[0"
        raise ConfigError(f"{name} must be a probability in {lo}, 1], got {value!r}")
    return v


def _steps(name: str, value: int | None, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ConfigError("rng must be a numpy.random.Generator")
    return rng


def _opinions(x0: ArrayLike, n: int | None = None) -> FloatArray:
    x = np.asarray(x0, dtype=np.float64)
    if x.ndim != 1:
        raise ConfigError("x0 must be a 1-D array of opinions")
    if n is not None and x.shape[0] != n:
        raise ConfigError(f"x0 must have one opinion per user ({n}), got {x.shape[0]}")
    if not np.all(np.isfinite(x)) or np.any(np.abs(x) > 1.0):
        raise ConfigError("x0 must hold finite opinions in [-1, 1]")
    return x.copy()


def _nonneg(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v) or v < 0.0:
        raise ConfigError(f"{name} must be a finite non-negative number, got {value!r}")
    return v


def _first_per_target(targets: IntArray) -> IntArray:
    """Positions of the first occurrence of each distinct target (deterministic tie-break)."""
    _, first = np.unique(targets, return_index=True)
    return first


def _transmit(
    ip: IntArray,
    ix: IntArray,
    sources: IntArray,
    reached: IntArray,
    prob: float,
    gen: np.random.Generator,
) -> tuple[IntArray, IntArray]:
    """One round of transmission: each influence edge from ``sources`` to a node not reached yet
    (``reached == -1``) fires with probability ``prob`` (one draw per edge, in CSR order); a node
    hit by several edges takes the first as its parent. Returns ``(new nodes, their parents)``,
    the nodes sorted."""
    src, dst = _gather(ip, ix, sources)
    open_ = reached[dst] == -1
    src, dst = src[open_], dst[open_]
    hit = gen.random(dst.shape[0]) < prob
    src, dst = src[hit], dst[hit]
    first = _first_per_target(dst)
    return dst[first], src[first]


# --------------------------------------------------------------------------- diffusion


def independent_cascade(
    indptr: ArrayLike | SocialGraph,
    indices: ArrayLike | None,
    seeds: ArrayLike,
    p: float,
    rng: np.random.Generator,
    max_steps: int | None = None,
) -> Cascade:
    """Independent cascade (Kempe, Kleinberg, Tardos 2003).

    Update rule: seeds are active at step 0. At step ``t`` every node activated at step ``t-1``
    gets exactly one chance to activate each still-inactive out-neighbour (follower), succeeding
    independently with probability ``p``. All frontier edges are drawn at once (one uniform per
    frontier edge to an inactive node, in CSR order of the sorted frontier); a node reached by
    several successful parents in the same step takes the first in that edge order as its parent.
    Stops when the frontier is empty or after ``max_steps`` steps.

    On a graph with every edge in both directions this is bond percolation with probability
    ``p``: on Erdős–Rényi of mean degree ``c`` a giant cascade exists only when ``c·p > 1``.
    """
    ip, ix = _influence(indptr, indices)
    prob = _prob("p", p)
    gen = _rng(rng)
    limit = _steps("max_steps", max_steps, allow_none=True)
    n = ip.shape[0] - 1
    step = np.full(n, -1, dtype=np.int64)
    parent = np.full(n, -1, dtype=np.int64)
    frontier = _seeds(seeds, n)
    step[frontier] = 0
    t = 0
    while frontier.size and (limit is None or t < limit):
        t += 1
        new, par = _transmit(ip, ix, frontier, step, prob, gen)
        step[new] = t
        parent[new] = par
        frontier = new  # np.unique output: sorted
    return Cascade(step, parent)


def linear_threshold(
    indptr: ArrayLike | SocialGraph,
    indices: ArrayLike | None,
    seeds: ArrayLike,
    thresholds: ArrayLike | float,
    weights: ArrayLike | None = None,
) -> Cascade:
    """Linear threshold model (Granovetter 1978; Kempe et al. 2003), deterministic.

    Update rule: node ``v`` with threshold ``θ_v`` becomes active at step ``t`` when at least one
    in-neighbour is active and ``Σ_{u active at < t} w_uv ≥ θ_v``. Weights are given per influence
    edge in CSR order (default ``w_uv = 1 / in-degree(v)``); they must be non-negative with
    incoming sums ≤ 1. With all thresholds 0 every node reachable from the seeds activates; with
    thresholds > 1 (and default weights) only the seeds are active. ``parent[v]`` is the
    lowest-CSR-order active in-neighbour that pushed ``v`` over its threshold in the last step.
    """
    ip, ix = _influence(indptr, indices)
    n = ip.shape[0] - 1
    theta = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (n,)).copy()
    if np.any(np.isnan(theta)) or np.any(theta < 0):
        raise ConfigError("thresholds must be non-negative (one per node or a scalar)")
    if weights is None:
        indeg = np.bincount(ix, minlength=n).astype(np.float64)
        w = 1.0 / indeg[ix] if ix.size else np.zeros(0)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != ix.shape:
            raise ConfigError(f"weights must have one value per edge ({ix.shape[0]})")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ConfigError("weights must be finite and non-negative")
        if np.any(np.bincount(ix, weights=w, minlength=n) > 1.0 + 1e-9):
            raise ConfigError("weights: the incoming weights of a node must sum to at most 1")
    step = np.full(n, -1, dtype=np.int64)
    parent = np.full(n, -1, dtype=np.int64)
    received = np.zeros(n, dtype=np.float64)
    touched = np.zeros(n, dtype=bool)
    frontier = _seeds(seeds, n)
    step[frontier] = 0
    t = 0
    while frontier.size:
        t += 1
        starts = ip[frontier]
        counts = ip[frontier + 1] - starts
        pos = np.repeat(starts, counts) + (
            np.arange(int(counts.sum()), dtype=np.int64)
            - np.repeat(np.cumsum(counts) - counts, counts)
        )
        src, dst = np.repeat(frontier, counts), ix[pos]
        received += np.bincount(dst, weights=w[pos], minlength=n)
        touched[dst] = True
        fire = (step == -1) & touched & (received >= theta - 1e-12)
        new = np.flatnonzero(fire)
        step[new] = t
        keep = fire[dst]
        first = _first_per_target(dst[keep])
        parent[dst[keep][first]] = src[keep][first]
        frontier = new
    return Cascade(step, parent)


def sir(
    indptr: ArrayLike | SocialGraph,
    indices: ArrayLike | None,
    seeds: ArrayLike,
    beta: float,
    gamma: float,
    rng: np.random.Generator,
    max_steps: int,
) -> Epidemic:
    """Discrete-time SIR on the influence graph.

    Update rule per step ``t = 1, 2, ...``: (1) every node infectious at the start of the step
    infects each susceptible out-neighbour independently with probability ``beta`` (one uniform
    per edge to a susceptible node; ties resolved by first CSR edge order); (2) then each node that
    was infectious at the start of the step recovers with probability ``gamma``. Newly infected
    nodes are infectious from the next step. Stops when nobody is infectious or after
    ``max_steps`` steps.

    A node is therefore infectious for ``D ~ Geometric(gamma)`` steps on ``{1, 2, ...}``, and the
    transmissibility of an edge is ``T = 1 − E[(1 − beta)^D] = beta / (beta + gamma·(1 − beta))``.
    On Erdős–Rényi of mean degree ``c`` a major outbreak is possible only when ``c·T > 1``.
    """
    ip, ix = _influence(indptr, indices)
    b = _prob("beta", beta)
    g = _prob("gamma", gamma, open_low=True)
    gen = _rng(rng)
    limit = _steps("max_steps", max_steps)
    assert limit is not None
    n = ip.shape[0] - 1
    inf_step = np.full(n, -1, dtype=np.int64)
    rec_step = np.full(n, -1, dtype=np.int64)
    parent = np.full(n, -1, dtype=np.int64)
    infectious = _seeds(seeds, n)
    inf_step[infectious] = 0
    t = 0
    while infectious.size and t < limit:
        t += 1
        new, par = _transmit(ip, ix, infectious, inf_step, b, gen)
        inf_step[new] = t
        parent[new] = par
        recover = gen.random(infectious.shape[0]) < g
        rec_step[infectious[recover]] = t
        infectious = np.union1d(infectious[~recover], new)
    return Epidemic(inf_step, rec_step, parent)


def sir_transmissibility(beta: float, gamma: float) -> float:
    """Edge transmissibility of :func:`sir`: ``beta / (beta + gamma (1 − beta))``."""
    b = _prob("beta", beta)
    g = _prob("gamma", gamma, open_low=True)
    return b / (b + g * (1.0 - b)) if b > 0 else 0.0


# --------------------------------------------------------------------------- opinions


def row_stochastic_matrix(graph: GraphLike) -> FloatArray:
    """Dense DeGroot weights: ``W_ij = 1 / |F(i)|`` over the users ``j`` that ``i`` follows
    (``F(i)``); a user following nobody keeps its opinion (``W_ii = 1``). For small graphs."""
    lp, lx = _listen(graph)
    n = lp.shape[0] - 1
    w = np.zeros((n, n), dtype=np.float64)
    deg = np.diff(lp)
    rows = np.repeat(np.arange(n), deg)
    np.add.at(w, (rows, lx), 1.0 / deg[rows])
    lone = np.flatnonzero(deg == 0)
    w[lone, lone] = 1.0
    return w


def _sparse_weights(graph: GraphLike) -> tuple[IntArray, IntArray, FloatArray, int]:
    lp, lx = _listen(graph)
    n = lp.shape[0] - 1
    deg = np.diff(lp)
    rows = np.repeat(np.arange(n, dtype=np.int64), deg)
    lone = np.flatnonzero(deg == 0)
    rows = np.concatenate([rows, lone])
    cols = np.concatenate([lx, lone])
    w = np.concatenate([1.0 / deg[deg > 0].repeat(deg[deg > 0]), np.ones(lone.shape[0])])
    return rows, cols, w, n


def _operator(w: FloatArray | GraphLike) -> tuple[Callable[[FloatArray], FloatArray], int]:
    """``(apply, n)`` where ``apply(x) = W @ x``; W dense row-stochastic or from a graph."""
    if isinstance(w, np.ndarray):
        if w.ndim != 2 or w.shape[0] != w.shape[1]:
            raise ConfigError("W must be a square matrix")
        if np.any(w < 0) or not np.allclose(w.sum(axis=1), 1.0):
            raise ConfigError("W must be row-stochastic (non-negative, rows summing to 1)")
        mat = w.astype(np.float64)
        return (lambda x: mat @ x), mat.shape[0]
    rows, cols, vals, n = _sparse_weights(w)

    def apply(x: FloatArray) -> FloatArray:
        return np.bincount(rows, weights=vals * x[cols], minlength=n).astype(np.float64)

    return apply, n


def degroot(w: FloatArray | GraphLike, x0: ArrayLike, steps: int) -> FloatArray:
    """DeGroot averaging: ``x(t+1) = W x(t)``, returning ``x(steps)``.

    ``w`` is a dense row-stochastic matrix or a graph (then ``W`` = :func:`row_stochastic_matrix`:
    each user averages the users it follows). On a strongly connected aperiodic graph ``x(t)``
    converges to consensus at ``π · x0`` with ``π`` the stationary distribution (``π W = π``).
    """
    apply, n = _operator(w)
    x = _opinions(x0, n)
    for _ in range(_steps("steps", steps) or 0):
        x = apply(x)
    return x


def friedkin_johnsen(
    graph: FloatArray | GraphLike, x0: ArrayLike, stubbornness: ArrayLike | float, steps: int
) -> FloatArray:
    """Friedkin–Johnsen: ``x(t+1) = Λ x0 + (I − Λ) W x(t)``, returning ``x(steps)``.

    ``Λ = diag(stubbornness)`` with entries in ``[0, 1]``; ``W`` as in :func:`degroot`. When the
    iteration converges the limit is ``(I − (I − Λ) W)^{-1} Λ x0``.
    """
    apply, n = _operator(graph)
    x0v = _opinions(x0, n)
    lam = np.broadcast_to(np.asarray(stubbornness, dtype=np.float64), (n,)).copy()
    if not np.all(np.isfinite(lam)) or np.any(lam < 0) or np.any(lam > 1):
        raise ConfigError("stubbornness must lie in [0, 1] (scalar or one per user)")
    x = x0v.copy()
    anchor = lam * x0v
    for _ in range(_steps("steps", steps) or 0):
        x = anchor + (1.0 - lam) * apply(x)
    return x


def deffuant_weisbuch(
    graph: GraphLike,
    x0: ArrayLike,
    epsilon: float,
    mu: float,
    rng: np.random.Generator,
    steps: int,
) -> FloatArray:
    """Deffuant–Weisbuch bounded confidence on edges (synchronous, one-sided variant).

    Update rule per step: every user ``i`` with at least one followee draws one followee ``j``
    uniformly at random (the pair ``(i, j)`` is an edge); if ``|x_j − x_i| ≤ epsilon`` then
    ``x_i ← x_i + mu (x_j − x_i)``, all users updating from the same old ``x``. ``mu`` in
    ``(0, 0.5]``. With ``epsilon ≥ 2`` every pair interacts and a connected graph reaches
    consensus; with small ``epsilon`` several opinion clusters survive.
    """
    lp, lx = _listen(graph)
    n = lp.shape[0] - 1
    x = _opinions(x0, n)
    eps = _nonneg("epsilon", epsilon)
    m = float(mu)
    if not math.isfinite(m) or m <= 0 or m > 0.5:
        raise ConfigError(f"mu must lie in (0, 0.5], got {mu!r}")
    gen = _rng(rng)
    nsteps = _steps("steps", steps) or 0
    deg = np.diff(lp)
    users = np.flatnonzero(deg > 0)
    if users.size == 0:
        return x
    start, d = lp[users], deg[users]
    for _ in range(nsteps):
        pick = lx[start + np.minimum((gen.random(users.shape[0]) * d).astype(np.int64), d - 1)]
        diff = x[pick] - x[users]
        close = np.abs(diff) <= eps
        x[users] = x[users] + np.where(close, m * diff, 0.0)
    return x


def hegselmann_krause(
    x0: ArrayLike, epsilon: float, steps: int, graph: GraphLike | None = None
) -> FloatArray:
    """Hegselmann–Krause bounded confidence (synchronous).

    Update rule: ``x_i(t+1)`` = mean of ``x_j(t)`` over ``j ∈ N(i) ∪ {i}`` with
    ``|x_j(t) − x_i(t)| ≤ epsilon``, where ``N(i)`` is everyone (``graph=None``, computed in
    ``O(n log n)`` by sorting) or the users ``i`` follows. Large ``epsilon`` gives consensus,
    small ``epsilon`` several clusters.
    """
    x = _opinions(x0)
    n = x.shape[0]
    eps = _nonneg("epsilon", epsilon)
    nsteps = _steps("steps", steps) or 0
    if graph is None:
        for _ in range(nsteps):
            order = np.argsort(x, kind="stable")
            xs = x[order]
            cs = np.concatenate([[0.0], np.cumsum(xs)])
            lo = np.searchsorted(xs, xs - eps, side="left")
            hi = np.searchsorted(xs, xs + eps, side="right")
            new = np.empty(n)
            new[order] = (cs[hi] - cs[lo]) / (hi - lo)
            x = new
        return x
    lp, lx = _listen(graph)
    if lp.shape[0] - 1 != n:
        raise ConfigError(f"x0 must have one opinion per user ({lp.shape[0] - 1}), got {n}")
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(lp))
    for _ in range(nsteps):
        ok = np.abs(x[lx] - x[rows]) <= eps
        total = np.bincount(rows, weights=np.where(ok, x[lx], 0.0), minlength=n) + x
        count = np.bincount(rows, weights=ok.astype(np.float64), minlength=n) + 1.0
        x = total / count
    return x


def opinion_step(
    model: str,
    graph: GraphLike,
    x: ArrayLike,
    *,
    anchor: ArrayLike | None = None,
    stubbornness: ArrayLike | float = 0.0,
    epsilon: float = 0.3,
    mu: float = 0.3,
    rng: np.random.Generator | None = None,
) -> FloatArray:
    """One step of an opinion model from the current opinions ``x`` (the models above with
    ``steps=1``), as the schedule applies them inside a running world.

    ``model``: ``degroot``; ``friedkin_johnsen`` — ``stubbornness · anchor + (1 − stubbornness)
    · W x`` with ``anchor`` the initial opinions (default ``x``); ``deffuant_weisbuch``
    (``epsilon``, ``mu``, ``rng``); ``hegselmann_krause`` (``epsilon``, over followees).
    """
    if model == "degroot":
        return degroot(graph, x, 1)
    if model == "friedkin_johnsen":
        lam = np.asarray(stubbornness, dtype=np.float64)
        if not np.all(np.isfinite(lam)) or np.any(lam < 0) or np.any(lam > 1):
            raise ConfigError("stubbornness must lie in [0, 1] (scalar or one per user)")
        base = _opinions(x)
        start = base if anchor is None else _opinions(anchor, base.shape[0])
        return lam * start + (1.0 - lam) * degroot(graph, base, 1)
    if model == "deffuant_weisbuch":
        if rng is None:
            raise ConfigError("deffuant_weisbuch needs an rng")
        return deffuant_weisbuch(graph, x, epsilon, mu, rng, 1)
    if model == "hegselmann_krause":
        return hegselmann_krause(x, epsilon, 1, graph=graph)
    raise ConfigError(
        f"unknown opinion model {model!r}; expected degroot, friedkin_johnsen, "
        "deffuant_weisbuch or hegselmann_krause"
    )


def opinion_clusters(x: ArrayLike, tol: float = 1e-3) -> int:
    """Number of opinion clusters: groups of sorted opinions separated by gaps larger than tol."""
    v = np.sort(np.asarray(x, dtype=np.float64).ravel())
    if v.size == 0:
        return 0
    return int(np.count_nonzero(np.diff(v) > _nonneg("tol", tol))) + 1


# --------------------------------------------------------------------------- theory


def erdos_renyi(n: int, mean_degree: float, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
    """Erdős–Rényi ``G(n, c/(n−1))`` as an influence CSR with every undirected edge both ways.

    The number of undirected edges is ``Binomial(n(n−1)/2, c/(n−1))``; the edges are distinct
    uniformly random pairs. Returns ``(indptr, indices)`` with sorted rows.
    """
    nn = _steps("n", n)
    assert nn is not None
    c = _nonneg("mean_degree", mean_degree)
    gen = _rng(rng)
    if nn < 2 or c == 0:
        return np.zeros(nn + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if c > nn - 1:
        raise ConfigError(f"mean_degree must be at most n - 1 = {nn - 1}, got {mean_degree!r}")
    pairs = nn * (nn - 1) // 2
    m = int(gen.binomial(pairs, c / (nn - 1)))
    keys = np.zeros(0, dtype=np.int64)
    while keys.shape[0] < m:
        k = m - keys.shape[0]
        a = gen.integers(0, nn, size=k + 16)
        b = gen.integers(0, nn, size=k + 16)
        ok = a != b
        lo, hi = np.minimum(a[ok], b[ok]), np.maximum(a[ok], b[ok])
        keys = np.unique(np.concatenate([keys, lo * nn + hi]))
        if keys.shape[0] > m:
            keys = gen.choice(keys, size=m, replace=False)
    u, v = np.divmod(keys, nn)
    g = SocialGraph.from_edges(nn, np.concatenate([u, v]), np.concatenate([v, u]))
    return g.indptr.astype(np.int64), g.indices.astype(np.int64)


def giant_fraction(c: float, p: float = 1.0) -> float:
    """Solution ``S`` of ``S = 1 − exp(−c p S)`` (Newton from ``S = 1``); 0 when ``c·p ≤ 1``.

    For independent cascade with probability ``p`` (or SIR with transmissibility ``p``) on
    Erdős–Rényi of mean degree ``c``: a single random seed triggers a giant cascade with
    probability ``S``, which then covers a fraction ``S`` of the nodes.
    """
    x = _nonneg("c", c) * _prob("p", p)
    if x <= 1.0:
        return 0.0
    s = 1.0
    for _ in range(100):
        e = math.exp(-x * s)
        f = s - 1.0 + e
        step = f / (1.0 - x * e)
        s -= step
        if abs(step) < 1e-15:
            break
    return s
