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
    "bucket_targets",
    "by_rows",
    "candidate_features",
    "click_measures",
    "compose_pages",
    "count_votes",
    "dedupe_slates",
    "deliver",
    "first_repeat_row",
    "history_shares",
    "homophilous_targets",
    "in_background",
    "newest_first",
    "normalize_rows",
    "page_records",
    "page_summary",
    "remember_page",
    "respond_page",
    "rows_count",
    "take_inbox",
    "threads",
    "top_k_gather",
    "top_k_rows",
    "transpose_csr",
]

_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")

#: Below this many rows a kernel runs on the calling thread alone.
_MIN_ROWS_PER_THREAD = 1024
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


@_jit
def deliver(
    inbox: tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.int32]],
    followers: tuple[NDArray[np.int64], NDArray[np.int32]],
    sharers: NDArray[np.int64],
    items: NDArray[np.integer],
    muted: NDArray[np.int64],
) -> NDArray[np.int64]:
    """See :func:`recoworld.feed.deliver_shares`: ``inbox`` = (items, from, ptr) rings,
    ``followers`` = the transposed graph's (indptr, indices), ``muted`` the sorted mute keys
    ``follower · n + followee``. Each share is written into each follower's ring in order, so
    a follower receiving more than the ring holds keeps the last ones. Returns the recipients
    of each share."""
    inbox_items, inbox_from, inbox_ptr = inbox
    indptr, indices = followers
    size = inbox_items.shape[1]
    n = indptr.shape[0] - 1
    counts = np.zeros(sharers.shape[0], np.int64)
    for j in range(sharers.shape[0]):
        sharer = sharers[j]
        for e in range(indptr[sharer], indptr[sharer + 1]):
            follower = indices[e]
            if muted.shape[0]:
                key = np.int64(follower) * n + sharer
                at = np.searchsorted(muted, key)
                if at < muted.shape[0] and muted[at] == key:
                    continue  # the follower muted the sharer
            slot = inbox_ptr[follower] % size
            inbox_items[follower, slot] = items[j]
            inbox_from[follower, slot] = sharer
            inbox_ptr[follower] += 1
            counts[j] += 1
    return counts


