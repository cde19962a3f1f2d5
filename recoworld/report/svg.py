"""Small inline-SVG charts for the HTML reports: line charts (with shaded bands), histograms and
horizontal bar charts with error bars.

Every function returns one ``<svg>`` element as a string — axes with "nice" ticks, grid lines,
axis labels, a title, a legend when there is more than one series — sized by its ``viewBox`` so
that it scales to the width of its container. Text is escaped; numbers that are NaN or infinite
are left out (a line breaks there). Only numpy is used, and only inside the functions.

>>> svg = line_chart([Line("ctr", [0, 1, 2], [0.2, 0.25, 0.22])], title="CTR", xlabel="hour",
...                  ylabel="CTR")
>>> svg.startswith("<svg")
True
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = [
    "PALETTE",
    "Band",
    "Line",
    "bar_chart",
    "fmt_number",
    "histogram",
    "line_chart",
    "nice_ticks",
]

#: Series colours, in order (colour-blind-safe, after Okabe & Ito and Tableau 10).
PALETTE = (
    "#1f77b4", "#e8830c", "#2a9d5c", "#c94f7c", "#6c5ce7", "#8c564b", "#17a2b8", "#7f7f7f",
)  # fmt: skip

WIDTH = 640
HEIGHT = 300
_FONT = 12
_CHAR = 0.6 * _FONT  # an estimate of the width of one character


@dataclass(frozen=True, slots=True)
class Line:
    """One series of a line chart: ``y`` over ``x``; ``dashed`` draws it dashed."""

    label: str
    x: ArrayLike
    y: ArrayLike
    dashed: bool = False
    color: str | None = None
    markers: bool | None = None  # None: markers when the series has at most 40 points


@dataclass(frozen=True, slots=True)
class Band:
    """A shaded band between ``low`` and ``high`` over ``x`` (e.g. a quantile range)."""

    label: str
    x: ArrayLike
    low: ArrayLike
    high: ArrayLike
    color: str | None = None
    opacity: float = 0.18


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def nice_ticks(lo: float, hi: float, n: int = 5, *, integer: bool = False) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 × 10^k; whole numbers only if ``integer``)
    covering ``[lo, hi]``, about ``n`` of them; the first is ≤ ``lo`` and the last ≥ ``hi``."""
    if not (_finite(lo) and _finite(hi)):
        return [0.0, 1.0]
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(n, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = 10.0 * magnitude
    for mult in (1.0, 2.0, 2.5, 5.0, 10.0):
        candidate = mult * magnitude
        if integer and candidate != math.floor(candidate):
            continue
        if (hi - lo) / candidate <= n:
            step = candidate
            break
    if integer:
        step = max(step, 1.0)
    start = math.floor(lo / step + 1e-9) * step
    stop = math.ceil(hi / step - 1e-9) * step
    count = round((stop - start) / step)
    return [_clean(start + i * step) for i in range(count + 1)]


def _clean(value: float) -> float:
    return float(f"{value:.12g}") + 0.0  # + 0.0: no "-0"


def _decimals(step: float) -> int:
    """Decimals that write every multiple of ``step`` exactly (2.5 → 1, 0.05 → 2, 10 → 0)."""
    if step <= 0 or not _finite(step):
        return 0
    text = f"{step:.10f}".rstrip("0").rstrip(".")
    return len(text.split(".")[1]) if "." in text else 0


def fmt_number(value: float, step: float | None = None) -> str:
    """A number for a tick or a table: thousands as ``12k`` / ``1.2M`` on axes with big steps,
    else with as many decimals as the step (or 4 significant digits) needs."""
    if not _finite(value):
        return "n/a"
    magnitude = abs(value)
    if step is not None:
        if magnitude >= 1e6 and step >= 1e5:
            return f"{value / 1e6:.{max(0, _decimals(step / 1e6))}f}M"
        if magnitude >= 1e4 and step >= 1e3:
            return f"{value / 1e3:.{max(0, _decimals(step / 1e3))}f}k"
        return f"{value:,.{_decimals(step)}f}"
    if value == int(value) and magnitude < 1e15:
        return f"{int(value):,}"
    if magnitude >= 100:
        return f"{value:,.1f}"
    return f"{value:.4g}"


class _Frame:
    """Plot area, scales and the axes of one chart."""

    def __init__(
        self,
        *,
        width: int,
        height: int,
        title: str,
        legend: Sequence[tuple[str, str, bool | float]],
        left: float = 62.0,
    ) -> None:
        self.width, self.height, self.title = width, height, title
        self.legend_rows = self._legend_layout(legend, width - 24)
        self.top = 34.0 + 18.0 * len(self.legend_rows)
        self.left, self.right, self.bottom = left, 18.0, 48.0
        self.parts: list[str] = []

    @staticmethod
    def _legend_layout(
        legend: Sequence[tuple[str, str, bool | float]], room: float
    ) -> list[list[tuple[float, str, str, bool | float]]]:
        """Legend entries ``(label, colour, style)`` — style ``False`` a line, ``True`` a dashed
        line, a float a filled swatch of that opacity — laid out in rows."""
        rows: list[list[tuple[float, str, str, bool | float]]] = []
        x = room + 1.0
        for label, color, dashed in legend:
            size = 26.0 + _CHAR * len(label) + 14.0
            if x + size > room:
                rows.append([])
                x = 0.0
            rows[-1].append((x, label, color, dashed))
            x += size
        return rows

    @property
    def plot_w(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> float:
        return self.height - self.top - self.bottom

    def scales(self, x0: float, x1: float, y0: float, y1: float) -> None:
        self.x0, self.x1 = x0, (x1 if x1 != x0 else x0 + 1.0)
        self.y0, self.y1 = y0, (y1 if y1 != y0 else y0 + 1.0)

    def sx(self, x: float) -> float:
        return self.left + (x - self.x0) / (self.x1 - self.x0) * self.plot_w

    def sy(self, y: float) -> float:
        return self.top + (1.0 - (y - self.y0) / (self.y1 - self.y0)) * self.plot_h

    def axes(
        self,
        xticks: Sequence[float],
        yticks: Sequence[float],
        xlabel: str,
        ylabel: str,
        *,
        xfmt: Sequence[str] | None = None,
        yfmt: Sequence[str] | None = None,
        xgrid: bool = False,
    ) -> None:
        p = self.parts
        bottom = self.top + self.plot_h
        ystep = yticks[1] - yticks[0] if len(yticks) > 1 else 1.0
        for j, y in enumerate(yticks):
            py = self.sy(y)
            p.append(
                f'<line class="grid" x1="{self.left:.1f}" x2="{self.left + self.plot_w:.1f}" '
                f'y1="{py:.1f}" y2="{py:.1f}"/>'
            )
            label = yfmt[j] if yfmt is not None else fmt_number(y, ystep)
            p.append(
                f'<text class="tick" x="{self.left - 6:.1f}" y="{py + 4:.1f}" '
                f'text-anchor="end">{_esc(label)}</text>'
            )
        xstep = xticks[1] - xticks[0] if len(xticks) > 1 else 1.0
        for j, x in enumerate(xticks):
            px = self.sx(x)
            if xgrid:
                p.append(
                    f'<line class="grid" x1="{px:.1f}" x2="{px:.1f}" y1="{self.top:.1f}" '
                    f'y2="{bottom:.1f}"/>'
                )
            p.append(
                f'<line class="axis" x1="{px:.1f}" x2="{px:.1f}" y1="{bottom:.1f}" '
                f'y2="{bottom + 4:.1f}"/>'
            )
            label = xfmt[j] if xfmt is not None else fmt_number(x, xstep)
            p.append(
                f'<text class="tick" x="{px:.1f}" y="{bottom + 17:.1f}" '
                f'text-anchor="middle">{_esc(label)}</text>'
            )
        p.append(
            f'<line class="axis" x1="{self.left:.1f}" x2="{self.left + self.plot_w:.1f}" '
            f'y1="{bottom:.1f}" y2="{bottom:.1f}"/>'
        )
        p.append(
            f'<line class="axis" x1="{self.left:.1f}" x2="{self.left:.1f}" '
            f'y1="{self.top:.1f}" y2="{bottom:.1f}"/>'
        )
        p.append(
            f'<text class="label" x="{self.left + self.plot_w / 2:.1f}" '
            f'y="{self.height - 8:.1f}" text-anchor="middle">{_esc(xlabel)}</text>'
        )
        cy = self.top + self.plot_h / 2
        p.append(
            f'<text class="label" transform="translate(14,{cy:.1f}) rotate(-90)" '
            f'text-anchor="middle">{_esc(ylabel)}</text>'
        )

    def render(self) -> str:
        head = [
            f'<svg class="chart" viewBox="0 0 {self.width} {self.height}" '
            f'xmlns="http://www.w3.org/2000/svg" role="img" font-size="{_FONT}">',
            f"<title>{_esc(self.title)}</title>",
            f'<text class="title" x="{self.left:.1f}" y="20">{_esc(self.title)}</text>',
        ]
        for r, row in enumerate(self.legend_rows):
            y = 36.0 + 18.0 * r
            for x, label, color, style in row:
                lx = self.left + x
                if isinstance(style, float):
                    head.append(
                        f'<rect x="{lx:.1f}" y="{y - 9:.1f}" width="20" height="10" '
                        f'fill="{color}" fill-opacity="{style}"/>'
                    )
                else:
                    dash = ' stroke-dasharray="5 3"' if style else ""
                    head.append(
                        f'<line x1="{lx:.1f}" x2="{lx + 20:.1f}" y1="{y - 4:.1f}" '
                        f'y2="{y - 4:.1f}" stroke="{color}" stroke-width="3"{dash}/>'
                    )
                head.append(
                    f'<text class="legend" x="{lx + 26:.1f}" y="{y:.1f}">{_esc(label)}</text>'
                )
        return "".join([*head, *self.parts, "</svg>"])


def _color(j: int, color: str | None) -> str:
    return color or PALETTE[j % len(PALETTE)]


def _floats(values: ArrayLike) -> list[float]:
    import numpy as np

    return [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def _segments(xs: list[float], ys: list[float]) -> list[list[tuple[float, float]]]:
    """Runs of consecutive finite points (a NaN breaks the line)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(xs, ys, strict=True):
        if _finite(x) and _finite(y):
            runs[-1].append((x, y))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def _range(values: list[float]) -> tuple[float, float] | None:
    finite = [v for v in values if _finite(v)]
    return (min(finite), max(finite)) if finite else None


def _empty(title: str, message: str, width: int, height: int) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" '
        f'role="img" font-size="{_FONT}"><title>{_esc(title)}</title>'
        f'<text class="title" x="62" y="20">{_esc(title)}</text>'
        f'<text class="label" x="{width / 2:.0f}" y="{height / 2:.0f}" '
        f'text-anchor="middle">{_esc(message)}</text></svg>'
    )


def line_chart(
    lines: Sequence[Line],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    bands: Sequence[Band] = (),
    y_range: tuple[float | None, float | None] = (None, None),
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """Lines (and shaded bands behind them) on shared axes; ``y_range`` fixes either end of the
    y axis (e.g. ``(0, None)`` to start at zero)."""
    xs = [_floats(s.x) for s in lines]
    ys = [_floats(s.y) for s in lines]
    bx = [_floats(b.x) for b in bands]
    blo = [_floats(b.low) for b in bands]
    bhi = [_floats(b.high) for b in bands]
    x_all = [v for s in [*xs, *bx] for v in s]
    y_all = [v for s in [*ys, *blo, *bhi] for v in s]
    xr, yr = _range(x_all), _range(y_all)
    if xr is None or yr is None:
        return _empty(title, "no data", width, height)
    legend: list[tuple[str, str, bool | float]] = []
    if len(lines) + len(bands) > 1:
        legend += [(b.label, _color(j, b.color), float(b.opacity)) for j, b in enumerate(bands)]
        legend += [
            (s.label, _color(j + len(bands), s.color), s.dashed) for j, s in enumerate(lines)
        ]
    frame = _Frame(width=width, height=height, title=title, legend=legend)
    lo = y_range[0] if y_range[0] is not None else yr[0]
    hi = y_range[1] if y_range[1] is not None else yr[1]
    yticks = nice_ticks(min(lo, yr[0]) if y_range[0] is None else lo, max(hi, yr[1]))
    if y_range[0] is not None:
        yticks = [t for t in yticks if t >= lo - 1e-12] or [lo]
    xticks = [t for t in nice_ticks(*xr, n=8) if xr[0] - 1e-9 <= t <= xr[1] + 1e-9]
    frame.scales(xr[0], xr[1], yticks[0], yticks[-1])
    frame.axes(xticks or [xr[0]], yticks, xlabel, ylabel)
    p = frame.parts
    for j, (band, x, low, high) in enumerate(zip(bands, bx, blo, bhi, strict=True)):
        color = _color(j, band.color)
        corners = [
            (a, b, c) for a, b, c in zip(x, low, high, strict=True) if all(map(_finite, (a, b, c)))
        ]
        if not corners:
            continue
        upper = " ".join(f"{frame.sx(a):.1f},{frame.sy(c):.1f}" for a, _, c in corners)
        lower = " ".join(f"{frame.sx(a):.1f},{frame.sy(b):.1f}" for a, b, _ in reversed(corners))
        p.append(
            f'<polygon points="{upper} {lower}" fill="{color}" fill-opacity="{band.opacity}" '
            f'stroke="none"><title>{_esc(band.label)}</title></polygon>'
        )
    for j, (series, x, y) in enumerate(zip(lines, xs, ys, strict=True)):
        color = _color(j + len(bands), series.color)
        dash = ' stroke-dasharray="6 4"' if series.dashed else ""
        for run in _segments(x, y):
            pts = " ".join(f"{frame.sx(a):.1f},{frame.sy(b):.1f}" for a, b in run)
            p.append(
                f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2" '
                f'stroke-linejoin="round"{dash}/>'
            )
        markers = series.markers if series.markers is not None else len(x) <= 40
        if markers:
            for a, b in zip(x, y, strict=True):
                if _finite(a) and _finite(b):
                    p.append(
                        f'<circle cx="{frame.sx(a):.1f}" cy="{frame.sy(b):.1f}" r="3" '
                        f'fill="{color}"><title>{_esc(series.label)}: '
                        f"{_esc(fmt_number(a))} → {_esc(fmt_number(b))}</title></circle>"
                    )
    return frame.render()


def histogram(
    samples: Sequence[tuple[str, ArrayLike]],
    *,
    title: str,
    xlabel: str,
    ylabel: str | None = None,
    bins: int | Sequence[float] = 30,
    density: bool = False,
    integer: bool = False,
    log_y: bool = False,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """Histograms of one or more samples over shared bins: filled bars for one sample, outlines
    for several. ``integer`` makes bins whole numbers wide (for counts); ``density`` plots the
    share of each sample per bin; ``log_y`` a log₁₀ count axis (empty bins left out)."""
    import numpy as np

    arrays = [np.asarray(v, dtype=np.float64).ravel() for _, v in samples]
    arrays = [a[np.isfinite(a)] for a in arrays]
    pooled = np.concatenate(arrays) if arrays else np.zeros(0)
    if pooled.size == 0:
        return _empty(title, "no data", width, height)
    lo, hi = float(pooled.min()), float(pooled.max())
    if isinstance(bins, int):
        if integer:
            step = max(1, math.ceil((hi - lo + 1) / bins))
            edges = np.arange(math.floor(lo), math.floor(hi) + step + 1, step) - 0.5
            if edges[-1] < hi:
                edges = np.append(edges, edges[-1] + step)
        else:
            edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    else:
        edges = np.asarray(bins, dtype=np.float64)
    counts = [np.histogram(a, bins=edges)[0].astype(np.float64) for a in arrays]
    if density:
        counts = [c / max(c.sum(), 1.0) for c in counts]
    if ylabel is None:
        ylabel = "share" if density else "count"
    legend: list[tuple[str, str, bool | float]] = (
        [(name, _color(j, None), False) for j, (name, _) in enumerate(samples)]
        if len(samples) > 1
        else []
    )
    frame = _Frame(width=width, height=height, title=title, legend=legend)
    top = max(float(c.max()) for c in counts)
    if log_y:
        positive = [float(v) for c in counts for v in c if v > 0]
        lowest = math.floor(math.log10(min(positive))) if positive else 0
        highest = max(math.ceil(math.log10(top)) if top > 0 else 1, lowest + 1)
        yticks = [float(k) for k in range(lowest, highest + 1)]
        ylabels = [fmt_number(10.0**k) for k in range(lowest, highest + 1)]
        base = float(lowest)
    else:
        yticks = nice_ticks(0.0, top if top > 0 else 1.0)
        ylabels = None
        base = 0.0
    xticks = nice_ticks(float(edges[0]), float(edges[-1]), n=8, integer=integer)
    xticks = [t for t in xticks if edges[0] - 1e-9 <= t <= edges[-1] + 1e-9]
    frame.scales(float(edges[0]), float(edges[-1]), yticks[0], yticks[-1])
    frame.axes(xticks, yticks, xlabel, ylabel + (" (log scale)" if log_y else ""), yfmt=ylabels)
    p = frame.parts

    def level(v: float) -> float:
        if log_y:
            return math.log10(v) if v > 0 else base
        return v

    single = len(samples) == 1
    for j, ((name, _), c) in enumerate(zip(samples, counts, strict=True)):
        color = _color(j, None)
        if single:
            for k, v in enumerate(c.tolist()):
                if v <= 0:
                    continue
                x0, x1 = frame.sx(float(edges[k])), frame.sx(float(edges[k + 1]))
                y = frame.sy(level(v))
                h = frame.sy(base) - y
                share = "" if density else f" ({v / max(c.sum(), 1):.1%})"
                p.append(
                    f'<rect x="{x0 + 0.5:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 1, 0.8):.1f}" '
                    f'height="{max(h, 0.0):.1f}" fill="{color}" fill-opacity="0.8">'
                    f"<title>{_esc(_bin_label(edges, k, integer))}: "
                    f"{_esc(fmt_number(v))}{share}</title></rect>"
                )
        else:
            points = [(frame.sx(float(edges[0])), frame.sy(base))]
            for k, v in enumerate(c.tolist()):
                y = frame.sy(level(v)) if (v > 0 or not log_y) else frame.sy(base)
                points += [(frame.sx(float(edges[k])), y), (frame.sx(float(edges[k + 1])), y)]
            points.append((frame.sx(float(edges[-1])), frame.sy(base)))
            pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in points)
            p.append(
                f'<polyline points="{pts}" fill="{color}" fill-opacity="0.08" stroke="{color}" '
                f'stroke-width="2"><title>{_esc(name)}</title></polyline>'
            )
    return frame.render()


def _bin_label(edges: ArrayLike, k: int, integer: bool) -> str:
    import numpy as np

    e = np.asarray(edges, dtype=np.float64)
    a, b = float(e[k]), float(e[k + 1])
    if integer:
        first, last = math.ceil(a), math.floor(b)
        return fmt_number(first) if first == last else f"{fmt_number(first)}–{fmt_number(last)}"
    return f"{a:.3g}–{b:.3g}"


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    errors: Sequence[float] | None = None,
    title: str,
    xlabel: str,
    notes: Sequence[str] | None = None,
    show_values: bool = False,
    color: str | None = None,
    width: int = WIDTH,
) -> str:
    """Horizontal bars, one per label (top to bottom), with ± ``errors`` whiskers (e.g. the
    half-width of a 95% confidence interval; NaN: none); the axis includes zero. ``notes`` add
    a line per bar to its tooltip; ``show_values`` writes each value beside its bar. Bars take
    the palette's colours in order (a policy keeps its colour across charts), or all ``color``."""
    vals = [float(v) for v in values]
    errs = [float(e) for e in errors] if errors is not None else [math.nan] * len(vals)
    finite = [v for v in vals if _finite(v)]
    row_h = 26.0
    longest = max((len(label) for label in labels), default=4)
    left = min(14.0 + _CHAR * longest, width * 0.42)
    height = int(34 + 48 + row_h * max(len(labels), 1) + 8)
    if not finite:
        return _empty(title, "no finite values", width, height)
    lows = [v - e if _finite(e) else v for v, e in zip(vals, errs, strict=True) if _finite(v)]
    highs = [v + e if _finite(e) else v for v, e in zip(vals, errs, strict=True) if _finite(v)]
    low, high = min(0.0, *lows), max(0.0, *highs)
    ticks = nice_ticks(low, high if high > low else 1.0, n=6)
    frame = _Frame(width=width, height=height, title=title, legend=[], left=left)
    if show_values:
        frame.right = 64.0
    frame.scales(ticks[0], ticks[-1], 0.0, 1.0)
    # The y "ticks" are the bars: draw the x axis with grid lines and label the rows.
    frame.axes(ticks, [], xlabel, "", xgrid=True)
    p = frame.parts
    zero = frame.sx(0.0)
    max_chars = max(int((left - 14.0) / _CHAR + 1e-6), 1)
    for k, (label, v, e) in enumerate(zip(labels, vals, errs, strict=True)):
        y = frame.top + row_h * k + 4
        short = label if len(label) <= max_chars else label[: max(max_chars - 1, 1)] + "…"
        bar = color or _color(k, None)
        p.append(
            f'<text class="tick" x="{left - 8:.1f}" y="{y + row_h / 2:.1f}" text-anchor="end">'
            f"<title>{_esc(label)}</title>{_esc(short)}</text>"
        )
        if not _finite(v):
            p.append(f'<text class="tick" x="{zero + 4:.1f}" y="{y + row_h / 2:.1f}">n/a</text>')
            continue
        x = frame.sx(v)
        tip = f"{label}: {fmt_number(v)}" + (f" ± {fmt_number(e)}" if _finite(e) else "")
        if notes is not None:
            tip += f" ({notes[k]})"
        p.append(
            f'<rect x="{min(x, zero):.1f}" y="{y:.1f}" width="{max(abs(x - zero), 1.0):.1f}" '
            f'height="{row_h - 8:.1f}" fill="{bar}" fill-opacity="0.85">'
            f"<title>{_esc(tip)}</title></rect>"
        )
        if show_values:  # beyond the bar and its whisker
            reach = v + e if _finite(e) and v >= 0 else v - e if _finite(e) else v
            tx, anchor = (frame.sx(reach) + 4, "start") if v >= 0 else (frame.sx(reach) - 4, "end")
            p.append(
                f'<text class="value" x="{tx:.1f}" y="{y + row_h / 2:.1f}" '
                f'text-anchor="{anchor}">{_esc(fmt_number(v))}</text>'
            )
        if _finite(e) and e > 0:
            a, b, cy = frame.sx(v - e), frame.sx(v + e), y + (row_h - 8) / 2
            p.append(
                f'<path class="whisker" d="M{a:.1f},{cy:.1f}H{b:.1f}M{a:.1f},{cy - 5:.1f}'
                f'V{cy + 5:.1f}M{b:.1f},{cy - 5:.1f}V{cy + 5:.1f}"/>'
            )
    p.append(
        f'<line class="axis" x1="{zero:.1f}" x2="{zero:.1f}" y1="{frame.top:.1f}" '
        f'y2="{frame.top + frame.plot_h:.1f}"/>'
    )
    return frame.render()
