"""HTML reports (``recoworld.report``): a real run and a real benchmark become one self-contained
page with every section; the session viewer's JSON matches the trajectory slate by slate; text
from items, instructions and LLM output is escaped; bad sources are named errors. The pages are
opened in a real browser by test_report_browser.py."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recoworld._config import override
from recoworld.bench import FIGURES, load_suite, run_suite
from recoworld.errors import ConfigError, TrajectoryError
from recoworld.llm.stub import StubServer
from recoworld.report import add_report_arguments, build_report, report_command, svg
from recoworld.scenario import load_scenario
from recoworld.schedule import Simulation
from recoworld.trajectory import read_run

RUN_SECTIONS = (
    "summary", "engagement", "retention", "sessions", "instructions", "diversity", "opinions",
    "cascades", "llm", "viewer",
)  # fmt: skip
EVIL = "</script><script>alert('x')</script><b>&amp;"
_VIEWER = re.compile(r'<script type="application/json" id="viewer-data">(.*?)</script>', re.S)
#: Attributes that would make a browser fetch something.
_FETCH = re.compile(r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


def viewer_json(page: str) -> dict[str, Any]:
    match = _VIEWER.search(page)
    assert match, "no viewer data in the page"
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def assert_self_contained(page: str) -> None:
    assert not _FETCH.search(page), _FETCH.search(page)
    assert "<link" not in page.lower()
    assert "@import" not in page
    assert "url(" not in page
    assert "<iframe" not in page.lower()
    assert "<img" not in page.lower()
    assert "Content-Security-Policy" in page
    assert "default-src 'none'" in page
    # Every script is inline: the viewer's JSON and its code, nothing with a src.
    assert not re.search(r"<script[^>]*\ssrc=", page, re.I)


SUITE = """
name: tiny
scenario: default
seeds: 2
set: {world.n_users: 200, world.n_items: 300, clock.ticks: 24, clock.start_hour: 18}
policies:
  - random
  - {name: instruction_aware, params: {base: most_popular}}
"""


def make_bench(folder: Path) -> Path:
    """A two-policy, two-seed benchmark folder (what ``recoworld bench`` writes)."""
    suite = folder / "tiny.yaml"
    suite.write_text(SUITE)
    out = folder / "bench"
    run_suite(load_suite(suite), out, jobs=1)
    return out


def evil_reply(body: dict[str, Any]) -> str:
    """A scripted "model" whose reasons, comments, instructions and reflections carry markup."""
    messages = body["messages"]
    if "reflection" in messages[0]["content"]:
        return json.dumps({"reflection": "a reflection " + EVIL})
    feed = messages[1]["content"].split("\n# Feed\n", 1)[1]
    n = sum(1 for line in feed.strip().splitlines() if re.match(r"^\d+\. ", line))
    items = []
    for k in range(n):
        if k % 3 == 0:
            items.append({"action": "comment", "why": "why " + EVIL[:20], "comment": EVIL})
        elif k % 3 == 1:
            items.append({"action": "like", "why": "my topic", "seconds": 60})
        else:
            items.append({"action": "skip", "why": "not mine"})
    reply: dict[str, Any] = {
        "items": items,
        "mood": 2,
        "instruction": "more cooking " + EVIL,
        "more": "cooking",
        "less": None,
    }
    schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema", {})
    if "stance" in schema.get("required", []):
        reply["stance"] = 0.5
    return json.dumps(reply)


def make_llm_run(folder: Path) -> Path:
    """A short hybrid run (5% LLM users, against the stub server) whose LLM output has markup."""
    with StubServer(reply=evil_reply) as stub:
        config = override(
            load_scenario("default"),
            {
                "world.n_users": 300,
                "world.n_items": 400,
                "clock.ticks": 36,
                "llm.fraction": 0.05,
                "llm.client.model": "stub",
                "llm.client.base_urls": [stub.base_url],
                "llm.client.price_prompt_per_1k": 0.01,
                "llm.client.price_completion_per_1k": 0.02,
            },
        )
        Simulation(config, out_dir=folder).run()
    return folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One simulated day of 1,000 users with shares, posts, follows and opinion snapshots."""
    config = override(
        load_scenario("default"),
        {
            "world.n_users": 1000,
            "world.n_items": 1200,
            "clock.days": 1,
            "social.post_rate": 0.01,
            "social.follow_rate": 0.01,
            "social.opinion_model": "deffuant_weisbuch",
            "record.opinion_every": 48,
        },
    )
    folder = tmp_path_factory.mktemp("report") / "run"
    Simulation(config, out_dir=folder).run()
    return folder


