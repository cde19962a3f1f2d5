"""Every code example in README.md and docs/*.md runs as written.

The rules, kept narrow on purpose:

* A fenced block labelled ``python`` or ``bash`` is run; any other label (``console``, ``text``,
  ``yaml``, none) is shown, never run. Commands that cannot run in a test by nature (``pip
  install``, starting a Ray cluster or a vLLM fleet, templates with placeholders) belong in
  ``console`` or ``text`` blocks.
* Every line of a ``bash`` block (after joining ``\\`` continuations; empty lines and ``#``
  comments aside) must be a ``recoworld …`` or ``python …`` command, and must exit with status 0.
* A block right after an HTML comment ``<!-- not-run: REASON -->`` (only blank lines between) is
  not run; the reason is required.
* A ``python`` block whose fence says ``title="docs/examples/NAME.py"`` must reproduce that script
  verbatim (checked here) and is not run again: ``tests/test_docs_examples.py`` runs every script
  of ``docs/examples/``. Likewise a bash line ``python docs/examples/NAME.py`` without arguments.

Each page's blocks run in page order in one fresh process (a small driver), in the same new
empty folder ``work/`` of a temporary directory with ``../shared`` linked beside it (the layout of
a checkout): python blocks in one namespace with ``__name__ == "__main__"``; ``python …`` lines as
subprocesses, with the repository's venv first on ``PATH``; ``recoworld …`` lines as the console
script runs them (``recoworld.cli.main(argv)``, in the driver's process, sparing a process start
per command; ``test_cli.py`` tests the console script itself). Exit statuses are checked. The
environment has no ``OPENAI_*`` variables, ``MPLBACKEND=Agg`` and Minari's datasets in the
temporary directory. A relative path argument naming a file of the repository under ``envs/``,
``benchmarks/``, ``docs/`` or ``personas/`` is resolved against the repository. A page that uses
``../shared`` is skipped when it is absent (a failure under CI).

Keep each page's commands small (seconds each): the heavy commands belong in
``benchmarks/RESULTS.md``, not in the docs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import ROOT, SHARED

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_LABELS = ("python", "bash")
REPO_DIRS = ("envs", "benchmarks", "docs", "personas")
EXAMPLES = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs" / "examples").glob("*.py")}
PAGE_TIMEOUT = 600

_FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ ]*$",
    re.MULTILINE | re.DOTALL,
)
_NOT_RUN = re.compile(r"<!--\s*not-run:\s*(?P<reason>[^>]*?)\s*-->\s*\Z")
_TITLE = re.compile(r'title="(?P<title>[^"]+)"')


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    label: str
    title: str | None
    body: str
    not_run: str | None

    @property
    def where(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page
        return f"{page}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page`` in order."""
    text = page.read_text(encoding="utf-8")
    out = []
    for match in _FENCE.finditer(text):
        info = match["info"].strip()
        label = info.split()[0] if info else ""
        title = _TITLE.search(info)
        before = _NOT_RUN.search(text[: match.start()])
        out.append(
            Block(
                page=page,
                line=text.count("\n", 0, match.start()) + 1,
                label=label,
                title=title["title"] if title else None,
                body=textwrap.dedent(match["body"]),
                not_run=before["reason"] if before else None,
            )
        )
    return out


def commands(block: Block) -> list[str]:
    """The command lines of a bash block (continuations joined, comments and blanks dropped)."""
    joined = re.sub(r"\\\n\s*", " ", block.body)
    lines = []
    for raw in joined.splitlines():
        words = shlex.split(raw, comments=True)
        if words:
            lines.append(raw)
    return lines


def _resolve(word: str, cwd: Path) -> str:
    path = Path(word)
    if (
        not path.is_absolute()
        and len(path.parts) > 1
        and path.parts[0] in REPO_DIRS
        and (ROOT / path).exists()
        and not (cwd / path).exists()
    ):
        return str(ROOT / path)
    return word


def steps(page: Path, cwd: Path) -> tuple[list[dict[str, object]], list[str]]:
    """What the driver runs for ``page``, and what was left out (and why)."""
    out: list[dict[str, object]] = []
    skipped: list[str] = []
    for block in blocks(page):
        if block.label not in RUN_LABELS:
            continue
        if block.not_run is not None:
            assert block.not_run, f"{block.where}: <!-- not-run: … --> needs a reason"
            skipped.append(f"{block.where}: not-run: {block.not_run}")
            continue
        if block.label == "python":
            if block.title and block.title in EXAMPLES:
                script = (ROOT / block.title).read_text(encoding="utf-8")
                assert block.body == script, f"{block.where}: differs from {block.title}"
                skipped.append(f"{block.where}: {block.title}, run by test_docs_examples.py")
                continue
            out.append({"where": block.where, "python": block.body})
            continue
        for line in commands(block):
            words = shlex.split(line, comments=True)
            assert words[0] in ("recoworld", "python"), (
                f"{block.where}: {line!r} is neither a recoworld nor a python command; "
                "show it in a ```console block, or mark the block <!-- not-run: REASON -->"
            )
            if words[0] == "python" and len(words) == 2 and words[1] in EXAMPLES:
                skipped.append(f"{block.where}: {words[1]}, run by test_docs_examples.py")
                continue
            out.append({"where": block.where, "argv": [_resolve(w, cwd) for w in words]})
    return out, skipped


DRIVER = """\
import json, subprocess, sys, time

def main():
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    for step in json.load(open(sys.argv[1], encoding="utf-8")):
        start = time.perf_counter()
        if "python" in step:
            print(f"### {step['where']} python", flush=True)
            exec(compile(step["python"], step["where"], "exec"), namespace)
        else:
            argv = step["argv"]
            print(f"### {step['where']} $ {subprocess.list2cmdline(argv)}", flush=True)
            if argv[0] == "recoworld":  # what the console script runs, without a new process
                from recoworld.cli import main as recoworld

                try:
                    code = recoworld(argv[1:])
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 1
            else:
                code = subprocess.run(argv).returncode
            if code:
                sys.exit(f"{step['where']}: exit status {code}")
        sys.stdout.flush()
        print(f"### {step['where']} took {time.perf_counter() - start:.1f} s", flush=True)

if __name__ == "__main__":
    main()
"""


def test_pages_have_runnable_blocks() -> None:
    assert any(b.label in RUN_LABELS for page in PAGES for b in blocks(page))


#: Pages with something to run (the others only show code).
RUNNABLE = [
    page
    for page in PAGES
    if any(b.label in RUN_LABELS and b.not_run is None and not b.title for b in blocks(page))
]


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_page_code_runs(page: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    plan, skipped = steps(page, work)
    for line in skipped:
        print(line)
    if not plan:
        pytest.skip("no runnable blocks")
    if "../shared" in json.dumps(plan):
        if not SHARED.is_dir():
            message = f"{SHARED} is missing (expected ../shared beside the repository)"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        (tmp_path / "shared").symlink_to(SHARED)
    (tmp_path / "steps.json").write_text(json.dumps(plan), encoding="utf-8")
    (tmp_path / "driver.py").write_text(DRIVER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}  # no server
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        MPLBACKEND="Agg",
        MINARI_DATASETS_PATH=str(tmp_path / "minari"),
        COLUMNS="120",
    )
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "steps.json")],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=PAGE_TIMEOUT,
        check=False,
    )
    took = time.perf_counter() - start
    print(proc.stdout[-20000:])
    assert proc.returncode == 0, (
        f"{page.name} failed after {took:.0f} s\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
    )
