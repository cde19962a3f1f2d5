"""The compiled kernels against plain numpy statements of the same rules, and the row-parallel
runner: results must not depend on the number of threads, and a forked child must still run."""

from __future__ import annotations

import multiprocessing

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recoworld import _kernels as kernels
from recoworld.config import ScenarioConfig, override
from recoworld.policies.base import CandidateWindows
from recoworld.schedule import Simulation


def _rows(seed: int, n: int, width: int, high: int, empty: float = 0.2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = rng.integers(0, high, (n, width)).astype(np.int32)
    out[rng.random((n, width)) < empty] = -1
    return out


@given(st.integers(0, 10_000), st.integers(1, 6), st.integers(1, 12))
@settings(max_examples=60, deadline=None)
def test_rows_count_matches_numpy(seed: int, width: int, memory: int) -> None:
    query, table = _rows(seed, 7, width, 9), _rows(seed + 1, 11, memory, 9)
    rows = np.random.default_rng(seed).integers(0, 11, 7)
    expected = (query[:, :, None] == table[rows][:, None, :]).sum(axis=2)
    expected[query < 0] = 0
    assert kernels.rows_count(query, table, rows).tolist() == expected.tolist()


@given(st.integers(0, 10_000), st.integers(1, 8), st.integers(2, 10))
@settings(max_examples=60, deadline=None)
def test_dedupe_and_first_repeat(seed: int, k: int, n_candidates: int) -> None:
    k = min(k, n_candidates)
    cols = np.random.default_rng(seed).integers(0, n_candidates, (9, k)).astype(np.int64)
    out = kernels.dedupe_slates(cols, n_candidates)
    assert kernels.first_repeat_row(out) == -1
    # The documented rule, row by row: a repeat becomes the lowest index unused so far.
    for row, got in zip(cols.tolist(), out.tolist(), strict=True):
        used: list[int] = []
        for c in row:
            used.append(c if c not in used else min(set(range(n_candidates)) - set(used)))
        assert got == used
    repeats = [i for i, row in enumerate(cols.tolist()) if len(set(row)) < len(row)]
    assert kernels.first_repeat_row(cols) == (repeats[0] if repeats else -1)


def test_candidate_features_and_history_match_numpy() -> None:
    rng = np.random.default_rng(0)
    n, c, n_items, t, d = 50, 6, 40, 5, 4
    cand = rng.integers(0, n_items, (n, c)).astype(np.int32)
    users = rng.permutation(n).astype(np.int64)
    memory = _rows(1, n, 8, n_items)
    reaction = rng.integers(0, 3, (n, 8)).astype(np.int8)
    topic = rng.integers(0, t, n_items).astype(np.int16)
    popularity, quality = rng.random(n_items, np.float32), rng.random(n_items, np.float32)
    embedding = rng.standard_normal((n_items, d)).astype(np.float32)
    unit = rng.standard_normal((n, d)).astype(np.float32)
    out = np.full((n, c, t + 4), np.nan, np.float32)
    kernels.candidate_features(
        out, users, cand, users, memory, topic, popularity, quality, embedding, unit
    )
    got = out[users]
    np.testing.assert_array_equal(got[:, :, :t], np.eye(t, dtype=np.float32)[topic[cand]])
    np.testing.assert_array_equal(got[:, :, t], popularity[cand])
    np.testing.assert_array_equal(
        got[:, :, t + 2], (cand[:, :, None] == memory[users][:, None]).any(2)
    )
    affinity = np.clip(np.einsum("ncd,nd->nc", embedding[cand], unit), -1, 1)
    np.testing.assert_allclose(got[:, :, t + 3], affinity, rtol=1e-5, atol=1e-6)

    history = np.full((n, 2 * t), np.nan, np.float32)
    kernels.history_shares(history, memory, reaction, topic)
    valid = memory >= 0
    count = np.maximum(valid.sum(1), 1)[:, None]
    for k in range(t):
        shown = (valid & (topic[np.maximum(memory, 0)] == k)).sum(1)
        clicked = (valid & (reaction >= 1) & (topic[np.maximum(memory, 0)] == k)).sum(1)
        np.testing.assert_allclose(history[:, k], shown / count[:, 0], rtol=1e-6)
        np.testing.assert_allclose(history[:, t + k], clicked / count[:, 0], rtol=1e-6)


def _threads(monkeypatch: pytest.MonkeyPatch, threads: int) -> None:
    """``threads`` threads, and blocks as small as 8 rows so that small batches split too."""
    monkeypatch.setenv("RECOWORLD_THREADS", str(threads))
    monkeypatch.setattr(kernels, "_MIN_ROWS_PER_THREAD", 8)


def _vector_run(threads: int, monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    _threads(monkeypatch, threads)
    env = gym.make_vec("recoworld/Feed-v0", num_envs=500, n_items=500)
    obs, _ = env.reset(seed=11)
    env.action_space.seed(11)
    seen = [obs["candidates"], obs["history"]]
    for _ in range(4):
        obs, reward, terminated, _, _ = env.step(env.action_space.sample())
        seen += [obs["candidates"], obs["history"], obs["engagement"], reward, terminated]
    env.close()
    return seen


def test_thread_count_does_not_change_results(
    monkeypatch: pytest.MonkeyPatch, small_config: ScenarioConfig
) -> None:
    one, three = _vector_run(1, monkeypatch), _vector_run(3, monkeypatch)
    for a, b in zip(one, three, strict=True):
        assert a.tobytes() == b.tobytes()

    def population(threads: int) -> list[bytes]:
        _threads(monkeypatch, threads)
        config = override(small_config, {"seed": 5})
        sim = Simulation(config)
        sim.run(30)
        pop = sim.world.population
        return [pop.satisfaction.tobytes(), pop.taste.tobytes(), pop.memory_items.tobytes()]

    assert population(1) == population(3)


def _child_step(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    env = gym.make_vec("recoworld/Feed-v0", num_envs=500, n_items=500)
    env.reset(seed=0)
    _, reward, *_ = env.step(env.action_space.sample())
    queue.put(float(reward.sum()))


def test_a_forked_child_runs_the_parallel_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    _vector_run(2, monkeypatch)  # the parent's thread pool exists now
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_step, args=(queue,))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0, "the forked child hung or failed"
    assert queue.get(timeout=5) >= 0.0


@given(st.integers(0, 10_000), st.integers(1, 40), st.integers(0, 45))
@settings(max_examples=80, deadline=None)
def test_top_k_is_the_stable_argsort_prefix(seed: int, width: int, k: int) -> None:
    from recoworld.policies.base import top_k

    rng = np.random.default_rng(seed)
    for dtype in (np.float32, np.float64):
        scores = rng.integers(0, 4, (9, width)).astype(dtype)  # many ties
        scores[rng.random(scores.shape) < 0.1] = np.nan
        scores[rng.random(scores.shape) < 0.1] = -0.0
        scores[rng.random(scores.shape) < 0.05] = np.inf
        scores[rng.random(scores.shape) < 0.05] = -np.inf
        if seed % 2:
            scores = scores[:, ::-1]  # not contiguous
        expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        got = top_k(scores, k)
        assert got.dtype == expected.dtype
        assert got.tolist() == expected.tolist()


@given(st.integers(0, 10_000), st.integers(1, 30), st.integers(1, 12))
@settings(max_examples=60, deadline=None)
def test_slates_from_item_scores_match_slates_from_scores(seed: int, width: int, k: int) -> None:
    from recoworld.policies.base import slates_from_item_scores, slates_from_scores

    rng = np.random.default_rng(seed)
    n_items = 50
    table = np.log1p(rng.integers(0, 6, n_items).astype(np.float32))
    if seed % 3 == 0:
        table[rng.integers(0, n_items, 3)] = np.nan
    candidates = np.stack([rng.permutation(n_items)[:width] for _ in range(7)]).astype(np.int32)

    class Request:
        pass

    request = Request()
    request.candidates, request.k = candidates, k  # type: ignore[attr-defined]
    request.candidate_windows = CandidateWindows.of(candidates)  # type: ignore[attr-defined]
    a = slates_from_scores(request, table[candidates], 0.5)  # type: ignore[arg-type]
    b = slates_from_item_scores(request, table, 0.5)  # type: ignore[arg-type]
    pairs = zip(
        (a.items, a.scores, a.propensities), (b.items, b.scores, b.propensities), strict=True
    )
    for x, y in pairs:
        assert x.dtype == y.dtype
        assert x.tobytes() == y.tobytes()


def test_candidate_windows_are_the_pools_the_schedule_draws() -> None:
    from recoworld.errors import PolicyError
    from recoworld.policies.base import RecommendRequest, slates_from_item_scores

    rng = np.random.default_rng(5)
    n_items, width, n = 40, 6, 25
    perm = rng.permutation(n_items).astype(np.int32)
    ring = np.concatenate([perm, perm[: width - 1]])
    starts = rng.integers(0, n_items, n).astype(np.int64)
    expected = np.lib.stride_tricks.sliding_window_view(ring, width)[starts]
    windows = CandidateWindows(ring, starts, width)
    assert windows.materialize().tobytes() == expected.tobytes()

    def request() -> RecommendRequest:
        return RecommendRequest(
            tick=0,
            users=np.arange(n, dtype=np.int64),
            candidates=windows,
            k=3,
            catalog=None,  # type: ignore[arg-type]
            history=np.zeros((n, 0), np.int32),
            instructions=[None] * n,
            instruction_age=np.full(n, -1, np.int32),
            session_pages=np.zeros(n, np.int32),
            rng=np.random.default_rng(0),
        )

    table = rng.random(n_items).astype(np.float32)
    lazy, eager = request(), request()
    assert eager.candidates.tobytes() == expected.tobytes()  # copied out on first read
    a, b = slates_from_item_scores(lazy, table), slates_from_item_scores(eager, table)
    assert a.items.tobytes() == b.items.tobytes()
    assert a.scores.tobytes() == b.scores.tobytes()
    lazy.release_candidates()
    with pytest.raises(PolicyError, match="candidates of tick 0 was read after the policy"):
        _ = lazy.candidates


def test_page_records_match_the_boolean_mask_gathers() -> None:
    rng = np.random.default_rng(3)
    n, length, n_users = 40, 7, 60
    users = np.sort(rng.choice(n_users, n, replace=False)).astype(np.int64)
    session_id = rng.integers(0, 10**9, n_users)
    items = rng.integers(0, 100, (n, length)).astype(np.int32)
    items[:, 5:][rng.random((n, 2)) < 0.5] = -1
    valid = items >= 0
    source = np.where(valid, rng.integers(0, 2, (n, length)), -1).astype(np.int8)
    from_user = np.where(source == 1, rng.integers(0, n_users, (n, length)), -1).astype(np.int32)
    score = np.where(source == 0, rng.random((n, length)), np.nan).astype(np.float32)
    propensity = rng.random((n, length)).astype(np.float32)
    reach = rng.integers(0, length + 1, n)
    examined = (np.arange(length) < reach[:, None]) & valid
    clicked, liked, shared, commented = (
        examined & (rng.random((n, length)) < p) for p in (0.5,) * 4
    )
    dwell = np.where(clicked, rng.random((n, length)), 0).astype(np.float32)
    rating = np.where(clicked, 3.0, np.nan).astype(np.float32)
    left = rng.random(n) < 0.4
    shown, resp = kernels.page_records(
        users,
        session_id,
        (items, source, from_user, score, propensity),
        (examined, clicked, liked, shared, commented),
        (dwell, rating),
        left,
        1,
    )
    row, rank = np.nonzero(valid)
    expected = [
        session_id[users[row]],
        users[row],
        items[valid],
        rank,
        (source[valid] == 1),
        from_user[valid],
        score[valid],
        propensity[valid],
    ]
    for got, want in zip(shown, expected, strict=True):
        assert np.array_equal(got, want.astype(got.dtype), equal_nan=got.dtype.kind == "f")
    seen = valid & examined
    erow, erank = row[examined[valid]], rank[examined[valid]]
    last = examined.sum(axis=1) - 1
    action = np.select([commented[seen], shared[seen], liked[seen], clicked[seen]], [4, 3, 2, 1], 0)
    expected = [
        session_id[users[erow]],
        users[erow],
        items[seen],
        erank,
        action,
        clicked[seen],
        liked[seen],
        shared[seen],
        commented[seen],
        dwell[seen],
        rating[seen],
        left[erow] & (erank == last[erow]),
    ]
    for got, want in zip(resp, expected, strict=True):
        assert np.array_equal(got, want.astype(got.dtype), equal_nan=got.dtype.kind == "f")
