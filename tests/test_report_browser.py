"""HTML reports in a real headless Chromium (Playwright's sync API, Debian's ``/usr/bin/chromium``):
the pages load with no console error, no page error and no request beyond the file itself, the
charts render with real sizes, the session viewer steps through a user's slates (select, buttons,
arrow keys) as the trajectory says, and LLM output full of markup shows as text and runs nothing.
A full-page screenshot of each report is written to ``$RECOWORLD_ARTIFACTS`` (else the test's
``tmp_path``).

Without Chromium (or Playwright) the tests skip, unless ``RECOWORLD_REQUIRE_BROWSER=1``, under
which they fail — as ``RECOWORLD_REQUIRE_LLAMA`` does for the llama.cpp server tests."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recoworld.bench import FIGURES
from recoworld.report import build_report
from recoworld.scenario import load_scenario
from recoworld.schedule import Simulation
from recoworld.trajectory import read_table
from tests.test_report import EVIL, make_bench, make_llm_run, viewer_json

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _require_browser() -> None:
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "playwright is not installed (pip install -e '.[test]')"
    if problem is None and not CHROMIUM.is_file():
        problem = f"{CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)"
    if problem is None:
        return
    if os.environ.get("RECOWORLD_REQUIRE_BROWSER"):
        pytest.fail(f"a browser is required here: {problem}")
    pytest.skip(problem)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("RECOWORLD_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default scenario as shipped (10,000 users, one day) and its report."""
    _require_browser()
    folder = tmp_path_factory.mktemp("browser") / "default"
    Simulation(load_scenario("default"), out_dir=folder).run()
    build_report(folder)
    return folder


