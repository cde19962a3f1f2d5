"""The ``recoworld`` command.

User errors (a missing scenario, an unknown key, a bad value) print one line to stderr and exit
with status 2; an interrupted run (Ctrl-C, SIGTERM) keeps every completed tick, prints its summary
and exits with status 130.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from recoworld import __version__
from recoworld._progress import spinner
from recoworld.errors import RecoworldError

__all__ = ["main"]

logger = logging.getLogger(__name__)

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

_RUN_EXAMPLES = """\
examples:
  recoworld run                                  # the default scenario, seed 0
  recoworld run retention --seed 3 --days 2      # a shipped scenario, shortened
  recoworld run envs/social.yaml --out runs/s1 --report   # a scenario file; an HTML report
  recoworld run --users 100000 --ticks 12        # exactly 12 ticks of a bigger world
  recoworld run --policy oracle --set users.max_instructions=0
  recoworld run --dataset ../shared/data/lastfm-2k --days 1   # a world built from real data
"""


_TOP_EXAMPLES = """\
examples:
  recoworld doctor                               # what is installed, and does it work?
  recoworld run --users 2000 --days 1            # a first run (seconds)
  recoworld experiment echo-chamber --seeds 2 --set world.n_users=1000
  recoworld run --help                           # each command's options and examples

documentation: docs/index.md (mkdocs serve, with the docs extra)
"""

_ENVS_EXAMPLES = """\
examples:
  recoworld envs                                 # scenarios and environment ids, as tables
  recoworld envs --json                          # the same, machine-readable
"""

_DOCTOR_EXAMPLES = """\
examples:
  recoworld doctor                               # versions, extras, compiled kernels
  recoworld doctor --json                        # the same, machine-readable
  recoworld doctor --llm-base-url http://127.0.0.1:8765/v1 --llm-model tiny
  recoworld doctor --scenario envs/social.yaml --data-dir ../shared/data
