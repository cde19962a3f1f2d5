"""The report of one run folder (what ``recoworld run`` writes).

Every figure comes from :mod:`recoworld.metrics` where the library defines it (CTR, session
length, return rate and gap, churn, DAU, the retention curve, instruction compliance and
recovery, ILD, topic entropy, coverage, exposure Gini, novelty, calibration, polarization,
diffusion trees, the LLM summary); what the report adds is only binning over time and plotting.

Item topics and titles are not stored in a run folder: the catalogue is rebuilt from the
manifest's configuration and seed (``World.from_config``, as ``recoworld replay`` does — the same
items, deterministically). Items created during the run (posts) have no metadata; a world built
from a dataset that is no longer on disk leaves topics and titles out, with a note.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recoworld.report import svg
from recoworld.report._page import (
    SCRIPT,
    Raw,
    Section,
    document,
    esc,
    figure_value,
    json_script,
    kv_table,
    note,
    table,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from numpy.typing import NDArray

    from recoworld.world.catalog import Catalog

__all__ = ["render_run"]

_log = logging.getLogger(__name__)

#: Labels of the run summary's figures (``recoworld.metrics.summarize_run``).
LABELS = {
    "population/users": "users",
    "population/active_users": "active users",
    "engagement/sessions": "sessions",
    "engagement/impressions": "impressions",
    "engagement/ctr": "CTR (clicks / impressions)",
    "engagement/session_length": "mean session length (items examined)",
    "instruction/rate": "instructions per session",
    "retention/return_rate": "return rate",
    "social/shares": "social events (shares, posts, follows, …)",
    "llm/calls": "LLM calls",
    "llm/prompt_tokens": "LLM prompt tokens",
    "llm/completion_tokens": "LLM completion tokens",
    "llm/cost_usd": "LLM cost (USD)",
    "llm/valid_rate": "LLM parse-valid rate",
    "llm/cache_hits": "LLM cache hits",
    "llm/fallbacks": "fallbacks to the numeric model",
    "llm/prompt_tokens_per_page": "prompt tokens per page decision",
}
#: Event-study window of the instruction section: pages before and after an instruction.
AROUND = 3
_BIN_CHOICES = (1, 60, 360, 1440)  # minutes: one tick, an hour, six hours, a day
_MAX_BINS = 200


@dataclass
class _Run:
    """A run's tables and its time axis."""

    path: Path
    manifest: dict[str, Any]
    imp: pd.DataFrame
    resp: pd.DataFrame
    ins: pd.DataFrame
    ses: pd.DataFrame
    soc: pd.DataFrame
    ops: pd.DataFrame
    calls: pd.DataFrame
    catalog: Catalog | None
    catalog_note: str
    tick_minutes: float
    n_ticks: int
    width: int  # ticks per time bin

    @property
    def n_bins(self) -> int:
        return max(1, math.ceil(self.n_ticks / self.width))

    @property
    def in_days(self) -> bool:
        return self.n_ticks * self.tick_minutes > 96 * 60

    def hours(self, ticks: Any) -> Any:
        """Simulated time (hours or days, see :attr:`xlabel`) at the start of ``ticks``."""
        scale = self.tick_minutes / 60.0 / (24.0 if self.in_days else 1.0)
        return ticks * scale

    def bin_x(self) -> Any:
        import numpy as np

        return self.hours(np.arange(self.n_bins) * self.width)

    @property
    def xlabel(self) -> str:
        return (
            "simulated days since the start" if self.in_days else "simulated hours since the start"
        )

    @property
    def per(self) -> str:
        minutes = self.width * self.tick_minutes
        if minutes == 60:
            return "per hour"
        if minutes % 1440 == 0:
            return "per day" if minutes == 1440 else f"per {minutes / 1440:g} days"
        if minutes % 60 == 0:
            return f"per {minutes / 60:g} hours"
        return f"per {minutes:g} minutes"

    def bins(self, ticks: pd.Series) -> NDArray[np.int64]:
        import numpy as np

        return np.clip(ticks.to_numpy(np.int64), 0, None) // self.width

    def per_bin(
        self, frame: pd.DataFrame, figure: Callable[[pd.DataFrame, int], float]
    ) -> NDArray[np.float64]:
        """``figure(rows, bin)`` of the rows of ``frame`` in each time bin (NaN: no rows)."""
        import numpy as np

        out = np.full(self.n_bins, np.nan)
        if frame.empty:
            return out
        bins = self.bins(frame["tick"])
        order = np.argsort(bins, kind="stable")
        ordered = bins[order]
        for b in np.unique(ordered).tolist():
            lo, hi = np.searchsorted(ordered, [b, b + 1])
            out[b] = figure(frame.iloc[order[lo:hi]], b)
        return out

    def count(self, ticks: pd.Series, weights: Any = None) -> NDArray[np.float64]:
        import numpy as np

        return np.bincount(self.bins(ticks), weights=weights, minlength=self.n_bins)[
            : self.n_bins
        ].astype(np.float64)


