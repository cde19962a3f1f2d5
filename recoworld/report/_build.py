"""``build_report``: a run folder or a benchmark folder → one self-contained HTML file; and the
``recoworld report`` command's arguments and body."""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

from recoworld.errors import ReportError

__all__ = ["REPORT_FILE", "add_report_arguments", "build_report", "report_command"]

_log = logging.getLogger(__name__)

#: The report's file name inside the source folder when no ``out`` is given.
REPORT_FILE = "report.html"
#: Users in the session viewer by default.
DEFAULT_VIEWER_USERS = 200


def _kind(source: Path) -> str:
    """``run`` or ``bench``; a named error for anything else."""
    from recoworld.report._bench import RESULT_FILES

    if not source.exists():
        raise ReportError(
            f"{source}: no such folder; pass a run folder (recoworld run --out DIR) or a "
            "benchmark folder (recoworld bench SUITE --out DIR)"
        )
    if not source.is_dir():
        raise ReportError(
            f"{source}: not a folder; pass the run folder or benchmark folder itself, not a file "
            "inside it"
        )
    if (source / "manifest.json").is_file():
        return "run"
    if any((source / name).is_file() for name in RESULT_FILES):
        return "bench"
    raise ReportError(
        f"{source}: neither a run folder (no manifest.json) nor a benchmark folder (no "
        f"{' or '.join(RESULT_FILES)}); pass the folder that `recoworld run` or "
        "`recoworld bench` wrote"
    )


def _target(source: Path, out: str | os.PathLike[str] | None) -> Path:
    if out is None:
        return source / REPORT_FILE
    path = Path(out)
    if path.is_dir():
        return path / REPORT_FILE
    return path


def build_report(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    max_viewer_users: int = DEFAULT_VIEWER_USERS,
) -> Path:
    """Write one self-contained HTML report of a run folder or a benchmark folder.

    Args:
        source: a run folder (``recoworld run``: ``manifest.json`` and the Parquet tables) or a
            benchmark folder (``recoworld bench``: ``results.parquet`` / ``results.csv``).
        out: the HTML file to write (an existing folder: ``report.html`` inside it); default
            ``<source>/report.html``. Parent folders are created; the file is replaced
            atomically.
        max_viewer_users: users in a run report's session viewer (LLM users first, then the
            users with the most pages); 0 leaves the viewer empty.

    Returns:
        The path of the written file.

    Raises:
        ReportError: ``source`` is missing, is not a folder, or is neither a run nor a
            benchmark folder (a ``TrajectoryError``).
        TrajectoryError: a table of the run folder cannot be read.
        ConfigError: ``max_viewer_users`` is negative.
    """
    from recoworld.errors import ConfigError

    if isinstance(max_viewer_users, bool) or not isinstance(max_viewer_users, int):
        raise ConfigError(f"max_viewer_users: expected an integer >= 0, got {max_viewer_users!r}")
    if max_viewer_users < 0:
        raise ConfigError(f"max_viewer_users: expected an integer >= 0, got {max_viewer_users}")
    started = time.perf_counter()
    src = Path(source)
    kind = _kind(src)
    target = _target(src, out)
    if kind == "run":
        from recoworld.report._run import render_run
        from recoworld.trajectory.reader import read_manifest

        page = render_run(src, read_manifest(src), max_viewer_users=max_viewer_users)
    else:
        from recoworld.report._bench import read_results, render_bench

        frame = read_results(src)
        if frame is None:
            raise ReportError(
                f"{src}: its results file has no policy and seed columns or cannot be read; "
                "run `recoworld bench` again to rewrite it"
            )
        page = render_bench(src, frame, report_dir=target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, target)
    _log.info(
        "report: %s report %s (%.1f kB) in %.2f s",
        kind,
        target,
        target.stat().st_size / 1e3,
        time.perf_counter() - started,
    )
    return target


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``recoworld report``: ``source`` and ``--out``."""
    parser.add_argument(
        "source",
        type=Path,
        metavar="RUN_DIR|BENCH_DIR",
        help="a run folder (recoworld run) or a benchmark folder (recoworld bench)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help=f"HTML file to write (default: SOURCE/{REPORT_FILE})",
    )


def report_command(args: argparse.Namespace) -> int:
    """Build the report ``args`` asks for and print its path; 0 on success (errors raise)."""
    path = build_report(args.source, args.out)
    print(path)
    return 0
