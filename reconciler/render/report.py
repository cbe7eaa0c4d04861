"""`reconcile ledger report`: one self-contained HTML file people would rather look at.

No network and no CDN (it must open from a CI artifact): the styles, the script, the
data (`audit.audit_data`) and Chart.js (vendored unmodified under `vendor/`, MIT) are
all inlined. The chart is Chart.js rather than hand-drawn SVG: a well-kept library
gives axes, stacking, tooltips, legends that toggle pipelines and accessibility for
free, and its 210 kB inline is fine for a CI artifact.

Every value reaches the page through `textContent` or attributes, never as HTML, so a
manifest name or a message in the ledger cannot inject markup. Filters (pipeline,
manifest, asset) live in the URL fragment (`report.html#pipeline=p1`), so a filtered
view can be linked; the page writes the chart's own totals into the DOM (`data-total`)
and any script error into `#errors`, which is what the headless-browser test reads.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from reconciler.ledger import Ledger
from reconciler.render.audit import audit_data
from reconciler.render.text import html_text

CHART_JS_VERSION = "4.6.2"


def report_html(ledger: Ledger, title: str = "Stage state cleared") -> str:
    """The whole report for `ledger`, as one HTML document."""
    data = audit_data(ledger)
    return (
        _TEMPLATE.replace("%%TITLE%%", _escape(title))
        .replace("%%STYLE%%", _STYLE)
        .replace("%%CHARTJS%%", chart_js())
        .replace("%%DATA%%", embed_json(data))
        .replace("%%SCRIPT%%", _SCRIPT)
    )


def chart_js() -> str:
    """The vendored Chart.js bundle, safe to inline in a <script> element."""
    text = resources.files("reconciler.render").joinpath("vendor/chart.umd.min.js").read_text("utf-8")
    return text.replace("</script", "<\\/script")


def embed_json(data: Any) -> str:
    """JSON that cannot close its <script> element: `<` only ever appears inside strings."""
    return json.dumps(data, sort_keys=True, separators=(",", ":")).replace("<", "\\u003c")


def _escape(text: str) -> str:
    return html_text(text)


_TEMPLATE = (
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>%%TITLE%%</title>
<style>%%STYLE%%</style>
</head>
<body>
<header>
  <h1>%%TITLE%%</h1>
  <p id="head" class="muted"></p>
</header>
<ul id="errors" hidden></ul>
<section class="cards" id="cards"></section>
<section class="filters" aria-label="Filters">
  <label>Pipeline <select id="f-pipeline"><option value="">all</option></select></label>
  <label>Manifest <select id="f-manifest"><option value="">all</option></select></label>
  <label>Asset <input id="f-asset" type="search" placeholder="asset ID" autocomplete="off"></label>
  <button id="f-clear" type="button">Clear filters</button>
</section>
<section>
  <h2>Cells cleared per day</h2>
  <div class="chart" id="chart-box"><canvas id="chart" role="img" aria-label="Cells cleared per day, per pipeline"></canvas></div>
  <p class="muted" id="chart-total"></p>
</section>
<section>
  <h2>Manifests</h2>
  <table id="manifests"><thead><tr>
    <th>Manifest</th><th>When</th><th>By</th><th>Commit</th><th>Run</th><th class="n">Cells</th><th>Pipelines paused</th><th>Evidence</th>
  </tr></thead><tbody></tbody></table>
</section>
<section>
  <h2>In doubt</h2>
  <p class="muted">Requests whose answer was lost: they may or may not have cleared. Settle them with
  <code>reconcile ledger resolve --verify</code> or <code>reconcile apply --resend-in-doubt</code>.</p>
  <table id="doubt"><thead><tr>
    <th>Intent</th><th>When</th><th>Manifest</th><th>Pipeline / stage</th><th class="n">Cells</th><th>By</th>
  </tr></thead><tbody></tbody></table>
</section>
<section>
  <h2>Failed</h2>
  <p class="muted">Refused by the gateway: their cells are pending again.</p>
  <table id="failed"><thead><tr>
    <th>Record</th><th>When</th><th>Manifest</th><th>Pipeline / stage</th><th class="n">Cells</th><th>Code</th><th>Why</th>
  </tr></thead><tbody></tbody></table>
</section>
<section>
  <h2>Pipelines left paused</h2>
  <p class="muted">Paused by an apply that never recorded starting them again; the next apply starts them.</p>
  <table id="paused"><thead><tr><th>Pipeline</th><th>Org</th><th>Paused since</th></tr></thead><tbody></tbody></table>
</section>
<footer class="muted">Made by <code>reconcile ledger report</code> from a verified ledger; chart by Chart.js """
    + CHART_JS_VERSION
    + """ (MIT).</footer>
<script>%%CHARTJS%%</script>
<script type="application/json" id="data">%%DATA%%</script>
<script>%%SCRIPT%%</script>
</body>
</html>
"""
)