def _bin_width(n_ticks: int, tick_minutes: float) -> int:
    for minutes in _BIN_CHOICES:
        width = max(1, round(minutes / tick_minutes))
        if math.ceil(n_ticks / width) <= _MAX_BINS:
            return width
    return max(1, math.ceil(n_ticks / _MAX_BINS))


def _catalog(manifest: dict[str, Any]) -> tuple[Catalog | None, str]:
    """The run's catalogue, rebuilt from its configuration and seed, or ``None`` and why."""
    from recoworld._config import from_mapping
    from recoworld.config import ScenarioConfig
    from recoworld.errors import RecoworldError
    from recoworld.rng import RngTree
    from recoworld.world.world import World

    started = time.perf_counter()
    try:
        config = from_mapping(ScenarioConfig, manifest["config"], path="manifest.config")
        world = World.from_config(config, RngTree(config.seed))
    except (RecoworldError, OSError, KeyError, TypeError, ValueError) as exc:
        _log.warning("report: catalogue not rebuilt (%s); topics and titles left out", exc)
        return None, f"the catalogue could not be rebuilt from the manifest ({exc})"
    _log.info("report: catalogue rebuilt in %.2f s", time.perf_counter() - started)
    return world.catalog, ""


def _load(path: Path, manifest: dict[str, Any]) -> _Run:
    from recoworld.trajectory.reader import read_table

    started = time.perf_counter()
    imp = read_table(
        path, "impressions", ["tick", "session", "user", "item", "rank", "source", "from_user"]
    )
    resp = read_table(
        path,
        "responses",
        ["tick", "session", "user", "item", "rank", "action", "clicked", "dwell", "rating", "left"],
    )
    calls = read_table(
        path,
        "llm_calls",
        [
            "tick", "user", "purpose", "model", "prompt_tokens", "completion_tokens", "cost_usd",
            "latency_s", "cached", "valid", "repaired", "fallback",
        ],
    )  # fmt: skip
    clock = manifest.get("config", {}).get("clock", {})
    tick_minutes = float(clock.get("tick_minutes", 5))
    seen = int(imp["tick"].max()) + 1 if len(imp) else 0
    n_ticks = max(int(manifest.get("ticks_completed") or 0), seen, 1)
    catalog, why = _catalog(manifest)
    run = _Run(
        path=path,
        manifest=manifest,
        imp=imp,
        resp=resp,
        ins=read_table(path, "instructions"),
        ses=read_table(path, "sessions"),
        soc=read_table(path, "social"),
        ops=read_table(path, "opinions"),
        calls=calls,
        catalog=catalog,
        catalog_note=why,
        tick_minutes=tick_minutes,
        n_ticks=n_ticks,
        width=_bin_width(n_ticks, tick_minutes),
    )
    _log.info("report: tables read in %.2f s", time.perf_counter() - started)
    return run


def _figure(chart: str, caption: str = "") -> str:
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f"<figure>{chart}{cap}</figure>"


def _charts(*figures: str) -> str:
    return '<div class="charts">' + "".join(f for f in figures if f) + "</div>"


def _tables(*parts: str) -> str:
    return '<div class="tables">' + "".join(parts) + "</div>"


# --------------------------------------------------------------------------------- sections


def _summary(run: _Run) -> Section:
    from recoworld.metrics.summary import summarize_run

    m = run.manifest
    config = m.get("config", {})
    hours = run.n_ticks * run.tick_minutes / 60.0
    span = f"{hours / 24:.3g} days" if hours >= 48 else f"{hours:.3g} hours"
    llm_users = _llm_users(run)
    pairs: list[tuple[str, Any]] = [
        ("run id", m.get("run_id")),
        ("scenario", m.get("scenario")),
    ]
    if config.get("description"):
        pairs.append(("description", config["description"]))
    pairs += [
        ("status", m.get("status")),
        ("seed", m.get("seed")),
        ("policy", m.get("policy")),
        ("user model", m.get("user_model")),
        ("users", m.get("n_users")),
        ("items", m.get("n_items")),
        ("follow edges", m.get("n_edges")),
        ("ticks completed", f"{m.get('ticks_completed', 0):,} of {m.get('n_ticks', 0):,}"),
        ("tick length", f"{run.tick_minutes:g} minutes"),
        ("simulated time", span),
    ]
    if llm_users.size:
        pairs.append(("LLM users", int(llm_users.size)))
    versions = m.get("versions", {})
    pairs += [
        ("trajectory schema", m.get("schema_version")),
        ("recoworld version", versions.get("recoworld")),
        ("git commit", m.get("git_commit") or "n/a"),
        ("folder", Raw(f"<code>{esc(run.path)}</code>")),
    ]
    figures = summarize_run(run.path)
    rows = [
        (LABELS.get(name, name), Raw(f"<code>{esc(name)}</code>"), value)
        for name, value in figures.items()
    ]
    right = [
        table(
            ["figure", "name", "value"],
            rows,
            numeric=[2],
            caption="Run summary (recoworld.metrics.summarize_run)",
        )
    ]
    totals = m.get("totals")
    if isinstance(totals, dict) and totals:
        right.append(
            kv_table(
                [(k.replace("_", " "), v) for k, v in sorted(totals.items())],
                caption="Totals (manifest)",
            )
        )
    parts = [kv_table(pairs, caption="Run"), "<div>" + "".join(right) + "</div>"]
    return Section("summary", "Summary", _tables(*parts))


