"""Compiled inner loops of the numeric world (numba, compiled on first use and cached on disk).

The schedule stays columnar — numpy arrays over users and items — but a few of its steps are
per-user loops over a handful of positions (a page, a memory ring, an inbox) that numpy can only
express through ``[n, L, M]`` broadcasts or a Python loop over positions. These kernels run those
loops once per user, in compiled code, with no temporaries. Every kernel is deterministic: random
draws are made by the caller (numpy ``Generator``) and passed in.

Conventions: item ids are ``int32`` with ``-1`` for an empty slot; "rows" map each row of a batch
to a row of a population-wide table, so callers need not gather the table first.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar, cast

import numba as nb
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "RESPOND_PARAMS",
    "apply_page",
    "by_rows",
    "candidate_features",
    "click_measures",
    "dedupe_slates",
    "first_repeat_row",
    "history_shares",
    "in_background",
    "newest_first",
    "page_summary",
    "remember_page",
    "respond_page",
    "rows_count",
    "take_inbox",
    "threads",
]

_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")

#: Below this many rows a kernel runs on the calling thread alone.
_MIN_ROWS_PER_THREAD = 2048
_pool: ThreadPoolExecutor | None = None
_background: ThreadPoolExecutor | None = None


def threads() -> int:
    """Threads the row-parallel kernels use: ``RECOWORLD_THREADS`` if set, else the CPUs this
    process may run on (at most 8)."""
    value = os.environ.get("RECOWORLD_THREADS")
    if value:
        return max(1, int(value))
    return max(1, min(8, len(os.sched_getaffinity(0))))


def _forget_pool() -> None:
    global _pool, _background
    _pool = _background = None  # a forked child has none of its parent's threads


os.register_at_fork(after_in_child=_forget_pool)


def by_rows(kernel: Callable[[slice], object], n: int) -> None:
    """Run ``kernel(rows)`` over contiguous row blocks of ``0..n`` on up to :func:`threads`
    threads (the kernels release the GIL). Blocks write disjoint rows, so the result is the same
    whatever the thread count: determinism does not depend on the machine."""
    global _pool
    parts = min(threads(), max(1, n // _MIN_ROWS_PER_THREAD))
    if parts == 1:
        kernel(slice(0, n))
        return
    bounds = [n * k // parts for k in range(parts + 1)]
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=parts - 1, thread_name_prefix="recoworld")
    futures = [_pool.submit(kernel, slice(bounds[k], bounds[k + 1])) for k in range(1, parts)]
    kernel(slice(bounds[0], bounds[1]))
    for future in futures:
        future.result()


def in_background(fn: Callable[[], _T]) -> Future[_T]:
    """Run ``fn()`` on one background thread, in submission order, away from the row-parallel
    kernels' threads (work that releases the GIL, such as numpy's bulk random draws, then uses
    the core the main thread leaves idle). ``fn`` must own whatever it mutates."""
    global _background
    if _background is None:
        _background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recoworld-bg")
    return _background.submit(fn)


def _jit(fn: _F) -> _F:
    """Compile ``fn`` on first call; cache the machine code beside the module."""
    return cast(_F, nb.njit(cache=True, nogil=True, error_model="numpy")(fn))


def _inline(fn: _F) -> _F:
    """A helper of the kernels, inlined into its callers at numba IR level: a plain call
    passing arrays costs reference counting per call, which doubled the per-candidate loops."""
    return cast(_F, nb.njit(inline="always", nogil=True, error_model="numpy")(fn))


@_inline
def _in_row(table: NDArray[np.int32], row: int, value: int) -> bool:
    # No early exit: the branch-free loop vectorizes, and a hit is the rare case.
    found = False
    for m in range(table.shape[1]):
        found |= table[row, m] == value
    return found


@_inline
def _dot(a: NDArray[np.float32], i: int, b: NDArray[np.float32], j: int) -> np.float32:
    """``a[i] · b[j]``, summed in float32 in index order (the same on every machine)."""
    s = np.float32(0.0)
    for d in range(a.shape[1]):
        s += a[i, d] * b[j, d]
    return s


@_jit
def rows_count(
    query: NDArray[np.int32], table: NDArray[np.int32], rows: NDArray[np.int64]
) -> NDArray[np.int32]:
    """``out[i, j]``: how often ``query[i, j]`` occurs in ``table[rows[i]]`` (0 for ``-1``)."""
    n, width = query.shape
    out = np.zeros((n, width), np.int32)
    for i in range(n):
        row = rows[i]
        for j in range(width):
            q = query[i, j]
            if q >= 0:
                count = 0
                for m in range(table.shape[1]):
                    count += table[row, m] == q
                out[i, j] = count
    return out


@_jit
def candidate_features(
    out: NDArray[np.float32],
    out_rows: NDArray[np.int64],
    candidates: NDArray[np.int32],
    users: NDArray[np.int64],
    memory: NDArray[np.int32],
    topic: NDArray[np.int16],
    popularity: NDArray[np.float32],
    quality: NDArray[np.float32],
    embedding: NDArray[np.float32],
    unit: NDArray[np.float32],
) -> None:
    """Write into ``out[out_rows[i]]`` (``[C, T + 4]``; every element is written) the features
    of ``candidates[i]``: topic one-hot, popularity, quality, seen (in ``memory[users[i]]``), and
    the cosine of its embedding with ``unit[i]``, clipped to [−1, 1]."""
    n, n_cand = candidates.shape
    n_topics = out.shape[2] - 4
    for i in range(n):
        u, o = users[i], out_rows[i]
        for c in range(n_cand):
            item = candidates[i, c]
            out[o, c, :n_topics] = 0.0
            out[o, c, topic[item]] = 1.0
            out[o, c, n_topics] = popularity[item]
            out[o, c, n_topics + 1] = quality[item]
            out[o, c, n_topics + 2] = 1.0 if _in_row(memory, u, item) else 0.0
            dot = float(_dot(embedding, item, unit, i))
            out[o, c, n_topics + 3] = min(max(dot, -1.0), 1.0)


@_jit
def history_shares(
    out: NDArray[np.float32],
    memory: NDArray[np.int32],
    reaction: NDArray[np.int8],
    topic: NDArray[np.int16],
) -> None:
    """Write into ``out`` (``[n, 2T]``) per user the topic shares of its remembered items, then
    of the clicked ones (reaction >= 1), both over the number of remembered items."""
    n, size = memory.shape
    n_topics = out.shape[1] // 2
    for i in range(n):
        out[i, :] = 0.0
        count = 0
        for m in range(size):
            item = memory[i, m]
            if item < 0:
                continue
            count += 1
            t = topic[item]
            out[i, t] += 1.0
            if reaction[i, m] >= 1:
                out[i, n_topics + t] += 1.0
        if count > 0:
            for t in range(2 * n_topics):
                out[i, t] /= count


@_jit
def take_inbox(
    inbox_items: NDArray[np.int32],
    inbox_from: NDArray[np.int32],
    inbox_ptr: NDArray[np.int32],
    memory: NDArray[np.int32],
    users: NDArray[np.int64],
    n_max: int,
    exclude: NDArray[np.int32],
) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """See :func:`recoworld.feed.take_inbox` (``exclude`` is ``[n, E]``, ``E`` may be 0)."""
    n = users.shape[0]
    size = inbox_items.shape[1]
    out_items = np.full((n, n_max), -1, np.int32)
    out_from = np.full((n, n_max), -1, np.int32)
    newer = np.empty(size, np.int32)
    for i in range(n):
        u = users[i]
        taken = 0
        for s in range(size):
            slot = (inbox_ptr[u] - 1 - s) % size  # newest first
            item = inbox_items[u, slot]
            newer[s] = item
            if item < 0:
                continue
            stale = _in_row(memory, u, item)
            if not stale:
                for e in range(s):
                    if newer[e] == item:  # a newer copy of the same item
                        stale = True
                        break
            if not stale:
                for e in range(exclude.shape[1]):
                    if exclude[i, e] == item:
                        stale = True
                        break
            if stale or taken < n_max:
                if not stale:
                    out_items[i, taken] = item
                    out_from[i, taken] = inbox_from[u, slot]
                    taken += 1
                inbox_items[u, slot] = -1
                inbox_from[u, slot] = -1
    return out_items, out_from


@_inline
def _remember(
    ring_items: NDArray[np.int32],
    ring_reaction: NDArray[np.int8],
    ring_ptr: NDArray[np.int32],
    user: int,
    item: int,
    reaction: int,
) -> None:
    """Append ``(item, reaction)`` to ``user``'s memory ring, overwriting its oldest entry."""
    slot = ring_ptr[user] % ring_items.shape[1]
    ring_items[user, slot] = item
    ring_reaction[user, slot] = reaction
    ring_ptr[user] += 1


