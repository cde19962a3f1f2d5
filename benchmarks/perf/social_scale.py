"""Benchmark: the social scenario at 100,000 users on a real-sized follow graph, social on vs off.

Runs the shipped ``social`` scenario (homophilous follow graph, mean out-degree 25: about 2.5 M
follow edges at 100,000 users) recording to a temporary run folder (Parquet, as ``recoworld run``
does), with the social behaviours on — posts, follows, unfollows, mutes, Deffuant–Weisbuch
opinion updates for a fifth of the users, confirmation bias — and off (shares only, the scenario
as shipped), side by side. Usage::

    python benchmarks/perf/social_scale.py --users 100000 10000 --repeats 3 --profile

Each run is a fresh process (so peak memory does not mix): it builds the world (timed), runs
``--warmup-ticks`` untimed ticks (sessions build up from an empty world; the first tick loads the
compiled kernels and builds the followers' transpose), then times ``--ticks`` ticks one by one
from ``--hour`` (default 18:00: 36 ticks = the busy hours 18:00–21:00), and closes the run folder
(timed apart). The two configurations alternate (off, on, then on, off, ...) over ``--repeats``
repetitions per population size, all with the same seed, so every repetition does the same work;
the figures are medians over repetitions. ``--profile`` adds one more run of the largest
population with social behaviours on under cProfile (timed ticks only) and prints the top
functions.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from default_day import _one_run  # whole-process wall, CPU and peak RSS (os.wait4)

#: The social behaviours switched on (``ON``); ``OFF`` is the shipped scenario (shares only).
SOCIAL_ON: dict[str, Any] = {
    "social.post_rate": 0.01,
    "social.follow_rate": 0.05,
    "social.unfollow_rate": 0.05,
    "social.mute_rate": 0.02,
    "social.opinion_model": "deffuant_weisbuch",
    "social.opinion_fraction": 0.2,
    "users.w_stance": 0.5,
}
EVENTS = ("shares", "posts", "follows", "unfollows", "mutes")
MIB = 1024.0  # ru_maxrss is in KiB on Linux


def _overrides(opts: argparse.Namespace, n_users: int, social: bool) -> dict[str, Any]:
    """Scenario keys of one configuration (the ``--set`` values of ``recoworld run``)."""
    from recoworld import load_scenario

    per_hour = 60 // load_scenario("social").clock.tick_minutes  # the warm-up is whole hours
    if opts.warmup_ticks % per_hour:
        raise SystemExit(f"--warmup-ticks must be a multiple of {per_hour} (whole hours)")
    updates: dict[str, Any] = {
        "world.n_users": n_users,
        "world.n_items": max(opts.min_items, round(n_users * opts.items_per_user)),
        "world.graph.mean_degree": opts.degree,
        "clock.start_hour": (opts.hour - opts.warmup_ticks // per_hour) % 24,
        "clock.ticks": opts.warmup_ticks + opts.ticks,
    }
    if social:
        updates.update(SOCIAL_ON)
    return updates


def _equivalent_command(updates: dict[str, Any]) -> str:
    sets = " ".join(f"--set {key}={value}" for key, value in updates.items())
    return f"recoworld run social {sets} --out DIR -q"


def _machine() -> str:
    """CPU model, CPUs this process may use, memory, Python and numpy versions."""
    info = {}
    for name in ("/proc/cpuinfo", "/proc/meminfo"):
        try:
            for line in Path(name).read_text().splitlines():
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
        except OSError:
            pass
    cpu = info.get("model name") or platform.processor() or platform.machine()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = info.get("MemTotal", "").split()
    gib = f", {int(memory[0]) / 1024**2:.0f} GiB" if memory else ""
    return (
        f"{cpu}, {cpus} CPUs{gib}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MIB


def _child(spec: dict[str, Any]) -> None:
    """One configuration in this (fresh) process; writes its figures to ``spec['result']``."""
    from recoworld import Simulation, load_scenario, override

    config = override(load_scenario("social"), spec["overrides"])
    out = Path(spec["out"])
    start = time.perf_counter()
    sim = Simulation(config, out_dir=out)
    build_s = time.perf_counter() - start
    rss_build = _rss_mib()
    graph = sim.world.graph
    edges_built = graph.n_edges
    start = time.perf_counter()
    for _ in range(spec["warmup_ticks"]):
        sim.step()
    warmup_s = time.perf_counter() - start
    edges_before = sim.world.graph.n_edges
    before = sim.totals.as_dict()
    profiler = cProfile.Profile() if spec["profile"] else None
    tick_s, tick_cpu_s, pages, impressions = [], [], [], []
    for _ in range(spec["ticks"]):
        if profiler is not None:
            profiler.enable()
        start, cpu = time.perf_counter(), time.process_time()
        stats = sim.step()
        tick_s.append(time.perf_counter() - start)
        tick_cpu_s.append(time.process_time() - cpu)
        if profiler is not None:
            profiler.disable()
        pages.append(stats.active)
        impressions.append(stats.impressions)
    after = sim.totals.as_dict()
    edges_after = sim.world.graph.n_edges
    start = time.perf_counter()
    sim.finish("completed")
    finish_s = time.perf_counter() - start
    folder_mib = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / MIB**2
    figures = {
        "build_s": build_s,
        "warmup_s": warmup_s,
        "tick_s": tick_s,
        "tick_cpu_s": tick_cpu_s,
        "pages": pages,
        "impressions": impressions,
        "events": {key: after[key] - before[key] for key in EVENTS},
        "edges_built": edges_built,
        "edges_before": edges_before,
        "edges_after": edges_after,
        "finish_s": finish_s,
        "rss_build_mib": rss_build,
        "rss_peak_mib": _rss_mib(),
        "run_folder_mib": folder_mib,
    }
    if profiler is not None:
        text = io.StringIO()
        stats_ = pstats.Stats(profiler, stream=text).sort_stats("cumulative")
        text.write("Top 15 recoworld functions by cumulative time (timed ticks only):\n")
        stats_.print_stats(r"recoworld[/\\]", 15)
        text.write("Top 10 functions by own time:\n")
        stats_.sort_stats("tottime").print_stats(10)
        figures["profile"] = text.getvalue()
    Path(spec["result"]).write_text(json.dumps(figures))


def _run(opts: argparse.Namespace, tmp: Path, n_users: int, social: bool, *, profile: bool = False):
    """One configuration in a fresh process: its figures plus whole-process wall, CPU and RSS."""
    name = f"{n_users}-{'on' if social else 'off'}"
    spec = {
        "overrides": _overrides(opts, n_users, social),
        "out": str(tmp / name),
        "result": str(tmp / f"{name}.json"),
        "warmup_ticks": opts.warmup_ticks,
        "ticks": opts.ticks,
        "profile": profile,
    }
    process = _one_run([sys.executable, __file__, "--child", json.dumps(spec)])
    figures = json.loads(Path(spec["result"]).read_text())
    shutil.rmtree(spec["out"], ignore_errors=True)
    return {**figures, **{f"process_{key}": value for key, value in process.items()}}


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median over repetitions of each run's figures."""

    def med(fn: Any) -> float:
        return float(statistics.median(fn(r) for r in runs))

    first = runs[0]
    n_ticks = len(first["tick_s"])
    out = {
        "repeats": len(runs),
        "build_s": med(lambda r: r["build_s"]),
        "ticks_per_s": med(lambda r: n_ticks / sum(r["tick_s"])),
        "tick_median_s": med(lambda r: statistics.median(r["tick_s"])),
        "tick_p90_s": med(lambda r: float(np.percentile(r["tick_s"], 90))),
        "tick_max_s": med(lambda r: max(r["tick_s"])),
        "tick_cpu_median_s": med(lambda r: statistics.median(r["tick_cpu_s"])),
        "pages_per_s": med(lambda r: sum(r["pages"]) / sum(r["tick_s"])),
        "impressions_per_s": med(lambda r: sum(r["impressions"]) / sum(r["tick_s"])),
        "us_per_impression": med(lambda r: 1e6 * sum(r["tick_s"]) / sum(r["impressions"])),
        "pages_per_tick": statistics.fmean(first["pages"]),
        "impressions_per_tick": statistics.fmean(first["impressions"]),
        "finish_s": med(lambda r: r["finish_s"]),
        "rss_build_mib": med(lambda r: r["rss_build_mib"]),
        "rss_peak_mib": med(lambda r: r["rss_peak_mib"]),
        "process_wall_s": med(lambda r: r["process_wall_s"]),
        "process_cpu_s": med(lambda r: r["process_cpu_s"]),
        "run_folder_mib": med(lambda r: r["run_folder_mib"]),
        "edges_built": first["edges_built"],
        "edges_before": first["edges_before"],
        "edges_after": first["edges_after"],
        "tick_range_s": [
            min(statistics.median(r["tick_s"]) for r in runs),
            max(statistics.median(r["tick_s"]) for r in runs),
        ],
    }
    for key in EVENTS:
        out[f"{key}_per_tick"] = first["events"][key] / n_ticks
    return out