@pytest.fixture(scope="module")
def run_page(run_dir: Path) -> str:
    path = build_report(run_dir)
    assert path == run_dir / "report.html"
    return path.read_text(encoding="utf-8")


def test_run_report_is_one_self_contained_page_with_every_section(
    run_dir: Path, run_page: str
) -> None:
    assert run_page.startswith("<!DOCTYPE html>")
    assert_self_contained(run_page)
    for section in RUN_SECTIONS:
        assert f'<section id="{section}">' in run_page, section
        assert f'href="#{section}"' in run_page, section  # in the table of contents
    # Plots are inline SVG (with axes and titles), one per chart of the sections.
    assert run_page.count('<svg class="chart"') >= 14
    assert "Click-through rate per hour" in run_page
    assert "Retention curve" in run_page
    assert "Items examined per session" in run_page
    assert "Instructions per hour" in run_page
    assert "Diversity of what the recommender showed" in run_page
    assert "Opinions over time" in run_page  # quantile bands: more than two snapshots
    assert "Cascade sizes" in run_page
    # The summary figures are those of recoworld.metrics.summarize_run.
    assert "engagement/ctr" in run_page
    assert "retention/return_rate" in run_page
    # A section with no data says so in one line instead of an empty plot.
    assert "No LLM calls in this run" in run_page
    # The file is small and has no NaN or undefined leaking into the markup.
    assert (run_dir / "report.html").stat().st_size < 3_000_000
    assert "NaN" not in run_page.replace("n/a", "")
    assert not list(run_dir.glob("*.tmp"))


def test_viewer_json_matches_the_trajectory_slate_by_slate(run_dir: Path, run_page: str) -> None:
    data = viewer_json(run_page)
    run = read_run(run_dir)
    imp, resp, ins = run.impressions, run.responses, run.instructions
    users = [u["u"] for u in data["users"]]
    assert 0 < len(users) <= 200
    # The users with the most pages, deterministically (ties: lower id first).
    pages = imp[["tick", "user"]].drop_duplicates().groupby("user").size()
    order = sorted(pages.index, key=lambda u: (-pages[u], u))
    assert users == order[: len(users)]
    action = {name: j for j, name in enumerate(data["actions"])}
    for entry in data["users"][:25]:
        user = entry["u"]
        mine = imp[imp["user"] == user].sort_values(["tick", "rank"])
        slates = mine.groupby(["tick", "session"], sort=True)
        # As many slates as the user has pages in the impressions table, in order.
        assert len(entry["pages"]) == slates.ngroups == pages[user]
        responses = resp[resp["user"] == user].set_index(["tick", "rank"])
        said = ins[ins["user"] == user].set_index("tick")
        for page, ((tick, session), rows) in zip(entry["pages"], slates, strict=True):
            assert (page["t"], page["s"]) == (tick, session)
            assert [r[0] for r in page["rows"]] == rows["item"].tolist()
            for rank, row in zip(rows["rank"].tolist(), page["rows"], strict=True):
                if (tick, rank) in responses.index:
                    got = responses.loc[(tick, rank)]
                    assert row[1] == action[str(got["action"])]
                    if got["clicked"]:
                        assert row[2] == pytest.approx(float(got["dwell"]), abs=0.051)
                        assert row[3] == int(got["rating"])
                    if got["left"]:
                        assert page["L"] == rows["rank"].tolist().index(rank)
                else:
                    assert row[1] == -1  # not reached
            social = rows["source"].astype(str).to_numpy() == "social"
            assert [r[4] >= 0 for r in page["rows"]] == social.tolist()
            if tick in said.index:
                assert [i["text"] for i in page["ins"]] == said.loc[[tick], "text"].tolist()
            else:
                assert "ins" not in page
    # Topic and title of every catalogue item shown (posts made during the run have none).
    n_items = 1200
    shown = {r[0] for u in data["users"] for p in u["pages"] for r in p["rows"]}
    assert {int(i) for i in data["items"]} == {i for i in shown if i < n_items}
    assert len(data["topics"]) == 12
    assert all(isinstance(title, str) and title for _, title in data["items"].values())