def _engagement(run: _Run) -> Section:
    import numpy as np

    from recoworld.metrics.engagement import ctr

    if run.imp.empty:
        return Section("engagement", "Engagement", note("No impressions in this run."))
    shown = run.count(run.imp["tick"])
    examined = run.count(run.resp["tick"])
    clicks = run.count(run.resp["tick"], run.resp["clicked"].to_numpy(np.float64))
    rates = run.per_bin(run.resp, lambda rows, b: ctr(rows, int(shown[b])))
    x = run.bin_x()
    ctr_chart = svg.line_chart(
        [svg.Line("CTR", x, rates)],
        title=f"Click-through rate {run.per}",
        xlabel=run.xlabel,
        ylabel="clicks / impressions",
        y_range=(0.0, None),
    )
    volume = svg.line_chart(
        [
            svg.Line("impressions", x, shown),
            svg.Line("examined", x, examined),
            svg.Line("clicks", x, clicks),
        ],
        title=f"Impressions, items examined and clicks {run.per}",
        xlabel=run.xlabel,
        ylabel="count",
        y_range=(0.0, None),
    )
    # CTR by feed position and source.
    source = run.imp["source"].astype(str).to_numpy()
    keys = run.imp[["tick", "user", "rank"]].assign(source=source)
    resp = run.resp[["tick", "user", "rank", "clicked"]].merge(keys, on=["tick", "user", "rank"])
    lines = []
    for name, label in (("rec", "recommended"), ("social", "in-network")):
        ranks = run.imp["rank"].to_numpy(np.int64)[source == name]
        if not ranks.size:
            continue
        shown_at = np.bincount(ranks)
        mine = resp[resp["source"].to_numpy() == name]
        at = mine["rank"].to_numpy(np.int64)
        positions = np.flatnonzero(shown_at)
        values = [ctr(mine[at == r], int(shown_at[r])) for r in positions.tolist()]
        lines.append(svg.Line(label, positions + 1, values))
    position = svg.line_chart(
        lines,
        title="Click-through rate by feed position",
        xlabel="position in the feed (1 = top)",
        ylabel="clicks / impressions",
        y_range=(0.0, None),
    )
    total = ctr(run.resp, len(run.imp))
    return Section(
        "engagement",
        "Engagement",
        _charts(
            _figure(ctr_chart, f"engagement/ctr over time; over the run: {total:.4f}."),
            _figure(volume, "Examined: impressions the user reached before leaving the page."),
            _figure(
                position,
                "Users review a page top-down, so lower positions are reached less often.",
            ),
        ),
    )


