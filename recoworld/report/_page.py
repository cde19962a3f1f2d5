"""The HTML page of a report: escaping, tables, sections, the stylesheet and the viewer's script.

Everything the page needs is inline; its Content-Security-Policy forbids loading anything
(scripts, styles, fonts, images, connections) from anywhere, so a report can never fetch.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Raw",
    "Section",
    "document",
    "esc",
    "figure_value",
    "json_script",
    "kv_table",
    "note",
    "table",
]

#: Nothing may be fetched: inline styles and scripts only, no connections, images as data: URIs.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)


@dataclass(frozen=True, slots=True)
class Raw:
    """Markup that is already safe (escaped or built here), put into a table cell as is."""

    html: str


@dataclass(frozen=True, slots=True)
class Section:
    """One section of the page: anchor id, heading and body markup."""

    id: str
    title: str
    body: str


def esc(text: object) -> str:
    """Text escaped for HTML content and attribute values."""
    return html.escape(str(text), quote=True)


def note(text: str) -> str:
    """A one-line remark (e.g. why a section has no chart)."""
    return f'<p class="note">{esc(text)}</p>'


def figure_value(value: Any) -> str:
    """A figure of a table: integers with thousands separators, floats with 4 significant
    digits, NaN or None as ``n/a``."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) >= 1000:
            return f"{value:,.1f}"
        return f"{value:.4g}"
    return str(value)


def _cell(value: Any) -> str:
    if isinstance(value, Raw):
        return value.html
    return esc(figure_value(value))


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    numeric: Sequence[int] = (),
    caption: str | None = None,
    cls: str = "data",
) -> str:
    """An HTML table; columns whose index is in ``numeric`` are right-aligned."""
    nums = set(numeric)
    out = [f'<div class="table-wrap"><table class="{cls}">']
    if caption:
        out.append(f"<caption>{esc(caption)}</caption>")
    out.append(
        "<thead><tr>"
        + "".join(
            f"<th{' class=num' if j in nums else ''}>{esc(h)}</th>" for j, h in enumerate(headers)
        )
        + "</tr></thead><tbody>"
    )
    for row in rows:
        out.append(
            "<tr>"
            + "".join(
                f"<td{' class=num' if j in nums else ''}>{_cell(v)}</td>" for j, v in enumerate(row)
            )
            + "</tr>"
        )
    out.append("</tbody></table></div>")
    return "".join(out)