"""


def _parse_set(values: Sequence[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise RecoworldError(f"--set {item!r}: expected KEY=VALUE, e.g. world.n_users=5000")
        out[key.strip()] = yaml.safe_load(raw)
    return out


def _dataset_arguments(parser: argparse.ArgumentParser, seed_help: str) -> None:
    """The arguments every command over a real dataset takes."""
    parser.add_argument("--dataset", type=Path, required=True, help="dataset folder")
    parser.add_argument("--format", help="loader format (default: detected from the files)")
    parser.add_argument("--seed", type=int, default=0, help=seed_help)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recoworld",
        description="Simulate users, recommenders and a social graph; log everything as Parquet.",
        epilog=_TOP_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"recoworld {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run a scenario and write its trajectory",
        description="Run a scenario and write its trajectory (Parquet) and manifest to a folder.",
        epilog=_RUN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "scenario", nargs="?", default="default", help="shipped scenario name or YAML path"
    )
    run.add_argument("--seed", type=int, help="root seed (default: the scenario's)")
    run.add_argument("--out", type=Path, help="run folder (default: runs/<scenario>-seed<seed>)")
    run.add_argument("--users", type=int, help="population size (world.n_users)")
    run.add_argument(
        "--dataset",
        help="build the world from a real dataset folder (world.dataset; see docs/data.md)",
    )
    run.add_argument("--days", type=float, help="simulated days (clock.days)")
    run.add_argument("--ticks", type=int, help="run exactly N ticks (clock.ticks)")
    run.add_argument("--policy", help="recommender policy name (policy.name)")
    run.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="N",
        help="write checkpoint.pkl into the run folder every N ticks (record.checkpoint_every); "
        "an interrupted run always leaves one; continue with `recoworld resume RUN_DIR`",
    )
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any scenario key, e.g. --set users.patience_mean=0.7 (repeatable)",
    )
    llm = run.add_argument_group(
        "LLM users", "drive some users by a language model on an OpenAI-compatible server"
    )
    llm.add_argument("--llm-base-url", action="append", help="server URL (…/v1); repeatable")
    llm.add_argument("--llm-model", help="model name (llm.client.model)")
    llm.add_argument("--llm-fraction", type=float, help="share of users the LLM drives")
    llm.add_argument("--llm-budget-tokens", type=int, help="stop cleanly after N tokens")
    llm.add_argument("--llm-concurrency", type=int, help="requests in flight at once")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    run.add_argument(
        "--report",
        action="store_true",
        help="also write RUN_DIR/report.html (recoworld report) and print where it is",
    )

    bench = sub.add_parser(
        "bench",
        help="run a benchmark suite: scenario x policies x seeds, with a table and plots",
        description=(
            "Run every policy of a suite on every seed (in parallel processes, or as tasks on a "
            "Ray cluster), then write results.parquet/.csv, summary.md (means with 95%% "
            "confidence intervals) and plots."
        ),
        epilog="examples:\n  recoworld bench benchmarks/suites/default.yaml --jobs 2\n"
        "  recoworld bench benchmarks/suites/instructions.yaml --seeds 3 --out runs/bi --report\n"
        "  recoworld bench benchmarks/suites/instructions.yaml --set world.seed=1\n"
        "  recoworld bench benchmarks/suites/default.yaml --backend ray --address auto\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument("suite", type=Path, help="suite YAML (benchmarks/suites/*.yaml)")
    bench.add_argument("--jobs", type=int, default=1, help="parallel processes (local backend)")
    bench.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local: a process pool on this machine; ray: one Ray task per run, on the "
        "cluster's CPUs (needs the ray extra; see docs/scaling.md)",
    )
    bench.add_argument(
        "--address",
        help="Ray cluster to use with --backend ray (auto: the one `ray start --head` started "
        "here; default: RAY_ADDRESS, else a local cluster for this command)",
    )
    bench.add_argument("--seeds", type=int, help="seeds (default: the suite's)")
    bench.add_argument("--out", type=Path, help="output folder (default: runs/bench-<suite>)")
    bench.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario key for every run, on top of the suite's set (repeatable)",
    )
    bench.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    bench.add_argument(
        "--report",
        action="store_true",
        help="also write OUT/report.html (recoworld report) and print where it is",
    )

    experiment = sub.add_parser(
        "experiment",
        help="run a social-phenomenon experiment: conditions x seeds, a table and plots",
        description=(
            "Run every condition of an experiment on seeds 0..N-1 (in parallel processes), then "
            "write results.csv (one row per seed and condition), series.csv, summary.md (means "
            "with 95%% confidence intervals) and plots, and print the table. --set applies to "
            "every condition: scenario keys, or the experiment's parameters as params.NAME. "
            "See docs/experiments.md."
        ),
        epilog="examples:\n  recoworld experiment --list\n"
        "  recoworld experiment cascade-theory --seeds 5\n"
        "  recoworld experiment cascade-theory --set world.graph.mean_degree=4 "
        "--set params.runs=400\n"
        "  recoworld experiment filter-bubble --seeds 5 --jobs 2 --out runs/fb\n"
        "  recoworld experiment filter-bubble --set world.n_users=500 --set clock.days=1\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    experiment.add_argument("name", nargs="?", help="experiment name (see --list)")
    experiment.add_argument("--list", action="store_true", help="list the experiments and exit")
    experiment.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    experiment.add_argument(
        "--out", type=Path, help="output folder (default: runs/experiment-<name>)"
    )
    experiment.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario key or a parameter (params.NAME) in every condition (repeatable)",
    )
    experiment.add_argument("--jobs", type=int, default=1, help="parallel processes")
    experiment.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    resume = sub.add_parser(
        "resume",
        help="continue a run from its checkpoint, byte for byte",
        description=(
            "Continue a run from the checkpoint in its folder (written every "
            "record.checkpoint_every ticks, and whenever a run is interrupted) to the scenario's "
            "horizon, or for N more ticks; the run folder then holds exactly the trajectory of "
            "a run that never stopped."
        ),
        epilog=(
            "examples:\n"
            "  recoworld run --users 100000 --days 7 --checkpoint-every 288 --out runs/week\n"
            "  recoworld resume runs/week              # after Ctrl-C, a crash or a reboot\n"
            "  recoworld resume runs/week/checkpoint.pkl --ticks 12"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    resume.add_argument("checkpoint", type=Path, help="run folder or checkpoint file")
    resume.add_argument("--ticks", type=int, help="run N more ticks (default: to the horizon)")
    resume.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    replay = sub.add_parser(
        "replay",
        help="re-run an LLM run from its response cache, with no server, and compare",
        description=(
            "Re-run a recorded run from its manifest, answering every LLM call from the run's "
            "response cache (no server is contacted), into a new folder; then compare the "
            "trajectory files byte for byte. Exit status 0 when identical, 1 when not."
        ),
        epilog="examples:\n  recoworld replay runs/default-seed0\n"
        "  recoworld replay runs/default-seed0 --out /tmp/replayed\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("run_dir", type=Path, help="the recorded run folder")
    replay.add_argument("--out", type=Path, help="replay folder (default: RUN_DIR-replay)")
    replay.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    from recoworld.report import add_report_arguments

    report = sub.add_parser(
        "report",
        help="write a self-contained HTML report of a run or a benchmark",
        description=(
            "Write one static HTML file (tables, inline SVG charts and, for a run, a session "
            "viewer) that loads nothing from the network; print its path. See docs/reports.md."
        ),
        epilog="examples:\n  recoworld report runs/default-seed0\n"
        "  recoworld report runs/bench-default --out bench.html\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_report_arguments(report)

    from recoworld.probe import add_probe_parser

    add_probe_parser(sub)
    envs = sub.add_parser(
        "envs",
        help="list the shipped scenarios and the registered environments",
        description="List the shipped scenarios (envs/*.yaml) and registered environment ids.",
        epilog=_ENVS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    envs.add_argument("--json", action="store_true", help="machine-readable output")

    doctor = sub.add_parser(
        "doctor",
        help="check the installation: versions, optional extras, kernels, data, LLM server",
        description=(
            "Print the versions of Python, recoworld and its core libraries; which optional "
            "extras are installed (and how to install the others); whether the compiled kernels "
            "work; with --data-dir, which datasets a data folder holds; and whether the LLM "
            "endpoint answers (GET /models: latency and served models) — the one given by "
            "--llm-base-url, else the scenario's llm.client, else OPENAI_BASE_URL. The API key "
            "is read from the environment and never printed. Exit status 0 when everything "
            "asked for works, 1 when something does not (an endpoint that does not answer, a "
            "model it does not serve, a missing data folder, kernels that fail)."
        ),
        epilog=_DOCTOR_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    doctor.add_argument(
        "--llm-base-url",
        action="append",
        metavar="URL",
        help="OpenAI-compatible endpoint to check (…/v1); repeatable",
    )
    doctor.add_argument(
        "--llm-model", metavar="NAME", help="model the endpoint must serve (default: OPENAI_MODEL)"
    )
    doctor.add_argument(
        "--scenario",
        help="take the LLM endpoint, model and dataset from this scenario (name or YAML path)",
    )
    doctor.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="a data folder to check (e.g. ../shared/data)"
    )
    doctor.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds to wait for each endpoint (default 5)",
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument("-q", "--quiet", action="store_true", help="no progress spinner")

    personas = sub.add_parser(
        "personas",
        help="build a persona pack from a dataset's train interactions",
        description=(
            "Build one persona per user from a dataset's train interactions (Agent4Rec's "
            "activity, diversity and conformity levels, recoworld's traits, favourite and "
            "disliked genres, demographics, a description) and write them as a validated "
            "persona pack (JSON Lines) with provenance. Data without a split get the per-user "
            "split of the fidelity benchmark. See docs/data-personas.md."
        ),
        epilog="examples:\n  recoworld personas --dataset ../shared/data/ml-latest-small\n"
        "  recoworld personas --dataset ../shared/data/ml-1m-agent4rec --out personas/a4r.jsonl\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _dataset_arguments(personas, "split seed (data without a split)")
    personas.add_argument(
        "--out", type=Path, help="pack file (default: personas/generated/<dataset>.jsonl)"
    )
    personas.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    calibrate = sub.add_parser(
        "calibrate",
        help="fit the numeric user model to a dataset's train split",
        description=(
            "Fit the numeric user model's rating rule (and activity, where the data has "
            "timestamps) on a dataset's train split; report the rating JSD and RMSE on the "
            "held-out ratings; write calibration.yaml (a scenario file with the fitted users: "
            "keys) and calibration.json (the report). See docs/data-personas.md."
        ),
        epilog="examples:\n  recoworld calibrate --dataset ../shared/data/ml-latest-small\n"
        "  recoworld run runs/calibrate-ml-latest-small/calibration.yaml\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _dataset_arguments(calibrate, "split and world seed")
    calibrate.add_argument(
        "--out", type=Path, help="output folder (default: runs/calibrate-<dataset>)"
    )
    calibrate.add_argument(
        "--scenario", help="scenario whose user model is calibrated (default: the defaults)"
    )
    calibrate.add_argument("--json", action="store_true", help="print the report as JSON")
    calibrate.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    fidelity = sub.add_parser(
        "fidelity",
        help="measure how well simulated users tell a real user's taste (Agent4Rec protocol)",
        description=(
            "Build simulated users from a dataset's train interactions and run Agent4Rec's "
            "taste-discrimination protocol at each ratio (accuracy, precision, recall, F1), plus "
            "rating and behaviour realism. Data without a split get a per-user random 20% "
            "held out. See docs/fidelity.md."
        ),
        epilog="examples:\n  recoworld fidelity --dataset ../shared/data/ml-1m-agent4rec\n"
        "  recoworld fidelity --dataset ../shared/data/ml-latest-small --ratios 1,9 --json\n"
        "  recoworld fidelity --dataset DATA --user-model llm --llm-base-url URL --llm-model M\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _dataset_arguments(fidelity, "lists and split seed")
    fidelity.add_argument("--protocol", choices=["agent4rec"], default="agent4rec")
    fidelity.add_argument("--ratios", default="1,2,3,9", help="negatives per positive, e.g. 1,9")
    fidelity.add_argument("--user-model", choices=["numeric", "llm"], default="numeric")
    fidelity.add_argument("--json", action="store_true", help="machine-readable output")
    fidelity.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    fidelity_llm = fidelity.add_argument_group("LLM users", "for --user-model llm")
    fidelity_llm.add_argument("--llm-base-url", action="append", help="server URL (…/v1)")
    fidelity_llm.add_argument("--llm-model", help="model name")
    fidelity_llm.add_argument("--llm-budget-tokens", type=int, help="stop after N tokens")
    fidelity_llm.add_argument("--llm-concurrency", type=int, help="requests in flight at once")
    fidelity_llm.add_argument("--llm-cache", type=Path, help="response cache (SQLite)")
    return parser


def _cmd_envs(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from recoworld.envs.registration import ENVS
    from recoworld.scenario import list_scenarios

    infos = list_scenarios()
    if args.json:
        rows: list[dict[str, Any]] = [
            {"id": i.name, "kind": "scenario", "description": i.description, "path": str(i.path)}
            for i in infos
        ]
        rows += [{"id": e.id, "kind": e.kind, "description": e.description} for e in ENVS]
        print(json.dumps(rows, indent=2))
        return 0
    console = Console()
    table = Table(title="recoworld scenarios (recoworld run NAME)", show_lines=False)
    table.add_column("name", style="bold")
    table.add_column("description")
    for info in infos:
        table.add_row(info.name, info.description)
    console.print(table)
    envs = Table(title="environments (recoworld.make(ID))", show_lines=False)
    envs.add_column("id", style="bold")
    envs.add_column("kind")
    envs.add_column("description")
    for entry in ENVS:
        envs.add_row(entry.id, entry.kind, entry.description)
    console.print(envs)
    return 0


class _StopFlag:
    """First SIGINT/SIGTERM asks the run to stop after the current tick; a second SIGINT aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.requested

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _cmd_run(args: argparse.Namespace) -> int:

    from recoworld._config import override
    from recoworld.scenario import load_scenario
    from recoworld.schedule import Simulation

    config = load_scenario(args.scenario)
    updates = _parse_set(args.set)
    for key, value in (
        ("seed", args.seed),
        ("world.n_users", args.users),
        ("world.dataset", args.dataset),
        ("clock.days", args.days),
        ("clock.ticks", args.ticks),
        ("policy.name", args.policy),
        ("record.checkpoint_every", args.checkpoint_every),
        ("llm.client.base_urls", args.llm_base_url),
        ("llm.client.model", args.llm_model),
        ("llm.fraction", args.llm_fraction),
        ("llm.client.budget_tokens", args.llm_budget_tokens),
        ("llm.client.concurrency", args.llm_concurrency),
    ):
        if value is not None:
            updates[key] = value
    if args.policy is not None and "policy.params" not in updates:
        updates["policy.params"] = {}
    if updates:
        config = override(config, updates)
    out = args.out or Path("runs") / f"{config.name}-seed{config.seed}"
    with spinner("building the world…", quiet=args.quiet):
        sim = Simulation(config, out_dir=out)
    return _execute(sim, out, config.name, args.quiet, report=args.report)


