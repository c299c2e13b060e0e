"""``kslab report``: one self-contained HTML file with interactive charts of a replay.

Everything is inline (CSS, JavaScript, the charts are SVG drawn by the page's own script); the
page fetches nothing, and its Content-Security-Policy forbids fetching anything.  The data goes in
as JSON inside ``<script type="application/json">`` with ``<``, ``>`` and ``&`` escaped, and the
page's script only ever puts strings from the trace (cache names, call sites, markers) into the
document as text (``textContent``, SVG ``<title>``), never as markup.  The output is a function of
the input alone: same trace and options, byte-identical file.

URL hash parameters (``report.html#sort=-num_objs&filter=kmalloc``): ``sort``/``filter`` for the
slabinfo table, ``psort``/``pfilter`` for the per-cache paths table, ``csort``/``cfilter`` for the
call-site table; a sort key is a column key, ``-`` in front for descending order.
"""

from __future__ import annotations

import html
import json
from typing import Any

from ..mm.slabinfo import get_slabinfo
from .stats import TraceStats, site_dict
from .timeline import PATH_KEYS, Timeline, occupancy

CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"
MAX_CALLERS = 5000


def _json_for_script(data: Any) -> str:
    """JSON that is safe inside a <script> element (no ``</script>``, no ``<!--``)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def build_data(rep: Timeline, summary: dict[str, Any], ts: TraceStats, trace: str, top: int = 10,
               max_callers: int = MAX_CALLERS) -> dict[str, Any]:
    """Everything the page draws, as plain data (deterministic: sorted, integers, rounded times)."""
    k = rep.k
    samples = rep.samples
    names = sorted({n for s in samples for n in s.caches})
    peak = {n: max(s.caches.get(n, (0,))[0] for s in samples) for n in names}
    top_names = [n for n in sorted(names, key=lambda n: (-peak[n], n)) if peak[n] > 0][:top]
    mem: dict[str, list[int]] = {}
    objs: dict[str, list[int]] = {}
    lists: dict[str, dict[str, list[int]]] = {}
    for n in top_names:
        rows = [s.caches.get(n, (0, 0, 0, 0, 0)) for s in samples]
        mem[n] = [r[0] for r in rows]
        objs[n] = [r[1] for r in rows]
        lists[n] = {"partial": [r[2] for r in rows], "full": [r[3] for r in rows], "free": [r[4] for r in rows]}
    topset = set(top_names)
    mem_other = []
    objs_other = []
    all_lists: dict[str, list[int]] = {"partial": [], "full": [], "free": []}
    for s in samples:
        mo = oo = p = f = e = 0
        for n, r in s.caches.items():
            if n not in topset:
                mo += r[0]
                oo += r[1]
            p += r[2]
            f += r[3]
            e += r[4]
        mem_other.append(mo)
        objs_other.append(oo)
        all_lists["partial"].append(p)
        all_lists["full"].append(f)
        all_lists["free"].append(e)
    ncpu = k.nr_cpu_ids
    nnode = k.nr_node_ids
    arrays = {
        "cpu": [[s.cpu[c][0] for s in samples] for c in range(ncpu)],
        "cpu_limit": [[s.cpu[c][1] for s in samples] for c in range(ncpu)],
        "shared": [[s.shared[n][0] for s in samples] for n in range(nnode)],
        "shared_limit": [[s.shared[n][1] for s in samples] for n in range(nnode)],
    }
    paths = {key: [s.paths[i] for s in samples] for i, key in enumerate(PATH_KEYS)}
    x0 = samples[0].x if samples else 0
    markers = [{"x": x, "line": line, "text": text} for x, line, text in rep.markers if x >= x0]

    # final tables
    si_cols = ["name", "active_objs", "num_objs", "use", "objsize", "objperslab", "pagesperslab", "cache_kib",
               "limit", "batchcount", "sharedfactor", "active_slabs", "num_slabs", "sharedavail"]
    si_rows = []
    for c in k.slab_caches:
        d = get_slabinfo(c)
        si_rows.append([d.name, d.active_objs, d.num_objs, 100 * d.active_objs // d.num_objs if d.num_objs else 0,
                        d.objsize, d.objperslab, d.pagesperslab, d.num_slabs * d.pagesperslab * 4, d.limit,
                        d.batchcount, d.sharedfactor, d.active_slabs, d.num_slabs, d.sharedavail])
    window = rep.window
    path_cols = ["name", "allocs", "alloc_hit", "refill_shared", "refill_slab", "frees", "free_hit", "free_miss",
                 "to_shared", "free_block", "alien", "grow", "slabs_destroyed", "reaped_slabs", "pages_from_buddy",
                 "pages_to_buddy", "partial", "full", "free"]
    path_rows = []
    if window is not None:
        for wr in sorted(window.rows(), key=lambda row: str(row["name"])):
            lists_now = [sum(nd[key] for nd in wr["nodes"]) for key in ("partial", "full", "free")]
            path_rows.append([wr[c] for c in path_cols[:-3]] + lists_now)
    caller_cols = ["call_site", "hit", "bytes_alloc", "bytes_req", "frag_percent", "pingpong", "frees"]
    callers = ts.caller_rows(["hit", "bytes"], max_callers)
    caller_rows = [[d[c] for c in caller_cols] for d in (site_dict(s) for s in callers)]

    return {
        "trace": trace,
        "machine": {"cpus": ncpu, "nodes": nnode, "mem_mib": k.config.mem >> 20, "debug": k.debug,
                    "topology": k.config.topology_text()},
        "replay": summary,
        "stats": ts.summary(),
        "model": window.totals() if window is not None else None,
        "x": [s.x for s in samples],
        "line": [s.line for s in samples],
        "ts": [round(s.ts, 6) for s in samples],
        "top": top_names,
        "mem": mem, "mem_other": mem_other, "objs": objs, "objs_other": objs_other,
        "lists": lists, "lists_all": all_lists,
        "arrays": arrays, "paths": paths,
        "markers": markers, "markers_dropped": rep.markers_dropped,
        "occupancy": occupancy(k),
        "slabinfo": {"columns": si_cols, "rows": si_rows},
        "cache_paths": {"columns": path_cols, "rows": path_rows},
        "callers": {"columns": caller_cols, "rows": caller_rows, "total": len(ts.callers)},
    }


def render_html(data: dict[str, Any]) -> str:
    title = f"kslab report: {data['trace']}"
    return (PAGE.replace("@TITLE@", html.escape(title, quote=True))
            .replace("@CSP@", CSP)
            .replace("@CSS@", CSS)
            .replace("@JS@", JS)
            .replace("@DATA@", _json_for_script(data)))


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="@CSP@">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="kslab report">
<title>@TITLE@</title>
<style>@CSS@</style>
<script>
window.addEventListener("error", function (e) {
  var box = document.getElementById("errors");
  if (box) { box.hidden = false; box.textContent += "error: " + e.message + "\\n"; }
  document.documentElement.setAttribute("data-error", "1");
});
</script>
</head>
<body>
<header>
<h1>kslab report</h1>
<p id="subtitle"></p>
<pre id="errors" hidden></pre>
</header>
<main>
<section id="summary"><h2>Summary</h2><dl id="summary-list"></dl></section>
<section id="sec-mem"><h2>Memory per cache</h2>
<p class="note">Top caches by peak memory, the rest as &ldquo;other&rdquo;; x axis: events replayed.
Hover for values, click a legend entry to hide it.</p>
<div class="controls"><label>Show <select id="mem-mode"><option value="mem">memory (KiB)</option>
<option value="objs">active objects</option></select></label></div>
<div class="chart" id="chart-mem"></div></section>
<section id="sec-lists"><h2>Slabs per list</h2>
<div class="controls"><label>Cache <select id="lists-cache"></select></label></div>
<div class="chart" id="chart-lists"></div></section>
<section id="sec-arrays"><h2>Per-CPU and shared arrays</h2>
<p class="note">Objects held in the per-CPU arrays (per CPU) and in the shared arrays (per node), all caches.</p>
<div class="controls"><label>Show <select id="arrays-mode"><option value="objs">objects held</option>
<option value="pct">fill (% of the limits)</option></select></label></div>
<div class="chart" id="chart-arrays"></div></section>
<section id="sec-paths"><h2>Paths taken</h2>
<p class="note">How many times each path of mm/slab.c ran in each interval, all caches.</p>
<div class="controls"><label>Paths <select id="paths-mode"><option value="alloc">allocation</option>
<option value="free">free</option><option value="slab">slabs (grow, destroy, reap)</option></select></label>
<label>Scale <select id="paths-scale"><option value="count">count</option>
<option value="pct">share (%)</option></select></label></div>
<div class="chart" id="chart-paths"></div></section>
<section id="sec-occupancy"><h2>Slab occupancy at the end</h2>
<p class="note">Slabs by objects in use (active/num); all caches by fill, or one cache by active count.</p>
<div class="controls"><label>Cache <select id="occ-cache"></select></label></div>
<div class="chart" id="chart-occupancy"></div></section>
<section id="sec-slabinfo"><h2>/proc/slabinfo at the end</h2><div id="table-slabinfo"></div></section>
<section id="sec-cache-paths"><h2>Per-cache paths during the replay</h2><div id="table-paths"></div></section>
<section id="sec-callers"><h2>Call sites (from the trace)</h2><div id="table-callers"></div></section>
</main>
<div id="tooltip" hidden></div>
<script type="application/json" id="kslab-data">@DATA@</script>
<script>@JS@</script>
</body>
</html>
"""