@_jit
def count_votes(
    items: NDArray[np.int32],
    liked: NDArray[np.bool_],
    clicked: NDArray[np.bool_],
    rating: NDArray[np.float32],
    downvote_rating: np.float32,
    votes: NDArray[np.int64],
) -> None:
    """Add each page position's vote to ``votes[item]``: +1 for a like, −1 for a click rated at
    most ``downvote_rating`` without a like (:func:`recoworld.social.engine.votes_of`)."""
    n, length = items.shape
    for i in range(n):
        for r in range(length):
            if liked[i, r]:
                votes[items[i, r]] += 1
            elif clicked[i, r] and rating[i, r] <= downvote_rating:
                votes[items[i, r]] -= 1


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
def page_records(
    users: NDArray[np.int64],
    session_id: NDArray[np.int64],
    page: tuple[
        NDArray[np.int32],
        NDArray[np.int8],
        NDArray[np.int32],
        NDArray[np.float32],
        NDArray[np.float32],
    ],
    flags: tuple[
        NDArray[np.bool_],
        NDArray[np.bool_],
        NDArray[np.bool_],
        NDArray[np.bool_],
        NDArray[np.bool_],
    ],
    measures: tuple[NDArray[np.float32], NDArray[np.float32]],
    left: NDArray[np.bool_],
    social_code: int,
) -> tuple[
    tuple[
        NDArray[np.int64],
        NDArray[np.int32],
        NDArray[np.int32],
        NDArray[np.int16],
        NDArray[np.int8],
        NDArray[np.int32],
        NDArray[np.float32],
        NDArray[np.float32],
    ],
    tuple[
        NDArray[np.int64],
        NDArray[np.int32],
        NDArray[np.int32],
        NDArray[np.int16],
        NDArray[np.int8],
        NDArray[np.bool_],
        NDArray[np.bool_],
        NDArray[np.bool_],
        NDArray[np.bool_],
        NDArray[np.float32],
        NDArray[np.float32],
        NDArray[np.bool_],
    ],
]:
    """The ``impressions`` and ``responses`` columns of a tick's pages in one pass (rows in
    ``np.nonzero`` order), for stage 9 of the schedule instead of a boolean-mask gather per
    column.

    ``page`` = the feed's (items, source, from_user, score, propensity) ``[n, L]`` (−1 items
    are padding); ``flags`` = (examined, clicked, liked, shared, commented) ``[n, L]``;
    ``measures`` = (dwell, rating) ``[n, L]``; ``left`` ``[n]``. Returns (session, user, item,
    rank, source — 1 where ``source == social_code`` —, from_user, score, propensity) per shown
    item and (session, user, item, rank, action — 4 comment, 3 share, 2 like, 1 click, 0 —,
    clicked, liked, shared, commented, dwell, rating, left) per examined one, ``left`` on the
    row of the highest examined rank when the user left.
    """
    items, source, from_user, score, propensity = page
    examined, clicked, liked, shared, commented = flags
    dwell, rating = measures
    n, length = items.shape
    n_shown = n_examined = 0
    for i in range(n):
        for r in range(length):
            if items[i, r] >= 0:
                n_shown += 1
                n_examined += examined[i, r]
    i_session = np.empty(n_shown, np.int64)
    i_user = np.empty(n_shown, np.int32)
    i_item = np.empty(n_shown, np.int32)
    i_rank = np.empty(n_shown, np.int16)
    i_source = np.empty(n_shown, np.int8)
    i_from = np.empty(n_shown, np.int32)
    i_score = np.empty(n_shown, np.float32)
    i_propensity = np.empty(n_shown, np.float32)
    r_session = np.empty(n_examined, np.int64)
    r_user = np.empty(n_examined, np.int32)
    r_item = np.empty(n_examined, np.int32)
    r_rank = np.empty(n_examined, np.int16)
    r_action = np.empty(n_examined, np.int8)
    r_clicked = np.empty(n_examined, np.bool_)
    r_liked = np.empty(n_examined, np.bool_)
    r_shared = np.empty(n_examined, np.bool_)
    r_commented = np.empty(n_examined, np.bool_)
    r_dwell = np.empty(n_examined, np.float32)
    r_rating = np.empty(n_examined, np.float32)
    r_left = np.empty(n_examined, np.bool_)
    a = b = 0
    for i in range(n):
        u = users[i]
        session = session_id[u]
        last = -1  # the highest examined rank (padding may precede a down-ranked item)
        for r in range(length):
            if examined[i, r]:
                last = r
        for r in range(length):
            item = items[i, r]
            if item < 0:
                continue
            i_session[a] = session
            i_user[a] = u
            i_item[a] = item
            i_rank[a] = r
            i_source[a] = source[i, r] == social_code
            i_from[a] = from_user[i, r]
            i_score[a] = score[i, r]
            i_propensity[a] = propensity[i, r]
            a += 1
            if not examined[i, r]:
                continue
            action = 0
            if commented[i, r]:
                action = 4
            elif shared[i, r]:
                action = 3
            elif liked[i, r]:
                action = 2
            elif clicked[i, r]:
                action = 1
            r_session[b] = session
            r_user[b] = u
            r_item[b] = item
            r_rank[b] = r
            r_action[b] = action
            r_clicked[b] = clicked[i, r]
            r_liked[b] = liked[i, r]
            r_shared[b] = shared[i, r]
            r_commented[b] = commented[i, r]
            r_dwell[b] = dwell[i, r]
            r_rating[b] = rating[i, r]
            r_left[b] = left[i] and r == last
            b += 1
    shown = (i_session, i_user, i_item, i_rank, i_source, i_from, i_score, i_propensity)
    responses = (
        r_session,
        r_user,
        r_item,
        r_rank,
        r_action,
        r_clicked,
        r_liked,
        r_shared,
        r_commented,
        r_dwell,
        r_rating,
        r_left,
    )
    return shown, responses


@_jit
def first_repeat_row(items: NDArray[np.integer]) -> int:
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


@_inline
def _top_k_of(
    vals: NDArray[np.float64],
    k: int,
    keep: NDArray[np.int64],
    best: NDArray[np.float64],
    out: NDArray[np.int64],
) -> None:
    """``out[:k]``: the positions of the ``k`` largest ``vals``, largest first; ties keep
    position order and NaN ranks last (``np.argsort(-vals, kind="stable")[:k]``).
    ``0 < k <= len(vals)``; ``keep`` and ``best`` are scratch space."""
    width = vals.shape[0]
    nan = False
    for c in range(width):
        nan |= vals[c] != vals[c]
    kept = width
    if nan:  # the rare case: every position is a candidate, NaN ranking below everything
        for c in range(width):
            keep[c] = c
    else:
        # A lower bound of the k-th largest: the least of the maxima of k groups (k distinct
        # positions). Only the positions at or above it can be in the top k: usually a few
        # more than k, gathered without branches, so few go through the insertion below.
        group = (width + k - 1) // k
        bound = np.inf
        for g in range(k):
            top = -np.inf
            for c in range(g * group, min((g + 1) * group, width)):
                top = max(top, vals[c])
            bound = min(bound, top)
        kept = 0
        for c in range(width):
            keep[kept] = c
            kept += vals[c] >= bound
    filled = 0
    for q in range(kept):  # insertion into the running top k, in position order
        c = keep[q]
        v = vals[c]
        if filled == k:
            worst = best[k - 1]
            if not (v > worst) and (v != v or worst == worst):
                continue  # it does not enter (an equal value comes later: it ranks below)
            j = k - 1
        else:
            j = filled
            filled += 1
        while j > 0 and v == v and (best[j - 1] != best[j - 1] or v > best[j - 1]):
            best[j] = best[j - 1]
            out[j] = out[j - 1]
            j -= 1
        best[j] = v
        out[j] = c