def _execute(
    sim: Any,
    out: Path,
    title: str,
    quiet: bool,
    n_ticks: int | None = None,
    *,
    report: bool = False,
) -> int:
    """Run ``sim`` with a progress bar and Ctrl-C handling; print the summary (and, with
    ``report``, write the HTML report of what was recorded and print its path)."""
    from recoworld._progress import tick_progress
    from recoworld.metrics.summary import summarize_run

    status = "failed"
    with tick_progress(sim, title, quiet=quiet) as on_tick, _StopFlag() as stop:
        result = sim.run(n_ticks, progress=on_tick, should_stop=stop)
        status = result.status
    summary = summarize_run(out)
    _print_summary(summary, result.status, result.ticks, sim.horizon)
    print(f"Run folder: {out.resolve()}")
    if report:
        _report(out)
    if status == "interrupted":
        print(
            f"recoworld: interrupted after {result.ticks} ticks; every completed tick is saved; "
            f"continue with: recoworld resume {out}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if status == "budget_exhausted":
        print(
            f"recoworld: stopped after {result.ticks} ticks: {sim.stop_reason}; "
            "every completed tick is saved",
            file=sys.stderr,
        )
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from recoworld._progress import count_progress
    from recoworld.bench import load_suite, run_suite

    suite = load_suite(args.suite)
    if args.set:
        suite = dataclasses.replace(suite, overrides={**suite.overrides, **_parse_set(args.set)})
    if args.jobs < 1:
        raise RecoworldError(f"--jobs: expected an integer >= 1, got {args.jobs}")
    if args.address is not None and args.backend != "ray":
        raise RecoworldError("--address: only with --backend ray")
    out = args.out or Path("runs") / f"bench-{suite.name}"
    n = len(suite.policies) * (args.seeds or suite.seeds)
    progress, task = count_progress(f"bench {suite.name}", n, quiet=args.quiet)
    with progress:

        def done(row: dict[str, Any]) -> None:
            progress.update(task, advance=1, last=f"{row['policy']} seed {row['seed']}")

        if args.backend == "ray":
            from recoworld.distributed.backend import run_suite_ray

            run_suite_ray(suite, out, address=args.address, seeds=args.seeds, on_done=done)
        else:
            run_suite(suite, out, jobs=args.jobs, seeds=args.seeds, on_done=done)
    print((out / "summary.md").read_text(encoding="utf-8"))
    print(f"Results: {out.resolve()} (results.csv, results.parquet, summary.md, plots/)")
    if args.report:
        _report(out)
    return 0


def _report(source: Path) -> None:
    from recoworld.report import build_report

    print(f"Report: {build_report(source).resolve()}")


def _cmd_experiment(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from recoworld.experiments import get_experiment, list_experiments, run_experiment
    from recoworld.experiments.runner import summary_cells

    if args.list:
        table = Table(title="recoworld experiments (recoworld experiment NAME)")
        table.add_column("name", style="bold")
        table.add_column("scenario")
        table.add_column("conditions")
        table.add_column("description")
        for exp in list_experiments():
            table.add_row(exp.name, exp.scenario, ", ".join(exp.conditions), exp.description)
        Console(width=120).print(table)
        return 0
    if not args.name:
        raise RecoworldError(
            "experiment: give an experiment name, or --list to see them "
            "(e.g. recoworld experiment cascade-theory)"
        )
    exp = get_experiment(args.name)
    if args.seeds < 1:
        raise RecoworldError(f"--seeds: expected an integer >= 1, got {args.seeds}")
    if args.jobs < 1:
        raise RecoworldError(f"--jobs: expected an integer >= 1, got {args.jobs}")
    out = args.out or Path("runs") / f"experiment-{exp.name}"
    frame = run_experiment(
        exp,
        seeds=args.seeds,
        out=out,
        overrides=_parse_set(args.set),
        jobs=args.jobs,
        progress=not args.quiet,
    )
    table = Table(
        title=f"recoworld experiment {exp.name} — {frame['seed'].nunique()} seed(s), "
        "mean ± 95% CI half-width"
    )
    table.add_column("metric")
    cells = summary_cells(frame, exp)
    for label in cells:
        table.add_column(label, justify="right")
    for name in exp.summary_metrics:
        table.add_row(name, *(cells[label][name] for label in cells))
    Console(width=max(100, 32 + 20 * len(cells))).print(table)
    plots = sorted(p.name for p in (out / "plots").glob("*.png"))
    print(f"Results: {out.resolve()} (results.csv, summary.md, experiment.json", end="")
    print(", series.csv" if (out / "series.csv").is_file() else "", end="")
    print(f", plots/: {', '.join(plots)})" if plots else ")")
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:

    from recoworld.schedule import Simulation

    if args.ticks is not None and args.ticks < 1:
        raise RecoworldError(f"--ticks: expected an integer >= 1, got {args.ticks}")
    with spinner("loading the checkpoint…", quiet=args.quiet):
        sim = Simulation.resume(args.checkpoint)
    if sim.recorder is None:
        raise RecoworldError(f"{args.checkpoint}: the checkpoint of a run that recorded nothing")
    out = sim.recorder.path
    return _execute(sim, out, f"resume {sim.run_id}", args.quiet, args.ticks)


def _cmd_replay(args: argparse.Namespace) -> int:

    from recoworld.replay import compare_runs, replay_simulation

    out = args.out or args.run_dir.with_name(args.run_dir.name + "-replay")
    with spinner("rebuilding the run from its manifest…", quiet=args.quiet):
        sim = replay_simulation(args.run_dir, out)
    code = _execute(sim, out, f"replay {args.run_dir.name}", args.quiet)
    if code:
        return code
    with spinner("comparing the trajectory files…", quiet=args.quiet):
        differences = compare_runs(args.run_dir, out)
    if differences:
        print(f"replay differs from the original in: {', '.join(differences)}", file=sys.stderr)
        return 1
    print("replay: byte-identical to the original trajectory")
    return 0


def _cmd_fidelity(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from recoworld.data import load_dataset
    from recoworld.fidelity.numeric import NumericDiscriminator
    from recoworld.fidelity.report import render, run_fidelity

    try:
        ratios = [int(r) for r in args.ratios.split(",") if r.strip()]
    except ValueError:
        ratios = []
    if not ratios or min(ratios) < 1:
        raise RecoworldError(f"--ratios {args.ratios!r}: expected integers >= 1, e.g. 1,2,3,9")
    quiet = args.quiet or args.json
    with spinner("loading the dataset…", quiet=quiet):
        dataset = load_dataset(args.dataset, args.format)
    numeric = NumericDiscriminator(seed=args.seed)
    discriminator: Any = numeric
    if args.user_model == "llm":
        try:
            from recoworld.fidelity.llm import LLMDiscriminator
        except ImportError as exc:
            raise RecoworldError(
                f"--user-model llm: the LLM discriminator (recoworld.fidelity.llm) cannot be "
                f"loaded ({exc}); install the llm extra or use --user-model numeric"
            ) from exc
        if not args.llm_model or not args.llm_base_url:
            raise RecoworldError("--user-model llm needs --llm-base-url and --llm-model")
        llm: dict[str, Any] = {"base_urls": tuple(args.llm_base_url), "model": args.llm_model}
        for key, value in (
            ("budget_tokens", args.llm_budget_tokens),
            ("concurrency", args.llm_concurrency),
            ("cache", None if args.llm_cache is None else str(args.llm_cache)),
        ):
            if value is not None:
                llm[key] = value
        discriminator = LLMDiscriminator(llm, seed=args.seed, fallback=numeric)
    progress = Progress(
        TextColumn("[bold]fidelity {task.fields[name]}"),
        BarColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=quiet,
    )
    with progress:
        task = progress.add_task("loading", total=len(ratios) + 2, name=dataset.name)

        def on_step(stage: str, done: int, total: int) -> None:
            progress.update(task, description=stage, completed=done, total=total)

        result = run_fidelity(
            dataset, discriminator, ratios=ratios, seed=args.seed, progress=on_step
        )
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        render(result)
    return 0


def _cmd_personas(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from recoworld.data.loaders import load_dataset
    from recoworld.data.personas import (
        agent4rec_agreement,
        default_pack_path,
        pack_provenance,
        personas_from_dataset,
        user_history,
        write_pack,
    )

    split = ("train",)
    with spinner("loading the dataset…", quiet=args.quiet):
        dataset = load_dataset(args.dataset, args.format)
        history = user_history(dataset, split=split, seed=args.seed)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=args.quiet,
    )
    with progress:
        task = progress.add_task(f"personas {dataset.name}", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        built = personas_from_dataset(
            dataset, split=split, seed=args.seed, progress=advance, history=history
        )
    out = args.out or default_pack_path(dataset)
    provenance = pack_provenance(dataset, split=split, seed=args.seed)
    path = write_pack(built, out, provenance)
    table = Table(title=f"recoworld personas — {dataset.name}")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("users", f"{dataset.n_users:,}")
    table.add_row("personas (users with a train history)", f"{len(built):,}")
    frame = history.table[history.table["n"] > 0]
    for name in ("activity", "diversity", "conformity"):
        levels = frame[f"{name}_level"]
        if (levels > 0).any():
            counts = levels[levels > 0].value_counts().sort_index()
            shares = " / ".join(str(counts.get(k, 0)) for k in (1, 2, 3))
            table.add_row(f"{name} levels 1/2/3", shares)
        else:
            table.add_row(f"{name} levels", "not computable from this data")
    for name, row in agent4rec_agreement(dataset, history).items():
        table.add_row(
            f"agreement with Agent4Rec's {name} level",
            f"{row['agreement']:.1%} (chance {row['chance']:.1%})",
        )
    for name in ("activity", "conformity", "diversity", "patience", "sociability"):
        table.add_row(f"mean {name} trait", f"{frame[name].mean():.3f}")
    Console(width=100).print(table)
    print(f"Persona pack: {path.resolve()}")
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from recoworld.config import ScenarioConfig
    from recoworld.data.calibrate import calibrate
    from recoworld.data.loaders import load_dataset
    from recoworld.scenario import load_scenario

    config = load_scenario(args.scenario) if args.scenario else ScenarioConfig()
    with spinner("loading the dataset…", quiet=args.quiet):
        dataset = load_dataset(args.dataset, args.format)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[stage]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=args.quiet,
    )
    with progress:
        task = progress.add_task(f"calibrate {dataset.name}", total=4, stage="")

        def advance(stage: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, stage=stage)

        result = calibrate(dataset, seed=args.seed, config=config, progress=advance)
    out = args.out or Path("runs") / f"calibrate-{dataset.name}"
    scenario_path, report_path = result.write(out)
    if args.json:
        print(json.dumps(result.report, indent=2, default=str))
        return 0
    fitted = Table(title=f"recoworld calibrate — {dataset.name} (fitted on train)")
    fitted.add_column("users.KEY")
    fitted.add_column("value", justify="right")
    for key, value in result.users.items():
        text = ", ".join(f"{v:g}" for v in value) if isinstance(value, list) else f"{value:g}"
        fitted.add_row(key, text)
    for key in result.report["not_identified"]:
        default = result.report["defaults"].get(key)
        value = default if isinstance(default, int | float) else list(default or [])
        shown = f"{value} (default)"
        fitted.add_row(f"[dim]{key}[/dim]", f"[dim]{shown}[/dim]")
    console = Console(width=100)
    console.print(fitted)
    print("Not identified from this data (defaults kept):")
    for key, why in result.report["not_identified"].items():
        print(f"  {key}: {why}")
    rating = result.report.get("rating", {})
    if rating.get("heldout_pairs"):
        table = Table(title=f"ratings on {rating['heldout_pairs']:,} held-out rated pairs")
        table.add_column("rule")
        table.add_column("JSD", justify="right")
        table.add_column("RMSE", justify="right")
        table.add_column("MAE", justify="right")
        table.add_row(
            "calibrated, drawn",
            f"{rating['jsd']:.2g}",
            f"{rating['drawn']['rmse']:.4f}",
            f"{rating['drawn']['mae']:.4f}",
        )
        table.add_row(
            "calibrated, expected",
            f"{rating['jsd_expected']:.2g}",
            f"{rating['expected']['rmse']:.4f}",
            f"{rating['expected']['mae']:.4f}",
        )
        for label, key in (
            ("built-in rule (uncalibrated)", "uncalibrated"),
            ("global train mean", "baseline_global_mean"),
            ("user's train mean", "baseline_user_mean"),
            ("expected + per-user offset (diagnostic)", "diagnostic_expected_with_user_offset"),
        ):
            row = rating[key]
            jsd = f"{row['jsd']:.2g}" if "jsd" in row else ""
            table.add_row(label, jsd, f"{row['rmse']:.4f}", f"{row['mae']:.4f}")
        console.print(table)
    else:
        print("ratings: the data has no held-out star ratings; no rating rule fitted")
    print(f"Scenario file: {scenario_path.resolve()}")
    print(f"Report: {report_path.resolve()}")
    return 0


# -- recoworld doctor ------------------------------------------------------------------------


def _cmd_doctor(args: argparse.Namespace) -> int:
    from recoworld.doctor import doctor_report, format_report

    if args.timeout <= 0:
        raise RecoworldError(
            f"--timeout: expected a positive number of seconds, got {args.timeout}"
        )
    quiet = args.quiet or args.json
    with spinner("checking…", quiet=quiet):
        report = doctor_report(
            scenario=args.scenario,
            data_dir=args.data_dir,
            llm_base_urls=args.llm_base_url or (),
            llm_model=args.llm_model,
            timeout=args.timeout,
        )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0 if report["ok"] else 1


def _print_summary(summary: dict[str, Any], status: str, ticks: int, n_ticks: int) -> None:
    from rich.console import Console
    from rich.table import Table

    labels = {
        "population/users": "users",
        "population/active_users": "active users",
        "engagement/sessions": "sessions",
        "engagement/impressions": "impressions",
        "engagement/ctr": "CTR",
        "engagement/session_length": "mean session length (items)",
        "instruction/rate": "instructions per session",
        "retention/return_rate": "return rate",
        "social/shares": "shares",
        "llm/calls": "LLM calls",
        "llm/prompt_tokens": "LLM prompt tokens",
        "llm/completion_tokens": "LLM completion tokens",
        "llm/prompt_tokens_per_page": "prompt tokens per page decision",
        "llm/valid_rate": "LLM parse-valid rate",
        "llm/cache_hits": "LLM cache hits",
        "llm/fallbacks": "fallbacks to the numeric model",
        "llm/cost_usd": "LLM cost (USD)",
    }
    table = Table(title=f"recoworld run — {status}, {ticks}/{n_ticks} ticks")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("name", style="dim")
    for key, label in labels.items():
        if key not in summary:
            continue
        value = summary[key]
        text = f"{value:,}" if isinstance(value, int) else f"{value:.4f}"
        table.add_row(label, text, key)
    Console(width=100).print(table)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        if args.command == "envs":
            return _cmd_envs(args)
        if args.command == "doctor":
            return _cmd_doctor(args)
        if args.command == "resume":
            return _cmd_resume(args)
        if args.command == "replay":
            return _cmd_replay(args)
        if args.command == "report":
            from recoworld.report import report_command

            return report_command(args)
        if args.command == "bench":
            return _cmd_bench(args)
        if args.command == "probe":
            from recoworld.probe import probe_main

            return probe_main(args)
        if args.command == "experiment":
            return _cmd_experiment(args)
        if args.command == "personas":
            return _cmd_personas(args)
        if args.command == "calibrate":
            return _cmd_calibrate(args)
        if args.command == "fidelity":
            return _cmd_fidelity(args)
        return _cmd_run(args)
    except RecoworldError as exc:
        message = " ".join(str(exc).split())
        print(f"recoworld: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("recoworld: aborted; every completed tick is saved", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