@_jit
def remember_page(
    memory_items: NDArray[np.int32],
    memory_reaction: NDArray[np.int8],
    memory_ptr: NDArray[np.int32],
    users: NDArray[np.int64],
    items: NDArray[np.int32],
    reaction: NDArray[np.int8],
    examined: NDArray[np.bool_],
) -> None:
    """Append each examined ``items[i, j]`` (in page order) with its reaction to the memory ring
    of ``users[i]`` (distinct users)."""
    for i in range(users.shape[0]):
        for j in range(items.shape[1]):
            if examined[i, j]:
                _remember(
                    memory_items, memory_reaction, memory_ptr, users[i], items[i, j], reaction[i, j]
                )


@_jit
def newest_first(
    out: NDArray[np.int32],
    ring: NDArray[np.int32],
    ptr: NDArray[np.int32],
    users: NDArray[np.int64],
) -> None:
    """Write into ``out[i]`` the ring buffer of ``users[i]``, read from its newest entry back."""
    size = ring.shape[1]
    for i in range(users.shape[0]):
        u = users[i]
        for s in range(size):
            out[i, s] = ring[u, (ptr[u] - 1 - s) % size]


@_jit
def apply_page(
    users: NDArray[np.int64],
    items: NDArray[np.int32],
    valid: NDArray[np.bool_],
    flags: tuple[
        NDArray[np.bool_],
        NDArray[np.bool_],
        NDArray[np.bool_],
        NDArray[np.bool_],
        NDArray[np.bool_],
    ],
    counters: tuple[
        NDArray[np.int64],
        NDArray[np.int64],
        NDArray[np.int64],
        NDArray[np.int64],
        NDArray[np.int64],
    ],
    memory: tuple[NDArray[np.int32], NDArray[np.int8], NDArray[np.int32]],
    session: tuple[NDArray[np.int32], NDArray[np.int32]],
) -> tuple[int, int, int]:
    """Stage 6 bookkeeping of one page per user (``users`` distinct), in one pass.

    ``flags`` = (examined, clicked, liked, shared, commented) ``[n, L]``; ``counters`` = the
    catalogue's (impressions, clicks, likes, shares, comments); ``memory`` = (items, reaction,
    ptr) rings, each examined item appended in page order with its reaction (3 shared, 2 liked,
    1 clicked, 0 skipped); ``session`` = (items examined, clicks) per user, incremented. Returns
    the totals (shown, examined, clicked).
    """
    examined, clicked, liked, shared, commented = flags
    impressions, clicks, likes, shares, comments = counters
    ring_items, ring_reaction, ring_ptr = memory
    session_items, session_clicks = session
    shown_total = examined_total = clicked_total = 0
    for i in range(users.shape[0]):
        u = users[i]
        for r in range(items.shape[1]):
            if not valid[i, r]:
                continue
            item = items[i, r]
            impressions[item] += 1
            shown_total += 1
            if not examined[i, r]:
                continue
            reaction = 0
            if clicked[i, r]:
                clicks[item] += 1
                clicked_total += 1
                session_clicks[u] += 1
                reaction = 1
                if liked[i, r]:
                    likes[item] += 1
                    reaction = 2
                if shared[i, r]:
                    shares[item] += 1
                    reaction = 3
                if commented[i, r]:
                    comments[item] += 1
            _remember(ring_items, ring_reaction, ring_ptr, u, item, reaction)
            session_items[u] += 1
            examined_total += 1
    return shown_total, examined_total, clicked_total