def kv_table(pairs: Iterable[tuple[str, Any]], *, caption: str | None = None) -> str:
    """A two-column table of names and values."""
    out = ['<div class="table-wrap"><table class="kv">']
    if caption:
        out.append(f"<caption>{esc(caption)}</caption>")
    out.append("<tbody>")
    for name, value in pairs:
        out.append(f"<tr><th>{esc(name)}</th><td>{_cell(value)}</td></tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def json_script(element_id: str, data: Any) -> str:
    """``data`` as JSON in a ``<script type="application/json">`` element; ``<``, ``>`` and ``&``
    are written as ``\\u`` escapes, so no text inside can close the element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    text = (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
    return f'<script type="application/json" id="{esc(element_id)}">{text}</script>'


def document(
    title: str,
    subtitle: str,
    sections: Sequence[Section],
    *,
    tail: str = "",
    footer: str = "",
) -> str:
    """The whole page: head (charset, CSP, stylesheet), a header with the table of contents, the
    sections, a footer, then ``tail`` (the viewer's data and script)."""
    nav = "".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{esc(s.id)}"><h2>{esc(s.title)}</h2>{s.body}</section>' for s in sections
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="generator" content="recoworld report">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>"
        f'<body><header><div class="wrap"><h1>{esc(title)}</h1>'
        f'<p class="subtitle">{esc(subtitle)}</p><nav>{nav}</nav></div></header>'
        f'<main class="wrap">{body}</main>'
        f'<footer class="wrap">{footer}</footer>{tail}</body></html>\n'
    )


STYLE = """
:root{--ink:#1d2329;--muted:#5b6570;--line:#e1e5ea;--bg:#f5f6f8;--card:#fff;--accent:#1f77b4}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.wrap{max-width:1240px;margin:0 auto;padding:0 20px}
header{background:#20303f;color:#fff;padding:18px 0 12px}
header h1{margin:0;font-size:22px;font-weight:600}
.subtitle{margin:4px 0 10px;color:#c9d3dc}
nav{display:flex;flex-wrap:wrap;gap:6px}
nav a{color:#e8eef3;text-decoration:none;font-size:13px;padding:2px 10px;border-radius:12px;
background:rgba(255,255,255,.12)}
nav a:hover{background:rgba(255,255,255,.25)}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;
margin:18px 0;padding:6px 20px 18px}
h2{font-size:18px;margin:12px 0 10px;font-weight:600}
h3{font-size:15px;margin:16px 0 6px;font-weight:600}
p{margin:6px 0}
.note{color:var(--muted);font-style:italic}
.caption{color:var(--muted);font-size:13px}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:14px 28px;
margin:8px 0}
.charts figure{margin:0}
.charts figcaption{color:var(--muted);font-size:12.5px;margin-top:2px}
svg.chart{width:100%;height:auto;display:block;overflow:visible}
svg .grid{stroke:#eceff2;stroke-width:1}
svg .axis{stroke:#98a1ab;stroke-width:1}
svg .tick{fill:#59626b;font-size:11px}
svg .label{fill:#3b444d;font-size:12px}
svg .title{fill:#1d2329;font-size:13.5px;font-weight:600}
svg .legend{fill:#3b444d;font-size:12px}
svg .whisker{stroke:#1d2329;stroke-width:1.4;fill:none}
svg .value{fill:#3b444d;font-size:11px}
.tables{display:flex;flex-wrap:wrap;gap:8px 28px;align-items:flex-start}
.table-wrap{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
caption{text-align:left;font-weight:600;padding:4px 0;color:var(--ink)}
th,td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{background:#f0f2f5;font-weight:600;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
table.kv{max-width:460px}
table.kv th{font-weight:500;color:var(--muted);white-space:nowrap}
table.kv td{font-variant-numeric:tabular-nums}
code{font-size:12.5px;background:#f0f2f5;padding:1px 4px;border-radius:3px}
a{color:var(--accent)}
footer{color:var(--muted);font-size:12px;padding:8px 20px 30px}
.controls{display:flex;flex-wrap:wrap;gap:8px 12px;align-items:center;margin:8px 0 10px}
.controls select{font:inherit;padding:4px 6px;max-width:100%}
.controls button{font:inherit;padding:4px 14px;border:1px solid #b8c0c8;border-radius:5px;
background:#fff;cursor:pointer}
.controls button:hover:not(:disabled){background:#eef3f8}
.controls button:disabled{color:#aab;cursor:default}
.position{color:var(--muted);font-variant-numeric:tabular-nums}
.slate-head{font-weight:600;margin:6px 0}
.slate-head .meta{font-weight:400;color:var(--muted)}
table.slate{width:100%}
table.slate td.title{min-width:180px}
table.slate tr.unseen td{color:#9aa3ad}
table.slate tr.left td{border-bottom:2px solid #d62728}
.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;font-weight:600;
background:#eceff2;color:#4a535c}
.badge.click{background:#dbe9f6;color:#1a5a8c}.badge.like{background:#f8dde8;color:#a3305e}
.badge.share{background:#dcf1e4;color:#1f7040}.badge.comment{background:#e8e1fa;color:#4d3aa6}
.badge.left{background:#fbe0de;color:#a82a22}.badge.social{background:#fff0d9;color:#8a5200}
.llm-note{color:#4d3aa6;font-size:12.5px}
.said{border-left:4px solid var(--accent);background:#f3f8fc;padding:8px 12px;margin:10px 0;
border-radius:0 6px 6px 0}
.said q{font-size:15px}
.said .meta{color:var(--muted);font-size:12.5px}
.keys{color:var(--muted);font-size:12px}
kbd{border:1px solid #b8c0c8;border-bottom-width:2px;border-radius:3px;padding:0 4px;
font-size:11px;background:#fff}
"""

#: The session viewer: a user ``<select>``, previous / next buttons and the arrow keys step
#: through the user's pages; everything is written with ``textContent`` (never as markup).
SCRIPT = """
(function () {
  "use strict";
  var source = document.getElementById("viewer-data");
  if (!source) { return; }
  var data = JSON.parse(source.textContent);
  var $ = function (id) { return document.getElementById(id); };
  var select = $("viewer-user"), prev = $("viewer-prev"), next = $("viewer-next");
  var position = $("viewer-position"), head = $("viewer-head"), body = $("viewer-body");
  var said = $("viewer-said"), extra = $("viewer-extra");
  var user = null, index = 0;

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (cls) { node.className = cls; }
    return node;
  }
  function clock(tick) {
    var minutes = data.start_hour * 60 + tick * data.tick_minutes;
    var day = Math.floor(minutes / 1440), rest = minutes - day * 1440;
    var hh = Math.floor(rest / 60), mm = Math.round(rest - hh * 60);
    return "day " + (day + 1) + ", " + (hh < 10 ? "0" : "") + hh + ":" + (mm < 10 ? "0" : "") + mm;
  }
  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }

  function render() {
    clear(head); clear(body); clear(said); clear(extra);
    if (!user || !user.pages.length) { position.textContent = "no pages"; return; }
    var page = user.pages[index];
    prev.disabled = index === 0;
    next.disabled = index === user.pages.length - 1;
    position.textContent = "slate " + (index + 1) + " of " + user.pages.length;
    head.appendChild(el("span", "Tick " + page.t + " \\u00b7 session " + page.s +
      ", page " + page.p + " of " + page.n + " "));
    var meta = "(" + clock(page.t) + (page.end ? "; session ended: " + page.end : "") +
      (page.mood ? "; mood " + page.mood + "/5" : "") + ")";
    head.appendChild(el("span", meta, "meta"));
    page.rows.forEach(function (row, k) {
      var item = row[0], act = row[1], dwell = row[2], rating = row[3], from = row[4];
      var meta = data.items[String(item)] || null;
      var tr = el("tr", null, act < 0 ? "unseen" : (page.L === k ? "left" : ""));
      tr.appendChild(el("td", k + 1, "num"));
      tr.appendChild(el("td", item, "num"));
      tr.appendChild(el("td", meta ? data.topics[meta[0]] : "\\u2014"));
      tr.appendChild(el("td", meta && meta[1] ? meta[1] : "\\u2014", "title"));
      var src = el("td");
      src.appendChild(el("span", from >= 0 ? "social" : "recommended",
        from >= 0 ? "badge social" : "badge"));
      if (from >= 0) { src.appendChild(el("span", " from user " + from, "meta")); }
      tr.appendChild(src);
      var resp = el("td");
      if (act < 0) { resp.appendChild(el("span", "not reached")); }
      else { resp.appendChild(el("span", data.actions[act], "badge " + data.actions[act])); }
      if (page.L === k) {
        resp.appendChild(el("span", " "));
        resp.appendChild(el("span", "left", "badge left"));
      }
      tr.appendChild(resp);
      tr.appendChild(el("td", act > 0 ? dwell.toFixed(1) + " s" : "", "num"));
      tr.appendChild(el("td", rating > 0 ? rating : "", "num"));
      if (data.llm) {
        var notes = el("td", null, "llm-note");
        if (page.why && page.why[k]) { notes.appendChild(el("div", "why: " + page.why[k])); }
        if (page.cm && page.cm[k]) {
          notes.appendChild(el("div", "comment: \\u201c" + page.cm[k] + "\\u201d"));
        }
        tr.appendChild(notes);
      }
      body.appendChild(tr);
    });
    (page.ins || []).forEach(function (ins) {
      var box = el("div", null, "said");
      box.appendChild(el("div", "The user said, after this page:", "meta"));
      box.appendChild(el("q", ins.text));
      var parts = [];
      if (ins.more && ins.more.length) { parts.push("more: " + ins.more.join(", ")); }
      if (ins.less && ins.less.length) { parts.push("less: " + ins.less.join(", ")); }
      if (ins.constraint) { parts.push("constraint: " + ins.constraint); }
      parts.push("reason: " + ins.reason);
      parts.push("risk: " + ins.risk.toFixed(2));
      var intent = "Intent (ground truth) \\u2014 " + parts.join(" \\u00b7 ");
      box.appendChild(el("div", intent, "meta"));
      said.appendChild(box);
    });
    if (page.fb) {
      extra.appendChild(el("p", "LLM call fell back to the numeric model: " + page.fb, "note"));
    }
    if (page.refl) { extra.appendChild(el("p", "Reflection: " + page.refl, "llm-note")); }
  }
  function step(delta) {
    if (!user) { return; }
    var to = Math.min(Math.max(index + delta, 0), user.pages.length - 1);
    if (to !== index) { index = to; render(); }
  }
  data.users.forEach(function (u, j) {
    var option = el("option", u.label);
    option.value = String(j);
    select.appendChild(option);
  });
  select.addEventListener("change", function () {
    user = data.users[Number(select.value)] || null; index = 0; render();
  });
  prev.addEventListener("click", function () { step(-1); });
  next.addEventListener("click", function () { step(1); });
  document.addEventListener("keydown", function (event) {
    var tag = event.target && event.target.tagName;
    if (tag === "SELECT" || tag === "INPUT" || tag === "TEXTAREA") { return; }
    if (event.key === "ArrowLeft") { step(-1); event.preventDefault(); }
    if (event.key === "ArrowRight") { step(1); event.preventDefault(); }
  });
  if (data.users.length) { user = data.users[0]; select.value = "0"; }
  render();
})();
"""
