"""The documentation site builds strictly (no broken link, anchor or page left out of the nav)
and is self-contained: nothing is fetched at build time, and the pages load nothing from the
web (no web fonts, scripts or stylesheets from elsewhere)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

pytest.importorskip("material", reason="mkdocs-material (the docs extra) is not installed")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    # Any attempt to reach the network at build time fails: every proxy is a closed local port.
    dead = "http://127.0.0.1:9"
    for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[key] = dead
    env.pop("no_proxy", None)
    env.pop("NO_PROXY", None)
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    return out, log


def test_strict_build_has_no_warnings(site: tuple[Path, str]) -> None:
    out, log = site
    assert "WARNING" not in log, log
    assert (out / "index.html").is_file()
    assert (out / "quickstart" / "index.html").is_file()


def test_every_page_is_built(site: tuple[Path, str]) -> None:
    out, _ = site
    excluded = {"reports.md"}  # not yet in the nav (mkdocs.yml: exclude_docs)
    for page in (ROOT / "docs").glob("*.md"):
        if page.name in excluded:
            continue
        name = "" if page.stem == "index" else page.stem
        assert (out / name / "index.html").is_file(), page.name


def test_pages_load_nothing_from_the_web(site: tuple[Path, str]) -> None:
    out, _ = site
    remote = re.compile(
        r"<(?:script|img|iframe)[^>]*\ssrc=\"(?:https?:)?//|<link[^>]*\shref=\"(?:https?:)?//"
    )
    for html in out.rglob("*.html"):
        text = html.read_text(encoding="utf-8")
        assert "fonts.googleapis" not in text, html
        assert "fonts.gstatic" not in text, html
        assert not remote.search(text), (html, remote.search(text))
