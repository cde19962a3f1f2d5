"""Benchmark: a million users on one machine — the default scenario against population size.

Runs the shipped ``default`` scenario with a catalogue of ``--items`` (10,000) items, recording
to a temporary run folder (Parquet, as ``recoworld run`` does), for each population size of
``--users`` (1k → 1M), in two regimes:

- ``busy``: the scenario as shipped (sessions start at the shipped ``clock.start_rate``, users
  come back ``users.activity_mean`` times a day): the run starts at 12:00 and
  ``--busy-warmup-ticks`` untimed ticks (84 = seven hours) let sessions build up, then
  ``--busy-ticks`` ticks are timed from 19:00, the busiest hour of the diurnal curve. A few
  per cent of the users are in session: the realistic evening tick.
- ``saturated``: ``users.activity_mean=1000`` and ``clock.start_rate=1000``: every user not in
  session and not churned starts one at once, so nearly everyone is served every tick — the
  heaviest tick the scenario can have. ``--saturated-warmup-ticks`` untimed ticks (memories and
  inboxes fill), then ``--saturated-ticks`` timed ticks.

Each run is a fresh process (so peak memory does not mix): it builds the world (timed), runs the
warm-up, times the ticks one by one, then waits for the trajectory to be on disk (the last
background write and the rest of the buffer: timed, and counted in the throughput), then closes
the run. Reported per size and regime, medians over ``--repeats`` runs: world build, seconds per
tick (median over the timed ticks), ticks/s and user-steps/s (users served per second, writing
included), user-steps per tick (users in session), peak RSS and peak RSS per user, and the
follow-edge count and bytes (the CSR arrays of the graph and of its transpose), so that
``(peak − edge bytes) / users`` can be checked.

``--degrees`` adds a graph-size sweep at ``--degree-users`` users (mean out-degree 5/10/25).

``--reference-users`` (100,000) also runs, in the same invocation and alternating with
recoworld, the per-user-object reference loop of ``reference_loop.py`` (RecSim / OASIS style)
on the same world and regime, after the same warm-up, on the same busy hour or on
``--reference-ticks`` saturated ticks (each takes seconds), and reports both throughputs in
user-steps/s (writing at the end included) and their ratio.

``--profile`` runs one more process under cProfile: one timed tick of the largest population
(``--profile-mode``, default ``saturated``), and prints the schedule's stages and the top
functions. Usage::

    python benchmarks/perf/scale.py --users 1000 10000 100000 1000000 --repeats 3
    python benchmarks/perf/scale.py --users 1000000 --modes saturated --repeats 1 --profile

Acceptance (issue: scale): one full tick of the default scenario (>= 10,000 items) for
1,000,000 users in at most 10 s on 2 cores; peak memory at most 2 KiB per user plus the edges;
at least 30x the per-user reference loop at 100,000 users.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from default_day import _one_run  # whole-process wall, CPU and peak RSS (os.wait4)
from social_scale import MIB, _machine, _rss_mib

MODES = ("busy", "saturated")
#: The saturated regime: everyone who can be in session is.
SATURATED = {"users.activity_mean": 1000.0, "clock.start_rate": 1000.0}
BUSY_HOUR = 19
#: Schedule stages for the profile: (label, function names whose cumulative time it is).
STAGES = (
    ("1-2 activate, candidates", ("begin_tick",)),
    ("3 recommend (policy)", ("recommend",)),
    ("3-4 validate, compose feed", ("compose",)),
    ("5 respond (user model)", ("respond",)),
    ("6 apply (+ share delivery)", ("_6_apply",)),
    ("7 instructions", ("_7_instructions",)),
    ("8 leave / return", ("_8_leave_return",)),
    ("9 record (stage + commit)", ("_9_record",)),
    ("trajectory on disk (drain)", ("flush",)),
)


def _overrides(opts: argparse.Namespace, n_users: int, mode: str, degree: float | None) -> dict:
    """Scenario keys of one configuration (the ``--set`` values of ``recoworld run``)."""
    from recoworld import load_scenario

    per_hour = 60 // load_scenario("default").clock.tick_minutes
    warmup, ticks = _ticks(opts, mode)
    if mode == "busy" and warmup % per_hour:
        raise SystemExit(f"--busy-warmup-ticks must be a multiple of {per_hour} (whole hours)")
    start = (BUSY_HOUR - warmup // per_hour) % 24 if mode == "busy" else BUSY_HOUR
    updates: dict[str, Any] = {
        "world.n_users": n_users,
        "world.n_items": opts.items,
        "clock.start_hour": start,
        "clock.ticks": warmup + ticks,
    }
    if degree is not None:
        updates["world.graph.mean_degree"] = degree
    if mode == "saturated":
        updates.update(SATURATED)
    return updates


def _ticks(opts: argparse.Namespace, mode: str, reference: bool = False) -> tuple[int, int]:
    """(warm-up, timed) ticks; the reference loop times ``--reference-ticks`` saturated ticks
    (fewer: each takes seconds) and the same busy hour as recoworld."""
    if mode == "busy":
        return opts.busy_warmup_ticks, opts.busy_ticks
    timed = opts.reference_ticks if reference else opts.saturated_ticks
    return opts.saturated_warmup_ticks, timed


def _equivalent_command(updates: dict[str, Any]) -> str:
    sets = " ".join(f"--set {key}={value}" for key, value in updates.items())
    return f"recoworld run default {sets} --out DIR -q"


def _edge_bytes(graph: Any) -> int:
    """Bytes of the follow graph's CSR arrays and, once built, of its cached transpose."""
    total = graph.indptr.nbytes + graph.indices.nbytes
    followers = graph._followers  # the transpose share delivery builds on first use
    if followers is not None:
        total += followers.indptr.nbytes + followers.indices.nbytes
    return int(total)