def _retention(run: _Run) -> Section:
    import numpy as np

    from recoworld.metrics.engagement import (
        churn_rate,
        daily_active_users,
        retention_curve,
        return_gap,
        return_rate,
    )

    ses = run.ses
    if ses.empty:
        return Section("retention", "Retention", note("No sessions in this run."))
    gap = return_gap(ses) * run.tick_minutes / 60.0
    figures = [
        ("users with a session", int(ses["user"].nunique())),
        ("sessions (closed)", len(ses)),
        ("retention/return_rate", return_rate(ses)),
        ("retention/return_gap (hours)", gap),
        ("retention/churn", churn_rate(ses)),
    ]
    x = run.bin_x()
    started = run.count(ses["start_tick"])
    pages = run.imp[["tick", "user"]].drop_duplicates()
    per_bin = pages.assign(b=run.bins(pages["tick"]))[["b", "user"]].drop_duplicates()
    active = np.bincount(per_bin["b"].to_numpy(np.int64), minlength=run.n_bins)[: run.n_bins]
    activity = svg.line_chart(
        [svg.Line("users served a page", x, active), svg.Line("sessions started", x, started)],
        title=f"Active users and sessions started {run.per}",
        xlabel=run.xlabel,
        ylabel="count",
        y_range=(0.0, None),
    )
    curve = retention_curve(ses, run.n_ticks)
    ticks = np.arange(curve.size)
    retention = svg.line_chart(
        [svg.Line("R(t)", run.hours(ticks), curve, markers=False)],
        title="Retention curve: share of users who still come back at or after t",
        xlabel=run.xlabel,
        ylabel="share of users with a session",
        y_range=(0.0, 1.0),
    )
    figs = [
        _figure(activity, "Sessions started: from the sessions table (closed sessions)."),
        _figure(retention, "retention/curve R(t) from recoworld.metrics.retention_curve."),
    ]
    minutes_per_day = 1440.0
    per_day = minutes_per_day / run.tick_minutes
    days = run.n_ticks / per_day
    dau_note = ""
    if per_day == int(per_day) and days >= 2:
        dau = daily_active_users(ses, int(per_day))
        chart = svg.bar_chart(
            [f"day {d + 1}" for d in range(dau.size)],
            dau.astype(float).tolist(),
            title="Daily active users (retention/dau)",
            xlabel="distinct users starting a session that day",
            show_values=True,
            color=svg.PALETTE[0],
        )
        figs.append(_figure(chart))
    else:
        dau = daily_active_users(ses, max(1, int(per_day)))
        span = "one simulated day" if days == 1 else f"{days:.3g} simulated days"
        dau_note = note(
            f"Daily active users (retention/dau): {int(dau[0]) if dau.size else 0:,} on the "
            f"first day; the run covers {span}, so there is no per-day chart (it needs two or "
            "more)."
        )
    body = _tables(kv_table([(k, v) for k, v in figures], caption="Retention figures"))
    return Section("retention", "Retention", body + _charts(*figs) + dau_note)


def _sessions(run: _Run) -> Section:
    from recoworld.metrics.engagement import mean_session_length

    ses = run.ses
    if ses.empty:
        return Section("sessions", "Session length", note("No sessions in this run."))
    items = svg.histogram(
        [("sessions", ses["items"].to_numpy())],
        title="Items examined per session",
        xlabel="items examined",
        ylabel="sessions",
        integer=True,
        bins=40,
    )
    pages = svg.histogram(
        [("sessions", ses["pages"].to_numpy())],
        title="Pages per session",
        xlabel="pages (one per tick)",
        ylabel="sessions",
        integer=True,
        bins=40,
    )
    reasons = ses.groupby("end_reason", observed=True).size()
    rows = [(str(r), int(n), n / len(ses)) for r, n in reasons.items() if n]
    mean = mean_session_length(ses)
    body = _tables(
        table(
            ["end reason", "sessions", "share"], rows, numeric=[1, 2], caption="How sessions ended"
        )
    ) + _charts(
        _figure(items, f"engagement/session_length (mean items examined): {mean:.2f}."),
        _figure(pages),
    )
    return Section("sessions", "Session length", body)


def _around(run: _Run) -> tuple[list[int], list[float]]:
    """Mean CTR (clicks / items examined) of the pages ``−AROUND..AROUND`` pages from each
    instruction's page in its session (0: the page after which it was given)."""
    import numpy as np

    pages = (
        run.resp.groupby(["user", "session", "tick"], observed=True, sort=True)["clicked"]
        .agg(["sum", "size"])
        .reset_index()
    )
    pages["pos"] = pages.groupby(["user", "session"], observed=True).cumcount()
    pages["ctr"] = pages["sum"] / pages["size"]
    anchor = run.ins[["user", "session", "tick"]].merge(
        pages[["user", "session", "tick", "pos"]], on=["user", "session", "tick"], how="inner"
    )
    offsets = list(range(-AROUND, AROUND + 1))
    means = []
    for offset in offsets:
        target = anchor.assign(pos=anchor["pos"] + offset)[["user", "session", "pos"]]
        hit = target.merge(pages[["user", "session", "pos", "ctr"]], on=["user", "session", "pos"])
        means.append(float(hit["ctr"].mean()) if len(hit) else float(np.nan))
    return offsets, means