class Opened:
    """A report open in a page, with everything that went wrong while it was."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        self.url = path.resolve().as_uri()
        page = self.page
        page.on(
            "console",
            lambda m: (
                self.problems.append(f"console error: {m.text}") if m.type == "error" else None
            ),
        )
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on(
            "request",
            lambda r: None if r.url == self.url else self.problems.append(f"request: {r.url}"),
        )
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.goto(self.url, wait_until="load")

    def text(self, selector: str) -> str:
        return str(self.page.locator(selector).inner_text())

    def close(self) -> None:
        self.page.close()


def _charts_render(opened: Opened) -> int:
    charts = opened.page.locator("svg.chart")
    n = charts.count()
    for j in range(n):
        box = charts.nth(j).bounding_box()
        assert box is not None, f"chart {j} has no box"
        assert box["width"] > 200, (j, box)
        assert box["height"] > 80, (j, box)
        # Something is drawn in it: lines, bars or bands with a size.
        drawn = charts.nth(j).locator("polyline, rect, polygon").first.bounding_box()
        assert drawn is not None, j
        assert drawn["width"] > 0 or drawn["height"] > 0, (j, drawn)
    return n


def test_default_run_report_renders_in_chromium(
    browser: Any, default_run: Path, artifacts: Path
) -> None:
    opened = Opened(browser, default_run / "report.html")
    try:
        for section in ("summary", "engagement", "retention", "instructions", "viewer"):
            assert opened.page.locator(f"section#{section}").is_visible()
        assert _charts_render(opened) >= 12
        assert "recoworld run default-seed0" in opened.text("h1")
        opened.page.screenshot(path=str(artifacts / "report-run-default.png"), full_page=True)
        assert opened.problems == []
        assert opened.dialogs == []
    finally:
        opened.close()


def _slate_position(opened: Opened) -> tuple[int, int]:
    match = re.fullmatch(r"slate (\d+) of (\d+)", opened.text("#viewer-position").strip())
    assert match, opened.text("#viewer-position")
    return int(match.group(1)), int(match.group(2))


def test_session_viewer_steps_through_a_users_slates(
    browser: Any, default_run: Path, artifacts: Path
) -> None:
    page_text = (default_run / "report.html").read_text(encoding="utf-8")
    data = viewer_json(page_text)
    imp = read_table(default_run, "impressions", ["tick", "session", "user", "item", "rank"])
    opened = Opened(browser, default_run / "report.html")
    try:
        page = opened.page
        assert page.locator("#viewer-user option").count() == len(data["users"]) == 200
        assert _slate_position(opened) == (1, len(data["users"][0]["pages"]))
        assert page.locator("#viewer-prev").is_disabled()
        first_head, first_body = opened.text("#viewer-head"), opened.text("#viewer-body")

        # Choose another user: its first slate is shown.
        page.select_option("#viewer-user", value="1")
        user = data["users"][1]["u"]
        mine = imp[imp["user"] == user].sort_values(["tick", "rank"])
        slates = [rows for _, rows in mine.groupby(["tick", "session"], sort=True)]
        assert _slate_position(opened) == (1, len(slates))
        assert opened.text("#viewer-head") != first_head
        assert opened.text("#viewer-body") != first_body
        assert f"session {int(slates[0]['session'].iloc[0])}," in opened.text("#viewer-head")

        # Next: the user's second slate, items in rank order as in the impressions table.
        page.click("#viewer-next")
        assert _slate_position(opened) == (2, len(slates))
        assert not page.locator("#viewer-prev").is_disabled()
        rows = page.locator("#viewer-body tr")
        assert rows.count() == len(slates[1])
        shown = [int(rows.nth(k).locator("td").nth(1).inner_text()) for k in range(rows.count())]
        assert shown == slates[1]["item"].tolist()
        head = opened.text("#viewer-head")
        assert head.startswith(f"Tick {int(slates[1]['tick'].iloc[0])} ")

        # The arrow keys step too (outside the select, which keeps them for itself).
        page.locator("h1").click()
        page.keyboard.press("ArrowRight")
        assert _slate_position(opened) == (3, len(slates))
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("ArrowLeft")
        assert _slate_position(opened) == (1, len(slates))
        assert page.locator("#viewer-prev").is_disabled()
        # A user with an instruction shows what it said under the slate.
        for j, entry in enumerate(data["users"]):
            said = [k for k, p in enumerate(entry["pages"]) if p.get("ins")]
            if said:
                page.select_option("#viewer-user", value=str(j))
                for _ in range(said[0]):
                    page.click("#viewer-next")
                assert entry["pages"][said[0]]["ins"][0]["text"] in opened.text("#viewer-said")
                break
        else:
            pytest.fail("no user of the viewer gave an instruction")
        page.locator("#viewer").screenshot(path=str(artifacts / "report-run-viewer.png"))
        assert opened.problems == []
    finally:
        opened.close()


def test_llm_output_with_markup_shows_as_text_and_runs_nothing(
    browser: Any, tmp_path: Path, artifacts: Path
) -> None:
    run_dir = make_llm_run(tmp_path / "llm")
    build_report(run_dir)
    opened = Opened(browser, run_dir / "report.html")
    try:
        assert "LLM" in opened.page.locator("#viewer-user option").first.inner_text()
        body = opened.text("#viewer-body")
        assert EVIL in body  # the comment, as text
        said = opened.text("#viewer-said")
        assert "more cooking " + EVIL in said
        assert "a reflection " + EVIL in opened.text("#viewer-extra")
        # Nothing in the text became an element or ran.
        assert opened.page.locator("#viewer b").count() == 0
        assert opened.page.locator("script").count() == 2
        assert opened.dialogs == []
        assert _charts_render(opened) >= 10
        opened.page.locator("#viewer").screenshot(path=str(artifacts / "report-llm-viewer.png"))
        assert opened.problems == []
    finally:
        opened.close()


def test_bench_report_renders_in_chromium(browser: Any, tmp_path: Path, artifacts: Path) -> None:
    bench = make_bench(tmp_path)
    build_report(bench)
    opened = Opened(browser, bench / "report.html")
    try:
        assert _charts_render(opened) == len(FIGURES)
        whiskers = opened.page.locator("svg.chart path.whisker")
        assert whiskers.count() >= len(FIGURES)
        assert whiskers.first.bounding_box() is not None
        links = opened.page.locator("#runs a")
        assert links.count() == 4
        assert links.first.get_attribute("href", timeout=1000).startswith("runs/")
        opened.page.screenshot(path=str(artifacts / "report-bench.png"), full_page=True)
        assert opened.problems == []
        assert opened.dialogs == []
    finally:
        opened.close()
