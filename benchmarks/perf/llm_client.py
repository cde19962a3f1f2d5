"""Benchmark: requests/s of recoworld's LLM client against a server with a fixed latency.

A local OpenAI-compatible stub (``python -m recoworld.llm.stub``, in its own process) answers
every request after ``--delay`` seconds, at most ``C`` at a time; the client sends batches with
``concurrency = C``. The ideal is ``C / delay`` requests/s; the target is at least 90 % of it for
C in {8, 64, 256}. Usage::

    python benchmarks/perf/llm_client.py --concurrency 8 64 256 --delay 0.2 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from recoworld.llm import ChatRequest, LLMClient, LLMConfig
from recoworld.llm.stub import free_port

SCHEMA = {
    "type": "object",
    "properties": {"action": {"enum": ["skip", "click"]}, "why": {"type": "string"}},
    "required": ["action", "why"],
}


def _start_stub(delay: float, concurrency: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "recoworld.llm.stub"),
            *("--port", str(port), "--delay", str(delay), "--concurrency", str(concurrency)),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/models", timeout=1).read()
            return proc, url
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the stub server did not start")


def measure(concurrency: int, delay: float, waves: int, repeats: int) -> dict[str, float]:
    proc, url = _start_stub(delay, concurrency)
    try:
        config = LLMConfig(base_urls=(url,), model="stub", concurrency=concurrency)
        with LLMClient(config) as client:
            n = concurrency * waves
            rates = []
            for r in range(repeats + 1):  # the first is a warm-up (connections)
                requests = [
                    ChatRequest(
                        messages=({"role": "user", "content": f"repeat {r} request {i}"},),
                        schema=SCHEMA,
                    )
                    for i in range(n)
                ]
                start = time.perf_counter()
                results = client.chat(requests)
                elapsed = time.perf_counter() - start
                assert all(res.valid for res in results), "the stub's replies must validate"
                if r:
                    rates.append(n / elapsed)
    finally:
        proc.kill()
        proc.wait()
    ideal = concurrency / delay
    rate = statistics.median(rates)
    return {
        "concurrency": concurrency,
        "requests_per_s": rate,
        "min": min(rates),
        "max": max(rates),
        "ideal": ideal,
        "share_of_ideal": rate / ideal,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 64, 256])
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--waves", type=int, default=10, help="requests per batch = C x waves")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    opts = parser.parse_args()
    rows = [measure(c, opts.delay, opts.waves, opts.repeats) for c in opts.concurrency]
    print(f"{'C':>5} {'req/s (median)':>15} {'min':>9} {'max':>9} {'ideal':>8} {'share':>7}")
    for row in rows:
        print(
            f"{row['concurrency']:>5} {row['requests_per_s']:>15,.1f} {row['min']:>9,.1f} "
            f"{row['max']:>9,.1f} {row['ideal']:>8,.0f} {row['share_of_ideal']:>7.1%}"
        )
    if opts.json:
        opts.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