def _instructions(run: _Run) -> Section:
    import numpy as np

    from recoworld.metrics.engagement import instructions_per_session
    from recoworld.metrics.instruction import compliance, post_instruction_recovery

    ins = run.ins
    if ins.empty:
        return Section(
            "instructions", "Instructions", note("No reflective instructions in this run.")
        )
    figures: list[tuple[str, Any]] = [
        ("instructions", len(ins)),
        ("instruction/rate (per session)", instructions_per_session(len(ins), run.ses)),
    ]
    if run.catalog is not None:
        cat = run.catalog
        known = run.imp[run.imp["item"].to_numpy(np.int64) < cat.n_items]
        shown = known[["tick", "user", "item", "source"]]
        figures.append(
            ("instruction/compliance", compliance(ins, shown, cat.topic, cat.topic_names))
        )
    recovery = [post_instruction_recovery(ins, run.resp, k) for k in (1, 2, 3)]
    figures += [
        (f"instruction/recovery (k = {k})", v) for k, v in zip((1, 2, 3), recovery, strict=True)
    ]
    x = run.bin_x()
    reasons = ins["reason"].astype(str)
    lines = [svg.Line("all", x, run.count(ins["tick"]))]
    for reason in sorted(reasons.unique()):
        lines.append(svg.Line(reason, x, run.count(ins["tick"][reasons == reason]), dashed=True))
    timeline = svg.line_chart(
        lines if len(lines) > 2 else lines[:1],
        title=f"Instructions {run.per}, by reason",
        xlabel=run.xlabel,
        ylabel="instructions",
        y_range=(0.0, None),
    )
    offsets, means = _around(run)
    around = svg.line_chart(
        [svg.Line("mean page CTR", offsets, means)],
        title="CTR on the pages around an instruction",
        xlabel="pages from the instruction's page (0 = the page after which it was said)",
        ylabel="clicks / items examined",
    )
    rec = svg.bar_chart(
        ["k = 1", "k = 2", "k = 3"],
        recovery,
        title="Post-instruction recovery (instruction/recovery)",
        xlabel="CTR of the next k pages − CTR of the last k pages",
        show_values=True,
        color=svg.PALETTE[0],
    )
    top = ins.groupby("text").size().sort_values(ascending=False, kind="stable").head(8)
    said = table(
        ["instruction", "times"],
        [(text, int(n)) for text, n in top.items()],
        numeric=[1],
        caption="Most frequent instructions",
    )
    by_reason = ins.groupby(reasons).agg(n=("tick", "size"), risk=("risk", "mean"))
    reason_rows = [(str(r), int(row.n), float(row.risk)) for r, row in by_reason.iterrows()]
    body = _tables(
        kv_table(figures, caption="Instruction figures"),
        table(
            ["reason", "instructions", "mean risk"],
            reason_rows,
            numeric=[1, 2],
            caption="By reason",
        ),
        said,
    ) + _charts(
        _figure(timeline),
        _figure(
            around,
            "Mean over instructions of each page's clicks / items examined, same session only.",
        ),
        _figure(
            rec,
            "recoworld.metrics.instruction.post_instruction_recovery; sessions that ended at "
            "the instruction are skipped.",
        ),
    )
    return Section("instructions", "Instructions", body)


def _diversity(run: _Run) -> Section:
    import numpy as np

    from recoworld.metrics.diversity import (
        calibration_kl,
        catalog_coverage,
        exposure_gini,
        intra_list_diversity,
        novelty,
    )
    from recoworld.metrics.social import topic_entropy

    if run.catalog is None:
        return Section(
            "diversity",
            "Diversity",
            note(f"Diversity needs the item catalogue: {run.catalog_note}."),
        )
    cat = run.catalog
    known = run.imp["item"].to_numpy(np.int64) < cat.n_items
    # Recommended impressions of catalogue items, without the source column: the metrics take
    # every row they are given as recommended (no second filtering pass).
    is_rec = (run.imp["source"].astype(str) == "rec").to_numpy()
    rec = run.imp.loc[known & is_rec, ["tick", "user", "item", "rank"]]
    if rec.empty:
        return Section("diversity", "Diversity", note("No recommended impressions in this run."))
    resp = run.resp[run.resp["item"].to_numpy(np.int64) < cat.n_items]
    n_users = int(run.manifest.get("n_users") or 0)
    figures = [
        ("diversity/ild", intra_list_diversity(rec, cat.embedding)),
        ("diversity/coverage", catalog_coverage(rec, cat.n_items)),
        ("fairness/exposure_gini", exposure_gini(rec, cat.n_items)),
        ("diversity/novelty", novelty(rec, n_users)),
        ("diversity/calibration_kl", calibration_kl(rec, resp, cat.topic, cat.n_topics)),
    ]
    x = run.bin_x()
    entropy = topic_entropy(
        rec, cat.topic, cat.n_topics, window=run.width, correction="miller-madow"
    )
    per_window = entropy.groupby("window")["topic_entropy"].mean()
    ent = np.full(run.n_bins, np.nan)
    ent[per_window.index.to_numpy(np.int64)] = per_window.to_numpy(np.float64)
    ild = run.per_bin(rec, lambda rows, _: intra_list_diversity(rows, cat.embedding))
    chart = svg.line_chart(
        [
            svg.Line("mean per-user topic entropy", x, ent),
            svg.Line("intra-list diversity (ILD)", x, ild),
        ],
        title=f"Diversity of what the recommender showed, {run.per}",
        xlabel=run.xlabel,
        ylabel="0 = one topic / identical items",
        y_range=(0.0, 1.0),
    )
    topics = np.bincount(cat.topic[rec["item"].to_numpy(np.int64)], minlength=cat.n_topics)
    order = np.argsort(-topics, kind="stable")
    mix = svg.bar_chart(
        [cat.topic_names[t] for t in order],
        (topics[order] / max(topics.sum(), 1)).tolist(),
        title="Topic mix of recommended items",
        xlabel="share of recommended impressions",
        show_values=True,
        color=svg.PALETTE[0],
    )
    posts = int((~known).sum())
    caption = (
        "Topic entropy: normalized, Miller–Madow corrected, per user and time bin "
        "(recoworld.metrics.topic_entropy), averaged over users; ILD: 1 − cosine of item "
        "embeddings within each slate (recoworld.metrics.diversity.intra_list_diversity)."
    )
    if posts:
        caption += f" {posts:,} impressions of items created during the run are left out."
    body = _tables(kv_table(figures, caption="Diversity and exposure (recommended items)"))
    return Section("diversity", "Diversity", body + _charts(_figure(chart, caption), _figure(mix)))


