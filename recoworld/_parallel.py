"""Independent tasks on worker processes, shared by the benchmark suites and the experiments."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Any, TypeVar

__all__ = ["run_tasks"]

R = TypeVar("R")


def run_tasks(
    fn: Callable[..., R],
    tasks: Iterable[tuple[Any, ...]],
    *,
    jobs: int = 1,
    on_done: Callable[[R], None] | None = None,
) -> list[R]:
    """``fn(*task)`` for every task, in this process (``jobs <= 1``, in task order) or on
    ``jobs`` worker processes (in completion order); ``on_done`` sees each result as it comes.

    Workers are started with ``spawn``: no fork of a process that holds threads (the compiled
    kernels' pools, background draws). ``fn`` and the task arguments must be picklable and
    ``fn`` importable by name; a task that raises makes the whole call raise.
    """
    todo = list(tasks)
    results: list[R] = []
    if jobs <= 1 or len(todo) <= 1:
        for task in todo:
            results.append(fn(*task))
            if on_done is not None:
                on_done(results[-1])
        return results
    workers = min(jobs, len(todo))
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(fn, *task) for task in todo]
        for future in as_completed(futures):
            results.append(future.result())
            if on_done is not None:
                on_done(results[-1])
    return results
