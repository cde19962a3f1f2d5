"""The ``recoworld`` command: output, and one clear line with exit 2 for every user error."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

import pytest

from .conftest import ROOT, run_cli

SMALL = ["--users", "400", "--ticks", "40", "--set", "world.n_items=500", "-q"]


def _one_error_line(proc_stderr: str) -> str:
    lines = [line for line in proc_stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc_stderr
    assert lines[0].startswith("recoworld: error: ")
    assert "Traceback" not in proc_stderr
    return lines[0]


def test_run_prints_summary_and_run_folder(tmp_path: Path) -> None:
    proc = run_cli(["run", *SMALL, "--out", "R"], cwd=tmp_path, check=True)
    for label in (
        "users",
        "sessions",
        "impressions",
        "CTR",
        "mean session length",
        "instructions per session",
        "return rate",
    ):
        assert label in proc.stdout
    last = proc.stdout.strip().splitlines()[-1]
    assert last == f"Run folder: {(tmp_path / 'R').resolve()}"
    for table in ("impressions", "responses", "instructions", "sessions", "social"):
        assert list((tmp_path / "R" / table).glob("part-*.parquet")), table


def test_default_out_folder_is_named_after_scenario_and_seed(tmp_path: Path) -> None:
    run_cli(["run", "retention", *SMALL, "--seed", "4"], cwd=tmp_path, check=True)
    assert (tmp_path / "runs" / "retention-seed4" / "manifest.json").is_file()


def test_missing_scenario_file(tmp_path: Path) -> None:
    proc = run_cli(["run", "envs/nope.yaml"], cwd=tmp_path)
    assert proc.returncode == 2
    line = _one_error_line(proc.stderr)
    assert "envs/nope.yaml" in line
    assert "does not exist" in line


def test_unknown_scenario_name_suggests_one(tmp_path: Path) -> None:
    proc = run_cli(["run", "defualt"], cwd=tmp_path)
    assert proc.returncode == 2
    assert "Did you mean 'default'" in _one_error_line(proc.stderr)


def test_scenario_with_unknown_key(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: bad\nworld:\n  n_users: 100\n  n_usres: 5\n")
    proc = run_cli(["run", str(spec)], cwd=tmp_path)
    assert proc.returncode == 2
    line = _one_error_line(proc.stderr)
    assert "world.n_usres" in line
    assert "unknown key" in line
    assert not (tmp_path / "runs").exists()  # nothing started


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--set", "users.patience_mean=1.5"], "users.patience_mean"),
        (["--set", "world.n_users=many"], "world.n_users"),
        (["--set", "clock.tick_minutes=7"], "clock.tick_minutes"),
        (["--set", "nonsense"], "KEY=VALUE"),
        (["--set", "feed.nope.x=1"], "feed.nope"),
        (["--policy", "most_pop"], "Did you mean 'most_popular'"),
        (["--users", "0"], "world.n_users"),
    ],
)
def test_bad_values_are_one_line_errors(tmp_path: Path, args: list[str], needle: str) -> None:
    proc = run_cli(["run", *args], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert needle in _one_error_line(proc.stderr)


def test_out_folder_that_is_not_a_run_is_refused(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    proc = run_cli(["run", *SMALL, "--out", "mine"], cwd=tmp_path)
    assert proc.returncode == 2
    assert "not a recoworld run folder" in _one_error_line(proc.stderr)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_envs_lists_shipped_scenarios(tmp_path: Path) -> None:
    proc = run_cli(["envs"], cwd=tmp_path, check=True)
    for name in ("default", "retention", "social"):
        assert name in proc.stdout
    rows = json.loads(run_cli(["envs", "--json"], cwd=tmp_path, check=True).stdout)
    shipped = {p.stem for p in (ROOT / "envs").glob("*.yaml")}
    assert {r["id"] for r in rows if r["kind"] == "scenario"} == shipped
    assert all(Path(r["path"]).is_file() for r in rows if r["kind"] == "scenario")
    from recoworld.envs import ENVS

    assert {(r["id"], r["kind"]) for r in rows if r["kind"] != "scenario"} == {
        (e.id, e.kind) for e in ENVS
    }
    assert "recoworld/Feed-v0" in proc.stdout


def test_help_shows_examples(tmp_path: Path) -> None:
    proc = run_cli(["run", "--help"], cwd=tmp_path, check=True)
    assert "examples:" in proc.stdout
    assert "--seed" in proc.stdout


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """The top-level parser (key ``""``) and every sub-command's, from the real CLI."""
    from recoworld.cli import _build_parser

    parser = _build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"": parser, **sub.choices}


def _examples(help_text: str) -> list[str]:
    """The command lines of the ``examples:`` block of a help text."""
    lines = help_text.split("\nexamples:\n", 1)[1].splitlines()
    out = []
    for line in lines:
        if not line.startswith("  "):
            break
        out.append(line.strip())
    return [line for line in out if line.startswith("recoworld ")]


@pytest.mark.parametrize("command", list(_parsers()), ids=lambda c: c or "recoworld")
def test_every_command_has_examples_that_parse(command: str) -> None:
    from recoworld.cli import _build_parser

    help_text = _parsers()[command].format_help()
    assert "\nexamples:\n" in help_text, f"recoworld {command} --help has no examples"
    examples = _examples(help_text)
    assert 2 <= len(examples) <= 6, examples
    for line in examples:
        words = shlex.split(line, comments=True)
        if {"-h", "--help", "--version"} & set(words):
            with pytest.raises(SystemExit) as exited:  # they print and exit 0 once parsed
                _build_parser().parse_args(words[1:])
            assert exited.value.code == 0, f"example does not parse: {line}"
        else:
            _build_parser().parse_args(words[1:])  # argparse exits 2 on a bad example


def test_top_level_help_lists_every_command(tmp_path: Path) -> None:
    proc = run_cli(["--help"], cwd=tmp_path, check=True)
    assert "examples:" in proc.stdout
    for command in _parsers():
        assert command in proc.stdout
    assert "doctor" in proc.stdout


def test_long_commands_take_quiet() -> None:
    """Every command that runs for long shows progress on stderr and takes -q/--quiet."""
    parsers = _parsers()
    for command in (
        "run",
        "bench",
        "experiment",
        "resume",
        "replay",
        "probe",
        "personas",
        "calibrate",
        "fidelity",
        "doctor",
    ):
        options = {o for a in parsers[command]._actions for o in a.option_strings}
        assert {"-q", "--quiet"} <= options, command


def test_run_report_and_the_report_command(tmp_path: Path) -> None:
    proc = run_cli(["run", *SMALL, "--out", "R", "--report", "-q"], cwd=tmp_path, check=True)
    report = tmp_path / "R" / "report.html"
    assert f"Report: {report.resolve()}" in proc.stdout
    assert "session viewer" in report.read_text(encoding="utf-8").lower()
    proc = run_cli(["report", "R", "--out", "elsewhere.html"], cwd=tmp_path, check=True)
    assert (tmp_path / "elsewhere.html").is_file()
    assert "elsewhere.html" in proc.stdout
    proc = run_cli(["report", "nope"], cwd=tmp_path)
    assert proc.returncode != 0
    assert "no such folder" in proc.stderr
    assert "Traceback" not in proc.stderr
