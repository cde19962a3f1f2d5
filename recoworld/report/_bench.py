"""The report of a benchmark folder (what ``recoworld bench`` writes: ``results.parquet`` or
``results.csv``, ``summary.md``, ``runs/<label>-seed<seed>/``).

The table and the charts show, per policy and figure, the mean over seeds with the half-width of
its 95% t-interval — :func:`recoworld._stats.ci95`, the same cell as the bench's ``summary.md``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recoworld.report import svg
from recoworld.report._page import Raw, Section, document, esc, kv_table, note, table

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RESULT_FILES", "read_results", "render_bench"]

_log = logging.getLogger(__name__)

#: The files that make a folder a benchmark folder, in order of preference.
RESULT_FILES = ("results.parquet", "results.csv")
#: Columns of the results that are not figures.
_KEYS = ("suite", "policy", "seed", "run_dir", "sessions")
#: Figures where lower is better (said in the chart's caption).
_LOWER_IS_BETTER = ("fairness/exposure_gini", "diversity/calibration_kl")


def read_results(folder: Path) -> pd.DataFrame | None:
    """The bench's results table (one row per policy and seed), or ``None`` when ``folder`` has
    no results file with ``policy`` and ``seed`` columns."""
    import pandas as pd

    for name in RESULT_FILES:
        path = folder / name
        if not path.is_file():
            continue
        try:
            frame = pd.read_parquet(path) if name.endswith(".parquet") else pd.read_csv(path)
        except (OSError, ValueError) as exc:
            _log.warning("report: %s unreadable (%s)", path, exc)
            continue
        if {"policy", "seed"} <= set(frame.columns):
            return frame
    return None


def _figures(frame: pd.DataFrame) -> list[str]:
    import pandas as pd

    from recoworld.bench import FIGURES

    known = [name for name in FIGURES if name in frame.columns]
    extra = [
        c
        for c in frame.columns
        if c not in known and c not in _KEYS and pd.api.types.is_numeric_dtype(frame[c])
    ]
    return known + extra


def _run_folder(folder: Path, run_dir: Any) -> Path | None:
    """Where a run of the bench is now: its recorded path (absolute, or relative to where the
    bench ran), else ``runs/<its folder name>`` of the bench folder."""
    candidates = []
    if isinstance(run_dir, str) and run_dir:
        recorded = Path(run_dir)
        candidates += [recorded, folder / "runs" / recorded.name]
        if not recorded.is_absolute():
            candidates.append(folder.parent / recorded)
    for path in candidates:
        if (path / "manifest.json").is_file():
            return path
    return None


def _tables(*parts: str) -> str:
    return '<div class="tables">' + "".join(parts) + "</div>"


def _link(target: Path, report_dir: Path) -> str:
    try:
        href = Path(os.path.relpath(target.resolve(), report_dir.resolve())).as_posix()
    except ValueError:  # another drive (Windows)
        href = target.resolve().as_uri()
    return href


def render_bench(folder: Path, frame: pd.DataFrame, *, report_dir: Path) -> str:
    """The whole HTML page of the benchmark folder ``folder``; links are relative to
    ``report_dir``, the folder the page is written to."""
    import numpy as np

    from recoworld._stats import ci95

    policies = list(dict.fromkeys(frame["policy"].astype(str)))
    figures = _figures(frame)
    seeds = sorted(frame["seed"].unique().tolist())
    suite = str(frame["suite"].iloc[0]) if "suite" in frame.columns and len(frame) else folder.name
    stats: dict[str, list[tuple[float, float, int]]] = {}
    for name in figures:
        per_policy = []
        for policy in policies:
            values = frame.loc[frame["policy"].astype(str) == policy, name].to_numpy(np.float64)
            mean, half = ci95(values)
            per_policy.append((mean, half, int(np.isfinite(values).sum())))
        stats[name] = per_policy

    # The scenario and the size of the world, from the first run's manifest.
    scenario, world = "", ""
    runs: list[tuple[str, int, Path | None, Any]] = []
    recorded_dirs = frame["run_dir"].tolist() if "run_dir" in frame.columns else [None] * len(frame)
    for policy_value, seed_value, recorded in zip(
        frame["policy"].tolist(), frame["seed"].tolist(), recorded_dirs, strict=True
    ):
        policy, seed = str(policy_value), int(seed_value)
        runs.append((policy, seed, _run_folder(folder, recorded), recorded))
    for _, _, path, _ in runs:
        if path is not None:
            from recoworld.trajectory.reader import read_manifest

            manifest = read_manifest(path)
            scenario = str(manifest.get("scenario", ""))
            world = (
                f"{int(manifest.get('n_users') or 0):,} users, "
                f"{int(manifest.get('n_items') or 0):,} items, "
                f"{int(manifest.get('n_ticks') or 0):,} ticks"
            )
            break

    pairs: list[tuple[str, Any]] = [("suite", suite)]
    if scenario:
        pairs.append(("scenario", scenario))
    if world:
        pairs.append(("world", world))
    pairs += [
        ("policies", len(policies)),
        ("seeds", ", ".join(str(s) for s in seeds)),
        ("runs", len(frame)),
        ("folder", Raw(f"<code>{esc(folder)}</code>")),
    ]
    header = ["figure", *policies]
    rows = []
    for name in figures:
        cells: list[Any] = [Raw(f"<code>{esc(name)}</code>")]
        for mean, half, _ in stats[name]:
            if not np.isfinite(mean):
                cells.append("n/a")
            elif np.isfinite(half):
                cells.append(f"{mean:.3f} ± {half:.3f}")
            else:
                cells.append(f"{mean:.3f}")
        rows.append(cells)
    summary = _tables(
        kv_table(pairs, caption="Benchmark"),
        table(
            header,
            rows,
            numeric=range(1, len(header)),
            caption="Figures by policy: mean ± half-width of the 95% t-interval over seeds",
        ),
    )

    charts = []
    for name in figures:
        cells_of = stats[name]
        direction = " (lower is better)" if name in _LOWER_IS_BETTER else ""
        chart = svg.bar_chart(
            policies,
            [c[0] for c in cells_of],
            errors=[c[1] for c in cells_of],
            notes=[f"{c[2]} seed(s)" for c in cells_of],
            title=name + direction,
            xlabel="mean over seeds, whiskers: 95% confidence interval",
            show_values=True,
        )
        charts.append(f"<figure>{chart}</figure>")
    chart_body = (
        '<div class="charts">' + "".join(charts) + "</div>"
        if charts
        else note("The results have no numeric figures.")
    )

    run_rows = []
    for policy, seed, path, recorded in runs:
        if path is None:
            where: Any = Raw(f"<code>{esc(recorded)}</code> (not found)")
            rep: Any = ""
        else:
            try:
                shown = path.resolve().relative_to(folder.resolve()).as_posix()
            except ValueError:
                shown = str(path)
            where = Raw(f'<a href="{esc(_link(path, report_dir))}">{esc(shown)}</a>')
            page = path / "report.html"
            rep = (
                Raw(f'<a href="{esc(_link(page, report_dir))}">report</a>')
                if page.is_file()
                else Raw(f"<code>recoworld report {esc(path)}</code>")
            )
        run_rows.append((policy, seed, where, rep))
    run_table = table(
        ["policy", "seed", "run folder", "run report"],
        run_rows,
        numeric=[1],
        caption="Runs (open a run folder's report, or make it with the command shown)",
    )
    sections = [
        Section("summary", "Summary", summary),
        Section("figures", "Figures by policy", chart_body),
        Section("runs", "Run folders", run_table),
    ]
    title = f"recoworld benchmark {suite}"
    subtitle = (
        f"{len(policies)} policies × {len(seeds)} seeds"
        + (f" · scenario {scenario}" if scenario else "")
        + (f" · {world}" if world else "")
    )
    footer = (
        f"Made by recoworld report from <code>{esc(folder)}</code>. Self-contained: nothing is "
        "loaded from the network."
    )
    return document(title, subtitle, sections, footer=footer)