@_jit
def first_repeat_row(items: NDArray[np.int64]) -> int:
    """The first row holding an item twice, or −1."""
    n, k = items.shape
    for i in range(n):
        for j in range(1, k):
            for e in range(j):
                if items[i, e] == items[i, j]:
                    return i
    return -1


@_jit
def dedupe_slates(cols: NDArray[np.int64], n_candidates: int) -> NDArray[np.int64]:
    """A repeated candidate index in a row becomes the lowest index unused so far in the row."""
    n, k = cols.shape
    out = cols.copy()
    used = np.zeros(n_candidates, np.bool_)
    for i in range(n):
        used[:] = False
        for j in range(k):
            c = out[i, j]
            if used[c]:
                c = 0
                while used[c]:
                    c += 1
                out[i, j] = c
            used[c] = True
    return out


@_jit
def page_summary(
    reward: NDArray[np.float32],
    last: NDArray[np.float32],
    engaged: tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_]],
    examined: NDArray[np.bool_],
    dwell: NDArray[np.float32],
    items: NDArray[np.int32],
    embedding: NDArray[np.float32],
    weights: tuple[float, float, float, float],
    centroid: NDArray[np.float32],
    rows: NDArray[np.int64],
    decay: float,
) -> None:
    """Per page ``i``: ``reward[i]``, the engagement weighted by ``weights`` over ``engaged`` =
    (clicked, liked, shared, commented), and ``last[i]`` = (examined, clicks, likes, mean dwell
    of clicks); decays ``centroid[rows[i]]`` and adds the embeddings of the clicked items."""
    clicked, liked, shared, commented = engaged
    n, length = clicked.shape
    dim = embedding.shape[1]
    for i in range(n):
        o = rows[i]
        for d in range(dim):
            centroid[o, d] *= decay
        clicks = likes = seen = 0
        total = dwell_sum = 0.0
        for r in range(length):
            seen += examined[i, r]
            if clicked[i, r]:
                clicks += 1
                likes += liked[i, r]
                dwell_sum += dwell[i, r]
                total += weights[0] + weights[1] * liked[i, r]
                total += weights[2] * shared[i, r] + weights[3] * commented[i, r]
                for d in range(dim):
                    centroid[o, d] += embedding[items[i, r], d]
        reward[i] = total
        last[i, 0] = seen
        last[i, 1] = clicks
        last[i, 2] = likes
        last[i, 3] = dwell_sum / max(clicks, 1)