def _child(spec: dict[str, Any]) -> None:
    """One configuration in this (fresh) process; writes its figures to ``spec['result']``."""
    from recoworld import load_scenario, override

    config = override(load_scenario("default"), spec["overrides"])
    out = Path(spec["out"])
    if spec["kind"] == "reference":
        import reference_loop

        figures = reference_loop.run(config, spec["warmup_ticks"], spec["ticks"], out)
        figures["rss_peak_mib"] = _rss_mib()
        Path(spec["result"]).write_text(json.dumps(figures))
        return
    from recoworld import Simulation

    start = time.perf_counter()
    sim = Simulation(config, out_dir=out)
    build_s = time.perf_counter() - start
    rss_build = _rss_mib()
    for _ in range(spec["warmup_ticks"]):
        sim.step()
    assert sim.recorder is not None
    sim.recorder.flush()  # the warm-up's rows are written before the timed ticks
    profiler = cProfile.Profile() if spec["profile"] else None
    tick_s, tick_cpu_s, tick_sys_s, pages, impressions = [], [], [], [], []
    for _ in range(spec["ticks"]):
        if profiler is not None:
            profiler.enable()
        start, cpu, sys_ = time.perf_counter(), time.process_time(), os.times().system
        stats = sim.step()
        tick_s.append(time.perf_counter() - start)
        tick_cpu_s.append(time.process_time() - cpu)
        tick_sys_s.append(os.times().system - sys_)
        if profiler is not None:
            profiler.disable()
        pages.append(stats.active)
        impressions.append(stats.impressions)
    if profiler is not None:
        profiler.enable()
    start = time.perf_counter()
    sim.recorder.flush()  # the timed ticks' rows on disk: part of their cost
    drain_s = time.perf_counter() - start
    if profiler is not None:
        profiler.disable()
    graph = sim.world.graph
    edges, edge_bytes = graph.n_edges, _edge_bytes(graph)
    start = time.perf_counter()
    sim.finish("completed")
    finish_s = time.perf_counter() - start
    figures = {
        "build_s": build_s,
        "tick_s": tick_s,
        "tick_cpu_s": tick_cpu_s,
        "tick_sys_s": tick_sys_s,
        "pages": pages,
        "impressions": impressions,
        "drain_s": drain_s,
        "finish_s": finish_s,
        "edges": edges,
        "edge_bytes": edge_bytes,
        "rss_build_mib": rss_build,
        "rss_peak_mib": _rss_mib(),
        "run_folder_mib": sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / MIB**2,
    }
    if profiler is not None:
        figures["stages"] = _stages(profiler)
        text = io.StringIO()
        stats_ = pstats.Stats(profiler, stream=text).sort_stats("cumulative")
        text.write("Top 25 recoworld functions by cumulative time:\n")
        stats_.print_stats(r"recoworld[/\\]", 25)
        text.write("Top 15 functions by own time:\n")
        stats_.sort_stats("tottime").print_stats(15)
        figures["profile"] = text.getvalue()
    Path(spec["result"]).write_text(json.dumps(figures))