def test_viewer_size_and_selection_follow_max_viewer_users(run_dir: Path, tmp_path: Path) -> None:
    page = build_report(run_dir, tmp_path / "five.html", max_viewer_users=5).read_text()
    assert len(viewer_json(page)["users"]) == 5
    none = build_report(run_dir, tmp_path / "none.html", max_viewer_users=0).read_text()
    assert 'id="viewer-data"' not in none
    assert "No session to show" in none
    assert '<section id="viewer">' in none
    with pytest.raises(ConfigError, match="max_viewer_users"):
        build_report(run_dir, tmp_path / "bad.html", max_viewer_users=-1)


def test_text_from_items_instructions_and_llm_output_is_escaped(tmp_path: Path) -> None:
    run_dir = make_llm_run(tmp_path / "llm")
    page = build_report(run_dir).read_text(encoding="utf-8")
    assert_self_contained(page)
    # Only the report's own two scripts: the JSON data and the viewer code.
    assert page.count("<script") == 2
    assert page.count("</script>") == 2
    assert EVIL not in page
    assert "</script><script>alert" not in page
    assert "<b>&amp;" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(&#x27;x&#x27;)" in page  # the instruction table
    data = viewer_json(page)
    llm_users = [u for u in data["users"] if u["llm"]]
    assert llm_users
    assert data["users"][: len(llm_users)] == llm_users  # LLM users come first
    pages = [p for u in llm_users for p in u["pages"]]
    # The JSON round-trips the raw text exactly; the viewer writes it with textContent.
    assert any(EVIL in c for p in pages for c in p.get("cm", []))
    assert any(w.startswith("why ") for p in pages for w in p.get("why", []))
    assert any(i["text"] == "more cooking " + EVIL for p in pages for i in p.get("ins", []))
    assert any(p.get("refl") == "a reflection " + EVIL for p in pages)
    assert all(p.get("mood") == 2 for p in pages if "why" in p)
    # The LLM section has its figures and charts.
    assert "LLM tokens per" in page
    assert "Cumulative LLM cost" in page
    assert "LLM user&#x27;s notes" in page


def test_sections_without_data_say_so_in_one_line(tmp_path: Path) -> None:
    config = override(
        load_scenario("default"),
        {
            "world.n_users": 200,
            "world.n_items": 300,
            "clock.ticks": 12,
            "clock.start_hour": 18,
            "users.max_instructions": 0,
            "users.share_rate": 0.0,
        },
    )
    Simulation(config, out_dir=tmp_path / "quiet").run()
    page = build_report(tmp_path / "quiet").read_text()
    assert "No reflective instructions in this run." in page
    assert "No shares or posts in this run, so no cascades." in page
    assert "No LLM calls in this run" in page
    assert "Daily active users (retention/dau)" in page  # one partial day: no per-day chart


def test_bad_sources_are_named_errors_that_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(TrajectoryError, match=r"no such folder.*recoworld run"):
        build_report(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrajectoryError, match=r"neither a run folder .* nor a benchmark folder"):
        build_report(tmp_path / "empty")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(TrajectoryError, match="not a folder"):
        build_report(tmp_path / "file.txt")
    (tmp_path / "other").mkdir()
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "other" / "results.csv", index=False)
    with pytest.raises(TrajectoryError, match="no policy and seed columns"):
        build_report(tmp_path / "other")
    assert not (tmp_path / "empty" / "report.html").exists()


def test_bench_report_has_the_table_bar_charts_with_cis_and_the_run_folders(
    tmp_path: Path,
) -> None:
    bench = make_bench(tmp_path)
    page = build_report(bench).read_text(encoding="utf-8")
    assert_self_contained(page)
    for section in ("summary", "figures", "runs"):
        assert f'<section id="{section}">' in page
    results = pd.read_parquet(bench / "results.parquet")
    # One bar chart per figure, each with a whisker per policy (the 95% CI over two seeds).
    assert page.count('<svg class="chart"') == len(FIGURES)
    assert page.count('class="whisker"') >= len(FIGURES)
    for name in FIGURES:
        assert f"<code>{name}</code>" in page
    for policy in ("random", "instruction_aware[most_popular]"):
        assert f"<th class=num>{policy}</th>" in page
    ctr = results[results["policy"] == "random"]["engagement/ctr"].to_numpy(np.float64)
    assert f"{ctr.mean():.3f} ± " in page
    # Each run folder is linked relative to the report.
    for run_dir in results["run_dir"]:
        assert f'href="runs/{Path(run_dir).name}"' in page
    assert 'id="viewer-data"' not in page
    # Written elsewhere, the links still lead to the run folders.
    other = build_report(bench, tmp_path / "out" / "bench.html").read_text()
    assert f'href="../bench/runs/{Path(results["run_dir"][0]).name}"' in other
    # An existing folder as ``out``: report.html inside it.
    assert build_report(bench, tmp_path / "out") == tmp_path / "out" / "report.html"