@_jit
def click_measures(
    clicked: NDArray[np.bool_],
    match: NDArray[np.float32],
    noise: NDArray[np.float32],
    dwell_seconds: float,
    dwell_sigma: float,
    quality: NDArray[np.float32],
    rating_cuts: NDArray[np.float64],
    rating_scale: tuple[float, float],
    rating_weights: tuple[float, float],
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Dwell and rating of each click (0 and NaN elsewhere); the ``j``-th click in row-major
    order uses ``noise[:, j]``: dwell ``dwell_seconds · exp(dwell_sigma·ε₀) · (½ + m)``, rating
    ``clip(rint(1 + 4m + 0.6·ε₁), 1, 5)`` when ``rating_cuts`` is empty, else, with
    ``(low, step) = rating_scale``, ``(a, b) = rating_weights`` and ``q = quality[i, r]`` (the
    clicked item's quality; ``quality`` is read only when there are cuts),
    ``low + step · #{c ∈ rating_cuts : c ≤ a·logit(m) + b·(q − ½) + ε₁}`` (``m`` clipped to
    [1e-7, 1 − 1e-7] for the logit)."""
    n, length = clicked.shape
    dwell = np.zeros((n, length), np.float32)
    rating = np.full((n, length), np.nan, np.float32)
    n_cuts = rating_cuts.shape[0]
    j = 0
    for i in range(n):
        for r in range(length):
            if clicked[i, r]:
                m = match[i, r]
                dwell[i, r] = dwell_seconds * math.exp(dwell_sigma * noise[0, j]) * (0.5 + m)
                if n_cuts == 0:
                    rating[i, r] = min(max(np.rint(1.0 + 4.0 * m + 0.6 * noise[1, j]), 1.0), 5.0)
                else:
                    p = min(max(float(m), 1e-7), 1.0 - 1e-7)
                    latent = rating_weights[0] * math.log(p / (1.0 - p))
                    latent += rating_weights[1] * (quality[i, r] - 0.5) + noise[1, j]
                    level = 0
                    while level < n_cuts and rating_cuts[level] <= latent:
                        level += 1
                    rating[i, r] = rating_scale[0] + rating_scale[1] * level
                j += 1
    return dwell, rating


@_inline
def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


#: Order of the user-model parameters in ``respond_page``'s ``params`` (names of
#: :class:`recoworld.config.UserModelConfig` fields).
RESPOND_PARAMS = (
    "w_taste",
    "w_quality",
    "w_repeat",
    "w_social",
    "w_friend",
    "w_intent",
    "no_click_utility",
    "temperature",
    "satisfaction_rate",
    "satisfaction_reference",
    "click_bonus",
    "fatigue_per_item",
    "boredom_per_item",
    "drift_rate",
    "opinion_rate",
    "opinion_epsilon",
    "leave_hazard",
    "leave_threshold",
    "leave_temperature",
    "like_rate",
    "share_rate",
    "comment_rate",
    "honour_share",
    "honour_gain",
    "ignore_penalty",
    "w_vote",
    "w_stance",
    "opinion_reinforcement",
)


@_jit
def respond_page(
    items: NDArray[np.int32],
    social: NDArray[np.bool_],
    users: NDArray[np.int64],
    memory: NDArray[np.int32],
    topic: NDArray[np.int16],
    quality: NDArray[np.float32],
    proof: NDArray[np.float32],
    embedding: NDArray[np.float32],
    stance: NDArray[np.float32],
    item_terms: tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]],
    state: tuple[NDArray[np.float32], ...],
    traits: tuple[NDArray[np.float32], ...],
    intent: tuple[NDArray[np.int16], NDArray[np.int16], NDArray[np.bool_], int],
    draws: NDArray[np.float32],
    params: tuple[float, ...],
    out: tuple[NDArray[np.bool_], ...],
    match_all: NDArray[np.float32],
) -> None:
    """Each user reviews its page item by item (the numeric user model of
    :mod:`recoworld.users.numeric`; formulas on :class:`recoworld.config.UserModelConfig`).

    ``state`` = (taste ``[n, D]``, boredom ``[n, T]`` after the page's decay, satisfaction,
    fatigue, opinion), one row per page, updated in place; ``traits`` = (patience, conformity,
    sociability, boredom weight, position attention ``[L]``); ``item_terms`` = (per-item utility
    shift — a label's penalty, negative —, per-item vote pull ``tanh(votes/scale)``, per-item
    share-probability factor); ``intent`` = (more, less, fresh,
    the no-topic code); ``social``: in-network item; ``draws`` ``[n, L, 5]`` uniforms (click,
    like, share, comment, leave); ``params`` in the order of :data:`RESPOND_PARAMS`. Writes
    into ``out`` = (examined, clicked, liked, shared, commented ``[n, L]``, left ``[n]``), all
    False on entry, and ``match_all`` ``[n, L]``: the click probability before attention.
    """
    (
        w_taste,
        w_quality,
        w_repeat,
        w_social,
        w_friend,
        w_intent,
        no_click,
        temperature,
        sat_rate,
        sat_ref,
        click_bonus,
        fatigue_per_item,
        boredom_per_item,
        drift,
        opinion_rate,
        opinion_eps,
        leave_hazard,
        leave_threshold,
        leave_temperature,
        like_rate,
        share_rate,
        comment_rate,
        honour_share,
        honour_gain,
        ignore_penalty,
        w_vote,
        w_stance,
        reinforcement,
    ) = params
    bias, herd, share_factor = item_terms
    taste, boredom, satisfaction, fatigue, opinion = state
    patience, conformity, sociability, boredom_weight, attention = traits
    more, less, fresh, no_topic = intent
    examined, clicked, liked, shared, commented, left = out
    n, length = items.shape
    dim = taste.shape[1]
    for i in range(n):
        u = users[i]
        sat = float(satisfaction[i])
        fat = float(fatigue[i])
        threshold = leave_threshold * (1.5 - patience[i])
        social_weight = w_social * conformity[i]
        vote_weight = w_vote * conformity[i]
        friend_weight = w_friend * sociability[i]
        shown = wanted = 0
        refused = False
        for r in range(length):
            item = items[i, r]
            if item < 0:
                continue
            t = topic[item]
            shown += 1
            wanted += t == more[i]
            refused |= less[i] != no_topic and t == less[i]
            remembered = _in_row(memory, u, item)
            repeat = remembered
            for e in range(r):
                repeat |= items[i, e] == item
            refused |= fresh[i] and remembered
            if left[i]:
                continue  # the rest of the page counts for the instruction, not for the user
            static = (
                w_quality * (quality[item] - 0.5)
                - w_repeat * repeat
                + social_weight * proof[item]
                + friend_weight * social[i, r]
                + vote_weight * herd[item]
                + bias[item]
                - w_stance * abs(opinion[i] - stance[item])
            )
            if more[i] != no_topic and t == more[i]:
                static += w_intent
            if less[i] != no_topic and t == less[i]:
                static -= w_intent
            z = w_taste * _dot(taste, i, embedding, item) - boredom_weight[i] * boredom[i, t]
            match = _sigmoid((z + static - no_click) / temperature)
            click = draws[i, r, 0] < match * attention[r]
            examined[i, r] = True
            match_all[i, r] = match
            sat += sat_rate * (match - sat_ref)
            fat += fatigue_per_item
            boredom[i, t] += boredom_per_item
            if click:
                clicked[i, r] = True
                sat += click_bonus
                liked[i, r] = draws[i, r, 1] < like_rate * match
                shared[i, r] = (
                    draws[i, r, 2] < share_rate * sociability[i] * match * share_factor[item]
                )
                commented[i, r] = draws[i, r, 3] < comment_rate * sociability[i] * match
                if drift > 0:
                    norm = 0.0
                    for d in range(dim):
                        moved = taste[i, d] + drift * (embedding[item, d] - taste[i, d])
                        taste[i, d] = moved
                        norm += moved * moved
                    norm = math.sqrt(norm)
                    for d in range(dim):
                        taste[i, d] /= norm
                if opinion_rate > 0:
                    gap = stance[item] - opinion[i]
                    if abs(gap) < opinion_eps:
                        opinion[i] += opinion_rate * gap
                if reinforcement > 0 and opinion[i] * stance[item] > 0:
                    side = 1.0 if opinion[i] > 0 else -1.0
                    opinion[i] += reinforcement * abs(stance[item]) * (side - opinion[i])
            sat = min(max(sat, 0.0), 1.5)
            risk = _sigmoid((threshold - (sat - fat)) / leave_temperature)
            if draws[i, r, 4] < leave_hazard * risk:
                left[i] = True
        # Did this page honour the standing instruction?
        if more[i] != no_topic:
            share = wanted / max(shown, 1)
            if share >= honour_share and not refused:
                sat += honour_gain
            elif wanted == 0 or refused:
                sat -= ignore_penalty
            sat = min(max(sat, 0.0), 1.5)
        satisfaction[i] = sat
        fatigue[i] = fat
        opinion[i] = min(max(opinion[i], -1.0), 1.0)
