"""Social-phenomenon metrics: diffusion cascades, polarization, echo chambers, homophily, filter
bubbles and herding — pure functions over trajectory tables, the follow graph and numpy arrays
(``docs/metrics.md`` lists every formula).

Tables are pandas DataFrames as :func:`recoworld.trajectory.read_table` returns them; only the
named columns are needed.

- ``social``: ``tick, user, kind, item, parent_user`` (``run`` and ``target`` optional). ``kind``
  is one of :data:`SOCIAL_KINDS` as strings or categoricals, or their codes as integers
  (``0 = share, 1 = post, 2 = follow, 3 = unfollow, 4 = mute``). A *post* row means ``user``
  created ``item``; a *share* row means ``user`` reshared ``item``, received from ``parent_user``
  (null or negative when found through the recommender). Follow, unfollow and mute rows are
  ignored by the cascade functions.
- ``impressions``: ``tick, user, item`` (``tick`` only where a function needs time).
- ``opinions``: ``tick, user, opinion`` snapshots of users' opinions in [−1, 1].

The follow graph is a :class:`~recoworld.world.graph.SocialGraph` (edge ``i → j``: ``i`` follows
``j``; a networkx graph over the integers ``0..n−1`` is converted). Per-user arrays (opinions,
attributes) are indexed by user id, per-item arrays (``stance``, ``topic``) by item id.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from recoworld._stats import t_interval, t_quantile
from recoworld.errors import TrajectoryError
from recoworld.trajectory.schema import SOCIAL_KINDS
from recoworld.world.graph import SocialGraph

if TYPE_CHECKING:
    from recoworld.world.world import World

__all__ = [
    "SOCIAL_KINDS",
    "assortativity",
    "attribute_assortativity",
    "cascade_growth",
    "cross_cutting_share",
    "diffusion_nodes",
    "diffusion_trees",
    "echo_chamber_correlation",
    "exposure_homophily",
    "herding",
    "homogenization",
    "network_disagreement",
    "nrmse",
    "polarization",
    "polarization_disagreement_index",
    "social_summary",
    "structural_virality",
    "time_to_reach",
    "topic_entropy",
    "wiener_index",
]

#: ``social.kind`` labels (``SOCIAL_KINDS``); an integer ``kind`` column holds their positions.
_SHARE, _POST = SOCIAL_KINDS.index("share"), SOCIAL_KINDS.index("post")
#: ``herding`` treatments and the seeded vote of each.
_SEED_VOTE = {"up": 1, "down": -1, "control": 0}
_Z95 = NormalDist().inv_cdf(0.975)

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
GraphLike = Any  # SocialGraph or a networkx graph over 0..n-1


# --------------------------------------------------------------------------- validation helpers


def _require(frame: object, columns: tuple[str, ...], name: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{name}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{name}: expected the columns {list(columns)}, missing {missing} "
            f"(has {list(frame.columns)})"
        )
    return frame


def _ints(frame: pd.DataFrame, column: str, name: str) -> IntArray:
    col = frame[column]
    if col.isna().any():
        raise ValueError(f"{name}.{column}: expected integers, found missing values")
    try:
        return np.asarray(col.to_numpy(), dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}.{column}: expected integers, got dtype {col.dtype}") from exc


def _nullable_ints(frame: pd.DataFrame, column: str, name: str) -> IntArray:
    """An integer column with nulls (or negatives) as −1."""
    try:
        values = pd.to_numeric(frame[column]).to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}.{column}: expected integers or nulls") from exc
    ok = np.isfinite(values) & (values >= 0)
    return np.where(ok, values, -1).astype(np.int64)


def _kind_codes(kind: pd.Series) -> IntArray:
    """``social.kind`` as positions in :data:`SOCIAL_KINDS` (strings, categoricals or codes)."""
    if isinstance(kind.dtype, pd.CategoricalDtype):
        kind = kind.astype(kind.cat.categories.dtype)
    if pd.api.types.is_integer_dtype(kind.dtype) and not pd.api.types.is_bool_dtype(kind.dtype):
        if kind.isna().any():
            raise ValueError("social.kind: expected a kind on every row, found missing values")
        codes = np.asarray(kind.to_numpy(), dtype=np.int64)
        bad = (codes < 0) | (codes >= len(SOCIAL_KINDS))
    else:
        codes = pd.Index(list(SOCIAL_KINDS)).get_indexer(pd.Index(kind)).astype(np.int64)
        bad = codes < 0
    if bad.any():
        seen = sorted({str(v) for v in kind[bad].tolist()})[:5]
        raise ValueError(
            f"social.kind: expected one of {list(SOCIAL_KINDS)} "
            f"(or their codes 0..{len(SOCIAL_KINDS) - 1}), got {seen}"
        )
    return codes


def _as_graph(graph: GraphLike) -> SocialGraph:
    if isinstance(graph, SocialGraph):
        return graph
    if hasattr(graph, "is_directed") and hasattr(graph, "edges"):
        return SocialGraph.from_networkx(graph)
    raise TypeError(
        f"graph: expected a SocialGraph (or a networkx graph over 0..n-1), "
        f"got {type(graph).__name__}"
    )


def _per_user(values: ArrayLike, n_users: int, name: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] != n_users:
        raise ValueError(
            f"{name}: expected a 1-D array of one value per user ({n_users}), got shape {arr.shape}"
        )
    return arr


def _per_item(values: ArrayLike, name: str, dtype: type[np.generic]) -> NDArray[Any]:
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array indexed by item id, got shape {arr.shape}")
    return arr


def _index_in(ids: IntArray, size: int, name: str, what: str) -> None:
    if ids.size and (ids.min() < 0 or ids.max() >= size):
        raise ValueError(
            f"{name}: {what} ids must lie in 0..{size - 1}, got {ids.min()}..{ids.max()}"
        )


def _correlation(a: FloatArray, b: FloatArray, method: str) -> float:
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method: expected 'pearson' or 'spearman', got {method!r}")
    if a.size < 2:
        return float("nan")
    if method == "spearman":
        a = np.asarray(pd.Series(a).rank(method="average").to_numpy(), dtype=np.float64)
        b = np.asarray(pd.Series(b).rank(method="average").to_numpy(), dtype=np.float64)
    da, db = a - a.mean(), b - b.mean()
    den = math.sqrt(float(da @ da) * float(db @ db))
    return float(da @ db) / den if den > 0 else float("nan")


# --------------------------------------------------------------------------- trees


def _tree_levels(parent: IntArray) -> tuple[IntArray, IntArray]:
    """Root and depth of every node of a forest given as parent pointers (−1 for roots), by
    pointer doubling (O(n log depth)); a cycle raises ValueError."""
    n = parent.shape[0]
    jump = np.where(parent >= 0, parent, np.arange(n, dtype=np.int64))
    depth = (parent >= 0).astype(np.int64)
    for _ in range(64):  # 2^64 exceeds any depth: not settled on roots by then is a cycle
        nxt = jump[jump]
        if np.array_equal(nxt, jump):
            if (parent[jump] >= 0).any():  # a cycle of pointers settled on a non-root
                break
            return jump, depth
        depth = depth + depth[jump]
        jump = nxt
    raise ValueError("parents: expected a forest, found a cycle")


def _subtree_sizes(parent: IntArray, depth: IntArray) -> IntArray:
    """Nodes in the subtree of every node, accumulated level by level from the deepest."""
    size = np.ones(parent.shape[0], dtype=np.int64)
    if parent.shape[0] == 0:
        return size
    order = np.argsort(-depth, kind="stable")
    levels = depth[order]
    cuts = np.flatnonzero(np.diff(levels)) + 1
    for block in np.split(order, cuts):
        if depth[block[0]] == 0:
            break
        np.add.at(size, parent[block], size[block])
    return size


def _check_tree(parents: ArrayLike) -> IntArray:
    arr = np.asarray(parents)
    if arr.ndim != 1:
        raise ValueError(f"parents: expected a 1-D array of parent indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"parents: expected integer parent indices, got dtype {arr.dtype}")
    p = arr.astype(np.int64)
    n = p.shape[0]
    if n == 0:
        return p
    if p.min() < -1 or p.max() >= n:
        raise ValueError(f"parents: expected indices in 0..{n - 1} or −1 for the root")
    if (p == np.arange(n)).any():
        raise ValueError("parents: a node cannot be its own parent")
    roots = int((p < 0).sum())
    if roots != 1:
        raise ValueError(f"parents: expected one tree (exactly one root, −1), got {roots} roots")
    _tree_levels(p)  # raises on a cycle
    return p


def wiener_index(parents: ArrayLike) -> int:
    """Wiener index of a tree: W = Σ_{i<j} d(i, j), the sum of shortest-path distances over all
    unordered node pairs of the undirected tree. O(n): removing the edge above node v splits the
    tree into v's subtree (s_v nodes) and the rest, and s_v (n − s_v) pairs cross it, so
    W = Σ_{v ≠ root} s_v (n − s_v).

    ``parents[i]`` is the index of node i's parent, −1 for the one root.
    """
    p = _check_tree(parents)
    if p.shape[0] < 2:
        return 0
    _, depth = _tree_levels(p)
    s = _subtree_sizes(p, depth)[p >= 0]
    return int((s * (p.shape[0] - s)).sum())


def structural_virality(parents: ArrayLike) -> float:
    """Structural virality ν of a diffusion tree (Goel, Anderson, Hofman, Watts 2016): the mean
    shortest-path distance over all pairs of nodes of the undirected tree,
    ν = 2W / (n(n − 1)) with W the :func:`wiener_index`. 0 for a single node, NaN for none;
    a star has ν → 2, a chain of n nodes ν = (n + 1) / 3.

    ``parents[i]`` is the index of node i's parent, −1 for the one root.
    """
    p = _check_tree(parents)
    n = p.shape[0]
    if n == 0:
        return float("nan")
    if n == 1:
        return 0.0
    return 2.0 * wiener_index(p) / (n * (n - 1))


_NODE_COLUMNS = ("cascade", "item", "user", "tick", "kind", "parent", "parent_user", "depth")


def _empty_nodes(with_run: bool) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "cascade": np.zeros(0, np.int64),
            "item": np.zeros(0, np.int64),
            "user": np.zeros(0, np.int64),
            "tick": np.zeros(0, np.int64),
            "kind": pd.Categorical([], categories=["share", "post"]),
            "parent": np.zeros(0, np.int64),
            "parent_user": pd.array([], dtype="Int64"),
            "depth": np.zeros(0, np.int64),
        }
    )
    if with_run:
        frame.insert(0, "run", pd.Series([], dtype=object))
    return frame


def diffusion_nodes(social: pd.DataFrame) -> pd.DataFrame:
    """The adoption nodes of every diffusion tree in a ``social`` table, one row per node.

    A node is an (item, user) adoption: a ``post`` row (``user`` created ``item``) or a
    ``share`` row; a user's repeated adoptions of one item keep the first (a post before a share
    on the same tick, else row order). The parent of a share is the adoption of the same item
    by its ``parent_user`` if that adoption comes earlier — an earlier tick, or the same tick
    and an earlier row — else the share is a root (found through the recommender, or received
    from a user whose adoption is not in the table). Posts are always roots. Each root starts
    one cascade, so one item may have several cascades. With a ``run`` column, items of
    different runs are different trees. Follow, unfollow and mute rows are ignored.

    Columns: ``cascade`` (id, numbered by item then start tick; rows are grouped by cascade and
    sorted by time inside it), ``item``, ``user``, ``tick``, ``kind`` (share or post),
    ``parent`` (row position in this frame of the parent node, −1 for a root — positions within
    one cascade minus the cascade's first position give the ``parents`` array of
    :func:`structural_virality`), ``parent_user`` (the resolved parent's user, NA for a root)
    and ``depth`` (0 for the root). ``run`` first when the input has it.
    """
    _require(social, ("tick", "user", "kind", "item", "parent_user"), "social")
    with_run = "run" in social.columns
    kind_all = _kind_codes(social["kind"])
    rows = np.flatnonzero((kind_all == _SHARE) | (kind_all == _POST))
    if rows.size == 0:
        return _empty_nodes(with_run)
    sub = social.iloc[rows]
    tick = _ints(sub, "tick", "social")
    user = _ints(sub, "user", "social")
    item = _ints(sub, "item", "social")
    if item.min() < 0 or user.min() < 0:
        raise ValueError("social: expected non-negative user and item ids on share and post rows")
    kind = kind_all[rows]
    claimed = np.where(kind == _SHARE, _nullable_ints(sub, "parent_user", "social"), -1)
    if with_run:
        run_codes, run_names = pd.factorize(sub["run"].astype(str), sort=True)
        stride = int(item.max()) + 1
        key = run_codes.astype(np.int64) * stride + item
    else:
        key = item

    # Sort adoptions by (tree key, tick, post first, row) and keep each user's first one.
    order = np.lexsort((np.arange(rows.size), kind != _POST, tick, key))
    first = ~pd.DataFrame({"k": key[order], "u": user[order]}).duplicated().to_numpy()
    order = order[first]
    key, tick, user, item, kind, claimed = (
        key[order],
        tick[order],
        user[order],
        item[order],
        kind[order],
        claimed[order],
    )
    n = order.size

    # Resolve the claimed parent user to its node of the same key; valid only if earlier.
    base = int(max(user.max(), claimed.max())) + 1
    code = key * base + user
    sorter = np.argsort(code, kind="stable")
    query = key * base + np.maximum(claimed, 0)
    pos = np.minimum(np.searchsorted(code[sorter], query), n - 1)
    cand = sorter[pos]
    ok = (claimed >= 0) & (code[cand] == query) & (cand < np.arange(n))
    parent = np.where(ok, cand, -1)

    root, depth = _tree_levels(parent)
    root_rank = np.cumsum(parent < 0) - 1
    cascade = root_rank[root]

    # Group rows by cascade (stable: time order inside each) and re-point the parents.
    regroup = np.argsort(cascade, kind="stable")
    where = np.empty(n, dtype=np.int64)
    where[regroup] = np.arange(n)
    parent = parent[regroup]
    parent = np.where(parent >= 0, where[np.maximum(parent, 0)], -1)
    user = user[regroup]
    parent_user = pd.array(np.where(parent >= 0, user[np.maximum(parent, 0)], 0), dtype="Int64")
    parent_user[parent < 0] = pd.NA
    frame = pd.DataFrame(
        {
            "cascade": cascade[regroup],
            "item": item[regroup],
            "user": user,
            "tick": tick[regroup],
            "kind": pd.Categorical(
                np.where(kind[regroup] == _POST, "post", "share"), categories=["share", "post"]
            ),
            "parent": parent,
            "parent_user": parent_user,
            "depth": depth[regroup],
        }
    )
    if with_run:
        run_of = key[regroup] // stride
        frame.insert(0, "run", np.asarray(run_names, dtype=object)[run_of])
    return frame


def _cascade_table(nodes: pd.DataFrame) -> pd.DataFrame:
    columns = [
        "item",
        "root",
        "start_tick",
        "end_tick",
        "size",
        "depth",
        "max_breadth",
        "structural_virality",
    ]
    with_run = "run" in nodes.columns
    if nodes.empty:
        empty = pd.DataFrame({c: np.zeros(0, np.int64) for c in columns[:-1]})
        empty["structural_virality"] = np.zeros(0, np.float64)
        if with_run:
            empty.insert(0, "run", pd.Series([], dtype=object))
        empty.index.name = "cascade"
        return empty
    cid = nodes["cascade"].to_numpy(np.int64)
    tick = nodes["tick"].to_numpy(np.int64)
    depth = nodes["depth"].to_numpy(np.int64)
    parent = nodes["parent"].to_numpy(np.int64)
    if (np.diff(cid) < 0).any():
        raise ValueError("nodes: expected rows grouped by cascade, as diffusion_nodes returns")
    starts = np.flatnonzero(np.r_[True, cid[1:] != cid[:-1]])
    size = np.diff(np.r_[starts, cid.size])
    local = np.repeat(np.arange(starts.size), size)  # cascade position 0..C-1 of each node
    # Breadth: nodes per (cascade, depth); the widest level of each cascade.
    level_key = local * (int(depth.max()) + 1) + depth
    level, count = np.unique(level_key, return_counts=True)
    max_breadth = np.zeros(starts.size, dtype=np.int64)
    np.maximum.at(max_breadth, level // (int(depth.max()) + 1), count)
    # Structural virality from subtree sizes: W_c = Σ_{v non-root} s_v (n_c − s_v).
    sub = _subtree_sizes(parent, depth).astype(np.float64)
    n_c = size[local].astype(np.float64)
    edge = parent >= 0
    wiener = np.bincount(
        local[edge], weights=sub[edge] * (n_c[edge] - sub[edge]), minlength=starts.size
    )
    sizes = size.astype(np.float64)
    virality = np.divide(
        2.0 * wiener,
        sizes * (sizes - 1.0),
        out=np.zeros(starts.size, dtype=np.float64),
        where=size > 1,
    )
    table = pd.DataFrame(
        {
            "item": nodes["item"].to_numpy(np.int64)[starts],
            "root": nodes["user"].to_numpy(np.int64)[starts],
            "start_tick": tick[starts],
            "end_tick": np.maximum.reduceat(tick, starts),
            "size": size.astype(np.int64),
            "depth": np.maximum.reduceat(depth, starts),
            "max_breadth": max_breadth,
            "structural_virality": virality,
        },
        index=pd.Index(cid[starts], name="cascade"),
    )
    if with_run:
        table.insert(0, "run", nodes["run"].to_numpy()[starts])
    return table


def diffusion_trees(social: pd.DataFrame) -> pd.DataFrame:
    """Every posted or shared item's diffusion forest split into cascades, one row per cascade
    (index ``cascade``, the ids of :func:`diffusion_nodes`, which defines the trees).

    Columns: ``item``; ``root`` (the root's user); ``start_tick`` and ``end_tick`` (first and
    last adoption); ``size`` S = number of adoptions; ``depth`` D = longest root-to-node path in
    edges; ``max_breadth`` = max over depth levels d of the nodes at depth d (the root level
    counts 1); ``structural_virality`` ν = 2 Σ_{v ≠ root} s_v (n − s_v) / (n(n − 1)) (mean
    pairwise distance, Goel et al. 2016; s_v the subtree size under v; 0 for a single node).
    ``run`` first when the input has it. Empty input → empty frame.
    """
    return _cascade_table(diffusion_nodes(social))


def cascade_growth(nodes: pd.DataFrame, cascade: int, *, until: int | None = None) -> pd.DataFrame:
    """Growth curves of one cascade of :func:`diffusion_nodes`, indexed by every ``tick`` from
    its start to its last adoption (or to ``until`` if later): ``size`` S(t) = adoptions with
    tick ≤ t and ``depth`` D(t) = max depth among them. Empty ``nodes`` → empty frame; a
    cascade id not in non-empty ``nodes`` → ValueError."""
    _require(nodes, ("cascade", "tick", "depth"), "nodes")
    empty = pd.DataFrame(
        {"size": np.zeros(0, np.int64), "depth": np.zeros(0, np.int64)},
        index=pd.Index(np.zeros(0, np.int64), name="tick"),
    )
    if nodes.empty:
        return empty
    sel = nodes["cascade"].to_numpy(np.int64) == int(cascade)
    if not sel.any():
        raise ValueError(f"cascade: expected a cascade id present in nodes, got {cascade}")
    tick = nodes["tick"].to_numpy(np.int64)[sel]
    depth = nodes["depth"].to_numpy(np.int64)[sel]
    start = int(tick.min())
    end = max(int(tick.max()), start if until is None else int(until))
    offset = tick - start
    size = np.cumsum(np.bincount(offset, minlength=end - start + 1))
    deepest = np.full(end - start + 1, 0, dtype=np.int64)
    np.maximum.at(deepest, offset, depth)
    return pd.DataFrame(
        {"size": size.astype(np.int64), "depth": np.maximum.accumulate(deepest)},
        index=pd.Index(np.arange(start, end + 1, dtype=np.int64), name="tick"),
    )


def time_to_reach(nodes: pd.DataFrame, k: int) -> pd.Series:
    """Ticks each cascade of :func:`diffusion_nodes` took to reach ``k`` adoptions:
    t_k − t_start, t_k the tick of its k-th adoption in time order (0 for k = 1); NaN if it
    never reached k. Indexed by cascade id."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k: expected a positive integer, got {k!r}")
    _require(nodes, ("cascade", "tick"), "nodes")
    name = f"time_to_{k}"
    if nodes.empty:
        return pd.Series([], dtype=np.float64, name=name, index=pd.Index([], name="cascade"))
    cid = nodes["cascade"].to_numpy(np.int64)
    tick = nodes["tick"].to_numpy(np.int64)
    order = np.lexsort((tick, cid))
    cid, tick = cid[order], tick[order]
    starts = np.flatnonzero(np.r_[True, cid[1:] != cid[:-1]])
    size = np.diff(np.r_[starts, cid.size])
    out = np.full(starts.size, np.nan)
    reached = size >= k
    out[reached] = tick[starts[reached] + k - 1] - tick[starts[reached]]
    return pd.Series(out, index=pd.Index(cid[starts], name="cascade"), name=name)