def test_cli_arguments_and_command(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="recoworld report")
    add_report_arguments(parser)
    out = run_dir / "elsewhere" / "r.html"
    args = parser.parse_args([str(run_dir), "--out", str(out)])
    assert args.source == run_dir
    assert report_command(args) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.is_file()
    assert "RUN_DIR|BENCH_DIR" in parser.format_help()
    assert "--out FILE" in parser.format_help()


def test_import_is_lazy_and_needs_no_plotting_library() -> None:
    code = (
        "import sys; import recoworld.report as r; "
        "assert callable(r.build_report); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'pandas')"
        " or m.startswith('recoworld.report._run')]; "
        "assert not bad, bad"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------------ the SVG module


def test_nice_ticks_cover_the_range_with_round_steps() -> None:
    assert svg.nice_ticks(0, 1) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert svg.nice_ticks(3, 97) == [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
    ticks = svg.nice_ticks(-0.37, 0.81)
    assert ticks[0] <= -0.37
    assert ticks[-1] >= 0.81
    assert svg.nice_ticks(5, 5)[0] < 5 < svg.nice_ticks(5, 5)[-1]
    assert all(t == int(t) for t in svg.nice_ticks(0, 6, integer=True))
    assert svg.fmt_number(25000, 5000) == "25k"
    assert svg.fmt_number(2.5, 2.5) == "2.5"
    assert svg.fmt_number(float("nan")) == "n/a"


def test_charts_escape_text_skip_non_finite_values_and_handle_no_data() -> None:
    chart = svg.line_chart(
        [
            svg.Line("a <b>", [0, 1, 2, 3], [1.0, float("nan"), 2.0, 3.0]),
            svg.Line("b", [0, 1], [0.5, 0.7], dashed=True),
        ],
        title="T & <x>",
        xlabel="x",
        ylabel="y",
    )
    assert chart.startswith("<svg")
    assert chart.endswith("</svg>")
    assert "<b>" not in chart
    assert "&lt;b&gt;" in chart
    assert "T &amp; &lt;x&gt;" in chart
    assert chart.count("<polyline") == 3  # the NaN splits the first line in two
    assert "nan" not in chart.lower().replace("&", "")
    assert "no data" in svg.line_chart([svg.Line("a", [], [])], title="t", xlabel="", ylabel="")
    hist = svg.histogram([("s", [1, 2, 2, 3, 3, 3])], title="h", xlabel="v", integer=True)
    assert hist.count("<rect") == 3
    assert "no data" in svg.histogram([("s", [])], title="h", xlabel="v")
    bars = svg.bar_chart(
        ["p1", "a very long policy label indeed"],
        [0.5, -0.25],
        errors=[0.1, float("nan")],
        title="b",
        xlabel="v",
    )
    assert bars.count('class="whisker"') == 1
    assert bars.count("<rect") == 2


def test_viewer_users_are_capped_by_slates_in_all(run_dir: Path) -> None:
    from recoworld.report._viewer import choose_users

    imp = read_run(run_dir).table("impressions", ["tick", "user"])
    pages = imp.drop_duplicates().groupby("user").size()
    order = sorted(pages.index, key=lambda u: (-pages[u], u))
    assert choose_users(imp, np.zeros(0, np.int64), 50) == order[:50]
    budget = int(pages[order[:7]].sum())
    assert choose_users(imp, np.zeros(0, np.int64), 50, max_slates=budget) == order[:7]
    assert choose_users(imp, np.zeros(0, np.int64), 50, max_slates=1) == order[:1]
    llm = np.array([order[-1]], np.int64)  # the user with the fewest pages, an LLM user
    assert choose_users(imp, llm, 3) == [order[-1], *order[:2]]
