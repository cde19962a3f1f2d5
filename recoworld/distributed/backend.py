"""Benchmark suites on a Ray cluster: ``recoworld bench SUITE --backend ray [--address ADDR]``.

Every (policy, seed) run of a suite becomes one Ray task (one CPU each) instead of a task of the
local process pool (:func:`recoworld._parallel.run_tasks`); the rows are the same, since each
run depends only on its scenario, policy and seed. A task that lands on another machine than
the driver writes its run folder to a temporary folder there and sends it back (a gzipped tar),
so that ``--out`` holds every run's trajectory, as with the local backend, without a shared
filesystem. Every node needs recoworld installed in the same version (the same environment).
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import pandas as pd

from recoworld.distributed._ray import start_ray

__all__ = ["run_suite_ray", "run_tasks_ray"]

R = TypeVar("R")


def _call(fn: Callable[..., R], args: tuple[Any, ...]) -> R:
    return fn(*args)


def run_tasks_ray(
    fn: Callable[..., R],
    tasks: Iterable[tuple[Any, ...]],
    *,
    address: str | None = None,
    on_done: Callable[[R], None] | None = None,
    num_cpus: float = 1,
) -> list[R]:
    """``fn(*task)`` for every task as Ray tasks of ``num_cpus`` CPUs each, results in
    completion order (``on_done`` sees each as it comes), like
    :func:`recoworld._parallel.run_tasks`. ``fn`` must be importable by name on every node. A
    task that raises cancels the others and makes the call raise. Connects as
    :func:`recoworld.distributed._ray.start_ray` does (and disconnects if it connected)."""
    todo = list(tasks)
    ray, started = start_ray(address)
    try:
        remote = ray.remote(num_cpus=num_cpus)(_call)
        pending = [remote.remote(fn, task) for task in todo]
        results: list[R] = []
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    results.append(ray.get(ref))
                    if on_done is not None:
                        on_done(results[-1])
        except BaseException:
            for ref in pending:
                ray.cancel(ref)
            raise
        return results
    finally:
        if started:
            ray.shutdown()


def _bench_task(
    scenario: str,
    overrides: dict[str, Any],
    spec: Any,
    seed: int,
    run_dir: str,
    driver_node: str,
) -> tuple[dict[str, Any], bytes | None]:
    """One run of a suite (``recoworld.bench._run_one``) on a Ray worker; off the driver's
    machine, the run folder comes back as a gzipped tar."""
    import ray

    from recoworld.bench import _run_one

    if ray.get_runtime_context().get_node_id() == driver_node:
        return _run_one(scenario, overrides, spec, seed, run_dir), None
    with tempfile.TemporaryDirectory(prefix="recoworld-bench-") as tmp:
        local = os.path.join(tmp, "run")
        row = _run_one(scenario, overrides, spec, seed, local)
        row["run_dir"] = run_dir
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.add(local, arcname=".")
        return row, buffer.getvalue()


def _unpack(run_dir: str, archive: bytes) -> None:
    from recoworld.trajectory.recorder import prepare_run_dir

    target = prepare_run_dir(run_dir)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(target, filter="data")


def run_suite_ray(
    suite: Any,
    out: str | os.PathLike[str],
    *,
    address: str | None = None,
    seeds: int | None = None,
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> pd.DataFrame:
    """:func:`recoworld.bench.run_suite` with every (policy, seed) run a Ray task: the same
    files (``results.parquet``, ``results.csv``, ``summary.md``, ``plots/``, ``runs/``) and,
    but for the order in which runs finish, the same rows. A run that lands on another node
    sends its run folder back."""
    from recoworld.bench import run_suite

    def runner(
        tasks: list[tuple[Any, ...]], done: Callable[[dict[str, Any]], None] | None
    ) -> list[dict[str, Any]]:
        ray, started = start_ray(address)
        try:
            driver = ray.get_runtime_context().get_node_id()

            def arrived(result: tuple[dict[str, Any], bytes | None]) -> None:
                row, archive = result
                if archive is not None:
                    _unpack(row["run_dir"], archive)
                if done is not None:
                    done(row)

            results = run_tasks_ray(
                _bench_task, [(*task, driver) for task in tasks], on_done=arrived
            )
        finally:
            if started:
                ray.shutdown()
        return [row for row, _ in results]

    return run_suite(suite, out, seeds=seeds, on_done=on_done, runner=runner)