def _opinions(run: _Run) -> Section:
    import numpy as np

    from recoworld.metrics.social import polarization

    ops = run.ops
    if ops.empty:
        return Section("opinions", "Opinions", note("No opinion snapshots in this run."))
    ticks = np.unique(ops["tick"].to_numpy(np.int64))
    first = ops[ops["tick"] == ticks[0]]["opinion"].to_numpy(np.float64)
    last = ops[ops["tick"] == ticks[-1]]["opinion"].to_numpy(np.float64)
    start = f"before tick {ticks[0] + 1}" if ticks[0] < 0 else f"after tick {ticks[0]}"
    samples = [(f"start ({start})", first)]
    if ticks.size > 1:
        samples.append((f"end (after tick {ticks[-1]})", last))
    hist = svg.histogram(
        samples,
        title="Opinion distribution, first and last snapshot",
        xlabel="opinion (−1 … 1)",
        bins=np.linspace(-1.0, 1.0, 41).tolist(),
        density=True,
        ylabel="share of users",
    )
    rows = []
    for name, values in samples:
        pol = polarization(values)
        rows.append(
            (name, float(values.mean()), pol["variance"], pol["bimodality"], pol["extremity"])
        )
    pol_table = table(
        ["snapshot", "mean", "variance", "bimodality", "extremity (|x| > 0.5)"],
        rows,
        numeric=[1, 2, 3, 4],
        caption="Polarization (recoworld.metrics.polarization)",
    )
    figs = [_figure(hist)]
    if ticks.size >= 3:
        levels = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
        q = ops.groupby("tick")["opinion"].quantile(levels).unstack()
        x = run.hours(q.index.to_numpy(np.int64) + 1)
        bands = svg.line_chart(
            [svg.Line("median", x, q[0.5].to_numpy(), color="#1f77b4")],
            bands=[
                svg.Band("5–95%", x, q[0.05].to_numpy(), q[0.95].to_numpy(), color="#1f77b4"),
                svg.Band(
                    "25–75%",
                    x,
                    q[0.25].to_numpy(),
                    q[0.75].to_numpy(),
                    color="#1f77b4",
                    opacity=0.3,
                ),
            ],
            title="Opinions over time (quantiles over users)",
            xlabel=run.xlabel,
            ylabel="opinion",
            y_range=(-1.0, 1.0),
        )
        per = [polarization(g.to_numpy(np.float64)) for _, g in ops.groupby("tick")["opinion"]]
        trend = svg.line_chart(
            [
                svg.Line("variance", x, [p["variance"] for p in per]),
                svg.Line("bimodality", x, [p["bimodality"] for p in per]),
                svg.Line("extremity", x, [p["extremity"] for p in per]),
            ],
            title="Polarization over time",
            xlabel=run.xlabel,
            ylabel="value",
            y_range=(0.0, None),
        )
        figs += [_figure(bands), _figure(trend, "Bimodality > 5/9 suggests two camps.")]
    caption = (
        f"{ticks.size} snapshots of {len(first):,} users."
        if ticks.size > 1
        else f"One snapshot of {len(first):,} users."
    )
    return Section("opinions", "Opinions", _tables(pol_table) + note(caption) + _charts(*figs))