@_jit
def top_k_rows(scores: NDArray[np.floating], cols: NDArray[np.int64]) -> None:
    """``cols[i]`` (``[n, k]``, ``k`` ≤ columns of ``scores``): the columns of the ``k`` best
    ``scores[i]``, best first; ties keep column order and NaN ranks last — the first ``k`` of
    ``np.argsort(-scores, axis=1, kind="stable")``, without sorting the rows."""
    n, width = scores.shape
    k = cols.shape[1]
    if k == 0:
        return
    vals = np.empty(width, np.float64)
    keep = np.empty(width, np.int64)
    best = np.empty(k, np.float64)
    for i in range(n):
        for c in range(width):
            vals[c] = scores[i, c]
        _top_k_of(vals, k, keep, best, cols[i])


@_jit
def top_k_gather(
    table: NDArray[np.floating],
    ring: NDArray[np.integer],
    starts: NDArray[np.int64],
    width: int,
    cols: NDArray[np.int64],
    items: NDArray[np.int32],
    scores: NDArray[np.float32],
) -> None:
    """:func:`top_k_rows` of the scores ``table[candidates]`` (one score per item) without
    building them, for candidate pools given as windows — row ``i`` is
    ``ring[starts[i] : starts[i] + width]``: ``cols[i]`` the best columns of row ``i``,
    ``items[i]`` their candidates and ``scores[i]`` their scores (as float32)."""
    n = starts.shape[0]
    k = cols.shape[1]
    if k == 0:
        return
    vals = np.empty(width, np.float64)
    keep = np.empty(width, np.int64)
    best = np.empty(k, np.float64)
    for i in range(n):
        s = starts[i]
        for c in range(width):
            vals[c] = table[ring[s + c]]
        _top_k_of(vals, k, keep, best, cols[i])
        for j in range(k):
            item = ring[s + cols[i, j]]
            items[i, j] = item
            scores[i, j] = table[item]