CSS = """
:root { --fg: #1d2330; --muted: #5c6475; --line: #d9dde5; --bg: #ffffff; --panel: #f6f7f9; --accent: #2f6fdb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  background: var(--bg); }
header { padding: 16px 24px 8px; border-bottom: 1px solid var(--line); }
h1 { margin: 0; font-size: 22px; }
h2 { font-size: 17px; margin: 0 0 6px; }
#subtitle { margin: 4px 0 0; color: var(--muted); word-break: break-all; }
#errors { color: #b00020; background: #fff0f0; padding: 8px; white-space: pre-wrap; }
main { padding: 8px 24px 40px; max-width: 1280px; }
section { margin: 18px 0 26px; }
.note { margin: 0 0 6px; color: var(--muted); }
.controls { margin: 4px 0 6px; display: flex; gap: 16px; flex-wrap: wrap; }
select, input { font: inherit; padding: 2px 4px; }
.chart { position: relative; background: var(--panel); border: 1px solid var(--line); border-radius: 6px;
  padding: 6px; }
.chart svg { display: block; width: 100%; height: auto; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; padding: 4px 6px 2px; font-size: 12px; }
.legend span { cursor: pointer; user-select: none; white-space: nowrap; }
.legend span.off { opacity: 0.35; text-decoration: line-through; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px;
  vertical-align: -1px; }
.axis text, .tick { font-size: 11px; fill: var(--muted); }
.grid { stroke: var(--line); stroke-width: 1; }
.marker { stroke: #9a6700; stroke-dasharray: 3 3; stroke-width: 1; }
.cursor { stroke: #333; stroke-width: 1; }
#tooltip { position: fixed; pointer-events: none; background: rgba(255,255,255,0.97); border: 1px solid #aab;
  border-radius: 4px; padding: 6px 8px; font-size: 12px; max-width: 460px; box-shadow: 0 2px 6px rgba(0,0,0,.15);
  z-index: 10; }
#tooltip div { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
#tooltip i { display: inline-block; width: 8px; height: 8px; margin-right: 4px; }
dl#summary-list { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl#summary-list dt { color: var(--muted); }
dl#summary-list dd { margin: 0; word-break: break-all; }
.tablebox .bar { display: flex; gap: 12px; align-items: center; margin: 4px 0; }
.tablebox .scroll { max-height: 520px; overflow: auto; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 8px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { position: sticky; top: 0; background: #eef1f6; cursor: pointer; user-select: none; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
tr:hover td { background: #f3f6fc; }
"""