def _stages(profiler: cProfile.Profile) -> list[tuple[str, float]]:
    """Cumulative seconds of each schedule stage (:data:`STAGES`) in a profile."""
    raw = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    out = []
    for label, names in STAGES:
        total = 0.0
        for (filename, _, name), (_, _, _, cumulative, _) in raw.items():
            if name in names and "recoworld" in filename.replace("\\", "/"):
                total += cumulative
        out.append((label, total))
    return out


def _run(
    opts: argparse.Namespace,
    tmp: Path,
    kind: str,
    n_users: int,
    mode: str,
    *,
    degree: float | None = None,
    profile: bool = False,
) -> dict[str, Any]:
    """One configuration in a fresh process: its figures plus whole-process wall, CPU and RSS."""
    name = f"{kind}-{n_users}-{mode}-{degree}"
    warmup, ticks = _ticks(opts, mode, reference=kind == "reference")
    if profile:
        ticks = 1
    spec: dict[str, Any] = {
        "kind": kind,
        "overrides": _overrides(opts, n_users, mode, degree),
        "out": str(tmp / name),
        "result": str(tmp / f"{name}.json"),
        "warmup_ticks": warmup,
        "ticks": ticks,
        "profile": profile,
    }
    process = _one_run([sys.executable, __file__, "--child", json.dumps(spec)])
    figures = json.loads(Path(spec["result"]).read_text())
    shutil.rmtree(spec["out"], ignore_errors=True)
    return {**figures, **{f"process_{key}": value for key, value in process.items()}}


def _summary(runs: list[dict[str, Any]], n_users: int) -> dict[str, Any]:
    """Medians over repetitions of each run's figures."""

    def med(fn: Any) -> float:
        return float(statistics.median(fn(r) for r in runs))

    def total_s(r: dict[str, Any]) -> float:  # the timed ticks with their writing
        return sum(r["tick_s"]) + r.get("drain_s", r.get("write_s", 0.0))

    first = runs[0]
    n_ticks = len(first["tick_s"])
    out: dict[str, Any] = {
        "repeats": len(runs),
        "users": n_users,
        "build_s": med(lambda r: r["build_s"]),
        "tick_median_s": med(lambda r: statistics.median(r["tick_s"])),
        "tick_max_s": med(lambda r: max(r["tick_s"])),
        "tick_with_write_s": med(lambda r: total_s(r) / n_ticks),
        "ticks_per_s": med(lambda r: n_ticks / total_s(r)),
        "steps_per_s": med(lambda r: sum(r["pages"]) / total_s(r)),
        "us_per_step": med(lambda r: 1e6 * total_s(r) / sum(r["pages"])),
        "steps_per_tick": statistics.fmean(first["pages"]),
        "in_session_share": statistics.fmean(first["pages"]) / n_users,
        "rss_peak_mib": med(lambda r: r["process_peak_rss_mib"]),
        "tick_range_s": [
            min(statistics.median(r["tick_s"]) for r in runs),
            max(statistics.median(r["tick_s"]) for r in runs),
        ],
    }
    if "edge_bytes" in first:
        peak = out["rss_peak_mib"] * MIB * 1024
        out.update(
            edges=first["edges"],
            edge_mib=first["edge_bytes"] / MIB**2,
            bytes_per_user=peak / n_users,
            bytes_per_user_less_edges=(peak - first["edge_bytes"]) / n_users,
            rss_build_mib=med(lambda r: r["rss_build_mib"]),
            tick_cpu_median_s=med(lambda r: statistics.median(r["tick_cpu_s"])),
            tick_sys_median_s=med(lambda r: statistics.median(r["tick_sys_s"])),
            drain_s=med(lambda r: r["drain_s"]),
            impressions_per_tick=statistics.fmean(first["impressions"]),
            run_folder_mib=med(lambda r: r["run_folder_mib"]),
        )
    else:
        out["write_s"] = med(lambda r: r["write_s"])
    return out