def _size_bins(sizes: NDArray[np.int64]) -> tuple[list[str], list[float]]:
    """Cascade counts in powers-of-two size classes: 1, 2, 3–4, 5–8, …"""
    labels, counts = [], []
    lo, hi = 1, 1
    top = int(sizes.max())
    while lo <= top:
        n = int(((sizes >= lo) & (sizes <= hi)).sum())
        labels.append(str(lo) if lo == hi else f"{lo}–{hi}")
        counts.append(float(n))
        lo, hi = hi + 1, hi * 2
    return labels, counts


def _cascades(run: _Run) -> Section:
    import numpy as np

    from recoworld.metrics.social import diffusion_trees, social_summary

    soc = run.soc
    kinds = soc["kind"].astype(str)
    counts = kinds.value_counts()
    adoptions = soc[kinds.isin(["share", "post"]).to_numpy()]
    if adoptions.empty:
        text = "No shares or posts in this run, so no cascades."
        if len(soc):
            text += " Social events: " + ", ".join(f"{k} {n:,}" for k, n in counts.items()) + "."
        return Section("cascades", "Cascades", note(text))
    trees = diffusion_trees(adoptions)
    figures = social_summary({"social": adoptions})
    sizes = trees["size"].to_numpy(np.int64)
    labels, n = _size_bins(sizes)
    dist = svg.bar_chart(
        labels,
        n,
        title="Cascade sizes (adoptions per cascade)",
        xlabel="cascades",
        show_values=True,
        color=svg.PALETTE[0],
    )
    x = run.bin_x()
    lines = [
        svg.Line(kind, x, run.count(soc["tick"][kinds == kind]))
        for kind in ("share", "post", "follow", "unfollow", "mute")
        if counts.get(kind, 0)
    ]
    events = svg.line_chart(
        lines,
        title=f"Social events {run.per}",
        xlabel=run.xlabel,
        ylabel="events",
        y_range=(0.0, None),
    )
    depth = trees["depth"].to_numpy(np.int64)
    body = _tables(
        kv_table(list(figures.items()), caption="Cascade figures (social_summary)"),
        table(
            ["kind", "events"],
            [(k, int(v)) for k, v in counts.items()],
            numeric=[1],
            caption="Social events",
        ),
    ) + _charts(
        _figure(
            dist,
            f"{len(trees):,} cascades (recoworld.metrics.diffusion_trees); the deepest is "
            f"{int(depth.max())} {'hop' if int(depth.max()) == 1 else 'hops'} deep.",
        ),
        _figure(events),
    )
    return Section("cascades", "Cascades", body)


def _llm_users(run: _Run) -> NDArray[np.int64]:
    import numpy as np

    calls = run.calls
    if calls.empty:
        return np.zeros(0, np.int64)
    mine = calls["purpose"].astype(str).isin(["page", "reflection"]).to_numpy()
    return np.unique(calls["user"].to_numpy(np.int64)[mine])


def _llm(run: _Run) -> Section:
    import numpy as np

    from recoworld.metrics.summary import llm_summary

    calls = run.calls
    if calls.empty:
        return Section(
            "llm",
            "LLM calls",
            note("No LLM calls in this run (no LLM users and no LLM-backed policy)."),
        )
    purpose = calls["purpose"].astype(str)
    rows = []
    for name, group in calls.groupby(purpose, sort=True):
        rows.append(
            (
                str(name),
                len(group),
                float(group["valid"].mean()),
                int(group["fallback"].sum()),
                int(group["cached"].sum()),
                int(group["prompt_tokens"].sum()),
                int(group["completion_tokens"].sum()),
                float(group["cost_usd"].sum()),
                float(group["latency_s"].mean()),
            )
        )
    per = table(
        [
            "purpose", "calls", "valid share", "fallbacks", "cached", "prompt tokens",
            "completion tokens", "cost (USD)", "mean latency (s)",
        ],
        rows,
        numeric=range(1, 9),
        caption="By purpose",
    )  # fmt: skip
    x = run.bin_x()
    prompt = run.count(calls["tick"], calls["prompt_tokens"].to_numpy(np.float64))
    completion = run.count(calls["tick"], calls["completion_tokens"].to_numpy(np.float64))
    tokens = svg.line_chart(
        [svg.Line("prompt tokens", x, prompt), svg.Line("completion tokens", x, completion)],
        title=f"LLM tokens {run.per}",
        xlabel=run.xlabel,
        ylabel="tokens",
        y_range=(0.0, None),
    )
    cost = run.count(calls["tick"], calls["cost_usd"].to_numpy(np.float64))
    if cost.sum() > 0:
        spend = svg.line_chart(
            [svg.Line("cumulative cost", x, np.cumsum(cost))],
            title="Cumulative LLM cost",
            xlabel=run.xlabel,
            ylabel="USD",
            y_range=(0.0, None),
        )
        spend_caption = ""
    else:
        spend = svg.line_chart(
            [svg.Line("cumulative tokens", x, np.cumsum(prompt + completion))],
            title="Cumulative LLM tokens",
            xlabel=run.xlabel,
            ylabel="tokens",
            y_range=(0.0, None),
        )
        spend_caption = (
            "Cost is 0: no prices configured (llm.client.price_prompt_per_1k / "
            "price_completion_per_1k) or every reply came from the cache."
        )
    summary = llm_summary(calls)
    body = _tables(
        kv_table(
            [(LABELS.get(k, k), v) for k, v in summary.items()]
            + [("LLM users", int(_llm_users(run).size))],
            caption="LLM figures (llm_summary)",
        ),
        per,
    ) + _charts(_figure(tokens), _figure(spend, spend_caption))
    return Section("llm", "LLM tokens and cost", body)


