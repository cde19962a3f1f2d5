"""The recommender protocol: what the schedule gives a policy and what it expects back.

A policy is any object with ``name``, ``recommend(request) -> Slates`` and
``update(feedback) -> None`` — no inheritance needed (a :class:`typing.Protocol`). A policy that
sets ``privileged = True`` also receives the users' hidden state (:class:`OracleView`); such a
policy is an upper bound for analysis, never a deployable recommender. A policy that sets
``wants_feedback = False`` is not sent ``update`` calls (the schedule then skips building them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from recoworld import _kernels as kernels
from recoworld.errors import PolicyError

if TYPE_CHECKING:
    from recoworld.world.catalog import Catalog
    from recoworld.world.graph import SocialGraph

__all__ = [
    "CandidateWindows",
    "Feedback",
    "OracleView",
    "RecommendRequest",
    "Recommender",
    "Slates",
    "candidate_columns",
    "slates_from_item_scores",
    "slates_from_scores",
    "top_k",
    "validate_slates",
]


@dataclass(frozen=True, slots=True)
class OracleView:
    """Hidden state of the requesting users, for privileged policies only.

    ``taste`` ``[n, dim]``, ``boredom`` ``[n, n_topics]``, ``satisfaction`` ``[n]``, and the
    ground-truth intent of each user's standing instruction: ``intent_more`` / ``intent_less``
    topic indices (−1 none) and ``intent_fresh`` (it asked for nothing already seen).
    ``boredom_weight`` ``[n]`` and the user model's utility weights
    ``w_taste``, ``w_quality``, ``w_repeat`` let an oracle score items as the user will;
    ``opinion`` ``[n]`` and ``w_stance`` (confirmation bias) add how much the user likes content
    that agrees with it.
    """

    taste: NDArray[np.float32]
    boredom: NDArray[np.float32]
    boredom_weight: NDArray[np.float32]
    satisfaction: NDArray[np.float32]
    intent_more: NDArray[np.int16]
    intent_less: NDArray[np.int16]
    intent_fresh: NDArray[np.bool_]
    w_taste: float
    w_quality: float
    w_repeat: float
    opinion: NDArray[np.float32] | None = None
    w_stance: float = 0.0


@dataclass(frozen=True, slots=True)
class CandidateWindows:
    """Candidate pools as windows of one ring of item ids: row ``i`` is
    ``ring[starts[i] : starts[i] + width]``.

    The schedule draws its pools this way (windows of one permutation of the catalogue) and
    hands them to the request uncopied; :attr:`RecommendRequest.candidates` copies them into the
    ``[n, width]`` array on first read, and compiled scorers such as
    :func:`slates_from_item_scores` read the windows directly (no 400 MB array at a million
    users).
    """

    ring: NDArray[np.int32]
    starts: NDArray[np.int64]
    width: int

    @classmethod
    def of(cls, candidates: NDArray[np.int32]) -> CandidateWindows:
        """The windows of a ``[n, C]`` array: its rows, back to back."""
        arr = np.ascontiguousarray(candidates)
        n, width = arr.shape
        return cls(arr.reshape(-1), np.arange(n, dtype=np.int64) * width, int(width))

    def materialize(self) -> NDArray[np.int32]:
        windows = np.lib.stride_tricks.sliding_window_view(self.ring, self.width)
        return np.ascontiguousarray(windows[self.starts])


class RecommendRequest:
    """One page request for each of ``users`` (``n`` rows). Read-only.

    Attributes:
        tick: the current tick.
        users: user ids, ``[n]``.
        candidates: each user's candidate pool (item ids), ``[n, C]``, distinct per row (given
            as an array or as :class:`CandidateWindows`, copied out on first read);
            :attr:`candidate_windows` reads them without the copy.
        k: slate size to return.
        catalog: the catalogue (item features and public counters); read it, never write it.
        history: the items each user examined most recently, newest first, ``[n, M]`` (−1 empty).
        instructions: each user's latest reflective instruction text this session, or ``None``.
        instruction_age: pages served since that instruction (−1 when there is none).
        session_pages: pages already served in each user's current session, ``[n]``.
        rng: the policy's random stream (use it, and only it, for randomness).
        oracle: hidden state, only for ``privileged`` policies.
        graph: the platform's public follow graph (who follows whom; row ``u`` of its CSR
            arrays lists the users ``u`` follows), the world's own object, not a copy: read it,
            never write it. The schedule always passes the world's graph (without edges under
            ``graph.kind: none``); ``None`` when a hand-built request gives none.

    ``history`` and ``instructions`` may be given as zero-argument callables: they are then
    computed on first read (the schedule does this, so a policy that never reads them, such as
    an environment's agent, does not pay for them). The schedule seals its requests when the
    users respond: a lazy field not read by then raises :class:`PolicyError` if read later,
    since the world it would be read from has moved on.
    """

    __slots__ = (
        "_candidates",
        "_history",
        "_instructions",
        "catalog",
        "graph",
        "instruction_age",
        "k",
        "oracle",
        "rng",
        "session_pages",
        "tick",
        "users",
    )
    tick: int
    users: NDArray[np.int64]
    _candidates: NDArray[np.int32] | CandidateWindows | Callable[[], NoReturn]
    k: int
    catalog: Catalog
    instruction_age: NDArray[np.int32]
    session_pages: NDArray[np.int32]
    rng: np.random.Generator
    oracle: OracleView | None
    graph: SocialGraph | None
    _history: NDArray[np.int32] | Callable[[], NDArray[np.int32]]
    _instructions: tuple[str | None, ...] | Callable[[], Sequence[str | None]]

    def __init__(
        self,
        *,
        tick: int,
        users: NDArray[np.int64],
        candidates: NDArray[np.int32] | CandidateWindows,
        k: int,
        catalog: Catalog,
        history: NDArray[np.int32] | Callable[[], NDArray[np.int32]],
        instructions: Sequence[str | None] | Callable[[], Sequence[str | None]],
        instruction_age: NDArray[np.int32],
        session_pages: NDArray[np.int32],
        rng: np.random.Generator,
        oracle: OracleView | None = None,
        graph: SocialGraph | None = None,
    ) -> None:
        values = {
            "tick": tick,
            "users": users,
            "_candidates": candidates,
            "k": k,
            "catalog": catalog,
            "_history": history,
            "_instructions": instructions if callable(instructions) else tuple(instructions),
            "instruction_age": instruction_age,
            "session_pages": session_pages,
            "rng": rng,
            "oracle": oracle,
            "graph": graph,
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"RecommendRequest is read-only (cannot set {name!r})")

    def __repr__(self) -> str:
        return f"RecommendRequest(tick={self.tick}, n={self.n}, k={self.k})"

    @property
    def n(self) -> int:
        return int(self.users.shape[0])

    @property
    def candidates(self) -> NDArray[np.int32]:
        """``[n, C]`` item ids each user's slate is chosen from."""
        value = self._candidates
        if isinstance(value, CandidateWindows):
            value = value.materialize()
            object.__setattr__(self, "_candidates", value)
        elif callable(value):
            value()  # released: raises PolicyError
        assert isinstance(value, np.ndarray)
        return value

    @property
    def candidate_windows(self) -> CandidateWindows:
        """The candidate pools as :class:`CandidateWindows`, without copying them out."""
        value = self._candidates
        if isinstance(value, CandidateWindows):
            return value
        return CandidateWindows.of(self.candidates)

    def release_candidates(self) -> None:
        """Let the candidate pools go (the tick's largest array: 400 MB at a million users).

        :meth:`Simulation.step` calls this once its own policy has recommended; reading
        :attr:`candidates` afterwards raises :class:`PolicyError`. Faces that hand the request to
        an agent do not call it.
        """
        object.__setattr__(
            self, "_candidates", _sealed(self.tick, "candidates", "the policy recommended")
        )

    @property
    def history(self) -> NDArray[np.int32]:
        value = self._history
        if callable(value):
            value = value()
            object.__setattr__(self, "_history", value)
        return value

    @property
    def instructions(self) -> tuple[str | None, ...]:
        value = self._instructions
        if callable(value):
            value = tuple(value())
            object.__setattr__(self, "_instructions", value)
        return value

    def seal(self) -> None:
        """Make unread lazy fields unreadable (called by the schedule once users respond)."""
        for name in ("_history", "_instructions"):
            if callable(getattr(self, name)):
                object.__setattr__(self, name, _sealed(self.tick, name.lstrip("_")))


def _sealed(tick: int, name: str, when: str = "the users responded") -> Callable[[], NoReturn]:
    def fail() -> NoReturn:
        raise PolicyError(
            f"RecommendRequest.{name} of tick {tick} was read after {when}; "
            "read it while recommending (inside recommend()), or copy it then"
        )

    return fail


@dataclass(frozen=True, slots=True)
class Slates:
    """A policy's answer: ``items`` ``[n, k]`` (item ids, distinct per row), ``scores`` and
    ``propensities`` (probability that the policy puts that item at that rank; 1 for a
    deterministic policy), both float32 ``[n, k]``."""

    items: NDArray[np.int32]
    scores: NDArray[np.float32]
    propensities: NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Feedback:
    """What the platform observed this tick, one row per impression shown.

    ``users``, ``items``, ``ranks``, ``source`` (0 recommended, 1 in-network), ``examined``,
    ``clicked``, ``liked``, ``shared``, ``dwell``; and the instructions given this tick:
    ``instruction_users`` with their ``instruction_texts``; ``left_users`` who left.
    """

    tick: int
    users: NDArray[np.int64]
    items: NDArray[np.int32]
    ranks: NDArray[np.int16]
    source: NDArray[np.int8]
    examined: NDArray[np.bool_]
    clicked: NDArray[np.bool_]
    liked: NDArray[np.bool_]
    shared: NDArray[np.bool_]
    dwell: NDArray[np.float32]
    instruction_users: NDArray[np.int64]
    instruction_texts: tuple[str, ...]
    left_users: NDArray[np.int64]


@runtime_checkable
class Recommender(Protocol):
    """The recommender-policy protocol (see the module docstring)."""

    name: str

    def recommend(self, request: RecommendRequest) -> Slates: ...

    def update(self, feedback: Feedback) -> None: ...


def candidate_columns(
    candidates: NDArray[np.integer], items: NDArray[np.integer]
) -> NDArray[np.int64]:
    """Column of each ``items[r, j]`` in ``candidates[r]`` (−1 when absent), vectorized: one
    sort of the rows and one binary search, no ``[n, k, C]`` comparison."""
    n = candidates.shape[0]
    if n == 0 or candidates.shape[1] == 0:
        return np.full(items.shape, -1, np.int64)
    order = np.argsort(candidates, axis=1)
    rows = np.arange(n, dtype=np.int64)[:, None] << np.int64(32)
    pool = (rows | np.take_along_axis(candidates, order, axis=1).astype(np.int64)).ravel()
    wanted = (rows | items.astype(np.int64)).ravel()
    pos = np.minimum(np.searchsorted(pool, wanted), pool.size - 1)
    found = pool[pos] == wanted
    cols = np.where(found, order.ravel()[pos], -1)
    return cols.reshape(items.shape).astype(np.int64)


def top_k(scores: NDArray[np.floating], k: int) -> NDArray[np.intp]:
    """Column indices of the ``k`` best scores per row, best first; ties keep column order (NaN
    ranks last): the first ``k`` columns of ``np.argsort(-scores, axis=1, kind="stable")``,
    selected in one compiled pass per row instead of sorting every row."""
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.dtype not in (np.float32, np.float64):
        return np.argsort(-scores, axis=1, kind="stable")[:, :k]
    n, width = scores.shape
    cols = np.empty((n, max(0, min(k, width))), np.intp)
    kernels.by_rows(lambda rows: kernels.top_k_rows(scores[rows], cols[rows]), n)
    return cols


def _slates(
    request: RecommendRequest,
    cols: NDArray[np.intp],
    items: NDArray[np.int32],
    scores: NDArray[np.float32],
    propensities: NDArray[np.floating] | float,
) -> Slates:
    if np.isscalar(propensities):
        prop = np.full(items.shape, propensities, np.float32)
    else:
        prop = np.take_along_axis(np.asarray(propensities), cols, axis=1).astype(np.float32)
    return Slates(items=items, scores=scores, propensities=prop)


def slates_from_scores(
    request: RecommendRequest,
    scores: NDArray[np.floating],
    propensities: NDArray[np.floating] | float = 1.0,
) -> Slates:
    """The ``k`` best-scored candidates per user, best first, as :class:`Slates`.

    ``scores`` is ``[n, C]`` over ``request.candidates``; ``propensities`` is a number for every
    shown item (1.0 for a deterministic policy) or ``[n, C]`` per candidate.
    """
    cols = top_k(scores, request.k)
    items = np.take_along_axis(request.candidates, cols, axis=1)
    best = np.take_along_axis(scores, cols, axis=1).astype(np.float32)
    return _slates(request, cols, items, best, propensities)


def slates_from_item_scores(
    request: RecommendRequest,
    item_scores: NDArray[np.floating],
    propensities: NDArray[np.floating] | float = 1.0,
) -> Slates:
    """:func:`slates_from_scores` for a score per catalogue item (``item_scores[i]`` for item
    ``i``, the same for every user): the same slates as
    ``slates_from_scores(request, item_scores[request.candidates])``, without building the
    ``[n, C]`` score matrix."""
    table = np.asarray(item_scores)
    if table.dtype not in (np.float32, np.float64):
        return slates_from_scores(request, table[request.candidates], propensities)
    pools = request.candidate_windows
    n, width = pools.starts.shape[0], pools.width
    k = max(0, min(request.k, width))
    cols = np.empty((n, k), np.intp)
    items: NDArray[np.int32] = np.empty((n, k), pools.ring.dtype)
    best = np.empty((n, k), np.float32)

    def select(rows: slice) -> None:
        kernels.top_k_gather(
            table, pools.ring, pools.starts[rows], width, cols[rows], items[rows], best[rows]
        )

    kernels.by_rows(select, n)
    return _slates(request, cols, items, best, propensities)


def validate_slates(slates: Slates, request: RecommendRequest, policy_name: str) -> Slates:
    """Check a policy's slates; raise :class:`PolicyError` saying what is wrong."""
    n, k, n_items = request.n, request.k, request.catalog.n_items
    items = np.asarray(slates.items)
    if items.shape != (n, k):
        raise PolicyError(
            f"policy {policy_name!r} returned slates of shape {items.shape}; expected ({n}, {k}) "
            "(one row of k item ids per requesting user)"
        )
    if not np.issubdtype(items.dtype, np.integer):
        raise PolicyError(f"policy {policy_name!r} returned item ids of dtype {items.dtype}")
    if n and (items.min() < 0 or items.max() >= n_items):
        raise PolicyError(
            f"policy {policy_name!r} returned item ids outside 0..{n_items - 1} "
            f"(min {items.min()}, max {items.max()})"
        )
    if k > 1 and n:
        row = kernels.first_repeat_row(np.ascontiguousarray(items))
        if row >= 0:
            raise PolicyError(
                f"policy {policy_name!r} repeated an item within a slate (user "
                f"{int(request.users[row])}); slates must hold k distinct items"
            )
    for name in ("scores", "propensities"):
        arr = np.asarray(getattr(slates, name))
        if arr.shape != (n, k):
            raise PolicyError(
                f"policy {policy_name!r} returned {name} of shape {arr.shape}; expected ({n}, {k})"
            )
    prop = np.asarray(slates.propensities)
    if n and not ((prop > 0) & (prop <= 1)).all():
        raise PolicyError(f"policy {policy_name!r} returned propensities outside (0, 1]")
    return Slates(
        items=items.astype(np.int32, copy=False),
        scores=np.asarray(slates.scores, dtype=np.float32),
        propensities=prop.astype(np.float32, copy=False),
    )