@_jit
def compose_pages(
    slate: tuple[NDArray[np.int32], NDArray[np.float32], NDArray[np.float32]],
    social_items: NDArray[np.int32],
    social_from: NDArray[np.int32],
    every: int,
    page: tuple[
        NDArray[np.int32],
        NDArray[np.int8],
        NDArray[np.int32],
        NDArray[np.float32],
        NDArray[np.float32],
    ],
    codes: tuple[int, int, int],
) -> int:
    """Merge each row's slate (items, scores, propensities ``[n, k]``) with its in-network
    items (``[n, S]``, valid first) into ``page`` = (items, source, from_user, score,
    propensity ``[n, k + S]``). ``every`` > 0: interleave — one in-network item after every
    ``every`` recommended ones; 0: the slate first, in-network items after it. ``codes`` =
    (padding, recommended, in-network) source codes. Every element of ``page`` is written.
    Returns −1, or the first row whose in-network items are not packed to the left."""
    slate_items, slate_scores, slate_prop = slate
    items, source, from_user, score, propensity = page
    pad, rec, social = codes
    n, k = slate_items.shape
    cap = social_items.shape[1]
    length = items.shape[1]
    for i in range(n):
        n_social = 0
        while n_social < cap and social_items[i, n_social] >= 0:
            n_social += 1
        for c in range(n_social, cap):
            if social_items[i, c] >= 0:
                return i
        for p in range(length):
            items[i, p] = -1
            source[i, p] = pad
            from_user[i, p] = -1
            score[i, p] = np.nan
            propensity[i, p] = 1.0
        for j in range(k):
            p = j + min(j // every, n_social) if every > 0 else j
            items[i, p] = slate_items[i, j]
            source[i, p] = rec
            score[i, p] = slate_scores[i, j]
            propensity[i, p] = slate_prop[i, j]
        for c in range(n_social):
            p = (c + 1) * every + c if every > 0 else k + c
            items[i, p] = social_items[i, c]
            source[i, p] = social
            from_user[i, p] = social_from[i, c]
    return -1


@_jit
def transpose_csr(
    indptr: NDArray[np.int64], indices: NDArray[np.int32]
) -> tuple[NDArray[np.int64], NDArray[np.int32]]:
    """The transpose of a CSR graph (rows sorted, no repeats): a counting sort by column.
    Rows are visited in order, so every transposed row comes out sorted."""
    n = indptr.shape[0] - 1
    out_ptr = np.zeros(n + 1, np.int64)
    for e in range(indices.shape[0]):
        out_ptr[indices[e] + 1] += 1
    for v in range(n):
        out_ptr[v + 1] += out_ptr[v]
    fill = out_ptr[:-1].copy()
    out = np.empty(indices.shape[0], np.int32)
    for u in range(n):
        for e in range(indptr[u], indptr[u + 1]):
            v = indices[e]
            out[fill[v]] = u
            fill[v] += 1
    return out_ptr, out


@_jit
def bucket_targets(
    indptr: NDArray[np.int64], src: NDArray[np.integer], dst: NDArray[np.integer]
) -> NDArray[np.int64]:
    """``dst`` grouped by ``src`` (a counting sort; ``indptr`` holds the rows' bounds), each
    row's targets in edge order."""
    fill = indptr[:-1].copy()
    out = np.empty(dst.shape[0], np.int64)
    for e in range(src.shape[0]):
        out[fill[src[e]]] = dst[e]
        fill[src[e]] += 1
    return out


@_jit
def normalize_rows(
    indptr: NDArray[np.integer], targets: NDArray[np.integer]
) -> tuple[NDArray[np.int64], NDArray[np.int32]]:
    """CSR rows from segments: row ``u`` is ``targets[indptr[u]:indptr[u + 1]]`` in any order;
    each is sorted and loses repeats and ``u`` itself (a self-loop)."""
    n = indptr.shape[0] - 1
    out_ptr = np.zeros(n + 1, np.int64)
    out = np.empty(targets.shape[0], np.int32)
    size = 0
    for u in range(n):
        start, end = indptr[u], indptr[u + 1]
        row = out[size : size + (end - start)]
        for e in range(start, end):
            row[e - start] = targets[e]
        m = end - start
        if m > 32:
            row.sort()
        else:  # insertion sort: rows are short
            for a in range(1, m):
                value = row[a]
                b = a
                while b > 0 and row[b - 1] > value:
                    row[b] = row[b - 1]
                    b -= 1
                row[b] = value
        kept = 0
        for a in range(m):
            value = row[a]
            if value != u and (kept == 0 or row[kept - 1] != value):
                row[kept] = value
                kept += 1
        size += kept
        out_ptr[u + 1] = size
    return out_ptr, out[:size].copy()


@_jit
def homophilous_targets(
    group_of_source: NDArray[np.integer],
    within: NDArray[np.bool_],
    draws: NDArray[np.float64],
    cum: NDArray[np.float64],
    bounds: NDArray[np.int64],
    guide: NDArray[np.int64],
    order: NDArray[np.int64],
    out: NDArray[np.int32],
) -> None:
    """Targets of the homophilous generator's edges (:func:`recoworld.world.synthetic.
    generate_graph`): edge ``e`` draws the weight ``u·total`` over everyone or, when
    ``within[e]``, ``lo + u·(hi − lo)`` over its source's group block of ``cum`` (the
    attractiveness, cumulated in ``order``); its target is ``order[min(#{cum ≤ w}, n − 1)]``.
    ``#{cum ≤ w}`` is ``np.searchsorted(cum, w, side="right")``, found from the bracket that
    ``guide`` (that count at ``B + 1`` equally spaced weights) gives, verified, then a binary
    search inside it."""
    n = cum.shape[0]
    total = cum[n - 1]
    n_buckets = guide.shape[0] - 1
    for e in range(draws.shape[0]):
        u = draws[e]
        if within[e]:
            g = group_of_source[e]
            first = bounds[g]
            lo_w = cum[first - 1] if first > 0 else 0.0
            hi_w = cum[bounds[g + 1] - 1]
            w = lo_w + u * (hi_w - lo_w)
        else:
            w = u * total
        b = int(w / total * n_buckets)
        b = min(max(b, 0), n_buckets - 1)
        lo, hi = guide[b], guide[b + 1]
        if (lo > 0 and cum[lo - 1] > w) or (hi < n and cum[hi] <= w):
            lo, hi = 0, n  # the bracket missed (rounding): search everything
        while lo < hi:  # first index in [lo, hi) whose cum exceeds w (hi if none)
            mid = (lo + hi) // 2
            if cum[mid] <= w:
                lo = mid + 1
            else:
                hi = mid
        out[e] = order[min(lo, n - 1)]


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