def _viewer(run: _Run, max_users: int) -> tuple[Section, str]:
    from recoworld.report._viewer import MAX_SLATES, viewer_data

    data = viewer_data(
        run.path,
        run.manifest,
        run.imp,
        run.resp,
        run.ins,
        run.ses,
        _llm_users(run),
        run.catalog,
        max_users,
    )
    if not data["users"]:
        why = "no user was served a page" if max_users > 0 else "max_viewer_users is 0"
        return Section("viewer", "Session viewer", note(f"No session to show: {why}.")), ""
    llm = any(u["llm"] for u in data["users"])
    data["llm"] = llm
    n = len(data["users"])
    intro = (
        f"The feeds of {n:,} users ({'LLM users first, then ' if llm else ''}the users with the "
        f"most pages, up to {max_users:,} users and {MAX_SLATES:,} slates in all), slate by "
        "slate: each page in rank order with the user's response, and the instruction the user "
        "gave after it. Choose a user, then step with the buttons or the arrow keys."
    )
    if run.catalog is None:
        intro += f" Topics and titles are not shown: {run.catalog_note}."
    headers = ["#", "item", "topic", "title", "source", "response", "dwell", "rating"]
    if llm:
        headers.append("LLM user's notes")
    head = "".join(
        f"<th{' class=num' if h in ('#', 'item', 'dwell', 'rating') else ''}>{esc(h)}</th>"
        for h in headers
    )
    body = (
        f'<p class="caption">{esc(intro)}</p>'
        '<div class="controls"><label for="viewer-user">User</label>'
        '<select id="viewer-user"></select>'
        '<button type="button" id="viewer-prev">◀ Previous</button>'
        '<button type="button" id="viewer-next">Next ▶</button>'
        '<span id="viewer-position" class="position"></span>'
        '<span class="keys"><kbd>←</kbd> <kbd>→</kbd> step</span></div>'
        '<div id="viewer-head" class="slate-head"></div>'
        '<div class="table-wrap"><table class="data slate">'
        f'<thead><tr>{head}</tr></thead><tbody id="viewer-body"></tbody></table></div>'
        '<div id="viewer-said"></div><div id="viewer-extra"></div>'
    )
    tail = json_script("viewer-data", data) + f"<script>{SCRIPT}</script>"
    return Section("viewer", "Session viewer", body), tail


def render_run(path: Path, manifest: dict[str, Any], *, max_viewer_users: int) -> str:
    """The whole HTML page of the run folder ``path``."""
    run = _load(path, manifest)
    sections = []
    for build in (
        _summary, _engagement, _retention, _sessions, _instructions, _diversity, _opinions,
        _cascades, _llm,
    ):  # fmt: skip
        started = time.perf_counter()
        sections.append(build(run))
        _log.info("report: %s in %.2f s", build.__name__.strip("_"), time.perf_counter() - started)
    viewer, tail = _viewer(run, max_viewer_users)
    sections.append(viewer)
    m = manifest
    title = f"recoworld run {m.get('run_id', path.name)}"
    subtitle = (
        f"scenario {m.get('scenario')} · policy {m.get('policy')} · seed {m.get('seed')} · "
        f"{int(m.get('n_users') or 0):,} users · {m.get('ticks_completed', 0):,} ticks · "
        f"{m.get('status')}"
    )
    footer = (
        f"Made by recoworld report from <code>{esc(path)}</code>. Self-contained: nothing is "
        f"loaded from the network. Figures: recoworld.metrics ({esc(figure_value(len(run.imp)))} "
        "impressions read)."
    )
    return document(title, subtitle, sections, tail=tail, footer=footer)