_STYLE = """
:root { --fg:#1d2430; --muted:#5b6472; --line:#e3e6eb; --bg:#f7f8fa; --card:#fff; --accent:#1f6feb; --bad:#c62828; --warn:#b26a00; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); margin: 0; padding: 24px 32px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.muted { color: var(--muted); } code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; background: #eef0f3; padding: 1px 4px; border-radius: 4px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; margin: 16px 0; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card b { display: block; font-size: 22px; } .card.bad b { color: var(--bad); } .card.warn b { color: var(--warn); }
.filters { display: flex; flex-wrap: wrap; gap: 12px 20px; align-items: end; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 2px; }
select, input, button { font: inherit; padding: 4px 6px; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
button { cursor: pointer; }
.chart { position: relative; height: 300px; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px; }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: #fbfbfc; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.empty td { color: var(--muted); font-style: italic; }
#errors { color: var(--bad); background: #fdecea; border: 1px solid #f5c2c0; border-radius: 8px; padding: 8px 24px; }
footer { margin-top: 32px; font-size: 12px; }
"""

_SCRIPT = r"""
"use strict";
(function () {
  const errors = document.getElementById("errors");
  function fail(message) { errors.hidden = false; const li = document.createElement("li"); li.textContent = String(message); errors.appendChild(li); }
  window.addEventListener("error", (e) => fail(e.message));
  const D = JSON.parse(document.getElementById("data").textContent);
  const lists = D.assetLists.map((s) => (s ? s.split(",") : []));
  const $ = (id) => document.getElementById(id);
  const fmt = (n) => Number(n).toLocaleString("en-US");
  const PALETTE = ["#1f6feb", "#2da44e", "#bf8700", "#cf222e", "#8250df", "#0a7ea4", "#bc4c00", "#57606a", "#d63384", "#116329"];

  // Ten distinct colours, then hues a golden angle apart: no two pipelines look alike.
  function color(i) { return i < PALETTE.length ? PALETTE[i] : `hsl(${Math.round((i * 137.508) % 360)}, 60%, 42%)`; }
  function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = String(text); if (cls) e.className = cls; return e; }
  // Only http(s) links: a run URL in the ledger is data, and `javascript:` would run on a click.
  function link(url, text) { if (!url || !/^https?:\/\//i.test(String(url))) return el("span", url ? String(url) : "—", "muted"); const a = el("a", text); a.href = url; a.rel = "noopener noreferrer"; return a; }
  function duration(s) {
    if (s === null || s === undefined) return "still paused";
    if (s < 60) return Math.round(s) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
  }
  function short(at) { return at ? at.replace("T", " ").replace(/\.\d+Z$/, "Z").replace(/Z$/, " UTC") : ""; }

  // --- filters, kept in the URL fragment so a filtered view can be linked ---
  const params = new URLSearchParams(location.hash.slice(1));
  const F = { pipeline: params.get("pipeline") || "", manifest: params.get("manifest") || "", asset: params.get("asset") || "" };
  function keep(r) {
    if (F.pipeline && r.pipeline !== F.pipeline) return false;
    if (F.manifest && r.manifest !== F.manifest) return false;
    if (F.asset && !lists[r.assets].some((a) => a.includes(F.asset))) return false;
    return true;
  }
  function options(select, values) { for (const v of values) { const o = el("option", v); o.value = v; select.appendChild(o); } }
  const all = [...D.deletes, ...D.failed, ...D.inDoubt];
  options($("f-pipeline"), [...new Set(all.map((r) => r.pipeline))].sort());
  options($("f-manifest"), [...new Set(all.map((r) => r.manifest))].sort());
  $("f-pipeline").value = F.pipeline; $("f-manifest").value = F.manifest; $("f-asset").value = F.asset;
  function changed() {
    F.pipeline = $("f-pipeline").value; F.manifest = $("f-manifest").value; F.asset = $("f-asset").value.trim();
    const h = new URLSearchParams(Object.entries(F).filter(([, v]) => v)).toString();
    try { history.replaceState(null, "", h ? "#" + h : location.pathname); } catch (e) { /* file:// in some browsers */ }
    render();
  }
  for (const id of ["f-pipeline", "f-manifest"]) $(id).addEventListener("change", changed);
  $("f-asset").addEventListener("input", changed);
  $("f-clear").addEventListener("click", () => { $("f-pipeline").value = ""; $("f-manifest").value = ""; $("f-asset").value = ""; changed(); });

  // --- the parts of the page ---
  function head() {
    const L = D.ledger;
    $("head").textContent = L.records
      ? `${L.path}: ${fmt(L.records)} records, ${short(L.firstAt)} to ${short(L.lastAt)}; as of seq ${L.seq} (hash ${L.hash.slice(0, 12)}), chain verified`
      : `${L.path}: no records yet`;
  }
  function cards(deletes, failed, doubt) {
    const box = $("cards"); box.replaceChildren();
    const card = (label, value, cls) => { const c = el("div", null, "card " + (cls || "")); c.appendChild(el("b", fmt(value))); c.appendChild(el("span", label, "muted")); box.appendChild(c); };
    card("cells cleared", deletes.reduce((s, r) => s + r.cells, 0));
    card("manifests", new Set(deletes.map((r) => r.manifest)).size);
    card("delete requests", deletes.length);
    card("cells in doubt", doubt.reduce((s, r) => s + r.cells, 0), doubt.length ? "warn" : "");
    card("failed requests", failed.length, failed.length ? "bad" : "");
    card("pipelines left paused", D.leftPaused.filter((p) => !F.pipeline || p.pipeline === F.pipeline).length, D.leftPaused.length ? "warn" : "");
  }
  function days(deletes) {
    const present = [...new Set(deletes.map((r) => r.day))].sort();
    if (present.length < 2) return present;
    const out = []; const end = new Date(present[present.length - 1] + "T00:00:00Z");
    for (let d = new Date(present[0] + "T00:00:00Z"); d <= end && out.length <= 400; d.setUTCDate(d.getUTCDate() + 1)) out.push(d.toISOString().slice(0, 10));
    return out.length > 400 ? present : out;  // gaps shown as zero days, up to about a year
  }
  let chart = null;
  function drawChart(deletes) {
    const labels = days(deletes);
    const pipes = [...new Set(deletes.map((r) => r.pipeline))].sort();
    const datasets = pipes.map((p, i) => {
      const per = Object.fromEntries(labels.map((d) => [d, 0]));
      for (const r of deletes) if (r.pipeline === p) per[r.day] += r.cells;
      return { label: p, data: labels.map((d) => per[d]), backgroundColor: color(i), stack: "cells" };
    });
    if (chart) chart.destroy();
    chart = new Chart($("chart"), {
      type: "bar",
      data: { labels, datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "cells cleared" } } },
        plugins: { legend: { position: "bottom" }, tooltip: { callbacks: { footer: (items) => "day total: " + fmt(items.reduce((s, i) => s + i.parsed.y, 0)) } } },
      },
    });
    // The totals as the chart itself holds them: what a reader sees, and what the browser test checks.
    const total = chart.data.datasets.reduce((s, ds) => s + ds.data.reduce((a, b) => a + b, 0), 0);
    $("chart-box").dataset.total = String(total);
    $("chart-box").dataset.pipelines = String(chart.data.datasets.length);
    $("chart-total").textContent = `${fmt(total)} cells cleared on ${labels.filter((d, i) => datasets.some((ds) => ds.data[i])).length} days across ${datasets.length} pipelines`;
  }
  function rows(tbody, list, cells, empty) {
    tbody.replaceChildren();
    if (!list.length) { const tr = el("tr", null, "empty"); const td = el("td", empty); td.colSpan = 9; tr.appendChild(td); tbody.appendChild(tr); return; }
    for (const item of list) { const tr = el("tr"); for (const c of cells(item)) tr.appendChild(c); tbody.appendChild(tr); }
  }
  function manifests(deletes) {
    const by = new Map();
    for (const r of deletes) { if (!by.has(r.manifest)) by.set(r.manifest, []); by.get(r.manifest).push(r); }
    const list = [...by.entries()].sort((a, b) => (a[1][0].at < b[1][0].at ? 1 : -1));
    rows($("manifests").tBodies[0], list, ([name, rs]) => {
      const first = rs[0].at, last = rs[rs.length - 1].at;
      const users = [...new Set(rs.map((r) => r.user).filter(Boolean))].join(", ");
      const commits = [...new Set(rs.map((r) => r.commit).filter(Boolean))];
      const runs = [...new Set(rs.map((r) => r.run).filter(Boolean))];
      const paused = new Map();
      for (const r of rs) { const key = r.pipeline; if (!paused.has(key)) paused.set(key, new Set()); if (r.pause !== null) paused.get(key).add(r.pause); }
      const pausedCell = el("td");
      for (const [pipe, ids] of paused) {
        const secs = [...ids].map((i) => D.pauses[i].seconds);
        const text = ids.size ? (secs.includes(null) ? "still paused" : duration(secs.reduce((a, b) => a + b, 0))) : "paused by someone else";
        pausedCell.appendChild(el("div", `${pipe}: ${text}`));
      }
      const runCell = el("td"); if (!runs.length) runCell.appendChild(el("span", "—", "muted"));
      runs.forEach((u, i) => { if (i) runCell.appendChild(el("br")); runCell.appendChild(link(u, "run " + (i + 1))); });
      const commit = el("td"); commit.appendChild(el("code", commits.map((c) => c.slice(0, 10)).join(" ") || "—"));
      const resolved = rs.some((r) => r.resolved) ? " (some recorded by a person)" : "";
      return [el("td", name), el("td", first === last ? short(first) : `${short(first)} to ${short(last)}`), el("td", (users || "—") + resolved),
        commit, runCell, el("td", fmt(rs.reduce((s, r) => s + r.cells, 0)), "n"), pausedCell, evidence(rs)];
    }, "nothing cleared (with these filters)");
  }
  function evidence(rs) {
    // Items read just before the deletes (apply --snapshot), as the delete records vouch.
    const kept = rs.filter((r) => r.snapshotItems !== null);
    if (!kept.length) return el("td", "—", "muted");
    const items = kept.reduce((s, r) => s + r.snapshotItems, 0);
    const part = kept.length < rs.length ? ` (${kept.length} of ${rs.length} requests)` : "";
    return el("td", `${fmt(items)} items${part}`);
  }
  function render() {
    const deletes = D.deletes.filter(keep), failed = D.failed.filter(keep), doubt = D.inDoubt.filter(keep);
    cards(deletes, failed, doubt);
    drawChart(deletes);
    manifests(deletes);
    rows($("doubt").tBodies[0], doubt, (r) => [el("td", "#" + r.seq), el("td", short(r.at)), el("td", r.manifest), el("td", `${r.pipeline} / ${r.stage}`), el("td", fmt(r.cells), "n"), el("td", r.user || "—")], "none");
    rows($("failed").tBodies[0], failed, (r) => [el("td", "#" + r.seq), el("td", short(r.at)), el("td", r.manifest), el("td", `${r.pipeline} / ${r.stage}`), el("td", fmt(r.cells), "n"), el("td", r.code === null ? "—" : r.code), el("td", r.message)], "none");
    rows($("paused").tBodies[0], D.leftPaused.filter((p) => !F.pipeline || p.pipeline === F.pipeline), (p) => [el("td", p.pipeline), el("td", p.org), el("td", short(p.from))], "none");
  }
  head();
  render();
  document.body.dataset.ready = "1";
})();
"""