ROWS = (
    ("users", "users", "{:,}"),
    ("world build (s)", "build_s", "{:.2f}"),
    ("user-steps/tick (in session)", "steps_per_tick", "{:,.0f}"),
    ("share of users in session", "in_session_share", "{:.1%}"),
    ("s/tick, median", "tick_median_s", "{:.3f}"),
    ("s/tick, max", "tick_max_s", "{:.3f}"),
    ("CPU s/tick, median", "tick_cpu_median_s", "{:.3f}"),
    ("  of which system", "tick_sys_median_s", "{:.3f}"),
    ("s/tick with writing", "tick_with_write_s", "{:.3f}"),
    ("ticks/s", "ticks_per_s", "{:.2f}"),
    ("user-steps/s", "steps_per_s", "{:,.0f}"),
    ("µs per user-step", "us_per_step", "{:.2f}"),
    ("impressions/tick", "impressions_per_tick", "{:,.0f}"),
    ("follow edges", "edges", "{:,}"),
    ("edge bytes (MiB)", "edge_mib", "{:.1f}"),
    ("peak RSS after build (MiB)", "rss_build_mib", "{:,.0f}"),
    ("peak RSS (MiB)", "rss_peak_mib", "{:,.0f}"),
    ("peak RSS / user (B)", "bytes_per_user", "{:,.0f}"),
    ("(peak − edges) / user (B)", "bytes_per_user_less_edges", "{:,.0f}"),
    ("run folder (MiB)", "run_folder_mib", "{:.1f}"),
)


def _print_table(title: str, columns: list[dict[str, Any]], head: str = "users") -> None:
    print(f"\n{title}")
    print(f"{head:<30}" + "".join(f"{c[head]:>14,g}" for c in columns))
    for label, key, fmt in ROWS:
        if key != head and all(key in c for c in columns):
            print(f"{label:<30}" + "".join(f"{fmt.format(c[key]):>14}" for c in columns))
    ranges = ", ".join(f"{lo:.3f}–{hi:.3f}" for lo, hi in (c["tick_range_s"] for c in columns))
    print(f"(run medians of s/tick ranged: {ranges})")


