"""Benchmark: the default scenario for one simulated day, as a whole ``recoworld run`` process.

Runs the real command several times after a warm-up and reports the median, min and max wall
time, CPU time and the peak resident memory of each run (from ``os.wait4``), plus throughput.
Usage::

    python benchmarks/perf/default_day.py --users 100000 --runs 5

Target (issue: foundation): 100,000 users for one simulated day in under 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _command() -> list[str]:
    script = Path(sys.executable).with_name("recoworld")
    return [str(script)] if script.exists() else [sys.executable, "-m", "recoworld.cli"]


def _one_run(args: list[str]) -> dict[str, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({proc.returncode}): {stderr}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    opts = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="recoworld-bench-"))
    args = [
        *_command(),
        "run",
        "default",
        "--users",
        str(opts.users),
        "--days",
        str(opts.days),
        "--out",
        str(out / "run"),
        "-q",
    ]
    try:
        for _ in range(opts.warmup):
            _one_run(args)
        runs = [_one_run(args) for _ in range(opts.runs)]
        manifest = json.loads((out / "run" / "manifest.json").read_text())
    finally:
        shutil.rmtree(out, ignore_errors=True)
    impressions = manifest["tables"]["impressions"]["rows"]
    pages = manifest["totals"]["examined"]
    figures: dict[str, object] = {
        "command": " ".join(["recoworld", *args[len(_command()) :]]),
        "users": opts.users,
        "days": opts.days,
        "ticks": manifest["ticks_completed"],
        "impressions": impressions,
        "runs": opts.runs,
    }
    print(f"{figures['command']}  ({opts.runs} runs after {opts.warmup} warm-up)")
    print(f"{'figure':<16}{'median':>12}{'min':>12}{'max':>12}")
    for key in ("wall_s", "cpu_s", "peak_rss_mib"):
        values = [r[key] for r in runs]
        figures[key] = {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
        }
        print(
            f"{key:<16}{statistics.median(values):>12.2f}{min(values):>12.2f}{max(values):>12.2f}"
        )
    wall = statistics.median(r["wall_s"] for r in runs)
    figures["impressions_per_s"] = impressions / wall
    figures["examined_items_per_s"] = pages / wall
    print(f"impressions/s (median wall): {impressions / wall:,.0f}")
    print(
        f"target: 1 simulated day of {opts.users:,} users < 60 s -> "
        f"{'met' if wall < 60 else 'NOT met'} ({wall:.1f} s)"
    )
    if opts.json:
        opts.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