ROWS = (
    ("world build (s)", "build_s", "{:.2f}"),
    ("ticks/s", "ticks_per_s", "{:.2f}"),
    ("s/tick, median", "tick_median_s", "{:.4f}"),
    ("s/tick, p90", "tick_p90_s", "{:.4f}"),
    ("s/tick, max", "tick_max_s", "{:.4f}"),
    ("CPU s/tick, median", "tick_cpu_median_s", "{:.4f}"),
    ("user-pages/tick", "pages_per_tick", "{:,.0f}"),
    ("user-pages/s", "pages_per_s", "{:,.0f}"),
    ("impressions/tick", "impressions_per_tick", "{:,.0f}"),
    ("impressions/s", "impressions_per_s", "{:,.0f}"),
    ("µs/impression", "us_per_impression", "{:.2f}"),
    ("shares/tick", "shares_per_tick", "{:.1f}"),
    ("posts/tick", "posts_per_tick", "{:.1f}"),
    ("follows/tick", "follows_per_tick", "{:.2f}"),
    ("unfollows/tick", "unfollows_per_tick", "{:.2f}"),
    ("mutes/tick", "mutes_per_tick", "{:.2f}"),
    ("edges, built", "edges_built", "{:,}"),
    ("edges, timed start", "edges_before", "{:,}"),
    ("edges, timed end", "edges_after", "{:,}"),
    ("close run folder (s)", "finish_s", "{:.2f}"),
    ("peak RSS after build (MiB)", "rss_build_mib", "{:,.0f}"),
    ("peak RSS (MiB)", "rss_peak_mib", "{:,.0f}"),
    ("process wall (s)", "process_wall_s", "{:.1f}"),
    ("process CPU (s)", "process_cpu_s", "{:.1f}"),
    ("run folder (MiB)", "run_folder_mib", "{:.1f}"),
)