def _acceptance(results: dict[str, dict[int, dict[str, Any]]], ref: dict[str, Any]) -> None:
    print("\nAcceptance")
    for mode, sizes in results.items():
        top = sizes.get(1_000_000)
        if top is None:
            continue
        tick = top["tick_with_write_s"]
        per_user = top["bytes_per_user_less_edges"]
        print(
            f"  {mode}: 1M-user tick {tick:.2f} s (<= 10: {'met' if tick <= 10 else 'NOT met'}); "
            f"(peak - edges)/user {per_user:,.0f} B (<= 2048: "
            f"{'met' if per_user <= 2048 else 'NOT met'})"
        )
    for mode, pair in ref.items():
        ratio = pair["recoworld"]["steps_per_s"] / pair["reference"]["steps_per_s"]
        print(
            f"  {mode}: {ratio:.1f}x the per-user reference loop at "
            f"{pair['recoworld']['users']:,} users (>= 30: {'met' if ratio >= 30 else 'NOT met'})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="*", default=[1000, 10_000, 100_000])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--items", type=int, default=10_000, help="world.n_items")
    parser.add_argument("--busy-warmup-ticks", type=int, default=84)
    parser.add_argument("--busy-ticks", type=int, default=12, help="timed ticks from 19:00")
    parser.add_argument("--saturated-warmup-ticks", type=int, default=2)
    parser.add_argument("--saturated-ticks", type=int, default=3)
    parser.add_argument("--degrees", type=float, nargs="*", default=[], help="mean out-degrees")
    parser.add_argument("--degree-users", type=int, default=100_000)
    parser.add_argument("--reference-users", type=int, default=0, help="0: no reference loop")
    parser.add_argument("--reference-ticks", type=int, default=2, help="its timed saturated ticks")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-mode", choices=MODES, default="saturated")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        _child(json.loads(opts.child))
        return
    tmp = Path(tempfile.mkdtemp(prefix="recoworld-scale-"))
    print(f"machine: {_machine()}")
    results: dict[str, dict[int, dict[str, Any]]] = {mode: {} for mode in opts.modes}
    degrees: dict[str, dict[float, dict[str, Any]]] = {mode: {} for mode in opts.modes}
    reference: dict[str, dict[str, Any]] = {}
    payload: dict[str, Any] = {"argv": sys.argv[1:], "machine": _machine()}
    try:
        for mode in opts.modes:
            for n_users in opts.users:
                command = _equivalent_command(_overrides(opts, n_users, mode, None))
                print(f"{mode}, {n_users:,} users: {command}")
                runs = []
                for rep in range(opts.repeats):
                    figures = _run(opts, tmp, "recoworld", n_users, mode)
                    runs.append(figures)
                    print(
                        f"  repeat {rep + 1}: build {figures['build_s']:.2f} s, "
                        f"median tick {statistics.median(figures['tick_s']):.3f} s "
                        f"({statistics.fmean(figures['pages']):,.0f} in session), "
                        f"drain {figures['drain_s']:.2f} s, "
                        f"peak {figures['process_peak_rss_mib']:,.0f} MiB",
                        flush=True,
                    )
                results[mode][n_users] = _summary(runs, n_users)
            if opts.users:
                _print_table(
                    f"{mode}: medians of {opts.repeats} runs", list(results[mode].values())
                )
            for degree in opts.degrees:
                n = opts.degree_users
                command = _equivalent_command(_overrides(opts, n, mode, degree))
                print(f"{mode}, {n:,} users, degree {degree:g}: {command}")
                runs = [
                    _run(opts, tmp, "recoworld", n, mode, degree=degree)
                    for _ in range(opts.repeats)
                ]
                degrees[mode][degree] = _summary(runs, n)
                degrees[mode][degree]["degree"] = degree
            if opts.degrees:
                cols = list(degrees[mode].values())
                title = f"{mode}: graph sweep at {opts.degree_users:,} users, medians"
                _print_table(title, cols, head="degree")
            if opts.reference_users:
                n = opts.reference_users
                pair: dict[str, list[dict[str, Any]]] = {"recoworld": [], "reference": []}
                print(f"\n{mode}: reference loop vs recoworld at {n:,} users, alternating")
                for rep in range(opts.repeats):
                    order = ("reference", "recoworld") if rep % 2 else ("recoworld", "reference")
                    for kind in order:
                        figures = _run(opts, tmp, kind, n, mode)
                        pair[kind].append(figures)
                        total = sum(figures["tick_s"]) + figures.get(
                            "drain_s", figures.get("write_s", 0.0)
                        )
                        print(
                            f"  repeat {rep + 1} {kind:<9}: "
                            f"{sum(figures['pages']) / total:,.0f} user-steps/s "
                            f"({len(figures['tick_s'])} ticks, "
                            f"{statistics.fmean(figures['pages']):,.0f} in session)",
                            flush=True,
                        )
                reference[mode] = {k: _summary(v, n) for k, v in pair.items()}
                a, b = reference[mode]["recoworld"], reference[mode]["reference"]
                print(f"{'figure':<30}{'recoworld':>14}{'reference':>14}{'ratio':>9}")
                for label, key, fmt in (
                    ("user-steps/tick", "steps_per_tick", "{:,.0f}"),
                    ("s/tick, median", "tick_median_s", "{:.3f}"),
                    ("s/tick with writing", "tick_with_write_s", "{:.3f}"),
                    ("user-steps/s", "steps_per_s", "{:,.0f}"),
                    ("µs per user-step", "us_per_step", "{:.2f}"),
                    ("world build (s)", "build_s", "{:.2f}"),
                    ("peak RSS (MiB)", "rss_peak_mib", "{:,.0f}"),
                ):
                    ratio = a["steps_per_s"] / b["steps_per_s"] if key == "steps_per_s" else None
                    cell = f"{ratio:.1f}x" if ratio else ""
                    print(f"{label:<30}{fmt.format(a[key]):>14}{fmt.format(b[key]):>14}{cell:>9}")
        _acceptance(results, reference)
        if opts.profile:
            n = max(opts.users or [opts.degree_users])
            figures = _run(opts, tmp, "recoworld", n, opts.profile_mode, profile=True)
            served = figures["pages"][0]
            print(f"\nProfile: {n:,} users, {opts.profile_mode}, one timed tick ({served:,} in")
            print("session), then the drain; Parquet encoding runs on the recorder's thread, so")
            print("the main thread's profile shows it as the drain's wait")
            for label, seconds in figures["stages"]:
                print(f"  {label:<30}{seconds:>8.3f} s")
            print(figures["profile"])
            payload["profile"] = {
                "users": n,
                "mode": opts.profile_mode,
                "stages": figures["stages"],
            }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if opts.json:
        payload.update(
            results={m: {str(n): r for n, r in s.items()} for m, s in results.items()},
            degrees={m: {str(d): r for d, r in s.items()} for m, s in degrees.items()},
            reference=reference,
        )
        opts.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
