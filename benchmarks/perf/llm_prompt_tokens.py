"""Benchmark: prompt tokens per page decision of recoworld's LLM users, on the default scenario.

Runs the default scenario (numeric users) long enough for memories to fill, gives LLM users full
memories (reflections and session summaries at their kept maximum), then builds the page prompt
of every LLM user with a page in the next tick, exactly as the LLM user model sends it, and
counts its tokens with a real Llama-2 tokenizer (``llama-2-tiny-random.gguf`` from
``../shared/models``, loaded ``vocab_only``), including the Llama-2 chat template. Usage::

    python benchmarks/perf/llm_prompt_tokens.py --users 2000 --ticks 150

Target (issue: LLM-driven users): at most 800 prompt tokens per page decision on the default
scenario (Agent4Rec spends about 2,100).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from recoworld._config import override
from recoworld.scenario import load_scenario
from recoworld.schedule import Simulation
from recoworld.users.llm import LLMUserModel
from recoworld.users.numeric import NumericUserModel

MODEL = (
    Path(__file__).resolve().parents[2].parent / "shared" / "models" / "llama-2-tiny-random.gguf"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--ticks", type=int, default=150, help="numeric ticks to fill memories")
    parser.add_argument("--fraction", type=float, default=0.2)
    parser.add_argument("--model", type=Path, default=MODEL, help="GGUF file for the tokenizer")
    parser.add_argument("--json", type=Path)
    opts = parser.parse_args()
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import format_llama2

    tokenizer = Llama(model_path=str(opts.model), vocab_only=True, verbose=False)
    config = override(
        load_scenario("default"),
        {"world.n_users": opts.users, "llm.fraction": opts.fraction, "llm.client.model": "x"},
    )
    sim = Simulation(config, user_model=NumericUserModel(config.users))
    sim.run(opts.ticks)
    model = LLMUserModel(config, sim.world, sim.user_model, sim.rng.generator("llm"))
    for mind in model.minds.values():  # memories at their kept maximum
        mind.reflections = [
            "I come back for cooking and travel; football bores me after two clips."
        ] * 4
        mind.summaries = [
            "day 1 19:00, 4 pages, watched 9 of 46 (cooking, travel), mood 3/5, left early; "
            'you asked: "more travel, fewer football clips"'
        ] * 4
        mind.instruction = "more travel, fewer football clips please"
    # The next tick's pages: feed composition as the schedule does it, for the LLM users in it.
    request = sim.begin_tick()
    assert request is not None
    feed = sim.compose(sim.policy.recommend(request))
    assert feed is not None
    counts = []
    for row in np.flatnonzero(model.is_llm[feed.users]).tolist():
        ranks = np.flatnonzero(feed.items[row] >= 0)
        prompt = model._page_prompt(
            sim.world, int(feed.users[row]), feed.items[row, ranks], feed.source[row, ranks] == 1
        )
        assert prompt is not None
        text = format_llama2(messages=prompt[0]).prompt  # type: ignore[arg-type]
        counts.append(len(tokenizer.tokenize(text.encode("utf-8"), add_bos=True)))
    figures = {
        "pages": len(counts),
        "median": statistics.median(counts),
        "mean": statistics.fmean(counts),
        "max": max(counts),
        "min": min(counts),
    }
    print(
        f"prompt tokens per page decision (Llama-2 tokenizer, {len(counts)} pages): median "
        f"{figures['median']:.0f}, mean {figures['mean']:.1f}, min {figures['min']}, "
        f"max {figures['max']}"
    )
    if opts.json:
        opts.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