def nrmse(sim: ArrayLike, ref: ArrayLike) -> float:
    """Normalized RMSE of a simulated curve against a reference one on the same time grid:
    sqrt(mean_t (sim_t − ref_t)²) / max_t ref_t. NaN for empty curves or max ref ≤ 0."""
    s = np.asarray(sim, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    if s.ndim != 1 or s.shape != r.shape:
        raise ValueError(
            f"sim, ref: expected two 1-D curves of the same length, got shapes {s.shape} and "
            f"{r.shape}"
        )
    if r.size == 0:
        return float("nan")
    top = float(r.max())
    if not top > 0:
        return float("nan")
    return math.sqrt(float(np.mean((s - r) ** 2))) / top


# --------------------------------------------------------------------------- polarization


def polarization(x: ArrayLike, tau: float = 0.5) -> dict[str, float]:
    """Polarization of opinions x_i ∈ [−1, 1] (NaN entries — users without an opinion — are
    skipped):

    - ``variance`` = (1/n) Σ_i (x_i − x̄)² (population variance);
    - ``bimodality`` BC = (g² + 1) / (κ + 3(n − 1)² / ((n − 2)(n − 3))), g the bias-corrected
      sample skewness √(n(n − 1)) / (n − 2) · m₃ / m₂^{3/2} and κ the bias-corrected sample
      excess kurtosis (n − 1) / ((n − 2)(n − 3)) · ((n + 1)(m₄ / m₂² − 3) + 6), m_k the central
      moments; BC > 5/9 (its value for a uniform distribution) suggests two camps, → 1 for two
      equal point masses. NaN for n < 4 or no spread;
    - ``extremity`` = share of users with |x_i| > τ.
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"x: expected a 1-D array of opinions, got shape {arr.shape}")
    if not tau >= 0:
        raise ValueError(f"tau: expected a non-negative threshold, got {tau}")
    arr = arr[~np.isnan(arr)]
    n = arr.size
    nan = float("nan")
    if n == 0:
        return {"variance": nan, "bimodality": nan, "extremity": nan}
    d = arr - arr.mean()
    m2 = float(np.mean(d**2))
    bc = nan
    if n >= 4 and m2 > 0:
        m3, m4 = float(np.mean(d**3)), float(np.mean(d**4))
        g = math.sqrt(n * (n - 1)) / (n - 2) * m3 / m2**1.5
        kappa = (n - 1) / ((n - 2) * (n - 3)) * ((n + 1) * (m4 / m2**2 - 3.0) + 6.0)
        bc = (g**2 + 1.0) / (kappa + 3.0 * (n - 1) ** 2 / ((n - 2) * (n - 3)))
    return {
        "variance": m2,
        "bimodality": bc,
        "extremity": float(np.mean(np.abs(arr) > tau)),
    }


def network_disagreement(graph: GraphLike, x: ArrayLike) -> float:
    """Network disagreement D = Σ_{(i,j) ∈ E} (x_i − x_j)² over the directed follow edges (a
    mutual follow counts twice). 0 without edges, NaN without users."""
    g = _as_graph(graph)
    arr = _per_user(x, g.n_users, "x")
    if g.n_users == 0:
        return float("nan")
    src, dst = g.edges()
    return float(np.sum((arr[src] - arr[dst]) ** 2))


def polarization_disagreement_index(graph: GraphLike, x: ArrayLike) -> float:
    """Polarization–disagreement index (Musco, Musco, Tsourakakis 2018):
    I = P + D with polarization P = Σ_i (x_i − x̄)² and network disagreement
    D = Σ_{(i,j) ∈ E} (x_i − x_j)² (:func:`network_disagreement`); equivalently
    I = x̃ᵀ(L + I)x̃ with x̃ the mean-centred opinions and L the Laplacian of the follow graph.
    NaN without users."""
    g = _as_graph(graph)
    arr = _per_user(x, g.n_users, "x")
    if g.n_users == 0:
        return float("nan")
    return float(np.sum((arr - arr.mean()) ** 2)) + network_disagreement(g, arr)


def echo_chamber_correlation(
    graph: GraphLike, x: ArrayLike, method: Literal["pearson", "spearman"] = "pearson"
) -> float:
    """Echo-chamber correlation (Cinelli et al. 2021): the Pearson (or Spearman) correlation
    between x_i and x̄_N(i) = mean of x_j over the users j that i follows, over users following
    at least one user. Near 1: users follow like-minded users; near 0: no opinion structure.
    NaN for fewer than two such users or no spread."""
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method: expected 'pearson' or 'spearman', got {method!r}")
    g = _as_graph(graph)
    arr = _per_user(x, g.n_users, "x")
    src, dst = g.edges()
    degree = g.out_degree()
    total = np.bincount(src, weights=arr[dst], minlength=g.n_users)
    has = degree > 0
    return _correlation(arr[has], total[has] / degree[has], method)


# --------------------------------------------------------------------------- exposure


def _opinion_at(impressions: pd.DataFrame, opinions: pd.DataFrame) -> FloatArray:
    """Each impression's user opinion from the latest snapshot at or before its tick, else the
    user's earliest snapshot; NaN when the user has none (per run when both have ``run``)."""
    _require(impressions, ("tick", "user"), "impressions")
    _require(opinions, ("tick", "user", "opinion"), "opinions")
    n = len(impressions)
    out = np.full(n, np.nan)
    if n == 0 or opinions.empty:
        return out
    left = pd.DataFrame(
        {
            "tick": _ints(impressions, "tick", "impressions"),
            "user": _ints(impressions, "user", "impressions"),
            "_pos": np.arange(n),
        }
    )
    right = pd.DataFrame(
        {
            "tick": _ints(opinions, "tick", "opinions"),
            "user": _ints(opinions, "user", "opinions"),
            "opinion": pd.to_numeric(opinions["opinion"]).to_numpy(np.float64, na_value=np.nan),
        }
    )
    by = ["user"]
    if "run" in impressions.columns and "run" in opinions.columns:
        left["run"] = impressions["run"].astype(str).to_numpy()
        right["run"] = opinions["run"].astype(str).to_numpy()
        by = ["run", "user"]
    left = left.sort_values("tick", kind="stable")
    right = right.sort_values("tick", kind="stable")
    back = pd.merge_asof(left, right, on="tick", by=by, direction="backward")
    out[back["_pos"].to_numpy()] = back["opinion"].to_numpy(np.float64)
    missing = np.isnan(out)
    if missing.any():
        rest = left[missing[left["_pos"].to_numpy()]]
        fwd = pd.merge_asof(rest, right, on="tick", by=by, direction="forward")
        out[fwd["_pos"].to_numpy()] = fwd["opinion"].to_numpy(np.float64)
    return out


def _exposures(
    impressions: pd.DataFrame,
    stance: ArrayLike,
    opinions: ArrayLike | pd.DataFrame,
) -> tuple[FloatArray, FloatArray]:
    """(user opinion, item stance) of every impression with both known."""
    _require(impressions, ("user", "item"), "impressions")
    st = _per_item(stance, "stance", np.float64)
    item = _ints(impressions, "item", "impressions")
    _index_in(item, st.shape[0], "impressions", "item")
    if isinstance(opinions, pd.DataFrame):
        _require(impressions, ("tick", "user", "item"), "impressions")
        x = _opinion_at(impressions, opinions)
    else:
        per_user = np.asarray(opinions, dtype=np.float64)
        if per_user.ndim != 1:
            raise ValueError(
                "opinions: expected a 1-D array of one opinion per user or an opinions "
                f"DataFrame (tick, user, opinion), got shape {per_user.shape}"
            )
        user = _ints(impressions, "user", "impressions")
        _index_in(user, per_user.shape[0], "impressions", "user")
        x = per_user[user]
    s = st[item]
    keep = np.isfinite(x) & np.isfinite(s)
    return x[keep], s[keep]


def exposure_homophily(
    impressions: pd.DataFrame, stance: ArrayLike, opinions: ArrayLike | pd.DataFrame
) -> float:
    """Exposure homophily = mean over impressions of |x_u − s_i|, the distance between the
    user's opinion and the shown item's stance (0: the feed only shows agreeing items; 1 for
    independent uniform opinions and stances on [−1, 1] is 2/3).

    ``opinions`` is one opinion per user (a snapshot), or an ``opinions`` table
    (``tick, user, opinion``): then each impression uses its user's latest snapshot at or before
    its tick, else the earliest one; impressions of users without a snapshot are skipped. Every
    impression passed counts: filter ``source == "rec"`` first for the recommender's part.
    NaN without impressions."""
    return _homophily_of(*_exposures(impressions, stance, opinions))


def _homophily_of(x: FloatArray, s: FloatArray) -> float:
    keep = np.isfinite(x) & np.isfinite(s)
    return float(np.mean(np.abs(x[keep] - s[keep]))) if keep.any() else float("nan")


def _cross_cutting_of(x: FloatArray, s: FloatArray) -> float:
    sx, ss = np.sign(x), np.sign(s)
    keep = (sx != 0) & (ss != 0) & np.isfinite(x) & np.isfinite(s)
    return float(np.mean(sx[keep] != ss[keep])) if keep.any() else float("nan")


def cross_cutting_share(
    impressions: pd.DataFrame, stance: ArrayLike, opinions: ArrayLike | pd.DataFrame
) -> float:
    """Cross-cutting share (Bakshy, Messing, Adamic 2015) = fraction of impressions with
    sign(s_i) ≠ sign(x_u), the item's stance against its user's opinion, over impressions where
    both are non-zero (a neutral item or user is neither agreeing nor cross-cutting: skipped).
    ``opinions`` as in :func:`exposure_homophily`. NaN when nothing is left."""
    return _cross_cutting_of(*_exposures(impressions, stance, opinions))


# --------------------------------------------------------------------------- homophily


def assortativity(graph: GraphLike, values: ArrayLike) -> float:
    """Newman's scalar assortativity over the directed follow edges i → j: the Pearson
    correlation r = cov(v_i, v_j) / (σ_src σ_dst) of the source's and the target's value over
    all edges (as ``networkx.numeric_assortativity_coefficient``). NaN with fewer than two
    edges or no spread."""
    g = _as_graph(graph)
    v = _per_user(values, g.n_users, "values")
    src, dst = g.edges()
    return _correlation(v[src], v[dst], "pearson")


def attribute_assortativity(graph: GraphLike, labels: ArrayLike) -> float:
    """Newman's categorical assortativity over the directed follow edges:
    r = (Σ_k e_kk − Σ_k a_k b_k) / (1 − Σ_k a_k b_k), e_kl the share of edges from a user of
    label k to a user of label l, a_k = Σ_l e_kl, b_k = Σ_l e_lk (as
    ``networkx.attribute_assortativity_coefficient``). 1: edges only within labels; NaN without
    edges or when every edge joins one label."""
    g = _as_graph(graph)
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != g.n_users:
        raise ValueError(
            f"labels: expected a 1-D array of one label per user ({g.n_users}), got shape "
            f"{arr.shape}"
        )
    codes, uniques = pd.factorize(arr)
    if (codes < 0).any():
        raise ValueError("labels: expected a label for every user, found missing values")
    src, dst = g.edges()
    m = src.shape[0]
    if m == 0:
        return float("nan")
    a = np.bincount(codes[src], minlength=len(uniques)) / m
    b = np.bincount(codes[dst], minlength=len(uniques)) / m
    expected = float(a @ b)
    same = float(np.mean(codes[src] == codes[dst]))
    if 1.0 - expected <= 1e-12:
        return float("nan")
    return (same - expected) / (1.0 - expected)


# --------------------------------------------------------------------------- filter bubbles


def _topic_of(impressions: pd.DataFrame, topic: ArrayLike, n_topics: int) -> IntArray:
    if isinstance(n_topics, bool) or not isinstance(n_topics, int | np.integer) or n_topics < 2:
        raise ValueError(f"n_topics: expected an integer ≥ 2, got {n_topics!r}")
    tp = _per_item(topic, "topic", np.int64)
    item = _ints(impressions, "item", "impressions")
    _index_in(item, tp.shape[0], "impressions", "item")
    t = tp[item]
    _index_in(t, int(n_topics), "topic", "topic")
    return t


def _check_window(window: int | None) -> None:
    if window is not None and (
        isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1
    ):
        raise ValueError(f"window: expected a positive number of ticks or None, got {window!r}")


def _groups(keys: pd.DataFrame) -> tuple[IntArray, pd.DataFrame]:
    """Group id of every row (groups in sorted key order) and the key of every group."""
    grouped = keys.groupby(list(keys.columns), sort=True, observed=True)
    gid = np.asarray(grouped.ngroup().to_numpy(), dtype=np.int64)
    first = keys.iloc[np.unique(gid, return_index=True)[1]].reset_index(drop=True)
    return gid, first


def topic_entropy(
    impressions: pd.DataFrame,
    topic: ArrayLike,
    n_topics: int,
    *,
    by: str = "user",
    window: int | None = None,
    correction: Literal["none", "miller-madow"] = "none",
) -> pd.Series | pd.DataFrame:
    """Normalized topic entropy of what each ``by`` group (default: each user) was shown:
    H_u / log K with H_u = −Σ_t p_ut log p_ut, p_ut the share of u's impressions of topic t and
    K = ``n_topics`` (0: one topic only — a filter bubble; 1: every topic equally).

    The plug-in H_u is biased low for short histories (its expectation falls short of the true
    entropy by about (K − 1) / (2N)). ``correction="miller-madow"`` adds the Miller–Madow term:
    H_u + (K_u − 1) / (2 N_u), K_u the number of topics u was shown at least once and N_u u's
    impressions (in the window), then divides by log K and clips to [0, 1] (the corrected value
    can exceed log K for a near-uniform short history). Use it to compare groups shown
    different numbers of items.

    Without ``window``: a Series indexed by the ``by`` values. With ``window`` = w ticks: one
    row per (group, window) with exposure, window = ⌊tick / w⌋, as a DataFrame with columns
    ``by, window, topic_entropy`` (its drift over windows shows a bubble closing). Every
    impression passed counts: filter ``source == "rec"`` first for the recommender's part."""
    if correction not in ("none", "miller-madow"):
        raise ValueError(f"correction: expected 'none' or 'miller-madow', got {correction!r}")
    _check_window(window)
    need = ("item", by) if window is None else ("item", "tick", by)
    _require(impressions, need, "impressions")
    t = _topic_of(impressions, topic, n_topics)
    keys = pd.DataFrame({by: impressions[by].to_numpy()})
    if window is not None:
        keys["window"] = _ints(impressions, "tick", "impressions") // int(window)
    if keys.empty:
        if window is None:
            return pd.Series(
                [], dtype=np.float64, name="topic_entropy", index=pd.Index([], name=by)
            )
        return keys.assign(topic_entropy=np.zeros(0, np.float64))
    gid, first = _groups(keys)
    cell, count = np.unique(gid * int(n_topics) + t, return_counts=True)
    group = cell // int(n_topics)
    c = count.astype(np.float64)
    total = np.bincount(group, weights=c)
    plogp = np.bincount(group, weights=c * np.log(c))
    nats = np.log(total) - plogp / total
    if correction == "miller-madow":
        observed = np.bincount(group).astype(np.float64)  # topics seen at least once
        nats = nats + (observed - 1.0) / (2.0 * total)
    entropy = np.clip(nats / math.log(int(n_topics)), 0.0, 1.0)  # rounding; MM may exceed 1
    if window is None:
        return pd.Series(entropy, index=pd.Index(first[by], name=by), name="topic_entropy")
    return first.assign(topic_entropy=entropy)


def homogenization(
    impressions: pd.DataFrame, topic: ArrayLike, n_topics: int, window: int | None = None
) -> pd.Series:
    """Homogenization per time window (⌊tick / window⌋; one window 0 when ``window`` is None):
    the mean over pairs of distinct users i ≠ j exposed in the window of cos(p_i, p_j), p_i
    user i's topic-exposure counts there. With unit rows u_i = p_i / ‖p_i‖ and n users,
    mean_{i≠j} cos = (‖Σ_i u_i‖² − n) / (n(n − 1)) — O(n), no pairs built. 1: everyone sees the
    same topic mix. NaN for a window with fewer than two users; indexed by window."""
    _check_window(window)
    need = ("user", "item") if window is None else ("user", "item", "tick")
    _require(impressions, need, "impressions")
    t = _topic_of(impressions, topic, n_topics)
    k = int(n_topics)
    user = _ints(impressions, "user", "impressions")
    win = (
        np.zeros(user.shape[0], np.int64)
        if window is None
        else _ints(impressions, "tick", "impressions") // int(window)
    )
    if user.size == 0:
        return pd.Series(
            [], dtype=np.float64, name="homogenization", index=pd.Index([], name="window")
        )
    gid, first = _groups(pd.DataFrame({"window": win, "user": user}))
    cell, count = np.unique(gid * k + t, return_counts=True)
    group, topic_of_cell = cell // k, cell % k
    c = count.astype(np.float64)
    norm = np.sqrt(np.bincount(group, weights=c * c))
    unit = c / norm[group]
    windows, win_of_group = np.unique(first["window"].to_numpy(np.int64), return_inverse=True)
    summed = np.bincount(
        win_of_group[group] * k + topic_of_cell, weights=unit, minlength=windows.size * k
    ).reshape(windows.size, k)
    n = np.bincount(win_of_group, minlength=windows.size).astype(np.float64)
    pairs = n * (n - 1.0)
    value = np.divide(
        (summed**2).sum(axis=1) - n, pairs, out=np.full(windows.size, np.nan), where=n >= 2
    )
    return pd.Series(value, index=pd.Index(windows, name="window"), name="homogenization")


# --------------------------------------------------------------------------- herding


def _wilson(successes: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval (lower, upper) of a proportion; NaN for n = 0."""
    if n == 0:
        return float("nan"), float("nan")
    p, z2 = successes / n, _Z95**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z95 / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return centre - half, centre + half


def _welch(a: FloatArray, b: FloatArray) -> tuple[float, float]:
    """Mean difference a − b and its 95% Welch t half-width (NaN if either has < 2 values)."""
    if a.size == 0 or b.size == 0:
        return float("nan"), float("nan")
    diff = float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        return diff, float("nan")
    va, vb = float(a.var(ddof=1)) / a.size, float(b.var(ddof=1)) / b.size
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, 0.0
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    return diff, t_quantile(max(1, int(df))) * se


def _treatments(treatment: Mapping[int, str] | pd.Series | pd.DataFrame) -> pd.Series:
    if isinstance(treatment, pd.DataFrame):
        _require(treatment, ("item", "treatment"), "treatment")
        series = pd.Series(
            treatment["treatment"].to_numpy(), index=_ints(treatment, "item", "treatment")
        )
    elif isinstance(treatment, pd.Series):
        series = treatment
    elif isinstance(treatment, Mapping):
        series = pd.Series(dict(treatment), dtype=object)
    else:
        raise ValueError(
            "treatment: expected a mapping item → 'up' | 'down' | 'control' (dict, Series or "
            f"DataFrame with item, treatment), got {type(treatment).__name__}"
        )
    labels = series.astype(object).astype(str)
    bad = sorted(set(labels) - set(_SEED_VOTE))
    if bad:
        raise ValueError(f"treatment: expected labels in {list(_SEED_VOTE)}, got {bad[:5]}")
    try:
        index = np.asarray(series.index, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise ValueError("treatment: expected integer item ids as keys") from exc
    if pd.Index(index).has_duplicates:
        raise ValueError("treatment: expected one treatment per item")
    return pd.Series(labels.to_numpy(), index=pd.Index(index, name="item"))


def herding(
    votes: pd.DataFrame, treatment: Mapping[int, str] | pd.Series | pd.DataFrame
) -> pd.DataFrame:
    """Herding in the Muchnik–Aral–Taylor (2013) design: items were seeded with one up vote
    (``up``), one down vote (``down``) or none (``control``); ``votes`` holds the later votes
    (``item, tick, vote`` with vote ±1, the seeded vote excluded). Votes on items without a
    treatment are ignored.

    One row per treatment present (index ``treatment``, order up, down, control):

    - ``n_items``; ``n_voted`` = items with at least one later vote;
    - ``p_first_up`` = P(first later vote is +1) over voted items (the earliest tick, ties in row
      order), with a 95% Wilson interval ``p_first_up_lo``, ``p_first_up_hi``;
    - ``mean_score`` = mean over items of the final score seed + Σ later votes (seed +1, −1,
      0), with a 95% Student-t interval ``mean_score_lo``, ``mean_score_hi``;
    - ``score_diff`` = mean_score − mean_score(control) with a 95% Welch t interval
      (``score_diff_lo``, ``score_diff_hi``) and ``p_first_up_diff`` = p_first_up −
      p_first_up(control) with Newcombe's hybrid Wilson interval; NaN on the control row and
      without a control group.
    """
    _require(votes, ("item", "tick", "vote"), "votes")
    treat = _treatments(treatment)
    columns = [
        "n_items",
        "n_voted",
        "p_first_up",
        "p_first_up_lo",
        "p_first_up_hi",
        "mean_score",
        "mean_score_lo",
        "mean_score_hi",
        "score_diff",
        "score_diff_lo",
        "score_diff_hi",
        "p_first_up_diff",
        "p_first_up_diff_lo",
        "p_first_up_diff_hi",
    ]
    item = _ints(votes, "item", "votes")
    vote = _ints(votes, "vote", "votes")
    tick = _ints(votes, "tick", "votes")
    if ((vote != 1) & (vote != -1)).any():
        raise ValueError("votes.vote: expected +1 or −1 on every row")
    keep = np.isin(item, treat.index.to_numpy())
    item, vote, tick = item[keep], vote[keep], tick[keep]
    order = np.lexsort((np.arange(item.size), tick, item))
    item, vote = item[order], vote[order]
    starts = np.flatnonzero(np.r_[True, item[1:] != item[:-1]]) if item.size else np.zeros(0, int)
    voted_items = item[starts]
    later = pd.Series(
        np.add.reduceat(vote, starts) if item.size else np.zeros(0, np.int64), index=voted_items
    )
    first_up = pd.Series((vote[starts] == 1).astype(np.float64), index=voted_items)

    seeds = treat.map(_SEED_VOTE).astype(np.int64)
    score = (seeds + later.reindex(treat.index, fill_value=0)).to_numpy(np.float64)
    up = first_up.reindex(treat.index).to_numpy(np.float64)  # NaN: no later vote
    labels = treat.to_numpy()

    stats: dict[str, dict[str, float]] = {}
    for label in ("up", "down", "control"):
        mask = labels == label
        if not mask.any():
            continue
        firsts = up[mask][~np.isnan(up[mask])]
        n_voted, hits = int(firsts.size), int(firsts.sum())
        p = hits / n_voted if n_voted else float("nan")
        lo, hi = _wilson(hits, n_voted)
        mean, half = t_interval(score[mask])
        stats[label] = {
            "n_items": float(mask.sum()),
            "n_voted": float(n_voted),
            "p_first_up": p,
            "p_first_up_lo": lo,
            "p_first_up_hi": hi,
            "mean_score": mean,
            "mean_score_lo": mean - half,
            "mean_score_hi": mean + half,
        }
    nan = float("nan")
    control = stats.get("control")
    for label, row in stats.items():
        row.update(dict.fromkeys(columns[8:], nan))
        if control is None or label == "control":
            continue
        diff, half = _welch(score[labels == label], score[labels == "control"])
        row.update(score_diff=diff, score_diff_lo=diff - half, score_diff_hi=diff + half)
        p1, p2 = row["p_first_up"], control["p_first_up"]
        d = p1 - p2
        row["p_first_up_diff"] = d
        row["p_first_up_diff_lo"] = d - math.sqrt(
            (p1 - row["p_first_up_lo"]) ** 2 + (control["p_first_up_hi"] - p2) ** 2
        )
        row["p_first_up_diff_hi"] = d + math.sqrt(
            (row["p_first_up_hi"] - p1) ** 2 + (p2 - control["p_first_up_lo"]) ** 2
        )
    table = pd.DataFrame.from_dict(stats, orient="index", columns=columns)
    table.index.name = "treatment"
    return table.astype({"n_items": np.int64, "n_voted": np.int64})


# --------------------------------------------------------------------------- run summary


_Frames = tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]


def _read_frames(source: Any, with_world: bool) -> _Frames:
    """(social, impressions, opinions) of a run folder, a Run or a mapping of frames."""
    if isinstance(source, Mapping):
        social = source.get("social")
        if not isinstance(social, pd.DataFrame):
            raise ValueError("run_dir_or_frames: a mapping of frames needs a 'social' DataFrame")
        return social, source.get("impressions"), source.get("opinions")
    from recoworld.trajectory.reader import Run, read_table

    path = source.path if isinstance(source, Run) else source
    if not isinstance(path, str | os.PathLike):
        raise ValueError(
            "run_dir_or_frames: expected a run folder, a Run or a mapping of DataFrames, got "
            f"{type(source).__name__}"
        )
    social = read_table(path, "social")
    if not with_world:
        return social, None, None
    impressions = read_table(path, "impressions", ["run", "tick", "user", "item"])
    try:
        opinions: pd.DataFrame | None = read_table(path, "opinions")
    except TrajectoryError:  # a run (or a recoworld) from before the opinions table
        opinions = None
    return social, impressions, opinions


def social_summary(run_dir_or_frames: Any, world: World | None = None) -> dict[str, float]:
    """Namespaced social figures of a run: a run folder (or :class:`~recoworld.trajectory.Run`)
    read with :mod:`recoworld.trajectory.reader`, or a mapping with a ``social`` DataFrame and,
    for the world figures, ``impressions`` and optionally ``opinions``.

    Always: ``social/cascades``, ``social/cascade_size_mean``, ``social/cascade_size_max``,
    ``social/cascade_depth_max`` and ``social/structural_virality_mean`` (over cascades of at
    least two adoptions; a single adoption has no structure). With ``world``: opinions x = the
    last ``opinions`` snapshot of each user, else ``world.population.opinion``, give
    ``social/polarization_variance``, ``social/bimodality``, ``social/extremity`` and
    ``social/echo_chamber`` (Pearson, over ``world.graph``); the impressions give
    ``social/exposure_homophily`` and ``social/cross_cutting_share`` against
    ``world.catalog.stance``, each impression with its user's opinion at its tick when there are
    snapshots (else x).
    """
    social, impressions, opinions = _read_frames(run_dir_or_frames, world is not None)
    cascades = diffusion_trees(social)
    nan = float("nan")
    sizes = cascades["size"].to_numpy(np.float64)
    multi = cascades["structural_virality"].to_numpy(np.float64)[sizes > 1]
    out: dict[str, float] = {
        "social/cascades": float(len(cascades)),
        "social/cascade_size_mean": float(sizes.mean()) if sizes.size else nan,
        "social/cascade_size_max": float(sizes.max()) if sizes.size else nan,
        "social/cascade_depth_max": float(cascades["depth"].max()) if sizes.size else nan,
        "social/structural_virality_mean": float(multi.mean()) if multi.size else nan,
    }
    if world is None:
        return out
    x = np.asarray(world.population.opinion, dtype=np.float64).copy()
    if opinions is not None and not opinions.empty:
        _require(opinions, ("tick", "user", "opinion"), "opinions")
        last = opinions.sort_values("tick", kind="stable").drop_duplicates("user", keep="last")
        users = _ints(last, "user", "opinions")
        _index_in(users, x.shape[0], "opinions", "user")
        x[users] = pd.to_numeric(last["opinion"]).to_numpy(np.float64)
    pol = polarization(x)
    out["social/polarization_variance"] = pol["variance"]
    out["social/bimodality"] = pol["bimodality"]
    out["social/extremity"] = pol["extremity"]
    out["social/echo_chamber"] = echo_chamber_correlation(world.graph, x)
    if impressions is None or impressions.empty:
        out["social/exposure_homophily"] = nan
        out["social/cross_cutting_share"] = nan
        return out
    _require(impressions, ("user", "item"), "impressions")
    per_impression = x[_ints(impressions, "user", "impressions")]
    if opinions is not None and not opinions.empty and "tick" in impressions.columns:
        at = _opinion_at(impressions, opinions)
        per_impression = np.where(np.isnan(at), per_impression, at)
    stance = _per_item(world.catalog.stance, "world.catalog.stance", np.float64)
    item = _ints(impressions, "item", "impressions")
    _index_in(item, stance.shape[0], "impressions", "item")
    out["social/exposure_homophily"] = _homophily_of(per_impression, stance[item])
    out["social/cross_cutting_share"] = _cross_cutting_of(per_impression, stance[item])
    return out