def _print_table(n_users: int, off: dict[str, Any], on: dict[str, Any]) -> None:
    print(f"\n{n_users:,} users — medians of {on['repeats']} runs each")
    print(f"{'figure':<28}{'social off':>14}{'social on':>14}{'on/off':>9}")
    for label, key, fmt in ROWS:
        a, b = off[key], on[key]
        ratio = f"{b / a:.2f}" if isinstance(a, float) and a else ""
        print(f"{label:<28}{fmt.format(a):>14}{fmt.format(b):>14}{ratio:>9}")
    lo, hi = on["tick_range_s"]
    print(f"(social on: run medians of s/tick ranged {lo:.4f}–{hi:.4f}; ", end="")
    lo, hi = off["tick_range_s"]
    print(f"off: {lo:.4f}–{hi:.4f})")


def _print_scaling(results: dict[int, dict[str, dict[str, Any]]]) -> None:
    sizes = sorted(results)
    if len(sizes) < 2:
        return
    small, big = sizes[0], sizes[-1]
    print(f"\nScaling {small:,} -> {big:,} users (x{big / small:g})")
    print(f"{'figure':<34}{'social off':>12}{'social on':>12}")
    for label, key in (
        ("s/tick ratio", "tick_median_s"),
        ("user-pages/tick ratio", "pages_per_tick"),
        ("µs/impression ratio", "us_per_impression"),
        ("world build ratio", "build_s"),
        ("peak RSS ratio", "rss_peak_mib"),
    ):
        cells = [results[big][c][key] / results[small][c][key] for c in ("off", "on")]
        print(f"{label:<34}{cells[0]:>12.2f}{cells[1]:>12.2f}")
    for n in (small, big):
        cells = [1e6 * results[n][c]["tick_median_s"] / n for c in ("off", "on")]
        print(f"{f'µs per tick per user ({n:,})':<34}{cells[0]:>12.3f}{cells[1]:>12.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[100_000])
    parser.add_argument("--items-per-user", type=float, default=0.2, help="catalogue size / users")
    parser.add_argument("--min-items", type=int, default=1000)
    parser.add_argument("--degree", type=float, default=25.0, help="world.graph.mean_degree")
    parser.add_argument("--ticks", type=int, default=36, help="timed ticks (5 min each)")
    parser.add_argument("--hour", type=int, default=18, help="hour of day of the first timed tick")
    parser.add_argument("--warmup-ticks", type=int, default=72, help="untimed ticks before")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each configuration")
    parser.add_argument("--profile", action="store_true", help="profile one social-on run")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        _child(json.loads(opts.child))
        return
    tmp = Path(tempfile.mkdtemp(prefix="recoworld-social-scale-"))
    print(f"machine: {_machine()}")
    results: dict[int, dict[str, dict[str, Any]]] = {}
    try:
        for n_users in opts.users:
            for social in (False, True):
                print(f"{n_users:,} users, social {'on' if social else 'off'}: ", end="")
                print(_equivalent_command(_overrides(opts, n_users, social)))
            runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
            for rep in range(opts.repeats):
                order = (False, True) if rep % 2 == 0 else (True, False)
                for social in order:
                    figures = _run(opts, tmp, n_users, social)
                    runs[social].append(figures)
                    print(
                        f"  repeat {rep + 1} social {'on ' if social else 'off'}: "
                        f"build {figures['build_s']:.2f} s, "
                        f"median tick {statistics.median(figures['tick_s']):.4f} s, "
                        f"peak {figures['rss_peak_mib']:,.0f} MiB",
                        flush=True,
                    )
            results[n_users] = {"off": _summary(runs[False]), "on": _summary(runs[True])}
            _print_table(n_users, results[n_users]["off"], results[n_users]["on"])
        _print_scaling(results)
        if opts.profile:
            figures = _run(opts, tmp, max(opts.users), True, profile=True)
            print(f"\nProfile: {max(opts.users):,} users, social on, {opts.ticks} timed ticks")
            print(figures["profile"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if opts.json:
        payload = {
            "argv": sys.argv[1:],
            "machine": _machine(),
            "social_on": SOCIAL_ON,
            "results": {str(n): r for n, r in results.items()},
        }
        opts.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