JS = r"""
"use strict";
(function () {
var NS = "http://www.w3.org/2000/svg";
var D = JSON.parse(document.getElementById("kslab-data").textContent);
var HASH = new URLSearchParams(location.hash.replace(/^#/, ""));
var PALETTE = ["#2f6fdb", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0c8599", "#e67700", "#5c940d",
               "#a61e4d", "#1864ab", "#862e9c", "#087f5b", "#d9480f", "#364fc7"];
var OTHER = "#adb5bd";
var W = 1000;
var charts = 0;

function svg(tag, attrs, parent) {
  var e = document.createElementNS(NS, tag);
  for (var k in attrs) { if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, attrs[k]); }
  if (parent) parent.appendChild(e);
  return e;
}
function el(tag, cls, parent, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (parent) parent.appendChild(e);
  return e;
}
function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
function group(n) {
  var s = String(Math.round(Math.abs(n))), out = "";
  while (s.length > 3) { out = "," + s.slice(-3) + out; s = s.slice(0, -3); }
  return (n < 0 ? "-" : "") + s + out;
}
function fmtNum(v) {
  if (typeof v !== "number") return String(v);
  if (Math.round(v) === v) return group(v);
  return v.toFixed(2);
}
function short(v) {
  var a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(a >= 1e10 ? 0 : 1) + "G";
  if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(0) + "k";
  if (a >= 1e3) return (v / 1e3).toFixed(1) + "k";
  return String(Math.round(v * 100) / 100);
}
function niceMax(v) {
  if (!(v > 0)) return 1;
  var p = Math.pow(10, Math.floor(Math.log10(v))), m = v / p;
  var steps = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10];
  for (var i = 0; i < steps.length; i++) { if (m <= steps[i] + 1e-9) return steps[i] * p; }
  return 10 * p;
}

var tip = document.getElementById("tooltip");
function showTip(evt, title, rows) {
  clear(tip);
  el("div", "", tip, title).style.fontWeight = "600";
  rows.forEach(function (r) {
    var d = el("div", "", tip);
    if (r.color) { var i = el("i", "", d); i.style.background = r.color; }
    d.appendChild(document.createTextNode(r.name + ": " + r.value));
  });
  tip.hidden = false;
  var x = evt.clientX + 14, y = evt.clientY + 14;
  var w = tip.offsetWidth, h = tip.offsetHeight;
  if (x + w > window.innerWidth - 4) x = evt.clientX - w - 14;
  if (y + h > window.innerHeight - 4) y = Math.max(4, evt.clientY - h - 14);
  tip.style.left = x + "px";
  tip.style.top = y + "px";
}
function hideTip() { tip.hidden = true; }

/* A time chart: lines, or stacked areas.  spec: {x, series: [{name, color, values}], stacked, unit, fmt} */
function timeChart(box, spec) {
  hideTip();
  clear(box);
  var hidden = box._hidden || (box._hidden = {});
  var H = 300, ml = 64, mr = 14, mt = 12, mb = 34;
  var x = spec.x, n = x.length;
  var root = svg("svg", {viewBox: "0 0 " + W + " " + H, role: "img"}, box);
  svg("title", {}, root).textContent = spec.title || "";
  var series = spec.series.filter(function (s) { return !hidden[s.name]; });
  var x0 = n ? x[0] : 0, x1 = n ? x[n - 1] : 1;
  if (x1 === x0) x1 = x0 + 1;
  var sx = function (v) { return ml + (v - x0) / (x1 - x0) * (W - ml - mr); };
  var tops = [], ymax = 0, i, j;
  if (spec.stacked) {
    var acc = new Array(n).fill(0);
    series.forEach(function (s) {
      var lo = acc.slice();
      for (i = 0; i < n; i++) acc[i] += s.values[i] || 0;
      tops.push({lo: lo, hi: acc.slice()});
    });
    for (i = 0; i < n; i++) ymax = Math.max(ymax, acc[i]);
  } else {
    series.forEach(function (s) { for (i = 0; i < n; i++) ymax = Math.max(ymax, s.values[i] || 0); });
  }
  ymax = spec.ymax || niceMax(ymax);
  var sy = function (v) { return H - mb - v / ymax * (H - mt - mb); };
  var axis = svg("g", {"class": "axis"}, root);
  for (j = 0; j <= 5; j++) {
    var yv = ymax * j / 5, yy = sy(yv);
    svg("line", {"class": "grid", x1: ml, x2: W - mr, y1: yy, y2: yy}, axis);
    svg("text", {x: ml - 6, y: yy + 4, "text-anchor": "end"}, axis).textContent = short(yv) + (spec.unit || "");
  }
  for (j = 0; j <= 6; j++) {
    var xv = x0 + (x1 - x0) * j / 6, xx = sx(xv);
    svg("line", {"class": "grid", x1: xx, x2: xx, y1: mt, y2: H - mb}, axis);
    svg("text", {x: xx, y: H - mb + 16, "text-anchor": j === 0 ? "start" : j === 6 ? "end" : "middle"}, axis)
      .textContent = short(Math.round(xv));
  }
  svg("text", {x: W - mr, y: H - 4, "text-anchor": "end"}, axis).textContent = "events replayed";
  var plot = svg("g", {}, root);
  series.forEach(function (s, k) {
    var d = "";
    if (spec.stacked) {
      var t = tops[k];
      for (i = 0; i < n; i++) d += (i ? "L" : "M") + sx(x[i]).toFixed(1) + " " + sy(t.hi[i]).toFixed(1);
      for (i = n - 1; i >= 0; i--) d += "L" + sx(x[i]).toFixed(1) + " " + sy(t.lo[i]).toFixed(1);
      d += "Z";
      var p = svg("path", {d: d, fill: s.color, "fill-opacity": "0.85", stroke: s.color, "stroke-width": "0.5"}, plot);
      svg("title", {}, p).textContent = s.name;
    } else {
      for (i = 0; i < n; i++) d += (i ? "L" : "M") + sx(x[i]).toFixed(1) + " " + sy(s.values[i] || 0).toFixed(1);
      var q = svg("path", {d: d, fill: "none", stroke: s.color, "stroke-width": "1.6"}, plot);
      svg("title", {}, q).textContent = s.name;
    }
  });
  (D.markers || []).forEach(function (m) {
    if (m.x < x0 || m.x > x1) return;
    var mx = sx(m.x);
    var ml2 = svg("line", {"class": "marker", x1: mx, x2: mx, y1: mt, y2: H - mb}, plot);
    svg("title", {}, ml2).textContent = "marker at line " + m.line + ": " + m.text;
  });
  var cursor = svg("line", {"class": "cursor", x1: 0, x2: 0, y1: mt, y2: H - mb, visibility: "hidden"}, root);
  var hit = svg("rect", {x: ml, y: mt, width: W - ml - mr, height: H - mt - mb, fill: "transparent"}, root);
  hit.addEventListener("mousemove", function (evt) {
    var r = root.getBoundingClientRect();
    var vx = (evt.clientX - r.left) / r.width * W;
    var target = x0 + (vx - ml) / (W - ml - mr) * (x1 - x0);
    var lo = 0, hi = n - 1;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (x[mid] < target) lo = mid + 1; else hi = mid; }
    if (lo > 0 && Math.abs(x[lo - 1] - target) < Math.abs(x[lo] - target)) lo--;
    var cx = sx(x[lo]);
    cursor.setAttribute("x1", cx); cursor.setAttribute("x2", cx); cursor.setAttribute("visibility", "visible");
    var rows = series.map(function (s) {
      return {name: s.name, color: s.color, value: (spec.fmt || fmtNum)(s.values[lo] || 0)};
    }).reverse();
    if (spec.stacked) {
      var tot = 0; series.forEach(function (s) { tot += s.values[lo] || 0; });
      rows.unshift({name: "total", value: (spec.fmt || fmtNum)(tot)});
    }
    showTip(evt, "event " + group(x[lo]) + ", line " + group(D.line[lo]) + ", t=" + D.ts[lo] + " s", rows);
  });
  hit.addEventListener("mouseleave", function () { cursor.setAttribute("visibility", "hidden"); hideTip(); });
  var legend = el("div", "legend", box);
  spec.series.slice().reverse().forEach(function (s) {
    var item = el("span", hidden[s.name] ? "off" : "", legend);
    var sw = el("i", "", item); sw.style.background = s.color;
    item.appendChild(document.createTextNode(s.name));
    item.addEventListener("click", function () { hidden[s.name] = !hidden[s.name]; timeChart(box, spec); });
  });
  charts++;
}

/* Vertical bars: spec {labels, values, color, title, xlabel} */
function barChart(box, spec) {
  clear(box);
  var H = 280, ml = 64, mr = 14, mt = 12, mb = 44;
  var root = svg("svg", {viewBox: "0 0 " + W + " " + H, role: "img"}, box);
  svg("title", {}, root).textContent = spec.title || "";
  var n = spec.labels.length, ymax = niceMax(Math.max.apply(null, spec.values.concat([0])));
  var sy = function (v) { return H - mb - v / ymax * (H - mt - mb); };
  var bw = (W - ml - mr) / Math.max(n, 1);
  var axis = svg("g", {"class": "axis"}, root);
  for (var j = 0; j <= 5; j++) {
    var yv = ymax * j / 5, yy = sy(yv);
    svg("line", {"class": "grid", x1: ml, x2: W - mr, y1: yy, y2: yy}, axis);
    svg("text", {x: ml - 6, y: yy + 4, "text-anchor": "end"}, axis).textContent = short(yv);
  }
  var every = Math.max(1, Math.ceil(n / 24));
  spec.labels.forEach(function (lab, i) {
    var v = spec.values[i], bx = ml + i * bw;
    var r = svg("rect", {x: (bx + bw * 0.1).toFixed(1), y: sy(v).toFixed(1), width: Math.max(1, bw * 0.8).toFixed(1),
                         height: Math.max(0, H - mb - sy(v)).toFixed(1), fill: spec.color || PALETTE[0]}, root);
    svg("title", {}, r).textContent = lab + ": " + group(v) + " slabs";
    if (i % every === 0) {
      svg("text", {x: bx + bw / 2, y: H - mb + 16, "text-anchor": "middle"}, axis).textContent = lab;
    }
  });
  svg("text", {x: W - mr, y: H - 6, "text-anchor": "end"}, axis).textContent = spec.xlabel || "";
  charts++;
}

function seriesFrom(names, get, otherName, other) {
  var out = names.map(function (name, i) {
    return {name: name, color: PALETTE[i % PALETTE.length], values: get(name)};
  });
  if (other) out.push({name: otherName, color: OTHER, values: other});
  return out;
}

function drawMem() {
  var mode = document.getElementById("mem-mode").value;
  var box = document.getElementById("chart-mem");
  if (mode === "mem") {
    var peak = 0, i;
    for (i = 0; i < D.x.length; i++) {
      var t = D.mem_other[i];
      D.top.forEach(function (n) { t += D.mem[n][i]; });
      peak = Math.max(peak, t * 4);
    }
    var div = peak >= 2097152 ? 1048576 : peak >= 2048 ? 1024 : 1;
    var unit = div === 1 ? " KiB" : div === 1024 ? " MiB" : " GiB";
    var scale = function (pages) { return pages.map(function (p) { return p * 4 / div; }); };
    timeChart(box, {x: D.x, stacked: true, title: "memory per cache", unit: unit,
      fmt: function (v) { return group(v * div) + " KiB"; },
      series: seriesFrom(D.top, function (n) { return scale(D.mem[n]); }, "other", scale(D.mem_other))});
  } else {
    timeChart(box, {x: D.x, stacked: true, title: "active objects per cache",
      series: seriesFrom(D.top, function (n) { return D.objs[n]; }, "other", D.objs_other)});
  }
}

function drawLists() {
  var name = document.getElementById("lists-cache").value;
  var L = name === "*" ? D.lists_all : D.lists[name];
  timeChart(document.getElementById("chart-lists"), {x: D.x, stacked: true, title: "slabs per list",
    series: [{name: "full", color: "#c2255c", values: L.full}, {name: "partial", color: "#e67700", values: L.partial},
             {name: "free", color: "#2b8a3e", values: L.free}]});
}

function drawArrays() {
  var mode = document.getElementById("arrays-mode").value, series = [], i;
  var A = D.arrays;
  function pct(v, l) { return v.map(function (x, j) { return l[j] ? 100 * x / l[j] : 0; }); }
  for (i = 0; i < A.cpu.length; i++) {
    series.push({name: "CPU " + i, color: PALETTE[i % PALETTE.length],
                 values: mode === "pct" ? pct(A.cpu[i], A.cpu_limit[i]) : A.cpu[i]});
  }
  for (i = 0; i < A.shared.length; i++) {
    series.push({name: "shared, node " + i, color: PALETTE[(A.cpu.length + i + 3) % PALETTE.length],
                 values: mode === "pct" ? pct(A.shared[i], A.shared_limit[i]) : A.shared[i]});
  }
  timeChart(document.getElementById("chart-arrays"), {x: D.x, stacked: false, title: "array fill",
    unit: mode === "pct" ? "%" : "", ymax: mode === "pct" ? 100 : 0,
    fmt: mode === "pct" ? function (v) { return v.toFixed(1) + "%"; } : fmtNum, series: series});
}

function deltas(v) {
  var out = new Array(v.length).fill(0);
  for (var i = 1; i < v.length; i++) out[i] = Math.max(0, v[i] - v[i - 1]);
  return out;
}
var PATHSETS = {
  alloc: [["hit (per-CPU array)", function (P) { return deltas(P.alloc_hit); }],
          ["refill from shared", function (P) { return deltas(P.refill_shared); }],
          ["refill from slabs", function (P) { return deltas(P.refill_slab); }],
          ["refill after grow", function (P) {
            var m = deltas(P.alloc_miss), a = deltas(P.refill_shared), b = deltas(P.refill_slab);
            return m.map(function (v, i) { return Math.max(0, v - a[i] - b[i]); }); }]],
  free: [["FREEHIT (per-CPU array)", function (P) { return deltas(P.free_hit); }],
         ["flush to shared", function (P) { return deltas(P.flush_shared); }],
         ["flush to free_block", function (P) { return deltas(P.flush_free_block); }],
         ["alien (remote node)", function (P) { return deltas(P.alien_free); }]],
  slab: [["grow (pages from buddy)", function (P) { return deltas(P.grow); }],
         ["slabs destroyed", function (P) { return deltas(P.slabs_destroyed); }],
         ["reaped slabs", function (P) { return deltas(P.reap_slabs); }]]
};
function drawPaths() {
  var mode = document.getElementById("paths-mode").value, scale = document.getElementById("paths-scale").value;
  var series = PATHSETS[mode].map(function (p, i) {
    return {name: p[0], color: PALETTE[i % PALETTE.length], values: p[1](D.paths)};
  });
  if (scale === "pct") {
    var n = D.x.length;
    var tot = new Array(n).fill(0);
    series.forEach(function (s) { s.values.forEach(function (v, i) { tot[i] += v; }); });
    series.forEach(function (s) {
      s.values = s.values.map(function (v, i) { return tot[i] ? 100 * v / tot[i] : 0; });
    });
  }
  timeChart(document.getElementById("chart-paths"), {x: D.x, stacked: true, title: "paths per interval",
    unit: scale === "pct" ? "%" : "", ymax: scale === "pct" ? 100 : 0,
    fmt: scale === "pct" ? function (v) { return v.toFixed(1) + "%"; } : fmtNum, series: series});
}

function drawOccupancy() {
  var name = document.getElementById("occ-cache").value, O = D.occupancy;
  var box = document.getElementById("chart-occupancy");
  if (name === "*") {
    barChart(box, {labels: O.labels, values: O.all, title: "slabs by fill, all caches",
                   xlabel: "objects in use / objects per slab"});
  } else {
    var c = O.caches[name], labels = [];
    for (var i = 0; i <= c.num; i++) labels.push(String(i));
    barChart(box, {labels: labels, values: c.counts, color: PALETTE[1],
                   title: "slabs of " + name + " by active objects",
                   xlabel: "active objects per slab (of " + c.num + ")"});
  }
}

function fillSelect(sel, first, names) {
  var o = el("option", "", sel, first[1]); o.value = first[0];
  names.forEach(function (n) { var p = el("option", "", sel, n); p.value = n; });
}

/* A sortable, filterable table.  spec: {columns: [keys], labels: {key: label}, rows, text: {key: true},
   sortParam, filterParam, defaultSort, note} */
function table(box, spec) {
  var wrap = el("div", "tablebox", box);
  var bar = el("div", "bar", wrap);
  var input = el("input", "", bar);
  input.type = "search"; input.placeholder = "filter " + spec.columns[0] + "\u2026";
  input.setAttribute("aria-label", "filter");
  var count = el("span", "note", bar);
  if (spec.note) el("span", "note", bar, spec.note);
  var scroll = el("div", "scroll", wrap);
  var t = el("table", "", scroll), thead = el("thead", "", t), tbody = el("tbody", "", t);
  var tr = el("tr", "", thead), ths = [];
  var isText = function (k) { return !!(spec.text && spec.text[k]); };
  var rows = spec.rows.map(function (r, i) { return {r: r, i: i}; });
  var state = {key: null, desc: false, filter: ""};
  spec.columns.forEach(function (k, ci) {
    var th = el("th", "", tr, (spec.labels && spec.labels[k]) || k);
    th.dataset.key = k; th.tabIndex = 0; th.scope = "col";
    var go = function () {
      if (state.key === k) state.desc = !state.desc; else { state.key = k; state.desc = !isText(k); }
      render(); remember();
    };
    th.addEventListener("click", go);
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); }
    });
    ths.push(th);
  });
  function remember() {
    try {
      HASH.set(spec.sortParam, (state.desc ? "-" : "") + state.key);
      if (state.filter) HASH.set(spec.filterParam, state.filter); else HASH.delete(spec.filterParam);
      history.replaceState(null, "", "#" + HASH.toString());
    } catch (e) { /* file:// without history: fine */ }
  }
  function render() {
    var ci = spec.columns.indexOf(state.key);
    var list = rows;
    if (state.filter) {
      var f = state.filter.toLowerCase();
      list = list.filter(function (o) { return String(o.r[0]).toLowerCase().indexOf(f) >= 0; });
    }
    if (ci >= 0) {
      var sign = state.desc ? -1 : 1;
      list = list.slice().sort(function (a, b) {
        var x = a.r[ci], y = b.r[ci];
        if (x < y) return -sign;
        if (x > y) return sign;
        return a.i - b.i;
      });
    }
    ths.forEach(function (th, i) {
      if (i === ci) th.setAttribute("aria-sort", state.desc ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    });
    clear(tbody);
    var frag = document.createDocumentFragment();
    list.forEach(function (o) {
      var row = el("tr", "", frag);
      o.r.forEach(function (v, i) { el("td", "", row, isText(spec.columns[i]) ? v : fmtNum(v)); });
    });
    tbody.appendChild(frag);
    count.textContent = group(list.length) + " of " + group(rows.length) + " rows";
  }
  var want = HASH.get(spec.sortParam) || spec.defaultSort || "";
  if (want) {
    var desc = want.charAt(0) === "-", key = want.replace(/^[-+]/, "");
    if (spec.columns.indexOf(key) >= 0) { state.key = key; state.desc = desc; }
  }
  state.filter = HASH.get(spec.filterParam) || "";
  input.value = state.filter;
  input.addEventListener("input", function () { state.filter = input.value; render(); remember(); });
  render();
  return t;
}

function summary() {
  var dl = document.getElementById("summary-list");
  function item(k, v) { el("dt", "", dl, k); el("dd", "", dl, v); }
  var m = D.machine, r = D.replay, s = D.stats;
  document.getElementById("subtitle").textContent = D.trace;
  item("trace", D.trace);
  item("machine", m.cpus + " CPU" + (m.cpus > 1 ? "s" : "") + ", " + m.nodes + " node" + (m.nodes > 1 ? "s" : "") +
       " (" + m.topology + "), " + group(m.mem_mib) + " MiB" + (m.debug ? ", CONFIG_DEBUG_SLAB" : ""));
  item("replay", group(r.lines) + " lines, " + group(r.events) + " events; applied " + group(r.applied_total) +
       ", skipped " + group(r.skipped_total));
  if (r.sync && Object.keys(r.sync).length) {
    item("sync", "with a real /proc/slabinfo: " + group(r.sync.caches || 0) + " caches, " +
         group(r.sync.placeholders || 0) + " placeholder objects, " + group(r.sync.slabs_grown || 0) +
         " slabs grown, " + group(r.sync.slabs_released || 0) + " released");
  }
  item("allocations", group(s.allocations) + " (" + group(s.bytes_allocated) + " bytes allocated for " +
       group(s.bytes_requested) + " requested: " + s.fragmentation_percent.toFixed(3) + "% internal fragmentation)");
  item("frees", group(s.frees) + " (" + group(s.cross_cpu_frees) + " on another CPU than the allocation; " +
       group(s.frees_of_objects_allocated_before_the_trace) + " of objects allocated before the trace)");
  if (D.model) item("buddy allocator (model)", group(D.model.pages_allocated) + " pages allocated, " +
                    group(D.model.pages_freed) + " freed, from trace line " + group(D.model.start_line));
  var nx = D.x.length;
  item("samples", group(nx) + " (every " + (nx > 1 ? group(D.x[nx - 1] - D.x[nx - 2]) : "-") +
       " events); " + group(D.markers.length) + " markers");
}

function guard(name, fn) {
  try { fn(); } catch (e) {
    var box = document.getElementById("errors");
    box.hidden = false; box.textContent += name + ": " + (e && e.message) + "\n";
    document.documentElement.setAttribute("data-error", "1");
    console.error("kslab report: " + name + ": " + (e && e.stack));
  }
}

guard("summary", summary);
guard("memory", function () {
  document.getElementById("mem-mode").addEventListener("change", drawMem);
  drawMem();
});
guard("lists", function () {
  var sel = document.getElementById("lists-cache");
  fillSelect(sel, ["*", "all caches"], D.top);
  sel.addEventListener("change", drawLists);
  drawLists();
});
guard("arrays", function () {
  document.getElementById("arrays-mode").addEventListener("change", drawArrays);
  drawArrays();
});
guard("paths", function () {
  document.getElementById("paths-mode").addEventListener("change", drawPaths);
  document.getElementById("paths-scale").addEventListener("change", drawPaths);
  drawPaths();
});
guard("occupancy", function () {
  var sel = document.getElementById("occ-cache");
  fillSelect(sel, ["*", "all caches"], Object.keys(D.occupancy.caches));
  sel.addEventListener("change", drawOccupancy);
  drawOccupancy();
});
guard("slabinfo table", function () {
  var t = table(document.getElementById("table-slabinfo"), {columns: D.slabinfo.columns, rows: D.slabinfo.rows,
    text: {name: true}, sortParam: "sort", filterParam: "filter", defaultSort: "-num_objs",
    labels: {use: "use %", cache_kib: "cache KiB"}});
  t.id = "slabinfo";
});
guard("paths table", function () {
  var t = table(document.getElementById("table-paths"), {columns: D.cache_paths.columns, rows: D.cache_paths.rows,
    text: {name: true}, sortParam: "psort", filterParam: "pfilter", defaultSort: "-allocs",
    note: D.model ? "counted from trace line " + D.model.start_line : ""});
  t.id = "cache-paths";
});
guard("callers table", function () {
  var c = D.callers;
  var t = table(document.getElementById("table-callers"), {columns: c.columns, rows: c.rows, text: {call_site: true},
    sortParam: "csort", filterParam: "cfilter", defaultSort: "-hit",
    labels: {frag_percent: "frag %"},
    note: c.total > c.rows.length ? "(the " + c.rows.length + " most frequent of " + group(c.total) + ")" : ""});
  t.id = "callers";
});
document.documentElement.setAttribute("data-charts", String(charts));
document.documentElement.setAttribute("data-ready", "1");
})();
"""
